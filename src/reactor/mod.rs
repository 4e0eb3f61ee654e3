//! The reactor: one thread, one `mio::Poll`, one `Slab` of connection state machines.
//!
//! # One tick of the loop
//!
//! ```text
//! loop {
//!     poll(timeout = nearest deadline, or 0 if some entry is queued as ready)
//!     now = Instant::now()                       // once per tick
//!     for each event:  accept / read / note writable     → handler callbacks
//!     for each entry queued as ready:  the same, without an event
//!     for each deadline that passed:   idle / linger / handler timers
//!     for each dirty entry:  flush its output, move its state, fix its interest
//! }
//! ```
//!
//! Handlers only ever *queue* output; the reactor writes each connection's queue once per
//! tick, after its callbacks ran. That is how sixteen pipelined HTTP responses leave in one
//! `write(2)`. Read `core.rs` for the per-connection state machine (`settle`), `entry.rs`
//! for the states, `timer.rs` for the deadline heap, `buffer.rs` for the output queues.
//!
//! # Watching it
//!
//! `RUST_LOG=netloop=trace` prints every tick: what `poll` returned and, per event, the
//! bytes read and written, interest and state changes, with `service#key.generation`.

mod buffer;
mod config;
mod context;
mod core;
mod entry;
mod handler;
mod mmsg;
mod stats;
pub mod testing;
mod timer;
mod token;

pub use config::{Config, FD_RESERVE, READ_BUFFER, open_file_limit};
pub use context::Context;
pub use handler::{CloseReason, Handler};
pub use stats::Stats;
pub use timer::TimerId;
pub use token::Token;

use config::{ACCEPT_BUDGET, DATAGRAM_BUDGET, EVENTS_PER_POLL};
use core::{Core, entry_mut};
use entry::{Entry, Io, Listener, Source, State, Stdin, Udp, Who};
use log::{debug, info, log_enabled, trace, warn};
use mio::{Events, Interest, Poll, Waker};
use mmsg::RecvBatch;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use timer::Kind;

/// Per-listener settings.
#[derive(Clone, Debug, Default)]
pub struct ListenOptions {
    /// Close accepted connections after this long without a byte moving either way.
    pub idle_timeout: Option<Duration>,
}

/// Asks a running reactor, from any thread, to shut down gracefully.
///
/// The reactor closes its listeners, lets every connection flush (up to
/// [`Config::shutdown_grace`]) and returns from [`Reactor::run`]. SIGINT and SIGTERM do the
/// same once [`Reactor::handle_signals`] was called.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    waker: Arc<Waker>,
    requested: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Requests the shutdown. Returns at once; [`Reactor::run`] returns when it is done.
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::Release);
        // A failed wake means the loop is gone already: nothing left to stop.
        let _ = self.waker.wake();
    }
}

/// One event loop. Build it, add listeners and sockets, then [`run`](Reactor::run) it.
pub struct Reactor {
    poll: Poll,
    events: Events,
    core: Core,
    /// The one read buffer every connection reads into: an idle connection holds none.
    read_buf: Box<[u8]>,
    waker: Arc<Waker>,
    shutdown_requested: Arc<AtomicBool>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Receive slots for `recvmmsg`, made when the first datagram is read.
    udp_batch: Option<Box<RecvBatch>>,
}

