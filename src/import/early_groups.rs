//! Memberships while users are still being created, for imports that send one request
//! per user. A big group's adds have to go one PATCH after the other (servers that
//! read-modify-write a group lose members when it is patched concurrently), so left to
//! the groups phase they are a chain as long as the group: a 96,000-member "All
//! Workers" group was 960 PATCHes in a row after the last user, about a quarter of a
//! 100,000-row import's wall time. Here a group is created once `--member-batch` of its
//! members exist, and each full batch is added while the users go on; the groups phase
//! then adds what is left, as it does for groups a /Bulk batch created.
//!
//! Nothing here is the last word: a create without an id leaves the group to the phase
//! (which looks it up before creating it), and a refused add leaves its members to it.
//! Only groups the state does not know, and only with `--lookup never`: a group that may
//! exist is found and compared by the phase, not created here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use hyper::Method;

use super::bulk_groups::{BulkGroups, Slot};
use super::ids::IdTable;
use super::worker::{account, Worker};
use crate::client::retry::{execute, Executed};
use crate::dispatch::inflight::Budget;
use crate::dispatch::InFlight;
use crate::metrics::{Op, Recorder};

#[derive(Default)]
struct Group {
    /// Its SCIM id, once created here.
    id: Option<String>,
    /// Left to the groups phase: a create without an id, or an add refused.
    left: bool,
    /// Members created and not yet added.
    pending: Vec<u32>,
    /// Members whose add was confirmed.
    sent: Vec<u32>,
    /// A create or an add of this group is in flight (one at a time per group).
    busy: bool,
    /// Waiting for a free request slot.
    queued: bool,
}

/// What a finished request did for its group.
pub(super) enum Step {
    Created(String, Executed),
    Added(String, Vec<u32>, Executed),
}

pub(super) struct EarlyGroups {
    worker: Arc<Worker>,
    per: usize,
    groups: HashMap<String, Group>,
    /// Groups the state knows: the phase compares them with the target.
    skip: HashSet<String>,
    /// At most a quarter of `--concurrency` (1 to 16) of these requests; they count in
    /// the users' budget and go ahead of them: the users take what is left.
    inflight: InFlight<Step>,
    /// Groups with a full batch waiting for a slot, oldest first.
    waiting: VecDeque<String>,
}

impl EarlyGroups {
    pub(super) fn new(
        worker: Arc<Worker>,
        per: usize,
        known: impl IntoIterator<Item = String>,
        budget: &Budget,
    ) -> Self {
        let limit = (budget.limit() / 4).clamp(1, 16);
        EarlyGroups {
            worker,
            per: per.max(1),
            groups: HashMap::new(),
            skip: known.into_iter().collect(),
            inflight: InFlight::within(budget, limit),
            waiting: VecDeque::new(),
        }
    }

    /// Requests in flight.
    pub(super) fn len(&self) -> usize {
        self.inflight.len()
    }

    /// A user is in: it joins each of its groups' pending members, and a group with a
    /// full batch sends it.
    pub(super) fn joined<'a>(
        &mut self,
        seq: u32,
        names: impl IntoIterator<Item = &'a str>,
        ids: &IdTable,
    ) {
        for name in names {
            if self.skip.contains(name) {
                continue;
            }
            let g = self.groups.entry(name.to_string()).or_default();
            g.pending.push(seq);
            if g.pending.len() >= self.per {
                self.pump(name.to_string(), ids);
            }
        }
    }

    /// Starts the group's next request, if it has a full batch and nothing in flight;
    /// queues it when every slot is taken.
    fn pump(&mut self, name: String, ids: &IdTable) {
        let Some(g) = self.groups.get_mut(&name) else {
            return;
        };
        if g.busy || g.left || g.queued || g.pending.len() < self.per {
            return;
        }
        if !self.inflight.below_own_limit() {
            g.queued = true;
            self.waiting.push_back(name);
            return;
        }
        let w = self.worker.clone();
        g.busy = true;
        match &g.id {
            None => self.inflight.start_now(async move {
                let body = super::groups::group_body(&name);
                let e = execute(
                    &w.client,
                    &w.retry,
                    Method::POST,
                    "/Groups",
                    Some(&body),
                    true,
                    11,
                )
                .await;
                Step::Created(name, e)
            }),
            Some(gid) => {
                let chunk: Vec<u32> = g.pending.drain(..self.per).collect();
                let member_ids: Vec<&str> = chunk.iter().filter_map(|&m| ids.get(m)).collect();
                let s = w
                    .dialect
                    .add_members(gid, &member_ids, self.per)
                    .swap_remove(0);
                let body = s.body;
                self.inflight.start_now(async move {
                    let e = execute(
                        &w.client,
                        &w.retry,
                        Method::PATCH,
                        &s.path,
                        body.as_deref(),
                        false,
                        13,
                    )
                    .await;
                    Step::Added(name, chunk, e)
                });
            }
        }
    }

    /// The next finished request, `None` when none is in flight (cancel-safe).
    pub(super) async fn next(&mut self) -> Option<Step> {
        self.inflight.next().await
    }

    /// Counts a finished request into `rec`, records a created group in the state (a
    /// re-run after a crash then compares its members instead of creating it again),
    /// and starts the group's next batch, or a waiting group's.
    pub(super) fn settle(
        &mut self,
        step: Step,
        rec: &mut Recorder,
        state: Option<&super::state::State>,
        ids: &IdTable,
        stopping: bool,
    ) {
        let name = match step {
            Step::Created(name, mut e) => {
                let id = match &e.outcome {
                    Ok(rep) if rep.is_success() => rep.resource_id(),
                    _ => None,
                };
                account(rec, Op::CreateGroup, &mut e);
                if let (Some(st), Some(id)) = (state, &id) {
                    st.record(super::state::Record::Group {
                        name: name.clone(),
                        scim_id: id.clone(),
                        members_hash: 0,
                    });
                }
                if let Some(g) = self.groups.get_mut(&name) {
                    g.busy = false;
                    g.left = id.is_none();
                    g.id = id;
                }
                name
            }
            Step::Added(name, chunk, mut e) => {
                let ok = account(rec, Op::PatchMembers, &mut e) == 1;
                if let Some(g) = self.groups.get_mut(&name) {
                    g.busy = false;
                    if ok {
                        g.sent.extend(chunk);
                    } else {
                        // The phase adds these (and reports them if refused again).
                        g.left = true;
                    }
                }
                name
            }
        };
        if stopping {
            return;
        }
        while self.inflight.below_own_limit() {
            let Some(n) = self.waiting.pop_front() else {
                break;
            };
            if let Some(g) = self.groups.get_mut(&n) {
                g.queued = false;
            }
            self.pump(n, ids);
        }
        self.pump(name, ids);
    }

    /// What the groups phase starts from, in the form a /Bulk import leaves it: the
    /// groups created here with the members confirmed (the phase adds the rest without
    /// reading the group back), and the creates it has to look up.
    pub(super) fn finish(self) -> BulkGroups {
        let mut bg = BulkGroups::new(HashMap::new(), self.per);
        for (name, g) in self.groups {
            match g.id {
                Some(id) => {
                    bg.slots.insert(name.clone(), Slot::Known(id));
                    bg.created.insert(name.clone());
                    bg.sent.insert(name, g.sent);
                }
                None if g.left => {
                    bg.slots.insert(name, Slot::Unsure);
                }
                None => {}
            }
        }
        bg
    }
}
