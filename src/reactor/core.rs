//! The reactor's state apart from `Poll` itself: the slab, timers, buffers and counters.
//!
//! A [`Context`] borrows the `Core` while a handler runs, so everything a handler may ask
//! for (write, close, arm a timer, write to another connection, open a connection) is a
//! method here. Nothing here waits for readiness; the loop in `mod.rs` does that. State
//! changes go through `lifecycle.rs`; this file flushes, fixes interest and fires timers.

use super::buffer::BufPool;
use super::config::{Config, UDP_BACKLOG_MAX};
use super::entry::{Entries, Entry, Io, Who};
use super::handler::{CloseReason, Handler};
use super::lifecycle::{Input, State};
use super::notify::Inbox;
use super::resolver::Resolver;
use super::timer::{Kind, Timers};
use super::tls::{PendingTls, TlsRole};
use super::{Context, Stats, Token};
use log::trace;
use mio::{Interest, Registry, Waker};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct Core {
    /// Every entry, looked up by token (see [`Entries`]).
    pub entries: Entries,
    /// Hands out each new entry's generation, so a token kept after its entry closed (in
    /// a timer, a room's member list, a report from a helper thread) no longer matches
    /// the entry that reuses the slot.
    pub generations: super::token::Generations,
    /// Every armed timer of every entry, one heap ordered by deadline: `poll`'s timeout
    /// is the earliest one.
    pub timers: Timers,
    /// Output buffers not in use: a connection holds one only while it has bytes queued,
    /// so ten thousand idle connections hold none.
    pub pool: BufPool,
    /// The `Poll`'s registry: how entries (re)register their fds and interest without
    /// borrowing the `Poll`, which `Reactor::run` holds across the wait.
    pub registry: Registry,
    /// Entries whose output, interest or state may have changed since they were settled.
    pub dirty: Vec<Token>,
    /// Entries to service next tick without waiting for an event (budget ran out, a
    /// listener resumed, stdin that epoll cannot watch).
    pub ready: VecDeque<Token>,
    /// The counters `/stats` and the summary line show.
    pub stats: Stats,
    /// The knobs the reactor was made with (limits, budgets, timeouts).
    pub config: Config,
    /// The time of the current tick: read once after `poll` returns.
    pub now: Instant,
    /// Listeners paused at the connection limit, resumed when a connection closes.
    pub paused_listeners: Vec<Token>,
    /// Slots listeners have reserved and not yet filled: the sum over listeners of
    /// `reserved - open` where positive (see [`ListenOptions`](super::ListenOptions)).
    pub unused_reserve: usize,
    /// A handler asked for the reactor to shut down.
    pub shutdown_requested: bool,
    /// Set once a shutdown has begun: the moment remaining connections are dropped.
    pub shutdown_deadline: Option<Instant>,
    /// Name lookups, off the loop.
    pub resolver: Resolver,
    /// Reports from services' helper threads (`notify.rs`).
    pub inbox: Arc<Inbox>,
    /// When the reactor was made: entries' times ([`Meter`](super::entry::Meter)) count from here.
    pub started: Instant,
    /// Connections watching the loop (a `/loop/events` stream): while there are any, the
    /// tick measures its time in `poll` and in handlers (`loop_times`); while there are
    /// none, it reads no clock for it.
    pub watchers: u32,
    /// Time spent waiting in `poll` and working, while watched.
    pub loop_times: super::watch::LoopTimes,
}

