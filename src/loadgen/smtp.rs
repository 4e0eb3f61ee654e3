//! SMTP load: each connection is greeted and says EHLO once, then every request is one mail
//! transaction, and the figure is messages per second.
//!
//! Read first: RFC 5321 §3.1 (the greeting), §3.2 (EHLO), §3.3 (a mail transaction),
//! §4.1.1.5 (RSET), §4.5.2 (dot-stuffing), §3.8 (421: the server is going away); RFC 2920
//! §3.1 (PIPELINING: MAIL, RCPT and DATA in one write, DATA last).
//!
//! ```text
//! S: 220 mail.example ESMTP                   once per connection
//! C: EHLO loadgen
//! S: 250-mail.example / 250 PIPELINING
//! C: MAIL FROM:<a@b>  RCPT TO:<c@d>  DATA      one write (with PIPELINING)
//! S: 250  250  354                            three replies, read in order
//! C: the message, dot-stuffed, then CRLF.CRLF
//! S: 250                                      one message: the request is complete
//! ```
//!
//! # States
//!
//! ```text
//! state      reply (or call)            next       owed to poll_transmit / counted
//! Greeting   220                        Ehlo       EHLO
//! Greeting   anything else              -          error: Greeting
//! Ehlo       2xx                        Ready      - (PIPELINING noted)
//! Ehlo       anything else              -          error: Ehlo
//! Ready      a request queued           Rset/Mail  [RSET] MAIL RCPT DATA, in one write with
//!                                                  PIPELINING, else the first of them
//! Rset       its reply                  Mail       (no PIPELINING: MAIL)
//! Mail       its reply                  Rcpt       (no PIPELINING: RCPT)
//! Rcpt       its reply                  Data       (no PIPELINING: DATA)
//! Data       354                        EndOfData  the message; a lone dot if MAIL or RCPT
//!                                                  was refused (RFC 2920 §3.1)
//! Data       anything else              Ready      one message, unsuccessful; RSET first
//!                                                  next time (MAIL may still be open)
//! EndOfData  its reply                  Ready      one message, successful if every reply
//!                                                  was 2xx/354
//! any        421                        Closed     the message in flight, unsuccessful;
//!                                                  the server closes (`closing`)
//! Ready, Closed  any other reply        -          error: Unexpected
//! any        a reply while bytes are    -          error: Unexpected (the reply to a
//!            still owed                            command not sent yet)
//! ```
//!
//! Transactions on one connection are sequential: a request asked for while one is in
//! flight (a plan `depth` over 1) waits in the driver and starts when the one before it
//! ends, as RFC 2920 §3.1 requires (DATA ends a group; the next MAIL may only follow the
//! reply to the dot). Its latency, which the generator starts when it asked, includes that
//! wait; the first message's includes the greeting and EHLO.
//!
//! Simplifications: no HELO fallback when EHLO is refused (every server worth measuring
//! speaks ESMTP), one recipient, no QUIT (the generator closes a connection when its run is
//! over; servers treat that as a client that went away).

use super::driver::{Answers, BadResponse, Driver, Shape};
use netloop_protocols::smtp::{Capabilities, Reply, ReplyError, ReplyReader, dot_stuff};
use std::fmt;

/// The payload of [`SmtpSend::new`]'s message: 1 KiB, the size the bench sends
/// (`smtp-source -l 1024`), about the median of real mail without attachments.
pub const DEFAULT_PAYLOAD: usize = 1024;

/// Payload lines are this long with their CRLF, as `smtp-source`'s are: well under the
/// 1,000-byte line limit of RFC 5321 §4.5.3.1.6, and a typical line of text mail.
const PAYLOAD_LINE: usize = 80;

/// What the server did that a client cannot go on from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtpError {
    /// Bytes that are not a reply (malformed, too long, mixed codes).
    Reply(ReplyError),
    /// The greeting was not 220 (554: no service here, RFC 5321 §3.1).
    Greeting(Reply),
    /// EHLO was refused.
    Ehlo(Reply),
    /// A reply when none was awaited.
    Unexpected(Reply),
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::Reply(e) => write!(f, "{e}"),
            SmtpError::Greeting(r) => write!(f, "greeted with {r}"),
            SmtpError::Ehlo(r) => write!(f, "EHLO refused: {r}"),
            SmtpError::Unexpected(r) => write!(f, "a reply nobody asked for: {r}"),
        }
    }
}

