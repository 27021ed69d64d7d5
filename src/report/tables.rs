//! The report's content as titled tables with lead lines and notes, built once from a
//! [`ReportData`] or a [`Comparison`] and rendered by each writer (terminal, Markdown,
//! HTML) in its own syntax — so the three show the same numbers, rounded the same way.

use super::compare::Comparison;
use super::ReportData;

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    /// Lines before the table (the headline of the section).
    pub lead: Vec<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines after the table (assumptions, warnings).
    pub notes: Vec<String>,
}

fn h(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `12.35`, `1,234.5`, thousands grouped.
pub fn num(x: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(a, b)| (a, b));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 && s.chars().any(|c| c != '0' && c != '.') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        num(x, 1)
    } else {
        num(x, 2)
    }
}

fn count(x: u64) -> String {
    num(x as f64, 0)
}

/// A one-line description of what ran.
pub fn headline(r: &ReportData) -> String {
    let run = &r.run;
    let mut parts = vec![if run.kind == "import" {
        format!("{} requests in flight", run.concurrency)
    } else {
        format!(
            "{} model{}, {} connections",
            run.model,
            run.rate
                .as_ref()
                .map(|r| format!(" at {r}"))
                .unwrap_or_default(),
            run.concurrency
        )
    }];
    parts.push(format!("{:.1} s measured", run.measured_seconds));
    if run.warmup_seconds > 0.0 {
        parts.push(format!("{:.1} s warm-up left out", run.warmup_seconds));
    }
    parts.push(format!("dialect {}", run.dialect));
    if run.shards > 1 {
        parts.push(format!("{} shards merged", run.shards));
    }
    if let Some(m) = &run.machine {
        parts.push(format!("{} {}, {} cores", m.os, m.arch, m.cores));
    }
    parts.push(format!("started {}", run.started));
    parts.join(" · ")
}

fn overview(r: &ReportData) -> Table {
    let t = &r.totals;
    let mut lead = vec![headline(r)];
    if let Some(i) = &r.import {
        lead.push(format!(
            "{} rows → {} created, {} updated, {} unchanged, {} rejected, {} failed, {} pending{} · {} groups, {} memberships · {} users/s",
            count(i.rows), count(i.created), count(i.updated), count(i.unchanged), count(i.rejected),
            count(i.failed), count(i.pending),
            if i.not_sent > 0 { format!(", {} not sent", count(i.not_sent)) } else { String::new() },
            count(i.groups), count(i.memberships), num(i.users_per_second, 0)
        ));
    }
    let mut notes = Vec::new();
    if !t.kept_schedule {
        notes.push(format!(
            "WARNING: send lag p99 {} ms > 1 ms: the generator fell behind its schedule; response times include that delay.",
            t.send_lag_p99_ms.map_or("?".into(), ms)
        ));
    }
    if t.dropped > 0 {
        notes.push(format!(
            "{} planned requests were never sent before the run ended.",
            count(t.dropped)
        ));
    }
    Table {
        title: "Overview".into(),
        lead,
        headers: h(&[
            "requests",
            "errors",
            "requests/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
        ]),
        rows: vec![vec![
            count(t.requests),
            format!("{} ({:.2}%)", count(t.errors), t.error_rate * 100.0),
            num(t.per_second, 1),
            ms(t.response.p50_ms),
            ms(t.response.p90_ms),
            ms(t.response.p99_ms),
            ms(t.response.p999_ms),
            ms(t.response.max_ms),
        ]],
        notes,
    }
}

