//! Latency and outcome recording shared by import and bench: one HdrHistogram per
//! operation kind (1 µs to 60 s, 3 significant digits), kept by a single owner — workers
//! send it small events and never share a lock on metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

pub mod live;
pub(crate) mod sample;
pub(crate) mod stats;
pub mod threshold;
pub mod timeline;

/// The operations an import or a benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    CreateUser,
    LookupUser,
    UpdateUser,
    PatchManager,
    LookupGroup,
    CreateGroup,
    PatchMembers,
    GetUser,
    FilterUsers,
    ListPage,
    GetGroup,
    GetGroupNoMembers,
    RemoveMembers,
    PutUser,
    PatchUser,
    DeactivateUser,
    DeleteUser,
    /// A `/Bulk` request carrying many creates.
    Bulk,
    /// An Entra inbound provisioning `/bulkUpload` request: up to 50 users, answered 202.
    BulkUpload,
    /// A read of a `/bulkUpload` request's processing status.
    UploadStatus,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::CreateUser => "create_user",
            Op::LookupUser => "lookup_user",
            Op::UpdateUser => "update_user",
            Op::PatchManager => "patch_manager",
            Op::LookupGroup => "lookup_group",
            Op::CreateGroup => "create_group",
            Op::PatchMembers => "patch_members",
            Op::GetUser => "get_user",
            Op::FilterUsers => "filter_users",
            Op::ListPage => "list_page",
            Op::GetGroup => "get_group",
            Op::GetGroupNoMembers => "get_group_no_members",
            Op::RemoveMembers => "remove_members",
            Op::PutUser => "put_user",
            Op::PatchUser => "patch_user",
            Op::DeactivateUser => "deactivate_user",
            Op::DeleteUser => "delete_user",
            Op::Bulk => "bulk",
            Op::BulkUpload => "bulk_upload",
            Op::UploadStatus => "upload_status",
        }
    }

    pub const ALL: [Op; 20] = [
        Op::CreateUser,
        Op::LookupUser,
        Op::UpdateUser,
        Op::PatchManager,
        Op::LookupGroup,
        Op::CreateGroup,
        Op::PatchMembers,
        Op::GetUser,
        Op::FilterUsers,
        Op::ListPage,
        Op::GetGroup,
        Op::GetGroupNoMembers,
        Op::RemoveMembers,
        Op::PutUser,
        Op::PatchUser,
        Op::DeactivateUser,
        Op::DeleteUser,
        Op::Bulk,
        Op::BulkUpload,
        Op::UploadStatus,
    ];

    /// Position in [`Op::ALL`]: a table index on hot paths instead of a search.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// 1 µs to 60 s at 3 significant digits: the range and precision every histogram here
/// shares, so any two can be added.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

/// The aggregator every run records through, import and bench alike: per-operation
/// histograms of response time, service time and send lag (one sample per attempt) over
/// time under the tags every run shares (the interval log `scimload report` reads), the
/// live view of `--metrics-listen`, and an import's error counts by status and scimType.
/// One owner: workers and lanes hand it samples.
#[derive(Debug)]
pub struct Recorder {
    pub errors: BTreeMap<String, u64>,
    pub timeline: timeline::Timeline,
    tags: sample::Tags,
    /// An instant and its epoch ms: samples carry instants, the interval log epoch time.
    origin: (std::time::Instant, u64),
    /// `--metrics-listen`: the same requests, as live counters and buckets.
    pub live: Option<std::sync::Arc<live::Live>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            errors: BTreeMap::new(),
            timeline: timeline::Timeline::new(Duration::from_secs(1)),
            tags: sample::Tags::default(),
            origin: (
                std::time::Instant::now(),
                timeline::epoch_ms(std::time::SystemTime::now()),
            ),
            live: None,
        }
    }
}

impl Recorder {
    /// A recorder that also feeds the live view of `--metrics-listen`.
    pub fn with_live(live: Option<std::sync::Arc<live::Live>>) -> Recorder {
        Recorder {
            live,
            ..Recorder::default()
        }
    }

    /// A recorder into `timeline` whose instant `origin.0` stands for epoch ms
    /// `origin.1` (a benchmark's schedule origin, shared by every shard of a run).
    pub(crate) fn continuing(
        timeline: timeline::Timeline,
        origin: (std::time::Instant, u64),
        live: Option<std::sync::Arc<live::Live>>,
    ) -> Recorder {
        Recorder {
            errors: BTreeMap::new(),
            timeline,
            tags: sample::Tags::default(),
            origin,
            live,
        }
    }

    /// Epoch ms of `at`.
    pub(crate) fn epoch_ms(&self, at: std::time::Instant) -> u64 {
        self.origin.1 + at.saturating_duration_since(self.origin.0).as_millis() as u64
    }

    /// Records one answered (or failed) attempt in the interval log, at its answer's
    /// time, and in the live view.
    pub(crate) fn sample(&mut self, s: &sample::Sample) {
        let at = self.epoch_ms(s.timing.done);
        self.tags.record(&mut self.timeline, at, s);
        if let Some(l) = &self.live {
            let (response, service, lag) = s.timing.times();
            l.lock()
                .observe(s.op, s.timing.status, response, service, Some(lag));
        }
    }

    /// One attempt of `op` that an import sent; `error` is its key in the error table
    /// when it failed (`"429"`, `"409 uniqueness"`, `"transport: timeout"`).
    pub fn attempt(&mut self, op: Op, timing: &sample::Timing, error: Option<&str>) {
        self.sample(&sample::Sample::new(op, *timing));
        if let Some(l) = &self.live {
            l.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(k) = error {
            *self.errors.entry(k.to_string()).or_default() += 1;
        }
    }

    /// Counts an error that is not an attempt's answer (one operation of a /Bulk reply,
    /// a status the target reported later): in the error table, and over time under
    /// `all.error.<key>`, which no operation's figures include.
    pub fn error(&mut self, key: String) {
        // A tag holds no spaces or commas.
        let tag: String = format!("all.error.{key}")
            .chars()
            .map(|c| if c == ' ' || c == ',' { '_' } else { c })
            .collect();
        let now = timeline::epoch_ms(std::time::SystemTime::now());
        self.timeline.record(&tag, now, 1);
        if let Some(l) = &self.live {
            l.lock().run_error(&key);
        }
        *self.errors.entry(key).or_default() += 1;
    }

    /// Per-operation statistics of everything recorded: computed from the interval log,
    /// exactly as `scimload report` computes them from the log it is written to, so the
    /// summary and the report cannot disagree.
    pub fn summary(&self, elapsed: Duration) -> BTreeMap<String, stats::OpStats> {
        let Some((from, to)) = self.timeline.span() else {
            return BTreeMap::new();
        };
        stats::operations(&self.timeline, from, to, elapsed.as_secs_f64()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_index_matches_the_table_and_names_round_trip() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Op::from_name(op.as_str()), Some(*op));
        }
    }
}
