//! The memberships phase: every group of the export found or created, then its members
//! added in batches (`--member-batch`). Groups run side by side, the batches of one
//! group one after the other: servers that read-modify-write a group lose members when
//! it is patched concurrently. Groups the /Bulk batches already created or filled are
//! finished from what those batches did.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::bulk_groups::{BulkGroups, Slot};
use super::config::{ImportConfig, Lookup};
use super::groups::{members_hash, provision_group, GroupResult, GroupTotals};
use super::ids::IdTable;
use super::ingest::{IngestError, IngestOptions};
use super::readback::Verify;
use super::state::State;
use super::worker::Tally;
use crate::client::ScimClient;
use crate::dispatch::InFlight;
use crate::mapping::MappingSpec;

/// Groups in flight at once: each runs its batches in order, and a few side by side
/// keep a target busy without patching one group twice at a time.
const GROUPS_IN_FLIGHT: usize = 16;

/// What the phase did, and what verification will look for.
pub(super) struct Memberships {
    pub(super) totals: GroupTotals,
    /// The members this import put in each group (empty unless verifying).
    pub(super) members: HashMap<String, Arc<[u32]>>,
}

/// The groups to visit: the export's, and those the state knows that no row names any
/// more, with an empty member list so their members leave.
pub(super) fn to_visit(
    mut groups: BTreeMap<String, Vec<u32>>,
    state: Option<&State>,
) -> BTreeMap<String, Vec<u32>> {
    if let Some(st) = state {
        for name in st.groups.keys() {
            groups.entry(name.clone()).or_default();
        }
    }
    groups
}

/// Finds or creates each group and sets its members.
#[allow(clippy::too_many_arguments)]
pub(super) async fn provision(
    client: &ScimClient,
    cfg: &ImportConfig,
    lookup: Lookup,
    t: &mut Tally,
    ids: &Arc<IdTable>,
    groups: BTreeMap<String, Vec<u32>>,
    mut bulk_groups: Option<&mut BulkGroups>,
    (bulk_limits, bulk_max_ops): (Option<(usize, usize)>, usize),
) -> Memberships {
    let mut gt = GroupTotals::default();
    let mut inflight: InFlight<GroupResult> =
        InFlight::new(cfg.concurrency.clamp(1, GROUPS_IN_FLIGHT));
    // What verification will look for in each group: the members this import put in.
    let mut group_members: HashMap<String, Arc<[u32]>> = HashMap::new();
    for (name, members) in groups {
        let members: Arc<[u32]> = members.into();
        if cfg.verify != Verify::Off {
            group_members.insert(name.clone(), members.clone());
        }
        let members_hash = members_hash(&members, ids);
        let known = t
            .state
            .as_ref()
            .and_then(|st| st.groups.get(&name))
            .cloned();
        if let Some((_, h)) = &known {
            if *h == members_hash {
                // Same members as last time: nothing to send.
                gt.unchanged += 1;
                continue;
            }
        }
        let (c, r, ids, lookup, per, dialect) = (
            client.clone(),
            cfg.retry.clone(),
            ids.clone(),
            lookup,
            cfg.member_batch.max(1),
            cfg.dialect,
        );
        // What the Bulk batches did for this group.
        let (sent, created_in_bulk, slot) = match bulk_groups.as_mut() {
            Some(bg) => (
                bg.sent.remove(&name),
                bg.created.contains(&name),
                bg.slots.get(&name).cloned(),
            ),
            None => (None, false, None),
        };
        let known_id = known.map(|k| k.0).or(match &slot {
            Some(Slot::Known(id)) => Some(id.clone()),
            _ => None,
        });
        let lookup = match slot {
            // A create that may have been applied unanswered: look before creating.
            Some(Slot::Unsure) if lookup == Lookup::Never => Lookup::OnConflict,
            // Looked up during the import and not there.
            Some(Slot::Absent) => Lookup::Never,
            _ => lookup,
        };
        // Members added by PATCH in batches to a group that existed: counted here, the
        // rest found missing when its members are compared.
        // Adds packed into /Bulk too: as many `per`-member operations as fit.
        let bulk_adds =
            bulk_limits.map(|(_, bytes)| bulk_max_ops.min(bytes / (per * 48 + 256)).max(1));
        let (exact, pre_added) = if created_in_bulk {
            (Some(sent.unwrap_or_default()), 0)
        } else {
            (None, sent.map_or(0, |s| s.len() as u64))
        };
        let task = async move {
            let mut g = provision_group(
                &c,
                &r,
                dialect,
                lookup,
                &name,
                &members,
                &ids,
                per,
                known_id,
                members_hash,
                exact,
                bulk_adds,
            )
            .await;
            g.added += pre_added;
            g
        };
        inflight
            .start(task, |g| gt.add(&mut t.rec, t.state.as_ref(), g))
            .await;
    }
    inflight
        .drain(|g| gt.add(&mut t.rec, t.state.as_ref(), g))
        .await;
    Memberships {
        totals: gt,
        members: group_members,
    }
}

/// Member adds the target refused: each a failure of that row's reference, written to
/// failed.csv with the row it came from (read again from the file by sequence number).
pub(super) async fn write_refused(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    t: &mut Tally,
    gt: &GroupTotals,
    ids: &IdTable,
) -> Result<(), IngestError> {
    if gt.refused.is_empty() || t.failed_out.is_none() {
        return Ok(());
    }
    {
        // One user may be refused by several groups: SCIM id → sequence number once.
        let mut seq_of_id: HashMap<&str, Option<u32>> = gt
            .refused
            .iter()
            .map(|(id, _, _)| (id.as_str(), None))
            .collect();
        for seq in 0..ids.len() as u32 {
            if let Some(slot) = ids.get(seq).and_then(|id| seq_of_id.get_mut(id)) {
                *slot = Some(seq);
            }
        }
        let seq_of_ref: Vec<Option<u32>> = gt
            .refused
            .iter()
            .map(|(id, _, _)| seq_of_id.get(id.as_str()).copied().flatten())
            .collect();
        let seqs: HashSet<u32> = seq_of_ref.iter().flatten().copied().collect();
        let (p, sp, o) = (path.to_path_buf(), spec.clone(), opts.clone());
        let rows =
            tokio::task::spawn_blocking(move || super::readback::rows_of(&p, &sp, &o, &seqs))
                .await
                .map_err(|e| IngestError::Sink(format!("failed.csv: {e}")))??;
        for ((_, status, detail), seq) in gt.refused.iter().zip(seq_of_ref) {
            let (row, ext) = seq
                .and_then(|s| rows.get(&s).cloned())
                .unwrap_or((0, String::new()));
            t.write_failed(row, &ext, "member", status, detail);
        }
        if let Some(w) = t.failed_out.as_mut() {
            let _ = w.flush();
        }
    }
    Ok(())
}
