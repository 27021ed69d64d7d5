//! CSV records with the `csv` crate: header row, any delimiter, UTF-8 BOM, CRLF and quoted
//! newlines. Records are read into one reused `ByteRecord`, checked for field count and
//! UTF-8 here, and copied into one text buffer per batch (no allocation per row once
//! warm, and the mapping reads a batch from a few contiguous pages instead of a record
//! each), so mapping can trust them.

use std::io::BufRead;

use ::csv::{ByteRecord, ReaderBuilder};

use super::{Batch, ReadReject, RecordSource, Records, SourceError};

/// The readable CSV records of one batch, their fields back to back in one string.
#[derive(Debug, Default)]
pub struct CsvRecords {
    text: String,
    /// Where each record starts in `text`.
    starts: Vec<u32>,
    /// The end of each field in `text`, `width` per record.
    ends: Vec<u32>,
    width: usize,
}

/// One record of a [`CsvRecords`].
#[derive(Debug, Clone, Copy)]
pub struct CsvRow<'a> {
    text: &'a str,
    start: u32,
    ends: &'a [u32],
}

impl<'a> CsvRow<'a> {
    /// Field `i`, as it was in the file (unquoted), if the record has it.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => self.start,
            _ => self.ends[i - 1],
        } as usize;
        self.text.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.ends.len()).map(|i| self.get(i).unwrap_or_default())
    }
}

impl CsvRecords {
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    pub fn get(&self, i: usize) -> CsvRow<'_> {
        CsvRow {
            text: &self.text,
            start: self.starts[i],
            ends: &self.ends[i * self.width..(i + 1) * self.width],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = CsvRow<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn clear(&mut self, width: usize) {
        self.text.clear();
        self.starts.clear();
        self.ends.clear();
        self.width = width;
    }

    /// Appends a record of `width` fields; `Err(field)` names the first field that is
    /// not UTF-8 (a character split by a delimiter counts as broken).
    fn push(&mut self, rec: &ByteRecord) -> Result<(), usize> {
        let bad_field = || {
            rec.iter()
                .position(|f| std::str::from_utf8(f).is_err())
                .unwrap_or(0)
        };
        // One SIMD pass over the record instead of one check per field.
        let s = simdutf8::basic::from_utf8(rec.as_slice()).map_err(|_| bad_field())?;
        let base = self.text.len();
        if base + s.len() > u32::MAX as usize {
            return Err(0);
        }
        let mut end = 0;
        for i in 0..rec.len() {
            end = rec.range(i).map_or(end, |r| r.end);
            if !s.is_char_boundary(end) {
                return Err(i);
            }
        }
        self.starts.push(base as u32);
        self.text.push_str(s);
        let mut end = 0;
        for i in 0..rec.len() {
            end = rec.range(i).map_or(end, |r| r.end);
            self.ends.push((base + end) as u32);
        }
        Ok(())
    }
}

pub struct CsvSource {
    reader: ::csv::Reader<Box<dyn BufRead + Send>>,
    rec: ByteRecord,
    columns: Vec<String>,
    next_row: u64,
    path: String,
}

impl CsvSource {
    pub fn new(
        r: Box<dyn BufRead + Send>,
        delimiter: u8,
        path: String,
    ) -> Result<Self, SourceError> {
        let mut reader = ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(r);
        let header = reader.byte_headers().map_err(|e| SourceError::Format {
            path: path.clone(),
            detail: format!("cannot read the header row: {e}"),
        })?;
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(SourceError::Empty { path });
        }
        let mut columns = Vec::with_capacity(header.len());
        for (i, h) in header.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| SourceError::Format {
                path: path.clone(),
                detail: format!(
                    "header column {} is not UTF-8; save the export as UTF-8",
                    i + 1
                ),
            })?;
            // A BOM the reader did not strip (e.g. after gzip) must not rename column 1.
            columns.push(h.trim_start_matches('\u{feff}').trim().to_string());
        }
        Ok(CsvSource {
            reader,
            rec: ByteRecord::new(),
            columns,
            next_row: 1,
            path,
        })
    }
}

