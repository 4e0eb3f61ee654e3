//! Reading one JSON line (a request, or a reply header) off a stream that continues with
//! a body.
//!
//! The server reads the request line, and for a `put` the file's bytes follow on the same
//! connection, possibly in the same read. So [`JsonLineReader::handle_bytes`] consumes
//! exactly up to and including the line's LF and says how many bytes that was; the caller
//! hands the rest to the body's decoder. The client reads a reply header the same way.
//!
//! The line is bounded ([`MAX_JSON_LINE`]), so a peer that never sends LF costs a few KiB,
//! and after parsing, the file names inside are checked with [`safe_file_name`] (see
//! [`JsonLine`]), so a [`Request`] that comes out of the reader is safe to act on.
//!
//! # States
//!
//! ```text
//! state    input                          next     result
//! Reading  bytes without LF, <= max + 1   Reading  -
//! Reading  blank line                     Reading  - (skipped: an nc user's Enter)
//! Reading  line                           Done     Ok(T), or Malformed / BadName
//! Reading  over max + 1 bytes             Done     TooLong
//! Reading  handle_eof                     Done     as a line if bytes are buffered,
//!                                                  else Closed
//! Done     anything                       Done     - (0 bytes consumed)
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use super::name::{NameError, safe_file_name};
use super::request::{FileHeader, Listing, Reply, Request, Stored};

/// Longest request or reply line, in bytes without its line ending. The longest valid
/// request is a `put` with a 255-byte name written as `\uXXXX` escapes (1530 bytes) plus
/// a 64-digit digest and the rest, under 1700 bytes; 4 KiB allows for unknown fields
/// while keeping what an idle, LF-less peer can make the server hold small.
pub const MAX_JSON_LINE: usize = 4096;

/// A message that travels as one JSON line and may carry file names to check before
/// anyone acts on it.
pub trait JsonLine: DeserializeOwned {
    /// Checks every file name the message carries with [`safe_file_name`].
    fn check_names(&self) -> Result<(), NameError>;
}

impl JsonLine for Request {
    fn check_names(&self) -> Result<(), NameError> {
        match self {
            Request::Get { filename, .. } | Request::Put { filename, .. } => {
                safe_file_name(filename).map(drop)
            }
            Request::List => Ok(()),
        }
    }
}

impl JsonLine for Reply<FileHeader> {
    fn check_names(&self) -> Result<(), NameError> {
        match self {
            Reply::Ok(header) => safe_file_name(&header.filename).map(drop),
            Reply::Error { .. } => Ok(()),
        }
    }
}

impl JsonLine for Reply<Stored> {
    fn check_names(&self) -> Result<(), NameError> {
        match self {
            Reply::Ok(stored) => safe_file_name(&stored.filename).map(drop),
            Reply::Error { .. } => Ok(()),
        }
    }
}

impl JsonLine for Reply<Listing> {
    fn check_names(&self) -> Result<(), NameError> {
        match self {
            Reply::Ok(listing) => listing
                .files
                .iter()
                .try_for_each(|entry| safe_file_name(&entry.name).map(drop)),
            Reply::Error { .. } => Ok(()),
        }
    }
}

/// Why no message came out of the line. All are the peer's doing; the `Display` text is
/// what a server puts in its `{"status":"error","message":...}` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The line passed [`MAX_JSON_LINE`] bytes.
    TooLong,
    /// Not JSON, or not the expected message; holds serde_json's explanation.
    Malformed(String),
    /// A file name in the message is not a safe base name.
    BadName(NameError),
    /// The peer closed without sending anything but blank lines.
    Closed,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong => write!(f, "line longer than {MAX_JSON_LINE} bytes"),
            LineError::Malformed(why) => write!(f, "malformed request: {why}"),
            LineError::BadName(e) => write!(f, "bad file name: {e}"),
            LineError::Closed => write!(f, "the connection closed before a request"),
        }
    }
}

impl std::error::Error for LineError {}

