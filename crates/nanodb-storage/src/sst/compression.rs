//! Block compression: encoding a block's contents with LZ4 or zstd, and decoding them back
//! (the codecs and the stored layout are in docs/format/sst.md).
//!
//! ```text
//! stored bytes of a compressed block = uncompressed_len: u32 LE | compressed bytes
//! ```
//!
//! Thread safety: a `BlockCompressor` belongs to one `SstWriter` (one thread). `decompress` may
//! run on any number of threads at once; zstd decompression reuses one context per thread, and
//! blocks decode into buffers of the thread's stock (`buffers`) when it has one.
//!
//! Invariants:
//! 1. A compressed form is kept only if it saves at least an eighth of the block
//!    (`COMPRESSION_SAVINGS_MIN_DENOMINATOR`); otherwise, or if the codec fails, the block is
//!    stored raw.
//! 2. `decompress` checks the declared length against `BLOCK_SIZE_BYTES_MAX` before it
//!    allocates, and the decoded length against the declared one; bad input is an error, never
//!    a panic.

use super::buffers;
use super::format::{BLOCK_SIZE_BYTES_MAX, COMPRESSION_LZ4, COMPRESSION_NONE, COMPRESSION_ZSTD};
use crate::coding::get_u32_at;
use crate::options::Compression;
use crate::{Error, Result};
use std::cell::RefCell;
use std::path::Path;

/// A compressed block is kept only if it is smaller than the raw block by at least
/// `1 / COMPRESSION_SAVINGS_MIN_DENOMINATOR` of the raw size (the length prefix counts as part
/// of it). Smaller savings are not worth decompressing for.
pub const COMPRESSION_SAVINGS_MIN_DENOMINATOR: usize = 8;
/// Size of the `uncompressed_len` prefix of a compressed block, in bytes. DO NOT CHANGE.
pub const UNCOMPRESSED_LEN_PREFIX_LEN: usize = 4;

/// Compresses blocks for one writer, keeping the zstd context between blocks.
pub struct BlockCompressor {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl BlockCompressor {
    /// A compressor for `compression`; fails only if zstd cannot allocate its context.
    pub fn new(compression: Compression) -> Result<BlockCompressor> {
        let zstd = match compression {
            Compression::Zstd { level } => Some(
                zstd::bulk::Compressor::new(level)
                    .map_err(|error| Error::io("create a zstd compression context", error))?,
            ),
            Compression::None | Compression::Lz4 => None,
        };
        Ok(BlockCompressor { compression, zstd })
    }

