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
//! - [`loadgen`]: a load generator on the same reactor, the client side of the benches:
//!   many connections on one thread, every latency in an HDR histogram.
//!
//! # Start here
//!
//! Read [`reactor`]'s module docs (one tick of the loop), then
//! [`services::time`], the smallest service. A complete server:
//!
//! ```
//! use netloop::reactor::{CloseReason, Context, Handler, Reactor};
//! use std::io::Read;
//!
//! /// Sends "hello" and closes, like the lesson's first server.
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn opened(&mut self, cx: &mut Context<'_>) {
//!         cx.write(b"hello\n"); // queued; written after this callback returns
//!         cx.close(); // once the queue is flushed
//!     }
//!
//!     fn closed(&mut self, cx: &mut Context<'_>, _why: &CloseReason) {
//!         cx.shutdown_reactor(); // one client is enough for an example
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::new()?;
//!     let addr = reactor.listen("hello", "127.0.0.1:0".parse().expect("an address"), |_peer| {
//!         Box::new(Hello)
//!     })?;
//!     println!("hello listening on {addr}");
//!     let client = std::thread::spawn(move || -> std::io::Result<String> {
//!         let mut text = String::new();
//!         std::net::TcpStream::connect(addr)?.read_to_string(&mut text)?;
//!         Ok(text)
//!     });
//!     reactor.handle_signals()?; // Ctrl-C: flush, then return Ok
//!     reactor.run()?;
//!     assert_eq!(client.join().expect("client thread")?, "hello\n");
//!     Ok(())
//! }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod cli;
pub mod loadgen;
pub mod reactor;
pub mod services;
