//! A picture of the running reactor: every entry in the slab, the listeners, the armed
//! timers and the loop's counters, as plain data (serialised as JSON for `/loop/state`).
//!
//! Taking one walks the slab once: O(entries), with no allocation per entry beyond its row
//! (and rows past the page are counted, not made). Nothing here runs unless someone asks:
//! a reactor that is not watched keeps only the counters it keeps anyway (`Stats`, and each
//! entry's [`Meter`](super::entry::Meter) of bytes and times).
//!
//! Each connection's *protocol* state comes from its handler
//! ([`Handler::state_name`](super::Handler::state_name): `ReadingHead`, `Data`,
//! `Chatting`...); the reactor itself knows only the connection's life (`Connecting`,
//! `Handshaking`, `Open`, `Closing`, `Lingering`). The reactor stays ignorant of protocols.

use super::Stats;
use super::core::Core;
use super::entry::{Io, Source};
use super::lifecycle::State;
use super::timer::Kind;
use serde::Serialize;
use std::net::SocketAddr;

/// Rows a snapshot holds at most by default: a page of 1,000 is a few hundred KiB of JSON,
/// which a browser renders in a blink; 10,000 connections are paged, not dumped.
pub const PAGE: usize = 1000;

/// Which rows to put in a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Skip this many connections (in slab order).
    pub offset: usize,
    /// Then take at most this many.
    pub limit: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: PAGE,
        }
    }
}

/// The reactor at one tick.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Milliseconds since the reactor started.
    pub now_ms: u32,
    /// Connections (TCP, UDP sockets, stdin, tasks) in slab order: one page of them.
    pub connections: Vec<ConnectionRow>,
    /// How many connections there are in all (the page may hold fewer).
    pub total: usize,
    /// The page's first row's position among all of them.
    pub offset: usize,
    /// Connections by service, over all of them (not only the page).
    pub by_service: Vec<(String, usize)>,
    /// Every listener.
    pub listeners: Vec<ListenerRow>,
    /// Armed timers by kind, over every entry.
    pub timers: TimerCounts,
    /// The reactor's counters since it started.
    pub stats: Stats,
    /// Where the loop's time went, while it was watched.
    pub loop_times: LoopTimes,
    /// Connections watching the loop now.
    pub watchers: u32,
}

/// Where the loop's time went, counted only while someone watches (a `/loop/events`
/// stream is open): nanoseconds waiting in `poll` (idle), and working (handlers, reads,
/// writes, timers). A watcher takes the difference between two snapshots.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LoopTimes {
    /// In `epoll_wait`.
    pub poll_ns: u64,
    /// Between one `poll` returning and the next being called.
    pub work_ns: u64,
}

/// One connection, as the `/loop` page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRow {
    /// The token: `#key.generation`, as traces write it.
    pub token: String,
    /// The slab key and generation apart.
    pub key: usize,
    /// See [`key`](Self::key).
    pub generation: u32,
    /// The service's name.
    pub service: String,
    /// `tcp`, `udp`, `stdin`, `task`.
    pub kind: String,
    /// The peer's address (TCP).
    pub peer: Option<SocketAddr>,
    /// The protocol's state, by name, from the handler.
    pub state: &'static str,
    /// The connection's life, from the reactor: `Open`, `Closing`...
    pub life: String,
    /// TLS (established or being handshaken).
    pub tls: bool,
    /// Bytes read from it and written to it.
    pub bytes_in: u64,
    /// See [`bytes_in`](Self::bytes_in).
    pub bytes_out: u64,
    /// Output queued and not yet taken by the kernel.
    pub queued: usize,
    /// Reading is paused by backpressure.
    pub read_paused: bool,
    /// Milliseconds since it was opened.
    pub age_ms: u32,
    /// Milliseconds since a byte last moved.
    pub idle_ms: u32,
}

