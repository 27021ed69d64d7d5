//! Staged membership changes of one group PATCH.
//!
//! The PATCH engine hands member operations to a [`MemberOverlay`], which validates them
//! (the member exists, the profile's limits hold) and records them without touching the
//! group. Only when the whole request succeeded are they committed — O(k) for k changes,
//! whatever the group's size — which keeps the request atomic (RFC 7644 §3.5.2) and avoids
//! the read-modify-write races that make other servers lose members under concurrent
//! PATCHes.

use indexmap::IndexMap;
use serde_json::{json, Value};

use super::profile::Profile;
use super::store::{Hasher, Inner, Member, Members};
use crate::scim::error::ScimError;
use crate::scim::filter::CompiledFilter;
use crate::scim::patch::MemberStage;

/// What a PATCH does to a group's members, ready to commit.
#[derive(Debug, Default)]
pub struct MemberChanges {
    pub cleared: bool,
    /// id → `Some` to add, `None` to remove; in request order.
    pub changes: IndexMap<String, Option<Member>, Hasher>,
}

impl MemberChanges {
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.changes.is_empty()
    }

    /// Applies the changes to the group `group_id` and to the reverse index.
    pub fn commit(self, inner: &mut Inner, group_id: &str) {
        let Some(entry) = inner.groups.by_id.get_mut(group_id) else {
            return;
        };
        let members = entry.members.get_or_insert_with(Members::default);
        let mut gone: Vec<String> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        if self.cleared {
            gone.extend(members.drain(..).map(|(k, _)| k));
        }
        for (id, ch) in self.changes {
            match ch {
                Some(m) => {
                    if members.insert(id.clone(), m).is_none() {
                        added.push(id);
                    }
                }
                None => {
                    if members.swap_remove(&id).is_some() {
                        gone.push(id);
                    }
                }
            }
        }
        for id in gone {
            if !inner
                .groups
                .by_id
                .get(group_id)
                .and_then(|e| e.members.as_ref())
                .is_some_and(|m| m.contains_key(&id))
            {
                inner.remove_membership(group_id, &id);
            }
        }
        for id in added {
            inner.add_membership(group_id, &id);
        }
    }
}

/// A [`MemberStage`] over a group's current members.
pub struct MemberOverlay<'a> {
    inner: &'a Inner,
    base: Option<&'a Members>,
    profile: &'a Profile,
    group_id: Option<&'a str>,
    pub staged: MemberChanges,
    requested_adds: usize,
    requested_removes: usize,
}

impl<'a> MemberOverlay<'a> {
    pub fn new(
        inner: &'a Inner,
        base: Option<&'a Members>,
        profile: &'a Profile,
        group_id: Option<&'a str>,
    ) -> Self {
        MemberOverlay {
            inner,
            base,
            profile,
            group_id,
            staged: MemberChanges::default(),
            requested_adds: 0,
            requested_removes: 0,
        }
    }

    fn contains(&self, id: &str) -> bool {
        match self.staged.changes.get(id) {
            Some(ch) => ch.is_some(),
            None => !self.staged.cleared && self.base.is_some_and(|b| b.contains_key(id)),
        }
    }

    fn check_totals(&self) -> Result<(), ScimError> {
        if let Some(max) = self.profile.max_member_changes_per_patch {
            if self.requested_adds + self.requested_removes > max {
                return Err(ScimError::invalid_value(format!(
                    "at most {max} membership changes per request on this server; split the change into batches of {max}"
                )));
            }
        }
        if let Some(max) = self.profile.max_member_removes_per_patch {
            if self.requested_removes > max {
                return Err(ScimError::invalid_value(format!(
                    "at most {max} member removal(s) per request on this server; send one request per removal"
                )));
            }
        }
        Ok(())
    }

    /// The current members as JSON elements (for a filter that is not `value eq`).
    fn current(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if !self.staged.cleared {
            if let Some(b) = self.base {
                for (id, m) in b {
                    if !self.staged.changes.contains_key(id) {
                        out.push((id.clone(), member_json(id, m)));
                    }
                }
            }
        }
        for (id, ch) in &self.staged.changes {
            if let Some(m) = ch {
                out.push((id.clone(), member_json(id, m)));
            }
        }
        out
    }
}

