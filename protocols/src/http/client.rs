//! The client's side, as little of it as a load generator needs: frame pipelined
//! responses (status line, header section, `Content-Length` body) as their bytes arrive.
//!
//! # Read first
//!
//! - RFC 9112 §4 (status line), §6.3 (message body length: which responses have no body,
//!   and how the rest say where they end), §9.3.2 (pipelining: responses come back in the
//!   order the requests went out, so counting them is matching them).
//!
//! # States
//!
//! ```text
//!   Head ── empty line ends the head ──► Body(n) ── n body bytes ──► Head
//!     │                                   (n = 0: straight back to Head)
//!     └── garbage, a head over the limit, or a framing this module does not do ──► Broken
//! ```
//!
//! Only the head is buffered (bounded by [`MAX_RESPONSE_HEAD`]); body bytes are counted and
//! dropped, so a generator holds no response in memory. `Transfer-Encoding` and bodies
//! delimited by the close are refused as [`ResponseError::Unsupported`]: a teaching
//! simplification (a generator talks to servers whose answers it knows), said here so that
//! nobody takes this for a general HTTP client.

use std::collections::VecDeque;

/// Longest response head (status line and fields) the framer buffers. 64 KiB: far beyond
/// any real response head (nginx's default proxy buffer for one is 4-8 KiB) and small
/// enough that a server that never ends its head cannot grow a connection without bound.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Most header fields parsed in one response: httparse's slots live on the stack. 64 is
/// twice what a verbose server (a CDN edge with tracing headers) sends.
const MAX_RESPONSE_FIELDS: usize = 64;

/// One complete response, body and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseDone {
    /// The status code.
    pub status: u16,
    /// Body bytes (the `Content-Length`).
    pub body_len: u64,
    /// The server said `Connection: close` (or answered HTTP/1.0 without keep-alive): no
    /// more responses follow on this connection.
    pub closing: bool,
}

/// The server broke HTTP/1.1, or used a framing this module does not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// The head is not a valid status line and fields.
    Malformed,
    /// The head grew past [`MAX_RESPONSE_HEAD`] without ending.
    HeadTooLarge,
    /// `Content-Length` is missing, repeated with different values, or not a number.
    BadLength,
    /// `Transfer-Encoding` or a body delimited by the close: not done here (see module docs).
    Unsupported,
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResponseError::Malformed => "malformed response head",
            ResponseError::HeadTooLarge => "response head too large",
            ResponseError::BadLength => "missing or invalid Content-Length",
            ResponseError::Unsupported => "unsupported response framing",
        })
    }
}

impl std::error::Error for ResponseError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Buffering a head; the buffer holds its bytes so far.
    Head,
    /// Skipping this many body bytes of `done`, reported when the last one arrives.
    Body(u64, ResponseDone),
    /// The server broke the protocol; nothing more is framed.
    Broken(ResponseError),
}

/// Frames the responses on one connection.
///
/// Feed every byte received to [`handle_bytes`](ResponseFramer::handle_bytes), then drain
/// [`poll_response`](ResponseFramer::poll_response) until it says `Ok(None)`.
///
/// ```
/// use netloop_protocols::http::ResponseFramer;
///
/// let mut framer = ResponseFramer::default();
/// framer.handle_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No");
/// assert_eq!(framer.poll_response().unwrap().map(|r| r.status), Some(200));
/// assert_eq!(framer.poll_response(), Ok(None)); // the second one is not complete yet
/// framer.handle_bytes(b" Content\r\n\r\n");
/// assert_eq!(framer.poll_response().unwrap().map(|r| r.body_len), Some(0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFramer {
    state: State,
    head: Vec<u8>,
    /// Where the search for the head's end resumes (each byte is looked at once).
    scanned: usize,
    done: VecDeque<ResponseDone>,
}

impl Default for ResponseFramer {
    fn default() -> Self {
        ResponseFramer {
            state: State::Head,
            head: Vec::new(),
            scanned: 0,
            done: VecDeque::new(),
        }
    }
}

