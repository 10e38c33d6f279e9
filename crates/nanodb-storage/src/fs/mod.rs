//! The one small filesystem interface through which the engine does all its file I/O.
//!
//! `RealFs` goes to the operating system. `SimFs` keeps files in memory and can simulate a
//! power loss (forgetting every byte and directory entry not yet synced, or tearing the
//! unsynced tail) and fail a chosen write or fsync, so the crash tests can check what the
//! engine promises after any failure.
//!
//! Thread safety: `Fs` and `ReadableFile` are shared across threads; a `WritableFile` is used
//! by one thread at a time (it is `Send`, callers serialise access).
//!
//! Invariants the engine relies on (and `SimFs` enforces as strictly as POSIX allows):
//! 1. Files are only ever appended to; nothing is overwritten in place.
//! 2. Appended bytes are durable only after `WritableFile::sync` returns `Ok`.
//! 3. A created, renamed or removed directory entry is durable only after `sync_dir` on its
//!    directory returns `Ok`.
//! 4. `rename` atomically replaces the target: a reader sees the old or the new file, never a mix.

mod mapped;
mod real;
mod sim;

pub use real::RealFs;
pub use sim::{CrashMode, FaultKind, SimFs};

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file open for appending.
pub trait WritableFile: Send + Sync {
    /// Appends all of `data` at the end of the file.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
}

/// A file open for positional reads. Its size is fixed when it is opened.
pub trait ReadableFile: Send + Sync + Debug {
    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Size of the file when it was opened, in bytes.
    fn size_bytes(&self) -> u64;
    /// The whole file, when it is memory-mapped (`Fs::open_mapped`): a read of it can take a
    /// slice instead of copying. `None` (the default) for files read with system calls. When
    /// `Some`, its length is `size_bytes()` (readers still take slices of it with `get`).
    fn mapped(&self) -> Option<&[u8]> {
        None
    }
}

/// An exclusive lock on a path, released when dropped.
pub trait FileLock: Send + Sync + Debug {}

/// The filesystem operations the engine uses, and nothing more.
pub trait Fs: Send + Sync + Debug + 'static {
    /// Creates a directory and its parents; succeeds if it exists.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new, empty file for appending, replacing any file at `path`.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for reading.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn ReadableFile>>;
    /// Opens an existing file that nothing will write again (an SST) for reading through a
    /// memory map, where the filesystem has them (`RealFs`; see `Options::mmap_reads` for what
    /// that costs); otherwise, or when the file cannot be mapped, as `open` does.
    fn open_mapped(&self, path: &Path) -> io::Result<Arc<dyn ReadableFile>> {
        self.open(path)
    }
    /// Renames `from` to `to`, atomically replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes `to` a second name (hard link) of the existing file `from`; fails if `to`
    /// exists. Durable once `to`'s directory is synced. Filesystems without links, or a `to`
    /// on another device, fail with an error and the caller copies instead.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries in a directory, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// True if a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Takes an exclusive lock on `path` (creating the file if needed). Fails with
    /// `io::ErrorKind::WouldBlock` if any holder, in this process or another, has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;

    /// Reads a whole (small) file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path)?;
        let size = usize::try_from(file.size_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large for memory"))?;
        let mut bytes = vec![0; size];
        file.read_exact_at(0, &mut bytes)?;
        Ok(bytes)
    }
}
