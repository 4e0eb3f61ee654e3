//! The two file servers: lesson mode (one file, the lesson's document, to whoever
//! connects) and request mode (`get`, `put`, `list` over a directory).
//!
//! # Lesson mode ([`LessonServer`])
//!
//! ```text
//! opened   open the file, queue the JSON prefix and the first chunk of base64
//! drained  queue the next chunk; after the last, the closing "} and close
//! data     ignored (the lesson's server never reads)
//! ```
//!
//! # Request mode ([`RequestServer`]), one request per connection
//!
//! ```text
//! phase      input                       next        writes
//! Request    a line: get (digest known)  Sending     header line, first chunk
//! Request    a line: get (digest new)    Hashing     -
//! Request    a line: put                 Receiving   - (the body follows)
//! Request    a line: list                Done        the listing; close
//! Request    a bad line / bad name       Done        {"status":"error",...}; close
//! Hashing    timer: 1 MiB hashed         Hashing     -
//! Hashing    timer: file hashed          Sending     header line, first chunk
//! Sending    drained                     Sending     next chunk; after the last: close
//! Receiving  body bytes                  Receiving   -
//! Receiving  body complete and checked   Done        {"status":"ok",...}; close
//! Receiving  bad body / EOF / disk error Done        {"status":"error",...}; close
//! ```
//!
//! A `get` announces the file's SHA-256 before its first byte, so the server must read the
//! file once before sending it. Hashing a large file in one callback would stall every
//! other connection (SHA-256 runs at about 2 GB/s here: half a second per GiB), so it
//! hashes [`HASH_STEP`] per tick, on a timer that is due immediately, and remembers the
//! digest for the next `get` of the same version of the file.

use super::incoming::Incoming;
use super::outgoing::{Outgoing, Step};
use super::receive::{ReceiveError, Received, Receiver};
use super::store::{FileId, Store};
use crate::reactor::{CloseReason, Context, Handler, ListenOptions, Report, TimerId};
use crate::services::disk::Disk;
use log::{info, warn};
use netloop_protocols::file::{
    Encoding, FileHeader, Listing, Reply, Request, RequestReader, Sha256Digest, Stored, write_error,
};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Bytes hashed per tick while preparing a `get`: about half a millisecond of SHA-256, so
/// other connections wait at most that long between two steps.
pub const HASH_STEP: usize = 1 << 20;

/// A request-mode connection with no byte moving either way for this long is closed: a
/// client that connected and never asked costs a descriptor. One minute is generous for a
/// person typing a request into `nc`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The timer that drives hashing. Due "immediately" means one nanosecond after this tick,
/// so it fires on the next tick, after the reactor has served everything else that is ready.
const HASH_TIMER: TimerId = TimerId(1);
const NEXT_TICK: Duration = Duration::from_nanos(1);

/// What every connection of a request-mode server shares: the directory and one scratch
/// buffer (the reactor runs one callback at a time, so one buffer serves all connections).
#[derive(Debug)]
pub struct FileService {
    /// The served directory.
    pub store: Store,
    /// Where an upload's fsync and rename run, off the loop.
    pub disk: Disk,
    scratch: Vec<u8>,
}

impl FileService {
    /// A service over `store`, ready to hand to [`RequestServer::factory`], with a disk
    /// thread of its own.
    pub fn shared(store: Store) -> Rc<RefCell<FileService>> {
        FileService::shared_on(store, Disk::new())
    }

    /// The same, its uploads committed on `disk`'s thread (shared with other services).
    pub fn shared_on(store: Store, disk: Disk) -> Rc<RefCell<FileService>> {
        Rc::new(RefCell::new(FileService {
            store,
            disk,
            scratch: Vec::new(),
        }))
    }
}

/// The listener options for request mode: an idle timeout.
pub fn listen_options() -> ListenOptions {
    ListenOptions {
        idle_timeout: Some(IDLE_TIMEOUT),
    }
}

