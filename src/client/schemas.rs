//! What a target says a User can hold: `GET /ResourceTypes` and `GET /Schemas` (RFC 7643
//! §6–7, RFC 7644 §4), read before an import so attributes the target would silently
//! drop are named before anything is sent.
//!
//! Real servers publish these documents badly: no `totalResults`, a bare array instead
//! of a ListResponse, endpoints that include the mount path, schemas without attribute
//! lists, 404s. Each defect becomes a note and the reading goes on; only what was
//! actually published is treated as declared.

use std::collections::HashMap;

use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use super::retry::execute;
use super::{RetryPolicy, ScimClient, TransportError};
use crate::scim::urns;

/// One declared attribute: its type and the sub-attributes it lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeclaredAttr {
    pub ty: String,
    pub multi_valued: bool,
    /// Lower-cased names of the sub-attributes; empty when none are listed.
    pub sub: Vec<String>,
}

/// The schemas of the target's User resource type, as published.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserSchemas {
    /// The core schema and the extensions the User resource type names.
    pub schemas: Vec<String>,
    /// Schemas published without an attribute list: nothing about them can be checked.
    pub opaque: Vec<String>,
    /// (lower-cased schema URN, lower-cased attribute name) → definition.
    #[serde(skip)]
    attrs: HashMap<(String, String), DeclaredAttr>,
}

/// Whether a target declares an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Yes,
    /// The schema is not one the User resource type has.
    NoSchema,
    /// The schema is there but does not list the attribute (or the sub-attribute).
    NoAttribute,
    /// The schema is there without an attribute list.
    Unknown,
}

impl UserSchemas {
    /// Whether `attr` (with `sub`) of schema `urn` (`None`: the core User schema) is
    /// declared. `externalId`, `id` and `meta` are common attributes (RFC 7643 §3.1),
    /// declared by every resource whether or not a schema lists them.
    pub fn declares(&self, urn: Option<&str>, attr: &str, sub: Option<&str>) -> Declared {
        let urn = urn.unwrap_or(urns::USER).to_ascii_lowercase();
        if urn == urns::USER.to_ascii_lowercase()
            && ["externalid", "id", "meta"].contains(&attr.to_ascii_lowercase().as_str())
        {
            return Declared::Yes;
        }
        if !self.schemas.iter().any(|s| s.to_ascii_lowercase() == urn) {
            return Declared::NoSchema;
        }
        if self.opaque.iter().any(|s| s.to_ascii_lowercase() == urn) {
            return Declared::Unknown;
        }
        match self.attrs.get(&(urn, attr.to_ascii_lowercase())) {
            None => Declared::NoAttribute,
            Some(d) => match sub {
                Some(s) if !d.sub.is_empty() && !d.sub.contains(&s.to_ascii_lowercase()) => {
                    Declared::NoAttribute
                }
                _ => Declared::Yes,
            },
        }
    }

    pub fn attr(&self, urn: Option<&str>, attr: &str) -> Option<&DeclaredAttr> {
        let urn = urn.unwrap_or(urns::USER).to_ascii_lowercase();
        self.attrs.get(&(urn, attr.to_ascii_lowercase()))
    }
}

/// What reading the discovery documents gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Published {
    /// `None` when the target publishes no usable `/Schemas`.
    pub user: Option<UserSchemas>,
    /// What was wrong with the documents, one line each.
    pub notes: Vec<String>,
}

/// The `Resources` of a ListResponse, tolerating a bare array and a missing
/// `totalResults`.
fn resources(v: Value, what: &str, notes: &mut Vec<String>) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => {
            notes.push(format!(
                "{what} answered a bare JSON array, not a ListResponse (RFC 7644 §4)"
            ));
            Some(a)
        }
        Value::Object(mut m) => {
            if !m.contains_key("totalResults") {
                notes.push(format!("{what} has no totalResults"));
            }
            match m.remove("Resources") {
                Some(Value::Array(a)) => Some(a),
                _ if m.contains_key("id") => {
                    notes.push(format!(
                        "{what} answered a single resource, not a ListResponse"
                    ));
                    Some(vec![Value::Object(m)])
                }
                _ => {
                    notes.push(format!("{what} has no Resources array"));
                    None
                }
            }
        }
        _ => {
            notes.push(format!("{what} is not a JSON object"));
            None
        }
    }
}

