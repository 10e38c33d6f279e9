//! Criterion micro-benchmarks of the engine's hot pieces: building and seeking a block,
//! probing a bloom filter, inserting into and reading from the memtable, appending to the WAL,
//! and merging iterators.
//!
//! ```text
//! cargo bench -p nanodb-storage --features bench-internals
//! ```

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nanodb_storage::fs::{Fs, RealFs};
use nanodb_storage::internals::{
    encode_record_parts, internal_key, Block, BlockBuilder, BlockCursor, BloomBuilder, BloomFilter,
    Direction, FilterLayout, Framing, InternalIterator, Memtable, MergingIterator, RecordWriter,
    ValueKind, KIND_FOR_SEEK, WAL_FORMAT_VERSION, WAL_MAGIC,
};
use std::hint::black_box;
use std::sync::Arc;

fn key(index: u64) -> Vec<u8> {
    format!("{index:016}").into_bytes()
}

/// A cheap deterministic spread of indexes (multiplicative hashing).
fn spread(index: u64, modulo: u64) -> u64 {
    index.wrapping_mul(0x9e37_79b9_7f4a_7c15) % modulo
}

fn block_of(entries: u64) -> (Vec<u8>, Vec<Vec<u8>>) {
    let keys: Vec<Vec<u8>> =
        (0..entries).map(|i| internal_key(&key(i), 1, ValueKind::Put as u8)).collect();
    let mut builder = BlockBuilder::new(16);
    for k in &keys {
        builder.add(k, &[7u8; 100]);
    }
    (builder.finish(), keys)
}

fn block(c: &mut Criterion) {
    let mut group = c.benchmark_group("block");
    // About a 4 KiB block of 16-byte keys and 100-byte values.
    let entries = 32;
    let keys: Vec<Vec<u8>> =
        (0..entries).map(|i| internal_key(&key(i), 1, ValueKind::Put as u8)).collect();
    group.throughput(Throughput::Elements(entries));
    group.bench_function("build_32_entries", |b| {
        b.iter(|| {
            let mut builder = BlockBuilder::new(16);
            for k in &keys {
                builder.add(k, &[7u8; 100]);
            }
            black_box(builder.finish())
        })
    });
    let (bytes, keys) = block_of(entries);
    let block = Arc::new(Block::new(bytes).expect("block"));
    group.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    group.bench_function("seek_ge", |b| {
        b.iter(|| {
            index += 1;
            let target = &keys[spread(index, entries) as usize];
            let mut cursor = BlockCursor::new(Arc::clone(&block));
            cursor.seek_ge(target).expect("seek");
            black_box(cursor.valid())
        })
    });
    group.finish();
}

fn bloom(c: &mut Criterion) {
    let mut builder = BloomBuilder::new();
    let count = 100_000u64;
    for i in 0..count {
        builder.add_key(&key(i));
    }
    let filter = BloomFilter::new(builder.finish(10, FilterLayout::Blocked), FilterLayout::Blocked)
        .expect("filter");
    let mut group = c.benchmark_group("bloom");
    group.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    group.bench_function("probe_hit", |b| {
        b.iter(|| {
            index += 1;
            black_box(filter.may_contain(&key(spread(index, count))))
        })
    });
    group.bench_function("probe_miss", |b| {
        b.iter(|| {
            index += 1;
            black_box(filter.may_contain(&key(count + spread(index, count))))
        })
    });
    group.finish();
}

fn memtable(c: &mut Criterion) {
    let mut group = c.benchmark_group("memtable");
    group.throughput(Throughput::Elements(1));
    let memtable = Memtable::new(1, 64 << 20);
    let mut seqno = 0u64;
    group.bench_function("insert_random", |b| {
        b.iter(|| {
            seqno += 1;
            memtable.insert(&key(spread(seqno, 1 << 40)), seqno, ValueKind::Put, &[7u8; 100]);
        })
    });
    let filled = Memtable::new(2, 64 << 20);
    let count = 200_000u64;
    for i in 0..count {
        filled.insert(&key(i), i + 1, ValueKind::Put, &[7u8; 100]);
    }
    let mut index = 0u64;
    group.bench_function("get_hit_200k", |b| {
        b.iter(|| {
            index += 1;
            black_box(filled.get(&key(spread(index, count)), u64::MAX >> 8))
        })
    });
    group.finish();
}

fn wal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("wal");
    let payload = vec![7u8; 128];
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("append_128_bytes_unsynced", |b| {
        b.iter_batched_ref(
            || {
                let path = dir.path().join("bench.wal");
                let _ = RealFs.remove_file(&path);
                RecordWriter::create(
                    &RealFs,
                    &path,
                    WAL_MAGIC,
                    WAL_FORMAT_VERSION,
                    Framing::Compact,
                )
                .expect("wal")
            },
            |writer| {
                let mut framed = Vec::with_capacity(140);
                encode_record_parts(&mut framed, Framing::Compact, &[], &payload);
                writer.append_framed(&framed).expect("append");
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A forward merging iterator over one cursor per memtable.
fn merged_forward(sources: &[Arc<Memtable>]) -> MergingIterator {
    let children: Vec<Box<dyn InternalIterator>> = sources
        .iter()
        .map(|m| Box::new(m.cursor(Direction::Forward)) as Box<dyn InternalIterator>)
        .collect();
    MergingIterator::new(children, Direction::Forward)
}

fn merge(c: &mut Criterion) {
    let sources: Vec<Arc<Memtable>> = (0..4u64)
        .map(|source| {
            let memtable = Arc::new(Memtable::new(source, 64 << 20));
            for i in 0..25_000u64 {
                let index = i * 4 + source;
                memtable.insert(&key(index), index + 1, ValueKind::Put, &[7u8; 100]);
            }
            memtable
        })
        .collect();
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("scan_4_sources_100k", |b| {
        b.iter(|| {
            let mut merged = merged_forward(&sources);
            merged.seek_to_start().expect("seek");
            let mut seen = 0u64;
            while merged.valid() {
                seen += 1;
                merged.next().expect("next");
            }
            black_box(seen)
        })
    });
    let target = internal_key(&key(50_000), u64::MAX >> 8, KIND_FOR_SEEK);
    group.throughput(Throughput::Elements(1));
    group.bench_function("seek_4_sources", |b| {
        b.iter(|| {
            let mut merged = merged_forward(&sources);
            merged.seek(&target).expect("seek");
            black_box(merged.valid())
        })
    });
    group.finish();
}

criterion_group!(benches, block, bloom, memtable, wal, merge);
criterion_main!(benches);
