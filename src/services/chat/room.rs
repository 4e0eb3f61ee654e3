//! The line-mode chat room: who is in it under which nickname, and the fan-out to them.
//!
//! One `Room` per listener, shared by its connections' handlers through an
//! `Rc<RefCell<Room>>` (one thread, so `Rc`; the borrow lasts one callback).
//!
//! The room's rules (the same as the transcript test in `netloop-protocols`):
//!
//! - a connection is a member once its nickname is accepted, and stops being one when it
//!   leaves (`/quit`, `byebye`, EOF, reset) or is dropped as too slow;
//! - a nickname is taken if another member holds it, compared case-insensitively;
//! - messages, actions and notices go to every member, the sender included;
//! - a member more than [`MAX_UNREAD`](super::fanout::MAX_UNREAD) bytes behind is dropped,
//!   told why at the end of what it has queued, and everyone else sees
//!   `*** nick was disconnected: too slow`.

use super::fanout::Fanout;
use crate::reactor::{Context, Token};
use netloop_protocols::chat::{Nick, format};
use std::collections::{BTreeMap, HashMap};

/// Why a join or rename was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// Another member holds this nickname (in any letter case).
    Taken(Nick),
}

/// The members of one chat room.
#[derive(Debug, Default)]
pub struct Room {
    fanout: Fanout,
    /// Nickname to member: uniqueness, and `/who` sorted case-insensitively.
    by_nick: BTreeMap<Nick, Token>,
    /// Member to nickname: for the notice when a member is dropped.
    by_token: HashMap<Token, Nick>,
    /// A scratch buffer: each line is formatted once, then copied to every member.
    line: Vec<u8>,
}

impl Room {
    /// An empty room whose members may fall `max_unread` bytes behind.
    pub fn new(max_unread: usize) -> Room {
        Room {
            fanout: Fanout::new(max_unread),
            ..Room::default()
        }
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// The fan-out's counters (messages, deliveries, members dropped as too slow).
    pub fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    /// The nickname `token` is in the room under, if it is a member.
    pub fn nick_of(&self, token: Token) -> Option<&Nick> {
        self.by_token.get(&token)
    }

    /// Enters the room, or renames a member, and tells everyone (`*** nick joined`, or
    /// `*** old is now known as new`). A rename to the same name in another case is
    /// allowed: the key is the same, and so is the holder.
    pub fn join(&mut self, cx: &mut Context<'_>, nick: Nick) -> Result<(), JoinError> {
        let me = cx.token();
        if self.by_nick.get(&nick).is_some_and(|&holder| holder != me) {
            return Err(JoinError::Taken(nick));
        }
        self.line.clear();
        match self.by_token.remove(&me) {
            Some(old) => {
                self.by_nick.remove(&old);
                format::renamed(&old, &nick, &mut self.line);
            }
            None => {
                self.fanout.join(me);
                format::joined(&nick, &mut self.line);
            }
        }
        self.by_nick.insert(nick.clone(), me);
        self.by_token.insert(me, nick);
        self.send_line(cx);
        Ok(())
    }

    /// Leaves the room (if `cx`'s connection is a member) and tells the others
    /// `*** nick left`. Returns the nickname it had.
    pub fn leave(&mut self, cx: &mut Context<'_>) -> Option<Nick> {
        let nick = self.remove(cx.token())?;
        self.line.clear();
        format::left(&nick, &mut self.line);
        self.send_line(cx);
        Some(nick)
    }

    /// `<nick> text` to everyone, from the member `cx` is. Returns false (and sends
    /// nothing) if it is not a member: it was dropped as too slow earlier in this tick.
    pub fn message(&mut self, cx: &mut Context<'_>, text: &str) -> bool {
        let Some(nick) = self.by_token.get(&cx.token()) else {
            return false;
        };
        self.line.clear();
        format::message(nick, text, &mut self.line);
        self.send_line(cx);
        true
    }

    /// `* nick action` to everyone, from the member `cx` is (false if it is not one).
    pub fn action(&mut self, cx: &mut Context<'_>, action: &str) -> bool {
        let Some(nick) = self.by_token.get(&cx.token()) else {
            return false;
        };
        self.line.clear();
        format::action(nick, action, &mut self.line);
        self.send_line(cx);
        true
    }

    /// `*** here: ...` to the asking connection only.
    pub fn who(&self, cx: &mut Context<'_>) {
        if let Some(out) = cx.output() {
            format::who(self.by_nick.keys(), out);
        }
    }

    fn remove(&mut self, token: Token) -> Option<Nick> {
        let nick = self.by_token.remove(&token)?;
        self.by_nick.remove(&nick);
        self.fanout.leave(token);
        Some(nick)
    }

    /// Broadcasts `self.line`; then, for every member found too far behind, removes it,
    /// appends the reason to its own queue, closes it, and tells the rest (which may find
    /// more: the loop ends because every round removes at least one member).
    fn send_line(&mut self, cx: &mut Context<'_>) {
        let mut slow = self.fanout.broadcast(cx, &self.line);
        while !slow.is_empty() {
            self.line.clear();
            for token in slow {
                if let Some(nick) = self.by_token.remove(&token) {
                    self.by_nick.remove(&nick);
                    let start = self.line.len();
                    format::disconnected(&nick, "too slow", &mut self.line);
                    let notice = self.line[start..].to_vec();
                    log::info!("chat: {nick} dropped: more than the cap queued, unread");
                    // Past the cap already; one more line tells the reader why it ends.
                    cx.write_to(token, &notice);
                    cx.close_other(token);
                }
            }
            slow = self.fanout.broadcast(cx, &self.line);
        }
    }
}
