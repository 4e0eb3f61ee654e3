//! A load generator built on netloop's own reactor: many connections on ONE thread, every
//! latency in an HDR histogram.
//!
//! # What it does
//!
//! A [`Plan`] says where, how many connections, how deep to pipeline, for how long, and
//! (open loop) at what rate. [`run`] opens the connections on a fresh [`Reactor`], drives
//! them with a [`Driver`] per connection, stops by itself at the deadline (each connection
//! arms a deadline timer, stops sending, and closes once its last answer is in; a hard stop
//! cuts off whatever is still waiting) and returns a [`Report`]: completed requests per
//! second, latency percentiles, and errors by kind (connect failures, resets, bad
//! responses, timeouts). [`run_udp`] does the same for UDP echo with a window of datagrams,
//! and [`run_chat`] for a chat room ([`ChatPlan`]).
//!
//! Drivers included: [`HttpGet`] (keep-alive, pipelined `GET`), [`TimeConnect`] (connect,
//! read the time to EOF: connections per second), [`FileGet`] (one request-mode `get` per
//! connection, size and optionally SHA-256 checked as the bytes stream: transfers and MB
//! per second), [`SmtpSend`] (one mail transaction per request on a persistent SMTP
//! session, MAIL/RCPT/DATA pipelined, the message after 354: messages per second). The
//! [`Driver`] trait is the whole protocol-specific part of a request/response protocol; a
//! protocol that must send without being asked (SMTP's EHLO, its message after 354) does so
//! through [`Driver::poll_transmit`].
//!
//! Chat is not request/response: a line sent by one client is answered by its arrival at
//! every client, so [`run_chat`] has an engine of its own (`chat.rs`) whose clients share
//! the senders' send times, and reports deliveries per second.
//!
//! # Closed loop and open loop
//!
//! **Closed loop** (no rate): each connection keeps `depth` requests in flight and sends the
//! next as soon as one is answered. This finds the most a server can do, but its latency
//! figures flatter a server that stalls: while the server is stuck, the generator is stuck
//! too, sends nothing, and so records only the one slow request per connection instead of
//! the hundreds that real users would have sent meanwhile.
//!
//! **Open loop** (`rate`): requests are due on a fixed schedule, spread evenly across the
//! connections with reactor timers, whether or not the server keeps up. A request that is
//! due while `depth` are already in flight waits in a backlog, and its latency is measured
//! from when it was *due*, not when it finally went out. That is the correction for
//! **coordinated omission** (Gil Tene's name for the closed loop's flaw, which wrk2 fixes
//! the same way): when the server stalls for a second, every request scheduled during that
//! second is charged the wait a user would have seen, so p99 shows the stall instead of
//! hiding it. Requests still backlogged at the deadline are reported as `unsent`.
//!
//! A connection-per-request driver ([`TimeConnect`]) takes a rate too: then each request
//! is a new connection, opened when it falls due, at most `connections` open at once; one
//! due while that many are open waits in the backlog the same way, charged from its due
//! time (see `stream/state.rs`). The figure is connections per second at a fixed rate.
//!
//! # What a latency is here
//!
//! In closed loop the clock starts when the request is queued (`Instant::now()`; the write
//! follows in the same tick), in open loop when it was due, and for a connection-per-request
//! driver in closed loop when `connect` was called (in open loop, when it was due). It stops at the tick in which the response was read
//! (the reactor's time for that tick: the bytes were in the kernel by then). Values are in
//! microseconds, at 3 significant digits.
//!
//! # One thread, honestly
//!
//! The generator is as single-threaded as the server it measures. On a 2-core machine,
//! pin the server to one core and the generator to the other (`taskset`), or the two fight
//! for the same CPU and the numbers measure the scheduler.
//!
//! ```no_run
//! use netloop::loadgen::{self, HttpGet, Plan};
//! use std::time::Duration;
//!
//! let target = "127.0.0.1:8000".parse().unwrap();
//! let plan = Plan::closed_loop(target, 50, 1, Duration::from_secs(5));
//! let report = loadgen::run(&plan, || Box::new(HttpGet::new("127.0.0.1:8000", "/hello")))?;
//! println!("{report}");
//! # Ok::<(), loadgen::LoadError>(())
//! ```
//!
//! [`Reactor`]: crate::reactor::Reactor

mod chat;
mod driver;
mod file;
mod report;
pub mod smtp;
mod stream;
mod udp;

pub use chat::{ChatPlan, run_chat};
pub use driver::{Answers, BadResponse, Driver, HttpGet, Shape, TimeConnect};
pub use file::{FileError, FileGet};
pub use report::{Errors, LATENCY_DIGITS, LATENCY_MAX_US, LATENCY_UNIT, Report};
pub use smtp::{SmtpError, SmtpSend};
pub use udp::{UdpPlan, run_udp};

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// How long one request may wait for its answer before it counts as a timeout (and its
/// connection is dropped and replaced). 5 s: well past any loopback latency under load;
/// `wrk`'s default is 2 s, and the extra 3 s is for shared 2-core machines, where a
/// neighbour's compile can stall either end for a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run against whom.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where the load goes (a resolved address: no lookup runs during a measurement).
    pub target: SocketAddr,
    /// Connections open at once (open loop with a connection-per-request driver: at most
    /// this many).
    pub connections: usize,
    /// Requests in flight per connection (1: no pipelining). Ignored by connection-per-request
    /// drivers.
    pub depth: usize,
    /// How long to send requests.
    pub duration: Duration,
    /// Open loop: requests per second across all connections. `None`: closed loop.
    pub rate: Option<f64>,
    /// See [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl Plan {
    /// Closed loop: `connections` × `depth` requests in flight, as fast as answers come.
    pub fn closed_loop(
        target: SocketAddr,
        connections: usize,
        depth: usize,
        duration: Duration,
    ) -> Plan {
        Plan {
            target,
            connections,
            depth,
            duration,
            rate: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Open loop: `rate` requests per second on a fixed schedule over `connections`, each
    /// allowed `depth` in flight before the rest wait (and are charged the wait).
    pub fn open_loop(
        target: SocketAddr,
        connections: usize,
        depth: usize,
        rate: f64,
        duration: Duration,
    ) -> Plan {
        Plan {
            rate: Some(rate),
            ..Plan::closed_loop(target, connections, depth, duration)
        }
    }

    fn check(&self) -> Result<(), LoadError> {
        if self.connections == 0 || self.depth == 0 {
            return Err(LoadError::Empty);
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(LoadError::BadRate);
        }
        Ok(())
    }
}

/// Why a run could not start. (What goes wrong *during* a run is counted in [`Errors`].)
#[derive(Debug)]
pub enum LoadError {
    /// No connections, or a depth (window) of 0: nothing would be sent.
    Empty,
    /// The rate is not a positive number.
    BadRate,
    /// The reactor (or the UDP socket) could not be set up.
    Io(io::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Empty => f.write_str("no connections or a depth of 0: nothing to send"),
            LoadError::BadRate => f.write_str("the rate must be a positive number"),
            LoadError::Io(e) => write!(f, "setting up: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<io::Error> for LoadError {
    fn from(e: io::Error) -> Self {
        LoadError::Io(e)
    }
}

/// Runs `plan`, with a fresh driver from `driver` for each connection, and reports.
///
/// Blocks the calling thread for about `plan.duration` (plus the time the last answers
/// take). Failures of connections and requests are counted in the report, not returned.
pub fn run<F>(plan: &Plan, driver: F) -> Result<Report, LoadError>
where
    F: Fn() -> Box<dyn Driver> + 'static,
{
    stream::run(plan, Box::new(driver))
}
