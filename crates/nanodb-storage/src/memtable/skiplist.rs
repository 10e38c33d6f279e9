//! `SkipList`: one memtable partition's versions, ordered by internal key, in an arena.
//!
//! Each version is one *node* laid out in a chunk of memory the list owns: its tower of `next`
//! links (one per level it lives on), then its header (internal-key length and value length,
//! two `u32`), then the encoded internal key (the user key and the 8-byte trailer, exactly as
//! `key::encode_internal_key` writes it) and the value. A node costs its key and value plus
//! 16 bytes of header and trailer, 8 bytes per level (1.33 levels on average) and up to 7
//! bytes of alignment: about 30 bytes, where a node-per-allocation skip list costs about 96.
//! Chunks start at `CHUNK_BYTES_FIRST` and double up to the list's `chunk_bytes_max` (the
//! memtable picks it from its size limit, `chunk_bytes_max_for`), so a keyspace with a few
//! writes costs a KiB or two; a node larger than a quarter of the largest chunk gets a chunk
//! of its own, and every shared chunk holds at least four nodes of the size that opened it.
//! The list's footprint is the bytes of every chunk it allocated, used or not, so a
//! memtable's count bounds its real memory however many keyspaces it holds. Nodes are never
//! moved or freed before the list drops.
//!
//! Thread safety: `SkipList` is `Send + Sync`. Inserts are serialized by the `writer` mutex
//! (the write path has one inserter anyway, so it is never contended); reads take no lock.
//! A node is written completely before the links that publish it are stored with `Release`,
//! and readers load links with `Acquire`, so a reader that reaches a node sees all of it.
//!
//! Invariants:
//! 1. Every link points to a node of this list (or is null), and the nodes on each level are
//!    in ascending internal-key order (user key ascending, then trailer descending).
//! 2. A node reachable on level `l` has a tower of more than `l` links.
//! 3. A node's bytes never change after it is published, except its links, which are atomic;
//!    the memory stays valid until the list drops, and a `ListCursor` holds the list alive.
//!
//! Why this module uses `unsafe`: an arena skip list stores variable-length nodes in shared
//! chunks and hands out borrowed slices of them to readers that run concurrently with the
//! inserter; safe Rust can express neither the layout nor the publication, and the memtable
//! is the write path's hottest structure. The unsafe code is confined to `Node`'s accessors,
//! `Chunk`, `Writer::allocate` and the node write in `SkipList::insert`; every public method
//! is safe. `SkipList` is `Send + Sync` by its fields (atomics and a mutex over the `Send`
//! writer), so the compiler still checks any field added later.
#![allow(unsafe_code)]

use crate::key::split_internal_key;
use parking_lot::Mutex;
use std::cmp::Ordering;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Most levels a node can live on. With one node in four promoted to the next level, 12
/// levels index 4^12 (16M) entries per partition before searches start to lengthen.
pub const HEIGHT_MAX: usize = 12;
/// Size of a partition's first chunk: a keyspace with a few writes stays small.
pub const CHUNK_BYTES_FIRST: usize = 1024;
/// Largest size chunks double up to, whatever the memtable's limit.
pub const CHUNK_BYTES_MAX: usize = 1024 * 1024;
/// A list's chunks grow to at most this fraction of its memtable's size limit, so the unused
/// end of each keyspace's last chunk stays small beside the limit.
const CHUNKS_PER_MEMTABLE_MIN: usize = 256;

/// The chunk size a memtable of at most `memtable_size_bytes_max` gives its lists: a 256th of
/// it, between `CHUNK_BYTES_FIRST` and `CHUNK_BYTES_MAX` (256 KiB for the default 64 MiB).
pub fn chunk_bytes_max_for(memtable_size_bytes_max: usize) -> usize {
    let chunk_bytes = memtable_size_bytes_max / CHUNKS_PER_MEMTABLE_MIN;
    // A multiple of 8, like every chunk (they are `u64` words), so the count is exact.
    (chunk_bytes & !7).clamp(CHUNK_BYTES_FIRST, CHUNK_BYTES_MAX)
}

