//! Writing resources as JSON: `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5),
//! the schema's `returned` rules, `meta.location`, and the attributes the server derives
//! (`User.groups`, `Group.members`).
//!
//! Resources are written straight into the response buffer rather than assembled as a
//! `serde_json::Value` first: a list page or a large group costs one pass and no copies.

use std::io::Write;

use serde_json::{Map, Value};

use super::members::member_json;
use super::store::{Inner, Kind, Members};
use crate::scim::error::ScimError;
use crate::scim::filter::parse_attr_path;
use crate::scim::schema::{find, AttrDef, ResourceTypeDef, Returned, COMMON_ATTRS};
use crate::scim::urns;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Default,
    Include,
    Exclude,
}

#[derive(Debug, Clone)]
struct Named {
    container: Option<&'static str>,
    name: &'static str,
    sub: Option<&'static str>,
}

/// Which attributes a response carries.
#[derive(Debug, Clone)]
pub struct Projection {
    mode: Mode,
    paths: Vec<Named>,
    /// Extension URNs named as a whole.
    whole: Vec<&'static str>,
}

/// What to write of one attribute.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Skip,
    All,
    Only(Vec<&'static str>),
    Except(Vec<&'static str>),
}

impl Projection {
    pub fn default_view() -> Self {
        Projection {
            mode: Mode::Default,
            paths: Vec::new(),
            whole: Vec::new(),
        }
    }

    /// Parses the comma-separated `attributes` / `excludedAttributes` lists. If both are
    /// given, `attributes` wins (RFC 7644 §3.4.2.5 forbids combining them; we do not fail).
    pub fn parse(
        rt: &'static ResourceTypeDef,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        let (mode, list) = match (
            attributes.filter(|s| !s.trim().is_empty()),
            excluded.filter(|s| !s.trim().is_empty()),
        ) {
            (Some(a), _) => (Mode::Include, a),
            (None, Some(e)) => (Mode::Exclude, e),
            (None, None) => return Ok(Self::default_view()),
        };
        let mut p = Projection {
            mode,
            paths: Vec::new(),
            whole: Vec::new(),
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(ext) = rt.extension(item) {
                p.whole.push(ext.id);
                continue;
            }
            if item.eq_ignore_ascii_case(rt.schema.id) {
                continue;
            }
            let ap = parse_attr_path(item)?;
            // Unknown names are ignored rather than refused: a client asking for an
            // attribute this server does not have gets the rest.
            let Ok(r) = rt.resolve(ap.urn.as_deref(), &ap.name, ap.sub.as_deref()) else {
                continue;
            };
            p.paths.push(Named {
                container: r.container,
                name: r.def.name,
                sub: r.sub.map(|s| s.name),
            });
        }
        Ok(p)
    }

    fn decide(&self, container: Option<&'static str>, def: &AttrDef) -> Decision {
        match def.returned {
            Returned::Never => return Decision::Skip,
            Returned::Always => return Decision::All,
            _ => {}
        }
        let named = || {
            self.paths
                .iter()
                .filter(move |n| n.container == container && n.name == def.name)
        };
        match self.mode {
            Mode::Default => {
                if def.returned == Returned::Request {
                    Decision::Skip
                } else {
                    Decision::All
                }
            }
            Mode::Include => {
                if container.is_some_and(|c| self.whole.contains(&c))
                    || named().any(|n| n.sub.is_none())
                {
                    return Decision::All;
                }
                let subs: Vec<_> = named().filter_map(|n| n.sub).collect();
                if subs.is_empty() {
                    Decision::Skip
                } else {
                    Decision::Only(subs)
                }
            }
            Mode::Exclude => {
                if container.is_some_and(|c| self.whole.contains(&c))
                    || named().any(|n| n.sub.is_none())
                {
                    return Decision::Skip;
                }
                if def.returned == Returned::Request {
                    return Decision::Skip;
                }
                let subs: Vec<_> = named().filter_map(|n| n.sub).collect();
                if subs.is_empty() {
                    Decision::All
                } else {
                    Decision::Except(subs)
                }
            }
        }
    }

    /// Whether the projection keeps anything of `name` (for derived attributes).
    pub fn wants(&self, rt: &'static ResourceTypeDef, name: &str) -> bool {
        match find(rt.schema.attrs, name) {
            Some(d) => self.decide(None, d) != Decision::Skip,
            None => false,
        }
    }
}

fn trim_value(v: &Value, d: &Decision) -> Option<Value> {
    let keep = |k: &str| match d {
        Decision::Only(s) => s.contains(&k),
        Decision::Except(s) => !s.contains(&k),
        _ => true,
    };
    let one = |x: &Value| -> Option<Value> {
        match x {
            Value::Object(m) => {
                let o: Map<String, Value> = m
                    .iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (!o.is_empty()).then_some(Value::Object(o))
            }
            other => Some(other.clone()),
        }
    };
    match v {
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().filter_map(one).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => one(other),
    }
}

