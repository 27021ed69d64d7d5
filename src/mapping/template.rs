//! Templates: `"{First} {Last}"`, with `{A|B}` taking the first non-empty column, and
//! the transforms and value maps applied after. Columns are resolved to CSV indices or
//! JSON keys once, when the mapping is compiled against the file.

use simd_json::prelude::*;
use smallvec::SmallVec;

use super::MappingError;

/// Where a column's value is in a record.
#[derive(Debug, Clone)]
pub enum Col {
    Index(usize),
    Key(Box<str>),
    /// An optional column the file does not have: always blank.
    Absent,
}

/// One record, as the mapping reads it.
pub enum Record<'a> {
    Csv(crate::source::CsvRow<'a>),
    /// A JSON object on a simd-json tape: its scalar values are slices of the input,
    /// so reading them allocates nothing (a tree of `BorrowedValue`s would, per row).
    /// With it, the record's JSON text.
    Json(&'a simd_json::tape::Object<'a, 'a>, &'a [u8]),
}

/// A row's column values, fetched and trimmed once however many templates use them;
/// `""` when the column is absent or blank (the two mean the same to a mapping).
pub type Cache<'a> = [&'a str];

/// Slots of a record, held on the stack for the usual mapping (up to 32 columns).
pub type SlotValues<'a> = SmallVec<[&'a str; 32]>;

/// A JSON value as text when the record holds it as text: strings, and booleans as
/// written; `None` for null, numbers and nested values.
fn json_borrowed<'a>(v: simd_json::tape::Value<'_, 'a>) -> Option<&'a str> {
    if let Some(s) = v.into_string() {
        return Some(s);
    }
    match v.as_bool() {
        Some(true) => Some("true"),
        Some(false) => Some("false"),
        None => None,
    }
}

/// Why a JSON record cannot be mapped as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// A mapped key holds an object or an array.
    Nested {
        key: String,
        kind: &'static str,
    },
    Duplicate(String),
}

impl JsonProblem {
    pub fn rejected(self, row: u64) -> super::Rejected {
        let (field, code, reason) = match self {
            JsonProblem::Nested { key, kind } => (
                key.clone(),
                super::RejectCode::WrongType,
                format!("'{key}': expected a string, got {kind}; flatten the export or map a sub-field"),
            ),
            JsonProblem::Duplicate(key) => (
                key.clone(),
                super::RejectCode::DuplicateKey,
                format!("the key '{key}' appears twice in the record; JSON parsers disagree on which value wins, so fix the export"),
            ),
        };
        super::Rejected {
            row,
            external_id: None,
            field,
            code,
            reason,
            raw: Vec::new(),
        }
    }
}

/// The keys of one JSON record seen so far, to find a duplicate: a 256-bit filter on a
/// cheap hash, and a scan of the keys only when the filter says "maybe".
#[derive(Default)]
pub struct KeySeen<'k> {
    bits: [u64; 4],
    keys: SmallVec<[&'k str; 32]>,
}

impl<'k> KeySeen<'k> {
    /// `false` if `key` was seen before in this record.
    pub fn insert(&mut self, key: &'k str) -> bool {
        let b = key.as_bytes();
        let at = |i: usize| b.get(i).map_or(0, |&c| c as usize);
        let h = (b.len().wrapping_mul(31)
            ^ at(0).wrapping_mul(7)
            ^ at(b.len() / 2).wrapping_mul(17)
            ^ at(b.len().wrapping_sub(1)).wrapping_mul(131))
            & 255;
        let (w, m) = (h >> 6, 1u64 << (h & 63));
        if self.bits[w] & m != 0 && self.keys.contains(&key) {
            return false;
        }
        self.bits[w] |= m;
        self.keys.push(key);
        true
    }
}

