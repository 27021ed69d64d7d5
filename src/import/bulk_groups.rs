//! Memberships in `/Bulk`: when users travel in Bulk requests, each batch also carries
//! the memberships of its users — a `POST /Groups` for a group the target does not have
//! yet, or a `PATCH /Groups/{id}` add for one it has — with members that refer to the
//! users of the same request by `bulkId` (RFC 7644 §3.7.2). A tenant's groups and most
//! of its memberships then cost no request of their own.
//!
//! Nothing here is the last word: a membership whose operation failed (the user's own
//! operation failed, so its bulkId did not resolve; a 5xx; a lost answer) is simply not
//! marked as sent, and the groups phase after the users adds it by SCIM id. A group
//! whose create may have been applied without an answer is looked up there, never
//! created twice.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::worker::Job;
use crate::scim::urns;

/// What the dispatcher knows about a group while users stream.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Slot {
    /// Its SCIM id: memberships go in as PATCH adds.
    Known(String),
    /// The target does not have it: the next batch that names it creates it.
    Absent,
    /// A lookup or a create is in flight: its members wait for the groups phase.
    Busy,
    /// A create failed or may have been applied unanswered: the groups phase finds it.
    Unsure,
}

/// One group operation of a batch.
#[derive(Debug, Clone)]
pub(super) enum GroupOp {
    Create {
        name: String,
        bulk_id: String,
        members: Vec<u32>,
    },
    Add {
        name: String,
        id: String,
        members: Vec<u32>,
    },
}

/// What a batch's group operations achieved.
#[derive(Debug, Default)]
pub(super) struct Done {
    /// Groups created: (name, SCIM id).
    pub(super) created: Vec<(String, String)>,
    /// Groups whose create did not come back with an id.
    pub(super) unsure: Vec<String>,
    /// Members whose add (or create) was confirmed, per group.
    pub(super) sent: Vec<(String, Vec<u32>)>,
    /// The batch created groups (the dispatcher holds back batches meanwhile).
    pub(super) had_creates: bool,
}

/// One operation of a BulkResponse: its bulkId (POSTs), status, and the id it names.
pub(super) type Answer = (Option<String>, String, Option<String>);

/// Bytes one member reference takes: `{"value":"bulkId:u1234567"},`.
const MEMBER_BYTES: usize = 32;
/// Fewest members of a batch worth an add operation in it.
const MIN_ADD: usize = 8;
/// Bytes of one group operation around its members.
const OP_BYTES: usize = 320;

#[derive(Debug)]
pub(super) struct BulkGroups {
    pub(super) slots: HashMap<String, Slot>,
    /// Members whose membership went in with their users, per group (4 bytes each: a
    /// set took ~40 MB more for a million users).
    pub(super) sent: HashMap<String, Vec<u32>>,
    /// Groups created in a batch: the groups phase knows their members exactly.
    pub(super) created: HashSet<String>,
    /// Members per PATCH (the dialect's or --member-batch).
    per: usize,
    next_bulk_id: u64,
}

impl BulkGroups {
    /// `known`: groups (name → SCIM id) the state recorded.
    pub(super) fn new(known: HashMap<String, String>, per: usize) -> Self {
        BulkGroups {
            slots: known
                .into_iter()
                .map(|(n, id)| (n, Slot::Known(id)))
                .collect(),
            sent: HashMap::new(),
            created: HashSet::new(),
            per: per.max(1),
            next_bulk_id: 0,
        }
    }

