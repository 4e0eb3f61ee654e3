//! The chat (lesson programs 11/12): a room where every message reaches everyone, served by
//! ONE thread. The lesson's server runs a thread per client, each blocked in `recv`, and
//! a slow client blocks whoever is sending to it; here every client is an entry in the
//! slab, and a message is copied into every member's output queue in one callback.
//!
//! Two services, two rooms:
//!
//! | service | framing | file |
//! |---|---|---|
//! | `chat` (port [`DEFAULT_PORT`]) | lines, nicknames, `/nick` `/who` `/me` `/quit` | [`server`], [`room`] |
//! | `chat-raw` (port [`DEFAULT_RAW_PORT`]) | the lesson's: one read is one message | [`raw`] |
//!
//! Try it: `cargo run --example chat_server`, then in two terminals `nc 127.0.0.1 12345`
//! (or `cargo run --example chat_client`). The lesson's own client speaks to `chat-raw`:
//! `cargo run --example chat_client -- --raw`.
//!
//! # Reading order
//!
//! 1. [`fanout`]: one message to every member; why copy, and the cap on a slow reader.
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

/// The lesson-framed chat's port: the next one, so both run at once.
pub const DEFAULT_RAW_PORT: u16 = 12346;
