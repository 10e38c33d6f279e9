//! Options for opening a database and for each write.
//!
//! Thread safety: plain values, cloned into the database at open.
//!
//! Every limit a user can configure is here, with its default and its bounds as named
//! constants. Format limits that are not options live beside their format: file numbers
//! (`filenames::FILE_NUMBER_MAX`), seqnos (`key::SEQNO_MAX`), record payloads
//! (`record_log::RECORD_PAYLOAD_BYTES_MAX`), SST blocks (`sst::format::BLOCK_SIZE_BYTES_MAX`),
//! bloom probes, levels (`manifest::LEVEL_COUNT`) and the manifest roll size.

use crate::cache::BlockCache;
use crate::fs::{Fs, RealFs};
use std::sync::Arc;

/// Default largest key, in bytes.
pub const KEY_SIZE_BYTES_MAX_DEFAULT: usize = 16 * 1024;
/// Hard ceiling for `Options::key_size_bytes_max`.
pub const KEY_SIZE_BYTES_MAX_LIMIT: usize = 1024 * 1024;
/// Default largest value, in bytes.
pub const VALUE_SIZE_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Hard ceiling for `Options::value_size_bytes_max`: one entry must fit in an SST block, which
/// readers refuse past `sst::BLOCK_SIZE_BYTES_MAX` (1 GiB).
pub const VALUE_SIZE_BYTES_MAX_LIMIT: usize = 256 * 1024 * 1024;
/// Default largest encoded write batch, in bytes.
pub const BATCH_SIZE_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Hard ceiling for `Options::batch_size_bytes_max`: a WAL record's payload is at most
/// `record_log::RECORD_PAYLOAD_BYTES_MAX` (2^31 − 1), and the varint header a batch gets when
/// it commits (a seqno of at most `SEQNO_MAX` and a `u32` count: 13 bytes at most) can take one
/// byte more than the 12 `WriteBatch::size_bytes` counts.
pub const BATCH_SIZE_BYTES_MAX_LIMIT: usize = (u32::MAX as usize) / 2 - 1;
const _: () = assert!(
    BATCH_SIZE_BYTES_MAX_LIMIT - crate::batch::BATCH_HEADER_LEN
        + crate::coding::varint_len(crate::key::SEQNO_MAX)
        + crate::coding::varint_len(u32::MAX as u64)
        <= crate::record_log::RECORD_PAYLOAD_BYTES_MAX
);
/// Smallest allowed `Options::batch_size_bytes_max`.
pub const BATCH_SIZE_BYTES_MAX_MIN: usize = 64;
/// Smallest allowed `Options::block_size_bytes`.
pub const BLOCK_SIZE_BYTES_MIN: usize = 64;
/// Largest allowed `Options::block_size_bytes`.
pub const BLOCK_SIZE_BYTES_LIMIT: usize = 16 * 1024 * 1024;
/// Default memtable size at which it is frozen and flushed, in bytes.
pub const MEMTABLE_SIZE_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Smallest allowed `Options::memtable_size_bytes_max`.
pub const MEMTABLE_SIZE_BYTES_MAX_MIN: usize = 4 * 1024;
/// Default number of frozen memtables waiting for flush before writers wait.
pub const FROZEN_MEMTABLES_MAX_DEFAULT: usize = 2;
/// Default target size of an SST data block, before compression, in bytes.
pub const BLOCK_SIZE_BYTES_DEFAULT: usize = 4 * 1024;
/// Default bloom filter bits per key.
pub const BLOOM_BITS_PER_KEY_DEFAULT: u32 = 10;
/// Most bloom filter bits per key accepted (past about 20 the false positives are already
/// under 0.01%).
pub const BLOOM_BITS_PER_KEY_MAX: u32 = 64;
/// Default most bytes of writes one group commit gathers.
pub const GROUP_COMMIT_SIZE_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024;

