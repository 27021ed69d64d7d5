//! Pass/fail criteria, k6-style: `create_user:p99<200ms`, `errors<0.1%`, `rate>=500`.
//! A run that misses one exits 1, distinct from a fatal error (2), so CI can gate on it.
//! Percentiles are read from the response-time histograms (from the intended send).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::OpStats;
use crate::metrics::timeline::Timeline;
use crate::units::{parse_duration, parse_fraction};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A response-time quantile (0.99) or the maximum (1.0).
    Quantile(f64),
    Mean,
    /// Failed requests as a fraction of all.
    Errors,
    /// Answered requests per second.
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Cmp {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    pub text: String,
    /// An operation name (`get_user`), or none for all operations together.
    pub op: Option<String>,
    pub metric: Metric,
    pub cmp: Cmp,
    /// Milliseconds for latencies, a fraction for errors, per second for rates.
    pub limit: f64,
}

/// A percentile metric name: `p99`, `p99.9`, `p50`, `max`.
pub fn parse_quantile(s: &str) -> Option<f64> {
    if s == "max" {
        return Some(1.0);
    }
    let p: f64 = s.strip_prefix('p')?.parse().ok()?;
    (p > 0.0 && p <= 100.0).then_some((p * 1e4).round() / 1e6)
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (op, rest) = match t.split_once(':') {
            Some((o, r)) => (Some(o.trim().to_string()), r.trim()),
            None => (None, t),
        };
        let at = rest.find(['<', '>']).ok_or_else(|| {
            format!("'{text}': write METRIC<LIMIT, e.g. p99<200ms or errors<0.1%")
        })?;
        let (name, tail) = (rest[..at].trim(), &rest[at..]);
        let (cmp, value) = if let Some(v) = tail.strip_prefix("<=") {
            (Cmp::Le, v)
        } else if let Some(v) = tail.strip_prefix(">=") {
            (Cmp::Ge, v)
        } else if let Some(v) = tail.strip_prefix('<') {
            (Cmp::Lt, v)
        } else {
            (Cmp::Gt, &tail[1..])
        };
        let value = value.trim();
        let (metric, limit) = match name {
            "errors" => (Metric::Errors, parse_fraction(value)?),
            "rate" => (Metric::Rate, crate::units::parse_rate(value)?),
            "mean" => (Metric::Mean, ms(value)?),
            q => match parse_quantile(q) {
                Some(q) => (Metric::Quantile(q), ms(value)?),
                None => {
                    return Err(format!(
                        "'{name}' in '{text}' is not a metric: use p50, p90, p99, p99.9, max, mean, errors or rate"
                    ))
                }
            },
        };
        if let Some(o) = &op {
            if crate::metrics::Op::from_name(o).is_none() {
                return Err(format!(
                    "'{o}' in '{text}' is not an operation; the summary lists them (create_user, get_user, filter_users, …)"
                ));
            }
        }
        Ok(Threshold {
            text: t.to_string(),
            op,
            metric,
            cmp,
            limit,
        })
    }

    /// The observed value, or `None` when the run sent no such operation.
    pub fn observe(
        &self,
        tl: &Timeline,
        from_ms: u64,
        to_ms: u64,
        ops: &BTreeMap<String, OpStats>,
    ) -> Option<f64> {
        let chosen: Vec<&OpStats> = match &self.op {
            Some(o) => vec![ops.get(o)?],
            None => ops.values().collect(),
        };
        let requests: u64 = chosen.iter().map(|s| s.requests).sum();
        if requests == 0 {
            return None;
        }
        Some(match self.metric {
            Metric::Errors => chosen.iter().map(|s| s.errors).sum::<u64>() as f64 / requests as f64,
            Metric::Rate => chosen.iter().map(|s| s.per_second).sum(),
            Metric::Quantile(_) | Metric::Mean => {
                let h = match &self.op {
                    Some(o) => tl.total(&format!("{o}.response"), tl.slot(from_ms), to_ms),
                    None => super::stats::all_responses(tl, from_ms, to_ms),
                };
                let us = match self.metric {
                    Metric::Quantile(q) if q >= 1.0 => h.max() as f64,
                    Metric::Quantile(q) => h.value_at_quantile(q) as f64,
                    _ => h.mean(),
                };
                us / 1000.0
            }
        })
    }

    pub fn holds(&self, observed: f64) -> bool {
        match self.cmp {
            Cmp::Lt => observed < self.limit,
            Cmp::Le => observed <= self.limit,
            Cmp::Gt => observed > self.limit,
            Cmp::Ge => observed >= self.limit,
        }
    }
}

fn ms(s: &str) -> Result<f64, String> {
    parse_duration(s).map(|d: Duration| d.as_secs_f64() * 1000.0)
}

/// A threshold and how the run did against it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub threshold: String,
    pub observed: Option<f64>,
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thresholds() {
        let t = Threshold::parse("create_user:p99<200ms").unwrap();
        assert_eq!(
            (t.op.as_deref(), t.metric, t.cmp, t.limit),
            (Some("create_user"), Metric::Quantile(0.99), Cmp::Lt, 200.0)
        );
        let t = Threshold::parse("errors<0.1%").unwrap();
        assert_eq!((t.op, t.metric), (None, Metric::Errors));
        assert!((t.limit - 0.001).abs() < 1e-12);
        let t = Threshold::parse("p99.9 <= 1s").unwrap();
        assert_eq!(
            (t.metric, t.cmp, t.limit),
            (Metric::Quantile(0.999), Cmp::Le, 1000.0)
        );
        assert_eq!(Threshold::parse("rate>=500").unwrap().metric, Metric::Rate);
        assert!(Threshold::parse("p99")
            .unwrap_err()
            .contains("METRIC<LIMIT"));
        assert!(Threshold::parse("nope:p99<1s")
            .unwrap_err()
            .contains("not an operation"));
        assert!(Threshold::parse("p101<1s")
            .unwrap_err()
            .contains("not a metric"));
    }
}
