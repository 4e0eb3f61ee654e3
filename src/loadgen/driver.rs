//! What a protocol tells the generator: how to ask, and when an answer is complete.
//!
//! A [`Driver`] is the only protocol-specific part of a stream load test. The generator
//! owns the connections, the clock, the pipelining window and the histogram; the driver
//! turns "send one request" into bytes and received bytes into "this many responses
//! finished". Adding chat, file or SMTP load means one more `Driver`, nothing else.
//!
//! # Reading order for the engine
//!
//! After [`Driver::write_request`] the request's bytes are in the output queue. After every
//! [`Driver::handle_bytes`]: [`Driver::poll_transmit`] into the same queue (the bytes a
//! reply made due: an SMTP client's EHLO after the greeting, its message after 354), then
//! act on the [`Answers`] (which may ask for the next request).

use netloop_protocols::http::{ClientConn, ResponseError, ResponseEvent};
use netloop_protocols::time as time_proto;
use std::fmt;

/// How requests map onto connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Requests share a persistent connection, up to the pipelining depth at once (HTTP
    /// keep-alive). The figure is requests per second.
    KeepAlive,
    /// Each request is one connection, answered and closed by the server (the time
    /// service). The figure is connections per second; latency runs from `connect` to EOF.
    ConnectionPerRequest,
}

/// Responses finished by some received bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answers {
    /// Responses completed, in request order (each ends one request's latency).
    pub complete: usize,
    /// How many of those were complete but unsuccessful (an HTTP status outside 2xx, a time
    /// service that sent something other than a time): counted as bad responses.
    pub unsuccessful: usize,
    /// The server announced it closes after these (`Connection: close`).
    pub closing: bool,
    /// Payload bytes these responses carried, for a driver whose figure is bandwidth (file
    /// transfer); 0 for the others.
    pub bytes: u64,
}

/// The server broke its protocol: the connection is dropped and counted as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadResponse {
    /// HTTP framing the [`ClientConn`] refused.
    Http(ResponseError),
    /// The time service sent more than a time's worth of bytes.
    Time(time_proto::Error),
    /// A file transfer whose header or body was wrong (size, checksum, framing).
    File(super::file::FileError),
    /// An SMTP server that greeted badly, refused EHLO, or sent what is not a reply.
    Smtp(super::smtp::SmtpError),
    /// The server closed with a response half sent.
    CutShort,
}

impl fmt::Display for BadResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadResponse::Http(e) => write!(f, "bad HTTP response: {e}"),
            BadResponse::Time(e) => write!(f, "bad time reply: {e:?}"),
            BadResponse::File(e) => write!(f, "bad file transfer: {e}"),
            BadResponse::Smtp(e) => write!(f, "bad SMTP session: {e}"),
            BadResponse::CutShort => f.write_str("connection closed mid-response"),
        }
    }
}

impl std::error::Error for BadResponse {}

/// One connection's protocol, from the client's side. One value per connection: a driver
/// may keep parser state between reads.
pub trait Driver {
    /// How requests use connections.
    fn shape(&self) -> Shape;

    /// Appends one request to `out` (the connection's output queue). A
    /// [`Shape::ConnectionPerRequest`] protocol whose server speaks first appends nothing.
    fn write_request(&mut self, out: &mut Vec<u8>);

    /// Bytes from the server.
    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse>;

    /// Appends to `out` the bytes the driver must send that no request asked for: a
    /// greeting's answer, the second half of a transaction (an SMTP message after its
    /// 354). The engine calls it when the connection opens and after every
    /// [`handle_bytes`](Driver::handle_bytes), before acting on the answers. Most
    /// protocols speak only when asked: nothing.
    fn poll_transmit(&mut self, _out: &mut Vec<u8>) {}

    /// The server closed its side. A protocol whose reply ends at the close (the time
    /// service) completes it here; one that frames its replies checks none was cut short.
    fn handle_eof(&mut self) -> Result<Answers, BadResponse>;

    /// What one request is called in the report's summary line.
    fn unit(&self) -> &'static str {
        "requests"
    }
}

/// `GET path` over keep-alive HTTP/1.1, pipelined up to the plan's depth.
///
/// The request bytes are made once and copied per request; the responses are framed by
/// the protocols crate's [`ClientConn`], told of each request with `expect_response`.
/// Body bytes are only counted past, never copied, and heads are recycled: a response
/// costs no allocation.
#[derive(Debug)]
pub struct HttpGet {
    request: Vec<u8>,
    conn: ClientConn,
    /// The response being read has a 2xx status.
    success: bool,
}

impl HttpGet {
    /// A driver that sends `GET {path}` with `Host: {host}` (the host is whatever the URL
    /// said; HTTP/1.1 requires the field, RFC 9112 §3.2).
    pub fn new(host: &str, path: &str) -> HttpGet {
        HttpGet {
            request: format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
            conn: ClientConn::default(),
            success: false,
        }
    }

