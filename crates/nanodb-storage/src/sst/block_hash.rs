//! The hash index of a data block: one byte per bucket naming the restart point where a user
//! key's entries begin in the block, so a point lookup jumps to its entry instead of
//! binary-searching the restart points and stepping over the entries in between. With entries
//! of a few hundred bytes (documents), each of those steps is a cache miss; the index is a few
//! dozen bytes read with the restart array.
//!
//! Layout (docs/format/sst.md): after the restart array, `bucket_count` bytes of buckets, then
//! `bucket_count: u16 LE`, then the block's restart count with `HASH_INDEX_FLAG` set. A key's
//! bucket is `bucket_of(hash64(user_key), bucket_count)`. A bucket holds `BUCKET_EMPTY` when
//! no user key of the block hashes there; otherwise the restart index where the first of those
//! keys begins (a lookup walks forward from it), or `BUCKET_COLLISION` when they begin more
//! than `COLLISION_WALK_RESTARTS_MAX` restart points apart (the reader then binary-searches as
//! without an index).
//!
//! Thread safety: plain values; the builder is used by one thread (the SST writer).
//!
//! Invariants:
//! 1. Only blocks with at most `HASH_INDEX_RESTARTS_MAX` restart points get an index, so every
//!    restart index fits below the two marker values.
//! 2. A user key of the block never maps to `BUCKET_EMPTY`, and a bucket naming a restart
//!    point names one at or before the restart point of the key's newest entry in the block:
//!    so `Absent` proves the key is not in the block, and a walk from the named restart point
//!    meets every entry of the key that a seek from the block's start would.

use super::bloom::hash64;

/// Bytes after a hash index's buckets: their count (u16) and the block's count word (u32).
pub const HASH_INDEX_TAIL_BYTES: usize = 6;
/// Set in a block's restart-count word when the block ends with a hash index.
pub const HASH_INDEX_FLAG: u32 = 1 << 31;
/// A bucket no user key of the block hashes to.
pub const BUCKET_EMPTY: u8 = 255;
/// A bucket that keys beginning at different restart points hash to.
pub const BUCKET_COLLISION: u8 = 254;
/// Most restart points of a block with a hash index (restart indexes 0..=253).
pub const HASH_INDEX_RESTARTS_MAX: usize = 254;
/// Buckets per distinct user key, at a byte each: about 60% of the buckets stay empty (so an
/// absent key is ruled out that often), and in a block of ten documents a key shares its
/// bucket with another about a third of the time (its lookup then walks from the earlier
/// key's restart point, or binary-searches when they lie far apart).
pub const BUCKETS_PER_KEY: usize = 2;
/// Most restart points a lookup walks past when its key shares a bucket with a key that begins
/// earlier in the block: the bucket names the earlier key's restart point (a walk from there
/// meets both keys) unless they lie further apart, which makes it `BUCKET_COLLISION`.
pub const COLLISION_WALK_RESTARTS_MAX: u8 = 4;
/// Most buckets of one block (the count is a u16).
pub const HASH_INDEX_BUCKETS_MAX: usize = u16::MAX as usize;

/// The bucket of a key whose `hash64` is `hash`, among `bucket_count` (at least 1). Uses bits
/// 16 to 47 of the hash, scaled to the count (no division). Part of the on-disk format.
pub fn bucket_of(hash: u64, bucket_count: usize) -> usize {
    ((u64::from((hash >> 16) as u32) * bucket_count as u64) >> 32) as usize
}

/// What a block's hash index says about a user key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashProbe {
    /// The key has no entry in the block.
    Absent,
    /// The key's entries, if it has any, begin at this restart point or after it.
    Restart(usize),
    /// The index cannot tell: search the block.
    Collision,
}

/// Looks `hash` up in `buckets` (at least one; values checked by `check_buckets`).
pub fn probe(buckets: &[u8], hash: u64) -> HashProbe {
    match buckets.get(bucket_of(hash, buckets.len())).copied() {
        Some(BUCKET_EMPTY) => HashProbe::Absent,
        Some(BUCKET_COLLISION) | None => HashProbe::Collision,
        Some(restart) => HashProbe::Restart(usize::from(restart)),
    }
}

