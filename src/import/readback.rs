//! Read-back verification: after an import, a sample of its users is read back and every
//! attribute the mapping wrote is compared with what the target returns; every group's
//! members are checked where the target returns them.
//!
//! A 2xx is not proof: some servers answer 201 to a user with the enterprise extension
//! and keep none of it. The export is read again for the sample (the mapping is
//! deterministic and the sequence numbers are the first pass's), so nothing of the
//! users is kept in memory between sending and checking, whatever the sample size.

use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::path::Path;
use std::str::FromStr;

use hyper::Method;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::group_check::{check_groups, ExpectedGroup};
use super::ids::IdTable;
use super::ingest::{ingest, IngestError, IngestOptions, RowOutcome};
use super::screen::Duplicates;
use crate::client::retry::execute;
use crate::client::{RetryPolicy, ScimClient};
use crate::dispatch::InFlight;
use crate::mapping::MappingSpec;
pub use crate::results::import::{Difference, Verification};
use crate::scim::urns;

/// `--verify`: how many users to read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verify {
    Off,
    /// This many, chosen uniformly.
    Count(u64),
    /// This percentage, and at least 100 (or all, if fewer).
    Percent(f64),
    All,
}

impl Default for Verify {
    fn default() -> Self {
        Verify::Percent(1.0)
    }
}

impl FromStr for Verify {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a sample size; use N, N%, all or off");
        match s.trim() {
            "off" | "none" | "0" => Ok(Verify::Off),
            "all" | "100%" => Ok(Verify::All),
            p if p.ends_with('%') => {
                let v: f64 = p[..p.len() - 1].trim().parse().map_err(|_| bad())?;
                if !(v > 0.0 && v <= 100.0) {
                    return Err(format!(
                        "{s}: the percentage must be above 0 and at most 100"
                    ));
                }
                Ok(Verify::Percent(v))
            }
            n => n.parse().map(Verify::Count).map_err(|_| bad()),
        }
    }
}

impl std::fmt::Display for Verify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verify::Off => f.write_str("off"),
            Verify::Count(n) => write!(f, "{n}"),
            Verify::Percent(p) => write!(f, "{p}%"),
            Verify::All => f.write_str("all"),
        }
    }
}

/// Per-row key, uniform and stable: the sample is the same on every run.
fn key(external_id: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x7e51f1).hash_one(external_id)
}

/// The same fingerprint the dispatcher keys managers by.
fn manager_key(external_id: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x5e9_u64).hash_one(external_id)
}

/// The rows to read back: which sequence numbers, and the fingerprint of each one's
/// manager's externalId (resolved to a sequence number in the second pass, so no
/// externalId → row index of the whole export is kept: that was 30 MB at 1M rows).
struct Selection {
    chosen: std::collections::HashSet<u32, foldhash::fast::RandomState>,
    manager_key_of: HashMap<u32, u64>,
}

fn select(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    verify: Verify,
) -> Result<Selection, IngestError> {
    let min = match verify {
        Verify::Count(n) => n as usize,
        Verify::Percent(_) => 100,
        _ => 0,
    };
    let threshold = match verify {
        Verify::Percent(p) => (p / 100.0 * u64::MAX as f64) as u64,
        Verify::All => u64::MAX,
        _ => 0,
    };
    // The `min` smallest keys (bottom-k sampling: uniform, no random generator).
    let mut bottom: BinaryHeap<(u64, u32)> = BinaryHeap::new();
    let mut chosen = std::collections::HashSet::default();
    let mut wants_manager: Vec<(u32, u64)> = Vec::new();
    each_accepted(path, spec, opts, |s, u| {
        let k = key(u.external_id());
        let take = verify == Verify::All || k < threshold;
        let mut in_heap = false;
        if take {
            chosen.insert(s);
        } else if min > 0 {
            if bottom.len() < min {
                bottom.push((k, s));
                in_heap = true;
            } else if bottom.peek().is_some_and(|&(top, _)| k < top) {
                bottom.pop();
                bottom.push((k, s));
                in_heap = true;
            }
        }
        // Kept only for rows that may end in the sample (in it, or in the heap now).
        if let (true, Some(m)) = (take || in_heap, u.manager()) {
            wants_manager.push((s, manager_key(m)));
        }
        Ok(())
    })?;
    // Percent: the hashed share plus, when it has fewer than 100, the smallest others.
    let short = min.saturating_sub(chosen.len());
    let mut rest: Vec<(u64, u32)> = bottom.into_vec();
    rest.sort_unstable();
    chosen.extend(rest.into_iter().take(short).map(|(_, s)| s));
    let manager_key_of = wants_manager
        .into_iter()
        .filter(|(s, _)| chosen.contains(s))
        .collect();
    Ok(Selection {
        chosen,
        manager_key_of,
    })
}

