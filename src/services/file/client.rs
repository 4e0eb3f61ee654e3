//! The file client: the lesson's receive-on-connect, and `get`, `put`, `list`.
//!
//! ```text
//! job      opened                        then
//! Receive  -                             the lesson's document → temp file → name
//! Get      {"op":"get",...}              header line → body → verified → name
//! Put      {"op":"put",...}, 1st chunk   next chunk per drained; reply line
//! List     {"op":"list"}                 reply line
//! ```
//!
//! The client is a [`Handler`] like any server connection: [`FileClient`] runs on a
//! reactor (one connection, or a hundred at once, as the bench does), and leaves its
//! [`Outcome`] in a shared cell when the connection is over. A name that comes from the
//! server is checked with `safe_file_name` before anything gets it: the lesson's client
//! does `open('/Users/admin/' + filename)`, so a server sending `../.bashrc` would win.

use super::incoming::Incoming;
use super::outgoing::{Outgoing, Step};
use super::receive::{Received, Receiver};
use crate::reactor::{CloseReason, Context, Handler};
use netloop_protocols::file::{
    Encoding, FileHeader, JsonLineReader, ListEntry, Listing, Reply, Request, Sha256Digest, Stored,
};
use std::cell::RefCell;
use std::fs::File;
use std::path::PathBuf;
use std::rc::Rc;

/// Where a received file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Into this directory, under the name the transfer carries: a temporary name first,
    /// the final one only once the file is complete and checked.
    Dir(PathBuf),
    /// To standard output as the bytes arrive (`--stdout`); the check still runs, but a file
    /// that fails it has already gone out, so only the outcome says so.
    Stdout,
}

impl Destination {
    fn open(&self) -> Result<Incoming, String> {
        match self {
            Destination::Dir(dir) => {
                Incoming::create(dir).map_err(|e| format!("cannot write in {}: {e}", dir.display()))
            }
            Destination::Stdout => {
                Incoming::stdout().map_err(|e| format!("cannot write to standard output: {e}"))
            }
        }
    }
}

/// What the client is asked to do.
#[derive(Debug, Clone)]
pub enum Job {
    /// The lesson's client: connect, receive the document the server sends, save it in
    /// `to` under the name it carries. `whole`: read it all, then parse it with serde_json
    /// (the lesson's way, for small files).
    Receive {
        /// Where to save it.
        to: Destination,
        /// Replace an existing file of that name.
        force: bool,
        /// Parse the whole document at the end instead of streaming it.
        whole: bool,
    },
    /// Download `name` to `to`.
    Get {
        /// The file to ask for.
        name: String,
        /// How the server should send it.
        encoding: Encoding,
        /// Where to save it.
        to: Destination,
        /// Replace an existing file of that name.
        force: bool,
        /// Check the SHA-256 digest the server announces (the size is always checked).
        verify: bool,
    },
    /// Upload the file at `path` as `name`; `size` and `sha256` are announced first
    /// (see [`sha256_file`](super::sha256_file)).
    Put {
        /// The local file.
        path: PathBuf,
        /// The name on the server.
        name: String,
        /// Its size.
        size: u64,
        /// Its digest.
        sha256: Sha256Digest,
        /// How to send it.
        encoding: Encoding,
    },
    /// Ask which files the server has.
    List,
}

/// How a client's job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A file arrived, checked, and has its name.
    Saved(Received),
    /// The server stored our upload.
    Stored(Stored),
    /// The server's files.
    Listing(Vec<ListEntry>),
    /// It did not work; why, in words (`server: ...` when the server said so).
    Failed(String),
}

/// Told how a transfer advances (a progress bar, or nothing).
pub trait Progress {
    /// The file's body starts; its size, if known (the lesson's document does not say).
    fn start(&mut self, name: &str, total: Option<u64>);
    /// `bytes` more bytes of the file moved.
    fn advance(&mut self, bytes: u64);
}

/// No progress reports.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _name: &str, _total: Option<u64>) {}
    fn advance(&mut self, _bytes: u64) {}
}

enum Phase {
    Connecting,
    GetHeader(JsonLineReader<Reply<FileHeader>>),
    Body(Box<Receiver>),
    Upload {
        out: Option<Outgoing>,
        reply: JsonLineReader<Reply<Stored>>,
    },
    ListReply(JsonLineReader<Reply<Listing>>),
    Finished,
}

