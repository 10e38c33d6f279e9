//! The SST file layout: block handles, block trailers and the footer (docs/format/sst.md).
//!
//! ```text
//! data block* | filter block | index block | properties block | footer (52 bytes)
//! block on disk = stored bytes | compression: u8 | crc32c(stored bytes, compression): u32 LE
//! stored bytes  = contents                                    (compression 0)
//!               | uncompressed_len: u32 LE | compressed bytes (1 LZ4, 2 zstd)
//! footer = index handle (u64 offset, u32 size) | filter handle | properties handle
//!        | format_version: u32 | crc32c(the 40 bytes before): u32 | magic: u64
//! ```
//!
//! Data and index blocks may be compressed; the filter and properties blocks are always raw.
//!
//! Thread safety: plain functions; each thread reads blocks of up to `READ_BUFFER_BYTES_MAX`
//! through a buffer of its own, reused from read to read.
//!
//! Invariants:
//! 1. Every block is verified against its checksum before a byte of it is decoded or
//!    decompressed.
//! 2. Handles read from disk, and the lengths compressed blocks declare, are checked against
//!    the file and `BLOCK_SIZE_BYTES_MAX` before anything is allocated.
//! 3. A handle's size is the size of the stored bytes (compressed, when the block is).

use super::compression::{decompress, BlockCompressor};
use crate::coding::{crc32c, get_u32_at, get_u64_at, put_u32, put_u64, Decoder};
use crate::fs::ReadableFile;
use crate::{Error, Result};
use std::cell::RefCell;
use std::path::Path;

/// Largest block (as stored, with its trailer) read through the thread's reused buffer; a
/// larger one is read into a buffer of its own, so no thread keeps a big buffer.
pub const READ_BUFFER_BYTES_MAX: usize = 256 * 1024;

thread_local! {
    /// The buffer each thread reads stored blocks into before checking and decompressing.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Magic number at the end of every SST ("NANOSST1" as little-endian bytes). DO NOT CHANGE.
pub const SST_MAGIC: u64 = u64::from_le_bytes(*b"NANOSST1");
/// Current SST format version. Version 1: the first format, every block raw. Version 2: data
/// and index blocks may be compressed (LZ4, zstd). Version 3: the bloom filter is blocked (a
/// key's bits in one 64-byte line; `sst::bloom`). Version 4: a data block may end with a hash
/// index (`sst::block_hash`). Readers accept all four.
pub const SST_FORMAT_VERSION: u32 = 4;
/// Size of the footer, in bytes. DO NOT CHANGE.
pub const FOOTER_LEN: usize = 52;
/// Size of the trailer after each block's contents, in bytes. DO NOT CHANGE.
pub const BLOCK_TRAILER_LEN: usize = 5;
/// Compression byte for an uncompressed block. DO NOT CHANGE.
pub const COMPRESSION_NONE: u8 = 0;
/// Compression byte for an LZ4 block (the LZ4 block format, no frame). DO NOT CHANGE.
pub const COMPRESSION_LZ4: u8 = 1;
/// Compression byte for a zstd block (one zstd frame). DO NOT CHANGE.
pub const COMPRESSION_ZSTD: u8 = 2;
/// Largest block the reader will load, in bytes (a guard against corrupt handles).
pub const BLOCK_SIZE_BYTES_MAX: u64 = 1 << 30;

// The largest entry the options allow, with its varints and a restart point, fits in a block.
const _: () = assert!(
    (crate::options::VALUE_SIZE_BYTES_MAX_LIMIT + crate::options::KEY_SIZE_BYTES_MAX_LIMIT + 64)
        as u64
        <= BLOCK_SIZE_BYTES_MAX
);

/// Where a block lies in the file: its stored bytes' offset and size (the trailer follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    /// Offset of the first stored byte.
    pub offset: u64,
    /// Size of the stored bytes (compressed, if the block is), without the trailer.
    pub size: u32,
}

/// Encoded size of a `BlockHandle`.
pub const BLOCK_HANDLE_LEN: usize = 12;

