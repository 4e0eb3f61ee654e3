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
//! `write(2)`. Read on in data-flow order: `io_loops.rs` for the I/O loops (accept, read,
//! receive), `transport.rs` for the byte path (plain TCP or TLS over it), `lifecycle.rs`
//! for a connection's life as one state machine, `core.rs` for the flush and the interest
//! that follows the queue (`settle`), `timer.rs` for the deadline heap, `buffer.rs` for the
//! output queues.
//!
//! # Watching it
//!
//! `RUST_LOG=netloop=trace` prints every tick: what `poll` returned and, per event, the
//! bytes read and written, interest and state changes, with `service#key.generation`.

mod admission;
mod buffer;
mod config;
mod context;
mod core;
mod entry;
mod handler;
mod io_loops;
mod lifecycle;
mod mmsg;
pub mod notify;
pub mod resolver;
mod settle;
mod stats;
pub mod tap;
pub mod testing;
mod timer;
pub mod tls;
mod token;
mod transport;
pub mod watch;

pub use config::{Config, FD_RESERVE, READ_BUFFER, open_file_limit};
pub use context::{Context, Other};
pub use handler::{CloseReason, Handler};
pub use notify::{Notifier, Report};
pub use resolver::{LookupId, Resolve};
pub use stats::{Counter, Stats};
pub use timer::TimerId;
pub use tls::{ClientTls, ServerTls, TlsConfigError, TlsRole};
pub use token::Token;
pub use watch::{Page, Snapshot};

