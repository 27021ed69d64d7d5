//! The record an import leaves (summary.json of its result directory): what became of
//! the rows, the requests per operation, what the schema check and the read-back found.
//! `scimload report` reads it from here, knowing nothing of how an import runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::stats::OpStats;

/// The operations of a summary in today's shape, or none from one written before.
fn operations_or_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, OpStats>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// How `--bulk auto` chose between /Bulk and one request per user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BulkTrialOutcome {
    /// Users per second of each way during its trial phase.
    pub single_users_per_second: Option<f64>,
    pub bulk_users_per_second: Option<f64>,
    /// `bulk`, `per-user`, or why the trial did not decide.
    pub chosen: String,
}

/// Also what `scimload report` reads back from summary.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportSummary {
    /// `import`: tells `scimload report` what kind of run a result directory holds.
    pub kind: String,
    pub tool: String,
    /// What one latency sample is: `attempt` (each attempt timed from its own send, the
    /// waits between attempts in none). Absent from summaries of earlier versions, whose
    /// samples were logical requests (elapsed over attempts, waits included).
    #[serde(default = "per_request")]
    pub samples: String,
    pub started: String,
    pub machine: super::Machine,
    pub input: String,
    pub dialect: String,
    pub concurrency: usize,
    pub member_batch: usize,
    pub bulk: String,
    pub lookup: String,
    /// The export's shape: groups and (group, member) pairs among the accepted rows.
    pub export_groups: u64,
    pub export_memberships: u64,
    /// What adaptive throttling did.
    pub throttle: crate::client::throttle::ThrottleStats,
    pub target: String,
    /// How the target was reached: TLS verification (`insecure` when --insecure), HTTP
    /// version, kind of credential, extra headers with credentials as `***`.
    #[serde(default)]
    pub connection: serde_json::Value,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows the state says the target already has, unchanged: no request sent.
    pub unchanged: u64,
    pub rejected: u64,
    pub failed: u64,
    pub pending: u64,
    /// Rows read but not sent because the import was interrupted (Ctrl-C); a re-run
    /// with the same state sends them.
    pub not_sent: u64,
    pub interrupted: bool,
    pub groups_created: u64,
    pub groups_existing: u64,
    /// Groups whose members are as the state recorded them: no request sent.
    pub groups_unchanged: u64,
    pub groups_failed: u64,
    pub memberships_added: u64,
    /// Members removed because the export no longer puts them in the group.
    pub memberships_removed: u64,
    pub memberships_skipped: u64,
    /// Member adds the target refused (each in failed.csv; part of the skipped).
    #[serde(default)]
    pub memberships_failed: u64,
    /// Users the state knew that the export no longer has: how many, and what was done.
    pub missing: u64,
    pub deactivated: u64,
    pub deleted: u64,
    pub missing_failed: u64,
    /// Why missing users were left alone although asked to act on them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_refused: Option<String>,
    /// `--bulk auto`: both ways measured at the start, the faster kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_trial: Option<BulkTrialOutcome>,
    /// The export's onboarding time under the published limits the import was paced by
    /// (`--target-limits`, `--limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits_projection: Option<crate::limits::Projection>,
    /// `--dialect entra-inbound`: uploads accepted, outcomes confirmed, rows pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundOutcome>,
    pub managers_set: u64,
    /// Manager PATCHes the target refused (each in failed.csv).
    #[serde(default)]
    pub managers_failed: u64,
    pub managers_unresolved: u64,
    /// What the target's /Schemas declares against what the mapping writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaFindings>,
    /// Users (and groups) read back after the import and compared with what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// Per operation, as a bench run's summary has them (response, service and send-lag
    /// percentiles, errors by status), computed from the interval log. Summaries written
    /// before had flat `p50_ms`… fields; those read as empty (the report recomputes
    /// every figure from the log anyway).
    #[serde(default, deserialize_with = "operations_or_empty")]
    pub operations: BTreeMap<String, OpStats>,
    pub errors: BTreeMap<String, u64>,
    pub elapsed_seconds: f64,
    pub users_per_second: f64,
    /// Latencies over time, written as the report's interval log.
    #[serde(skip)]
    pub timeline: Option<crate::metrics::timeline::Timeline>,
}

