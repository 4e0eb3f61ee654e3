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
//! - messages and actions go to every member, the sender included as in the lesson, or
//!   to everyone else in a room made with `echo: false` (`chat_server --no-echo`);
//!   notices (joined, left, renamed, dropped) always go to everyone: they are the room's
//!   own lines, and the joiner's notice is how it learns its nickname was taken;
//! - a member more than [`MAX_UNREAD`] bytes behind is cut off
//!   at once (`cx.on(m).abort()`: its queue is freed now, not after a flush it would
//!   never read), and everyone else sees `*** nick was disconnected: too slow`. The member
//!   itself is not told: a line queued for a reader that does not read is never read.
//!
//! Every line is formatted once, straight into the fan-out's log, whatever the number of
//! members; each member copies it out when its own write comes (see [`super::fanout`]).

use super::fanout::{Fanout, MAX_UNREAD};
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
#[derive(Debug)]
pub struct Room {
    fanout: Fanout,
    /// Whether a member's messages go back to it too (the lesson's way).
    echo: bool,
    /// Nickname to member: uniqueness, and `/who` sorted case-insensitively.
    by_nick: BTreeMap<Nick, Token>,
    /// Member to nickname: for the notice when a member is dropped.
    by_token: HashMap<Token, Nick>,
}

impl Default for Room {
    fn default() -> Self {
        Room::new(MAX_UNREAD)
    }
}

impl Room {
    /// An empty room whose members may fall `max_unread` bytes behind; messages go back
    /// to their sender too.
    pub fn new(max_unread: usize) -> Room {
        Room::with_echo(max_unread, true)
    }

    /// An empty room; `echo: false` keeps a member's messages from coming back to it.
    pub fn with_echo(max_unread: usize, echo: bool) -> Room {
        Room {
            fanout: Fanout::new(max_unread),
            echo,
            by_nick: BTreeMap::new(),
            by_token: HashMap::new(),
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

    /// The fan-out's counters (messages, bytes pulled, members dropped as too slow).
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
        match self.by_token.remove(&me) {
            Some(old) => {
                self.by_nick.remove(&old);
                self.publish(cx, None, |log| format::renamed(&old, &nick, log));
            }
            None => {
                self.fanout.join(me);
                self.publish(cx, None, |log| format::joined(&nick, log));
            }
        }
        self.by_nick.insert(nick.clone(), me);
        self.by_token.insert(me, nick);
        Ok(())
    }

    /// Leaves the room (if `cx`'s connection is a member) and tells the others
    /// `*** nick left`. Returns the nickname it had.
    pub fn leave(&mut self, cx: &mut Context<'_>) -> Option<Nick> {
        // What was said just before it left still reaches it (a half-closed peer reads on).
        self.fanout.catch_up_on_leaving(cx);
        let nick = self.by_token.remove(&cx.token())?;
        self.by_nick.remove(&nick);
        self.fanout.leave(cx.token());
        self.publish(cx, None, |log| format::left(&nick, log));
        Some(nick)
    }

    /// `<nick> text` to everyone, from the member `cx` is. Returns false (and sends
    /// nothing) if it is not a member: it was dropped as too slow earlier in this tick.
    pub fn message(&mut self, cx: &mut Context<'_>, text: &str) -> bool {
        let Some(nick) = self.by_token.get(&cx.token()) else {
            return false;
        };
        let exclude = (!self.echo).then(|| cx.token());
        let slow = self
            .fanout
            .publish(cx, exclude, |log| format::message(nick, text, log));
        self.drop_slow(cx, slow);
        true
    }

    /// `* nick action` to everyone, from the member `cx` is (false if it is not one).
    pub fn action(&mut self, cx: &mut Context<'_>, action: &str) -> bool {
        let Some(nick) = self.by_token.get(&cx.token()) else {
            return false;
        };
        let exclude = (!self.echo).then(|| cx.token());
        let slow = self
            .fanout
            .publish(cx, exclude, |log| format::action(nick, action, log));
        self.drop_slow(cx, slow);
        true
    }

    /// `*** here: ...` to the asking connection only.
    pub fn who(&mut self, cx: &mut Context<'_>) {
        if let Some(out) = self.reply(cx) {
            format::who(self.by_nick.keys(), out);
        }
    }

    /// `cx`'s own output buffer, for a line to it alone, after every room line published
    /// before it (so a reply never overtakes the lines it answers); `None` once closing.
    pub fn reply<'c>(&mut self, cx: &'c mut Context<'_>) -> Option<&'c mut Vec<u8>> {
        self.fanout.catch_up(cx);
        cx.output()
    }

    /// Copies the next bytes of the room's log into `cx`'s queue: call it from the
    /// connection's `drained`.
    pub fn pull(&mut self, cx: &mut Context<'_>) {
        self.fanout.pull(cx);
    }

    /// Publishes one line to everyone (but `exclude`), then handles the members the
    /// fan-out found too far behind.
    fn publish(
        &mut self,
        cx: &mut Context<'_>,
        exclude: Option<Token>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let slow = self.fanout.publish(cx, exclude, write);
        self.drop_slow(cx, slow);
    }

    /// Cuts off every member in `slow` (already out of the fan-out) at once, releasing
    /// its queue, and tells the rest. (The check runs once per tick, so the notices do not
    /// find more; the worklist is there all the same.)
    fn drop_slow(&mut self, cx: &mut Context<'_>, mut slow: Vec<Token>) {
        while let Some(token) = slow.pop() {
            cx.on(token).abort();
            if let Some(nick) = self.by_token.remove(&token) {
                self.by_nick.remove(&nick);
                log::info!("chat: {nick} dropped: more than the cap behind, unread");
                let more = self
                    .fanout
                    .publish(cx, None, |log| format::disconnected(&nick, "too slow", log));
                slow.extend(more);
            }
        }
    }
}
