//! Handlers tested without sockets: a [`TestBed`] runs a handler's callbacks against a
//! detached connection and records what it wrote, whether it closed, and its timers, on a
//! virtual clock.
//!
//! ```
//! use netloop::reactor::testing::TestBed;
//! use netloop::reactor::{Context, Handler};
//!
//! /// Answers every chunk with its length.
//! struct Count;
//! impl Handler for Count {
//!     fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
//!         cx.write(format!("{}\n", bytes.len()).as_bytes());
//!     }
//! }
//!
//! let mut bed = TestBed::new();
//! let conn = bed.open(Box::new(Count));
//! bed.data(conn, b"hello");
//! assert_eq!(bed.take_output(conn), b"5\n");
//! bed.eof(conn); // the default `eof` closes
//! assert!(bed.is_closed(conn));
//! ```
//!
//! The same [`Context`](super::Context) the reactor passes is used, so what passes here
//! behaves the same over a socket; the end-to-end tests in `tests/` check the rest.

use super::core::Core;
use super::entry::Io;
use super::lifecycle::State;
use super::{Config, Handler, Token};
use std::time::{Duration, Instant};

/// A reactor core with no sockets and a clock that moves only when told.
pub struct TestBed {
    core: Core,
    /// Kept alive for the registry the core holds; nothing is ever registered.
    _poll: mio::Poll,
}

impl std::fmt::Debug for TestBed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBed")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl Default for TestBed {
    fn default() -> Self {
        TestBed::new()
    }
}

impl TestBed {
    /// An empty test bed at virtual time "now".
    pub fn new() -> TestBed {
        let poll = mio::Poll::new().expect("epoll_create");
        let registry = poll.registry().try_clone().expect("registry");
        let waker = mio::Waker::new(poll.registry(), super::token::WAKER).expect("waker");
        TestBed {
            core: Core::new(registry, std::sync::Arc::new(waker), Config::default()),
            _poll: poll,
        }
    }

    /// Adds a connection served by `handler` and runs its `opened`.
    pub fn open(&mut self, handler: Box<dyn Handler>) -> Token {
        let token = self
            .core
            .insert(
                "test".into(),
                Io::Detached,
                State::Open,
                None,
                Some(handler),
            )
            .expect("no I/O to fail");
        self.core.call(token, |h, cx| h.opened(cx));
        self.settle();
        token
    }

    /// Delivers `bytes` as if read from the peer.
    pub fn data(&mut self, token: Token, bytes: &[u8]) {
        if self.core.entries.get(token).is_some_and(|e| e.wants_read()) {
            self.core.call(token, |h, cx| h.data(cx, bytes));
            self.settle();
        }
    }

    /// Delivers the peer's EOF.
    pub fn eof(&mut self, token: Token) {
        if let Some(e) = self.core.entries.get_mut(token) {
            e.peer_eof = true;
            self.core.call(token, |h, cx| h.eof(cx));
            self.settle();
        }
    }

    /// Moves the virtual clock forward by `by`, firing every timer that falls due.
    pub fn advance(&mut self, by: Duration) {
        self.core.now += by;
        self.core.fire_timers();
        self.settle();
    }

