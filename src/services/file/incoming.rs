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
//!
//! A download can also go to standard output ([`Incoming::stdout`], `file_client get NAME
//! --stdout`), as `curl -o -` does: there is no name to withhold, so the bytes leave as they
//! arrive and a failed check can only be reported (and the exit status says so).

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

/// A temporary file in the destination directory, removed unless committed; or standard
/// output, which has neither a temporary name nor a final one.
#[derive(Debug)]
pub struct Incoming {
    dir: PathBuf,
    /// The temporary name; empty once committed, and for standard output.
    temp: PathBuf,
    /// Writing to standard output: nothing to sync, rename or remove.
    stream: bool,
    file: Option<File>,
    /// Bytes waiting to make up a whole [`WRITE_UNIT`] (see there); never for a stream.
    pending: Vec<u8>,
    written: u64,
}

/// The file is written in whole, aligned units of this size. Reads arrive in whatever
/// sizes the socket gives (and a base64 body decodes to three quarters of a read), and
/// small or misaligned writes are dear: into tmpfs, 64 KiB writes cost 1.3-1.5 s of
/// system time per GiB where 128 KiB ones cost 0.4 (`dd bs=64K` vs `bs=128K` here; the
/// kernel can only use large pages for aligned, large writes). So bytes are gathered up
/// to the next multiple of the unit, and whole units in a read go out without a copy.
pub const WRITE_UNIT: usize = 128 * 1024;

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
                        stream: false,
                        file: Some(file),
                        pending: Vec::new(),
                        written: 0,
                    });
                }
                // Left over from a process that had our pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes to standard output (a duplicate of descriptor 1, so the process's own
    /// `stdout` is untouched).
    pub fn stdout() -> io::Result<Incoming> {
        use std::os::fd::AsFd;
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Incoming {
            dir: PathBuf::new(),
            temp: PathBuf::new(),
            stream: true,
            file: Some(File::from(fd)),
            pending: Vec::new(),
            written: 0,
        })
    }

    /// The temporary file's path (for tests and logs).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `bytes`: whole units now, the rest when a unit is complete (or at commit).
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        self.written += bytes.len() as u64;
        if self.stream {
            // A pipe or a terminal: the reader wants the bytes now, not in units.
            return file.write_all(bytes);
        }
        if !self.pending.is_empty() {
            let take = (WRITE_UNIT - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < WRITE_UNIT {
                return Ok(());
            }
            file.write_all(&self.pending)?;
            self.pending.clear();
        }
        let whole = bytes.len() / WRITE_UNIT * WRITE_UNIT;
        file.write_all(&bytes[..whole])?;
        self.pending.extend_from_slice(&bytes[whole..]);
        Ok(())
    }

    /// Writes what is gathered.
    fn flush(&mut self) -> io::Result<()> {
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        file.write_all(&self.pending)?;
        self.pending = Vec::new();
        Ok(())
    }

    /// Fsyncs, and gives the file its final `name` (replacing an existing file
    /// only if `force`). Returns the final path, or `-` for standard output.
    pub fn commit(mut self, name: &str, force: bool) -> Result<PathBuf, CommitError> {
        self.flush().map_err(CommitError::Io)?;
        let file = self
            .file
            .take()
            .ok_or(CommitError::Io(io::ErrorKind::BrokenPipe.into()))?;
        if self.stream {
            return Ok(PathBuf::from("-"));
        }
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
        // Standard output has no temporary name: nothing to remove.
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
    fn pieces_of_any_size_arrive_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data: Vec<u8> = (0..3 * WRITE_UNIT + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        for piece in [
            1,
            1000,
            WRITE_UNIT - 1,
            WRITE_UNIT,
            WRITE_UNIT + 7,
            2 * WRITE_UNIT,
        ] {
            let mut incoming = Incoming::create(dir.path()).expect("create");
            for chunk in data.chunks(piece) {
                incoming.write(chunk).expect("write");
                let on_disk = std::fs::metadata(incoming.temp_path()).expect("temp").len();
                assert_eq!(on_disk % WRITE_UNIT as u64, 0, "only whole units so far");
            }
            assert_eq!(incoming.written(), data.len() as u64);
            let path = incoming.commit("f.bin", true).expect("commit");
            assert_eq!(
                std::fs::read(path).expect("read"),
                data,
                "pieces of {piece}"
            );
        }
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
