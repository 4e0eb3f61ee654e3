//! The client side of one HTTP/1.1 connection: requests out, response events in.
//!
//! # Read first
//!
//! - RFC 9112 §3 (request line, §3.2 Host), §4 (status line), §5 (field lines, §5.2
//!   obs-fold), **§6.3 (message body length)**: which responses have no body whatever their
//!   fields say (HEAD, 1xx, 204, 304), and how the rest say where they end (chunked,
//!   Content-Length, or the close), §7.1 (chunked coding), §9.3 and §9.3.2 (persistence,
//!   pipelining: responses come back in the order the requests went out, so a queue of what
//!   was asked is all the matching there is), §9.6 (tear-down).
//! - RFC 9110 §7.6.1 (Connection), §9.3.2 (HEAD), §15.2 (1xx: interim, skipped here;
//!   §15.2.2 101 is an upgrade, which this client never asks for).
//! - h11's `_connection.py`: its client role is the model, with the server's half named
//!   as h11 names it.
//!
//! # States (the server's half, as the client sees it)
//!
//! ```text
//!            write_request / expect_response queue what is expected (any number: pipelining)
//!
//!  Head ──complete head──► (1xx but 101: dropped, still Head)
//!   │  └─ status 101 ────► Broken(Upgrade)
//!   ├─ HEAD / 204 / 304, or Content-Length: 0 ──► EndDue ──► End ──► Head (keep-alive)
//!   │                                                          └───► MustClose (otherwise)
//!   └─ body ──► SendBody(Length | Chunked | UntilClose) ──last byte (or EOF)──► EndDue
//!  any state ── a framing error, bytes nobody asked for, EOF mid-response ──► Broken
//! ```
//!
//! `Head` with nothing expected is h11's `IDLE`: a byte arriving then is
//! [`ResponseError::Unexpected`]. `MustClose` follows an `End { keep_alive: false }`: the
//! server will close, nothing more is read, and requests still queued went unanswered
//! ([`ClientConn::outstanding`] says how many).
//!
//! # An exception to the `handle_bytes` / `poll_event` grammar
//!
//! Elsewhere in this crate input is handed over with `handle_bytes` and buffered, then
//! drained with `poll_event` (the crate doc lists the other exceptions). Here [`ClientConn::poll_event`] takes the input itself and
//! yields body data as slices **of that input**: a client's responses are mostly body (a
//! 1 GiB download), and buffering it would mean one memcpy of every byte for nothing. Only
//! a head (and a trailer section) that arrives in pieces is copied, line by line, into a
//! buffer bounded by [`ClientLimits::max_head`]; a head that arrives whole is parsed where
//! it lies (`client_head.rs`) and copied once, into the [`ResponseHead`] it becomes.

use std::collections::VecDeque;
use std::fmt;

use super::body::BodyDecoder;
use super::client_head::{HeadScan, ResponseFraming, ResponseHead, parse_head, parse_whole_head};
use super::error::HttpError;
use super::head::{Scan, find_lf};
use super::limits::Limits;
use super::request::{BodyFraming, list};
use super::response::{is_field_text, is_tchar, write_decimal};

/// Limits on what one connection's responses may make the client buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Longest response head (status line, field lines, the empty line), and likewise
    /// longest trailer section of a chunked body. Default 64 KiB: far beyond any real
    /// response head (nginx's default `proxy_buffer_size` for one is 4-8 KiB; curl allows
    /// 100 KiB of headers in all) and small enough that a server that never ends its head
    /// cannot grow a connection without bound. Body bytes are never buffered: no limit.
    pub max_head: usize,
    /// Most field lines in one head (or trailer section). Default 100, hyper's
    /// `DEFAULT_MAX_HEADERS`, three times what a verbose server (a CDN edge adding tracing
    /// fields) sends. Clamped to [`MAX_HEADERS_CAP`](crate::http::MAX_HEADERS_CAP): httparse's slots live on the stack.
    pub max_fields: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_head: 64 * 1024,
            max_fields: 100,
        }
    }
}