impl Reactor {
    /// A reactor with the default [`Config`].
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_config(Config::default())
    }

    /// A reactor with `config`.
    pub fn with_config(config: Config) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), token::WAKER)?);
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            core: Core::new(registry, config),
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            waker,
            shutdown_requested: Arc::new(AtomicBool::new(false)),
            signals: None,
            udp_batch: None,
        })
    }

    /// A handle to stop this reactor from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            waker: self.waker.clone(),
            requested: self.shutdown_requested.clone(),
        }
    }

    /// Makes SIGINT and SIGTERM start a graceful shutdown (listeners close, connections
    /// flush, [`run`](Reactor::run) returns `Ok`) instead of killing the process.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM])?;
        self.poll
            .registry()
            .register(&mut signals, token::SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// The reactor's counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Listens for TCP connections on `addr`; `factory` makes a handler for each one.
    /// Returns the bound address (with the real port when `addr` asked for port 0).
    pub fn listen<F>(
        &mut self,
        service: &str,
        addr: SocketAddr,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> Box<dyn Handler> + 'static,
    {
        self.listen_with(service, addr, ListenOptions::default(), factory)
    }

    /// [`listen`](Reactor::listen) with options.
    pub fn listen_with<F>(
        &mut self,
        service: &str,
        addr: SocketAddr,
        options: ListenOptions,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> Box<dyn Handler> + 'static,
    {
        let sock = mio::net::TcpListener::bind(addr)?;
        let local = sock.local_addr()?;
        let listener = Listener {
            sock,
            factory: Box::new(factory),
            idle_timeout: options.idle_timeout,
            paused: false,
        };
        let token = self.core.insert(
            service.into(),
            Io::Listener(Box::new(listener)),
            State::Open,
            Some(Interest::READABLE),
            None,
        )?;
        debug!("{} listening on {local}", Who(service, token));
        Ok(local)
    }

    /// Binds a UDP socket on `addr`, served by `handler`. Returns the bound address.
    pub fn bind_udp(
        &mut self,
        service: &str,
        addr: SocketAddr,
        handler: Box<dyn Handler>,
    ) -> io::Result<SocketAddr> {
        let sock = mio::net::UdpSocket::bind(addr)?;
        let local = sock.local_addr()?;
        let udp = Udp {
            sock,
            queue: mmsg::SendQueue::default(),
        };
        let token = self.core.insert(
            service.into(),
            Io::Udp(Box::new(udp)),
            State::Open,
            Some(Interest::READABLE),
            Some(handler),
        )?;
        self.core.call(token, |h, cx| h.opened(cx));
        Ok(local)
    }

    /// Opens an outgoing TCP connection served by `handler` (see [`Context::connect`]).
    pub fn connect(
        &mut self,
        service: &str,
        addr: SocketAddr,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        context::connect(&mut self.core, service.into(), addr, handler)
    }

    /// Reads standard input through the reactor: `handler.data` gets what the user types
    /// (a line at a time from a terminal), `handler.eof` gets end of input. No thread.
    pub fn add_stdin(&mut self, service: &str, handler: Box<dyn Handler>) -> io::Result<Token> {
        // SAFETY: F_GETFL/F_SETFL on fd 0 touch no memory of ours. Setting O_NONBLOCK is
        // what an edge-triggered reader needs; `Stdin::drop` restores the saved flags.
        let saved_flags = unsafe { libc::fcntl(0, libc::F_GETFL) };
        if saved_flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(0, libc::F_SETFL, saved_flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd 0 is open for the life of the process and this `File` is never dropped
        // (`ManuallyDrop`), so it neither closes fd 0 nor outlives it.
        let file = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
        let stdin = Stdin {
            file,
            saved_flags,
            pollable: true,
        };
        let token = self.core.insert(
            service.into(),
            Io::Stdin(stdin),
            State::Open,
            None,
            Some(handler),
        )?;
        let registered = self.core.registry.register(
            &mut mio::unix::SourceFd(&0),
            token.to_mio(),
            Interest::READABLE,
        );
        let Some(e) = self.core.get_mut(token) else {
            unreachable!("just inserted")
        };
        match registered {
            Ok(()) => e.registered = Some(Interest::READABLE),
            // epoll refuses regular files and /dev/null (they are always "ready"): read
            // such stdin from the ready queue instead, one budget per tick, until EOF.
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                if let Io::Stdin(s) = &mut e.io {
                    s.pollable = false;
                }
                self.core.push_ready(token);
            }
            Err(err) => {
                self.core.entries.remove(token.key());
                return Err(err);
            }
        }
        self.core.call(token, |h, cx| h.opened(cx));
        Ok(token)
    }

    /// Runs until there is nothing left to serve (every connection, socket and listener is
    /// gone), or until a shutdown finishes. Returns `Err` only if `poll` itself fails.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.check_shutdown();
            if self.core.entries.is_empty() {
                debug!("reactor: nothing left to serve; {}", self.core.stats);
                return Ok(());
            }
            if let Some(deadline) = self.core.shutdown_deadline {
                if Instant::now() >= deadline {
                    self.drop_everything();
                    return Ok(());
                }
            }
            let timeout = self.poll_timeout();
            // Read for the trace only (every clock read is a vDSO call; the tick reads its own).
            let started = log_enabled!(log::Level::Trace).then(Instant::now);
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                // A signal interrupted epoll_wait: just poll again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.core.now = Instant::now();
            self.core.stats.ticks += 1;
            if log_enabled!(log::Level::Trace) {
                trace!(
                    "tick {}: poll(timeout {}) -> {} event(s) after {:?}",
                    self.core.stats.ticks,
                    timeout.map_or("none".to_string(), |t| format!("{t:?}")),
                    self.events.iter().count(),
                    started.map_or(Duration::ZERO, |at| self.core.now - at)
                );
            }
            // Entries queued during this tick wait for the next one: that is what makes
            // the read budget fair.
            let ready = std::mem::take(&mut self.core.ready);
            self.dispatch_events();
            self.run_ready(ready);
            self.fire_timers();
            self.settle_dirty();
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.core.ready.is_empty()
            || !self.core.dirty.is_empty()
            || self.core.shutdown_requested
        {
            return Some(Duration::ZERO);
        }
        let next = match (
            self.core.timers.next_deadline(),
            self.core.shutdown_deadline,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|at| at.saturating_duration_since(Instant::now()))
    }

    fn dispatch_events(&mut self) {
        for event in self.events.iter() {
            self.core.stats.events += 1;
            match event.token() {
                token::WAKER => {
                    if self.shutdown_requested.load(Ordering::Acquire) {
                        self.core.shutdown_requested = true;
                    }
                }
                token::SIGNALS => {
                    if let Some(signals) = &mut self.signals {
                        for sig in signals.pending() {
                            info!("signal {sig}: shutting down");
                            self.core.shutdown_requested = true;
                        }
                    }
                }
                t => {
                    let token = Token::from_mio(t);
                    let Some(e) = self.core.get(token) else {
                        // The connection this event was for is gone (maybe replaced by a new
                        // one in the same slot): the generation tells, and the event is dropped.
                        self.core.stats.stale_events += 1;
                        trace!("  stale event for {token}: dropped");
                        continue;
                    };
                    let (source, state) = (e.io.source(), e.state);
                    trace!(
                        "  {} {source} event:{}{}{}{}",
                        Who(&e.service, token),
                        if event.is_readable() { " readable" } else { "" },
                        if event.is_writable() { " writable" } else { "" },
                        if event.is_read_closed() {
                            " read-closed"
                        } else {
                            ""
                        },
                        if event.is_error() { " error" } else { "" },
                    );
                    match source {
                        Source::Listener => accept(&mut self.core, token),
                        Source::Stream if state == State::Connecting => {
                            finish_connect(&mut self.core, token)
                        }
                        Source::Stream => {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                read_stream(
                                    &mut self.core,
                                    &mut self.read_buf,
                                    token,
                                    event.is_read_closed(),
                                );
                            }
                            if event.is_writable() {
                                self.core.mark_dirty(token);
                            }
                        }
                        Source::Udp => {
                            if event.is_readable() {
                                recv_datagrams(&mut self.core, &mut self.udp_batch, token);
                            }
                            if event.is_writable() {
                                self.core.mark_dirty(token);
                            }
                        }
                        Source::Stdin => read_stdin(&mut self.core, &mut self.read_buf, token),
                        Source::Detached => {}
                    }
                }
            }
        }
    }

    /// Services the entries queued last tick (budget exhausted, listener resumed, stdin that
    /// epoll cannot watch) as if an event had arrived.
    fn run_ready(&mut self, ready: VecDeque<Token>) {
        for token in ready {
            if let Some(e) = self.core.get_mut(token) {
                e.in_ready = false;
            }
            let Some(e) = self.core.get(token) else {
                continue;
            };
            let paused = matches!(&e.io, Io::Listener(l) if l.paused);
            match (e.io.source(), e.state) {
                (Source::Listener, _) if !paused => accept(&mut self.core, token),
                (Source::Stream, state) if state != State::Connecting => {
                    read_stream(&mut self.core, &mut self.read_buf, token, true);
                    self.core.mark_dirty(token);
                }
                (Source::Udp, _) => recv_datagrams(&mut self.core, &mut self.udp_batch, token),
                (Source::Stdin, _) => read_stdin(&mut self.core, &mut self.read_buf, token),
                _ => {}
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = self.core.now;
        self.core.compact_timers();
        while let Some(due) = self.core.timers.pop_due(now) {
            let core = &mut self.core;
            let Some(e) = entry_mut(&mut core.entries, due.token) else {
                continue;
            };
            let Some(kind) = core.timers.settle(&mut e.timers, &due, now) else {
                continue;
            };
            trace!("  {} timer {kind:?} fired", Who(&e.service, due.token));
            match kind {
                Kind::Idle => core.remove(due.token, CloseReason::IdleTimeout),
                // Closing: the flush deadline passed; Lingering: the peer's FIN never came.
                Kind::Linger => {
                    let reason = if e.state == State::Closing {
                        CloseReason::FlushTimeout
                    } else {
                        CloseReason::Done
                    };
                    core.remove(due.token, reason);
                }
                Kind::AcceptRetry => {
                    if let Io::Listener(l) = &mut e.io {
                        l.paused = false;
                    }
                    core.push_ready(due.token);
                }
                Kind::Handler(id) => core.call(due.token, |h, cx| h.timer(cx, id)),
            }
        }
    }

    fn settle_dirty(&mut self) {
        while let Some(token) = self.core.dirty.pop() {
            self.core.settle(token);
        }
    }

    fn check_shutdown(&mut self) {
        if !self.core.shutdown_requested || self.core.shutdown_deadline.is_some() {
            return;
        }
        let grace = self.core.config.shutdown_grace;
        self.core.shutdown_deadline = Some(Instant::now() + grace);
        let tokens: Vec<Token> = self.core.entries.iter().map(|(_, e)| e.token).collect();
        info!(
            "shutting down: listeners closed, {} entries get {grace:?} to finish",
            tokens.len()
        );
        for token in tokens {
            match self.core.get(token).map(|e| e.io.source()) {
                Some(Source::Listener) => self.core.remove(token, CloseReason::Shutdown),
                Some(_) => self.core.call(token, |h, cx| h.shutdown(cx)),
                None => {}
            }
        }
        self.settle_dirty();
    }

    fn drop_everything(&mut self) {
        let tokens: Vec<Token> = self.core.entries.iter().map(|(_, e)| e.token).collect();
        warn!(
            "shutdown grace period over: dropping {} entries",
            tokens.len()
        );
        for token in tokens {
            self.core.remove(token, CloseReason::Shutdown);
        }
    }
}

/// Accepts until the kernel's queue is empty, the budget is spent, or a limit is hit.
fn accept(core: &mut Core, token: Token) {
    for _ in 0..ACCEPT_BUDGET {
        if core.stats.open_connections as usize >= core.config.max_connections {
            pause_listener(core, token, None);
            return;
        }
        let Some(Entry {
            io: Io::Listener(l),
            service,
            ..
        }) = entry_mut(&mut core.entries, token)
        else {
            return;
        };
        let (sock, peer) = match l.sock.accept() {
            Ok(pair) => pair,
            // Queue empty: the next connection brings a new edge.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // Interrupted by a signal, or the client gave up before we accepted: next.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue;
            }
            // Out of descriptors or memory: the pending connection stays in the backlog and
            // accept would fail again at once. Stop and retry on a timer: never spin.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) =>
            {
                warn!("{}: accept: {e}; pausing accepts", Who(service, token));
                let retry = core.config.accept_retry;
                pause_listener(core, token, Some(retry));
                return;
            }
            Err(e) => {
                warn!("{}: accept: {e}", Who(service, token));
                continue;
            }
        };
        // Small request/response writes must not wait for Nagle's algorithm.
        let _ = sock.set_nodelay(true);
        let handler = (l.factory)(peer);
        let idle = l.idle_timeout;
        let service = service.clone();
        let new = match core.insert(
            service.clone(),
            Io::Stream(sock),
            State::Open,
            Some(Interest::READABLE),
            Some(handler),
        ) {
            Ok(t) => t,
            Err(e) => {
                warn!(
                    "{}: register accepted connection: {e}",
                    Who(&service, token)
                );
                continue;
            }
        };
        if let Some(e) = core.get_mut(new) {
            e.idle_timeout = idle;
        }
        trace!(
            "  {} accepted {peer} as {} ({} open)",
            Who(&service, token),
            Who(&service, new),
            core.stats.open_connections
        );
        core.touch(new);
        core.call(new, |h, cx| h.opened(cx));
    }
    // Budget spent with connections possibly still queued: continue next tick.
    core.push_ready(token);
}

fn pause_listener(core: &mut Core, token: Token, retry: Option<Duration>) {
    let now = core.now;
    let Some(Entry {
        io: Io::Listener(l),
        service,
        timers,
        ..
    }) = entry_mut(&mut core.entries, token)
    else {
        return;
    };
    if l.paused {
        return;
    }
    l.paused = true;
    core.stats.accept_pauses += 1;
    match retry {
        Some(after) => core
            .timers
            .arm(timers, token, Kind::AcceptRetry, now + after),
        None => {
            debug!(
                "{}: {} connections open, the limit: not accepting until one closes",
                Who(service, token),
                core.stats.open_connections
            );
            core.paused_listeners.push(token);
        }
    }
}

/// An outgoing connection reported readiness: did the handshake succeed?
fn finish_connect(core: &mut Core, token: Token) {
    let Some(Entry {
        io: Io::Stream(sock),
        service,
        ..
    }) = core.get_mut(token)
    else {
        return;
    };
    let outcome = match sock.take_error() {
        Ok(Some(e)) | Err(e) => Err(e),
        Ok(None) => match sock.peer_addr() {
            Ok(addr) => Ok(addr),
            // Not connected yet: a spurious wake-up; the real one follows.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(addr) => {
            let _ = sock.set_nodelay(true);
            trace!("  {} connected to {addr}", Who(service, token));
            if let Some(e) = core.get_mut(token) {
                e.state = State::Open;
            }
            core.touch(token);
            core.call(token, |h, cx| h.opened(cx));
        }
        Err(e) => core.remove(token, CloseReason::ConnectFailed(e)),
    }
}

/// Reads a TCP connection until the kernel has nothing more (or the budget is spent),
/// handing every chunk to the handler.
///
/// `until_would_block`: keep reading until `WouldBlock` even after a short read. Without
/// an event's hint that the peer closed, a short read (fewer bytes than the buffer) means
/// the socket's queue was emptied, and any later arrival raises a new edge; stopping there
/// saves the one `read` per request that would only say `WouldBlock`. When the event says
/// the peer closed, read on to find the EOF, since the FIN's edge has already been spent.
fn read_stream(core: &mut Core, buf: &mut [u8], token: Token, until_would_block: bool) {
    let mut budget = core.config.read_budget;
    loop {
        let Some(e) = entry_mut(&mut core.entries, token) else {
            return;
        };
        if !e.wants_read() {
            return;
        }
        let discard = e.state == State::Lingering;
        // Backpressure: the handler has queued enough for a peer that is not reading.
        // Stop here; `settle` pauses reading if the flush cannot bring the queue down.
        // Input may still be waiting and its edge is spent, so look again next tick (a
        // paused connection is not read then; resuming re-arms READABLE instead).
        if !discard && e.out.len() > core.config.high_water {
            core.push_ready(token);
            return;
        }
        let Io::Stream(sock) = &mut e.io else { return };
        match sock.read(buf) {
            // EOF: the peer will send nothing more.
            Ok(0) => {
                trace!("  {} read EOF", Who(&e.service, token));
                e.peer_eof = true;
                if discard {
                    core.remove(token, CloseReason::Done);
                } else {
                    core.call(token, |h, cx| h.eof(cx));
                }
                return;
            }
            Ok(n) => {
                core.stats.bytes_in += n as u64;
                if discard {
                    trace!(
                        "  {} discarded {n} B while lingering",
                        Who(&e.service, token)
                    );
                } else {
                    trace!("  {} read {n} B", Who(&e.service, token));
                    core.touch(token);
                    core.call(token, |h, cx| h.data(cx, &buf[..n]));
                }
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    core.push_ready(token);
                    return;
                }
                if n < buf.len() && !until_would_block {
                    return;
                }
            }
            // Drained: the next arrival raises a new edge.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            // A signal interrupted the call before anything was read: try again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Reset or worse: nothing more will come, and nothing we send will arrive.
            Err(err) => {
                core.remove(token, CloseReason::from_io(err));
                return;
            }
        }
    }
}

