//! Duplicate detection within an export: the first row with a userName (case-insensitive)
//! or externalId wins, later ones are rejected naming the row they clash with.
//!
//! A set of strings would cost ~80 bytes a row; this open-addressing table stores a
//! 64-bit fingerprint and a 32-bit row number, 12 bytes a slot, grown by half at 80% load
//! (non-power-of-two sizes through multiply-shift), so a million rows take ~15 MB per key.
//! Two different keys share a 64-bit fingerprint with odds of about n²/2⁶⁵ — one in
//! millions at 4 million rows.

#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: Vec<u64>,
    rows: Vec<u32>,
    len: usize,
}

#[inline]
fn slot(key: u64, cap: usize) -> usize {
    ((key as u128 * cap as u128) >> 64) as usize
}

impl KeyIndex {
    pub fn with_capacity(n: usize) -> Self {
        let cap = (n * 5 / 4).max(1024);
        KeyIndex {
            keys: vec![0; cap],
            rows: vec![0; cap],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The row that recorded `key`, if any.
    pub fn get(&self, key: u64) -> Option<u64> {
        if self.keys.is_empty() {
            return None;
        }
        let key = key.max(1);
        let cap = self.keys.len();
        let mut i = slot(key, cap);
        loop {
            match self.keys[i] {
                0 => return None,
                k if k == key => return Some(self.rows[i] as u64),
                _ => {
                    i += 1;
                    if i == cap {
                        i = 0;
                    }
                }
            }
        }
    }

    /// Records `key` for `row`; if it was already there, returns the row that had it.
    pub fn insert(&mut self, key: u64, row: u64) -> Option<u64> {
        if self.keys.is_empty() {
            *self = Self::with_capacity(1024);
        }
        if (self.len + 1) * 5 > self.keys.len() * 4 {
            self.grow();
        }
        let key = key.max(1);
        let cap = self.keys.len();
        let mut i = slot(key, cap);
        loop {
            match self.keys[i] {
                0 => {
                    self.keys[i] = key;
                    self.rows[i] = row.min(u32::MAX as u64) as u32;
                    self.len += 1;
                    return None;
                }
                k if k == key => return Some(self.rows[i] as u64),
                _ => {
                    i += 1;
                    if i == cap {
                        i = 0;
                    }
                }
            }
        }
    }

    fn grow(&mut self) {
        let cap = self.keys.len() * 3 / 2;
        let keys = std::mem::replace(&mut self.keys, vec![0; cap]);
        let rows = std::mem::replace(&mut self.rows, vec![0; cap]);
        self.len = 0;
        for (k, r) in keys.into_iter().zip(rows).filter(|(k, _)| *k != 0) {
            self.insert(k, r as u64);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.keys.len() * 12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_row_wins_across_growth() {
        let mut ix = KeyIndex::default();
        for i in 0..100_000u64 {
            assert_eq!(
                ix.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i + 1),
                None
            );
        }
        for i in (0..100_000u64).step_by(997) {
            assert_eq!(
                ix.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 999_999),
                Some(i + 1)
            );
        }
        assert_eq!(ix.len(), 100_000);
        assert!(ix.bytes() < 100_000 * 12 * 2);
    }
}