/// A request to serialise with [`ClientConn::write_request`]. `host` becomes the `Host`
/// field (RFC 9112 §3.2: every HTTP/1.1 request has one); a non-empty `body`, or a method
/// of POST, PUT or PATCH, gets a `Content-Length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, a token, case-sensitive (`GET`).
    pub method: &'a str,
    /// The request-target as it goes on the wire (`/path?query`), visible ASCII.
    pub target: &'a str,
    /// The `Host` value (`example.com:8080`); may be empty (RFC 9112 §3.2).
    pub host: &'a str,
    /// More fields, in order. Not `Host`, `Content-Length` or `Transfer-Encoding`: those
    /// are written from the other arguments. `Connection: close` is honoured: the
    /// response to this request is then the connection's last.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (no chunked request bodies: its length is always known here).
    pub body: &'a [u8],
}

/// What the server sent, in order: per response one `Head`, any number of `Body` pieces,
/// one `End`. Interim (1xx) responses are consumed without an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseEvent<'i> {
    /// A final response's head. Boxed: it is a dozen words; hand it back with
    /// [`ClientConn::recycle`] to reuse its buffers for the next one.
    Head(Box<ResponseHead>),
    /// Body bytes, de-chunked: a slice of the input passed to [`ClientConn::poll_event`]
    /// (how the body is cut into pieces depends on how it arrived). Never empty.
    Body(&'i [u8]),
    /// The response is complete. `keep_alive`: the connection can carry the next response
    /// (HTTP/1.1 unless either side said `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`; never after a body that ran until the close).
    End {
        /// See above.
        keep_alive: bool,
    },
}

/// The server broke HTTP/1.1 (or closed early). After one, the connection is broken: every
/// later [`ClientConn::poll_event`] returns the same error; close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// The status line or a field line does not parse, a line ends in a bare LF, a field
    /// line is folded (obs-fold), or the version is not HTTP/1.0 or 1.1: refused as the
    /// server refuses them in requests (a lenient reader is how responses get split).
    Malformed,
    /// The head or a trailer section grew past [`ClientLimits::max_head`], or holds more
    /// than [`ClientLimits::max_fields`] field lines.
    HeadTooLarge,
    /// The head does not say unambiguously where the body ends: `Content-Length`
    /// repeated with different values or not a decimal number, `Content-Length` with
    /// `Transfer-Encoding` (RFC 9112 §6.3 rule 3: "ought to be handled as an error"), or
    /// `Transfer-Encoding` in an HTTP/1.0 response (§6.1: faulty framing).
    ConflictingLength,
    /// The chunked framing is broken: a bad chunk-size line, data not followed by CRLF.
    BadChunk,
    /// A `Transfer-Encoding` other than exactly `chunked` (`gzip, chunked`, `gzip`). RFC
    /// 9112 §6.3 rule 4 would frame `gzip` alone as close-delimited; this client refuses
    /// both instead, because it sends no `TE` field, so a server may apply no coding but
    /// chunked (RFC 9110 §10.1.4), and passing the still-coded bytes on as the body would
    /// be a guess.
    UnsupportedCoding,
    /// `101 Switching Protocols`: this client does not upgrade connections.
    Upgrade,
    /// The server closed in the middle of a response (its head, a `Content-Length` body,
    /// a chunked body).
    Truncated,
    /// The server closed before any byte of a response that was expected (and without
    /// having said it would). Not a framing error: RFC 9112 §9.3.1 lets a client retry an
    /// idempotent request then.
    NoResponse,
    /// Bytes arrived with no response expected (or after the one that ended the
    /// connection).
    Unexpected,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::Malformed => "malformed response head",
            ResponseError::HeadTooLarge => "response head too large",
            ResponseError::ConflictingLength => "response body length in doubt",
            ResponseError::BadChunk => "broken chunked framing",
            ResponseError::UnsupportedCoding => "transfer coding other than chunked",
            ResponseError::Upgrade => "101 Switching Protocols, and no upgrade was asked",
            ResponseError::Truncated => "connection closed in the middle of a response",
            ResponseError::NoResponse => "connection closed before the response",
            ResponseError::Unexpected => "response bytes with no request outstanding",
        })
    }
}

impl std::error::Error for ResponseError {}

