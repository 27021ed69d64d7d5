//! Flat JSON objects read in one pass, without a tape.
//!
//! HR exports as NDJSON are one flat object per line: keys and values that are strings,
//! integers, booleans or null. For those, finding the quotes is all the parsing there
//! is, and simd-json's general machinery (structural index, tape, string unescaping)
//! measured about 550 ns of the ~1,750 ns a row took. Anything else — an escape, a
//! nested value, a fraction, any syntax this reader does not accept — answers `false`,
//! and the record goes to simd-json, which parses or rejects it as before. Accepting
//! only what both read the same way keeps the two paths from disagreeing.

use memchr::memchr;

use crate::mapping::bytes::{find_byte, has_control_or};

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// An integer as JSON writes it (no leading zero, no fraction or exponent), short
/// enough that simd-json would print it back the same.
fn integer(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let digits_from = i + usize::from(b[i] == b'-');
    let mut j = digits_from;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let n = j - digits_from;
    let leading_zero = n > 1 && b[digits_from] == b'0';
    if n == 0 || n > 18 || leading_zero || matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    Some((&s[i..j], j))
}

/// Reads `s` as one flat JSON object, calling `each(position, key, value)` for its
/// pairs in order (`value` is `None` for null); `false` if it is anything else, in
/// which case `each` may have seen some pairs.
pub fn parse<'a>(s: &'a str, each: impl FnMut(usize, &'a str, Option<&'a str>)) -> bool {
    // No escape and no control byte anywhere (but a line's CR): then every quote opens
    // or closes a string.
    let b = s.as_bytes();
    let body = b.strip_suffix(b"\r").unwrap_or(b);
    if memchr(b'\\', b).is_some() || has_control_or(body, []) {
        return false;
    }
    read(s, each).is_some()
}

fn read<'a>(s: &'a str, mut each: impl FnMut(usize, &'a str, Option<&'a str>)) -> Option<()> {
    let b = s.as_bytes();
    // The string opening at `i`: its text, and the index after its closing quote. With
    // no escapes, that is the next quote.
    let string = |i: usize| -> Option<(&'a str, usize)> {
        let end = find_byte(b, i + 1, b'"')?;
        Some((&s[i + 1..end], end + 1))
    };
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    let mut pos = 0;
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key, next) = string(i)?;
        i = skip_ws(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let (value, next) = match b.get(i)? {
            b'"' => string(i).map(|(v, n)| (Some(v), n))?,
            b't' if b[i..].starts_with(b"true") => (Some("true"), i + 4),
            b'f' if b[i..].starts_with(b"false") => (Some("false"), i + 5),
            b'n' if b[i..].starts_with(b"null") => (None, i + 4),
            b'-' | b'0'..=b'9' => integer(s, i).map(|(v, n)| (Some(v), n))?,
            _ => return None,
        };
        each(pos, key, value);
        pos += 1;
        i = skip_ws(b, next);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(s: &str) -> Option<Vec<(String, Option<String>)>> {
        let mut p = Vec::new();
        let mut at = 0;
        let ok = parse(s, |pos, k, v| {
            assert_eq!(pos, at);
            at += 1;
            p.push((k.to_string(), v.map(str::to_string)));
        });
        ok.then_some(p)
    }

    #[test]
    fn reads_flat_objects_and_leaves_the_rest_to_simd_json() {
        let got =
            flat(" {\"a\" : \"x y\",\"n\":-12,\"t\":true,\"f\":false,\"z\":null,\"e\":\"\"}\r")
                .unwrap();
        let want = [
            ("a", Some("x y")),
            ("n", Some("-12")),
            ("t", Some("true")),
            ("f", Some("false")),
            ("z", None),
            ("e", Some("")),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        );
        assert_eq!(flat("{}"), Some(vec![]));
        for other in [
            r#"{"a":"x\"y"}"#,
            r#"{"a\u0041":1}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":012}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":"x"} trailing"#,
            r#"{"a":"x",}"#,
            r#"{"a" "x"}"#,
            r#"{"a":"x""#,
            r#"{"a":tru}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\t\"tab before\"}",
            r#"{"a":"x"}"b""#,
            r#"{"a":"x" "b":"y"}"#,
            "[1]",
            "1",
            "",
        ] {
            assert_eq!(flat(other), None, "{other}");
        }
    }
}