/// The file lesson mode sends, and the name the document gives it.
#[derive(Debug, Clone)]
pub struct LessonFile {
    /// Where it is on disk.
    pub path: PathBuf,
    /// The `filename` in the document (the path's last component).
    pub name: String,
}

/// One lesson-mode connection: sends the document, closes.
pub struct LessonServer {
    file: Rc<LessonFile>,
    scratch: Rc<RefCell<Vec<u8>>>,
    out: Option<Outgoing>,
}

impl LessonServer {
    /// The factory to pass to [`Reactor::listen`](crate::reactor::Reactor::listen).
    pub fn factory(file: LessonFile) -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        let file = Rc::new(file);
        let scratch = Rc::new(RefCell::new(Vec::new()));
        move |_peer| {
            Box::new(LessonServer {
                file: file.clone(),
                scratch: scratch.clone(),
                out: None,
            })
        }
    }

    fn pump(&mut self, cx: &mut Context<'_>) {
        let (Some(outgoing), Some(out)) = (&mut self.out, cx.output()) else {
            return;
        };
        match outgoing.poll_transmit(&mut self.scratch.borrow_mut(), out) {
            Ok(Step::More(_)) => {}
            Ok(Step::Done(_)) => {
                self.out = None;
                cx.close();
            }
            Err(e) => {
                // The document stays unfinished: the client reports a transfer cut short.
                warn!("{}: {e}", self.file.path.display());
                self.out = None;
                cx.close();
            }
        }
    }
}

