//! `BlockBuilder`: builds one SST block of prefix-compressed, sorted entries.
//!
//! Entry: `shared: varint | unshared: varint | value_len: varint | key[shared..] | value`,
//! where `shared` is the length of the prefix shared with the previous key. Every
//! `restart_interval` entries a restart point stores the full key (`shared = 0`); the block ends
//! with the restart offsets (`u32 LE` each) and their count (`u32 LE`). See docs/format/sst.md.
//!
//! Thread safety: a plain value used by one thread (the SST writer).
//!
//! Invariants:
//! 1. Keys are added in strictly increasing internal-key order (asserted by the SST writer).
//! 2. A block always has at least one restart point (offset 0) once an entry is added.

use crate::coding::{put_u32, put_varint};

/// Builds one block.
#[derive(Debug)]
pub struct BlockBuilder {
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    entries_since_restart: usize,
    last_key: Vec<u8>,
    entry_count: usize,
}

impl BlockBuilder {
    /// A builder placing a restart point every `restart_interval` entries.
    pub fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "restart interval must be at least 1");
        BlockBuilder {
            buffer: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            entries_since_restart: 0,
            last_key: Vec::new(),
            entry_count: 0,
        }
    }

    /// Appends an entry; `key` must sort after every key added before.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.entries_since_restart == self.restart_interval || self.entry_count == 0
        {
            self.restarts.push(self.buffer.len() as u32);
            self.entries_since_restart = 0;
            0
        } else {
            self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count()
        };
        put_varint(&mut self.buffer, shared as u64);
        put_varint(&mut self.buffer, (key.len() - shared) as u64);
        put_varint(&mut self.buffer, value.len() as u64);
        self.buffer.extend_from_slice(&key[shared..]);
        self.buffer.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries_since_restart += 1;
        self.entry_count += 1;
    }

    /// Size the finished block would have, in bytes.
    pub fn size_estimate_bytes(&self) -> usize {
        self.buffer.len() + 4 * self.restarts.len() + 4
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block, returns its bytes and resets the builder for the next block.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut block = std::mem::take(&mut self.buffer);
        for &restart in &self.restarts {
            put_u32(&mut block, restart);
        }
        put_u32(&mut block, self.restarts.len() as u32);
        self.restarts.clear();
        self.entries_since_restart = 0;
        self.entry_count = 0;
        self.last_key.clear();
        block
    }
}
