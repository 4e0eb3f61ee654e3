//! Replies: a three-digit code and one or more lines of text (RFC 5321 §4.2).
//!
//! ```text
//! 250-mail.example greets client.example      every line but the last: code, '-', text
//! 250-PIPELINING
//! 250 SIZE 10485760                           the last: code, ' ', text
//! ```
//!
//! The server writes them with [`write_reply`]; the client reads them back with
//! [`ReplyReader`], which joins the lines of a multi-line reply and copes with a reply cut
//! anywhere across reads. The first digit says what happened: 2 done, 3 go on (354 after
//! DATA, 334 during AUTH), 4 failed for now (try again later), 5 failed for good.

use std::fmt;

/// Longest reply line a [`ReplyReader`] accepts, line ending included. RFC 5321 §4.5.3.1.5
/// sets 512; servers in the wild send longer EHLO lines now and then, so this allows four
/// times as much before calling the reply broken.
pub const MAX_REPLY_LINE: usize = 2048;

/// Most lines in one reply (an EHLO list is about ten).
pub const MAX_REPLY_LINES: usize = 100;

/// One reply, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code, 200 to 599 (or 100 to 199, which SMTP does not use).
    pub code: u16,
    /// The text of each line, without the code, the separator and the line ending.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: the command worked.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (the message after DATA, the next AUTH step).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: failed for now; the same command may work later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// All lines joined by a space: for error messages.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// Writes a reply of one or more lines: `lines` must not be empty and must not hold CR or
/// LF (they are the server's own text, never a peer's).
pub fn write_reply(out: &mut Vec<u8>, code: u16, lines: &[&str]) {
    let code = code.to_string();
    for (i, line) in lines.iter().enumerate() {
        debug_assert!(
            !line.contains(['\r', '\n']),
            "a reply line holds a line ending"
        );
        out.extend_from_slice(code.as_bytes());
        out.push(if i + 1 == lines.len() { b' ' } else { b'-' });
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Why the server's bytes are not a reply. The client gives up on the session: a server
/// that sends these is not one it can talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line that does not start with three digits and a space, a dash or the line end.
    Malformed(String),
    /// The lines of one reply carry different codes.
    MixedCodes(u16, u16),
    /// A line longer than [`MAX_REPLY_LINE`], or more than [`MAX_REPLY_LINES`] lines.
    TooLong,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed(line) => write!(f, "not an SMTP reply: {line:?}"),
            ReplyError::MixedCodes(a, b) => write!(f, "one reply with two codes: {a} and {b}"),
            ReplyError::TooLong => write!(f, "a reply over {MAX_REPLY_LINE} bytes a line"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Reads replies from the server's byte stream. Feed it with [`handle_bytes`], then drain
/// [`poll_event`] until it returns `Ok(None)`.
///
/// [`handle_bytes`]: ReplyReader::handle_bytes
/// [`poll_event`]: ReplyReader::poll_event
///
/// ```
/// use netloop_protocols::smtp::ReplyReader;
///
/// let mut reader = ReplyReader::new();
/// reader.handle_bytes(b"250-mail.example\r\n250 PIPEL");
/// assert_eq!(reader.poll_event(), Ok(None)); // the last line is not here yet
/// reader.handle_bytes(b"INING\r\n");
/// let reply = reader.poll_event().unwrap().unwrap();
/// assert_eq!(reply.code, 250);
/// assert_eq!(reply.lines, ["mail.example", "PIPELINING"]);
/// ```
#[derive(Debug, Default)]
pub struct ReplyReader {
    /// Bytes not yet cut into lines.
    input: Vec<u8>,
    /// Where the unread part of `input` starts.
    start: usize,
    /// The lines of the reply being read, and its code.
    partial: Option<Reply>,
}

impl ReplyReader {
    /// A reader with nothing buffered.
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Buffers bytes the server sent.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet part of a whole reply.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.start
    }

    /// Drops whatever is buffered: after STARTTLS, nothing the server sent in plaintext
    /// may be read as if it came over TLS.
    pub fn clear(&mut self) {
        self.input.clear();
        self.start = 0;
        self.partial = None;
    }

    /// The next whole reply, `Ok(None)` if it has not fully arrived yet.
    pub fn poll_event(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let rest = &self.input[self.start..];
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > MAX_REPLY_LINE {
                    return Err(ReplyError::TooLong);
                }
                return Ok(None);
            };
            if lf + 1 > MAX_REPLY_LINE {
                return Err(ReplyError::TooLong);
            }
            let raw = &rest[..lf];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = String::from_utf8_lossy(raw).into_owned();
            self.start += lf + 1;
            let (code, last, text) = split_line(&line)?;
            let reply = self.partial.get_or_insert_with(|| Reply {
                code,
                lines: Vec::new(),
            });
            if reply.code != code {
                return Err(ReplyError::MixedCodes(reply.code, code));
            }
            if reply.lines.len() == MAX_REPLY_LINES {
                return Err(ReplyError::TooLong);
            }
            reply.lines.push(text.to_string());
            if last {
                return Ok(self.partial.take());
            }
        }
    }
}

