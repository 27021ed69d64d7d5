//! Templates: `"{First} {Last}"`, with `{A|B}` taking the first non-empty column, and
//! the transforms and value maps applied after. Columns are resolved to CSV indices or
//! JSON keys once, when the mapping is compiled against the file.

use std::borrow::Cow;

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::MappingError;

/// Where a column's value is in a record.
#[derive(Debug, Clone)]
pub enum Col {
    Index(usize),
    Key(Box<str>),
}

/// One record, as the mapping reads it.
pub enum Record<'a> {
    Csv(&'a csv::StringRecord),
    Json(&'a simd_json::borrowed::Object<'a>),
}

impl<'a> Record<'a> {
    /// The trimmed value of a column; `None` when absent or blank.
    pub fn get(&self, c: &Col) -> Option<Cow<'a, str>> {
        let v: Cow<'a, str> = match (self, c) {
            (Record::Csv(r), Col::Index(i)) => Cow::Borrowed(r.get(*i)?),
            (Record::Json(o), Col::Key(k)) => match o.get(&**k)? {
                BorrowedValue::String(s) => match s {
                    Cow::Borrowed(b) => Cow::Borrowed(*b),
                    Cow::Owned(o) => Cow::Owned(o.clone()),
                },
                BorrowedValue::Static(simd_json::StaticNode::Null) => return None,
                other => Cow::Owned(other.encode()),
            },
            _ => return None,
        };
        let t = fast_trim(&v);
        if t.is_empty() {
            return None;
        }
        Some(match v {
            Cow::Borrowed(b) => Cow::Borrowed(fast_trim(b)),
            Cow::Owned(o) if o.len() == t.len() => Cow::Owned(o),
            Cow::Owned(o) => Cow::Owned(fast_trim(&o).to_string()),
        })
    }
}

/// `str::trim`, with a fast path for the usual value that starts and ends in ASCII.
fn fast_trim(s: &str) -> &str {
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

/// A row's column values, fetched and trimmed once however many templates use them.
pub type Cache<'a> = [Option<Cow<'a, str>>];

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

    /// Whether the template names no column (a fixed value).
    pub fn is_static(&self) -> bool {
        self.columns.is_empty()
    }

    /// Appends the template's value to `out`; `false` (and nothing meaningful appended)
    /// when every column it names is empty.
    pub fn eval_into(&self, cache: &Cache<'_>, out: &mut String) -> bool {
        let start = out.len();
        let mut any = self.is_static();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Cols(alts) => {
                    if let Some(v) = alts.iter().find_map(|&c| cache[c].as_deref()) {
                        out.push_str(v);
                        any = true;
                    }
                }
            }
        }
        any && !out[start..].trim().is_empty()
    }

    /// The template's value for a record: `None` when every column it names is empty.
    pub fn eval<'a>(&self, cache: &Cache<'a>) -> Option<Cow<'a, str>> {
        let pick = |alts: &[usize]| alts.iter().find_map(|&c| cache[c].clone());
        if let [Part::Cols(alts)] = self.parts.as_slice() {
            return pick(alts);
        }
        let mut out = String::with_capacity(48);
        let mut any = self.is_static();
        let mut missing = false;
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Cols(alts) => match pick(alts) {
                    Some(v) => {
                        out.push_str(&v);
                        any = true;
                    }
                    None => missing = true,
                },
            }
        }
        let t = out.trim();
        if !any || t.is_empty() {
            return None;
        }
        // Empty middle columns leave double spaces: "Ann  Lee" → "Ann Lee".
        if missing && t.contains("  ") {
            return Some(Cow::Owned(
                t.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
        }
        Some(Cow::Owned(if t.len() == out.len() {
            out
        } else {
            t.to_string()
        }))
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

    pub fn apply<'a>(self, v: Cow<'a, str>) -> Cow<'a, str> {
        match self {
            // Values are trimmed on read; kept for mapping files that say so.
            Transform::Trim => v,
            Transform::Lowercase if v.is_ascii() => match v.bytes().any(|b| b.is_ascii_uppercase())
            {
                true => Cow::Owned(v.to_ascii_lowercase()),
                false => v,
            },
            Transform::Uppercase if v.is_ascii() => match v.bytes().any(|b| b.is_ascii_lowercase())
            {
                true => Cow::Owned(v.to_ascii_uppercase()),
                false => v,
            },
            Transform::Lowercase if v.chars().any(char::is_uppercase) => {
                Cow::Owned(v.to_lowercase())
            }
            Transform::Uppercase if v.chars().any(char::is_lowercase) => {
                Cow::Owned(v.to_uppercase())
            }
            _ => v,
        }
    }
}
