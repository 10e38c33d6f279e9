//! One shard of the block cache: a segmented LRU over entries kept in a slab, each segment a
//! doubly linked list through slab positions, and a map from block key to the entry's `Slot`
//! (its position, segment, mark and block). Every operation (lookup, touch, insert, evict) is
//! O(1) and allocates only when the slab or the map grows.
//!
//! Thread safety: none of its own; `BlockCache` keeps each shard under a mutex.
//!
//! Hits on protected entries only mark them (`referenced`), without moving them: a hit is then
//! one map lookup, which finds the block and its segment in the map's own slot, and touches
//! no node of the lists. The mark is honoured when the entry reaches the oldest end of the
//! protected segment: a marked entry is moved back to the newest end with its mark cleared (a
//! second chance, as in CLOCK) instead of being demoted.
//!
//! Invariants:
//! 1. `usage_bytes` is the sum of the charges of the live entries and `protected_bytes` that of
//!    the protected ones.
//! 2. Every live slab position is in `index` and in exactly one segment's list (the one its
//!    slot names); every other position is on the free list, and no slot names it.
//! 3. The probation list runs from its least (`oldest`) to its most recently inserted or
//!    demoted entry (`newest`); the protected list from the entry promoted or given its second
//!    chance longest ago to the latest one (hits in between only mark entries).

use super::{BlockKey, CachedBlock, PROTECTED_PERCENT};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// No slab position.
const NIL: u32 = u32::MAX;

/// A segment of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment {
    /// Entered, not read again since.
    Probation,
    /// Read again while in probation.
    Protected,
}

/// What the map holds for a cached block.
struct Slot {
    /// The entry's node in the slab.
    position: u32,
    segment: Segment,
    /// Read again since it last reached the newest end of the protected segment.
    referenced: bool,
    block: CachedBlock,
}

/// An entry's place in its segment's list.
struct Node {
    key: BlockKey,
    charge: u64,
    /// Towards the oldest entry of the segment.
    older: u32,
    /// Towards the newest entry.
    newer: u32,
}

#[derive(Clone, Copy)]
struct List {
    oldest: u32,
    newest: u32,
}

impl Default for List {
    fn default() -> List {
        List { oldest: NIL, newest: NIL }
    }
}

/// A hasher for block keys (two integers): a multiply-rotate mix, far cheaper than SipHash.
/// Keys are file ids and offsets chosen by the engine, not by an adversary.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One shard: see the module header.
#[derive(Default)]
pub(super) struct Shard {
    index: HashMap<BlockKey, Slot, BuildHasherDefault<KeyHasher>>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    probation: List,
    protected: List,
    protected_bytes: u64,
    pub usage_bytes: u64,
    pub counters: Counters,
}

/// A shard's share of `BlockCacheStats`' counters.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
}

