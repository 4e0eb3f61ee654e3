//! The reactor's state apart from `Poll` itself: the slab, timers, buffers and counters.
//!
//! A [`Context`] borrows the `Core` while a handler runs, so everything a handler may ask
//! for (write, close, arm a timer, write to another connection, open a connection) is a
//! method here. Nothing here waits for readiness; the loop in `mod.rs` does that.

use super::buffer::BufPool;
use super::config::{Config, UDP_BACKLOG_MAX};
use super::entry::{Entry, Io, ShowInterest, State, Who};
use super::handler::{CloseReason, Handler};
use super::timer::{Kind, Timers};
use super::{Context, Stats, Token};
use log::{debug, trace};
use mio::{Interest, Registry};
use slab::Slab;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

/// Bytes one connection may write in one `settle` when its handler keeps refilling the
/// queue from `drained` (a file being streamed); then it yields to the others until the
/// next tick. Twice the read budget's order: writing is the cheaper direction.
const WRITE_BUDGET: usize = 1024 * 1024;

pub(crate) struct Core {
    pub entries: Slab<Entry>,
    pub generations: super::token::Generations,
    pub timers: Timers,
    pub pool: BufPool,
    pub registry: Registry,
    /// Entries whose output, interest or state may have changed since they were settled.
    pub dirty: Vec<Token>,
    /// Entries to service next tick without waiting for an event (budget ran out, a
    /// listener resumed, stdin that epoll cannot watch).
    pub ready: VecDeque<Token>,
    pub stats: Stats,
    pub config: Config,
    /// The time of the current tick: read once after `poll` returns.
    pub now: Instant,
    /// Listeners paused at the connection limit, resumed when a connection closes.
    pub paused_listeners: Vec<Token>,
    /// A handler asked for the reactor to shut down.
    pub shutdown_requested: bool,
    /// Set once a shutdown has begun: the moment remaining connections are dropped.
    pub shutdown_deadline: Option<Instant>,
}

impl Core {
    pub(crate) fn new(registry: Registry, config: Config) -> Core {
        Core {
            entries: Slab::new(),
            generations: super::token::Generations::new(),
            timers: Timers::default(),
            pool: BufPool::default(),
            registry,
            dirty: Vec::new(),
            ready: VecDeque::new(),
            stats: Stats::default(),
            config,
            now: Instant::now(),
            paused_listeners: Vec::new(),
            shutdown_requested: false,
            shutdown_deadline: None,
        }
    }

    /// The live entry `token` names, or `None` if it is gone (or its slot has a new occupant).
    pub(crate) fn get(&self, token: Token) -> Option<&Entry> {
        entry(&self.entries, token)
    }

    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut Entry> {
        entry_mut(&mut self.entries, token)
    }

    /// Puts a new entry in the slab and registers its source with `interest`.
    pub(crate) fn insert(
        &mut self,
        service: Rc<str>,
        mut io: Io,
        state: State,
        interest: Option<Interest>,
        handler: Option<Box<dyn Handler>>,
    ) -> io::Result<Token> {
        let slot = self.entries.vacant_entry();
        let token = Token::new(slot.key(), self.generations.next());
        if let Some(interest) = interest {
            register(&self.registry, &mut io, token, interest)?;
        }
        let mut entry = Entry::new(token, service, io, state);
        entry.registered = interest;
        entry.handler = handler;
        if matches!(entry.io, Io::Stream(_)) {
            entry.counted = true;
            self.stats.open_connections += 1;
            self.stats.total_connections += 1;
        }
        slot.insert(entry);
        Ok(token)
    }

    /// Queues `token` to be serviced next tick without an event (once, however often asked).
    pub(crate) fn push_ready(&mut self, token: Token) {
        if let Some(e) = self.get_mut(token) {
            if !e.in_ready {
                e.in_ready = true;
                self.ready.push_back(token);
            }
        }
    }