impl BlockHandle {
    /// Appends the fixed-width encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.offset);
        put_u32(out, self.size);
    }

    /// Decodes a handle; `None` if too short.
    pub fn decode(decoder: &mut Decoder<'_>) -> Option<BlockHandle> {
        Some(BlockHandle { offset: decoder.u64()?, size: decoder.u32()? })
    }
}

/// The fixed-size end of an SST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footer {
    /// The index block.
    pub index: BlockHandle,
    /// The bloom filter block (size 0 when the file has no filter).
    pub filter: BlockHandle,
    /// The properties block.
    pub properties: BlockHandle,
    /// The file's format version (1..=`SST_FORMAT_VERSION`): it decides the filter's layout.
    pub version: u32,
}

impl Footer {
    /// Encodes the footer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        self.index.encode(&mut out);
        self.filter.encode(&mut out);
        self.properties.encode(&mut out);
        put_u32(&mut out, self.version);
        let crc = crc32c(&out);
        put_u32(&mut out, crc);
        put_u64(&mut out, SST_MAGIC);
        debug_assert_eq!(out.len(), FOOTER_LEN);
        out
    }

    /// Reads and validates the footer of `file`.
    pub fn read(file: &dyn ReadableFile, path: &Path) -> Result<Footer> {
        let size = file.size_bytes();
        if size < FOOTER_LEN as u64 {
            return Err(Error::corruption(
                path,
                format!("file of {size} bytes is too short for an SST"),
            ));
        }
        let offset = size - FOOTER_LEN as u64;
        let mut bytes = [0u8; FOOTER_LEN];
        file.read_exact_at(offset, &mut bytes)
            .map_err(|error| Error::io(format!("read footer of {}", path.display()), error))?;
        let magic = get_u64_at(&bytes, 44).unwrap_or(0);
        if magic != SST_MAGIC {
            return Err(Error::corruption(path, format!("bad SST magic number {magic:#018x}")));
        }
        let stored_crc = get_u32_at(&bytes, 40).unwrap_or(0);
        let actual_crc = crc32c(&bytes[..40]);
        if stored_crc != actual_crc {
            return Err(Error::ChecksumMismatch {
                file: path.to_path_buf(),
                offset,
                expected: stored_crc,
                actual: actual_crc,
            });
        }
        let version = get_u32_at(&bytes, 36).unwrap_or(0);
        if version == 0 || version > SST_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: SST_FORMAT_VERSION,
            });
        }
        let mut decoder = Decoder::new(&bytes);
        let handles = [(); 3].map(|_| BlockHandle::decode(&mut decoder).unwrap_or_default());
        let footer =
            Footer { index: handles[0], filter: handles[1], properties: handles[2], version };
        for (name, handle) in
            [("index", footer.index), ("filter", footer.filter), ("properties", footer.properties)]
        {
            let end = handle.offset.checked_add(u64::from(handle.size) + BLOCK_TRAILER_LEN as u64);
            if end.is_none_or(|end| end > offset) {
                return Err(Error::corruption(
                    path,
                    format!("{name} block handle points outside the file"),
                ));
            }
        }
        Ok(footer)
    }
}

/// Appends a block and its trailer to `out`: `contents` compressed by `compressor` when that
/// pays, raw otherwise (always raw without a compressor). Returns the stored size.
pub fn encode_block(
    out: &mut Vec<u8>,
    contents: &[u8],
    compressor: Option<&mut BlockCompressor>,
) -> usize {
    let start = out.len();
    let codec = match compressor {
        Some(compressor) => compressor.compress_into(contents, out),
        None => {
            out.extend_from_slice(contents);
            COMPRESSION_NONE
        }
    };
    out.push(codec);
    let crc = crc32c(&out[start..]);
    put_u32(out, crc);
    out.len() - start - BLOCK_TRAILER_LEN
}