/// Default number of L0 files of one keyspace that starts their compaction into the base level.
pub const L0_COMPACTION_TRIGGER_DEFAULT: usize = 4;
/// Default L0 depth (files of one keyspace, `Version::l0_pressure`) at which writers are
/// slowed down.
pub const L0_SLOWDOWN_TRIGGER_DEFAULT: usize = 20;
/// Default L0 depth at which writers stop until compaction catches up.
pub const L0_STOP_TRIGGER_DEFAULT: usize = 36;
/// Largest allowed `Options::l0_stop_trigger`.
pub const L0_STOP_TRIGGER_LIMIT: usize = 1024;
/// Default target size of the base level (the level L0 compacts into), in bytes.
pub const LEVEL_SIZE_BASE_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
/// Smallest allowed `Options::level_size_base_bytes` and `Options::sst_size_bytes_target`.
pub const LEVEL_SIZE_BYTES_MIN: u64 = 4 * 1024;
/// Default growth factor of each level's target size over the level above it.
pub const LEVEL_SIZE_MULTIPLIER_DEFAULT: u32 = 10;
/// Allowed range of `Options::level_size_multiplier`.
pub const LEVEL_SIZE_MULTIPLIER_RANGE: std::ops::RangeInclusive<u32> = 2..=100;
/// Default size at which compaction starts a new output SST, in bytes.
pub const SST_SIZE_BYTES_TARGET_DEFAULT: u64 = 64 * 1024 * 1024;
/// Default write rate while writers are slowed down (L0 past the slowdown trigger), in bytes
/// per second; it falls linearly towards a tenth of this as L0 nears the stop trigger.
pub const SLOWDOWN_RATE_BYTES_PER_SEC_DEFAULT: u64 = 16 * 1024 * 1024;
/// Longest a single group commit is delayed by the slowdown.
pub const SLOWDOWN_DELAY_MAX: std::time::Duration = std::time::Duration::from_millis(100);
/// Default size of the block cache a database creates for itself, in bytes.
pub const BLOCK_CACHE_SIZE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Default of `Options::pin_index_and_filter`: index and filter held in memory.
pub const PIN_INDEX_AND_FILTER_DEFAULT: bool = true;
/// Default most SST files kept open (readers in the table cache).
pub const OPEN_FILES_MAX_DEFAULT: usize = 1000;
/// Smallest allowed `Options::open_files_max`.
pub const OPEN_FILES_MAX_MIN: usize = 16;
/// Default limit on the SST writes of flushes and compactions: 0, no limit.
pub const RATE_LIMIT_BYTES_PER_SEC_DEFAULT: u64 = 0;
/// Smallest non-zero `Options::rate_limit_bytes_per_sec` (1 KiB/s). Slower than this a flush
/// of even the smallest memtable takes minutes; it guards against a misread unit.
pub const RATE_LIMIT_BYTES_PER_SEC_MIN: u64 = 1024;

/// Largest allowed `Options::background_threads`.
pub const BACKGROUND_THREADS_LIMIT: usize = 64;

/// Default codec for SST blocks (`Options::compression`).
pub const COMPRESSION_DEFAULT: Compression = Compression::Lz4;
/// Smallest allowed `Compression::Zstd` level.
pub const ZSTD_LEVEL_MIN: i32 = 1;
/// Largest allowed `Compression::Zstd` level (zstd's levels above it are very slow to write).
pub const ZSTD_LEVEL_MAX: i32 = 19;
/// A middle `Compression::Zstd` level: zstd's own default.
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;

/// How SST blocks are compressed. The codec is recorded in every block, so a database can
/// change it between opens and still read the files written before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Blocks are stored as they are.
    None,
    /// LZ4: fast to write and to read, modest ratio. The default.
    #[default]
    Lz4,
    /// Zstandard at `level` (`ZSTD_LEVEL_MIN..=ZSTD_LEVEL_MAX`): a better ratio, slower to write;
    /// for example for the bottommost compactions, which write most of the data
    /// (`Options::compression_bottommost`).
    Zstd {
        /// Compression level; higher is smaller and slower to write, reads barely change.
        level: i32,
    },
}

