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
//! timeout, in case a connect never completes) therefore lives on a *clock*: a UDP socket
//! on loopback that nothing sends to, the cheapest entry there is, closed by the last
//! connection so that [`Reactor::run`] returns as soon as the work is done.
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

use super::driver::{Answers, BadResponse, Driver, Shape};
use super::report::{Errors, LATENCY_MAX_US, Report, new_histogram};
use super::{LoadError, Plan};
use crate::reactor::{CloseReason, Config, Context, Handler, Reactor, TimerId, Token};
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
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

/// What every connection of a run shares (one thread: `Rc<RefCell<_>>` is enough).
struct Run {
    target: SocketAddr,
    depth: usize,
    timeout: Duration,
    deadline: Instant,
    /// Open loop: one connection's interval between requests.
    interval: Option<Duration>,
    factory: DriverFactory,
    latency: Histogram<u64>,
    requests: u64,
    in_window: u64,
    errors: Errors,
    unsent: u64,
    connections: u64,
    /// What a request is called in the report (the driver's [`Driver::unit`]).
    unit: &'static str,
    /// Payload bytes of the answers received before the deadline.
    bytes_in_window: u64,
    /// Connections not yet closed.
    live: usize,
    clock: Option<Token>,
    /// Open loop for a connection-per-request driver: the clock's schedule.
    schedule: Option<Schedule>,
}

/// The schedule of an open-loop run whose requests are connections (see the module docs).
struct Schedule {
    /// Between two requests: `1 / rate`.
    interval: Duration,
    /// When the next request falls due.
    next_due: Instant,
    /// Most connections open at once (the plan's `connections`).
    max_open: usize,
    /// Requests that fell due while `max_open` were open, oldest first.
    backlog: VecDeque<Instant>,
    /// The deadline has passed: nothing more falls due, and the last connection to close
    /// closes the clock.
    done: bool,
}

impl Run {
    /// Opens one connection-per-request connection for a request that fell due at `due`
    /// (open loop). `shared` is the `Rc` this `Run` lives in, for the new connection.
    fn launch(&mut self, shared: &Shared, cx: &mut Context<'_>, due: Instant) {
        let driver = (self.factory)();
        let conn = Conn::with_driver(shared.clone(), driver, due, None);
        let opened = cx.connect(SERVICE, self.target, Box::new(conn));
        self.count_connect(opened);
    }

