//! The ingest thread of an import: read → map → validate → screen duplicates on a
//! blocking thread, numbering accepted users and sending them to the dispatcher in
//! chunks through a bounded channel (backpressure: the file is read no faster than
//! users are sent). What it learns on the way — groups, managers that come later in the
//! file, rejected externalIds — is handed to the phases after users.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ingest::{ingest, IngestError, IngestOptions, RowOutcome};
use super::rejects::RejectSink;
use super::screen::Duplicates;
use super::worker::Job;
use crate::mapping::MappingSpec;

/// What the ingest thread learned, for the phases after users.
#[derive(Default)]
pub(super) struct Ingested {
    pub(super) rows: u64,
    pub(super) rejected: BTreeMap<&'static str, u64>,
    /// Group displayName → member sequence numbers.
    pub(super) groups: BTreeMap<String, Vec<u32>>,
    /// Managers that appear later in the file than their reports.
    pub(super) forward_managers: Vec<Deferred>,
    /// Users whose manager is not among the accepted rows: nothing will be set.
    pub(super) unresolved: Vec<Deferred>,
    pub(super) unresolved_managers: u64,
    /// externalIds of rejected rows: still in the export, so never "missing".
    pub(super) rejected_ids: Vec<String>,
}

/// A manager to set by PATCH once both users exist.
pub(super) struct Deferred {
    pub(super) seq: u32,
    pub(super) manager: u32,
    pub(super) row: u64,
    pub(super) external_id: Box<str>,
    pub(super) content_hash: u64,
}

/// Users per message from the reader thread to the dispatcher.
pub(super) const JOB_CHUNK: usize = 64;

/// The dispatcher's end of the reader's channel: chunks in, one user at a time out.
/// `recv` is cancel-safe (it is polled in a `select!`): a user is taken from the chunk
/// only when it is returned.
pub(super) struct JobFeed {
    rx: mpsc::Receiver<Vec<Job>>,
    chunk: std::vec::IntoIter<Job>,
}

impl JobFeed {
    fn new(rx: mpsc::Receiver<Vec<Job>>) -> Self {
        JobFeed {
            rx,
            chunk: Vec::new().into_iter(),
        }
    }

    pub(super) async fn recv(&mut self) -> Option<Job> {
        loop {
            if let Some(j) = self.chunk.next() {
                return Some(j);
            }
            self.chunk = self.rx.recv().await?.into_iter();
        }
    }
}

/// Starts the ingest thread: users come out of the returned feed, what it learned out of
/// the handle once the file is read.
pub(super) fn start(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    mut rejects: RejectSink,
    concurrency: usize,
) -> (JobFeed, JoinHandle<Result<Ingested, IngestError>>) {
    // Users travel to the dispatcher JOB_CHUNK at a time: one wake-up of the reader
    // thread per chunk rather than per user (each was a futex round trip on cores the
    // target shares).
    let (tx, rx) = mpsc::channel::<Vec<Job>>((concurrency.max(16) * 4).div_ceil(JOB_CHUNK).max(2));

    let (path_owned, spec_owned, opts_owned) = (path.to_path_buf(), spec.clone(), opts.clone());
    let reader = tokio::task::spawn_blocking(move || -> Result<Ingested, IngestError> {
        let mut out = Ingested::default();
        let mut dups = Duplicates::for_input(&path_owned);
        // externalId → sequence number, keyed by a 64-bit fingerprint (as the duplicate
        // index is): 16 bytes a row instead of ~64 with the String, which made this map
        // the largest thing in a 1M-row import.
        let key = |s: &str| {
            use std::hash::BuildHasher;
            foldhash::quality::FixedState::with_seed(0x5e9_u64).hash_one(s)
        };
        let mut seq_of: HashMap<u64, u32> = HashMap::new();
        let mut later: Vec<(Deferred, String)> = Vec::new();
        let mut next_seq = 0u32;
        ingest(&path_owned, &spec_owned, &opts_owned, |batch| {
            let mut chunk: Vec<Job> = Vec::with_capacity(JOB_CHUNK);
            for o in batch {
                out.rows += 1;
                match dups.screen(o) {
                    RowOutcome::User(u) => {
                        let seq = next_seq;
                        next_seq += 1;
                        seq_of.insert(key(u.external_id()), seq);
                        for g in u.groups() {
                            out.groups.entry(g.to_string()).or_default().push(seq);
                        }
                        let manager = match u.manager() {
                            Some(m) => match seq_of.get(&key(m)) {
                                Some(&ms) => Some(ms),
                                None => {
                                    later.push((
                                        Deferred {
                                            seq,
                                            manager: 0,
                                            row: u.row,
                                            external_id: u.external_id().into(),
                                            content_hash: u.content_hash(),
                                        },
                                        m.to_string(),
                                    ));
                                    None
                                }
                            },
                            None => None,
                        };
                        chunk.push(Job {
                            seq,
                            user: u,
                            manager,
                        });
                        if chunk.len() == JOB_CHUNK {
                            tx.blocking_send(std::mem::replace(
                                &mut chunk,
                                Vec::with_capacity(JOB_CHUNK),
                            ))
                            .map_err(|_| "the dispatcher stopped".to_string())?;
                        }
                    }
                    RowOutcome::Rejected(r) => {
                        if let Some(id) = &r.external_id {
                            out.rejected_ids.push(id.clone());
                        }
                        rejects.take(&r)?
                    }
                }
            }
            if !chunk.is_empty() {
                tx.blocking_send(chunk)
                    .map_err(|_| "the dispatcher stopped".to_string())?;
            }
            Ok(())
        })?;
        out.rejected = rejects.finish()?;
        for (mut d, m) in later {
            match seq_of.get(&key(&m)) {
                Some(&ms) => {
                    d.manager = ms;
                    out.forward_managers.push(d)
                }
                None => {
                    out.unresolved_managers += 1;
                    out.unresolved.push(d);
                }
            }
        }
        Ok(out)
    });
    (JobFeed::new(rx), reader)
}
