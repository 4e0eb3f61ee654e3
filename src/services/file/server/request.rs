//! Request mode ([`RequestServer`]): one request per connection, `get`, `put` or `list`,
//! over the directory of the [`FileService`] that all its connections share. Lesson mode
//! is in `lesson.rs`, beside this file.
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

use super::peer;
use crate::reactor::{CloseReason, Context, Handler, ListenOptions, Report, TimerId};
use crate::services::disk::Disk;
use crate::services::file::incoming::Incoming;
use crate::services::file::outgoing::{Outgoing, Step};
use crate::services::file::receive::{ReceiveError, Received, Receiver};
use crate::services::file::store::{FileId, Store};
use log::{info, warn};
use netloop_protocols::file::{
    Encoding, FileHeader, Listing, Reply, Request, RequestReader, Sha256Digest, Stored, write_error,
};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek};
use std::net::SocketAddr;
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
pub(super) const NEXT_TICK: Duration = Duration::from_nanos(1);

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
        ..ListenOptions::default()
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

impl std::fmt::Debug for RequestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestServer")
            .field("state", &self.state_name())
            .finish_non_exhaustive()
    }
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
                match reader.poll_event() {
                    Ok(Some(request)) => {
                        self.handle_request(cx, request);
                        // A put's body may have come in the same read as its request.
                        self.receive(cx, &bytes[consumed..]);
                    }
                    Err(e) => self.fail(cx, &e.to_string()),
                    Ok(None) => {}
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
                match reader.poll_event() {
                    Ok(Some(request)) => {
                        self.handle_request(cx, request);
                        // A put whose body can never come: say so now.
                        if let Phase::Receiving { .. } = self.phase {
                            self.eof(cx);
                        }
                    }
                    // The client left without asking: nothing to say.
                    Err(netloop_protocols::file::LineError::Closed) | Ok(None) => cx.close(),
                    Err(e) => self.fail(cx, &e.to_string()),
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