impl<'a> Record<'a> {
    /// The trimmed values of `slots` into `out`. Values that are not in the record as
    /// text (JSON numbers, nested objects) are written into `owned` first. `true` when
    /// the whole record is plain ([`super::bytes::PLAIN`]): its values need no checks
    /// for escapes or control characters.
    pub fn fill<'x>(
        &self,
        slots: &[Col],
        hints: &mut Vec<u32>,
        owned: &'x mut String,
        out: &mut SlotValues<'x>,
    ) -> Result<bool, JsonProblem>
    where
        'a: 'x,
    {
        out.clear();
        match self {
            Record::Csv(r) => {
                out.extend(slots.iter().map(|c| match c {
                    Col::Index(i) => r.get(*i).map_or("", fast_trim),
                    Col::Key(_) | Col::Absent => "",
                }));
                Ok(!super::bytes::has_control_or(
                    r.text().as_bytes(),
                    super::bytes::PLAIN,
                ))
            }
            Record::Json(obj, raw) => {
                out.resize(slots.len(), "");
                owned.clear();
                let mut spans: SmallVec<[(usize, usize, usize); 4]> = SmallVec::new();
                let mut seen = KeySeen::default();
                for (pos, (k, v)) in obj.iter().enumerate() {
                    if !seen.insert(k) {
                        return Err(JsonProblem::Duplicate(k.to_string()));
                    }
                    let Some(slot) = slot_of(k, pos, slots, hints) else {
                        continue;
                    };
                    match json_borrowed(v) {
                        Some(t) => out[slot] = fast_trim(t),
                        None if v.is_null() => out[slot] = "",
                        // An object or array is never text: stringifying one made
                        // `["a@x.io"]` a userName.
                        None if v.as_array().is_some() || v.as_object().is_some() => {
                            let kind = if v.as_array().is_some() {
                                "an array"
                            } else {
                                "an object"
                            };
                            return Err(JsonProblem::Nested {
                                key: k.to_string(),
                                kind,
                            });
                        }
                        None => {
                            let start = owned.len();
                            owned.push_str(&v.encode());
                            spans.push((slot, start, owned.len()));
                        }
                    }
                }
                let owned: &'x String = owned;
                for (slot, a, b) in spans {
                    out[slot] = fast_trim(&owned[a..b]);
                }
                // Values written out (numbers) are looked at themselves.
                Ok(json_plain(raw)
                    && !super::bytes::has_control_or(owned.as_bytes(), super::bytes::PLAIN))
            }
        }
    }
}

/// In JSON text a quote, backslash or control inside a string is always escaped, so a
/// record without a backslash (or DEL, or a C1 lead byte) has plain strings.
pub(super) fn json_plain(raw: &[u8]) -> bool {
    !super::bytes::has_control_or(raw, [b'\\', 0x7f, 0xc2])
}

/// The slot of the key at position `pos` of a JSON record. `hints` remembers which slot
/// the key at each position of the last record was: exports write their keys in one
/// order, so one comparison usually finds it.
pub(super) fn slot_of(key: &str, pos: usize, slots: &[Col], hints: &mut Vec<u32>) -> Option<usize> {
    if hints.len() <= pos {
        hints.resize(pos + 1, u32::MAX);
    }
    let is = |s: usize| matches!(&slots[s], Col::Key(n) if super::bytes::same(n.as_bytes(), key.as_bytes()));
    match hints[pos] as usize {
        h if h < slots.len() && is(h) => Some(h),
        _ => {
            let s = (0..slots.len()).find(|&s| is(s))?;
            hints[pos] = s as u32;
            Some(s)
        }
    }
}

/// `str::trim`, with a fast path for the usual value that starts and ends in ASCII.
pub(super) fn fast_trim(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if f > b' ' && f < 0x80 && l > b' ' && l < 0x80 => s,
        (Some(&f), Some(&l)) if f < 0x80 && l < 0x80 => {
            s.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_whitespace())
        }
        _ => s.trim(),
    }
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    /// Alternatives, as slots of the row's column cache: the first non-empty wins.
    Cols(Vec<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Lowercase,
    Uppercase,
    Trim,
}

#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// Column names, for messages: which column was empty.
    pub columns: Vec<String>,
}

