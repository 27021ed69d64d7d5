//! CSV records: header row, any delimiter, UTF-8 BOM, CRLF, quoted fields and quoted
//! newlines.
//!
//! HR exports are mostly lines without a quote: those are split where they lie in the
//! read buffer (memchr for the line end, the delimiters and any quote) and copied once
//! into the batch, at about four times the speed of a general CSV state machine. A line
//! with a quote or a bare carriage return goes through `csv_core`, the `csv` crate's
//! parser, from the same position, so quoting rules are exactly the crate's. Records
//! are checked for field count and UTF-8 here, so mapping can trust them.

use std::io::BufRead;

use memchr::{memchr, memchr2, memchr_iter};

use super::{Batch, ReadReject, RecordSource, Records, SourceError};

/// The readable CSV records of one batch, in one string: each record's fields separated
/// by one ASCII byte (the delimiter for lines split in place).
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
            0 => self.start as usize,
            _ => self.ends[i - 1] as usize + 1,
        };
        self.text.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.ends.len()).map(|i| self.get(i).unwrap_or_default())
    }

    /// The record's fields with one ASCII separator between each two.
    pub fn text(&self) -> &'a str {
        let end = self.ends.last().map_or(self.start, |e| *e);
        self.text
            .get(self.start as usize..end as usize)
            .unwrap_or_default()
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

    /// Appends a record whose fields are `line` cut at `cuts` (the separator positions,
    /// ASCII bytes). `false` if it is not UTF-8: separators are ASCII, which never
    /// occurs inside a multi-byte character, so the line checks every field at once.
    fn push(&mut self, line: &[u8], cuts: &[usize]) -> bool {
        let Ok(s) = simdutf8::basic::from_utf8(line) else {
            return false;
        };
        let base = self.text.len();
        if base + s.len() > u32::MAX as usize {
            return false;
        }
        self.starts.push(base as u32);
        self.ends.extend(cuts.iter().map(|&c| (base + c) as u32));
        self.ends.push((base + s.len()) as u32);
        self.text.push_str(s);
        true
    }
}

/// Field `i` of fields written back to back, each ending at `ends[i]`.
fn field<'f>(fields: &'f [u8], ends: &[usize], i: usize) -> &'f [u8] {
    let from = if i == 0 { 0 } else { ends[i - 1] };
    &fields[from..ends[i]]
}

/// Where the last record read is.
enum Found {
    /// A line of the read buffer, split in place.
    Line { start: usize, end: usize },
    /// Parsed by `csv_core` into `fields` / `field_ends`.
    Parsed,
}

