//! Capacity planning from measured numbers: the highest rate that meets the SLO, the
//! concurrency it takes (Little's law, L = λ·W), how long onboarding 10k, 100k and 1M
//! users would take with their groups and memberships, and how group size moves the
//! latency of membership PATCHes and group reads. Every projection carries the
//! assumptions it rests on, next to the numbers.

use serde::{Deserialize, Serialize};

use super::{round, Curve, ImportSummary, OpReport, Totals};
use crate::metrics::threshold::{Metric, Threshold};
use crate::metrics::timeline::Timeline;
use crate::results::bench::BenchSummary;

/// Shape of the Workday-style export `scimload gen` writes (measured with `import
/// --dry-run` on 1k and 100k rows): 115 groups (departments, locations, cost centers and
/// everyone), 3.84 memberships per user. Used when the run has no export of its own.
const DEFAULT_GROUPS: f64 = 115.0;
const DEFAULT_MEMBERSHIPS_PER_USER: f64 = 3.84;
const DEFAULT_MEMBER_BATCH: f64 = 100.0;

/// The users onboarding projections are made for.
pub const PROJECTED_USERS: [u64; 3] = [10_000, 100_000, 1_000_000];

/// The export an onboarding consists of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shape {
    /// Groups, counted per export (they do not grow with users in an HR export: there
    /// are only so many departments and locations).
    pub groups: f64,
    pub memberships_per_user: f64,
    /// Members added per PATCH.
    pub member_batch: f64,
    /// `this export` or `assumed: …`.
    pub source: String,
}

/// Time to onboard a number of users.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Projection {
    pub users: u64,
    pub groups: u64,
    pub memberships: u64,
    pub requests: u64,
    pub seconds: f64,
    /// `2 h 05 min`, for people.
    pub duration: String,
}

/// How a group's size moves an operation's latency.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupSizeEffect {
    pub op: String,
    /// Least-squares slope of the p50, in ms per 1,000 members.
    pub p50_ms_per_1000: f64,
    /// Same for the p99.
    pub p99_ms_per_1000: f64,
    pub largest_measured: u64,
    /// The largest measured group size up to which every bucket's p99 met the SLO.
    pub largest_within_slo: Option<u64>,
    /// Where the p99 line crosses the SLO, when every measured size met it and the
    /// crossing lies within 10× the largest measured size (further out a straight line
    /// says nothing).
    pub extrapolated_limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capacity {
    pub slo: String,
    pub slo_ms: f64,
    /// Where the rate comes from.
    pub basis: String,
    /// Whether the SLO held at `max_rate`.
    pub slo_met: bool,
    /// Requests per second.
    pub max_rate: f64,
    /// Mean response time at that rate.
    pub mean_latency_ms: f64,
    /// Requests in flight the rate needs: rate × mean latency.
    pub concurrency: f64,
    pub shape: Shape,
    /// Requests one user's onboarding costs (create, its share of group creates and
    /// membership PATCHes).
    pub requests_per_user: f64,
    /// Users onboarded per second at `max_rate`.
    pub users_per_second: f64,
    pub projections: Vec<Projection>,
    pub assumptions: Vec<String>,
    pub group_size: Vec<GroupSizeEffect>,
    /// This export's onboarding under the published limits the import was paced by
    /// (what `scimload plan` computes), beside the measured-speed projections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_limits: Option<crate::limits::Projection>,
}

/// `2 h 05 min`, `3 min 20 s`, `12.4 s`.
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "—".into();
    }
    let s = secs.round() as u64;
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {:02} h", s / 86_400, (s % 86_400) / 3600)
    }
}

fn slo_parts(slo: &Threshold) -> (f64, f64) {
    match slo.metric {
        Metric::Quantile(q) => (q, slo.limit),
        _ => (0.99, slo.limit),
    }
}

/// Mean response time (ms) of all operations within `[from, to)`.
fn mean_ms(tl: &Timeline, from: u64, to: u64) -> f64 {
    crate::metrics::stats::all_responses(tl, from, to).mean() / 1000.0
}

