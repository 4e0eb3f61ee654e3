//! Counters the reactor keeps: cheap enough to update on every event, useful enough to
//! print at `/stats` or at exit.

use std::fmt;

/// Counters of one reactor, since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// TCP connections open now (accepted and outgoing).
    pub open_connections: u64,
    /// TCP connections ever opened.
    pub total_connections: u64,
    /// Bytes read from TCP connections, UDP sockets and stdin.
    pub bytes_in: u64,
    /// Bytes written to TCP connections and UDP sockets.
    pub bytes_out: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams dropped because the socket's backlog was full, or sending failed.
    pub datagrams_dropped: u64,
    /// Times `poll` returned.
    pub ticks: u64,
    /// Readiness events handled.
    pub events: u64,
    /// Events for connections that were already gone (dropped by their generation).
    pub stale_events: u64,
    /// Times a listener stopped accepting (connection limit or fd limit).
    pub accept_pauses: u64,
    /// Times a connection's reading was paused by backpressure.
    pub read_pauses: u64,
    /// The longest output queue seen on one connection, in bytes (measured before each
    /// flush): what backpressure holds bounded.
    pub peak_queue: u64,
    /// TLS handshakes completed (both roles, upgrades included).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (a plaintext client on a TLS port, a certificate refused).
    pub tls_failures: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections open={} total={}, bytes in={} out={}, datagrams in={} out={} dropped={}, \
             ticks={} events={} stale={}, accept pauses={}, read pauses={}, peak queue={} B, \
             tls handshakes={} failed={}",
            self.open_connections,
            self.total_connections,
            self.bytes_in,
            self.bytes_out,
            self.datagrams_in,
            self.datagrams_out,
            self.datagrams_dropped,
            self.ticks,
            self.events,
            self.stale_events,
            self.accept_pauses,
            self.read_pauses,
            self.peak_queue,
            self.tls_handshakes,
            self.tls_failures
        )
    }
}
