//! Chat load: N clients join one room, S of them send lines, every client counts the lines
//! that reach it. The figure is **deliveries per second** (one line arriving at one
//! client), and each delivery's latency runs from the line's send to its arrival at that
//! receiver.
//!
//! A delivery's latency needs the *sender's* clock at the *receiver*, so unlike a
//! [`Driver`](super::Driver) (one connection, its own requests and answers) the clients of
//! a chat run share one table: sender → its lines in flight (sequence number, send time,
//! receivers still to reach). One thread, so an `Rc<RefCell<_>>` is enough.
//!
//! # A run
//!
//! ```text
//!  connect all ─► each: send `load{i}`, wait for `*** load{i} joined`
//!                  │ the last one in (or the join timeout) pokes the clock
//!                  ▼
//!  clock START ─► the window opens: deadline = now + duration; senders start
//!                  │ closed loop: a sender sends its next line when its previous one
//!                  │   has come back to it (the room echoes to the sender by default)
//!                  │ open loop:   each sender sends on its own schedule (the rate / S)
//!                  │ SWEEP: a line older than the timeout stops waiting; the receivers
//!                  │   it did not reach count as timeouts
//!                  ▼
//!  clock DEADLINE ─► senders stop; once every line in flight reached everyone (or timed
//!                    out, or the hard stop), every connection and the clock close
//! ```
//!
//! The window opens only when everyone has joined, so every line is expected at every
//! client: deliveries = lines sent × clients (with the default echo; against a
//! `--no-echo` room the closed loop would wait for echoes that never come, so it is not
//! supported). A line's text is its sequence number, a space, and `x` up to the size.

use super::LoadError;
use super::report::{Errors, LATENCY_MAX_US, Report, new_histogram};
use crate::reactor::{CloseReason, Context, Handler, Reactor, TimerId, Token};
use hdrhistogram::Histogram;
use netloop_protocols::chat::{Frame, LineFramer};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Clock: everyone joined (or the join timeout passed); open the window. Client: start
/// sending.
const START: TimerId = TimerId(1);
/// Clock: the window is over.
const DEADLINE: TimerId = TimerId(2);
/// Clock: look for lines that have waited too long.
const SWEEP: TimerId = TimerId(3);
/// Clock: cut off what is left.
const HARD_STOP: TimerId = TimerId(4);
/// Client (open loop): the next line is due. Also sent by the sweep to a closed-loop
/// sender whose own line timed out, so it goes on.
const SEND: TimerId = TimerId(5);

/// How often the sweep runs: a lost delivery is noticed within a tenth of a second past
/// its timeout (the UDP driver's choice, for the same reason).
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// Past deadline + timeout, one more second for the closes to finish (as the stream
/// engine's hard stop).
const HARD_STOP_SLACK: Duration = Duration::from_secs(1);

const SERVICE: &str = "loadgen-chat";

/// What to run against a chat server.
#[derive(Clone, Debug)]
pub struct ChatPlan {
    /// The chat server (line mode).
    pub target: SocketAddr,
    /// Clients in the room, nicknamed `load0`, `load1`, ...
    pub clients: usize,
    /// Of those, how many send (the first `senders`).
    pub senders: usize,
    /// Bytes of text per line (at least the sequence number's digits and a space).
    pub size: usize,
    /// How long the window lasts, from the moment everyone has joined.
    pub duration: Duration,
    /// Open loop: lines per second across all senders. `None`: closed loop.
    pub rate: Option<f64>,
    /// How long a line may take to reach every client, and how long joining may take.
    pub timeout: Duration,
}

impl ChatPlan {
    /// Closed loop with the default timeout ([`DEFAULT_TIMEOUT`](super::DEFAULT_TIMEOUT)).
    pub fn new(
        target: SocketAddr,
        clients: usize,
        senders: usize,
        size: usize,
        duration: Duration,
    ) -> ChatPlan {
        ChatPlan {
            target,
            clients,
            senders,
            size,
            duration,
            rate: None,
            timeout: super::DEFAULT_TIMEOUT,
        }
    }
}

/// One sender's lines in flight: `lines[k]` is sequence number `first + k`.
#[derive(Default)]
struct Outbox {
    first: u64,
    /// Send time and receivers not yet reached.
    lines: VecDeque<(Instant, usize)>,
    /// Closed loop: the line this sender waits to see come back.
    awaiting: Option<u64>,
}

impl Outbox {
    fn next_seq(&self) -> u64 {
        self.first + self.lines.len() as u64
    }

    /// Forgets the fully delivered lines at the front.
    fn trim(&mut self) {
        while self.lines.front().is_some_and(|&(_, left)| left == 0) {
            self.lines.pop_front();
            self.first += 1;
        }
    }
}

