//! Time is a heap of deadlines.
//!
//! `poll` sleeps until the nearest deadline; after it returns, every deadline that has
//! passed fires. There is no timer thread and no per-timer allocation beyond a heap entry.
//!
//! Each connection keeps its armed timers in a small list of [`Slot`]s (usually zero to
//! two: an idle timeout and maybe one of its handler's). The heap only holds *where to look*:
//! `(deadline, sequence number, token, kind)`. When an entry pops, the reactor asks the
//! connection's slot whether it still stands for that sequence number:
//!
//! - no slot, or a different sequence: the timer was cancelled or re-armed earlier: drop it;
//! - the slot's deadline moved later (an idle timeout pushed back by new data): re-queue it
//!   at the new deadline instead of firing;
//! - otherwise: fire.
//!
//! Pushing an idle timeout back on every read therefore costs a store, not a heap push: a
//! busy connection keeps exactly one heap entry however many requests it serves. This is
//! the "lazy cancellation" that timer wheels and most event loops use in some form.
//!
//! Its price is that a stale entry stays until its deadline. A server closing 47,000
//! connections a second, each leaving an idle and a linger entry for up to 10 s, would hold
//! a million of them (the time service under `loadgen time` grew 2.5 MB a second). So when
//! stale entries outnumber live ones, [`Timers::compact`] drops them in one pass: O(n) work
//! after at least n/2 cancellations, so still O(1) per timer.

use super::Token;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A timer a handler names: `cx.set_timer(TimerId(1), ...)` arms it, arming it again
/// moves it, and [`Handler::timer`](crate::reactor::Handler::timer) receives it when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(pub u32);

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A handler's own timer.
    Handler(TimerId),
    /// No bytes moved for the connection's idle timeout: close it.
    Idle,
    /// A TLS handshake is still not done: close it.
    Handshake,
    /// We closed our side and are draining the peer's leftovers: stop waiting.
    Linger,
    /// A listener stopped accepting (fd limit): try again.
    AcceptRetry,
}

/// One armed timer of one connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    kind: Kind,
    /// When it should fire.
    at: Instant,
    /// The deadline of the heap entry that stands for this slot (`<= at`).
    queued_at: Instant,
    /// The sequence number of that heap entry.
    seq: u64,
}

impl Slot {
    /// What the timer is for.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    at: Instant,
    seq: u64,
    token: Token,
}

// BinaryHeap is a max-heap: order by the earliest deadline first (ties: arming order).
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Below this many heap entries, stale ones are left to pop by themselves.
const COMPACT_MIN: usize = 4096;

/// The reactor's deadlines, shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
}

/// What popping the heap found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Due {
    pub token: Token,
    pub seq: u64,
    pub at: Instant,
}

impl Timers {
    /// The nearest deadline in the heap (possibly a stale one: waking up early for nothing
    /// is harmless, sleeping past a live deadline is not).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Number of heap entries, live or stale.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Is the heap worth compacting, with `live_at_most` slots armed in all? When more than
    /// half of it is stale (and it is big enough for that to matter).
    pub(crate) fn wants_compaction(&self, live_at_most: usize) -> bool {
        self.heap.len() > COMPACT_MIN && self.heap.len() > 2 * live_at_most
    }

    /// Keeps only the entries `live` says a slot still stands for, and gives back the
    /// memory the stale ones held.
    pub(crate) fn compact(&mut self, mut live: impl FnMut(Token, u64) -> bool) {
        self.heap.retain(|e| live(e.token, e.seq));
        if self.heap.capacity() > 4 * self.heap.len().max(COMPACT_MIN) {
            self.heap.shrink_to(2 * self.heap.len().max(COMPACT_MIN));
        }
    }