/// A node's header: internal-key length and value length, as `u32`.
const HEADER_BYTES: usize = 8;
/// Bytes each chunk costs beyond its own: its slot in the list's `Vec<Chunk>` (16, 32 while
/// the `Vec` has doubled) and the allocator's header and rounding (16).
const CHUNK_OVERHEAD_BYTES: usize = 48;
/// Bytes per link in a tower.
const LINK_BYTES: usize = std::mem::size_of::<AtomicPtr<u8>>();
/// Internal keys (user key at most `KEY_SIZE_BYTES_MAX_LIMIT` plus the trailer) and values
/// (at most `VALUE_SIZE_BYTES_MAX_LIMIT`) fit the header's `u32` lengths.
const _: () = assert!(crate::options::KEY_SIZE_BYTES_MAX_LIMIT + 8 <= u32::MAX as usize);
const _: () = assert!(crate::options::VALUE_SIZE_BYTES_MAX_LIMIT <= u32::MAX as usize);

/// Bytes a node takes in its chunk, for a user key, a value and a tower height.
fn node_bytes(user_key_len: usize, value_len: usize, height: usize) -> usize {
    let raw = height * LINK_BYTES + HEADER_BYTES + user_key_len + 8 + value_len;
    raw.next_multiple_of(8)
}

/// Orders a node's internal key against (`user_key`, `trailer`): user key ascending, then
/// trailer descending (newer versions first).
fn compare(internal_key: &[u8], user_key: &[u8], trailer: u64) -> Ordering {
    let (node_user_key, node_trailer) = split_internal_key(internal_key);
    node_user_key.cmp(user_key).then_with(|| trailer.cmp(&node_trailer))
}

/// A published node: a pointer to its header, inside a chunk of the list that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node(NonNull<u8>);

impl Node {
    /// The node's link on `level`.
    ///
    /// Safety: the node belongs to a live list and its tower is taller than `level`.
    unsafe fn link<'a>(self, level: usize) -> &'a AtomicPtr<u8> {
        // SAFETY: the tower sits right below the header, one aligned link per level, level 0
        // nearest; the caller guarantees the link exists and outlives 'a.
        unsafe { &*self.0.as_ptr().sub((level + 1) * LINK_BYTES).cast::<AtomicPtr<u8>>() }
    }

    /// The node's encoded internal key.
    ///
    /// Safety: the node belongs to a live list that outlives 'a.
    unsafe fn internal_key<'a>(self) -> &'a [u8] {
        // SAFETY: the header was written before publication and never changes; the key
        // follows it, `key_len` bytes long, inside the node's chunk.
        unsafe {
            let key_len = self.0.as_ptr().cast::<u32>().read() as usize;
            std::slice::from_raw_parts(self.0.as_ptr().add(HEADER_BYTES), key_len)
        }
    }

    /// The node's value.
    ///
    /// Safety: as for `internal_key`.
    unsafe fn value<'a>(self) -> &'a [u8] {
        // SAFETY: as above; the value follows the key, `value_len` bytes long.
        unsafe {
            let key_len = self.0.as_ptr().cast::<u32>().read() as usize;
            let value_len = self.0.as_ptr().add(4).cast::<u32>().read() as usize;
            std::slice::from_raw_parts(self.0.as_ptr().add(HEADER_BYTES + key_len), value_len)
        }
    }
}

/// One block of node memory: a boxed slice of `u64` (for 8-byte alignment), zeroed, owned by
/// raw pointer so readers' borrows of nodes never alias a unique borrow of the chunk.
#[derive(Debug)]
struct Chunk {
    start: NonNull<u64>,
    words: usize,
}

impl Chunk {
    fn zeroed(bytes: usize) -> Chunk {
        let words = bytes.div_ceil(8);
        let boxed: Box<[u64]> = vec![0u64; words].into_boxed_slice();
        let start = NonNull::from(Box::leak(boxed)).cast::<u64>();
        Chunk { start, words }
    }