    /// Drains the connection's events for `input`, counting the responses that ended.
    fn frame(&mut self, mut input: &[u8]) -> Result<Answers, ResponseError> {
        let mut answers = Answers::default();
        while let Some(event) = self.conn.poll_event(&mut input)? {
            match event {
                ResponseEvent::Head(head) => {
                    self.success = (200..300).contains(&head.status);
                    self.conn.recycle(head);
                }
                ResponseEvent::Body(_) => {}
                ResponseEvent::End { keep_alive } => {
                    answers.complete += 1;
                    answers.unsuccessful += usize::from(!self.success);
                    answers.closing |= !keep_alive;
                }
            }
        }
        Ok(answers)
    }
}

impl Driver for HttpGet {
    fn shape(&self) -> Shape {
        Shape::KeepAlive
    }

    fn write_request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
        self.conn.expect_response(false);
    }

    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse> {
        self.frame(bytes).map_err(BadResponse::Http)
    }

    fn handle_eof(&mut self) -> Result<Answers, BadResponse> {
        self.conn.handle_eof();
        match self.frame(&[]) {
            // A body delimited by the close ends here, with its answer counted.
            Ok(answers) => Ok(answers),
            Err(ResponseError::Truncated) => Err(BadResponse::CutShort),
            // Requests still in flight with no byte of their answers: the generator counts
            // those itself (a reset, or a retry after the server said it closes).
            Err(ResponseError::NoResponse) => Ok(Answers::default()),
            Err(e) => Err(BadResponse::Http(e)),
        }
    }
}

/// The time service: connect, read the time to EOF, close. One request per connection.
#[derive(Debug, Default)]
pub struct TimeConnect {
    client: time_proto::Client,
}

impl Driver for TimeConnect {
    fn shape(&self) -> Shape {
        Shape::ConnectionPerRequest
    }

    /// The server speaks first: nothing to send.
    fn write_request(&mut self, _out: &mut Vec<u8>) {}

    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse> {
        self.client.handle_bytes(bytes);
        self.client.poll_event().map_err(BadResponse::Time)?;
        Ok(Answers::default())
    }

    fn handle_eof(&mut self) -> Result<Answers, BadResponse> {
        let mut client = std::mem::take(&mut self.client);
        client.handle_eof();
        let reply = client.poll_event().map_err(BadResponse::Time)?;
        Ok(Answers {
            complete: 1,
            unsuccessful: usize::from(!matches!(reply, Some(time_proto::Reply::Time(_)))),
            closing: true,
            bytes: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    fn sent(n: usize) -> HttpGet {
        let mut driver = HttpGet::new("h", "/");
        let mut out = Vec::new();
        for _ in 0..n {
            driver.write_request(&mut out);
        }
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".repeat(n));
        driver
    }

    #[test]
    fn http_get_counts_answers_however_they_arrive() {
        let input = [
            OK,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        ]
        .concat();
        for size in 1..=input.len() {
            let mut driver = sent(4);
            let mut total = Answers::default();
            for piece in input.chunks(size) {
                let a = driver.handle_bytes(piece).unwrap();
                total.complete += a.complete;
                total.unsuccessful += a.unsuccessful;
                total.closing |= a.closing;
            }
            assert_eq!(
                (total.complete, total.unsuccessful, total.closing),
                (4, 1, true)
            );
            assert_eq!(driver.handle_eof(), Ok(Answers::default()));
        }
    }

    #[test]
    fn http_get_reports_what_went_wrong() {
        let mut cut = sent(1);
        assert_eq!(cut.handle_bytes(&OK[..OK.len() - 1]).unwrap().complete, 0);
        assert_eq!(cut.handle_eof(), Err(BadResponse::CutShort));
        // Closed before answering at all: the generator's own count (a reset) covers it.
        assert_eq!(sent(2).handle_eof(), Ok(Answers::default()));
        let mut bad = sent(1);
        let two_lengths = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            bad.handle_bytes(two_lengths),
            Err(BadResponse::Http(ResponseError::ConflictingLength))
        );
        let mut extra = sent(1);
        assert_eq!(
            extra.handle_bytes(&[OK, OK].concat()),
            Err(BadResponse::Http(ResponseError::Unexpected))
        );
        // A body that runs until the close is answered at the close.
        let mut until_close = sent(1);
        assert_eq!(
            until_close
                .handle_bytes(b"HTTP/1.1 200 OK\r\n\r\nok")
                .map(|a| a.complete),
            Ok(0)
        );
        let at_eof = until_close.handle_eof().unwrap();
        assert_eq!((at_eof.complete, at_eof.closing), (1, true));
    }
}
