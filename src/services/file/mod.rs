//! File transfer (lesson programs 04/05): the lesson's JSON + base64 document, streamed,
//! plus a request mode with raw framing and uploads.
//!
//! Try it:
//!
//! ```text
//! cargo run --example file_server -- --file Cargo.toml     # lesson mode
//! nc 127.0.0.1 5566                                       # {"filename": "Cargo.toml", ...
//! cargo run --example file_client                          # saves Cargo.toml here
//!
//! cargo run --example file_server -- --dir /tmp/files       # request mode
//! echo '{"op":"list"}' | nc 127.0.0.1 5566
//! cargo run --example file_client -- put README.md --encoding raw
//! cargo run --example file_client -- get README.md
//! ```
//!
//! The lesson's server reads the whole file, base64-encodes it, wraps it in JSON, and sends
//! it: the file sits in memory three times. Its client collects everything until EOF, then
//! decodes: the same again on the other side, and it saves under whatever name the server
//! chose. Here both sides stream: the server queues one chunk when the previous one has
//! gone to the kernel (the reactor's `drained` callback), the client decodes each read as
//! it arrives and writes it to a temporary file; memory stays at one chunk per connection
//! whatever the file's size. Names from the network are checked, files arrive under a
//! temporary name and are renamed only once complete and checked.
//!
//! # Files, in the order data flows
//!
//! | file | what |
//! |---|---|
//! | [`server`] | the handlers: lesson mode and request mode |
//! | [`client`] | the client handler, for every job |
//! | [`outgoing`] | a file streamed out in chunks, raw or as the lesson's document |
//! | [`receive`] | a body streamed in, decoded and verified |
//! | [`incoming`] | the temporary file: write, fsync, rename, or remove |
//! | [`store`] | the served directory: names, listing, cached digests |
//!
//! The wire formats, and the sans-IO codecs they use, are in
//! [`netloop_protocols::file`].
//!
//! # Raw or base64 on the wire
//!
//! Base64 writes 3 bytes as 4 characters: the lesson's document is a third larger than the
//! file (1 GiB becomes 1.33 GiB), and both sides spend CPU on encoding. Raw framing sends
//! the file as it is after a JSON header line, so it moves 25% fewer bytes than base64.

pub mod client;
pub mod incoming;
pub mod outgoing;
pub mod receive;
pub mod server;
pub mod store;

pub use client::{Destination, FileClient, Job, NoProgress, Outcome, Progress};
pub use server::{FileService, LessonFile, LessonServer, RequestServer, listen_options};
pub use store::{DEFAULT_MAX_UPLOAD, Store, default_dir, sha256_file};

/// The lesson's port for the file server.
pub const DEFAULT_PORT: u16 = 5566;