struct Room {
    plan: ChatPlan,
    /// Client `i`'s token, once connected.
    tokens: Vec<Option<Token>>,
    clock: Option<Token>,
    /// Clients in the room now (each line is expected at this many).
    receivers: usize,
    /// Clients that joined, or will never join (failed, timed out).
    settled: usize,
    started: bool,
    /// The run is over: a connection that opens now closes at once.
    finished: bool,
    deadline: Option<Instant>,
    stopping: bool,
    outboxes: Vec<Outbox>,
    /// Deliveries still expected, over all lines in flight.
    outstanding: usize,
    /// Open loop: one sender's interval.
    interval: Option<Duration>,
    text: Vec<u8>,
    latency: Histogram<u64>,
    deliveries: u64,
    in_window: u64,
    errors: Errors,
}

type Shared = Rc<RefCell<Room>>;

impl Room {
    fn all_settled(&self) -> bool {
        self.settled >= self.plan.clients
    }

    /// Closes every connection and the clock: the run is over.
    fn finish(&mut self, cx: &mut Context<'_>) {
        self.finished = true;
        let me = cx.token();
        for t in self.tokens.iter_mut().filter_map(Option::take) {
            if t == me {
                cx.close();
            } else {
                cx.on(t).close();
            }
        }
        if let Some(clock) = self.clock.take() {
            if clock == me {
                cx.close();
            } else {
                cx.on(clock).close();
            }
        }
    }

    /// Stopping and nothing left in flight: done.
    fn maybe_finish(&mut self, cx: &mut Context<'_>) {
        if self.stopping && self.outstanding == 0 {
            self.finish(cx);
        }
    }

    /// Sender `s` sends its next line on connection `cx`.
    fn send(&mut self, cx: &mut Context<'_>, s: usize) {
        if self.stopping || self.receivers == 0 {
            return;
        }
        let receivers = self.receivers;
        let Some(out) = cx.output() else { return };
        let Some(outbox) = self.outboxes.get_mut(s) else {
            return;
        };
        let seq = outbox.next_seq();
        let digits = seq.to_string();
        out.extend_from_slice(digits.as_bytes());
        out.push(b' ');
        let pad = self.plan.size.saturating_sub(digits.len() + 1);
        out.extend_from_slice(&self.text[..pad.min(self.text.len())]);
        out.push(b'\n');
        outbox.lines.push_back((Instant::now(), receivers));
        if self.interval.is_none() {
            outbox.awaiting = Some(seq);
        }
        self.outstanding += receivers;
    }

    /// A delivery of sender `s`'s line `seq`, received at `now`. Returns whether it was
    /// one in flight.
    fn deliver(&mut self, s: usize, seq: u64, now: Instant) -> bool {
        let Some(outbox) = self.outboxes.get_mut(s) else {
            return false;
        };
        let Some(k) = seq.checked_sub(outbox.first) else {
            return false; // timed out already: counted then
        };
        let Some((sent, left)) = usize::try_from(k)
            .ok()
            .and_then(|k| outbox.lines.get_mut(k))
        else {
            return false;
        };
        if *left == 0 {
            return false; // more copies than receivers
        }
        *left -= 1;
        let us = now.saturating_duration_since(*sent).as_micros();
        let us = u64::try_from(us)
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        let _ = self.latency.record(us); // clamped into range: cannot fail
        outbox.trim();
        self.outstanding = self.outstanding.saturating_sub(1);
        self.deliveries += 1;
        if self.deadline.is_some_and(|d| now <= d) {
            self.in_window += 1;
        }
        true
    }

    /// Drops lines older than the timeout; their missing deliveries are timeouts. Returns
    /// the closed-loop senders whose awaited line was among them.
    fn sweep(&mut self, now: Instant) -> Vec<usize> {
        let timeout = self.plan.timeout;
        let mut stuck = Vec::new();
        for (s, outbox) in self.outboxes.iter_mut().enumerate() {
            while let Some(&(sent, left)) = outbox.lines.front() {
                if now < sent + timeout && left > 0 {
                    break;
                }
                self.errors.timeout += left as u64;
                self.outstanding = self.outstanding.saturating_sub(left);
                if outbox.awaiting == Some(outbox.first) {
                    outbox.awaiting = None;
                    stuck.push(s);
                }
                outbox.lines.pop_front();
                outbox.first += 1;
            }
        }
        stuck
    }
}

/// `<load{s}> {seq} xxx` → `(s, seq)`; `None` for any other line.
fn parse_delivery(line: &str) -> Option<(usize, u64)> {
    let rest = line.strip_prefix("<load")?;
    let (sender, text) = rest.split_once("> ")?;
    let seq = text.split(' ').next()?;
    Some((sender.parse().ok()?, seq.parse().ok()?))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nickname sent; waiting for our own `joined` notice.
    Joining,
    Joined,
}

