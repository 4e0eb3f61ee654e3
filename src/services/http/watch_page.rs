//! `/loop`: the running reactor in a browser. A page (plain HTML, CSS and a little
//! JavaScript, compiled into the binary: no build step, nothing fetched from outside) that
//! follows `/loop/events`, a Server-Sent Events stream this connection feeds from the
//! reactor itself; and `/loop/state`, the same picture as one JSON document.
//!
//! ```text
//! GET /loop          the page (loop.html)
//! GET /loop/events   text/event-stream, chunked, never ends:
//!                      event: snapshot   about once a second: the reactor's Snapshot
//!                                        and the loop's rates since the last one
//!                      event: trace      netloop's trace lines as they happen, at most
//!                                        TRACE_PER_FEED every FEED (the rest is counted)
//! GET /loop/state    the Snapshot as JSON (?offset=N&limit=M pages the connections)
//! ```
//!
//! While nobody watches, none of this costs the loop anything: the page is a static string,
//! and the snapshot is taken only when asked. While someone does, the trace is on (see
//! `reactor/tap.rs`) and each tick reads the clock once more (`reactor/watch.rs`).

use super::router::{Body, Env, EventStream, Request, Response};
use crate::reactor::tap;
use crate::reactor::watch::{LoopTimes, PAGE, Page, Snapshot};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The page, as it is in the repository.
const LOOP_HTML: &str = include_str!("loop.html");

/// How often the stream is fed: four times a second, so trace lines arrive "as they
/// happen" to the eye, while a snapshot goes every [`SNAPSHOT_EVERY`] feeds.
const FEED: Duration = Duration::from_millis(250);
/// One snapshot per second.
const SNAPSHOT_EVERY: u32 = 4;
/// Trace lines per feed at most (200 a second): a busy loop writes thousands, a browser
/// can show a few hundred; the rest is counted as skipped.
const TRACE_PER_FEED: usize = 50;

/// `GET /loop`.
pub fn loop_page(_req: &Request<'_>, _env: &Env<'_>) -> Response {
    Response::new(
        200,
        "text/html; charset=utf-8",
        Body::Static(LOOP_HTML.as_bytes()),
    )
    .with_header("Cache-Control", "no-store")
}

/// `GET /loop/state[?offset=N&limit=M]`: the reactor as JSON (see `reactor/watch.rs` and
/// the README for its shape): every connection with its protocol state, the listeners,
/// the timers by kind, the counters. At most 1,000 connection rows per answer (`limit`
/// lowers it); `total` says how many there are, `offset` pages through them.
pub fn loop_state(req: &Request<'_>, env: &Env<'_>) -> Response {
    let mut page = Page::default();
    for (name, value) in req.query() {
        match (name.as_ref(), value.parse::<usize>()) {
            ("offset", Ok(n)) => page.offset = n,
            ("limit", Ok(n)) => page.limit = n.min(PAGE),
            _ => {}
        }
    }
    Response::json(200, &(env.snapshot)(page)).with_header("Cache-Control", "no-store")
}

/// What a `snapshot` event carries: the picture, and the loop's rates over the second
/// before it.
#[derive(Serialize)]
struct Frame<'a> {
    snapshot: &'a Snapshot,
    rates: Rates,
}

/// The loop over the last interval.
#[derive(Serialize, Default)]
struct Rates {
    /// Length of the interval, in milliseconds.
    interval_ms: u64,
    /// Ticks (returns from `poll`) per second.
    ticks_per_s: f64,
    /// Readiness events per tick.
    events_per_tick: f64,
    /// Bytes read and written per second.
    bytes_in_per_s: f64,
    /// See `bytes_in_per_s`.
    bytes_out_per_s: f64,
    /// Share of the loop's time spent waiting in `poll` (idle), 0 to 1.
    poll_share: f64,
    /// Share spent working (handlers, reads, writes, timers).
    work_share: f64,
    /// Trace lines not sent in this interval (the rate limit, or the ring overran).
    trace_skipped: u64,
}

/// The stream's memory between feeds.
struct Watcher {
    feeds: u32,
    last: Option<(Instant, Snapshot)>,
    trace_from: u64,
    skipped: u64,
}

/// `GET /loop/events`: see the module doc.
pub fn loop_events(_req: &Request<'_>, _env: &Env<'_>) -> Response {
    let mut watcher = Watcher {
        feeds: 0,
        last: None,
        // Only what happens from now on: the ring may hold an earlier watcher's lines.
        trace_from: tap::lines_since(u64::MAX, 0).1,
        skipped: 0,
    };
    let next = move |env: &Env<'_>, out: &mut Vec<u8>| watcher.feed(env, out);
    let stream = EventStream {
        every: FEED,
        next: Box::new(next),
    };
    Response::new(200, "text/event-stream", Body::Events(stream))
        .with_header("Cache-Control", "no-store")
}

impl Watcher {
    fn feed(&mut self, env: &Env<'_>, out: &mut Vec<u8>) {
        if self.feeds == 0 {
            // The browser's EventSource reconnects by itself after a break; 2 s, not 3.
            out.extend_from_slice(b"retry: 2000\n\n");
        }
        let (lines, next) = tap::lines_since(self.trace_from, TRACE_PER_FEED);
        self.skipped += next.saturating_sub(self.trace_from) - lines.len() as u64;
        self.trace_from = next;
        for line in lines {
            out.extend_from_slice(b"event: trace\ndata: ");
            // A data line ends at a line break: a trace line has none, but be sure.
            out.extend(
                line.bytes()
                    .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\n\n");
        }
        if self.feeds % SNAPSHOT_EVERY == 0 {
            self.snapshot(env, out);
        }
        self.feeds += 1;
    }

    fn snapshot(&mut self, env: &Env<'_>, out: &mut Vec<u8>) {
        let snapshot = (env.snapshot)(Page::default());
        let mut rates = Rates {
            trace_skipped: std::mem::take(&mut self.skipped),
            ..Rates::default()
        };
        if let Some((at, before)) = &self.last {
            let secs = env
                .now
                .saturating_duration_since(*at)
                .as_secs_f64()
                .max(1e-3);
            let (s, b) = (&snapshot.stats, &before.stats);
            let ticks = s.ticks.saturating_sub(b.ticks);
            rates.interval_ms = (secs * 1000.0) as u64;
            rates.ticks_per_s = ticks as f64 / secs;
            rates.events_per_tick = s.events.saturating_sub(b.events) as f64 / ticks.max(1) as f64;
            rates.bytes_in_per_s = s.bytes_in.saturating_sub(b.bytes_in) as f64 / secs;
            rates.bytes_out_per_s = s.bytes_out.saturating_sub(b.bytes_out) as f64 / secs;
            let (poll, work) = spent(&snapshot.loop_times, &before.loop_times);
            let total = (poll + work).max(1) as f64;
            rates.poll_share = poll as f64 / total;
            rates.work_share = work as f64 / total;
        }
        out.extend_from_slice(b"event: snapshot\ndata: ");
        let frame = Frame {
            snapshot: &snapshot,
            rates,
        };
        if serde_json::to_writer(&mut *out, &frame).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
        self.last = Some((env.now, snapshot));
    }
}

/// Nanoseconds in `poll` and at work between two readings.
fn spent(now: &LoopTimes, before: &LoopTimes) -> (u64, u64) {
    (
        now.poll_ns.saturating_sub(before.poll_ns),
        now.work_ns.saturating_sub(before.work_ns),
    )
}
