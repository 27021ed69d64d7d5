//! Duplicate detection within an export: the first row with a userName (case-insensitive)
//! or externalId wins, later ones are rejected naming the row they clash with.
//!
//! A set of strings would cost ~80 bytes a row; [`KeyIndex`], an open-addressing table,
//! stores a 64-bit fingerprint and a 32-bit row number, 12 bytes a slot (non-power-of-two
//! sizes through multiply-shift), so a million rows take ~15 MB per key. Two different
//! keys share a 64-bit fingerprint with odds of about n²/2⁶⁵ — one in millions at 4
//! million rows.
//!
//! Files larger than that must not take memory in proportion: [`SpillIndex`] keeps at
//! most a budget of keys in the table, and writes the rest to disk as sorted runs with
//! a Bloom filter (2 bytes a key) in front, so a file of any size costs the table plus
//! 2 bytes a row, and only the filter's rare false positives read the disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

use crate::source::RowEstimate;

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

    /// The (key, row) pairs held, in no order.
    fn pairs(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.keys
            .iter()
            .zip(&self.rows)
            .filter(|(k, _)| **k != 0)
            .map(|(k, r)| (*k, *r))
    }

    /// Empties the table, keeping its memory.
    fn clear(&mut self) {
        self.keys.fill(0);
        self.len = 0;
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
}

/// Keys per sorted block on disk: one read of 6 KB finds a key once the in-memory
/// fences say which block.
const BLOCK: usize = 512;
const ENTRY: usize = 12;

/// Keys written to disk, sorted: a temporary file (unlinked at once) and the first key
/// of each block.
struct Run {
    file: File,
    len: usize,
    fences: Vec<u64>,
}

impl Run {
    fn write(pairs: &mut [(u64, u32)]) -> std::io::Result<Run> {
        pairs.sort_unstable_by_key(|p| p.0);
        // Unique within the process too: both key kinds, and imports run side by side
        // (tests), spill at the same moments.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("scimload-keys-{}-{n}.run", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Gone from the directory at once; the open file lives until it is dropped.
        let _ = std::fs::remove_file(&path);
        let mut w = BufWriter::with_capacity(1 << 20, &file);
        let mut fences = Vec::with_capacity(pairs.len() / BLOCK + 1);
        for (i, (k, r)) in pairs.iter().enumerate() {
            if i % BLOCK == 0 {
                fences.push(*k);
            }
            w.write_all(&k.to_le_bytes())?;
            w.write_all(&r.to_le_bytes())?;
        }
        w.flush()?;
        drop(w);
        Ok(Run {
            file,
            len: pairs.len(),
            fences,
        })
    }

    fn get(&self, key: u64, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
        // The last block whose first key is <= key.
        let b = match self.fences.partition_point(|&f| f <= key) {
            0 => return Ok(None),
            n => n - 1,
        };
        let n = BLOCK.min(self.len - b * BLOCK);
        buf.resize(n * ENTRY, 0);
        self.file.read_exact_at(buf, (b * BLOCK * ENTRY) as u64)?;
        let at = |i: usize| {
            u64::from_le_bytes(buf[i * ENTRY..i * ENTRY + 8].try_into().unwrap_or_default())
        };
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match at(mid).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let r = &buf[mid * ENTRY + 8..mid * ENTRY + 12];
                    return Ok(Some(
                        u32::from_le_bytes(r.try_into().unwrap_or_default()) as u64
                    ));
                }
            }
        }
        Ok(None)
    }

    /// Every key, in order, for rebuilding the filter.
    fn keys(&self, mut each: impl FnMut(u64)) -> std::io::Result<()> {
        let mut buf = vec![0u8; BLOCK * ENTRY * 64];
        let mut done = 0;
        while done < self.len {
            let n = (self.len - done).min(BLOCK * 64);
            self.file
                .read_exact_at(&mut buf[..n * ENTRY], (done * ENTRY) as u64)?;
            for e in buf[..n * ENTRY].chunks_exact(ENTRY) {
                each(u64::from_le_bytes(e[..8].try_into().unwrap_or_default()));
            }
            done += n;
        }
        Ok(())
    }
}

/// A blocked Bloom filter over fingerprints: each key sets 8 bits in one 64-byte block,
/// so a lookup costs one cache miss. 16 bits a key: about 0.1% false positives.
struct Bloom {
    blocks: Vec<[u64; 8]>,
    capacity: usize,
}

impl Bloom {
    fn new(capacity: usize) -> Self {
        let blocks = (capacity * 16 / 512).max(1);
        Bloom {
            blocks: vec![[0; 8]; blocks],
            capacity,
        }
    }

    /// Block and bit positions of a key: fingerprints are uniform, so their own bits
    /// serve (a multiply mixes them for the block; eight 6-bit fields pick the bits,
    /// the 3 bits above each field the word).
    fn bits(&self, key: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        let block = ((key.wrapping_mul(0x9E37_79B9_7F4A_7C15) as u128 * self.blocks.len() as u128)
            >> 64) as usize;
        let bits = (0..8).map(move |i| {
            let f = key.rotate_right(i * 8);
            ((f >> 6) as usize & 7, 1u64 << (f & 63))
        });
        (block, bits)
    }

    fn insert(&mut self, key: u64) {
        let (b, bits) = self.bits(key);
        for (w, bit) in bits {
            self.blocks[b][w] |= bit;
        }
    }

    fn may_contain(&self, key: u64) -> bool {
        let (b, mut bits) = self.bits(key);
        bits.all(|(w, bit)| self.blocks[b][w] & bit != 0)
    }
}