    fn start(&self) -> *mut u8 {
        self.start.as_ptr().cast::<u8>()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: `start` and `words` came from `Box::leak` of a `Box<[u64]>` of that length
        // in `zeroed`, and the chunk is dropped once, with its list.
        unsafe {
            let slice = std::ptr::slice_from_raw_parts_mut(self.start.as_ptr(), self.words);
            drop(Box::from_raw(slice));
        }
    }
}

/// The inserter's state: the chunks and where the next node goes.
#[derive(Debug)]
struct Writer {
    chunks: Vec<Chunk>,
    /// Offset of the free space in `chunks[current]`, and how much is left there.
    current: Option<usize>,
    free_offset: usize,
    free_bytes: usize,
    /// Size of the next shared chunk, and the most it grows to.
    chunk_bytes_next: usize,
    chunk_bytes_max: usize,
    /// State of the xorshift generator that picks tower heights.
    rng: u64,
}

// SAFETY: a `Writer` owns its chunks outright (the raw pointers are unique owners, like a
// `Box`), so moving it to another thread is as safe as moving the boxes.
unsafe impl Send for Writer {}

impl Writer {
    fn random_height(&mut self) -> usize {
        let mut height = 1;
        while height < HEIGHT_MAX {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if self.rng & 3 != 0 {
                break;
            }
            height += 1;
        }
        height
    }

    /// Space for `bytes` (a multiple of 8), 8-byte aligned, and the bytes this added to the
    /// list's footprint: the size of the chunk it allocated and `CHUNK_OVERHEAD_BYTES`, if it
    /// needed one.
    fn allocate(&mut self, bytes: usize) -> (*mut u8, usize) {
        if let Some(current) = self.current.filter(|_| bytes <= self.free_bytes) {
            // SAFETY: `free_offset + bytes` is within chunk `current` (tracked by
            // `free_bytes`), and no published node uses that space.
            let start = unsafe { self.chunks[current].start().add(self.free_offset) };
            self.free_offset += bytes;
            self.free_bytes -= bytes;
            return (start, 0);
        }
        if bytes > self.chunk_bytes_max / 4 {
            // A large node gets a chunk of exactly its size; the shared chunk stays current.
            let chunk = Chunk::zeroed(bytes);
            let start = chunk.start();
            self.chunks.push(chunk);
            return (start, bytes + CHUNK_OVERHEAD_BYTES);
        }
        // The next chunk holds at least four nodes of this size (it is at most a quarter of
        // the largest chunk, so that one does).
        let mut chunk_bytes = self.chunk_bytes_next;
        while chunk_bytes < bytes * 4 && chunk_bytes < self.chunk_bytes_max {
            chunk_bytes *= 2;
        }
        let chunk_bytes = chunk_bytes.min(self.chunk_bytes_max);
        self.chunk_bytes_next = (chunk_bytes * 2).min(self.chunk_bytes_max);
        let chunk = Chunk::zeroed(chunk_bytes);
        let start = chunk.start();
        self.chunks.push(chunk);
        self.current = Some(self.chunks.len() - 1);
        self.free_offset = bytes;
        self.free_bytes = chunk_bytes - bytes;
        (start, chunk_bytes + CHUNK_OVERHEAD_BYTES)
    }
}

/// An append-only skip list of (internal key, value) in an arena; see the module docs.
#[derive(Debug)]
pub struct SkipList {
    /// The head's links, one per level.
    head: [AtomicPtr<u8>; HEIGHT_MAX],
    /// Levels in use (at least 1): searches start here.
    height: AtomicUsize,
    writer: Mutex<Writer>,
}

impl SkipList {
    /// An empty list whose chunks grow to `chunk_bytes_max` (at least `CHUNK_BYTES_FIRST`);
    /// it allocates its first chunk on the first insert.
    pub fn new(chunk_bytes_max: usize) -> SkipList {
        SkipList {
            head: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            height: AtomicUsize::new(1),
            writer: Mutex::new(Writer {
                chunks: Vec::new(),
                current: None,
                free_offset: 0,
                free_bytes: 0,
                chunk_bytes_next: CHUNK_BYTES_FIRST,
                chunk_bytes_max: (chunk_bytes_max & !7).max(CHUNK_BYTES_FIRST),
                rng: 0x9E37_79B9_7F4A_7C15,
            }),
        }
    }

