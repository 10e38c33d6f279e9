//! `MappedFile`: an SST file read through a read-only memory map (`Options::mmap_reads`), so
//! a block read is a slice of the map instead of a `pread` system call and a copy of the
//! stored bytes. Lookups at 1,000,000 documents with a 256 MiB cache ran 1.01 to 1.08 times
//! faster in the benchmark and 1.09 to 1.21 times in a probe of lookups alone
//! (docs/benchmarks.md, issue 6, twelfth run; the OS page cache held the files in both).
//!
//! What the caller accepts by choosing it (the option's documentation says the same):
//! - an I/O error while the kernel reads a mapped page, or anyone shortening or rewriting the
//!   file (through any of its names: a checkpoint hard-links live SSTs into its directory,
//!   outside the database's lock), raises SIGBUS or shows the new bytes, where `pread` would
//!   have returned an error or read them too;
//! - the mapped pages the process has touched count in its resident memory (they are the OS
//!   page cache's, shared and reclaimable, but `ps` shows them).
//!
//! The map keeps the kernel's default read-ahead (no `madvise`): a scan faults in large runs
//! of pages, and a lookup of a block not in the page cache may read some pages around it.
//!
//! Unsafe: `memmap2::Mmap::map` is `unsafe` because Rust cannot promise that a file's bytes do
//! not change underneath a map. Invariant 1 is why they do not, as far as the engine goes:
//! this module is the storage engine's one use of it (allowed here only, by the attribute
//! below); every read goes through the safe slice `Mmap` derefs to, with bounds checks.
//!
//! Thread safety: `Send + Sync`; the map is read-only and never changes after it is made.
//!
//! Invariants:
//! 1. Only files the engine never writes again are mapped: SSTs, written once under their
//!    final name, synced, and from then on only read, hard-linked or deleted (deleting one
//!    while mapped is fine on Unix: the map keeps its pages).
//! 2. The map covers the file's whole size at open; `size_bytes` is the map's length, so every
//!    read bounded by it stays inside the map.
//! 3. A file whose map cannot be made (no address space, an empty file, a filesystem without
//!    mmap) is read with `pread` instead: mapping is an optimisation, never a new failure.
//!    `SstReader::is_mapped` tells which way a file is read.

#![allow(unsafe_code)]

use super::ReadableFile;
use memmap2::Mmap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A whole file mapped read-only.
#[derive(Debug)]
pub(super) struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    /// Maps the file at `path`; `Ok(None)` when it cannot be mapped (invariant 3) and the
    /// caller should read it the usual way.
    pub(super) fn open(path: &Path) -> io::Result<Option<Arc<dyn ReadableFile>>> {
        let file = File::open(path)?;
        let size_bytes = file.metadata()?.len();
        if size_bytes == 0 || usize::try_from(size_bytes).is_err() {
            return Ok(None);
        }
        // SAFETY: see the module header: the file is an SST nothing writes again (invariant 1).
        let map = match unsafe { Mmap::map(&file) } {
            Ok(map) => map,
            Err(_) => return Ok(None),
        };
        Ok(Some(Arc::new(MappedFile { map })))
    }
}

impl ReadableFile for MappedFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buf.len()).and_then(|end| self.map.get(start..end)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end of a {}-byte file",
                    buf.len(),
                    self.map.len()
                ),
            )),
        }
    }

    fn size_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    fn mapped(&self) -> Option<&[u8]> {
        Some(&self.map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Fs, RealFs};

    #[test]
    fn mapped_reads_match_the_bytes_and_refuse_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = RealFs.create(&path).unwrap();
        file.append(b"hello world").unwrap();
        file.sync().unwrap();
        let reader = RealFs.open_mapped(&path).unwrap();
        assert_eq!(reader.mapped(), Some(&b"hello world"[..]));
        assert_eq!(reader.size_bytes(), 11);
        let mut buf = [0; 5];
        reader.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        // The last byte exactly, then one past it, then an offset past any address.
        reader.read_exact_at(10, &mut buf[..1]).unwrap();
        let error = reader.read_exact_at(7, &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("11-byte file"), "{error}");
        assert!(reader.read_exact_at(u64::MAX, &mut buf).is_err());
        // The map outlives the file's name (invariant 1: deleting a mapped SST is fine).
        std::fs::remove_file(&path).unwrap();
        assert_eq!(reader.mapped(), Some(&b"hello world"[..]));
    }

    #[test]
    fn empty_and_missing_files_are_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        RealFs.create(&path).unwrap().sync().unwrap();
        let reader = RealFs.open_mapped(&path).unwrap();
        assert_eq!(reader.mapped(), None, "read with pread instead");
        assert_eq!(reader.size_bytes(), 0);
        let error = RealFs.open_mapped(&dir.path().join("missing")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
