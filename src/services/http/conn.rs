//! One HTTP connection: the glue between [`ServerConn`] (the sans-IO HTTP/1.1 state
//! machine) and a reactor connection.
//!
//! ```text
//! data ──► proto.handle_bytes ──► pump: poll_event until "need more"
//!            Request   → cancel the header timer, maybe 100 Continue, start collecting
//!            Body      → collect (the protocol bounds its size)
//!            RequestEnd→ route → write the response into the output queue
//!                          (a file body: first chunk now, the rest from `drained`)
//!            Err       → the error response, then close
//! drained ─► next file chunk; at its end finish the response and pump again (pipelining)
//! pump    ─► pause reading while the protocol wants no bytes (`ServerConn::wants_read`)
//! timer   ─► header timeout: 408, then close (slowloris)
//! ```
//!
//! The header timer is armed only when a read leaves part of a head buffered: a head that
//! arrives in one read (every real client's) never arms it, so the common request costs no
//! timer at all. A client that trickles its head a byte at a time gets 408 when the timer
//! fires, however busy it keeps the connection. Idleness, with or without a first request,
//! is the reactor's idle timeout on the listener (the keep-alive timeout): no byte moved
//! for that long, the connection is closed.

use super::date::DateCache;
use super::files::FileBody;
use super::router::{Body, Env, EventStream, Request, Response, Router};
use crate::reactor::{CloseReason, Context, Handler, TimerId};
use crate::services::chat::MAX_UNREAD;
use netloop_protocols::http::{
    BodyFraming, Event, HeaderBlock, HttpError, Limits, RequestHead, ServerConn, error_response,
    reason_phrase,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The header timer: a request head must be complete this long after its first byte.
const HEADER_TIMER: TimerId = TimerId(1);
/// An event stream's next feeding.
const EVENTS_TIMER: TimerId = TimerId(2);

/// Bytes read from a file per `drained` call. 256 KiB: the reactor's high-water mark, so a
/// chunk fills the queue once and the kernel's send buffer (which autotunes to a few MiB
/// on loopback) never runs dry between chunks.
const FILE_CHUNK: usize = 256 * 1024;

/// Limits and timeouts of an HTTP server, each with the reason for its default.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Head, URI and body limits (431, 414, 413): see [`Limits`].
    pub limits: Limits,
    /// A request head must arrive whole within this time of its first byte, else 408 and
    /// close. 10 s: a real client sends its head in one packet; only a slowloris attack
    /// trickles it (nginx's `client_header_timeout` is 60 s, generous for 2009's networks).
    pub header_timeout: Duration,
    /// A keep-alive connection with no traffic for this long is closed. 60 s, between
    /// Apache's 5 s and nginx's 75 s: browsers reuse connections within seconds, and an idle
    /// connection costs netloop a few hundred bytes.
    pub keepalive_timeout: Duration,
    /// Requests served on one connection before it is closed (nginx's `keepalive_requests`
    /// is 1000): bounds what one client can do with one connection.
    pub max_requests_per_connection: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            max_requests_per_connection: 1000,
        }
    }
}

/// Parser states kept for reuse. Only connections in the middle of a request hold one, so
/// this bounds the spares, not the connections: 256 covers the bursts a tick sees.
const PARSER_POOL_MAX: usize = 256;

