//! How each identity provider shapes its SCIM requests, as data: one table row per
//! dialect, and builders that turn an intent (look up, update, deactivate, add or remove
//! members) into the exact requests that provider sends. Sources are in
//! ../reference/scim-dialects.md §2–4 and §12; where a provider's behaviour is
//! unconfirmed the row takes the RFC's form.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::scim::filter::query_escape;
use crate::scim::urns;

/// `--dialect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DialectName {
    Generic,
    Entra,
    EntraLegacy,
    Okta,
    OktaAiw,
    Aws,
    /// Entra ID's API-driven inbound provisioning (`/bulkUpload`): users in BulkRequests
    /// of 50, answered 202 and confirmed later (import only).
    EntraInbound,
}

/// How a changed user is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStyle {
    /// One PATCH, one `replace` per attribute with a path (RFC 7644 §3.5.2.3).
    PatchPerAttribute,
    /// One PATCH, one path-less `replace` whose value holds every attribute (Entra
    /// compliant mode).
    PatchPathless,
    /// GET the user, then PUT the full object (Okta).
    GetThenPut,
}

/// How a user is deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeactivateStyle {
    /// PATCH replace with `path: active`.
    PatchPath,
    /// PATCH replace without a path, `value: {active: false}` (Okta OIN).
    PatchPathless,
    /// PUT the full user with `active: false` (Okta AIW).
    Put,
}

/// How one member leaves a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveStyle {
    /// `remove` with `path: members[value eq "id"]` (RFC form).
    Filter,
    /// `remove` with `path: members` and a value list (Entra legacy; an RFC-literal
    /// server removes everyone).
    ValueList,
}

/// One dialect's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dialect {
    pub name: DialectName,
    /// Appended to the lookup filter's query (Okta pages its lookups).
    pub lookup_suffix: &'static str,
    /// Providers look a user up before creating it.
    pub lookup_before_create: bool,
    pub update: UpdateStyle,
    pub deactivate: DeactivateStyle,
    /// `Add`/`Replace`/`Remove` instead of lowercase.
    pub capitalized_ops: bool,
    /// Booleans sent as `"True"`/`"False"` strings.
    pub string_booleans: bool,
    /// Members added per PATCH (Entra: one user per PATCH).
    pub member_add_batch: usize,
    /// Members removed per PATCH.
    pub member_remove_batch: usize,
    pub remove: RemoveStyle,
    /// Group reads carry `excludedAttributes=members` (Entra always does).
    pub group_reads_exclude_members: bool,
}

pub const GENERIC: Dialect = Dialect {
    name: DialectName::Generic,
    lookup_suffix: "",
    lookup_before_create: false,
    update: UpdateStyle::PatchPerAttribute,
    deactivate: DeactivateStyle::PatchPath,
    capitalized_ops: false,
    string_booleans: false,
    member_add_batch: 100,
    member_remove_batch: 100,
    remove: RemoveStyle::Filter,
    group_reads_exclude_members: false,
};

pub const ENTRA: Dialect = Dialect {
    name: DialectName::Entra,
    lookup_before_create: true,
    update: UpdateStyle::PatchPathless,
    member_add_batch: 1,
    member_remove_batch: 1,
    group_reads_exclude_members: true,
    ..GENERIC
};

pub const ENTRA_LEGACY: Dialect = Dialect {
    name: DialectName::EntraLegacy,
    update: UpdateStyle::PatchPerAttribute,
    capitalized_ops: true,
    string_booleans: true,
    remove: RemoveStyle::ValueList,
    ..ENTRA
};

pub const OKTA: Dialect = Dialect {
    name: DialectName::Okta,
    lookup_suffix: "&startIndex=1&count=100",
    lookup_before_create: true,
    update: UpdateStyle::GetThenPut,
    deactivate: DeactivateStyle::PatchPathless,
    member_add_batch: 100,
    ..GENERIC
};

pub const OKTA_AIW: Dialect = Dialect {
    name: DialectName::OktaAiw,
    deactivate: DeactivateStyle::Put,
    ..OKTA
};

/// A client of an AWS-like target: at most 100 membership changes per PATCH.
pub const AWS: Dialect = Dialect {
    name: DialectName::Aws,
    lookup_before_create: true,
    ..GENERIC
};

/// Users only, in `/bulkUpload` requests (src/import/inbound.rs); nothing else of the
/// row is used, so the RFC's forms stand in.
pub const ENTRA_INBOUND: Dialect = Dialect {
    name: DialectName::EntraInbound,
    ..GENERIC
};

impl DialectName {
    pub fn table(self) -> &'static Dialect {
        match self {
            DialectName::Generic => &GENERIC,
            DialectName::Entra => &ENTRA,
            DialectName::EntraLegacy => &ENTRA_LEGACY,
            DialectName::Okta => &OKTA,
            DialectName::OktaAiw => &OKTA_AIW,
            DialectName::Aws => &AWS,
            DialectName::EntraInbound => &ENTRA_INBOUND,
        }
    }
}