/// One client of the room.
struct Client {
    room: Shared,
    index: usize,
    joined_line: String,
    framer: LineFramer,
    phase: Phase,
    /// When this sender's next line falls due, in an open loop: each deadline is the last
    /// one plus the interval, not "now" plus the interval, so a tick that fires late does
    /// not push every later line back (the rate would sag under load). A sender behind its
    /// schedule sends on every tick until it has caught up.
    next_send: Option<Instant>,
}

impl Client {
    fn is_sender(&self) -> bool {
        self.index < self.room.borrow().plan.senders
    }

    fn line(&mut self, cx: &mut Context<'_>, line: &str) {
        let mut room = self.room.borrow_mut();
        match self.phase {
            Phase::Joining if line == self.joined_line => {
                self.phase = Phase::Joined;
                room.receivers += 1;
                room.settled += 1;
                if room.all_settled()
                    && let Some(clock) = room.clock
                {
                    cx.on(clock).set_timer(START, Duration::ZERO);
                }
            }
            Phase::Joining if line.starts_with("!!!") => {
                // Refused (the nickname is taken: another run in the same room?).
                log::debug!("{SERVICE}{}: {line}", cx.token());
                room.errors.bad_response += 1;
                drop(room);
                cx.abort();
            }
            Phase::Joining => {}
            Phase::Joined => {
                let Some((s, seq)) = parse_delivery(line) else {
                    return; // a notice, or someone else's message
                };
                let now = cx.now();
                if room.deliver(s, seq, now) && s == self.index {
                    let outbox = &mut room.outboxes[s];
                    if outbox.awaiting == Some(seq) {
                        outbox.awaiting = None;
                        room.send(cx, s);
                    }
                }
                room.maybe_finish(cx);
            }
        }
    }
}

