//! netloop: the network-programming lesson, underneath.
//!
//! The classic lesson writes a time server, a file server, a UDP echo, a chat and an HTTP
//! server with blocking sockets and a thread per client. netloop writes the same programs
//! with what sits underneath every event-driven server: ONE thread, ONE [`mio::Poll`], a
//! [`slab::Slab`] of connection state machines, and no async runtime.
//!
//! # Layout
//!
//! Data flows down on write and up on read:
//!
//! - `netloop-protocols` (its own crate): sans-IO protocol state machines. Bytes in,
//!   events and bytes out; no sockets, no clock.
//! - [`reactor`]: `Poll` + `Slab` + timers + output queues. Knows no protocol.
//! - [`services`]: one [`Handler`](reactor::Handler) per protocol, wiring a protocol state
//!   machine to a connection.
//! - [`cli`]: what the example mains and the `netloop` binary share.
//!
//! # Start here
//!
//! Read [`reactor`]'s module docs (one tick of the loop), then
//! [`services::time`], the smallest service. A complete server:
//!
//! ```no_run
//! use netloop::reactor::{Context, Handler, Reactor};
//!
//! /// Sends "hello" and closes, like the lesson's first server.
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn opened(&mut self, cx: &mut Context<'_>) {
//!         cx.write(b"hello\n");
//!         cx.close(); // after the queue is flushed
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::new()?;
//!     let addr = reactor.listen("hello", "127.0.0.1:0".parse().unwrap(), |_peer| Box::new(Hello))?;
//!     println!("hello listening on {addr}");
//!     reactor.handle_signals()?; // Ctrl-C: flush and exit 0
//!     reactor.run()
//! }
//! ```
#![deny(missing_docs)]

pub mod cli;
pub mod reactor;
pub mod services;
