//! `FoundValue`: the value a point read found, either copied out (from a memtable, whose arena
//! may go) or still inside its cached SST block, shared with the block cache. A reader that
//! only looks at the bytes (`Keyspace::get_with`) then reads them where they lie, without a
//! copy; `into_vec` copies them out for the readers that keep them.
//!
//! Thread safety: `Send + Sync`; the block is immutable and shared through `Arc`.
//!
//! Invariant: for `InBlock(block, range)`, `range` lies within the block's bytes (it is a
//! cursor's value range).

use crate::sst::Block;
use std::ops::Range;
use std::sync::Arc;

/// A value found by a point read.
#[derive(Clone)]
pub enum FoundValue {
    /// Copied out.
    Copied(Vec<u8>),
    /// The bytes at `Range` of a cached block.
    InBlock(Arc<Block>, Range<usize>),
}

impl FoundValue {
    /// The value's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            FoundValue::Copied(bytes) => bytes,
            FoundValue::InBlock(block, range) => &block.bytes()[range.clone()],
        }
    }

    /// The value's bytes as a vector (a copy only for a value still in its block).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            FoundValue::Copied(bytes) => bytes,
            found @ FoundValue::InBlock(..) => found.as_slice().to_vec(),
        }
    }

    /// Drops the first `len` bytes (at most all of them): an expiring value's header.
    pub fn skip_front(&mut self, len: usize) {
        match self {
            FoundValue::Copied(bytes) => {
                bytes.drain(..len.min(bytes.len()));
            }
            FoundValue::InBlock(_, range) => range.start = range.end.min(range.start + len),
        }
    }
}

/// The value's bytes (not the whole block a value in its block lies in).
impl std::fmt::Debug for FoundValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if matches!(self, FoundValue::Copied(_)) { "Copied" } else { "InBlock" };
        f.debug_tuple(place).field(&self.as_slice()).finish()
    }
}

impl From<Vec<u8>> for FoundValue {
    fn from(bytes: Vec<u8>) -> FoundValue {
        FoundValue::Copied(bytes)
    }
}

/// Equal when the bytes are.
impl PartialEq for FoundValue {
    fn eq(&self, other: &FoundValue) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for FoundValue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_in_its_block_reads_like_a_copy_and_loses_its_header_alike() {
        let block = Arc::new(Block::for_tests_with(b"..header+value..".to_vec()));
        let mut pinned = FoundValue::InBlock(Arc::clone(&block), 2..14);
        let mut copied = FoundValue::from(b"header+value".to_vec());
        assert_eq!(pinned, copied);
        pinned.skip_front(7);
        copied.skip_front(7);
        assert_eq!(pinned.as_slice(), b"value");
        assert_eq!(pinned, copied);
        assert_eq!(pinned.clone().into_vec(), b"value".to_vec());
        pinned.skip_front(100);
        copied.skip_front(100);
        assert_eq!((pinned.as_slice(), copied.as_slice()), (&b""[..], &b""[..]));
    }
}
