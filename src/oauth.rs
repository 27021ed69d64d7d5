//! The OAuth 2.0 client-credentials grant on the wire (RFC 6749 §4.4 and §5): the form
//! body of a token request, the JSON of its answer, and the form encoding both sides
//! need. Shared by the client's [`crate::client::auth`] and the token endpoint of
//! `scimload serve`, so the two cannot drift apart.

use serde::{Deserialize, Serialize};

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B):
/// unreserved characters stay, a space is `+`, everything else is `%XX`.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes one form value; `None` when a `%` escape is broken or the result is not UTF-8.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The pairs of a form body, decoded.
pub fn form_pairs(body: &str) -> Option<Vec<(String, String)>> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

/// A successful token answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds; some providers send it as a string.
    #[serde(
        default,
        deserialize_with = "seconds",
        serialize_with = "whole_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<f64>,
}

/// An error answer (RFC 6749 §5.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `expires_in` as an integer when it is one (RFC 6749 §5.1 shows integers; strict
/// clients parse nothing else).
fn whole_seconds<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) if x.fract() == 0.0 && *x >= 0.0 && *x < 1e15 => s.serialize_u64(*x as u64),
        Some(x) => s.serialize_f64(*x),
        None => s.serialize_none(),
    }
}

fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_round_trip() {
        for s in ["plain", "a b+c", "ü/=&%", "api://x/.default"] {
            assert_eq!(form_decode(&form_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        let p = form_pairs("grant_type=client_credentials&scope=a+b&x").unwrap();
        assert_eq!(p[1], ("scope".into(), "a b".into()));
        assert_eq!(p[2], ("x".into(), "".into()));
    }

    #[test]
    fn expires_in_as_number_or_string() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"3599"}"#).unwrap();
        assert_eq!(t.expires_in, Some(3599.0));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(t.expires_in, None);
    }
}