/// First-row-wins key index whose memory stays within a budget of keys plus 2 bytes a
/// key beyond it (see the module note).
pub struct SpillIndex {
    mem: KeyIndex,
    budget: usize,
    /// The input's expected row count, to size the filter once instead of rebuilding it.
    expect: Option<RowEstimate>,
    runs: Vec<Run>,
    bloom: Bloom,
    /// Keys written to disk so far.
    pub(super) spilled: usize,
    buf: Vec<u8>,
}

/// Keys held in memory before spilling: 2^19 keys (~8 MB, and as much again for a
/// moment while they are sorted onto disk) per index.
pub const DEFAULT_BUDGET: usize = 1 << 19;

impl Default for SpillIndex {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET)
    }
}

impl SpillIndex {
    /// `budget` keys in memory; the table is allocated for them at once (the pages are
    /// touched only as keys arrive), so it never grows and copies.
    pub fn with_budget(budget: usize) -> Self {
        let budget = budget.max(1024);
        SpillIndex {
            mem: KeyIndex::with_capacity(budget),
            budget,
            expect: None,
            runs: Vec::new(),
            bloom: Bloom::new(0),
            spilled: 0,
            buf: Vec::new(),
        }
    }

    /// Sizes the filter for the rows `expect` foresees in the input.
    pub fn expecting(mut self, expect: Option<RowEstimate>) -> Self {
        self.expect = expect;
        self
    }

    /// The row that recorded `key`, if any.
    pub fn get(&mut self, key: u64) -> Option<u64> {
        if let Some(r) = self.mem.get(key) {
            return Some(r);
        }
        let key = key.max(1);
        if self.runs.is_empty() || !self.bloom.may_contain(key) {
            return None;
        }
        for run in &self.runs {
            match run.get(key, &mut self.buf) {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {}
                // A run written a moment ago cannot be read back: say so, and go on
                // as if the key were new (the target's own uniqueness checks remain).
                Err(e) => eprintln!("warning: cannot read the duplicate-key file: {e}"),
            }
        }
        None
    }

    /// Records a key `get` did not find.
    pub fn insert_new(&mut self, key: u64, row: u64) {
        self.mem.insert(key, row);
        if self.mem.len() >= self.budget {
            self.spill();
        }
    }

    fn spill(&mut self) {
        // The keys being sorted onto disk: 8 MB at the default budget, for the moment of
        // the spill only (an import's peak is at its end, when this is long gone).
        let mut pairs: Vec<(u64, u32)> = self.mem.pairs().collect();
        let written = Run::write(&mut pairs);
        let run = match written {
            Ok(run) => run,
            Err(e) => {
                // No room on disk: keep the keys in memory (the table grows as before).
                eprintln!(
                    "warning: cannot write duplicate keys to {} ({e}); keeping them in memory — set TMPDIR to a writable directory to bound memory",
                    std::env::temp_dir().display()
                );
                self.budget = usize::MAX;
                return;
            }
        };
        self.spilled += pairs.len();
        if self.spilled > self.bloom.capacity {
            // Sized for what the whole input will spill when its size tells (a tenth
            // more than foreseen, less the budget that stays in memory), else for twice
            // what is on disk now: rebuilt O(log n) times in all.
            let foreseen = self.expect.map_or(0, |e| e.rows() as usize);
            let capacity = (foreseen + foreseen / 10).saturating_sub(self.budget);
            let mut bloom = Bloom::new(capacity.max(self.spilled * 2));
            for r in &self.runs {
                if let Err(e) = r.keys(|k| bloom.insert(k)) {
                    eprintln!("warning: cannot read the duplicate-key file: {e}");
                }
            }
            self.bloom = bloom;
        }
        for (k, _) in &pairs {
            self.bloom.insert(*k);
        }
        self.runs.push(run);
        self.mem.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes a table holds.
    fn table_bytes(ix: &KeyIndex) -> usize {
        ix.keys.len() * 12
    }

    /// Bytes an index holds in memory: its table, its filter, its runs' fences.
    fn bytes(ix: &SpillIndex) -> usize {
        table_bytes(&ix.mem)
            + ix.bloom.blocks.len() * 64
            + ix.runs.iter().map(|r| r.fences.len() * 8).sum::<usize>()
    }

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
        assert!(table_bytes(&ix) < 100_000 * 12 * 2);
    }

    #[test]
    fn spilled_keys_are_found_with_their_first_row() {
        let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut ix = SpillIndex::with_budget(1024);
        for i in 0..20_000u64 {
            assert_eq!(ix.get(key(i)), None, "{i} is new");
            ix.insert_new(key(i), i + 1);
        }
        assert!(ix.spilled >= 18_000, "{}", ix.spilled);
        assert!(ix.runs.len() >= 18);
        for i in (0..20_000u64).step_by(7) {
            assert_eq!(ix.get(key(i)), Some(i + 1), "{i}");
        }
        // Keys never seen: found nowhere (a false positive of the filter reads the disk
        // and finds nothing).
        let misses = (20_000..40_000u64)
            .filter(|&i| ix.get(key(i)).is_some())
            .count();
        assert_eq!(misses, 0);
        let fp = (20_000..40_000u64)
            .filter(|&i| ix.bloom.may_contain(key(i)))
            .count();
        assert!(fp < 100, "filter false positives: {fp} of 20,000");
        // Memory: the table's budget plus ~2 bytes a spilled key.
        assert!(
            bytes(&ix) < 1024 * 5 / 4 * 12 + ix.spilled * 4 + 4096,
            "{}",
            bytes(&ix)
        );
    }
}