    pub(crate) fn mark_dirty(&mut self, token: Token) {
        if let Some(e) = self.get_mut(token) {
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(token);
            }
        }
    }

    /// Runs one handler callback with a [`Context`] for `token`, then marks it dirty so the
    /// loop flushes what it wrote. Does nothing if the entry is gone or has no handler.
    pub(crate) fn call(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut dyn Handler, &mut Context<'_>),
    ) {
        let Some(mut handler) = self.get_mut(token).and_then(|e| e.handler.take()) else {
            return;
        };
        f(&mut *handler, &mut Context::new(self, token));
        if let Some(e) = self.get_mut(token) {
            e.handler = Some(handler);
        }
        self.mark_dirty(token);
    }

    /// Arms the entry's idle timeout from now, if it has one.
    pub(crate) fn touch(&mut self, token: Token) {
        let now = self.now;
        let Some(e) = entry_mut(&mut self.entries, token) else {
            return;
        };
        if let Some(idle) = e.idle_timeout {
            self.timers
                .arm(&mut e.timers, token, Kind::Idle, now + idle);
        }
    }

    /// Moves an entry to `Closing` (idempotent): stop reading, flush, then close.
    pub(crate) fn close(&mut self, token: Token) {
        let deadline = self.now + self.config.close_timeout;
        let Some(e) = entry_mut(&mut self.entries, token) else {
            return;
        };
        if matches!(e.state, State::Open | State::Connecting) {
            trace!("  {} state {} -> Closing", Who(&e.service, token), e.state);
            e.state = State::Closing;
            // The flush gets a deadline: a peer that never reads must not pin us.
            if matches!(e.io, Io::Stream(_)) {
                self.timers
                    .arm(&mut e.timers, token, Kind::Linger, deadline);
            }
            self.mark_dirty(token);
        }
    }

    /// Drops a connection at the end of this callback, queued output and all (a slow
    /// consumer cut off, a peer that broke the protocol beyond answering).
    pub(crate) fn abort(&mut self, token: Token) {
        let Some(e) = self.get_mut(token) else { return };
        if e.state != State::Closed {
            e.aborted = true;
            self.mark_dirty(token);
        }
    }

    /// Asks for `token`'s `drained` to run in this tick's flush even if its queue is empty
    /// (see [`Context::request_drained`]).
    pub(crate) fn request_drained(&mut self, token: Token) {
        let Some(e) = self.get_mut(token) else { return };
        if e.state == State::Open {
            e.drain_requested = true;
            self.mark_dirty(token);
        }
    }

    /// Queues a datagram on a UDP entry (bounded by [`UDP_BACKLOG_MAX`]); the queue goes
    /// out in batches when the entry is settled at the end of the tick.
    pub(crate) fn send_to(&mut self, token: Token, bytes: &[u8], to: SocketAddr) {
        let Some(e) = self
            .entries
            .get_mut(token.key())
            .filter(|e| e.token == token)
        else {
            return;
        };
        let Io::Udp(udp) = &mut e.io else {
            debug!(
                "{}: send_to on a {} entry ignored",
                Who(&e.service, token),
                e.io.source()
            );
            return;
        };
        if udp.queue.bytes() + bytes.len() > UDP_BACKLOG_MAX {
            self.stats.datagrams_dropped += 1;
            return;
        }
        udp.queue.push(bytes, to);
        self.mark_dirty(token);
    }

    /// Drops the timer heap's stale entries once they outnumber the live ones (see
    /// [`Timers::compact`]). Every entry has at most a few armed slots (idle, linger, a
    /// handler's): far more heap entries than that means most are stale.
    pub(crate) fn compact_timers(&mut self) {
        if !self.timers.wants_compaction(4 * self.entries.len()) {
            return;
        }
        let before = self.timers.len();
        let entries = &self.entries;
        self.timers.compact(|token, seq| {
            entry(entries, token).is_some_and(|e| Timers::stands_for(&e.timers, seq))
        });
        trace!("timers: compacted {before} -> {}", self.timers.len());
    }

    /// Brings one entry up to date after its handler (or the kernel) changed something:
    /// flush its output, apply closing and backpressure transitions, and fix its interest.
    /// This is the one place where a connection's state moves after `Open`.
    pub(crate) fn settle(&mut self, token: Token) {
        if self.get(token).is_some_and(|e| e.aborted) {
            self.remove(token, CloseReason::Aborted);
            return;
        }
        let mut written = 0;
        // Asked for with `Context::request_drained`: `drained` runs even if nothing was
        // queued (a fan-out member pulls its next bytes right before its own write).
        let mut requested = self
            .get_mut(token)
            .is_some_and(|e| std::mem::take(&mut e.drain_requested));
        loop {
            let Some(e) = entry_mut(&mut self.entries, token) else {
                return;
            };
            e.dirty = false;
            let before = e.out.len();
            self.stats.peak_queue = self.stats.peak_queue.max(before as u64);
            match flush(e, &mut self.pool, &mut self.stats) {
                Ok(n) => written += n,
                Err(err) => {
                    self.remove(token, CloseReason::from_io(err));
                    return;
                }
            }
            let Some(e) = entry_mut(&mut self.entries, token) else {
                return;
            };
            if written > 0 {
                if let Some(idle) = e.idle_timeout {
                    self.timers
                        .arm(&mut e.timers, token, Kind::Idle, self.now + idle);
                }
            }
            // The queue just emptied (or was empty and a pull was asked for): a streaming
            // handler refills it here.
            let refill = (before > 0 || requested) && e.out.is_empty() && e.state == State::Open;
            requested = false;
            if !refill {
                break;
            }
            self.call(token, |h, cx| h.drained(cx));
            let Some(e) = self.get_mut(token) else { return };
            if e.out.is_empty() {
                break;
            }
            if written >= WRITE_BUDGET {
                // Fairness: continue next tick.
                self.push_ready(token);
                break;
            }
        }

        // A buffer taken by `Context::output()` but never written to goes back to the pool:
        // an idle connection holds none.
        if let Some(e) = entry_mut(&mut self.entries, token) {
            if e.out.is_empty() {
                e.out.clear(&mut self.pool);
            }
        }
        let high = self.config.high_water;
        let low = self.config.low_water;
        let linger = self.config.linger;
        let now = self.now;
        let Some(e) = entry_mut(&mut self.entries, token) else {
            return;
        };
        e.dirty = false;

        // Closing transitions: flushed output means we can let go.
        if e.state == State::Closing && e.out.is_empty() && udp_backlog_empty(&e.io) {
            match &e.io {
                Io::Stream(sock) if !e.peer_eof => {
                    // Send our FIN, keep reading (and discarding) until the peer's.
                    let _ = sock.shutdown(Shutdown::Write);
                    trace!(
                        "  {} state Closing -> Lingering (FIN sent)",
                        Who(&e.service, token)
                    );
                    e.state = State::Lingering;
                    self.timers
                        .arm(&mut e.timers, token, Kind::Linger, now + linger);
                    // Input may already be waiting: read it next tick.
                    if !e.in_ready {
                        e.in_ready = true;
                        self.ready.push_back(token);
                    }
                }
                _ => {
                    let reason = if e.peer_eof {
                        CloseReason::PeerClosed
                    } else {
                        CloseReason::Done
                    };
                    self.remove(token, reason);
                    return;
                }
            }
        }

        // Backpressure.
        let queued = e.out.len();
        if !e.read_paused && queued > high {
            e.read_paused = true;
            self.stats.read_pauses += 1;
            trace!(
                "  {} backpressure: {queued} B queued > {high}: reading paused",
                Who(&e.service, token)
            );
        } else if e.read_paused && queued <= low {
            e.read_paused = false;
            trace!(
                "  {} backpressure: {queued} B queued <= {low}: reading resumed",
                Who(&e.service, token)
            );
        }

        // Interest follows the queue.
        let want_write = queued > 0 || e.state == State::Connecting || !udp_backlog_empty(&e.io);
        let want_read = match e.io {
            Io::Listener(_) => true,
            Io::Stdin(ref s) => s.pollable && !e.peer_eof,
            _ => e.wants_read(),
        };
        let want = match (want_read, want_write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            // Nothing to wait for (say, the peer closed and we have nothing to send yet):
            // keep the registration; an edge-triggered fd with no new edges stays quiet.
            (false, false) => None,
        };
        if let Some(want) = want {
            if e.registered != Some(want) {
                trace!(
                    "  {} interest {} -> {}",
                    Who(&e.service, token),
                    ShowInterest(e.registered),
                    ShowInterest(Some(want))
                );
                if let Err(err) = reregister(&self.registry, &mut e.io, token, want) {
                    self.remove(token, CloseReason::Error(err));
                    return;
                }
                e.registered = Some(want);
            }
        }
    }

    /// Removes an entry now: the handler's `closed` runs, the socket is closed.
    pub(crate) fn remove(&mut self, token: Token, reason: CloseReason) {
        let Some(e) = self.get_mut(token) else { return };
        if e.state == State::Closed {
            return; // already being removed (a `closed` callback closed itself again)
        }
        e.state = State::Closed;
        trace!("  {} closed ({reason})", Who(&e.service, token));
        self.call(token, |h, cx| h.closed(cx, &reason));
        let mut e = self.entries.remove(token.key());
        e.out.clear(&mut self.pool);
        if e.counted {
            self.stats.open_connections -= 1;
            self.resume_listeners();
        }
        // Dropping `e` closes the fd, which also removes it from the epoll set (the kernel
        // does so when the last descriptor for the file closes; netloop never dups one).
    }

    /// Below the connection limit again: let paused listeners accept on the next tick.
    pub(crate) fn resume_listeners(&mut self) {
        if self.stats.open_connections as usize >= self.config.max_connections
            || self.shutdown_deadline.is_some()
        {
            return;
        }
        while let Some(t) = self.paused_listeners.pop() {
            if let Some(Entry {
                io: Io::Listener(l),
                service,
                timers,
                in_ready,
                ..
            }) = entry_mut(&mut self.entries, t)
            {
                // A listener waiting out EMFILE resumes on its own timer.
                if !Timers::is_armed(timers, Kind::AcceptRetry) {
                    l.paused = false;
                    trace!("  {} accepting again", Who(service, t));
                    if !*in_ready {
                        *in_ready = true;
                        self.ready.push_back(t);
                    }
                }
            }
        }
    }
}

