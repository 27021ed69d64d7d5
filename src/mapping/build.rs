//! Writing a mapped row as a SCIM User (JSON bytes), straight into a buffer: a struct
//! and serde would allocate per field; this writes each value once.

use std::io::Write;

use super::target::{Place, TARGETS};
use crate::scim::urns;

/// JSON string with the escapes RFC 8259 requires.
#[inline]
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // Almost every HR value needs no escape: check in one branch-free pass, copy in one.
    // A u8 accumulator with no early exit: LLVM turns this into SIMD compares.
    let mut bad = 0u8;
    for &c in b {
        bad |= (c < 0x20) as u8 | (c == b'"') as u8 | (c == b'\\') as u8;
    }
    if bad == 0 {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    out.push(b'"');
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

/// `,"k":` for a schema attribute name (plain ASCII, nothing to escape).
fn key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Which targets a mapping sets, grouped by where they are written: computed once per
/// mapping so that writing a row visits only what the mapping sets.
#[derive(Debug, Clone, Default)]
pub struct WritePlan {
    top: Vec<(usize, &'static str)>,
    name: Vec<(usize, &'static str)>,
    emails: Vec<(usize, &'static str)>,
    phones: Vec<(usize, &'static str)>,
    address: Vec<(usize, &'static str)>,
    enterprise: Vec<(usize, &'static str)>,
}

impl WritePlan {
    pub fn new(targets: impl IntoIterator<Item = usize>) -> Self {
        let mut p = WritePlan::default();
        let mut ts: Vec<usize> = targets.into_iter().collect();
        ts.sort_unstable();
        ts.dedup();
        for t in ts {
            match TARGETS[t].place {
                Place::Top(k) => p.top.push((t, k)),
                Place::Name(k) => p.name.push((t, k)),
                Place::Email(k) => p.emails.push((t, k)),
                Place::Phone(k) => p.phones.push((t, k)),
                Place::WorkAddress(k) => p.address.push((t, k)),
                Place::Enterprise(k) => p.enterprise.push((t, k)),
                Place::Active | Place::Manager => {}
            }
        }
        p
    }
}

fn object(
    out: &mut Vec<u8>,
    open: &[u8],
    close: &[u8],
    fields: &[(usize, &'static str)],
    values: &[Option<&str>],
) -> bool {
    let mut first = true;
    for &(t, k) in fields {
        let Some(v) = values[t] else { continue };
        out.extend_from_slice(if first { open } else { b"," });
        first = false;
        // Keys are schema names: plain ASCII, nothing to escape.
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, v);
    }
    if !first {
        out.extend_from_slice(close);
    }
    !first
}

fn plural(
    out: &mut Vec<u8>,
    attr: &str,
    fields: &[(usize, &'static str)],
    values: &[Option<&str>],
) {
    let mut first = true;
    for &(t, kind) in fields {
        let Some(v) = values[t] else { continue };
        if first {
            key(out, attr);
            out.push(b'[');
        } else {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"value\":");
        json_str(out, v);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.push(b'"');
        // The first mapped value is the primary one (RFC 7643 §2.4: at most one).
        if first {
            out.extend_from_slice(b",\"primary\":true");
        }
        out.push(b'}');
        first = false;
    }
    if !first {
        out.push(b']');
    }
}

/// Writes the User for `values` (indexed like [`TARGETS`]); `active` already parsed.
pub fn write_user(
    out: &mut Vec<u8>,
    plan: &WritePlan,
    values: &[Option<&str>],
    active: Option<bool>,
) {
    let has_ent = plan.enterprise.iter().any(|(t, _)| values[*t].is_some());
    out.extend_from_slice(b"{\"schemas\":[\"");
    out.extend_from_slice(urns::USER.as_bytes());
    if has_ent {
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(urns::ENTERPRISE_USER.as_bytes());
    }
    out.extend_from_slice(b"\"]");
    for &(t, k) in &plan.top {
        if let Some(v) = values[t] {
            key(out, k);
            json_str(out, v);
        }
    }
    object(out, b",\"name\":{", b"}", &plan.name, values);
    if let Some(a) = active {
        key(out, "active");
        out.extend_from_slice(if a { b"true" } else { b"false" });
    }
    plural(out, "emails", &plan.emails, values);
    plural(out, "phoneNumbers", &plan.phones, values);
    object(
        out,
        b",\"addresses\":[{\"type\":\"work\",",
        b"}]",
        &plan.address,
        values,
    );
    if has_ent {
        key(out, urns::ENTERPRISE_USER);
        object(out, b"{", b"}", &plan.enterprise, values);
    }
    out.push(b'}');
}

/// The User body with the enterprise manager set to SCIM id `manager_id`. The writer
/// above puts the extension object last, so the manager goes just before its end.
pub fn with_manager(body: &[u8], manager_id: &str) -> Vec<u8> {
    let mut frag = Vec::with_capacity(64);
    frag.extend_from_slice(b"\"manager\":{\"value\":");
    json_str(&mut frag, manager_id);
    frag.push(b'}');
    let ext_key = format!("\"{}\":{{", urns::ENTERPRISE_USER);
    let mut out = Vec::with_capacity(body.len() + frag.len() + 80);
    if body.windows(ext_key.len()).any(|w| w == ext_key.as_bytes()) && body.ends_with(b"}}") {
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
    fn escapes_what_json_requires() {
        let mut o = Vec::new();
        json_str(&mut o, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
