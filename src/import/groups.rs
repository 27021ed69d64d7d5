//! The groups phase: find or create each group, then bring its members to what the
//! export says — adds in the dialect's batches, and for a group that existed, removal
//! of the members who left. One group's requests go one after the other (servers that
//! read-modify-write lose members when one group is patched concurrently).

use hyper::Method;
use serde_json::{json, Value};

use super::config::Lookup;
use super::worker::filter_query;
use crate::client::dialect::Dialect;
use crate::client::retry::{execute, Attempt, Executed};
use crate::client::{Decision, RetryPolicy, ScimClient};
use crate::metrics::{Op, Recorder};
use crate::scim::urns;

pub(super) struct GroupResult {
    pub(super) name: String,
    /// The group's SCIM id, once found or created.
    pub(super) id: Option<String>,
    pub(super) members_hash: u64,
    pub(super) created: bool,
    pub(super) existed: bool,
    pub(super) added: u64,
    pub(super) removed: u64,
    pub(super) skipped: u64,
    /// Every attempt sent for this group, each its own sample.
    pub(super) attempts: Vec<(Op, Attempt)>,
    /// Members whose add the target refused: (member's SCIM id, status, detail).
    pub(super) refused: Vec<(String, String, String)>,
}

/// What the groups phase did, summed over groups.
#[derive(Default)]
pub(super) struct GroupTotals {
    pub(super) created: u64,
    pub(super) existing: u64,
    pub(super) unchanged: u64,
    pub(super) failed: u64,
    pub(super) added: u64,
    pub(super) removed: u64,
    pub(super) skipped: u64,
    /// (name, SCIM id) of each group found or created, for verification.
    pub(super) ids: Vec<(String, String)>,
    /// Member adds the target refused: (member's SCIM id, status, detail).
    pub(super) refused: Vec<(String, String, String)>,
}

impl GroupTotals {
    pub(super) fn add(
        &mut self,
        rec: &mut Recorder,
        state: Option<&super::state::State>,
        mut g: GroupResult,
    ) {
        for (op, a) in &g.attempts {
            rec.attempt(*op, &a.timing, a.error.as_deref());
        }
        self.created += g.created as u64;
        self.existing += g.existed as u64;
        self.failed += (!g.created && !g.existed) as u64;
        self.added += g.added;
        self.removed += g.removed;
        self.skipped += g.skipped;
        self.refused.extend(std::mem::take(&mut g.refused));
        if let Some(id) = &g.id {
            self.ids.push((g.name.clone(), id.clone()));
        }
        // Recorded only when every member went in, so a partial group is retried next run.
        if let (Some(st), Some(id), 0) = (state, &g.id, g.skipped) {
            st.record(super::state::Record::Group {
                name: g.name,
                scim_id: id.clone(),
                members_hash: g.members_hash,
            });
        }
    }
}

/// Hash of a group's sorted member SCIM ids: an unchanged hash means nothing to send.
pub(super) fn members_hash(members: &[u32], ids: &super::ids::IdTable) -> u64 {
    use std::hash::BuildHasher;
    let mut v: Vec<&str> = members.iter().filter_map(|&m| ids.get(m)).collect();
    v.sort_unstable();
    foldhash::quality::FixedState::with_seed(0x6a0b).hash_one(&v)
}

pub(super) async fn find_group(
    c: &ScimClient,
    r: &RetryPolicy,
    name: &str,
) -> (Executed, Option<String>) {
    let path = format!(
        "/Groups?filter={}&excludedAttributes=members",
        filter_query("displayName", name)
    );
    let e = execute(c, r, Method::GET, &path, None, false, 7).await;
    let id =
        match &e.outcome {
            Ok(rep) if rep.is_success() => serde_json::from_slice::<Value>(&rep.body)
                .ok()
                .and_then(|v| {
                    v["Resources"]
                        .get(0)
                        .and_then(|x| x["id"].as_str())
                        .map(str::to_string)
                }),
            _ => None,
        };
    (e, id)
}