impl Handler for LessonServer {
    fn state_name(&self) -> &'static str {
        "Sending"
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        let opened = File::open(&self.file.path).and_then(|f| Ok((f.metadata()?.len(), f)));
        match opened {
            Ok((size, file)) => {
                self.out = Some(Outgoing::new(file, size, Encoding::Base64, &self.file.name));
                self.pump(cx);
            }
            Err(e) => {
                warn!("cannot open {}: {e}", self.file.path.display());
                cx.close();
            }
        }
    }

    /// The lesson's server never reads: whatever the client sends is ignored.
    fn data(&mut self, _cx: &mut Context<'_>, _bytes: &[u8]) {}

    /// A client that half-closes still gets the whole document.
    fn eof(&mut self, _cx: &mut Context<'_>) {}

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    /// A transfer under way may finish within the shutdown grace period.
    fn shutdown(&mut self, cx: &mut Context<'_>) {
        if self.out.is_none() {
            cx.close();
        }
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        if let Some(o) = &self.out {
            info!(
                "{}: sending {} stopped after {} of {} bytes: {reason}",
                peer(cx),
                self.file.name,
                o.sent(),
                o.size()
            );
        }
    }
}

enum Phase {
    Request(RequestReader),
    Hashing {
        name: String,
        file: File,
        id: FileId,
        size: u64,
        hasher: Box<Sha256>,
        hashed: u64,
        encoding: Encoding,
    },
    Sending {
        name: String,
        out: Outgoing,
    },
    Receiving {
        name: String,
        rx: Box<Receiver>,
    },
    /// The upload is complete and checked; the disk thread fsyncs it and gives it its name.
    Committing {
        name: String,
    },
    Done,
}

/// One request-mode connection.
pub struct RequestServer {
    shared: Rc<RefCell<FileService>>,
    phase: Phase,
}

impl RequestServer {
    /// The factory to pass to [`Reactor::listen_with`](crate::reactor::Reactor::listen_with)
    /// (with [`listen_options`]).
    pub fn factory(shared: Rc<RefCell<FileService>>) -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        move |_peer| {
            Box::new(RequestServer {
                shared: shared.clone(),
                phase: Phase::Request(RequestReader::new()),
            })
        }
    }

    /// Answers with an error line and closes.
    fn fail(&mut self, cx: &mut Context<'_>, message: &str) {
        info!("{}: error: {message}", peer(cx));
        if let Some(out) = cx.output() {
            write_error(message, out);
        }
        self.phase = Phase::Done;
        cx.close();
    }

    fn handle_request(&mut self, cx: &mut Context<'_>, request: Request) {
        match request {
            Request::List => {
                let listed = self.shared.borrow().store.list();
                match listed {
                    Ok(files) => {
                        if let Some(out) = cx.output() {
                            Reply::Ok(Listing { files }).write_line(out);
                        }
                        self.phase = Phase::Done;
                        cx.close();
                    }
                    Err(e) => self.fail(cx, &format!("cannot list the directory: {e}")),
                }
            }
            Request::Get { filename, encoding } => self.start_get(cx, filename, encoding),
            Request::Put {
                filename,
                size,
                sha256,
                encoding,
            } => self.start_put(cx, filename, size, sha256, encoding),
        }
    }

    fn start_get(&mut self, cx: &mut Context<'_>, name: String, encoding: Encoding) {
        let opened = self.shared.borrow().store.open_file(&name);
        let (file, meta) = match opened {
            Ok(pair) => pair,
            Err(e) => return self.fail(cx, &e.to_string()),
        };
        let id = FileId::of(&meta);
        let cached = self.shared.borrow().store.cached_digest(&name, id);
        match cached {
            Some(digest) => self.start_sending(cx, name, file, meta.len(), digest, encoding),
            None => {
                self.phase = Phase::Hashing {
                    name,
                    file,
                    id,
                    size: meta.len(),
                    hasher: Box::default(),
                    hashed: 0,
                    encoding,
                };
                cx.set_timer(HASH_TIMER, NEXT_TICK);
            }
        }
    }

    /// One step of hashing a file before a `get`.
    fn hash_step(&mut self, cx: &mut Context<'_>) {
        let Phase::Hashing {
            file,
            hasher,
            hashed,
            size,
            ..
        } = &mut self.phase
        else {
            return;
        };
        let mut shared = self.shared.borrow_mut();
        let scratch = &mut shared.scratch;
        scratch.clear();
        let want = (*size - *hashed).min(HASH_STEP as u64);
        let read = file.take(want).read_to_end(scratch);
        let result = match read {
            Ok(n) if (n as u64) < want => Err(format!(
                "the file shrank while being read: {} of {size} bytes",
                *hashed + n as u64
            )),
            Ok(n) => {
                hasher.update(&scratch[..n]);
                *hashed += n as u64;
                Ok(*hashed == *size)
            }
            Err(e) => Err(format!("reading the file failed: {e}")),
        };
        drop(shared);
        match result {
            Ok(false) => cx.set_timer(HASH_TIMER, NEXT_TICK),
            Ok(true) => {
                let Phase::Hashing {
                    name,
                    mut file,
                    id,
                    size,
                    hasher,
                    encoding,
                    ..
                } = std::mem::replace(&mut self.phase, Phase::Done)
                else {
                    return;
                };
                let digest = Sha256Digest(hasher.finalize().into());
                self.shared
                    .borrow_mut()
                    .store
                    .remember_digest(&name, id, digest);
                match file.rewind() {
                    Ok(()) => self.start_sending(cx, name, file, size, digest, encoding),
                    Err(e) => self.fail(cx, &format!("reading the file failed: {e}")),
                }
            }
            Err(message) => self.fail(cx, &message),
        }
    }

    fn start_sending(
        &mut self,
        cx: &mut Context<'_>,
        name: String,
        file: File,
        size: u64,
        sha256: Sha256Digest,
        encoding: Encoding,
    ) {
        let Some(out) = cx.output() else { return };
        Reply::Ok(FileHeader {
            filename: name.clone(),
            size,
            sha256,
            encoding,
        })
        .write_line(out);
        let out = Outgoing::new(file, size, encoding, &name);
        self.phase = Phase::Sending { name, out };
        self.pump(cx);
    }

    fn pump(&mut self, cx: &mut Context<'_>) {
        let Phase::Sending {
            name,
            out: outgoing,
        } = &mut self.phase
        else {
            return;
        };
        let Some(out) = cx.output() else { return };
        let mut shared = self.shared.borrow_mut();
        match outgoing.poll_transmit(&mut shared.scratch, out) {
            Ok(Step::More(_)) => {}
            Ok(Step::Done(_)) => {
                info!("{}: sent {name} ({} bytes)", peer(cx), outgoing.size());
                drop(shared);
                self.phase = Phase::Done;
                cx.close();
            }
            Err(e) => {
                // The header is out: all we can do is stop, and the client's size and
                // checksum checks report a transfer cut short.
                warn!("{}: sending {name}: {e}", peer(cx));
                drop(shared);
                self.phase = Phase::Done;
                cx.close();
            }
        }
    }

    fn start_put(
        &mut self,
        cx: &mut Context<'_>,
        name: String,
        size: u64,
        sha256: Sha256Digest,
        encoding: Encoding,
    ) {
        let shared = self.shared.borrow();
        let store = &shared.store;
        if size > store.max_upload {
            let limit = store.max_upload;
            drop(shared);
            return self.fail(
                cx,
                &format!("{name} is too large: {size} bytes, the upload limit is {limit}"),
            );
        }
        if !store.force && store.path(&name).exists() {
            drop(shared);
            return self.fail(
                cx,
                &format!("{name} already exists (not replaced: the server runs without --force)"),
            );
        }
        let incoming = Incoming::create(store.dir());
        drop(shared);
        match incoming {
            Ok(incoming) => {
                let raw = encoding == Encoding::Raw;
                let rx = Receiver::announced(incoming, &name, size, sha256, raw);
                self.phase = Phase::Receiving {
                    name,
                    rx: Box::new(rx),
                };
                // An empty raw file is complete before any body byte.
                self.receive(cx, &[]);
            }
            Err(e) => self.fail(cx, &format!("disk error: {e}")),
        }
    }

    fn receive(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let Phase::Receiving { rx, .. } = &mut self.phase else {
            return;
        };
        if let Err(e) = rx.handle_bytes(bytes) {
            return self.fail(cx, &e.to_string());
        }
        if rx.is_complete() {
            self.store_upload(cx);
        }
    }

    /// Hands the complete upload to the disk thread: its fsync, rename and directory fsync
    /// would stop the loop for as long as the disk takes. The answer comes in `notified`.
    fn store_upload(&mut self, cx: &mut Context<'_>) {
        let Phase::Receiving { name, rx } = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        let (force, disk) = {
            let shared = self.shared.borrow();
            (shared.store.force, shared.disk.clone())
        };
        self.phase = Phase::Committing { name };
        disk.run(cx.notifier(), move || rx.commit(force));
    }

    /// The disk thread's answer for [`store_upload`](Self::store_upload).
    fn committed(&mut self, cx: &mut Context<'_>, result: Result<Received, ReceiveError>) {
        let Phase::Committing { name } = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        match result {
            Ok(received) => {
                info!("{}: stored {name} ({} bytes)", peer(cx), received.size);
                if let (Some(digest), Ok(meta)) = (received.sha256, received.path.metadata()) {
                    self.shared.borrow_mut().store.remember_digest(
                        &name,
                        FileId::of(&meta),
                        digest,
                    );
                }
                if let Some(out) = cx.output() {
                    Reply::Ok(Stored {
                        filename: name,
                        size: received.size,
                    })
                    .write_line(out);
                }
                cx.close();
            }
            Err(e) => self.fail(cx, &e.to_string()),
        }
    }
}

