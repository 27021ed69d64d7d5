//! A row mapped to a SCIM User, packed into one allocation.
//!
//! An import holds tens of thousands of these in flight and a dry run makes millions:
//! five owned strings a row cost five allocations and frees, and were a quarter of the
//! mapping's time. The body, externalId, userName, manager and group names share one
//! buffer here, read through accessors.

use std::hash::BuildHasher;

/// Separates group names in [`MappedUser::group_names`].
pub const GROUP_SEP: char = '\u{1f}';

/// A row mapped to a SCIM User.
#[derive(Debug, Clone)]
pub struct MappedUser {
    pub row: u64,
    /// body | externalId | userName | manager | group names, all UTF-8.
    data: Vec<u8>,
    /// Where the body, externalId, userName and manager end in `data`.
    ends: [u32; 4],
    has_manager: bool,
    pub active: Option<bool>,
    /// Fingerprints of the lower-cased userName and of the externalId, for duplicates.
    pub user_key: u64,
    pub ext_key: u64,
}

/// Builds a [`MappedUser`] in place: the body first, then the strings in the order of
/// [`MappedUser::data`]. Written straight into the user's own buffer, sized from the
/// last row (rows of one export are alike), not into a scratch buffer copied after.
pub(super) struct Packer {
    buf: Vec<u8>,
    ends: [u32; 4],
    filled: usize,
}

impl Packer {
    pub fn new(capacity: usize) -> Self {
        Packer {
            buf: Vec::with_capacity(capacity),
            ends: [0; 4],
            filled: 0,
        }
    }

    /// The buffer, to write the current part into.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends the current part (body, externalId, userName, manager; the rest is groups).
    pub fn end_part(&mut self) {
        self.ends[self.filled] = self.buf.len() as u32;
        self.filled += 1;
    }

    pub fn finish(self, row: u64, active: Option<bool>, has_manager: bool) -> MappedUser {
        debug_assert_eq!(self.filled, 4);
        let user_name = &self.buf[self.ends[1] as usize..self.ends[2] as usize];
        let user_key = if super::bytes::wide_or_letter(user_name, b'A') != (false, false) {
            super::fingerprint(&String::from_utf8_lossy(user_name).to_lowercase())
        } else {
            super::fingerprint_bytes(user_name)
        };
        let ext_key =
            super::fingerprint_bytes(&self.buf[self.ends[0] as usize..self.ends[1] as usize]);
        MappedUser {
            row,
            data: self.buf,
            ends: self.ends,
            has_manager,
            active,
            user_key,
            ext_key,
        }
    }
}

impl MappedUser {
    /// Hash of everything sent for this row: a re-run skips rows whose hash is unchanged.
    /// Computed when asked: only an import that keeps state needs it, not a dry run.
    pub fn content_hash(&self) -> u64 {
        let hasher = foldhash::quality::FixedState::with_seed(0xc0ffee);
        hasher.hash_one((&self.data[..], self.ends, self.has_manager))
    }

    /// Bytes of the packed parts.
    pub(super) fn packed_len(&self) -> usize {
        self.data.len()
    }

    fn text(&self, from: usize, to: usize) -> &str {
        // Built from `&str`s only; the check is for short strings and never fails.
        std::str::from_utf8(&self.data[from..to]).unwrap_or_default()
    }

    /// The SCIM User, without the manager (resolved to a SCIM id when sending).
    pub fn body(&self) -> &[u8] {
        &self.data[..self.ends[0] as usize]
    }

    pub fn external_id(&self) -> &str {
        self.text(self.ends[0] as usize, self.ends[1] as usize)
    }

    pub fn user_name(&self) -> &str {
        self.text(self.ends[1] as usize, self.ends[2] as usize)
    }

    /// The manager's externalId.
    pub fn manager(&self) -> Option<&str> {
        self.has_manager
            .then(|| self.text(self.ends[2] as usize, self.ends[3] as usize))
    }

    /// displayNames of the groups this user belongs to, separated by [`GROUP_SEP`].
    pub fn group_names(&self) -> &str {
        self.text(self.ends[3] as usize, self.data.len())
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.group_names()
            .split(GROUP_SEP)
            .filter(|g| !g.is_empty())
    }

    pub fn group_count(&self) -> usize {
        self.groups().count()
    }
}
