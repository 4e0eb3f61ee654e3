//! What a handler can do while one of its callbacks runs.

use super::core::Core;
use super::entry::Io;
use super::handler::Handler;
use super::lifecycle::State;
use super::resolver::{self, Resolve};
use super::timer::{Kind, TimerId, Timers};
use super::tls::{ClientTls, PendingTls, TlsRole};
use super::transport::Transport;
use super::{Notifier, Page, Snapshot, Stats, Token};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A handler's window on the reactor during one callback.
///
/// Writes to this connection go straight into its output queue (no copy through a
/// temporary), and leave in one system call after the callback returns. Everything asked
/// of *other* connections (writes, closes) lands in their queues too and is flushed in the
/// same tick, but their handlers are never called from inside this one: callbacks do not
/// re-enter.
///
/// A call on this connection is `cx.verb(..)`; the same call on another entry is
/// `cx.on(token).verb(..)` (see [`Other`]).
pub struct Context<'a> {
    core: &'a mut Core,
    me: Token,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("me", &self.me)
            .field("service", &self.service())
            .field("now", &self.core.now)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(core: &'a mut Core, me: Token) -> Context<'a> {
        Context { core, me }
    }

    /// This connection's token: keep it to reach this connection from another one.
    pub fn token(&self) -> Token {
        self.me
    }

    /// The time of the current tick (read once per tick, after `poll` returns): protocols
    /// take time as an argument and this is where it comes from.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// The peer's address (TCP connections).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        // Asked of the kernel (getpeername) rather than stored: 32 bytes per connection saved,
        // and handlers rarely ask.
        match self.core.entries.get(self.me).map(|e| &e.io) {
            Some(Io::Stream(t)) => t.socket()?.peer_addr().ok(),
            _ => None,
        }
    }

    /// The name of the service this connection belongs to.
    pub fn service(&self) -> &str {
        self.core.entries.get(self.me).map_or("", |e| &e.service)
    }

    /// The reactor's counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Another entry (a connection, a UDP socket, a task), to act on by `token`: the same
    /// verbs as on this connection (`cx.write(b)` here, `cx.on(member).write(b)` there).
    /// What it is asked lands in that entry's queue and timers; its handler is not called
    /// from inside this one. A token whose entry is gone is harmless: writes answer
    /// `false`, queries `None`, the rest does nothing.
    pub fn on(&mut self, token: Token) -> Other<'_> {
        Other {
            core: self.core,
            token,
        }
    }

    /// Queues `bytes` for this connection.
    pub fn write(&mut self, bytes: &[u8]) {
        self.on(self.me).write(bytes);
    }

    /// This connection's output buffer, to append to (a protocol's
    /// `poll_transmit(&mut Vec<u8>)` writes straight into it). Bytes already in it are on
    /// their way out: only append.
    ///
    /// Returns `None` once the connection is closing or closed: output would be dropped.
    pub fn output(&mut self) -> Option<&mut Vec<u8>> {
        let me = self.me;
        self.on(me).output()
    }

    /// Bytes queued for this connection that the kernel has not taken yet.
    pub fn queued(&self) -> usize {
        self.core.entries.get(self.me).map_or(0, |e| e.out.len())
    }

    /// Closes this connection once its queued output is flushed. Reading stops now.
    pub fn close(&mut self) {
        self.on(self.me).close();
    }

    /// Stops reading this connection until [`resume_reading`](Context::resume_reading):
    /// `data` (and `eof`) get no call meanwhile; what the peer sends waits in the kernel's
    /// receive buffer, and once that is full TCP's flow control holds the peer. For a
    /// handler that bounds its input buffer (a protocol that says it wants no more bytes
    /// until it has answered what it holds). It takes effect at once, even in the middle
    /// of the read that called `data`.
    ///
    /// Separate from the reactor's own pause under backpressure: the end of that does not
    /// resume a connection its handler paused, nor the other way round. The calls do not
    /// count: one resume undoes any number of pauses. Only TCP connections are paused (a
    /// UDP socket or stdin keeps reading).
    pub fn pause_reading(&mut self) {
        self.core.pause_reading(self.me, true);
    }

    /// Reads this connection again after [`pause_reading`](Context::pause_reading), from
    /// the next tick, starting with what waited in the kernel's buffer. Does nothing if it
    /// was not paused.
    pub fn resume_reading(&mut self) {
        self.core.pause_reading(self.me, false);
    }

    /// Drops this connection once the callback returns, without flushing what is queued
    /// (`closed` runs with [`CloseReason::Aborted`](super::CloseReason::Aborted)).
    pub fn abort(&mut self) {
        self.on(self.me).abort();
    }

    /// Arms timer `id` to fire after `after` (re-arming moves it).
    pub fn set_timer(&mut self, id: TimerId, after: Duration) {
        self.on(self.me).set_timer(id, after);
    }

    /// Arms timer `id` to fire at `at` (re-arming moves it).
    pub fn set_timer_at(&mut self, id: TimerId, at: Instant) {
        self.on(self.me).set_timer_at(id, at);
    }

    /// Disarms timer `id` (nothing happens if it is not armed).
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.on(self.me).cancel_timer(id);
    }

    /// Sends a datagram from this UDP socket. If the kernel's buffer is full it is queued
    /// (bounded) and sent when the socket is writable; past the bound it is dropped, as
    /// UDP may drop it anyway (still `Ok`).
    ///
    /// Fails, and sends nothing, when this entry is not a UDP socket
    /// ([`io::ErrorKind::InvalidInput`]: a TCP connection, a task, stdin), or, through
    /// [`Other::send_to`], when the entry is gone ([`io::ErrorKind::NotFound`]). A
    /// handler's `datagram` runs on a UDP socket only, so a reply from there cannot fail.
    pub fn send_to(&mut self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        self.on(self.me).send_to(bytes, to)
    }

    /// Opens an outgoing TCP connection; `handler.opened` runs once it is established, or
    /// `handler.closed` with [`CloseReason::ConnectFailed`](super::CloseReason) if not.
    pub fn connect(
        &mut self,
        service: &str,
        addr: SocketAddr,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        connect(self.core, service.into(), addr, None, handler)
    }

    /// Opens an outgoing TLS connection to `addr`: TCP first, then the TLS handshake with
    /// `server_name` as SNI and as the name the certificate must carry (unless `tls` is
    /// insecure). `handler.opened` runs once both are done; what it writes before then
    /// waits in the queue. A failed handshake ends in `closed` with
    /// [`CloseReason::Tls`](super::CloseReason::Tls).
    pub fn connect_tls(
        &mut self,
        service: &str,
        addr: SocketAddr,
        tls: ClientTls,
        server_name: &str,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let role = TlsRole::client(tls, server_name);
        connect(self.core, service.into(), addr, Some(role), handler)
    }

    /// Turns this open plaintext connection into TLS, in `role` (SMTP's STARTTLS, either
    /// side). What is queued now still goes out in plaintext (the "220 Ready to start TLS");
    /// then the handshake runs, and what is written after this call goes out encrypted
    /// once it is done (the handler gets no call: it simply keeps writing). Until the
    /// handshake begins nothing is read, so bytes a peer sent after its request are never
    /// taken as plaintext. A failed handshake closes the connection with
    /// [`CloseReason::Tls`](super::CloseReason::Tls). Does nothing on a connection that is
    /// closing or already TLS.
    pub fn start_tls(&mut self, role: TlsRole) {
        self.core.start_tls(self.me, role);
    }

    /// Is this connection TLS (established or handshaking)?
    pub fn is_tls(&self) -> bool {
        matches!(self.core.entries.get(self.me).map(|e| &e.io), Some(Io::Stream(t)) if t.is_tls())
    }

    /// The addresses of `host`, to connect to `port`: at once for an IP literal or
    /// `localhost`, else from a lookup thread, delivered to this handler's
    /// [`resolved`](super::Handler::resolved) (see `resolver.rs`: `getaddrinfo` blocks,
    /// so it never runs on the loop). Fails only if no lookup thread can be started.
    pub fn resolve(&mut self, host: &str, port: u16) -> io::Result<Resolve> {
        if let Some(addrs) = resolver::without_lookup(host, port) {
            return Ok(Resolve::Ready(addrs));
        }
        log::trace!("  {}{} looking up {host}", self.service(), self.me);
        let id = self.core.resolver.lookup(self.me, host, port)?;
        Ok(Resolve::Pending(id))
    }

    /// A handle for a helper thread to report back to this connection: its
    /// [`Notifier::notify`] wakes the loop and the report reaches this handler's
    /// [`notified`](super::Handler::notified). For work that blocks (an fsync, a password
    /// hash), which must never run on the loop (see `notify.rs`).
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.me, Arc::clone(&self.core.inbox))
    }

    /// A picture of the whole reactor now: every connection (one [`Page`] of them), the
    /// listeners, the armed timers, the counters (see `watch.rs`). This connection's own
    /// row says `Running`: its handler is the one asking.
    pub fn snapshot(&self, page: Page) -> Snapshot {
        self.core.snapshot(page)
    }

    /// Starts (`true`) or stops watching the loop: while any connection watches, each tick
    /// measures its time in `poll` and at work ([`Snapshot::loop_times`]). Calls must
    /// pair: a watcher that closes says `false`.
    pub fn watch(&mut self, on: bool) {
        let before = self.core.watchers;
        if on {
            self.core.watchers += 1;
        } else {
            self.core.watchers = self.core.watchers.saturating_sub(1);
        }
        // The first watcher turns the trace tap on, the last one off (see `tap.rs`).
        if (before == 0) != (self.core.watchers == 0) {
            super::tap::set_watching(self.core.watchers > 0);
        }
    }

    /// Begins a graceful shutdown of the whole reactor (as SIGTERM would).
    pub fn shutdown_reactor(&mut self) {
        self.core.shutdown_requested = true;
    }
}

