//! What an import will do, decided before it starts: the configuration every phase
//! reads (target, dialect, concurrency, retries, limits, what to do with missing users).
//! Its own file so the phases depend on it and not on the `run` that calls them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use super::preflight::SchemaCheck;
pub use super::readback::Verify;
use crate::client::dialect::Dialect;
use crate::client::RetryPolicy;

/// Whether to look a user up before creating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lookup {
    /// `GET /Users?filter=userName eq` before every create (what IdPs do).
    Always,
    /// Create directly; a fresh tenant goes fastest.
    Never,
    /// Create directly; on 409, look up and update (the default).
    OnConflict,
}

#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub base_url: String,
    /// TLS, HTTP version, credentials and headers of every request.
    pub client: crate::client::ClientOptions,
    pub concurrency: usize,
    pub lookup: Lookup,
    /// Request shapes: how lookups, updates and member changes are sent.
    pub dialect: &'static Dialect,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Members added per group PATCH.
    pub member_batch: usize,
    pub rejects: Option<PathBuf>,
    pub failed: Option<PathBuf>,
    /// The state database: skip unchanged rows, resume without duplicates.
    pub state: Option<PathBuf>,
    /// Users sent per second at most (`--rate`); `None`: as fast as `concurrency` allows.
    pub rate: Option<f64>,
    /// Slow every request down when the target answers 429, then climb back
    /// (`--no-adaptive` turns it off).
    pub adaptive: bool,
    /// Whether new users travel in `/Bulk` requests.
    pub bulk: BulkMode,
    /// Operations per Bulk request at most (else the target's maxOperations).
    pub bulk_size: Option<usize>,
    /// /Bulk requests in flight at once (`--bulk-in-flight`, at most `concurrency`).
    pub bulk_in_flight: usize,
    /// What to do with users the state knows but the export no longer has.
    pub missing: Missing,
    /// Refuse to act on missing users when they are more than this fraction of the
    /// users the state knows (a wrong or truncated file must not empty a directory).
    pub missing_limit: f64,
    /// Set (and notified) on Ctrl-C: stop sending, finish what is in flight, record it.
    pub interrupt: Option<Arc<Interrupt>>,
    /// Compare the mapping with the target's /Schemas before sending.
    pub schema_check: SchemaCheck,
    /// Read users back after the import and compare them with what was sent.
    pub verify: Verify,
    /// `--bulk auto`: how long each way is tried before the faster one is kept.
    pub bulk_trial: Duration,
    /// `--metrics-listen`: the recorder's requests as live counters.
    pub live: Option<Arc<crate::metrics::live::Live>>,
    /// `--target-limits` and `--limit`: what every request is paced under.
    pub limits: crate::limits::TargetLimits,
}

/// `--bulk`: whether new users travel in `/Bulk` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BulkMode {
    /// One request per user.
    #[default]
    Never,
    /// Bulk when the target's ServiceProviderConfig offers it.
    Auto,
    /// Bulk even if the target does not say it offers it (1,000 operations, 1 MB).
    Always,
}

/// Users the state knows that are not in this export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// Leave them alone (the default).
    #[default]
    Keep,
    /// Deactivate them in the dialect's way (`--deactivate-missing`).
    Deactivate,
    /// Delete them and forget them (`--delete-missing`).
    Delete,
}

/// A request to stop an import cleanly.
#[derive(Debug, Default)]
pub struct Interrupt {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    pub fn fire(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn fired(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) async fn wait(&self) {
        let n = self.notify.notified();
        if !self.fired() {
            n.await;
        }
    }
}
