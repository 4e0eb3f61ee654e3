//! The lines a chat server sends: each function appends one complete line to the caller's
//! buffer, so the server can format once and fan the same bytes out to every client.
//!
//! Every line starts with a marker that only the server can produce, so a reader (human
//! or `grep`) always knows who is speaking:
//!
//! ```text
//! <alice> hello               a message
//! * alice waves               an action (/me)
//! *** alice joined            a notice from the server
//! !!! unknown command /dance  an error, sent only to the client that caused it
//! ```
//!
//! A client cannot forge another marker: its text never contains LF (the framer splits
//! lines there), and everything it sends is passed through [`sanitize_into`], which
//! replaces control characters. That matters beyond fake notices: a terminal obeys escape
//! sequences in what it prints. ESC `[2J` clears the screen, ESC `]0;...` retitles the
//! window, CR returns to the start of the line so `hi\r*** admin joined` would print over
//! itself as a notice, and the C1 byte U+009B is a one-character ESC `[` on some
//! terminals. Unicode direction overrides (U+202E and friends) reorder what follows them,
//! the "Trojan Source" trick (CVE-2021-42574); they are replaced too.

use std::io::Write;

use super::nick::Nick;

/// The first line a new connection receives: the lesson's client asks for a nickname
/// before connecting; an `nc` user needs to be told.
pub fn greeting(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*** Welcome to netloop chat. Type your nickname and press Enter.\n");
}

/// `<nick> text`: someone said something.
pub fn message(nick: &Nick, text: &str, out: &mut Vec<u8>) {
    out.push(b'<');
    out.extend_from_slice(nick.as_str().as_bytes());
    out.extend_from_slice(b"> ");
    sanitize_into(text, out);
    out.push(b'\n');
}

/// `* nick action`: someone did something (`/me waves`).
pub fn action(nick: &Nick, action: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(nick.as_str().as_bytes());
    out.push(b' ');
    sanitize_into(action, out);
    out.push(b'\n');
}

/// `*** nick joined`.
pub fn joined(nick: &Nick, out: &mut Vec<u8>) {
    notice(out, format_args!("{nick} joined"));
}

/// `*** nick left`: a `/quit`, a `byebye`, or the connection closed.
pub fn left(nick: &Nick, out: &mut Vec<u8>) {
    notice(out, format_args!("{nick} left"));
}

/// `*** old is now known as new`.
pub fn renamed(old: &Nick, new: &Nick, out: &mut Vec<u8>) {
    notice(out, format_args!("{old} is now known as {new}"));
}

/// `*** nick was disconnected: reason`: the server dropped someone (too slow to read its
/// messages, idle too long). `reason` is sanitized like any text.
pub fn disconnected(nick: &Nick, reason: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"*** ");
    out.extend_from_slice(nick.as_str().as_bytes());
    out.extend_from_slice(b" was disconnected: ");
    sanitize_into(reason, out);
    out.push(b'\n');
}

/// `*** the server is shutting down`: sent to every connection before a graceful shutdown
/// closes it, so a person sees why the chat ended.
pub fn shutting_down(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*** the server is shutting down\n");
}

/// `*** here: alice, bob`: the reply to `/who`, listing `nicks` in the order given (a
/// server keyed on a `BTreeMap<Nick, _>` gets them sorted case-insensitively).
/// An empty room is `*** here: nobody`.
pub fn who<'a>(nicks: impl IntoIterator<Item = &'a Nick>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"*** here: ");
    let start = out.len();
    for nick in nicks {
        if out.len() > start {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(nick.as_str().as_bytes());
    }
    if out.len() == start {
        out.extend_from_slice(b"nobody");
    }
    out.push(b'\n');
}

/// `!!! message`: an error for one client (an unknown command, a taken nickname, a line
/// too long). `message` is sanitized, since errors often quote what the client sent.
pub fn error(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"!!! ");
    sanitize_into(message, out);
    out.push(b'\n');
}

/// `!!! the nickname NAME is taken`: the room refused a join or rename.
pub fn nick_taken(nick: &Nick, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail; the nickname holds no control characters.
    let _ = writeln!(out, "!!! the nickname {nick} is taken");
}

/// `!!! no nickname within SECS s: closing`: the last line to a connection that never
/// chose a nickname.
pub fn no_nickname(secs: u64, out: &mut Vec<u8>) {
    let _ = writeln!(out, "!!! no nickname within {secs} s: closing");
}