    /// Arms `kind` for `token` at `at` in that connection's `slots`.
    pub(crate) fn arm(&mut self, slots: &mut Vec<Slot>, token: Token, kind: Kind, at: Instant) {
        if let Some(slot) = slots.iter_mut().find(|s| s.kind == kind) {
            if slot.queued_at <= at {
                // The heap entry will pop no later than needed; it will re-queue itself.
                slot.at = at;
                return;
            }
            // Earlier than what is queued: queue a new entry; the old one turns stale.
            let seq = self.push(token, at);
            *slot = Slot {
                kind,
                at,
                queued_at: at,
                seq,
            };
            return;
        }
        let seq = self.push(token, at);
        // Exactly one more slot: a Vec would grow to four (192 bytes), and every idle
        // connection keeps its idle timeout's slot for as long as it lives.
        slots.reserve_exact(1);
        slots.push(Slot {
            kind,
            at,
            queued_at: at,
            seq,
        });
    }

    /// Cancels `kind`; its heap entry becomes stale and is dropped when it pops.
    pub(crate) fn cancel(slots: &mut Vec<Slot>, kind: Kind) {
        slots.retain(|s| s.kind != kind);
        slots.shrink_to_fit();
    }

    /// Does one of `slots` stand for the heap entry numbered `seq`?
    pub(crate) fn stands_for(slots: &[Slot], seq: u64) -> bool {
        slots.iter().any(|s| s.seq == seq)
    }

    /// Is `kind` armed in `slots`?
    pub(crate) fn is_armed(slots: &[Slot], kind: Kind) -> bool {
        slots.iter().any(|s| s.kind == kind)
    }