    /// The link on `level` after `from` (the head for `None`).
    fn link(&self, from: Option<Node>, level: usize) -> &AtomicPtr<u8> {
        match from {
            // SAFETY: `from` was reached through this list's links on `level` or above, so it
            // belongs to this list (alive while `self` is borrowed) and is tall enough
            // (invariants 1 and 2).
            Some(node) => unsafe { node.link(level) },
            None => &self.head[level],
        }
    }

    fn next(&self, from: Option<Node>, level: usize) -> Option<Node> {
        NonNull::new(self.link(from, level).load(AtomicOrdering::Acquire)).map(Node)
    }

    fn key_of(&self, node: Node) -> &[u8] {
        // SAFETY: every `Node` this list hands to itself was reached through its links, and
        // the borrow of `self` keeps the chunk alive.
        unsafe { node.internal_key() }
    }

    fn value_of(&self, node: Node) -> &[u8] {
        // SAFETY: as in `key_of`.
        unsafe { node.value() }
    }

    /// Walks down from the top level, moving right while `advance(next node's key)` holds;
    /// returns the last node passed on level 0 (`None` for the head), and records the last
    /// node passed on every level in `preds`.
    fn descend(
        &self,
        mut advance: impl FnMut(&[u8]) -> bool,
        mut preds: Option<&mut [Option<Node>; HEIGHT_MAX]>,
    ) -> Option<Node> {
        let mut at: Option<Node> = None;
        let height = self.height.load(AtomicOrdering::Relaxed).clamp(1, HEIGHT_MAX);
        for level in (0..height).rev() {
            while let Some(next) = self.next(at, level) {
                if !advance(self.key_of(next)) {
                    break;
                }
                at = Some(next);
            }
            if let Some(preds) = preds.as_deref_mut() {
                preds[level] = at;
            }
        }
        at
    }

    /// The last node before (`user_key`, `trailer`) (`None` for the head), recording the
    /// last one on every level in `preds`.
    fn last_before(
        &self,
        user_key: &[u8],
        trailer: u64,
        preds: Option<&mut [Option<Node>; HEIGHT_MAX]>,
    ) -> Option<Node> {
        self.descend(|key| compare(key, user_key, trailer) == Ordering::Less, preds)
    }

    /// The first node at or after (`user_key`, `trailer`).
    fn first_from(&self, user_key: &[u8], trailer: u64) -> Option<Node> {
        self.next(self.last_before(user_key, trailer, None), 0)
    }

    /// Inserts a version of `user_key` with `trailer` and `value`; returns the bytes of
    /// memory this allocated (a new chunk, or 0).
    pub fn insert(&self, user_key: &[u8], trailer: u64, value: &[u8]) -> usize {
        let mut writer = self.writer.lock();
        let height = writer.random_height();
        let bytes = node_bytes(user_key.len(), value.len(), height);
        let (start, added_bytes) = writer.allocate(bytes);
        let key_len = user_key.len() + 8;
        // SAFETY: `start` is `bytes` of fresh, 8-aligned memory of this list that no reader
        // can reach yet; the writes below stay inside it (`node_bytes`), and the lengths fit
        // `u32` (the asserts on the limits above).
        let node = unsafe {
            let header = start.add(height * LINK_BYTES);
            header.cast::<u32>().write(key_len as u32);
            header.add(4).cast::<u32>().write(value.len() as u32);
            let key = header.add(HEADER_BYTES);
            std::ptr::copy_nonoverlapping(user_key.as_ptr(), key, user_key.len());
            let trailer_bytes = trailer.to_le_bytes();
            std::ptr::copy_nonoverlapping(trailer_bytes.as_ptr(), key.add(user_key.len()), 8);
            std::ptr::copy_nonoverlapping(value.as_ptr(), key.add(key_len), value.len());
            Node(NonNull::new_unchecked(header))
        };
        let mut preds = [None; HEIGHT_MAX];
        self.last_before(user_key, trailer, Some(&mut preds));
        for (level, pred) in preds.iter().enumerate().take(height) {
            let next = self.link(*pred, level).load(AtomicOrdering::Acquire);
            // SAFETY: the node's tower has `height` links, and the node is still private.
            unsafe { node.link(level) }.store(next, AtomicOrdering::Relaxed);
        }
        if height > self.height.load(AtomicOrdering::Relaxed) {
            self.height.store(height, AtomicOrdering::Relaxed);
        }
        // Publish bottom-up: once a reader can reach the node on a level, it is complete.
        for (level, pred) in preds.iter().enumerate().take(height) {
            self.link(*pred, level).store(node.0.as_ptr(), AtomicOrdering::Release);
        }
        added_bytes
    }

