//! Requests in, responses out: what an HTTP route sees, and how routes are found.
//!
//! A route is a plain function from a [`Request`] to a [`Response`]; it never touches the
//! connection. The connection glue (`conn.rs`) turns the response into bytes, streams file
//! bodies as the socket drains, and applies keep-alive rules. That split is what lets a
//! route be tested with a request built in memory.

use super::files::{FileBody, StaticDir};
use crate::reactor::{Page, Snapshot, Stats};
use netloop_protocols::http::{RequestHead, url};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// One request, as a route sees it.
#[derive(Debug)]
pub struct Request<'a> {
    head: &'a RequestHead,
    method: &'a str,
    /// The percent-decoded path (lossy UTF-8: a path that is not UTF-8 can still be routed
    /// to a 404).
    path: Cow<'a, str>,
    /// The request body (empty for most GETs).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request from its parsed head and collected body.
    pub fn new(head: &'a RequestHead, body: &'a [u8]) -> Request<'a> {
        let raw = head.path();
        let path = match url::decode_path(raw) {
            // Nothing to decode: the path is the head's own (already valid) text.
            Cow::Borrowed(_) => Cow::Borrowed(raw),
            Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
        };
        Request {
            head,
            method: head.method(),
            path,
            body,
        }
    }

    /// `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        self.method
    }

    /// The decoded path, without the query string.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path as sent (still percent-encoded).
    pub fn raw_path(&self) -> &str {
        self.head.path()
    }

    /// The decoded query string's (name, value) pairs, in order.
    pub fn query(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        url::query_pairs(self.head.query().unwrap_or(""))
    }

    /// A header's value (names compare ignoring case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The parsed head, for anything else (version, all headers).
    pub fn head(&self) -> &RequestHead {
        self.head
    }

    /// How much the client wants `media` (say `application/json`), by its `Accept` header
    /// (RFC 9110 §12.5.1): the q-value of the most specific range that matches
    /// (`type/subtype`, then `type/*`, then `*/*`), 1.0 with no `Accept` at all, 0.0 if no
    /// range matches. `q=0` means "not this".
    pub fn accept_q(&self, media: &str) -> f32 {
        let Some(accept) = self.header("accept") else {
            return 1.0;
        };
        let accept = String::from_utf8_lossy(accept);
        let (kind, _) = media.split_once('/').unwrap_or((media, ""));
        // (specificity, q) of the best match so far: 3 exact, 2 type/*, 1 */*.
        let mut best = (0, 0.0);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim();
            let specificity = match range.split_once('/') {
                _ if range.eq_ignore_ascii_case(media) => 3,
                Some((t, "*")) if t.eq_ignore_ascii_case(kind) => 2,
                Some(("*", "*")) => 1,
                _ => continue,
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .map_or(1.0, |q| q.clamp(0.0, 1.0));
            if specificity > best.0 {
                best = (specificity, q);
            }
        }
        best.1
    }
}

/// What a response carries.
#[derive(Debug)]
pub enum Body {
    /// No body (`Content-Length: 0`, or none at all for 204/304).
    Empty,
    /// A body known at compile time: no allocation per response.
    Static(&'static [u8]),
    /// A body built for this response.
    Bytes(Vec<u8>),
    /// A file (or a byte range of one), streamed in chunks as the socket drains.
    File(FileBody),
    /// A response that does not end: Server-Sent Events, sent chunked, fed by the
    /// connection on a timer (see [`EventStream`]).
    Events(EventStream),
}

/// A stream of Server-Sent Events (`text/event-stream`, the WHATWG HTML standard's
/// section 9.2): a long-lived response that the connection feeds every `every` with what
/// `next` writes, each event a few `field: value` lines and a blank line. The browser's
/// `EventSource` reads it and reconnects by itself if it breaks.
///
/// A client that stops reading is cut off by the chat's slow-consumer rule: once more than
/// [`MAX_UNREAD`](crate::services::chat::MAX_UNREAD) bytes wait for it, the connection is
/// closed rather than let the queue grow.
pub struct EventStream {
    /// How often to ask `next` for more.
    pub every: Duration,
    /// Appends the next events to the buffer (nothing, if there is nothing to say).
    pub next: FeedFn,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// What feeds an [`EventStream`]: given the route's environment (the reactor's picture on
/// demand), append the next events.
pub type FeedFn = Box<dyn FnMut(&Env<'_>, &mut Vec<u8>)>;

impl Body {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::File(f) => f.len(),
            // Unknown, and sent chunked: nothing to announce.
            Body::Events(_) => 0,
        }
    }

