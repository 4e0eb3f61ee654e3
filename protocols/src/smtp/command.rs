//! Commands: one line from the client to a [`Command`] (RFC 5321 §4.1).
//!
//! A command is a verb, case-insensitive, and its arguments. The two that carry addresses
//! take them in angle brackets: `MAIL FROM:<ann@example.org> SIZE=1024` and
//! `RCPT TO:<bob@example.net>`. This parser is strict where a mistake could deliver mail
//! to the wrong place (the brackets, one address, no spaces or control bytes in it) and
//! lenient where clients differ harmlessly (a space after the colon, as Outlook sends, and
//! any case in verbs and parameter names).

use std::fmt;

/// Longest address accepted, in bytes (RFC 5321 §4.5.3.1.3: a path is at most 256 octets,
/// brackets included).
pub const MAX_PATH: usize = 254;

/// A command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`: begin, asking for the extensions.
    Ehlo(String),
    /// `HELO domain`: begin, without extensions (RFC 821's greeting).
    Helo(String),
    /// `MAIL FROM:<path> [SIZE=n] [BODY=...]`: begin a message. The path may be empty
    /// (`<>`, the null sender of bounces).
    Mail {
        /// The sender's address, empty for `<>`.
        from: String,
        /// The size the client declared with `SIZE=` (RFC 1870), if it did.
        size: Option<u64>,
    },
    /// `RCPT TO:<path>`: one recipient.
    Rcpt(String),
    /// `DATA`: the message follows, ending with a line holding one dot.
    Data,
    /// `RSET`: forget the message begun so far.
    Rset,
    /// `NOOP`: nothing; answered 250.
    Noop,
    /// `VRFY string`: is this a mailbox here? (Answered 252: we do not say.)
    Vrfy,
    /// `HELP [topic]`.
    Help,
    /// `QUIT`: answered 221, then the server closes.
    Quit,
    /// `STARTTLS` (RFC 3207): a TLS handshake follows the 220.
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The mechanism's name, upper-cased (`PLAIN`, `LOGIN`).
        mechanism: String,
        /// The first response, base64, if it came on the command line (`=` for empty).
        initial: Option<String>,
    },
}

/// Why a line is not a command the server can act on. Each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// A verb this server does not know (or not ASCII): 500 5.5.2, as RFC 5321 §4.2.4 asks
    /// for an unrecognised command.
    Unknown,
    /// A command that needs no argument was given one, or one that needs one was not: 501.
    Syntax(&'static str),
    /// An address without brackets, with spaces or control bytes, or too long: 501.
    BadAddress(&'static str),
    /// A `MAIL` or `RCPT` parameter this server does not offer: 555 5.5.4.
    Parameter(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown => f.write_str("command not recognized"),
            CommandError::Syntax(why) | CommandError::BadAddress(why) => f.write_str(why),
            CommandError::Parameter(p) => write!(f, "parameter {p} not supported"),
        }
    }
}

/// Parses one command line, given without its line ending.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::Unknown)?;
    if !line.is_ascii() {
        return Err(CommandError::Unknown);
    }
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let no_argument = |command: Command| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(CommandError::Syntax("this command takes no argument"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" => {
            let domain = rest.split(' ').next().unwrap_or("");
            if domain.is_empty() {
                return Err(CommandError::Syntax("a domain name or address is needed"));
            }
            let domain = domain.to_string();
            Ok(if verb == "EHLO" {
                Command::Ehlo(domain)
            } else {
                Command::Helo(domain)
            })
        }
        "MAIL" => {
            let (path, params) = after_keyword(rest, "FROM:")
                .ok_or(CommandError::Syntax("use MAIL FROM:<address>"))?;
            let from = parse_path(path, true)?;
            let mut size = None;
            for param in params.split(' ').filter(|p| !p.is_empty()) {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                match name.to_ascii_uppercase().as_str() {
                    "SIZE" => {
                        let n = value
                            .parse::<u64>()
                            .map_err(|_| CommandError::Syntax("SIZE= needs a number"))?;
                        size = Some(n);
                    }
                    "BODY"
                        if value.eq_ignore_ascii_case("7BIT")
                            || value.eq_ignore_ascii_case("8BITMIME") => {}
                    _ => return Err(CommandError::Parameter(param.to_string())),
                }
            }
            Ok(Command::Mail { from, size })
        }
        "RCPT" => {
            let (path, params) =
                after_keyword(rest, "TO:").ok_or(CommandError::Syntax("use RCPT TO:<address>"))?;
            if let Some(param) = params.split(' ').find(|p| !p.is_empty()) {
                return Err(CommandError::Parameter(param.to_string()));
            }
            let to = parse_path(path, false)?;
            Ok(Command::Rcpt(to))
        }
        "DATA" => no_argument(Command::Data),
        "RSET" => no_argument(Command::Rset),
        "QUIT" => no_argument(Command::Quit),
        "STARTTLS" => no_argument(Command::StartTls),
        // NOOP and HELP may carry a string, which is ignored (RFC 5321 §4.1.1.9, §4.1.1.8).
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => {
            if rest.is_empty() {
                Err(CommandError::Syntax("VRFY needs a string"))
            } else {
                Ok(Command::Vrfy)
            }
        }
        "AUTH" => {
            let mut words = rest.split(' ').filter(|w| !w.is_empty());
            let mechanism = words
                .next()
                .ok_or(CommandError::Syntax("AUTH needs a mechanism"))?
                .to_ascii_uppercase();
            let initial = words.next().map(str::to_string);
            if words.next().is_some() {
                return Err(CommandError::Syntax(
                    "AUTH takes a mechanism and one response",
                ));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(CommandError::Unknown),
    }
}

/// `"FROM:<a@b> SIZE=1"` with keyword `FROM:` to `("<a@b>", "SIZE=1")`; a space after
/// the colon is allowed.
fn after_keyword<'a>(rest: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let tail = rest[keyword.len()..].trim_start();
    let close = tail.find('>').map_or(tail.len(), |i| i + 1);
    Some((&tail[..close], tail[close..].trim()))
}