    /// The first version at or after (`user_key`, `trailer`): its internal key and value.
    pub fn first_at_or_after(&self, user_key: &[u8], trailer: u64) -> Option<(&[u8], &[u8])> {
        self.first_from(user_key, trailer).map(|node| (self.key_of(node), self.value_of(node)))
    }

    /// True if the list holds no version.
    pub fn is_empty(&self) -> bool {
        self.next(None, 0).is_none()
    }

    /// Calls `visit(internal_key, value)` for every version in order.
    pub fn for_each<E>(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut at = self.next(None, 0);
        while let Some(node) = at {
            visit(self.key_of(node), self.value_of(node))?;
            at = self.next(Some(node), 0);
        }
        Ok(())
    }
}

/// A position in a list that keeps the list alive: it walks level 0 forwards and searches
/// for the predecessor backwards (as LevelDB's does), and sees inserts made after it was
/// placed wherever they fall ahead of it.
#[derive(Debug)]
pub struct ListCursor {
    list: Arc<SkipList>,
    /// Invariant: a node of `list` (so its memory lives as long as `list`).
    node: Option<Node>,
}

// SAFETY: the cursor's node pointer points into `list`, which the cursor keeps alive and which
// is itself `Send + Sync`; the cursor only reads through it.
unsafe impl Send for ListCursor {}
// SAFETY: as above: `&ListCursor` only reads.
unsafe impl Sync for ListCursor {}

impl ListCursor {
    /// An unpositioned cursor over `list`.
    pub fn new(list: Arc<SkipList>) -> ListCursor {
        ListCursor { list, node: None }
    }

    /// True if the cursor is on a version.
    pub fn valid(&self) -> bool {
        self.node.is_some()
    }

    /// The version's internal key (empty when not valid).
    pub fn key(&self) -> &[u8] {
        self.node.map_or(&[], |node| self.list.key_of(node))
    }

    /// The version's value (empty when not valid).
    pub fn value(&self) -> &[u8] {
        self.node.map_or(&[], |node| self.list.value_of(node))
    }

    /// Moves to the first version at or after (`user_key`, `trailer`).
    pub fn seek_at_or_after(&mut self, user_key: &[u8], trailer: u64) {
        self.node = self.list.first_from(user_key, trailer);
    }

    /// Moves to the last version at or before (`user_key`, `trailer`).
    pub fn seek_at_or_before(&mut self, user_key: &[u8], trailer: u64) {
        let list = &self.list;
        self.node = list.descend(|key| compare(key, user_key, trailer) != Ordering::Greater, None);
    }

    /// Moves to the first version.
    pub fn seek_first(&mut self) {
        self.node = self.list.next(None, 0);
    }

    /// Moves to the last version.
    pub fn seek_last(&mut self) {
        self.node = self.list.descend(|_| true, None);
    }

    /// Moves to the next version (invalid past the last).
    pub fn next(&mut self) {
        if let Some(node) = self.node {
            self.node = self.list.next(Some(node), 0);
        }
    }

