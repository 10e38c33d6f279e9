//! A per-thread stock of block buffers: when a `Block` is dropped (evicted from the block
//! cache, or read for one lookup or one step of a scan and done with), the thread that drops
//! it keeps its bytes, and that thread's next block read decodes into them instead of
//! allocating.
//!
//! Why: glibc's malloc gives threads arenas of their own and returns a freed chunk to the
//! arena it came from. When one thread has filled the block cache and other threads then read
//! through it, each evicted block went back, free, to the first thread's arena while its
//! replacement was allocated in the reader's arena, so the cache's resident memory grew
//! towards twice its capacity (`nanodb-bench docs`, 1,000,000 documents, 256 MiB budget: 586
//! MiB peak over two reader threads, against 361 MiB with a single arena; docs/benchmarks.md).
//! A reused buffer stays in the memory it already has; a block no kept buffer fits gets a new
//! one.
//!
//! Thread safety: thread-local; a buffer moves from a dropped block to its thread's stock and
//! from there into a block the same thread reads. The bytes kept by all threads together are
//! counted in one atomic (`STOCKS_HELD_BYTES`).
//!
//! Invariants:
//! 1. A thread keeps at most `STOCK_BUFFERS_MAX` buffers, none of a capacity above
//!    `STOCK_BUFFER_BYTES_MAX`, and all threads together at most `STOCKS_BYTES_MAX` bytes of
//!    capacity, so a process with hundreds of threads (a server) keeps little.
//! 2. A full stock takes a new buffer in place of its oldest, so buffers no read fits do not
//!    stay for good.
//! 3. `take` returns an empty buffer whose capacity is at least what was asked and at most
//!    twice that (a new one: at most `NEW_BUFFER_ROUNDING_BYTES` - 1 more), so the block
//!    cache, which charges a block its buffer's capacity, is not charged much more than the
//!    block's size. Kept buffers are never grown or shrunk: a
//!    `realloc` can move a buffer and leave a hole nothing of that size fills again (a first
//!    version that did cost 24 MiB more resident over a million lookups at the same cache
//!    usage).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most buffers one thread keeps. Block sizes vary, so a larger stock more often holds one
/// that fits: with 4, the two-reader run of `nanodb-bench docs` peaked at 517–552 MiB, against
/// 408 MiB with 8 (same harness, docs/benchmarks.md).
pub const STOCK_BUFFERS_MAX: usize = 8;
/// Largest capacity a kept buffer may have, in bytes (data blocks are 4 KiB by default;
/// bigger, rarer blocks are not worth keeping).
pub const STOCK_BUFFER_BYTES_MAX: usize = 64 * 1024;
/// Most bytes (of capacity) all threads' stocks keep together: a few hundred threads' worth of
/// 4 KiB blocks. `nanodb serve` reads from its two event-loop threads and up to 36 blocking
/// threads (its defaults).
pub const STOCKS_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A new buffer that may be kept later gets a capacity rounded up to a multiple of this, so
/// kept buffers come in fewer sizes and fit more reads. Without it, the reads no kept buffer
/// fitted freed and allocated buffers of ever-different sizes, whose holes grew glibc's main
/// arena by 17 MiB over a million lookups (288 -> 306 MB held for the same 274 MB in use); with
/// it, 287 MB. It costs a block at most 255 bytes more of the cache's charge (about 3% of a
/// 4 KiB block on average).
pub const NEW_BUFFER_ROUNDING_BYTES: usize = 256;

/// Bytes of capacity kept in all threads' stocks.
static STOCKS_HELD_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STOCK: RefCell<Stock> =
        const { RefCell::new(Stock::new(&STOCKS_HELD_BYTES, STOCKS_BYTES_MAX)) };
}

/// An empty buffer with room for `len_bytes`: the smallest of this thread's stock that holds
/// `len_bytes` and is at most twice as big, else a new one (rounded up to
/// `NEW_BUFFER_ROUNDING_BYTES` when it is small enough to be kept later).
pub fn take(len_bytes: usize) -> Vec<u8> {
    let mut buffer = take_as_left(len_bytes);
    buffer.clear();
    buffer
}

/// A buffer of exactly `len_bytes` bytes whose contents are unspecified (what a block read
/// before left in it, or zeros), as `take` would choose it, for a caller that overwrites
/// every byte before reading any (a decompressor checked to have written them all). A kept
/// buffer is only cut to length, or extended with zeros, instead of being zeroed whole: at
/// 1,000,000 documents the zeroing took 7% of a lookup (a `memset` of 4 KiB on each read).
pub fn take_overwritable(len_bytes: usize) -> Vec<u8> {
    let mut buffer = take_as_left(len_bytes);
    if buffer.len() >= len_bytes {
        buffer.truncate(len_bytes);
    } else {
        buffer.resize(len_bytes, 0);
    }
    buffer
}