pub fn member_json(id: &str, m: &Member) -> Value {
    let mut v = json!({"value": id, "type": m.kind.name()});
    if let Some(d) = &m.display {
        v["display"] = json!(d);
    }
    v
}

impl MemberStage for MemberOverlay<'_> {
    fn add(&mut self, members: Vec<Value>) -> Result<(), ScimError> {
        if let Some(max) = self.profile.max_member_adds_per_op {
            if members.len() > max {
                return Err(ScimError::invalid_value(format!(
                    "at most {max} members can be added by one operation on this server, got {}; split them",
                    members.len()
                )));
            }
        }
        self.requested_adds += members.len();
        self.check_totals()?;
        for m in members {
            let Some(id) = m.get("value").and_then(Value::as_str) else {
                return Err(ScimError::invalid_value(
                    "each member needs a 'value' with the member's id",
                ));
            };
            let Some(kind) = self.inner.kind_of(id) else {
                return Err(ScimError::invalid_value(format!(
                    "member '{id}' is neither a User nor a Group on this server; create it first"
                )));
            };
            if Some(id) == self.group_id {
                return Err(ScimError::invalid_value(
                    "a group cannot be a member of itself",
                ));
            }
            if self.contains(id) {
                // RFC 7644 §3.5.2.1: adding an existing value is a no-op success; JumpCloud
                // and Entra ID repeat adds.
                continue;
            }
            if self.inner.drops_member(self.group_id, id) {
                // `serve --drop-members`: answered as added, never kept.
                continue;
            }
            let display = m
                .get("display")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let e = self.inner.table(kind).by_id.get(id)?;
                    e.attrs
                        .get("displayName")
                        .or_else(|| e.attrs.get("userName"))?
                        .as_str()
                        .map(str::to_string)
                });
            self.staged
                .changes
                .insert(id.to_string(), Some(Member { kind, display }));
        }
        Ok(())
    }

    fn remove_ids(&mut self, ids: Vec<String>) -> Result<(), ScimError> {
        self.requested_removes += ids.len();
        self.check_totals()?;
        for id in ids {
            if self.contains(&id) {
                self.staged.changes.insert(id, None);
            }
        }
        Ok(())
    }

    fn remove_where(&mut self, filter: &CompiledFilter) -> Result<(), ScimError> {
        let hits: Vec<String> = self
            .current()
            .into_iter()
            .filter(|(_, v)| filter.matches_element(v))
            .map(|(id, _)| id)
            .collect();
        self.remove_ids(hits)
    }

    fn clear(&mut self) -> Result<(), ScimError> {
        if !self.profile.replace_all_members {
            return Err(ScimError::invalid_value(
                "this server does not remove or replace all members at once; remove them by id (members[value eq \"id\"])",
            ));
        }
        self.staged.cleared = true;
        self.staged.changes.clear();
        Ok(())
    }
}

/// Builds the members of a new group from a POST/PUT body's `members` value.
pub fn initial_members(
    inner: &Inner,
    profile: &Profile,
    group_id: Option<&str>,
    value: Option<Value>,
) -> Result<Members, ScimError> {
    let Some(Value::Array(items)) = value else {
        return Ok(Members::default());
    };
    if let Some(max) = profile.max_members_on_create {
        if items.len() > max {
            return Err(ScimError::invalid_value(format!(
                "at most {max} members when creating a group on this server; add the rest with PATCH"
            )));
        }
    }
    let unlimited = Profile {
        max_member_adds_per_op: None,
        max_member_changes_per_patch: None,
        ..profile.clone()
    };
    let mut ov = MemberOverlay::new(inner, None, &unlimited, group_id);
    ov.add(items)?;
    Ok(ov
        .staged
        .changes
        .into_iter()
        .filter_map(|(k, v)| v.map(|m| (k, m)))
        .collect())
}