fn projections(
    shape: &Shape,
    per_user_seconds: f64,
    group_seconds: f64,
    requests_per_user: f64,
) -> Vec<Projection> {
    if !(per_user_seconds.is_finite() && group_seconds.is_finite()) {
        // Nothing met the SLO: there is no rate to project from.
        return Vec::new();
    }
    PROJECTED_USERS
        .iter()
        .map(|&users| {
            let seconds = users as f64 * per_user_seconds + shape.groups * group_seconds;
            Projection {
                users,
                groups: shape.groups.round() as u64,
                memberships: (users as f64 * shape.memberships_per_user).round() as u64,
                requests: (users as f64 * requests_per_user + shape.groups).round() as u64,
                seconds: round(seconds, 1),
                duration: human_duration(seconds),
            }
        })
        .collect()
}

/// Slope of y against x by least squares (per unit of x).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

fn group_size_effects(curves: &[Curve], slo_ms: f64) -> Vec<GroupSizeEffect> {
    curves
        .iter()
        .filter(|c| c.name.ends_with(".by_group_size") && !c.points.is_empty())
        .map(|c| {
            let p50: Vec<(f64, f64)> = c.points.iter().map(|p| (p.x as f64, p.p50_ms)).collect();
            let p99: Vec<(f64, f64)> = c.points.iter().map(|p| (p.x as f64, p.p99_ms)).collect();
            let s99 = slope(&p99);
            let mut within = None;
            for p in &c.points {
                if p.p99_ms > slo_ms {
                    break;
                }
                within = Some(p.x);
            }
            let largest = c.points.iter().map(|p| p.x).max().unwrap_or(0);
            let all_within = within == Some(largest);
            // Extrapolate from the fitted line through the measured p99s.
            let extrapolated = if all_within && s99 > 0.0 {
                let n = p99.len() as f64;
                let mx = p99.iter().map(|p| p.0).sum::<f64>() / n;
                let my = p99.iter().map(|p| p.1).sum::<f64>() / n;
                let x = (mx + (slo_ms - my) / s99).max(largest as f64);
                (x <= 10.0 * largest as f64).then(|| x.round() as u64)
            } else {
                None
            };
            GroupSizeEffect {
                op: c.op.clone(),
                p50_ms_per_1000: round(slope(&p50) * 1000.0, 3),
                p99_ms_per_1000: round(s99 * 1000.0, 3),
                largest_measured: largest,
                largest_within_slo: within,
                extrapolated_limit: extrapolated,
            }
        })
        .collect()
}

fn mean_of(ops: &[OpReport], name: &str) -> Option<f64> {
    ops.iter()
        .find(|o| o.name == name && o.requests > 0)
        .map(|o| o.response.mean_ms)
}