/// What every connection of one HTTP service shares.
pub struct Shared {
    /// The routes.
    pub router: Router,
    /// Limits and timeouts.
    pub config: HttpConfig,
    date: RefCell<Option<DateCache>>,
    /// One buffer for file chunks, reused by every connection (the reactor is one thread).
    chunk: RefCell<Vec<u8>>,
    /// `Date` + `Server` (+ `Content-Type`) rendered once per second per content type:
    /// most responses carry nothing else, and checking and formatting those lines per
    /// response was a tenth of a pipelined request's cost.
    blocks: RefCell<Blocks>,
    /// Idle parser states (with their buffers), for connections that start a request.
    /// Boxed: a parser moves between the pool and a connection as a pointer, and an idle
    /// connection's `Option<Box<_>>` is one word, not a whole parser's worth of bytes.
    #[allow(clippy::vec_box)]
    parsers: RefCell<Vec<Box<Active>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("router", &self.router)
            .field("config", &self.config)
            .field("idle_parsers", &self.parsers.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state for a service with `router` and `config`.
    pub fn new(router: Router, config: HttpConfig) -> Rc<Shared> {
        Rc::new(Shared {
            router,
            config,
            date: RefCell::new(None),
            chunk: RefCell::new(Vec::new()),
            parsers: RefCell::new(Vec::new()),
            blocks: RefCell::new(Blocks::default()),
        })
    }

    fn take_parser(&self) -> Box<Active> {
        let spare = self.parsers.borrow_mut().pop();
        spare.unwrap_or_else(|| {
            Box::new(Active {
                proto: ServerConn::new(self.config.limits),
                pending: None,
                file: None,
                events: None,
            })
        })
    }

    fn give_parser(&self, parser: Box<Active>) {
        let mut pool = self.parsers.borrow_mut();
        if pool.len() < PARSER_POOL_MAX {
            pool.push(parser);
        }
    }
}

/// The header blocks of the current second, by content type (`None`: no body).
#[derive(Default)]
struct Blocks {
    stamp: Option<std::time::Instant>,
    by_type: Vec<(Option<&'static str>, HeaderBlock)>,
}

impl Blocks {
    /// The block for `content_type` in the second `stamp` (`date` is its Date value),
    /// rendered on first use in that second.
    fn get(
        &mut self,
        stamp: std::time::Instant,
        content_type: Option<&'static str>,
        date: &str,
    ) -> &mut HeaderBlock {
        if self.stamp != Some(stamp) {
            self.stamp = Some(stamp);
            self.by_type.clear();
        }
        // The same `&'static str` again, nearly always: compare addresses before bytes.
        let same = |t: &Option<&str>| match (*t, content_type) {
            (Some(a), Some(b)) => std::ptr::eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        let i = match self.by_type.iter().position(|(t, _)| same(t)) {
            Some(i) => i,
            None => {
                let mut lines = vec![("Date", date), ("Server", "netloop")];
                lines.extend(content_type.map(|t| ("Content-Type", t)));
                let block = HeaderBlock::new(&lines).unwrap_or_default();
                self.by_type.push((content_type, block));
                self.by_type.len() - 1
            }
        };
        &mut self.by_type[i].1
    }
}

/// A request being collected: its head, and its body so far.
struct Pending {
    head: Box<RequestHead>,
    body: Vec<u8>,
}

/// Everything a connection holds while a request is in progress, boxed and pooled as one:
/// an idle connection holds none of it.
struct Active {
    /// The HTTP/1.1 state machine.
    proto: ServerConn,
    /// The request being collected.
    pending: Option<Pending>,
    /// A file body being streamed; the response is finished when it runs out.
    file: Option<FileBody>,
    /// An event stream being fed: the response never finishes (the connection closes).
    events: Option<EventStream>,
}

/// One HTTP connection's handler.
///
/// Between requests a connection holds no parser: its [`ServerConn`] (a few hundred bytes
/// plus buffers) goes back to the service's pool as soon as it is idle, and the next
/// request takes any idle one. An idle keep-alive connection is this small struct and the
/// reactor's slab entry, nothing more.
pub struct HttpConn {
    shared: Rc<Shared>,
    /// Present only while a request is in progress.
    active: Option<Box<Active>>,
    served: u32,
    header_timer: bool,
}

impl std::fmt::Debug for HttpConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConn")
            .field("state", &self.state_name())
            .field("served", &self.served)
            .field("header_timer", &self.header_timer)
            .finish_non_exhaustive()
    }
}

impl HttpConn {
    /// A handler for a new connection of the service `shared`.
    pub fn new(shared: Rc<Shared>) -> HttpConn {
        HttpConn {
            shared,
            active: None,
            served: 0,
            header_timer: false,
        }
    }

