//! The manifest: an append-only log of `VersionEdit`s that records which SSTs are live, which
//! WAL files are still needed, the next file number and the last flushed seqno.
//!
//! `CURRENT` names the live manifest. A new manifest starts with one edit holding the whole
//! state; `CURRENT` is switched to it by writing `CURRENT.<n>.tmp`, syncing it, renaming it
//! over `CURRENT` and syncing the directory (docs/format/manifest.md).
//!
//! Thread safety: `ManifestWriter` is owned by the engine state and used under its mutex.
//!
//! Invariants:
//! 1. An edit takes effect only once its record is synced; nothing depends on it before.
//! 2. CURRENT only ever names a manifest that is fully written and synced.
//! 3. On recovery a torn last record is an edit that never took effect and is ignored; damage
//!    before the end is corruption. Dropping a last edit that had taken effect (bit rot) cannot
//!    go unnoticed: a lost flush edit leaves the manifest naming a WAL that was deleted, and a
//!    lost removal leaves it naming a deleted SST; open refuses both.

mod edit;
mod state;

pub use edit::{FileMeta, VersionEdit};
pub use state::{ManifestState, LEVEL_COUNT};

use crate::filenames::{manifest_name, parse_file_name, FileKind, CURRENT_FILE_NAME};
use crate::fs::Fs;
use crate::record_log::{scan_records, Framing, RecordWriter, ScanEnd};
use crate::{Error, Result};
use std::path::Path;

/// Magic number at the start of every manifest ("NANOMAN1" as little-endian bytes).
/// DO NOT CHANGE: on-disk format.
pub const MANIFEST_MAGIC: u64 = u64::from_le_bytes(*b"NANOMAN1");
/// Current manifest format version. Version 1: the first format. Version 2: range tombstone
/// edits (tags 6 to 8). Version 3: keyspaces (tags 9 to 11); every stored key starts with its
/// keyspace prefix, so databases made by older formats are refused (`recover`).
pub const MANIFEST_FORMAT_VERSION: u32 = 3;
/// A manifest larger than this is replaced by a fresh one holding only the current state.
pub const MANIFEST_SIZE_BYTES_ROLL: u64 = 4 * 1024 * 1024;

/// Appends edits to the live manifest.
pub struct ManifestWriter {
    writer: RecordWriter,
    number: u64,
}

impl ManifestWriter {
    /// Writes a new manifest numbered `number` holding `state`, syncs it, and points CURRENT
    /// at it. Returns the writer for further edits.
    pub fn create(
        fs: &dyn Fs,
        dir: &Path,
        number: u64,
        state: &ManifestState,
    ) -> Result<ManifestWriter> {
        let path = dir.join(manifest_name(number));
        let mut writer = RecordWriter::create(
            fs,
            &path,
            MANIFEST_MAGIC,
            MANIFEST_FORMAT_VERSION,
            Framing::Fixed,
        )?;
        writer.append_record(&state.snapshot_edit().encode())?;
        writer.sync()?;
        sync_dir(fs, dir)?;
        set_current(fs, dir, number)?;
        Ok(ManifestWriter { writer, number })
    }

    /// Appends one edit and syncs it. After `Ok` the edit is durable.
    pub fn log_edit(&mut self, edit: &VersionEdit) -> Result<()> {
        self.writer.append_record(&edit.encode())?;
        self.writer.sync()
    }

    /// Number of this manifest file.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Size of this manifest file, in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.writer.size_bytes()
    }
}

/// Syncs a directory, mapping the error.
pub fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|error| Error::io(format!("sync directory {}", dir.display()), error))
}

fn set_current(fs: &dyn Fs, dir: &Path, number: u64) -> Result<()> {
    let temporary = dir.join(format!("{CURRENT_FILE_NAME}.{number:06}.tmp"));
    let context = |what: &str| format!("{what} {}", temporary.display());
    let mut file = fs.create(&temporary).map_err(|error| Error::io(context("create"), error))?;
    let contents = format!("{}\n", manifest_name(number));
    file.append(contents.as_bytes()).map_err(|error| Error::io(context("write"), error))?;
    file.sync().map_err(|error| Error::io(context("sync"), error))?;
    drop(file);
    fs.rename(&temporary, &dir.join(CURRENT_FILE_NAME))
        .map_err(|error| Error::io(context("rename to CURRENT"), error))?;
    sync_dir(fs, dir)
}

