//! Sans-IO protocol state machines for netloop.
//!
//! Nothing in this crate opens a socket, spawns a thread or reads the clock: bytes go in
//! through `handle_*` methods, events and bytes come out through `poll_*` methods, and time
//! arrives as an argument. Every protocol here is tested with plain byte slices, fed whole,
//! one byte at a time, and at every split (see `testing.rs`).
//!
//! # Every machine has the same shape
//!
//! The grammar is quinn-proto's (its `Connection`): something happening to a machine is a
//! `handle_*` call, something the machine has to say is a `poll_*` call.
//!
//! - **Inputs are `handle_*` and return `()`**: `handle_bytes(&[u8])` for bytes from the
//!   peer (with `now` too where the machine keeps a deadline from it:
//!   [`smtp::ServerSession::handle_bytes`]), `handle_eof()` when the peer closes,
//!   `handle_timeout(now)` when a deadline passes, and `handle_<answer>` for what the
//!   application decided (`handle_stored`, `handle_auth_result`). An input only records and
//!   queues; nothing comes back from it.
//! - **Outputs are `poll_*` and take nothing but a buffer of the caller's**: `poll_event()`
//!   for what the application must act on, `poll_transmit(&mut Vec<u8>)` for bytes to send
//!   (appended to the reactor's buffer, never a new one), `poll_timeout()` for the next
//!   deadline.
//! - **The peer's errors come out of `poll_event`**, in stream order, as
//!   `Result<Option<Event>, Error>`: the events before the error first, then `Err`.
//!   `Ok(None)` means "nothing until the next input". A machine the peer cannot break (its
//!   mistakes become replies, or there are none to make) returns `Option<Event>`.
//! - **Drain order, after every input**: `poll_transmit` and send it, then `poll_event`
//!   until `None` / `Ok(None)`, acting on each event; acting may be an input
//!   (`handle_stored`), so go round again; `poll_timeout` last, to re-arm the one timer.
//!   Bytes first because an event may change the connection under them: SMTP's `220` to
//!   STARTTLS must leave in plaintext before the handshake begins. Each type's doc says
//!   which of these it has, in a line or two.
//!
//! Where a machine departs from this, its doc says why; the departures are these:
//!
//! - **The application's own output is written *through* the machine**, with `write_*`:
//!   [`http::ServerConn::write_response_head`] / `write_body` / `finish_response`,
//!   [`http::ClientConn::write_request`], [`file::JsonBase64Encoder::write_data`] /
//!   `finish`. A response is the application's input, but naming it `handle_response`
//!   would promise a queue to drain afterwards, and there is none: the machine frames the
//!   bytes into the caller's buffer in the call, and refuses a misuse in the call
//!   ([`http::UsageError`], [`file::EncodeError`]). Free `write_*` functions
//!   ([`smtp::write_reply`], [`time::write_reply`]) are the same with no state to keep.
//! - [`file::JsonLineReader::handle_bytes`] returns how many bytes it took: the stream goes
//!   on with a file body that belongs to another decoder.
//! - [`http::ClientConn::poll_event`] takes the input itself, to lend body data out of the
//!   caller's read buffer without copying it.
//! - [`chat::Session::handle_line`] returns its [`chat::Command`] at once: one line in, one
//!   command out, so a queue would never hold more than one.
//! - Helpers that are parts of machines, not machines, answer in the call:
//!   [`file::base64::Base64Decoder`] (text in, bytes out) and [`file::Sha256Verifier`] (a
//!   running check, with no events to queue).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chat;
pub mod file;
pub mod http;
pub mod smtp;
pub mod time;

#[cfg(test)]
pub mod testing;
