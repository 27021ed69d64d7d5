//! The groups half of read-back verification: does every group the import provisioned
//! hold the members it put in?
//!
//! A group's members come in one answer (SCIM has no paging of a multi-valued
//! attribute), and a million-member group is a 70 MB answer. So no answer is held: its
//! body is parsed as it arrives, on a blocking thread fed frame by frame, and each
//! member's `value` is ticked off against the fingerprints of the ids the import expects
//! (8 bytes a member). Memory does not grow with the size of the answer, and no group is
//! too large to check.

use std::hash::BuildHasher;
use std::io::Read;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use tokio::sync::mpsc;

use super::ids::IdTable;
use crate::client::retry::Decision;
use crate::client::{RetryPolicy, ScimClient};
use crate::dispatch::InFlight;

/// What the groups should hold: name, SCIM id, and the sequence numbers of the users
/// the import put in (their ids are in the [`IdTable`]).
pub(super) type ExpectedGroup = (String, String, Arc<[u32]>);

/// What checking the groups found.
#[derive(Debug, Default, PartialEq)]
pub(super) struct GroupCheck {
    pub(super) checked: u64,
    /// Groups that lack members the import added.
    pub(super) differing: u64,
    /// Members the groups should have and do not.
    pub(super) missing: u64,
    /// Why groups were not checked, when they were not.
    pub(super) note: Option<String>,
}

/// What reading one group back found: `None` no usable answer; `Some(None)` no
/// `members` in the answer; else how many expected members it lacks.
type GroupRead = Option<Option<u64>>;

fn fingerprint(id: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6e3b).hash_one(id)
}

/// The members of one group answer, ticked off against the sorted fingerprints of the
/// ids expected in it.
struct MemberScan<'a> {
    expected: &'a [u64],
    found: Vec<bool>,
    listed: bool,
}

impl MemberScan<'_> {
    fn lacking(&self) -> Option<u64> {
        self.listed
            .then(|| self.found.iter().filter(|f| !**f).count() as u64)
    }
}

impl<'de> DeserializeSeed<'de> for &mut MemberScan<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut MemberScan<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Group resource")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key::<String>()? {
            // Attribute names are case-insensitive (RFC 7643 §2.1).
            if k.eq_ignore_ascii_case("members") {
                m.next_value_seed(Members(&mut *self))?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `members` value: an array of member objects, or null (no members listed).
struct Members<'s, 'a>(&'s mut MemberScan<'a>);

#[derive(serde::Deserialize)]
struct Member {
    value: Option<String>,
}

impl<'de> DeserializeSeed<'de> for Members<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Members<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of members")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let s = self.0;
        s.listed = true;
        while let Some(m) = seq.next_element::<Member>()? {
            if let Some(v) = m.value {
                if let Ok(i) = s.expected.binary_search(&fingerprint(&v)) {
                    s.found[i] = true;
                }
            }
        }
        Ok(())
    }
}

/// Scans one answer read from `r` (None if it is not a Group resource).
fn scan(r: impl Read, expected: &[u64]) -> Option<Option<u64>> {
    let mut s = MemberScan {
        expected,
        found: vec![false; expected.len()],
        listed: false,
    };
    let mut de = serde_json::Deserializer::from_reader(r);
    (&mut s).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(s.lacking())
}