/// Checks that every bucket names a restart point of the block or is a marker.
pub fn check_buckets(buckets: &[u8], restart_count: usize) -> Result<(), &'static str> {
    if buckets.is_empty() {
        return Err("hash index without buckets");
    }
    if restart_count == 0 || restart_count > HASH_INDEX_RESTARTS_MAX {
        return Err("hash index over too many or no restart points");
    }
    let valid = |&bucket: &u8| {
        bucket == BUCKET_EMPTY || bucket == BUCKET_COLLISION || usize::from(bucket) < restart_count
    };
    if buckets.iter().all(valid) {
        Ok(())
    } else {
        Err("hash index bucket names no restart point")
    }
}

/// Collects a data block's user keys and builds its hash index.
#[derive(Debug, Default)]
pub struct HashIndexBuilder {
    /// `hash64` of each distinct user key and the restart point of its first entry.
    keys: Vec<(u64, usize)>,
}

impl HashIndexBuilder {
    /// Notes a user key whose first entry in the block lies in restart point `restart_index`.
    pub fn add(&mut self, user_key: &[u8], restart_index: usize) {
        self.keys.push((hash64(user_key), restart_index));
    }

    fn bucket_count(&self) -> usize {
        (self.keys.len() * BUCKETS_PER_KEY).clamp(1, HASH_INDEX_BUCKETS_MAX)
    }

    /// True if a block of `restart_count` restart points gets an index: it has keys, and
    /// few enough restart points for a byte to name each.
    fn applies(&self, restart_count: usize) -> bool {
        !self.keys.is_empty() && restart_count <= HASH_INDEX_RESTARTS_MAX
    }

    /// Bytes the index would add to a block of `restart_count` restart points.
    pub fn size_estimate_bytes(&self, restart_count: usize) -> usize {
        if self.applies(restart_count) {
            self.bucket_count() + 2
        } else {
            0
        }
    }