    /// Runs the parser until it needs more bytes; gives it back to the pool if it is idle.
    fn pump(&mut self, cx: &mut Context<'_>) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        self.pump_with(cx, &mut a);
        // Read only while the protocol wants bytes: while a full head's worth of pipelined
        // requests waits behind a response still going out (a file), the rest stays in the
        // kernel, and TCP holds the client, instead of growing the input buffer.
        if a.proto.wants_read() {
            cx.resume_reading();
        } else {
            cx.pause_reading();
        }
        if a.proto.is_idle() && a.pending.is_none() && a.file.is_none() && a.events.is_none() {
            self.shared.give_parser(a);
        } else {
            self.active = Some(a);
        }
    }

    /// Turns everything the protocol has into responses, until it needs more bytes, a
    /// file body is streaming, or the connection is over.
    fn pump_with(&mut self, cx: &mut Context<'_>, a: &mut Active) {
        while a.file.is_none() && a.events.is_none() {
            match a.proto.poll_event() {
                Ok(None) => break,
                Ok(Some(Event::Request(head))) => {
                    self.cancel_header_timer(cx);
                    if head.expects_continue() {
                        if let Some(out) = cx.output() {
                            a.proto.write_continue(out);
                        }
                    }
                    a.pending = Some(Pending {
                        head,
                        body: Vec::new(),
                    });
                }
                Ok(Some(Event::Body(chunk))) => {
                    if let Some(p) = &mut a.pending {
                        if p.body.is_empty() {
                            p.body = chunk;
                        } else {
                            p.body.extend_from_slice(&chunk);
                        }
                    }
                }
                Ok(Some(Event::RequestEnd(_trailers))) => {
                    if let Some(p) = a.pending.take() {
                        self.respond(cx, a, p);
                    }
                }
                Err(e) => {
                    log::debug!("{}: {e}", cx.token());
                    if let Some(out) = cx.output() {
                        a.proto.write_error(&e, out);
                    }
                    cx.close();
                    return;
                }
            }
        }
        if a.proto.is_closed() {
            cx.close();
            return;
        }
        // Bytes of a next head have arrived: it must complete within the header timeout.
        if a.pending.is_none() && a.file.is_none() && a.proto.buffered() > 0 && !self.header_timer {
            cx.set_timer(HEADER_TIMER, self.shared.config.header_timeout);
            self.header_timer = true;
        }
    }

    fn cancel_header_timer(&mut self, cx: &mut Context<'_>) {
        if self.header_timer {
            cx.cancel_timer(HEADER_TIMER);
            self.header_timer = false;
        }
    }

    /// Routes one complete request and writes its response.
    fn respond(&mut self, cx: &mut Context<'_>, a: &mut Active, p: Pending) {
        self.served += 1;
        if self.served >= self.shared.config.max_requests_per_connection {
            a.proto.close_after_response();
        }
        let response = {
            let req = Request::new(&p.head, &p.body);
            let snapshot = |page| cx.snapshot(page);
            let env = Env {
                stats: cx.stats(),
                now: cx.now(),
                snapshot: &snapshot,
            };
            self.shared.router.handle(&req, &env)
        };
        self.write_response(cx, a, &p.head, response);
        a.proto.recycle(p.head);
    }