    /// True for no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response: status, content type, extra headers, body. `Date`, `Server`,
/// `Content-Length` and `Connection` are added by the connection.
#[derive(Debug)]
pub struct Response {
    /// 200, 404...: the connection writes its reason phrase; 204 and 304 carry no body
    /// whatever `body` holds.
    pub status: u16,
    /// The `Content-Type` (ignored when the body is empty).
    pub content_type: &'static str,
    /// Any other headers (`Last-Modified`, `Content-Range`, `Location`, `Allow`...).
    pub headers: Vec<(&'static str, String)>,
    /// Bytes, a file streamed from `drained`, or an event stream (see [`Body`]).
    pub body: Body,
}

impl Response {
    /// A response with `status`, no headers and `body`.
    pub fn new(status: u16, content_type: &'static str, body: Body) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// `text/plain` from a static string.
    pub fn text(status: u16, text: &'static str) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            Body::Static(text.as_bytes()),
        )
    }

    /// `text/html` from a string.
    pub fn html(status: u16, html: String) -> Response {
        Response::new(
            status,
            "text/html; charset=utf-8",
            Body::Bytes(html.into_bytes()),
        )
    }

    /// `application/json` from any serializable value.
    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Response {
        match serde_json::to_vec_pretty(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Response::new(status, "application/json", Body::Bytes(body))
            }
            Err(_) => Response::text(500, "could not serialize the response\n"),
        }
    }

    /// 404 Not Found.
    pub fn not_found() -> Response {
        Response::text(404, "404 Not Found\n")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a route may read besides the request: the reactor's counters, the time, and a
/// picture of the whole reactor on demand (for `/loop/state`).
pub struct Env<'a> {
    /// The reactor's counters (for `/stats`).
    pub stats: &'a Stats,
    /// The tick's time.
    pub now: Instant,
    /// Takes a [`Snapshot`] of the reactor: called only by the route that shows one, so
    /// other requests pay nothing for it.
    pub snapshot: &'a dyn Fn(Page) -> Snapshot,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("stats", &self.stats)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A route's function.
pub type RouteFn = Box<dyn Fn(&Request<'_>, &Env<'_>) -> Response>;

/// Routes by exact method and path, then by static-directory prefix.
#[derive(Default)]
pub struct Router {
    routes: Vec<(&'static str, String, RouteFn)>,
    statics: Vec<(String, StaticDir)>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        let statics: Vec<&str> = self
            .statics
            .iter()
            .map(|(prefix, _)| prefix.as_str())
            .collect();
        f.debug_struct("Router")
            .field("routes", &routes)
            .field("statics", &statics)
            .finish()
    }
}

impl Router {
    /// An empty router: everything is 404.
    pub fn new() -> Router {
        Router::default()
    }

    /// Routes `method path` to `f`. A GET route also answers HEAD (the connection drops the
    /// body).
    pub fn route(
        mut self,
        method: &'static str,
        path: &str,
        f: impl Fn(&Request<'_>, &Env<'_>) -> Response + 'static,
    ) -> Router {
        self.routes.push((method, path.to_string(), Box::new(f)));
        self
    }

    /// Routes `GET path` (and HEAD) to `f`.
    pub fn get(
        self,
        path: &str,
        f: impl Fn(&Request<'_>, &Env<'_>) -> Response + 'static,
    ) -> Router {
        self.route("GET", path, f)
    }

    /// Serves the files of `dir` under `prefix` (which ends with `/`).
    pub fn files(mut self, prefix: &str, dir: StaticDir) -> Router {
        self.statics.push((prefix.to_string(), dir));
        self
    }

    /// Finds the route for `req` and runs it: 404 if no path matches, 405 (with `Allow`)
    /// if the path exists for other methods.
    pub fn handle(&self, req: &Request<'_>, env: &Env<'_>) -> Response {
        let method = if req.method() == "HEAD" {
            "GET"
        } else {
            req.method()
        };
        let mut allowed: Vec<&str> = Vec::new();
        for (m, path, f) in &self.routes {
            if path == req.path() {
                if *m == method {
                    return f(req, env);
                }
                allowed.push(m);
            }
        }
        if !allowed.is_empty() {
            if allowed.contains(&"GET") {
                allowed.push("HEAD");
            }
            return Response::text(405, "405 Method Not Allowed\n")
                .with_header("Allow", allowed.join(", "));
        }
        for (prefix, dir) in &self.statics {
            if let Some(rest) = req.path().strip_prefix(prefix.as_str()) {
                if method != "GET" {
                    return Response::text(405, "405 Method Not Allowed\n")
                        .with_header("Allow", "GET, HEAD");
                }
                return dir.serve(req, rest, prefix);
            }
            // "/static" without the slash: send the browser to the directory.
            if req.path() == prefix.trim_end_matches('/') && prefix.len() > 1 {
                return Response::text(301, "301 Moved Permanently\n")
                    .with_header("Location", prefix.clone());
            }
        }
        Response::not_found()
    }
}