/// A kept buffer as its last block left it, or a new empty one (see `take`).
fn take_as_left(len_bytes: usize) -> Vec<u8> {
    let kept = STOCK
        .try_with(|stock| stock.try_borrow_mut().ok().and_then(|mut stock| stock.take(len_bytes)))
        .ok()
        .flatten();
    kept.unwrap_or_else(|| {
        if len_bytes <= STOCK_BUFFER_BYTES_MAX {
            Vec::with_capacity(len_bytes.next_multiple_of(NEW_BUFFER_ROUNDING_BYTES))
        } else {
            Vec::with_capacity(len_bytes)
        }
    })
}

/// Keeps `buffer` for this thread's next `take`, in place of the oldest kept one when the
/// stock is full; frees it instead when it is too big or all stocks hold their limit.
pub fn give(buffer: Vec<u8>) {
    let _ = STOCK.try_with(|stock| {
        if let Ok(mut stock) = stock.try_borrow_mut() {
            stock.give(buffer);
        }
    });
}

/// One thread's kept buffers, and the count of all stocks' bytes they are part of (what they
/// hold leaves it when the stock is dropped, with its thread).
struct Stock {
    buffers: Vec<Vec<u8>>,
    held: &'static AtomicUsize,
    held_bytes_max: usize,
}

impl Stock {
    const fn new(held: &'static AtomicUsize, held_bytes_max: usize) -> Stock {
        Stock { buffers: Vec::new(), held, held_bytes_max }
    }

    fn take(&mut self, len_bytes: usize) -> Option<Vec<u8>> {
        let room_max = len_bytes.max(1).saturating_mul(2);
        let (index, _) = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, buffer)| (len_bytes..=room_max).contains(&buffer.capacity()))
            .min_by_key(|(_, buffer)| buffer.capacity())?;
        let buffer = self.buffers.remove(index);
        self.held.fetch_sub(buffer.capacity(), Ordering::Relaxed);
        Some(buffer)
    }

    fn give(&mut self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0 || capacity > STOCK_BUFFER_BYTES_MAX {
            return;
        }
        if self.buffers.len() >= STOCK_BUFFERS_MAX {
            let oldest = self.buffers.remove(0);
            self.held.fetch_sub(oldest.capacity(), Ordering::Relaxed);
        }
        // Counts `capacity` more only if all stocks stay within their limit.
        let admitted = self.held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            now.checked_add(capacity).filter(|&after| after <= self.held_bytes_max)
        });
        if admitted.is_ok() {
            self.buffers.push(buffer);
        }
    }

    #[cfg(test)]
    fn capacities(&self) -> Vec<usize> {
        self.buffers.iter().map(Vec::capacity).collect()
    }
}

impl Drop for Stock {
    fn drop(&mut self) {
        let held: usize = self.buffers.iter().map(Vec::capacity).sum();
        self.held.fetch_sub(held, Ordering::Relaxed);
    }
}