/// Reads the block at `handle` from `file`, verifies its checksum and decompresses it;
/// returns the contents.
pub fn read_block(file: &dyn ReadableFile, path: &Path, handle: BlockHandle) -> Result<Vec<u8>> {
    let total = u64::from(handle.size) + BLOCK_TRAILER_LEN as u64;
    let end = handle.offset.checked_add(total);
    if u64::from(handle.size) > BLOCK_SIZE_BYTES_MAX
        || end.is_none_or(|end| end > file.size_bytes())
    {
        return Err(Error::corruption(
            path,
            format!(
                "block handle (offset {}, size {}) points outside the file",
                handle.offset, handle.size
            ),
        ));
    }
    let total = total as usize;
    if let Some(mapped) = file.mapped() {
        // The map is `size_bytes` long (`ReadableFile::mapped`), which bounds the block (checked
        // above); the slice is taken with checked arithmetic all the same.
        let stored = usize::try_from(handle.offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(total)?))
            .and_then(|range| mapped.get(range))
            .ok_or_else(|| {
                Error::corruption(
                    path,
                    format!("block at {} is outside the {}-byte map", handle.offset, mapped.len()),
                )
            })?;
        return block_contents(path, handle, stored);
    }
    let read = |bytes: &mut [u8]| -> Result<Vec<u8>> {
        file.read_exact_at(handle.offset, bytes).map_err(|error| {
            Error::io(format!("read block at {} of {}", handle.offset, path.display()), error)
        })?;
        block_contents(path, handle, bytes)
    };
    if total > READ_BUFFER_BYTES_MAX {
        return read(&mut vec![0u8; total]);
    }
    READ_BUFFER.with_borrow_mut(|buffer| {
        if buffer.len() < total {
            buffer.resize(total, 0);
        }
        read(&mut buffer[..total])
    })
}

/// The contents of the block at `handle` from its `stored` bytes (body, codec byte, CRC),
/// after checking the CRC.
fn block_contents(path: &Path, handle: BlockHandle, stored: &[u8]) -> Result<Vec<u8>> {
    let size = handle.size as usize;
    let stored_crc = get_u32_at(stored, size + 1).unwrap_or(0);
    let actual_crc = crc32c(&stored[..size + 1]);
    if stored_crc != actual_crc {
        return Err(Error::ChecksumMismatch {
            file: path.to_path_buf(),
            offset: handle.offset,
            expected: stored_crc,
            actual: actual_crc,
        });
    }
    decompress(path, handle.offset, stored[size], &stored[..size])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Fs, SimFs};

    #[test]
    fn blocks_at_and_past_the_read_buffer_limit_read_back_and_are_checked() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/blocks");
        let sizes = [10, READ_BUFFER_BYTES_MAX - BLOCK_TRAILER_LEN, READ_BUFFER_BYTES_MAX + 1, 7];
        let mut out = Vec::new();
        let mut handles = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let contents: Vec<u8> = (0..*size).map(|at| (at * 31 + i) as u8).collect();
            let offset = out.len() as u64;
            let stored = encode_block(&mut out, &contents, None);
            handles.push((BlockHandle { offset, size: stored as u32 }, contents));
        }
        let mut file = fs.create(path).unwrap();
        file.append(&out).unwrap();
        file.sync().unwrap();
        let file = fs.open(path).unwrap();
        // Large, small, large again: a small read after a large one uses the reused buffer.
        for (handle, contents) in handles.iter().chain(handles.iter().rev()) {
            assert_eq!(&read_block(file.as_ref(), path, *handle).unwrap(), contents);
        }
        // A damaged byte in the big block is a checksum error, not bad contents.
        let (big, _) = handles[2];
        out[big.offset as usize + 100] ^= 1;
        let damaged_path = Path::new("/d/damaged");
        let mut damaged = fs.create(damaged_path).unwrap();
        damaged.append(&out).unwrap();
        let damaged = fs.open(damaged_path).unwrap();
        let error = read_block(damaged.as_ref(), damaged_path, big).unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        let (small, contents) = &handles[0];
        assert_eq!(&read_block(damaged.as_ref(), damaged_path, *small).unwrap(), contents);
    }
}
