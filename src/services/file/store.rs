//! The served directory: which files it lists, how a peer's name becomes a path, and the
//! SHA-256 digests already computed for its files.
//!
//! Every name that reaches [`Store`] has passed
//! [`netloop_protocols::file::safe_file_name`] (the request reader checks
//! it), so `dir.join(name)` stays inside the directory. Temporary files of uploads in
//! progress start with `.` (see [`super::incoming`]): they are neither listed nor served.

use netloop_protocols::file::{ListEntry, Sha256Digest, safe_file_name};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Largest upload a server accepts unless told otherwise: 4 GiB, enough for the disk
/// images people pass around, small enough that one client cannot fill a disk unasked.
pub const DEFAULT_MAX_UPLOAD: u64 = 4 << 30;

/// What the request-mode server serves from, and how it stores uploads.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Replace existing files on upload (`--force`).
    pub force: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
    digests: HashMap<String, (FileId, Sha256Digest)>,
}

/// Which version of a file a digest belongs to: a file replaced, appended to or touched
/// gets a new id, and its digest is computed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    /// The id of the file `meta` describes.
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// Why a file cannot be served. The `Display` text is the reply's message.
#[derive(Debug)]
pub enum OpenError {
    /// No file by that name.
    NotFound(String),
    /// A directory, a socket, a device: only regular files are served.
    NotAFile(String),
    /// Anything else the file system said.
    Io(String, io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotFound(name) => write!(f, "no such file: {name}"),
            OpenError::NotAFile(name) => write!(f, "{name} is not a regular file"),
            OpenError::Io(name, e) => write!(f, "cannot open {name}: {e}"),
        }
    }
}

impl Store {
    /// Serves `dir`, creating it if it does not exist.
    pub fn open(dir: &Path) -> io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.canonicalize()?,
            force: false,
            max_upload: DEFAULT_MAX_UPLOAD,
            digests: HashMap::new(),
        })
    }

    /// The served directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `name`, a name [`safe_file_name`] accepted.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Opens `name` for reading: a regular file, with its metadata.
    pub fn open_file(&self, name: &str) -> Result<(File, Metadata), OpenError> {
        let file = File::open(self.path(name)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OpenError::NotFound(name.into()),
            _ => OpenError::Io(name.into(), e),
        })?;
        let meta = file.metadata().map_err(|e| OpenError::Io(name.into(), e))?;
        if !meta.is_file() {
            return Err(OpenError::NotAFile(name.into()));
        }
        Ok((file, meta))
    }

    /// The regular files a client may ask for, by name. Names a client could not ask for
    /// (hidden, temporary, not UTF-8) are left out.
    pub fn list(&self) -> io::Result<Vec<ListEntry>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if safe_file_name(&name).is_err() {
                continue;
            }
            // `metadata` follows symlinks, as opening the file would.
            match std::fs::metadata(entry.path()) {
                Ok(meta) if meta.is_file() => files.push(ListEntry {
                    name,
                    size: meta.len(),
                }),
                _ => continue,
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// The digest of `name` if it was computed for this version of the file.
    pub fn cached_digest(&self, name: &str, id: FileId) -> Option<Sha256Digest> {
        self.digests
            .get(name)
            .filter(|(known, _)| *known == id)
            .map(|(_, digest)| *digest)
    }

    /// Remembers the digest of this version of `name` (computed, or verified on upload).
    pub fn remember_digest(&mut self, name: &str, id: FileId, digest: Sha256Digest) {
        self.digests.insert(name.to_string(), (id, digest));
    }
}

/// The `netloop` binary's default directory: `netloop-files` in the system's temporary
/// directory, created private (mode 0700) if missing.
///
/// The temporary directory is shared by every user of the machine, so an existing
/// `netloop-files` is used only if it is a real directory (not a symlink someone planted to
/// aim our uploads elsewhere), owned by us, and writable by no one else.
pub fn default_dir() -> io::Result<PathBuf> {
    crate::services::private_temp_dir("netloop-files", "--file-dir")
}

/// Size and SHA-256 of a local file, read in 1 MiB pieces (a client about to upload it
/// announces both before the first byte).
pub fn sha256_file(path: &Path) -> io::Result<(u64, Sha256Digest)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((size, Sha256Digest(hasher.finalize().into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_regular_files_a_client_could_ask_for() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("b.txt"), b"bb").expect("write");
        std::fs::write(dir.path().join("a.txt"), b"a").expect("write");
        std::fs::write(dir.path().join(".hidden.part"), b"x").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let store = Store::open(dir.path()).expect("store");
        let names: Vec<(String, u64)> = store
            .list()
            .expect("list")
            .into_iter()
            .map(|e| (e.name, e.size))
            .collect();
        assert_eq!(names, [("a.txt".into(), 1), ("b.txt".into(), 2)]);
        assert!(matches!(
            store.open_file("sub"),
            Err(OpenError::NotAFile(_))
        ));
        assert!(matches!(
            store.open_file("nope"),
            Err(OpenError::NotFound(_))
        ));
    }

    #[test]
    fn a_digest_is_forgotten_when_the_file_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").expect("write");
        let mut store = Store::open(dir.path()).expect("store");
        let (size, digest) = sha256_file(&path).expect("hash");
        assert_eq!((size, digest), (6, Sha256Digest::of(b"hello\n")));
        let id = FileId::of(&std::fs::metadata(&path).expect("meta"));
        store.remember_digest("f", id, digest);
        assert_eq!(store.cached_digest("f", id), Some(digest));
        std::fs::write(&path, b"hello, world\n").expect("rewrite");
        let changed = FileId::of(&std::fs::metadata(&path).expect("meta"));
        assert_eq!(store.cached_digest("f", changed), None);
    }
}