    /// Moves to the previous version (invalid before the first).
    pub fn prev(&mut self) {
        if let Some(node) = self.node {
            let (user_key, trailer) = split_internal_key(self.list.key_of(node));
            self.node = self.list.last_before(user_key, trailer, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::{seed_or, TestRng};
    use std::collections::BTreeMap;

    fn walk_forward(list: &Arc<SkipList>) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut cursor = ListCursor::new(Arc::clone(list));
        cursor.seek_first();
        let mut out = Vec::new();
        while cursor.valid() {
            let (user_key, trailer) = split_internal_key(cursor.key());
            out.push((user_key.to_vec(), trailer, cursor.value().to_vec()));
            cursor.next();
        }
        out
    }

    #[test]
    fn random_inserts_match_a_sorted_model_in_every_direction_and_seek() {
        let seed = seed_or(11);
        let mut rng = TestRng::new(seed);
        let list = Arc::new(SkipList::new(CHUNK_BYTES_MAX));
        // The model orders by (user key, trailer descending), as the list does.
        let mut model: BTreeMap<(Vec<u8>, std::cmp::Reverse<u64>), Vec<u8>> = BTreeMap::new();
        let steps = if cfg!(miri) { 300 } else { 4000 };
        for step in 0..steps {
            let key_len = rng.below(6) as usize;
            let user_key: Vec<u8> = (0..key_len).map(|_| rng.below(4) as u8).collect();
            let value_len = if rng.below(50) == 0 { 5000 } else { rng.below(40) as usize };
            let value = vec![(step % 251) as u8; value_len];
            let trailer = step * 7 + 1;
            list.insert(&user_key, trailer, &value);
            model.insert((user_key, std::cmp::Reverse(trailer)), value);
        }
        let expected: Vec<_> = model
            .iter()
            .map(|((key, trailer), value)| (key.clone(), trailer.0, value.clone()))
            .collect();
        assert_eq!(walk_forward(&list), expected, "seed {seed}");

        let mut cursor = ListCursor::new(Arc::clone(&list));
        cursor.seek_last();
        let mut backward = Vec::new();
        while cursor.valid() {
            let (user_key, trailer) = split_internal_key(cursor.key());
            backward.push((user_key.to_vec(), trailer, cursor.value().to_vec()));
            cursor.prev();
        }
        backward.reverse();
        assert_eq!(backward, expected, "seed {seed}");

        for _ in 0..steps / 8 {
            let key_len = rng.below(6) as usize;
            let user_key: Vec<u8> = (0..key_len).map(|_| rng.below(4) as u8).collect();
            let trailer = rng.below(steps * 7 + 2);
            let target = (user_key.clone(), std::cmp::Reverse(trailer));
            let at_or_after = model.range(target.clone()..).next().map(|(k, _)| k.clone());
            let at_or_before = model.range(..=target).next_back().map(|(k, _)| k.clone());
            cursor.seek_at_or_after(&user_key, trailer);
            let found = cursor.valid().then(|| {
                let (key, trailer) = split_internal_key(cursor.key());
                (key.to_vec(), std::cmp::Reverse(trailer))
            });
            assert_eq!(found, at_or_after, "seed {seed}");
            let via_list = list
                .first_at_or_after(&user_key, trailer)
                .map(|(key, _)| split_internal_key(key))
                .map(|(key, trailer)| (key.to_vec(), std::cmp::Reverse(trailer)));
            assert_eq!(via_list, at_or_after, "seed {seed}");
            cursor.seek_at_or_before(&user_key, trailer);
            let found = cursor.valid().then(|| {
                let (key, trailer) = split_internal_key(cursor.key());
                (key.to_vec(), std::cmp::Reverse(trailer))
            });
            assert_eq!(found, at_or_before, "seed {seed}");
        }
    }

    #[test]
    fn memory_counts_whole_chunks_that_grow_to_the_limit_and_large_nodes_get_their_own() {
        let chunk_bytes_max = 16 * 1024;
        let list = SkipList::new(chunk_bytes_max);
        assert!(list.is_empty());
        let mut counted = 0;
        let mut chunks = Vec::new();
        for index in 0..2000u32 {
            let added = list.insert(&index.to_be_bytes(), 1, &[7u8; 100]);
            if added > 0 {
                chunks.push(added - CHUNK_OVERHEAD_BYTES);
            }
            counted += added;
        }
        // Chunks double from the first size up to the limit, then stay there.
        assert_eq!(chunks[..5], [1024, 2048, 4096, 8192, 16384]);
        assert!(chunks[5..].iter().all(|&bytes| bytes == chunk_bytes_max), "{chunks:?}");
        // 2000 nodes of 4 + 8 + 100 bytes, 8 of header, 8 per level and alignment fit in the
        // chunks, which waste less than a node at the end of each.
        let payload = 2000 * 112;
        assert!(counted >= payload + 2000 * 16, "{counted}");
        assert!(counted <= payload + 2000 * 48 + chunk_bytes_max, "{counted}");
        // A node over a quarter of the largest chunk gets a chunk of exactly its size...
        let large = list.insert(b"large", 1, &[1u8; 20_000]);
        let heights = 1..=HEIGHT_MAX;
        let large = large - CHUNK_OVERHEAD_BYTES;
        assert!(heights.into_iter().any(|h| large == node_bytes(5, 20_000, h)), "{large}");
        // ...and the shared chunk stays current: a small node after it costs nothing more.
        assert_eq!(list.insert(b"small", 1, b"v"), 0);
        assert_eq!(list.first_at_or_after(b"large", u64::MAX).unwrap().1.len(), 20_000);
        assert_eq!(chunk_bytes_max_for(64 << 20), 256 * 1024);
        assert_eq!(chunk_bytes_max_for(4 * 1024), CHUNK_BYTES_FIRST);
        assert_eq!(chunk_bytes_max_for(1 << 40), CHUNK_BYTES_MAX);
        assert_eq!(chunk_bytes_max_for((4 << 20) + 2047) % 8, 0);
    }

    #[test]
    fn nodes_larger_than_a_quarter_of_the_first_chunk_still_share_chunks() {
        let list = SkipList::new(64 * 1024);
        let mut allocations = 0;
        for index in 0..1000u32 {
            if list.insert(&index.to_be_bytes(), 1, &[3u8; 600]) > 0 {
                allocations += 1;
            }
        }
        // Chunks of 4, 8, 16, 32 KiB, then 64 KiB ones: about 640 bytes a node, 100 a chunk.
        assert!(allocations <= 14, "{allocations} chunks for 1000 nodes");
    }

    #[test]
    fn readers_racing_one_inserter_always_see_a_sorted_prefix_of_complete_nodes() {
        let list = Arc::new(SkipList::new(CHUNK_BYTES_MAX));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let list = Arc::clone(&list);
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let mut passes = 0;
                    while !done.load(AtomicOrdering::Acquire) || passes == 0 {
                        let mut previous: Option<Vec<u8>> = None;
                        list.for_each(|key, value| {
                            let (user_key, _) = split_internal_key(key);
                            // Each value repeats its key, so a torn node would show.
                            assert_eq!(value, user_key.repeat(3));
                            if let Some(previous) = &previous {
                                assert!(previous.as_slice() <= user_key);
                            }
                            previous = Some(user_key.to_vec());
                            Ok::<(), ()>(())
                        })
                        .unwrap();
                        passes += 1;
                    }
                })
            })
            .collect();
        let seed = seed_or(12);
        let mut rng = TestRng::new(seed);
        // Miri (`cargo +nightly miri test -p nanodb-storage --lib memtable::`) runs a shorter race.
        let steps = if cfg!(miri) { 300 } else { 20_000 };
        for step in 0..steps {
            let key = rng.below(1 << 40).to_be_bytes();
            list.insert(&key, step, &key.repeat(3));
        }
        done.store(true, AtomicOrdering::Release);
        for reader in readers {
            assert!(reader.join().is_ok(), "a reader failed (seed {seed})");
        }
    }
}
