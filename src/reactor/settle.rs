//! The end of every tick, for each entry touched in it: [`Core::settle`] flushes the
//! output queue (as much as the kernel takes), tells the state machine what the flush
//! means (closing: all written; a TLS upgrade: the plaintext before it written), applies
//! backpressure (stop reading past the high-water mark, resume under the low one) and
//! makes the entry's epoll interest follow its queue. Handlers only queue output; this is
//! where it is written, once per tick however many writes a handler made.

use super::Token;
use super::buffer::BufPool;
use super::core::{Core, reregister};
use super::entry::{Entry, Io, ShowInterest, Who};
use super::handler::CloseReason;
use super::lifecycle::{Input, State};
use super::stats::Stats;
use super::timer::Kind;
use log::trace;
use mio::Interest;
use std::io;
use std::os::fd::AsRawFd;

/// Bytes one connection may write in one `settle` when its handler keeps refilling the
/// queue from `drained` (a file being streamed); then it yields to the others until the
/// next tick. Twice the read budget's order: writing is the cheaper direction.
const WRITE_BUDGET: usize = 1024 * 1024;

impl Core {
    /// Settles every entry marked dirty during the tick (see [`settle`](Core::settle)).
    pub(crate) fn settle_dirty(&mut self) {
        while let Some(token) = self.dirty.pop() {
            self.settle(token);
        }
    }

    /// Brings one entry up to date after its handler (or the kernel) changed something:
    /// flush its output, tell the state machine what the flush means (closing: all written;
    /// an upgrade: the plaintext before it written), apply backpressure, fix its interest.
    pub(crate) fn settle(&mut self, token: Token) {
        if self.entries.get(token).is_some_and(|e| e.aborted) {
            self.end(token, CloseReason::Aborted);
            return;
        }
        let mut written = 0;
        // Asked for with `Other::request_drained`: `drained` runs even if nothing was
        // queued (a fan-out member pulls its next bytes right before its own write).
        let mut requested = self
            .entries
            .get_mut(token)
            .is_some_and(|e| std::mem::take(&mut e.drain_requested));
        let now_ms = self.now_ms();
        loop {
            let Some(e) = self.entries.get_mut(token) else {
                return;
            };
            e.dirty = false;
            let before = e.out.len();
            self.stats.peak_queue = self.stats.peak_queue.max(before as u64);
            match flush(e, &mut self.pool, &mut self.stats) {
                Ok(n) => {
                    written += n;
                    if n > 0 {
                        e.meter.bytes_out += n as u64;
                        e.meter.active_ms = now_ms;
                    }
                }
                Err(err) => {
                    self.end(token, CloseReason::from_io(err));
                    return;
                }
            }
            let Some(e) = self.entries.get_mut(token) else {
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
            let Some(e) = self.entries.get_mut(token) else {
                return;
            };
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
        if let Some(e) = self.entries.get_mut(token) {
            if e.out.is_empty() {
                e.out.clear(&mut self.pool);
            }
        }
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        e.dirty = false;
        let flushed = e.out.is_empty() && udp_backlog_empty(&e.io);
        match e.state {
            State::Closing if flushed => self.advance(token, Input::Flushed),
            State::Open if e.tls.as_ref().is_some_and(|p| p.plaintext_left == 0) => {
                self.advance(token, Input::UpgradeDue)
            }
            _ => {}
        }
        let high = self.config.high_water;
        let low = self.config.low_water;
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };

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

        // Interest follows the queue, for entries that have a file descriptor: a task or a
        // test bed's connection has none to register, and nothing to be ready.
        if matches!(e.io, Io::Task | Io::Detached) {
            return;
        }
        // Connecting: writable is how the kernel says the handshake finished. Handshaking:
        // the TLS handshake may wait for either direction, and it says which only by
        // returning WouldBlock, so both are watched (edge-triggered: each fires once).
        let in_handshake = matches!(e.state, State::Connecting | State::Handshaking { .. });
        let want_write = queued > 0 || in_handshake || !udp_backlog_empty(&e.io);
        let want_read = match e.io {
            Io::Listener(_) => true,
            Io::Stdin(ref s) => s.pollable && !e.peer_eof,
            _ => e.wants_read() || matches!(e.state, State::Handshaking { .. }),
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
                    self.end(token, CloseReason::Error(err));
                    return;
                }
                e.registered = Some(want);
            }
        }
    }
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
        // Not before the connection (and its TLS) is up: the bytes wait in the queue.
        Io::Stream(_) if matches!(e.state, State::Connecting | State::Handshaking { .. }) => Ok(0),
        Io::Stream(transport) => {
            let mut written = 0;
            let drains_on_short = transport.drains_on_short_io();
            // A TLS upgrade was asked for: only what was queued before it goes in plaintext.
            let mut plaintext_left = e.tls.as_ref().map(|p| p.plaintext_left);
            while !e.out.is_empty() {
                let mut pending = e.out.pending();
                if let Some(left) = plaintext_left {
                    if left == 0 {
                        break;
                    }
                    pending = &pending[..left.min(pending.len())];
                }
                match transport.write(pending) {
                    // The kernel accepted nothing into a non-empty buffer: treat as gone.
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        let short = n < pending.len();
                        if let Some(left) = plaintext_left.as_mut() {
                            *left -= n;
                        }
                        e.out.consume(n, pool);
                        written += n;
                        stats.bytes_out += n as u64;
                        // On plain TCP a short write means the send buffer is full: the next
                        // call would only return WouldBlock, so save the system call. (TLS
                        // takes one record per call: go on until WouldBlock.)
                        if short && drains_on_short {
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
            if let (Some(p), Some(left)) = (e.tls.as_mut(), plaintext_left) {
                p.plaintext_left = left;
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
            e.meter.bytes_out += done.bytes;
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