/// Everything the renderer needs to know about one resource.
pub struct ResourceView<'a> {
    pub kind: Kind,
    pub attrs: &'a Map<String, Value>,
    pub members: Option<&'a Members>,
    /// Whether the members are written at all (a profile may never return them).
    pub members_in_reads: bool,
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, and our values are always serialisable.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn write_key(out: &mut Vec<u8>, k: &str) {
    out.push(b',');
    write_json(out, k);
    out.push(b':');
}

fn write_attr(out: &mut Vec<u8>, k: &str, v: &Value, d: &Decision) {
    match d {
        Decision::Skip => {}
        Decision::All => {
            write_key(out, k);
            write_json(out, v);
        }
        _ => {
            if let Some(t) = trim_value(v, d) {
                write_key(out, k);
                write_json(out, &t);
            }
        }
    }
}

/// Writes one resource.
pub fn render(
    out: &mut Vec<u8>,
    r: &ResourceView,
    inner: Option<&Inner>,
    proj: &Projection,
    base_url: &str,
) {
    let rt = r.kind.rt();
    out.extend_from_slice(b"{\"schemas\":[");
    write_json(out, rt.schema.id);
    for ext in rt.extensions {
        if r.attrs.contains_key(ext.id) {
            out.push(b',');
            write_json(out, ext.id);
        }
    }
    out.push(b']');
    let mut meta = None;
    for (k, v) in r.attrs {
        if k == "meta" {
            meta = Some(v);
            continue;
        }
        if let Some(ext) = rt.extension(k) {
            let Value::Object(m) = v else { continue };
            let mut first = true;
            for (ek, ev) in m {
                let Some(d) = find(ext.attrs, ek) else {
                    continue;
                };
                let dec = proj.decide(Some(ext.id), d);
                if dec == Decision::Skip {
                    continue;
                }
                if first {
                    write_key(out, ext.id);
                    out.push(b'{');
                } else {
                    out.push(b',');
                }
                let mut buf = Vec::new();
                write_attr(&mut buf, ek, ev, &dec);
                // write_attr starts with a comma; drop it inside the object.
                if !buf.is_empty() {
                    out.extend_from_slice(&buf[1..]);
                    first = false;
                } else if !first {
                    out.pop();
                }
            }
            if !first {
                out.push(b'}');
            }
            continue;
        }
        let Some(d) = find(COMMON_ATTRS, k).or_else(|| find(rt.schema.attrs, k)) else {
            continue;
        };
        write_attr(out, k, v, &proj.decide(None, d));
    }
    let id = r
        .attrs
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let (Some(members), true) = (r.members, r.members_in_reads) {
        if !members.is_empty() && proj.wants(rt, "members") {
            write_key(out, "members");
            out.push(b'[');
            for (i, (mid, m)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let mut v = member_json(mid, m);
                v["$ref"] = Value::String(format!("{base_url}{}/{mid}", m.kind.endpoint()));
                write_json(out, &v);
            }
            out.push(b']');
        }
    }
    if r.kind == Kind::User {
        if let Some(inner) = inner {
            if let Some(gids) = inner.memberships.get(id).filter(|g| !g.is_empty()) {
                if proj.wants(rt, "groups") {
                    let groups: Vec<Value> = gids
                        .iter()
                        .map(|g| {
                            let display = inner.groups.by_id.get(g).and_then(|e| e.attrs.get("displayName")).cloned();
                            let mut v = serde_json::json!({"value": g, "$ref": format!("{base_url}/Groups/{g}"), "type": "direct"});
                            if let Some(d) = display {
                                v["display"] = d;
                            }
                            v
                        })
                        .collect();
                    write_key(out, "groups");
                    write_json(out, &groups);
                }
            }
        }
    }
    if let Some(Value::Object(m)) = meta {
        let meta_def = find(COMMON_ATTRS, "meta").expect("meta is a common attribute");
        if proj.decide(None, meta_def) != Decision::Skip {
            write_key(out, "meta");
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, k);
                out.push(b':');
                write_json(out, v);
            }
            out.extend_from_slice(b",\"location\":");
            write_json(out, &format!("{base_url}{}/{id}", rt.endpoint));
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// Writes the head of a ListResponse; the caller writes resources separated by commas,
/// then calls [`list_tail`].
pub fn list_head(
    out: &mut Vec<u8>,
    total: usize,
    start_index: Option<usize>,
    items: usize,
    next_cursor: Option<&str>,
) {
    let _ = write!(
        out,
        "{{\"schemas\":[\"{}\"],\"totalResults\":{total},\"itemsPerPage\":{items}",
        urns::LIST_RESPONSE
    );
    if let Some(s) = start_index {
        let _ = write!(out, ",\"startIndex\":{s}");
    }
    if let Some(c) = next_cursor {
        out.extend_from_slice(b",\"nextCursor\":");
        write_json(out, c);
    }
    out.extend_from_slice(b",\"Resources\":[");
}

pub fn list_tail(out: &mut Vec<u8>) {
    out.extend_from_slice(b"]}");
}