fn operations(r: &ReportData) -> Table {
    let bench = r.run.kind == "bench";
    let mut headers = h(&[
        "operation",
        "requests",
        "requests/s",
        "errors",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
    ]);
    if bench {
        headers.extend(h(&["service p99 ms", "send lag p99 ms"]));
    }
    let rows = r
        .operations
        .iter()
        .map(|o| {
            let mut row = vec![
                o.name.clone(),
                count(o.requests),
                num(o.per_second, 1),
                count(o.errors),
                ms(o.response.p50_ms),
                ms(o.response.p90_ms),
                ms(o.response.p99_ms),
                ms(o.response.p999_ms),
                ms(o.response.max_ms),
            ];
            if bench {
                row.push(o.service.as_ref().map_or("—".into(), |p| ms(p.p99_ms)));
                row.push(o.send_lag.as_ref().map_or("—".into(), |p| num(p.p99_ms, 3)));
            }
            row
        })
        .collect();
    let notes = r
        .operations
        .iter()
        .flat_map(|o| {
            o.errors_by_status
                .iter()
                .map(move |(s, n)| format!("{}: {} × {s}", o.name, count(*n)))
        })
        .collect();
    Table {
        title: "Operations".into(),
        lead: vec![if bench {
            "Response time is measured from the intended send time (no coordinated omission); service time from the actual send.".into()
        } else {
            "Latency of each request as the importer sent it (closed model: response time is service time).".into()
        }],
        headers,
        rows,
        notes,
    }
}

fn knee(r: &ReportData) -> Option<Table> {
    let k = r.knee.as_ref()?;
    let pname = k.slo.split(['<', '>']).next().unwrap_or("p99");
    Some(Table {
        title: if k.searched {
            "Knee search".into()
        } else {
            "Rate steps".into()
        },
        lead: vec![format!(
            "SLO {}, error budget {:.2}% · max sustainable rate: {}",
            k.slo,
            k.error_budget * 100.0,
            match k.generator_limit {
                None => format!("{} requests/s", num(k.max_sustainable_rate, 0)),
                Some(_) => k.verdict(),
            }
        )],
        headers: vec![
            "offered /s".into(),
            "achieved /s".into(),
            format!("{pname} ms"),
            "errors".into(),
            "send lag p99 ms".into(),
            "result".into(),
        ],
        rows: k
            .steps
            .iter()
            .map(|s| {
                vec![
                    num(s.offered, 0),
                    num(s.achieved, 0),
                    ms(s.slo_ms),
                    format!("{:.2}%", s.error_rate * 100.0),
                    num(s.send_lag_p99_ms, 3),
                    if s.passed {
                        "pass".into()
                    } else {
                        format!("FAIL: {}", s.reason)
                    },
                ]
            })
            .collect(),
        notes: Vec::new(),
    })
}

fn capacity(r: &ReportData) -> Table {
    let c = &r.capacity;
    let lead = vec![
        format!(
            "Max sustainable rate at SLO {}: {} requests/s{} — {}.",
            c.slo,
            num(c.max_rate, 0),
            if c.slo_met { "" } else { " (SLO not met)" },
            c.basis
        ),
        format!(
            "Concurrency it needs (Little's law): {} requests in flight = {} /s × {} ms mean latency.",
            num(c.concurrency, 1),
            num(c.max_rate, 0),
            ms(c.mean_latency_ms)
        ),
        format!(
            "Onboarding speed: {} users/s at {} requests per user ({} groups, {} memberships per user in batches of {}; shape: {}).",
            num(c.users_per_second, 0),
            num(c.requests_per_user, 3),
            num(c.shape.groups, 0),
            num(c.shape.memberships_per_user, 2),
            num(c.shape.member_batch, 0),
            c.shape.source
        ),
    ];
    Table {
        title: "Capacity planning".into(),
        lead,
        headers: h(&[
            "users",
            "groups",
            "memberships",
            "requests",
            "time to onboard",
        ]),
        rows: c
            .projections
            .iter()
            .map(|p| {
                vec![
                    count(p.users),
                    count(p.groups),
                    count(p.memberships),
                    count(p.requests),
                    p.duration.clone(),
                ]
            })
            .collect(),
        notes: c
            .assumptions
            .iter()
            .map(|a| format!("Assumption: {a}"))
            .collect(),
    }
}