    /// Appends the buckets and their count to `block` (after its restart array) when the
    /// block has keys and at most `HASH_INDEX_RESTARTS_MAX` restart points; returns whether
    /// it did. Resets the builder either way.
    pub fn finish(&mut self, block: &mut Vec<u8>, restart_count: usize) -> bool {
        let (applies, bucket_count) = (self.applies(restart_count), self.bucket_count());
        let keys = std::mem::take(&mut self.keys);
        if !applies {
            return false;
        }
        let start = block.len();
        block.resize(start + bucket_count, BUCKET_EMPTY);
        let buckets = &mut block[start..];
        for (hash, restart_index) in keys {
            let bucket = &mut buckets[bucket_of(hash, bucket_count)];
            // restart_index <= 253 (checked above), so it never reads as a marker.
            let restart = restart_index as u8;
            *bucket = match *bucket {
                BUCKET_EMPTY => restart,
                BUCKET_COLLISION => BUCKET_COLLISION,
                // Keys are added in order, so `earlier <= restart`: a walk from `earlier`
                // meets this key too, after at most `COLLISION_WALK_RESTARTS_MAX` restarts.
                earlier
                    if restart
                        .checked_sub(earlier)
                        .is_some_and(|apart| apart <= COLLISION_WALK_RESTARTS_MAX) =>
                {
                    earlier
                }
                _ => BUCKET_COLLISION,
            };
        }
        block.extend_from_slice(&(bucket_count as u16).to_le_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, user_key_of, KIND_FOR_SEEK};
    use crate::sst::block::{Block, BlockCursor};
    use crate::sst::block_builder::BlockBuilder;
    use crate::test_rng::{seed_or, TestRng};
    use std::sync::Arc;

    #[test]
    fn buckets_spread_over_the_whole_range() {
        let mut seen = vec![0u32; 10];
        for i in 0..10_000u32 {
            seen[bucket_of(hash64(&i.to_le_bytes()), 10)] += 1;
        }
        assert!(seen.iter().all(|&count| (800..1200).contains(&count)), "{seen:?}");
        assert_eq!(bucket_of(u64::MAX, 1), 0);
        assert_eq!(bucket_of(u64::MAX, 65_535), 65_534);
    }

    #[test]
    fn shared_buckets_name_the_earliest_restart_or_collide_when_far_apart() {
        let mut builder = HashIndexBuilder::default();
        let keys: Vec<Vec<u8>> = (0..40u32).map(|i| format!("user{i}").into_bytes()).collect();
        let restart_of = |index: usize| index / 2;
        for (index, key) in keys.iter().enumerate() {
            builder.add(key, restart_of(index));
        }
        let mut block = vec![9u8; 3];
        assert!(builder.finish(&mut block, 20));
        let bucket_count = crate::coding::get_u16_at(&block, block.len() - 2).unwrap();
        assert_eq!(usize::from(bucket_count), 40 * BUCKETS_PER_KEY);
        let buckets = &block[3..block.len() - 2];
        check_buckets(buckets, 20).unwrap();
        let (mut walks_back, mut collisions) = (0, 0);
        for (index, key) in keys.iter().enumerate() {
            let bucket = bucket_of(hash64(key), buckets.len());
            let sharers: Vec<usize> = (0..keys.len())
                .filter(|&other| bucket_of(hash64(&keys[other]), buckets.len()) == bucket)
                .map(restart_of)
                .collect();
            let (first, last) = (sharers[0], sharers[sharers.len() - 1]);
            let expected = if last - first <= usize::from(COLLISION_WALK_RESTARTS_MAX) {
                walks_back += usize::from(first < restart_of(index));
                HashProbe::Restart(first)
            } else {
                collisions += 1;
                HashProbe::Collision
            };
            assert_eq!(probe(buckets, hash64(key)), expected, "key {index}");
        }
        assert!(walks_back > 0 && collisions > 0, "both cases: {walks_back} {collisions}");
        assert!(collisions < 20, "{collisions} of 40 keys collide");
        let empty = buckets.iter().filter(|&&bucket| bucket == BUCKET_EMPTY).count();
        assert!(empty >= 40, "half the buckets or more stay empty: {empty}");
        let absent = (100..1100u32)
            .filter(|i| probe(buckets, hash64(format!("user{i}").as_bytes())) == HashProbe::Absent)
            .count();
        // Two buckets per key leave a share of about e^(-1/2) = 0.61 of them empty.
        assert!((520..700).contains(&absent), "about 61% of absent keys ruled out: {absent}");
    }

    #[test]
    fn blocks_with_too_many_restarts_or_no_keys_get_no_index() {
        let mut builder = HashIndexBuilder::default();
        let mut block = Vec::new();
        assert!(!builder.finish(&mut block, 0));
        assert_eq!(builder.size_estimate_bytes(HASH_INDEX_RESTARTS_MAX), 0);
        builder.add(b"a", HASH_INDEX_RESTARTS_MAX - 1);
        assert_eq!(builder.size_estimate_bytes(HASH_INDEX_RESTARTS_MAX), BUCKETS_PER_KEY + 2);
        assert_eq!(builder.size_estimate_bytes(HASH_INDEX_RESTARTS_MAX + 1), 0);
        assert!(!builder.finish(&mut block, HASH_INDEX_RESTARTS_MAX + 1));
        assert!(block.is_empty());
        builder.add(b"a", HASH_INDEX_RESTARTS_MAX - 1);
        assert!(builder.finish(&mut block, HASH_INDEX_RESTARTS_MAX));
        assert_eq!(probe(&block[..2], hash64(b"a")), HashProbe::Restart(253));
    }

    #[test]
    fn bucket_checks_refuse_what_names_no_restart_point() {
        assert!(check_buckets(&[], 1).is_err());
        assert!(check_buckets(&[0], 0).is_err());
        assert!(check_buckets(&[0], HASH_INDEX_RESTARTS_MAX + 1).is_err());
        assert!(check_buckets(&[0, 1, BUCKET_EMPTY, BUCKET_COLLISION], 2).is_ok());
        assert!(check_buckets(&[0, 2], 2).is_err());
        assert!(check_buckets(&[253], HASH_INDEX_RESTARTS_MAX).is_ok());
    }

    /// A block of random entries: user keys `k00000`.. (every third number present), one to
    /// three versions each, values of random sizes from empty to 700 bytes.
    fn random_block(rng: &mut TestRng, hash_index: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut builder = BlockBuilder::for_data(16, 256, hash_index);
        let mut keys = Vec::new();
        let mut seqno = 1_000_000u64;
        let count = 1 + rng.below(60);
        for number in 0..count {
            let user_key = format!("k{:05}", number * 3).into_bytes();
            for _ in 0..1 + rng.below(3) {
                seqno -= 1 + rng.below(5);
                let key = internal_key(&user_key, seqno, 1);
                let sizes = [0, 5, 40, 120, 300, 700];
                builder.add(&key, &vec![b'v'; sizes[rng.below(6) as usize]]);
                keys.push(key);
            }
        }
        (builder.finish(), keys)
    }

    /// What a lookup of `target` concludes: the entry it found of the target's user key.
    fn found(cursor: &BlockCursor, target: &[u8]) -> Option<Vec<u8>> {
        (cursor.valid() && user_key_of(cursor.key()) == user_key_of(target))
            .then(|| cursor.key().to_vec())
    }

    #[test]
    fn lookups_through_the_hash_index_find_what_a_seek_finds() {
        let seed = seed_or(0xb10c_4a54);
        let mut rng = TestRng::new(seed);
        let (mut indexed_blocks, mut ruled_out, mut jumps) = (0, 0, 0);
        for round in 0..300 {
            let (bytes, keys) = random_block(&mut rng, true);
            let block = Arc::new(Block::new(bytes).expect("a valid block"));
            indexed_blocks += usize::from(block.has_hash_index());
            let (mut seek, mut get) =
                (BlockCursor::new(Arc::clone(&block)), BlockCursor::new(Arc::clone(&block)));
            // Every stored key and its neighbours (other seqnos), and absent user keys.
            let mut targets: Vec<Vec<u8>> = Vec::new();
            for key in &keys {
                let (user_key, trailer) = crate::key::split_internal_key(key);
                for seqno in [trailer >> 8, (trailer >> 8) + 1, (trailer >> 8) - 1, 1 << 40] {
                    targets.push(internal_key(user_key, seqno, KIND_FOR_SEEK));
                }
            }
            for number in 0..200 {
                targets.push(internal_key(format!("k{number:05}x").as_bytes(), 1 << 40, 3));
                targets.push(internal_key(format!("k{number:05}").as_bytes(), 1 << 40, 3));
            }
            for target in &targets {
                seek.seek_ge(target).unwrap();
                let hash = hash64(user_key_of(target));
                let may_hold = get.seek_for_get(target, hash).unwrap();
                let context = format!("seed {seed} round {round} target {target:?}");
                if may_hold {
                    assert_eq!(found(&get, target), found(&seek, target), "{context}");
                    jumps += 1;
                } else {
                    assert!(!get.valid(), "{context}");
                    assert_eq!(found(&seek, target), None, "ruled out but present: {context}");
                    ruled_out += 1;
                }
            }
        }
        // At most 180 entries, so at most 180 restart points: every block gets an index.
        assert_eq!(indexed_blocks, 300, "seed {seed}");
        assert!(ruled_out > 1000 && jumps > 1000, "seed {seed}: {ruled_out} {jumps}");
    }

    #[test]
    fn blocks_without_an_index_are_searched_as_before() {
        let seed = seed_or(0x0b10c);
        let mut rng = TestRng::new(seed);
        for _ in 0..50 {
            let (bytes, keys) = random_block(&mut rng, false);
            let block = Arc::new(Block::new(bytes).unwrap());
            assert!(!block.has_hash_index());
            let mut cursor = BlockCursor::new(block);
            for key in &keys {
                assert!(cursor.seek_for_get(key, hash64(user_key_of(key))).unwrap());
                assert_eq!(cursor.key(), &key[..], "seed {seed}");
            }
        }
    }

    #[test]
    fn damaged_hash_indexes_are_errors_not_panics() {
        let mut rng = TestRng::new(seed_or(7));
        let (good, keys) = loop {
            let (bytes, keys) = random_block(&mut rng, true);
            if keys.len() > 20 && Block::new(bytes.clone()).unwrap().has_hash_index() {
                break (bytes, keys);
            }
        };
        let len = good.len();
        let bucket_count = usize::from(crate::coding::get_u16_at(&good, len - 6).unwrap());
        // A bucket naming a restart point the block does not have.
        let restart_count =
            (u32::from_le_bytes(good[len - 4..].try_into().unwrap()) & !HASH_INDEX_FLAG) as u8;
        let mut bad = good.clone();
        bad[len - 6 - bucket_count] = restart_count;
        assert!(Block::new(bad).is_err());
        // A bucket count past the block's start, or zero.
        for count in [u16::MAX, 0] {
            let mut bad = good.clone();
            bad[len - 6..len - 4].copy_from_slice(&count.to_le_bytes());
            assert!(Block::new(bad).is_err(), "bucket count {count}");
        }
        assert!(Block::new(vec![0, 0, 0, 0x80]).is_err(), "flag without room for the index");
        // Every byte of the tail flipped in turn: an error, or lookups that end without a panic.
        for index in len.saturating_sub(6 + bucket_count + 64)..len {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bytes = good.clone();
                bytes[index] ^= mask;
                let Ok(block) = Block::new(bytes) else { continue };
                let mut cursor = BlockCursor::new(Arc::new(block));
                for key in &keys {
                    let _ = cursor.seek_for_get(key, hash64(user_key_of(key)));
                }
            }
        }
    }

