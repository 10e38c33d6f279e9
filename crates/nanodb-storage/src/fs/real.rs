//! `RealFs`: the engine's filesystem interface over `std::fs`.
//!
//! Thread safety: stateless; any number of threads may use one `RealFs`.
//!
//! Durability: `WritableFile::sync` is `fdatasync` (which also persists the file size),
//! `sync_dir` opens the directory and `fsync`s it, and locks are `flock`-style advisory
//! locks (`std::fs::File::try_lock`), which conflict between two opens in one process too.

use super::{FileLock, Fs, ReadableFile, WritableFile};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The operating system's filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealWritableFile {
    file: File,
}

impl WritableFile for RealWritableFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[derive(Debug)]
struct RealReadableFile {
    file: File,
    size_bytes: u64,
}

impl ReadableFile for RealReadableFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

#[derive(Debug)]
struct RealFileLock {
    // Held only for its lock; closing the file releases it.
    _file: File,
}

impl FileLock for RealFileLock {}

impl Fs for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(Box::new(RealWritableFile { file }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn ReadableFile>> {
        let file = File::open(path)?;
        let size_bytes = file.metadata()?.len();
        Ok(Arc::new(RealReadableFile { file, size_bytes }))
    }

    fn open_mapped(&self, path: &Path) -> io::Result<Arc<dyn ReadableFile>> {
        match super::mapped::MappedFile::open(path)? {
            Some(mapped) => Ok(mapped),
            None => self.open(path),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            // Names that are not UTF-8 are not ours; the engine ignores them.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealFileLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => {
                Err(io::Error::new(io::ErrorKind::WouldBlock, "lock held by another handle"))
            }
            Err(fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_sync_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = RealFs.create(&path).unwrap();
        file.append(b"hello ").unwrap();
        file.append(b"world").unwrap();
        file.sync().unwrap();
        let reader = RealFs.open(&path).unwrap();
        assert_eq!(reader.size_bytes(), 11);
        let mut buf = [0; 5];
        reader.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        assert!(reader.read_exact_at(8, &mut buf).is_err());
        assert_eq!(RealFs.read_all(&path).unwrap(), b"hello world");
    }

    #[test]
    fn second_lock_in_the_same_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let first = RealFs.lock(&path).unwrap();
        let second = RealFs.lock(&path).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        drop(first);
        RealFs.lock(&path).unwrap();
    }

    #[test]
    fn rename_replaces_and_list_sees_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        RealFs.create(&a).unwrap().append(b"1").unwrap();
        RealFs.create(&b).unwrap().append(b"2").unwrap();
        RealFs.rename(&a, &b).unwrap();
        RealFs.sync_dir(dir.path()).unwrap();
        assert_eq!(RealFs.read_all(&b).unwrap(), b"1");
        assert_eq!(RealFs.list_dir(dir.path()).unwrap(), vec!["b".to_string()]);
    }
}