/// Where the session is; the names are the command whose reply is awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Ready,
    Rset,
    Mail,
    Rcpt,
    Data,
    EndOfData,
    /// 421 read: the server closes; nothing more is sent.
    Closed,
}

/// Bytes the driver must send that no request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owed {
    Nothing,
    Ehlo,
    /// The command awaited in this state (without PIPELINING, one at a time).
    Command(State),
    Message,
    LoneDot,
}

/// One message transaction per request over a persistent SMTP session, MAIL/RCPT/DATA
/// pipelined when the server offers PIPELINING.
///
/// Every byte sent is made once, in [`SmtpSend::new`], and copied per message; replies are
/// read with the protocols crate's [`ReplyReader`].
///
/// After each [`handle_bytes`](Driver::handle_bytes), drain
/// [`poll_transmit`](Driver::poll_transmit) into the connection's output before asking for
/// more requests: it holds EHLO, the message after 354, and the next transaction's
/// commands when one was waiting.
#[derive(Debug)]
pub struct SmtpSend {
    ehlo: Vec<u8>,
    mail: Vec<u8>,
    rcpt: Vec<u8>,
    /// The message, dot-stuffed, with its closing `.\r\n`.
    message: Vec<u8>,
    replies: ReplyReader,
    state: State,
    owed: Owed,
    pipelining: bool,
    /// Requests asked for and not yet begun.
    queued: usize,
    /// A reply of this transaction was not the expected one.
    failed: bool,
    /// The last transaction ended before its dot: RSET before the next MAIL.
    rset: bool,
}

impl SmtpSend {
    /// A driver that says `EHLO {helo}` and sends each message from `from` to `to` (without
    /// angle brackets), with a payload of [`DEFAULT_PAYLOAD`] bytes under a few headers.
    /// The three names go on the wire as given: printable ASCII, no CR or LF.
    pub fn new(helo: &str, from: &str, to: &str) -> SmtpSend {
        let mut message =
            format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: netloop loadgen\r\n\r\n")
                .into_bytes();
        message.extend_from_slice(&payload(DEFAULT_PAYLOAD));
        SmtpSend::with_message(helo, from, to, &message)
    }

    /// The same with `message` (headers and body, any line endings) as every message: it
    /// is dot-stuffed and given its final CRLF.CRLF here.
    pub fn with_message(helo: &str, from: &str, to: &str, message: &[u8]) -> SmtpSend {
        let mut stuffed = Vec::new();
        dot_stuff(message, &mut stuffed);
        SmtpSend {
            ehlo: format!("EHLO {helo}\r\n").into_bytes(),
            mail: format!("MAIL FROM:<{from}>\r\n").into_bytes(),
            rcpt: format!("RCPT TO:<{to}>\r\n").into_bytes(),
            message: stuffed,
            replies: ReplyReader::new(),
            state: State::Greeting,
            owed: Owed::Nothing,
            pipelining: false,
            queued: 0,
            failed: false,
            rset: false,
        }
    }

    /// The bytes of one message on the wire, dot-stuffed, CRLF.CRLF included.
    pub fn message_len(&self) -> usize {
        self.message.len()
    }

    /// The command whose reply state `s` awaits.
    fn command(&self, s: State) -> &[u8] {
        match s {
            State::Rset => b"RSET\r\n",
            State::Mail => &self.mail,
            State::Rcpt => &self.rcpt,
            State::Data => b"DATA\r\n",
            _ => b"",
        }
    }

    /// Starts the next transaction: `[RSET] MAIL RCPT DATA`, all at once with PIPELINING.
    fn begin(&mut self, out: &mut Vec<u8>) {
        self.queued -= 1;
        self.failed = false;
        self.state = if std::mem::take(&mut self.rset) {
            State::Rset
        } else {
            State::Mail
        };
        if self.pipelining {
            if self.state == State::Rset {
                out.extend_from_slice(b"RSET\r\n");
            }
            for s in [State::Mail, State::Rcpt, State::Data] {
                out.extend_from_slice(self.command(s));
            }
        } else {
            out.extend_from_slice(self.command(self.state));
        }
    }

