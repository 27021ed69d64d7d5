//! The one reply type of every exchange (the pooled client's and the load connections'):
//! status and body, and — when the caller asks for them — the headers that steer an
//! import (Retry-After and rate-limit resets, ETag, Location, request-id), read once
//! from the answer's head without parsing the body.

use std::time::Duration;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, ETAG, LOCATION};

use crate::scim::error::ErrorBody;

/// An HTTP answer: the one reply type of the pooled client and the load connections.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub body: bytes::Bytes,
    /// How long a refused request waits: `Retry-After`, else the reset of a spent
    /// limit (see `ratelimit`).
    pub retry_after: Option<Duration>,
    /// On an answer that went through: nothing is left of the service's limit until
    /// this long from now (`X-RateLimit-Remaining: 0` and its reset).
    pub exhausted: Option<Duration>,
    pub etag: Option<String>,
    pub location: Option<String>,
    /// The service's id for this request (`request-id`, as Microsoft Graph sends it):
    /// what an asynchronous answer (202) is traced by.
    pub request_id: Option<String>,
}

impl Reply {
    /// Status, body and the headers an import reads.
    pub fn with_headers(status: u16, headers: &HeaderMap, body: bytes::Bytes) -> Self {
        let header = |n| {
            headers
                .get(n)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (retry_after, exhausted) =
            super::ratelimit::read(headers, std::time::SystemTime::now());
        Reply {
            status,
            retry_after,
            exhausted,
            etag: header(ETAG),
            location: header(LOCATION),
            request_id: header(HeaderName::from_static("request-id")),
            body,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The SCIM Error body, when the server sent one.
    pub fn error(&self) -> Option<ErrorBody> {
        (!self.is_success())
            .then(|| serde_json::from_slice(&self.body).ok())
            .flatten()
    }

    /// The `id` of the resource an answer carries (its body), else the last segment of
    /// its Location.
    pub fn resource_id(&self) -> Option<String> {
        id_in(&self.body).or_else(|| {
            self.location
                .as_deref()
                .and_then(|l| l.rsplit('/').next())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    }

    /// `scimType` of a SCIM Error body.
    pub fn scim_type(&self) -> Option<String> {
        self.error()
            .and_then(|e| e.scim_type)
            .map(|t| t.as_str().to_string())
    }
}

/// The `id` member of a SCIM resource body, found by walking the top-level members
/// and stepping over every other value without decoding it (strings are jumped with
/// memchr): a created user's answer is read for its id and nothing else. A typed serde
/// visitor that skips the rest was still 13% of the importer's instructions — it checks
/// every byte of every skipped string — and this reads as far as the id. Anything it
/// cannot walk (an escaped key, a malformed body) goes to serde, which decides.
pub fn id_in(body: &[u8]) -> Option<String> {
    match top_level_string(body, b"id") {
        Ok(id) => id.filter(|s| !s.is_empty()),
        Err(Unsure) => id_by_serde(body),
    }
}

fn id_by_serde(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Id>(body)
        .ok()?
        .id
        .map(|c| c.into_owned())
        .filter(|s| !s.is_empty())
}

/// The walk met something it does not decide on its own.
struct Unsure;

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The closing quote of the string opening at `start`, and whether it holds escapes.
fn string_end(b: &[u8], start: usize) -> Result<(usize, bool), Unsure> {
    let mut j = start + 1;
    let mut escaped = false;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..).ok_or(Unsure)?).ok_or(Unsure)?;
        if b[k] == b'"' {
            return Ok((k, escaped));
        }
        escaped = true;
        j = k + 2;
    }
}

/// The index just past the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> Result<usize, Unsure> {
    match b.get(i).ok_or(Unsure)? {
        b'"' => Ok(string_end(b, i)?.0 + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j).ok_or(Unsure)? {
                    b'"' => {
                        j = string_end(b, j)?.0 + 1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let end = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| i + n);
            if end == i {
                Err(Unsure)
            } else {
                Ok(end)
            }
        }
    }
}

/// The string value of member `key` of the top-level object: `Ok(None)` when the
/// object has no such member or its value is not a string (serde's answer too).
fn top_level_string(b: &[u8], key: &[u8]) -> Result<Option<String>, Unsure> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(Unsure);
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'"') => {}
            Some(b'}') => return Ok(None),
            _ => return Err(Unsure),
        }
        let (k_end, k_escaped) = string_end(b, i)?;
        if k_escaped {
            return Err(Unsure);
        }
        let k = &b[i + 1..k_end];
        i = skip_ws(b, k_end + 1);
        if b.get(i) != Some(&b':') {
            return Err(Unsure);
        }
        i = skip_ws(b, i + 1);
        if k == key {
            if b.get(i) != Some(&b'"') {
                return Ok(None);
            }
            let (v_end, escaped) = string_end(b, i)?;
            return if escaped {
                serde_json::from_slice::<String>(&b[i..=v_end])
                    .map(Some)
                    .map_err(|_| Unsure)
            } else {
                std::str::from_utf8(&b[i + 1..v_end])
                    .map(|s| Some(s.to_string()))
                    .map_err(|_| Unsure)
            };
        }
        i = skip_ws(b, skip_value(b, i)?);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(None),
            _ => return Err(Unsure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk agrees with serde on every body, found early, late, escaped, absent,
    /// not a string, nested ids that are not the resource's, and malformed input.
    #[test]
    fn ids_are_read_as_serde_reads_them() {
        let bodies: &[&str] = &[
            r#"{"id":"abc","userName":"x"}"#,
            r#" { "schemas" : ["urn:x"], "meta": {"id": "no", "a": [1, {"id": "deep"}]}, "id" : "late" } "#,
            r#"{"name":{"givenName":"a\"}b"},"emails":[{"value":"]["}],"id":"after-tricky"}"#,
            r#"{"id":"esc\u0041ped\"q"}"#,
            r#"{"userName":"x","active":true,"n":-1.5e3,"z":null}"#,
            r#"{"id":42}"#,
            r#"{"id":""}"#,
            r#"{"\u0069d":"escaped-key"}"#,
            r#"{"id":"unterminated"#,
            r#"[{"id":"not-an-object"}]"#,
            "",
            "not json",
        ];
        for b in bodies {
            assert_eq!(id_in(b.as_bytes()), id_by_serde(b.as_bytes()), "{b}");
        }
        // The well-formed ones are decided by the walk itself, not by the fallback.
        for b in &bodies[..7] {
            assert!(top_level_string(b.as_bytes(), b"id").is_ok(), "{b}");
        }
        assert_eq!(
            id_in(bodies[1].as_bytes()).as_deref(),
            Some("late"),
            "the resource's id, not a nested one"
        );
        assert_eq!(id_in(bodies[3].as_bytes()).as_deref(), Some("escAped\"q"));
    }
}
