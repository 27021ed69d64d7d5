//! replay: an identity provider's provisioning cycle in a dialect — lookups, a create,
//! an update and a deactivation in that provider's shapes, and group pushes that move
//! one member in and one out of the shard's group each cycle.

use serde_json::json;

use super::{create_user, shaped_req, Person, Req, Scenario};
use crate::client::dialect::UpdateStyle;
use crate::gen::names::TITLES;
use crate::metrics::Op;

/// One request of a replayed provisioning cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplayStep {
    LookupNew,
    CreateNew,
    LookupExisting,
    UpdatePatch,
    UpdateGet,
    UpdatePut,
    Deactivate,
    AddMember,
    RemoveMember,
    ReadGroup,
}

impl Scenario {
    /// The steps of one provisioning cycle in the dialect.
    fn replay_program(&self) -> Vec<ReplayStep> {
        let mut p = vec![
            ReplayStep::LookupNew,
            ReplayStep::CreateNew,
            ReplayStep::LookupExisting,
        ];
        if self.dialect().update == UpdateStyle::GetThenPut {
            p.extend([ReplayStep::UpdateGet, ReplayStep::UpdatePut]);
        } else {
            p.push(ReplayStep::UpdatePatch);
        }
        p.extend([
            ReplayStep::Deactivate,
            ReplayStep::AddMember,
            ReplayStep::RemoveMember,
            ReplayStep::ReadGroup,
        ]);
        p
    }

    /// Request `m` of a replayed cycle. Cycle `c` creates a new user, updates and
    /// deactivates existing ones, and moves one member in and one out of the shard's
    /// group: the seeded users are split in halves A (members at the start) and B;
    /// in even epochs B joins and A leaves, one user a cycle, in odd epochs the
    /// reverse, so every add and remove finds the group as it expects.
    pub(super) fn replay(&self, m: u64) -> Req {
        let program = self.replay_program();
        let c = m / program.len() as u64;
        let d = self.dialect();
        let users = &self.seed.users;
        let half = (users.len() / 2).max(1) as u64;
        let (epoch, k) = (c / half, c % half);
        let (a, b) = (
            &users[k as usize],
            &users[((half + k) as usize).min(users.len() - 1)],
        );
        let (joins, leaves) = if epoch.is_multiple_of(2) {
            (b, a)
        } else {
            (a, b)
        };
        let gid = self.seed.group.as_deref().unwrap_or("missing-group");
        let (existing, p) = self.user(c, 6);
        let newcomer = Person::new(&self.tag, "r", self.shard.global(c));
        let title = format!("{} {c}", TITLES[(c % TITLES.len() as u64) as usize]);
        match program[(m % program.len() as u64) as usize] {
            ReplayStep::LookupNew => shaped_req(Op::LookupUser, d.lookup(&newcomer.user_name)),
            ReplayStep::CreateNew => create_user(&newcomer, self.shard.global(c)),
            ReplayStep::LookupExisting => shaped_req(Op::LookupUser, d.lookup(&p.user_name)),
            ReplayStep::UpdatePatch => {
                let mut full = p.body(&title, existing.number);
                if let Some(o) = full.as_object_mut() {
                    o.remove("externalId");
                }
                shaped_req(Op::PatchUser, d.update(&existing.id, &full).swap_remove(0))
            }
            ReplayStep::UpdateGet => shaped_req(
                Op::GetUser,
                d.update(&existing.id, &json!({})).swap_remove(0),
            ),
            ReplayStep::UpdatePut => {
                let full = p.body(&title, existing.number);
                shaped_req(Op::PutUser, d.update(&existing.id, &full).swap_remove(1))
            }
            ReplayStep::Deactivate => {
                let (u, q) = self.user(c, 7);
                shaped_req(
                    Op::DeactivateUser,
                    d.deactivate(&u.id, &q.body(&title, u.number)),
                )
            }
            ReplayStep::AddMember => shaped_req(
                Op::PatchMembers,
                d.add_members(gid, &[joins.id.as_str()], 1).swap_remove(0),
            ),
            ReplayStep::RemoveMember => shaped_req(
                Op::RemoveMembers,
                d.remove_members(gid, &[leaves.id.as_str()], 1)
                    .swap_remove(0),
            ),
            ReplayStep::ReadGroup => {
                let s = d.read_group(gid);
                let op = if s.path.contains("excludedAttributes") {
                    Op::GetGroupNoMembers
                } else {
                    Op::GetGroup
                };
                shaped_req(op, s)
            }
        }
    }
}
