//! The stream engine: N connections, each a [`Handler`] that keeps its pipeline full
//! (closed loop) or sends on its own schedule (open loop), and records every latency.
//!
//! # One connection's life
//!
//! ```text
//!  connect ─► opened: arm Deadline (and, open loop, Tick)
//!              │  closed loop: send `depth` requests; each response sends the next
//!              │  open loop:   Tick sends whatever is due (or backlogs it past `depth`)
//!              │  Timeout: the oldest request is older than the plan's timeout → abort
//!              ▼
//!           Deadline: stop sending; close once the last answer is in
//!              ▼
//!           closed: count the error if it was one; before the deadline, open a
//!                   replacement; the last connection out closes the clock
//! ```
//!
//! The reactor's timers belong to entries. The run's hard stop (the deadline plus the
//! timeout, in case a connect never completes) therefore lives on a *clock*: a task
//! ([`Reactor::spawn`]: an entry with no socket, there for its timers), closed by the
//! last connection so that [`Reactor::run`] returns as soon as the work is done.
//!
//! # Open loop, one connection per request
//!
//! A connection-per-request driver (the time service) in open loop has no connection to
//! carry a schedule between requests, so the clock keeps it ([`Schedule`]): one request
//! is due every `1 / rate` seconds, and each is a new connection whose latency starts at
//! the time it was *due* (not when `connect` was called). At most `connections` are open
//! at once (the plan's concurrency, as `depth` is for keep-alive); a request due while
//! that many are open waits in the schedule's backlog and goes out as one closes, still
//! charged from its due time, so a server that stalls its accept queue is charged for
//! every connection a user would have tried meanwhile. At the deadline the backlog is
//! counted as `unsent`; connections already opened finish and are counted (after the
//! deadline, so in the requests but not in the window's rate).
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the timers, and [`run`]: the clock, the first connections, the report |
//! | `state.rs` | [`Run`](state::Run): what the connections share, and the [`Schedule`] |
//! | `conn.rs` | [`Conn`]: one load connection, the life drawn above |
//! | `clock.rs` | [`Clock`]: the hard stop, and the ticks and deadline of a [`Schedule`] |
//! | `tests.rs` | both loops, the backlog and timeouts on the reactor's test bed |
//!
//! [`Handler`]: crate::reactor::Handler
//! [`Schedule`]: state::Schedule

mod clock;
mod conn;
mod state;
#[cfg(test)]
mod tests;

use super::driver::Driver;
use super::report::Report;
use super::{LoadError, Plan};
use crate::reactor::{Config, Reactor, TimerId};
use clock::Clock;
use conn::Conn;
use state::shared;
use std::time::{Duration, Instant};

/// Stop sending: the plan's duration is over.
const DEADLINE: TimerId = TimerId(1);
/// Open loop: the next request is due.
const TICK: TimerId = TimerId(2);
/// The oldest request in flight may have waited too long.
const TIMEOUT: TimerId = TimerId(3);
/// The clock's hard stop.
const HARD_STOP: TimerId = TimerId(4);

/// The service name the generator's connections carry in the reactor's logs.
const SERVICE: &str = "loadgen";

/// Makes one connection's driver.
type DriverFactory = Box<dyn Fn() -> Box<dyn Driver>>;

/// Runs `plan` with a fresh driver from `factory` per connection; see [`super::run`].
pub(super) fn run(plan: &Plan, factory: DriverFactory) -> Result<Report, LoadError> {
    plan.check()?;
    let mut reactor = Reactor::with_config(Config::default())?;
    let start = Instant::now();
    let deadline = start + plan.duration;
    let run = shared(plan, start, factory);
    let hard_stop = deadline + plan.timeout + HARD_STOP_SLACK;
    reactor.spawn(
        SERVICE,
        Box::new(Clock {
            run: run.clone(),
            hard_stop,
        }),
    )?;
    // Open loop with a connection per request: the clock's schedule opens them.
    let initial = if run.borrow().schedule.is_some() {
        0
    } else {
        plan.connections
    };
    for i in 0..initial {
        // Open loop: connection i's first request is due i/N of an interval in, so the
        // connections' schedules interleave into one even stream at the plan's rate.
        let interval = run.borrow().interval;
        let first_due = interval.map(|iv| start + iv.mul_f64(i as f64 / plan.connections as f64));
        let conn = Conn::new(run.clone(), start, first_due);
        let opened = reactor.connect(SERVICE, plan.target, Box::new(conn));
        run.borrow_mut().count_connect(opened);
    }
    if run.borrow().live == 0 && initial > 0 {
        // Nothing to wait for: close the clock now rather than at the hard stop.
        reactor.shutdown_handle().shutdown();
    }
    reactor.run()?;
    let elapsed = start.elapsed();
    let r = run.borrow();
    Ok(Report {
        requests: r.requests,
        in_window: r.in_window,
        window: plan.duration,
        elapsed,
        latency: r.latency.clone(),
        errors: r.errors,
        unsent: r.unsent,
        connections: r.connections,
        unit: r.unit,
        bytes_in_window: r.bytes_in_window,
    })
}

/// How long past deadline + timeout the clock waits before cutting the run off: one more
/// second for connections that are closing to finish.
const HARD_STOP_SLACK: Duration = Duration::from_secs(1);