    /// Group names of this batch never seen before: looked up (or, on a fresh tenant
    /// with `--lookup never`, taken as absent) before they can take members.
    pub(super) fn unseen<'a>(&mut self, batch: &'a [(Job, Option<String>)]) -> Vec<&'a str> {
        let mut out = Vec::new();
        for (job, _) in batch {
            for g in job.user.groups() {
                if !self.slots.contains_key(g) {
                    self.slots.insert(g.to_string(), Slot::Busy);
                    out.push(g);
                }
            }
        }
        out
    }

    /// Marks a group absent without asking (`--lookup never`).
    pub(super) fn assume_absent(&mut self, name: &str) {
        self.slots.insert(name.to_string(), Slot::Absent);
    }

    /// The group operations of a batch, within `ops` operations and `bytes` bytes.
    pub(super) fn plan(
        &mut self,
        batch: &[(Job, Option<String>)],
        mut ops: usize,
        mut bytes: usize,
    ) -> Vec<GroupOp> {
        let mut by_group: Vec<(&str, Vec<u32>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (job, _) in batch {
            for g in job.user.groups() {
                let i = *index.entry(g).or_insert_with(|| {
                    by_group.push((g, Vec::new()));
                    by_group.len() - 1
                });
                by_group[i].1.push(job.seq);
            }
        }
        let mut out = Vec::new();
        for (name, members) in by_group {
            let slot = self.slots.get(name).cloned();
            // A handful of members is not worth an operation of its own (each costs the
            // server a PATCH; measured on 100k users, adds of any size took 4.4 s, adds
            // of 8 or more 4.0 s): they wait for the groups phase, which packs them.
            if matches!(slot, Some(Slot::Known(_))) && members.len() < MIN_ADD {
                continue;
            }
            for chunk in members.chunks(self.per) {
                let need = OP_BYTES + chunk.len() * MEMBER_BYTES;
                if ops == 0 || need > bytes {
                    return out;
                }
                match &slot {
                    Some(Slot::Known(id)) => out.push(GroupOp::Add {
                        name: name.to_string(),
                        id: id.clone(),
                        members: chunk.to_vec(),
                    }),
                    // Created with its first chunk; the rest waits for its id.
                    Some(Slot::Absent) => {
                        self.next_bulk_id += 1;
                        self.slots.insert(name.to_string(), Slot::Busy);
                        out.push(GroupOp::Create {
                            name: name.to_string(),
                            bulk_id: format!("g{}", self.next_bulk_id),
                            members: chunk.to_vec(),
                        });
                        ops -= 1;
                        bytes -= need;
                        break;
                    }
                    _ => break,
                }
                ops -= 1;
                bytes -= need;
            }
        }
        out
    }

    /// Records what a batch's group operations did.
    pub(super) fn settle(&mut self, done: Done) {
        for (name, id) in done.created {
            self.created.insert(name.clone());
            self.slots.insert(name, Slot::Known(id));
        }
        for name in done.unsure {
            self.slots.insert(name, Slot::Unsure);
        }
        for (name, members) in done.sent {
            self.sent.entry(name).or_default().extend(members);
        }
    }

    /// A lookup's answer: the group's id, or none when the target does not have it.
    pub(super) fn found(&mut self, name: String, id: Option<String>, failed: bool) {
        let slot = match (id, failed) {
            (Some(id), _) => Slot::Known(id),
            (None, false) => Slot::Absent,
            (None, true) => Slot::Unsure,
        };
        self.slots.insert(name, slot);
    }
}

