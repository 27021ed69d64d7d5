//! group-members: build one large group by membership PATCHes, read it with and
//! without its members now and then, then remove everyone — each request tagged with
//! the group's size when it went out, for the latency-against-size curve (the classic
//! SCIM scaling problem).

use hyper::Method;
use serde_json::json;

use super::{bucket, Params, Req, Scenario};
use crate::metrics::Op;
use crate::scim::urns;

/// One step of the group-members sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum GroupStep {
    Add(u64),
    Remove(u64),
    Read { members: bool },
}

/// The whole sequence, with the group's size before each step.
pub(super) fn steps(params: &Params) -> Vec<(GroupStep, u64)> {
    let mut steps = Vec::new();
    let n = params.group_size;
    let b = params.member_batch.max(1);
    let batches = n.div_ceil(b);
    let probe_every = batches.div_ceil(10).max(1);
    let mut size = 0;
    for k in 0..batches {
        steps.push((GroupStep::Add(k), size));
        size = (size + b).min(n);
        if (k + 1) % probe_every == 0 || k + 1 == batches {
            steps.push((GroupStep::Read { members: true }, size));
            steps.push((GroupStep::Read { members: false }, size));
        }
    }
    for k in 0..batches {
        steps.push((GroupStep::Remove(k), size));
        size = size.saturating_sub(b);
    }
    steps.push((GroupStep::Read { members: true }, 0));
    steps
}

impl Scenario {
    pub(super) fn group_step(&self, m: u64) -> Req {
        let gid = self.seed.group.as_deref().unwrap_or("missing-group");
        let (step, size) = self.steps[(m as usize).min(self.steps.len() - 1)];
        let b = self.params.member_batch.max(1);
        let span = self.params.group_size;
        let members = |k: u64| {
            let lo = (k * b) as usize;
            let hi = (((k + 1) * b) as usize).min(self.seed.users.len());
            &self.seed.users[lo.min(hi)..hi]
        };
        let mut r = match step {
            GroupStep::Add(k) => Req::with_body(
                Op::PatchMembers,
                Method::PATCH,
                format!("/Groups/{gid}"),
                json!({"schemas": [urns::PATCH_OP], "Operations": [{
                    "op": "add", "path": "members",
                    "value": members(k).iter().map(|u| json!({"value": u.id})).collect::<Vec<_>>(),
                }]}),
            ),
            GroupStep::Remove(k) => Req::with_body(
                Op::RemoveMembers,
                Method::PATCH,
                format!("/Groups/{gid}"),
                json!({"schemas": [urns::PATCH_OP], "Operations": members(k).iter().map(|u| json!({
                    "op": "remove", "path": format!("members[value eq \"{}\"]", u.id),
                })).collect::<Vec<_>>()}),
            ),
            GroupStep::Read { members: true } => Req::get(Op::GetGroup, format!("/Groups/{gid}")),
            GroupStep::Read { members: false } => Req::get(
                Op::GetGroupNoMembers,
                format!("/Groups/{gid}?excludedAttributes=members"),
            ),
        };
        r.curve = Some(("by_group_size", bucket(size, span)));
        r
    }
}
