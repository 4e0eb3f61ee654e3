//! The chat client (lesson program 12): what you type goes to the server, what the server
//! sends is printed, and ONE reactor thread waits for both. The lesson needs two threads
//! for this (its `RefreshScreenThread` blocks in `recv` while the main thread blocks in
//! `input`); here stdin and the socket are two entries in the same slab.
//!
//! Two modes:
//!
//! - [`Mode::Lines`] (netloop's chat): every line typed is sent with its LF; the server's
//!   lines are printed as they are. `--nick NAME` sends the nickname first. End of input
//!   sends `/quit`, and the client exits when the server closes.
//! - [`Mode::Raw`] (the lesson's chat): the first line typed is the nickname (unless given);
//!   then each line is sent as `nickname: text` with no line ending, `byebye` as is; every
//!   read from the server is printed on its own line, as `print(data.decode('utf-8'))`
//!   does. End of input sends `byebye`.
//!
//! The client's state is shared by its two handlers, [`ChatClientConn`] (the socket) and
//! [`ChatClientStdin`], through an `Rc<RefCell<ChatClient>>`.

use crate::reactor::{CloseReason, Context, Handler, Token};
use netloop_protocols::chat::is_byebye;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// Which chat the client speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// netloop's line-framed chat.
    Lines,
    /// The lesson's framing: one `send` per message, `nickname: text`.
    Raw,
}

/// How the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The server closed the connection (after our `/quit`, or on its own).
    ServerClosed,
    /// The connection could not be made, or broke.
    Failed(String),
}

/// The client's state.
pub struct ChatClient {
    mode: Mode,
    nick: Option<String>,
    conn: Option<Token>,
    stdin: Option<Token>,
    /// Bytes for the server typed before the connection was known.
    early: Vec<u8>,
    /// Bytes of stdin after the last LF.
    partial: Vec<u8>,
    /// We said goodbye (`/quit` or `byebye`); the server will close.
    said_bye: bool,
    interactive: bool,
    out: Box<dyn Write>,
    /// Set when the session is over.
    pub ending: Option<Ending>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("nick", &self.nick)
            .field("conn", &self.conn)
            .field("stdin", &self.stdin)
            .field("said_bye", &self.said_bye)
            .field("ending", &self.ending)
            .finish_non_exhaustive()
    }
}

impl ChatClient {
    /// A client in `mode`, printing to `out`. `nick`, if given, is sent first (lines) or
    /// used for every message (raw). `interactive` shows prompts (raw mode, a terminal).
    pub fn new(
        mode: Mode,
        nick: Option<String>,
        interactive: bool,
        out: Box<dyn Write>,
    ) -> Rc<RefCell<ChatClient>> {
        Rc::new(RefCell::new(ChatClient {
            mode,
            nick,
            conn: None,
            stdin: None,
            early: Vec::new(),
            partial: Vec::new(),
            said_bye: false,
            interactive,
            out,
            ending: None,
        }))
    }

    /// Queues `bytes` for the server (kept until the connection's handler has opened).
    fn send(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        match self.conn {
            Some(conn) => {
                cx.on(conn).write(bytes);
            }
            None => self.early.extend_from_slice(bytes),
        }
    }

    fn print(&mut self, bytes: &[u8]) {
        // A closed stdout (the user piped us into `head`) is not a reason to stop chatting.
        let _ = self.out.write_all(bytes);
        let _ = self.out.flush();
    }

    fn prompt(&mut self) {
        if self.interactive && self.mode == Mode::Raw {
            let prompt: &[u8] = if self.nick.is_none() {
                b"nickname: "
            } else {
                b"say it: "
            };
            self.print(prompt);
        }
    }

    /// One line the user typed, without its line ending.
    fn handle_input(&mut self, cx: &mut Context<'_>, line: &str) {
        match self.mode {
            Mode::Lines => {
                let mut bytes = Vec::with_capacity(line.len() + 1);
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                self.send(cx, &bytes);
                let command = line.trim().to_ascii_lowercase();
                if line == "byebye" || command == "/quit" || command.starts_with("/quit ") {
                    self.said_bye = true;
                }
            }
            Mode::Raw => match &self.nick {
                None => {
                    let nick = line.trim();
                    if !nick.is_empty() {
                        self.nick = Some(nick.to_string());
                    }
                }
                Some(_) if is_byebye(line.as_bytes()) => {
                    self.send(cx, b"byebye");
                    self.said_bye = true;
                }
                Some(nick) => {
                    let message = format!("{nick}: {line}");
                    self.send(cx, message.as_bytes());
                }
            },
        }
    }

    /// No more input: say goodbye, so the server closes and the client can exit.
    fn handle_input_end(&mut self, cx: &mut Context<'_>) {
        if self.said_bye {
            return;
        }
        self.said_bye = true;
        match self.mode {
            Mode::Lines => self.send(cx, b"/quit\n"),
            Mode::Raw => self.send(cx, b"byebye"),
        }
    }

    fn finish(&mut self, cx: &mut Context<'_>, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
        }
        for t in [self.conn.take(), self.stdin.take()].into_iter().flatten() {
            cx.on(t).close();
        }
    }
}

