//! What the slab holds: one [`Entry`] per listener, TCP connection, UDP socket or stdin.
//!
//! An entry's life (connecting, handshaking, open, closing, lingering, gone) is the state
//! machine of `lifecycle.rs`; the fields here are what that machine and the I/O loops keep.

use super::Token;
use super::buffer::OutQueue;
use super::handler::Handler;
use super::lifecycle::State;
use super::mmsg::SendQueue;
use super::timer::Slot;
use super::tls::{PendingTls, ServerTls};
use super::transport::Transport;
use mio::Interest;
use mio::net::{TcpListener, UdpSocket};
use slab::Slab;
use std::fmt;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The slab of entries, looked up by [`Token`]: the one place that checks a token's
/// generation against the entry in its slot.
///
/// A slab key is reused as soon as an entry is removed, so a token from an old event, an
/// old timer or a handler that kept it may name a slot that now holds someone else:
/// [`get`](Entries::get) and [`get_mut`](Entries::get_mut) answer `None` for it. They are
/// methods of this field rather than of `Core` so that a caller can hold an entry and,
/// at the same time, the other fields of `Core` (`core.timers.arm(&mut e.timers, ..)`):
/// Rust splits borrows between fields, not through a method's `&mut self`.
#[derive(Default)]
pub(crate) struct Entries {
    slab: Slab<Entry>,
}

impl Entries {
    /// The live entry `token` names, or `None` if it is gone (or its slot has a new occupant).
    pub(crate) fn get(&self, token: Token) -> Option<&Entry> {
        self.slab.get(token.key()).filter(|e| e.token == token)
    }

    /// [`get`](Entries::get), to change.
    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut Entry> {
        self.slab.get_mut(token.key()).filter(|e| e.token == token)
    }

    /// The slot the next entry will take (its key goes into the new entry's token).
    pub(crate) fn vacant_entry(&mut self) -> slab::VacantEntry<'_, Entry> {
        self.slab.vacant_entry()
    }

    /// Takes the entry `token` names out of the slab. Panics if it is not there: callers
    /// look it up first.
    pub(crate) fn remove(&mut self, token: Token) -> Entry {
        let e = self.slab.remove(token.key());
        debug_assert!(e.token == token, "removed {} for {token}", e.token);
        e
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slab.iter().map(|(_, e)| e)
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }
}

/// A function that makes a handler for each accepted connection, given the peer's address.
pub(crate) type Factory = Box<dyn FnMut(SocketAddr) -> Box<dyn Handler>>;

/// The OS object behind an entry.
pub(crate) enum Io {
    // Listeners and UDP sockets are few and large; boxing them keeps every slab entry (one
    // per connection, ten thousand of them idle) at the size of the common case.
    Listener(Box<Listener>),
    /// A TCP connection, plain or TLS.
    Stream(Transport),
    Udp(Box<Udp>),
    Stdin(Stdin),
    /// No socket at all: a connection of a [`TestBed`](super::testing::TestBed).
    Detached,
    /// No socket either: a task ([`Reactor::spawn`](super::Reactor::spawn)), whose handler
    /// lives on timers, name lookups and the connections it opens.
    Task,
}

/// Which kind of [`Io`] an entry has, without borrowing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Listener,
    Stream,
    Udp,
    Stdin,
    Detached,
    Task,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Listener => "listener",
            Source::Stream => "tcp",
            Source::Udp => "udp",
            Source::Stdin => "stdin",
            Source::Detached => "detached",
            Source::Task => "task",
        })
    }
}

impl Io {
    pub(crate) fn source(&self) -> Source {
        match self {
            Io::Listener(_) => Source::Listener,
            Io::Stream(_) => Source::Stream,
            Io::Udp(_) => Source::Udp,
            Io::Stdin(_) => Source::Stdin,
            Io::Detached => Source::Detached,
            Io::Task => Source::Task,
        }
    }
}

pub(crate) struct Listener {
    pub sock: TcpListener,
    pub factory: Factory,
    pub idle_timeout: Option<Duration>,
    /// TLS from the first byte: the certificate accepted connections handshake with.
    pub tls: Option<ServerTls>,
    /// Not accepting (connection limit reached, or the fd limit): see `Core::resume_listeners`.
    pub paused: bool,
    /// Connections accepted here and still open.
    pub open: usize,
    /// `ListenOptions::max_connections`.
    pub max_connections: Option<usize>,
    /// `ListenOptions::reserved`, as granted (see `Core::reserve`).
    pub reserved: usize,
}

pub(crate) struct Udp {
    pub sock: UdpSocket,
    /// Datagrams queued by the handler, sent in batches when the entry is settled (and,
    /// if the send buffer was full, when the socket becomes writable).
    pub queue: SendQueue,
}

/// Standard input as an event source, for interactive clients.
pub(crate) struct Stdin {
    /// fd 0 as a `File`, never closed: `ManuallyDrop` keeps its destructor from running.
    pub file: ManuallyDrop<File>,
    /// The file status flags before we set `O_NONBLOCK`, restored on drop: stdin's open
    /// file description is shared with the shell, which expects blocking reads back.
    pub saved_flags: libc::c_int,
    /// False when epoll refuses the fd (a regular file or /dev/null: always readable). Such
    /// stdin is read on the ready queue, a budget per tick, until EOF.
    pub pollable: bool,
}