fn under_limits(r: &ReportData) -> Option<Table> {
    let p = r.capacity.under_limits.as_ref()?;
    let time = crate::report::capacity::human_duration;
    let mut rows: Vec<Vec<String>> = p
        .phases
        .iter()
        .map(|ph| {
            vec![
                ph.phase.clone(),
                count(ph.requests),
                time(ph.seconds),
                ph.binding.clone().unwrap_or_else(|| "none".into()),
            ]
        })
        .collect();
    rows.push(vec![
        "total".into(),
        count(p.requests),
        time(p.seconds),
        p.binding.clone().unwrap_or_else(|| "none".into()),
    ]);
    Some(Table {
        title: "Onboarding under the target's published limits".into(),
        lead: vec![format!(
            "This export under the {} limits the import was paced by: {} for {} requests (as `scimload plan` computes it).",
            p.limits,
            time(p.seconds),
            count(p.requests)
        )],
        headers: h(&["phase", "requests", "time", "binding limit"]),
        rows,
        notes: vec![
            "Where no limit binds, the target's own speed decides: see the measured-speed projection above.".into(),
        ],
    })
}

fn group_size(r: &ReportData) -> Option<Table> {
    let c = &r.capacity;
    if c.group_size.is_empty() {
        return None;
    }
    Some(Table {
        title: "Group-size effects".into(),
        lead: vec![format!(
            "How membership PATCH and group GET latency grow with the group, against SLO {}.",
            c.slo
        )],
        headers: h(&[
            "operation",
            "p50 growth ms / 1,000 members",
            "p99 growth ms / 1,000 members",
            "largest measured",
            "largest within SLO",
            "SLO reached at (extrapolated, ≤ 10× measured)",
        ]),
        rows: c
            .group_size
            .iter()
            .map(|g| {
                vec![
                    g.op.clone(),
                    num(g.p50_ms_per_1000, 3),
                    num(g.p99_ms_per_1000, 3),
                    count(g.largest_measured),
                    g.largest_within_slo.map_or("none".into(), count),
                    g.extrapolated_limit.map_or("—".into(), count),
                ]
            })
            .collect(),
        notes: Vec::new(),
    })
}

fn curves(r: &ReportData) -> Vec<Table> {
    r.curves
        .iter()
        .map(|c| Table {
            title: format!("{} by {}", c.op, c.x_label),
            lead: Vec::new(),
            headers: vec![
                c.x_label.clone(),
                "requests".into(),
                "p50 ms".into(),
                "p99 ms".into(),
                "max ms".into(),
            ],
            rows: c
                .points
                .iter()
                .map(|p| {
                    vec![
                        count(p.x),
                        count(p.requests),
                        ms(p.p50_ms),
                        ms(p.p99_ms),
                        ms(p.max_ms),
                    ]
                })
                .collect(),
            notes: Vec::new(),
        })
        .collect()
}

fn thresholds(r: &ReportData) -> Option<Table> {
    if r.thresholds.is_empty() {
        return None;
    }
    Some(Table {
        title: "Thresholds".into(),
        lead: Vec::new(),
        headers: h(&["threshold", "observed", "result"]),
        rows: r
            .thresholds
            .iter()
            .map(|v| {
                vec![
                    v.threshold.clone(),
                    v.observed.map_or("nothing".into(), |o| num(o, 3)),
                    if v.passed { "ok" } else { "MISSED" }.into(),
                ]
            })
            .collect(),
        notes: Vec::new(),
    })
}

fn import_rejects(r: &ReportData) -> Option<Table> {
    let i = r.import.as_ref()?;
    if i.rejects_by_reason.is_empty() && i.errors.is_empty() {
        return None;
    }
    let rows = i
        .rejects_by_reason
        .iter()
        .map(|(k, n)| vec!["rejected".into(), k.clone(), count(*n)])
        .chain(
            i.errors
                .iter()
                .map(|(k, n)| vec!["target answered".into(), k.clone(), count(*n)]),
        )
        .collect();
    Some(Table {
        title: "Rejects and errors".into(),
        lead: Vec::new(),
        headers: h(&["kind", "reason", "count"]),
        rows,
        notes: Vec::new(),
    })
}