/// One client connection doing one [`Job`].
pub struct FileClient {
    job: Job,
    phase: Phase,
    result: Rc<RefCell<Option<Outcome>>>,
    progress: Box<dyn Progress>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for FileClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileClient")
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl FileClient {
    /// A client for `job`; the outcome lands in `result`.
    pub fn new(
        job: Job,
        result: Rc<RefCell<Option<Outcome>>>,
        progress: Box<dyn Progress>,
    ) -> FileClient {
        FileClient {
            job,
            phase: Phase::Connecting,
            result,
            progress,
            scratch: Vec::new(),
        }
    }

    fn finish(&mut self, cx: &mut Context<'_>, outcome: Outcome) {
        self.phase = Phase::Finished;
        *self.result.borrow_mut() = Some(outcome);
        cx.close();
    }

    fn fail(&mut self, cx: &mut Context<'_>, why: String) {
        self.finish(cx, Outcome::Failed(why));
    }

    fn send_request(cx: &mut Context<'_>, request: &Request) {
        if let Some(out) = cx.output() {
            request.write_line(out);
        }
    }

    fn start(&mut self, cx: &mut Context<'_>) {
        match self.job.clone() {
            Job::Receive { to, whole, .. } => match to.open() {
                Ok(incoming) => {
                    self.progress.start("", None);
                    self.phase = Phase::Body(Box::new(Receiver::lesson(incoming, whole)));
                }
                Err(why) => self.fail(cx, why),
            },
            Job::Get { name, encoding, .. } => {
                Self::send_request(
                    cx,
                    &Request::Get {
                        filename: name,
                        encoding,
                    },
                );
                self.phase = Phase::GetHeader(JsonLineReader::new());
            }
            Job::Put {
                path,
                name,
                size,
                sha256,
                encoding,
            } => {
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) => return self.fail(cx, format!("{}: {e}", path.display())),
                };
                Self::send_request(
                    cx,
                    &Request::Put {
                        filename: name.clone(),
                        size,
                        sha256,
                        encoding,
                    },
                );
                self.progress.start(&name, Some(size));
                self.phase = Phase::Upload {
                    out: Some(Outgoing::new(file, size, encoding, &name)),
                    reply: JsonLineReader::new(),
                };
                self.pump(cx);
            }
            Job::List => {
                Self::send_request(cx, &Request::List);
                self.phase = Phase::ListReply(JsonLineReader::new());
            }
        }
    }

    /// Queues the next chunk of an upload.
    fn pump(&mut self, cx: &mut Context<'_>) {
        let Phase::Upload { out: Some(o), .. } = &mut self.phase else {
            return;
        };
        let Some(out) = cx.output() else { return };
        match o.poll_transmit(&mut self.scratch, out) {
            Ok(Step::More(n)) => self.progress.advance(n),
            Ok(Step::Done(n)) => {
                self.progress.advance(n);
                if let Phase::Upload { out, .. } = &mut self.phase {
                    *out = None;
                }
            }
            Err(e) => self.fail(cx, format!("upload stopped: {e}")),
        }
    }

    fn header(&mut self, cx: &mut Context<'_>, header: Reply<FileHeader>, rest: &[u8]) {
        let Job::Get {
            name,
            encoding,
            to,
            verify,
            ..
        } = &self.job
        else {
            return;
        };
        let h = match header {
            Reply::Ok(h) => h,
            Reply::Error { message } => return self.fail(cx, format!("server: {message}")),
        };
        if h.filename != *name || h.encoding != *encoding {
            let why = format!(
                "asked for {name} ({encoding:?}), the server announced {} ({:?})",
                h.filename, h.encoding
            );
            return self.fail(cx, why);
        }
        let incoming = match to.open() {
            Ok(i) => i,
            Err(why) => return self.fail(cx, why),
        };
        let raw = h.encoding == Encoding::Raw;
        let mut rx = Receiver::announced(incoming, &h.filename, h.size, h.sha256, raw);
        if !verify {
            rx = rx.without_digest();
        }
        self.progress.start(&h.filename, Some(h.size));
        self.phase = Phase::Body(Box::new(rx));
        self.body(cx, rest);
    }

    fn body(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let Phase::Body(rx) = &mut self.phase else {
            return;
        };
        match rx.handle_bytes(bytes) {
            Ok(n) => self.progress.advance(n),
            Err(e) => return self.fail(cx, e.to_string()),
        }
        if rx.is_complete() {
            self.save(cx);
        }
    }

    fn save(&mut self, cx: &mut Context<'_>) {
        let Phase::Body(rx) = std::mem::replace(&mut self.phase, Phase::Finished) else {
            return;
        };
        let force = match &self.job {
            Job::Receive { force, .. } | Job::Get { force, .. } => *force,
            _ => false,
        };
        match rx.commit(force) {
            Ok(received) => self.finish(cx, Outcome::Saved(received)),
            Err(e) => self.fail(cx, e.to_string()),
        }
    }
}

