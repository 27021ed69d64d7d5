//! Attribute values: bringing what clients send into the canonical form the schema
//! describes, and the string and dateTime comparisons SCIM needs.
//!
//! Canonical form means attribute names spelled as in the schema (clients may use any
//! case, RFC 7643 §2.1), read-only attributes dropped (RFC 7644 §3.5.1), `null` and empty
//! arrays treated as unassigned (§3.5.1), and booleans sent as strings ("False", as Entra
//! ID's default mode does) read as booleans.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::ScimError;
use super::schema::{find, AttrDef, AttrType, Mutability, ResourceTypeDef, COMMON_ATTRS};

pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

pub fn format_datetime(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Lower-cases for case-insensitive comparison; ASCII strings take the cheap path.
pub fn str_lower(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// Case-insensitive equality of `a` with an already lower-cased `b_lower`.
pub fn str_eq(a: &str, b_lower: &str) -> bool {
    if a.is_ascii() {
        a.eq_ignore_ascii_case(b_lower)
    } else {
        a.to_lowercase() == b_lower
    }
}

/// Whether read-only attributes in the input are an error or are silently dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnly {
    /// POST and PUT bodies: RFC 7644 §3.5.1 says read-only values SHALL be ignored.
    Ignore,
    /// A PATCH that names a read-only attribute: 400 mutability.
    Reject,
}

/// Brings one attribute value into canonical form. `Ok(None)` means unassigned.
pub fn normalize_value(
    def: &'static AttrDef,
    v: Value,
    ro: ReadOnly,
) -> Result<Option<Value>, ScimError> {
    if def.mutability == Mutability::ReadOnly {
        return match ro {
            ReadOnly::Ignore => Ok(None),
            ReadOnly::Reject => Err(ScimError::mutability(format!(
                "'{}' is read-only",
                def.name
            ))),
        };
    }
    if v.is_null() {
        return Ok(None);
    }
    if def.multi {
        let items = match v {
            Value::Array(a) => a,
            // A lone value where an array is expected: wrap it rather than fail.
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            if let Some(x) = normalize_single(def, it)? {
                out.push(x);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    normalize_single(def, v)
}

/// Normalises one value of `def` (an element, for a multi-valued attribute).
pub fn normalize_single(def: &'static AttrDef, v: Value) -> Result<Option<Value>, ScimError> {
    let bad = |expected: &str, got: &Value| {
        ScimError::invalid_value(format!(
            "'{}' must be {expected}, got {}",
            def.name,
            short(got)
        ))
    };
    Ok(Some(match def.ty {
        AttrType::Complex => {
            let Value::Object(m) = v else {
                if v.is_null() {
                    return Ok(None);
                }
                return Err(bad("an object", &v));
            };
            let mut out = Map::new();
            for (k, x) in m {
                let Some(sd) = def.sub_attr(&k) else { continue };
                if x.is_null() {
                    // Entra ID sends `"$ref": null` with every member it adds.
                    continue;
                }
                if sd.mutability == Mutability::ReadOnly {
                    // Dropped even in a PATCH: clients echo server-set sub-attributes such
                    // as manager.displayName back in their updates.
                    continue;
                }
                if let Some(x) = normalize_single(sd, x)? {
                    out.insert(sd.name.to_string(), x);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
        AttrType::Boolean => match v {
            Value::Bool(_) => v,
            Value::String(ref s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(ref s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(bad("a boolean", &v)),
        },
        AttrType::Integer => match v {
            Value::Number(ref n) if n.is_i64() || n.is_u64() => v,
            _ => return Err(bad("an integer", &v)),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => v,
            _ => return Err(bad("a number", &v)),
        },
        AttrType::DateTime => match v {
            Value::String(ref s) if parse_datetime(s).is_some() => v,
            _ => {
                return Err(bad(
                    "an RFC 3339 dateTime such as \"2011-05-13T04:42:34Z\"",
                    &v,
                ))
            }
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match v {
            Value::String(_) => v,
            _ => return Err(bad("a string", &v)),
        },
    }))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

/// Normalises a POST/PUT body into the attributes the server stores (without `id`,
/// `meta` and `schemas`, which the server sets), checking required attributes.
pub fn normalize_resource(
    rt: &'static ResourceTypeDef,
    input: Value,
) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = input else {
        return Err(ScimError::invalid_syntax(format!(
            "the body must be a JSON object representing a {}",
            rt.name
        )));
    };
    let mut out = Map::new();
    for (k, v) in input {
        if k.eq_ignore_ascii_case("schemas") {
            if !v.is_array() {
                return Err(ScimError::invalid_syntax(
                    "'schemas' must be an array of schema URNs",
                ));
            }
            continue;
        }
        if let Some(ext) = rt.extension(&k) {
            let Value::Object(m) = v else {
                if v.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_value(format!(
                    "'{k}' must be an object of {} attributes",
                    ext.name
                )));
            };
            let mut em = Map::new();
            for (ek, ev) in m {
                if let Some(d) = find(ext.attrs, &ek) {
                    if let Some(x) = normalize_value(d, ev, ReadOnly::Ignore)? {
                        em.insert(d.name.to_string(), x);
                    }
                }
            }
            if !em.is_empty() {
                out.insert(ext.id.to_string(), Value::Object(em));
            }
            continue;
        }
        let def = find(COMMON_ATTRS, &k).or_else(|| find(rt.schema.attrs, &k));
        let Some(def) = def else {
            // Unknown attributes are ignored, as most service providers do; Entra ID for one
            // sends attributes of its own alongside the standard ones.
            continue;
        };
        if let Some(x) = normalize_value(def, v, ReadOnly::Ignore)? {
            out.insert(def.name.to_string(), x);
        }
    }
    check_required(rt, &out)?;
    Ok(out)
}

/// RFC 7643 §7 `required`: every required attribute has a non-empty value.
pub fn check_required(rt: &ResourceTypeDef, attrs: &Map<String, Value>) -> Result<(), ScimError> {
    for d in rt.schema.attrs.iter().filter(|d| d.required) {
        let ok = match attrs.get(d.name) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(v) => !v.is_null(),
            None => false,
        };
        if !ok {
            return Err(ScimError::invalid_value(format!(
                "'{}' is required for a {}; add it to the request",
                d.name, rt.name
            )));
        }
    }
    Ok(())
}