/// A request a dialect sends: method, path below the SCIM root, JSON body serialized
/// once (every sender wants bytes; a member add is written as bytes directly).
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Bytes>,
}

impl Shaped {
    fn get(path: String) -> Self {
        Shaped {
            method: "GET",
            path,
            body: None,
        }
    }

    fn with_body(method: &'static str, path: String, body: &Value) -> Self {
        Shaped {
            method,
            path,
            body: Some(Bytes::from(serde_json::to_vec(body).unwrap_or_default())),
        }
    }

    fn patch(path: String, ops: Vec<Value>) -> Self {
        let mut m = Map::with_capacity(2);
        m.insert("schemas".into(), json!([urns::PATCH_OP]));
        m.insert("Operations".into(), Value::Array(ops));
        Self::with_body("PATCH", path, &Value::Object(m))
    }

    /// The body as a JSON value (for checks; senders use the bytes).
    pub fn json(&self) -> Option<Value> {
        self.body
            .as_ref()
            .and_then(|b| serde_json::from_slice(b).ok())
    }
}

/// `{"schemas":[PatchOp],"Operations":[{"op":"<op>","path":"members","value":[{"value":"<id>"},…]}]}`
/// written straight to bytes: a 100,000-row import adds ~400,000 members, and building
/// each `{"value": id}` as a JSON map (then copying the tree twice into the request)
/// was 7% of the importer's CPU.
fn members_body(op: &str, ids: &[&str]) -> Bytes {
    let mut b = Vec::with_capacity(96 + ids.iter().map(|i| i.len() + 14).sum::<usize>());
    b.extend_from_slice(br#"{"schemas":[""#);
    b.extend_from_slice(urns::PATCH_OP.as_bytes());
    b.extend_from_slice(br#""],"Operations":[{"op":""#);
    b.extend_from_slice(op.as_bytes());
    b.extend_from_slice(br#"","path":"members","value":["#);
    for (k, id) in ids.iter().enumerate() {
        if k > 0 {
            b.push(b',');
        }
        b.extend_from_slice(br#"{"value":"#);
        // Ids are the target's: escaped as JSON strings, whatever they hold.
        let _ = serde_json::to_writer(&mut b, id);
        b.push(b'}');
    }
    b.extend_from_slice(b"]}]}");
    Bytes::from(b)
}

/// Attributes a PATCH never sets: identity and bookkeeping.
const NOT_PATCHED: [&str; 4] = ["schemas", "id", "meta", "userName"];

impl Dialect {
    fn op(&self, name: &str) -> String {
        if self.capitalized_ops {
            let mut c = name.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        } else {
            name.to_string()
        }
    }

    fn boolean(&self, b: bool) -> Value {
        if self.string_booleans {
            Value::String(if b { "True" } else { "False" }.into())
        } else {
            Value::Bool(b)
        }
    }

    /// `GET /Users?filter=userName eq "…"` as this provider asks it.
    pub fn lookup(&self, user_name: &str) -> Shaped {
        let f = format!("userName eq {}", json!(user_name));
        Shaped::get(format!(
            "/Users?filter={}{}",
            query_escape(&f),
            self.lookup_suffix
        ))
    }

    /// The requests that bring user `id` to `user` (a full User resource).
    pub fn update(&self, id: &str, user: &Value) -> Vec<Shaped> {
        let path = format!("/Users/{id}");
        let attrs: Vec<(&String, &Value)> = user
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !NOT_PATCHED.contains(&k.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let value = |v: &Value| match v {
            Value::Bool(b) => self.boolean(*b),
            v => v.clone(),
        };
        match self.update {
            UpdateStyle::GetThenPut => vec![
                Shaped::get(path.clone()),
                Shaped::with_body("PUT", path, user),
            ],
            UpdateStyle::PatchPathless => {
                // Simple attributes collapse into one path-less replace; extension
                // attributes stay under their URN key.
                let m: Map<String, Value> = attrs
                    .iter()
                    .map(|(k, v)| ((*k).clone(), value(v)))
                    .collect();
                vec![Shaped::patch(
                    path,
                    vec![json!({"op": self.op("replace"), "value": m})],
                )]
            }
            UpdateStyle::PatchPerAttribute => {
                let mut ops = Vec::new();
                for (k, v) in attrs {
                    match (k.starts_with("urn:"), v) {
                        // Extension attributes go one by one with URN-qualified paths.
                        (true, Value::Object(ext)) => {
                            for (sub, sv) in ext {
                                ops.push(json!({"op": self.op("replace"), "path": format!("{k}:{sub}"), "value": value(sv)}));
                            }
                        }
                        _ => ops
                            .push(json!({"op": self.op("replace"), "path": k, "value": value(v)})),
                    }
                }
                vec![Shaped::patch(path, ops)]
            }
        }
    }

    /// The request that deactivates user `id` (`user`: its full resource, for PUT).
    pub fn deactivate(&self, id: &str, user: &Value) -> Shaped {
        let path = format!("/Users/{id}");
        match self.deactivate {
            DeactivateStyle::PatchPath => Shaped::patch(
                path,
                vec![
                    json!({"op": self.op("replace"), "path": "active", "value": self.boolean(false)}),
                ],
            ),
            DeactivateStyle::PatchPathless => Shaped::patch(
                path,
                vec![json!({"op": self.op("replace"), "value": {"active": false}})],
            ),
            DeactivateStyle::Put => {
                let mut u = user.clone();
                u["active"] = Value::Bool(false);
                Shaped::with_body("PUT", path, &u)
            }
        }
    }

    /// PATCHes adding `ids` to group `gid`, `batch` members each (the caller chooses:
    /// an explicit flag, the dialect's size, or the target's limit).
    pub fn add_members(&self, gid: &str, ids: &[&str], batch: usize) -> Vec<Shaped> {
        let op = self.op("add");
        ids.chunks(batch.max(1))
            .map(|chunk| Shaped {
                method: "PATCH",
                path: format!("/Groups/{gid}"),
                body: Some(members_body(&op, chunk)),
            })
            .collect()
    }

    /// PATCHes removing `ids` from group `gid`, `batch` members each.
    pub fn remove_members(&self, gid: &str, ids: &[&str], batch: usize) -> Vec<Shaped> {
        ids.chunks(batch.max(1))
            .map(|chunk| {
                let ops = match self.remove {
                    RemoveStyle::Filter => chunk
                        .iter()
                        .map(|id| json!({"op": self.op("remove"), "path": format!("members[value eq \"{id}\"]")}))
                        .collect(),
                    RemoveStyle::ValueList => {
                        return Shaped {
                            method: "PATCH",
                            path: format!("/Groups/{gid}"),
                            body: Some(members_body(&self.op("remove"), chunk)),
                        }
                    }
                };
                Shaped::patch(format!("/Groups/{gid}"), ops)
            })
            .collect()
    }

    /// A group read as this provider does it.
    pub fn read_group(&self, gid: &str) -> Shaped {
        Shaped::get(if self.group_reads_exclude_members {
            format!("/Groups/{gid}?excludedAttributes=members")
        } else {
            format!("/Groups/{gid}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({"schemas": [urns::USER], "userName": "a@x", "title": "T", "active": true,
               (urns::ENTERPRISE_USER): {"department": "D"}})
    }

    #[test]
    fn shapes_follow_the_table() {
        let legacy = ENTRA_LEGACY.deactivate("1", &user());
        assert_eq!(
            legacy.json().unwrap()["Operations"][0],
            json!({"op": "Replace", "path": "active", "value": "False"})
        );
        let okta = OKTA.deactivate("1", &user());
        assert_eq!(
            okta.json().unwrap()["Operations"][0],
            json!({"op": "replace", "value": {"active": false}})
        );
        let aiw = OKTA_AIW.deactivate("1", &user());
        assert_eq!(
            (aiw.method, aiw.json().unwrap()["active"].clone()),
            ("PUT", json!(false))
        );

        let u = OKTA.update("1", &user());
        assert_eq!((u[0].method, u[1].method), ("GET", "PUT"));
        let p = ENTRA.update("1", &user());
        let p0 = p[0].json().unwrap();
        let op = &p0["Operations"][0];
        assert!(op.get("path").is_none() && op["value"]["title"] == "T");
        let g = GENERIC.update("1", &user());
        let g0 = g[0].json().unwrap();
        let paths: Vec<&str> = g0["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "title",
                "active",
                &format!("{}:department", urns::ENTERPRISE_USER)
            ]
        );

        let ids = ["a", "b", "c"];
        assert_eq!(
            ENTRA.add_members("g", &ids, ENTRA.member_add_batch).len(),
            3
        );
        assert_eq!(GENERIC.add_members("g", &ids, 2).len(), 2);
        let r = ENTRA_LEGACY.remove_members("g", &ids[..1], 1);
        assert_eq!(
            r[0].json().unwrap()["Operations"][0],
            json!({"op": "Remove", "path": "members", "value": [{"value": "a"}]})
        );
        assert!(OKTA.lookup("a b").path.ends_with("&startIndex=1&count=100"));
        // Member bodies are written as bytes: valid JSON, ids escaped, the dialect's op.
        let odd = ["a\"b", "c\\d", "é"];
        let add = ENTRA_LEGACY.add_members("g", &odd, 10).swap_remove(0);
        assert_eq!(
            add.json().unwrap(),
            json!({"schemas": [urns::PATCH_OP], "Operations": [{"op": "Add", "path": "members",
                   "value": [{"value": "a\"b"}, {"value": "c\\d"}, {"value": "é"}]}]})
        );
        assert_eq!((add.method, add.path.as_str()), ("PATCH", "/Groups/g"));
        assert!(ENTRA
            .read_group("g")
            .path
            .ends_with("excludedAttributes=members"));
    }
}
