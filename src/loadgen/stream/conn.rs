//! One load connection ([`Conn`]): the life drawn in the [stream engine's docs](super).
//! It fills its pipeline (closed loop) or sends on its own schedule (open loop), times
//! out its oldest request, records each answer into the shared [`Run`](super::state::Run),
//! and when it closes opens its replacement or, the last one out, closes the clock.

use super::state::Shared;
use super::{DEADLINE, SERVICE, TICK, TIMEOUT};
use crate::loadgen::driver::{Answers, BadResponse, Driver, Shape};
use crate::reactor::{CloseReason, Context, Handler, TimerId};
use std::collections::VecDeque;
use std::time::Instant;

/// One load connection.
pub(super) struct Conn {
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
    pub(super) fn new(run: Shared, started: Instant, next_due: Option<Instant>) -> Conn {
        let driver = (run.borrow().factory)();
        Conn::with_driver(run, driver, started, next_due)
    }

    pub(super) fn with_driver(
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
                cx.on(clock).close();
            }
        }
    }
}