/// What the target's schemas could not hold, before sending, and what it did not keep,
/// read back after.
fn import_fidelity(r: &ReportData) -> Vec<Table> {
    let Some(i) = r.import.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(f) = i
        .schema
        .as_ref()
        .filter(|f| !f.undeclared.is_empty() || !f.notes.is_empty())
    {
        out.push(Table {
            title: "Schema check".into(),
            lead: vec![if f.undeclared.is_empty() {
                "Every attribute the mapping writes is declared by the target.".into()
            } else {
                "Attributes the mapping writes that the target's /Schemas does not declare: the target will not store them.".into()
            }],
            headers: h(&["mapping", "attribute", "why", "rows carrying it"]),
            rows: f
                .undeclared
                .iter()
                .map(|u| vec![u.mapping.clone(), u.attribute.clone(), u.why.clone(), count(u.rows)])
                .collect(),
            notes: f.notes.clone(),
        });
    }
    if let Some(v) = &i.verification {
        let mut lead = vec![format!(
            "{} users read back ({} sample): {} as sent, {} differing, {} missing, {} unreadable.",
            count(v.users_checked),
            v.sample,
            count(v.users_matching),
            count(v.users_differing),
            count(v.users_missing),
            count(v.read_failures)
        )];
        lead.push(format!(
            "{} groups checked: {} lack {} members the import added.",
            count(v.groups_checked),
            count(v.groups_differing),
            count(v.members_missing)
        ));
        if let Some(n) = &v.groups_note {
            lead.push(format!("Groups: {n}."));
        }
        if i.managers_failed > 0 {
            lead.push(format!(
                "{} manager PATCHes were refused (listed in failed.csv).",
                count(i.managers_failed)
            ));
        }
        out.push(Table {
            title: "Read-back verification".into(),
            lead,
            headers: h(&["attribute not kept as sent", "users"]),
            rows: v
                .attributes
                .iter()
                .map(|(a, n)| vec![a.clone(), count(*n)])
                .collect(),
            notes: v
                .examples
                .iter()
                .take(5)
                .map(|d| {
                    format!(
                        "row {} ({}): {} sent {}, returned {}",
                        d.row, d.external_id, d.attribute, d.sent, d.returned
                    )
                })
                .collect(),
        });
    }
    out
}

/// Every section of a report, in reading order (curves in detail last).
pub fn report(r: &ReportData) -> Vec<Table> {
    let mut v = vec![overview(r), operations(r)];
    v.extend(import_rejects(r));
    v.extend(import_fidelity(r));
    v.extend(thresholds(r));
    v.extend(knee(r));
    v.push(capacity(r));
    v.extend(under_limits(r));
    v.extend(group_size(r));
    v.extend(curves(r));
    v
}

/// The comparison of two runs.
pub fn comparison(c: &Comparison) -> Vec<Table> {
    let mut notes = Vec::new();
    if !c.only_in_base.is_empty() {
        notes.push(format!("Only in the base: {}.", c.only_in_base.join(", ")));
    }
    if !c.only_in_new.is_empty() {
        notes.push(format!(
            "Only in the new run: {}.",
            c.only_in_new.join(", ")
        ));
    }
    vec![Table {
        title: "Comparison".into(),
        lead: vec![
            format!("base: {} (started {})", c.base.title, c.base.started),
            format!("new:  {} (started {})", c.new.title, c.new.started),
            format!(
                "{} regression{} (tolerance {:.0}%, latency changes under {} ms ignored).",
                c.regressions,
                if c.regressions == 1 { "" } else { "s" },
                c.tolerance * 100.0,
                num(c.min_delta_ms, 2)
            ),
        ],
        headers: h(&["operation", "metric", "base", "new", "change", "verdict"]),
        rows: c
            .deltas
            .iter()
            .map(|d| {
                vec![
                    d.op.clone(),
                    d.metric.clone(),
                    num(d.base, 2),
                    num(d.new, 2),
                    d.change_pct.map_or("—".into(), |p| format!("{p:+.1}%")),
                    if d.regression {
                        "REGRESSION".into()
                    } else if d.improvement {
                        "better".into()
                    } else {
                        "same".into()
                    },
                ]
            })
            .collect(),
        notes,
    }]
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_group_thousands() {
        assert_eq!(num(1234567.891, 1), "1,234,567.9");
        assert_eq!(num(999.0, 0), "999");
        assert_eq!(num(-1500.0, 0), "-1,500");
        assert_eq!(num(0.0, 2), "0.00");
    }
}
