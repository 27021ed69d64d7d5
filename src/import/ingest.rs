//! Source → map: a reader thread fills batches into a bounded channel; each batch is
//! mapped in parallel with rayon, keeping row order, and handed to the caller. Batches go
//! back to the reader for reuse, so memory holds a few batches whatever the file size.

use std::path::Path;
use std::sync::mpsc;

use rayon::prelude::*;
use simd_json::prelude::*;

use crate::mapping::{
    MappedUser, Mapping, MappingError, MappingSpec, Record, RejectCode, Rejected,
};
use crate::source::{self, Batch, CsvRow, InputFormat, ReadReject, Records, SourceError};

/// What became of one row.
#[derive(Debug)]
pub enum RowOutcome {
    User(MappedUser),
    Rejected(Box<Rejected>),
}

impl RowOutcome {
    pub fn row(&self) -> u64 {
        match self {
            RowOutcome::User(u) => u.row,
            RowOutcome::Rejected(r) => r.row,
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: Option<InputFormat>,
    pub delimiter: u8,
    /// Rows per batch: large enough to amortise thread hand-offs, small enough that a
    /// few batches in flight stay a few MB.
    pub batch_rows: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            format: None,
            delimiter: b',',
            batch_rows: 8192,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("{0}")]
    Sink(String),
}

/// Format and columns found, for the summary.
#[derive(Debug, Clone)]
pub struct IngestInfo {
    pub format: InputFormat,
    pub columns: Vec<String>,
}

fn read_reject(r: &ReadReject) -> RowOutcome {
    let code = if r.reason.contains("UTF-8") {
        RejectCode::InvalidUtf8
    } else if r.reason.contains("fields") {
        RejectCode::WrongFieldCount
    } else if r.reason.contains("truncated") {
        RejectCode::BrokenJson
    } else {
        RejectCode::Unreadable
    };
    RowOutcome::Rejected(Box::new(Rejected {
        row: r.row,
        external_id: None,
        field: String::new(),
        code,
        reason: r.reason.clone(),
        raw: r.raw.clone(),
    }))
}

fn csv_raw(rec: CsvRow<'_>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(rec.iter());
    let mut v = w.into_inner().unwrap_or_default();
    while v.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        v.pop();
    }
    v
}

/// Per mapping thread: the copy simd-json parses in place, its buffers, and the tape
/// (kept empty between rows so its allocation is reused).
struct JsonScratch {
    buf: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: simd_json::Tape<'static>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<JsonScratch> = std::cell::RefCell::new(JsonScratch {
        buf: Vec::new(),
        buffers: simd_json::Buffers::default(),
        tape: simd_json::Tape(Vec::new()),
    });
}

fn map_json(mapping: &Mapping, text: &[u8], row: u64) -> RowOutcome {
    map_flat(mapping, text, row).unwrap_or_else(|| map_tape(mapping, text, row))
}

/// A flat object read in place, no copy, no tape; `None` for any other record.
fn map_flat(mapping: &Mapping, text: &[u8], row: u64) -> Option<RowOutcome> {
    let json = simdutf8::basic::from_utf8(text).ok()?;
    Some(match mapping.map_flat_json(json, row)? {
        Ok(u) => RowOutcome::User(u),
        Err(mut r) => {
            r.raw = text.to_vec();
            RowOutcome::Rejected(Box::new(r))
        }
    })
}

/// Any JSON record, through simd-json's tape.
fn map_tape(mapping: &Mapping, text: &[u8], row: u64) -> RowOutcome {
    let fail = |code, reason: String| {
        RowOutcome::Rejected(Box::new(Rejected {
            row,
            external_id: None,
            field: String::new(),
            code,
            reason,
            raw: text.to_vec(),
        }))
    };
    SCRATCH.with(|s| {
        let mut guard = s.borrow_mut();
        let JsonScratch {
            buf,
            buffers,
            tape: kept,
        } = &mut *guard;
        buf.clear();
        buf.extend_from_slice(text);
        let mut tape = std::mem::replace(kept, simd_json::Tape(Vec::new())).reset();
        let outcome = match simd_json::fill_tape(buf, buffers, &mut tape) {
            Ok(()) => match tape.as_value().as_object() {
                Some(o) => match mapping.map(&Record::Json(&o, text), row) {
                    Ok(u) => RowOutcome::User(u),
                    Err(mut r) => {
                        r.raw = text.to_vec();
                        RowOutcome::Rejected(Box::new(r))
                    }
                },
                None => fail(
                    RejectCode::NotAnObject,
                    "the record is not a JSON object; each record must be {\"column\": value, ...}"
                        .into(),
                ),
            },
            Err(_) if std::str::from_utf8(text).is_err() => fail(
                RejectCode::InvalidUtf8,
                "invalid UTF-8; save the export as UTF-8".into(),
            ),
            Err(e) => fail(RejectCode::BrokenJson, format!("broken JSON: {e}")),
        };
        *kept = tape.reset();
        outcome
    })
}