impl ImportSummary {
    /// Rows that ended as anything but created or updated.
    pub fn incomplete(&self) -> bool {
        self.interrupted
            || self.rejected
                + self.failed
                + self.pending
                + self.not_sent
                + self.groups_failed
                + self.memberships_skipped
                + self.missing_failed
                + self.managers_failed
                > 0
            || self.missing_refused.is_some()
            || self.verification.as_ref().is_some_and(|v| v.differs())
    }

    pub fn human(&self) -> String {
        let mut s = format!(
            "import into {}: {} rows -> {} created, {} updated, {} unchanged, {} rejected, {} failed, {} pending{}\n",
            self.target, self.rows, self.created, self.updated, self.unchanged, self.rejected, self.failed, self.pending,
            if self.interrupted { format!(", {} not sent (interrupted; run the same command again to finish)", self.not_sent) } else { String::new() }
        );
        if self.inbound.is_some() {
            s.push_str("  groups: not sent (the inbound provisioning API takes users; managers travel in them as externalIds)\n");
        } else {
            s.push_str(&format!(
            "  groups: {} created, {} existing, {} unchanged, {} failed; {} memberships added, {} skipped ({} refused); {} managers set, {} failed, {} not among the accepted rows\n",
            self.groups_created, self.groups_existing, self.groups_unchanged, self.groups_failed, self.memberships_added, self.memberships_skipped, self.memberships_failed, self.managers_set, self.managers_failed, self.managers_unresolved
        ));
        }
        if let Some(i) = &self.inbound {
            s.push_str(&format!(
                "  inbound: {} uploads accepted (202), {} refused; {} status reads ({}): {} rows confirmed, {} refused, {} pending{}\n",
                i.uploads_accepted, i.uploads_failed, i.status_reads, i.status_from, i.confirmed, i.refused, i.pending,
                if i.pending > 0 { format!(" under {} requests (pending.csv; run again with the same state to ask after them)", i.pending_requests.len()) } else { String::new() }
            ));
        }
        if let Some(b) = &self.bulk_trial {
            let r = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.0} users/s"));
            s.push_str(&format!(
                "  bulk auto: one request per user {}, /Bulk {}: {}\n",
                r(b.single_users_per_second),
                r(b.bulk_users_per_second),
                b.chosen
            ));
        }
        if let Some(f) = &self.schema {
            if let Some(w) = f.warning() {
                s.push_str(&format!("  schema check: {w}\n"));
            }
            for n in &f.notes {
                s.push_str(&format!("  schema note: {n}\n"));
            }
        }
        if let Some(v) = &self.verification {
            s.push_str(&v.human());
            if v.attributes.keys().any(|a| a.ends_with(":manager")) {
                s.push_str("  the managers counted as set were accepted (2xx) but not kept: the read-back did not find them\n");
            }
        }
        if self.missing > 0 || self.memberships_removed > 0 {
            s.push_str(&format!(
                "  sync: {} users no longer in the export ({} deactivated, {} deleted, {} failed); {} memberships removed\n",
                self.missing, self.deactivated, self.deleted, self.missing_failed, self.memberships_removed
            ));
        }
        if self.throttle.decreases > 0 {
            s.push_str(&format!(
                "  throttled: the target answered 429, so the rate was lowered {} times (lowest {:.0} requests/s){}{}\n",
                self.throttle.decreases,
                self.throttle.lowest.unwrap_or(0.0),
                if self.throttle.futile > 0 { format!("; {} times the 429s did not follow the rate and the decrease was undone", self.throttle.futile) } else { String::new() },
                self.throttle.current.map_or(String::new(), |c| format!("; {c:.0}/s at the end"))
            ));
        }
        if let Some(r) = &self.missing_refused {
            s.push_str(&format!("  missing users left alone: {r}\n"));
        }
        for (code, n) in &self.rejects_by_reason {
            s.push_str(&format!("  rejected {code}: {n}\n"));
        }
        s.push_str("  operation        requests      req/s    p50 ms    p90 ms    p99 ms  p99.9 ms    max ms\n");
        for (op, o) in &self.operations {
            s.push_str(&format!(
                "  {op:<15} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                o.requests,
                o.per_second,
                o.response.p50_ms,
                o.response.p90_ms,
                o.response.p99_ms,
                o.response.p999_ms,
                o.response.max_ms
            ));
        }
        for (e, n) in &self.errors {
            s.push_str(&format!("  answered {e}: {n}\n"));
        }
        s.push_str(&format!(
            "  {:.2} s, {:.0} users/s\n",
            self.elapsed_seconds, self.users_per_second
        ));
        s
    }
}

