//! Counters the reactor keeps: cheap enough to update on every event, useful enough to
//! print at `/stats` or at exit.

use std::fmt;

/// Counters of one reactor, since it started. How each is named and shown is written once,
/// in [`Stats::counters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

impl Stats {
    /// Every counter, in order: the one list that the summary line ([`fmt::Display`]), the
    /// JSON of the watch page's snapshot ([`serde::Serialize`]) and `/stats` are written
    /// from. A new field goes here too: the destructuring below names every field, so
    /// leaving one out does not compile.
    pub fn counters(&self) -> [Counter; 15] {
        let Stats {
            open_connections,
            total_connections,
            bytes_in,
            bytes_out,
            datagrams_in,
            datagrams_out,
            datagrams_dropped,
            ticks,
            events,
            stale_events,
            accept_pauses,
            read_pauses,
            peak_queue,
            tls_handshakes,
            tls_failures,
        } = *self;
        let c = Counter::new;
        [
            c("open_connections", "connections", "open", open_connections),
            c(
                "total_connections",
                "connections",
                "total",
                total_connections,
            ),
            c("bytes_in", "bytes", "in", bytes_in),
            c("bytes_out", "bytes", "out", bytes_out),
            c("datagrams_in", "datagrams", "in", datagrams_in),
            c("datagrams_out", "datagrams", "out", datagrams_out),
            c(
                "datagrams_dropped",
                "datagrams",
                "dropped",
                datagrams_dropped,
            ),
            c("ticks", "", "ticks", ticks),
            c("events", "", "events", events),
            c("stale_events", "", "stale", stale_events),
            c("accept_pauses", "accept", "pauses", accept_pauses),
            c("read_pauses", "read", "pauses", read_pauses),
            Counter {
                unit: " B",
                ..c("peak_queue", "peak", "queue", peak_queue)
            },
            c("tls_handshakes", "tls", "handshakes", tls_handshakes),
            c("tls_failures", "tls", "failed", tls_failures),
        ]
    }
}

/// One counter of [`Stats::counters`]: its value, and how the JSON and the summary line
/// name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The field's name, which is also its JSON key: `bytes_in`.
    pub key: &'static str,
    /// The word the summary line writes once before a run of counters that share it:
    /// `bytes` in `bytes in=3 out=4`; empty for none.
    pub group: &'static str,
    /// The counter's own word in the summary line: `in`.
    pub label: &'static str,
    /// What the summary line writes after the value (` B`), usually nothing.
    pub unit: &'static str,
    /// Its value when [`Stats::counters`] was called.
    pub value: u64,
}

impl Counter {
    fn new(key: &'static str, group: &'static str, label: &'static str, value: u64) -> Self {
        Counter {
            key,
            group,
            label,
            unit: "",
            value,
        }
    }
}

/// The summary line: `connections open=1 total=2, bytes in=3 out=4, ...`, a run of counters
/// with the same group written as one comma-separated part.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut group = None;
        for c in self.counters() {
            if group == Some(c.group) {
                f.write_str(" ")?;
            } else {
                if group.is_some() {
                    f.write_str(", ")?;
                }
                if !c.group.is_empty() {
                    write!(f, "{} ", c.group)?;
                }
                group = Some(c.group);
            }
            write!(f, "{}={}{}", c.label, c.value, c.unit)?;
        }
        Ok(())
    }
}

/// A JSON object of every counter, keyed by field name, in field order.
impl serde::Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.counters().iter().map(|c| (c.key, c.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered() -> Stats {
        let mut s = Stats::default();
        for (i, field) in [
            &mut s.open_connections,
            &mut s.total_connections,
            &mut s.bytes_in,
            &mut s.bytes_out,
            &mut s.datagrams_in,
            &mut s.datagrams_out,
            &mut s.datagrams_dropped,
            &mut s.ticks,
            &mut s.events,
            &mut s.stale_events,
            &mut s.accept_pauses,
            &mut s.read_pauses,
            &mut s.peak_queue,
            &mut s.tls_handshakes,
            &mut s.tls_failures,
        ]
        .into_iter()
        .enumerate()
        {
            *field = i as u64 + 1;
        }
        s
    }

    #[test]
    fn the_summary_line() {
        assert_eq!(
            numbered().to_string(),
            "connections open=1 total=2, bytes in=3 out=4, datagrams in=5 out=6 dropped=7, \
             ticks=8 events=9 stale=10, accept pauses=11, read pauses=12, peak queue=13 B, \
             tls handshakes=14 failed=15"
        );
    }

    #[test]
    fn the_json_is_what_serde_would_derive() {
        // `Debug` is derived: `Stats { open_connections: 1, ... }` lists the fields as the
        // struct declares them, which is what a derived `Serialize` would write.
        let s = numbered();
        let debug = format!("{s:?}");
        let fields = debug.trim_start_matches("Stats { ").trim_end_matches(" }");
        let derived: Vec<String> = fields
            .split(", ")
            .map(|field| {
                let (name, value) = field.split_once(": ").expect("name: value");
                format!("\"{name}\":{value}")
            })
            .collect();
        let derived = format!("{{{}}}", derived.join(","));
        assert_eq!(serde_json::to_string(&s).expect("json"), derived);
    }
}