/// The caller used [`ClientConn::write_request`] in a way HTTP does not allow. Nothing was
/// written to `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The method is not a token (RFC 9110 §9.1): empty, or a space, CR, LF...
    InvalidMethod,
    /// The target is empty or has a byte that is not visible ASCII (a space, CR, LF,
    /// control or non-ASCII byte would end the request line early: request splitting).
    InvalidTarget,
    /// A field name that is not a token, or a value (or the host) with CR, LF or NUL
    /// (header injection).
    InvalidHeader,
    /// `Host`, `Content-Length` or `Transfer-Encoding` among the headers: the first two
    /// are written from [`Request::host`] and [`Request::body`], and chunked request
    /// bodies are not done here.
    ReservedHeader,
    /// The connection can carry no more requests: it broke, the server closed, or a
    /// `Connection: close` went out or came back (RFC 9112 §9.6).
    Closed,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::InvalidMethod => "method is not a token",
            RequestError::InvalidTarget => "request-target empty or not visible ASCII",
            RequestError::InvalidHeader => "header name not a token, or CR/LF/NUL in a value",
            RequestError::ReservedHeader => {
                "Host, Content-Length and Transfer-Encoding are written by the connection"
            }
            RequestError::Closed => "the connection takes no more requests",
        })
    }
}

impl std::error::Error for RequestError {}

/// One response the client is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    /// It answers a HEAD: no body (RFC 9110 §9.3.2).
    head: bool,
    /// The request said `Connection: close`: this response is the last.
    close: bool,
}

/// The server's half of the exchange (see the module docs for the diagram).
#[derive(Debug)]
enum State {
    /// Reading the next head, if one is expected (else any byte is unexpected).
    Head,
    /// The head said there is no body: `End` is next, with no byte to wait for.
    EndDue,
    /// Reading the body.
    SendBody(Body),
    /// After the connection's last response: nothing more is read.
    MustClose,
    /// The server broke the protocol (or closed early).
    Broken(ResponseError),
}

/// How the body being read ends.
#[derive(Debug)]
enum Body {
    /// This many bytes still to come.
    Length(u64),
    /// The chunked decoder shared with the server side (no body limit: `u64::MAX`).
    Chunked(BodyDecoder),
    /// Everything until EOF.
    UntilClose,
}

/// The client side of an HTTP/1.1 connection, sans-IO.
///
/// 1. Send requests with [`ClientConn::write_request`] (it appends to your output buffer),
///    or write them yourself and call [`ClientConn::expect_response`] for each. Pipeline as
///    many as you like; responses come back in order.
/// 2. When bytes arrive, call [`ClientConn::poll_event`] with them until it returns
///    `Ok(None)`: by then it has consumed them all. `Body` events borrow from that input.
///    Pass every [`ResponseEvent::Head`] back with [`ClientConn::recycle`] when done.
/// 3. On EOF, [`ClientConn::handle_eof`], then `poll_event` with empty input until
///    `Ok(None)` (a close-delimited body ends there) or `Err`.
/// 4. Reuse the connection for another request while [`ClientConn::is_idle`].
///
/// ```
/// use netloop_protocols::http::{ClientConn, Request, ResponseEvent};
///
/// let mut conn = ClientConn::default();
/// let mut out = Vec::new();
/// let get = Request { method: "GET", target: "/hi", host: "example", headers: &[], body: b"" };
/// conn.write_request(&get, &mut out).unwrap();
/// assert_eq!(out, b"GET /hi HTTP/1.1\r\nHost: example\r\n\r\n");
///
/// let mut body = Vec::new();
/// for read in [&b"HTTP/1.1 200 OK\r\nContent-Len"[..], b"gth: 5\r\n\r\nhel", b"lo"] {
///     let mut input = read;
///     while let Some(event) = conn.poll_event(&mut input).unwrap() {
///         match event {
///             ResponseEvent::Head(head) => {
///                 assert_eq!(head.status, 200);
///                 conn.recycle(head);
///             }
///             ResponseEvent::Body(data) => body.extend_from_slice(data), // borrowed, not copied
///             ResponseEvent::End { keep_alive } => assert!(keep_alive),
///         }
///     }
/// }
/// assert_eq!(body, b"hello");
/// assert!(conn.is_idle());
/// ```
#[derive(Debug)]
pub struct ClientConn {
    /// [`ClientLimits`] in the server's shape, for the field-line scanner and the chunked
    /// decoder that both sides share.
    limits: Limits,
    max_head: usize,
    state: State,
    /// Responses expected, oldest first: the one being read is at the front.
    expected: VecDeque<Expected>,
    /// A head (or trailer section) that arrived in pieces, so far.
    buf: Vec<u8>,
    scan: HeadScan,
    /// Whether the response being read leaves the connection open.
    keep_alive: bool,
    /// A request with `Connection: close` went out: no more may follow it.
    close_sent: bool,
    eof: bool,
    /// A head given back by [`ClientConn::recycle`], filled by the next one.
    spare: Option<Box<ResponseHead>>,
}