    #[test]
    fn blocks_of_254_restart_points_get_an_index_and_of_255_do_not() {
        for (count, indexed) in
            [(HASH_INDEX_RESTARTS_MAX, true), (HASH_INDEX_RESTARTS_MAX + 1, false)]
        {
            let mut builder = BlockBuilder::for_data(1, 0, true);
            let keys: Vec<Vec<u8>> =
                (0..count).map(|i| internal_key(format!("k{i:04}").as_bytes(), 9, 1)).collect();
            for key in &keys {
                builder.add(key, b"v");
            }
            let block = Arc::new(Block::new(builder.finish()).unwrap());
            assert_eq!(block.has_hash_index(), indexed, "{count} restart points");
            let mut cursor = BlockCursor::new(Arc::clone(&block));
            for key in &keys {
                let target = internal_key(user_key_of(key), 100, KIND_FOR_SEEK);
                assert!(cursor.seek_for_get(&target, hash64(user_key_of(key))).unwrap());
                assert_eq!(cursor.key(), &key[..]);
            }
            cursor.check_hash_index().unwrap();
        }
    }

    #[test]
    fn the_check_finds_an_index_that_would_hide_a_key() {
        let mut rng = TestRng::new(seed_or(11));
        let mut checked = 0;
        for _ in 0..100 {
            let (good, keys) = random_block(&mut rng, true);
            let block = Block::new(good.clone()).unwrap();
            if !block.has_hash_index() || keys.len() < 4 {
                continue;
            }
            BlockCursor::new(Arc::new(block)).check_hash_index().unwrap();
            let len = good.len();
            let bucket_count = usize::from(crate::coding::get_u16_at(&good, len - 6).unwrap());
            let restart_count =
                u32::from_le_bytes(good[len - 4..].try_into().unwrap()) & !HASH_INDEX_FLAG;
            let bucket_at = |key: &[u8]| {
                len - 6 - bucket_count + bucket_of(hash64(user_key_of(key)), bucket_count)
            };
            // The last key's bucket emptied: the key would be ruled out.
            let at = bucket_at(&keys[keys.len() - 1]);
            let mut bad = good.clone();
            bad[at] = BUCKET_EMPTY;
            let block = Block::new(bad).unwrap();
            assert!(BlockCursor::new(Arc::new(block)).check_hash_index().is_err());
            // The first key's bucket (its key is at restart point 0) naming restart point 1:
            // a walk from there would pass the key.
            let at = bucket_at(&keys[0]);
            if restart_count > 1 && good[at] != BUCKET_COLLISION {
                let mut bad = good.clone();
                bad[at] = 1;
                let block = Block::new(bad).unwrap();
                assert!(BlockCursor::new(Arc::new(block)).check_hash_index().is_err());
            }
            checked += 1;
        }
        assert!(checked > 20, "{checked} blocks checked");
    }
}
