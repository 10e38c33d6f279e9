//! `SimFs`: an in-memory filesystem that simulates power loss and I/O faults, for crash tests.
//!
//! The model is strict POSIX (the LazyFS/ALICE fault model). Each file is an inode whose bytes
//! `data` are what reads see, of which the prefix `data[..durable_len]` is on "disk";
//! `WritableFile::sync` makes the whole of `data` durable. Directory entries live in a live map
//! and a durable map, and every create, rename or remove is logged per parent directory until
//! `sync_dir` on that directory applies its log to the durable map. `crash_image` turns all of
//! this into what a power loss would leave behind (see [`CrashMode`]), `crash_after_ops` cuts
//! the power at a chosen mutating call, and `fail_after` injects I/O errors.
//!
//! Thread safety: all state sits behind one `Arc<Mutex<_>>`; a `SimFs` is a cheap handle to it
//! and every clone, and every open file, shares it. Each call is atomic.
//!
//! Invariants and simplifications:
//! 1. `durable_len <= data.len()`, and durable bytes are never changed (files are append-only;
//!    only the test helpers `corrupt_byte` and `truncate` edit files in place).
//! 2. Directories are durable as soon as `create_dir_all` returns (never removed). A rename
//!    across directories is an unlink logged in one and a link logged in the other.
//! 3. fsyncgate: once a `sync` has failed on an inode, its unsynced bytes are lost for good. Later
//!    syncs return `Ok` but never move `durable_len` again, so every power-loss image truncates
//!    the file to its durable length as of the failed sync (`KeepAll` still keeps the live bytes).
//! 4. An inode is kept while a live or durable entry, a pending entry operation or an open
//!    handle refers to it; a crash image holds only the inodes its durable entries reach.
//! 5. Once powered off (by `crash_image` or `crash_after_ops`), every call on the fs or its
//!    handles fails with "simulated power loss" and no file or entry changes again, so several
//!    `crash_image`s (in different modes) of the same crash point can be taken.

use super::{FileLock, Fs, ReadableFile, WritableFile};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What survives a simulated power loss, for [`SimFs::crash_image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only synced bytes and directory entries made durable by `sync_dir` survive.
    DropUnsynced,
    /// Per file, the synced bytes plus a random prefix of the unsynced tail; per directory, a
    /// random prefix of its pending entry operations (a torn last write).
    TornUnsynced {
        /// Seed of the RNG that picks the prefixes; the same seed gives the same image.
        seed: u64,
    },
    /// Like `TornUnsynced`, but the kept unsynced bytes read as zeros (the size reached the
    /// disk, the data did not).
    ZeroedTail {
        /// Seed of the RNG that picks the prefixes; the same seed gives the same image.
        seed: u64,
    },
    /// Everything in the live view survives (a process crash whose page cache survives).
    KeepAll,
}

/// Which mutating operations an injected fault applies to, for [`SimFs::fail_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `WritableFile::append`.
    Append,
    /// `WritableFile::sync`.
    Sync,
    /// `Fs::sync_dir`.
    SyncDir,
    /// `Fs::create` and `Fs::hard_link` (both add a directory entry).
    Create,
    /// `Fs::rename`.
    Rename,
    /// `Fs::remove_file`.
    Remove,
    /// Every mutating operation above.
    AnyWrite,
}

/// An in-memory filesystem with simulated power loss and fault injection. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

type InodeId = u64;

#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    durable_len: usize,
    /// A `sync` failed: bytes past `durable_len` can never become durable (fsyncgate).
    sync_failed: bool,
    /// Open readable and writable handles.
    handles: usize,
}

/// A directory entry change not yet made durable by `sync_dir`: unlink `remove`, then link
/// `add`. A rename within one directory is a single op, so a torn log never splits it.
struct DirOp {
    remove: Option<PathBuf>,
    add: Option<(PathBuf, InodeId)>,
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<PathBuf, InodeId>) {
        if let Some(path) = &self.remove {
            entries.remove(path);
        }
        if let Some((path, inode)) = &self.add {
            entries.insert(path.clone(), *inode);
        }
    }
}

struct Fault {
    kind: FaultKind,
    remaining: u64,
    persistent: bool,
    fired: bool,
}

