//! Fan-out: one message, appended to every member's output queue, with a cap on how far
//! behind a member may fall.
//!
//! # Why copy
//!
//! Each member's output is its own contiguous `Vec`, so a message is copied once per member
//! (a 72-byte line to 1,000 members is 72 KB of `memcpy`, a few microseconds). The other
//! design keeps ONE shared backlog and gives each member an offset into it, so memory does
//! not grow with members x backlog; but then a member's pending output is a list of small
//! pieces, and writing 64-byte pieces as separate iovecs costs far more kernel time than one
//! contiguous buffer (see DESIGN.md, "Every byte has an owner"). Copying also lets the
//! reactor's one `write(2)` per connection per tick carry every message that arrived in that
//! tick. The price is memory, which the cap below bounds.
//!
//! # Why a cap
//!
//! The reactor's backpressure pauses *reading* from a connection whose queue is long; it
//! cannot pause the *other* connections whose messages fill that queue. A member that stops
//! reading would otherwise collect every message of the room forever. So before appending,
//! [`Fanout::broadcast`] checks the member's queue: past [`MAX_UNREAD`] the member is
//! dropped from the fan-out and returned to the caller, who says why and closes it. This is
//! what IRC servers call a "SendQ exceeded" disconnect.

use crate::reactor::{Context, Token};

/// Bytes a member may have queued and unread before it is dropped as too slow.
///
/// 1 MiB is four times the reactor's per-tick read budget (256 KiB, `Config::read_budget`),
/// so one sender's busiest tick cannot by itself push a reader over; at the bench's 72-byte
/// lines it is 14,000 messages behind, far past anything a reader that is merely busy needs.
/// The kernel's send buffer (up to 4 MiB on Linux) fills before this queue grows at all.
/// Worst case memory is members x 1 MiB; the cap exists so that is a bound, not a leak.
pub const MAX_UNREAD: usize = 1024 * 1024;

/// The members of one room, in no particular order, and the cap on their queues.
#[derive(Debug)]
pub struct Fanout {
    members: Vec<Token>,
    max_unread: usize,
    /// Messages broadcast so far.
    pub messages: u64,
    /// Copies delivered to members' queues so far.
    pub deliveries: u64,
    /// Members dropped because they fell [`MAX_UNREAD`] behind.
    pub dropped_slow: u64,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout::new(MAX_UNREAD)
    }
}

impl Fanout {
    /// An empty room whose members may fall `max_unread` bytes behind.
    pub fn new(max_unread: usize) -> Fanout {
        Fanout {
            members: Vec::new(),
            max_unread,
            messages: 0,
            deliveries: 0,
            dropped_slow: 0,
        }
    }

    /// Adds `token` (once).
    pub fn join(&mut self, token: Token) {
        if !self.contains(token) {
            self.members.push(token);
        }
    }

    /// Removes `token`; returns whether it was a member.
    pub fn leave(&mut self, token: Token) -> bool {
        match self.members.iter().position(|&t| t == token) {
            Some(i) => {
                // Order does not matter, so removal need not shift the rest.
                self.members.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether `token` is a member.
    pub fn contains(&self, token: Token) -> bool {
        self.members.contains(&token)
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Appends `bytes` to every member's queue. Members already more than the cap behind
    /// are removed instead and returned, for the caller to tell and to close; members that
    /// are gone or closing are removed silently (their `closed` callback may not have run
    /// yet in this tick).
    pub fn broadcast(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Vec<Token> {
        self.messages += 1;
        let mut slow = Vec::new();
        let mut i = 0;
        while i < self.members.len() {
            let token = self.members[i];
            if cx.queued_of(token).is_some_and(|q| q > self.max_unread) {
                self.members.swap_remove(i);
                self.dropped_slow += 1;
                slow.push(token);
                continue;
            }
            match cx.output_of(token) {
                Some(out) => {
                    out.extend_from_slice(bytes);
                    self.deliveries += 1;
                    i += 1;
                }
                None => {
                    self.members.swap_remove(i);
                }
            }
        }
        slow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::Handler;
    use crate::reactor::testing::TestBed;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Joins the room on open; every chunk it receives is broadcast.
    struct Member(Rc<RefCell<Fanout>>, Rc<RefCell<Vec<Token>>>);
    impl Handler for Member {
        fn opened(&mut self, cx: &mut Context<'_>) {
            self.0.borrow_mut().join(cx.token());
        }
        fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
            let slow = self.0.borrow_mut().broadcast(cx, bytes);
            self.1.borrow_mut().extend(slow);
        }
    }

    #[test]
    fn everyone_gets_a_copy_and_a_member_that_stops_reading_is_dropped() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Fanout::new(10)));
        let slow = Rc::new(RefCell::new(Vec::new()));
        let a = bed.open(Box::new(Member(room.clone(), slow.clone())));
        let b = bed.open(Box::new(Member(room.clone(), slow.clone())));
        bed.data(a, b"hello\n");
        assert_eq!(bed.take_output(a), b"hello\n");
        assert_eq!(bed.take_output(b), b"hello\n");
        // b stops reading: 6 + 6 bytes queued is over the cap of 10 ...
        bed.data(a, b"one..\n");
        bed.data(a, b"two..\n");
        assert_eq!(bed.take_output(a), b"one..\ntwo..\n");
        assert!(slow.borrow().is_empty(), "over the cap, but not yet tested");
        // ... and the next broadcast finds it there.
        bed.data(a, b"three\n");
        assert_eq!(*slow.borrow(), [b]);
        assert!(!room.borrow().contains(b));
        assert_eq!(bed.take_output(a), b"three\n");
        assert_eq!(
            bed.take_output(b),
            b"one..\ntwo..\n",
            "nothing past the cap"
        );
        let room = room.borrow();
        assert_eq!(
            (room.messages, room.deliveries, room.dropped_slow),
            (4, 7, 1)
        );
    }

    #[test]
    fn a_closed_member_is_forgotten_on_the_next_broadcast() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Fanout::default()));
        let slow = Rc::new(RefCell::new(Vec::new()));
        let a = bed.open(Box::new(Member(room.clone(), slow.clone())));
        let b = bed.open(Box::new(Member(room.clone(), slow.clone())));
        bed.eof(b); // the default eof closes; `Member` never leaves by itself
        assert!(bed.is_closed(b));
        assert_eq!(room.borrow().len(), 2);
        bed.data(a, b"x");
        assert_eq!(room.borrow().len(), 1);
        assert!(slow.borrow().is_empty(), "gone is not slow");
        assert!(!room.borrow_mut().leave(b));
        assert!(room.borrow_mut().leave(a));
        assert!(room.borrow().is_empty());
    }
}
