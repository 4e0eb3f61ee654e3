//! A TCP connection's whole life, in one state machine: every state change of every entry
//! is made by [`Core::advance`], from the one `match` in [`step`].
//!
//! Read RFC 9293 §3.3.2 (TCP's own states: what `Lingering` waits for is the peer's FIN) and
//! RFC 8446 §2 (the TLS handshake that `Handshaking` drives). The states:
//!
//! ```text
//!   connect()          accept()                   accept() on a TLS listener
//!       │                 │                                   │
//!       ▼                 │                                   ▼
//!  Connecting ─Connected──┼──────────(TLS)──────────► Handshaking ─┐
//!       │                 │                             ▲      │   │
//!       └────Connected────┼──┐           UpgradeDue     │      │   │ Secured: opened()
//!                         ▼  ▼  (cx.start_tls, plaintext │      │   │ (an upgrade: no call)
//!                         Open ◄───────── flushed) ──────┘      │   │
//!                          │ ◄──────────────────────────────────┼───┘
//!                          │ Close (cx.close(), shutdown)       │ Close
//!                          ▼                                    │
//!                       Closing ◄───────────────────────────────┘
//!          Flushed, peer   │   Flushed (all output written)
//!          already closed  │   ──► FIN sent ──► Lingering ── PeerEof or LingerTimer ──► gone
//!             ──► gone     │
//!                          └── LingerTimer: the peer stopped reading ──► gone
//!
//!   Handshaking, NotTls (a plaintext client on a TLS port): FIN sent ──► Lingering.
//!   Any state, End(reason) (reset, read/write error, idle timeout, abort, shutdown,
//!   a failed connect or TLS handshake): gone at once: `closed()` runs, the socket closes.
//! ```
//!
//! `Lingering` is our FIN sent, the peer's leftovers read and discarded until its EOF or
//! the linger timer. (Closing a socket with unread input makes the kernel send RST, and an
//! RST can destroy the answer just sent before the peer reads it: an HTTP 413 that the
//! client never sees. Lingering is how nginx and Apache avoid that.)
//!
//! Listeners, UDP sockets and stdin use the same machine with fewer states: they are
//! `Open` from the start and leave through `Close` or `End`.

use super::Token;
use super::core::Core;
use super::entry::{Io, Who};
use super::handler::CloseReason;
use super::timer::{Kind, Timers};
use super::transport::Handshake;
use log::trace;
use std::fmt;

/// Where an entry is in its life. See the module docs for the transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// An outgoing connection waiting for the kernel to finish the TCP handshake.
    Connecting,
    /// The TLS handshake is under way: no plaintext moves. `upgrade`: the connection was
    /// open before (STARTTLS), so the handler has seen `opened` already.
    Handshaking {
        /// Started by [`Context::start_tls`](super::Context::start_tls) on an open connection.
        upgrade: bool,
    },
    /// Reading (unless the peer closed or backpressure paused it) and writing.
    Open,
    /// We asked to close: no more reading; flush, then close.
    Closing,
    /// Our FIN is sent; discarding the peer's leftovers until its EOF.
    Lingering,
    /// Being removed: the handler's `closed` runs; writes are dropped.
    Closed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Connecting => "Connecting",
            State::Handshaking { .. } => "Handshaking",
            State::Open => "Open",
            State::Closing => "Closing",
            State::Lingering => "Lingering",
            State::Closed => "Closed",
        })
    }
}

/// What can happen to an entry.
#[derive(Debug)]
pub(crate) enum Input {
    /// The kernel finished the TCP handshake of an outgoing connection.
    Connected,
    /// The TLS handshake finished.
    Secured,
    /// We are the TLS server and the peer did not start a handshake (a plaintext client).
    NotTls,
    /// The handler asked for TLS on an open connection, and the plaintext it queued before
    /// asking has all been written.
    UpgradeDue,
    /// The handler (or the reactor's shutdown) asked to close.
    Close,
    /// A closing entry's output has all been written.
    Flushed,
    /// The peer's end of stream, while lingering.
    PeerEof,
    /// The linger timer: the flush deadline while closing, the wait for the peer's FIN
    /// while lingering.
    LingerTimer,
    /// Nothing more can happen on this entry.
    End(CloseReason),
}

/// What a transition asks of the reactor besides the new state.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Nothing more.
    Stay,
    /// Run the handler's `opened` (and start the idle timeout).
    Opened,
    /// Start the TLS handshake.
    Handshake,
    /// Arm the flush deadline ([`Config::close_timeout`](super::Config::close_timeout)).
    FlushDeadline,
    /// Send our FIN (TLS: `close_notify` first), arm the linger timer, and read what is
    /// waiting next tick.
    Fin,
    /// Remove the entry; its handler's `closed` gets the reason.
    Remove(CloseReason),
}

