//! A file being received: written under a temporary name, then fsynced, then renamed.
//!
//! A transfer can be cut off at any byte (a crash, a reset, a full disk, a checksum that
//! does not match). Writing straight to the final name would leave a partial file that
//! looks like a complete one. So the bytes go to a hidden temporary file in the same
//! directory (same file system, so the final step is a rename, not a copy), and only a
//! transfer that was checked is given its name:
//!
//! ```text
//! create .incoming-PID-N.part  →  write ...  →  fsync  →  link or rename to NAME  →  fsync dir
//!           └──────────── dropped before commit: the temporary file is removed ──┘
//! ```
//!
//! Without `force`, the final step is `link(2)`, which fails if NAME exists: checking first
//! and renaming after would let a file created in between be overwritten. With `force` it is
//! `rename(2)`, which replaces NAME atomically: a reader sees the old file or the new one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of one process (with its pid, of every process).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Why a received file could not be given its name.
#[derive(Debug)]
pub enum CommitError {
    /// A file by that name exists and replacing was not asked for.
    Exists(String),
    /// Writing, syncing or renaming failed.
    Io(io::Error),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Exists(name) => write!(
                f,
                "{name} already exists (not replaced: --force replaces existing files)"
            ),
            CommitError::Io(e) => write!(f, "disk error: {e}"),
        }
    }
}

/// A temporary file in the destination directory, removed unless committed.
#[derive(Debug)]
pub struct Incoming {
    dir: PathBuf,
    temp: PathBuf,
    /// Written as the bytes come (a read's worth, up to 64 KiB, per `write(2)`): gathering
    /// them into bigger writes would cost a copy of every byte to save a few system calls,
    /// and the copy is the dearer (measured with the file bench).
    file: Option<File>,
    written: u64,
}

impl Incoming {
    /// Creates a new temporary file in `dir`.
    pub fn create(dir: &Path) -> io::Result<Incoming> {
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".incoming-{}-{n}.part", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(Incoming {
                        dir: dir.to_path_buf(),
                        temp,
                        file: Some(file),
                        written: 0,
                    });
                }
                // Left over from a process that had our pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The temporary file's path (for tests and logs).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Fsyncs, and gives the file its final `name` (replacing an existing file
    /// only if `force`). Returns the final path.
    pub fn commit(mut self, name: &str, force: bool) -> Result<PathBuf, CommitError> {
        let file = self
            .file
            .take()
            .ok_or(CommitError::Io(io::ErrorKind::BrokenPipe.into()))?;
        file.sync_all().map_err(CommitError::Io)?;
        drop(file);
        let target = self.dir.join(name);
        if force {
            std::fs::rename(&self.temp, &target).map_err(CommitError::Io)?;
        } else {
            match std::fs::hard_link(&self.temp, &target) {
                Ok(()) => {
                    // The data has its name; the temporary name is only a second link now.
                    let _ = std::fs::remove_file(&self.temp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(CommitError::Exists(name.into()));
                }
                Err(e) => return Err(CommitError::Io(e)),
            }
        }
        // The temporary file is gone either way: nothing for `drop` to remove.
        self.temp = PathBuf::new();
        // The new directory entry survives a crash only once the directory is synced.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(CommitError::Io)?;
        Ok(target)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_has_the_final_name_until_commit_and_an_abandoned_file_vanishes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut incoming = Incoming::create(dir.path()).expect("create");
        incoming.write(b"half a fi").expect("write");
        assert_eq!(names(dir.path()).len(), 1);
        assert!(names(dir.path())[0].starts_with(".incoming-"));
        drop(incoming);
        assert!(names(dir.path()).is_empty(), "the partial file is removed");

        let mut incoming = Incoming::create(dir.path()).expect("create");
        incoming.write(b"whole file").expect("write");
        let path = incoming.commit("f.txt", false).expect("commit");
        assert_eq!(names(dir.path()), ["f.txt"]);
        assert_eq!(std::fs::read(path).expect("read"), b"whole file");
    }

    #[test]
    fn an_existing_file_is_replaced_only_when_forced() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("f.txt"), b"old").expect("write");
        let mut incoming = Incoming::create(dir.path()).expect("create");
        incoming.write(b"new").expect("write");
        let err = incoming.commit("f.txt", false).expect_err("exists");
        assert!(matches!(err, CommitError::Exists(_)), "{err}");
        assert_eq!(names(dir.path()), ["f.txt"], "temporary file removed");
        assert_eq!(
            std::fs::read(dir.path().join("f.txt")).expect("read"),
            b"old"
        );

        let mut incoming = Incoming::create(dir.path()).expect("create");
        incoming.write(b"new").expect("write");
        incoming.commit("f.txt", true).expect("forced");
        assert_eq!(
            std::fs::read(dir.path().join("f.txt")).expect("read"),
            b"new"
        );
        assert_eq!(names(dir.path()), ["f.txt"]);
    }
}