#[derive(Default)]
struct State {
    dirs: BTreeSet<PathBuf>,
    live: BTreeMap<PathBuf, InodeId>,
    durable: BTreeMap<PathBuf, InodeId>,
    /// Pending entry operations, per parent directory, oldest first.
    pending: BTreeMap<PathBuf, Vec<DirOp>>,
    inodes: BTreeMap<InodeId, Inode>,
    next_inode: InodeId,
    locks: BTreeSet<PathBuf>,
    powered_off: bool,
    ops: u64,
    crash_at: Option<u64>,
    faults: Vec<Fault>,
    injected: u64,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (files, ops, off) = (self.live.len(), self.ops, self.powered_off);
        write!(f, "State {{ files: {files}, ops: {ops}, powered_off: {off}, .. }}")
    }
}

fn power_loss() -> io::Error {
    io::Error::other("simulated power loss")
}

fn not_found(path: &Path) -> io::Error {
    let message = format!("no such file or directory: {}", path.display());
    io::Error::new(io::ErrorKind::NotFound, message)
}

/// `a/./b/` and `a/b` name the same entry.
fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn names<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> Vec<String> {
    paths.filter_map(|path| path.file_name()?.to_str().map(str::to_owned)).collect()
}

impl State {
    fn check_power(&self) -> io::Result<()> {
        if self.powered_off {
            return Err(power_loss());
        }
        Ok(())
    }

    /// Gate at the start of every mutating call: power, the crash countdown, then faults.
    fn begin_op(&mut self, kind: FaultKind) -> io::Result<()> {
        self.check_power()?;
        if self.crash_at.is_some_and(|at| self.ops >= at) {
            self.powered_off = true;
            return Err(power_loss());
        }
        self.ops += 1;
        let mut fail = false;
        for fault in &mut self.faults {
            if fault.kind != kind && fault.kind != FaultKind::AnyWrite {
                continue;
            }
            if fault.fired || fault.remaining == 0 {
                fault.fired = true;
                fail = true;
            } else {
                fault.remaining -= 1;
            }
        }
        self.faults.retain(|fault| !fault.fired || fault.persistent);
        if fail {
            self.injected += 1;
            return Err(io::Error::other(format!("injected fault ({kind:?})")));
        }
        Ok(())
    }

    fn require_dir(&self, dir: &Path) -> io::Result<()> {
        if !self.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(())
    }

    /// Checks that a file may be placed at `path`: its parent exists and it is no directory.
    fn require_file_slot(&self, path: &Path) -> io::Result<()> {
        self.require_dir(&parent_of(path))?;
        if self.dirs.contains(path) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
        }
        Ok(())
    }

    fn inode_mut(&mut self, id: InodeId) -> io::Result<&mut Inode> {
        let inode = self.inodes.get_mut(&id);
        inode.ok_or_else(|| io::Error::other("simfs: inode vanished"))
    }

    fn live_id(&self, path: &Path) -> io::Result<InodeId> {
        let id = self.live.get(&normalize(path)).copied();
        id.ok_or_else(|| not_found(path))
    }

    fn live_inode(&mut self, path: &Path) -> Option<&mut Inode> {
        let id = self.live_id(path).ok()?;
        self.inodes.get_mut(&id)
    }

    fn log(&mut self, dir: PathBuf, remove: Option<PathBuf>, add: Option<(PathBuf, InodeId)>) {
        self.pending.entry(dir).or_default().push(DirOp { remove, add });
    }

    /// Opens a handle on `id`, which keeps the inode alive until dropped.
    fn handle(&mut self, state: &Arc<Mutex<State>>, id: InodeId) -> io::Result<Handle> {
        self.inode_mut(id)?.handles += 1;
        Ok(Handle { state: Arc::clone(state), inode: id })
    }

    /// Drops inodes nothing can reach any more (invariant 4).
    fn collect_garbage(&mut self) {
        let mut used = BTreeSet::new();
        used.extend(self.live.values().chain(self.durable.values()));
        let pending = self.pending.values().flatten();
        used.extend(pending.filter_map(|op| op.add.as_ref().map(|(_, id)| id)));
        let used: BTreeSet<InodeId> = used.into_iter().copied().collect();
        self.inodes.retain(|id, inode| inode.handles > 0 || used.contains(id));
    }

    /// The state a power loss in `mode` leaves on disk: all durable, nothing locked or pending.
    fn image(&self, mode: CrashMode) -> State {
        let (seed, torn) = match mode {
            CrashMode::TornUnsynced { seed } | CrashMode::ZeroedTail { seed } => (seed, true),
            CrashMode::DropUnsynced | CrashMode::KeepAll => (0, false),
        };
        let mut rng = SplitMix64(seed);
        let mut entries = self.durable.clone();
        if mode == CrashMode::KeepAll {
            entries = self.live.clone();
        } else if torn {
            for log in self.pending.values() {
                let kept = rng.up_to(log.len());
                log[..kept].iter().for_each(|op| op.apply(&mut entries));
            }
        }
        let mut image = State::default();
        for &id in entries.values().collect::<BTreeSet<_>>() {
            let Some(inode) = self.inodes.get(&id) else {
                continue;
            };
            let mut data = inode.data.clone();
            if mode != CrashMode::KeepAll {
                let unsynced = data.len().saturating_sub(inode.durable_len);
                let tail = if torn && !inode.sync_failed { rng.up_to(unsynced) } else { 0 };
                data.truncate(inode.durable_len + tail);
                if matches!(mode, CrashMode::ZeroedTail { .. }) {
                    data[inode.durable_len..].fill(0);
                }
            }
            let inode = image.inodes.entry(id).or_default();
            inode.durable_len = data.len();
            inode.data = data;
        }
        image.dirs = self.dirs.clone();
        image.live = entries.clone();
        image.durable = entries;
        image.next_inode = self.next_inode;
        image
    }
}