/// Each accepted user of the export, with the sequence number the import gave it:
/// the same screening (rejects and duplicates dropped), so numbers match the first pass.
pub(super) fn each_accepted(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    mut each: impl FnMut(u32, crate::mapping::MappedUser) -> Result<(), String>,
) -> Result<(), IngestError> {
    let mut dups = Duplicates::for_input(path);
    let mut seq = 0u32;
    ingest(path, spec, opts, |batch| {
        for o in batch {
            if let RowOutcome::User(u) = dups.screen(o) {
                each(seq, u)?;
                seq += 1;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Row number and externalId of the accepted users `seqs`, from one more pass over the
/// export (the import keeps neither per user, only the SCIM ids).
pub(super) fn rows_of(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    seqs: &std::collections::HashSet<u32>,
) -> Result<HashMap<u32, (u64, String)>, IngestError> {
    let mut out = HashMap::new();
    each_accepted(path, spec, opts, |seq, u| {
        if seqs.contains(&seq) {
            out.insert(seq, (u.row, u.external_id().to_string()));
        }
        Ok(())
    })?;
    Ok(out)
}

/// Looks a key up as SCIM does: attribute names are case-insensitive (RFC 7643 §2.1).
fn field<'a>(obj: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    obj.get(k)
        .or_else(|| {
            obj.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// Whether `got` holds what `sent` was: equal JSON, a boolean returned as its string
/// (several servers echo `"True"`), userName compared case-insensitively (RFC 7643 §4.1.1).
fn same(attr: &str, sent: &Value, got: Option<&Value>) -> bool {
    let Some(got) = got else { return false };
    match (sent, got) {
        (Value::String(a), Value::String(b)) if attr == "userName" => a.eq_ignore_ascii_case(b),
        (Value::Bool(a), Value::String(b)) => {
            b.eq_ignore_ascii_case(if *a { "true" } else { "false" })
        }
        (a, b) => a == b,
    }
}

/// The attributes of `sent` that `got` does not hold, as SCIM paths with both values.
pub fn compare(sent: &Value, got: &Value) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    let (Some(sent), Some(got)) = (sent.as_object(), got.as_object()) else {
        return out;
    };
    let empty = Map::new();
    for (k, v) in sent {
        if k == "schemas" {
            continue;
        }
        let g = field(got, k);
        match v {
            Value::Object(sub) => {
                let gsub = g.and_then(Value::as_object).unwrap_or(&empty);
                let sep = if k.contains(':') { ":" } else { "." };
                for (sk, sv) in sub {
                    // The manager: its `value` is what the import set.
                    if let (Value::Object(m), true) = (sv, sk == "manager") {
                        if let Some(mv) = m.get("value") {
                            let gv = field(gsub, sk).and_then(|x| x.get("value"));
                            if !same("value", mv, gv) {
                                out.push((
                                    format!("{k}{sep}manager"),
                                    mv.clone(),
                                    gv.cloned().unwrap_or(Value::Null),
                                ));
                            }
                        }
                        continue;
                    }
                    let gv = field(gsub, sk);
                    if !same(sk, sv, gv) {
                        out.push((
                            format!("{k}{sep}{sk}"),
                            sv.clone(),
                            gv.cloned().unwrap_or(Value::Null),
                        ));
                    }
                }
            }
            Value::Array(items) => {
                let gitems = g
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                for item in items {
                    let Some(item) = item.as_object() else {
                        continue;
                    };
                    let ty = item.get("type").and_then(Value::as_str);
                    // The entry of the same type (or, untyped, the one with the same value).
                    let matching = gitems
                        .iter()
                        .filter_map(Value::as_object)
                        .find(|e| match ty {
                            Some(t) => field(e, "type")
                                .and_then(Value::as_str)
                                .is_some_and(|x| x.eq_ignore_ascii_case(t)),
                            None => field(e, "value") == item.get("value"),
                        });
                    let at = match ty {
                        Some(t) => format!("{k}[type eq \"{t}\"]"),
                        None => k.clone(),
                    };
                    for (sk, sv) in item {
                        if sk == "type" {
                            continue;
                        }
                        let gv = matching.and_then(|e| field(e, sk));
                        if !same(sk, sv, gv) {
                            out.push((
                                format!("{at}.{sk}"),
                                sv.clone(),
                                gv.cloned().unwrap_or(Value::Null),
                            ));
                        }
                    }
                }
            }
            _ => {
                if !same(k, v, g) {
                    out.push((k.clone(), v.clone(), g.cloned().unwrap_or(Value::Null)));
                }
            }
        }
    }
    out
}

/// A sampled user on its way to be read back.
struct Sample {
    row: u64,
    external_id: String,
    id: String,
    sent: Value,
}

enum Read {
    Same,
    Differs(Vec<(String, Value, Value)>),
    Missing,
    Failed,
}

async fn read_back(c: ScimClient, r: RetryPolicy, s: Sample) -> (Sample, Read) {
    let path = format!("/Users/{}", s.id);
    let e = execute(&c, &r, Method::GET, &path, None, false, s.row).await;
    let read = match e.outcome {
        Ok(reply) if reply.status == 404 => Read::Missing,
        Ok(reply) if reply.is_success() => match serde_json::from_slice::<Value>(&reply.body) {
            Ok(got) => {
                let d = compare(&s.sent, &got);
                if d.is_empty() {
                    Read::Same
                } else {
                    Read::Differs(d)
                }
            }
            Err(_) => Read::Failed,
        },
        _ => Read::Failed,
    };
    (s, read)
}

pub(super) struct Inputs<'a> {
    pub(super) path: &'a Path,
    pub(super) spec: &'a MappingSpec,
    pub(super) opts: &'a IngestOptions,
    pub(super) client: &'a ScimClient,
    pub(super) retry: &'a RetryPolicy,
    pub(super) concurrency: usize,
    pub(super) ids: &'a IdTable,
    pub(super) groups: Vec<ExpectedGroup>,
    /// Whether the target returns members on a group read (`None`: unknown, look).
    pub(super) members_in_reads: Option<bool>,
}

const EXAMPLES: usize = 20;

pub(super) async fn verify(
    verify: Verify,
    inp: Inputs<'_>,
    progress: &impl Fn(String),
) -> Result<Verification, IngestError> {
    let mut v = Verification {
        sample: verify.to_string(),
        ..Verification::default()
    };
    let (path, spec, opts) = (inp.path.to_path_buf(), inp.spec.clone(), inp.opts.clone());
    let sel = tokio::task::spawn_blocking(move || select(&path, &spec, &opts, verify))
        .await
        .map_err(|e| IngestError::Sink(format!("verification failed: {e}")))??;
    progress(format!(
        "verify: reading back {} users ({} sample)",
        sel.chosen.len(),
        v.sample
    ));
    // The sampled users, mapped again, stream from the reader thread to the readers,
    // each with its manager's sequence number; a sample whose manager comes later in
    // the file waits for the end of the pass.
    let (tx, mut rx) = mpsc::channel::<(u32, crate::mapping::MappedUser, Option<u32>)>(256);
    let (path, spec, opts) = (inp.path.to_path_buf(), inp.spec.clone(), inp.opts.clone());
    let chosen = sel.chosen;
    let manager_key_of = sel.manager_key_of;
    let reader = tokio::task::spawn_blocking(move || -> Result<(), IngestError> {
        let mut seq_of: HashMap<u64, u32> =
            manager_key_of.values().map(|&k| (k, u32::MAX)).collect();
        let mut waiting: Vec<(u32, crate::mapping::MappedUser, u64)> = Vec::new();
        let stopped = || "verification stopped".to_string();
        each_accepted(&path, &spec, &opts, |s, u| {
            if let Some(slot) = seq_of.get_mut(&manager_key(u.external_id())) {
                // The first row with this externalId, as the import resolved it.
                if *slot == u32::MAX {
                    *slot = s;
                }
            }
            if !chosen.contains(&s) {
                return Ok(());
            }
            match manager_key_of.get(&s) {
                None => tx.blocking_send((s, u, None)).map_err(|_| stopped()),
                Some(k) => match seq_of.get(k).copied().filter(|&m| m != u32::MAX) {
                    Some(m) => tx.blocking_send((s, u, Some(m))).map_err(|_| stopped()),
                    None => {
                        waiting.push((s, u, *k));
                        Ok(())
                    }
                },
            }
        })?;
        for (s, u, k) in waiting {
            let m = seq_of.get(&k).copied().filter(|&m| m != u32::MAX);
            tx.blocking_send((s, u, m))
                .map_err(|_| IngestError::Sink(stopped()))?;
        }
        Ok(())
    });
    let mut set: InFlight<(Sample, Read)> = InFlight::new(inp.concurrency);
    let tally = |v: &mut Verification, (s, read): (Sample, Read)| {
        v.users_checked += 1;
        match read {
            Read::Same => v.users_matching += 1,
            Read::Missing => v.users_missing += 1,
            Read::Failed => {
                v.users_checked -= 1;
                v.read_failures += 1
            }
            Read::Differs(d) => {
                v.users_differing += 1;
                for (attr, sent, returned) in d {
                    *v.attributes.entry(attr.clone()).or_default() += 1;
                    if v.examples.len() < EXAMPLES {
                        v.examples.push(Difference {
                            row: s.row,
                            external_id: s.external_id.clone(),
                            attribute: attr,
                            sent,
                            returned,
                        });
                    }
                }
            }
        }
    };
    while let Some((seq, u, manager)) = rx.recv().await {
        // Users that failed have no id: they are counted as failed already.
        let Some(id) = inp.ids.get(seq) else { continue };
        let Ok(mut sent) = serde_json::from_slice::<Value>(u.body()) else {
            continue;
        };
        if let Some(mid) = manager.and_then(|m| inp.ids.get(m)) {
            if let Some(o) = sent.as_object_mut() {
                let ext = o
                    .entry(urns::ENTERPRISE_USER)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(e) = ext.as_object_mut() {
                    e.insert("manager".into(), serde_json::json!({"value": mid}));
                }
            }
        }
        let sample = Sample {
            row: u.row,
            external_id: u.external_id().to_string(),
            id: id.to_string(),
            sent,
        };
        let task = read_back(inp.client.clone(), inp.retry.clone(), sample);
        set.start(task, |r| tally(&mut v, r)).await;
    }
    set.drain(|r| tally(&mut v, r)).await;
    reader
        .await
        .map_err(|e| IngestError::Sink(format!("verification failed: {e}")))??;
    let g = check_groups(
        &inp.groups,
        inp.ids,
        inp.client,
        inp.retry,
        inp.members_in_reads,
    )
    .await;
    v.groups_checked = g.checked;
    v.groups_differing = g.differing;
    v.members_missing = g.missing;
    v.groups_note = g.note;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sample_sizes_parse() {
        assert_eq!("1%".parse::<Verify>(), Ok(Verify::Percent(1.0)));
        assert_eq!("250".parse::<Verify>(), Ok(Verify::Count(250)));
        assert_eq!("all".parse::<Verify>(), Ok(Verify::All));
        assert_eq!("off".parse::<Verify>(), Ok(Verify::Off));
        assert!("lots".parse::<Verify>().is_err());
        assert!("0%".parse::<Verify>().is_err());
    }

    #[test]
    fn compare_names_each_attribute_not_kept() {
        let ent = urns::ENTERPRISE_USER;
        let sent = json!({"schemas": [urns::USER, ent], "userName": "Ada@x.io", "active": true,
            "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"value": "ada@x.io", "primary": true, "type": "work"}],
            ent: {"department": "R&D", "manager": {"value": "m1"}}});
        // Kept (userName case, type case and "True" for true are not differences).
        let got = json!({"id": "1", "username": "ada@X.io", "active": "True",
            "name": {"givenName": "Ada", "familyName": "L", "formatted": "Ada L"},
            "emails": [{"value": "ada@x.io", "primary": true, "type": "Work"}],
            ent: {"department": "R&D", "manager": {"value": "m1", "displayName": "M"}}});
        assert_eq!(compare(&sent, &got), vec![]);
        // A server that dropped the extension and changed the family name.
        let got = json!({"id": "1", "userName": "ada@x.io", "active": true,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@x.io", "primary": true, "type": "work"}]});
        let paths: Vec<String> = compare(&sent, &got).into_iter().map(|d| d.0).collect();
        assert_eq!(
            paths,
            [
                "name.familyName".to_string(),
                format!("{ent}:department"),
                format!("{ent}:manager")
            ]
        );
        let d = compare(&sent, &json!({"userName": "ada@x.io"}));
        assert!(
            d.iter().any(|x| x.0 == "emails[type eq \"work\"].value"),
            "{d:?}"
        );
        assert!(d.iter().any(|x| x.0 == "active" && x.2.is_null()));
    }
}
