//! Writing a mapped row as a SCIM User (JSON bytes), straight into a buffer: a struct
//! and serde would allocate per field; this writes each value once.
//!
//! Each key is kept with the punctuation around it (`,"userName":"`) when the plan is
//! made, so a value costs two copies: its key fragment and its text.

use std::io::Write;

use super::target::{Place, TARGETS};
use crate::scim::urns;

/// Whether any byte of `b` must be escaped in a JSON string (`"`, `\\` or a control).
#[inline]
fn needs_escape(b: &[u8]) -> bool {
    super::bytes::has_control_or(b, [b'"', b'\\', b'"'])
}

/// The text of a JSON string with the escapes RFC 8259 requires, and its closing quote;
/// `check` false when the caller knows `s` holds nothing to escape.
#[inline]
fn json_tail(out: &mut Vec<u8>, s: &str, check: bool) {
    let b = s.as_bytes();
    if !check || !needs_escape(b) {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                let _ = write!(out, "\\u{:04x}", c);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// JSON string with the escapes RFC 8259 requires.
#[inline]
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    json_tail(out, s, true);
}

/// A target and the bytes written before its value.
type Field = (usize, Box<[u8]>);
/// An entry of a multi-valued attribute: target, what opens it, what closes it.
type Entry = (usize, Box<[u8]>, Box<[u8]>);

/// Which targets a mapping sets, grouped by where they are written, with their key
/// fragments: computed once per mapping so that writing a row visits only what the
/// mapping sets.
#[derive(Debug, Clone, Default)]
pub struct WritePlan {
    /// `,"key":"`
    top: Vec<Field>,
    /// `"key":"`, inside `name`.
    name: Vec<Field>,
    /// `"value":"` of an `emails` entry, and what closes it (`","type":"work"}`).
    emails: Vec<Entry>,
    phones: Vec<Entry>,
    /// Per address type (work, home, other, in that order): `"key":"` inside it.
    addresses: Vec<(&'static str, Vec<Field>)>,
    /// `"key":"`, inside the enterprise extension.
    enterprise: Vec<Field>,
}

fn inner(k: &str) -> Box<[u8]> {
    format!("\"{k}\":\"").into_bytes().into()
}

impl WritePlan {
    pub fn new(targets: impl IntoIterator<Item = usize>) -> Self {
        let mut p = WritePlan::default();
        let mut ts: Vec<usize> = targets.into_iter().collect();
        ts.sort_unstable();
        ts.dedup();
        let plural = |t: usize, kind: &str| {
            (
                t,
                b"{\"value\":\"".to_vec().into_boxed_slice(),
                format!(",\"type\":\"{kind}\"}}").into_bytes().into(),
            )
        };
        for t in ts {
            match TARGETS[t].place {
                Place::Top(k) => p.top.push((t, format!(",\"{k}\":\"").into_bytes().into())),
                Place::Name(k) => p.name.push((t, inner(k))),
                Place::Email(k) => p.emails.push(plural(t, k)),
                Place::Phone(k) => p.phones.push(plural(t, k)),
                Place::Address(ty, k) => match p.addresses.iter_mut().find(|(x, _)| *x == ty) {
                    Some((_, fields)) => fields.push((t, inner(k))),
                    None => p.addresses.push((ty, vec![(t, inner(k))])),
                },
                Place::Enterprise(k) => p.enterprise.push((t, inner(k))),
                Place::Active | Place::Manager => {}
            }
        }
        p
    }
}

/// `open` + the set fields as `"k":"v"` separated by commas + `close`; nothing if none
/// is set.
fn object(
    out: &mut Vec<u8>,
    open: &[u8],
    close: &[u8],
    fields: &[Field],
    values: &[Option<&str>],
    check: bool,
) -> bool {
    let mut first = true;
    for (t, frag) in fields {
        let Some(v) = values[*t] else { continue };
        out.extend_from_slice(if first { open } else { b"," });
        first = false;
        out.extend_from_slice(frag);
        json_tail(out, v, check);
    }
    if !first {
        out.extend_from_slice(close);
    }
    !first
}

fn plural(out: &mut Vec<u8>, attr: &[u8], fields: &[Entry], values: &[Option<&str>], check: bool) {
    let mut first = true;
    for (t, open, close) in fields {
        let Some(v) = values[*t] else { continue };
        out.extend_from_slice(if first { attr } else { b"," });
        out.extend_from_slice(open);
        json_tail(out, v, check);
        // The first mapped value is the primary one (RFC 7643 §2.4: at most one).
        if first {
            out.extend_from_slice(b",\"primary\":true");
        }
        out.extend_from_slice(close);
        first = false;
    }
    if !first {
        out.push(b']');
    }
}

/// Writes the User for `values` (indexed like [`TARGETS`]); `active` already parsed;
/// `check` false when no value holds anything to escape ([`super::bytes::PLAIN`]).
pub fn write_user(
    out: &mut Vec<u8>,
    plan: &WritePlan,
    values: &[Option<&str>],
    active: Option<bool>,
    check: bool,
    (extra, extra_urns): (&[u8], &[String]),
) {
    let has_ent = plan.enterprise.iter().any(|(t, _)| values[*t].is_some());
    let schemas = if has_ent {
        SCHEMAS_WITH_ENTERPRISE.as_bytes()
    } else {
        SCHEMAS_CORE.as_bytes()
    };
    if extra_urns.is_empty() {
        out.extend_from_slice(schemas);
    } else {
        // The custom extensions' URNs join the schemas array (RFC 7643 §3).
        out.extend_from_slice(&schemas[..schemas.len() - 1]);
        for u in extra_urns {
            out.push(b',');
            json_str(out, u);
        }
        out.push(b']');
    }
    for (t, frag) in &plan.top {
        if let Some(v) = values[*t] {
            out.extend_from_slice(frag);
            json_tail(out, v, check);
        }
    }
    object(out, b",\"name\":{", b"}", &plan.name, values, check);
    match active {
        Some(true) => out.extend_from_slice(b",\"active\":true"),
        Some(false) => out.extend_from_slice(b",\"active\":false"),
        None => {}
    }
    plural(out, b",\"emails\":[", &plan.emails, values, check);
    plural(out, b",\"phoneNumbers\":[", &plan.phones, values, check);
    // One entry per address type with a value, in the table's order (work first).
    let mut open = false;
    for (ty, fields) in &plan.addresses {
        if !fields.iter().any(|(t, _)| values[*t].is_some()) {
            continue;
        }
        out.extend_from_slice(if open {
            b",{\"type\":\""
        } else {
            b",\"addresses\":[{\"type\":\""
        });
        open = true;
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",");
        object(out, b"", b"}", fields, values, check);
    }
    if open {
        out.push(b']');
    }
    // Custom attributes before the enterprise extension, which stays last.
    out.extend_from_slice(extra);
    if has_ent {
        out.extend_from_slice(ENTERPRISE_KEY.as_bytes());
        object(out, b"{", b"}", &plan.enterprise, values, check);
    }
    out.push(b'}');
}

const SCHEMAS_CORE: &str = concat!(
    "{\"schemas\":[\"",
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "\"]"
);
const SCHEMAS_WITH_ENTERPRISE: &str = concat!(
    "{\"schemas\":[\"",
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "\",\"",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "\"]"
);
const ENTERPRISE_KEY: &str = concat!(
    ",\"",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "\":"
);

/// The User body with the enterprise manager set to SCIM id `manager_id`. The writer
/// above puts the extension object last, so the manager goes just before its end.
pub fn with_manager(body: &[u8], manager_id: &str) -> Vec<u8> {
    let mut frag = Vec::with_capacity(64);
    frag.extend_from_slice(b"\"manager\":{\"value\":");
    json_str(&mut frag, manager_id);
    frag.push(b'}');
    // memmem with its searcher built once, not a window-by-window compare nor a new
    // searcher per call (building it was two thirds of this function's cost): this
    // runs for every user with a manager.
    static EXT_KEY: std::sync::LazyLock<(String, memchr::memmem::Finder<'static>)> =
        std::sync::LazyLock::new(|| {
            let key = format!("\"{}\":{{", urns::ENTERPRISE_USER);
            let finder = memchr::memmem::Finder::new(key.as_bytes()).into_owned();
            (key, finder)
        });
    let (ext_key, finder) = &*EXT_KEY;
    let mut out = Vec::with_capacity(body.len() + frag.len() + 80);
    if body.ends_with(b"}}") && finder.find(body).is_some() {
        out.extend_from_slice(&body[..body.len() - 2]);
        out.push(b',');
        out.extend_from_slice(&frag);
        out.extend_from_slice(b"}}");
        return out;
    }
    // No extension yet: add it, and its URN to `schemas`.
    let core = format!("\"schemas\":[\"{}\"]", urns::USER);
    let both = format!(
        "\"schemas\":[\"{}\",\"{}\"]",
        urns::USER,
        urns::ENTERPRISE_USER
    );
    let s = String::from_utf8_lossy(body).replacen(&core, &both, 1);
    let b = s.as_bytes();
    out.extend_from_slice(&b[..b.len() - 1]);
    out.push(b',');
    out.extend_from_slice(ext_key.as_bytes());
    out.extend_from_slice(&frag);
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_is_spliced_into_the_extension() {
        let ent = format!(
            r#"{{"schemas":["{}","{}"],"userName":"a","{}":{{"department":"X"}}}}"#,
            urns::USER,
            urns::ENTERPRISE_USER,
            urns::ENTERPRISE_USER
        );
        let v: serde_json::Value =
            serde_json::from_slice(&with_manager(ent.as_bytes(), "m-1")).unwrap();
        assert_eq!(v[urns::ENTERPRISE_USER]["manager"]["value"], "m-1");
        assert_eq!(v[urns::ENTERPRISE_USER]["department"], "X");
        let core = format!(r#"{{"schemas":["{}"],"userName":"a"}}"#, urns::USER);
        let v: serde_json::Value =
            serde_json::from_slice(&with_manager(core.as_bytes(), "m\"2")).unwrap();
        assert_eq!(v[urns::ENTERPRISE_USER]["manager"]["value"], "m\"2");
        assert_eq!(v["schemas"][1], urns::ENTERPRISE_USER);
    }

    #[test]
    fn schema_fragments_name_the_urns() {
        assert!(SCHEMAS_CORE.contains(urns::USER));
        assert!(SCHEMAS_WITH_ENTERPRISE.contains(urns::ENTERPRISE_USER));
        assert!(ENTERPRISE_KEY.contains(urns::ENTERPRISE_USER));
    }

    #[test]
    fn escapes_what_json_requires() {
        for s in ["", "plain", "a long plain value of many words", "x\u{7f}é"] {
            assert!(!needs_escape(s.as_bytes()), "{s}");
        }
        for s in [
            "\"",
            "12345678\\",
            "tab\there",
            "\u{1}",
            "0123456789abcdef\"x",
        ] {
            assert!(needs_escape(s.as_bytes()), "{s:?}");
        }
        let mut o = Vec::new();
        json_str(&mut o, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
