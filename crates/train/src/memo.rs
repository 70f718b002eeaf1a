//! Memoised actions for the streaming evaluator: a policy that sees only a sample's state (and its
//! static features) is a pure function of them, so when the same state comes back, its actions can
//! be read from a table instead of running the network again.
//!
//! This removes most of the work of long test rollouts with discrete demand: orders are rounded to
//! integers, demand is an integer, so after a short transient every pipeline holds integers and a
//! sample keeps revisiting a few thousand states over its 5,000 periods. The result is unchanged to
//! the bit: a row's output does not depend on the other rows of the batch it is computed in (the
//! products and the elementwise kernels treat every row alike), and the table stores exactly what
//! the network returned. `tests/memo.rs` checks equality with the plain evaluator.
//!
//! The table is a flat open-addressing hash map (linear probing) from the bit patterns of a key to
//! a fixed number of `f32` values; it never grows past [`MAX_SLOTS`] and stops inserting when
//! half full, so memory stays bounded (a one-store key of 4 + 5 values: ≈ 40 MB at the cap).

/// Most slots a table allocates (a power of two).
pub const MAX_SLOTS: usize = 1 << 20;

/// A fixed-width key → fixed-width value table.
#[derive(Debug, Default)]
pub struct ActionMemo {
    /// Which evaluator the content belongs to (cleared when another one uses the table).
    owner: u64,
    key_len: usize,
    value_len: usize,
    /// `hash | 1` of the key in each slot, 0 for an empty slot.
    tags: Vec<u64>,
    keys: Vec<u32>,
    values: Vec<f32>,
    len: usize,
    /// Lookups that found their key, and all lookups (statistics for reports and tests).
    pub hits: u64,
    /// All lookups.
    pub lookups: u64,
}

impl ActionMemo {
    /// Makes the table ready for `owner`'s keys and values, clearing it if it held another
    /// evaluator's entries or other widths.
    pub fn prepare(&mut self, owner: u64, key_len: usize, value_len: usize) {
        if self.owner == owner && self.key_len == key_len && self.value_len == value_len {
            return;
        }
        self.owner = owner;
        self.key_len = key_len;
        self.value_len = value_len;
        self.len = 0;
        self.hits = 0;
        self.lookups = 0;
        let slots = 1 << 12;
        self.tags = vec![0; slots];
        self.keys = vec![0; slots * key_len];
        self.values = vec![0.0; slots * value_len];
    }

