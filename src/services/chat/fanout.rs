//! Fan-out: one message to every member of a room, through ONE log that all members read,
//! each at its own cursor.
//!
//! # Ways to send one message to a thousand clients
//!
//! The bench (`cargo bench --bench chat`: 1,000 clients, 10 of them sending 100 lines of
//! 64 bytes, every line to every client: 1,000,000 deliveries) puts netloop beside
//! `tokio_chat`, which gives every client an unbounded queue of shared `Bytes` and copies
//! what is queued into one buffer per write. Server CPU is counted while the deliveries
//! happen; medians of alternating runs on this machine (2 cores, server on one, load on
//! the other):
//!
//! | design | server CPU for 1,000,000 deliveries | peak RSS |
//! |---|---|---|
//! | `tokio_chat` | 159 ms | 118 MiB |
//! | copy each line into every member's queue as it is said (the first version) | 99 ms | 75 MiB |
//! | the log, members pulling 64 KiB, but an idle member keeping an empty buffer | 42 ms | 67 MiB |
//! | the same with pulls of at most 4 KiB | 53 ms | 10 MiB |
//! | the log as below: idle members hold nothing, pull size from a budget | 24 ms | 5.1 MiB |
//!
//! (Each row is a median of 3 to 5 runs of one session; tokio_chat's figure moved between
//! 146 and 175 ms across the sessions, so compare rows by their ratio to it: 1.6x, 3.9x,
//! 2.8x and 6.6x fewer CPU seconds.)
//!
//! Where the first version's time went (`perf`): the per-line loop over every member
//! (`Fanout::broadcast`, 11 %), `memmove` of 72-byte lines (8 %), and page faults and
//! `malloc` for queues that grew to the whole backlog at once: a tick that read all 1,000
//! lines appended 72 KB to each of 1,000 queues, 72 MB, before the first write. The kernel
//! side is the same in every design: one `write(2)` per member per tick (on loopback each
//! one also runs the receiver's TCP stack), which the reactor already ensures.
//!
//! The two classic answers, measured with bare mio loops: one shared `Rc` chunk
//! per message, written with vectored writes, reaches 2.15x tokio_chat's deliveries per
//! CPU-second (a 64-byte iovec costs the kernel almost as much as a 64-byte write); one
//! contiguous buffer per member per write reaches 3.25x. The log keeps the second's
//! contiguous writes without its memory:
//!
//! - **publish** appends the formatted line to the log once (`format::message` writes
//!   straight into it: no allocation and no formatting per recipient), and pokes only the
//!   members that were idle (`cx.on(m).request_drained()`); in a busy tick the first line
//!   pokes them and the next ones cost nothing per member;
//! - **pull** runs in a member's `drained`, when the reactor flushes that member at the
//!   end of the tick: it copies `log[cursor..]` (up to [`CHUNK`]) into the member's queue,
//!   and the reactor writes it at once. The buffer goes back to the reactor's pool and the
//!   next member takes it: one buffer in use at a time, however many members there are;
//! - the log's front is cut off once every member's cursor has passed it.
//!
//! Two lessons from the table. An idle member must not even *ask* for its output buffer
//! ([`Context::output`] takes one from the pool, and an empty queue is never written, so
//! it never gives it back): 1,000 idle members each kept a 64 KiB buffer. And a member
//! whose socket is full keeps what it pulled until the kernel takes it, so the pull size
//! sets the memory: small pulls cost CPU (more writes), large pulls memory. So pulls are
//! large (64 KiB) while the room's queues hold little, and small ([`CHUNK_MIN`]) once they
//! hold [`IN_FLIGHT_MAX`]: memory is the log (bounded by the cap below plus one tick's
//! input) plus that budget plus a small pull per member, and never grows with members x
//! backlog.
//!
//! # Why a cap
//!
//! The reactor's backpressure pauses *reading* from a connection whose queue is long; it
//! cannot pause the *other* connections whose messages this member has not read. A member
//! that stops reading holds the log's front forever. So a member more than [`MAX_UNREAD`]
//! bytes behind (unpulled log bytes from earlier ticks, plus its own queue) is dropped:
//! [`Fanout::publish`] returns it, and the caller aborts the connection at once
//! (`cx.on(m).abort()`), which frees its queue, and the log's front with it. This is
//! what IRC servers call a "SendQ exceeded" disconnect.
//!
//! Only bytes published in *earlier* ticks count. A member cannot pull before the end of
//! the tick, and one tick may read a whole read budget (256 KiB) from every sender; counting
//! that would drop fast readers along with slow ones. The tick is recognised by
//! [`Context::now`], which the reactor reads once per tick.