fn raw_line(rec: &ByteRecord) -> Vec<u8> {
    let mut w = ::csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_byte_record(rec);
    let mut v = w.into_inner().unwrap_or_default();
    while v.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        v.pop();
    }
    v
}

impl RecordSource for CsvSource {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn new_batch(&self) -> Batch {
        Batch::new_csv()
    }

    fn fill(&mut self, batch: &mut Batch, max: usize) -> Result<bool, SourceError> {
        let Records::Csv(recs) = &mut batch.records else {
            unreachable!("a CSV source fills CSV batches")
        };
        let width = self.columns.len();
        recs.clear(width);
        batch.rows.clear();
        batch.rejects.clear();
        let rec = &mut self.rec;
        while batch.rows.len() + batch.rejects.len() < max {
            let more = match self.reader.read_byte_record(rec) {
                Ok(more) => more,
                Err(e) if e.is_io_error() => {
                    return Err(SourceError::Read {
                        path: self.path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })
                }
                Err(e) => {
                    batch.rejects.push(ReadReject {
                        row: self.next_row,
                        reason: format!("unreadable CSV record: {e}"),
                        raw: Vec::new(),
                    });
                    self.next_row += 1;
                    continue;
                }
            };
            if !more {
                return Ok(!(batch.rows.is_empty() && batch.rejects.is_empty()));
            }
            // A blank line is not a record.
            if rec.len() == 1 && rec[0].is_empty() {
                continue;
            }
            let row = self.next_row;
            self.next_row += 1;
            if rec.len() != width {
                batch.rejects.push(ReadReject {
                    row,
                    reason: format!(
                        "expected {width} fields, found {}; check for a missing or extra delimiter",
                        rec.len()
                    ),
                    raw: raw_line(rec),
                });
                continue;
            }
            match recs.push(rec) {
                Ok(()) => batch.rows.push(row),
                Err(field) => batch.rejects.push(ReadReject {
                    row,
                    reason: format!(
                        "invalid UTF-8 in column {}; save the export as UTF-8",
                        self.columns[field]
                    ),
                    raw: raw_line(rec),
                }),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (Vec<String>, Vec<Vec<String>>, Vec<(u64, String)>);

    fn read_all(data: &'static [u8], delim: u8) -> Read {
        let mut s = CsvSource::new(Box::new(data), delim, "t.csv".into()).unwrap();
        let cols = s.columns().to_vec();
        let mut b = s.new_batch();
        let mut rows = Vec::new();
        let mut rej = Vec::new();
        while s.fill(&mut b, 2).unwrap() {
            let Records::Csv(recs) = &b.records else {
                panic!()
            };
            for r in recs.iter() {
                rows.push(r.iter().map(str::to_string).collect());
            }
            rej.extend(b.rejects.iter().map(|r| (r.row, r.reason.clone())));
        }
        (cols, rows, rej)
    }

    #[test]
    fn bom_crlf_quoted_newlines_and_bad_rows() {
        let data = b"\xef\xbb\xbfid,name\r\n1,\"Ann\r\nMarie\"\r\n2,Bob,extra\r\n3,Jo\xffe\r\n\r\n4,\"Zo\"\"e\"\r\n";
        let (cols, rows, rej) = read_all(data, b',');
        assert_eq!(cols, ["id", "name"]);
        assert_eq!(rows, [vec!["1", "Ann\r\nMarie"], vec!["4", "Zo\"e"]]);
        assert_eq!(rej.len(), 2);
        assert_eq!(rej[0].0, 2);
        assert!(rej[0].1.contains("expected 2 fields, found 3"));
        assert_eq!(rej[1].0, 3);
        assert!(rej[1].1.contains("invalid UTF-8 in column name"));
    }

    #[test]
    fn other_delimiters_and_stray_quotes() {
        let (_, rows, _) = read_all(b"a;b\nx;Ja\"ne\n", b';');
        assert_eq!(
            rows,
            [vec!["x", "Ja\"ne"]],
            "a quote inside an unquoted field stays a character"
        );
    }
}