/// The live entry `token` names, borrowing only the slab (so the caller can use the
/// other fields of `Core` at the same time).
fn entry(entries: &Slab<Entry>, token: Token) -> Option<&Entry> {
    entries.get(token.key()).filter(|e| e.token == token)
}

/// [`entry`], to change.
pub(crate) fn entry_mut(entries: &mut Slab<Entry>, token: Token) -> Option<&mut Entry> {
    entries.get_mut(token.key()).filter(|e| e.token == token)
}

fn udp_backlog_empty(io: &Io) -> bool {
    match io {
        Io::Udp(u) => u.queue.is_empty(),
        _ => true,
    }
}

/// Writes as much of the entry's output as the kernel takes. Returns the bytes written.
fn flush(e: &mut Entry, pool: &mut BufPool, stats: &mut Stats) -> io::Result<usize> {
    match &mut e.io {
        Io::Stream(sock) if e.state != State::Connecting => {
            let mut written = 0;
            while !e.out.is_empty() {
                let pending = e.out.pending();
                match sock.write(pending) {
                    // The kernel accepted nothing into a non-empty buffer: treat as gone.
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        let short = n < pending.len();
                        e.out.consume(n, pool);
                        written += n;
                        stats.bytes_out += n as u64;
                        // A short write means the send buffer is full: the next call would
                        // only return WouldBlock, so save the system call.
                        if short {
                            break;
                        }
                    }
                    // Send buffer full: WRITABLE interest will bring us back.
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    // A signal arrived mid-call: nothing happened, try again.
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    // Reset, broken pipe, anything else: the connection is finished.
                    Err(err) => return Err(err),
                }
            }
            if written > 0 {
                trace!(
                    "  {} wrote {written} B ({} B still queued)",
                    Who(&e.service, e.token),
                    e.out.len()
                );
            }
            Ok(written)
        }
        Io::Udp(udp) => {
            let done = udp.queue.flush(udp.sock.as_raw_fd());
            stats.datagrams_out += done.sent;
            stats.bytes_out += done.bytes;
            stats.datagrams_dropped += done.dropped;
            if done.sent > 0 {
                trace!(
                    "  {} sent {} datagram(s), {} B",
                    Who(&e.service, e.token),
                    done.sent,
                    done.bytes
                );
            }
            Ok(0)
        }
        // A detached entry (a `TestBed` connection) keeps its output for the test to take.
        Io::Detached => Ok(0),
        // Output to stdin or a listener goes nowhere.
        _ => {
            e.out.clear(pool);
            Ok(0)
        }
    }
}

/// Runs `f` with the entry's event source, if it has one epoll can watch (a detached
/// entry has none, and neither has stdin that epoll refused).
fn with_source(
    io: &mut Io,
    f: impl FnOnce(&mut dyn mio::event::Source) -> io::Result<()>,
) -> io::Result<()> {
    match io {
        Io::Listener(l) => f(&mut l.sock),
        Io::Stream(s) => f(s),
        Io::Udp(u) => f(&mut u.sock),
        Io::Stdin(s) if s.pollable => f(&mut mio::unix::SourceFd(&0)),
        Io::Stdin(_) | Io::Detached => Ok(()),
    }
}

pub(crate) fn register(
    registry: &Registry,
    io: &mut Io,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    with_source(io, |src| registry.register(src, token.to_mio(), interest))
}

fn reregister(
    registry: &Registry,
    io: &mut Io,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    with_source(io, |src| registry.reregister(src, token.to_mio(), interest))
}