/// What the transitions depend on besides the state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts {
    /// A TCP connection (the others have no FIN to send).
    pub stream: bool,
    /// A TLS role is waiting to be used (a TLS connect, an upgrade asked for).
    pub tls_pending: bool,
    /// The peer closed its sending side.
    pub peer_eof: bool,
}

/// The state machine: the next state and what to do, or `None` when the input means
/// nothing in this state (a second close, a timer that lost a race).
pub(crate) fn step(state: State, input: Input, facts: Facts) -> Option<(State, Effect)> {
    use Effect::*;
    use State::*;
    let next = match (state, input) {
        // Already being removed: a `closed` callback that closes again changes nothing.
        (Closed, _) => return None,
        (_, Input::End(reason)) => (Closed, Remove(reason)),
        (Connecting, Input::Connected) if facts.tls_pending => {
            (Handshaking { upgrade: false }, Handshake)
        }
        (Connecting, Input::Connected) => (Open, Opened),
        (Handshaking { upgrade: false }, Input::Secured) => (Open, Opened),
        (Handshaking { upgrade: true }, Input::Secured) => (Open, Stay),
        // Closed politely, as a plaintext client's request is read and dropped while
        // lingering: an RST could arrive before our FIN and read as a network fault.
        (Handshaking { .. }, Input::NotTls) => (Lingering, Fin),
        (Open, Input::UpgradeDue) => (Handshaking { upgrade: true }, Handshake),
        (Connecting | Handshaking { .. } | Open, Input::Close) => (Closing, FlushDeadline),
        (Closing, Input::Flushed) if facts.peer_eof => (Closed, Remove(CloseReason::PeerClosed)),
        (Closing, Input::Flushed) if !facts.stream => (Closed, Remove(CloseReason::Done)),
        (Closing, Input::Flushed) => (Lingering, Fin),
        (Closing, Input::LingerTimer) => (Closed, Remove(CloseReason::FlushTimeout)),
        (Lingering, Input::LingerTimer | Input::PeerEof) => (Closed, Remove(CloseReason::Done)),
        _ => return None,
    };
    Some(next)
}

impl Core {
    /// Moves `token`'s entry by `input` (see [`step`]) and carries out the effect.
    pub(crate) fn advance(&mut self, token: Token, input: Input) {
        let now = self.now;
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        let facts = Facts {
            stream: matches!(e.io, Io::Stream(_)),
            tls_pending: e.tls.is_some(),
            peer_eof: e.peer_eof,
        };
        let from = e.state;
        let Some((to, effect)) = step(from, input, facts) else {
            return;
        };
        e.state = to;
        // Removal traces itself, with the reason.
        if to != State::Closed {
            let why = match effect {
                Effect::Fin => " (FIN sent)",
                Effect::Handshake => " (TLS handshake)",
                _ => "",
            };
            trace!("  {} state {from} -> {to}{why}", Who(&e.service, token));
        }
        match effect {
            Effect::Stay => {}
            Effect::Opened => {
                self.touch(token);
                self.call(token, |h, cx| h.opened(cx));
            }
            Effect::Handshake => self.handshake(token),
            Effect::FlushDeadline => {
                // The flush gets a deadline: a peer that never reads must not pin us.
                // (A test bed's detached connection stands in for a TCP one: it gets one too.)
                let deadline = now + self.config.close_timeout;
                if matches!(e.io, Io::Stream(_) | Io::Detached) {
                    self.timers
                        .arm(&mut e.timers, token, Kind::Linger, deadline);
                }
                self.mark_dirty(token);
            }
            Effect::Fin => {
                if let Io::Stream(transport) = &mut e.io {
                    transport.shutdown_write();
                }
                let deadline = now + self.config.linger;
                self.timers
                    .arm(&mut e.timers, token, Kind::Linger, deadline);
                // Input may already be waiting: read it next tick.
                self.push_ready(token);
            }
            Effect::Remove(reason) => self.remove(token, reason),
        }
    }

    /// Ends the entry at once (`Input::End`).
    pub(crate) fn end(&mut self, token: Token, reason: CloseReason) {
        self.advance(token, Input::End(reason));
    }