/// `<ann@example.org>` to `ann@example.org`. `<>` is allowed for a sender only;
/// `<postmaster>` (no domain) for a recipient only, as RFC 5321 §4.5.1 requires.
fn parse_path(path: &str, sender: bool) -> Result<String, CommandError> {
    let inner = path
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix('>'))
        .ok_or(CommandError::BadAddress(
            "the address must be in angle brackets",
        ))?;
    if inner.is_empty() {
        return if sender {
            Ok(String::new())
        } else {
            Err(CommandError::BadAddress("a recipient cannot be empty"))
        };
    }
    if inner.len() > MAX_PATH {
        return Err(CommandError::BadAddress("the address is too long"));
    }
    if inner
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
    {
        return Err(CommandError::BadAddress(
            "the address holds a space, a bracket or a control byte",
        ));
    }
    if !sender && inner.eq_ignore_ascii_case("postmaster") {
        return Ok(inner.to_string());
    }
    match inner.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !local.starts_with('@') =>
        {
            Ok(inner.to_string())
        }
        _ => Err(CommandError::BadAddress(
            "the address needs a local part and a domain",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, CommandError> {
        parse_command(line.as_bytes())
    }

    #[test]
    fn verbs_in_any_case_with_their_arguments() {
        assert_eq!(
            parse("ehlo client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(
            parse("HELO [127.0.0.1]"),
            Ok(Command::Helo("[127.0.0.1]".into()))
        );
        assert_eq!(
            parse("MAIL FROM:<ann@example.org> SIZE=1024 BODY=8BITMIME"),
            Ok(Command::Mail {
                from: "ann@example.org".into(),
                size: Some(1024)
            })
        );
        assert_eq!(
            parse("mail from: <ann@example.org>"),
            Ok(Command::Mail {
                from: "ann@example.org".into(),
                size: None
            })
        );
        assert_eq!(
            parse("MAIL FROM:<>"),
            Ok(Command::Mail {
                from: String::new(),
                size: None
            })
        );
        assert_eq!(
            parse("RCPT TO:<bob@example.net>"),
            Ok(Command::Rcpt("bob@example.net".into()))
        );
        assert_eq!(
            parse("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt("Postmaster".into()))
        );
        assert_eq!(parse("data"), Ok(Command::Data));
        assert_eq!(parse("NOOP anything"), Ok(Command::Noop));
        assert_eq!(parse("VRFY bob"), Ok(Command::Vrfy));
        assert_eq!(parse("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(
            parse("AUTH plain AGFubgBzZWNyZXQ="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGFubgBzZWNyZXQ=".into())
            })
        );
        assert_eq!(
            parse("AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            })
        );
    }

    #[test]
    fn bad_commands_say_which_reply_they_get() {
        assert_eq!(parse("GET / HTTP/1.1"), Err(CommandError::Unknown));
        assert_eq!(
            parse("MAIL FROM:<änn@example.org>"),
            Err(CommandError::Unknown)
        );
        assert!(matches!(parse("EHLO"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse("DATA now"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse("MAIL TO:<a@b>"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse("MAIL FROM:ann@example.org"),
            Err(CommandError::BadAddress(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<>"),
            Err(CommandError::BadAddress(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<bob>"),
            Err(CommandError::BadAddress(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<b ob@x>"),
            Err(CommandError::BadAddress(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<@x>"),
            Err(CommandError::BadAddress(_))
        ));
        let long = format!("RCPT TO:<{}@x>", "a".repeat(MAX_PATH));
        assert!(matches!(parse(&long), Err(CommandError::BadAddress(_))));
        assert!(matches!(
            parse("MAIL FROM:<a@b> SIZE=big"),
            Err(CommandError::Syntax(_))
        ));
        assert_eq!(
            parse("MAIL FROM:<a@b> SMTPUTF8"),
            Err(CommandError::Parameter("SMTPUTF8".into()))
        );
        assert_eq!(
            parse("RCPT TO:<a@b> NOTIFY=NEVER"),
            Err(CommandError::Parameter("NOTIFY=NEVER".into()))
        );
        assert!(matches!(parse("AUTH"), Err(CommandError::Syntax(_))));
    }
}