impl Capacity {
    pub fn of_bench(
        s: &BenchSummary,
        tl: &Timeline,
        ops: &[OpReport],
        curves: &[Curve],
        default_slo: &Threshold,
    ) -> Capacity {
        let [from, to] = s.window_ms;
        let mut assumptions = Vec::new();
        let (slo_text, slo_ms, basis, slo_met, max_rate, mean) = match &s.knee {
            Some(k) => {
                let slo = Threshold::parse(&k.slo).unwrap_or_else(|_| default_slo.clone());
                let (_, ms) = slo_parts(&slo);
                let best = k
                    .steps
                    .iter()
                    .rfind(|st| st.passed && st.offered == k.max_sustainable_rate);
                let mean = best.map_or(0.0, |st| mean_ms(tl, st.from_ms, st.to_ms));
                let mut basis = if k.searched {
                    "knee search: the highest offered rate whose step met the SLO and the error budget"
                } else {
                    "rate steps: the highest step that met the SLO and the error budget"
                }
                .to_string();
                if let Some(at) = k.generator_limit {
                    basis.push_str(&format!(
                        "; a lower bound: at {at:.0}/s the generator could not keep the rate, so the server's limit was not measured"
                    ));
                }
                (
                    k.slo.clone(),
                    ms,
                    basis,
                    best.is_some(),
                    k.max_sustainable_rate,
                    mean,
                )
            }
            None => {
                let (q, ms) = slo_parts(default_slo);
                let all = crate::metrics::stats::all_responses(tl, from, to);
                let observed = all.value_at_quantile(q) as f64 / 1000.0;
                let errors: u64 = ops.iter().map(|o| o.errors).sum();
                let requests: u64 = ops.iter().map(|o| o.requests).sum();
                let met = observed < ms && (errors as f64) <= 0.001 * requests as f64;
                let rate = requests as f64 / s.measured_seconds.max(1e-9);
                let basis = if met {
                    format!("the measured rate, at which the SLO held ({} {observed:.1} ms): a lower bound — run `bench --find-knee` for the limit", percentile_name(q))
                } else {
                    format!("the measured rate, at which the SLO did NOT hold ({} {observed:.1} ms): the sustainable rate is lower — run `bench --find-knee`", percentile_name(q))
                };
                (
                    default_slo.text.clone(),
                    ms,
                    basis,
                    met,
                    rate,
                    all.mean() / 1000.0,
                )
            }
        };
        let measured_batch = s.params.get("member_batch").and_then(|b| b.as_f64());
        let shape = Shape {
            groups: DEFAULT_GROUPS,
            memberships_per_user: DEFAULT_MEMBERSHIPS_PER_USER,
            member_batch: measured_batch.unwrap_or(DEFAULT_MEMBER_BATCH),
            source: "assumed: a Workday-style export as `scimload gen` writes it".into(),
        };
        assumptions.push(format!(
            "The export has {:.0} groups and {:.2} memberships per user, added {:.0} per PATCH (a Workday-style export; an import's report uses its own export's shape).",
            shape.groups, shape.memberships_per_user, shape.member_batch
        ));
        // Each operation holds one of the server's `concurrency` slots for its mean
        // latency; an operation this run did not measure is assumed to cost as much as
        // the measured average.
        let concurrency = max_rate * mean / 1000.0;
        let cost = |name: &str| -> (f64, bool) {
            match mean_of(ops, name) {
                Some(m) => (m, true),
                None => (mean, false),
            }
        };
        let (c_create, m1) = cost("create_user");
        let (c_patch, m2) = cost("patch_members");
        let (c_group, m3) = cost("create_group");
        let unmeasured: Vec<&str> = [
            ("create_user", m1),
            ("patch_members", m2),
            ("create_group", m3),
        ]
        .iter()
        .filter(|(_, m)| !m)
        .map(|(n, _)| *n)
        .collect();
        if !unmeasured.is_empty() {
            assumptions.push(format!(
                "Not measured in this run, assumed to cost the run's mean latency ({mean:.2} ms): {}.",
                unmeasured.join(", ")
            ));
        }
        let patches_per_user = shape.memberships_per_user / shape.member_batch.max(1.0);
        let requests_per_user = 1.0 + patches_per_user;
        let slot_seconds = |ms: f64| {
            if concurrency > 0.0 {
                ms / 1000.0 / concurrency
            } else {
                f64::INFINITY
            }
        };
        // Never faster than the measured request rate, however cheap an operation looks.
        let floor = |requests: f64| {
            if max_rate > 0.0 {
                requests / max_rate
            } else {
                f64::INFINITY
            }
        };
        let per_user = (slot_seconds(c_create) + patches_per_user * slot_seconds(c_patch))
            .max(floor(requests_per_user));
        let per_group = slot_seconds(c_group).max(floor(1.0));
        assumptions.push(format!(
            "The server sustains {max_rate:.0} requests/s with {concurrency:.1} in flight (Little's law: rate × mean latency {mean:.2} ms); each request holds a slot for its operation's mean latency, and the total never exceeds the measured request rate."
        ));
        assumptions.push(
            "Latency does not grow with the number of users stored; group sizes grow with the tenant (see the group-size effects)."
                .into(),
        );
        let group_size = group_size_effects(curves, slo_ms);
        Capacity {
            slo: slo_text,
            slo_ms,
            basis,
            slo_met,
            max_rate: round(max_rate, 1),
            mean_latency_ms: round(mean, 3),
            concurrency: round(concurrency, 2),
            requests_per_user: round(requests_per_user, 4),
            users_per_second: if per_user.is_finite() {
                round(1.0 / per_user, 1)
            } else {
                0.0
            },
            projections: projections(&shape, per_user, per_group, requests_per_user),
            shape,
            assumptions,
            group_size,
            under_limits: None,
        }
    }