    /// Starts or resumes `token`'s TLS handshake, and moves it on when it is done.
    pub(crate) fn handshake(&mut self, token: Token) {
        let Some(e) = self.entries.get_mut(token) else {
            return;
        };
        let Io::Stream(transport) = &mut e.io else {
            return;
        };
        // The first step arms the handshake's deadline; every later one finds it armed.
        if !Timers::is_armed(&e.timers, Kind::Handshake) {
            let deadline = self.now + self.config.handshake_timeout;
            self.timers
                .arm(&mut e.timers, token, Kind::Handshake, deadline);
        }
        match transport.handshake(&mut e.tls) {
            Ok(Handshake::Pending) => {
                trace!(
                    "  {} TLS handshake: waiting for the peer",
                    Who(&e.service, token)
                );
            }
            Ok(Handshake::Refused) => {
                log::debug!(
                    "{}: not a TLS handshake from the peer: closing",
                    Who(&e.service, token)
                );
                self.stats.tls_failures += 1;
                e.tls = None;
                self.advance(token, Input::NotTls);
            }
            Ok(Handshake::Done) => {
                trace!("  {} TLS handshake done", Who(&e.service, token));
                Timers::cancel(&mut e.timers, Kind::Handshake);
                self.stats.tls_handshakes += 1;
                self.advance(token, Input::Secured);
                // Application data may have come with the handshake's last flight and sit
                // decrypted in the TLS layer: no new edge will announce it. Read next tick.
                self.push_ready(token);
                self.mark_dirty(token);
            }
            Err(err) => {
                self.stats.tls_failures += 1;
                self.end(token, CloseReason::Tls(err));
            }
        }
    }

    /// Removes an entry now: the handler's `closed` runs, the socket is closed.
    fn remove(&mut self, token: Token, reason: CloseReason) {
        if let Some(e) = self.entries.get(token) {
            trace!("  {} closed ({reason})", Who(&e.service, token));
        }
        self.call(token, |h, cx| h.closed(cx, &reason));
        let mut e = self.entries.remove(token);
        e.out.clear(&mut self.pool);
        if let Io::Listener(l) = &e.io {
            self.unused_reserve -= l.reserved.saturating_sub(l.open);
        }
        if let Some(listener) = e.listener {
            self.count_closed(listener);
        }
        if e.counted {
            self.stats.open_connections -= 1;
            self.resume_listeners();
        }
        // Dropping `e` closes the fd, which also removes it from the epoll set (the kernel
        // does so when the last descriptor for the file closes; netloop never dups one).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: Facts = Facts {
        stream: true,
        tls_pending: false,
        peer_eof: false,
    };

    fn to(state: State, input: Input, facts: Facts) -> Option<State> {
        step(state, input, facts).map(|(s, _)| s)
    }

    #[test]
    fn a_plain_connection_opens_closes_lingers_and_goes() {
        assert_eq!(
            to(State::Connecting, Input::Connected, TCP),
            Some(State::Open)
        );
        assert_eq!(to(State::Open, Input::Close, TCP), Some(State::Closing));
        assert_eq!(
            to(State::Closing, Input::Flushed, TCP),
            Some(State::Lingering)
        );
        assert_eq!(
            to(State::Lingering, Input::PeerEof, TCP),
            Some(State::Closed)
        );
    }

    #[test]
    fn tls_connections_handshake_before_they_open() {
        let tls = Facts {
            tls_pending: true,
            ..TCP
        };
        let first = State::Handshaking { upgrade: false };
        assert_eq!(to(State::Connecting, Input::Connected, tls), Some(first));
        assert!(matches!(
            step(first, Input::Secured, TCP),
            Some((State::Open, Effect::Opened))
        ));
        // An upgrade: the handler saw `opened` long ago.
        let upgrade = State::Handshaking { upgrade: true };
        assert_eq!(to(State::Open, Input::UpgradeDue, tls), Some(upgrade));
        assert!(matches!(
            step(upgrade, Input::Secured, TCP),
            Some((State::Open, Effect::Stay))
        ));
    }

    #[test]
    fn closing_ends_by_the_peer_or_by_the_timers() {
        let eof = Facts {
            peer_eof: true,
            ..TCP
        };
        assert!(matches!(
            step(State::Closing, Input::Flushed, eof),
            Some((State::Closed, Effect::Remove(CloseReason::PeerClosed)))
        ));
        assert!(matches!(
            step(State::Closing, Input::LingerTimer, TCP),
            Some((State::Closed, Effect::Remove(CloseReason::FlushTimeout)))
        ));
        assert!(matches!(
            step(State::Lingering, Input::LingerTimer, TCP),
            Some((State::Closed, Effect::Remove(CloseReason::Done)))
        ));
    }

    #[test]
    fn inputs_that_mean_nothing_in_a_state_change_nothing() {
        assert_eq!(to(State::Closing, Input::Close, TCP), None);
        assert_eq!(to(State::Open, Input::Flushed, TCP), None);
        assert_eq!(to(State::Open, Input::LingerTimer, TCP), None);
        assert_eq!(to(State::Closed, Input::End(CloseReason::Reset), TCP), None);
        assert_eq!(
            to(State::Lingering, Input::End(CloseReason::Reset), TCP),
            Some(State::Closed)
        );
    }
}
