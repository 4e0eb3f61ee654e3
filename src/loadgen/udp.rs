//! UDP echo load: one socket keeps a window of numbered datagrams in flight; every echo
//! ends one datagram's latency and sends the next.
//!
//! UDP may lose a datagram (or its echo) and nothing would say so: a sweep timer counts a
//! datagram unanswered after the timeout as lost (a [`timeout`](super::Errors::timeout))
//! and sends a fresh one in its place, so the window never drains by loss.

use super::LoadError;
use super::report::{Errors, LATENCY_MAX_US, Report, new_histogram};
use crate::reactor::{Context, Handler, Reactor, TimerId};
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const DEADLINE: TimerId = TimerId(1);
const SWEEP: TimerId = TimerId(2);

/// How often the sweep looks for lost datagrams. 100 ms: a loss is noticed within a tenth of
/// a second past its timeout, at the cost of ten timer wake-ups a second.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// Bytes that number a datagram (a big-endian u64 at the start of the payload).
const SEQ_BYTES: usize = 8;

/// What to send to a UDP echo server.
#[derive(Clone, Debug)]
pub struct UdpPlan {
    /// The echo server.
    pub target: SocketAddr,
    /// Datagrams in flight at once.
    pub window: usize,
    /// How long to send.
    pub duration: Duration,
    /// Bytes per datagram (at least 8: the sequence number). 64 by default: a small
    /// request, so the figure is per-packet cost, not bandwidth.
    pub payload: usize,
    /// How long before an unanswered datagram counts as lost. 1 s: on loopback an echo
    /// takes microseconds; anything this late was dropped.
    pub timeout: Duration,
}

impl UdpPlan {
    /// A plan with the default payload (64 B) and timeout (1 s).
    pub fn new(target: SocketAddr, window: usize, duration: Duration) -> UdpPlan {
        UdpPlan {
            target,
            window,
            duration,
            payload: 64,
            timeout: Duration::from_secs(1),
        }
    }
}

struct Echoes {
    plan: UdpPlan,
    deadline: Instant,
    next_seq: u64,
    /// Sequence number → when it was sent.
    in_flight: HashMap<u64, Instant>,
    datagram: Vec<u8>,
    stopping: bool,
    latency: Histogram<u64>,
    requests: u64,
    in_window: u64,
    errors: Errors,
}

impl Echoes {
    fn send(&mut self, cx: &mut Context<'_>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.datagram[..SEQ_BYTES].copy_from_slice(&seq.to_be_bytes());
        cx.send_to(&self.datagram, self.plan.target)
            .expect("the load is sent from its UDP socket's own callbacks");
        self.in_flight.insert(seq, Instant::now());
    }

    fn fill(&mut self, cx: &mut Context<'_>) {
        while !self.stopping && self.in_flight.len() < self.plan.window {
            self.send(cx);
        }
        if self.stopping && self.in_flight.is_empty() {
            cx.close();
        }
    }
}

struct UdpLoad(Rc<RefCell<Echoes>>);

impl Handler for UdpLoad {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut e = self.0.borrow_mut();
        cx.set_timer_at(DEADLINE, e.deadline);
        cx.set_timer(SWEEP, SWEEP_EVERY);
        e.fill(cx);
    }

    fn datagram(&mut self, cx: &mut Context<'_>, bytes: &[u8], from: SocketAddr) {
        let mut e = self.0.borrow_mut();
        if from != e.plan.target {
            return; // not our server: not an answer
        }
        let seq = bytes
            .get(..SEQ_BYTES)
            .and_then(|b| <[u8; SEQ_BYTES]>::try_from(b).ok())
            .map(u64::from_be_bytes);
        match seq.and_then(|s| e.in_flight.remove(&s)) {
            Some(sent) if bytes.len() == e.datagram.len() => {
                let us = cx.now().saturating_duration_since(sent).as_micros();
                let us = u64::try_from(us)
                    .unwrap_or(u64::MAX)
                    .clamp(1, LATENCY_MAX_US);
                let _ = e.latency.record(us); // clamped into range: cannot fail
                e.requests += 1;
                if cx.now() <= e.deadline {
                    e.in_window += 1;
                }
            }
            Some(_) => e.errors.bad_response += 1,
            // An echo of a datagram already counted lost (late), or of none we sent.
            None => return,
        }
        e.fill(cx);
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let mut e = self.0.borrow_mut();
        match id {
            DEADLINE => {
                e.stopping = true;
                e.fill(cx);
            }
            SWEEP => {
                let now = cx.now();
                let timeout = e.plan.timeout;
                let before = e.in_flight.len();
                e.in_flight.retain(|_, sent| now < *sent + timeout);
                e.errors.timeout += (before - e.in_flight.len()) as u64;
                e.fill(cx);
                cx.set_timer(SWEEP, SWEEP_EVERY);
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }
}

/// Runs `plan` against a UDP echo server on a fresh reactor and reports datagrams per
/// second (each echo is one request) and their round-trip latencies.
pub fn run_udp(plan: &UdpPlan) -> Result<Report, LoadError> {
    if plan.window == 0 {
        return Err(LoadError::Empty);
    }
    let mut reactor = Reactor::new()?;
    let start = Instant::now();
    let mut datagram = vec![0u8; plan.payload.max(SEQ_BYTES)];
    datagram[SEQ_BYTES..].fill(b'x');
    let echoes = Rc::new(RefCell::new(Echoes {
        plan: plan.clone(),
        deadline: start + plan.duration,
        next_seq: 0,
        in_flight: HashMap::with_capacity(plan.window),
        datagram,
        stopping: false,
        latency: new_histogram(),
        requests: 0,
        in_window: 0,
        errors: Errors::default(),
    }));
    // The same family as the target; loopback for a loopback target, so a test or bench
    // never opens a port on the network.
    let local: SocketAddr = match plan.target {
        SocketAddr::V4(t) if t.ip().is_loopback() => (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(t) if t.ip().is_loopback() => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    reactor.bind_udp("loadgen-udp", local, Box::new(UdpLoad(echoes.clone())))?;
    reactor.run()?;
    let elapsed = start.elapsed();
    let e = echoes.borrow();
    Ok(Report {
        requests: e.requests,
        in_window: e.in_window,
        window: plan.duration,
        elapsed,
        latency: e.latency.clone(),
        errors: e.errors,
        unsent: 0,
        connections: 1,
        unit: "requests",
        bytes_in_window: 0,
    })
}
