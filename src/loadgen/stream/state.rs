//! What every connection of a run shares: the [`Run`] (the plan's numbers, the counters
//! and the latency histogram that go into the report) and, in open loop with a
//! connection-per-request driver, the clock's [`Schedule`]. Each [`Conn`] records into it
//! and the [`Clock`](super::clock::Clock) drives the schedule; [`shared`] builds it for
//! [`run`](super::run).

use super::conn::Conn;
use super::{DriverFactory, SERVICE};
use crate::loadgen::Plan;
use crate::loadgen::driver::Shape;
use crate::loadgen::report::{Errors, LATENCY_MAX_US, new_histogram};
use crate::reactor::{Context, Token};
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What every connection of a run shares (one thread: `Rc<RefCell<_>>` is enough).
pub(super) struct Run {
    pub(super) target: SocketAddr,
    pub(super) depth: usize,
    pub(super) timeout: Duration,
    pub(super) deadline: Instant,
    /// Open loop: one connection's interval between requests.
    pub(super) interval: Option<Duration>,
    pub(super) factory: DriverFactory,
    pub(super) latency: Histogram<u64>,
    pub(super) requests: u64,
    pub(super) in_window: u64,
    pub(super) errors: Errors,
    pub(super) unsent: u64,
    pub(super) connections: u64,
    /// What a request is called in the report (the driver's [`Driver::unit`](crate::loadgen::Driver::unit)).
    pub(super) unit: &'static str,
    /// Payload bytes of the answers received before the deadline.
    pub(super) bytes_in_window: u64,
    /// Connections not yet closed.
    pub(super) live: usize,
    pub(super) clock: Option<Token>,
    /// Open loop for a connection-per-request driver: the clock's schedule.
    pub(super) schedule: Option<Schedule>,
}

/// The schedule of an open-loop run whose requests are connections (see the module docs).
pub(super) struct Schedule {
    /// Between two requests: `1 / rate`.
    pub(super) interval: Duration,
    /// When the next request falls due.
    pub(super) next_due: Instant,
    /// Most connections open at once (the plan's `connections`).
    pub(super) max_open: usize,
    /// Requests that fell due while `max_open` were open, oldest first.
    pub(super) backlog: VecDeque<Instant>,
    /// The deadline has passed: nothing more falls due, and the last connection to close
    /// closes the clock.
    pub(super) done: bool,
}

impl Run {
    /// Opens one connection-per-request connection for a request that fell due at `due`
    /// (open loop). `shared` is the `Rc` this `Run` lives in, for the new connection.
    pub(super) fn launch(&mut self, shared: &Shared, cx: &mut Context<'_>, due: Instant) {
        let driver = (self.factory)();
        let conn = Conn::with_driver(shared.clone(), driver, due, None);
        let opened = cx.connect(SERVICE, self.target, Box::new(conn));
        self.count_connect(opened);
    }

    /// Counts a connection being opened, or failing to.
    pub(super) fn count_connect(&mut self, opened: std::io::Result<Token>) {
        match opened {
            Ok(_) => {
                self.live += 1;
                self.connections += 1;
            }
            Err(e) => {
                log::debug!("{SERVICE}: connect to {}: {e}", self.target);
                self.errors.connect += 1;
            }
        }
    }

    /// Open loop, connection per request: every request due by `now` (and before the
    /// deadline) is launched, or backlogged if `max_open` are open. Returns when the next
    /// one is due, if before the deadline.
    pub(super) fn schedule(
        &mut self,
        shared: &Shared,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Option<Instant> {
        let deadline = self.deadline;
        let mut due = self.schedule.as_ref()?.next_due;
        loop {
            let s = self.schedule.as_mut()?;
            if due > now || due >= deadline {
                s.next_due = due;
                return (due < deadline).then_some(due);
            }
            let (interval, full) = (s.interval, self.live >= s.max_open);
            if full {
                s.backlog.push_back(due);
            } else {
                self.launch(shared, cx, due);
            }
            due += interval;
        }
    }

    pub(super) fn record(&mut self, from: Instant, to: Instant) {
        let us = to.saturating_duration_since(from).as_micros();
        let us = u64::try_from(us)
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        // Clamped into the histogram's range, so recording cannot fail.
        let _ = self.latency.record(us);
        self.requests += 1;
        if to <= self.deadline {
            self.in_window += 1;
        }
    }
}

pub(super) type Shared = Rc<RefCell<Run>>;

/// The state a run's connections share, for a run that starts at `start`.
pub(super) fn shared(plan: &Plan, start: Instant, factory: DriverFactory) -> Shared {
    let (unit, shape) = {
        let probe = factory();
        (probe.unit(), probe.shape())
    };
    let per_request = shape == Shape::ConnectionPerRequest;
    let schedule = plan.rate.filter(|_| per_request).map(|rate| Schedule {
        interval: Duration::from_secs_f64(1.0 / rate),
        next_due: start,
        max_open: plan.connections,
        backlog: VecDeque::new(),
        done: false,
    });
    Rc::new(RefCell::new(Run {
        target: plan.target,
        depth: plan.depth,
        timeout: plan.timeout,
        deadline: start + plan.duration,
        // Each keep-alive connection carries 1/N of the rate (connection-per-request: the
        // clock's schedule carries all of it).
        interval: plan
            .rate
            .filter(|_| !per_request)
            .map(|rate| Duration::from_secs_f64(plan.connections as f64 / rate)),
        factory,
        latency: new_histogram(),
        requests: 0,
        in_window: 0,
        errors: Errors::default(),
        unsent: 0,
        connections: 0,
        unit,
        bytes_in_window: 0,
        live: 0,
        clock: None,
        schedule,
    }))
}