/// splitmix64: a tiny deterministic RNG for the torn crash modes.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max` (the modulo bias is irrelevant here).
    fn up_to(&mut self, max: usize) -> usize {
        let span = u64::try_from(max).map_or(u64::MAX, |max| max.saturating_add(1));
        usize::try_from(self.next() % span).unwrap_or(max).min(max)
    }
}

impl SimFs {
    /// An empty filesystem with no directories.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts the power on this fs (every later call on it or its handles fails) and returns a new,
    /// independent fs holding what `mode` says survives on disk: no locks, no pending entry
    /// operations, no faults, operation count 0. May be called again on the dead fs.
    pub fn crash_image(&self, mode: CrashMode) -> SimFs {
        let mut state = self.state.lock();
        state.powered_off = true;
        let image = state.image(mode);
        SimFs { state: Arc::new(Mutex::new(image)) }
    }

    /// Cuts the power when `count` more mutating operations have been done: the next one after
    /// them fails with "simulated power loss" and has no effect, as does every later call.
    pub fn crash_after_ops(&self, count: u64) {
        let mut state = self.state.lock();
        state.crash_at = Some(state.ops.saturating_add(count));
    }

    /// Mutating operations (create, append, sync, rename, remove_file, sync_dir) attempted while
    /// powered, including ones that failed.
    pub fn op_count(&self) -> u64 {
        self.state.lock().ops
    }

    /// True once the power is off (by `crash_image` or `crash_after_ops`).
    pub fn is_powered_off(&self) -> bool {
        self.state.lock().powered_off
    }

    /// Makes the `count`-th next operation of `kind` (0 = the very next) fail with "injected
    /// fault" and have no effect, and, if `persistent`, every matching one after it too.
    pub fn fail_after(&self, kind: FaultKind, count: u64, persistent: bool) {
        let fault = Fault { kind, remaining: count, persistent, fired: false };
        self.state.lock().faults.push(fault);
    }

    /// Removes every pending and persistent fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Number of injected faults actually returned so far.
    pub fn injected_fault_count(&self) -> u64 {
        self.state.lock().injected
    }

    /// Sorted names of the live files in `dir`. Like the helpers below, works when powered off.
    pub fn file_names(&self, dir: &Path) -> Vec<String> {
        let dir = normalize(dir);
        let state = self.state.lock();
        names(state.live.keys().filter(|path| parent_of(path) == dir))
    }