/// `!!! line longer than MAX bytes, dropped`: the answer to [`super::Frame::TooLong`].
pub fn line_too_long(max_line: usize, out: &mut Vec<u8>) {
    let _ = writeln!(out, "!!! line longer than {max_line} bytes, dropped");
}

/// Appends `text` with every character a terminal would act on instead of print replaced:
/// TAB becomes a space; other control characters (C0, DEL, C1: CR, ESC, BEL, U+009B, ...)
/// and invisible or direction-changing format characters (see [`is_invisible`]) become
/// U+FFFD, so the reader sees that something was there.
pub fn sanitize_into(text: &str, out: &mut Vec<u8>) {
    if !text.chars().any(needs_replacing) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        let c = match c {
            '\t' => ' ',
            c if needs_replacing(c) => char::REPLACEMENT_CHARACTER,
            c => c,
        };
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

/// Whether `c` is an invisible or direction-changing format character: zero-width
/// spaces and joiners, bidirectional marks, embeddings, overrides and isolates, the word
/// joiner family, the soft hyphen and the byte-order mark. They print as nothing, so they
/// make two different strings look alike, and the direction controls reorder the text
/// after them.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn needs_replacing(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

fn notice(out: &mut Vec<u8>, text: std::fmt::Arguments<'_>) {
    // Writing into a Vec cannot fail. Only nicknames are interpolated here, and those are
    // validated to hold no control characters.
    let _ = writeln!(out, "*** {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::new(name).expect("valid nick")
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("we write UTF-8")
    }

    #[test]
    fn every_line_has_its_marker_and_one_newline() {
        let (alice, bob) = (nick("alice"), nick("Bob"));
        assert_eq!(text(|o| message(&alice, "hello", o)), "<alice> hello\n");
        assert_eq!(text(|o| action(&alice, "waves", o)), "* alice waves\n");
        assert_eq!(text(|o| joined(&alice, o)), "*** alice joined\n");
        assert_eq!(text(|o| left(&alice, o)), "*** alice left\n");
        assert_eq!(
            text(|o| renamed(&alice, &bob, o)),
            "*** alice is now known as Bob\n"
        );
        assert_eq!(
            text(|o| disconnected(&bob, "too slow", o)),
            "*** Bob was disconnected: too slow\n"
        );
        assert_eq!(text(|o| who([&alice, &bob], o)), "*** here: alice, Bob\n");
        assert_eq!(text(|o| who([], o)), "*** here: nobody\n");
        assert_eq!(text(|o| error("no such nick", o)), "!!! no such nick\n");
        assert_eq!(
            text(|o| nick_taken(&bob, o)),
            "!!! the nickname Bob is taken\n"
        );
        assert_eq!(
            text(|o| line_too_long(4096, o)),
            "!!! line longer than 4096 bytes, dropped\n"
        );
        assert!(text(greeting).ends_with("press Enter.\n"));
        assert_eq!(text(shutting_down), "*** the server is shutting down\n");
    }

    #[test]
    fn functions_append_and_never_clear() {
        let mut out = b"kept".to_vec();
        joined(&nick("a"), &mut out);
        assert_eq!(out, b"kept*** a joined\n");
    }

    #[test]
    fn text_cannot_move_the_cursor_or_drive_the_terminal() {
        let alice = nick("alice");
        assert_eq!(
            text(|o| message(&alice, "hi\r*** admin joined", o)),
            "<alice> hi\u{FFFD}*** admin joined\n"
        );
        assert_eq!(
            text(|o| message(&alice, "\u{1b}[2J\u{1b}]0;pwned\u{7}", o)),
            "<alice> \u{FFFD}[2J\u{FFFD}]0;pwned\u{FFFD}\n"
        );
        assert_eq!(
            text(|o| action(&alice, "a\tb\u{9b}31m\u{7f}", o)),
            "* alice a b\u{FFFD}31m\u{FFFD}\n"
        );
        assert_eq!(
            text(|o| message(&alice, "abc\u{202e}fed", o)),
            "<alice> abc\u{FFFD}fed\n"
        );
        assert_eq!(
            text(|o| error("unknown command /\u{1b}x", o)),
            "!!! unknown command /\u{FFFD}x\n"
        );
        assert_eq!(
            text(|o| disconnected(&alice, "slow\n*** x", o)),
            "*** alice was disconnected: slow\u{FFFD}*** x\n"
        );
    }

    #[test]
    fn ordinary_unicode_passes_untouched() {
        let alice = nick("Алиса");
        assert_eq!(
            text(|o| message(&alice, "привет, 世界 😀", o)),
            "<Алиса> привет, 世界 😀\n"
        );
    }
}
