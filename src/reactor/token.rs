//! Tokens: which connection an event is for, and whether that connection is still the one
//! the event was meant for.
//!
//! mio hands back a `mio::Token(usize)` with every event. netloop packs two numbers into it:
//! the connection's slab key (where its state lives) and a generation (which occupant of
//! that slot it is). Slab keys are reused as soon as a connection is removed, and one
//! `poll` can return an event for connection 7 *and* the accept of a new connection that
//! lands in slot 7. Without the generation, the stale event would be delivered to the
//! newcomer. With it, the reactor compares the event's generation with the slot's and drops
//! the event if they differ.

use std::fmt;

/// Identifies one connection (or listener, UDP socket, stdin) for as long as it lives.
///
/// A `Token` is small and `Copy`: keep it to reach another connection later (fan-out in a
/// chat) through [`Context::on`](crate::reactor::Context::on). Once that
/// connection is gone the token stays invalid forever, even after its slot is reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    key: u32,
    generation: u32,
}

// The packing below needs 64-bit `usize`: 32 bits of key, 32 bits of generation.
const _: () = assert!(usize::BITS == 64, "netloop packs two u32 into a mio::Token");

impl Token {
    pub(crate) fn new(key: usize, generation: u32) -> Token {
        let key = u32::try_from(key).expect("more than 4 billion slab entries");
        Token { key, generation }
    }

    /// The slab key: where this connection's state lives.
    pub fn key(self) -> usize {
        self.key as usize
    }

    /// Which occupant of the slab slot this is (0 is never used).
    pub fn generation(self) -> u32 {
        self.generation
    }

    pub(crate) fn to_mio(self) -> mio::Token {
        mio::Token(((self.generation as usize) << 32) | self.key as usize)
    }

    pub(crate) fn from_mio(token: mio::Token) -> Token {
        Token {
            key: (token.0 & 0xffff_ffff) as u32,
            generation: (token.0 >> 32) as u32,
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.key, self.generation)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Hands out generations: one per insertion into the slab, never 0 and never `u32::MAX`
/// (so that no packed token can equal the reserved tokens below).
///
/// After 2^32 - 2 insertions the counter wraps. A stale event would then be misdelivered
/// only if it had waited in the kernel across four billion connections *and* its slot
/// happened to be reused at exactly that count: not a case worth a wider token.
#[derive(Debug)]
pub(crate) struct Generations {
    next: u32,
}

impl Generations {
    pub(crate) fn new() -> Self {
        Generations { next: 1 }
    }

    pub(crate) fn next(&mut self) -> u32 {
        let g = self.next;
        self.next = match self.next.wrapping_add(1) {
            0 | u32::MAX => 1,
            n => n,
        };
        g
    }
}

/// The `mio::Waker` that wakes the loop for shutdown requests from other threads.
pub(crate) const WAKER: mio::Token = mio::Token(usize::MAX);
/// The signal source (SIGINT, SIGTERM).
pub(crate) const SIGNALS: mio::Token = mio::Token(usize::MAX - 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let t = Token::new(7, 42);
        let back = Token::from_mio(t.to_mio());
        assert_eq!(back, t);
        assert_eq!(back.key(), 7);
        assert_eq!(back.generation(), 42);
        assert_eq!(t.to_string(), "#7.42");
    }

    #[test]
    fn same_slot_different_generation_is_a_different_token() {
        let old = Token::new(3, 1);
        let new = Token::new(3, 2);
        assert_ne!(old, new);
        assert_ne!(old.to_mio(), new.to_mio());
    }

    #[test]
    fn generations_skip_zero_and_max_and_never_hit_reserved_tokens() {
        let mut g = Generations { next: u32::MAX - 1 };
        assert_eq!(g.next(), u32::MAX - 1);
        assert_eq!(g.next(), 1, "wraps past u32::MAX and 0");
        let t = Token::new(u32::MAX as usize, u32::MAX - 1);
        assert_ne!(t.to_mio(), WAKER);
        assert_ne!(t.to_mio(), SIGNALS);
    }
}