/// What the inbound uploads did, for the summary.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct InboundOutcome {
    /// Uploads answered 2xx (queued), and refused for good.
    pub uploads_accepted: u64,
    pub uploads_failed: u64,
    /// Status reads sent.
    pub status_reads: u64,
    /// Rows confirmed by a status read, refused by the service, still unconfirmed.
    pub confirmed: u64,
    pub refused: u64,
    pub pending: u64,
    /// Requests some row is still pending under.
    pub pending_requests: Vec<String>,
    /// Where outcomes were read (`none` when nothing says).
    pub status_from: String,
}

fn per_request() -> String {
    "request".into()
}

/// One mapped attribute the target does not declare, or declares with another type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undeclared {
    /// The mapping's name for it (`enterprise.department`).
    pub mapping: String,
    /// Its SCIM path.
    pub attribute: String,
    /// Why it will not be stored as sent.
    pub why: String,
    /// Rows of the export that carry a value for it.
    pub rows: u64,
}

/// What the check found, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaFindings {
    /// Whether the target published schemas the mapping could be checked against.
    pub checked: bool,
    pub notes: Vec<String>,
    pub undeclared: Vec<Undeclared>,
    /// Mapped attributes of schemas published without attribute lists.
    pub unchecked: Vec<String>,
}

impl SchemaFindings {
    /// The warning, one paragraph: what will not be stored and how many rows carry it.
    pub fn warning(&self) -> Option<String> {
        if self.undeclared.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.undeclared.iter().map(|u| u.mapping.as_str()).collect();
        let rows = self.undeclared.iter().map(|u| u.rows).max().unwrap_or(0);
        // Each reason once, with the attributes it applies to.
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for u in &self.undeclared {
            match reasons.iter_mut().find(|(w, _)| *w == u.why) {
                Some((_, v)) => v.push(&u.mapping),
                None => reasons.push((&u.why, vec![&u.mapping])),
            }
        }
        let why = if reasons.len() == 1 {
            reasons[0].0.to_string()
        } else {
            reasons
                .iter()
                .map(|(w, v)| format!("{}: {w}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let counts = if self.undeclared.iter().all(|u| u.rows == rows) {
            String::new()
        } else {
            format!(
                " ({})",
                self.undeclared
                    .iter()
                    .map(|u| format!("{} {}", u.mapping, u.rows))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Some(format!(
            "{}: not in this target's schemas ({why}); {rows} rows carry them{counts}; they will not be stored",
            names.join(", ")
        ))
    }
}

/// One attribute of one user that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub row: u64,
    pub external_id: String,
    pub attribute: String,
    pub sent: Value,
    /// `null` when the target returned nothing for it.
    pub returned: Value,
}

/// What verification found, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The sample asked for (`1%`, `500`, `all`).
    pub sample: String,
    pub users_checked: u64,
    pub users_matching: u64,
    pub users_differing: u64,
    /// Users the target answered 404 for although it had answered their create.
    pub users_missing: u64,
    /// Reads that got no usable answer (not counted as differing).
    pub read_failures: u64,
    /// SCIM path → users for which it differs.
    pub attributes: BTreeMap<String, u64>,
    /// The first differences, for the report.
    pub examples: Vec<Difference>,
    pub groups_checked: u64,
    /// Groups that lack members the import added.
    pub groups_differing: u64,
    /// Members the groups should have and do not.
    pub members_missing: u64,
    /// Why groups were not checked, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_note: Option<String>,
}

impl Verification {
    /// Whether the target kept less than it was sent.
    pub fn differs(&self) -> bool {
        self.users_differing + self.users_missing + self.groups_differing > 0
    }

    pub fn human(&self) -> String {
        let mut s = format!(
            "  verified ({} sample): {} users read back, {} as sent, {} differing, {} missing, {} unreadable",
            self.sample,
            self.users_checked,
            self.users_matching,
            self.users_differing,
            self.users_missing,
            self.read_failures
        );
        s.push_str(&format!(
            "; {} groups checked, {} lack {} members",
            self.groups_checked, self.groups_differing, self.members_missing
        ));
        if let Some(n) = &self.groups_note {
            s.push_str(&format!(" ({n})"));
        }
        s.push('\n');
        for (a, n) in &self.attributes {
            s.push_str(&format!("  not kept as sent: {a} ({n} users)\n"));
        }
        s
    }
}