impl Handler for RequestServer {
    fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Request(_) => "ReadingRequest",
            Phase::Hashing { .. } => "Hashing",
            Phase::Sending { .. } => "Sending",
            Phase::Receiving { .. } => "Receiving",
            Phase::Committing { .. } => "Committing",
            Phase::Done => "Done",
        }
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        match &mut self.phase {
            Phase::Request(reader) => {
                let consumed = reader.handle_bytes(bytes);
                match reader.poll_line() {
                    Some(Ok(request)) => {
                        self.handle_request(cx, request);
                        // A put's body may have come in the same read as its request.
                        self.receive(cx, &bytes[consumed..]);
                    }
                    Some(Err(e)) => self.fail(cx, &e.to_string()),
                    None => {}
                }
            }
            Phase::Receiving { .. } => self.receive(cx, bytes),
            // One request per connection: anything after it (a stray newline) is ignored.
            Phase::Hashing { .. }
            | Phase::Sending { .. }
            | Phase::Committing { .. }
            | Phase::Done => {}
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        match &mut self.phase {
            Phase::Request(reader) => {
                // `printf '{"op":"list"}' | nc ...`: a last line without LF still counts.
                reader.handle_eof();
                match reader.poll_line() {
                    Some(Ok(request)) => {
                        self.handle_request(cx, request);
                        // A put whose body can never come: say so now.
                        if let Phase::Receiving { .. } = self.phase {
                            self.eof(cx);
                        }
                    }
                    // The client left without asking: nothing to say.
                    Some(Err(netloop_protocols::file::LineError::Closed)) | None => cx.close(),
                    Some(Err(e)) => self.fail(cx, &e.to_string()),
                }
            }
            Phase::Receiving { rx, .. } => match rx.handle_eof() {
                Ok(_) if rx.is_complete() => self.store_upload(cx),
                Ok(_) => self.fail(cx, "the upload ended early"),
                Err(e) => self.fail(cx, &e.to_string()),
            },
            // A client that half-closes after its request still gets the whole file, and
            // one that half-closes after its upload still hears whether it was stored.
            Phase::Hashing { .. } | Phase::Sending { .. } | Phase::Committing { .. } => {}
            Phase::Done => cx.close(),
        }
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        if id == HASH_TIMER {
            self.hash_step(cx);
        }
    }

    fn notified(&mut self, cx: &mut Context<'_>, report: Report) {
        if let Ok(result) = report.downcast::<Result<Received, ReceiveError>>() {
            self.committed(cx, *result);
        }
    }

    /// A transfer under way (either way) may finish within the shutdown grace period; an
    /// idle connection is closed.
    fn shutdown(&mut self, cx: &mut Context<'_>) {
        match self.phase {
            Phase::Hashing { .. }
            | Phase::Sending { .. }
            | Phase::Receiving { .. }
            | Phase::Committing { .. } => {}
            Phase::Request(_) | Phase::Done => cx.close(),
        }
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        match &self.phase {
            Phase::Sending { name, out } => info!(
                "{}: sending {name} stopped after {} of {} bytes: {reason}",
                peer(cx),
                out.sent(),
                out.size()
            ),
            Phase::Receiving { name, rx } => info!(
                "{}: upload of {name} abandoned after {} bytes: {reason}",
                peer(cx),
                rx.written()
            ),
            _ => {}
        }
    }
}

