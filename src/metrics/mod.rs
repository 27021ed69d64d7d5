//! Latency and outcome recording shared by import and bench: one HdrHistogram per
//! operation kind (1 µs to 60 s, 3 significant digits), kept by a single owner — workers
//! send it small events and never share a lock on metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

pub mod live;
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

/// Percentiles of one operation, in milliseconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OpSummary {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Per-operation histograms plus error counts by status and scimType, and the same
/// latencies over time (the interval log an import leaves in its report).
#[derive(Debug)]
pub struct Recorder {
    hist: BTreeMap<Op, Histogram<u64>>,
    pub errors: BTreeMap<String, u64>,
    pub timeline: timeline::Timeline,
    /// `<op>.response` per operation, built once (no allocation per request).
    tags: Vec<String>,
    /// `--metrics-listen`: the same requests, as live counters and buckets.
    pub live: Option<std::sync::Arc<live::Live>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hist: BTreeMap::new(),
            errors: BTreeMap::new(),
            timeline: timeline::Timeline::new(Duration::from_secs(1)),
            tags: Op::ALL
                .iter()
                .map(|o| format!("{}.response", o.as_str()))
                .collect(),
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

    pub fn record(&mut self, op: Op, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let h = self.hist.entry(op).or_insert_with(new_histogram);
        // Saturated at the upper bound above, so recording cannot fail.
        let _ = h.record(us);
        // An import is a closed model: response time is service time.
        let now = timeline::epoch_ms(std::time::SystemTime::now());
        self.timeline.record(&self.tags[op.index()], now, us);
        if let Some(l) = &self.live {
            // The status of a failed request reaches the live view through `error`.
            l.lock().observe(op, Ok(0), us, us, None);
            l.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Counts an error answer: `"409 uniqueness"`, `"503"`, `"transport: timeout"`.
    pub fn error(&mut self, key: String) {
        // Also over time, so a report can show when the errors came (a tag holds no
        // spaces or commas).
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

    pub fn count(&self, op: Op) -> u64 {
        self.hist.get(&op).map_or(0, |h| h.len())
    }

    pub fn summary(&self, elapsed: Duration) -> BTreeMap<String, OpSummary> {
        let ms = |us: u64| us as f64 / 1000.0;
        self.hist
            .iter()
            .map(|(op, h)| {
                (
                    op.as_str().to_string(),
                    OpSummary {
                        requests: h.len(),
                        per_second: h.len() as f64 / elapsed.as_secs_f64().max(1e-9),
                        p50_ms: ms(h.value_at_quantile(0.5)),
                        p90_ms: ms(h.value_at_quantile(0.9)),
                        p99_ms: ms(h.value_at_quantile(0.99)),
                        p999_ms: ms(h.value_at_quantile(0.999)),
                        max_ms: ms(h.max()),
                    },
                )
            })
            .collect()
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