impl ResponseFramer {
    /// Bytes from the server, in order.
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Broken(_) => return,
                State::Body(left, done) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= take as u64;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.done.push_back(*done);
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    // Search only the new bytes (and the three before them, for a CRLFCRLF
                    // that straddles two reads).
                    let from = self.scanned.saturating_sub(3);
                    let room = MAX_RESPONSE_HEAD - self.head.len();
                    let take = bytes.len().min(room);
                    self.head.extend_from_slice(&bytes[..take]);
                    match find_head_end(&self.head[from..]) {
                        Some(end) => {
                            let end = from + end;
                            let rest = self.head.len() - end;
                            // Bytes past the head go back to the loop: body or next head.
                            bytes = &bytes[take - rest..];
                            self.head.truncate(end);
                            self.state = match parse_head(&self.head) {
                                Ok(done) if done.body_len == 0 => {
                                    self.done.push_back(done);
                                    State::Head
                                }
                                Ok(done) => State::Body(done.body_len, done),
                                Err(e) => State::Broken(e),
                            };
                            self.head.clear();
                            self.scanned = 0;
                        }
                        None if take < bytes.len() || self.head.len() == MAX_RESPONSE_HEAD => {
                            self.state = State::Broken(ResponseError::HeadTooLarge);
                            return;
                        }
                        None => {
                            self.scanned = self.head.len();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The next complete response, in order. `Ok(None)`: none complete yet. An error is
    /// reported once every response before it has been taken, and then again each call.
    pub fn poll_response(&mut self) -> Result<Option<ResponseDone>, ResponseError> {
        if let Some(done) = self.done.pop_front() {
            return Ok(Some(done));
        }
        match &self.state {
            State::Broken(e) => Err(e.clone()),
            _ => Ok(None),
        }
    }

    /// True between responses: no partial response is buffered or being skipped. A server
    /// that closes here has not cut a response short.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.head.is_empty()
    }
}

/// The length of the head, CRLF CRLF included, if `bytes` holds its end.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// Status, body length and persistence from a complete head (RFC 9112 §6.3).
fn parse_head(head: &[u8]) -> Result<ResponseDone, ResponseError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return Err(ResponseError::Malformed),
    }
    let (Some(status), Some(minor)) = (response.code, response.version) else {
        return Err(ResponseError::Malformed);
    };
    let mut length: Option<u64> = None;
    let mut close = None;
    for field in response.headers.iter() {
        if field.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(field.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ResponseError::BadLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::BadLength);
            }
            length = Some(n);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ResponseError::Unsupported);
        } else if field.name.eq_ignore_ascii_case("connection") {
            let has = |token: &str| {
                field
                    .value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            };
            if has("close") {
                close = Some(true);
            } else if has("keep-alive") {
                close.get_or_insert(false);
            }
        }
    }
    // §6.3 rule 1: 1xx, 204 and 304 never have a body, whatever the fields say.
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let body_len = match (no_body, length) {
        (true, _) => 0,
        (false, Some(n)) => n,
        // §6.3 rule 8: no length means "until the close", which cannot be pipelined.
        (false, None) => return Err(ResponseError::Unsupported),
    };
    Ok(ResponseDone {
        status,
        body_len,
        // HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 persists unless it says close.
        closing: close.unwrap_or(minor == 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    /// Feeds `pieces` and collects every response, then the error if one came.
    fn frame(pieces: &[&[u8]]) -> (Vec<ResponseDone>, Option<ResponseError>, bool) {
        let mut framer = ResponseFramer::default();
        let mut got = Vec::new();
        let mut error = None;
        for piece in pieces {
            framer.handle_bytes(piece);
            loop {
                match framer.poll_response() {
                    Ok(Some(done)) => got.push(done),
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
        }
        (got, error, framer.is_idle())
    }

    const HELLO: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

    #[test]
    fn pipelined_responses_are_framed_at_every_split() {
        let mut input = Vec::new();
        input.extend_from_slice(HELLO);
        input.extend_from_slice(b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n");
        input.extend_from_slice(b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\n\r\n\r\n");
        input.extend_from_slice(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        input.extend_from_slice(HELLO);
        input.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        );
        let (got, error, idle) = same_every_split(&input, frame);
        assert_eq!(error, None);
        assert!(idle);
        let statuses: Vec<(u16, u64, bool)> = got
            .iter()
            .map(|r| (r.status, r.body_len, r.closing))
            .collect();
        assert_eq!(
            statuses,
            [
                (200, 13, false),
                (204, 0, false), // §6.3: 204 has no body, whatever Content-Length says
                (404, 4, false), // a body that looks like CRLF CRLF is still body
                (200, 0, true),  // HTTP/1.0 without keep-alive closes
                (200, 13, false),
                (200, 1, true),
            ]
        );
    }

    #[test]
    fn a_partial_response_leaves_the_framer_busy() {
        let (got, error, idle) = same_every_split(&HELLO[..HELLO.len() - 1], frame);
        assert_eq!((got.len(), error, idle), (0, None, false));
    }

    #[test]
    fn broken_and_unsupported_framings_are_errors_after_the_good_ones() {
        let cases: [(&[u8], ResponseError); 5] = [
            (b"HTTP/1.1 200 OK\r\n\r\n", ResponseError::Unsupported),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                ResponseError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::BadLength,
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", ResponseError::Malformed),
        ];
        for (bad, want) in cases {
            let input = [HELLO, bad, HELLO].concat();
            let (got, error, _) = same_every_split(&input, frame);
            assert_eq!(got.len(), 1, "only the response before {bad:?}");
            assert_eq!(error, Some(want), "{bad:?}");
        }
    }

    #[test]
    fn a_head_that_never_ends_stops_at_the_limit() {
        let mut framer = ResponseFramer::default();
        framer.handle_bytes(b"HTTP/1.1 200 OK\r\nX: ");
        for _ in 0..MAX_RESPONSE_HEAD / 1024 {
            framer.handle_bytes(&[b'a'; 1024]);
        }
        assert_eq!(framer.poll_response(), Err(ResponseError::HeadTooLarge));
    }
}
