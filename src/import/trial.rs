//! `--bulk auto` decides by measurement, not by what ServiceProviderConfig offers: one
//! real server's /Bulk was 1.5× slower than one POST per user at the same concurrency.

use std::time::{Duration, Instant};

/// Where the trial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrialPhase {
    Single,
    Bulk,
    Done,
}

/// `--bulk auto` by measurement: users go one request each for a phase, then in /Bulk
/// batches for a phase; each phase ends by draining what is in flight, so its rate is
/// users finished over the time from its first dispatch to its last answer. Then the
/// faster way carries the rest.
pub(super) struct BulkTrial {
    pub(super) phase: TrialPhase,
    length: Duration,
    started: Option<Instant>,
    done_in_phase: u64,
    pub(super) draining: bool,
    single: Option<f64>,
    bulk: Option<f64>,
}

/// Users a phase must have finished before its rate counts.
const TRIAL_MIN_USERS: u64 = 500;

impl BulkTrial {
    pub(super) fn new(length: Duration) -> Self {
        BulkTrial {
            phase: TrialPhase::Single,
            length,
            started: None,
            done_in_phase: 0,
            draining: false,
            single: None,
            bulk: None,
        }
    }

    pub(super) fn dispatched(&mut self) {
        if self.phase != TrialPhase::Done && self.started.is_none() {
            self.started = Some(Instant::now());
        }
    }

    pub(super) fn finished(&mut self, users: u64) {
        if self.phase == TrialPhase::Done {
            return;
        }
        self.done_in_phase += users;
        let long = self.started.is_some_and(|t| t.elapsed() >= self.length);
        if long && self.done_in_phase >= TRIAL_MIN_USERS {
            self.draining = true;
        }
    }

    pub(super) fn next_phase(&mut self) {
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let rate = self.done_in_phase as f64 / secs.max(1e-6);
        match self.phase {
            TrialPhase::Single => {
                self.single = Some(rate);
                self.phase = TrialPhase::Bulk;
            }
            TrialPhase::Bulk => {
                self.bulk = Some(rate);
                self.phase = TrialPhase::Done;
            }
            TrialPhase::Done => {}
        }
        self.started = None;
        self.done_in_phase = 0;
        self.draining = false;
    }

    pub(super) fn chose_bulk(&self) -> bool {
        matches!((self.single, self.bulk), (Some(s), Some(b)) if b > s)
    }

    pub(super) fn describe(&self) -> String {
        match (self.single, self.bulk) {
            (Some(s), None) => format!("bulk trial: {s:.0} users/s one request each; now /Bulk"),
            (Some(s), Some(b)) => format!(
                "bulk trial: {s:.0} users/s one request each, {b:.0} users/s in /Bulk: continuing {}",
                if self.chose_bulk() { "with /Bulk" } else { "one request per user" }
            ),
            _ => String::new(),
        }
    }

    pub(super) fn outcome(self) -> crate::results::import::BulkTrialOutcome {
        let complete = self.phase == TrialPhase::Done;
        crate::results::import::BulkTrialOutcome {
            single_users_per_second: self.single,
            bulk_users_per_second: self.bulk,
            chosen: if !complete {
                match self.phase {
                    TrialPhase::Single => {
                        "per-user: the export ended within the trial's first phase".into()
                    }
                    _ => "both: the export ended within the trial's /Bulk phase".into(),
                }
            } else if self.chose_bulk() {
                "bulk".into()
            } else {
                "per-user".into()
            },
        }
    }
}