/// Capacities of the buffers this thread holds, oldest first (for tests).
#[cfg(test)]
pub fn kept_capacities() -> Vec<usize> {
    STOCK.with_borrow(Stock::capacities)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stock of its own, counted in a counter of its own (tests run in parallel threads,
    /// which share `STOCKS_HELD_BYTES`).
    fn stock(held: &'static AtomicUsize, held_bytes_max: usize) -> Stock {
        Stock::new(held, held_bytes_max)
    }

    #[test]
    fn a_given_buffer_is_taken_back_with_its_memory() {
        static HELD: AtomicUsize = AtomicUsize::new(0);
        let mut stock = stock(&HELD, usize::MAX);
        let mut buffer = Vec::with_capacity(4096);
        buffer.extend_from_slice(&[7; 100]);
        let address = buffer.as_ptr();
        stock.give(buffer);
        assert_eq!(HELD.load(Ordering::Relaxed), 4096);
        let again = stock.take(4000).unwrap();
        assert_eq!(again.as_ptr(), address, "the same allocation came back");
        assert!(again.len() == 100 && again.capacity() == 4096, "as its last user left it");
        assert_eq!(HELD.load(Ordering::Relaxed), 0);
        assert!(stock.take(4000).is_none());
    }

    #[test]
    fn overwritable_buffers_have_the_length_asked_and_keep_their_memory() {
        // On a thread of its own, so no other test touches this stock.
        std::thread::spawn(|| {
            let mut buffer = Vec::with_capacity(4096);
            buffer.extend_from_slice(&[7; 4000]);
            let address = buffer.as_ptr();
            give(buffer);
            // Shorter than the bytes left: cut, not zeroed (the caller overwrites them).
            let shorter = take_overwritable(3000);
            assert_eq!((shorter.as_ptr(), shorter.len()), (address, 3000));
            assert!(shorter.iter().all(|&byte| byte == 7));
            give(shorter);
            // Longer: the bytes past the old length are zeros, nothing uninitialised.
            let longer = take_overwritable(3500);
            assert_eq!((longer.as_ptr(), longer.len()), (address, 3500));
            assert!(longer[..3000].iter().all(|&byte| byte == 7));
            assert!(longer[3000..].iter().all(|&byte| byte == 0));
            // An empty stock: a new buffer of zeros, rounded like `take`'s.
            let new = take_overwritable(5000);
            assert_eq!((new.len(), new.capacity()), (5000, 5120));
            assert!(new.iter().all(|&byte| byte == 0));
            assert!(take_overwritable(0).is_empty());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_thread_functions_use_the_threads_stock() {
        // On a thread of its own, so no other test touches this stock.
        std::thread::spawn(|| {
            let mut buffer = Vec::with_capacity(3000);
            buffer.push(1);
            let address = buffer.as_ptr();
            give(buffer);
            assert_eq!(kept_capacities(), [3000]);
            let again = take(2000);
            assert_eq!(again.as_ptr(), address);
            assert!(again.is_empty(), "take empties it");
            assert!(kept_capacities().is_empty());
            assert_eq!(take(2000).capacity(), 2048, "an empty stock gives a new, rounded buffer");
            assert_eq!(take(0).capacity(), 0);
            assert_eq!(take(1).capacity(), NEW_BUFFER_ROUNDING_BYTES);
            assert_eq!(take(STOCK_BUFFER_BYTES_MAX - 1).capacity(), STOCK_BUFFER_BYTES_MAX);
            let unkeepable = STOCK_BUFFER_BYTES_MAX + 1;
            assert_eq!(take(unkeepable).capacity(), unkeepable, "too big to keep: not rounded");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_full_stock_takes_the_new_buffer_in_place_of_the_oldest() {
        static HELD: AtomicUsize = AtomicUsize::new(0);
        let mut stock = stock(&HELD, usize::MAX);
        for index in 0..STOCK_BUFFERS_MAX + 3 {
            stock.give(Vec::with_capacity(1000 + index));
        }
        let expected: Vec<usize> = (3..STOCK_BUFFERS_MAX + 3).map(|index| 1000 + index).collect();
        assert_eq!(stock.capacities(), expected);
        assert_eq!(HELD.load(Ordering::Relaxed), expected.iter().sum::<usize>());
    }

    #[test]
    fn too_big_and_empty_buffers_are_not_kept() {
        static HELD: AtomicUsize = AtomicUsize::new(0);
        let mut stock = stock(&HELD, usize::MAX);
        stock.give(Vec::with_capacity(STOCK_BUFFER_BYTES_MAX + 1));
        stock.give(Vec::new());
        assert!(stock.capacities().is_empty());
        stock.give(Vec::with_capacity(STOCK_BUFFER_BYTES_MAX));
        assert_eq!(stock.capacities(), [STOCK_BUFFER_BYTES_MAX], "exactly the limit is kept");
    }

    #[test]
    fn taken_buffers_fit_best_and_are_never_too_small_or_more_than_twice_too_big() {
        static HELD: AtomicUsize = AtomicUsize::new(0);
        let mut stock = stock(&HELD, usize::MAX);
        for capacity in [1000, 5000, 4300, 60_000, 8401, 8400] {
            stock.give(Vec::with_capacity(capacity));
        }
        assert_eq!(stock.take(4200).unwrap().capacity(), 4300, "the smallest that fits");
        assert_eq!(stock.take(4200).unwrap().capacity(), 5000);
        assert_eq!(stock.take(4200).unwrap().capacity(), 8400, "exactly twice fits");
        // 8401 is more than twice 4200, 1000 too small, 60,000 far too big.
        assert!(stock.take(4200).is_none());
        assert_eq!(stock.capacities(), [1000, 60_000, 8401]);
        assert_eq!(HELD.load(Ordering::Relaxed), 1000 + 60_000 + 8401);
    }

    #[test]
    fn all_stocks_together_stay_within_their_byte_limit_and_a_dropped_one_hands_its_bytes_back() {
        static HELD: AtomicUsize = AtomicUsize::new(0);
        let mut first = stock(&HELD, 10_000);
        let mut second = stock(&HELD, 10_000);
        first.give(Vec::with_capacity(6000));
        second.give(Vec::with_capacity(4000));
        assert_eq!(HELD.load(Ordering::Relaxed), 10_000, "exactly the limit is kept");
        second.give(Vec::with_capacity(1));
        assert_eq!(second.capacities(), [4000], "one byte past the limit is not");
        drop(first);
        assert_eq!(HELD.load(Ordering::Relaxed), 4000);
        second.give(Vec::with_capacity(1));
        assert_eq!(second.capacities(), [4000, 1]);
        drop(second);
        assert_eq!(HELD.load(Ordering::Relaxed), 0);
    }
}
