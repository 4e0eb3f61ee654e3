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
///
/// A function, not a machine: the server has no state and no input, only the time the glue
/// read. So it is a `write_*`, like [`crate::smtp::write_reply`], not a `poll_transmit`,
/// which would take nothing but the buffer.
pub fn write_reply(now: NaiveDateTime, out: &mut Vec<u8>) {
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

/// The client side: feed [`Client::handle_bytes`] as bytes arrive and [`Client::handle_eof`]
/// when the server closes; after each, [`Client::poll_event`] says `Err` if the reply broke
/// the protocol, and after EOF yields the [`Reply`] (once; `Ok(None)` before and after).
#[derive(Debug, Default)]
pub struct Client {
    buf: Vec<u8>,
    /// Set by the input that decided the outcome; the error stays, the reply is taken.
    outcome: Option<Result<Reply, Error>>,
    /// An outcome was reached: nothing more is read.
    done: bool,
}

impl Client {
    /// A client that has received nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes arrived from the server. More than [`MAX_REPLY`] in all is [`Error::TooLong`]
    /// (from the next [`Client::poll_event`]), and the bytes are not kept.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        if self.buf.len() + bytes.len() > MAX_REPLY {
            self.done = true;
            self.outcome = Some(Err(Error::TooLong));
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The server closed: the reply is complete.
    pub fn handle_eof(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        let reply = match NaiveDateTime::parse_from_str(text, FORMAT) {
            Ok(t) => Reply::Time(t),
            Err(_) => Reply::NotATime(text.to_string()),
        };
        self.outcome = Some(Ok(reply));
        self.buf = Vec::new();
    }

    /// The reply once the server has closed, `Ok(None)` until then (and after it was
    /// taken); `Err` on this call and every later one once the reply broke the protocol.
    pub fn poll_event(&mut self) -> Result<Option<Reply>, Error> {
        match &self.outcome {
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(_)) => Ok(self.outcome.take().and_then(Result::ok)),
            None => Ok(None),
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
        write_reply(t(), &mut out);
        assert_eq!(out, b"2026-11-25 09:05:07");
    }

    #[test]
    fn client_reads_the_time_however_it_is_split() {
        let reply = same_every_split(b"2026-11-25 09:05:07", |pieces| {
            let mut c = Client::new();
            for p in pieces {
                c.handle_bytes(p);
                assert_eq!(c.poll_event(), Ok(None), "nothing before EOF");
            }
            c.handle_eof();
            c.poll_event()
        });
        assert_eq!(reply, Ok(Some(Reply::Time(t()))));
    }

    #[test]
    fn client_accepts_a_trailing_newline_and_reports_garbage() {
        let mut c = Client::new();
        c.handle_bytes(b"2026-11-25 09:05:07\r\n");
        c.handle_eof();
        assert_eq!(c.poll_event(), Ok(Some(Reply::Time(t()))));
        assert_eq!(c.poll_event(), Ok(None), "the reply comes out once");
        let mut c = Client::new();
        c.handle_bytes(b"hello");
        c.handle_eof();
        assert_eq!(c.poll_event(), Ok(Some(Reply::NotATime("hello".into()))));
    }

    #[test]
    fn client_refuses_an_endless_reply() {
        let mut c = Client::new();
        c.handle_bytes(&[b'x'; MAX_REPLY]);
        assert_eq!(c.poll_event(), Ok(None), "exactly the limit is fine");
        c.handle_bytes(b"x");
        assert_eq!(c.poll_event(), Err(Error::TooLong));
        c.handle_eof();
        assert_eq!(c.poll_event(), Err(Error::TooLong), "the error stays");
    }
}
