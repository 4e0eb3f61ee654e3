//! One client's side of the chat, as the server sees it: a line in, a [`Command`] out.
//!
//! The command language (one line each, as framed by [`super::LineFramer`]):
//!
//! ```text
//! NAME            the first line is the nickname (as the lesson's client asks for one first)
//! /nick NAME      choose or change the nickname
//! /who            list who is in the room
//! /me ACTION      an action: "* alice waves"
//! /quit           leave; so does a line that is exactly "byebye", as in the lesson
//! //text          a message that starts with "/" (the first "/" is dropped)
//! anything else   a message
//! ```
//!
//! Command names are case-insensitive (`/WHO`). An empty or all-blank line is
//! [`Command::Blank`]: `nc` users press Enter, and that should neither speak nor fail.
//!
//! # States
//!
//! ```text
//! state         input                       next          result
//! AwaitingNick  NAME or /nick NAME          AwaitingNick  Join(nick)      (room decides)
//! AwaitingNick  handle_nick_accepted(n)     Chatting(n)   -
//! AwaitingNick  /me ACTION                  AwaitingNick  Err(NotJoined)
//! Chatting(n)   /nick NAME                  Chatting(n)   Rename(nick)    (room decides)
//! Chatting(_)   handle_nick_accepted(m)     Chatting(m)   -
//! Chatting(n)   text, /me ACTION            Chatting(n)   Message, Me
//! any but Left  /who, blank line            unchanged     Who, Blank
//! any but Left  /quit, byebye               Left          Quit
//! Left          any line                    Left          Err(AlreadyLeft)
//! ```
//!
//! A nickname change is two steps because uniqueness is the room's business, not the
//! session's: [`Session::handle_line`] proposes the nickname, the server checks its room
//! and, only if the name is free, calls [`Session::handle_nick_accepted`].

use std::fmt;

use super::nick::{Nick, NickError};

/// What a line asks the server to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Enter the room under this nickname (the first line, or `/nick` before joining).
    Join(Nick),
    /// Change nickname (`/nick` after joining). May differ from the current one only in
    /// case, which the room should allow since the key is the same.
    Rename(Nick),
    /// List the room (`/who`).
    Who,
    /// An action (`/me waves`): the text after `/me `.
    Me(String),
    /// A message to the room, as typed (formatting sanitizes it).
    Message(String),
    /// Leave (`/quit` or `byebye`). The session is now [`State::Left`].
    Quit,
    /// A blank line: nothing to do.
    Blank,
}

/// A line the session could not accept. All but [`CommandError::AlreadyLeft`] are the
/// peer's mistakes, to be answered with [`super::format::error`] and the `Display` text;
/// the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The proposed nickname is not valid.
    BadNick(NickError),
    /// `/something` that is not a command; holds `something`.
    UnknownCommand(String),
    /// A command without its argument; holds the usage, like `/nick NAME`.
    Usage(&'static str),
    /// `/me` before choosing a nickname.
    NotJoined,
    /// The caller fed a line after [`Command::Quit`] (a pipelined line in the same read):
    /// the caller's misuse, not the peer's; drop the line, do not answer it.
    AlreadyLeft,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::BadNick(e) => write!(f, "{e}"),
            CommandError::UnknownCommand(name) => write!(
                f,
                "unknown command /{name} (commands: /nick NAME, /who, /me ACTION, /quit; \
                 start a message with // to begin it with /)"
            ),
            CommandError::Usage(usage) => write!(f, "usage: {usage}"),
            CommandError::NotJoined => write!(f, "choose a nickname first"),
            CommandError::AlreadyLeft => write!(f, "this session has already left"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Where a session is; see the module doc for the transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Connected, no nickname accepted yet.
    AwaitingNick,
    /// In the room under this nickname.
    Chatting(Nick),
    /// Asked to leave; the server should flush and close.
    Left,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::AwaitingNick => write!(f, "awaiting nickname"),
            State::Chatting(nick) => write!(f, "chatting as {nick}"),
            State::Left => write!(f, "left"),
        }
    }
}