/// Reads one JSON line of type `T`: feed [`JsonLineReader::handle_bytes`] and call
/// [`JsonLineReader::poll_event`] after each until it returns the message or an error (once;
/// `Ok(None)` before and after); [`JsonLineReader::handle_eof`] at EOF, then `poll_event`.
/// Bytes `handle_bytes` did not consume are the body.
///
/// `handle_bytes` returns a count, unlike the crate's other inputs (see the crate doc):
/// the line is followed on the same stream by a body that is another decoder's, and
/// saying where the line ended lets the caller hand the rest of the read straight on,
/// rather than this reader buffering a body it has no business holding.
#[derive(Debug)]
pub struct JsonLineReader<T> {
    buf: Vec<u8>,
    done: bool,
    result: Option<Result<T, LineError>>,
    _message: PhantomData<fn() -> T>,
}

/// The server's reader for the request line.
pub type RequestReader = JsonLineReader<Request>;

impl<T: JsonLine> Default for JsonLineReader<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: JsonLine> JsonLineReader<T> {
    /// A reader waiting for its line.
    pub fn new() -> Self {
        JsonLineReader {
            buf: Vec::new(),
            done: false,
            result: None,
            _message: PhantomData,
        }
    }

    /// Bytes arrived. Returns how many were consumed: all of them while the line is
    /// incomplete, then up to and including its LF, then 0.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> usize {
        let mut consumed = 0;
        while !self.done && consumed < bytes.len() {
            let rest = &bytes[consumed..];
            let (segment, ends_line) = match rest.iter().position(|&b| b == b'\n') {
                Some(lf) => (&rest[..lf], true),
                None => (rest, false),
            };
            consumed += segment.len() + usize::from(ends_line);
            if self.buf.len() + segment.len() > MAX_JSON_LINE + 1 {
                self.finish(Err(LineError::TooLong));
            } else {
                self.buf.extend_from_slice(segment);
                if ends_line {
                    self.end_line();
                }
            }
        }
        consumed
    }

    /// The peer closed. A final line without LF is read as a line (`printf ... | nc`).
    pub fn handle_eof(&mut self) {
        if !self.done {
            self.end_line();
        }
        if !self.done {
            self.finish(Err(LineError::Closed));
        }
    }

    /// The message, or why there is none; `Ok(None)` while the line is incomplete (and
    /// after the result has been taken).
    pub fn poll_event(&mut self) -> Result<Option<T>, LineError> {
        self.result.take().transpose()
    }

    fn end_line(&mut self) {
        let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            self.buf.clear();
            return;
        }
        if line.len() > MAX_JSON_LINE {
            return self.finish(Err(LineError::TooLong));
        }
        let result = serde_json::from_slice::<T>(line)
            .map_err(|e| LineError::Malformed(e.to_string()))
            .and_then(|message| match message.check_names() {
                Ok(()) => Ok(message),
                Err(e) => Err(LineError::BadName(e)),
            });
        self.finish(result);
    }

    fn finish(&mut self, result: Result<T, LineError>) {
        self.done = true;
        self.result = Some(result);
        self.buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::Encoding;
    use crate::testing::same_every_split;

    /// Feeds pieces; returns the result and the bytes left over for the body.
    fn read<T: JsonLine>(pieces: &[&[u8]], eof: bool) -> (Option<Result<T, LineError>>, Vec<u8>) {
        let mut reader = JsonLineReader::<T>::new();
        let mut result = None;
        let mut body = Vec::new();
        for piece in pieces {
            let consumed = reader.handle_bytes(piece);
            body.extend_from_slice(&piece[consumed..]);
            if let Some(r) = reader.poll_event().transpose() {
                result = Some(r);
            }
        }
        if eof {
            reader.handle_eof();
            result = result.or_else(|| reader.poll_event().transpose());
        }
        (result, body)
    }

    #[test]
    fn the_request_line_ends_where_the_body_begins() {
        let input = b"\r\n{\"op\":\"put\",\"filename\":\"a.txt\",\"size\":3,\"sha256\":\
            \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\",\
            \"encoding\":\"raw\"}\r\nabc";
        let (result, body) = same_every_split(input, |pieces| read::<Request>(pieces, false));
        let Some(Ok(Request::Put {
            filename,
            size: 3,
            encoding: Encoding::Raw,
            sha256,
        })) = result
        else {
            panic!("expected a put, got {result:?}");
        };
        assert_eq!(filename, "a.txt");
        assert_eq!(sha256, crate::file::Sha256Digest::of(b"abc"));
        assert_eq!(body, b"abc");
    }

    #[test]
    fn unsafe_names_and_bad_json_are_refused() {
        for (line, expected) in [
            (
                &br#"{"op":"get","filename":"../etc/passwd"}"#[..],
                LineError::BadName(NameError::Separator),
            ),
            (br#"{"op":"get","filename":".env"}"#, LineError::BadName(NameError::Hidden)),
            (
                br#"{"op":"get","filename":"a"#,
                LineError::Malformed("EOF while parsing a string at line 1 column 25".into()),
            ),
            (
                br#"{"op":"rm"}"#,
                LineError::Malformed(
                    "unknown variant `rm`, expected one of `get`, `put`, `list` at line 1 column 10"
                        .into(),
                ),
            ),
        ] {
            let input = [line, b"\n"].concat();
            let (result, body) = same_every_split(&input, |pieces| read::<Request>(pieces, false));
            assert_eq!(result, Some(Err(expected)));
            assert!(body.is_empty());
        }
        assert_eq!(
            LineError::BadName(NameError::Separator).to_string(),
            "bad file name: a file name cannot contain '/' or '\\'"
        );
    }

    #[test]
    fn an_endless_line_is_cut_off() {
        let mut reader = RequestReader::new();
        let chunk = [b' '; 1000];
        let mut consumed = 0;
        for _ in 0..5 {
            consumed += reader.handle_bytes(&chunk);
        }
        assert_eq!(consumed, 5000);
        assert_eq!(reader.poll_event(), Err(LineError::TooLong));
        assert_eq!(reader.handle_bytes(b"more\n"), 0);
        assert_eq!(reader.poll_event(), Ok(None));
        // Exactly the limit (with CRLF) is fine.
        let request = br#"{"op":"list"}"#;
        let padded = [&request[..], &[b' '; MAX_JSON_LINE - 13], b"\r\n"].concat();
        let mut reader = RequestReader::new();
        assert_eq!(reader.handle_bytes(&padded), padded.len());
        assert_eq!(reader.poll_event(), Ok(Some(Request::List)));
    }

    #[test]
    fn eof_reads_an_unterminated_line_or_reports_nothing_sent() {
        let (result, _) = same_every_split(br#"{"op":"list"}"#, |p| read::<Request>(p, true));
        assert_eq!(result, Some(Ok(Request::List)));
        let (result, _) = same_every_split(b"\n \r\n", |p| read::<Request>(p, true));
        assert_eq!(result, Some(Err(LineError::Closed)));
    }

    #[test]
    fn a_client_reads_reply_headers_the_same_way() {
        let input = b"{\"status\":\"ok\",\"filename\":\"hello.txt\",\"size\":6,\"sha256\":\
            \"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\",\
            \"encoding\":\"raw\"}\nhello\n";
        let (result, body) = same_every_split(input, |p| read::<Reply<FileHeader>>(p, false));
        let Some(Ok(Reply::Ok(header))) = result else {
            panic!("expected a header, got {result:?}");
        };
        assert_eq!((header.filename.as_str(), header.size), ("hello.txt", 6));
        assert_eq!(body, b"hello\n");

        let evil = br#"{"status":"ok","filename":"/etc/cron.d/x","size":1,"sha256":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","encoding":"raw"}"#;
        let (result, _) = read::<Reply<FileHeader>>(&[evil], true);
        assert_eq!(result, Some(Err(LineError::BadName(NameError::Separator))));

        let (result, _) = read::<Reply<Listing>>(
            &[br#"{"status":"ok","files":[{"name":"a","size":1},{"name":"..","size":0}]}"#],
            true,
        );
        assert_eq!(
            result,
            Some(Err(LineError::BadName(NameError::DotOrDotDot)))
        );

        let (result, _) = read::<Reply<Stored>>(&[br#"{"status":"error","message":"full"}"#], true);
        assert_eq!(
            result,
            Some(Ok(Reply::Error {
                message: "full".into()
            }))
        );
    }
}
