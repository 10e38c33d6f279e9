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
//! from there into a block the same thread reads.
//!
//! Invariants:
//! 1. A thread keeps at most `STOCK_BUFFERS_MAX` buffers, none of a capacity above
//!    `STOCK_BUFFER_BYTES_MAX`, so the stock costs a thread at most 8 × 64 KiB.
//! 2. `take` returns an empty buffer whose capacity is at least what was asked and at most
//!    twice that, so the block cache, which charges a block its buffer's capacity, is not
//!    charged much more than the block's size.

use std::cell::RefCell;

/// Most buffers one thread keeps. Block sizes vary, so a larger stock more often holds one
/// that fits: with 4, the two-reader run above peaked at 517–552 MiB (408 with 8). The cost
/// is per thread: in `nanodb serve`, whose ~130 blocking threads each read, 1 to 4 MiB more
/// resident under reads.
pub const STOCK_BUFFERS_MAX: usize = 8;
/// Largest capacity a kept buffer may have, in bytes (data blocks are 4 KiB by default;
/// bigger, rarer blocks are not worth keeping).
pub const STOCK_BUFFER_BYTES_MAX: usize = 64 * 1024;

thread_local! {
    static STOCK: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `capacity` bytes: the smallest of this thread's stock that
/// holds `capacity` without being twice as big, else a new one.
///
/// Kept buffers are never grown or shrunk: a `realloc` could move a buffer and leave a hole
/// that nothing of that size fills again, which cost more memory than the stock saved (24
/// MiB more resident over a million lookups, with the same cache usage).
pub fn take(capacity: usize) -> Vec<u8> {
    let fitting = |buffer: &Vec<u8>| {
        buffer.capacity() >= capacity && buffer.capacity() / 2 <= capacity.max(1)
    };
    let kept = STOCK
        .try_with(|stock| {
            let mut stock = stock.try_borrow_mut().ok()?;
            let (index, _) = stock
                .iter()
                .enumerate()
                .filter(|(_, buffer)| fitting(buffer))
                .min_by_key(|(_, buffer)| buffer.capacity())?;
            Some(stock.swap_remove(index))
        })
        .ok()
        .flatten();
    match kept {
        Some(mut buffer) => {
            buffer.clear();
            buffer
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Keeps `buffer` for this thread's next `take`, if the stock has room and it is not too big;
/// otherwise frees it.
pub fn give(buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > STOCK_BUFFER_BYTES_MAX {
        return;
    }
    let _ = STOCK.try_with(|stock| {
        if let Ok(mut stock) = stock.try_borrow_mut() {
            if stock.len() < STOCK_BUFFERS_MAX {
                stock.push(buffer);
            }
        }
    });
}

/// Buffers this thread holds (for tests).
#[cfg(test)]
pub fn kept() -> usize {
    STOCK.with_borrow(Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain() {
        STOCK.with_borrow_mut(Vec::clear);
    }

    #[test]
    fn a_given_buffer_is_taken_back_with_its_memory() {
        drain();
        let mut buffer = Vec::with_capacity(4096);
        buffer.extend_from_slice(&[7; 100]);
        let address = buffer.as_ptr();
        give(buffer);
        assert_eq!(kept(), 1);
        let again = take(4000);
        assert_eq!(again.as_ptr(), address, "the same allocation came back");
        assert!(again.is_empty() && again.capacity() == 4096);
        assert_eq!(kept(), 0);
    }

    #[test]
    fn the_stock_is_bounded_in_count_and_size() {
        drain();
        for _ in 0..STOCK_BUFFERS_MAX + 3 {
            give(Vec::with_capacity(1024));
        }
        assert_eq!(kept(), STOCK_BUFFERS_MAX);
        drain();
        give(Vec::with_capacity(STOCK_BUFFER_BYTES_MAX + 1));
        give(Vec::new());
        assert_eq!(kept(), 0, "too big and empty buffers are not kept");
        give(Vec::with_capacity(STOCK_BUFFER_BYTES_MAX));
        assert_eq!(kept(), 1, "a buffer of exactly the limit is kept");
        // A request above the limit does not take from the stock.
        let big = take(STOCK_BUFFER_BYTES_MAX + 1);
        assert!(big.capacity() > STOCK_BUFFER_BYTES_MAX);
        assert_eq!(kept(), 1);
        drain();
    }

    #[test]
    fn taken_buffers_fit_best_and_are_never_too_small_or_much_too_big() {
        drain();
        for capacity in [1000, 5000, 4300, 60_000] {
            give(Vec::with_capacity(capacity));
        }
        let best = take(4200);
        assert_eq!(best.capacity(), 4300, "the smallest that fits");
        let next = take(4200);
        assert_eq!(next.capacity(), 5000);
        // Nothing kept fits 7000 (60,000 is more than twice as big): a new buffer.
        let new = take(7000);
        assert!(new.capacity() >= 7000 && new.capacity() < 60_000);
        assert_eq!(kept(), 2);
        assert_eq!(take(100).capacity(), 100, "1000 and 60,000 are too big for 100");
        drain();
    }
}
