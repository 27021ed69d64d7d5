//! Two runs side by side: the same operations' throughput, percentiles and error rates,
//! with the change in percent and regressions flagged against a tolerance — the gate a CI
//! job puts between a baseline and a candidate build.
//!
//! Small latencies jitter by more than any sensible percentage on a shared machine, so a
//! latency change only counts as a regression when it is also larger than `min_delta_ms`.

use serde::{Deserialize, Serialize};

use super::{round, ReportData};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunLabel {
    pub title: String,
    pub started: String,
    pub shards: u32,
}

/// One metric of one operation in both runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delta {
    /// An operation name, or `all` for the run as a whole.
    pub op: String,
    pub metric: String,
    pub base: f64,
    pub new: f64,
    /// (new − base) / base in percent; none when base is 0.
    pub change_pct: Option<f64>,
    /// Worse by more than the tolerance (and the latency floor).
    pub regression: bool,
    /// Better by more than the tolerance.
    pub improvement: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub schema: String,
    pub base: RunLabel,
    pub new: RunLabel,
    /// Relative change that counts, as a fraction (0.1 = 10%).
    pub tolerance: f64,
    pub min_delta_ms: f64,
    pub deltas: Vec<Delta>,
    pub regressions: usize,
    pub only_in_base: Vec<String>,
    pub only_in_new: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

pub const SCHEMA: &str = "scimload-compare/1";

fn label(r: &ReportData) -> RunLabel {
    RunLabel {
        title: r.title.clone(),
        started: r.run.started.clone(),
        shards: r.run.shards,
    }
}

impl Comparison {
    pub fn of(base: &ReportData, new: &ReportData, tolerance: f64, min_delta_ms: f64) -> Self {
        let mut deltas = Vec::new();
        let mut push = |op: &str, metric: &str, b: f64, n: f64, better: Better, floor: f64| {
            let change = (b != 0.0).then(|| (n - b) / b);
            let worse = match better {
                Better::Higher => b - n,
                Better::Lower => n - b,
            };
            let rel = worse / b.abs().max(1e-12);
            deltas.push(Delta {
                op: op.to_string(),
                metric: metric.to_string(),
                base: b,
                new: n,
                change_pct: change.map(|c| round(c * 100.0, 2)),
                regression: worse > floor && rel > tolerance,
                improvement: -worse > floor && -rel > tolerance,
            });
        };
        push(
            "all",
            "requests/s",
            base.totals.per_second,
            new.totals.per_second,
            Better::Higher,
            0.0,
        );
        if let (Some(b), Some(n)) = (&base.knee, &new.knee) {
            push(
                "all",
                "max sustainable rate",
                b.max_sustainable_rate,
                n.max_sustainable_rate,
                Better::Higher,
                0.0,
            );
        }
        for b in &base.operations {
            let Some(n) = new.operations.iter().find(|o| o.name == b.name) else {
                continue;
            };
            push(
                &b.name,
                "requests/s",
                b.per_second,
                n.per_second,
                Better::Higher,
                0.0,
            );
            for (metric, bv, nv) in [
                ("p50 ms", b.response.p50_ms, n.response.p50_ms),
                ("p90 ms", b.response.p90_ms, n.response.p90_ms),
                ("p99 ms", b.response.p99_ms, n.response.p99_ms),
                ("p99.9 ms", b.response.p999_ms, n.response.p999_ms),
            ] {
                push(&b.name, metric, bv, nv, Better::Lower, min_delta_ms);
            }
            // An error rate counts when it rises by more than 0.1 percentage point as
            // well as by the tolerance (0 → 1 error in a million is no regression).
            push(
                &b.name,
                "error %",
                b.error_rate * 100.0,
                n.error_rate * 100.0,
                Better::Lower,
                0.1,
            );
        }
        let names = |r: &ReportData| -> Vec<String> {
            r.operations.iter().map(|o| o.name.clone()).collect()
        };
        let (bn, nn) = (names(base), names(new));
        Comparison {
            schema: SCHEMA.into(),
            base: label(base),
            new: label(new),
            tolerance,
            min_delta_ms,
            regressions: deltas.iter().filter(|d| d.regression).count(),
            deltas,
            only_in_base: bn.iter().filter(|n| !nn.contains(n)).cloned().collect(),
            only_in_new: nn.iter().filter(|n| !bn.contains(n)).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slower_p99_beyond_tolerance_and_floor_is_a_regression() {
        let base: ReportData = serde_json::from_str(include_str!(
            "../../tests/fixtures/report/mixed-steps/expected-report.json"
        ))
        .unwrap();
        let mut new = base.clone();
        let same = Comparison::of(&base, &new, 0.1, 1.0);
        assert_eq!(same.regressions, 0, "{same:?}");
        let op = &mut new.operations[0];
        op.response.p99_ms = base.operations[0].response.p99_ms * 1.5 + 2.0;
        let name = op.name.clone();
        let worse = Comparison::of(&base, &new, 0.1, 1.0);
        assert_eq!(worse.regressions, 1);
        let d = worse.deltas.iter().find(|d| d.regression).unwrap();
        assert_eq!(
            (d.op.as_str(), d.metric.as_str()),
            (name.as_str(), "p99 ms")
        );
        // Within the floor: not flagged however large the percentage.
        let lenient = Comparison::of(&base, &new, 0.1, 1e6);
        assert_eq!(lenient.regressions, 0);
        // Throughput up by half: an improvement, never a regression.
        let mut faster = base.clone();
        faster.totals.per_second *= 1.5;
        let c = Comparison::of(&base, &faster, 0.1, 1.0);
        assert!(c.deltas[0].improvement && !c.deltas[0].regression);
    }
}
