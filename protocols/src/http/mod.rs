//! HTTP/1.1, sans-IO, both sides. Server: request bytes in, [`Event`]s out; response calls
//! in, response bytes out. Client ([`ClientConn`]): requests out, response events in. No
//! sockets, no clock.
//!
//! # Read first
//!
//! - RFC 9112 (HTTP/1.1 message syntax): §2.2 message parsing (CRLF, leading empty lines),
//!   §3 request line and §3.2 Host, §4 status line, §5 field lines and §5.2 obs-fold, §6 message body
//!   (§6.1 Transfer-Encoding, §6.2 Content-Length, **§6.3 message body length**: the rules
//!   that stop request smuggling), §7 chunked transfer coding, §9.3 persistence and
//!   pipelining, §9.6 tear-down.
//! - RFC 9110 (HTTP semantics): §5.6 field value syntax (lists, tokens), §6.6.1 Date,
//!   §7.6.1 Connection, §9.3.2 HEAD, §10.1.1 Expect, §15 status codes (§15.2 1xx, §15.3.5 204,
//!   §15.4.5 304, §15.5.14 413, §15.5.15 414, §15.6.2 501, §15.6.6 505); RFC 6585 §5 (431).
//! - h11's `_connection.py` and `_state.py`: the model this follows.
//!
//! # States
//!
//! [`ServerConn`] tracks two halves of each exchange (one request and its response), named
//! after h11's. The client's half: `Idle` (waiting for a head) → `SendBody` (head yielded,
//! body being read; `EndDue` instead when the head says there is no body) → `Done`
//! (`RequestEnd` yielded). Ours: `Idle` → `SendBody` (head written) → `Done` (finished).
//! When both are `Done` the connection starts the next exchange, or goes to `Closed` if
//! this one was the last (`Connection: close` either way, HTTP/1.0 without keep-alive, EOF)
//! or if the peer broke the protocol ([`HttpError`]). `conn.rs` draws the diagram and makes
//! the transitions. [`ClientConn`] tracks the other end's view: only the server's half
//! (`Head` → `SendBody` → `EndDue`, then `Head` again or `MustClose`); `client.rs` draws it.
//!
//! # Layout, in the order bytes flow
//!
//! - `limits.rs`: [`Limits`], every default explained.
//! - `head.rs`: finds the end of a head as bytes arrive; bare LF, obs-fold, size limits.
//! - `request.rs`: [`RequestHead`] and [`Fields`]: httparse, then the framing rules.
//! - `body.rs`: the body decoder, Content-Length and chunked, as its own state machine.
//! - `conn.rs`: [`ServerConn`], the exchange state machine tying it together.
//! - `response.rs`: response bytes, [`error_response`], [`http_date`].
//! - `error.rs`: [`HttpError`] (the peer's fault, with its status) and [`UsageError`] (ours).
//! - `url.rs`: percent-decoding of paths and query strings.
//! - `client.rs`: [`ClientConn`], the client's side: requests serialised, pipelined
//!   responses framed as they arrive (Content-Length, chunked through `body.rs`'s decoder,
//!   close-delimited), body data handed out as slices of the input. The load generator's
//!   framer too. Its tests are in `client_tests.rs`.
//! - `client_head.rs`: [`ResponseHead`] and [`ResponseFraming`]: a response head scanned
//!   (as strictly as `head.rs` scans a request's), parsed, and its body framed (RFC 9112 §6.3).
//!
//! # Start here
//!
//! ```
//! use netloop_protocols::http::{BodyFraming, Event, ServerConn};
//!
//! let mut conn = ServerConn::default();
//! let mut out = Vec::new();
//! conn.handle_bytes(b"GET /hello?name=x HTTP/1.1\r\nHost: example\r\n\r\n");
//! while let Some(event) = conn.poll_event().expect("a valid request") {
//!     if let Event::Request(head) = event {
//!         assert_eq!(head.path(), "/hello");
//!         conn.write_response_head(200, "OK", &[], BodyFraming::Length(2), &mut out).unwrap();
//!         conn.write_body(b"hi", &mut out).unwrap();
//!         conn.finish_response(&mut out).unwrap();
//!     }
//! }
//! assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
//! assert!(!conn.is_closed());
//! ```

mod body;
mod client;
mod client_head;
mod conn;
mod error;
mod head;
mod limits;
mod request;
mod response;
pub mod url;

pub use client::{ClientConn, ClientLimits, Request, RequestError, ResponseError, ResponseEvent};
pub use client_head::{ResponseFraming, ResponseHead};
pub use conn::{Event, ServerConn};
pub use error::{HttpError, UsageError};
pub use limits::{Limits, MAX_HEADERS_CAP, MAX_METHOD_BYTES};
pub use request::{BodyFraming, Fields, RequestHead, Trailers, Version};
pub use response::{HeaderBlock, error_response, http_date, reason_phrase};

#[cfg(test)]
mod tests;
