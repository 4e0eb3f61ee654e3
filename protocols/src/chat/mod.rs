//! The chat protocol (lesson programs 11/12), sans-IO: bytes in, commands out, and the
//! bytes a server broadcasts.
//!
//! The lesson's server reads `recv(1024)` and sends whatever it got to every client; its
//! client sends `nickname + ': ' + text` with no line ending, and `byebye` to leave. That
//! works while a human types slowly enough that every send arrives as its own read.
//! netloop's chat frames messages as lines instead, so it does not depend on luck, and
//! adds a few IRC-style commands. The lesson's framing is kept as [`RawFramer`].
//!
//! # Reading order
//!
//! 1. [`framer`]: bytes to lines ([`LineFramer`]), or to reads ([`RawFramer`]).
//! 2. [`session`]: a line to a [`Command`], per connection ([`Session`]).
//! 3. [`nick`]: what a nickname may be ([`validate_nick`], [`Nick`]).
//! 4. [`format`](mod@format): the lines the server sends, and why text is sanitized.
//!
//! The room (who is in it, uniqueness of nicknames, fan-out) is the server's; the test in
//! `transcript.rs` builds a tiny one from these parts, and `session.transcript` is the
//! dialog it replays.
//!
//! # The wire, as `nc` shows it
//!
//! Every line ends with LF (CRLF accepted). The server's lines start with a marker: `<nick>`
//! for a message, `*` for an action, `***` for a notice, `!!!` for an error to one client.
//!
//! ```text
//! S1: *** Welcome to netloop chat. Type your nickname and press Enter.
//! C1: alice
//! S1: *** alice joined
//! S2: *** Welcome to netloop chat. Type your nickname and press Enter.
//! C2: bob
//! S1: *** bob joined
//! S2: *** bob joined
//! C1: hello, bob
//! S1: <alice> hello, bob
//! S2: <alice> hello, bob
//! C2: /me waves
//! S1: * bob waves
//! S2: * bob waves
//! C1: /who
//! S1: *** here: alice, bob
//! C2: /nick alice
//! S2: !!! the nickname alice is taken
//! C2: /nick robert
//! S1: *** bob is now known as robert
//! S2: *** bob is now known as robert
//! C1: /dance
//! S1: !!! unknown command /dance (commands: /nick NAME, /who, /me ACTION, /quit; ...)
//! C2: byebye
//! S1: *** robert left
//! ```
//!
//! (`C1:` is what client 1 sends, `S1:` what it receives. The server also sends
//! `*** nick left` when a connection closes, and `*** nick was disconnected: too slow`
//! when it drops a client that does not read its messages.)

pub mod format;
pub mod framer;
pub mod nick;
pub mod session;

#[cfg(test)]
mod transcript;

pub use framer::{Frame, LineFramer, MAX_LINE, RAW_MESSAGE_MAX, RawFramer, is_byebye};
pub use nick::{MAX_NICK_CHARS, Nick, NickError, validate_nick};
pub use session::{Command, CommandError, Session, State};