/// `"250-text"` to `(250, false, "text")`; `"250 text"` and `"250"` are last lines.
fn split_line(line: &str) -> Result<(u16, bool, &str), ReplyError> {
    let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
    let digits = line.get(..3).ok_or_else(malformed)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(b'1'..=b'5').contains(&digits.as_bytes()[0])
    {
        return Err(malformed());
    }
    let code: u16 = digits.parse().map_err(|_| malformed())?;
    match line.as_bytes().get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    fn read_all(pieces: &[&[u8]]) -> Result<Vec<Reply>, ReplyError> {
        let mut reader = ReplyReader::new();
        let mut got = Vec::new();
        for piece in pieces {
            reader.handle_bytes(piece);
            while let Some(reply) = reader.poll_event()? {
                got.push(reply);
            }
        }
        Ok(got)
    }

    #[test]
    fn multi_line_and_bare_replies_at_every_split() {
        let wire = b"220 mail.example ESMTP\r\n250-mail.example\r\n250-SIZE 100\r\n250 8BITMIME\r\n354\n221 2.0.0 bye\r\n";
        let replies = same_every_split(wire, read_all).expect("replies");
        let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
        assert_eq!(codes, [220, 250, 354, 221]);
        assert_eq!(replies[1].lines, ["mail.example", "SIZE 100", "8BITMIME"]);
        assert_eq!(replies[2].lines, [""]);
        assert_eq!(replies[3].text(), "2.0.0 bye");
    }

    #[test]
    fn broken_replies_are_errors() {
        assert!(matches!(
            read_all(&[b"hello\r\n"]),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            read_all(&[b"25 ok\r\n"]),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            read_all(&[b"650 six hundred\r\n"]),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            read_all(&[b"250x\r\n"]),
            Err(ReplyError::Malformed(_))
        ));
        assert_eq!(
            read_all(&[b"250-a\r\n550 b\r\n"]),
            Err(ReplyError::MixedCodes(250, 550))
        );
        let long = format!("250 {}\r\n", "x".repeat(MAX_REPLY_LINE));
        assert_eq!(read_all(&[long.as_bytes()]), Err(ReplyError::TooLong));
        let endless = vec![b'x'; MAX_REPLY_LINE + 1];
        assert_eq!(read_all(&[&endless]), Err(ReplyError::TooLong));
        let many = "250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert_eq!(read_all(&[many.as_bytes()]), Err(ReplyError::TooLong));
    }

    #[test]
    fn write_reply_marks_every_line_but_the_last() {
        let mut out = Vec::new();
        write_reply(&mut out, 250, &["mail.example", "PIPELINING", "SIZE 10"]);
        assert_eq!(
            out,
            b"250-mail.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
        let back = read_all(&[&out]).expect("reads back");
        assert_eq!(back[0].lines, ["mail.example", "PIPELINING", "SIZE 10"]);
    }
}