    /// The live content of the file at `path`.
    pub fn read_live(&self, path: &Path) -> Option<Vec<u8>> {
        Some(self.state.lock().live_inode(path)?.data.clone())
    }

    /// The durable length of the file the live entry at `path` names.
    pub fn durable_len(&self, path: &Path) -> Option<usize> {
        Some(self.state.lock().live_inode(path)?.durable_len)
    }

    /// XORs the byte at `offset` with `xor_mask`, live and durable; false if there is no such
    /// byte. Not an operation: no counting, faults or power check.
    pub fn corrupt_byte(&self, path: &Path, offset: usize, xor_mask: u8) -> bool {
        let mut state = self.state.lock();
        let byte = state.live_inode(path).and_then(|inode| inode.data.get_mut(offset));
        byte.map(|byte| *byte ^= xor_mask).is_some()
    }

    /// Cuts the file to `len` bytes, live and durable; false if it is missing or shorter.
    /// Not an operation: no counting, faults or power check.
    pub fn truncate(&self, path: &Path, len: usize) -> bool {
        let mut state = self.state.lock();
        let Some(inode) = state.live_inode(path).filter(|inode| len <= inode.data.len()) else {
            return false;
        };
        inode.data.truncate(len);
        inode.durable_len = inode.durable_len.min(len);
        true
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut state = self.state.lock();
        state.check_power()?;
        if path.ancestors().any(|dir| state.live.contains_key(dir)) {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "a file is in the way"));
        }
        state.dirs.extend(path.ancestors().map(Path::to_path_buf));
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let path = normalize(path);
        let mut state = self.state.lock();
        state.begin_op(FaultKind::Create)?;
        state.require_file_slot(&path)?;
        let id = state.next_inode;
        state.next_inode += 1;
        state.inodes.insert(id, Inode::default());
        state.live.insert(path.clone(), id);
        state.log(parent_of(&path), None, Some((path, id)));
        state.collect_garbage();
        Ok(Box::new(SimWritableFile(state.handle(&self.state, id)?)))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn ReadableFile>> {
        let mut state = self.state.lock();
        state.check_power()?;
        let id = state.live_id(path)?;
        let size_bytes = state.inode_mut(id)?.data.len() as u64;
        Ok(Arc::new(SimReadableFile(state.handle(&self.state, id)?, size_bytes)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut state = self.state.lock();
        state.begin_op(FaultKind::Rename)?;
        let id = state.live_id(&from)?;
        state.require_file_slot(&to)?;
        if from == to {
            return Ok(());
        }
        state.live.remove(&from);
        state.live.insert(to.clone(), id);
        let (from_dir, to_dir) = (parent_of(&from), parent_of(&to));
        if from_dir == to_dir {
            state.log(from_dir, Some(from), Some((to, id)));
        } else {
            state.log(from_dir, Some(from), None);
            state.log(to_dir, None, Some((to, id)));
        }
        state.collect_garbage();
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut state = self.state.lock();
        state.begin_op(FaultKind::Remove)?;
        state.live.remove(&path).ok_or_else(|| not_found(&path))?;
        state.log(parent_of(&path), Some(path), None);
        state.collect_garbage();
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut state = self.state.lock();
        state.begin_op(FaultKind::Create)?;
        let id = state.live_id(&from)?;
        state.require_file_slot(&to)?;
        if state.live.contains_key(&to) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "link target exists"));
        }
        state.live.insert(to.clone(), id);
        state.log(parent_of(&to), None, Some((to, id)));
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let dir = normalize(path);
        let mut state = self.state.lock();
        state.check_power()?;
        state.require_dir(&dir)?;
        let occupied = state.live.keys().chain(state.dirs.iter().filter(|sub| **sub != dir));
        if occupied.into_iter().any(|child| parent_of(child) == dir) {
            return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, "directory not empty"));
        }
        state.dirs.remove(&dir);
        Ok(())
    }

    /// Names of the live files and the subdirectories in `path`.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let dir = normalize(path);
        let state = self.state.lock();
        state.check_power()?;
        state.require_dir(&dir)?;
        let subdirs = state.dirs.iter().filter(|sub| **sub != dir);
        Ok(names(state.live.keys().chain(subdirs).filter(|child| parent_of(child) == dir)))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = normalize(path);
        let mut state = self.state.lock();
        state.begin_op(FaultKind::SyncDir)?;
        state.require_dir(&dir)?;
        let log = state.pending.remove(&dir).unwrap_or_default();
        log.iter().for_each(|op| op.apply(&mut state.durable));
        state.collect_garbage();
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let path = normalize(path);
        let state = self.state.lock();
        state.check_power()?;
        Ok(state.dirs.contains(&path) || state.live.contains_key(&path))
    }

    /// The lock is a name in a set; no file is created.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let path = normalize(path);
        let mut state = self.state.lock();
        state.check_power()?;
        state.require_file_slot(&path)?;
        if !state.locks.insert(path.clone()) {
            let kind = io::ErrorKind::WouldBlock;
            return Err(io::Error::new(kind, "lock held by another handle"));
        }
        let state = Arc::clone(&self.state);
        Ok(Box::new(SimFileLock { state, path }))
    }
}

