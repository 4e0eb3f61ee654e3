//! One line-mode chat connection: bytes to lines ([`LineFramer`]), lines to commands
//! ([`Session`]), commands to the [`Room`].
//!
//! ```text
//! callback   what happens
//! opened     greeting: "*** Welcome ... Type your nickname and press Enter."; arm the
//!            nickname timer
//! data       frame lines; each line through the session; act on its command
//! timer      still no nickname: "!!! no nickname within 60 s: closing"; close
//! drained    copy the room's next lines (from its log) into our queue: see `fanout`
//! eof        a last line without LF still counts; leave; close after flushing
//! shutdown   "*** the server is shutting down"; close after flushing
//! closed     leave, if still in the room (reset, shutdown): "*** nick left"
//! ```
//!
//! Every reply goes into this connection's output buffer; every broadcast goes into the
//! room's log once, and each member copies what it has not seen into its buffer in
//! `drained`, right before the reactor writes it: one write per member per tick, however
//! many lines arrived in that tick.

use super::room::{JoinError, Room};
use crate::reactor::{CloseReason, Context, Handler, TimerId};
use netloop_protocols::chat::{Command, CommandError, Frame, LineFramer, Session, State, format};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// How long a new connection has to choose a nickname. A person reads the greeting and
/// types a name in seconds; a socket silent for a minute is holding a connection slot,
/// not joining. (Members are never timed out: a chat is read far more than it is written.)
pub const NICK_TIMEOUT: Duration = Duration::from_secs(60);

/// The nickname timer, armed in `opened`, cancelled by the join.
const NICK_TIMER: TimerId = TimerId(1);

/// One accepted line-mode chat connection.
#[derive(Debug)]
pub struct ChatServer {
    room: Rc<RefCell<Room>>,
    framer: LineFramer,
    session: Session,
    nick_timeout: Duration,
}

impl ChatServer {
    /// A connection to `room`, with [`NICK_TIMEOUT`] to choose a nickname.
    pub fn new(room: Rc<RefCell<Room>>) -> ChatServer {
        ChatServer::with_nick_timeout(room, NICK_TIMEOUT)
    }

    /// A connection to `room` that is closed if it has not joined within `nick_timeout`.
    pub fn with_nick_timeout(room: Rc<RefCell<Room>>, nick_timeout: Duration) -> ChatServer {
        ChatServer {
            room,
            framer: LineFramer::new(),
            session: Session::new(),
            nick_timeout,
        }
    }

    /// The factory to pass to [`Reactor::listen`](crate::reactor::Reactor::listen): every
    /// connection it makes shares `room`.
    pub fn factory(room: Rc<RefCell<Room>>) -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        move |_peer| Box::new(ChatServer::new(room.clone()))
    }

    /// Acts on every frame the framer has ready.
    fn handle_frames(&mut self, cx: &mut Context<'_>) {
        while let Some(frame) = self.framer.poll_event() {
            // After /quit the session refuses every line (`AlreadyLeft`), and a member the
            // room dropped as too slow is no longer in it: the rest of the read says nothing.
            // (Not `cx.output()` as a probe: asking for the buffer takes one from the pool.)
            match frame {
                Frame::Line(line) => self.handle_line(cx, &line),
                Frame::TooLong => {
                    if let Some(out) = self.room.borrow_mut().reply(cx) {
                        format::line_too_long(self.framer.max_line(), out);
                    }
                }
            }
        }
    }

    fn handle_line(&mut self, cx: &mut Context<'_>, line: &str) {
        let command = self.session.handle_line(line);
        let mut room = self.room.borrow_mut();
        match command {
            Ok(Command::Join(nick) | Command::Rename(nick)) => match room.join(cx, nick.clone()) {
                Ok(()) => {
                    self.session.handle_nick_accepted(nick);
                    cx.cancel_timer(NICK_TIMER);
                }
                Err(JoinError::Taken(nick)) => {
                    if let Some(out) = room.reply(cx) {
                        format::nick_taken(&nick, out);
                    }
                }
            },
            Ok(Command::Message(text)) => {
                room.message(cx, &text);
            }
            Ok(Command::Me(action)) => {
                room.action(cx, &action);
            }
            Ok(Command::Who) => room.who(cx),
            Ok(Command::Quit) => {
                room.leave(cx);
                cx.close();
            }
            // A blank line says nothing; a line after /quit in the same read is dropped.
            Ok(Command::Blank) | Err(CommandError::AlreadyLeft) => {}
            Err(e) => {
                if let Some(out) = room.reply(cx) {
                    format::error(&e.to_string(), out);
                }
            }
        }
    }
}