    /// The evaluator whose entries the table holds.
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Multiply–xor mixing of the key, two 32-bit words at a time in two independent lanes (a
    /// short dependency chain); the low bit is forced to 1 so that 0 marks an empty slot.
    #[inline(always)]
    fn hash(key: &[u32]) -> u64 {
        const K0: u64 = 0x9e37_79b9_7f4a_7c15;
        const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;
        let (mut a, mut b) = (K1, K0 ^ key.len() as u64);
        let mut pairs = key.chunks_exact(4);
        for q in &mut pairs {
            a = (a ^ (u64::from(q[0]) | u64::from(q[1]) << 32)).wrapping_mul(K0);
            b = (b ^ (u64::from(q[2]) | u64::from(q[3]) << 32)).wrapping_mul(K1);
            a ^= a >> 31;
            b ^= b >> 29;
        }
        for &w in pairs.remainder() {
            a = (a ^ u64::from(w)).wrapping_mul(K0);
            a ^= a >> 31;
        }
        let h = (a ^ b.rotate_left(23)).wrapping_mul(K1);
        (h ^ (h >> 32)) | 1
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline(always)]
    fn find(&self, key: &[u32], tag: u64) -> usize {
        // `key.len()` rather than `self.key_len` (equal): when the caller's key is a fixed-size
        // array the comparison below is then of constant length and compiles to a few loads
        let width = key.len();
        let mask = self.tags.len() - 1;
        let mut slot = (tag >> 7) as usize & mask;
        loop {
            let t = self.tags[slot];
            if t == 0 || (t == tag && same_words(&self.keys[slot * width..][..width], key)) {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The values stored for `key`.
    #[inline(always)]
    pub fn get(&mut self, key: &[u32]) -> Option<&[f32]> {
        assert_eq!(key.len(), self.key_len, "memo key width");
        self.lookups += 1;
        let tag = Self::hash(key);
        let slot = self.find(key, tag);
        if self.tags[slot] == 0 {
            return None;
        }
        self.hits += 1;
        Some(&self.values[slot * self.value_len..(slot + 1) * self.value_len])
    }

    /// Stores `values` for `key` (a no-op when the table is at its size cap and half full).
    #[inline(always)]
    pub fn insert(&mut self, key: &[u32], values: &[f32]) {
        assert_eq!(
            (key.len(), values.len()),
            (self.key_len, self.value_len),
            "memo key and value widths"
        );
        if 2 * (self.len + 1) > self.tags.len() {
            if self.tags.len() >= MAX_SLOTS {
                return;
            }
            self.grow();
        }
        let tag = Self::hash(key);
        let slot = self.find(key, tag);
        if self.tags[slot] == 0 {
            self.len += 1;
        }
        self.tags[slot] = tag;
        self.keys[slot * key.len()..][..key.len()].copy_from_slice(key);
        self.values[slot * self.value_len..(slot + 1) * self.value_len].copy_from_slice(values);
    }

    /// Doubles the table and re-inserts every entry.
    fn grow(&mut self) {
        let (k, v) = (self.key_len, self.value_len);
        let old_tags = std::mem::take(&mut self.tags);
        let old_keys = std::mem::take(&mut self.keys);
        let old_values = std::mem::take(&mut self.values);
        let slots = old_tags.len() * 2;
        self.tags = vec![0; slots];
        self.keys = vec![0; slots * k];
        self.values = vec![0.0; slots * v];
        for (i, &tag) in old_tags.iter().enumerate() {
            if tag != 0 {
                let key = &old_keys[i * k..(i + 1) * k];
                let slot = self.find(key, tag);
                self.tags[slot] = tag;
                self.keys[slot * k..(slot + 1) * k].copy_from_slice(key);
                self.values[slot * v..(slot + 1) * v]
                    .copy_from_slice(&old_values[i * v..(i + 1) * v]);
            }
        }
    }
}

/// `a == b` for equal-length slices, as an OR of XORs: no early exit and no `memcmp` call, so a
/// short fixed-width comparison compiles to a few vector instructions.
#[inline(always)]
fn same_words(a: &[u32], b: &[u32]) -> bool {
    a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_finds_every_key_across_growth() {
        let mut memo = ActionMemo::default();
        memo.prepare(7, 3, 2);
        for i in 0..20_000u32 {
            memo.insert(&[i, i * 3, 1], &[i as f32, -(i as f32)]);
        }
        assert_eq!(memo.len(), 20_000);
        for i in 0..20_000u32 {
            assert_eq!(memo.get(&[i, i * 3, 1]), Some(&[i as f32, -(i as f32)][..]));
        }
        assert_eq!(memo.get(&[5, 15, 2]), None);
        assert_eq!((memo.hits, memo.lookups), (20_000, 20_001));
        // another owner starts empty
        memo.prepare(8, 3, 2);
        assert!(memo.is_empty() && memo.get(&[1, 3, 1]).is_none());
    }

    #[test]
    fn stops_inserting_at_the_cap() {
        let mut memo = ActionMemo::default();
        memo.prepare(1, 1, 1);
        for i in 0..(MAX_SLOTS as u32) {
            memo.insert(&[i], &[1.0]);
        }
        assert_eq!(memo.len(), MAX_SLOTS / 2);
        assert_eq!(memo.tags.len(), MAX_SLOTS);
        assert!(memo.get(&[0]).is_some());
    }
}
