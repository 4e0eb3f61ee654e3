//! Replays `session.transcript` through a small in-memory room built only from this
//! module's parts: [`LineFramer`], [`Session`], the [`format`] functions and a map keyed
//! on [`Nick`]. It is the smallest honest chat server, and a sketch of what the real
//! service does around the reactor.
//!
//! The room's rules: the greeting on connect; a join or rename is refused if another
//! connection holds the nickname; messages, actions and notices go to everyone who has
//! joined, the sender included (as in the lesson, where the server sends to all clients);
//! errors and `/who` go to the sender only; `/quit` or `byebye` leaves and closes.

use std::collections::{BTreeMap, VecDeque};

use super::{Command, CommandError, Frame, LineFramer, MAX_LINE, Nick, Session, format};

#[derive(Default)]
struct Room {
    connections: BTreeMap<usize, Connection>,
    nicks: BTreeMap<Nick, usize>,
}

struct Connection {
    framer: LineFramer,
    session: Session,
    /// What the server has written to this connection and the transcript not yet checked.
    received: VecDeque<String>,
}

impl Room {
    fn open(&mut self, id: usize) {
        let mut out = Vec::new();
        format::greeting(&mut out);
        let connection = Connection {
            framer: LineFramer::new(),
            session: Session::new(),
            received: VecDeque::new(),
        };
        self.connections.insert(id, connection);
        self.deliver(id, &out);
    }

    fn handle_bytes(&mut self, id: usize, bytes: &[u8]) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        connection.framer.handle_bytes(bytes);
        let frames: Vec<Frame> = std::iter::from_fn(|| connection.framer.poll_event()).collect();
        for frame in frames {
            match frame {
                Frame::Line(line) => self.handle_line(id, &line),
                Frame::TooLong => {
                    let mut out = Vec::new();
                    format::line_too_long(MAX_LINE, &mut out);
                    self.deliver(id, &out);
                }
            }
        }
    }

    fn handle_line(&mut self, id: usize, line: &str) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        let old = connection.session.nick().cloned();
        let command = connection.session.handle_line(line);
        let mut out = Vec::new();
        match command {
            Ok(Command::Join(nick) | Command::Rename(nick)) => {
                if self.nicks.get(&nick).is_some_and(|&holder| holder != id) {
                    format::nick_taken(&nick, &mut out);
                    return self.deliver(id, &out);
                }
                connection.session.handle_nick_accepted(nick.clone());
                match old {
                    Some(old) => {
                        self.nicks.remove(&old);
                        format::renamed(&old, &nick, &mut out);
                    }
                    None => format::joined(&nick, &mut out),
                }
                self.nicks.insert(nick, id);
                self.broadcast(&out);
            }
            Ok(Command::Message(text)) => {
                if let Some(nick) = &old {
                    format::message(nick, &text, &mut out);
                    self.broadcast(&out);
                }
            }
            Ok(Command::Me(action)) => {
                if let Some(nick) = &old {
                    format::action(nick, &action, &mut out);
                    self.broadcast(&out);
                }
            }
            Ok(Command::Who) => {
                format::who(self.nicks.keys(), &mut out);
                self.deliver(id, &out);
            }
            Ok(Command::Quit) => {
                if let Some(nick) = old {
                    self.nicks.remove(&nick);
                    format::left(&nick, &mut out);
                    self.broadcast(&out);
                }
            }
            Ok(Command::Blank) | Err(CommandError::AlreadyLeft) => {}
            Err(e) => {
                format::error(&e.to_string(), &mut out);
                self.deliver(id, &out);
            }
        }
    }

    fn broadcast(&mut self, bytes: &[u8]) {
        let members: Vec<usize> = self.nicks.values().copied().collect();
        for id in members {
            self.deliver(id, bytes);
        }
    }

    fn deliver(&mut self, id: usize, bytes: &[u8]) {
        if let Some(connection) = self.connections.get_mut(&id) {
            let text = std::str::from_utf8(bytes).expect("the server writes UTF-8");
            connection.received.extend(text.lines().map(str::to_string));
        }
    }

    fn assert_all_checked(&self, step: &str) {
        for (id, connection) in &self.connections {
            assert!(
                connection.received.is_empty(),
                "before `{step}`: connection {id} received lines the transcript does not \
                 list: {:?}",
                connection.received
            );
        }
    }
}

/// Splits `C12: text` into (`C`, 12, `text`); `+3` into (`+`, 3, ``).
fn parse_step(step: &str) -> (char, usize, &str) {
    let kind = step.chars().next().expect("steps are not empty");
    let rest = &step[1..];
    let (id, text) = rest.split_once(':').unwrap_or((rest, ""));
    let id = id.trim().parse().expect("a connection number");
    (kind, id, text.strip_prefix(' ').unwrap_or(text))
}

/// Plays the transcript, sending each client line whole with LF, or (as a slow link or
/// a telnet user would) one byte at a time with CRLF: the dialog must not change.
fn play(byte_by_byte: bool) {
    let mut room = Room::default();
    for step in include_str!("session.transcript").lines() {
        if step.is_empty() || step.starts_with('#') {
            continue;
        }
        match parse_step(step) {
            ('+', id, _) => {
                room.assert_all_checked(step);
                room.open(id);
            }
            ('C', id, text) => {
                room.assert_all_checked(step);
                let text = text.replace("\\e", "\u{1b}");
                if byte_by_byte {
                    for byte in format!("{text}\r\n").bytes() {
                        room.handle_bytes(id, &[byte]);
                    }
                } else {
                    room.handle_bytes(id, format!("{text}\n").as_bytes());
                }
            }
            ('S', id, text) => {
                let got = room
                    .connections
                    .get_mut(&id)
                    .and_then(|c| c.received.pop_front());
                assert_eq!(got.as_deref(), Some(text), "at `{step}`");
            }
            ('=', id, text) => {
                let state = room.connections[&id].session.state().to_string();
                assert_eq!(state, text, "at `{step}`");
            }
            _ => panic!("unknown transcript step `{step}`"),
        }
    }
    room.assert_all_checked("the end");
}

#[test]
fn the_transcript_plays_out() {
    play(false);
}

#[test]
fn the_transcript_plays_out_byte_by_byte_with_crlf() {
    play(true);
}