    /// Appends the stored form of `contents` to `out`, `uncompressed_len | compressed bytes`
    /// when compression pays, else `contents` itself; returns the codec byte to record.
    pub fn compress_into(&mut self, contents: &[u8], out: &mut Vec<u8>) -> u8 {
        let start = out.len();
        let codec = match self.compression {
            Compression::None => None,
            Compression::Lz4 => Some(COMPRESSION_LZ4),
            Compression::Zstd { .. } => Some(COMPRESSION_ZSTD),
        };
        let len_prefix = u32::try_from(contents.len())
            .ok()
            .filter(|&len| !contents.is_empty() && u64::from(len) <= BLOCK_SIZE_BYTES_MAX);
        if let (Some(codec), Some(len_prefix)) = (codec, len_prefix) {
            let bound = match codec {
                COMPRESSION_LZ4 => lz4_flex::block::get_maximum_output_size(contents.len()),
                _ => zstd::zstd_safe::compress_bound(contents.len()),
            };
            out.extend_from_slice(&len_prefix.to_le_bytes());
            let body_start = out.len();
            out.resize(body_start + bound, 0);
            let body = &mut out[body_start..];
            let written = match (codec, self.zstd.as_mut()) {
                (COMPRESSION_LZ4, _) => lz4_flex::block::compress_into(contents, body).ok(),
                (_, Some(zstd)) => zstd.compress_to_buffer(contents, body).ok(),
                _ => None,
            };
            if let Some(written) = written {
                let stored = UNCOMPRESSED_LEN_PREFIX_LEN + written;
                if compression_pays(contents.len(), stored) {
                    out.truncate(start + stored);
                    return codec;
                }
            }
            out.truncate(start);
        }
        out.extend_from_slice(contents);
        COMPRESSION_NONE
    }
}

/// True if storing `stored_len` bytes instead of `raw_len` saves at least
/// `1 / COMPRESSION_SAVINGS_MIN_DENOMINATOR` of `raw_len`.
fn compression_pays(raw_len: usize, stored_len: usize) -> bool {
    let saved = raw_len.saturating_sub(stored_len);
    saved > 0 && saved.saturating_mul(COMPRESSION_SAVINGS_MIN_DENOMINATOR) >= raw_len
}

thread_local! {
    /// The zstd decompression context of this thread, made on first use.
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decodes the stored bytes of a block recorded with `codec` (checksum already verified);
/// errors name `path` and the block's `offset`.
pub fn decompress(path: &Path, offset: u64, codec: u8, stored: &[u8]) -> Result<Vec<u8>> {
    let corrupt =
        |detail: String| Error::corruption(path, format!("block at offset {offset}: {detail}"));
    if codec == COMPRESSION_NONE {
        let mut contents = buffers::take(stored.len());
        contents.extend_from_slice(stored);
        return Ok(contents);
    }
    if codec != COMPRESSION_LZ4 && codec != COMPRESSION_ZSTD {
        return Err(corrupt(format!("unknown compression {codec}")));
    }
    let Some(declared) = get_u32_at(stored, 0) else {
        return Err(corrupt(format!(
            "compressed block of {} bytes is too short for its length prefix",
            stored.len()
        )));
    };
    if u64::from(declared) > BLOCK_SIZE_BYTES_MAX {
        return Err(corrupt(format!(
            "compressed block declares {declared} bytes, more than the limit of \
             {BLOCK_SIZE_BYTES_MAX}"
        )));
    }
    let body = &stored[UNCOMPRESSED_LEN_PREFIX_LEN..];
    // Every byte is overwritten: the match below returns `contents` only when the decoder
    // wrote all of them (both decoders write their output from the start, in order).
    let mut contents = buffers::take_overwritable(declared as usize);
    let decoded = if codec == COMPRESSION_LZ4 {
        lz4_flex::block::decompress_into(body, &mut contents).map_err(|error| error.to_string())
    } else {
        zstd_decompress(body, &mut contents)?
    };
    match decoded {
        Ok(len) if len == contents.len() => Ok(contents),
        Ok(len) => Err(corrupt(format!(
            "compressed block declares {declared} bytes but decompresses to {len}"
        ))),
        Err(error) => {
            let name = if codec == COMPRESSION_LZ4 { "LZ4" } else { "zstd" };
            Err(corrupt(format!("{name} decompression failed: {error}")))
        }
    }
}

/// Decompresses one zstd block into `out` with this thread's context. The outer error is a
/// context that could not be made; the inner one is bad input.
fn zstd_decompress(body: &[u8], out: &mut [u8]) -> Result<std::result::Result<usize, String>> {
    ZSTD_DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.as_mut() {
            Some(decompressor) => decompressor,
            None => slot.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|error| Error::io("create a zstd decompression context", error))?,
            ),
        };
        let result = decompressor.decompress_to_buffer(body, out);
        if result.is_err() {
            // A fresh context for the next block: never reuse one that saw bad input.
            *slot = None;
        }
        Ok(result.map_err(|error| error.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 3] =
        [Compression::None, Compression::Lz4, Compression::Zstd { level: 3 }];

    fn compressible(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"nanodb compresses blocks "[i % 25]).collect()
    }

