//! JSON records: NDJSON (one object per line) and JSON arrays of objects.
//!
//! A JSON array of several GB cannot be parsed as one document in constant memory, so
//! [`JsonArraySource`] splits it into its elements with a small byte-level scanner
//! (tracking strings, escapes and nesting) and each element is parsed on its own by
//! simd-json in the mapping stage. A broken element is one rejected row, not a failed file.

use std::io::BufRead;
use std::ops::Range;

use simd_json::prelude::*;

use super::{Batch, ReadReject, RecordSource, Records, SourceError};

fn read_err(path: &str, e: std::io::Error) -> SourceError {
    SourceError::Read {
        path: path.to_string(),
        source: e,
    }
}

/// Keys of the first parseable object among `spans`, in file order.
fn keys_of_first(buf: &[u8], spans: &[Range<usize>]) -> Vec<String> {
    for s in spans {
        let text = &buf[s.clone()];
        let mut copy = text.to_vec();
        let keys: Option<Vec<String>> = match simd_json::to_borrowed_value(&mut copy) {
            Ok(v) => v
                .as_object()
                .map(|o| o.keys().map(|k| k.to_string()).collect()),
            Err(_) => None,
        };
        if let Some(keys) = keys {
            // The parsed object does not keep file order; recover it from the text.
            let mut ordered: Vec<(usize, String)> = keys
                .into_iter()
                .map(|k| {
                    let needle = format!("\"{k}\"");
                    let pos = text
                        .windows(needle.len())
                        .position(|w| w == needle.as_bytes())
                        .unwrap_or(usize::MAX);
                    (pos, k)
                })
                .collect();
            ordered.sort();
            return ordered.into_iter().map(|(_, k)| k).collect();
        }
    }
    Vec::new()
}

/// NDJSON: one record per non-blank line.
pub struct NdjsonSource {
    reader: Box<dyn BufRead + Send>,
    columns: Vec<String>,
    next_row: u64,
    path: String,
    /// Lines read ahead to learn the columns.
    pending: Option<Batch>,
}

impl NdjsonSource {
    pub fn new(reader: Box<dyn BufRead + Send>, path: String) -> Result<Self, SourceError> {
        let mut s = NdjsonSource {
            reader,
            columns: Vec::new(),
            next_row: 1,
            path,
            pending: None,
        };
        let mut first = Batch::new_json();
        s.read_into(&mut first, 64)?;
        if first.is_empty() {
            return Err(SourceError::Empty { path: s.path });
        }
        if let Records::Json { buf, spans } = &first.records {
            s.columns = keys_of_first(buf, spans);
        }
        s.pending = Some(first);
        Ok(s)
    }

    fn read_into(&mut self, batch: &mut Batch, max: usize) -> Result<bool, SourceError> {
        let Records::Json { buf, spans } = &mut batch.records else {
            unreachable!("JSON batch")
        };
        buf.clear();
        spans.clear();
        batch.rows.clear();
        batch.rejects.clear();
        while batch.rows.len() + batch.rejects.len() < max {
            let start = buf.len();
            let n = self
                .reader
                .read_until(b'\n', buf)
                .map_err(|e| read_err(&self.path, e))?;
            if n == 0 {
                break;
            }
            let mut end = buf.len();
            while end > start && matches!(buf[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
                end -= 1;
            }
            let mut s = start;
            if self.next_row == 1 && buf[s..end].starts_with(b"\xef\xbb\xbf") {
                s += 3;
            }
            if s == end {
                buf.truncate(start);
                continue;
            }
            spans.push(s..end);
            batch.rows.push(self.next_row);
            self.next_row += 1;
        }
        Ok(!batch.is_empty())
    }
}

impl RecordSource for NdjsonSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }
    fn new_batch(&self) -> Batch {
        Batch::new_json()
    }
    fn fill(&mut self, batch: &mut Batch, max: usize) -> Result<bool, SourceError> {
        if let Some(p) = self.pending.take() {
            *batch = p;
            return Ok(true);
        }
        self.read_into(batch, max)
    }
}

/// A JSON array of records, split element by element.
pub struct JsonArraySource {
    reader: Box<dyn BufRead + Send>,
    columns: Vec<String>,
    next_row: u64,
    path: String,
    started: bool,
    done: bool,
    pending: Option<Batch>,
}

impl JsonArraySource {
    pub fn new(reader: Box<dyn BufRead + Send>, path: String) -> Result<Self, SourceError> {
        let mut s = JsonArraySource {
            reader,
            columns: Vec::new(),
            next_row: 1,
            path,
            started: false,
            done: false,
            pending: None,
        };
        let mut first = Batch::new_json();
        s.read_into(&mut first, 64)?;
        // `[]` is an export of no rows (as a header-only CSV is); no `[` at all is an
        // empty file.
        if first.is_empty() && !s.started {
            return Err(SourceError::Empty { path: s.path });
        }
        if let Records::Json { buf, spans } = &first.records {
            s.columns = keys_of_first(buf, spans);
        }
        s.pending = Some(first);
        Ok(s)
    }

    fn byte(&mut self) -> Result<Option<u8>, SourceError> {
        let b = self
            .reader
            .fill_buf()
            .map_err(|e| read_err(&self.path, e))?;
        let Some(&c) = b.first() else { return Ok(None) };
        self.reader.consume(1);
        Ok(Some(c))
    }

