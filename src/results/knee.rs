//! A knee search's record: every step with its verdict, and the highest rate that held.
//! Written by bench, read by report.

use serde::{Deserialize, Serialize};

/// One step of the search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub offered: f64,
    pub achieved: f64,
    pub error_rate: f64,
    /// The SLO percentile over the step, and over its first and second half.
    pub slo_ms: f64,
    pub first_half_ms: f64,
    pub second_half_ms: f64,
    pub send_lag_p99_ms: f64,
    /// The generator sent late (send lag over the bound): the step measured it, not
    /// the server.
    #[serde(default)]
    pub generator_behind: bool,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// The result: the highest passing rate and every step on the way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KneeResult {
    /// True for a knee search, false for fixed `--steps`.
    pub searched: bool,
    pub slo: String,
    pub error_budget: f64,
    pub max_sustainable_rate: f64,
    /// The offered rate the generator could not keep: `max_sustainable_rate` is then a
    /// lower bound the generator set, not the server's knee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_limit: Option<f64>,
    pub steps: Vec<Step>,
}

impl KneeResult {
    /// What the result means, in one line.
    pub fn verdict(&self) -> String {
        let best = self.max_sustainable_rate;
        match self.generator_limit {
            Some(at) if best > 0.0 => format!(
                "at least {best:.0} requests/s: at {at:.0}/s the generator could not keep the rate, so that step measured the generator, not the server (more --connections, or more generator machines with --shard)"
            ),
            Some(at) => format!(
                "unknown: the generator could not keep {at:.0}/s (more --connections, or more generator machines with --shard)"
            ),
            None if best > 0.0 => format!("{best:.0} requests/s at SLO {}", self.slo),
            None => format!("none: not even the lowest rate held SLO {}", self.slo),
        }
    }
}