/// The socket side of a [`ChatClient`].
#[derive(Debug)]
pub struct ChatClientConn(pub Rc<RefCell<ChatClient>>);

/// The stdin side of a [`ChatClient`].
#[derive(Debug)]
pub struct ChatClientStdin(pub Rc<RefCell<ChatClient>>);

impl Handler for ChatClientConn {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut c = self.0.borrow_mut();
        c.conn = Some(cx.token());
        if c.mode == Mode::Lines {
            if let Some(nick) = c.nick.clone() {
                cx.write(format!("{nick}\n").as_bytes());
            }
        }
        let early = std::mem::take(&mut c.early);
        cx.write(&early);
    }

    fn data(&mut self, _cx: &mut Context<'_>, bytes: &[u8]) {
        let mut c = self.0.borrow_mut();
        match c.mode {
            Mode::Lines => c.print(bytes),
            Mode::Raw => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                c.print(format!("{text}\n").as_bytes());
                c.prompt();
            }
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().finish(cx, Ending::ServerClosed);
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        let ending = match reason {
            CloseReason::Done | CloseReason::PeerClosed => Ending::ServerClosed,
            other => Ending::Failed(other.to_string()),
        };
        self.0.borrow_mut().finish(cx, ending);
    }
}

impl Handler for ChatClientStdin {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut c = self.0.borrow_mut();
        c.stdin = Some(cx.token());
        c.prompt();
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let mut c = self.0.borrow_mut();
        c.partial.extend_from_slice(bytes);
        while let Some(lf) = c.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = c.partial.drain(..=lf).collect();
            let line = String::from_utf8_lossy(&line);
            c.handle_input(cx, line.trim_end_matches(['\n', '\r']));
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        let mut c = self.0.borrow_mut();
        if !c.partial.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut c.partial)).into_owned();
            c.handle_input(cx, line.trim_end_matches('\r'));
        }
        c.handle_input_end(cx);
        c.stdin = None;
        cx.close();
    }
}

/// A `Write` into a shared buffer, for tests (and anyone who wants the transcript).
#[derive(Clone, Debug, Default)]
pub struct SharedBuf(pub Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;

    fn client(mode: Mode, nick: Option<&str>) -> (Rc<RefCell<ChatClient>>, SharedBuf) {
        let screen = SharedBuf::default();
        let c = ChatClient::new(
            mode,
            nick.map(str::to_string),
            false,
            Box::new(screen.clone()),
        );
        (c, screen)
    }

    #[test]
    fn lines_mode_passes_lines_both_ways_and_quits_at_end_of_input() {
        let mut bed = TestBed::new();
        let (c, screen) = client(Mode::Lines, Some("alice"));
        let stdin = bed.open(Box::new(ChatClientStdin(c.clone())));
        bed.data(stdin, b"typed before the connection\n");
        let conn = bed.open(Box::new(ChatClientConn(c.clone())));
        assert_eq!(
            bed.take_output(conn),
            b"alice\ntyped before the connection\n"
        );
        bed.data(stdin, b"hi\r\nhow are");
        bed.data(stdin, b" you\n");
        assert_eq!(bed.take_output(conn), b"hi\nhow are you\n");
        bed.data(conn, b"*** alice joined\n<alice> hi\n");
        assert_eq!(*screen.0.borrow(), b"*** alice joined\n<alice> hi\n");
        bed.data(stdin, b"no newline at the end");
        bed.eof(stdin);
        assert_eq!(bed.take_output(conn), b"no newline at the end\n/quit\n");
        assert!(c.borrow().ending.is_none(), "waits for the server to close");
        bed.eof(conn);
        assert_eq!(c.borrow().ending, Some(Ending::ServerClosed));
        assert!(bed.is_closing(conn));
    }

    #[test]
    fn a_typed_quit_is_not_repeated_at_end_of_input() {
        let mut bed = TestBed::new();
        let (c, _screen) = client(Mode::Lines, None);
        let conn = bed.open(Box::new(ChatClientConn(c.clone())));
        let stdin = bed.open(Box::new(ChatClientStdin(c.clone())));
        bed.data(stdin, b"bob\n/quit\n");
        bed.eof(stdin);
        assert_eq!(bed.take_output(conn), b"bob\n/quit\n");
    }

    #[test]
    fn raw_mode_speaks_the_lessons_client() {
        let mut bed = TestBed::new();
        let (c, screen) = client(Mode::Raw, None);
        let conn = bed.open(Box::new(ChatClientConn(c.clone())));
        let stdin = bed.open(Box::new(ChatClientStdin(c.clone())));
        bed.data(stdin, b"alice\n");
        assert_eq!(bed.take_output(conn), b"", "the nickname is not sent");
        bed.data(stdin, b"hello\n");
        assert_eq!(bed.take_output(conn), b"alice: hello");
        bed.data(conn, b"bob: hi");
        assert_eq!(*screen.0.borrow(), b"bob: hi\n");
        bed.data(stdin, b"byebye\n");
        assert_eq!(bed.take_output(conn), b"byebye");
        bed.eof(stdin);
        assert_eq!(bed.take_output(conn), b"", "byebye only once");
    }
}