fn members_json(body: &mut Vec<u8>, members: &[u32]) {
    body.push(b'[');
    for (k, m) in members.iter().enumerate() {
        if k > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"value":"bulkId:u"#);
        body.extend_from_slice(m.to_string().as_bytes());
        body.extend_from_slice(br#""}"#);
    }
    body.push(b']');
}

/// Appends the operations (each preceded by a comma) to a Bulk request body.
pub(super) fn write(ops: &[GroupOp], body: &mut Vec<u8>) {
    for op in ops {
        body.push(b',');
        match op {
            GroupOp::Create {
                name,
                bulk_id,
                members,
            } => {
                body.extend_from_slice(br#"{"method":"POST","path":"/Groups","bulkId":""#);
                body.extend_from_slice(bulk_id.as_bytes());
                body.extend_from_slice(br#"","data":{"schemas":[""#);
                body.extend_from_slice(urns::GROUP.as_bytes());
                body.extend_from_slice(br#""],"displayName":"#);
                body.extend_from_slice(
                    &serde_json::to_vec(&Value::from(name.as_str())).unwrap_or_default(),
                );
                body.extend_from_slice(br#","members":"#);
                members_json(body, members);
                body.extend_from_slice(b"}}");
            }
            GroupOp::Add { id, members, .. } => {
                body.extend_from_slice(br#"{"method":"PATCH","path":"/Groups/"#);
                body.extend_from_slice(id.as_bytes());
                body.extend_from_slice(br#"","data":{"schemas":[""#);
                body.extend_from_slice(urns::PATCH_OP.as_bytes());
                body.extend_from_slice(
                    br#""],"Operations":[{"op":"add","path":"members","value":"#,
                );
                members_json(body, members);
                body.extend_from_slice(b"}]}}");
            }
        }
    }
}

/// Reads the group operations' answers. `answers` are the response operations after
/// the users' (in request order, as RFC 7644 §3.7.3 returns them), or none when the
/// request failed.
pub(super) fn outcome(ops: Vec<GroupOp>, answers: Option<&[Answer]>) -> Done {
    let mut done = Done {
        had_creates: ops.iter().any(|o| matches!(o, GroupOp::Create { .. })),
        ..Done::default()
    };
    let by_bulk_id: HashMap<&str, (&str, Option<&str>)> = answers
        .unwrap_or_default()
        .iter()
        .filter_map(|(b, s, id)| Some((b.as_deref()?, (s.as_str(), id.as_deref()))))
        .collect();
    // Adds carry no bulkId: matched by position among the answers without one.
    let mut plain = answers
        .unwrap_or_default()
        .iter()
        .filter(|(b, _, _)| b.is_none());
    let ok = |s: &str| s.starts_with('2');
    for op in ops {
        match op {
            GroupOp::Create {
                name,
                bulk_id,
                members,
            } => match by_bulk_id.get(bulk_id.as_str()) {
                Some((s, Some(id))) if ok(s) => {
                    done.created.push((name.clone(), id.to_string()));
                    done.sent.push((name, members));
                }
                // Refused (a member's bulkId did not resolve, …) or unanswered: the
                // groups phase looks it up before creating it.
                _ => done.unsure.push(name),
            },
            GroupOp::Add { name, members, .. } => {
                if plain.next().is_some_and(|(_, s, _)| ok(s)) {
                    done.sent.push((name, members));
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_operations_are_json_with_bulk_id_references() {
        let ops = vec![
            GroupOp::Create {
                name: "Sales \"EMEA\"".into(),
                bulk_id: "g1".into(),
                members: vec![3, 4],
            },
            GroupOp::Add {
                name: "All".into(),
                id: "abc".into(),
                members: vec![3],
            },
        ];
        let mut body = b"[{}".to_vec();
        write(&ops, &mut body);
        body.push(b']');
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v[1]["data"]["displayName"], "Sales \"EMEA\"");
        assert_eq!(v[1]["data"]["members"][1]["value"], "bulkId:u4");
        assert_eq!(v[2]["path"], "/Groups/abc");
        assert_eq!(
            v[2]["data"]["Operations"][0]["value"][0]["value"],
            "bulkId:u3"
        );
    }

    #[test]
    fn only_confirmed_operations_count_as_sent() {
        let ops = vec![
            GroupOp::Create {
                name: "A".into(),
                bulk_id: "g1".into(),
                members: vec![1],
            },
            GroupOp::Add {
                name: "B".into(),
                id: "b".into(),
                members: vec![1, 2],
            },
            GroupOp::Add {
                name: "C".into(),
                id: "c".into(),
                members: vec![2],
            },
        ];
        let answers = vec![
            (
                Some("u1".to_string()),
                "201".to_string(),
                Some("x".to_string()),
            ),
            (
                Some("g1".to_string()),
                "201".to_string(),
                Some("ga".to_string()),
            ),
            (None, "200".to_string(), None),
            (None, "409".to_string(), None),
        ];
        let d = outcome(ops.clone(), Some(&answers));
        assert_eq!(d.created, vec![("A".to_string(), "ga".to_string())]);
        let sent: Vec<&str> = d.sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(sent, ["A", "B"]);
        // No answer at all: nothing sent, the create unsure.
        let d = outcome(ops, None);
        assert!(d.sent.is_empty() && d.created.is_empty());
        assert_eq!(d.unsure, ["A"]);
    }
}