impl Default for ClientConn {
    fn default() -> Self {
        Self::new(ClientLimits::default())
    }
}

impl ClientConn {
    /// A connection with nothing sent yet.
    pub fn new(limits: ClientLimits) -> ClientConn {
        ClientConn {
            limits: Limits {
                // Irrelevant here: no request line is scanned.
                max_target_bytes: limits.max_head,
                max_header_bytes: limits.max_head,
                max_headers: limits.max_fields,
                max_body_bytes: u64::MAX,
            },
            max_head: limits.max_head,
            state: State::Head,
            expected: VecDeque::new(),
            buf: Vec::new(),
            scan: HeadScan::new(),
            keep_alive: true,
            close_sent: false,
            eof: false,
            spare: None,
        }
    }

    /// Serialises `req` into `out` (request line, `Host`, the headers, `Content-Length`
    /// when there is a body or the method defines one, the body) and records that a
    /// response to it is expected; a `HEAD` is remembered, its response has no body.
    /// Call it again to pipeline. On error nothing is written.
    pub fn write_request(
        &mut self,
        req: &Request<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        if self.close_sent || self.eof || matches!(self.state, State::MustClose | State::Broken(_))
        {
            return Err(RequestError::Closed);
        }
        if req.method.is_empty() || !req.method.bytes().all(is_tchar) {
            return Err(RequestError::InvalidMethod);
        }
        if req.target.is_empty() || !req.target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RequestError::InvalidTarget);
        }
        if !is_field_text(req.host) {
            return Err(RequestError::InvalidHeader);
        }
        let mut close = false;
        for (name, value) in req.headers {
            if name.is_empty() || !name.bytes().all(is_tchar) || !is_field_text(value) {
                return Err(RequestError::InvalidHeader);
            }
            const RESERVED: [&str; 3] = ["host", "content-length", "transfer-encoding"];
            if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                return Err(RequestError::ReservedHeader);
            }
            if name.eq_ignore_ascii_case("connection") {
                close |= list(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
        }
        out.extend_from_slice(req.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(req.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(req.host.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in req.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        // RFC 9110 §8.6: a user agent SHOULD send Content-Length when the method defines
        // a meaning for content, even for none (`POST` with `Content-Length: 0`).
        if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
            out.extend_from_slice(b"Content-Length: ");
            write_decimal(req.body.len() as u64, out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(req.body);
        self.close_sent = close;
        self.expected.push_back(Expected {
            head: req.method == "HEAD",
            close,
        });
        Ok(())
    }

    /// For a caller that writes its request bytes itself (the load generator): one more
    /// response is expected; `head` says whether it answers a HEAD.
    pub fn expect_response(&mut self, head: bool) {
        self.expected.push_back(Expected { head, close: false });
    }

    /// Consumes bytes from the front of `*input` and returns the next event, or `Ok(None)`
    /// once `*input` is used up without completing one (it is then empty: whatever was
    /// not an event is buffered). Body data is a slice of `*input`, never copied; only a
    /// head arriving in pieces is buffered, up to [`ClientLimits::max_head`]. This is a
    /// deliberate exception to the crate's `handle_bytes`/`poll_event` grammar: see the
    /// module docs.
    pub fn poll_event<'i>(
        &mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<ResponseEvent<'i>>, ResponseError> {
        let got = self.next_event(input);
        if let Err(e) = got {
            self.state = State::Broken(e);
        }
        got
    }

    /// The server closed its side. A close-delimited body ends (the next
    /// [`ClientConn::poll_event`] yields `End`); EOF inside a head or a framed body is
    /// [`ResponseError::Truncated`], and before an expected response
    /// [`ResponseError::NoResponse`], from the next `poll_event`; EOF with nothing
    /// expected, or after the connection's last response, is fine.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// Gives back a head from [`ResponseEvent::Head`]: the next head is parsed into its
    /// buffers, so a keep-alive connection stops allocating per response.
    pub fn recycle(&mut self, head: Box<ResponseHead>) {
        self.spare = Some(head);
    }

    /// No response is expected or half read, and the last one allowed reuse: the
    /// connection can carry another request (a keep-alive pool takes it back).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head)
            && self.expected.is_empty()
            && self.buf.is_empty()
            && !self.close_sent
            && !self.eof
    }

    /// Bytes held between calls: a head or trailer section that arrived in pieces (body
    /// bytes are never copied). At most [`ClientLimits::max_head`] + 1: one byte past
    /// the limit is how the scanner knows it was passed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// After any [`ResponseError`]: nothing more is read; close the connection.
    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken(_))
    }

    /// Responses expected and not yet ended, the one being read included. After an
    /// `End { keep_alive: false }` (or an error), the requests these answer went
    /// unanswered: the caller may send them again on a new connection.
    pub fn outstanding(&self) -> usize {
        self.expected.len()
    }

    /// Every transition, in one `match` on the state.
    fn next_event<'i>(
        &mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<ResponseEvent<'i>>, ResponseError> {
        loop {
            match &mut self.state {
                State::Broken(e) => return Err(*e),
                State::MustClose | State::Head if input.is_empty() && self.buf.is_empty() => {
                    return match self.state {
                        State::Head if self.eof && !self.expected.is_empty() => {
                            Err(ResponseError::NoResponse)
                        }
                        _ => Ok(None),
                    };
                }
                State::MustClose => return Err(ResponseError::Unexpected),
                State::Head if self.expected.is_empty() => return Err(ResponseError::Unexpected),
                State::Head => {
                    let Some(head) = self.read_head(input)? else {
                        return if self.eof {
                            Err(ResponseError::Truncated)
                        } else {
                            Ok(None)
                        };
                    };
                    // RFC 9110 §15.2: interim responses are dropped; the final one follows.
                    if (100..200).contains(&head.status) {
                        if head.status == 101 {
                            return Err(ResponseError::Upgrade);
                        }
                        self.spare = Some(head);
                        continue;
                    }
                    self.state = match head.framing {
                        ResponseFraming::Empty | ResponseFraming::Length(0) => State::EndDue,
                        ResponseFraming::Length(n) => State::SendBody(Body::Length(n)),
                        ResponseFraming::Chunked => {
                            State::SendBody(Body::Chunked(BodyDecoder::new(BodyFraming::Chunked)))
                        }
                        ResponseFraming::UntilClose => State::SendBody(Body::UntilClose),
                    };
                    return Ok(Some(ResponseEvent::Head(head)));
                }
                State::EndDue => {
                    let expected = self.expected.pop_front();
                    let keep_alive = self.keep_alive && !expected.is_some_and(|e| e.close);
                    self.state = if keep_alive {
                        State::Head
                    } else {
                        State::MustClose
                    };
                    return Ok(Some(ResponseEvent::End { keep_alive }));
                }
                State::SendBody(Body::Length(left)) => {
                    if input.is_empty() {
                        return if self.eof {
                            Err(ResponseError::Truncated)
                        } else {
                            Ok(None)
                        };
                    }
                    let n = (*left).min(input.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        self.state = State::EndDue;
                    }
                    let (data, rest) = input.split_at(n as usize);
                    *input = rest;
                    return Ok(Some(ResponseEvent::Body(data)));
                }
                State::SendBody(Body::UntilClose) => {
                    if !input.is_empty() {
                        return Ok(Some(ResponseEvent::Body(std::mem::take(input))));
                    }
                    if !self.eof {
                        return Ok(None);
                    }
                    self.state = State::EndDue;
                }
                State::SendBody(Body::Chunked(decoder)) => {
                    if !self.buf.is_empty() {
                        // A trailer section arriving in pieces: buffered line by line,
                        // so that its last line is the buffer's last.
                        if input.is_empty() {
                            return if self.eof {
                                Err(ResponseError::Truncated)
                            } else {
                                Ok(None)
                            };
                        }
                        take_line(input, &mut self.buf, self.max_head + 1);
                        decoder
                            .decode(&self.buf, &self.limits)
                            .map_err(chunk_error)?;
                        if decoder.is_done() {
                            self.buf.clear();
                            self.state = State::EndDue;
                        }
                        continue;
                    }
                    let whole: &'i [u8] = input;
                    let step = decoder.decode(whole, &self.limits).map_err(chunk_error)?;
                    *input = &whole[step.consumed..];
                    if !step.data.is_empty() {
                        return Ok(Some(ResponseEvent::Body(&whole[step.data])));
                    }
                    if decoder.is_done() {
                        self.state = State::EndDue;
                    } else if decoder.in_trailers() && !input.is_empty() {
                        // The trailer scanner looked at all of it and found no end (and
                        // checked it against the limit): keep it for the next read.
                        self.buf.extend_from_slice(std::mem::take(input));
                    } else if self.eof {
                        return Err(ResponseError::Truncated);
                    } else {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Parses the complete head `raw` (the scanner's way) into the spare head.
    fn parse(&mut self, raw: &[u8]) -> Result<Box<ResponseHead>, ResponseError> {
        let mut head = self.spare_head();
        let keep_alive = parse_head(raw, &self.limits, self.answers_head(), &mut head)?;
        self.note_keep_alive(&head, keep_alive);
        Ok(head)
    }

    /// The head given back by [`ClientConn::recycle`], or a new one.
    fn spare_head(&mut self) -> Box<ResponseHead> {
        self.spare
            .take()
            .unwrap_or_else(|| Box::new(ResponseHead::empty()))
    }

    /// The response being read answers a HEAD.
    fn answers_head(&self) -> bool {
        self.expected.front().is_some_and(|e| e.head)
    }

    /// A final response decides whether the connection persists after it (an interim one
    /// does not: the final one follows).
    fn note_keep_alive(&mut self, head: &ResponseHead, keep_alive: bool) {
        if head.status >= 200 {
            self.keep_alive = keep_alive;
        }
    }

    /// The next complete head from `input` (and what was buffered before it), or `None`
    /// once `input` is used up. A head that arrives whole is scanned and parsed where it
    /// lies; one cut by a read is copied into `buf` a line at a time, so that no byte past
    /// its end is ever copied.
    fn read_head(&mut self, input: &mut &[u8]) -> Result<Option<Box<ResponseHead>>, ResponseError> {
        loop {
            if self.buf.is_empty() && self.scan == HeadScan::new() {
                let mut head = self.spare_head();
                let answers_head = self.answers_head();
                let whole =
                    parse_whole_head(input, &self.limits, self.max_head, answers_head, &mut head)?;
                if let Some((len, keep_alive)) = whole {
                    *input = &input[len..];
                    self.note_keep_alive(&head, keep_alive);
                    return Ok(Some(head));
                }
                self.spare = Some(head);
            }
            if self.buf.is_empty() {
                match self.scan.scan(input, &self.limits, self.max_head)? {
                    Scan::EmptyLine(n) => {
                        *input = &input[n..];
                        self.scan = HeadScan::new();
                    }
                    Scan::Complete(n) => {
                        let (raw, rest) = input.split_at(n);
                        *input = rest;
                        self.scan = HeadScan::new();
                        return self.parse(raw).map(Some);
                    }
                    Scan::Partial => {
                        self.buf.extend_from_slice(std::mem::take(input));
                        return Ok(None);
                    }
                }
            } else {
                if input.is_empty() {
                    return Ok(None);
                }
                take_line(input, &mut self.buf, self.max_head + 1);
                match self.scan.scan(&self.buf, &self.limits, self.max_head)? {
                    Scan::Partial => {}
                    Scan::EmptyLine(_) => {
                        // The buffer held only the empty line: drop it, start afresh.
                        self.buf.clear();
                        self.scan = HeadScan::new();
                    }
                    Scan::Complete(_) => {
                        let raw = std::mem::take(&mut self.buf);
                        self.scan = HeadScan::new();
                        let head = self.parse(&raw);
                        self.buf = raw;
                        self.buf.clear();
                        return head.map(Some);
                    }
                }
            }
        }
    }
}

/// Moves the front of `input` through its first LF (all of it if there is none, and at
/// most `limit - buf.len()` bytes) to the end of `buf`.
fn take_line(input: &mut &[u8], buf: &mut Vec<u8>, limit: usize) {
    let room = limit.saturating_sub(buf.len()).max(1);
    let n = find_lf(input).map_or(input.len(), |i| i + 1).min(room);
    let (line, rest) = input.split_at(n);
    buf.extend_from_slice(line);
    *input = rest;
}

/// The chunked decoder's verdict, as a response error.
fn chunk_error(e: HttpError) -> ResponseError {
    match e {
        HttpError::HeadersTooLarge | HttpError::TooManyHeaders => ResponseError::HeadTooLarge,
        HttpError::Malformed(_) | HttpError::ObsFold => ResponseError::Malformed,
        _ => ResponseError::BadChunk,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