use crate::reactor::{Context, Token};
use std::collections::VecDeque;
use std::time::Instant;

/// Bytes a member may leave unread (published in earlier ticks and not yet taken by the
/// kernel) before it is dropped as too slow.
///
/// Nothing waits here until the kernel's send buffer for the member is full (on Linux it
/// grows to 4 MiB), so 1 MiB on top of that is 14,000 of the bench's 72-byte lines behind:
/// far past what a reader that is merely busy needs. It is also what the log may hold for
/// the slowest member, so the room's memory is bounded by it, not by the member count.
pub const MAX_UNREAD: usize = 1024 * 1024;

/// Most bytes one pull copies into a member's queue. 64 KiB: the reactor's pooled buffer
/// size (larger buffers are freed after use rather than reused) and far more than a tick's
/// lines in a busy room, so a member that keeps up gets one write per tick; a member that
/// is behind gets 64 KiB writes, each refilled from `drained` in the same flush.
pub const CHUNK: usize = 64 * 1024;

/// Below this many bytes the log is not worth trimming: small rooms skip the walk over
/// every member. One chunk: trimming then costs one pass per 64 KiB of chat.
const TRIM_MIN: usize = CHUNK;

/// The pull size once the room's queues hold [`IN_FLIGHT_MAX`]: 2 KiB, still some 28 of
/// the bench's lines per write, while 1,000 members whose sockets are full hold 2 MB.
pub const CHUNK_MIN: usize = 2048;

/// Bytes pulled into members' queues and not yet written, past which pulls shrink to
/// [`CHUNK_MIN`]. 4 MiB: 64 members' worth of full chunks; with the bench's 1,000
/// members it keeps the server's peak RSS near 10 MB (tokio_chat's is over 100 MB).
pub const IN_FLIGHT_MAX: usize = 4 << 20;

/// One member's place in the log.
#[derive(Debug)]
struct Member {
    token: Token,
    /// The log offset of the next byte to copy into this member's queue.
    cursor: u64,
    /// Caught up and idle: it needs a poke (`cx.on(m).request_drained()`) when something
    /// is published, since no write of its own will bring a `drained`.
    waiting: bool,
    /// Bytes of its latest pulls that may still sit in its queue (counted in
    /// the room's `in_flight` until the next `drained` says they were written).
    held: usize,
    /// Log spans `[start, end)` this member must not receive (its own messages, when the
    /// room does not echo), in log order.
    skip: VecDeque<(u64, u64)>,
}

/// The members of one room and the log they read.
#[derive(Debug)]
pub struct Fanout {
    /// `log[i]` is byte `base + i` of everything published in this room.
    log: Vec<u8>,
    base: u64,
    /// Indexed by the member's slab key (dense, reused): O(1) from a token to its cursor.
    members: Vec<Option<Member>>,
    count: usize,
    /// Members to poke at the next publish (each also has `waiting` set; stale ones are
    /// skipped).
    waiting: Vec<Token>,
    max_unread: usize,
    /// The tick of the latest publish, and the log's end when that tick began.
    tick: Option<Instant>,
    tick_start: u64,
    /// Bytes pulled into members' queues and not yet known to be written: the memory the
    /// fan-out holds outside the log.
    in_flight: usize,
    /// Messages published so far.
    pub messages: u64,
    /// Bytes copied from the log into members' queues so far.
    pub bytes_pulled: u64,
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
            log: Vec::new(),
            base: 0,
            members: Vec::new(),
            count: 0,
            waiting: Vec::new(),
            max_unread,
            tick: None,
            tick_start: 0,
            in_flight: 0,
            messages: 0,
            bytes_pulled: 0,
            dropped_slow: 0,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    fn member_mut(members: &mut [Option<Member>], token: Token) -> Option<&mut Member> {
        members
            .get_mut(token.key())
            .and_then(Option::as_mut)
            .filter(|m| m.token == token)
    }

