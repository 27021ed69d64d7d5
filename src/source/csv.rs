//! CSV records with the `csv` crate: header row, any delimiter, UTF-8 BOM, CRLF and quoted
//! newlines. Records are read into reused `ByteRecord`s (no allocation per row once warm)
//! and checked for field count and UTF-8 here, so mapping can trust them.

use std::io::BufRead;

use ::csv::{ByteRecord, ReaderBuilder, StringRecord};

use super::{Batch, ReadReject, RecordSource, Records, SourceError};

pub struct CsvSource {
    reader: ::csv::Reader<Box<dyn BufRead + Send>>,
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
        batch.rows.clear();
        batch.rejects.clear();
        let mut used = 0;
        let width = self.columns.len();
        while batch.rows.len() + batch.rejects.len() < max {
            if recs.len() == used {
                recs.push(StringRecord::new());
            }
            // StringRecord <-> ByteRecord conversions move the buffer: no allocation once
            // the batch is warm, and UTF-8 is validated once per record.
            let mut rec = std::mem::take(&mut recs[used]).into_byte_record();
            let more = match self.reader.read_byte_record(&mut rec) {
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
                    recs[used] = StringRecord::from_byte_record_lossy(rec);
                    continue;
                }
            };
            if !more {
                recs[used] = StringRecord::from_byte_record_lossy(rec);
                return Ok(!(batch.rows.is_empty() && batch.rejects.is_empty()));
            }
            // A blank line is not a record.
            if rec.len() == 1 && rec[0].is_empty() {
                recs[used] = StringRecord::from_byte_record_lossy(rec);
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
                    raw: raw_line(&rec),
                });
                recs[used] = StringRecord::from_byte_record_lossy(rec);
                continue;
            }
            match StringRecord::from_byte_record(rec) {
                Ok(s) => {
                    recs[used] = s;
                    batch.rows.push(row);
                    used += 1;
                }
                Err(e) => {
                    let field = e.utf8_error().field();
                    let rec = e.into_byte_record();
                    batch.rejects.push(ReadReject {
                        row,
                        reason: format!(
                            "invalid UTF-8 in column {}; save the export as UTF-8",
                            self.columns[field]
                        ),
                        raw: raw_line(&rec),
                    });
                    recs[used] = StringRecord::from_byte_record_lossy(rec);
                }
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
            for (i, _) in b.rows.iter().enumerate() {
                rows.push(recs[i].iter().map(str::to_string).collect());
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