/// Maps one batch in parallel; outcomes come back in row order.
pub fn map_batch(mapping: &Mapping, b: &Batch) -> Vec<RowOutcome> {
    let mut out: Vec<RowOutcome> = match &b.records {
        Records::Csv(recs) => (0..recs.len())
            .into_par_iter()
            .zip(b.rows.par_iter())
            .with_min_len(256)
            .map(
                |(i, &row)| match mapping.map(&Record::Csv(recs.get(i)), row) {
                    Ok(u) => RowOutcome::User(u),
                    Err(mut r) => {
                        r.raw = csv_raw(recs.get(i));
                        RowOutcome::Rejected(Box::new(r))
                    }
                },
            )
            .collect(),
        Records::Json { buf, spans } => spans
            .par_iter()
            .zip(b.rows.par_iter())
            .with_min_len(256)
            .map(|(s, &row)| map_json(mapping, &buf[s.clone()], row))
            .collect(),
    };
    if !b.rejects.is_empty() {
        out.extend(b.rejects.iter().map(read_reject));
        out.sort_by_key(RowOutcome::row);
    }
    out
}

/// Streams `path` through `spec`, calling `each` with every batch of outcomes in row order.
/// Optional columns of `spec` that the file lacks, with the attributes each feeds.
pub fn absent_columns(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
) -> Result<Vec<(String, Vec<&'static str>)>, IngestError> {
    let format = match opts.format {
        Some(f) => f,
        None => source::detect(path)?,
    };
    let src = source::open_source(path, Some(format), opts.delimiter)?;
    let mapping = Mapping::compile(spec, src.columns(), format != InputFormat::Csv)?;
    Ok(mapping.absent_columns())
}

pub fn ingest(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    mut each: impl FnMut(Vec<RowOutcome>) -> Result<(), String>,
) -> Result<IngestInfo, IngestError> {
    let format = match opts.format {
        Some(f) => f,
        None => source::detect(path)?,
    };
    let mut src = source::open_source(path, Some(format), opts.delimiter)?;
    let columns = src.columns().to_vec();
    let mapping = Mapping::compile(spec, &columns, format != InputFormat::Csv)?;
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    for _ in 0..3 {
        let _ = empty_tx.send(src.new_batch());
    }
    let batch_rows = opts.batch_rows.max(1);
    let reader = std::thread::Builder::new()
        .name("scimload-reader".into())
        .spawn(move || -> Result<(), SourceError> {
            while let Ok(mut b) = empty_rx.recv() {
                if !src.fill(&mut b, batch_rows)? {
                    break;
                }
                source::ROWS_READ.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if full_tx.send(b).is_err() {
                    break;
                }
            }
            Ok(())
        })
        .map_err(|e| IngestError::Sink(format!("cannot start the reader thread: {e}")))?;
    // Mapping runs on its own thread (and the rayon pool), so the caller's sequential
    // work on batch k (duplicates, counters, output) overlaps the mapping of batch k+1.
    let (mapped_tx, mapped_rx) = mpsc::sync_channel::<Vec<RowOutcome>>(2);
    let mapper = std::thread::Builder::new()
        .name("scimload-mapper".into())
        .spawn(move || {
            for b in full_rx.iter() {
                let outcomes = map_batch(&mapping, &b);
                let _ = empty_tx.send(b);
                if mapped_tx.send(outcomes).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| IngestError::Sink(format!("cannot start the mapping thread: {e}")))?;
    let mut sink_err = None;
    for outcomes in mapped_rx.iter() {
        if let Err(e) = each(outcomes) {
            sink_err = Some(e);
            break;
        }
    }
    drop(mapped_rx);
    let _ = mapper.join();
    let read = reader
        .join()
        .map_err(|_| IngestError::Sink("the reader thread panicked".into()))?;
    if let Some(e) = sink_err {
        return Err(IngestError::Sink(e));
    }
    read?;
    Ok(IngestInfo { format, columns })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::presets;

    /// Every record of the JSON samples, clean and dirty, mapped both ways: the flat
    /// reader must never say something simd-json would not.
    #[test]
    fn flat_records_map_as_the_tape_maps_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
        let mut flat = 0;
        for (file, preset) in [
            ("generic-1k.ndjson", "generic"),
            ("generic-1k-dirty.ndjson", "generic"),
            ("bamboohr-1k.json", "bamboohr"),
            ("bamboohr-1k-dirty.json", "bamboohr"),
        ] {
            let path = root.join(file);
            let mut src = source::open_source(&path, None, b',').unwrap();
            let spec = presets::load(preset).unwrap();
            let m = Mapping::compile(&spec, src.columns(), true).unwrap();
            let mut b = src.new_batch();
            while src.fill(&mut b, 500).unwrap() {
                let Records::Json { buf, spans } = &b.records else {
                    panic!("{file} is JSON")
                };
                for (sp, &row) in spans.iter().zip(&b.rows) {
                    let text = &buf[sp.clone()];
                    let Some(fast) = map_flat(&m, text, row) else {
                        continue;
                    };
                    flat += 1;
                    match (fast, map_tape(&m, text, row)) {
                        (RowOutcome::User(a), RowOutcome::User(b)) => {
                            assert_eq!(a.body(), b.body(), "{file} row {row}");
                            assert_eq!(a.group_names(), b.group_names(), "{file} row {row}");
                            assert_eq!(a.manager(), b.manager(), "{file} row {row}");
                            assert_eq!(a.content_hash(), b.content_hash(), "{file} row {row}");
                        }
                        (RowOutcome::Rejected(a), RowOutcome::Rejected(b)) => {
                            assert_eq!(
                                (a.code, &a.reason),
                                (b.code, &b.reason),
                                "{file} row {row}"
                            );
                        }
                        (a, b) => panic!("{file} row {row}: {a:?} vs {b:?}"),
                    }
                }
            }
        }
        assert!(flat > 3_500, "most sample records are flat: {flat}");
    }
}
