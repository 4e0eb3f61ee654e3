//! Nicknames: what a valid one looks like, and when two are the same.
//!
//! Validation is a pure function of the text ([`validate_nick`]); whether a nickname is
//! already taken is the room's question, answered by the server. [`Nick`] makes that
//! question easy to ask: it compares, hashes and orders case-insensitively, so the server
//! can key a map on it and `Alice` cannot join while `alice` is in the room.
//!
//! The rules, checked after trimming surrounding whitespace:
//!
//! - 1 to [`MAX_NICK_CHARS`] characters;
//! - no whitespace inside (a nickname is one word in `/who` and in `* nick waves`);
//! - no control characters (they would reach every terminal in the room; see
//!   [`super::format`]), and no invisible or direction-changing format characters (they
//!   make two different nicknames look the same, or reorder the text around them);
//! - no `<` or `>` (so `<nick> text` reads back unambiguously);
//! - not starting with `/` (that starts a command).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::format::is_invisible;

/// Longest nickname, in characters (not bytes: `Андрей` is 6 characters and 12 bytes).
///
/// Long enough for a full name like `Andrej_Marinchenko` (18); short enough that
/// `<nick> ` leaves most of an 80-column terminal for the message. IRC servers advertise
/// similar limits (`NICKLEN` 9 in RFC 2812 §1.2.1, 30 or so on today's networks).
pub const MAX_NICK_CHARS: usize = 32;

/// Why a nickname was refused. The `Display` text is meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickError {
    /// Nothing but whitespace.
    Empty,
    /// More than [`MAX_NICK_CHARS`] characters.
    TooLong {
        /// How many characters it had.
        chars: usize,
    },
    /// Starts with `/`.
    StartsWithSlash,
    /// Contains a space or other whitespace.
    Whitespace,
    /// Contains a control character (ESC, DEL, ...).
    Control,
    /// Contains an invisible or direction-changing format character.
    Invisible,
    /// Contains `<` or `>`.
    AngleBracket,
}

impl fmt::Display for NickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickError::Empty => write!(f, "a nickname needs at least one character"),
            NickError::TooLong { chars } => write!(
                f,
                "a nickname has at most {MAX_NICK_CHARS} characters (this one has {chars})"
            ),
            NickError::StartsWithSlash => {
                write!(
                    f,
                    "a nickname cannot start with '/' (that starts a command)"
                )
            }
            NickError::Whitespace => write!(f, "a nickname cannot contain spaces"),
            NickError::Control => write!(f, "a nickname cannot contain control characters"),
            NickError::Invisible => write!(
                f,
                "a nickname cannot contain invisible or direction-changing characters"
            ),
            NickError::AngleBracket => write!(f, "a nickname cannot contain '<' or '>'"),
        }
    }
}

impl std::error::Error for NickError {}

/// Checks `raw` against the rules in the module doc and returns it trimmed.
pub fn validate_nick(raw: &str) -> Result<&str, NickError> {
    let nick = raw.trim();
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    let chars = nick.chars().count();
    if chars > MAX_NICK_CHARS {
        return Err(NickError::TooLong { chars });
    }
    if nick.starts_with('/') {
        return Err(NickError::StartsWithSlash);
    }
    for c in nick.chars() {
        if c.is_control() {
            return Err(NickError::Control);
        }
        if c.is_whitespace() {
            return Err(NickError::Whitespace);
        }
        if is_invisible(c) {
            return Err(NickError::Invisible);
        }
        if c == '<' || c == '>' {
            return Err(NickError::AngleBracket);
        }
    }
    Ok(nick)
}

/// A valid nickname that compares, hashes and orders case-insensitively, and displays as
/// typed.
///
/// Case-insensitive means Unicode lowercase (`str::to_lowercase`), not full case folding:
/// `Alice`/`alice` and `ИВАН`/`иван` are the same nickname. Look-alikes from different
/// scripts (Latin `a`, Cyrillic `а`) are different nicknames; telling them apart is out of
/// scope for a teaching chat.
#[derive(Debug, Clone)]
pub struct Nick {
    name: String,
    key: String,
}

impl Nick {
    /// Validates `raw` (see [`validate_nick`]) and keeps the trimmed text.
    pub fn new(raw: &str) -> Result<Nick, NickError> {
        let name = validate_nick(raw)?;
        Ok(Nick {
            name: name.to_string(),
            key: name.to_lowercase(),
        })
    }

    /// The nickname as the person typed it.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The lowercase form two nicknames are compared by.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for Nick {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Nick {}

impl Hash for Nick {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for Nick {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Nick {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn valid_nicknames_are_trimmed() {
        for (raw, nick) in [
            ("alice", "alice"),
            ("  bob \t", "bob"),
            ("Андрей", "Андрей"),
            ("x", "x"),
            ("a/b", "a/b"),
            ("*star*", "*star*"),
            (&"n".repeat(MAX_NICK_CHARS), &"n".repeat(MAX_NICK_CHARS)),
            (&"ё".repeat(MAX_NICK_CHARS), &"ё".repeat(MAX_NICK_CHARS)),
        ] {
            assert_eq!(validate_nick(raw), Ok(nick), "{raw:?}");
        }
    }

    #[test]
    fn invalid_nicknames_say_why() {
        for (raw, err) in [
            ("", NickError::Empty),
            ("   ", NickError::Empty),
            (
                &"n".repeat(MAX_NICK_CHARS + 1),
                NickError::TooLong { chars: 33 },
            ),
            ("/nick", NickError::StartsWithSlash),
            ("two words", NickError::Whitespace),
            ("no\u{a0}break", NickError::Whitespace),
            ("bell\u{7}", NickError::Control),
            ("esc\u{1b}[31m", NickError::Control),
            ("c1\u{9b}", NickError::Control),
            ("zero\u{200b}width", NickError::Invisible),
            ("\u{202e}evil", NickError::Invisible),
            ("<admin>", NickError::AngleBracket),
        ] {
            assert_eq!(validate_nick(raw), Err(err), "{raw:?}");
        }
        assert_eq!(
            NickError::TooLong { chars: 40 }.to_string(),
            "a nickname has at most 32 characters (this one has 40)"
        );
    }

    #[test]
    fn nicknames_compare_without_case_and_display_as_typed() {
        let alice = Nick::new("Alice").expect("valid");
        assert_eq!(alice, Nick::new("aLICE").expect("valid"));
        assert_eq!(
            Nick::new("ИВАН").expect("valid"),
            Nick::new("иван").expect("valid")
        );
        assert_ne!(alice, Nick::new("bob").expect("valid"));
        assert_eq!(alice.to_string(), "Alice");
        assert_eq!(alice.key(), "alice");
        let set: HashSet<Nick> = ["alice", "ALICE", "Bob"]
            .into_iter()
            .map(|n| Nick::new(n).expect("valid"))
            .collect();
        assert_eq!(set.len(), 2);
        assert!(Nick::new("alice").expect("valid") < Nick::new("Bob").expect("valid"));
    }
}