/// The counts a learner looks at first (the full picture is [`Core::snapshot`]).
impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("entries", &self.entries.len())
            .field("timers", &self.timers.len())
            .field("dirty", &self.dirty.len())
            .field("ready", &self.ready.len())
            .field("now", &self.now)
            .field("shutdown_requested", &self.shutdown_requested)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(registry: Registry, waker: Arc<Waker>, config: Config) -> Core {
        Core {
            inbox: Inbox::new(Arc::clone(&waker)),
            resolver: Resolver::new(config.resolver, waker),
            entries: Entries::default(),
            generations: super::token::Generations::new(),
            timers: Timers::default(),
            pool: BufPool::default(),
            registry,
            dirty: Vec::new(),
            ready: VecDeque::new(),
            stats: Stats::default(),
            config,
            now: Instant::now(),
            started: Instant::now(),
            watchers: 0,
            loop_times: super::watch::LoopTimes::default(),
            paused_listeners: Vec::new(),
            unused_reserve: 0,
            shutdown_requested: false,
            shutdown_deadline: None,
        }
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
        let now = self.now_ms();
        let slot = self.entries.vacant_entry();
        let token = Token::new(slot.key(), self.generations.next());
        if let Some(interest) = interest {
            register(&self.registry, &mut io, token, interest)?;
        }
        let mut entry = Entry::new(token, service, io, state);
        entry.meter.opened_ms = now;
        entry.meter.active_ms = now;
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

    /// The tick's time as milliseconds since the reactor started (see `Meter`).
    pub(crate) fn now_ms(&self) -> u32 {
        let ms = self.now.saturating_duration_since(self.started).as_millis();
        u32::try_from(ms).unwrap_or(u32::MAX)
    }

    /// Queues `token` to be serviced next tick without an event (once, however often asked).
    pub(crate) fn push_ready(&mut self, token: Token) {
        if let Some(e) = self.entries.get_mut(token) {
            if !e.in_ready {
                e.in_ready = true;
                self.ready.push_back(token);
            }
        }
    }

    pub(crate) fn mark_dirty(&mut self, token: Token) {
        if let Some(e) = self.entries.get_mut(token) {
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
        let Some(mut handler) = self.entries.get_mut(token).and_then(|e| e.handler.take()) else {
            return;
        };
        f(&mut *handler, &mut Context::new(self, token));
        if let Some(e) = self.entries.get_mut(token) {
            e.handler = Some(handler);
        }
        self.mark_dirty(token);
    }

    /// Arms the entry's idle timeout from now, if it has one.
    pub(crate) fn touch(&mut self, token: Token) {
        let now = self.now;
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        if let Some(idle) = e.idle_timeout {
            self.timers
                .arm(&mut e.timers, token, Kind::Idle, now + idle);
        }
    }

    /// Moves an entry to `Closing` (idempotent): stop reading, flush, then close.
    pub(crate) fn close(&mut self, token: Token) {
        self.advance(token, Input::Close);
    }

    /// Asks for TLS on an open connection, in `role`: the handshake starts once what is
    /// queued now has been written (a STARTTLS server's "220 Ready" goes out in plaintext),
    /// and reading stops until then, so no plaintext that follows the request is taken for
    /// the peer's handshake or handed to the handler.
    pub(crate) fn start_tls(&mut self, token: Token, role: TlsRole) {
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        if e.state == State::Open && matches!(&e.io, Io::Stream(t) if !t.is_tls()) {
            let mut pending = PendingTls::new(role);
            pending.plaintext_left = e.out.len();
            e.tls = Some(pending);
            self.mark_dirty(token);
        }
    }

    /// Pauses (`true`) or resumes a connection's reading for its handler (see
    /// [`Context::pause_reading`]). A resume reads what waits in the kernel's buffer next
    /// tick: that data's edge may have been spent while paused, so no event would come.
    pub(crate) fn pause_reading(&mut self, token: Token, pause: bool) {
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        if !matches!(e.io, Io::Stream(_) | Io::Detached) || e.handler_paused == pause {
            return;
        }
        e.handler_paused = pause;
        trace!(
            "  {} reading {} by the handler",
            Who(&e.service, token),
            if pause { "paused" } else { "resumed" }
        );
        if !pause {
            self.push_ready(token);
        }
        self.mark_dirty(token);
    }

    /// Drops a connection at the end of this callback, queued output and all (a slow
    /// consumer cut off, a peer that broke the protocol beyond answering).
    pub(crate) fn abort(&mut self, token: Token) {
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        if e.state != State::Closed {
            e.aborted = true;
            self.mark_dirty(token);
        }
    }

    /// Asks for `token`'s `drained` to run in this tick's flush even if its queue is empty
    /// (see [`Other::request_drained`](super::Other::request_drained)).
    pub(crate) fn request_drained(&mut self, token: Token) {
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        if e.state == State::Open {
            e.drain_requested = true;
            self.mark_dirty(token);
        }
    }

    /// Queues a datagram on a UDP entry (bounded by [`UDP_BACKLOG_MAX`]); the queue goes
    /// out in batches when the entry is settled at the end of the tick. Past the bound the
    /// datagram is dropped and counted, and that is still `Ok`: UDP may lose it anyway.
    /// An error means the caller asked the wrong entry (see [`Context::send_to`]).
    pub(crate) fn send_to(&mut self, token: Token, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        let Some(e) = self.entries.get_mut(token) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("send_to: {token} is gone"),
            ));
        };
        let Io::Udp(udp) = &mut e.io else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "send_to on {}, a {} entry: only a UDP socket sends datagrams",
                    Who(&e.service, token),
                    e.io.source()
                ),
            ));
        };
        if udp.queue.bytes() + bytes.len() > UDP_BACKLOG_MAX {
            self.stats.datagrams_dropped += 1;
            return Ok(());
        }
        udp.queue.push(bytes, to);
        self.mark_dirty(token);
        Ok(())
    }

    /// Hands every finished name lookup to the handler that asked for it.
    pub(crate) fn deliver_lookups(&mut self) {
        for answer in self.resolver.collect() {
            match &answer.result {
                Ok(addrs) => trace!(
                    "  lookup of {} for {}: {} address(es)",
                    answer.host,
                    answer.token,
                    addrs.len()
                ),
                Err(e) => trace!("  lookup of {} for {}: {e}", answer.host, answer.token),
            }
            let (id, result) = (answer.id, answer.result);
            self.call(answer.token, |h, cx| h.resolved(cx, id, result));
        }
    }

    /// Reports waiting to be delivered.
    pub(crate) fn inbox_len(&self) -> usize {
        self.inbox.len()
    }

    /// Hands every report from a helper thread to the handler it is for; a report for a
    /// connection that closed meanwhile is dropped with the connection.
    pub(crate) fn deliver_reports(&mut self) {
        for (token, report) in self.inbox.take() {
            trace!("  report for {token}");
            self.call(token, |h, cx| h.notified(cx, report));
        }
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
            entries
                .get(token)
                .is_some_and(|e| Timers::stands_for(&e.timers, seq))
        });
        trace!("timers: compacted {before} -> {}", self.timers.len());
    }

    /// Fires every timer due at the tick's time: the reactor's own (idle, linger, accept
    /// retry) and the handlers'. The reactor calls it once per tick; a `TestBed` calls it
    /// when its virtual clock moves, so both run the same code.
    pub(crate) fn fire_timers(&mut self) {
        let now = self.now;
        self.compact_timers();
        while let Some(due) = self.timers.pop_due(now) {
            let Some(e) = self.entries.get_mut(due.token) else {
                continue;
            };
            let Some(kind) = self.timers.settle(&mut e.timers, &due, now) else {
                continue;
            };
            trace!("  {} timer {kind:?} fired", Who(&e.service, due.token));
            match kind {
                Kind::Idle => self.end(due.token, CloseReason::IdleTimeout),
                Kind::Handshake => {
                    self.stats.tls_failures += 1;
                    self.end(due.token, CloseReason::HandshakeTimeout);
                }
                Kind::Linger => self.advance(due.token, Input::LingerTimer),
                Kind::AcceptRetry => {
                    if let Io::Listener(l) = &mut e.io {
                        l.paused = false;
                    }
                    self.push_ready(due.token);
                }
                Kind::Handler(id) => self.call(due.token, |h, cx| h.timer(cx, id)),
            }
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
        Io::Stream(t) => match t.socket_mut() {
            Some(s) => f(s),
            None => Ok(()),
        },
        Io::Udp(u) => f(&mut u.sock),
        Io::Stdin(s) if s.pollable => f(&mut mio::unix::SourceFd(&0)),
        Io::Stdin(_) | Io::Detached | Io::Task => Ok(()),
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

pub(crate) fn reregister(
    registry: &Registry,
    io: &mut Io,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    with_source(io, |src| registry.reregister(src, token.to_mio(), interest))
}