    fn push(&mut self, token: Token, at: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, token });
        seq
    }

    /// Pops the next entry due at or before `now`, if any. The caller looks the token up
    /// and passes that connection's slots to [`Timers::settle`].
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        if self.heap.peek()?.at > now {
            return None;
        }
        let e = self.heap.pop()?;
        Some(Due {
            token: e.token,
            seq: e.seq,
            at: e.at,
        })
    }

    /// Decides what a popped entry means for a connection's `slots`: `Some(kind)` if that
    /// timer fires now (its slot is removed), `None` if the entry was stale or has been
    /// re-queued at a later deadline.
    pub(crate) fn settle(
        &mut self,
        slots: &mut Vec<Slot>,
        due: &Due,
        now: Instant,
    ) -> Option<Kind> {
        let i = slots.iter().position(|s| s.seq == due.seq)?;
        let slot = slots[i];
        if slot.at > now {
            let seq = self.push(due.token, slot.at);
            slots[i] = Slot {
                queued_at: slot.at,
                seq,
                ..slot
            };
            return None;
        }
        slots.swap_remove(i);
        slots.shrink_to_fit();
        Some(slot.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Pops everything due at `now` for one connection, returning the kinds that fired.
    fn fire(timers: &mut Timers, slots: &mut Vec<Slot>, now: Instant) -> Vec<Kind> {
        let mut fired = Vec::new();
        while let Some(due) = timers.pop_due(now) {
            if let Some(kind) = timers.settle(slots, &due, now) {
                fired.push(kind);
            }
        }
        fired
    }

    #[test]
    fn compaction_drops_what_connections_no_longer_hold_and_keeps_the_rest_firing() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        // 10,000 connections come and go, each leaving two entries behind (their slots
        // gone with them); one connection stays, with a timer armed among them.
        let keeper = Token::new(0, 1);
        let mut kept = Vec::new();
        for i in 0..10_000usize {
            let mut slots = Vec::new();
            let tok = Token::new(i + 1, 1);
            timers.arm(&mut slots, tok, Kind::Idle, t0 + ms(10_000));
            timers.arm(&mut slots, tok, Kind::Linger, t0 + ms(10_000));
            if i == 5_000 {
                timers.arm(&mut kept, keeper, Kind::Handler(TimerId(7)), t0 + ms(50));
            }
        }
        assert_eq!(timers.len(), 20_001);
        assert!(
            timers.wants_compaction(4),
            "one live connection, 20,001 entries"
        );
        timers.compact(|token, seq| token == keeper && Timers::stands_for(&kept, seq));
        assert_eq!(timers.len(), 1, "only the kept connection's entry is left");
        assert!(timers.heap.capacity() < 20_000, "and the memory went back");
        assert!(!timers.wants_compaction(4));
        assert_eq!(
            fire(&mut timers, &mut kept, t0 + ms(50)),
            vec![Kind::Handler(TimerId(7))]
        );
    }

    #[test]
    fn fires_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let tok = Token::new(1, 1);
        let mut timers = Timers::default();
        let mut slots = Vec::new();
        timers.arm(&mut slots, tok, Kind::Handler(TimerId(2)), t0 + ms(20));
        timers.arm(&mut slots, tok, Kind::Handler(TimerId(1)), t0 + ms(10));
        assert_eq!(timers.next_deadline(), Some(t0 + ms(10)));
        assert!(fire(&mut timers, &mut slots, t0 + ms(9)).is_empty());
        assert_eq!(
            fire(&mut timers, &mut slots, t0 + ms(10)),
            vec![Kind::Handler(TimerId(1))]
        );
        assert_eq!(
            fire(&mut timers, &mut slots, t0 + ms(30)),
            vec![Kind::Handler(TimerId(2))]
        );
        assert!(slots.is_empty());
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn pushing_an_idle_timeout_back_keeps_one_heap_entry() {
        let t0 = Instant::now();
        let tok = Token::new(1, 1);
        let mut timers = Timers::default();
        let mut slots = Vec::new();
        for i in 0..1000 {
            timers.arm(&mut slots, tok, Kind::Idle, t0 + ms(100 + i));
        }
        assert_eq!(timers.len(), 1, "re-arming later must not push");
        // At the first queued deadline the entry re-queues itself at the real one.
        assert!(fire(&mut timers, &mut slots, t0 + ms(100)).is_empty());
        assert_eq!(timers.next_deadline(), Some(t0 + ms(1099)));
        assert_eq!(
            fire(&mut timers, &mut slots, t0 + ms(1099)),
            vec![Kind::Idle]
        );
    }

    #[test]
    fn re_arming_earlier_fires_once_at_the_earlier_time() {
        let t0 = Instant::now();
        let tok = Token::new(1, 1);
        let mut timers = Timers::default();
        let mut slots = Vec::new();
        timers.arm(&mut slots, tok, Kind::Linger, t0 + ms(50));
        timers.arm(&mut slots, tok, Kind::Linger, t0 + ms(5));
        assert_eq!(
            fire(&mut timers, &mut slots, t0 + ms(5)),
            vec![Kind::Linger]
        );
        assert!(
            fire(&mut timers, &mut slots, t0 + ms(60)).is_empty(),
            "old entry is stale"
        );
    }

    #[test]
    fn cancelled_timers_never_fire() {
        let t0 = Instant::now();
        let tok = Token::new(1, 1);
        let mut timers = Timers::default();
        let mut slots = Vec::new();
        timers.arm(&mut slots, tok, Kind::Handler(TimerId(7)), t0 + ms(1));
        Timers::cancel(&mut slots, Kind::Handler(TimerId(7)));
        assert!(!Timers::is_armed(&slots, Kind::Handler(TimerId(7))));
        assert!(fire(&mut timers, &mut slots, t0 + ms(10)).is_empty());
    }

    #[test]
    fn a_new_occupant_does_not_inherit_old_timers() {
        // The heap entry names token #1.1; the slot now belongs to #1.2 with fresh slots.
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut old_slots = Vec::new();
        timers.arm(&mut old_slots, Token::new(1, 1), Kind::Idle, t0 + ms(1));
        let due = timers.pop_due(t0 + ms(1)).expect("due");
        assert_eq!(due.token, Token::new(1, 1));
        let mut new_slots = Vec::new();
        assert_eq!(timers.settle(&mut new_slots, &due, t0 + ms(1)), None);
    }
}
