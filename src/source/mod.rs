//! Reading HR exports: CSV, NDJSON and JSON arrays, gzip-compressed or not, in batches of
//! raw records that the mapping stage turns into SCIM payloads in parallel.
//!
//! A source never holds more than one batch: files of any size stream in constant
//! memory. A record that cannot be read (invalid UTF-8, wrong field count, broken JSON)
//! becomes a [`ReadReject`] with its row number; the rest of the file goes on.

mod csv;
pub(crate) mod flat_json;
mod json;
pub mod wrapped;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;

pub use self::csv::{CsvRecords, CsvRow, CsvSource};
pub use self::json::{JsonArraySource, NdjsonSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    Csv,
    Ndjson,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}; check the path and permissions")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is empty; an export needs at least a header row or one record")]
    Empty { path: String },
    #[error("{path}: {detail}")]
    Format { path: String, detail: String },
}

/// A record that could not be read at all.
#[derive(Debug, Clone)]
pub struct ReadReject {
    pub row: u64,
    pub reason: String,
    /// The record as it was in the file (lossily decoded for the rejects file).
    pub raw: Vec<u8>,
}

/// Raw records of one batch, in file order.
#[derive(Debug)]
pub enum Records {
    /// Parsed CSV records, UTF-8 checked once, in one buffer reused from batch to batch.
    Csv(CsvRecords),
    /// JSON texts, one span per record, in one buffer.
    Json {
        buf: Vec<u8>,
        spans: Vec<Range<usize>>,
    },
}

/// A batch: readable records with their row numbers, and the rows that failed to read.
#[derive(Debug)]
pub struct Batch {
    pub records: Records,
    /// Row number (1-based, header excluded) of each readable record.
    pub rows: Vec<u64>,
    pub rejects: Vec<ReadReject>,
}

impl Batch {
    pub fn new_csv() -> Self {
        Batch {
            records: Records::Csv(CsvRecords::default()),
            rows: Vec::new(),
            rejects: Vec::new(),
        }
    }
    pub fn new_json() -> Self {
        Batch {
            records: Records::Json {
                buf: Vec::new(),
                spans: Vec::new(),
            },
            rows: Vec::new(),
            rejects: Vec::new(),
        }
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.rejects.is_empty()
    }
    /// Rows this batch accounts for, readable or not.
    pub fn row_count(&self) -> usize {
        self.rows.len() + self.rejects.len()
    }
}

/// A stream of batches.
pub trait RecordSource: Send {
    /// Column names: the CSV header, or the keys of the first JSON record.
    fn columns(&self) -> &[String];
    /// Refills `batch` with up to `max` rows; `false` once the input is exhausted.
    fn fill(&mut self, batch: &mut Batch, max: usize) -> Result<bool, SourceError>;
    /// An empty batch of the right kind.
    fn new_batch(&self) -> Batch;
}

/// Opens a file, decompressing gzip (by its magic bytes, whatever the name).
/// Bytes read from input files so far (compressed bytes for gzip): a gauge for progress
/// and ETA against the file's size, nothing depends on it.
pub static BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Rows parsed from input files so far (readable ones; the readers run a few batches ahead
/// of the rest of the pipeline). With [`BYTES_READ`] and the file's size, an estimate of
/// the rows in a file before it is read to the end.
pub static ROWS_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many rows a file holds, estimated from the rows and bytes read since `start`:
/// gzip included (compressed bytes per row against the compressed size).
#[derive(Debug, Clone, Copy)]
pub struct RowEstimate {
    len: u64,
    rows0: u64,
    bytes0: u64,
}

impl RowEstimate {
    /// Starts counting for `path`; `None` if its size cannot be read.
    pub fn start(path: &Path) -> Option<Self> {
        use std::sync::atomic::Ordering::Relaxed;
        Some(RowEstimate {
            len: std::fs::metadata(path).ok()?.len(),
            rows0: ROWS_READ.load(Relaxed),
            bytes0: BYTES_READ.load(Relaxed),
        })
    }

    /// Rows in the whole file, judging by what was read so far (0 before any).
    pub fn rows(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let rows = ROWS_READ.load(Relaxed).saturating_sub(self.rows0);
        let bytes = BYTES_READ.load(Relaxed).saturating_sub(self.bytes0);
        match bytes {
            0 => 0,
            b => (rows as u128 * self.len as u128 / b as u128) as u64,
        }
    }
}

/// A file that counts what is read from it into [`BYTES_READ`].
struct Counted(File);

impl std::io::Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        BYTES_READ.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, SourceError> {
    let p = path.display().to_string();
    let f = Counted(File::open(path).map_err(|source| SourceError::Open {
        path: p.clone(),
        source,
    })?);
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r.fill_buf().map_err(|source| SourceError::Read {
        path: p.clone(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(r);
        return Ok(Box::new(BufReader::with_capacity(1 << 20, gz)));
    }
    Ok(Box::new(r))
}

/// The format of `path`: by extension (ignoring `.gz`), else by its first byte.
pub fn detect(path: &Path) -> Result<InputFormat, SourceError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".csv") || name.ends_with(".tsv") || name.ends_with(".txt") {
        return Ok(InputFormat::Csv);
    }
    if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        return Ok(InputFormat::Ndjson);
    }
    let mut r = open(path)?;
    let mut first = [0u8; 1];
    loop {
        match r.read(&mut first) {
            Ok(0) => {
                return Err(SourceError::Empty {
                    path: path.display().to_string(),
                })
            }
            Ok(_)
                if first[0].is_ascii_whitespace()
                    || first[0] == 0xEF
                    || first[0] == 0xBB
                    || first[0] == 0xBF =>
            {
                continue
            }
            Ok(_) => break,
            Err(source) => {
                return Err(SourceError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
    Ok(match first[0] {
        b'[' => InputFormat::Json,
        b'{' => InputFormat::Ndjson,
        _ if name.ends_with(".json") => InputFormat::Json,
        _ => InputFormat::Csv,
    })
}

/// Opens `path` as a record source.
pub fn open_source(
    path: &Path,
    format: Option<InputFormat>,
    delimiter: u8,
) -> Result<Box<dyn RecordSource>, SourceError> {
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    let name = path.display().to_string();
    let r = open(path)?;
    Ok(match format {
        InputFormat::Csv => Box::new(CsvSource::new(r, delimiter, name)?),
        // A `{`-file may be one object wrapping the records (an HR API's answer).
        InputFormat::Ndjson => match wrapped::shape(path)? {
            wrapped::Shape::Wrapped { array, .. } => Box::new(JsonArraySource::new(
                Box::new(std::io::Cursor::new(array)),
                name,
            )?),
            wrapped::Shape::Ndjson => Box::new(NdjsonSource::new(r, name)?),
        },
        InputFormat::Json => Box::new(JsonArraySource::new(r, name)?),
    })
}
