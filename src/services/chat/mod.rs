//! The chat (lesson programs 11/12): a room where every message reaches everyone, served by
//! ONE thread. The lesson's server runs a thread per client, each blocked in `recv`, and
//! a slow client blocks whoever is sending to it; here every client is an entry in the
//! slab, a message is written once into the room's log, and each member copies what it
//! has not seen into its own queue right before its own write.
//!
//! Two framings of the same fan-out:
//!
//! | handler | framing | file |
//! |---|---|---|
//! | [`ChatServer`] (`chat_server`, the default) | lines, nicknames, `/nick` `/who` `/me` `/quit`, notices | [`server`], [`room`] |
//! | [`RawChatServer`] (`chat_server --framing raw`) | the lesson's: one read is one message | [`raw`] |
//!
//! `chat_server` serves one of them on [`DEFAULT_PORT`], as the lesson's server does, so
//! the lesson's Python client works unchanged against `--framing raw`. The all-in-one
//! `netloop` binary runs every lesson at once, so it gives each framing a room and a port
//! (`chat` on [`DEFAULT_PORT`], `chat-raw` on [`DEFAULT_RAW_PORT`]). In both framings
//! `chat_server --no-echo` keeps a message from coming back to its sender.
//!
//! Try it: `cargo run --example chat_server`, then in two terminals `nc 127.0.0.1 12345`
//! (or `cargo run --example chat_client`). The lesson's framing:
//! `cargo run --example chat_server -- --framing raw` and `chat_client --raw`.
//!
//! # Reading order
//!
//! 1. [`fanout`]: one log, a cursor per member, pulls right before each write; why not a
//!    copy per member or a shared chunk per message (measured), and the cap on a slow
//!    reader.
//! 2. [`room`]: nicknames and notices on top of the fan-out.
//! 3. [`server`]: one connection: framer, session, room.
//! 4. [`raw`]: the lesson's server, in thirty lines.
//! 5. [`client`]: stdin and a socket in one loop.
//!
//! The protocol itself (framing, commands, what the server's lines look like) is sans-IO,
//! in `netloop_protocols::chat`.

pub mod client;
pub mod fanout;
pub mod raw;
pub mod room;
pub mod server;

pub use client::{ChatClient, ChatClientConn, ChatClientStdin, Ending, Mode};
pub use fanout::{Fanout, MAX_UNREAD};
pub use raw::RawChatServer;
pub use room::Room;
pub use server::ChatServer;

/// The line-mode chat's port: the port the lesson's chat programs commonly use.
pub const DEFAULT_PORT: u16 = 12345;

/// The lesson-framed room's port in the all-in-one `netloop` binary: the next one, so both
/// framings run at once there (`chat_server --framing raw` uses [`DEFAULT_PORT`]).
pub const DEFAULT_RAW_PORT: u16 = 12346;
