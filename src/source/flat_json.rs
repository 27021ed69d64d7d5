//! Flat JSON objects read in one pass, without a tape.
//!
//! HR exports as NDJSON are one flat object per line: keys and values that are strings,
//! integers, booleans or null. For those, finding the quotes is all the parsing there
//! is, and simd-json's general machinery (structural index, tape, string unescaping)
//! measured about 550 ns of the ~1,750 ns a row took. Anything else — an escape, a
//! nested value, a fraction, any syntax this reader does not accept — answers `None`,
//! and the record goes to simd-json, which parses or rejects it as before. Accepting
//! only what both read the same way keeps the two paths from disagreeing.

use memchr::memchr2;
use smallvec::SmallVec;

use crate::mapping::bytes::has_control_or;

/// A scalar JSON value as its text: strings without their quotes, integers and
/// booleans as written, null as `None`.
pub type FlatValue<'a> = Option<&'a str>;

/// The key/value pairs of one object, in order, on the stack for usual widths.
pub type FlatPairs<'a> = SmallVec<[(&'a str, FlatValue<'a>); 24]>;

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The string starting at the quote `b[i]`, and the index after its closing quote.
fn string(s: &str, i: usize) -> Option<(&str, usize)> {
    let rest = &s.as_bytes()[i + 1..];
    let end = memchr2(b'"', b'\\', rest)?;
    // An escape: simd-json unescapes it. A raw control character is not JSON.
    if rest[end] == b'\\' || has_control_or(&rest[..end], []) {
        return None;
    }
    Some((&s[i + 1..i + 1 + end], i + 2 + end))
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

/// Reads `s` as one flat JSON object into `pairs`; `false` if it is anything else.
pub fn parse<'a>(s: &'a str, pairs: &mut FlatPairs<'a>) -> bool {
    pairs.clear();
    read(s, pairs).is_some()
}

fn read<'a>(s: &'a str, pairs: &mut FlatPairs<'a>) -> Option<()> {
    let b = s.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key, next) = string(s, i)?;
        i = skip_ws(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let (value, next) = match b.get(i)? {
            b'"' => string(s, i).map(|(v, n)| (Some(v), n))?,
            b't' if b[i..].starts_with(b"true") => (Some("true"), i + 4),
            b'f' if b[i..].starts_with(b"false") => (Some("false"), i + 5),
            b'n' if b[i..].starts_with(b"null") => (None, i + 4),
            b'-' | b'0'..=b'9' => integer(s, i).map(|(v, n)| (Some(v), n))?,
            _ => return None,
        };
        pairs.push((key, value));
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
        let mut p = FlatPairs::new();
        parse(s, &mut p).then(|| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect()
        })
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
            "[1]",
            "1",
            "",
        ] {
            assert_eq!(flat(other), None, "{other}");
        }
    }
}
