//! The statistics of a run, computed from its interval log alone: percentiles per
//! operation (response, service, send lag), errors by status, and latency curves — the
//! same for a bench run, an import, merged shards and a re-read log.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::timeline::Timeline;

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pcts {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Pcts {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Pcts {
            count: h.len(),
            // To 0.1 µs: finer digits are float noise (they depend on the order
            // histograms were added in), and the histogram is exact to 3 digits anyway.
            mean_ms: (h.mean() * 10.0).round() / 10_000.0,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// One operation over the measured window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpStats {
    pub requests: u64,
    pub errors: u64,
    /// Errors by HTTP status or transport failure.
    pub errors_by_status: BTreeMap<String, u64>,
    pub per_second: f64,
    /// From the intended send time: what a user of the server waits (the headline).
    pub response: Pcts,
    /// From the actual send: what the server took once it had the request.
    pub service: Pcts,
    /// Actual minus intended send: the generator's (and the connections') delay.
    pub send_lag: Pcts,
    /// Requests that started more than 1 ms after their planned time.
    pub late_starts: u64,
}

/// A point of a curve: latency of requests whose x (group size, page position) fell in
/// the bucket starting at `x`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    pub x: u64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Per-operation statistics and curves of `tl` within `[from_ms, to_ms)`, over `secs`.
pub fn operations(
    tl: &Timeline,
    from_ms: u64,
    to_ms: u64,
    secs: f64,
) -> (BTreeMap<String, OpStats>, BTreeMap<String, Vec<CurvePoint>>) {
    let mut ops = BTreeMap::new();
    let mut curves: BTreeMap<String, Vec<CurvePoint>> = BTreeMap::new();
    let from = tl.slot(from_ms);
    for tag in tl.series.keys() {
        let Some(op) = tag.strip_suffix(".response") else {
            continue;
        };
        let response = tl.total(tag, from, to_ms);
        if response.is_empty() {
            continue;
        }
        let service = tl.total(&format!("{op}.service"), from, to_ms);
        let lag = tl.total(&format!("{op}.lag"), from, to_ms);
        let prefix = format!("{op}.error.");
        let errors_by_status: BTreeMap<String, u64> = tl
            .tags_with_prefix(&prefix)
            .map(|t| (t[prefix.len()..].to_string(), tl.count(t, from, to_ms)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let late_starts = lag.count_between(1001, lag.high());
        ops.insert(
            op.to_string(),
            OpStats {
                requests: response.len(),
                errors: errors_by_status.values().sum(),
                errors_by_status,
                per_second: response.len() as f64 / secs.max(1e-9),
                response: Pcts::of(&response),
                service: Pcts::of(&service),
                send_lag: Pcts::of(&lag),
                late_starts: if lag.max() > 1000 { late_starts } else { 0 },
            },
        );
        // Curve tags: <op>.<curve>.<x>
        let cprefix = format!("{op}.by_");
        for t in tl.tags_with_prefix(&cprefix) {
            let Some((name, x)) = t[op.len() + 1..].rsplit_once('.') else {
                continue;
            };
            let Ok(x) = x.parse::<u64>() else { continue };
            let h = tl.total(t, from, to_ms);
            if h.is_empty() {
                continue;
            }
            curves
                .entry(format!("{op}.{name}"))
                .or_default()
                .push(CurvePoint {
                    x,
                    requests: h.len(),
                    p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
                    p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
                    max_ms: h.max() as f64 / 1000.0,
                });
        }
    }
    for c in curves.values_mut() {
        c.sort_by_key(|p| p.x);
    }
    (ops, curves)
}

/// All operations' response times together.
pub fn all_responses(tl: &Timeline, from_ms: u64, to_ms: u64) -> Histogram<u64> {
    let mut h = crate::metrics::new_histogram();
    for tag in tl.series.keys().filter(|t| t.ends_with(".response")) {
        let _ = h.add(tl.total(tag, tl.slot(from_ms), to_ms));
    }
    h
}