/// Receives datagrams until the socket is empty or the budget is spent.
fn recv_datagrams(core: &mut Core, batch: &mut Option<Box<RecvBatch>>, token: Token) {
    // The receive slots (1 MiB of address space) exist only in reactors that have UDP.
    let batch = batch.get_or_insert_with(|| Box::new(RecvBatch::new()));
    for _ in 0..DATAGRAM_BUDGET / mmsg::BATCH {
        let Some(Entry {
            io: Io::Udp(udp),
            service,
            ..
        }) = entry_mut(&mut core.entries, token)
        else {
            return;
        };
        match batch.recv(udp.sock.as_raw_fd()) {
            Ok(n) => {
                trace!("  {} received {n} datagram(s)", Who(service, token));
                for i in 0..n {
                    let (data, from) = batch.get(i);
                    core.stats.datagrams_in += 1;
                    core.stats.bytes_in += data.len() as u64;
                    // A sender netloop cannot name (not IPv4/IPv6) cannot be answered anyway.
                    if let Some(from) = from {
                        core.call(token, |h, cx| h.datagram(cx, data, from));
                    }
                }
                // Fewer than a full batch: the socket's queue is empty now, and every
                // datagram that arrives later raises a new edge. Stopping here saves the
                // call that would only say WouldBlock.
                if n < mmsg::BATCH {
                    return;
                }
            }
            // Drained: the next datagram raises a new edge.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // An ICMP error queued on the socket (port unreachable for an earlier send):
            // reported once, the socket stays usable.
            Err(e) => debug!("{}: recvmmsg: {e}", Who(service, token)),
        }
    }
    // Budget spent with datagrams possibly still queued: continue next tick.
    core.push_ready(token);
}

/// Reads standard input (a line at a time from a terminal, chunks from a pipe or file).
fn read_stdin(core: &mut Core, buf: &mut [u8], token: Token) {
    let mut budget = core.config.read_budget;
    loop {
        let Some(e) = entry_mut(&mut core.entries, token) else {
            return;
        };
        if e.peer_eof || e.state != State::Open {
            return;
        }
        let Io::Stdin(stdin) = &mut e.io else { return };
        let pollable = stdin.pollable;
        match stdin.file.read(buf) {
            Ok(0) => {
                trace!("  {} stdin EOF", Who(&e.service, token));
                e.peer_eof = true;
                core.call(token, |h, cx| h.eof(cx));
                return;
            }
            Ok(n) => {
                core.stats.bytes_in += n as u64;
                trace!("  {} read {n} B from stdin", Who(&e.service, token));
                core.call(token, |h, cx| h.data(cx, &buf[..n]));
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    core.push_ready(token);
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if !pollable {
                    core.push_ready(token);
                }
                return;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                core.remove(token, CloseReason::Error(err));
                return;
            }
        }
    }
}