    /// The transaction in flight ended: one request complete.
    fn finish(&mut self, answers: &mut Answers, ok: bool) {
        answers.complete += 1;
        answers.unsuccessful += usize::from(!ok || self.failed);
        self.failed = false;
        self.state = State::Ready;
    }

    /// One step of the transaction: the reply to `s`'s command was read; `next` follows.
    fn step(&mut self, reply: &Reply, next: State) {
        self.failed |= !reply.is_positive();
        self.state = next;
        if !self.pipelining {
            self.owed = Owed::Command(next);
        }
    }

    fn handle_reply(&mut self, reply: Reply, answers: &mut Answers) -> Result<(), SmtpError> {
        // RFC 5321 §3.8: 421 may answer any command; the server closes after it.
        if reply.code == 421 && self.state != State::Closed {
            if !matches!(self.state, State::Greeting | State::Ehlo | State::Ready) {
                self.finish(answers, false);
            }
            self.state = State::Closed;
            self.owed = Owed::Nothing;
            answers.closing = true;
            return Ok(());
        }
        if self.owed != Owed::Nothing {
            // The reply to a command not sent yet.
            return Err(SmtpError::Unexpected(reply));
        }
        match self.state {
            State::Greeting if reply.code == 220 => {
                self.state = State::Ehlo;
                self.owed = Owed::Ehlo;
            }
            State::Greeting => return Err(SmtpError::Greeting(reply)),
            State::Ehlo if reply.is_positive() => {
                self.pipelining = Capabilities::from_ehlo(&reply).pipelining;
                self.state = State::Ready;
            }
            State::Ehlo => return Err(SmtpError::Ehlo(reply)),
            State::Ready | State::Closed => return Err(SmtpError::Unexpected(reply)),
            State::Rset => self.step(&reply, State::Mail),
            State::Mail => self.step(&reply, State::Rcpt),
            State::Rcpt => self.step(&reply, State::Data),
            State::Data if reply.code == 354 => {
                self.state = State::EndOfData;
                self.owed = if self.failed {
                    Owed::LoneDot
                } else {
                    Owed::Message
                };
            }
            State::Data => {
                self.finish(answers, false);
                self.rset = true;
            }
            State::EndOfData => self.finish(answers, reply.is_positive()),
        }
        Ok(())
    }
}

/// `len` bytes of payload in lines of [`PAYLOAD_LINE`] bytes (the last may be shorter),
/// each ending in CRLF, each starting with a digit as `smtp-source`'s do.
fn payload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0;
    while out.len() < len {
        let room = (len - out.len()).min(PAYLOAD_LINE);
        if room < 3 {
            // Too short for a character and a CRLF: pad the previous line instead.
            out.resize(len, b'X');
            break;
        }
        out.push(b'0' + (line % 10) as u8);
        out.resize(out.len() + room - 3, b'X');
        out.extend_from_slice(b"\r\n");
        line += 1;
    }
    out
}

impl Driver for SmtpSend {
    fn shape(&self) -> Shape {
        Shape::KeepAlive
    }