impl Compression {
    /// Checks a zstd level against its bounds; `name` is the option, for the message.
    fn validate(self, name: &str) -> crate::Result<()> {
        match self {
            Compression::Zstd { level } if !(ZSTD_LEVEL_MIN..=ZSTD_LEVEL_MAX).contains(&level) => {
                Err(crate::Error::InvalidArgument(format!(
                    "Options::{name} is Zstd level {level}, allowed levels are \
                     {ZSTD_LEVEL_MIN}..={ZSTD_LEVEL_MAX}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// How the engine treats a damaged WAL record during recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalRecovery {
    /// A torn tail (an incomplete last record, the normal result of a crash) is dropped;
    /// a damaged record followed by valid data is a `Corruption` error. The default.
    #[default]
    TolerateTornTail,
    /// Replay stops at the first damaged record, wherever it is, and the database opens
    /// with what came before it. Writes after the damage are lost; use this to salvage.
    StopAtFirstCorruption,
}

/// Options for `Db::open`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The filesystem to use. `RealFs` by default; tests pass a `SimFs`.
    pub fs: Arc<dyn Fs>,
    /// A memory budget shared with other databases (`MemoryBudget`): memtables are flushed
    /// early and writers slowed to keep every member's memtables within its share, and the
    /// budget's block cache replaces `block_cache` and `block_cache_size_bytes`. Needs
    /// `background_threads > 0` for another database's early flush to happen. Default none.
    pub memory_budget: Option<Arc<crate::db::MemoryBudget>>,
    /// The wall clock that decides when values written with a time to live expire.
    /// `SystemClock` by default; tests pass a `ManualClock`.
    pub clock: Arc<dyn crate::ttl::Clock>,
    /// Create the database if the directory holds none (default true).
    pub create_if_missing: bool,
    /// Fail if a database already exists (default false).
    pub error_if_exists: bool,
    /// Largest key accepted, in bytes.
    pub key_size_bytes_max: usize,
    /// Largest value accepted, in bytes.
    pub value_size_bytes_max: usize,
    /// Largest encoded `WriteBatch` accepted, in bytes.
    pub batch_size_bytes_max: usize,
    /// Memtable size at which it is frozen and flushed to an SST, in bytes (its versions; its
    /// key filter, a 64th of this once the memtable holds an eighth of it, comes on top and is
    /// counted by the memory budget).
    pub memtable_size_bytes_max: usize,
    /// Frozen memtables allowed to wait for flush before writers wait for the flush.
    pub frozen_memtables_max: usize,
    /// Target uncompressed size of an SST data block, in bytes.
    pub block_size_bytes: usize,
    /// Bloom filter bits per key (0 disables the filter).
    pub bloom_bits_per_key: u32,
    /// Bloom filter bits per key of the outputs of bottommost compactions (as for
    /// `compression_bottommost`). `None` (the default) uses `bloom_bits_per_key`.
    ///
    /// The last level holds most of the keys, so most of the filter memory every open file
    /// pins (outside the memory budget); and a lookup of a key that exists reaches the last
    /// level's filter only when the key is there, where any filter answers yes. Fewer bits
    /// there cost only lookups of absent keys (an insert's check that its id is new, a
    /// unique index's check), which read one more block when the filter errs: about 1% of
    /// them at 10 bits per key, 2% at 8, 9% at 5, 100% at 0 (no filter).
    pub bloom_bits_per_key_bottommost: Option<u32>,
    /// Codec for the data and index blocks of the SSTs flushes and compactions write
    /// (default LZ4). A block that compression shrinks by less than an eighth is stored raw.
    pub compression: Compression,
    /// Codec for the outputs of bottommost compactions (no deeper level holds their key
    /// range): every compaction into the last level, which holds most of the data, and those
    /// higher up whose range nothing below overlaps. `None` (the default) uses `compression`.
    /// A file moved down without being rewritten keeps its codec.
    pub compression_bottommost: Option<Compression>,
    /// Most bytes one group commit writes at once.
    pub group_commit_size_bytes_max: usize,
    /// Background compaction threads, beside one flush thread: 1 by default, up to
    /// `BACKGROUND_THREADS_LIMIT`. 0 runs flushes and compactions in the writer's own thread
    /// when a memtable fills, which makes runs deterministic for tests.
    pub background_threads: usize,
    /// L0 files of one keyspace that start a compaction of them into the base level (L0 is
    /// also compacted once it holds `L0_FILES_TOTAL_PER_TRIGGER` times this many in all).
    pub l0_compaction_trigger: usize,
    /// L0 files of one keyspace at which each group commit is delayed (see
    /// `slowdown_rate_bytes_per_sec`).
    pub l0_slowdown_trigger: usize,
    /// L0 files of one keyspace at which writers wait for compaction.
    pub l0_stop_trigger: usize,
    /// Target size of the base level, in bytes; deeper levels grow by `level_size_multiplier`.
    /// The base level is chosen from the size of the last level, so that the tree holds about
    /// 1.1 times its live data.
    pub level_size_base_bytes: u64,
    /// Growth factor of each level's target size.
    pub level_size_multiplier: u32,
    /// Size at which compaction starts a new output SST, in bytes.
    pub sst_size_bytes_target: u64,
    /// Write rate while L0 is past `l0_slowdown_trigger`, in bytes per second.
    pub slowdown_rate_bytes_per_sec: u64,
    /// Keep each open SST's index and bloom filter in memory (true, the default) or fetch them
    /// from the block cache on every lookup (false): then they are charged to the cache and
    /// evicted like data blocks, so their memory is bounded by `block_cache_size_bytes` rather
    /// than by `open_files_max` times their size, at the cost of a cache lookup per read (and a
    /// file read on a miss; every lookup reads them without a block cache).
    pub pin_index_and_filter: bool,
    /// Read SST files through read-only memory maps instead of `pread` (default false): a
    /// block the block cache misses is then checked and decompressed straight from the OS
    /// page cache, without a `pread` system call or a copy of its stored bytes (lookups at
    /// 1,000,000 documents with a 256 MiB cache and the files in the page cache: 1.01 to 1.21
    /// times faster, docs/benchmarks.md). What it costs: an I/O error reading a mapped page,
    /// or anyone shortening an SST file (or a checkpoint's hard link to it), ends the process
    /// with SIGBUS instead of returning an error; and the pages read count in the process's
    /// resident memory (they are the OS page cache's, shared and reclaimable, not the memory
    /// budget's). Files that cannot be mapped are read the usual way. Only `RealFs` maps.
    pub mmap_reads: bool,
    /// Most SST files kept open, least recently used closed first; a closed file is opened
    /// (and validated) again when read. Reads, iterators and compactions keep the files they
    /// use open while they run, on top of this. WAL and manifest files are not counted. At
    /// least `OPEN_FILES_MAX_MIN`.
    pub open_files_max: usize,
    /// Limit on the bytes flushes and compactions write to SSTs, per second, shared by all of
    /// them (a token bucket with 10 ms of burst; flushes go first). 0, the default, means no
    /// limit; otherwise at least `RATE_LIMIT_BYTES_PER_SEC_MIN`. The WAL is never limited, but
    /// writers feel a limit too low for their write rate as slowdowns and stalls (and, with
    /// `background_threads = 0`, the writer that flushes waits for the limit itself).
    pub rate_limit_bytes_per_sec: u64,
    /// What to do with a damaged WAL record on recovery.
    pub wal_recovery: WalRecovery,
    /// A block cache to share with other databases. When `None`, the database makes its own
    /// of `block_cache_size_bytes`.
    pub block_cache: Option<Arc<BlockCache>>,
    /// Size of the database's own block cache, in bytes (0: no cache; reads go to the OS
    /// page cache). Ignored when `block_cache` is given.
    pub block_cache_size_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fs: Arc::new(RealFs),
            clock: Arc::new(crate::ttl::SystemClock),
            memory_budget: None,
            create_if_missing: true,
            error_if_exists: false,
            key_size_bytes_max: KEY_SIZE_BYTES_MAX_DEFAULT,
            value_size_bytes_max: VALUE_SIZE_BYTES_MAX_DEFAULT,
            batch_size_bytes_max: BATCH_SIZE_BYTES_MAX_DEFAULT,
            memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_DEFAULT,
            frozen_memtables_max: FROZEN_MEMTABLES_MAX_DEFAULT,
            block_size_bytes: BLOCK_SIZE_BYTES_DEFAULT,
            bloom_bits_per_key: BLOOM_BITS_PER_KEY_DEFAULT,
            bloom_bits_per_key_bottommost: None,
            compression: COMPRESSION_DEFAULT,
            compression_bottommost: None,
            group_commit_size_bytes_max: GROUP_COMMIT_SIZE_BYTES_MAX_DEFAULT,
            background_threads: 1,
            l0_compaction_trigger: L0_COMPACTION_TRIGGER_DEFAULT,
            l0_slowdown_trigger: L0_SLOWDOWN_TRIGGER_DEFAULT,
            l0_stop_trigger: L0_STOP_TRIGGER_DEFAULT,
            level_size_base_bytes: LEVEL_SIZE_BASE_BYTES_DEFAULT,
            level_size_multiplier: LEVEL_SIZE_MULTIPLIER_DEFAULT,
            sst_size_bytes_target: SST_SIZE_BYTES_TARGET_DEFAULT,
            slowdown_rate_bytes_per_sec: SLOWDOWN_RATE_BYTES_PER_SEC_DEFAULT,
            pin_index_and_filter: PIN_INDEX_AND_FILTER_DEFAULT,
            mmap_reads: false,
            open_files_max: OPEN_FILES_MAX_DEFAULT,
            rate_limit_bytes_per_sec: RATE_LIMIT_BYTES_PER_SEC_DEFAULT,
            wal_recovery: WalRecovery::default(),
            block_cache: None,
            block_cache_size_bytes: BLOCK_CACHE_SIZE_BYTES_DEFAULT,
        }
    }
}

impl Options {
    /// Default options on a fresh in-memory filesystem (`SimFs`): the same engine and API, with
    /// nothing on disk. The data lives as long as some `Db` or clone of these options holds the
    /// filesystem; opening the same path again with a clone of these options reopens it, with
    /// a fresh `Options::in_memory()` finds nothing. For tests and caches.
    pub fn in_memory() -> Options {
        Options { fs: Arc::new(crate::fs::SimFs::new()), ..Options::default() }
    }

    /// Checks the options against the hard limits (`Error::InvalidArgument` naming the
    /// option); called by `Db::open`, and usable before it.
    pub fn validate(&self) -> crate::Result<()> {
        let checks: [(&str, usize, usize, usize); 6] = [
            ("key_size_bytes_max", self.key_size_bytes_max, 1, KEY_SIZE_BYTES_MAX_LIMIT),
            ("value_size_bytes_max", self.value_size_bytes_max, 0, VALUE_SIZE_BYTES_MAX_LIMIT),
            (
                "batch_size_bytes_max",
                self.batch_size_bytes_max,
                BATCH_SIZE_BYTES_MAX_MIN,
                BATCH_SIZE_BYTES_MAX_LIMIT,
            ),
            (
                "memtable_size_bytes_max",
                self.memtable_size_bytes_max,
                MEMTABLE_SIZE_BYTES_MAX_MIN,
                usize::MAX,
            ),
            (
                "block_size_bytes",
                self.block_size_bytes,
                BLOCK_SIZE_BYTES_MIN,
                BLOCK_SIZE_BYTES_LIMIT,
            ),
            ("open_files_max", self.open_files_max, OPEN_FILES_MAX_MIN, usize::MAX),
        ];
        for (name, value, min, max) in checks {
            if value < min || value > max {
                return Err(crate::Error::InvalidArgument(format!(
                    "Options::{name} is {value}, allowed range is {min}..={max}"
                )));
            }
        }
        let invalid = |text: String| Err(crate::Error::InvalidArgument(text));
        if self.background_threads > BACKGROUND_THREADS_LIMIT {
            return invalid(format!(
                "Options::background_threads is {}, at most {BACKGROUND_THREADS_LIMIT}",
                self.background_threads
            ));
        }
        let (trigger, slowdown, stop) =
            (self.l0_compaction_trigger, self.l0_slowdown_trigger, self.l0_stop_trigger);
        if !(1 <= trigger
            && trigger <= slowdown
            && slowdown <= stop
            && stop <= L0_STOP_TRIGGER_LIMIT)
        {
            return invalid(format!(
                "Options L0 triggers are compaction {trigger}, slowdown {slowdown}, stop {stop}; \
                 they must satisfy 1 <= compaction <= slowdown <= stop <= {L0_STOP_TRIGGER_LIMIT}"
            ));
        }
        for (name, value) in [
            ("level_size_base_bytes", self.level_size_base_bytes),
            ("sst_size_bytes_target", self.sst_size_bytes_target),
        ] {
            if value < LEVEL_SIZE_BYTES_MIN {
                return invalid(format!(
                    "Options::{name} is {value}, at least {LEVEL_SIZE_BYTES_MIN}"
                ));
            }
        }
        if !LEVEL_SIZE_MULTIPLIER_RANGE.contains(&self.level_size_multiplier) {
            return invalid(format!(
                "Options::level_size_multiplier is {}, allowed range is {:?}",
                self.level_size_multiplier, LEVEL_SIZE_MULTIPLIER_RANGE
            ));
        }
        if self.slowdown_rate_bytes_per_sec == 0 {
            return invalid("Options::slowdown_rate_bytes_per_sec must be at least 1".into());
        }
        let rate_limit = self.rate_limit_bytes_per_sec;
        if rate_limit != 0 && rate_limit < RATE_LIMIT_BYTES_PER_SEC_MIN {
            return invalid(format!(
                "Options::rate_limit_bytes_per_sec is {rate_limit}, must be 0 (no limit) or at \
                 least {RATE_LIMIT_BYTES_PER_SEC_MIN}"
            ));
        }
        if self.group_commit_size_bytes_max == 0 {
            return Err(crate::Error::InvalidArgument(
                "Options::group_commit_size_bytes_max must be at least 1".into(),
            ));
        }
        if self.frozen_memtables_max == 0 {
            return Err(crate::Error::InvalidArgument(
                "Options::frozen_memtables_max must be at least 1".into(),
            ));
        }
        for (name, bits) in [
            ("bloom_bits_per_key", Some(self.bloom_bits_per_key)),
            ("bloom_bits_per_key_bottommost", self.bloom_bits_per_key_bottommost),
        ] {
            if let Some(bits) = bits.filter(|&bits| bits > BLOOM_BITS_PER_KEY_MAX) {
                return Err(crate::Error::InvalidArgument(format!(
                    "Options::{name} is {bits}, at most {BLOOM_BITS_PER_KEY_MAX}"
                )));
            }
        }
        self.compression.validate("compression")?;
        if let Some(compression) = self.compression_bottommost {
            compression.validate("compression_bottommost")?;
        }
        Ok(())
    }

    /// The bloom filter bits per key of SSTs written by a flush or a compaction; `bottommost`
    /// is true for the outputs of a bottommost compaction only.
    pub(crate) fn bloom_bits_per_key_for(&self, bottommost: bool) -> u32 {
        match self.bloom_bits_per_key_bottommost {
            Some(bits) if bottommost => bits,
            _ => self.bloom_bits_per_key,
        }
    }

    /// The codec for SSTs written by a flush or a compaction; `bottommost` is true for the
    /// outputs of a bottommost compaction only.
    pub(crate) fn compression_for(&self, bottommost: bool) -> Compression {
        match self.compression_bottommost {
            Some(compression) if bottommost => compression,
            _ => self.compression,
        }
    }
}

/// Options for one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// When true the write returns only after it is on stable storage (the WAL is fsynced).
    /// When false it survives a process crash but may be lost in a power loss.
    pub sync: bool,
}

impl WriteOptions {
    /// A write that returns only once durable.
    pub const SYNC: WriteOptions = WriteOptions { sync: true };
    /// A write that may be lost in a power loss (but never reordered or torn).
    pub const NO_SYNC: WriteOptions = WriteOptions { sync: false };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn limits_are_checked_at_their_boundaries() {
        let mut options =
            Options { key_size_bytes_max: KEY_SIZE_BYTES_MAX_LIMIT, ..Default::default() };
        options.validate().unwrap();
        options.key_size_bytes_max += 1;
        assert!(options.validate().is_err());

        let mut options =
            Options { memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN, ..Default::default() };
        options.validate().unwrap();
        options.memtable_size_bytes_max -= 1;
        assert!(options.validate().is_err());

        let options = Options { frozen_memtables_max: 0, ..Default::default() };
        assert!(options.validate().is_err());

        let mut options = Options { open_files_max: OPEN_FILES_MAX_MIN, ..Default::default() };
        options.validate().unwrap();
        options.open_files_max -= 1;
        assert!(options.validate().is_err());
        Options { open_files_max: usize::MAX, ..Default::default() }.validate().unwrap();

        let mut options =
            Options { background_threads: BACKGROUND_THREADS_LIMIT, ..Default::default() };
        options.validate().unwrap();
        options.background_threads += 1;
        assert!(options.validate().is_err());

        let triggers = |trigger, slowdown, stop| Options {
            l0_compaction_trigger: trigger,
            l0_slowdown_trigger: slowdown,
            l0_stop_trigger: stop,
            ..Default::default()
        };
        triggers(1, 1, 1).validate().unwrap();
        triggers(1, 1, L0_STOP_TRIGGER_LIMIT).validate().unwrap();
        assert!(triggers(1, 1, L0_STOP_TRIGGER_LIMIT + 1).validate().is_err());
        assert!(triggers(0, 1, 1).validate().is_err());
        assert!(triggers(4, 3, 36).validate().is_err());
        assert!(triggers(4, 20, 19).validate().is_err());

        let sizes = |base, sst| Options {
            level_size_base_bytes: base,
            sst_size_bytes_target: sst,
            ..Default::default()
        };
        sizes(LEVEL_SIZE_BYTES_MIN, LEVEL_SIZE_BYTES_MIN).validate().unwrap();
        assert!(sizes(LEVEL_SIZE_BYTES_MIN - 1, LEVEL_SIZE_BYTES_MIN).validate().is_err());
        assert!(sizes(LEVEL_SIZE_BYTES_MIN, LEVEL_SIZE_BYTES_MIN - 1).validate().is_err());

        for (multiplier, ok) in [(1, false), (2, true), (100, true), (101, false)] {
            let options = Options { level_size_multiplier: multiplier, ..Default::default() };
            assert_eq!(options.validate().is_ok(), ok, "multiplier {multiplier}");
        }
        let options = Options { slowdown_rate_bytes_per_sec: 0, ..Default::default() };
        assert!(options.validate().is_err());

        for (bits, ok) in
            [(0, true), (BLOOM_BITS_PER_KEY_MAX, true), (BLOOM_BITS_PER_KEY_MAX + 1, false)]
        {
            let options = Options { bloom_bits_per_key: bits, ..Default::default() };
            assert_eq!(options.validate().is_ok(), ok, "bloom bits {bits}");
            let options =
                Options { bloom_bits_per_key_bottommost: Some(bits), ..Default::default() };
            assert_eq!(options.validate().is_ok(), ok, "bottommost bloom bits {bits}");
        }
        let options = Options {
            bloom_bits_per_key: 12,
            bloom_bits_per_key_bottommost: Some(6),
            ..Default::default()
        };
        assert_eq!(
            (options.bloom_bits_per_key_for(false), options.bloom_bits_per_key_for(true)),
            (12, 6)
        );
        let options = Options { bloom_bits_per_key: 12, ..Default::default() };
        assert_eq!(
            (options.bloom_bits_per_key_for(false), options.bloom_bits_per_key_for(true)),
            (12, 12)
        );

        for (rate, ok) in [
            (0, true),
            (1, false),
            (RATE_LIMIT_BYTES_PER_SEC_MIN - 1, false),
            (RATE_LIMIT_BYTES_PER_SEC_MIN, true),
            (u64::MAX, true),
        ] {
            let options = Options { rate_limit_bytes_per_sec: rate, ..Default::default() };
            assert_eq!(options.validate().is_ok(), ok, "rate limit {rate}");
        }

        for (level, ok) in [
            (ZSTD_LEVEL_MIN - 1, false),
            (ZSTD_LEVEL_MIN, true),
            (ZSTD_LEVEL_DEFAULT, true),
            (ZSTD_LEVEL_MAX, true),
            (ZSTD_LEVEL_MAX + 1, false),
            (i32::MIN, false),
        ] {
            let zstd = Compression::Zstd { level };
            let options = Options { compression: zstd, ..Default::default() };
            assert_eq!(options.validate().is_ok(), ok, "compression zstd level {level}");
            let options = Options { compression_bottommost: Some(zstd), ..Default::default() };
            assert_eq!(options.validate().is_ok(), ok, "bottommost zstd level {level}");
        }
        for compression in [Compression::None, Compression::Lz4] {
            let options = Options {
                compression,
                compression_bottommost: Some(compression),
                ..Default::default()
            };
            options.validate().unwrap();
        }
    }

    #[test]
    fn bottommost_compression_applies_to_bottommost_outputs_only() {
        let options = Options::default();
        assert_eq!(options.compression, Compression::Lz4);
        assert_eq!(options.compression_for(false), Compression::Lz4);
        assert_eq!(options.compression_for(true), Compression::Lz4);
        let zstd = Compression::Zstd { level: ZSTD_LEVEL_DEFAULT };
        let options = Options {
            compression: Compression::None,
            compression_bottommost: Some(zstd),
            ..Default::default()
        };
        assert_eq!(options.compression_for(false), Compression::None);
        assert_eq!(options.compression_for(true), zstd);
    }
}
