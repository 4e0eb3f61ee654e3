//! The lesson's chat server (program 11), byte for byte: every read is a message, relayed
//! unchanged to every client, the sender included; a message that is exactly `byebye`
//! removes its sender and closes it, without telling anyone.
//!
//! ```python
//! data = self._client.recv(1024)
//! if data.decode('utf-8') == 'byebye':
//!     clients.remove(self._client)
//!     self._client.close()
//!     break
//! else:
//!     for client in clients:
//!         client.send(data)
//! ```
//!
//! No nicknames (the lesson's client writes `nickname: text` itself), no greeting, no line
//! endings. It works while each `send` arrives as its own read, which a person typing
//! slowly ensures and a script does not: see [`RawFramer`]. Unlike the lesson, a client that
//! stops reading is cut off once it is [`MAX_UNREAD`](super::fanout::MAX_UNREAD) behind,
//! instead of blocking the sender's thread in `send` forever; nobody is told, since the
//! lesson's framing has no room for a line from the server. The fan-out is the same log as
//! the line chat's ([`Fanout`]), and `--no-echo` works here too.

use super::fanout::Fanout;
use crate::reactor::{CloseReason, Context, Handler};
use netloop_protocols::chat::{RawFramer, is_byebye};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

/// One accepted connection to the lesson-framed chat.
#[derive(Debug)]
pub struct RawChatServer {
    room: Rc<RefCell<Fanout>>,
    framer: RawFramer,
    /// Whether a message goes back to its sender too (the lesson's way).
    echo: bool,
}

impl RawChatServer {
    /// A connection to `room`, where messages go back to their sender too.
    pub fn new(room: Rc<RefCell<Fanout>>) -> RawChatServer {
        RawChatServer::with_echo(room, true)
    }

    /// A connection to `room`; `echo: false` keeps its messages from coming back to it.
    pub fn with_echo(room: Rc<RefCell<Fanout>>, echo: bool) -> RawChatServer {
        RawChatServer {
            room,
            framer: RawFramer::new(),
            echo,
        }
    }

    /// The factory to pass to [`Reactor::listen`](crate::reactor::Reactor::listen).
    pub fn factory(
        room: Rc<RefCell<Fanout>>,
        echo: bool,
    ) -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        move |_peer| Box::new(RawChatServer::with_echo(room.clone(), echo))
    }
}

impl Handler for RawChatServer {
    fn state_name(&self) -> &'static str {
        "Relaying"
    }

    /// `clients.append(curr_client)`: in the room from the moment it is accepted.
    fn opened(&mut self, cx: &mut Context<'_>) {
        self.room.borrow_mut().join(cx.token());
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.framer.handle_bytes(bytes);
        let mut room = self.room.borrow_mut();
        while let Some(message) = self.framer.poll_event() {
            if !room.contains(cx.token()) {
                return; // left, or dropped as too slow: the rest of this read is dropped
            }
            if is_byebye(&message) {
                room.catch_up_on_leaving(cx); // what was said just before still reaches it
                room.leave(cx.token());
                cx.close();
                return;
            }
            let exclude = (!self.echo).then(|| cx.token());
            let slow = room.publish(cx, exclude, |log| log.extend_from_slice(&message));
            for slow in slow {
                log::info!("chat-raw: {slow} dropped: more than the cap behind, unread");
                cx.on(slow).abort();
            }
        }
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.room.borrow_mut().pull(cx);
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        let mut room = self.room.borrow_mut();
        room.catch_up_on_leaving(cx); // a half-closed peer still reads the last lines
        room.leave(cx.token());
        cx.close();
    }

    fn closed(&mut self, cx: &mut Context<'_>, _reason: &CloseReason) {
        self.room.borrow_mut().leave(cx.token());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;

    #[test]
    fn every_read_goes_to_everyone_unchanged_and_byebye_leaves_silently() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Fanout::default()));
        let a = bed.open(Box::new(RawChatServer::new(room.clone())));
        let b = bed.open(Box::new(RawChatServer::new(room.clone())));
        assert_eq!(bed.read_all(a), b"", "no greeting");
        bed.data(a, "alice: привет".as_bytes());
        bed.data(b, b"bob: hi\xff");
        let both = ["alice: привет".as_bytes(), b"bob: hi\xff"].concat();
        assert_eq!(bed.read_all(a), both);
        assert_eq!(bed.read_all(b), both);
        bed.data(b, b"byebye");
        assert!(bed.is_closing(b));
        assert_eq!(bed.read_all(a), b"", "the lesson tells no one");
        assert_eq!(room.borrow().len(), 1);
        // From nc, byebye comes with a newline; that leaves too.
        let c = bed.open(Box::new(RawChatServer::new(room.clone())));
        bed.data(c, b"byebye\n");
        assert!(bed.is_closing(c));
        assert_eq!(room.borrow().len(), 1);
    }

    #[test]
    fn a_read_longer_than_1024_bytes_is_relayed_as_the_lesson_would_in_pieces() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Fanout::default()));
        let a = bed.open(Box::new(RawChatServer::new(room.clone())));
        let big = vec![b'z'; 2500];
        bed.data(a, &big);
        assert_eq!(bed.read_all(a), big, "every byte, in order");
        assert_eq!(room.borrow().messages, 3, "1024 + 1024 + 452");
        bed.eof(a);
        assert!(room.borrow().is_empty());
    }
}