    /// Counts a connection being opened, or failing to.
    fn count_connect(&mut self, opened: std::io::Result<Token>) {
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
    fn schedule(&mut self, shared: &Shared, cx: &mut Context<'_>, now: Instant) -> Option<Instant> {
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

    fn record(&mut self, from: Instant, to: Instant) {
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

type Shared = Rc<RefCell<Run>>;

/// One load connection.
struct Conn {
    run: Shared,
    driver: Box<dyn Driver>,
    shape: Shape,
    /// When `connect` was called: a connection-per-request's latency starts here.
    started: Instant,
    /// Start times of requests sent and not yet answered, oldest first.
    in_flight: VecDeque<Instant>,
    /// Open loop: requests due but not sent because `depth` are in flight.
    backlog: VecDeque<Instant>,
    /// Open loop: when this connection's next request is due.
    next_due: Option<Instant>,
    stopping: bool,
    /// The server said `Connection: close`: what is still in flight will not be answered
    /// here, and is not the server's fault (RFC 9112 §9.3.2: the client retries it).
    server_closing: bool,
}

impl Conn {
    fn new(run: Shared, started: Instant, next_due: Option<Instant>) -> Conn {
        let driver = (run.borrow().factory)();
        Conn::with_driver(run, driver, started, next_due)
    }

    fn with_driver(
        run: Shared,
        driver: Box<dyn Driver>,
        started: Instant,
        next_due: Option<Instant>,
    ) -> Conn {
        Conn {
            shape: driver.shape(),
            driver,
            run,
            started,
            in_flight: VecDeque::new(),
            backlog: VecDeque::new(),
            next_due,
            stopping: false,
            server_closing: false,
        }
    }

    /// Sends one request whose latency starts at `at`.
    fn send(&mut self, cx: &mut Context<'_>, at: Instant) {
        let Some(out) = cx.output() else { return };
        self.driver.write_request(out);
        if self.in_flight.is_empty() {
            cx.set_timer_at(TIMEOUT, at + self.run.borrow().timeout);
        }
        self.in_flight.push_back(at);
    }

    /// Queues what the driver must send unasked ([`Driver::poll_transmit`]): straight into
    /// the connection's output, which the reactor writes after this callback.
    fn transmit(&mut self, cx: &mut Context<'_>) {
        if let Some(out) = cx.output() {
            self.driver.poll_transmit(out);
        }
    }

    /// Fills the pipeline: from the backlog (open loop) or with new requests (closed loop).
    fn fill(&mut self, cx: &mut Context<'_>) {
        let depth = self.run.borrow().depth;
        while self.in_flight.len() < depth && !self.stopping {
            if let Some(at) = self.backlog.pop_front() {
                self.send(cx, at);
            } else if self.next_due.is_none() {
                // Closed loop: the clock starts now. Instant::now() rather than the tick's
                // time: the write follows in this same tick, and a busy tick can be long.
                self.send(cx, Instant::now());
            } else {
                return;
            }
        }
    }

    /// Open loop: everything due by now goes out or into the backlog.
    fn schedule(&mut self, cx: &mut Context<'_>) {
        let (interval, deadline, depth) = {
            let r = self.run.borrow();
            (r.interval, r.deadline, r.depth)
        };
        let (Some(interval), Some(mut due)) = (interval, self.next_due) else {
            return;
        };
        let now = cx.now();
        while due <= now && due < deadline {
            if self.in_flight.len() < depth && !self.stopping {
                self.send(cx, due);
            } else {
                self.backlog.push_back(due);
            }
            due += interval;
        }
        self.next_due = Some(due);
        if due < deadline {
            cx.set_timer_at(TICK, due);
        }
    }

    fn answers(&mut self, cx: &mut Context<'_>, a: Answers) {
        let (done, unsuccessful) = (a.complete, a.unsuccessful);
        let now = cx.now();
        {
            let mut run = self.run.borrow_mut();
            run.errors.bad_response += unsuccessful as u64;
            if now <= run.deadline {
                run.bytes_in_window += a.bytes;
            }
            for _ in 0..done {
                let Some(at) = self.in_flight.pop_front() else {
                    // More answers than questions: the server made one up.
                    run.errors.bad_response += 1;
                    break;
                };
                run.record(at, now);
            }
            if let Some(oldest) = self.in_flight.front() {
                cx.set_timer_at(TIMEOUT, *oldest + run.timeout);
            }
        }
        if self.shape == Shape::KeepAlive {
            self.fill(cx);
        }
        if self.stopping && self.in_flight.is_empty() {
            cx.close();
        }
    }

    fn broke(&mut self, cx: &mut Context<'_>, e: BadResponse) {
        log::debug!("{SERVICE}{}: {e}", cx.token());
        let mut run = self.run.borrow_mut();
        match e {
            BadResponse::CutShort => run.errors.reset += 1,
            _ => run.errors.bad_response += 1,
        }
        self.in_flight.clear();
        drop(run);
        cx.abort();
    }
}

impl Handler for Conn {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let (deadline, scheduled) = {
            let run = self.run.borrow();
            (run.deadline, run.schedule.is_some())
        };
        // Past the deadline, a closed loop's late connect is not counted; an open loop's
        // request fell due before the deadline, so it goes on and is counted.
        if cx.now() >= deadline && !scheduled {
            self.stopping = true;
            cx.close();
            return;
        }
        cx.set_timer_at(DEADLINE, deadline);
        // A protocol whose client speaks first says so before any request.
        self.transmit(cx);
        match self.shape {
            Shape::ConnectionPerRequest => {
                let started = self.started;
                self.send(cx, started);
            }
            Shape::KeepAlive if self.next_due.is_some() => self.schedule(cx),
            Shape::KeepAlive => self.fill(cx),
        }
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        match self.driver.handle_bytes(bytes) {
            Ok(a) => {
                // What these bytes made due (SMTP: EHLO, a message after 354) goes before
                // any request the answers let out.
                self.transmit(cx);
                if a.closing {
                    // The server closes after this one (netloop does after 1000 requests
                    // on a connection): stop sending here and reconnect in `closed`.
                    self.stopping = true;
                    self.server_closing = true;
                }
                self.answers(cx, a);
            }
            Err(e) => self.broke(cx, e),
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        match self.driver.handle_eof() {
            Ok(a) => self.answers(cx, a),
            Err(e) => return self.broke(cx, e),
        }
        if self.server_closing {
            // Retried on the replacement: in open loop with their original times (they
            // go first), in closed loop the replacement simply fills its pipeline.
            if self.next_due.is_some() {
                while let Some(at) = self.in_flight.pop_back() {
                    self.backlog.push_front(at);
                }
            }
            self.in_flight.clear();
        } else if !self.in_flight.is_empty() {
            self.run.borrow_mut().errors.reset += 1;
            self.in_flight.clear();
        }
        cx.close();
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        match id {
            DEADLINE => {
                self.stopping = true;
                self.run.borrow_mut().unsent += self.backlog.len() as u64;
                self.backlog.clear();
                cx.cancel_timer(TICK);
                if self.in_flight.is_empty() {
                    cx.close();
                }
            }
            TICK => self.schedule(cx),
            TIMEOUT => {
                let timeout = self.run.borrow().timeout;
                match self.in_flight.front() {
                    Some(&oldest) if cx.now() >= oldest + timeout => {
                        self.run.borrow_mut().errors.timeout += self.in_flight.len() as u64;
                        self.in_flight.clear();
                        cx.abort();
                    }
                    Some(&oldest) => cx.set_timer_at(TIMEOUT, oldest + timeout),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        // The hard stop: whatever is still unanswered timed out.
        self.run.borrow_mut().errors.timeout += self.in_flight.len() as u64;
        self.in_flight.clear();
        cx.abort();
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        let mut run = self.run.borrow_mut();
        run.live = run.live.saturating_sub(1);
        match reason {
            CloseReason::ConnectFailed(e) => {
                log::debug!("{SERVICE}: connect to {}: {e}", run.target);
                run.errors.connect += 1;
            }
            // Requests a reset took with it are counted in this one error. (A server that
            // announced its close may reset what we pipelined after that: no error.)
            CloseReason::Reset | CloseReason::Error(_) if !self.server_closing => {
                run.errors.reset += 1
            }
            _ => {}
        }
        // Before the deadline, a connection that ended for any reason but a failed connect
        // (not retried: see `Errors::connect`) or the hard stop is replaced: after every
        // request for a connection-per-request driver, after a server's close, reset or
        // timeout for keep-alive. The replacement keeps this one's open-loop schedule and
        // backlog, so requests that fell due meanwhile go out with their original times.
        let now = cx.now();
        let replace = now < run.deadline
            && run.schedule.is_none()
            && !matches!(
                reason,
                CloseReason::ConnectFailed(_) | CloseReason::Shutdown
            );
        if replace {
            let target = run.target;
            drop(run);
            let mut conn = Conn::new(self.run.clone(), now, self.next_due);
            conn.backlog = std::mem::take(&mut self.backlog);
            let opened = cx.connect(SERVICE, target, Box::new(conn));
            run = self.run.borrow_mut();
            run.count_connect(opened);
        } else {
            run.unsent += self.backlog.len() as u64;
        }
        // Open loop, connection per request: this one's place goes to the oldest request
        // that fell due while all were busy.
        if let Some(due) = run.schedule.as_mut().and_then(|s| s.backlog.pop_front()) {
            run.launch(&self.run, cx, due);
        }
        let schedule_done = run.schedule.as_ref().is_none_or(|s| s.done);
        if run.live == 0 && schedule_done {
            // The last one out: the clock has nothing left to guard.
            if let Some(clock) = run.clock.take() {
                cx.close_other(clock);
            }
        }
    }
}

/// The clock's handler: a UDP socket that receives nothing and stops the run if the
/// connections have not all finished by the hard stop.
struct Clock {
    run: Shared,
    hard_stop: Instant,
}

impl Handler for Clock {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut run = self.run.borrow_mut();
        run.clock = Some(cx.token());
        cx.set_timer_at(HARD_STOP, self.hard_stop);
        if let Some(s) = &run.schedule {
            cx.set_timer_at(TICK, s.next_due);
            cx.set_timer_at(DEADLINE, run.deadline);
        }
    }

    /// Nobody should send here; whatever arrives is ignored.
    fn datagram(&mut self, _cx: &mut Context<'_>, _bytes: &[u8], _from: SocketAddr) {}

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let mut run = self.run.borrow_mut();
        match id {
            TICK => {
                if let Some(next) = run.schedule(&self.run, cx, cx.now()) {
                    cx.set_timer_at(TICK, next);
                }
            }
            DEADLINE => {
                // Whatever fell due before the deadline goes out (or into the backlog),
                // then the backlog is what the server was too slow to let us send.
                run.schedule(&self.run, cx, cx.now());
                let unsent = match run.schedule.as_mut() {
                    Some(s) => {
                        s.done = true;
                        std::mem::take(&mut s.backlog).len() as u64
                    }
                    None => 0,
                };
                run.unsent += unsent;
                cx.cancel_timer(TICK);
                if run.live == 0 {
                    run.clock = None;
                    cx.close();
                }
            }
            HARD_STOP => {
                log::debug!("{SERVICE}: hard stop; cutting off what is left");
                cx.shutdown_reactor();
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }
}

/// The state a run's connections share, for a run that starts at `start`.
fn shared(plan: &Plan, start: Instant, factory: DriverFactory) -> Shared {
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

/// Runs `plan` with a fresh driver from `factory` per connection; see [`super::run`].
pub(super) fn run(plan: &Plan, factory: DriverFactory) -> Result<Report, LoadError> {
    plan.check()?;
    let mut reactor = Reactor::with_config(Config::default())?;
    let start = Instant::now();
    let deadline = start + plan.duration;
    let run = shared(plan, start, factory);
    // The clock lives on loopback whatever the target: it only holds a timer.
    let loopback: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, 0).into();
    let hard_stop = deadline + plan.timeout + HARD_STOP_SLACK;
    reactor.bind_udp(
        SERVICE,
        loopback,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::{HttpGet, SmtpSend, TimeConnect};
    use crate::reactor::testing::TestBed;

    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    fn requests_in(bytes: &[u8]) -> usize {
        bytes.windows(4).filter(|w| w == b"GET ").count()
    }

    #[test]
    fn open_loop_charges_a_stall_to_every_request_due_during_it() {
        let mut bed = TestBed::new();
        let t0 = bed.now();
        let target = SocketAddr::from(([127, 0, 0, 1], 9));
        // One connection, one request in flight, 100 requests/s: one due every 10 ms.
        let plan = Plan::open_loop(target, 1, 1, 100.0, Duration::from_secs(1));
        let run = shared(&plan, t0, Box::new(|| Box::new(HttpGet::new("t", "/"))));
        let conn = bed.open(Box::new(Conn::new(run.clone(), t0, Some(t0))));
        assert_eq!(
            requests_in(&bed.take_output(conn)),
            1,
            "the first is due at once"
        );

        // The server stalls for 100 ms. Ten more requests fall due; with one in flight
        // they wait in the backlog, each keeping the time it was due.
        bed.advance(Duration::from_millis(100));
        assert_eq!(requests_in(&bed.take_output(conn)), 0);

        // Then it answers everything at once (each answer lets the next request out).
        for _ in 0..11 {
            bed.data(conn, RESPONSE);
        }
        let r = run.borrow();
        assert_eq!(r.requests, 11);
        // The first waited the whole stall; the one due as the stall ended, nothing; the
        // median request about half of it. A closed loop would have recorded one request
        // of 100 ms and none of the others.
        let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
        assert!((99.0..=101.0).contains(&ms(1.0)), "max {}", ms(1.0));
        assert!(ms(0.0) < 1.0, "min {}", ms(0.0));
        assert!((40.0..=60.0).contains(&ms(0.5)), "p50 {}", ms(0.5));
        assert_eq!(r.errors.total(), 0);
    }

    #[test]
    fn open_loop_connections_past_the_limit_wait_with_their_due_times() {
        let mut bed = TestBed::new();
        let t0 = bed.now();
        // Connects the test bed starts but never completes: every connection stays open.
        let target = SocketAddr::from(([127, 0, 0, 1], 9));
        // 100 connections/s, at most 2 open at once, for 1 s: one due every 10 ms.
        let plan = Plan::open_loop(target, 2, 1, 100.0, Duration::from_secs(1));
        let run = shared(&plan, t0, Box::new(|| Box::new(TimeConnect::default())));
        bed.open(Box::new(Clock {
            run: run.clone(),
            hard_stop: t0 + Duration::from_secs(10),
        }));
        // Due at 0, 10, ..., 90 ms: the first two connect, the other eight wait, each
        // keeping the time it fell due (its latency will start there).
        bed.advance(Duration::from_millis(95));
        {
            let r = run.borrow();
            assert_eq!((r.connections, r.live), (2, 2));
            let s = r
                .schedule
                .as_ref()
                .expect("a connection-per-request schedule");
            assert_eq!(s.backlog.len(), 8);
            assert_eq!(s.backlog.front(), Some(&(t0 + Duration::from_millis(20))));
            assert_eq!(s.backlog.back(), Some(&(t0 + Duration::from_millis(90))));
        }
        // Past the deadline: all 100 fell due, 2 went out, the rest were never sent.
        bed.advance(Duration::from_secs(1));
        let r = run.borrow();
        assert_eq!((r.connections, r.unsent), (2, 98));
    }

    #[test]
    fn what_a_reply_makes_due_is_sent_and_a_transaction_is_one_request() {
        let mut bed = TestBed::new();
        let t0 = bed.now();
        let target = SocketAddr::from(([127, 0, 0, 1], 9));
        let plan = Plan::closed_loop(target, 1, 1, Duration::from_secs(1));
        let factory = || Box::new(SmtpSend::with_message("lg", "a@b", "c@d", b"hi")) as _;
        let run = shared(&plan, t0, Box::new(factory));
        let conn = bed.open(Box::new(Conn::new(run.clone(), t0, None)));
        assert_eq!(bed.take_output(conn), b"", "the server speaks first");
        // Each reply's answer comes from poll_transmit: no request asked for it.
        bed.data(conn, b"220 mx\r\n");
        assert_eq!(bed.take_output(conn), b"EHLO lg\r\n");
        bed.data(conn, b"250-mx\r\n250 PIPELINING\r\n");
        let envelope = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
        assert_eq!(bed.take_output(conn), envelope);
        bed.data(conn, b"250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(bed.take_output(conn), b"hi\r\n.\r\n");
        // The reply to the dot completes the request, and the next transaction begins.
        bed.data(conn, b"250 queued\r\n");
        assert_eq!(bed.take_output(conn), envelope);
        let r = run.borrow();
        assert_eq!((r.requests, r.errors.total(), r.unit), (1, 0, "messages"));
    }

    #[test]
    fn a_timed_out_request_is_counted_and_its_connection_dropped() {
        let mut bed = TestBed::new();
        let t0 = bed.now();
        let target = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut plan = Plan::closed_loop(target, 1, 4, Duration::from_secs(1));
        plan.timeout = Duration::from_millis(200);
        let run = shared(&plan, t0, Box::new(|| Box::new(HttpGet::new("t", "/"))));
        let conn = bed.open(Box::new(Conn::new(run.clone(), t0, None)));
        run.borrow_mut().live = 1;
        assert_eq!(
            requests_in(&bed.take_output(conn)),
            4,
            "the pipeline is filled"
        );
        bed.data(conn, RESPONSE);
        bed.advance(Duration::from_millis(300));
        assert!(bed.is_closed(conn));
        let r = run.borrow();
        assert_eq!(
            (r.requests, r.errors.timeout),
            (1, 4),
            "three in flight and the refill"
        );
        // Before the deadline a dropped connection is replaced (here: a connect that the
        // test bed never completes).
        assert_eq!((r.connections, r.live), (1, 1));
    }
}
