//! What a protocol tells the generator: how to ask, and when an answer is complete.
//!
//! A [`Driver`] is the only protocol-specific part of a stream load test. The generator
//! owns the connections, the clock, the pipelining window and the histogram; the driver
//! turns "send one request" into bytes and received bytes into "this many responses
//! finished". Adding chat, file or SMTP load means one more `Driver`, nothing else.

use netloop_protocols::http::{ResponseError, ResponseFramer};
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
    /// HTTP framing the [`ResponseFramer`] refused.
    Http(ResponseError),
    /// The time service sent more than a time's worth of bytes.
    Time(time_proto::Error),
    /// A file transfer whose header or body was wrong (size, checksum, framing).
    File(super::file::FileError),
    /// The server closed with a response half sent.
    CutShort,
}

impl fmt::Display for BadResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadResponse::Http(e) => write!(f, "bad HTTP response: {e}"),
            BadResponse::Time(e) => write!(f, "bad time reply: {e:?}"),
            BadResponse::File(e) => write!(f, "bad file transfer: {e}"),
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

    /// The server closed its side. A protocol whose reply ends at the close (the time
    /// service) completes it here; one that frames its replies checks none was cut short.
    fn handle_eof(&mut self) -> Result<Answers, BadResponse>;

    /// What one request is called in the report's summary line.
    fn unit(&self) -> &'static str {
        "requests"
    }
}

/// `GET path` over keep-alive HTTP/1.1, pipelined up to the plan's depth.
#[derive(Debug)]
pub struct HttpGet {
    request: Vec<u8>,
    framer: ResponseFramer,
}

impl HttpGet {
    /// A driver that sends `GET {path}` with `Host: {host}` (the host is whatever the URL
    /// said; HTTP/1.1 requires the field, RFC 9112 §3.2).
    pub fn new(host: &str, path: &str) -> HttpGet {
        HttpGet {
            request: format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
            framer: ResponseFramer::default(),
        }
    }
}

impl Driver for HttpGet {
    fn shape(&self) -> Shape {
        Shape::KeepAlive
    }

    fn write_request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse> {
        self.framer.handle_bytes(bytes);
        let mut answers = Answers::default();
        while let Some(done) = self.framer.poll_response().map_err(BadResponse::Http)? {
            answers.complete += 1;
            if !(200..300).contains(&done.status) {
                answers.unsuccessful += 1;
            }
            answers.closing |= done.closing;
        }
        Ok(answers)
    }

    fn handle_eof(&mut self) -> Result<Answers, BadResponse> {
        if self.framer.is_idle() {
            Ok(Answers::default())
        } else {
            Err(BadResponse::CutShort)
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
        self.client.handle_bytes(bytes).map_err(BadResponse::Time)?;
        Ok(Answers::default())
    }

    fn handle_eof(&mut self) -> Result<Answers, BadResponse> {
        let reply = std::mem::take(&mut self.client).handle_eof();
        Ok(Answers {
            complete: 1,
            unsuccessful: usize::from(!matches!(reply, time_proto::Reply::Time(_))),
            closing: true,
            bytes: 0,
        })
    }
}
