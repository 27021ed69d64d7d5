//! Insertion order of a resource table, with deletions, answering "the k-th live resource"
//! in O(log n).
//!
//! Index paging (`startIndex`) needs the k-th resource in a stable order. A plain vector
//! with tombstones makes deep pages O(n); a Fenwick tree over live flags finds the k-th
//! live slot by binary lifting, so page 10,000 costs what page 1 costs.

#[derive(Debug, Default)]
pub struct OrderIndex {
    /// Slot → resource id; `None` once deleted. Slots are never reused.
    slots: Vec<Option<String>>,
    /// Fenwick tree (1-based) of live counts.
    tree: Vec<u32>,
    live: usize,
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl OrderIndex {
    /// Appends an id; returns its slot.
    pub fn push(&mut self, id: String) -> usize {
        let slot = self.slots.len();
        self.slots.push(Some(id));
        // The new node i covers (i - lowbit(i), i]: itself plus the nodes below it.
        let i = slot + 1;
        let mut sum = 1u32;
        let mut j = i - 1;
        let stop = i - lowbit(i);
        while j > stop {
            sum += self.tree[j - 1];
            j -= lowbit(j);
        }
        self.tree.push(sum);
        self.live += 1;
        slot
    }

    pub fn remove(&mut self, slot: usize) {
        if self.slots.get(slot).is_some_and(Option::is_some) {
            self.slots[slot] = None;
            let mut i = slot + 1;
            while i <= self.tree.len() {
                self.tree[i - 1] -= 1;
                i += lowbit(i);
            }
            self.live -= 1;
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slot of the k-th live entry (0-based k).
    pub fn nth_slot(&self, k: usize) -> Option<usize> {
        if k >= self.live {
            return None;
        }
        let n = self.tree.len();
        let mut pos = 0;
        let mut rem = k as u32 + 1;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next - 1] < rem {
                pos = next;
                rem -= self.tree[next - 1];
            }
            step >>= 1;
        }
        Some(pos)
    }

    /// Live `(slot, id)` pairs from `slot` on, in order.
    pub fn iter_from(&self, slot: usize) -> impl Iterator<Item = (usize, &str)> {
        self.slots
            .iter()
            .enumerate()
            .skip(slot)
            .filter_map(|(i, s)| s.as_deref().map(|id| (i, id)))
    }

    /// One past the last slot ever used.
    pub fn end(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_skips_deleted_slots() {
        let mut o = OrderIndex::default();
        for i in 0..1000 {
            o.push(format!("id{i}"));
        }
        for s in (0..1000).step_by(3) {
            o.remove(s);
        }
        let live: Vec<usize> = (0..1000).filter(|s| s % 3 != 0).collect();
        assert_eq!(o.len(), live.len());
        for (k, &s) in live.iter().enumerate() {
            assert_eq!(o.nth_slot(k), Some(s), "k={k}");
        }
        assert_eq!(o.nth_slot(live.len()), None);
        o.remove(1);
        assert_eq!(o.nth_slot(0), Some(2));
    }
}