/// The body of a group's create: its name, no members (they go in by PATCH).
pub(super) fn group_body(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemas": [urns::GROUP], "displayName": name})).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn provision_group(
    c: &ScimClient,
    r: &RetryPolicy,
    dialect: &'static Dialect,
    lookup: Lookup,
    name: &str,
    members: &[u32],
    ids: &super::ids::IdTable,
    per: usize,
    known_id: Option<String>,
    members_hash: u64,
    created_in_bulk: Option<Vec<u32>>,
    bulk_ops: Option<usize>,
) -> GroupResult {
    let mut g = GroupResult {
        name: name.to_string(),
        id: None,
        members_hash,
        created: created_in_bulk.is_some(),
        existed: known_id.is_some() && created_in_bulk.is_none(),
        added: 0,
        removed: 0,
        skipped: 0,
        attempts: Vec::new(),
        refused: Vec::new(),
    };
    let call = |op: Op, e: &mut Executed, g: &mut GroupResult| {
        g.attempts.extend(e.take_attempts(op));
    };
    let mut id = known_id;
    if id.is_none() && lookup != Lookup::Never {
        let (mut e, found) = find_group(c, r, name).await;
        call(Op::LookupGroup, &mut e, &mut g);
        if found.is_some() {
            g.existed = true;
            id = found;
        }
    }
    // As for users: a create that may have reached the server is looked up, and sent
    // again only if it did not.
    let body = group_body(name);
    for _ in 0..3 {
        if id.is_some() {
            break;
        }
        let mut e = execute(c, r, Method::POST, "/Groups", Some(&body), true, 11).await;
        call(Op::CreateGroup, &mut e, &mut g);
        match (&e.decision, &e.outcome) {
            (Decision::Done, Ok(rep)) if rep.is_success() => {
                id = rep.resource_id();
                g.created = id.is_some();
                break;
            }
            (d @ (Decision::Conflict | Decision::LookUpFirst), _) => {
                let conflict = *d == Decision::Conflict;
                let (mut e, found) = find_group(c, r, name).await;
                call(Op::LookupGroup, &mut e, &mut g);
                if found.is_some() {
                    // Someone else's group on a 409; ours if only the answer was lost.
                    g.existed = conflict;
                    g.created = !conflict;
                    id = found;
                }
            }
            _ => break,
        }
    }
    let Some(gid) = id else {
        g.skipped = members.len() as u64;
        return g;
    };
    g.id = Some(gid.clone());
    // Created by a Bulk batch of this run with these members: the rest is to add, and
    // the target's member list need not be read.
    let mut sent = created_in_bulk.unwrap_or_default();
    sent.sort_unstable();
    sent.dedup();
    g.added += sent.len() as u64;
    let pending: Vec<u32> = members
        .iter()
        .copied()
        .filter(|m| sent.binary_search(m).is_err())
        .collect();
    drop(sent);
    let member_ids: Vec<&str> = pending.iter().filter_map(|&m| ids.get(m)).collect();
    g.skipped += (pending.len() - member_ids.len()) as u64;
    // A group that existed: memberships follow the export. Read its members and send
    // only the difference; a target that never returns members (AWS) gets every add
    // again (adds are idempotent) and no removals.
    // Without a current membership to compare with, every member is added (in place:
    // a copy of a 300,000-member list for each of 16 groups in flight was ~80 MB).
    let mut to_add: Vec<&str> = member_ids;
    if g.existed {
        let mut e = execute(
            c,
            r,
            Method::GET,
            &format!("/Groups/{gid}"),
            None,
            false,
            29,
        )
        .await;
        call(Op::GetGroup, &mut e, &mut g);
        let current: Option<std::collections::HashSet<String>> = e
            .outcome
            .as_ref()
            .ok()
            .filter(|rep| rep.is_success())
            .and_then(|rep| serde_json::from_slice::<Value>(&rep.body).ok())
            .and_then(|v| {
                v.get("members").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(|m| m["value"].as_str().map(str::to_string))
                        .collect()
                })
            });
        if let Some(current) = current {
            let wanted: std::collections::HashSet<&str> = to_add.iter().copied().collect();
            to_add.retain(|id| !current.contains(*id));
            let leaving: Vec<&str> = current
                .iter()
                .map(String::as_str)
                .filter(|id| !wanted.contains(id))
                .collect();
            let batch = per.min(dialect.member_remove_batch).max(1);
            for chunk in leaving.chunks(batch) {
                let s = dialect.remove_members(&gid, chunk, batch).swap_remove(0);
                let mut e =
                    execute(c, r, Method::PATCH, &s.path, s.body.as_deref(), false, 31).await;
                call(Op::RemoveMembers, &mut e, &mut g);
                match &e.outcome {
                    Ok(rep) if rep.is_success() => g.removed += chunk.len() as u64,
                    _ => g.skipped += chunk.len() as u64,
                }
            }
        }
    }
    // With /Bulk, the adds travel as PATCH operations of `per` members, many to a
    // request (processed in order, as one group's changes must be).
    if let Some(max_ops) = bulk_ops {
        for ops in to_add.chunks(per * max_ops.max(1)) {
            let mut body = Vec::new();
            super::bulk::open_request(&mut body);
            let chunks: Vec<&[&str]> = ops.chunks(per).collect();
            for (k, chunk) in chunks.iter().enumerate() {
                if k > 0 {
                    body.push(b',');
                }
                let s = dialect.add_members(&gid, chunk, per).swap_remove(0);
                body.extend_from_slice(br#"{"method":"PATCH","path":"#);
                let _ = serde_json::to_writer(&mut body, &s.path);
                body.extend_from_slice(br#","data":"#);
                body.extend_from_slice(s.body.as_deref().unwrap_or(b"null"));
                body.push(b'}');
            }
            body.extend_from_slice(b"]}");
            let mut e = execute(c, r, Method::POST, "/Bulk", Some(&body), false, 37).await;
            call(Op::Bulk, &mut e, &mut g);
            let statuses: Vec<String> = super::bulk::answers(&e.outcome)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, status, _)| status)
                .collect();
            for (k, chunk) in chunks.iter().enumerate() {
                match statuses.get(k) {
                    Some(s) if s.starts_with('2') => g.added += chunk.len() as u64,
                    other => {
                        g.skipped += chunk.len() as u64;
                        let status = other.map_or("no answer".to_string(), |s| s.clone());
                        refuse(
                            &mut g,
                            chunk,
                            &status,
                            "the /Bulk operation adding it failed",
                        );
                    }
                }
            }
        }
        return g;
    }
    // One PATCH body at a time: a group of 300,000 members built up front as JSON
    // values took ~60 MB, and 16 groups run at once.
    for chunk in to_add.chunks(per) {
        let s = dialect.add_members(&gid, chunk, per).swap_remove(0);
        let mut e = execute(c, r, Method::PATCH, &s.path, s.body.as_deref(), false, 13).await;
        call(Op::PatchMembers, &mut e, &mut g);
        match &e.outcome {
            Ok(rep) if rep.is_success() => g.added += chunk.len() as u64,
            o => {
                g.skipped += chunk.len() as u64;
                let status = crate::client::retry::error_key(o).unwrap_or_default();
                refuse(&mut g, chunk, &status, &super::worker::detail(o));
            }
        }
    }
    g
}

/// Members refused are kept (to a bound) so each becomes a line of failed.csv.
const REFUSED_KEPT: usize = 100_000;

fn refuse(g: &mut GroupResult, chunk: &[&str], status: &str, detail: &str) {
    let room = REFUSED_KEPT.saturating_sub(g.refused.len());
    for id in chunk.iter().take(room) {
        g.refused.push((
            id.to_string(),
            status.to_string(),
            format!("not added to group '{}': {detail}", g.name),
        ));
    }
}
