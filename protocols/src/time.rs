//! The time protocol of the lesson (programs 02/03, 06/07, 10): on connect the server sends
//! its local time as text, `%Y-%m-%d %H:%M:%S`, then closes. The client reads to EOF.
//!
//! There are no requests and no states worth naming: the server side is one formatted
//! string, the client side collects bytes until the server closes. What makes it worth a
//! module is that the client must not assume the text arrives in one read.

use chrono::NaiveDateTime;

/// The format the lesson's server uses (`str(datetime.now())` without the fraction).
pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Longest reply a client accepts: the formatted time is 19 bytes; anything far beyond that
/// is not a time server, and a client that buffers without bound is a client to crash.
pub const MAX_REPLY: usize = 256;

/// Appends the server's whole reply for the time `now` to `out` (no line ending, as in the
/// lesson: the close is the terminator).
pub fn poll_transmit(now: NaiveDateTime, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", now.format(FORMAT));
}

/// What a time client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The server closed after sending a well-formed time.
    Time(NaiveDateTime),
    /// The server closed after sending text that is not a time in [`FORMAT`].
    NotATime(String),
}

/// The peer broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// More than [`MAX_REPLY`] bytes arrived.
    TooLong,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLong => write!(f, "reply longer than {MAX_REPLY} bytes: not a time server"),
        }
    }
}

impl std::error::Error for Error {}

/// The client side: feed bytes with [`Client::handle_bytes`], then call
/// [`Client::handle_eof`] when the server closes to get the [`Reply`].
#[derive(Debug, Default)]
pub struct Client {
    buf: Vec<u8>,
}

impl Client {
    /// A client that has received nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes arrived from the server.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.buf.len() + bytes.len() > MAX_REPLY {
            return Err(Error::TooLong);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The server closed: the reply is complete.
    pub fn handle_eof(self) -> Reply {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        match NaiveDateTime::parse_from_str(text, FORMAT) {
            Ok(t) => Reply::Time(t),
            Err(_) => Reply::NotATime(text.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;
    use chrono::NaiveDate;

    fn t() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .and_then(|d| d.and_hms_opt(9, 5, 7))
            .expect("valid date")
    }

    #[test]
    fn server_sends_the_lesson_format() {
        let mut out = Vec::new();
        poll_transmit(t(), &mut out);
        assert_eq!(out, b"2026-11-25 09:05:07");
    }

    #[test]
    fn client_reads_the_time_however_it_is_split() {
        let reply = same_every_split(b"2026-11-25 09:05:07", |pieces| {
            let mut c = Client::new();
            for p in pieces {
                c.handle_bytes(p).expect("short reply");
            }
            c.handle_eof()
        });
        assert_eq!(reply, Reply::Time(t()));
    }

    #[test]
    fn client_accepts_a_trailing_newline_and_reports_garbage() {
        let mut c = Client::new();
        c.handle_bytes(b"2026-11-25 09:05:07\r\n").expect("short");
        assert_eq!(c.handle_eof(), Reply::Time(t()));
        let mut c = Client::new();
        c.handle_bytes(b"hello").expect("short");
        assert_eq!(c.handle_eof(), Reply::NotATime("hello".into()));
    }

    #[test]
    fn client_refuses_an_endless_reply() {
        let mut c = Client::new();
        c.handle_bytes(&[b'x'; MAX_REPLY])
            .expect("exactly the limit is fine");
        assert_eq!(c.handle_bytes(b"x"), Err(Error::TooLong));
    }
}