    /// Waits up to `wait` (real time) for a helper thread's report, then delivers every
    /// report that has arrived to its handler's `notified`, as the reactor does when its
    /// waker fires. Returns how many were delivered.
    pub fn deliver_reports(&mut self, wait: Duration) -> usize {
        let mut events = mio::Events::with_capacity(4);
        // The waker's eventfd is registered with this poll: a report wakes it.
        let _ = self._poll.poll(&mut events, Some(wait));
        let n = self.core.inbox_len();
        self.core.deliver_reports();
        self.settle();
        n
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Takes output until a take brings no more: everything the peer would read now,
    /// including what `drained` refills as the queue empties (a streaming or fan-out
    /// handler's next chunks).
    pub fn read_all(&mut self, token: Token) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let got = self.take_output(token);
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    /// Takes everything written to `token` so far (as if the peer read it). As in the
    /// reactor, a queue that this empties brings a `drained` call, so a handler that
    /// streams queues its next chunk.
    pub fn take_output(&mut self, token: Token) -> Vec<u8> {
        let Some(e) = self.core.entries.get_mut(token) else {
            return Vec::new();
        };
        let out = e.out.pending().to_vec();
        let n = out.len();
        e.out.consume(n, &mut self.core.pool);
        if n > 0 {
            e.drain_requested = true;
        }
        self.core.mark_dirty(token);
        self.settle();
        out
    }

    /// The handler asked to close (output may still be waiting to be taken).
    pub fn is_closing(&self, token: Token) -> bool {
        self.core
            .entries
            .get(token)
            .is_none_or(|e| e.state != State::Open)
    }

    /// The connection is gone: closed and its output taken.
    pub fn is_closed(&self, token: Token) -> bool {
        self.core.entries.get(token).is_none()
    }

    fn settle(&mut self) {
        self.core.settle_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::{Context, TimerId};

    struct Delayed;
    impl Handler for Delayed {
        fn opened(&mut self, cx: &mut Context<'_>) {
            cx.set_timer(TimerId(9), Duration::from_secs(60));
        }
        fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
            cx.write(format!("timer {}", id.0).as_bytes());
            cx.close();
        }
    }

    /// Streams a shared source one byte per `drained`: a pull, not a push.
    struct Puller(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl Handler for Puller {
        fn drained(&mut self, cx: &mut Context<'_>) {
            let mut source = self.0.borrow_mut();
            if !source.is_empty() {
                let b = source.remove(0);
                cx.write(&[b]);
            }
        }
    }

    /// Pauses its reading on the first chunk and answers it with more than the high-water
    /// mark; resumes on its timer. Records every chunk it is handed.
    struct Pauser(std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>>);
    impl Handler for Pauser {
        fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
            let first = self.0.borrow().is_empty();
            self.0.borrow_mut().push(bytes.to_vec());
            if first {
                cx.pause_reading();
                cx.write(&vec![b'x'; Config::default().high_water + 1]);
                cx.set_timer(TimerId(1), Duration::from_secs(1));
            }
        }
        fn timer(&mut self, cx: &mut Context<'_>, _: TimerId) {
            cx.resume_reading();
        }
    }

    #[test]
    fn a_paused_handler_gets_no_data_until_it_resumes_whatever_backpressure_does() {
        let mut bed = TestBed::new();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let t = bed.open(Box::new(Pauser(seen.clone())));
        bed.data(t, b"one");
        // Backpressure pauses reading too (the answer is above the high-water mark) and
        // resumes it once the peer takes the answer: the handler's own pause stays.
        bed.read_all(t);
        bed.data(t, b"two");
        assert_eq!(
            *seen.borrow(),
            [b"one".to_vec()],
            "paused: nothing handed over"
        );
        bed.advance(Duration::from_secs(1));
        bed.data(t, b"three");
        assert_eq!(*seen.borrow(), [b"one".to_vec(), b"three".to_vec()]);
    }

    /// Tries to send a datagram from its connection (not a UDP socket) and writes how
    /// the reactor answered.
    struct SendsDatagram;
    impl Handler for SendsDatagram {
        fn data(&mut self, cx: &mut Context<'_>, _: &[u8]) {
            let to = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
            let answer = match cx.send_to(b"ping", to) {
                Ok(()) => "sent".to_string(),
                Err(e) => format!("{:?}: {e}", e.kind()),
            };
            cx.write(answer.as_bytes());
        }
    }

    #[test]
    fn send_to_on_an_entry_that_is_not_a_udp_socket_is_an_error() {
        let mut bed = TestBed::new();
        let t = bed.open(Box::new(SendsDatagram));
        bed.data(t, b"go");
        let answer = String::from_utf8(bed.take_output(t)).expect("utf-8");
        assert!(
            answer.starts_with("InvalidInput: send_to on test#")
                && answer.ends_with("a detached entry: only a UDP socket sends datagrams"),
            "{answer}"
        );
    }

    #[test]
    fn debug_shows_the_counts_and_the_connection() {
        let mut bed = TestBed::new();
        let t = bed.open(Box::new(Delayed));
        let shown = format!("{bed:?}");
        assert!(shown.contains("entries: 1, timers: 1"), "{shown}");
        struct ShowsContext(std::rc::Rc<std::cell::RefCell<String>>);
        impl Handler for ShowsContext {
            fn data(&mut self, cx: &mut Context<'_>, _: &[u8]) {
                *self.0.borrow_mut() = format!("{cx:?}");
            }
        }
        let seen = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
        let c = bed.open(Box::new(ShowsContext(seen.clone())));
        bed.data(c, b"x");
        assert!(
            seen.borrow()
                .starts_with(&format!("Context {{ me: {c:?}, service: \"test\"")),
            "{}",
            seen.borrow()
        );
        assert!(!bed.is_closed(t));
    }

    #[test]
    fn request_drained_calls_drained_on_an_empty_queue_and_taking_output_calls_it_again() {
        let mut bed = TestBed::new();
        let source = std::rc::Rc::new(std::cell::RefCell::new(b"ab".to_vec()));
        let t = bed.open(Box::new(Puller(source.clone())));
        assert!(bed.take_output(t).is_empty(), "nothing asked for yet");
        // Another connection pokes `t` (here: a handler on a second connection).
        struct Poke(Token);
        impl Handler for Poke {
            fn data(&mut self, cx: &mut Context<'_>, _: &[u8]) {
                cx.on(self.0).request_drained();
            }
        }
        let p = bed.open(Box::new(Poke(t)));
        bed.data(p, b"go");
        assert_eq!(bed.take_output(t), b"a");
        // The peer took "a": the queue emptied, so the handler was asked for more.
        assert_eq!(bed.take_output(t), b"b");
        assert_eq!(bed.take_output(t), b"");
        assert!(source.borrow().is_empty());
    }

    #[test]
    fn timers_run_on_the_virtual_clock_and_close_waits_for_the_output() {
        let mut bed = TestBed::new();
        let t = bed.open(Box::new(Delayed));
        bed.advance(Duration::from_secs(59));
        assert!(bed.take_output(t).is_empty());
        bed.advance(Duration::from_secs(1));
        assert!(bed.is_closing(t));
        assert!(!bed.is_closed(t), "output not taken yet");
        assert_eq!(bed.take_output(t), b"timer 9");
        assert!(bed.is_closed(t));
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;
    use crate::reactor::Context;

    /// Asks for its output buffer and writes nothing.
    struct Peek;
    impl Handler for Peek {
        fn data(&mut self, cx: &mut Context<'_>, _bytes: &[u8]) {
            let _ = cx.output();
        }
    }

    #[test]
    fn an_output_buffer_taken_but_not_written_goes_back_to_the_pool() {
        let mut bed = TestBed::new();
        let t = bed.open(Box::new(Peek));
        bed.data(t, b"x");
        let e = bed.core.entries.get(t).expect("open");
        assert!(e.out.is_empty());
        assert_eq!(e.out.capacity(), 0, "an idle connection holds no buffer");
    }
}

#[cfg(test)]
mod timer_tests {
    use super::*;
    use crate::reactor::{CloseReason, Context};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Writes a reply and closes at once; records why it went.
    struct Goodbye(Rc<RefCell<Option<String>>>);
    impl Handler for Goodbye {
        fn opened(&mut self, cx: &mut Context<'_>) {
            cx.write(b"bye");
            cx.close();
        }
        fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
            *self.0.borrow_mut() = Some(format!("{reason:?}"));
        }
    }

    #[test]
    fn a_peer_that_never_reads_is_dropped_at_the_flush_deadline_as_in_the_reactor() {
        let mut bed = TestBed::new();
        let why = Rc::new(RefCell::new(None));
        let t = bed.open(Box::new(Goodbye(why.clone())));
        // The test is the peer, and it does not take the output.
        bed.advance(Config::default().close_timeout - Duration::from_millis(1));
        assert!(!bed.is_closed(t), "still flushing");
        bed.advance(Duration::from_millis(1));
        assert!(bed.is_closed(t));
        assert_eq!(why.borrow().as_deref(), Some("FlushTimeout"));
    }
}