impl Shard {
    fn list_mut(&mut self, segment: Segment) -> &mut List {
        match segment {
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    fn unlink(&mut self, position: u32, segment: Segment) {
        let (older, newer) = {
            let node = &self.nodes[position as usize];
            (node.older, node.newer)
        };
        match older {
            NIL => self.list_mut(segment).oldest = newer,
            older => self.nodes[older as usize].newer = newer,
        }
        match newer {
            NIL => self.list_mut(segment).newest = older,
            newer => self.nodes[newer as usize].older = older,
        }
        if segment == Segment::Protected {
            self.protected_bytes -= self.nodes[position as usize].charge;
        }
    }

    fn push_newest(&mut self, position: u32, segment: Segment) {
        let newest = self.list_mut(segment).newest;
        let node = &mut self.nodes[position as usize];
        node.older = newest;
        node.newer = NIL;
        let charge = node.charge;
        match newest {
            NIL => self.list_mut(segment).oldest = position,
            newest => self.nodes[newest as usize].newer = position,
        }
        self.list_mut(segment).newest = position;
        if segment == Segment::Protected {
            self.protected_bytes += charge;
        }
    }

    /// The block under `key`, if cached, with the segment it was in: a probation entry moves
    /// to the newest end of the protected segment, a protected one is marked `referenced`.
    pub fn get(&mut self, key: BlockKey) -> Option<(CachedBlock, Segment)> {
        let slot = self.index.get_mut(&key)?;
        let found = (slot.block.clone(), slot.segment);
        match found.1 {
            Segment::Protected => slot.referenced = true,
            Segment::Probation => {
                slot.segment = Segment::Protected;
                let position = slot.position;
                self.unlink(position, Segment::Probation);
                self.push_newest(position, Segment::Protected);
            }
        }
        Some(found)
    }

    pub fn contains(&self, key: BlockKey) -> bool {
        self.index.contains_key(&key)
    }

    /// Adds `block` (not cached yet) at the newest end of probation.
    pub fn insert(&mut self, key: BlockKey, block: CachedBlock, charge: u64) {
        let node = Node { key, charge, older: NIL, newer: NIL };
        let position = match self.free.pop() {
            Some(position) => {
                self.nodes[position as usize] = node;
                position
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let slot = Slot { position, segment: Segment::Probation, referenced: false, block };
        self.index.insert(key, slot);
        self.push_newest(position, Segment::Probation);
        self.usage_bytes += charge;
    }

    /// Evicts the oldest entry of `segment`; false if it is empty.
    fn remove_oldest(&mut self, segment: Segment) -> bool {
        let position = self.list_mut(segment).oldest;
        if position == NIL {
            return false;
        }
        self.unlink(position, segment);
        let node = &self.nodes[position as usize];
        self.usage_bytes -= node.charge;
        let key = node.key;
        self.index.remove(&key);
        self.free.push(position);
        true
    }

    /// Demotes protected entries past the protected share (a `referenced` one gets a second
    /// chance at the newest end instead), then evicts until within capacity. Each second chance
    /// clears a mark that a hit set, so the work is O(1) per hit and per insert, amortized.
    pub fn enforce(&mut self, capacity_bytes: u64) {
        let protected_max = capacity_bytes * PROTECTED_PERCENT / 100;
        while self.protected_bytes > protected_max && self.protected.oldest != NIL {
            let position = self.protected.oldest;
            let key = self.nodes[position as usize].key;
            let Some(slot) = self.index.get_mut(&key) else {
                unreachable!("a listed node has a slot (invariant 2)")
            };
            let segment = if std::mem::take(&mut slot.referenced) {
                Segment::Protected
            } else {
                Segment::Probation
            };
            slot.segment = segment;
            self.unlink(position, Segment::Protected);
            self.push_newest(position, segment);
        }
        while self.usage_bytes > capacity_bytes {
            if !self.remove_oldest(Segment::Probation) && !self.remove_oldest(Segment::Protected) {
                break;
            }
        }
    }

    /// Checks the invariants of the module header (for tests).
    #[cfg(test)]
    pub fn check(&self) {
        let mut live = 0;
        let (mut usage, mut protected) = (0, 0);
        for (segment, list) in
            [(Segment::Probation, self.probation), (Segment::Protected, self.protected)]
        {
            let (mut position, mut older) = (list.oldest, NIL);
            while position != NIL {
                let node = &self.nodes[position as usize];
                let slot = &self.index[&node.key];
                assert_eq!((slot.position, slot.segment, node.older), (position, segment, older));
                assert!(segment == Segment::Protected || !slot.referenced);
                usage += node.charge;
                if segment == Segment::Protected {
                    protected += node.charge;
                }
                live += 1;
                (older, position) = (position, node.newer);
            }
            assert_eq!(list.newest, older);
        }
        assert_eq!(
            (live, usage, protected),
            (self.index.len(), self.usage_bytes, self.protected_bytes)
        );
        assert_eq!(live + self.free.len(), self.nodes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sst::Block;
    use std::collections::VecDeque;
    use std::sync::Arc;

    /// The same policy written plainly: two queues searched linearly, protected entries with
    /// their mark.
    #[derive(Default)]
    struct Model {
        probation: VecDeque<(BlockKey, u64)>,
        protected: VecDeque<(BlockKey, u64, bool)>,
    }

    impl Model {
        fn bytes(&self) -> (u64, u64) {
            let probation = self.probation.iter().map(|entry| entry.1).sum();
            (probation, self.protected.iter().map(|entry| entry.1).sum())
        }

        fn get(&mut self, key: BlockKey) -> Option<Segment> {
            if let Some(entry) = self.protected.iter_mut().find(|entry| entry.0 == key) {
                entry.2 = true;
                return Some(Segment::Protected);
            }
            let at = self.probation.iter().position(|entry| entry.0 == key)?;
            let (key, charge) = self.probation.remove(at)?;
            self.protected.push_back((key, charge, false));
            Some(Segment::Probation)
        }

        fn enforce(&mut self, capacity: u64) {
            while self.bytes().1 > capacity * PROTECTED_PERCENT / 100 {
                let (key, charge, referenced) = self.protected.pop_front().unwrap();
                if referenced {
                    self.protected.push_back((key, charge, false));
                } else {
                    self.probation.push_back((key, charge));
                }
            }
            while self.bytes().0 + self.bytes().1 > capacity {
                if self.probation.pop_front().is_none() && self.protected.pop_front().is_none() {
                    break;
                }
            }
        }
    }

    /// Random gets, inserts and capacity changes: the shard keeps its invariants and agrees
    /// with the model on every hit, miss and eviction (seed `NANODB_TEST_SEED`, printed on
    /// failure).
    #[test]
    fn the_shard_agrees_with_a_plain_model() {
        let seed = crate::test_rng::seed_or(0x0512);
        let outcome = std::panic::catch_unwind(|| {
            let mut rng = crate::test_rng::TestRng::new(seed);
            let mut below = |bound: u64| rng.below(bound);
            let (mut shard, mut model) = (Shard::default(), Model::default());
            let mut capacity = 20_000;
            for _ in 0..20_000 {
                let key = (below(3), below(60) * 4096);
                match below(10) {
                    0..=4 => {
                        let segment = shard.get(key).map(|(_, segment)| segment);
                        assert_eq!(segment, model.get(key));
                        if segment == Some(Segment::Probation) {
                            shard.enforce(capacity);
                            model.enforce(capacity);
                        }
                    }
                    5..=8 if !shard.contains(key) => {
                        let charge = 100 + below(1500);
                        let block = CachedBlock::Data(Arc::new(Block::for_tests(8)));
                        shard.insert(key, block, charge);
                        model.probation.push_back((key, charge));
                        shard.enforce(capacity);
                        model.enforce(capacity);
                    }
                    _ => {
                        capacity = 2_000 + below(30_000);
                        shard.enforce(capacity);
                        model.enforce(capacity);
                    }
                }
                shard.check();
                let order = |list: List| {
                    let mut keys = Vec::new();
                    let mut position = list.oldest;
                    while position != NIL {
                        keys.push(shard.nodes[position as usize].key);
                        position = shard.nodes[position as usize].newer;
                    }
                    keys
                };
                let probation: Vec<BlockKey> = model.probation.iter().map(|e| e.0).collect();
                let protected: Vec<(BlockKey, bool)> =
                    model.protected.iter().map(|e| (e.0, e.2)).collect();
                assert_eq!(order(shard.probation), probation);
                let marked = order(shard.protected)
                    .into_iter()
                    .map(|key| (key, shard.index[&key].referenced))
                    .collect::<Vec<_>>();
                assert_eq!(marked, protected);
                assert!(shard.usage_bytes <= capacity);
            }
        });
        if let Err(panic) = outcome {
            eprintln!("NANODB_TEST_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}
