//! The reject sink: every row the import does not send is counted by reason and, with
//! `--rejects FILE`, written as CSV a person can fix and re-import from (row number,
//! externalId, field, code, reason, the original row). Shared by the dry run, the import
//! and the inbound upload, so a reject reads the same whichever path found it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::ingest::IngestError;
use crate::mapping::Rejected;

/// Writes rejected rows as CSV: row, externalId, field, code, reason, original.
pub struct RejectsWriter {
    w: csv::Writer<BufWriter<File>>,
}

impl RejectsWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut w = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
        w.write_record(["row", "externalId", "field", "code", "reason", "original"])?;
        Ok(RejectsWriter { w })
    }
    pub fn write(&mut self, r: &Rejected) -> std::io::Result<()> {
        let original = String::from_utf8_lossy(&r.raw);
        self.w.write_record([
            r.row.to_string().as_str(),
            r.external_id.as_deref().unwrap_or(""),
            r.field.as_str(),
            r.code.as_str(),
            r.reason.as_str(),
            original.as_ref(),
        ])?;
        Ok(())
    }
    pub fn finish(mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// Where rejected rows go: counted by reason, and written to the rejects file if any.
pub struct RejectSink {
    pub by_code: BTreeMap<&'static str, u64>,
    writer: Option<RejectsWriter>,
}

impl RejectSink {
    pub fn new(path: Option<&Path>) -> Result<Self, IngestError> {
        let writer = match path {
            Some(p) => Some(RejectsWriter::create(p).map_err(|e| {
                IngestError::Sink(format!(
                    "cannot write the rejects file {}: {e}",
                    p.display()
                ))
            })?),
            None => None,
        };
        Ok(RejectSink {
            by_code: BTreeMap::new(),
            writer,
        })
    }

    pub fn take(&mut self, r: &Rejected) -> Result<(), String> {
        *self.by_code.entry(r.code.as_str()).or_default() += 1;
        match self.writer.as_mut() {
            Some(w) => w
                .write(r)
                .map_err(|e| format!("cannot write the rejects file: {e}")),
            None => Ok(()),
        }
    }

    pub fn finish(self) -> Result<BTreeMap<&'static str, u64>, IngestError> {
        if let Some(w) = self.writer {
            w.finish()
                .map_err(|e| IngestError::Sink(format!("cannot write the rejects file: {e}")))?;
        }
        Ok(self.by_code)
    }
}