    fn random(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn stored(compression: Compression, contents: &[u8]) -> (u8, Vec<u8>) {
        let mut out = b"before".to_vec();
        let codec = BlockCompressor::new(compression).unwrap().compress_into(contents, &mut out);
        assert_eq!(&out[..6], b"before", "earlier bytes are kept");
        (codec, out.split_off(6))
    }

    #[test]
    fn blocks_decoded_into_reused_dirty_buffers_are_exactly_their_contents() {
        // On a thread of its own, so its stock of buffers is this test's alone.
        std::thread::spawn(|| {
            for compression in CODECS {
                for len in [100, 3000, 5000] {
                    for dirty in [len + 10, len * 2, len / 2 + 1] {
                        let buffer = vec![0xffu8; dirty];
                        let address = buffer.as_ptr();
                        buffers::give(buffer);
                        let contents = compressible(len);
                        let (codec, stored) = stored(compression, &contents);
                        let decoded = decompress(Path::new("/t"), 0, codec, &stored).unwrap();
                        assert_eq!(decoded, contents, "{compression:?}, {len} into {dirty}");
                        let fits = (len..=2 * len).contains(&dirty);
                        assert_eq!(decoded.as_ptr() == address, fits, "{len} into {dirty}");
                    }
                }
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn every_codec_round_trips() {
        let path = Path::new("/db/000001.sst");
        for compression in CODECS {
            for contents in [compressible(4096), random(4096), compressible(1), Vec::new()] {
                let (codec, bytes) = stored(compression, &contents);
                let decoded = decompress(path, 0, codec, &bytes).unwrap();
                assert_eq!(decoded, contents, "{compression:?}, {} bytes", contents.len());
            }
        }
        assert_eq!(stored(Compression::Lz4, &compressible(4096)).0, COMPRESSION_LZ4);
        assert_eq!(
            stored(Compression::Zstd { level: 19 }, &compressible(4096)).0,
            COMPRESSION_ZSTD
        );
        let (codec, bytes) = stored(Compression::Zstd { level: 1 }, &compressible(4096));
        assert_eq!(codec, COMPRESSION_ZSTD);
        assert!(bytes.len() < 4096 / 4, "zstd stored {} bytes", bytes.len());
        assert_eq!(get_u32_at(&bytes, 0), Some(4096), "length prefix");
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        for compression in CODECS {
            let contents = random(4096);
            assert_eq!(stored(compression, &contents), (COMPRESSION_NONE, contents));
            // Tiny blocks cannot save an eighth once the length prefix is paid.
            assert_eq!(stored(compression, b"abcd").0, COMPRESSION_NONE);
        }
        // 7/8 random and 1/8 compressible cannot save an eighth once the prefix is paid.
        let mut mixed = random(3584);
        mixed.extend_from_slice(&compressible(512));
        assert_eq!(stored(Compression::Lz4, &mixed).0, COMPRESSION_NONE);
        let mut mixed = random(2048);
        mixed.extend_from_slice(&compressible(2048));
        assert_eq!(stored(Compression::Lz4, &mixed).0, COMPRESSION_LZ4);
    }

    #[test]
    fn compression_must_save_an_eighth() {
        assert!(compression_pays(800, 700));
        assert!(!compression_pays(800, 701));
        assert!(compression_pays(8, 7));
        assert!(!compression_pays(7, 7));
        assert!(!compression_pays(0, 0));
        assert!(!compression_pays(100, 200));
    }

    #[test]
    fn bad_compressed_bytes_are_corruption_not_panics() {
        let path = Path::new("/db/000009.sst");
        let contents = compressible(4096);
        for compression in [Compression::Lz4, Compression::Zstd { level: 3 }] {
            let (codec, bytes) = stored(compression, &contents);
            let check = |bytes: Vec<u8>, what: &str| {
                let error = decompress(path, 77, codec, &bytes).unwrap_err();
                assert!(error.is_corruption(), "{what}: {error}");
                let text = error.to_string();
                assert!(text.contains("000009.sst") && text.contains("offset 77"), "{text}");
            };
            // Every single-byte change and every truncation: an error or the right bytes.
            for index in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[index] ^= flip;
                    if let Ok(decoded) = decompress(path, 77, codec, &damaged) {
                        assert_eq!(decoded.len(), contents.len(), "{compression:?} at {index}");
                    }
                }
            }
            for len in 0..bytes.len() {
                let _ = decompress(path, 77, codec, &bytes[..len]);
            }
            check(bytes[..3].to_vec(), "short prefix");
            let mut longer = bytes.clone();
            longer[..4].copy_from_slice(&4097u32.to_le_bytes());
            check(longer, "declared length too long");
            let mut shorter = bytes.clone();
            shorter[..4].copy_from_slice(&4095u32.to_le_bytes());
            check(shorter, "declared length too short");
            let mut huge = bytes.clone();
            huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            check(huge, "declared length over the maximum");
            let mut garbage = bytes.clone();
            garbage.truncate(UNCOMPRESSED_LEN_PREFIX_LEN);
            garbage.extend_from_slice(&random(200));
            check(garbage, "garbage payload");
            // And the context is still good afterwards.
            let (codec, bytes) = stored(compression, &contents);
            assert_eq!(decompress(path, 0, codec, &bytes).unwrap(), contents);
        }
        let error = decompress(path, 5, 3, &[1, 2, 3]).unwrap_err();
        assert!(error.is_corruption() && error.to_string().contains("unknown compression 3"));
    }

    /// The LZ4 decoder is lz4_flex's pointer-based one (Cargo.toml): random bodies, and
    /// blocks of varied text with random bytes spliced in (declaring their true length or a
    /// random one), are errors or contents of the declared length, never a read or write out
    /// of bounds (which would crash the test, or show under Miri).
    #[test]
    fn random_lz4_bodies_are_errors_or_contents_of_the_declared_length() {
        let path = Path::new("/db/000010.sst");
        let seed = crate::test_rng::seed_or(0x6c7a_3400);
        let mut rng = crate::test_rng::TestRng::new(seed);
        let words: [&[u8]; 6] = [b"nanodb ", b"block ", b"lz4 ", b"\x00\x01", b"match ", b"z"];
        let cases = if cfg!(miri) { 200 } else { 20_000 };
        let mut decoded = 0;
        for case in 0..cases {
            // At least 100 words: always worth compressing, so `valid` is an LZ4 block.
            let text: Vec<u8> = (0..rng.below(3000) + 100)
                .flat_map(|_| words[rng.below(words.len() as u64) as usize].iter().copied())
                .collect();
            let (codec, valid) = stored(Compression::Lz4, &text);
            assert_eq!(codec, COMPRESSION_LZ4);
            let mut bytes;
            if case % 3 == 0 {
                bytes = (rng.below(9000) as u32).to_le_bytes().to_vec();
                let len = rng.below(600) as usize;
                bytes.extend((0..len).map(|_| rng.below(256) as u8));
            } else {
                bytes = valid.clone();
                if case % 3 == 2 {
                    bytes[..4].copy_from_slice(&(rng.below(9000) as u32).to_le_bytes());
                }
                let at = rng.below(bytes.len() as u64 - 4) as usize + 4;
                let len = (rng.below(16) as usize).min(bytes.len() - at);
                for byte in &mut bytes[at..at + len] {
                    *byte = rng.below(256) as u8;
                }
            }
            let declared = get_u32_at(&bytes, 0).unwrap() as usize;
            match decompress(path, 0, COMPRESSION_LZ4, &bytes) {
                Ok(contents) => {
                    decoded += 1;
                    assert_eq!(contents.len(), declared, "seed {seed:#x}, case {case}");
                }
                Err(error) => assert!(error.is_corruption(), "seed {seed:#x}, case {case}"),
            }
        }
        // Some damaged blocks still decode (a changed literal byte): both outcomes were met.
        assert!(decoded > 0 && decoded < cases, "seed {seed:#x}: {decoded} of {cases} decoded");
    }
}