    /// Queues one transaction; it goes out at once if the session is idle.
    fn write_request(&mut self, out: &mut Vec<u8>) {
        self.queued += 1;
        self.poll_transmit(out);
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.owed, Owed::Nothing) {
            Owed::Nothing => {}
            Owed::Ehlo => out.extend_from_slice(&self.ehlo),
            Owed::Command(s) => out.extend_from_slice(self.command(s)),
            Owed::Message => out.extend_from_slice(&self.message),
            Owed::LoneDot => out.extend_from_slice(b".\r\n"),
        }
        if self.state == State::Ready && self.queued > 0 {
            self.begin(out);
        }
    }

    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse> {
        let bad = BadResponse::Smtp;
        self.replies.handle_bytes(bytes);
        let mut answers = Answers::default();
        while let Some(reply) = self
            .replies
            .poll_event()
            .map_err(|e| bad(SmtpError::Reply(e)))?
        {
            self.handle_reply(reply, &mut answers).map_err(bad)?;
        }
        Ok(answers)
    }

    /// A reply cut off by the close is an error; a transaction whose replies never began
    /// is counted by the generator itself (as a reset).
    fn handle_eof(&mut self) -> Result<Answers, BadResponse> {
        if self.replies.buffered() > 0 {
            return Err(BadResponse::CutShort);
        }
        Ok(Answers::default())
    }

    fn unit(&self) -> &'static str {
        "messages"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &[u8] = b"220 mx.example ESMTP\r\n";
    const EHLO_PIPELINING: &[u8] = b"250-mx.example\r\n250-SIZE 10240000\r\n250 PIPELINING\r\n";
    const ENVELOPE: &[u8] = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    const MESSAGE: &[u8] = b"Subject: x\r\n\r\n..dot\r\nhi\r\n.\r\n";

    fn driver() -> SmtpSend {
        SmtpSend::with_message("lg", "a@b", "c@d", b"Subject: x\n\n.dot\nhi")
    }

    /// What a driver sent and counted.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Seen {
        sent: Vec<u8>,
        complete: usize,
        unsuccessful: usize,
        closing: bool,
        error: Option<BadResponse>,
    }

    /// A fresh driver, asked for `requests` messages before the first byte, is fed the
    /// server's `turns` (what it sends before it waits for the client again), each turn in
    /// pieces of `size` bytes (0: whole), draining `poll_transmit` after every piece.
    fn feed(turns: &[&[u8]], size: usize, requests: usize) -> Seen {
        let mut d = driver();
        let mut seen = Seen::default();
        for _ in 0..requests {
            d.write_request(&mut seen.sent);
        }
        for turn in turns {
            let size = if size == 0 { turn.len().max(1) } else { size };
            for piece in turn.chunks(size) {
                match d.handle_bytes(piece) {
                    Ok(a) => {
                        seen.complete += a.complete;
                        seen.unsuccessful += a.unsuccessful;
                        seen.closing |= a.closing;
                    }
                    Err(e) => {
                        seen.error = Some(e);
                        return seen;
                    }
                }
                d.poll_transmit(&mut seen.sent);
            }
        }
        seen
    }

    /// The same result with every turn fed whole, byte by byte, and in pieces of every
    /// size in between.
    #[track_caller]
    fn every_split(turns: &[&[u8]], requests: usize) -> Seen {
        let whole = feed(turns, 0, requests);
        let longest = turns.iter().map(|t| t.len()).max().unwrap_or(0);
        for size in 1..longest {
            let got = feed(turns, size, requests);
            assert_eq!(got, whole, "in pieces of {size} bytes");
        }
        whole
    }

    #[track_caller]
    fn same_bytes(got: &[u8], expected: &[&[u8]]) {
        let expected = expected.concat();
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn two_pipelined_messages_however_the_replies_arrive() {
        let turns: &[&[u8]] = &[
            GREETING,
            EHLO_PIPELINING,
            b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n",
            b"250 2.0.0 queued\r\n",
            b"250 Ok\r\n250 Ok\r\n354 go\r\n",
            b"250 queued\r\n",
        ];
        let seen = every_split(turns, 2);
        same_bytes(
            &seen.sent,
            &[b"EHLO lg\r\n", ENVELOPE, MESSAGE, ENVELOPE, MESSAGE],
        );
        let counted = (seen.complete, seen.unsuccessful, seen.closing);
        assert_eq!(counted, (2, 0, false));
        assert_eq!(seen.error, None);
    }

    #[test]
    fn without_pipelining_one_command_at_a_time() {
        let mut d = driver();
        let mut out = Vec::new();
        d.write_request(&mut out);
        assert_eq!(out, b"", "nothing before the greeting");
        let mut step = |reply: &[u8], expect: &[u8]| {
            let a = d.handle_bytes(reply).unwrap();
            let mut out = Vec::new();
            d.poll_transmit(&mut out);
            same_bytes(&out, &[expect]);
            a.complete
        };
        assert_eq!(step(GREETING, b"EHLO lg\r\n"), 0);
        assert_eq!(step(b"250 mx.example\r\n", b"MAIL FROM:<a@b>\r\n"), 0);
        assert_eq!(step(b"250 ok\r\n", b"RCPT TO:<c@d>\r\n"), 0);
        assert_eq!(step(b"250 ok\r\n", b"DATA\r\n"), 0);
        assert_eq!(step(b"354 go\r\n", MESSAGE), 0);
        assert_eq!(step(b"250 queued\r\n", b""), 1);
        let turns: &[&[u8]] = &[
            GREETING,
            b"250-mx.example\r\n250 8BITMIME\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
            b"250 queued\r\n",
        ];
        let seen = every_split(turns, 1);
        assert_eq!((seen.complete, seen.unsuccessful), (1, 0));
    }

    #[test]
    fn refusals_are_unsuccessful_messages_and_the_session_goes_on() {
        let turns: &[&[u8]] = &[
            GREETING,
            EHLO_PIPELINING,
            // A recipient refused, then DATA refused: no message; RSET before the next.
            b"250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n",
            b"250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n",
            // The message refused after the dot.
            b"552 5.3.4 too big\r\n",
            // A recipient refused but DATA still 354: a lone dot instead of the message.
            b"250 ok\r\n550 no\r\n354 go\r\n",
            b"554 no valid recipients\r\n",
        ];
        let seen = every_split(turns, 3);
        same_bytes(
            &seen.sent,
            &[
                b"EHLO lg\r\n",
                ENVELOPE,
                b"RSET\r\n",
                ENVELOPE,
                MESSAGE,
                ENVELOPE,
                b".\r\n",
            ],
        );
        assert_eq!((seen.complete, seen.unsuccessful), (3, 3));
        assert_eq!(seen.error, None);
    }

    #[test]
    fn a_421_ends_the_message_in_flight_and_the_session() {
        let turns: &[&[u8]] = &[
            GREETING,
            EHLO_PIPELINING,
            b"250 ok\r\n421 4.3.2 shutting down\r\n",
        ];
        let seen = every_split(turns, 2);
        let counted = (seen.complete, seen.unsuccessful, seen.closing);
        assert_eq!(counted, (1, 1, true));
        same_bytes(&seen.sent, &[b"EHLO lg\r\n", ENVELOPE]);
        // Greeted with 421: nothing in flight, the server closes.
        let seen = every_split(&[b"421 busy\r\n"], 1);
        assert_eq!((seen.complete, seen.closing, seen.sent.len()), (0, true, 0));
    }

    #[test]
    fn a_broken_server_is_an_error() {
        let smtp = |turns: &[&[u8]]| match every_split(turns, 1).error {
            Some(BadResponse::Smtp(e)) => e,
            other => panic!("expected an SMTP error, got {other:?}"),
        };
        let e = smtp(&[b"554 go away\r\n"]);
        assert!(matches!(e, SmtpError::Greeting(r) if r.code == 554));
        assert!(matches!(
            smtp(&[b"HTTP/1.1 200 OK\r\n"]),
            SmtpError::Reply(_)
        ));
        assert!(matches!(
            smtp(&[GREETING, b"502 no\r\n"]),
            SmtpError::Ehlo(_)
        ));
        // A reply before its command was sent: EHLO's, in the same read as the greeting.
        let early = [GREETING, EHLO_PIPELINING].concat();
        let e = feed(&[&early], 0, 1).error;
        assert!(matches!(
            e,
            Some(BadResponse::Smtp(SmtpError::Unexpected(_)))
        ));
        let extra: &[&[u8]] = &[
            GREETING,
            EHLO_PIPELINING,
            b"250 ok\r\n250 ok\r\n354 go\r\n",
            b"250 ok\r\n",
            b"250 what\r\n",
        ];
        let e = smtp(extra);
        assert!(matches!(e, SmtpError::Unexpected(r) if r.text() == "what"));
        // Closed mid-reply: cut short; closed between replies: the generator's count.
        let mut d = driver();
        d.handle_bytes(b"220 mx").unwrap();
        assert_eq!(d.handle_eof(), Err(BadResponse::CutShort));
        assert_eq!(driver().handle_eof(), Ok(Answers::default()));
    }

    #[test]
    fn the_default_message_is_a_kib_of_payload_under_headers() {
        let d = SmtpSend::new("lg", "a@b", "c@d");
        assert!(d.message_len() > DEFAULT_PAYLOAD);
        assert!(d.message.ends_with(b"XX\r\n.\r\n"));
        for len in [0, 1, 2, 3, 79, 80, 81, 82, 1024] {
            let p = payload(len);
            assert_eq!(p.len(), len);
            assert!(p.split(|&b| b == b'\n').all(|l| l.len() < PAYLOAD_LINE));
        }
        assert!(payload(1024).ends_with(b"\r\n"));
    }
}
