//! The I/O loops: what the reactor does with one entry when it is ready. Each spells out
//! its readiness contract, one arm per outcome of the system call (`Ok(0)` end of stream,
//! `Ok(n)`, `WouldBlock` stop, `Interrupted` retry, anything else: the entry ends).
//!
//! - [`accept`]: a listener, until the kernel's queue is empty or a limit is hit;
//! - [`finish_connect`]: an outgoing connection's TCP handshake, finished or failed;
//! - [`read_stream`]: a TCP connection (plain or TLS, through its transport) into its handler;
//! - [`recv_datagrams`]: a UDP socket, a batch of datagrams per system call;
//! - [`read_stdin`]: standard input, for interactive clients.
//!
//! Writing is not here: handlers only queue output, and `Core::settle` flushes each queue
//! once per tick.

use super::Token;
use super::admission::pause_listener;
use super::config::{ACCEPT_BUDGET, DATAGRAM_BUDGET};
use super::core::Core;
use super::entry::{Entry, Io, Who};
use super::handler::CloseReason;
use super::lifecycle::{Input, State};
use super::mmsg::{self, RecvBatch};
use super::tls::{PendingTls, TlsRole};
use super::transport::Transport;
use log::{debug, trace, warn};
use mio::Interest;
use std::io::{self, Read};
use std::os::fd::AsRawFd;

/// Accepts until the kernel's queue is empty, the budget is spent, or a limit is hit.
pub(crate) fn accept(core: &mut Core, token: Token) {
    for _ in 0..ACCEPT_BUDGET {
        if !core.may_accept(token) {
            pause_listener(core, token, None);
            return;
        }
        let Some(Entry {
            io: Io::Listener(l),
            service,
            ..
        }) = core.entries.get_mut(token)
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
        let tls = l.tls.clone();
        let service = service.clone();
        // A TLS listener's connections start in the handshake; `opened` waits for its end.
        let (state, interest) = match tls {
            Some(_) => (
                State::Handshaking { upgrade: false },
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => (State::Open, Interest::READABLE),
        };
        let new = match core.insert(
            service.clone(),
            Io::Stream(Transport::Tcp(sock)),
            state,
            Some(interest),
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
        if let Some(e) = core.entries.get_mut(new) {
            e.idle_timeout = idle;
            e.tls = tls.map(|server| PendingTls::new(TlsRole::Server(server)));
            e.listener = Some(token);
        }
        core.count_accepted(token);
        trace!(
            "  {} accepted {peer} as {} ({} open)",
            Who(&service, token),
            Who(&service, new),
            core.stats.open_connections
        );
        // The idle timeout runs from the accept: a peer that never finishes its TLS
        // handshake is closed by it like one that never sends a request.
        core.touch(new);
        if state == State::Open {
            core.call(new, |h, cx| h.opened(cx));
        } else {
            core.handshake(new);
        }
    }
    // Budget spent with connections possibly still queued: continue next tick.
    core.push_ready(token);
}

/// An outgoing connection reported readiness: did the TCP handshake succeed?
pub(crate) fn finish_connect(core: &mut Core, token: Token) {
    let Some(Entry {
        io: Io::Stream(transport),
        service,
        ..
    }) = core.entries.get_mut(token)
    else {
        return;
    };
    let Some(sock) = transport.socket() else {
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
            core.advance(token, Input::Connected);
        }
        Err(e) => core.end(token, CloseReason::ConnectFailed(e)),
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
/// Under TLS a short read says nothing (see `transport.rs`): the loop always reads on.
pub(crate) fn read_stream(core: &mut Core, buf: &mut [u8], token: Token, until_would_block: bool) {
    let mut budget = core.config.read_budget;
    let now_ms = core.now_ms();
    loop {
        let Some(e) = core.entries.get_mut(token) else {
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
        let Io::Stream(transport) = &mut e.io else {
            return;
        };
        let drains_on_short = transport.drains_on_short_io();
        match transport.read(buf) {
            // EOF: the peer will send nothing more.
            Ok(0) => {
                trace!("  {} read EOF", Who(&e.service, token));
                e.peer_eof = true;
                if discard {
                    core.advance(token, Input::PeerEof);
                } else {
                    core.call(token, |h, cx| h.eof(cx));
                }
                return;
            }
            Ok(n) => {
                core.stats.bytes_in += n as u64;
                e.meter.bytes_in += n as u64;
                e.meter.active_ms = now_ms;
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
                if n < buf.len() && !until_would_block && drains_on_short {
                    return;
                }
            }
            // Drained: the next arrival raises a new edge.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            // A signal interrupted the call before anything was read: try again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Reset or worse: nothing more will come, and nothing we send will arrive.
            Err(err) => {
                core.end(token, CloseReason::from_io(err));
                return;
            }
        }
    }
}

/// Receives datagrams until the socket is empty or the budget is spent.
pub(crate) fn recv_datagrams(core: &mut Core, batch: &mut Option<Box<RecvBatch>>, token: Token) {
    // The receive slots (1 MiB of address space) exist only in reactors that have UDP.
    let batch = batch.get_or_insert_with(|| Box::new(RecvBatch::new()));
    for _ in 0..DATAGRAM_BUDGET / mmsg::BATCH {
        let Some(Entry {
            io: Io::Udp(udp),
            service,
            ..
        }) = core.entries.get_mut(token)
        else {
            return;
        };
        match batch.recv(udp.sock.as_raw_fd()) {
            Ok(n) => {
                trace!("  {} received {n} datagram(s)", Who(service, token));
                let now_ms = core.now_ms();
                if let Some(e) = core.entries.get_mut(token) {
                    e.meter.bytes_in += (0..n).map(|i| batch.get(i).0.len() as u64).sum::<u64>();
                    e.meter.active_ms = now_ms;
                }
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
pub(crate) fn read_stdin(core: &mut Core, buf: &mut [u8], token: Token) {
    let mut budget = core.config.read_budget;
    loop {
        let Some(e) = core.entries.get_mut(token) else {
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
                core.end(token, CloseReason::Error(err));
                return;
            }
        }
    }
}