/// Reads CURRENT and returns the live manifest's number.
pub fn read_current(fs: &dyn Fs, dir: &Path) -> Result<u64> {
    let path = dir.join(CURRENT_FILE_NAME);
    let bytes =
        fs.read_all(&path).map_err(|error| Error::io(format!("read {}", path.display()), error))?;
    let text = std::str::from_utf8(&bytes).ok().and_then(|text| text.strip_suffix('\n'));
    match text.and_then(parse_file_name) {
        Some(FileKind::Manifest(number)) => Ok(number),
        _ => Err(Error::corruption(&path, "does not name a manifest")),
    }
}

/// Replays the manifest numbered `number` into a state.
pub fn recover(fs: &dyn Fs, dir: &Path, number: u64) -> Result<ManifestState> {
    let path = dir.join(manifest_name(number));
    // Every format-3 manifest starts with an edit setting the next keyspace id; one without
    // it was written before keys carried their keyspace prefix.
    let mut state = ManifestState { next_keyspace_id: 0, ..ManifestState::default() };
    let mut records = 0u64;
    let end = scan_records(
        fs,
        &path,
        MANIFEST_MAGIC,
        MANIFEST_FORMAT_VERSION,
        |_| Framing::Fixed,
        |_, offset, payload| {
            let edit = VersionEdit::decode(payload).map_err(|detail| {
                Error::corruption(&path, format!("edit at offset {offset}: {detail}"))
            })?;
            state.apply(&edit).map_err(|detail| {
                Error::corruption(&path, format!("edit at offset {offset}: {detail}"))
            })?;
            records += 1;
            Ok(())
        },
    )?;
    match end {
        ScanEnd::Clean | ScanEnd::TornTail { .. } if records > 0 && state.next_keyspace_id == 0 => {
            Err(Error::UnsupportedVersion {
                file: path,
                found: 2,
                supported: MANIFEST_FORMAT_VERSION,
            })
        }
        ScanEnd::Clean | ScanEnd::TornTail { .. } if records > 0 => Ok(state),
        ScanEnd::Corrupt { offset, detail } => {
            Err(Error::corruption(&path, format!("damaged record at offset {offset}: {detail}")))
        }
        _ => Err(Error::corruption(&path, "manifest named by CURRENT holds no complete edit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{CrashMode, SimFs};
    use crate::key::internal_key;

    fn file(number: u64) -> FileMeta {
        FileMeta {
            number,
            level: 0,
            size_bytes: 10,
            entry_count: 1,
            seqno_min: number,
            seqno_max: number,
            smallest_key: internal_key(b"a", number, 1),
            largest_key: internal_key(b"b", number, 1),
            range_del_applied_seqno: 0,
            expiry_min: 0,
        }
    }

    #[test]
    fn edits_survive_a_crash_once_synced() {
        let fs = SimFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let mut state = ManifestState::default();
        let mut writer = ManifestWriter::create(&fs, dir, 2, &state).unwrap();
        let edit =
            VersionEdit { added: vec![file(3)], next_file_number: Some(4), ..Default::default() };
        writer.log_edit(&edit).unwrap();
        state.apply(&edit).unwrap();

        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(read_current(&image, dir).unwrap(), 2);
        assert_eq!(recover(&image, dir, 2).unwrap(), state);
    }

    #[test]
    fn a_torn_last_edit_is_ignored_and_a_bad_current_is_corruption() {
        let fs = SimFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let state = ManifestState::default();
        let mut writer = ManifestWriter::create(&fs, dir, 5, &state).unwrap();
        writer.log_edit(&VersionEdit { added: vec![file(6)], ..Default::default() }).unwrap();
        let path = dir.join(manifest_name(5));
        let size = fs.read_live(&path).unwrap().len();
        fs.truncate(&path, size - 2);
        assert_eq!(recover(&fs, dir, 5).unwrap(), state);

        let mut current = fs.create(&dir.join(CURRENT_FILE_NAME)).unwrap();
        current.append(b"MANIFEST-x\n").unwrap();
        assert!(read_current(&fs, dir).unwrap_err().is_corruption());
    }

    #[test]
    fn a_manifest_with_no_edit_is_corruption() {
        let fs = SimFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        RecordWriter::create(&fs, &dir.join(manifest_name(1)), MANIFEST_MAGIC, 1, Framing::Fixed)
            .unwrap();
        assert!(recover(&fs, dir, 1).unwrap_err().is_corruption());
    }
}