    fn write_response(
        &mut self,
        cx: &mut Context<'_>,
        a: &mut Active,
        head: &RequestHead,
        response: Response,
    ) {
        let now = cx.now();
        let shared = &self.shared;
        let Some(out) = cx.output() else { return };
        let mut date = shared.date.borrow_mut();
        let date = date.get_or_insert_with(|| DateCache::new(now));
        let (date_value, stamp) = date.get_stamped(now);
        // 204 and 304 have no body, whatever the route returned.
        let no_body = matches!(response.status, 204 | 304);
        let body_len = if no_body { 0 } else { response.body.len() };
        let events = matches!(response.body, Body::Events(_)) && !no_body;
        let content_type = (body_len > 0 || events).then_some(response.content_type);
        let reason = reason_phrase(response.status);
        let framing = if no_body {
            BodyFraming::Empty
        } else if events {
            BodyFraming::Chunked
        } else {
            BodyFraming::Length(body_len)
        };
        let written = if response.headers.is_empty() {
            // The common case: only the fixed lines, from this second's block.
            let mut blocks = shared.blocks.borrow_mut();
            let block = blocks.get(stamp, content_type, date_value);
            a.proto
                .write_response_head_block(response.status, reason, block, framing, out)
        } else {
            self.write_head_lines(
                &mut a.proto,
                &response,
                date_value,
                content_type,
                framing,
                out,
            )
        };
        if let Err(e) = written {
            log::warn!("{}: response head: {e:?}", cx.token());
            cx.close();
            return;
        }
        let body_done = match response.body {
            _ if no_body => true,
            Body::Empty => true,
            Body::Static(b) => a.proto.write_body(b, out).is_ok(),
            Body::Bytes(b) => a.proto.write_body(&b, out).is_ok(),
            Body::File(f) if head.is_head() => {
                drop(f); // HEAD: the length is announced, the bytes are not sent
                true
            }
            Body::File(f) => {
                a.file = Some(f);
                false
            }
            Body::Events(_) if head.is_head() => true,
            Body::Events(stream) => {
                a.events = Some(stream);
                false
            }
        };
        if body_done {
            let _ = a.proto.finish_response(out);
        } else if a.events.is_some() {
            cx.watch(true);
            self.feed_events(cx, a);
        } else {
            self.stream_file(cx, a);
        }
    }

    /// Writes an event stream's next events as one chunk, and arms the next feeding. A
    /// client that has not read what was sent before is cut off instead (see
    /// [`EventStream`]): a stream must not grow memory for a reader that is gone.
    fn feed_events(&self, cx: &mut Context<'_>, a: &mut Active) {
        let Some(stream) = &mut a.events else { return };
        if cx.queued() > MAX_UNREAD {
            log::info!(
                "{}: event stream cut off: {} bytes unread",
                cx.token(),
                cx.queued()
            );
            cx.abort();
            return;
        }
        let mut chunk = std::mem::take(&mut *self.shared.chunk.borrow_mut());
        chunk.clear();
        {
            let snapshot = |page| cx.snapshot(page);
            let env = Env {
                stats: cx.stats(),
                now: cx.now(),
                snapshot: &snapshot,
            };
            (stream.next)(&env, &mut chunk);
        }
        if !chunk.is_empty() {
            if let Some(out) = cx.output() {
                let _ = a.proto.write_body(&chunk, out);
            }
        }
        *self.shared.chunk.borrow_mut() = chunk;
        cx.set_timer(EVENTS_TIMER, stream.every);
    }

    /// A head with the route's own headers: Date, Server, Content-Type, then those, checked
    /// as they are written (a fixed array, no allocation).
    fn write_head_lines(
        &self,
        proto: &mut ServerConn,
        response: &Response,
        date: &str,
        content_type: Option<&'static str>,
        framing: BodyFraming,
        out: &mut Vec<u8>,
    ) -> Result<(), netloop_protocols::http::UsageError> {
        let mut headers: [(&str, &str); 12] = [("", ""); 12];
        headers[0] = ("Date", date);
        headers[1] = ("Server", "netloop");
        let mut n = 2;
        if let Some(t) = content_type {
            headers[n] = ("Content-Type", t);
            n += 1;
        }
        for (name, value) in response.headers.iter().take(headers.len() - n) {
            headers[n] = (name, value);
            n += 1;
        }
        proto.write_response_head(
            response.status,
            reason_phrase(response.status),
            &headers[..n],
            framing,
            out,
        )
    }

