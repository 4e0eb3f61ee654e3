//! The lesson's model, in Rust, as the HTTP client bench's baseline: program 01, the
//! multithreaded downloader, with std only. One thread per URL, each with a blocking
//! `TcpStream`: connect, write an HTTP/1.1 `GET` with `Connection: close`, read until the
//! response ends, write the body to `DIR/<last path segment>`.
//!
//! Run: `cargo run --release --example threaded_downloader -- http://127.0.0.1:8000/book http://127.0.0.1:8000/stats -d downloads`
//! (start `cargo run --release` first, or `python3 -m http.server 8000` in a directory of
//! files). Plain `http://` only: no TLS here, that is not what the baseline is about.
//!
//! This is what the lesson's Python does with `threading.Thread(target=download,
//! args=(url,))` and `requests.get`: every URL at once, each on its own thread, which
//! blocks in `connect`, then in `read` until its server answers. Simple and correct; its
//! cost is a thread (a stack, a kernel task, a context switch per wake-up) and a new
//! connection for every URL, however many go to the same host, and nothing bounds how
//! many run at once. `examples/downloader.rs` does the same on one reactor thread, with at
//! most `--parallel` downloads in flight and connections to one host reused.
//!
//! The response is framed by netloop's own sans-IO client, `netloop_protocols::http::
//! ClientConn` (Content-Length, chunked, or until the close), so no HTTP is parsed here.
//! A status outside 2xx, a broken response or an I/O error is one line on stderr for that
//! URL, and leaves no file; the exit status is 1 if any URL failed. Unlike the Python,
//! nothing is printed for a download that succeeds.

use clap::Parser;
use netloop_protocols::http::{ClientConn, Request, ResponseError, ResponseEvent};
use percent_encoding::percent_decode_str;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;
use url::Url;

/// Downloads every URL at once, a thread and a blocking connection each.
#[derive(Parser)]
struct Args {
    /// The URLs to download (http:// only).
    #[arg(required = true)]
    urls: Vec<String>,
    /// Directory to save into (created if missing).
    #[arg(short = 'd', long = "dir", default_value = ".")]
    dir: PathBuf,
}

/// Stack size for a download's thread. 256 KiB: the thread's own frames use a few KiB,
/// but a host name is resolved on it by glibc's `getaddrinfo`, which wants tens of KiB.
/// Only the pages touched count in RSS; the default 2 MiB would only reserve address space.
const STACK: usize = 256 * 1024;

/// Bytes asked of each `read`: 64 KiB, the most loopback TCP hands over in one go at
/// default buffer sizes, and four of the bench's 16 KiB files.
const READ_SIZE: usize = 64 * 1024;

/// How long a `connect` or a `read` may block. 30 s, `http_client`'s `--timeout`; the
/// Python (and `requests`) waits forever, which would hang the whole program on one
/// silent server.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why one URL failed.
#[derive(Debug)]
enum Failed {
    /// The URL is not one this program fetches (not http://, no host, no file name).
    Url(&'static str),
    /// The server answered with a status outside 2xx.
    Status(u16),
    /// The server broke HTTP/1.1 or closed early.
    Response(ResponseError),
    /// Connecting, reading, writing the file.
    Io(io::Error),
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Url(why) => write!(f, "bad URL: {why}"),
            Failed::Status(s) => write!(f, "HTTP status {s}"),
            Failed::Response(e) => write!(f, "{e}"),
            Failed::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Self {
        Failed::Io(e)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("{}: {e}", args.dir.display());
        return ExitCode::FAILURE;
    }
    let mut failed = false;
    // A thread for every URL, all started before any is joined: the lesson's two loops.
    let mut threads = Vec::new();
    for url in args.urls {
        let dir = args.dir.clone();
        let spawned = thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || (download(&url, &dir), url));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                eprintln!("cannot start a thread: {e}");
                failed = true;
            }
        }
    }
    for handle in threads {
        match handle.join() {
            Ok((Ok(()), _)) => {}
            Ok((Err(e), url)) => {
                eprintln!("{url}: {e}");
                failed = true;
            }
            Err(_) => failed = true, // the panic has printed its message
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Fetches `url` into `dir`; on failure no file is left behind.
fn download(url: &str, dir: &Path) -> Result<(), Failed> {
    let url = Url::parse(url).map_err(|_| Failed::Url("does not parse"))?;
    if url.scheme() != "http" {
        return Err(Failed::Url("only http:// (no TLS in this baseline)"));
    }
    let path = dir.join(file_name(&url)?);
    let addrs = url.socket_addrs(|| None)?;
    let addr = addrs.first().ok_or(Failed::Url("host has no address"))?;
    let mut stream = TcpStream::connect_timeout(addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;

    let mut conn = ClientConn::default();
    let mut request = Vec::new();
    let get = Request {
        method: "GET",
        target: &url[url::Position::BeforePath..url::Position::AfterQuery],
        host: &url[url::Position::BeforeHost..url::Position::AfterPort],
        headers: &[("Connection", "close")],
        body: b"",
    };
    conn.write_request(&get, &mut request)
        .map_err(|_| Failed::Url("not a valid request target"))?;
    stream.write_all(&request)?;

    let mut file = None;
    let got = receive(&mut stream, &mut conn, &path, &mut file);
    if got.is_err() && file.is_some() {
        let _ = std::fs::remove_file(&path); // a partial body is not the file
    }
    got
}

/// Reads the response into `*file` (created at `path` once a 2xx head has arrived) until
/// it ends.
fn receive(
    stream: &mut TcpStream,
    conn: &mut ClientConn,
    path: &Path,
    file: &mut Option<File>,
) -> Result<(), Failed> {
    let mut buf = vec![0; READ_SIZE];
    loop {
        let mut input = match stream.read(&mut buf) {
            Ok(0) => {
                // EOF: a close-delimited body ends here; anything else is truncated.
                conn.handle_eof();
                &[][..]
            }
            Ok(n) => &buf[..n],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // a signal: again
            Err(e) => return Err(e.into()), // reset, or TIMEOUT passed in silence
        };
        let at_eof = input.is_empty();
        while let Some(event) = conn.poll_event(&mut input).map_err(Failed::Response)? {
            match event {
                ResponseEvent::Head(head) if !(200..300).contains(&head.status) => {
                    return Err(Failed::Status(head.status));
                }
                ResponseEvent::Head(head) => {
                    *file = Some(File::create(path)?);
                    conn.recycle(head);
                }
                ResponseEvent::Body(data) => {
                    // Always Some: ClientConn yields a response's Head before its Body.
                    if let Some(f) = file {
                        f.write_all(data)?;
                    }
                }
                ResponseEvent::End { .. } => return Ok(()),
            }
        }
        if at_eof {
            // After EOF poll_event ends the body or errs; this is the defensive answer.
            return Err(Failed::Response(ResponseError::Truncated));
        }
    }
}

/// The last segment of `url`'s path, percent-decoded, as a file name that stays inside
/// the output directory.
fn file_name(url: &Url) -> Result<String, Failed> {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let name = percent_decode_str(last).decode_utf8_lossy();
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(Failed::Url("no file name in its last path segment"));
    }
    Ok(name.into_owned())
}