impl Handler for ChatServer {
    fn state_name(&self) -> &'static str {
        match self.session.state() {
            State::AwaitingNick => "AwaitingNick",
            State::Chatting(_) => "Chatting",
            State::Left => "Left",
        }
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        if let Some(out) = cx.output() {
            format::greeting(out);
        }
        cx.set_timer(NICK_TIMER, self.nick_timeout);
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        if id == NICK_TIMER && matches!(self.session.state(), State::AwaitingNick) {
            if let Some(out) = cx.output() {
                format::no_nickname(self.nick_timeout.as_secs(), out);
            }
            cx.close();
        }
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.framer.handle_bytes(bytes);
        self.handle_frames(cx);
    }

    /// `printf 'alice\nhi' | nc ...`: the unterminated `hi` is still said, then the peer
    /// leaves. Our output (the peer may be half-closed and still reading) is flushed first.
    fn eof(&mut self, cx: &mut Context<'_>) {
        self.framer.handle_eof();
        self.handle_frames(cx);
        self.room.borrow_mut().leave(cx);
        cx.close();
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.room.borrow_mut().pull(cx);
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        if let Some(out) = self.room.borrow_mut().reply(cx) {
            format::shutting_down(out);
        }
        cx.close();
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        if let Some(nick) = self.room.borrow_mut().leave(cx) {
            log::debug!("chat: {nick} left ({reason})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::Token;
    use crate::reactor::testing::TestBed;

    const GREETING: &str = "*** Welcome to netloop chat. Type your nickname and press Enter.\n";

    /// Everything the peer would read now: output taken until the next pull from the
    /// room's log (in `drained`) brings no more.
    fn text(bed: &mut TestBed, conn: Token) -> String {
        let mut all = Vec::new();
        loop {
            let got = bed.take_output(conn);
            if got.is_empty() {
                break;
            }
            all.extend(got);
        }
        String::from_utf8(all).expect("the server writes UTF-8")
    }

    fn joined(bed: &mut TestBed, room: &Rc<RefCell<Room>>, nick: &str) -> Token {
        let conn = bed.open(Box::new(ChatServer::new(room.clone())));
        assert_eq!(text(bed, conn), GREETING);
        bed.data(conn, format!("{nick}\n").as_bytes());
        conn
    }

    #[test]
    fn a_dialog_of_two_as_nc_users_see_it() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::default()));
        let a = joined(&mut bed, &room, "alice");
        assert_eq!(text(&mut bed, a), "*** alice joined\n");
        let b = joined(&mut bed, &room, "bob");
        assert_eq!(text(&mut bed, a), "*** bob joined\n");
        assert_eq!(text(&mut bed, b), "*** bob joined\n");
        // Several lines in one read, one of them split across reads, CRLF and all.
        bed.data(a, b"hello, bob\r\n/who\n/me wav");
        bed.data(a, b"es\n\n/nick BOB\n");
        assert_eq!(
            text(&mut bed, a),
            "<alice> hello, bob\n*** here: alice, bob\n* alice waves\n\
             !!! the nickname BOB is taken\n"
        );
        assert_eq!(text(&mut bed, b), "<alice> hello, bob\n* alice waves\n");
        bed.data(b, b"/nick Robert\n/dance\n");
        assert_eq!(text(&mut bed, a), "*** bob is now known as Robert\n");
        assert!(
            text(&mut bed, b).starts_with(
                "*** bob is now known as Robert\n!!! unknown command /dance (commands:"
            )
        );
        // byebye leaves and closes; what follows it in the same read is dropped.
        bed.data(b, b"byebye\nlate\n");
        assert!(bed.is_closing(b));
        assert_eq!(text(&mut bed, a), "*** Robert left\n");
        assert_eq!(text(&mut bed, b), "");
        assert!(bed.is_closed(b));
        assert_eq!(room.borrow().len(), 1);
    }

    #[test]
    fn the_nickname_must_be_valid_and_free_before_anything_is_said() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::default()));
        let a = joined(&mut bed, &room, "alice");
        let b = joined(&mut bed, &room, "two words");
        assert_eq!(text(&mut bed, b), "!!! a nickname cannot contain spaces\n");
        bed.data(b, b"ALICE\n/me waves\n");
        assert_eq!(
            text(&mut bed, b),
            "!!! the nickname ALICE is taken\n!!! choose a nickname first\n"
        );
        assert_eq!(text(&mut bed, a), "*** alice joined\n", "b never spoke");
        // /who works before joining; it lists members only.
        bed.data(b, b"/who\n");
        assert_eq!(text(&mut bed, b), "*** here: alice\n");
    }

    #[test]
    fn eof_says_the_last_unterminated_line_then_leaves() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::default()));
        let a = joined(&mut bed, &room, "alice");
        let b = joined(&mut bed, &room, "bob");
        text(&mut bed, a);
        bed.data(b, b"bye for now");
        assert_eq!(text(&mut bed, a), "");
        bed.eof(b);
        assert_eq!(
            text(&mut bed, a),
            "<bob> bye for now\n*** bob left\n",
            "said, then left"
        );
        assert!(bed.is_closing(b));
        assert!(text(&mut bed, b).starts_with("*** bob joined\n<bob> bye for now\n"));
        assert!(bed.is_closed(b));
        assert_eq!(room.borrow().len(), 1);
    }

    #[test]
    fn a_member_that_stops_reading_is_cut_off_at_once_and_the_room_is_told() {
        let mut bed = TestBed::new();
        // A cap of 100 bytes, so a few lines are enough.
        let room = Rc::new(RefCell::new(Room::new(100)));
        let a = joined(&mut bed, &room, "alice");
        let b = joined(&mut bed, &room, "bob");
        text(&mut bed, a);
        let mut said = 0;
        let mut got = String::new();
        while !bed.is_closed(b) {
            // A tick apiece: only bytes left unread from earlier ticks count as behind.
            bed.advance(std::time::Duration::from_millis(1));
            bed.data(a, format!("line {said} is about thirty bytes\n").as_bytes());
            said += 1;
            got += &text(&mut bed, a); // alice reads everything
            assert!(said < 10, "bob was never dropped");
        }
        assert!(said > 2, "not before the cap: {said}");
        assert_eq!(room.borrow().len(), 1);
        assert_eq!(room.borrow().fanout().dropped_slow, 1);
        assert!(
            got.ends_with(&format!(
                "<alice> line {} is about thirty bytes\n*** bob was disconnected: too slow\n",
                said - 1
            )),
            "{got}"
        );
        bed.data(a, b"/who\n");
        assert_eq!(text(&mut bed, a), "*** here: alice\n");
        bed.data(a, b"still here\n");
        assert_eq!(text(&mut bed, a), "<alice> still here\n");
    }

    #[test]
    fn a_room_without_echo_sends_a_message_to_everyone_but_its_sender() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::with_echo(chat_cap(), false)));
        let a = joined(&mut bed, &room, "alice");
        assert_eq!(text(&mut bed, a), "*** alice joined\n", "notices: everyone");
        let b = joined(&mut bed, &room, "bob");
        text(&mut bed, a);
        text(&mut bed, b);
        bed.data(a, b"hello\n/me waves\n");
        assert_eq!(text(&mut bed, a), "");
        assert_eq!(text(&mut bed, b), "<alice> hello\n* alice waves\n");
    }

    fn chat_cap() -> usize {
        crate::services::chat::MAX_UNREAD
    }

    #[test]
    fn an_overlong_line_is_refused_and_the_next_one_is_fine() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::default()));
        let a = joined(&mut bed, &room, "alice");
        text(&mut bed, a);
        let long = vec![b'x'; netloop_protocols::chat::MAX_LINE + 10];
        bed.data(a, &long);
        bed.data(a, b"\nok\n");
        assert_eq!(
            text(&mut bed, a),
            "!!! line longer than 4096 bytes, dropped\n<alice> ok\n"
        );
    }

    #[test]
    fn a_connection_without_a_nickname_is_closed_after_the_timeout_a_member_is_not() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::default()));
        let silent = bed.open(Box::new(ChatServer::new(room.clone())));
        let typing = bed.open(Box::new(ChatServer::new(room.clone())));
        assert_eq!(text(&mut bed, silent), GREETING);
        assert_eq!(text(&mut bed, typing), GREETING);
        // Lines that are not a nickname do not count as joining.
        bed.data(
            typing, b"/who
",
        );
        bed.advance(NICK_TIMEOUT - Duration::from_secs(1));
        assert!(!bed.is_closing(silent), "not before the timeout");
        bed.data(
            typing, b"alice
",
        );
        bed.advance(Duration::from_secs(2));
        assert!(bed.is_closing(silent));
        assert_eq!(
            text(&mut bed, silent),
            "!!! no nickname within 60 s: closing\n"
        );
        assert!(bed.is_closed(silent));
        // The member stays, however long it is silent.
        bed.advance(NICK_TIMEOUT * 10);
        assert!(!bed.is_closing(typing));
        assert_eq!(room.borrow().len(), 1);
    }

    #[test]
    fn slash_quit_leaves_like_byebye() {
        let mut bed = TestBed::new();
        let room = Rc::new(RefCell::new(Room::default()));
        let a = joined(&mut bed, &room, "alice");
        let b = joined(&mut bed, &room, "bob");
        text(&mut bed, a);
        bed.data(b, b"/QUIT see you\n");
        assert!(bed.is_closing(b));
        assert_eq!(text(&mut bed, a), "*** bob left\n");
        assert!(room.borrow().nick_of(b).is_none());
    }
}