    /// Adds `token` (once): it receives what is published from now on.
    pub fn join(&mut self, token: Token) {
        if self.contains(token) {
            return;
        }
        let key = token.key();
        if self.members.len() <= key {
            self.members.resize_with(key + 1, || None);
        }
        self.members[key] = Some(Member {
            token,
            cursor: self.end(),
            waiting: true,
            held: 0,
            skip: VecDeque::new(),
        });
        self.waiting.push(token);
        self.count += 1;
    }

    /// Removes `token`; returns whether it was a member.
    pub fn leave(&mut self, token: Token) -> bool {
        let Some(m) = Self::member_mut(&mut self.members, token) else {
            return false;
        };
        self.in_flight -= m.held;
        self.members[token.key()] = None;
        self.count -= 1;
        if self.count == 0 {
            // Nobody left to read it.
            self.base = self.end();
            self.log.clear();
        }
        true
    }

    /// Whether `token` is a member.
    pub fn contains(&self, token: Token) -> bool {
        self.members
            .get(token.key())
            .and_then(Option::as_ref)
            .is_some_and(|m| m.token == token)
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the log holds now (what the slowest member has not pulled, at least).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// Publishes one message: `write` appends it to the log (a formatter writes straight
    /// into it), and every member will pull it at the end of this tick, except `exclude`
    /// (the sender, in a room that does not echo).
    ///
    /// Returns the members found more than the cap behind, already removed from the room:
    /// the caller tells the room and aborts them. The check (and the trimming of the log)
    /// runs at the first publish of a tick, so its cost is one pass over the members per
    /// tick, not per message.
    pub fn publish(
        &mut self,
        cx: &mut Context<'_>,
        exclude: Option<Token>,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Vec<Token> {
        let mut slow = Vec::new();
        let now = cx.now();
        if self.tick != Some(now) {
            self.tick = Some(now);
            self.tick_start = self.end();
            // Below both marks nobody can be more than the cap behind (a member's queue
            // holds at most one chunk), and the log is too small to be worth trimming.
            if self.log.len() >= TRIM_MIN || self.log.len() + CHUNK > self.max_unread {
                slow = self.check_and_trim(cx);
            }
        }
        let start = self.end();
        write(&mut self.log);
        let end = self.end();
        if end == start {
            return slow;
        }
        self.messages += 1;
        if let Some(sender) = exclude {
            if let Some(m) = Self::member_mut(&mut self.members, sender) {
                m.skip.push_back((start, end));
            }
        }
        for token in self.waiting.drain(..) {
            if let Some(m) = Self::member_mut(&mut self.members, token) {
                if m.waiting {
                    m.waiting = false;
                    cx.on(token).request_drained();
                }
            }
        }
        slow
    }

    /// Drops members more than the cap behind, then cuts off the log's front that every
    /// remaining member has pulled.
    fn check_and_trim(&mut self, cx: &mut Context<'_>) -> Vec<Token> {
        let mut slow = Vec::new();
        let mut oldest = self.end();
        for slot in &mut self.members {
            let Some(m) = slot else { continue };
            // Unpulled bytes from earlier ticks, plus what its queue still holds.
            let Some(queued) = cx.on(m.token).queued() else {
                // Gone without leaving (its handler did not call `leave`): it must not hold
                // the log's front.
                self.in_flight -= m.held;
                *slot = None;
                self.count -= 1;
                continue;
            };
            let behind = self.tick_start.saturating_sub(m.cursor) as usize + queued;
            if behind > self.max_unread {
                self.in_flight -= m.held;
                slow.push(m.token);
                *slot = None;
                self.count -= 1;
                self.dropped_slow += 1;
            } else {
                oldest = oldest.min(m.cursor);
            }
        }
        let cut = (oldest - self.base) as usize;
        if cut > 0 {
            // What remains is at most the cap plus this tick: the copy is bounded too.
            self.log.drain(..cut);
            self.base = oldest;
        }
        slow
    }

    /// Copies the next bytes of the log for `cx`'s connection (up to [`CHUNK`]) into its
    /// queue. Call it from the member's `drained`: the reactor calls that when the queue
    /// has been written out, and when [`publish`](Fanout::publish) asked for it.
    pub fn pull(&mut self, cx: &mut Context<'_>) {
        let Some(m) = Self::member_mut(&mut self.members, cx.token()) else {
            return;
        };
        // `drained`: everything pulled before has reached the kernel.
        self.in_flight -= std::mem::take(&mut m.held);
        // Large pulls while the room's queues hold little; small ones once they hold a lot
        // (many members whose sockets are full): memory outside the log stays bounded.
        let limit = IN_FLIGHT_MAX
            .saturating_sub(self.in_flight)
            .clamp(CHUNK_MIN, CHUNK);
        self.copy_out(cx, limit, true);
    }

    /// Copies *everything* `cx`'s connection has not pulled yet into its queue, so that a
    /// reply to it alone (a `/who` list, an error) follows the room's lines published
    /// before it, in the order they happened. What it copies is under the cap.
    pub fn catch_up(&mut self, cx: &mut Context<'_>) {
        self.copy_out(cx, usize::MAX, false);
    }

    /// On the way out: copies what `cx`'s connection has not pulled if that is at most
    /// [`CHUNK_MIN`] (its own last words and a few lines around them, which a half-closed
    /// peer still reads), else nothing. When a thousand clients leave in one tick, each
    /// has the others' notices unpulled; copying them all would hold a thousand buffers
    /// at once for sockets that are closed anyway.
    pub fn catch_up_on_leaving(&mut self, cx: &mut Context<'_>) {
        let end = self.end();
        let behind = Self::member_mut(&mut self.members, cx.token())
            .map_or(0, |m| end.saturating_sub(m.cursor) as usize);
        if behind <= CHUNK_MIN {
            self.catch_up(cx);
        }
    }

    /// Copies up to `limit` unpulled log bytes (less the member's own messages when the
    /// room does not echo) into the member's queue. `in_drained`: the queue is empty, so
    /// finding nothing means the member is caught up and must wait for a poke.
    fn copy_out(&mut self, cx: &mut Context<'_>, limit: usize, in_drained: bool) {
        let me = cx.token();
        let end = self.base + self.log.len() as u64;
        let Some(m) = Self::member_mut(&mut self.members, me) else {
            return;
        };
        // Nothing to copy: do not touch the queue (asking for it takes a buffer from the
        // reactor's pool, and an idle member would keep it).
        Self::skip_own(m);
        if m.cursor >= end {
            if in_drained && !m.waiting {
                // Caught up: no write will bring a `drained`, so wait for a poke.
                m.waiting = true;
                self.waiting.push(me);
            }
            return;
        }
        let Some(out) = cx.output() else { return };
        let mut copied = 0;
        while m.cursor < end && copied < limit {
            Self::skip_own(m);
            let stop = m.skip.front().map_or(end, |&(s, _)| s.min(end));
            let n = (stop.saturating_sub(m.cursor) as usize).min(limit - copied);
            let from = (m.cursor - self.base) as usize;
            out.extend_from_slice(&self.log[from..from + n]);
            m.cursor += n as u64;
            copied += n;
        }
        self.bytes_pulled += copied as u64;
        m.held += copied;
        self.in_flight += copied;
    }

    /// Moves `m`'s cursor past its own messages (a room that does not echo) that start
    /// where it stands.
    fn skip_own(m: &mut Member) {
        while let Some(&(start, end)) = m.skip.front() {
            if end <= m.cursor {
                m.skip.pop_front();
            } else if start <= m.cursor {
                m.cursor = end;
            } else {
                break;
            }
        }
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

    /// Joins the room on open; every chunk it receives is published (to everyone, or to
    /// everyone else when `echo` is false); pulls on `drained`.
    struct Member {
        room: Rc<RefCell<Fanout>>,
        slow: Rc<RefCell<Vec<Token>>>,
        echo: bool,
    }
    impl Handler for Member {
        fn opened(&mut self, cx: &mut Context<'_>) {
            self.room.borrow_mut().join(cx.token());
        }
        fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
            let exclude = (!self.echo).then(|| cx.token());
            let slow = self
                .room
                .borrow_mut()
                .publish(cx, exclude, |log| log.extend_from_slice(bytes));
            for t in &slow {
                cx.on(*t).abort();
            }
            self.slow.borrow_mut().extend(slow);
        }
        fn drained(&mut self, cx: &mut Context<'_>) {
            self.room.borrow_mut().pull(cx);
        }
    }

    struct Room {
        bed: TestBed,
        room: Rc<RefCell<Fanout>>,
        slow: Rc<RefCell<Vec<Token>>>,
    }

    impl Room {
        fn new(max_unread: usize) -> Room {
            Room {
                bed: TestBed::new(),
                room: Rc::new(RefCell::new(Fanout::new(max_unread))),
                slow: Rc::new(RefCell::new(Vec::new())),
            }
        }
        fn open(&mut self, echo: bool) -> Token {
            self.bed.open(Box::new(Member {
                room: self.room.clone(),
                slow: self.slow.clone(),
                echo,
            }))
        }
    }

    #[test]
    fn everyone_gets_every_message_in_order_and_the_log_is_trimmed_behind_them() {
        let mut r = Room::new(MAX_UNREAD);
        let (a, b) = (r.open(true), r.open(true));
        r.bed.data(a, b"hello\n");
        r.bed.data(b, b"hi\n");
        assert_eq!(r.bed.read_all(a), b"hello\nhi\n");
        assert_eq!(r.bed.read_all(b), b"hello\nhi\n");
        // Enough to pass the trimming threshold, over several ticks.
        let line = [b'x'; 1000];
        for _ in 0..200 {
            tick(&mut r.bed);
            r.bed.data(a, &line);
            assert_eq!(r.bed.take_output(a).len(), 1000);
            assert_eq!(r.bed.take_output(b).len(), 1000);
        }
        assert!(r.room.borrow().log_len() < TRIM_MIN + 1000, "trimmed");
        assert_eq!(r.room.borrow().messages, 202);
    }

    #[test]
    fn a_member_behind_pulls_in_chunks_of_at_most_chunk_bytes() {
        let mut r = Room::new(MAX_UNREAD);
        let (a, b) = (r.open(true), r.open(true));
        let big = vec![b'z'; CHUNK + 10];
        r.bed.data(a, &big);
        assert_eq!(r.bed.take_output(b).len(), CHUNK, "one chunk per pull");
        assert_eq!(
            r.bed.take_output(b).len(),
            10,
            "the rest on the next drained"
        );
        assert_eq!(r.bed.take_output(b).len(), 0);
        assert_eq!(r.bed.take_output(a).len(), CHUNK);
        r.bed.data(a, b"!");
        assert_eq!(r.bed.take_output(b), b"!", "caught up, then poked again");
    }

    #[test]
    fn a_room_without_echo_skips_the_senders_own_messages() {
        let mut r = Room::new(MAX_UNREAD);
        let (a, b) = (r.open(false), r.open(false));
        r.bed.data(a, b"from a\n");
        r.bed.data(b, b"from b\n");
        r.bed.data(a, b"again a\n");
        assert_eq!(r.bed.read_all(a), b"from b\n");
        assert_eq!(r.bed.read_all(b), b"from a\nagain a\n");
    }

    #[test]
    fn a_member_that_stops_reading_is_dropped_and_its_log_share_released() {
        let mut r = Room::new(100 * 1024);
        let (a, b) = (r.open(true), r.open(true));
        let line = [b'y'; 10 * 1024];
        let mut sent = 0;
        while r.slow.borrow().is_empty() {
            tick(&mut r.bed);
            r.bed.data(a, &line);
            sent += 1;
            assert_eq!(r.bed.take_output(a).len(), line.len(), "a keeps up");
            assert!(sent < 20, "b was never dropped");
        }
        // b holds one chunk in its queue and has the rest to pull: dropped once more than
        // 100 KiB of earlier ticks are unread, not because of this tick's line.
        assert_eq!(*r.slow.borrow(), [b]);
        assert!(sent > 100 / 10, "{sent}");
        assert!(r.bed.is_closed(b), "aborted: its queue is gone at once");
        assert!(!r.room.borrow().contains(b));
        assert_eq!(r.room.borrow().dropped_slow, 1);
        assert!(
            r.room.borrow().log_len() <= line.len(),
            "only what a has not pulled"
        );
    }

    #[test]
    fn pulls_shrink_once_the_rooms_queues_hold_the_in_flight_budget() {
        let mut r = Room::new(MAX_UNREAD);
        let sender = r.open(true);
        // Enough members that full chunks for all would pass the budget.
        let n = IN_FLIGHT_MAX / CHUNK + 8;
        let members: Vec<Token> = (0..n).map(|_| r.open(true)).collect();
        r.bed.data(sender, &vec![b'q'; 2 * CHUNK]);
        // Nobody has read: the members flushed first got full chunks until the budget was
        // used (the sender's own echo counts too), the rest small ones.
        let sizes: Vec<usize> = members
            .iter()
            .map(|&t| r.bed.take_output(t).len())
            .collect();
        let full = sizes.iter().filter(|&&n| n == CHUNK).count();
        assert!(
            (1..=IN_FLIGHT_MAX / CHUNK).contains(&full),
            "{full} full chunks"
        );
        assert_eq!(sizes.iter().filter(|&&n| n == CHUNK_MIN).count(), n - full);
        let held: usize = sizes.iter().sum();
        assert!(held <= IN_FLIGHT_MAX + n * CHUNK_MIN, "{held}");
    }

    #[test]
    fn a_member_leaving_gets_the_last_few_lines_but_not_a_backlog() {
        /// Never pulls (its `drained` does nothing); catches up as it leaves on any data.
        struct Leaving(Rc<RefCell<Fanout>>);
        impl Handler for Leaving {
            fn data(&mut self, cx: &mut Context<'_>, _: &[u8]) {
                self.0.borrow_mut().catch_up_on_leaving(cx);
            }
        }
        let mut r = Room::new(MAX_UNREAD);
        let a = r.open(true);
        let l = r.bed.open(Box::new(Leaving(r.room.clone())));
        r.room.borrow_mut().join(l);
        r.bed.data(a, b"hi\n");
        r.bed.data(l, b"bye");
        assert_eq!(
            r.bed.take_output(l),
            b"hi\n",
            "a few bytes behind: handed over"
        );
        r.bed.data(a, &vec![b'v'; 3 * CHUNK_MIN]);
        r.bed.data(l, b"bye");
        assert_eq!(
            r.bed.take_output(l),
            b"",
            "far behind: not copied on the way out"
        );
        assert_eq!(r.bed.read_all(a).len(), 3 + 3 * CHUNK_MIN);
    }

    #[test]
    fn a_member_that_leaves_is_forgotten_and_an_empty_room_keeps_no_log() {
        let mut r = Room::new(MAX_UNREAD);
        let (a, b) = (r.open(true), r.open(true));
        assert!(r.room.borrow_mut().leave(b));
        assert!(!r.room.borrow_mut().leave(b));
        r.bed.data(a, b"x");
        assert_eq!(r.bed.take_output(a), b"x");
        assert_eq!(r.bed.take_output(b), b"");
        assert!(r.room.borrow_mut().leave(a));
        assert!(r.room.borrow().is_empty());
        assert_eq!(r.room.borrow().log_len(), 0);
    }
}
