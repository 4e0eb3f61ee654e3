//! One [`Handler`](crate::reactor::Handler) per protocol: the glue between a sans-IO state
//! machine in `netloop-protocols` and a connection in the reactor.
//!
//! | service | lesson programs | server | client |
//! |---|---|---|---|
//! | [`time`] | 02/03, 06/07, 10 | [`time::TimeServer`] | [`time::TimeClient`] |
//! | [`udp_echo`] | 08/09 | [`udp_echo::EchoServer`] | [`udp_echo::EchoClient`] |
//! | [`http`] | `http.server`, `BaseHTTPRequestHandler` | [`http::HttpConn`] | (curl, a browser) |
//! | [`http_client`] | 01, `requests`, `urlopen` | (any HTTP server) | [`http_client::Client`] |
//! | [`chat`] | 11/12 | [`chat::ChatServer`], [`chat::RawChatServer`] | [`chat::ChatClient`] |
//! | [`file`](mod@file) | 04/05 | [`file::LessonServer`], [`file::RequestServer`] | [`file::FileClient`] |
//! | [`smtp`] | 13/14 | [`smtp::SmtpConn`] | (smtplib, swaks) |
//! | [`smtp_client`] | 14, `smtplib` + `email.mime` | (any SMTP server) | [`smtp_client::SmtpClient`] |

pub mod chat;
pub mod disk;
pub mod file;
pub mod http;
pub mod http_client;
pub mod smtp;
pub mod smtp_client;
pub mod time;
pub mod udp_echo;

use std::io;
use std::path::PathBuf;

/// A directory of ours in the system's temporary directory, `name`, created private (mode
/// 0700) if missing: where the `netloop` binary keeps uploads and mail unless told
/// otherwise (`flag` is the option that says where instead, named in the error).
///
/// The temporary directory is shared by every user of the machine, so an existing one is
/// used only if it is a real directory (not a symlink someone planted to aim our files
/// elsewhere), owned by us, and writable by no one else.
pub fn private_temp_dir(name: &str, flag: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = std::env::temp_dir().join(name);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    // /proc/self belongs to the process's effective user: who we are, without libc.
    let me = std::fs::metadata("/proc/self")?.uid();
    let refuse = |why: &str| {
        Err(io::Error::other(format!(
            "{} {why}; refusing to use it (choose a directory with {flag})",
            dir.display()
        )))
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return refuse("is not a directory");
    }
    if meta.uid() != me {
        return refuse("belongs to another user");
    }
    if meta.mode() & 0o022 != 0 {
        return refuse("is writable by other users");
    }
    Ok(dir)
}