/// Reads `path` (three quick attempts); the JSON document, or a note saying why not.
async fn fetch(client: &ScimClient, path: &str) -> Result<Result<Value, String>, TransportError> {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let e = execute(client, &policy, Method::GET, path, None, false, 7).await;
    let r = e.outcome?;
    if !r.is_success() {
        return Ok(Err(format!("GET {path} answered {}", r.status)));
    }
    Ok(serde_json::from_slice::<Value>(&r.body)
        .map_err(|err| format!("GET {path} is not JSON: {err}")))
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The schemas of the User resource type from a `/ResourceTypes` document.
fn user_type_schemas(types: &[Value], notes: &mut Vec<String>) -> Option<Vec<String>> {
    let user = types.iter().find(|t| {
        str_of(t, "schema").is_some_and(|s| s.eq_ignore_ascii_case(urns::USER))
            || str_of(t, "name").is_some_and(|n| n.eq_ignore_ascii_case("User"))
    })?;
    if let Some(ep) = str_of(user, "endpoint") {
        if ep.trim_end_matches('/').matches('/').count() > 1 {
            notes.push(format!(
                "the User resource type's endpoint '{ep}' includes a mount path (RFC 7643 §6 wants it relative, e.g. /Users)"
            ));
        }
    }
    let mut out = vec![str_of(user, "schema").unwrap_or(urns::USER).to_string()];
    if let Some(exts) = user.get("schemaExtensions").and_then(Value::as_array) {
        out.extend(
            exts.iter()
                .filter_map(|e| str_of(e, "schema").map(str::to_string)),
        );
    }
    Some(out)
}

fn declared(a: &Value) -> Option<(String, DeclaredAttr)> {
    let name = str_of(a, "name")?;
    let sub = a
        .get("subAttributes")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|x| str_of(x, "name").map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    let multi = a
        .get("multiValued")
        .map(|m| m.as_bool().unwrap_or(m.as_str() == Some("true")))
        .unwrap_or(false);
    Some((
        name.to_ascii_lowercase(),
        DeclaredAttr {
            ty: str_of(a, "type").unwrap_or("string").to_ascii_lowercase(),
            multi_valued: multi,
            sub,
        },
    ))
}

/// Builds the User's declared attributes from the documents (split from the I/O for
/// tests).
pub fn from_documents(
    resource_types: Result<Value, String>,
    schemas: Result<Value, String>,
) -> Published {
    let mut notes = Vec::new();
    let types = match resource_types {
        Ok(v) => resources(v, "/ResourceTypes", &mut notes),
        Err(n) => {
            notes.push(n);
            None
        }
    };
    let list = match schemas {
        Ok(v) => resources(v, "/Schemas", &mut notes),
        Err(n) => {
            notes.push(n);
            None
        }
    };
    let Some(list) = list else {
        return Published { user: None, notes };
    };
    let user_schemas = match types
        .as_deref()
        .and_then(|t| user_type_schemas(t, &mut notes))
    {
        Some(s) => s,
        None => {
            // Without a User resource type: the core schema and every published schema
            // that names itself a User extension.
            notes.push(
                "no User resource type in /ResourceTypes; taking the core User schema and every published :User extension".into(),
            );
            list.iter()
                .filter_map(|s| str_of(s, "id"))
                .filter(|id| {
                    id.eq_ignore_ascii_case(urns::USER)
                        || (id.contains(":extension:") && id.ends_with(":User"))
                })
                .map(str::to_string)
                .collect()
        }
    };
    let mut out = UserSchemas {
        schemas: user_schemas.clone(),
        ..UserSchemas::default()
    };
    for urn in &user_schemas {
        let Some(doc) = list
            .iter()
            .find(|s| str_of(s, "id").is_some_and(|id| id.eq_ignore_ascii_case(urn)))
        else {
            notes.push(format!(
                "the User resource type names {urn}, which /Schemas does not publish"
            ));
            out.opaque.push(urn.clone());
            continue;
        };
        match doc.get("attributes").and_then(Value::as_array) {
            Some(attrs) => {
                for a in attrs {
                    if let Some((name, d)) = declared(a) {
                        out.attrs.insert((urn.to_ascii_lowercase(), name), d);
                    }
                }
            }
            None => {
                notes.push(format!("{urn} is published without attributes"));
                out.opaque.push(urn.clone());
            }
        }
    }
    Published {
        user: Some(out),
        notes,
    }
}

/// Reads `/ResourceTypes` and `/Schemas`. Fails only when the target gives no HTTP
/// answer at all; a missing or broken document is a note.
pub async fn read(client: &ScimClient) -> Result<Published, TransportError> {
    let types = fetch(client, "/ResourceTypes").await?;
    let schemas = fetch(client, "/Schemas").await?;
    Ok(from_documents(types, schemas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn core_user() -> Value {
        json!({"id": urns::USER, "attributes": [
            {"name": "userName", "type": "string"},
            {"name": "name", "type": "complex", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]},
            {"name": "emails", "type": "complex", "multiValued": true, "subAttributes": [{"name": "value"}, {"name": "type"}]}
        ]})
    }

    #[test]
    fn core_only_target_declares_no_enterprise_attribute() {
        let p = from_documents(
            Ok(
                json!({"totalResults": 1, "Resources": [{"name": "User", "endpoint": "/Users", "schema": urns::USER}]}),
            ),
            Ok(json!({"totalResults": 1, "Resources": [core_user()]})),
        );
        let u = p.user.expect("schemas");
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        assert_eq!(u.declares(None, "userName", None), Declared::Yes);
        assert_eq!(u.declares(None, "externalId", None), Declared::Yes);
        assert_eq!(u.declares(None, "name", Some("givenName")), Declared::Yes);
        assert_eq!(
            u.declares(None, "name", Some("middleName")),
            Declared::NoAttribute
        );
        assert_eq!(u.declares(None, "title", None), Declared::NoAttribute);
        assert_eq!(
            u.declares(Some(urns::ENTERPRISE_USER), "department", None),
            Declared::NoSchema
        );
    }

    #[test]
    fn broken_discovery_is_noted_not_fatal() {
        // A bare array of schemas, no ResourceTypes, a mount path in the endpoint.
        let p = from_documents(
            Err("GET /ResourceTypes answered 404".into()),
            Ok(json!([core_user(), {"id": urns::ENTERPRISE_USER}])),
        );
        let u = p.user.expect("schemas");
        assert_eq!(
            u.declares(Some(urns::ENTERPRISE_USER), "department", None),
            Declared::Unknown
        );
        assert!(p.notes.iter().any(|n| n.contains("404")), "{:?}", p.notes);
        assert!(p.notes.iter().any(|n| n.contains("bare JSON array")));
        let p = from_documents(
            Ok(
                json!({"Resources": [{"name": "User", "endpoint": "/scim/v2/Users", "schema": urns::USER,
                "schemaExtensions": [{"schema": urns::ENTERPRISE_USER}]}]}),
            ),
            Ok(json!({"Resources": [core_user()]})),
        );
        assert!(
            p.notes.iter().any(|n| n.contains("mount path")),
            "{:?}",
            p.notes
        );
        assert!(p.notes.iter().any(|n| n.contains("no totalResults")));
        assert!(p.notes.iter().any(|n| n.contains("does not publish")));
        let p = from_documents(
            Ok(json!({"Resources": []})),
            Err("GET /Schemas answered 404".into()),
        );
        assert_eq!(p.user, None);
    }
}
