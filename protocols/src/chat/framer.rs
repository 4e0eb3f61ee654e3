//! Framing: where one chat message ends and the next begins.
//!
//! Read first: RFC 9293 §2.2 ("TCP provides a reliable, in-order, byte-stream service").
//! A byte stream has no message boundaries: the peer's `send(b"hi\n")` and `send(b"yo\n")`
//! may arrive as one read of `hi\nyo\n`, as six reads of one byte, or as `h` and `i\nyo\n`.
//! The kernel merges and splits writes as buffers and segments dictate. A protocol that
//! needs messages must put the boundaries into the bytes itself. Two framings live here:
//!
//! - [`LineFramer`]: a message is a line ending in LF (a CR before the LF is dropped, for
//!   telnet and Windows `nc`). This is what `nc` speaks, and what netloop's chat uses.
//! - [`RawFramer`]: a message is whatever one read returned, cut at
//!   [`RAW_MESSAGE_MAX`] bytes. That is the lesson's framing (program 11 does
//!   `data = client.recv(1024)` and broadcasts `data`), kept so netloop can talk to the
//!   lesson's client; it is correct only while the network happens to keep writes apart.
//!
//! # `LineFramer` states
//!
//! ```text
//! state       input                              next        emits
//! Collecting  bytes, line still <= max + 1       Collecting  -
//! Collecting  LF                                 Collecting  Line (TooLong if over max)
//! Collecting  line passes max + 1, no LF yet     Discarding  TooLong
//! Collecting  line passes max + 1, LF follows    Collecting  TooLong
//! Discarding  bytes without LF                   Discarding  - (dropped, not buffered)
//! Discarding  LF                                 Collecting  -
//! Collecting  handle_eof                         Closed      Line, if bytes are buffered
//! Discarding  handle_eof                         Closed      -
//! Closed      bytes                              Closed      - (ignored)
//! ```
//!
//! The one byte over `max` that may be buffered is a CR that could turn out to precede LF.
//!
//! After each `handle_bytes` or `handle_eof`, drain [`LineFramer::poll_event`] until `None`.

use std::collections::VecDeque;

/// Longest line [`LineFramer`] accepts by default, in bytes, without its line ending.
///
/// A typed chat line is rarely over a few hundred bytes, and IRC caps a whole protocol line
/// at 512 (RFC 2812 §2.3); 4 KiB leaves room for a pasted paragraph. It is also the most a
/// connection's framer ever buffers: 10 000 connections each halfway through a line cost at
/// most 40 MB, and a peer that never sends LF costs no more than one that does.
pub const MAX_LINE: usize = 4096;

/// Largest message [`RawFramer`] delivers: the lesson's server reads with `recv(1024)`, so
/// its messages are never longer than this. A longer read is cut into several messages,
/// as the lesson's loop would have received it.
pub const RAW_MESSAGE_MAX: usize = 1024;

/// What a [`LineFramer`] found in the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its LF or CRLF. Invalid UTF-8 is replaced with U+FFFD: a
    /// chat server shows text, and one bad byte should not cost the peer its connection.
    Line(String),
    /// A line grew past the maximum. It is reported once, as soon as it is noticed; the rest
    /// of it, up to the next LF, is dropped without being buffered, and the line after it
    /// is framed normally.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Buffering the current line, which is at most `max_line + 1` bytes so far (the one
    /// extra byte is a CR that may turn out to precede the LF).
    Collecting,
    /// The current line was too long and has been reported; dropping bytes until LF.
    Discarding,
    /// `handle_eof` was called; further bytes are ignored.
    Closed,
}

