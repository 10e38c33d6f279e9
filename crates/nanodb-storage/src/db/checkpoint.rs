//! `Db::checkpoint`: a consistent, openable copy of a live database in another directory.
//!
//! Steps: flush every memtable (so every write acknowledged before the call is in an SST),
//! then, under the engine lock, take the manifest state and the read view together (the view
//! keeps every file the state names from being deleted while they are copied). Outside the
//! lock: link each SST into the new directory (a hard link when the filesystem allows, else a
//! copy that is synced), create an empty WAL, sync the directory, and last write a manifest
//! holding the state and point `CURRENT` at it. Writes go on meanwhile; those after the flush
//! are not in the checkpoint (it holds exactly the writes up to the state's `last_seqno`).
//!
//! Thread safety: runs on the caller's thread; holds the engine lock only to read the state,
//! never across I/O.
//!
//! Invariants:
//! 1. `CURRENT` is the last file written: a directory without it is an unfinished checkpoint
//!    (a crash or an error), which `Db::open` would not take for the copy. The target must not
//!    exist beforehand, so an unfinished one is never reused or mistaken for a finished one.
//! 2. Every SST, the WAL and their directory entries are durable before `CURRENT` names the
//!    manifest (`ManifestWriter::create` syncs the manifest, `CURRENT` and the directory).
//! 3. The source database is only read: a crash during a checkpoint changes nothing in it.

use super::DbInner;
use crate::filenames::{sst_path, wal_path};
use crate::fs::Fs;
use crate::manifest::{sync_dir, ManifestWriter};
use crate::wal::create_wal;
use crate::{Error, Result};
use std::path::Path;

/// Bytes read and written per step when an SST is copied instead of linked.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// What a checkpoint holds and how its files got there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// SST files hard-linked from the database.
    pub ssts_linked: u64,
    /// SST files copied (the filesystem refused a link).
    pub ssts_copied: u64,
    /// Bytes of all the SSTs.
    pub sst_bytes: u64,
    /// Every write with a seqno up to this one is in the checkpoint, and no later one.
    pub seqno_last: u64,
}

/// Makes a checkpoint of the database in `target`, which must not exist.
pub(crate) fn checkpoint(inner: &DbInner, target: &Path) -> Result<CheckpointReport> {
    inner.check_writable()?;
    let fs = inner.fs.as_ref();
    let exists = fs
        .exists(target)
        .map_err(|error| Error::io(format!("stat {}", target.display()), error))?;
    if exists {
        return Err(Error::InvalidArgument(format!(
            "checkpoint target {} already exists",
            target.display()
        )));
    }
    super::flush::flush_all(inner)?;
    let (mut state, _pinned) = {
        let engine = inner.engine.lock();
        (engine.state.clone(), inner.current_view())
    };
    fs.create_dir_all(target)
        .map_err(|error| Error::io(format!("create {}", target.display()), error))?;
    if let Some(parent) = target.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        sync_dir(fs, parent)?;
    }
    let mut report = CheckpointReport { seqno_last: state.last_seqno, ..Default::default() };
    for file in state.files() {
        let (from, to) = (sst_path(&inner.dir, file.number), sst_path(target, file.number));
        if fs.hard_link(&from, &to).is_ok() {
            report.ssts_linked += 1;
        } else {
            copy_file(fs, &from, &to)?;
            report.ssts_copied += 1;
        }
        report.sst_bytes += file.size_bytes;
    }
    // An empty WAL for the manifest to name, as after any open; numbers above every file.
    let wal_number = state.next_file_number;
    let manifest_number = wal_number + 1;
    state.next_file_number = manifest_number + 1;
    state.log_number = wal_number;
    drop(create_wal(fs, &wal_path(target, wal_number))?);
    sync_dir(fs, target)?;
    ManifestWriter::create(fs, target, manifest_number, &state)?;
    Ok(report)
}

/// Copies `from` to a new file `to` and syncs it.
fn copy_file(fs: &dyn Fs, from: &Path, to: &Path) -> Result<()> {
    let source =
        fs.open(from).map_err(|error| Error::io(format!("open {}", from.display()), error))?;
    let context = |what: &str| format!("{what} {}", to.display());
    let mut destination = fs.create(to).map_err(|error| Error::io(context("create"), error))?;
    let size_bytes = source.size_bytes();
    let mut buffer = vec![0u8; COPY_CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < size_bytes {
        let len = (size_bytes - offset).min(COPY_CHUNK_BYTES as u64) as usize;
        source
            .read_exact_at(offset, &mut buffer[..len])
            .map_err(|error| Error::io(format!("read {}", from.display()), error))?;
        destination.append(&buffer[..len]).map_err(|error| Error::io(context("write"), error))?;
        offset += len as u64;
    }
    destination.sync().map_err(|error| Error::io(context("sync"), error))
}