impl Template {
    /// Parses `text`, resolving names with `resolve` (which says what to do on a typo).
    pub fn parse(
        text: &str,
        resolve: &mut dyn FnMut(&str) -> Result<usize, MappingError>,
    ) -> Result<Self, MappingError> {
        let mut parts = Vec::new();
        let mut columns = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| MappingError::Template {
                    template: text.to_string(),
                    detail: "a '{' has no closing '}'".into(),
                })?
                + open;
            let mut alts = Vec::new();
            for name in rest[open + 1..close].split('|') {
                let name = name.trim();
                if name.is_empty() {
                    return Err(MappingError::Template {
                        template: text.to_string(),
                        detail: "empty column name in {}".into(),
                    });
                }
                alts.push(resolve(name)?);
                columns.push(name.to_string());
            }
            parts.push(Part::Cols(alts));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Template { parts, columns })
    }

    /// Whether the template's fixed text is plain ([`super::bytes::PLAIN`]).
    pub fn literals_plain(&self) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Lit(s) => !super::bytes::has_control_or(s.as_bytes(), super::bytes::PLAIN),
            Part::Cols(_) => true,
        })
    }

    /// Whether the template names no column (a fixed value).
    pub fn is_static(&self) -> bool {
        self.columns.is_empty()
    }

    /// The alternatives of a template that is one `{A|B}` and nothing else.
    pub fn single(&self) -> Option<&[usize]> {
        match self.parts.as_slice() {
            [Part::Cols(alts)] => Some(alts),
            _ => None,
        }
    }

    /// Appends a group name to `out` (bytes of UTF-8); `false` (and nothing meaningful
    /// appended) when every column it names is empty.
    pub fn eval_into(&self, cache: &Cache<'_>, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let mut any = self.is_static();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Cols(alts) => {
                    if let Some(v) = alts.iter().map(|&c| cache[c]).find(|v| !v.is_empty()) {
                        out.extend_from_slice(v.as_bytes());
                        any = true;
                    }
                }
            }
        }
        any && !out[start..].trim_ascii().is_empty()
    }

    /// Appends the template's value to `text` and returns where it is, trimmed: `None`
    /// when every column it names is empty. Writing into one buffer per row instead of
    /// a `String` per value saves an allocation per composed attribute.
    pub fn eval_text(&self, cache: &Cache<'_>, text: &mut String) -> Option<(usize, usize)> {
        let start = text.len();
        let mut any = self.is_static();
        let mut missing = false;
        for p in &self.parts {
            match p {
                Part::Lit(s) => text.push_str(s),
                Part::Cols(alts) => match alts.iter().map(|&c| cache[c]).find(|v| !v.is_empty()) {
                    Some(v) => {
                        text.push_str(v);
                        any = true;
                    }
                    None => missing = true,
                },
            }
        }
        let t = fast_trim(&text[start..]);
        if !any || t.is_empty() {
            text.truncate(start);
            return None;
        }
        // Empty middle columns leave double spaces: "Ann  Lee" -> "Ann Lee".
        if missing && t.contains("  ") {
            let collapsed = t.split_whitespace().collect::<Vec<_>>().join(" ");
            text.truncate(start);
            text.push_str(&collapsed);
            return Some((start, text.len()));
        }
        // Where the trimmed text starts: `t` is a slice of `text`.
        let lead = t.as_ptr() as usize - text[start..].as_ptr() as usize;
        Some((start + lead, start + lead + t.len()))
    }
}

impl Transform {
    pub fn parse(s: &str) -> Result<Self, MappingError> {
        match s.to_ascii_lowercase().as_str() {
            "lowercase" | "lower" => Ok(Transform::Lowercase),
            "uppercase" | "upper" => Ok(Transform::Uppercase),
            "trim" => Ok(Transform::Trim),
            _ => Err(MappingError::Transform(s.to_string())),
        }
    }

    /// Whether the transform changes `v` (values are trimmed on read, so `trim` never
    /// does; it is kept for mapping files that say so).
    pub fn changes(self, v: &str) -> bool {
        match self {
            Transform::Trim => false,
            Transform::Lowercase => match super::bytes::wide_or_letter(v.as_bytes(), b'A') {
                (false, upper) => upper,
                (true, _) => v.chars().any(char::is_uppercase),
            },
            Transform::Uppercase => match super::bytes::wide_or_letter(v.as_bytes(), b'a') {
                (false, lower) => lower,
                (true, _) => v.chars().any(char::is_lowercase),
            },
        }
    }

    /// Appends the transformed `v` to `text`.
    pub fn push(self, v: &str, text: &mut String) {
        let start = text.len();
        match self {
            Transform::Trim => text.push_str(v),
            Transform::Lowercase if v.is_ascii() => {
                text.push_str(v);
                text[start..].make_ascii_lowercase();
            }
            Transform::Uppercase if v.is_ascii() => {
                text.push_str(v);
                text[start..].make_ascii_uppercase();
            }
            Transform::Lowercase => text.push_str(&v.to_lowercase()),
            Transform::Uppercase => text.push_str(&v.to_uppercase()),
        }
    }
}
