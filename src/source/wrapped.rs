//! Exports that are one JSON object wrapping the array of records, as HR APIs answer:
//! BambooHR's report API sends `{"title": …, "fields": […], "employees": [{…}, …]}`.
//! Read line by line as NDJSON such a file is a column of broken rows; read as one
//! object it is the array under its one key of records.

use std::io::{BufRead, Read};
use std::path::Path;

use serde_json::Value;

use super::SourceError;

/// What a file that starts with `{` is.
pub enum Shape {
    /// One object per line.
    Ndjson,
    /// One object holding the records under `key`, re-encoded as a JSON array.
    Wrapped { key: String, array: Vec<u8> },
}

/// Keys under which HR and directory APIs put their records.
const RECORD_KEYS: &[&str] = &[
    "employees",
    "workers",
    "users",
    "people",
    "members",
    "records",
    "data",
    "items",
    "results",
    "Resources",
    "entries",
    "rows",
];

/// Whether `v` is an array of records (objects), empty arrays included.
fn records(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().all(Value::is_object) && a.iter().any(Value::is_object))
}

/// Looks at a `{`-file: NDJSON unless the whole file is one object (several lines, or
/// a single line holding an array of records).
pub fn shape(path: &Path) -> Result<Shape, SourceError> {
    let p = path.display().to_string();
    let read_err = |source| SourceError::Read {
        path: p.clone(),
        source,
    };
    let mut r = super::open(path)?;
    // The first two non-blank lines decide for the usual NDJSON file; only a file that
    // is not one is read whole.
    let mut text = Vec::new();
    let mut line_starts = Vec::new();
    while line_starts.len() < 2 {
        let start = text.len();
        if r.read_until(b'\n', &mut text).map_err(read_err)? == 0 {
            break;
        }
        if text[start..].iter().any(|b| !b.is_ascii_whitespace()) {
            line_starts.push(start);
        }
    }
    let first_end = line_starts.get(1).copied().unwrap_or(text.len());
    let first = &text[line_starts.first().copied().unwrap_or(0)..first_end];
    let first_is_object = serde_json::from_slice::<Value>(first).is_ok_and(|v| v.is_object());
    let one_line = line_starts.len() < 2;
    if first_is_object && !one_line {
        return Ok(Shape::Ndjson);
    }
    r.read_to_end(&mut text).map_err(read_err)?;
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&text) else {
        // Neither NDJSON with a readable first line nor one object: NDJSON, whose
        // reader rejects the broken rows one by one.
        return Ok(Shape::Ndjson);
    };
    let mut keys: Vec<&String> = doc
        .iter()
        .filter(|(_, v)| records(v))
        .map(|(k, _)| k)
        .collect();
    // Beside the records, APIs send arrays of metadata (BambooHR's `fields`): a key
    // that names records wins when it is the only one.
    if keys.len() > 1 {
        let named: Vec<&String> = keys
            .iter()
            .copied()
            .filter(|k| RECORD_KEYS.iter().any(|r| r.eq_ignore_ascii_case(k)))
            .collect();
        // ...unless another array holds records of the same shape (contractors beside
        // employees): then there is no telling which to import.
        let shape_of = |k: &str| {
            doc[k][0]
                .as_object()
                .map(|o| o.keys().cloned().collect::<std::collections::BTreeSet<_>>())
        };
        if let [one] = named.as_slice() {
            let same = keys
                .iter()
                .filter(|k| *k != one)
                .any(|k| shape_of(k) == shape_of(one));
            if !same {
                keys = named;
            }
        }
    }
    match keys.as_slice() {
        // A single record on a single line is NDJSON of one row.
        [] if one_line => Ok(Shape::Ndjson),
        [] => Err(SourceError::Format {
            path: p,
            detail: format!(
                "the file is one JSON object with no array of records (its keys: {}); an export is an array of objects, one object per line, or an object wrapping one such array",
                doc.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }),
        [k] => Ok(Shape::Wrapped {
            key: (*k).clone(),
            array: serde_json::to_vec(&doc[k.as_str()]).unwrap_or_default(),
        }),
        many => Err(SourceError::Format {
            path: p,
            detail: format!(
                "the file is one JSON object with several arrays of records ({}); extract the one to import, e.g. jq '.{}' FILE > records.json",
                many.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
                many[0]
            ),
        }),
    }
}

/// The note an import prints for a wrapped export, `None` for any other file.
pub fn note(path: &Path) -> Option<String> {
    if super::detect(path).ok()? != super::InputFormat::Ndjson {
        return None;
    }
    match shape(path).ok()? {
        Shape::Wrapped { key, .. } => Some(format!(
            "{} is one JSON object; reading the records of its '{key}' array",
            path.display()
        )),
        Shape::Ndjson => None,
    }
}