    /// Appends the next chunk of the file body; finishes the response at its end.
    fn stream_file(&self, cx: &mut Context<'_>, a: &mut Active) {
        let Some(file) = &mut a.file else { return };
        let Some(out) = cx.output() else {
            a.file = None;
            return;
        };
        let mut chunk = self.shared.chunk.borrow_mut();
        chunk.resize(FILE_CHUNK, 0);
        match file.read_chunk(&mut chunk) {
            Ok(0) => {
                a.file = None;
                let _ = a.proto.finish_response(out);
            }
            Ok(n) => {
                let _ = a.proto.write_body(&chunk[..n], out);
                if file.remaining() == 0 {
                    a.file = None;
                    let _ = a.proto.finish_response(out);
                }
            }
            Err(e) => {
                // The head promised a length that can no longer be kept: close, so the
                // client sees a short body rather than a corrupt one.
                log::warn!("{}: reading a file body: {e}", cx.token());
                a.file = None;
                cx.close();
            }
        }
    }
}

impl Handler for HttpConn {
    /// `Idle` between requests (holding no parser), `ReadingHead` and `ReadingBody` while a
    /// request comes in, `SendingFile` while a file streams out.
    fn state_name(&self) -> &'static str {
        match &self.active {
            None => "Idle",
            Some(a) if a.file.is_some() => "SendingFile",
            Some(a) if a.events.is_some() => "Streaming",
            Some(a) if a.pending.is_some() => "ReadingBody",
            Some(_) => "ReadingHead",
        }
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let shared = &self.shared;
        self.active
            .get_or_insert_with(|| shared.take_parser())
            .proto
            .handle_bytes(bytes);
        self.pump(cx);
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        let shared = &self.shared;
        self.active
            .get_or_insert_with(|| shared.take_parser())
            .proto
            .handle_eof();
        self.pump(cx);
        // Whatever was pipelined before the EOF has been answered (or is streaming).
        if self
            .active
            .as_ref()
            .is_none_or(|a| a.file.is_none() && a.events.is_none())
        {
            cx.close();
        }
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        if a.file.is_none() {
            self.active = Some(a);
            return;
        }
        self.stream_file(cx, &mut a);
        let finished = a.file.is_none();
        self.active = Some(a);
        if finished {
            self.pump(cx); // the next pipelined request, if any
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        if id == EVENTS_TIMER {
            if let Some(mut a) = self.active.take() {
                self.feed_events(cx, &mut a);
                self.active = Some(a);
            }
            return;
        }
        if id != HEADER_TIMER || !self.header_timer {
            return;
        }
        self.header_timer = false;
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.pending.is_some() || a.file.is_some())
        {
            return; // the head did arrive; the timer lost a race with it
        }
        if let Some(out) = cx.output() {
            error_response(&HttpError::HeadTimeout, out);
        }
        cx.close();
    }

    fn closed(&mut self, cx: &mut Context<'_>, _reason: &CloseReason) {
        // A request in progress is dropped, not pooled: its state is of no use to another.
        if self.active.take().is_some_and(|a| a.events.is_some()) {
            cx.watch(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;
    use crate::services::http::app;

    #[test]
    fn a_bodiless_status_drops_the_routes_body_and_the_next_request_is_answered() {
        let routes =
            Router::new()
                .get("/", app::hello)
                .get("/same", |_: &Request<'_>, _: &Env<'_>| {
                    Response::text(304, "a 304 has no body; this must not be sent\n")
                });
        let mut bed = TestBed::new();
        let conn = bed.open(Box::new(HttpConn::new(Shared::new(
            routes,
            HttpConfig::default(),
        ))));
        bed.data(
            conn,
            b"GET /same HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
        let (first, second) = out.split_at(out.find("HTTP/1.1 200").expect("the second answer"));
        assert!(first.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{out}");
        assert!(
            first.ends_with("\r\n\r\n"),
            "no body after the 304's head: {out}"
        );
        assert!(!first.contains("Content-Length"), "{out}");
        assert!(second.ends_with("\r\n\r\nHello, world!"), "{out}");
    }

    #[test]
    fn a_head_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() {
        let mut bed = TestBed::new();
        let shared = Shared::new(app::demo_routes(), HttpConfig::default());
        let conn = bed.open(Box::new(HttpConn::new(shared)));
        bed.data(conn, b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ");
        bed.advance(HttpConfig::default().header_timeout);
        let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
        assert_eq!(
            out,
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 40\r\nConnection: close\r\n\r\n\
             the request head did not arrive in time\n"
        );
        assert!(bed.is_closing(conn));
    }
}