/// Cuts a byte stream into LF-terminated lines, with bounded memory. Feed
/// [`LineFramer::handle_bytes`] (and [`LineFramer::handle_eof`] at EOF), then drain
/// [`LineFramer::poll_event`] until `None`. Its `Option` holds no error: an over-long line
/// is a [`Frame::TooLong`] event, after which framing goes on.
///
/// ```
/// use netloop_protocols::chat::{Frame, LineFramer};
///
/// let mut framer = LineFramer::new();
/// framer.handle_bytes(b"hello\r\nwor");
/// framer.handle_bytes(b"ld\n");
/// assert_eq!(framer.poll_event(), Some(Frame::Line("hello".into())));
/// assert_eq!(framer.poll_event(), Some(Frame::Line("world".into())));
/// assert_eq!(framer.poll_event(), None);
/// ```
#[derive(Debug)]
pub struct LineFramer {
    state: State,
    max_line: usize,
    buf: Vec<u8>,
    events: VecDeque<Frame>,
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineFramer {
    /// A framer accepting lines of up to [`MAX_LINE`] bytes.
    pub fn new() -> Self {
        Self::with_max_line(MAX_LINE)
    }

    /// A framer accepting lines of up to `max_line` bytes (without the line ending).
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            state: State::Collecting,
            max_line,
            buf: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// The longest line this framer accepts, in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Bytes of an unfinished line held right now.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory reserved for unfinished lines: never more than `max_line + 1`.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes arrived from the peer, in any chunking.
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (segment, ends_line, rest) = match bytes.iter().position(|&b| b == b'\n') {
                Some(lf) => (&bytes[..lf], true, &bytes[lf + 1..]),
                None => (bytes, false, &[][..]),
            };
            match self.state {
                State::Closed => return,
                State::Discarding => {
                    if ends_line {
                        self.state = State::Collecting;
                    }
                }
                State::Collecting if self.buf.len() + segment.len() > self.max_line + 1 => {
                    self.buf.clear();
                    self.events.push_back(Frame::TooLong);
                    if !ends_line {
                        self.state = State::Discarding;
                    }
                }
                State::Collecting => {
                    self.append(segment);
                    if ends_line {
                        self.finish_line();
                    }
                }
            }
            bytes = rest;
        }
    }

    /// The peer closed its side. A final line without LF is delivered as a line: someone
    /// who types `hi` and presses Ctrl-D in `nc`, or a script doing `printf hi | nc`, meant
    /// to say `hi`, and the lesson's own client never sends a newline at all. A line that
    /// was already reported [`Frame::TooLong`] produces nothing more.
    pub fn handle_eof(&mut self) {
        match self.state {
            State::Collecting if !self.buf.is_empty() => self.finish_line(),
            State::Collecting | State::Discarding | State::Closed => {}
        }
        self.state = State::Closed;
        self.buf = Vec::new();
    }

    /// The next line or error, in stream order; `None` when all input so far is consumed.
    pub fn poll_event(&mut self) -> Option<Frame> {
        self.events.pop_front()
    }

    /// Appends to the line buffer, growing it by doubling like `Vec` does but never past
    /// `max_line + 1`: the limit is the memory promise, so it also bounds the capacity.
    fn append(&mut self, segment: &[u8]) {
        let needed = self.buf.len() + segment.len();
        if needed > self.buf.capacity() {
            let target = (self.buf.capacity() * 2).min(self.max_line + 1).max(needed);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(segment);
    }

    fn finish_line(&mut self) {
        let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
        let frame = if line.len() > self.max_line {
            Frame::TooLong
        } else {
            Frame::Line(String::from_utf8_lossy(line).into_owned())
        };
        self.events.push_back(frame);
        self.buf.clear();
    }
}

/// The lesson's framing: every read is one message (cut at [`RAW_MESSAGE_MAX`] bytes).
///
/// Because TCP keeps no boundaries, two quick sends may arrive as one message and one
/// long send as several; the lesson's chat works only because a human types slowly. Use
/// this to interoperate with the lesson's client, and [`LineFramer`] for anything else.
/// After each `handle_bytes`, drain [`RawFramer::poll_event`] until `None`.
#[derive(Debug, Default)]
pub struct RawFramer {
    events: VecDeque<Vec<u8>>,
}

impl RawFramer {
    /// A framer with nothing received.
    pub fn new() -> Self {
        Self::default()
    }

    /// One read's worth of bytes arrived from the peer.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        self.events
            .extend(bytes.chunks(RAW_MESSAGE_MAX).map(<[u8]>::to_vec));
    }

    /// The next message, exactly as received (the lesson's server relays bytes, not text).
    pub fn poll_event(&mut self) -> Option<Vec<u8>> {
        self.events.pop_front()
    }
}