    pub fn of_import(
        i: &ImportSummary,
        totals: &Totals,
        ops: &[OpReport],
        curves: &[Curve],
        slo: &Threshold,
    ) -> Capacity {
        let (_, slo_ms) = slo_parts(slo);
        let users = (i.created + i.updated).max(1) as f64;
        let accepted = (i.rows - i.rejected).max(1) as f64;
        let shape = Shape {
            groups: i.export_groups as f64,
            memberships_per_user: round(i.export_memberships as f64 / accepted, 4),
            member_batch: i.member_batch.max(1) as f64,
            source: format!("this export ({})", i.input),
        };
        let secs = i.elapsed_seconds.max(1e-9);
        let rate = totals.requests as f64 / secs;
        let observed = totals.response.p99_ms;
        let met = observed < slo_ms;
        let requests_per_user = totals.requests as f64 / users;
        let per_user = 1.0 / i.users_per_second.max(1e-9);
        let mean = ops
            .iter()
            .map(|o| o.response.mean_ms * o.requests as f64)
            .sum::<f64>()
            / totals.requests.max(1) as f64;
        let assumptions = vec![
            format!(
                "Throughput stays at this import's {:.0} users/s ({} requests in flight, lookup {}, bulk {}); with the same target, settings and export shape, time grows linearly with users.",
                i.users_per_second, i.concurrency, i.lookup, i.bulk
            ),
            format!(
                "The export has {:.0} groups and {:.2} memberships per user ({} rows), added {:.0} per PATCH.",
                shape.groups, shape.memberships_per_user, i.rows, shape.member_batch
            ),
            "An import measures the whole path (client, network, server); `bench --find-knee` finds the server's own limit.".into(),
        ];
        Capacity {
            slo: slo.text.clone(),
            slo_ms,
            basis: "this import's measured throughput".into(),
            slo_met: met,
            max_rate: round(rate, 1),
            mean_latency_ms: round(mean, 3),
            concurrency: round(rate * mean / 1000.0, 2),
            requests_per_user: round(requests_per_user, 4),
            users_per_second: round(i.users_per_second, 1),
            // The import's rate already includes its groups.
            projections: projections(&shape, per_user, 0.0, requests_per_user),
            shape,
            assumptions,
            group_size: group_size_effects(curves, slo_ms),
            under_limits: i.limits_projection.clone(),
        }
    }
}

/// `p99`, `p99.9`, `max`.
pub fn percentile_name(q: f64) -> String {
    if q >= 1.0 {
        "max".into()
    } else {
        format!("p{}", round(q * 100.0, 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::CurvePoint;

    fn point(x: u64, p99: f64) -> CurvePoint {
        CurvePoint {
            x,
            requests: 10,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            max_ms: p99,
        }
    }

    #[test]
    fn largest_group_within_the_slo_stops_at_the_first_miss() {
        let c = Curve {
            name: "patch_members.by_group_size".into(),
            op: "patch_members".into(),
            x_label: String::new(),
            points: vec![
                point(1000, 10.0),
                point(2000, 20.0),
                point(3000, 40.0),
                point(4000, 20.0),
            ],
        };
        let e = &group_size_effects(std::slice::from_ref(&c), 30.0)[0];
        assert_eq!(e.largest_within_slo, Some(2000));
        assert_eq!(e.extrapolated_limit, None);
        // All within: the fitted line (10 ms per 1,000 members through (2500, 25))
        // reaches 100 ms at 10,000 members.
        let mut c2 = c;
        c2.points = vec![
            point(1000, 10.0),
            point(2000, 20.0),
            point(3000, 30.0),
            point(4000, 40.0),
        ];
        let e = &group_size_effects(&[c2], 100.0)[0];
        assert_eq!(e.largest_within_slo, Some(4000));
        assert_eq!(e.extrapolated_limit, Some(10_000));
        assert_eq!(e.p99_ms_per_1000, 10.0);
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(12.44), "12.4 s");
        assert_eq!(human_duration(200.0), "3 min 20 s");
        assert_eq!(human_duration(7500.0), "2 h 05 min");
        assert_eq!(human_duration(90_000.0), "1 d 01 h");
    }
}
