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
//!
//! Only bytes left over from *earlier* ticks count. The reactor writes every queue at the
//! end of each tick, so what is still queued when a tick begins is what the kernel would
//! not take: that reader is behind. What was appended during this tick has not had its
//! chance yet; one sender's tick alone can add a whole read budget (256 KiB) to every
//! member, and counting it would drop fast readers along with slow ones (the first
//! version of this test did exactly that). The tick is recognised by [`Context::now`],
//! which the reactor reads once per tick.

use crate::reactor::{Context, Token};
use std::time::Instant;

/// Bytes a member may leave unread (queued in earlier ticks and not taken by the kernel)
/// before it is dropped as too slow.
///
/// Nothing waits here until the kernel's send buffer for the member is full (on Linux it
/// grows to 4 MiB), so 1 MiB on top of that is 14,000 of the bench's 72-byte lines behind:
/// far past what a reader that is merely busy needs, four times the reactor's high-water
/// mark for a single connection's output. Memory per member is then bounded by this cap
/// plus what one tick adds (at most one read budget, 256 KiB, per sender in that tick).
pub const MAX_UNREAD: usize = 1024 * 1024;

/// One member, and what it was given during the current tick.
#[derive(Debug, Clone, Copy)]
struct Member {
    token: Token,
    /// The tick `added` counts in (the reactor's `now` of that tick).
    tick: Option<Instant>,
    /// Bytes appended during `tick`: not yet offered to the kernel, so not "unread".
    added: usize,
}

/// The members of one room, in no particular order, and the cap on their queues.
#[derive(Debug)]
pub struct Fanout {
    members: Vec<Member>,
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
            self.members.push(Member {
                token,
                tick: None,
                added: 0,
            });
        }
    }

    /// Removes `token`; returns whether it was a member.
    pub fn leave(&mut self, token: Token) -> bool {
        match self.members.iter().position(|m| m.token == token) {
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
        self.members.iter().any(|m| m.token == token)
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Appends `bytes` to every member's queue. Members with more than the cap left unread
    /// from earlier ticks are removed instead and returned, for the caller to tell and to
    /// close; members that are gone or closing are removed silently (their `closed`
    /// callback may not have run yet in this tick).
    pub fn broadcast(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Vec<Token> {
        self.messages += 1;
        let now = cx.now();
        let mut slow = Vec::new();
        let mut i = 0;
        while i < self.members.len() {
            let member = &mut self.members[i];
            if member.tick != Some(now) {
                member.tick = Some(now);
                member.added = 0;
            }
            let unread = cx
                .queued_of(member.token)
                .map_or(0, |q| q.saturating_sub(member.added));
            if unread > self.max_unread {
                slow.push(member.token);
                self.members.swap_remove(i);
                self.dropped_slow += 1;
                continue;
            }
            match cx.output_of(member.token) {
                Some(out) => {
                    out.extend_from_slice(bytes);
                    member.added += bytes.len();
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
    use std::time::Duration;

    /// The next tick: the reactor would have flushed every queue it could.
    fn tick(bed: &mut TestBed) {
        bed.advance(Duration::from_millis(1));
    }

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
        // b stops reading: in one tick, 6 + 6 bytes queued is over the cap of 10, but
        // the reactor has not tried to write them yet ...
        tick(&mut bed);
        bed.data(a, b"one..\n");
        bed.data(a, b"two..\n");
        assert_eq!(bed.take_output(a), b"one..\ntwo..\n");
        bed.data(a, b"more.\n");
        assert!(
            slow.borrow().is_empty(),
            "appended this tick: not behind yet"
        );
        // ... and in the next tick they are still there: b is behind.
        tick(&mut bed);
        bed.data(a, b"three\n");
        assert_eq!(*slow.borrow(), [b]);
        assert!(!room.borrow().contains(b));
        assert_eq!(bed.take_output(a), b"more.\nthree\n");
        assert_eq!(
            bed.take_output(b),
            b"one..\ntwo..\nmore.\n",
            "nothing after"
        );
        let room = room.borrow();
        assert_eq!(
            (room.messages, room.deliveries, room.dropped_slow),
            (5, 9, 1)
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