pub struct CsvSource {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    core: csv_core::Reader,
    delimiter: u8,
    /// Fields of the last record `csv_core` parsed, and where each ends.
    fields: Vec<u8>,
    field_ends: Vec<usize>,
    nfields: usize,
    /// Separator positions of the record being pushed.
    cuts: Vec<usize>,
    /// A record's fields joined by the separator (records `csv_core` parsed).
    joined: Vec<u8>,
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
        Self::with_buffer(r, delimiter, path, 1 << 20)
    }

    /// `buffer` bytes of read buffer to start with (grown for longer records).
    fn with_buffer(
        r: Box<dyn BufRead + Send>,
        delimiter: u8,
        path: String,
        buffer: usize,
    ) -> Result<Self, SourceError> {
        if matches!(delimiter, b'"' | b'\n' | b'\r') || !delimiter.is_ascii() {
            return Err(SourceError::Format {
                path,
                detail: format!(
                    "{:?} cannot separate CSV fields; use a comma, semicolon, tab or pipe",
                    delimiter as char
                ),
            });
        }
        let mut src = CsvSource {
            input: r,
            buf: vec![0; buffer.max(1)],
            pos: 0,
            end: 0,
            eof: false,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            fields: vec![0; 4096],
            field_ends: vec![0; 64],
            nfields: 0,
            cuts: Vec::new(),
            joined: Vec::new(),
            columns: Vec::new(),
            next_row: 1,
            path,
        };
        let read_err = |e: std::io::Error, path: &str| SourceError::Read {
            path: path.to_string(),
            source: e,
        };
        src.refill().map_err(|e| read_err(e, &src.path))?;
        if src.buf[..src.end].starts_with(b"\xef\xbb\xbf") {
            src.pos = 3;
        }
        let found = src.next_record().map_err(|e| read_err(e, &src.path))?;
        let header: Vec<Vec<u8>> = match found {
            None => Vec::new(),
            Some(f) => src.fields_of(&f).map(<[u8]>::to_vec).collect(),
        };
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(SourceError::Empty { path: src.path });
        }
        for (i, h) in header.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| SourceError::Format {
                path: src.path.clone(),
                detail: format!(
                    "header column {} is not UTF-8; save the export as UTF-8",
                    i + 1
                ),
            })?;
            src.columns
                .push(h.trim_start_matches('\u{feff}').trim().to_string());
        }
        Ok(src)
    }

    /// Moves what is left to the front of the buffer and reads more (growing the buffer
    /// for a record longer than it); `false` at the end of the input.
    fn refill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next record, skipping blank lines; `None` at the end of the input.
    fn next_record(&mut self) -> std::io::Result<Option<Found>> {
        loop {
            let avail = &self.buf[self.pos..self.end];
            let (len, next) = match memchr(b'\n', avail) {
                Some(i) => (i, i + 1),
                None if !self.eof => {
                    self.refill()?;
                    continue;
                }
                None if avail.is_empty() => return Ok(None),
                None => (avail.len(), avail.len()),
            };
            let mut line = &avail[..len];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if memchr2(b'"', b'\r', line).is_some() {
                return self.parse();
            }
            let start = self.pos;
            self.pos += next;
            if !line.is_empty() {
                return Ok(Some(Found::Line {
                    start,
                    end: start + line.len(),
                }));
            }
        }
    }

    /// One record through `csv_core`, from the current position.
    fn parse(&mut self) -> std::io::Result<Option<Found>> {
        use csv_core::ReadRecordResult as R;
        let (mut nout, mut nend) = (0, 0);
        // Records always start here at a record boundary; whatever state the last
        // parsed record left (a CR awaiting its LF) does not carry over.
        self.core.reset();
        loop {
            let (res, nin, o, e) = self.core.read_record(
                &self.buf[self.pos..self.end],
                &mut self.fields[nout..],
                &mut self.field_ends[nend..],
            );
            self.pos += nin;
            nout += o;
            nend += e;
            match res {
                // An empty input tells csv_core the file ended.
                R::InputEmpty => {
                    self.refill()?;
                }
                R::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                R::OutputEndsFull => self.field_ends.resize(self.field_ends.len() * 2, 0),
                R::Record => {
                    self.nfields = nend;
                    return Ok(Some(Found::Parsed));
                }
                R::End => return Ok(None),
            }
        }
    }

    fn fields_of<'s>(&'s self, f: &Found) -> Box<dyn Iterator<Item = &'s [u8]> + 's> {
        match *f {
            Found::Line { start, end } => {
                Box::new(self.buf[start..end].split(move |&c| c == self.delimiter))
            }
            Found::Parsed => Box::new((0..self.nfields).map(move |i| self.parsed_field(i))),
        }
    }

    /// Field `i` of the record `csv_core` parsed last.
    fn parsed_field(&self, i: usize) -> &[u8] {
        field(&self.fields, &self.field_ends, i)
    }

    /// The record as CSV, for the rejects file.
    fn raw(&self, f: &Found) -> Vec<u8> {
        if let Found::Line { start, end } = *f {
            return self.buf[start..end].to_vec();
        }
        let mut w = ::csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .from_writer(Vec::new());
        let _ = w.write_record(self.fields_of(f));
        let mut v = w.into_inner().unwrap_or_default();
        while v.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            v.pop();
        }
        v
    }

    /// Why a record that is not UTF-8 is not: the first broken column.
    fn utf8_reason(&self, f: &Found) -> String {
        let field = self
            .fields_of(f)
            .position(|v| std::str::from_utf8(v).is_err())
            .unwrap_or(0);
        format!(
            "invalid UTF-8 in column {}; save the export as UTF-8",
            self.columns[field]
        )
    }
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
        while batch.rows.len() + batch.rejects.len() < max {
            let found = match self.next_record() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(!(batch.rows.is_empty() && batch.rejects.is_empty())),
                Err(e) => {
                    return Err(SourceError::Read {
                        path: self.path.clone(),
                        source: e,
                    })
                }
            };
            let row = self.next_row;
            self.next_row += 1;
            self.cuts.clear();
            let pushed = match found {
                Found::Line { start, end } => {
                    let line = &self.buf[start..end];
                    self.cuts.extend(memchr_iter(self.delimiter, line));
                    self.cuts.len() + 1 == width && recs.push(line, &self.cuts)
                }
                Found::Parsed => {
                    self.joined.clear();
                    for i in 0..self.nfields {
                        if i > 0 {
                            self.cuts.push(self.joined.len());
                            self.joined.push(b',');
                        }
                        self.joined
                            .extend_from_slice(field(&self.fields, &self.field_ends, i));
                    }
                    self.nfields == width && recs.push(&self.joined, &self.cuts)
                }
            };
            if pushed {
                batch.rows.push(row);
                continue;
            }
            let found_fields = match found {
                Found::Line { .. } => self.cuts.len() + 1,
                Found::Parsed => self.nfields,
            };
            let reason = if found_fields != width {
                format!(
                    "expected {width} fields, found {found_fields}; check for a missing or extra delimiter"
                )
            } else {
                self.utf8_reason(&found)
            };
            batch.rejects.push(ReadReject {
                row,
                reason,
                raw: self.raw(&found),
            });
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

    /// What the `csv` crate makes of `data`, classified the way a source must.
    fn reference(data: &[u8], delim: u8) -> Read {
        let mut r = ::csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(true)
            .from_reader(data);
        let cols = r
            .byte_headers()
            .unwrap()
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect::<Vec<_>>();
        let (mut rows, mut rej, mut row) = (Vec::new(), Vec::new(), 0);
        for rec in r.byte_records() {
            let rec = rec.unwrap();
            if rec.len() == 1 && rec[0].is_empty() {
                continue;
            }
            row += 1;
            let fields: Result<Vec<String>, _> =
                rec.iter().map(|f| String::from_utf8(f.to_vec())).collect();
            match fields {
                Ok(f) if f.len() == cols.len() => rows.push(f),
                Ok(f) => rej.push((
                    row,
                    format!("expected {} fields, found {}", cols.len(), f.len()),
                )),
                Err(_) => rej.push((row, "invalid UTF-8".to_string())),
            }
        }
        (cols, rows, rej)
    }

    #[test]
    fn lines_split_in_place_read_as_the_csv_crate_reads_them() {
        let inputs: &[&[u8]] = &[
            b"id,name\n1,Ann\n2,Bob\n",
            b"id,name\r\n1,Ann\r\n\r\n2,\"Bob\r\nby\"\r\n3,Cy",
            b"\xef\xbb\xbfid,name\n1,\"A,nn\"\n2,\"\"\"q\"\"\"\n\n\n4,x\n",
            b"a,b\n1,2\r3,4\n5,\"6\"\r\n7,8,9\n,\n1\n\"\",\"\"\n",
            b"a,b\nJa\"ne,x\n\"open,never closed\nq,r\n",
            b"a,b\n\xff,1\nok,\xc3\xa9\n\"\xc3\",\xa9\n",
            b"a;b\nx;\"y;z\"\nlast;line",
        ];
        for data in inputs {
            let delim = if data.contains(&b';') { b';' } else { b',' };
            let (cols, rows, rej) = reference(data, delim);
            for buffer in [1, 2, 3, 7, 64, 1 << 20] {
                let src = CsvSource::with_buffer(Box::new(*data), delim, "t".into(), buffer);
                let mut s = src.unwrap();
                assert_eq!(
                    s.columns(),
                    cols,
                    "{buffer}: {:?}",
                    String::from_utf8_lossy(data)
                );
                let mut b = s.new_batch();
                let (mut got_rows, mut got_rej) = (Vec::new(), Vec::new());
                while s.fill(&mut b, 3).unwrap() {
                    let Records::Csv(recs) = &b.records else {
                        panic!()
                    };
                    got_rows.extend(
                        recs.iter()
                            .map(|r| r.iter().map(str::to_string).collect::<Vec<_>>()),
                    );
                    got_rej.extend(b.rejects.iter().map(|r| (r.row, r.reason.clone())));
                }
                let ctx = format!("buffer {buffer}: {:?}", String::from_utf8_lossy(data));
                assert_eq!(got_rows, rows, "{ctx}");
                assert_eq!(got_rej.len(), rej.len(), "{ctx}: {got_rej:?} vs {rej:?}");
                for ((gr, greason), (wr, wreason)) in got_rej.iter().zip(&rej) {
                    assert_eq!(gr, wr, "{ctx}");
                    let key = wreason.split(';').next().unwrap();
                    assert!(
                        greason.starts_with(key) || greason.contains(key),
                        "{ctx}: {greason} vs {wreason}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_character_split_by_a_delimiter_is_not_utf8() {
        // "\xc3,\xa9" is "é" once the delimiter is dropped: each field alone is broken.
        let (_, rows, rej) = read_all(b"a,b\nx\xc3,\xa9y\nok,\xc3\xa9\n", b',');
        assert_eq!(rows, [vec!["ok", "é"]]);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].0, 1);
        assert!(
            rej[0].1.contains("invalid UTF-8 in column a"),
            "{}",
            rej[0].1
        );
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