/// Another entry, as a handler reaches it: [`Context::on`]`(token)`. Each method takes
/// it by value, so a call reads as one phrase: `cx.on(member).write(line)`,
/// `cx.on(clock).set_timer(START, Duration::ZERO)`, `cx.on(slow).abort()`.
pub struct Other<'a> {
    core: &'a mut Core,
    token: Token,
}

impl std::fmt::Debug for Other<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Other")
            .field("token", &self.token)
            .field("service", &service_of(self.core, self.token))
            .finish_non_exhaustive()
    }
}

impl<'a> Other<'a> {
    /// The entry's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Queues `bytes` for it (fan-out). Returns false if it is gone or closing.
    pub fn write(self, bytes: &[u8]) -> bool {
        match self.output() {
            Some(out) => {
                out.extend_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    /// Its output buffer, to append to; `None` if it is gone or closing.
    pub fn output(self) -> Option<&'a mut Vec<u8>> {
        let core = self.core;
        let e = core.entries.get_mut(self.token)?;
        // Output after close is dropped: the peer would never see it, and a closing
        // connection must be allowed to finish.
        if !matches!(
            e.state,
            State::Open | State::Connecting | State::Handshaking { .. }
        ) {
            return None;
        }
        if !e.dirty {
            e.dirty = true;
            core.dirty.push(self.token);
        }
        Some(e.out.append_buf(&mut core.pool))
    }

    /// Bytes queued for it (None if it is gone): a fan-out sender checks this to find a
    /// slow consumer.
    pub fn queued(&self) -> Option<usize> {
        self.core.entries.get(self.token).map(|e| e.out.len())
    }

    /// Asks the reactor to call its [`drained`](super::Handler::drained) when it flushes
    /// that connection at the end of this tick, even if its queue is empty then; nothing
    /// happens if it is gone or closing.
    ///
    /// This is how a fan-out *pulls* instead of pushing: the sender appends a message once
    /// to a log shared by the room and pokes the members that were idle; each member copies
    /// what it has not seen into its own queue right before its own write, so one buffer
    /// at a time is in use however many members there are, and every message that arrived
    /// in the tick leaves in that one write.
    pub fn request_drained(self) {
        self.core.request_drained(self.token);
    }

    /// Closes it once its queued output is flushed (see [`Context::close`]).
    pub fn close(self) {
        self.core.close(self.token);
    }

    /// Drops it at once, queued output and all: how a fan-out server cuts off a consumer
    /// that stopped reading, without waiting for it to drain.
    pub fn abort(self) {
        self.core.abort(self.token);
    }

    /// Arms its timer `id` to fire after `after`, in its handler. (An interactive client's
    /// stdin handler sends through the UDP socket, and the reply timeout belongs to the
    /// socket, which outlives stdin's EOF.)
    pub fn set_timer(self, id: TimerId, after: Duration) {
        let at = self.core.now + after;
        self.set_timer_at(id, at);
    }

    /// Arms its timer `id` to fire at `at` (re-arming moves it).
    pub fn set_timer_at(self, id: TimerId, at: Instant) {
        let core = self.core;
        if let Some(e) = core.entries.get_mut(self.token) {
            core.timers
                .arm(&mut e.timers, self.token, Kind::Handler(id), at);
        }
    }

    /// Disarms its timer `id` (nothing happens if it is not armed).
    pub fn cancel_timer(self, id: TimerId) {
        if let Some(e) = self.core.entries.get_mut(self.token) {
            Timers::cancel(&mut e.timers, Kind::Handler(id));
        }
    }

    /// Sends a datagram from it, a UDP socket (an interactive client's stdin handler sends
    /// what the user typed through its socket). Fails if it is gone or not a UDP socket:
    /// see [`Context::send_to`].
    pub fn send_to(self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        self.core.send_to(self.token, bytes, to)
    }
}

pub(crate) fn connect(
    core: &mut Core,
    service: Rc<str>,
    addr: SocketAddr,
    tls: Option<TlsRole>,
    handler: Box<dyn Handler>,
) -> io::Result<Token> {
    let sock = mio::net::TcpStream::connect(addr)?;
    let token = core.insert(
        service,
        Io::Stream(Transport::Tcp(sock)),
        State::Connecting,
        Some(mio::Interest::READABLE | mio::Interest::WRITABLE),
        Some(handler),
    )?;
    let with_tls = tls.is_some();
    if let Some(e) = core.entries.get_mut(token) {
        e.tls = tls.map(PendingTls::new);
    }
    log::trace!(
        "  {}{token} connecting to {addr}{}",
        service_of(core, token),
        if with_tls { " (TLS)" } else { "" }
    );
    Ok(token)
}

fn service_of(core: &Core, token: Token) -> &str {
    core.entries.get(token).map_or("?", |e| &e.service)
}
