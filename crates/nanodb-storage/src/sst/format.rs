//! The SST file layout: block handles, block trailers and the footer (docs/format/sst.md).
//!
//! ```text
//! data block* | filter block | index block | properties block | footer (52 bytes)
//! block on disk = contents | compression: u8 | crc32c(contents, compression): u32 LE
//! footer = index handle (u64 offset, u32 size) | filter handle | properties handle
//!        | format_version: u32 | crc32c(the 40 bytes before): u32 | magic: u64
//! ```
//!
//! Thread safety: plain functions.
//!
//! Invariants:
//! 1. Every block is verified against its checksum before a byte of it is decoded.
//! 2. Handles read from disk are checked to lie inside the file before anything is allocated.

use crate::coding::{crc32c, crc32c_two, get_u32_at, get_u64_at, put_u32, put_u64, Decoder};
use crate::fs::ReadableFile;
use crate::{Error, Result};
use std::path::Path;

/// Magic number at the end of every SST ("NANOSST1" as little-endian bytes). DO NOT CHANGE.
pub const SST_MAGIC: u64 = u64::from_le_bytes(*b"NANOSST1");
/// Current SST format version. Version 1: the first format.
pub const SST_FORMAT_VERSION: u32 = 1;
/// Size of the footer, in bytes. DO NOT CHANGE.
pub const FOOTER_LEN: usize = 52;
/// Size of the trailer after each block's contents, in bytes. DO NOT CHANGE.
pub const BLOCK_TRAILER_LEN: usize = 5;
/// Compression byte for an uncompressed block. DO NOT CHANGE.
pub const COMPRESSION_NONE: u8 = 0;
/// Largest block the reader will load, in bytes (a guard against corrupt handles).
pub const BLOCK_SIZE_BYTES_MAX: u64 = 1 << 30;

// The largest entry the options allow, with its varints and a restart point, fits in a block.
const _: () = assert!(
    (crate::options::VALUE_SIZE_BYTES_MAX_LIMIT + crate::options::KEY_SIZE_BYTES_MAX_LIMIT + 64)
        as u64
        <= BLOCK_SIZE_BYTES_MAX
);

/// Where a block lies in the file: its contents' offset and size (the trailer follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    /// Offset of the first byte of the contents.
    pub offset: u64,
    /// Size of the contents, without the trailer.
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
}

impl Footer {
    /// Encodes the footer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        self.index.encode(&mut out);
        self.filter.encode(&mut out);
        self.properties.encode(&mut out);
        put_u32(&mut out, SST_FORMAT_VERSION);
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
        let footer = Footer { index: handles[0], filter: handles[1], properties: handles[2] };
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

/// Appends a block's contents and trailer to `out`.
pub fn encode_block(out: &mut Vec<u8>, contents: &[u8]) {
    out.extend_from_slice(contents);
    out.push(COMPRESSION_NONE);
    put_u32(out, crc32c_two(contents, &[COMPRESSION_NONE]));
}

/// Reads the block at `handle` from `file` and verifies its checksum; returns the contents.
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
    let mut bytes = vec![0u8; total as usize];
    file.read_exact_at(handle.offset, &mut bytes).map_err(|error| {
        Error::io(format!("read block at {} of {}", handle.offset, path.display()), error)
    })?;
    let size = handle.size as usize;
    let stored_crc = get_u32_at(&bytes, size + 1).unwrap_or(0);
    let actual_crc = crc32c(&bytes[..size + 1]);
    if stored_crc != actual_crc {
        return Err(Error::ChecksumMismatch {
            file: path.to_path_buf(),
            offset: handle.offset,
            expected: stored_crc,
            actual: actual_crc,
        });
    }
    let compression = bytes[size];
    if compression != COMPRESSION_NONE {
        return Err(Error::corruption(
            path,
            format!("block at offset {} has unknown compression {compression}", handle.offset),
        ));
    }
    bytes.truncate(size);
    Ok(bytes)
}
