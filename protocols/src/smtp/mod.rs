//! SMTP (RFC 5321), sans-IO, both ends of the dialog (lesson programs 13/14: `smtplib`
//! sending a MIME message with attachments).
//!
//! # Reading order
//!
//! 1. [`reply`]: the server's replies, written ([`write_reply`]) and read back
//!    ([`ReplyReader`]), one line or many.
//! 2. [`command`]: a client's line to a [`Command`].
//! 3. [`server`]: one server session ([`ServerSession`]): greeting, EHLO, the envelope,
//!    DATA and the end of the message, STARTTLS, AUTH, the limits.
//! 4. [`client`]: one client session ([`ClientSession`]): EHLO, STARTTLS, AUTH, then each
//!    message's MAIL, RCPT and DATA, and QUIT.
//!
//! The tests read like the RFC: `server.transcript` holds the server's dialogs as `C:`/`S:`
//! lines, replayed whole and with every client turn cut every way (`transcript.rs`);
//! `client_tests.rs` does the same for the client's side, with every server turn cut, and
//! puts our client and our server face to face over an in-memory link.
//!
//! # The wire
//!
//! ```text
//! S: 220 mail.example ESMTP netloop
//! C: EHLO client.example
//! S: 250-mail.example
//! S: 250-PIPELINING
//! S: 250-SIZE 10485760
//! S: 250-8BITMIME
//! S: 250 ENHANCEDSTATUSCODES
//! C: MAIL FROM:<ann@example.org>
//! S: 250 2.1.0 Ok
//! C: RCPT TO:<bob@example.net>
//! S: 250 2.1.5 Ok
//! C: DATA
//! S: 354 End data with <CR><LF>.<CR><LF>
//! C: Subject: hello
//! C:
//! C: ..a line that began with a dot, doubled by the client (dot-stuffing)
//! C: .
//! S: 250 2.0.0 Ok: queued as 1733290000.M1P42
//! C: QUIT
//! S: 221 2.0.0 Bye
//! ```
//!
//! Every line ends in CRLF. The message ends at a line holding one dot, and only there:
//! CR and LF alone are not line ends inside a message, which is what keeps a second message
//! from being smuggled inside the first (see [`server`]).

pub mod client;
pub mod command;
pub mod reply;
pub mod server;

#[cfg(test)]
mod transcript;

pub use client::*;
pub use command::{Command, CommandError, MAX_PATH, parse_command};
pub use reply::{MAX_REPLY_LINE, MAX_REPLY_LINES, Reply, ReplyError, ReplyReader, write_reply};
pub use server::*;
