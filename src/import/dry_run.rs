//! `scimload import --dry-run`: read, map and validate without sending. Every row ends as
//! a user or a reject (users + rejects = rows); rejects go to a CSV a person can fix and
//! re-import from, and the payloads can be written out as NDJSON for inspection.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::ingest::{ingest, IngestError, IngestOptions, RowOutcome};
use super::rejects::RejectSink;
use super::screen::Duplicates;
use crate::mapping::build::json_str;
use crate::mapping::MappingSpec;

#[derive(Debug, Clone, Default)]
pub struct DryRunOptions {
    pub rejects: Option<PathBuf>,
    pub emit: Option<PathBuf>,
    /// Count the manager references that point forward in the file (what an import must
    /// set by a PATCH after the creates); costs 8 bytes a row, so only plans ask.
    pub forward_managers: bool,
}

/// What a dry run found.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunSummary {
    pub file: String,
    pub format: String,
    pub rows: u64,
    pub users: u64,
    pub rejected: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    pub groups: u64,
    pub memberships: u64,
    pub users_with_manager: u64,
    pub largest_group: Option<(String, u64)>,
    /// Every group's member count (what a plan splits into member PATCHes).
    #[serde(skip)]
    pub group_sizes: Vec<u64>,
    /// Manager references to a row further down the file (with `forward_managers`).
    #[serde(skip)]
    pub forward_managers: Option<u64>,
    pub elapsed_seconds: f64,
    pub rows_per_second: f64,
}

pub fn run(
    path: &Path,
    spec: &MappingSpec,
    ingest_opts: &IngestOptions,
    opts: &DryRunOptions,
) -> Result<DryRunSummary, IngestError> {
    let t0 = Instant::now();
    let sink_err = |what: &str, p: &Path, e: std::io::Error| {
        format!("cannot write {what} {}: {e}", p.display())
    };
    let mut rejects = RejectSink::new(opts.rejects.as_deref())?;
    let mut emit = match &opts.emit {
        Some(p) => Some(BufWriter::with_capacity(
            1 << 20,
            File::create(p).map_err(|e| IngestError::Sink(sink_err("the payload file", p, e)))?,
        )),
        None => None,
    };
    let mut dups = Duplicates::for_input(path);
    let mut groups: HashMap<String, u64, foldhash::fast::RandomState> = HashMap::default();
    let (mut rows, mut users, mut memberships, mut with_manager) = (0u64, 0u64, 0u64, 0u64);
    let mut line = Vec::with_capacity(1024);
    // Fingerprints of the externalIds seen so far, and of managers not seen yet when
    // their report came (64-bit hashes: a collision in a million rows is ~1e-7 likely).
    let hasher = foldhash::quality::FixedState::with_seed(7);
    let fp = |s: &str| std::hash::BuildHasher::hash_one(&hasher, s);
    let mut seen: std::collections::HashSet<u64, foldhash::fast::RandomState> = Default::default();
    let mut ahead: Vec<u64> = Vec::new();
    let info = ingest(path, spec, ingest_opts, |batch| {
        for o in batch {
            rows += 1;
            match dups.screen(o) {
                RowOutcome::User(u) => {
                    users += 1;
                    with_manager += u.manager().is_some() as u64;
                    if opts.forward_managers {
                        seen.insert(fp(u.external_id()));
                        if let Some(m) = u.manager() {
                            let m = fp(m);
                            if !seen.contains(&m) {
                                ahead.push(m);
                            }
                        }
                    }
                    for g in u.groups() {
                        memberships += 1;
                        match groups.get_mut(g) {
                            Some(n) => *n += 1,
                            None => {
                                groups.insert(g.to_string(), 1);
                            }
                        }
                    }
                    if let Some(w) = emit.as_mut() {
                        line.clear();
                        line.extend_from_slice(
                            format!("{{\"row\":{},\"externalId\":", u.row).as_bytes(),
                        );
                        json_str(&mut line, u.external_id());
                        line.extend_from_slice(b",\"user\":");
                        line.extend_from_slice(u.body());
                        line.extend_from_slice(b",\"groups\":[");
                        for (i, g) in u.groups().enumerate() {
                            if i > 0 {
                                line.push(b',');
                            }
                            json_str(&mut line, g);
                        }
                        line.extend_from_slice(b"],\"manager\":");
                        match u.manager() {
                            Some(m) => json_str(&mut line, m),
                            None => line.extend_from_slice(b"null"),
                        }
                        line.extend_from_slice(b"}\n");
                        w.write_all(&line)
                            .map_err(|e| format!("cannot write the payload file: {e}"))?;
                    }
                }
                RowOutcome::Rejected(r) => rejects.take(&r)?,
            }
        }
        Ok(())
    })?;
    let by_code = rejects.finish()?;
    if let Some(mut w) = emit {
        w.flush()
            .map_err(|e| IngestError::Sink(format!("cannot write the payload file: {e}")))?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let largest = groups
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(n.as_str())))
        .map(|(n, c)| (n.clone(), *c));
    Ok(DryRunSummary {
        file: path.display().to_string(),
        format: format!("{:?}", info.format).to_lowercase(),
        rows,
        users,
        rejected: rows - users,
        rejects_by_reason: by_code,
        groups: groups.len() as u64,
        memberships,
        users_with_manager: with_manager,
        largest_group: largest,
        group_sizes: groups.values().copied().collect(),
        forward_managers: opts
            .forward_managers
            .then(|| ahead.iter().filter(|m| seen.contains(m)).count() as u64),
        elapsed_seconds: elapsed,
        rows_per_second: rows as f64 / elapsed.max(1e-9),
    })
}

impl DryRunSummary {
    /// The summary as a person reads it.
    pub fn human(&self) -> String {
        let mut s = format!(
            "dry run of {} ({}): {} rows -> {} users, {} rejected; {} groups, {} memberships, {} manager references\n",
            self.file, self.format, self.rows, self.users, self.rejected, self.groups, self.memberships, self.users_with_manager
        );
        for (code, n) in &self.rejects_by_reason {
            s.push_str(&format!("  rejected {code}: {n}\n"));
        }
        if let Some((g, n)) = &self.largest_group {
            s.push_str(&format!("  largest group: {g} ({n} members)\n"));
        }
        s.push_str(&format!(
            "  {:.2} s, {:.0} rows/s\n",
            self.elapsed_seconds, self.rows_per_second
        ));
        s
    }
}