/// Whether a raw message is the lesson's way of leaving: the client sends `byebye` and the
/// server, on `data.decode('utf-8') == 'byebye'`, removes it. A trailing LF or CRLF is also
/// accepted, because someone speaking raw mode from `nc` cannot send a line without one.
pub fn is_byebye(message: &[u8]) -> bool {
    let message = message.strip_suffix(b"\n").unwrap_or(message);
    let message = message.strip_suffix(b"\r").unwrap_or(message);
    message == b"byebye"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    fn frames(max_line: usize, pieces: &[&[u8]], eof: bool) -> Vec<Frame> {
        let mut framer = LineFramer::with_max_line(max_line);
        let mut out = Vec::new();
        for piece in pieces {
            framer.handle_bytes(piece);
            out.extend(std::iter::from_fn(|| framer.poll_event()));
        }
        if eof {
            framer.handle_eof();
            out.extend(std::iter::from_fn(|| framer.poll_event()));
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.into())
    }

    #[test]
    fn lines_are_the_same_however_the_bytes_arrive() {
        let got = same_every_split(b"alice\nhello, bob\n\n/me waves\n", |pieces| {
            frames(MAX_LINE, pieces, false)
        });
        assert_eq!(
            got,
            [
                line("alice"),
                line("hello, bob"),
                line(""),
                line("/me waves")
            ]
        );
    }

    #[test]
    fn crlf_and_lf_end_lines_alike_and_only_one_cr_is_dropped() {
        let got = same_every_split(b"one\r\ntwo\nthree\r\r\n\r\n", |pieces| {
            frames(MAX_LINE, pieces, false)
        });
        assert_eq!(got, [line("one"), line("two"), line("three\r"), line("")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        // "caf\xC3\xA9" is valid "café"; \xFF never is. Splits inside the two-byte é must
        // still decode, because lines are decoded whole.
        let got = same_every_split(b"caf\xC3\xA9\nbad \xFF byte\n", |pieces| {
            frames(MAX_LINE, pieces, false)
        });
        assert_eq!(got, [line("café"), line("bad \u{FFFD} byte")]);
    }

    #[test]
    fn an_unterminated_last_line_is_delivered_at_eof() {
        let got = same_every_split(b"first\nlast\r", |pieces| frames(MAX_LINE, pieces, true));
        assert_eq!(got, [line("first"), line("last")]);
        let got = same_every_split(b"first\n", |pieces| frames(MAX_LINE, pieces, true));
        assert_eq!(got, [line("first")]);
    }

    #[test]
    fn bytes_after_eof_are_ignored() {
        let mut framer = LineFramer::new();
        framer.handle_eof();
        framer.handle_bytes(b"late\n");
        assert_eq!(framer.poll_event(), None);
    }

    #[test]
    fn the_limit_counts_the_line_without_its_ending() {
        // max 4: "abcd" fits with LF or CRLF, "abcde" does not, even split anywhere.
        let got = same_every_split(b"abcd\nabcd\r\nabcde\nabcde\r\nok\n", |pieces| {
            frames(4, pieces, false)
        });
        assert_eq!(
            got,
            [
                line("abcd"),
                line("abcd"),
                Frame::TooLong,
                Frame::TooLong,
                line("ok")
            ]
        );
    }

    #[test]
    fn a_too_long_line_is_reported_once_and_framing_resumes() {
        let input = [&b"hi\n"[..], &[b'x'; 40], b"\nafter\n", &[b'y'; 12]].concat();
        let got = same_every_split(&input, |pieces| frames(8, pieces, true));
        assert_eq!(
            got,
            [line("hi"), Frame::TooLong, line("after"), Frame::TooLong]
        );
    }

    #[test]
    fn a_megabyte_line_costs_no_more_than_the_limit() {
        // Not through the split helper: 1 MiB fed every way would be O(n^2). Fed in 4 KiB
        // reads, as a reactor would, the framer must not keep what it cannot deliver.
        let mut framer = LineFramer::new();
        let mut events = Vec::new();
        let chunk = [b'x'; 4096];
        for _ in 0..256 {
            framer.handle_bytes(&chunk);
            events.extend(std::iter::from_fn(|| framer.poll_event()));
            assert!(framer.buffer_capacity() <= MAX_LINE + 1);
        }
        framer.handle_bytes(b"\nnext line\n");
        events.extend(std::iter::from_fn(|| framer.poll_event()));
        assert_eq!(events, [Frame::TooLong, line("next line")]);
        assert!(framer.buffer_capacity() <= MAX_LINE + 1);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn raw_framing_keeps_every_byte_but_not_the_boundaries() {
        // The bytes survive any chunking...
        let got = same_every_split(b"alice: hi\xFFbob: yo", |pieces| {
            let mut framer = RawFramer::new();
            let mut all = Vec::new();
            for piece in pieces {
                framer.handle_bytes(piece);
                all.extend(std::iter::from_fn(|| framer.poll_event()).flatten());
            }
            all
        });
        assert_eq!(got, b"alice: hi\xFFbob: yo");
        // ...but the messages are whatever the reads were: two sends merged into one read
        // are one message. This is the lesson's framing, and why netloop prefers lines.
        let mut framer = RawFramer::new();
        framer.handle_bytes(b"alice: hibob: yo");
        assert_eq!(framer.poll_event(), Some(b"alice: hibob: yo".to_vec()));
        assert_eq!(framer.poll_event(), None);
    }

    #[test]
    fn raw_messages_are_cut_where_recv_1024_would_cut_them() {
        let mut framer = RawFramer::new();
        framer.handle_bytes(&[b'z'; 2 * RAW_MESSAGE_MAX + 1]);
        let sizes: Vec<usize> = std::iter::from_fn(|| framer.poll_event())
            .map(|m| m.len())
            .collect();
        assert_eq!(sizes, [RAW_MESSAGE_MAX, RAW_MESSAGE_MAX, 1]);
    }

    #[test]
    fn byebye_is_recognised_as_the_lesson_sends_it_and_from_nc() {
        assert!(is_byebye(b"byebye"));
        assert!(is_byebye(b"byebye\n"));
        assert!(is_byebye(b"byebye\r\n"));
        assert!(!is_byebye(b"alice: byebye"));
        assert!(!is_byebye(b"byebye!"));
        assert!(!is_byebye(b"Byebye"));
    }
}