/// A blocking reader over the frames of an answer as they arrive.
struct Frames {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// Reads group `id` and counts the expected members it lacks, retrying as the policy
/// says; 404 is a group that holds none of them.
async fn read_group(
    c: ScimClient,
    r: RetryPolicy,
    id: String,
    expected: Vec<u64>,
    seed: u64,
) -> GroupRead {
    let path = format!("/Groups/{id}?attributes=members");
    let expected: Arc<[u64]> = expected.into();
    let mut rng = crate::gen::Rng::new(seed);
    for attempt in 1.. {
        // A few frames in flight at most: the parser keeps up or the reads wait.
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let exp = expected.clone();
        let parser = tokio::task::spawn_blocking(move || {
            scan(
                Frames {
                    rx,
                    cur: Bytes::new(),
                },
                &exp,
            )
        });
        let outcome = c
            .get_streamed(&path, |b| {
                let tx = tx.clone();
                async move { tx.send(b).await.is_ok() }
            })
            .await;
        drop(tx);
        let parsed = parser.await.ok().flatten();
        match &outcome {
            Ok(reply) if reply.is_success() => return parsed.map(Some).unwrap_or(None),
            Ok(reply) if reply.status == 404 => return Some(Some(expected.len() as u64)),
            _ => {}
        }
        match r.decide(attempt, false, &outcome, rng.f64()) {
            Decision::Retry(wait) | Decision::Throttled(wait) => tokio::time::sleep(wait).await,
            _ => return None,
        }
    }
    None
}

/// Reads every group back, two at a time, and compares each with what the import put
/// in. `members_in_reads`: whether the target returns members on a group read (`None`:
/// unknown, look).
pub(super) async fn check_groups(
    groups: &[ExpectedGroup],
    ids: &IdTable,
    client: &ScimClient,
    retry: &RetryPolicy,
    members_in_reads: Option<bool>,
) -> GroupCheck {
    let mut v = GroupCheck::default();
    if members_in_reads == Some(false) {
        v.note = Some("the target does not return members on a group read".into());
        return v;
    }
    // Two group reads at a time: a group of 100k members is megabytes a read.
    let mut set: InFlight<(usize, GroupRead)> = InFlight::new(2);
    let mut results: Vec<GroupRead> = vec![None; groups.len()];
    for (i, (_, id, seqs)) in groups.iter().enumerate() {
        let mut expected: Vec<u64> = seqs
            .iter()
            .filter_map(|&s| ids.get(s))
            .map(fingerprint)
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let (c, r, id) = (client.clone(), retry.clone(), id.clone());
        let task = async move { (i, read_group(c, r, id, expected, i as u64).await) };
        set.start(task, |(j, got)| results[j] = got).await;
    }
    while let Some((j, got)) = set.next().await {
        results[j] = got;
    }
    let mut any_listed = false;
    let mut any_expected = false;
    for ((_, _, seqs), got) in groups.iter().zip(&results) {
        let Some(got) = got else { continue };
        any_expected |= !seqs.is_empty();
        v.checked += 1;
        match got {
            None => {
                // No members in the answer: either none, or the target does not say.
                if !seqs.is_empty() {
                    v.differing += 1;
                    v.missing += seqs.len() as u64;
                }
            }
            Some(lacking) => {
                any_listed |= seqs.len() as u64 > *lacking || seqs.is_empty();
                if *lacking > 0 {
                    v.differing += 1;
                    v.missing += lacking;
                }
            }
        }
    }
    // Not one member listed although members were added: the target does not return
    // them (as AWS never does), which says nothing about what it kept.
    if !any_listed && any_expected && members_in_reads.is_none() {
        v = GroupCheck {
            note: Some("the target returned no members on any group read".into()),
            ..GroupCheck::default()
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(ids: &[&str]) -> Vec<u64> {
        let mut v: Vec<u64> = ids.iter().map(|i| fingerprint(i)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn members_are_ticked_off_as_they_stream() {
        let exp = expected(&["a", "b", "c"]);
        let body = br#"{"id":"g","Members":[{"value":"a","display":"x"},{"value":"c"},{"value":"zz"}],"meta":{}}"#;
        assert_eq!(scan(&body[..], &exp), Some(Some(1)));
        // Read one byte at a time, as the frames of a slow answer would come.
        let slow = std::io::Read::chain(&body[..10], &body[10..]);
        assert_eq!(scan(slow, &exp), Some(Some(1)));
        assert_eq!(scan(&br#"{"id":"g"}"#[..], &exp), Some(None));
        assert_eq!(scan(&br#"{"members":null}"#[..], &exp), Some(None));
        assert_eq!(scan(&br#"{"members":[]}"#[..], &exp), Some(Some(3)));
        // Not a group resource: no usable answer, not "no members".
        assert_eq!(scan(&br#"{"members":[{"value":"a"}"#[..], &exp), None);
        assert_eq!(scan(&br#"[1,2]"#[..], &exp), None);
        assert_eq!(scan(&br#"{"members":"a"}"#[..], &exp), None);
    }
}