use config::EVENTS_PER_POLL;
use core::Core;
use entry::{Io, Listener, Source, Stdin, Udp, Who};
use io_loops::{accept, finish_connect, read_stdin, read_stream, recv_datagrams};
use lifecycle::State;
use log::{debug, info, log_enabled, trace, warn};
use mio::{Events, Interest, Poll, Waker};
use mmsg::RecvBatch;
use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Per-listener settings.
///
/// Every TCP connection counts against [`Config::max_connections`]; the two limits here
/// divide it between listeners, so that one service's clients cannot take every slot from
/// another's (a chat's members stay connected for hours; HTTP clients come and go):
///
/// - `max_connections` caps this listener's own connections;
/// - `reserved` keeps slots for it: other listeners stop accepting while taking one more
///   would leave fewer free slots than the reservations not yet in use. So each listener
///   can always reach its reservation, whatever the others hold, and above it the free
///   slots are shared first come, first served.
///
/// A listener at a limit stops accepting (clients wait in the kernel's backlog) and
/// resumes when a connection closes, as at the global limit.
#[derive(Clone, Debug, Default)]
pub struct ListenOptions {
    /// Close accepted connections after this long without a byte moving either way.
    pub idle_timeout: Option<Duration>,
    /// Most connections from this listener open at once (none: only the global limit).
    pub max_connections: Option<usize>,
    /// Connections kept for this listener out of [`Config::max_connections`] (default 0).
    /// Reservations together never exceed the global limit: one that would is cut to what
    /// is left, with a warning.
    pub reserved: usize,
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

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("core", &self.core)
            .field("handles_signals", &self.signals.is_some())
            .finish_non_exhaustive()
    }
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
            core: Core::new(registry, Arc::clone(&waker), config),
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
        self.listen_on(service, addr, options, None, Box::new(factory))
    }

    /// [`listen_with`](Reactor::listen_with), TLS from the first byte: every accepted
    /// connection first completes a TLS handshake with `tls`'s certificate (driven by
    /// readiness, never blocking the loop), and its handler's `opened` runs after it. The
    /// handler reads and writes plaintext. A peer whose handshake fails (a plaintext client,
    /// a certificate it refused) is closed and logged; the others are not disturbed.
    pub fn listen_tls<F>(
        &mut self,
        service: &str,
        addr: SocketAddr,
        options: ListenOptions,
        tls: ServerTls,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> Box<dyn Handler> + 'static,
    {
        self.listen_on(service, addr, options, Some(tls), Box::new(factory))
    }

    fn listen_on(
        &mut self,
        service: &str,
        addr: SocketAddr,
        options: ListenOptions,
        tls: Option<ServerTls>,
        factory: entry::Factory,
    ) -> io::Result<SocketAddr> {
        let sock = mio::net::TcpListener::bind(addr)?;
        let local = sock.local_addr()?;
        let tls_listener = tls.is_some();
        let reserved = self.core.reserve(service, options.reserved);
        let listener = Listener {
            sock,
            factory,
            idle_timeout: options.idle_timeout,
            tls,
            paused: false,
            open: 0,
            max_connections: options.max_connections,
            reserved,
        };
        let token = self.core.insert(
            service.into(),
            Io::Listener(Box::new(listener)),
            State::Open,
            Some(Interest::READABLE),
            None,
        )?;
        debug!(
            "{} listening on {local}{}",
            Who(service, token),
            if tls_listener { " (TLS)" } else { "" }
        );
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
        context::connect(&mut self.core, service.into(), addr, None, handler)
    }

    /// Opens an outgoing TLS connection (see [`Context::connect_tls`]).
    pub fn connect_tls(
        &mut self,
        service: &str,
        addr: SocketAddr,
        tls: ClientTls,
        server_name: &str,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let role = TlsRole::client(tls, server_name);
        context::connect(&mut self.core, service.into(), addr, Some(role), handler)
    }

    /// Adds a task: an entry with no socket, whose handler runs on timers, name lookups
    /// ([`Context::resolve`]) and the connections it opens ([`Context::connect`]). Its
    /// `opened` runs now; it leaves when it closes itself (or another entry closes it).
    /// The HTTP client's session and the downloader are tasks: the work outlives any one
    /// connection. So is the load generator's clock, a task with nothing but timers: a
    /// timer that belongs to no connection.
    pub fn spawn(&mut self, service: &str, handler: Box<dyn Handler>) -> io::Result<Token> {
        let token = self
            .core
            .insert(service.into(), Io::Task, State::Open, None, Some(handler))?;
        self.core.call(token, |h, cx| h.opened(cx));
        Ok(token)
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
        let Some(e) = self.core.entries.get_mut(token) else {
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
                self.core.entries.remove(token);
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
            // Read for the trace and for a watcher of `/loop` only (every clock read is a
            // vDSO call; the tick reads its own after `poll`).
            let watched = self.core.watchers > 0;
            let started = (watched || log_enabled!(log::Level::Trace)).then(Instant::now);
            if let (true, Some(at)) = (watched, started) {
                // The previous tick's work ran from its `now` until this moment.
                let work = at.saturating_duration_since(self.core.now);
                self.core.loop_times.work_ns += work.as_nanos() as u64;
            }
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                // A signal interrupted epoll_wait: just poll again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.core.now = Instant::now();
            self.core.stats.ticks += 1;
            if let (true, Some(at)) = (watched, started) {
                let waited = self.core.now.saturating_duration_since(at);
                self.core.loop_times.poll_ns += waited.as_nanos() as u64;
            }
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
            self.core.fire_timers();
            self.core.settle_dirty();
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
                // Another thread wants the loop: a shutdown, finished name lookups, or reports
                // from a service's helper threads (notify.rs).
                token::WAKER => {
                    if self.shutdown_requested.load(Ordering::Acquire) {
                        self.core.shutdown_requested = true;
                    }
                    self.core.deliver_lookups();
                    self.core.deliver_reports();
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
                    let Some(e) = self.core.entries.get(token) else {
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
                        Source::Stream if matches!(state, State::Handshaking { .. }) => {
                            self.core.handshake(token);
                            self.core.mark_dirty(token);
                        }
                        Source::Stream => {
                            // An error event (EPOLLERR: a reset, a refused write) is read
                            // too: `read` is what returns the error itself, so the entry
                            // ends with the real reason (`Reset`) rather than a guess.
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
                        Source::Detached | Source::Task => {}
                    }
                }
            }
        }
    }

    /// Services the entries queued last tick (budget exhausted, listener resumed, stdin that
    /// epoll cannot watch) as if an event had arrived.
    fn run_ready(&mut self, ready: VecDeque<Token>) {
        for token in ready {
            if let Some(e) = self.core.entries.get_mut(token) {
                e.in_ready = false;
            }
            let Some(e) = self.core.entries.get(token) else {
                continue;
            };
            let paused = matches!(&e.io, Io::Listener(l) if l.paused);
            match (e.io.source(), e.state) {
                (Source::Listener, _) if !paused => accept(&mut self.core, token),
                (Source::Stream, State::Handshaking { .. }) => self.core.handshake(token),
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

    fn check_shutdown(&mut self) {
        if !self.core.shutdown_requested || self.core.shutdown_deadline.is_some() {
            return;
        }
        let grace = self.core.config.shutdown_grace;
        self.core.shutdown_deadline = Some(Instant::now() + grace);
        let tokens: Vec<Token> = self.core.entries.iter().map(|e| e.token).collect();
        info!(
            "shutting down: listeners closed, {} entries get {grace:?} to finish",
            tokens.len()
        );
        for token in tokens {
            match self.core.entries.get(token).map(|e| e.io.source()) {
                Some(Source::Listener) => self.core.end(token, CloseReason::Shutdown),
                Some(_) => self.core.call(token, |h, cx| h.shutdown(cx)),
                None => {}
            }
        }
        self.core.settle_dirty();
    }

    fn drop_everything(&mut self) {
        let tokens: Vec<Token> = self.core.entries.iter().map(|e| e.token).collect();
        warn!(
            "shutdown grace period over: dropping {} entries",
            tokens.len()
        );
        for token in tokens {
            self.core.end(token, CloseReason::Shutdown);
        }
    }
}