impl Handler for FileClient {
    fn opened(&mut self, cx: &mut Context<'_>) {
        self.start(cx);
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        match &mut self.phase {
            Phase::GetHeader(reader) => {
                let consumed = reader.handle_bytes(bytes);
                match reader.poll_event() {
                    Ok(Some(header)) => self.header(cx, header, &bytes[consumed..]),
                    Err(e) => self.fail(cx, format!("bad reply: {e}")),
                    Ok(None) => {}
                }
            }
            Phase::Body(_) => self.body(cx, bytes),
            Phase::Upload { reply, out } => {
                reader_line(reply, bytes);
                let sending = out.is_some();
                match reply.poll_event() {
                    Ok(Some(Reply::Ok(stored))) if !sending => {
                        self.finish(cx, Outcome::Stored(stored))
                    }
                    Ok(Some(Reply::Ok(_))) => {
                        self.fail(cx, "the server answered before the upload ended".into())
                    }
                    Ok(Some(Reply::Error { message })) => {
                        self.fail(cx, format!("server: {message}"))
                    }
                    Err(e) => self.fail(cx, format!("bad reply: {e}")),
                    Ok(None) => {}
                }
            }
            Phase::ListReply(reader) => {
                reader_line(reader, bytes);
                match reader.poll_event() {
                    Ok(Some(Reply::Ok(listing))) => {
                        self.finish(cx, Outcome::Listing(listing.files))
                    }
                    Ok(Some(Reply::Error { message })) => {
                        self.fail(cx, format!("server: {message}"))
                    }
                    Err(e) => self.fail(cx, format!("bad reply: {e}")),
                    Ok(None) => {}
                }
            }
            Phase::Connecting | Phase::Finished => {}
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        let cut = "the server closed the connection before answering";
        match &mut self.phase {
            Phase::Body(rx) => match rx.handle_eof() {
                Ok(n) => {
                    self.progress.advance(n);
                    self.save(cx);
                }
                Err(e) => self.fail(cx, e.to_string()),
            },
            Phase::GetHeader(reader) => {
                reader.handle_eof();
                match reader.poll_event() {
                    Ok(Some(header)) => {
                        self.header(cx, header, &[]);
                        // The body can only be complete if it was empty.
                        if let Phase::Body(_) = self.phase {
                            self.eof(cx);
                        }
                    }
                    _ => self.fail(cx, cut.into()),
                }
            }
            Phase::Upload { reply, .. } => {
                reply.handle_eof();
                match reply.poll_event() {
                    Ok(Some(Reply::Error { message })) => {
                        self.fail(cx, format!("server: {message}"))
                    }
                    Ok(Some(Reply::Ok(stored))) => self.finish(cx, Outcome::Stored(stored)),
                    _ => self.fail(cx, cut.into()),
                }
            }
            Phase::ListReply(reader) => {
                reader.handle_eof();
                match reader.poll_event() {
                    Ok(Some(Reply::Ok(listing))) => {
                        self.finish(cx, Outcome::Listing(listing.files))
                    }
                    Ok(Some(Reply::Error { message })) => {
                        self.fail(cx, format!("server: {message}"))
                    }
                    _ => self.fail(cx, cut.into()),
                }
            }
            Phase::Connecting | Phase::Finished => cx.close(),
        }
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        let mut result = self.result.borrow_mut();
        if result.is_none() {
            let why = match reason {
                CloseReason::Reset => "the server reset the connection".to_string(),
                other => other.to_string(),
            };
            *result = Some(Outcome::Failed(why));
        }
    }
}

/// Feeds a reply reader; bytes after the reply line are ignored (the server closes after it).
fn reader_line<T: netloop_protocols::file::JsonLine>(reader: &mut JsonLineReader<T>, bytes: &[u8]) {
    let _ = reader.handle_bytes(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;

    #[test]
    fn a_get_sends_its_request_and_saves_the_verified_body() {
        let dir = tempfile::tempdir().expect("dir");
        let result = Rc::new(RefCell::new(None));
        let job = Job::Get {
            name: "a.txt".into(),
            encoding: Encoding::Raw,
            to: Destination::Dir(dir.path().to_path_buf()),
            force: false,
            verify: true,
        };
        let mut bed = TestBed::new();
        let conn = bed.open(Box::new(FileClient::new(
            job,
            result.clone(),
            Box::new(NoProgress),
        )));
        assert_eq!(
            bed.take_output(conn),
            b"{\"op\":\"get\",\"filename\":\"a.txt\",\"encoding\":\"raw\"}\n"
        );
        let digest = Sha256Digest::of(b"hello\n");
        let header = format!(
            "{{\"status\":\"ok\",\"filename\":\"a.txt\",\"size\":6,\"sha256\":\"{digest}\",\"encoding\":\"raw\"}}\nhel"
        );
        bed.data(conn, header.as_bytes());
        assert!(result.borrow().is_none(), "half the body");
        bed.data(conn, b"lo\n");
        let outcome = result.borrow_mut().take();
        let Some(Outcome::Saved(saved)) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(saved.sha256, Some(digest));
        assert_eq!(std::fs::read(saved.path).expect("saved"), b"hello\n");
    }

    #[test]
    fn a_server_error_is_reported_as_the_servers() {
        let result = Rc::new(RefCell::new(None));
        let mut bed = TestBed::new();
        let conn = bed.open(Box::new(FileClient::new(
            Job::List,
            result.clone(),
            Box::new(NoProgress),
        )));
        assert_eq!(bed.take_output(conn), b"{\"op\":\"list\"}\n");
        bed.data(
            conn,
            b"{\"status\":\"error\",\"message\":\"disk on fire\"}\n",
        );
        assert_eq!(
            result.borrow_mut().take(),
            Some(Outcome::Failed("server: disk on fire".into()))
        );
        assert!(bed.is_closing(conn));
    }
}