fn peer(cx: &Context<'_>) -> String {
    cx.peer_addr()
        .map_or_else(|| "file".to_string(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;
    use netloop_protocols::file::JsonBase64Encoder;
    /// Generous bound for the disk thread's report on a loaded machine.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    fn service(dir: &std::path::Path) -> Rc<RefCell<FileService>> {
        FileService::shared(Store::open(dir).expect("store"))
    }

    fn open(bed: &mut TestBed, shared: &Rc<RefCell<FileService>>) -> crate::reactor::Token {
        let mut factory = RequestServer::factory(shared.clone());
        bed.open(factory("127.0.0.1:1".parse().expect("addr")))
    }

    #[test]
    fn lesson_mode_writes_the_document_and_closes_without_reading() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("hi.txt");
        std::fs::write(&path, b"hi\n").expect("write");
        let mut factory = LessonServer::factory(LessonFile {
            path,
            name: "hi.txt".into(),
        });
        let mut bed = TestBed::new();
        let conn = bed.open(factory("127.0.0.1:1".parse().expect("addr")));
        bed.data(conn, b"ignored");
        assert!(bed.is_closing(conn));
        assert_eq!(
            bed.take_output(conn),
            br#"{"filename": "hi.txt", "filedata": "aGkK"}"#
        );
        assert!(bed.is_closed(conn));
    }

    #[test]
    fn a_get_hashes_on_the_timer_then_sends_header_and_body() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("a.txt"), b"hello\n").expect("write");
        let shared = service(dir.path());
        let mut bed = TestBed::new();
        let conn = open(&mut bed, &shared);
        bed.data(
            conn,
            b"{\"op\":\"get\",\"filename\":\"a.txt\",\"encoding\":\"raw\"}\n",
        );
        assert!(bed.take_output(conn).is_empty(), "hashing first");
        bed.advance(NEXT_TICK);
        let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
        let digest = Sha256Digest::of(b"hello\n");
        assert_eq!(
            out,
            format!(
                "{{\"status\":\"ok\",\"filename\":\"a.txt\",\"size\":6,\"sha256\":\"{digest}\",\"encoding\":\"raw\"}}\nhello\n"
            )
        );
        assert!(bed.is_closed(conn));

        // The digest is remembered: the next get sends at once, here the lesson's document.
        let conn = open(&mut bed, &shared);
        bed.data(conn, b"{\"op\":\"get\",\"filename\":\"a.txt\"}\n");
        let out = bed.take_output(conn);
        assert!(out.ends_with(br#"{"filename": "a.txt", "filedata": "aGVsbG8K"}"#));
    }

    #[test]
    fn a_put_in_the_same_read_as_its_request_is_stored_and_answered() {
        let dir = tempfile::tempdir().expect("dir");
        let shared = service(dir.path());
        let mut bed = TestBed::new();
        let conn = open(&mut bed, &shared);
        let mut doc = Vec::new();
        let mut encoder = JsonBase64Encoder::new("up.txt", 3);
        encoder.poll_transmit(b"abc", &mut doc).expect("size");
        encoder.finish(&mut doc).expect("size");
        let digest = Sha256Digest::of(b"abc");
        let request = format!(
            "{{\"op\":\"put\",\"filename\":\"up.txt\",\"size\":3,\"sha256\":\"{digest}\"}}\n"
        );
        bed.data(conn, &[request.as_bytes(), &doc].concat());
        assert!(
            bed.take_output(conn).is_empty(),
            "no answer before the disk's"
        );
        // The fsync and rename run on the disk thread, which reports back.
        assert_eq!(bed.deliver_reports(PATIENCE), 1);
        assert_eq!(
            bed.take_output(conn),
            b"{\"status\":\"ok\",\"filename\":\"up.txt\",\"size\":3}\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("up.txt")).expect("stored"),
            b"abc"
        );
    }

    #[test]
    fn a_list_and_a_bad_line_get_one_line_each() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("a.txt"), b"a").expect("write");
        let shared = service(dir.path());
        let mut bed = TestBed::new();
        let conn = open(&mut bed, &shared);
        bed.data(conn, b"{\"op\":\"li");
        bed.data(conn, b"st\"}\n");
        assert_eq!(
            bed.take_output(conn),
            b"{\"status\":\"ok\",\"files\":[{\"name\":\"a.txt\",\"size\":1}]}\n"
        );
        let conn = open(&mut bed, &shared);
        bed.data(conn, b"{\"op\":\"get\",\"filename\":\"../a.txt\"}\n");
        let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
        assert!(
            out.starts_with("{\"status\":\"error\",\"message\":\"bad file name"),
            "{out}"
        );
        assert!(bed.is_closed(conn));
    }
}