    fn skip_ws(&mut self) -> Result<Option<u8>, SourceError> {
        loop {
            let b = self
                .reader
                .fill_buf()
                .map_err(|e| read_err(&self.path, e))?;
            let Some(&c) = b.first() else { return Ok(None) };
            if c.is_ascii_whitespace() || c == 0xEF || c == 0xBB || c == 0xBF {
                self.reader.consume(1);
                continue;
            }
            return Ok(Some(c));
        }
    }

    /// Copies one element into `out`; returns what ended it (`,` or `]`), or `None` at EOF.
    fn element(&mut self, out: &mut Vec<u8>) -> Result<Option<u8>, SourceError> {
        let mut depth = 0i32;
        let mut in_str = false;
        let mut esc = false;
        loop {
            // Scan the buffered bytes in bulk; only structure characters need a look.
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| read_err(&self.path, e))?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut i = 0;
            let mut end = None;
            while i < buf.len() {
                let c = buf[i];
                if in_str {
                    if esc {
                        esc = false;
                    } else if c == b'\\' {
                        esc = true;
                    } else if c == b'"' {
                        in_str = false;
                    }
                } else {
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        b',' | b']' if depth == 0 => {
                            end = Some(c);
                            break;
                        }
                        _ => {}
                    }
                }
                i += 1;
            }
            out.extend_from_slice(&buf[..i]);
            match end {
                Some(c) => {
                    self.reader.consume(i + 1);
                    return Ok(Some(c));
                }
                None => {
                    let n = buf.len();
                    self.reader.consume(n);
                }
            }
        }
    }

    fn read_into(&mut self, batch: &mut Batch, max: usize) -> Result<bool, SourceError> {
        let Records::Json { buf, spans } = &mut batch.records else {
            unreachable!("JSON batch")
        };
        let (mut b, mut sp) = (std::mem::take(buf), std::mem::take(spans));
        b.clear();
        sp.clear();
        batch.rows.clear();
        batch.rejects.clear();
        if !self.started {
            match self.skip_ws()? {
                Some(b'[') => {
                    self.byte()?;
                    self.started = true;
                }
                Some(_) => {
                    return Err(SourceError::Format {
                        path: self.path.clone(),
                        detail: "a JSON export must be an array of objects ([{...}, ...]); for one object per line use .ndjson".into(),
                    })
                }
                None => return Ok(false),
            }
        }
        while !self.done && batch.rows.len() + batch.rejects.len() < max {
            if self.skip_ws()? == Some(b']') {
                self.done = true;
                break;
            }
            let start = b.len();
            let ended = self.element(&mut b)?;
            let mut end = b.len();
            while end > start && b[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            let row = self.next_row;
            match ended {
                None => {
                    self.done = true;
                    if end > start {
                        batch.rejects.push(ReadReject {
                            row,
                            reason: "the JSON array ends in the middle of this record; the file is truncated".into(),
                            raw: b[start..end].to_vec(),
                        });
                        self.next_row += 1;
                    }
                    b.truncate(start);
                    break;
                }
                Some(c) => {
                    if end > start {
                        sp.push(start..end);
                        batch.rows.push(row);
                        self.next_row += 1;
                    }
                    if c == b']' {
                        self.done = true;
                    }
                }
            }
        }
        if let Records::Json { buf, spans } = &mut batch.records {
            *buf = b;
            *spans = sp;
        }
        Ok(!batch.is_empty())
    }
}

impl RecordSource for JsonArraySource {
    fn columns(&self) -> &[String] {
        &self.columns
    }
    fn new_batch(&self) -> Batch {
        Batch::new_json()
    }
    fn fill(&mut self, batch: &mut Batch, max: usize) -> Result<bool, SourceError> {
        if let Some(p) = self.pending.take() {
            *batch = p;
            return Ok(true);
        }
        self.read_into(batch, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(src: &mut dyn RecordSource) -> Vec<(u64, String)> {
        let mut b = src.new_batch();
        let mut out = Vec::new();
        while src.fill(&mut b, 3).unwrap() {
            if let Records::Json { buf, spans } = &b.records {
                for (r, s) in b.rows.iter().zip(spans) {
                    out.push((*r, String::from_utf8_lossy(&buf[s.clone()]).to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn array_elements_split_with_nested_values_and_tricky_strings() {
        let data: &'static [u8] =
            b" [ {\"a\":\"x,]\\\"y\",\"b\":[1,{\"c\":2}]} ,\n{\"a\":\"2\"}, 5 ,{\"a\":\"}\"}]";
        let mut s = JsonArraySource::new(Box::new(data), "t.json".into()).unwrap();
        assert_eq!(s.columns(), ["a", "b"]);
        let got = spans(&mut s);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].1, "{\"a\":\"x,]\\\"y\",\"b\":[1,{\"c\":2}]}");
        assert_eq!(got[2], (3, "5".to_string()));
        assert_eq!(got[3].1, "{\"a\":\"}\"}");
    }

    #[test]
    fn ndjson_skips_blank_lines_and_numbers_rows() {
        let data: &'static [u8] = b"{\"id\":1,\"n\":\"a\"}\r\n\n{\"id\":2}\n{broken\n";
        let mut s = NdjsonSource::new(Box::new(data), "t.ndjson".into()).unwrap();
        assert_eq!(s.columns(), ["id", "n"]);
        let got = spans(&mut s);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(got[2].1, "{broken");
    }
}