/// One client's command state. Feed it each line from the framer with
/// [`Session::handle_line`]; act on the [`Command`]; confirm nicknames with
/// [`Session::handle_nick_accepted`].
///
/// `handle_line` returns its command rather than queueing it for a `poll_event` (the
/// crate doc's one grammar): each line makes exactly one command or one error, so a queue
/// would never hold more than one, and the caller would poll right after every call.
#[derive(Debug, Clone)]
pub struct Session {
    state: State,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// What a line says, before the session's state gives it meaning.
enum Parsed {
    Nick(Nick),
    Who,
    Me(String),
    Quit,
    Text(String),
    Blank,
}

impl Session {
    /// A session that has just connected.
    pub fn new() -> Self {
        Session {
            state: State::AwaitingNick,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The accepted nickname, once there is one (and until the session leaves).
    pub fn nick(&self) -> Option<&Nick> {
        match &self.state {
            State::Chatting(nick) => Some(nick),
            State::AwaitingNick | State::Left => None,
        }
    }

    /// A line arrived (without its line ending).
    pub fn handle_line(&mut self, line: &str) -> Result<Command, CommandError> {
        let parsed = parse(line);
        match (&self.state, parsed) {
            (State::Left, _) => Err(CommandError::AlreadyLeft),
            (_, Err(e)) => Err(e),
            (_, Ok(Parsed::Quit)) => {
                self.state = State::Left;
                Ok(Command::Quit)
            }
            (_, Ok(Parsed::Who)) => Ok(Command::Who),
            (_, Ok(Parsed::Blank)) => Ok(Command::Blank),
            (State::AwaitingNick, Ok(Parsed::Nick(nick))) => Ok(Command::Join(nick)),
            (State::AwaitingNick, Ok(Parsed::Text(text))) => Nick::new(&text)
                .map(Command::Join)
                .map_err(CommandError::BadNick),
            (State::AwaitingNick, Ok(Parsed::Me(_))) => Err(CommandError::NotJoined),
            (State::Chatting(_), Ok(Parsed::Nick(nick))) => Ok(Command::Rename(nick)),
            (State::Chatting(_), Ok(Parsed::Text(text))) => Ok(Command::Message(text)),
            (State::Chatting(_), Ok(Parsed::Me(action))) => Ok(Command::Me(action)),
        }
    }

    /// The room accepted `nick` for this session (after a [`Command::Join`] or
    /// [`Command::Rename`]). Ignored once the session has left.
    pub fn handle_nick_accepted(&mut self, nick: Nick) {
        match self.state {
            State::AwaitingNick | State::Chatting(_) => self.state = State::Chatting(nick),
            State::Left => {}
        }
    }
}

/// Reads a line's form; the session's state decides what it means.
fn parse(line: &str) -> Result<Parsed, CommandError> {
    // Exactly, as the lesson compares it: "byebye" is how its client leaves.
    if line == "byebye" {
        return Ok(Parsed::Quit);
    }
    if line.trim().is_empty() {
        return Ok(Parsed::Blank);
    }
    if let Some(escaped) = line.strip_prefix("//") {
        return Ok(Parsed::Text(format!("/{escaped}")));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Parsed::Text(line.to_string()));
    };
    let (name, arg) = match command.split_once(char::is_whitespace) {
        Some((name, arg)) => (name, arg.trim()),
        None => (command, ""),
    };
    match name.to_ascii_lowercase().as_str() {
        "nick" if arg.is_empty() => Err(CommandError::Usage("/nick NAME")),
        "nick" => Nick::new(arg)
            .map(Parsed::Nick)
            .map_err(CommandError::BadNick),
        "who" => Ok(Parsed::Who),
        "me" if arg.is_empty() => Err(CommandError::Usage("/me ACTION")),
        "me" => Ok(Parsed::Me(arg.to_string())),
        "quit" => Ok(Parsed::Quit),
        _ => Err(CommandError::UnknownCommand(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::LineFramer;
    use crate::chat::framer::Frame;
    use crate::testing::same_every_split;

    fn nick(name: &str) -> Nick {
        Nick::new(name).expect("valid nick")
    }

    fn joined(name: &str) -> Session {
        let mut session = Session::new();
        session.handle_nick_accepted(nick(name));
        session
    }

    #[test]
    fn the_first_line_is_the_nickname() {
        let mut session = Session::new();
        assert_eq!(
            session.handle_line("  alice "),
            Ok(Command::Join(nick("alice")))
        );
        // Proposed, not yet accepted: the room has the last word.
        assert_eq!(session.state(), &State::AwaitingNick);
        assert_eq!(
            session.handle_line("/nick bob"),
            Ok(Command::Join(nick("bob")))
        );
        session.handle_nick_accepted(nick("bob"));
        assert_eq!(session.state(), &State::Chatting(nick("bob")));
        assert_eq!(session.nick(), Some(&nick("bob")));
    }

    #[test]
    fn a_bad_first_line_is_a_bad_nickname() {
        let mut session = Session::new();
        assert_eq!(
            session.handle_line("hello everyone"),
            Err(CommandError::BadNick(NickError::Whitespace))
        );
        assert_eq!(
            session.handle_line("/me waves"),
            Err(CommandError::NotJoined)
        );
        assert_eq!(
            session.handle_line("//x"),
            Err(CommandError::BadNick(NickError::StartsWithSlash))
        );
        assert_eq!(session.state(), &State::AwaitingNick);
    }

    #[test]
    fn every_command_after_joining() {
        let mut s = joined("alice");
        assert_eq!(s.handle_line("hello"), Ok(Command::Message("hello".into())));
        assert_eq!(
            s.handle_line("  indented"),
            Ok(Command::Message("  indented".into()))
        );
        assert_eq!(s.handle_line("/nick Bob"), Ok(Command::Rename(nick("bob"))));
        assert_eq!(
            s.handle_line("/NICK  carol  "),
            Ok(Command::Rename(nick("carol")))
        );
        assert_eq!(s.handle_line("/who"), Ok(Command::Who));
        assert_eq!(s.handle_line("/Who is here"), Ok(Command::Who));
        assert_eq!(
            s.handle_line("/me waves  "),
            Ok(Command::Me("waves".into()))
        );
        assert_eq!(
            s.handle_line("//etc/passwd"),
            Ok(Command::Message("/etc/passwd".into()))
        );
        assert_eq!(s.handle_line(""), Ok(Command::Blank));
        assert_eq!(s.handle_line(" \t "), Ok(Command::Blank));
        // "byebye" inside a sentence is just a message; alone it leaves.
        assert_eq!(
            s.handle_line("byebye all"),
            Ok(Command::Message("byebye all".into()))
        );
        assert_eq!(s.state(), &State::Chatting(nick("alice")));
        assert_eq!(s.handle_line("byebye"), Ok(Command::Quit));
        assert_eq!(s.state(), &State::Left);
        assert_eq!(s.handle_line("anything"), Err(CommandError::AlreadyLeft));
        s.handle_nick_accepted(nick("zed"));
        assert_eq!(s.state(), &State::Left);
    }

    #[test]
    fn quit_works_before_and_after_joining() {
        let mut s = Session::new();
        assert_eq!(s.handle_line("/quit"), Ok(Command::Quit));
        assert_eq!(s.state(), &State::Left);
        let mut s = joined("alice");
        assert_eq!(s.handle_line("/QUIT see you"), Ok(Command::Quit));
        assert_eq!(s.nick(), None);
        // Who works before joining: it only reads.
        assert_eq!(Session::new().handle_line("/who"), Ok(Command::Who));
    }

    #[test]
    fn command_errors_say_what_to_do() {
        let mut s = joined("alice");
        assert_eq!(
            s.handle_line("/dance"),
            Err(CommandError::UnknownCommand("dance".into()))
        );
        assert_eq!(
            s.handle_line("/"),
            Err(CommandError::UnknownCommand("".into()))
        );
        assert_eq!(
            s.handle_line("/nick"),
            Err(CommandError::Usage("/nick NAME"))
        );
        assert_eq!(
            s.handle_line("/nick   "),
            Err(CommandError::Usage("/nick NAME"))
        );
        assert_eq!(s.handle_line("/me"), Err(CommandError::Usage("/me ACTION")));
        assert_eq!(
            s.handle_line("/nick a b"),
            Err(CommandError::BadNick(NickError::Whitespace))
        );
        assert_eq!(s.state(), &State::Chatting(nick("alice")));
        assert_eq!(
            CommandError::UnknownCommand("dance".into()).to_string(),
            "unknown command /dance (commands: /nick NAME, /who, /me ACTION, /quit; \
             start a message with // to begin it with /)"
        );
        assert_eq!(
            CommandError::Usage("/me ACTION").to_string(),
            "usage: /me ACTION"
        );
        assert_eq!(
            CommandError::BadNick(NickError::Empty).to_string(),
            "a nickname needs at least one character"
        );
    }

    #[test]
    fn framed_lines_give_the_same_commands_however_split() {
        let input = b"alice\r\nhi all\n/me waves\n/who\nbyebye\nlate\n";
        let got = same_every_split(input, |pieces| {
            let mut framer = LineFramer::new();
            let mut session = Session::new();
            let mut results = Vec::new();
            for piece in pieces {
                framer.handle_bytes(piece);
                while let Some(Frame::Line(line)) = framer.poll_event() {
                    let result = session.handle_line(&line);
                    if let Ok(Command::Join(nick)) = &result {
                        session.handle_nick_accepted(nick.clone());
                    }
                    results.push(result);
                }
            }
            results
        });
        assert_eq!(
            got,
            [
                Ok(Command::Join(nick("alice"))),
                Ok(Command::Message("hi all".into())),
                Ok(Command::Me("waves".into())),
                Ok(Command::Who),
                Ok(Command::Quit),
                Err(CommandError::AlreadyLeft),
            ]
        );
    }
}