/// One listener.
#[derive(Clone, Debug, Serialize)]
pub struct ListenerRow {
    /// `#key.generation`, as traces write it.
    pub token: String,
    /// The service's name.
    pub service: String,
    /// Where it listens.
    pub addr: Option<SocketAddr>,
    /// Not accepting: the connection limit or the file-descriptor limit was reached.
    pub paused: bool,
    /// TLS from the first byte.
    pub tls: bool,
    /// Connections it accepted that are open now.
    pub open: usize,
    /// Connections kept for it out of the reactor's limit (`ListenOptions::reserved`).
    pub reserved: usize,
}

/// Armed timers, by what they are for.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TimerCounts {
    /// Handlers' own timers (header timeouts, SMTP deadlines, chat pings...).
    pub handler: usize,
    /// Idle timeouts.
    pub idle: usize,
    /// TLS handshakes' deadlines.
    pub handshake: usize,
    /// Lingering closes waiting for the peer's FIN.
    pub linger: usize,
    /// Listeners waiting to try `accept` again after running out of descriptors.
    pub accept_retry: usize,
}

impl Core {
    /// The reactor as it is now; `page` chooses the connection rows.
    pub(crate) fn snapshot(&self, page: Page) -> Snapshot {
        let now_ms = self.now_ms();
        let mut snap = Snapshot {
            now_ms,
            connections: Vec::new(),
            total: 0,
            offset: page.offset,
            by_service: Vec::new(),
            listeners: Vec::new(),
            timers: TimerCounts::default(),
            stats: self.stats.clone(),
            loop_times: self.loop_times,
            watchers: self.watchers,
        };
        for e in self.entries.iter() {
            for slot in &e.timers {
                match slot.kind() {
                    Kind::Handler(_) => snap.timers.handler += 1,
                    Kind::Idle => snap.timers.idle += 1,
                    Kind::Handshake => snap.timers.handshake += 1,
                    Kind::Linger => snap.timers.linger += 1,
                    Kind::AcceptRetry => snap.timers.accept_retry += 1,
                }
            }
            if let Io::Listener(l) = &e.io {
                snap.listeners.push(ListenerRow {
                    token: e.token.to_string(),
                    service: e.service.to_string(),
                    addr: l.sock.local_addr().ok(),
                    paused: l.paused,
                    tls: l.tls.is_some(),
                    open: l.open,
                    reserved: l.reserved,
                });
                continue;
            }
            match snap.by_service.iter_mut().find(|(s, _)| **s == *e.service) {
                Some((_, n)) => *n += 1,
                None => snap.by_service.push((e.service.to_string(), 1)),
            }
            let position = snap.total;
            snap.total += 1;
            if position < page.offset || snap.connections.len() >= page.limit {
                continue;
            }
            let (peer, tls) = match &e.io {
                Io::Stream(t) => (t.socket().and_then(|s| s.peer_addr().ok()), t.is_tls()),
                _ => (None, false),
            };
            snap.connections.push(ConnectionRow {
                token: e.token.to_string(),
                key: e.token.key(),
                generation: e.token.generation(),
                service: e.service.to_string(),
                kind: kind_name(e.io.source()).to_string(),
                peer,
                // A handler that is running now (the one asking) is out of its entry.
                state: e.handler.as_ref().map_or("Running", |h| h.state_name()),
                life: life_name(e.state).to_string(),
                tls: tls || e.tls.is_some(),
                bytes_in: e.meter.bytes_in,
                bytes_out: e.meter.bytes_out,
                queued: e.out.len(),
                read_paused: e.read_paused,
                age_ms: now_ms.saturating_sub(e.meter.opened_ms),
                idle_ms: now_ms.saturating_sub(e.meter.active_ms),
            });
        }
        snap
    }
}

fn kind_name(source: Source) -> &'static str {
    match source {
        Source::Listener => "listener",
        Source::Stream => "tcp",
        Source::Udp => "udp",
        Source::Stdin => "stdin",
        Source::Detached => "detached",
        Source::Task => "task",
    }
}

fn life_name(state: State) -> &'static str {
    match state {
        State::Connecting => "Connecting",
        State::Handshaking { .. } => "Handshaking",
        State::Open => "Open",
        State::Closing => "Closing",
        State::Lingering => "Lingering",
        State::Closed => "Closed",
    }
}