/// An open file on one inode, wherever (or whether) its name now is.
#[derive(Debug)]
struct Handle {
    state: Arc<Mutex<State>>,
    inode: InodeId,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if let Some(inode) = state.inodes.get_mut(&self.inode) {
            inode.handles = inode.handles.saturating_sub(1);
        }
        state.collect_garbage();
    }
}

struct SimWritableFile(Handle);

impl WritableFile for SimWritableFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut state = self.0.state.lock();
        state.begin_op(FaultKind::Append)?;
        state.inode_mut(self.0.inode)?.data.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.0.state.lock();
        if let Err(error) = state.begin_op(FaultKind::Sync) {
            if !state.powered_off {
                // fsyncgate: the dirty bytes are dropped, yet stay visible (invariant 3).
                state.inode_mut(self.0.inode)?.sync_failed = true;
            }
            return Err(error);
        }
        let inode = state.inode_mut(self.0.inode)?;
        if !inode.sync_failed {
            inode.durable_len = inode.data.len();
        }
        Ok(())
    }
}

/// The handle, and the file size when it was opened.
#[derive(Debug)]
struct SimReadableFile(Handle, u64);

impl ReadableFile for SimReadableFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut state = self.0.state.lock();
        state.check_power()?;
        let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file");
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.1) {
            return Err(eof());
        }
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let data = &state.inode_mut(self.0.inode)?.data;
        buf.copy_from_slice(data.get(start..start + buf.len()).ok_or_else(eof)?);
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.1
    }
}

#[derive(Debug)]
struct SimFileLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl FileLock for SimFileLock {}

