//! Sans-IO protocol state machines for netloop.
//!
//! Nothing in this crate opens a socket, spawns a thread or reads the clock: bytes go in
//! through `handle_*` methods, events and bytes come out through `poll_*` methods, and time
//! arrives as an argument. Every protocol here is tested with plain byte slices, fed whole,
//! one byte at a time, and at every split (see `testing.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chat;
pub mod file;
pub mod http;
pub mod smtp;
pub mod time;

#[cfg(test)]
pub mod testing;