impl Handler for Client {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut room = self.room.borrow_mut();
        if room.finished {
            // A connect that took longer than the whole run.
            cx.close();
            return;
        }
        room.tokens[self.index] = Some(cx.token());
        drop(room);
        cx.write(format!("load{}\n", self.index).as_bytes());
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.framer.handle_bytes(bytes);
        while let Some(frame) = self.framer.poll_event() {
            match frame {
                Frame::Line(line) => self.line(cx, &line),
                Frame::TooLong => self.room.borrow_mut().errors.bad_response += 1,
            }
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        if id != SEND || !self.is_sender() {
            return;
        }
        let mut room = self.room.borrow_mut();
        room.send(cx, self.index);
        if let Some(interval) = room.interval
            && !room.stopping
        {
            let due = self.next_send.unwrap_or_else(|| cx.now()) + interval;
            self.next_send = Some(due);
            cx.set_timer_at(SEND, due);
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.abort();
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        let mut room = self.room.borrow_mut();
        let ours = room.tokens[self.index].take().is_some();
        if let CloseReason::ConnectFailed(e) = reason {
            log::debug!("{SERVICE}: connect to {}: {e}", room.plan.target);
            room.errors.connect += 1;
        } else if ours {
            // Closed by the server (or by a reset), not by the run's end.
            room.errors.reset += 1;
        }
        match self.phase {
            Phase::Joined => room.receivers = room.receivers.saturating_sub(1),
            Phase::Joining if !room.started => {
                room.settled += 1;
                if room.all_settled()
                    && let Some(clock) = room.clock
                {
                    cx.on(clock).set_timer(START, Duration::ZERO);
                }
            }
            Phase::Joining => {}
        }
        if room.tokens.iter().all(Option::is_none) && room.started {
            room.finish(cx);
        }
    }
}

/// Holds the run's timers: a task (the reactor's timers belong to entries; see the
/// stream engine's clock).
struct Clock {
    room: Shared,
}

impl Clock {
    fn start(&mut self, cx: &mut Context<'_>) {
        let mut room = self.room.borrow_mut();
        if room.started {
            return;
        }
        room.started = true;
        let now = cx.now();
        let deadline = now + room.plan.duration;
        room.deadline = Some(deadline);
        cx.set_timer_at(DEADLINE, deadline);
        cx.set_timer(SWEEP, SWEEP_EVERY);
        cx.set_timer_at(HARD_STOP, deadline + room.plan.timeout + HARD_STOP_SLACK);
        if room.receivers == 0 {
            log::debug!("{SERVICE}: nobody joined");
            room.finish(cx);
            return;
        }
        let senders = room.plan.senders;
        let interval = room.interval;
        for s in 0..senders {
            if let Some(Some(t)) = room.tokens.get(s) {
                // Open loop: sender s starts s/S of an interval in, so the senders'
                // schedules interleave into one even stream.
                let after = interval
                    .map(|iv| iv.mul_f64(s as f64 / senders as f64))
                    .unwrap_or_default();
                cx.on(*t).set_timer(SEND, after);
            }
        }
    }
}

impl Handler for Clock {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut room = self.room.borrow_mut();
        room.clock = Some(cx.token());
        // Joining may take at most the timeout; then the window opens with whoever is in.
        cx.set_timer(START, room.plan.timeout);
        if room.all_settled() {
            cx.set_timer(START, Duration::ZERO);
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        match id {
            START => {
                {
                    // Whoever has not joined by now will not take part: a timeout each.
                    let mut room = self.room.borrow_mut();
                    if !room.all_settled() {
                        let missing = room.plan.clients - room.settled;
                        room.errors.timeout += missing as u64;
                        room.settled = room.plan.clients;
                    }
                }
                self.start(cx);
            }
            DEADLINE => {
                let mut room = self.room.borrow_mut();
                room.stopping = true;
                room.maybe_finish(cx);
            }
            SWEEP => {
                let mut room = self.room.borrow_mut();
                let stuck = room.sweep(cx.now());
                for s in stuck {
                    if let Some(Some(t)) = room.tokens.get(s) {
                        cx.on(*t).set_timer(SEND, Duration::ZERO);
                    }
                }
                room.maybe_finish(cx);
                cx.set_timer(SWEEP, SWEEP_EVERY);
            }
            HARD_STOP => {
                log::debug!("{SERVICE}: hard stop; cutting off what is left");
                let mut room = self.room.borrow_mut();
                let left = room.outstanding as u64;
                room.errors.timeout += left;
                room.outstanding = 0;
                room.finish(cx);
                // Connects still pending have no token to close: the reactor's shutdown
                // reaches them (their `shutdown` aborts).
                cx.shutdown_reactor();
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }
}

/// Runs `plan` against a line-mode chat server on a fresh reactor and reports deliveries
/// per second and each delivery's latency.
///
/// Blocks for the joins, `plan.duration`, and the last lines' deliveries.
pub fn run_chat(plan: &ChatPlan) -> Result<Report, LoadError> {
    if plan.clients == 0 || plan.senders == 0 || plan.senders > plan.clients {
        return Err(LoadError::Empty);
    }
    if plan.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(LoadError::BadRate);
    }
    let mut reactor = Reactor::new()?;
    let started = Instant::now();
    let room = Rc::new(RefCell::new(Room {
        plan: plan.clone(),
        tokens: vec![None; plan.clients],
        clock: None,
        receivers: 0,
        settled: 0,
        started: false,
        finished: false,
        deadline: None,
        stopping: false,
        outboxes: (0..plan.senders).map(|_| Outbox::default()).collect(),
        outstanding: 0,
        interval: plan
            .rate
            .map(|rate| Duration::from_secs_f64(plan.senders as f64 / rate)),
        text: vec![b'x'; plan.size],
        latency: new_histogram(),
        deliveries: 0,
        in_window: 0,
        errors: Errors::default(),
    }));
    let mut connections = 0;
    for index in 0..plan.clients {
        let client = Client {
            room: room.clone(),
            index,
            joined_line: format!("*** load{index} joined"),
            framer: LineFramer::new(),
            phase: Phase::Joining,
            next_send: None,
        };
        match reactor.connect(SERVICE, plan.target, Box::new(client)) {
            Ok(_) => connections += 1,
            Err(e) => {
                log::debug!("{SERVICE}: connect to {}: {e}", plan.target);
                let mut r = room.borrow_mut();
                r.errors.connect += 1;
                r.settled += 1;
            }
        }
    }
    reactor.spawn(SERVICE, Box::new(Clock { room: room.clone() }))?;
    reactor.run()?;
    let elapsed = started.elapsed();
    let r = room.borrow();
    Ok(Report {
        requests: r.deliveries,
        in_window: r.in_window,
        window: plan.duration,
        elapsed,
        latency: r.latency.clone(),
        errors: r.errors,
        unsent: 0,
        connections,
        unit: "deliveries",
        bytes_in_window: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_delivery;

    #[test]
    fn a_delivery_names_its_sender_and_sequence_number() {
        assert_eq!(parse_delivery("<load3> 17 xxxx"), Some((3, 17)));
        assert_eq!(parse_delivery("<load0> 0"), Some((0, 0)));
        assert_eq!(parse_delivery("*** load3 joined"), None);
        assert_eq!(parse_delivery("<alice> 17 xx"), None);
        assert_eq!(parse_delivery("<load3> hello"), None);
    }
}