impl Drop for SimFileLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> &'static Path {
        Path::new("/db")
    }

    #[test]
    fn only_empty_directories_are_removed() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/root/a/b")).unwrap();
        fs.create(Path::new("/root/a/file")).unwrap();
        let not_empty = fs.remove_dir(Path::new("/root/a")).unwrap_err();
        assert_eq!(not_empty.kind(), io::ErrorKind::DirectoryNotEmpty);
        fs.remove_dir(Path::new("/root/a/b")).unwrap();
        fs.remove_file(Path::new("/root/a/file")).unwrap();
        fs.remove_dir(Path::new("/root/a")).unwrap();
        assert!(!fs.exists(Path::new("/root/a")).unwrap());
        assert_eq!(fs.list_dir(Path::new("/root")).unwrap(), Vec::<String>::new());
        assert!(fs.remove_dir(Path::new("/root/a")).is_err());
    }

    fn path(name: &str) -> PathBuf {
        dir().join(name)
    }

    fn new_fs() -> SimFs {
        let fs = SimFs::new();
        fs.create_dir_all(dir()).unwrap();
        fs
    }

    /// Creates `name` holding `synced` (synced, entry durable) followed by `unsynced`.
    fn file(fs: &SimFs, name: &str, synced: &[u8], unsynced: &[u8]) -> Box<dyn WritableFile> {
        let mut file = fs.create(&path(name)).unwrap();
        file.append(synced).unwrap();
        file.sync().unwrap();
        fs.sync_dir(dir()).unwrap();
        file.append(unsynced).unwrap();
        file
    }

    fn kind<T>(result: io::Result<T>) -> io::ErrorKind {
        result.err().unwrap().kind()
    }

    fn is_power_loss(error: &io::Error) -> bool {
        error.kind() == io::ErrorKind::Other && error.to_string().contains("simulated power loss")
    }

    #[test]
    fn drop_unsynced_keeps_synced_bytes_only() {
        let fs = new_fs();
        let _file = file(&fs, "a", b"synced", b" lost");
        assert_eq!(fs.read_live(&path("a")).unwrap(), b"synced lost");
        assert_eq!(fs.durable_len(&path("a")), Some(6));
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.read_all(&path("a")).unwrap(), b"synced");
        let kept = fs.crash_image(CrashMode::KeepAll);
        assert_eq!(kept.read_all(&path("a")).unwrap(), b"synced lost");
    }

    #[test]
    fn created_file_without_dir_sync_vanishes() {
        let fs = new_fs();
        let mut file = fs.create(&path("new")).unwrap();
        file.append(b"data").unwrap();
        file.sync().unwrap();
        assert_eq!(fs.list_dir(dir()).unwrap(), ["new"]);
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert!(!image.exists(&path("new")).unwrap());
        assert!(image.exists(dir()).unwrap());
        assert_eq!(kind(image.open(&path("new"))), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_hard_link_shares_the_file_and_is_durable_only_after_sync_dir() {
        for sync in [false, true] {
            let fs = new_fs();
            drop(file(&fs, "a", b"shared", b""));
            fs.hard_link(&path("a"), &path("b")).unwrap();
            let exists = io::ErrorKind::AlreadyExists;
            assert_eq!(kind(fs.hard_link(&path("a"), &path("b"))), exists);
            assert_eq!(kind(fs.hard_link(&path("none"), &path("c"))), io::ErrorKind::NotFound);
            fs.remove_file(&path("a")).unwrap();
            assert_eq!(fs.read_all(&path("b")).unwrap(), b"shared");
            if sync {
                fs.sync_dir(dir()).unwrap();
            }
            let image = fs.crash_image(CrashMode::DropUnsynced);
            assert_eq!(image.exists(&path("b")).unwrap(), sync);
            assert_eq!(image.exists(&path("a")).unwrap(), !sync);
            let survivor = if sync { "b" } else { "a" };
            assert_eq!(image.read_all(&path(survivor)).unwrap(), b"shared");
        }
    }

    #[test]
    fn rename_is_durable_only_after_sync_dir() {
        let fs = new_fs();
        drop(file(&fs, "old", b"x", b""));
        fs.rename(&path("old"), &path("new")).unwrap();
        assert_eq!(fs.file_names(dir()), ["new"]);
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.file_names(dir()), ["old"]);
        assert_eq!(image.read_all(&path("old")).unwrap(), b"x");

        let fs = image;
        fs.rename(&path("old"), &path("new")).unwrap();
        fs.sync_dir(dir()).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.file_names(dir()), ["new"]);
        assert_eq!(kind(image.rename(&path("old"), &path("x"))), io::ErrorKind::NotFound);
    }

    #[test]
    fn remove_is_undone_without_sync_dir() {
        let fs = new_fs();
        drop(file(&fs, "a", b"keep", b""));
        fs.remove_file(&path("a")).unwrap();
        assert!(!fs.exists(&path("a")).unwrap());
        assert_eq!(kind(fs.remove_file(&path("a"))), io::ErrorKind::NotFound);
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.read_all(&path("a")).unwrap(), b"keep");
        image.remove_file(&path("a")).unwrap();
        image.sync_dir(dir()).unwrap();
        assert!(image.crash_image(CrashMode::DropUnsynced).file_names(dir()).is_empty());
    }

    #[test]
    fn torn_unsynced_is_seeded_and_keeps_a_prefix() {
        let fs = new_fs();
        let _a = file(&fs, "a", b"durable:", b"0123456789abcdef");
        let _b = fs.create(&path("b")).unwrap();
        fs.rename(&path("b"), &path("c")).unwrap();
        let live = fs.read_live(&path("a")).unwrap();
        let (mut lengths, mut listings) = (BTreeSet::new(), BTreeSet::new());
        for seed in 0..64 {
            let image = fs.crash_image(CrashMode::TornUnsynced { seed });
            let again = fs.crash_image(CrashMode::TornUnsynced { seed });
            let data = image.read_all(&path("a")).unwrap();
            assert_eq!(data, again.read_all(&path("a")).unwrap());
            assert_eq!(image.file_names(dir()), again.file_names(dir()));
            assert!(data.len() >= 8 && live.starts_with(&data));
            lengths.insert(data.len());
            listings.insert(image.file_names(dir()));
        }
        assert!(lengths.len() > 4, "{lengths:?}");
        // Pending [create b, rename b->c] torn at 0, 1 or 2 ops.
        let expected: BTreeSet<Vec<String>> = [vec!["a"], vec!["a", "b"], vec!["a", "c"]]
            .map(|v| v.into_iter().map(str::to_owned).collect())
            .into();
        assert_eq!(listings, expected);
    }

    #[test]
    fn zeroed_tail_keeps_size_but_not_data() {
        let fs = new_fs();
        let _a = file(&fs, "a", b"durable", b"unsynced tail");
        let mut grew = false;
        for seed in 0..32 {
            let data = fs.crash_image(CrashMode::ZeroedTail { seed }).read_all(&path("a")).unwrap();
            assert_eq!(&data[..7], b"durable");
            assert!(data.len() <= 20 && data[7..].iter().all(|&byte| byte == 0));
            grew |= data.len() > 7;
        }
        assert!(grew);
    }

    #[test]
    fn crash_after_ops_stops_exactly_at_the_count() {
        let fs = new_fs();
        let mut file = file(&fs, "a", b"one", b"");
        let before = fs.op_count();
        fs.crash_after_ops(2);
        file.append(b"two").unwrap();
        file.sync().unwrap();
        assert!(!fs.is_powered_off());
        assert!(is_power_loss(&file.append(b"three").unwrap_err()));
        assert!(fs.is_powered_off());
        assert_eq!(fs.op_count(), before + 2);
        assert!(is_power_loss(&fs.open(&path("a")).unwrap_err()));
        assert!(is_power_loss(&fs.list_dir(dir()).unwrap_err()));
        assert_eq!(fs.read_live(&path("a")).unwrap(), b"onetwo");
        let image = fs.crash_image(CrashMode::KeepAll);
        assert_eq!(image.read_all(&path("a")).unwrap(), b"onetwo");
        assert_eq!(image.op_count(), 0);
    }

    #[test]
    fn fail_after_once_and_persistent() {
        let fs = new_fs();
        let mut file = fs.create(&path("a")).unwrap();
        fs.fail_after(FaultKind::Append, 1, false);
        file.append(b"1").unwrap();
        let error = file.append(b"2").unwrap_err();
        assert!(error.to_string().contains("injected fault"));
        file.append(b"3").unwrap();
        assert_eq!(fs.read_live(&path("a")).unwrap(), b"13");

        fs.fail_after(FaultKind::AnyWrite, 0, true);
        assert!(file.append(b"4").is_err());
        assert!(fs.sync_dir(dir()).is_err());
        assert!(fs.create(&path("b")).is_err());
        assert!(!fs.exists(&path("b")).unwrap());
        assert_eq!(fs.injected_fault_count(), 4);
        fs.clear_faults();
        file.append(b"5").unwrap();
        assert_eq!(fs.read_live(&path("a")).unwrap(), b"135");
    }

    #[test]
    fn failed_sync_loses_the_unsynced_bytes_for_good() {
        let fs = new_fs();
        let mut file = file(&fs, "wal", b"acked", b"doomed");
        fs.fail_after(FaultKind::Sync, 0, false);
        assert!(file.sync().is_err());
        assert_eq!(fs.read_live(&path("wal")).unwrap(), b"ackeddoomed");
        file.append(b"later").unwrap();
        file.sync().unwrap(); // fsyncgate: Ok, yet nothing becomes durable.
        assert_eq!(fs.durable_len(&path("wal")), Some(5));
        for mode in [CrashMode::DropUnsynced, CrashMode::TornUnsynced { seed: 7 }] {
            assert_eq!(fs.crash_image(mode).read_all(&path("wal")).unwrap(), b"acked");
        }
    }

    #[test]
    fn old_fs_and_its_handles_are_dead_after_crash_image() {
        let fs = new_fs();
        let mut writer = file(&fs, "a", b"abc", b"");
        let reader = fs.open(&path("a")).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert!(fs.is_powered_off() && !image.is_powered_off());
        assert!(is_power_loss(&writer.append(b"x").unwrap_err()));
        assert!(is_power_loss(&writer.sync().unwrap_err()));
        assert!(is_power_loss(&reader.read_exact_at(0, &mut [0; 1]).unwrap_err()));
        assert!(is_power_loss(&fs.create(&path("b")).err().unwrap()));
        assert!(is_power_loss(&fs.exists(dir()).unwrap_err()));
        image.create(&path("b")).unwrap().append(b"new").unwrap();
        assert_eq!(fs.file_names(dir()), ["a"]);
        assert_eq!(image.file_names(dir()), ["a", "b"]);
    }

    #[test]
    fn locks_conflict_and_release_on_drop() {
        let fs = new_fs();
        let lock = fs.lock(&path("LOCK")).unwrap();
        assert_eq!(kind(fs.lock(&path("LOCK"))), io::ErrorKind::WouldBlock);
        let image = fs.clone().crash_image(CrashMode::KeepAll);
        drop(image.lock(&path("LOCK")).unwrap());
        drop(lock);
        assert!(is_power_loss(&fs.lock(&path("LOCK")).unwrap_err()));
        drop(image.lock(&path("LOCK")).unwrap());
        image.lock(&path("LOCK")).unwrap();
    }

    #[test]
    fn handle_keeps_writing_after_its_path_is_removed() {
        let fs = new_fs();
        let mut file = fs.create(&path("a")).unwrap();
        fs.sync_dir(dir()).unwrap();
        let reader = fs.open(&path("a")).unwrap();
        fs.remove_file(&path("a")).unwrap();
        fs.sync_dir(dir()).unwrap();
        file.append(b"orphan").unwrap();
        file.sync().unwrap();
        assert_eq!(reader.size_bytes(), 0);
        assert_eq!(fs.read_live(&path("a")), None);
        assert!(fs.crash_image(CrashMode::KeepAll).file_names(dir()).is_empty());
        assert_eq!(fs.state.lock().inodes.len(), 1);
        drop((file, reader));
        assert!(fs.state.lock().inodes.is_empty());
    }

    #[test]
    fn reader_sees_size_at_open_and_helpers_edit_files() {
        let fs = new_fs();
        let mut writer = file(&fs, "a", b"hello", b"");
        let reader = fs.open(&path("a")).unwrap();
        writer.append(b" world").unwrap();
        let mut buf = [0; 3];
        reader.read_exact_at(2, &mut buf).unwrap();
        assert_eq!(&buf, b"llo");
        assert_eq!(kind(reader.read_exact_at(3, &mut buf)), io::ErrorKind::UnexpectedEof);
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert!(image.corrupt_byte(&path("a"), 0, 0x20));
        assert!(!image.corrupt_byte(&path("a"), 5, 1));
        assert!(image.truncate(&path("a"), 4) && !image.truncate(&path("a"), 9));
        assert_eq!(image.read_all(&path("a")).unwrap(), b"Hell");
        assert_eq!(image.durable_len(&path("a")), Some(4));
    }

    #[test]
    fn directories_and_missing_paths() {
        let fs = new_fs();
        fs.create_dir_all(&path("sub/deeper")).unwrap();
        drop(file(&fs, "f", b"", b""));
        let mut names = fs.list_dir(dir()).unwrap();
        names.sort();
        assert_eq!(names, ["f", "sub"]);
        assert!(fs.exists(&path("sub/deeper")).unwrap());
        assert_eq!(kind(fs.create(Path::new("/nope/f"))), io::ErrorKind::NotFound);
        assert_eq!(kind(fs.list_dir(Path::new("/nope"))), io::ErrorKind::NotFound);
        assert!(fs.create_dir_all(&path("f/x")).is_err());
        fs.create(&path("sub/g")).unwrap();
        fs.rename(&path("sub/g"), &path("g")).unwrap();
        fs.sync_dir(dir()).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.file_names(dir()), ["f", "g"]);
    }
}