impl Drop for Stdin {
    fn drop(&mut self) {
        // SAFETY: fcntl(F_SETFL) on fd 0 with flags read from the same fd; no memory is
        // involved. Failure is harmless (the flags stay as they are).
        unsafe {
            libc::fcntl(0, libc::F_SETFL, self.saved_flags);
        }
    }
}

/// One slab entry.
pub(crate) struct Entry {
    /// Its own token (slab key and generation), for calls that only have the entry.
    pub token: Token,
    /// The service's name, for traces (`time#4.1`).
    pub service: Rc<str>,
    /// The OS object: a listener, a TCP stream (plain or TLS), a UDP socket, stdin, or
    /// none at all (a task, a test bed's connection).
    pub io: Io,
    /// Taken out while one of its callbacks runs.
    pub handler: Option<Box<dyn Handler>>,
    /// Bytes the handler queued and the kernel has not taken yet (flushed in `settle`).
    pub out: OutQueue,
    /// Where it is in its life: connecting, handshaking, open, closing, lingering
    /// (`lifecycle.rs`).
    pub state: State,
    /// The peer closed its side (read returned 0).
    pub peer_eof: bool,
    /// Backpressure: the output queue passed the high-water mark; reading stops until it
    /// falls below the low-water mark.
    pub read_paused: bool,
    /// The handler paused its own reading ([`Context::pause_reading`](super::Context)).
    /// Kept apart from `read_paused` so that the end of backpressure does not undo it.
    pub handler_paused: bool,
    /// What epoll currently watches for this fd.
    pub registered: Option<Interest>,
    /// Its armed timers (idle, linger, handshake, the handler's own): which heap entries
    /// in `Core::timers` still count, so a re-armed timer leaves no second firing.
    pub timers: Vec<Slot>,
    /// Already in `Core::dirty`.
    pub dirty: bool,
    /// Already in `Core::ready`.
    pub in_ready: bool,
    /// Drop at the next settle, output and all.
    pub aborted: bool,
    /// Call the handler's `drained` at the next settle even if the queue was empty.
    pub drain_requested: bool,
    /// Close after this long without a byte moving either way (from its listener's
    /// `ListenOptions`).
    pub idle_timeout: Option<Duration>,
    /// The TLS role to take when the handshake starts: set for a TLS connect (used once
    /// connected), an accepted TLS connection, and an upgrade the handler asked for (used
    /// once the plaintext before it is flushed). Taken when the handshake begins.
    pub tls: Option<Box<PendingTls>>,
    /// Counts against `Config::max_connections` (TCP connections do).
    pub counted: bool,
    /// The listener that accepted this connection: its count goes down when this closes.
    pub listener: Option<Token>,
    /// Bytes and times of this entry, for the `/loop` page (see [`Meter`]).
    pub meter: Meter,
}

/// What one entry has moved, and when: 24 bytes, kept for every connection because they
/// are cheaper to keep (two additions and a store per read or write) than to be unable
/// to show. Times are milliseconds since the reactor started, which fits 49 days in a
/// `u32`; the `/loop` page shows ages and idle times, never dates.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Meter {
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// When the entry was made.
    pub opened_ms: u32,
    /// When a byte last moved either way (or the entry was made).
    pub active_ms: u32,
}

impl Entry {
    pub(crate) fn new(token: Token, service: Rc<str>, io: Io, state: State) -> Entry {
        Entry {
            token,
            service,
            io,
            handler: None,
            out: OutQueue::default(),
            state,
            peer_eof: false,
            read_paused: false,
            handler_paused: false,
            registered: None,
            timers: Vec::new(),
            dirty: false,
            in_ready: false,
            aborted: false,
            drain_requested: false,
            idle_timeout: None,
            tls: None,
            counted: false,
            listener: None,
            meter: Meter::default(),
        }
    }

    /// Should the reactor read from this entry now?
    pub(crate) fn wants_read(&self) -> bool {
        match self.state {
            // A TLS upgrade was asked for: what follows on the wire is the peer's handshake,
            // read by the TLS layer once the plaintext before it is flushed.
            State::Open => {
                !self.peer_eof && !self.read_paused && !self.handler_paused && self.tls.is_none()
            }
            State::Lingering => true,
            State::Connecting | State::Handshaking { .. } | State::Closing | State::Closed => false,
        }
    }
}

/// `service#key.generation` in traces and logs.
pub(crate) struct Who<'a>(pub &'a str, pub Token);

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.0, self.1)
    }
}

/// Interest as a learner reads it: `R`, `W`, `RW`.
pub(crate) struct ShowInterest(pub Option<Interest>);

impl fmt::Display for ShowInterest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => write!(f, "-"),
            Some(i) => {
                if i.is_readable() {
                    write!(f, "R")?;
                }
                if i.is_writable() {
                    write!(f, "W")?;
                }
                Ok(())
            }
        }
    }
}
