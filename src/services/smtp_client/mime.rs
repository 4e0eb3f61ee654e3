//! A MIME message like the lesson's (`MIMEMultipart` with a `MIMEText` and attachments),
//! written by hand so that every byte of it can be explained.
//!
//! Read first: RFC 5322 §2.1.1 (lines of at most 78 characters, CRLF), §2.2.3 (folding),
//! §3.3 (Date), §3.6.4 (Message-ID); RFC 2045 §6.7 (quoted-printable), §6.8 (base64,
//! 76-character lines); RFC 2046 §5.1.1 (multipart boundaries); RFC 2047 (encoded-words:
//! non-ASCII in a Subject or a display name); RFC 2183 (Content-Disposition); RFC 2231
//! (non-ASCII and long parameter values: file names).
//!
//! # What is written
//!
//! ```text
//! From: Ann <ann@example.org>
//! To: bob@example.net, =?UTF-8?B?0JLQsNGB0Y8=?= <vasya@example.net>
//! Subject: =?UTF-8?B?0JfQtNGA0LDQstGB0YLQstGD0YLQtSE=?=
//! Date: Tue, 3 Dec 2024 10:52:37 +0100
//! Message-ID: <1733219557123456.4242.9f2c1d0e5b7a3c11@host.example>
//! MIME-Version: 1.0
//! Content-Type: multipart/mixed;
//!  boundary="=_netloop_4f0c9a7d3b2e1f60"
//!
//! This is a multi-part message in MIME format.
//! --=_netloop_4f0c9a7d3b2e1f60
//! Content-Type: text/plain; charset="utf-8"
//! Content-Transfer-Encoding: base64            (or quoted-printable: the shorter)
//!
//! 0YLQtdC60YHRgiDRgdC+0L7QsdGJ0LXQvdC40Y8=
//! --=_netloop_4f0c9a7d3b2e1f60
//! Content-Type: application/pdf; name*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf
//! Content-Disposition: attachment;
//!  filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf
//! Content-Transfer-Encoding: base64
//!
//! JVBERi0xLjQK...                              (76 characters a line)
//! --=_netloop_4f0c9a7d3b2e1f60--
//! ```
//!
//! # The decisions
//!
//! - **The text part** is quoted-printable or base64, **whichever is shorter** (Python's
//!   `email.charset` calls this `SHORTEST`, for headers). Mostly-ASCII text stays readable
//!   in quoted-printable (only `=`, trailing spaces and long lines change); Cyrillic would
//!   cost 6 bytes a letter there (`=D0=9F`) against base64's 2.7, so it goes base64, as
//!   the lesson's `MIMEText(..., 'utf-8')` does. Either way the text is first put in its
//!   canonical form, CRLF line ends (RFC 2046 §4.1.1), and no line exceeds 76 characters.
//! - **Attachments** are always base64: they are bytes, and base64 keeps them 7-bit and
//!   in short lines whatever they hold. The Content-Type is guessed from the extension by
//!   `mime_guess`, `application/octet-stream` when it knows none.
//! - **The boundary** is `=_netloop_` and 16 hex digits. The random part makes it
//!   unlikely anywhere; the `=_` makes it *impossible* inside a part: base64 has no `_`,
//!   and quoted-printable writes `=` only as `=` + two hex digits or `=` at a line end,
//!   never `=_`. Part headers are ours and begin with a field name or a space. So no
//!   line of a part can begin with `--=_netloop_...`, whatever the text and the files
//!   hold: no need to scan them (the trick Thunderbird and Outlook use too).
//! - **Headers** are folded at spaces so that no line exceeds 78 characters. A Subject or
//!   a display name that is not plain ASCII becomes RFC 2047 encoded-words, base64 (`B`)
//!   in UTF-8, each a whole number of characters and at most 75 long; an ASCII Subject
//!   that holds `=?` (which a reader would try to decode), a control character, or a word
//!   too long to fold is encoded the same way, so that it reads back as it was written.
//! - **File names** use RFC 2231 (`filename*=UTF-8''%D0%BE...`, cut into `filename*0*=`,
//!   `filename*1*=`, ... when long) unless they are short printable ASCII: RFC 2047 §5
//!   forbids encoded-words inside a parameter. Only the last component of the path is
//!   sent. `name=` on the Content-Type repeats it for readers older than RFC 2183.
//! - **Injection**: a CR or LF in anything that becomes a header (addresses, names, the
//!   Subject, a file name, which on Unix may hold a newline) is refused with
//!   [`MimeError::LineBreak`], never stripped: a silently changed Subject is a bug report
//!   nobody can reproduce, and `Subject: hi\r\nBcc: everyone@example.org` must not send.
//!
//! The message is built in memory: attachments are read whole (the SMTP session keeps a
//! copy of the message anyway; a streaming encoder is not worth it for mail, whose servers
//! refuse more than tens of MB).

use chrono::{DateTime, FixedOffset};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest header line we write, CRLF not counted (RFC 5322 §2.1.1: SHOULD be no
/// more than 78; 998 is the hard limit).
pub const MAX_HEADER_LINE: usize = 78;

/// The longest line of a base64 or quoted-printable body (RFC 2045 §6.7 rule 5, §6.8).
pub const MAX_BODY_LINE: usize = 76;

/// The longest encoded-word (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;

/// `=?UTF-8?B?` and `?=`: what an encoded-word adds around its base64.
const ENCODED_WORD_OVERHEAD: usize = "=?UTF-8?B??=".len();

/// The longest RFC 2231 segment of a file name: `filename*12*=` (13) + 60 + `;` fits a
/// folded line (a space, then at most 77) with room to spare.
const MAX_PARAMETER_SEGMENT: usize = 60;

/// Why a message cannot be built. Each is the caller's input, never the network's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MimeError {
    /// A CR or LF in a value that becomes a header: it would end the header and start
    /// another (`Bcc:`, or the body). Refused rather than stripped.
    LineBreak {
        /// Which input: `"From"`, `"To"`, `"Subject"`, `"attachment name"`.
        field: &'static str,
    },
    /// Not an address that can go in a header: one `@`, printable ASCII, no spaces,
    /// brackets, commas or quotes.
    BadAddress(String),
    /// The message has no recipient.
    NoRecipients,
}

impl fmt::Display for MimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MimeError::LineBreak { field } => write!(
                f,
                "the {field} holds a line break (CR or LF), which would inject headers; refused"
            ),
            MimeError::BadAddress(a) => write!(f, "{a:?} is not a mail address (user@domain)"),
            MimeError::NoRecipients => f.write_str("the message has no recipient"),
        }
    }
}

impl std::error::Error for MimeError {}

/// An address with an optional display name: `ann@example.org` or `Ann <ann@example.org>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name (any Unicode; encoded when written), if any.
    pub name: Option<String>,
    /// The address (`user@domain`): what goes in `MAIL FROM` / `RCPT TO` too.
    pub address: String,
}

impl Mailbox {
    /// Parses `user@domain`, `Name <user@domain>` or `"Name" <user@domain>`.
    /// `field` names the input in errors.
    pub fn parse(text: &str, field: &'static str) -> Result<Mailbox, MimeError> {
        if text.contains(['\r', '\n']) {
            return Err(MimeError::LineBreak { field });
        }
        let text = text.trim();
        let (name, address) = match text.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
            Some((name, address)) => {
                let name = name.trim();
                let name = name
                    .strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .unwrap_or(name);
                ((!name.is_empty()).then(|| name.to_string()), address.trim())
            }
            None => (None, text),
        };
        check_address(address)?;
        Ok(Mailbox {
            name,
            address: address.to_string(),
        })
    }

    /// The header tokens for this mailbox (folding may go between them).
    fn tokens(&self, max_word: usize) -> Vec<String> {
        let Some(name) = &self.name else {
            return vec![self.address.clone()];
        };
        let atoms = name
            .bytes()
            .all(|b| b == b' ' || b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b));
        // Printable ASCII with specials (`.`, `,`, `@` ...) goes in a quoted-string.
        let quoted = format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
        let mut tokens =
            if needs_encoded_words(name, max_word) || (!atoms && quoted.len() > max_word) {
                encoded_words(name, max_word)
            } else if atoms {
                // Atoms (RFC 5322 §3.2.3) separated by spaces: written as they are.
                name.split(' ').map(str::to_string).collect()
            } else {
                vec![quoted]
            };
        tokens.push(format!("<{}>", self.address));
        tokens
    }
}

/// `user@domain` in printable ASCII, without what would break the header or the envelope.
fn check_address(address: &str) -> Result<(), MimeError> {
    let ok = address.bytes().filter(|&b| b == b'@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && address.len() <= netloop_protocols::smtp::MAX_PATH
        && address
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>()[],;:\\\"".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(MimeError::BadAddress(address.to_string()))
    }
}

/// A file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name the recipient sees: the last component of the path the caller gave.
    pub filename: String,
    /// Its MIME type, guessed from the extension.
    pub content_type: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl Attachment {
    /// An attachment named after the last component of `name`, its Content-Type guessed
    /// from the extension (`mime_guess`; `application/octet-stream` when unknown).
    pub fn new(name: &str, data: Vec<u8>) -> Attachment {
        let filename = name.rsplit(['/', '\\']).next().unwrap_or(name).to_string();
        let content_type = mime_guess::from_path(&filename)
            .first_or_octet_stream()
            .essence_str()
            .to_string();
        Attachment {
            filename,
            content_type,
            data,
        }
    }
}

/// A message: who, what, and the two headers that make it unique in time and space.
#[derive(Debug, Clone)]
pub struct Message {
    /// The author (`From:`).
    pub from: Mailbox,
    /// The recipients (`To:`), at least one.
    pub to: Vec<Mailbox>,
    /// The subject, any Unicode.
    pub subject: String,
    /// The text part, any Unicode, any line ends.
    pub text: String,
    /// The files attached, in order.
    pub attachments: Vec<Attachment>,
    /// `Date:` (RFC 5322 §3.3).
    pub date: DateTime<FixedOffset>,
    /// `Message-ID:` with its angle brackets (see [`message_id`]).
    pub message_id: String,
}

impl Message {
    /// The whole message, headers and body, CRLF line ends, ready for
    /// [`ClientSession::send`](netloop_protocols::smtp::ClientSession::send).
    pub fn to_bytes(&self) -> Result<Vec<u8>, MimeError> {
        let boundary = format!("=_netloop_{:016x}", random_u64());
        self.to_bytes_with_boundary(&boundary)
    }

    fn to_bytes_with_boundary(&self, boundary: &str) -> Result<Vec<u8>, MimeError> {
        if self.to.is_empty() {
            return Err(MimeError::NoRecipients);
        }
        for (text, field) in [(&self.subject, "Subject"), (&self.message_id, "Message-ID")] {
            if text.contains(['\r', '\n']) {
                return Err(MimeError::LineBreak { field });
            }
        }
        for mailbox in std::iter::once(&self.from).chain(&self.to) {
            if mailbox
                .name
                .as_ref()
                .is_some_and(|n| n.contains(['\r', '\n']))
            {
                return Err(MimeError::LineBreak {
                    field: "display name",
                });
            }
            check_address(&mailbox.address)?;
        }
        if self
            .attachments
            .iter()
            .any(|a| a.filename.contains(['\r', '\n']) || a.content_type.contains(['\r', '\n']))
        {
            return Err(MimeError::LineBreak {
                field: "attachment name",
            });
        }

        let size = self.text.len() * 2
            + self
                .attachments
                .iter()
                .map(|a| a.data.len() * 4 / 3 + 512)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size + 1024);
        header(&mut out, "From", self.from.tokens(word_budget("From")));
        let mut to = Vec::new();
        let last = self.to.len() - 1;
        for (i, mailbox) in self.to.iter().enumerate() {
            let mut tokens = mailbox.tokens(word_budget("To"));
            if i < last {
                if let Some(t) = tokens.last_mut() {
                    t.push(',');
                }
            }
            to.extend(tokens);
        }
        header(&mut out, "To", to);
        header(&mut out, "Subject", subject_tokens(&self.subject));
        header(&mut out, "Date", vec![self.date.to_rfc2822()]);
        header(&mut out, "Message-ID", vec![self.message_id.clone()]);
        header(&mut out, "MIME-Version", vec!["1.0".into()]);
        header(
            &mut out,
            "Content-Type",
            vec![
                "multipart/mixed;".into(),
                format!("boundary=\"{boundary}\""),
            ],
        );
        out.extend_from_slice(b"\r\nThis is a multi-part message in MIME format.\r\n");

        // The text part.
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let text = canonical_text(&self.text);
        let qp = quoted_printable(&text);
        let (cte, body) = if qp.len() <= base64_wrapped_len(text.len()) {
            ("quoted-printable", qp)
        } else {
            ("base64", base64_wrapped(&text))
        };
        header(
            &mut out,
            "Content-Type",
            vec!["text/plain;".into(), "charset=\"utf-8\"".into()],
        );
        header(&mut out, "Content-Transfer-Encoding", vec![cte.into()]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\r\n");

        for attachment in &self.attachments {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut content_type = vec![format!("{};", attachment.content_type)];
            if attachment.content_type.starts_with("text/")
                && !attachment.data.is_ascii()
                && std::str::from_utf8(&attachment.data).is_ok()
            {
                content_type.push("charset=\"utf-8\";".into());
            }
            content_type.extend(parameter("name", &attachment.filename));
            header(&mut out, "Content-Type", content_type);
            let mut disposition = vec!["attachment;".to_string()];
            disposition.extend(parameter("filename", &attachment.filename));
            header(&mut out, "Content-Disposition", disposition);
            header(&mut out, "Content-Transfer-Encoding", vec!["base64".into()]);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&base64_wrapped(&attachment.data));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Ok(out)
    }
}

/// A Message-ID no other message has (RFC 5322 §3.6.4), in the shape Python's
/// `email.utils.make_msgid` gives: `<MICROSECONDS.PID.RANDOM@HOST>`. The time and the
/// process id tell this process's messages from every other's on the host; the random
/// part (a per-process random key hashed with a counter) tells apart two messages made
/// in the same microsecond, and makes the id unguessable. `host` is our name (made safe
/// for the id: letters, digits, `-` and `.`).
pub fn message_id(host: &str, now: SystemTime) -> String {
    let micros = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    let host = host.trim_matches('.');
    let host = if host.is_empty() { "localhost" } else { host };
    format!(
        "<{micros}.{}.{:016x}@{host}>",
        std::process::id(),
        random_u64()
    )
}

/// 64 bits no one can predict, without a `rand` crate: std's `RandomState` is keyed from
/// the operating system's random source once per process; hashing a counter and the time
/// with it gives a new value on every call.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    hasher.write_u128(nanos);
    hasher.finish()
}

/// The longest encoded-word that still fits on the first line of header `name`.
fn word_budget(name: &str) -> usize {
    MAX_ENCODED_WORD.min(MAX_HEADER_LINE - name.len() - 2)
}

/// Writes `Name: token token ...` and CRLF, folding (CRLF + space, RFC 5322 §2.2.3) before
/// a token that would take the line past [`MAX_HEADER_LINE`]. Tokens are separated by one
/// space; unfolding puts back exactly that space. A token too long for the first line (the
/// 65-character type of an `.xlsx`) goes on the next, after the colon (structured fields
/// allow folding there); one longer than any line (only an over-long address can be) goes
/// on a line of its own.
fn header(out: &mut Vec<u8>, name: &str, tokens: Vec<String>) {
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let mut line = name.len() + 1;
    for (i, token) in tokens.iter().enumerate() {
        // Never fold before an empty token (a line of only a space is not allowed), nor
        // right after the colon unless the first token then fits (a long MIME type).
        let over = line + 1 + token.len() > MAX_HEADER_LINE;
        if over && !token.is_empty() && (i > 0 || token.len() < MAX_HEADER_LINE) {
            out.extend_from_slice(b"\r\n");
            line = 0;
        }
        out.push(b' ');
        out.extend_from_slice(token.as_bytes());
        line += 1 + token.len();
    }
    out.extend_from_slice(b"\r\n");
}

/// Does `text` need encoded-words to survive a header as it is? Yes if it is not
/// printable ASCII, holds `=?` (a reader would decode it), or holds a word too long to
/// fold within `max_word` characters.
fn needs_encoded_words(text: &str, max_word: usize) -> bool {
    !text.bytes().all(|b| (0x20..0x7f).contains(&b))
        || text.contains("=?")
        || text.split(' ').any(|w| w.len() > max_word)
}

/// The Subject's tokens: its words, or encoded-words (see [`needs_encoded_words`]).
fn subject_tokens(subject: &str) -> Vec<String> {
    let budget = word_budget("Subject");
    if needs_encoded_words(subject, budget) {
        encoded_words(subject, budget)
    } else {
        subject.split(' ').map(str::to_string).collect()
    }
}

/// `text` as RFC 2047 `B` encoded-words in UTF-8, each at most `max_word` characters and
/// holding whole characters only (§5 rule 3: a character is never split across two).
/// Readers drop the space between two encoded-words (§6.2), so the text reads back as it was.
fn encoded_words(text: &str, max_word: usize) -> Vec<String> {
    let max_bytes = (max_word - ENCODED_WORD_OVERHEAD) / 4 * 3;
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > max_bytes && end > start {
            words.push(encoded_word(&text[start..end]));
            start = end;
        }
        end = i + c.len_utf8();
    }
    if end > start || words.is_empty() {
        words.push(encoded_word(&text[start..end]));
    }
    words
}

fn encoded_word(text: &str) -> String {
    format!(
        "=?UTF-8?B?{}?=",
        base64_simd::STANDARD.encode_to_string(text.as_bytes())
    )
}

/// `name="value"` for a short printable-ASCII value, else RFC 2231: `name*=UTF-8''%XX..`,
/// cut into `name*0*=`, `name*1*=`, ... segments that each fit a folded line. Every token
/// but the last ends in `;`.
fn parameter(name: &str, value: &str) -> Vec<String> {
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        && name.len() + value.len() + 4 <= MAX_PARAMETER_SEGMENT;
    if plain {
        return vec![format!("{name}=\"{value}\"")];
    }
    // RFC 2231 §7: attribute-char is any printable ASCII but specials, space, `*`, `'`, `%`.
    let mut encoded = String::from("UTF-8''");
    // Where a segment may end: after a whole character, so never inside a %XX, nor
    // between the bytes of one character (RFC 2231 does not ask that, some readers do).
    let mut cuts = Vec::new();
    let mut utf8 = [0; 4];
    for c in value.chars() {
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        cuts.push(encoded.len());
    }
    if encoded.len() <= MAX_PARAMETER_SEGMENT {
        return vec![format!("{name}*={encoded}")];
    }
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut last_cut = 0;
    for &cut in &cuts {
        if cut - start > MAX_PARAMETER_SEGMENT && last_cut > start {
            tokens.push(format!(
                "{name}*{}*={};",
                tokens.len(),
                &encoded[start..last_cut]
            ));
            start = last_cut;
        }
        last_cut = cut;
    }
    tokens.push(format!("{name}*{}*={}", tokens.len(), &encoded[start..]));
    tokens
}

/// Text in its canonical form (RFC 2046 §4.1.1): every line end (CRLF, bare LF, bare CR)
/// a CRLF.
fn canonical_text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 32);
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\r' => {
                bytes.next_if_eq(&b'\n');
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of canonical text: printable ASCII but `=` as it is,
/// everything else `=XX`; a space or tab at a line's end `=20`/`=09` (rule 3: trailing
/// whitespace may be stripped in transit); lines of at most 76 characters, longer ones cut
/// with a soft break `=` (rule 5) never inside an `=XX`. No CRLF after the last line.
fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                ((b'!'..=b'~').contains(&b) && b != b'=') || (!last && (b == b' ' || b == b'\t'));
            let len = if literal { 1 } else { 3 };
            // Room for the soft break's `=`, unless this is the line's last character.
            let limit = if last {
                MAX_BODY_LINE
            } else {
                MAX_BODY_LINE - 1
            };
            if width + len > limit {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            width += len;
        }
        if lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// The length of [`base64_wrapped`] for `n` bytes.
fn base64_wrapped_len(n: usize) -> usize {
    let chars = n.div_ceil(3) * 4;
    chars + chars.div_ceil(MAX_BODY_LINE).saturating_sub(1) * 2
}

/// Base64 in lines of 76 characters (57 bytes each), CRLF between them, none after the last.
fn base64_wrapped(data: &[u8]) -> Vec<u8> {
    const BYTES_PER_LINE: usize = MAX_BODY_LINE / 4 * 3;
    let mut out = Vec::with_capacity(base64_wrapped_len(data.len()));
    for (i, chunk) in data.chunks(BYTES_PER_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        base64_simd::STANDARD.encode_append(chunk, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(s: &str) -> Mailbox {
        Mailbox::parse(s, "To").expect("a mailbox")
    }

    fn message() -> Message {
        Message {
            from: mailbox("Ann <ann@example.org>"),
            to: vec![mailbox("bob@example.net")],
            subject: "hello".into(),
            text: "hi\n".into(),
            attachments: vec![],
            date: DateTime::parse_from_rfc2822("Tue, 3 Dec 2024 10:52:37 +0100").expect("date"),
            message_id: "<1.2.3@host>".into(),
        }
    }

    fn text(m: &Message) -> String {
        String::from_utf8(m.to_bytes_with_boundary("=_B").expect("builds")).expect("ASCII")
    }

    /// Every line ends in CRLF, no header line is over 78 and no body line over 76.
    #[track_caller]
    fn assert_well_formed(msg: &str) {
        assert!(msg.ends_with("\r\n"));
        assert!(
            !msg.replace("\r\n", "").contains(['\r', '\n']),
            "a bare CR or LF"
        );
        let (head, body) = msg.split_once("\r\n\r\n").expect("a blank line");
        for line in head.split("\r\n") {
            assert!(
                line.len() <= MAX_HEADER_LINE,
                "{line:?} is {} long",
                line.len()
            );
        }
        for line in body.split("\r\n") {
            assert!(
                line.len() <= MAX_HEADER_LINE,
                "{line:?} is {} long",
                line.len()
            );
        }
    }

    #[test]
    fn a_plain_message_reads_as_rfc_5322() {
        let m = message();
        assert_eq!(
            text(&m),
            "From: Ann <ann@example.org>\r\n\
             To: bob@example.net\r\n\
             Subject: hello\r\n\
             Date: Tue, 3 Dec 2024 10:52:37 +0100\r\n\
             Message-ID: <1.2.3@host>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"=_B\"\r\n\
             \r\n\
             This is a multi-part message in MIME format.\r\n\
             --=_B\r\n\
             Content-Type: text/plain; charset=\"utf-8\"\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             \r\n\
             hi\r\n\
             \r\n\
             --=_B--\r\n"
        );
    }

    #[test]
    fn a_line_break_in_any_header_input_is_refused() {
        let injected = "hi\r\nBcc: everyone@example.org";
        let mut m = message();
        m.subject = injected.into();
        assert_eq!(m.to_bytes(), Err(MimeError::LineBreak { field: "Subject" }));
        m.subject = "a\nb".into();
        assert_eq!(m.to_bytes(), Err(MimeError::LineBreak { field: "Subject" }));
        assert_eq!(
            Mailbox::parse("bob@example.net\nBcc: x@y", "To"),
            Err(MimeError::LineBreak { field: "To" })
        );
        assert_eq!(
            Mailbox::parse("Bob\r <bob@example.net>", "From"),
            Err(MimeError::LineBreak { field: "From" })
        );
        let mut m = message();
        m.to[0].name = Some("Bob\rBcc: x".into());
        assert_eq!(
            m.to_bytes(),
            Err(MimeError::LineBreak {
                field: "display name"
            })
        );
        let mut m = message();
        m.attachments
            .push(Attachment::new("evil\n.txt", b"x".to_vec()));
        assert_eq!(
            m.to_bytes(),
            Err(MimeError::LineBreak {
                field: "attachment name"
            })
        );
        let mut m = message();
        m.to[0].address = "bob@example.net>\r\nRCPT TO:<x@y".into();
        assert!(matches!(m.to_bytes(), Err(MimeError::BadAddress(_))));
    }

    #[test]
    fn mailboxes_parse_and_bad_addresses_are_refused() {
        assert_eq!(
            mailbox("\"Ann, the first\" <ann@example.org>"),
            Mailbox {
                name: Some("Ann, the first".into()),
                address: "ann@example.org".into()
            }
        );
        assert_eq!(mailbox(" <ann@example.org> ").name, None);
        for bad in [
            "ann",
            "ann@",
            "@x",
            "a b@x",
            "a@b@c",
            "a,b@x",
            "<a@x",
            "ann@exämple.org",
        ] {
            assert!(
                matches!(Mailbox::parse(bad, "To"), Err(MimeError::BadAddress(_))),
                "{bad}"
            );
        }
        let mut m = message();
        m.to = vec![
            mailbox("Вася Пупкин <vasya@example.net>"),
            mailbox("\"O'Brien, Pat\" <pat@example.net>"),
            mailbox("Plain Name <plain@example.net>"),
        ];
        let t = text(&m);
        assert_well_formed(&t);
        assert!(
            t.contains(
                "To: =?UTF-8?B?0JLQsNGB0Y8g0J/Rg9C/0LrQuNC9?= <vasya@example.net>,\r\n \
                 \"O'Brien, Pat\" <pat@example.net>, Plain Name <plain@example.net>\r\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn a_non_ascii_subject_is_encoded_words_folded_within_78() {
        let mut m = message();
        m.subject = "Здравствуте!".into();
        assert!(text(&m).contains("Subject: =?UTF-8?B?0JfQtNGA0LDQstGB0YLQstGD0YLQtSE=?=\r\n"));
        m.subject = "Отчёт за месяц: выручка, расходы и всё остальное — см. вложение 📎".into();
        let t = text(&m);
        assert_well_formed(&t);
        let subject = t.split("\r\nDate:").next().expect("headers");
        let subject = subject.split("Subject:").nth(1).expect("a subject");
        let words: Vec<&str> = subject.split_whitespace().collect();
        assert!(words.len() > 2, "folded: {subject}");
        let decoded: Vec<u8> = words
            .iter()
            .flat_map(|w| {
                let b64 = w
                    .strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .expect("a B word");
                let bytes = base64_simd::STANDARD.decode_to_vec(b64).expect("base64");
                assert!(
                    std::str::from_utf8(&bytes).is_ok(),
                    "whole characters in each word"
                );
                bytes
            })
            .collect();
        assert_eq!(String::from_utf8(decoded).expect("UTF-8"), m.subject);
    }

    #[test]
    fn an_ascii_subject_is_folded_at_spaces_or_encoded_when_it_cannot_be() {
        let mut m = message();
        m.subject = "word ".repeat(30).trim_end().to_string();
        let t = text(&m);
        assert_well_formed(&t);
        let unfolded = t.replace("\r\n ", " ");
        assert!(unfolded.contains(&format!("Subject: {}\r\n", m.subject)));
        for tricky in ["=?UTF-8?B?SGk=?=", &"x".repeat(80), "tab\there"] {
            m.subject = tricky.into();
            let t = text(&m);
            assert_well_formed(&t);
            assert!(
                t.contains("Subject: =?UTF-8?B?"),
                "{tricky:?} is encoded: {t}"
            );
        }
    }

    #[test]
    fn quoted_printable_encodes_what_it_must_and_cuts_long_lines() {
        let qp = |s: &str| String::from_utf8(quoted_printable(&canonical_text(s))).expect("ASCII");
        assert_eq!(qp("a=b\n"), "a=3Db\r\n");
        assert_eq!(qp("trailing \nand\ttab\t"), "trailing=20\r\nand\ttab=09");
        assert_eq!(qp("é"), "=C3=A9");
        assert_eq!(qp("a\rb\r\nc"), "a\r\nb\r\nc");
        let long = qp(&"x".repeat(200));
        let lines: Vec<&str> = long.split("\r\n").collect();
        assert!(lines.iter().all(|l| l.len() <= 76), "{lines:?}");
        assert_eq!(lines.concat().replace('=', ""), "x".repeat(200));
        // An escape is never cut: 74 x's then é (=C3=A9) must break before the `=C3`.
        let cut = qp(&format!("{}é", "x".repeat(74)));
        assert_eq!(cut, format!("{}=\r\n=C3=A9", "x".repeat(74)));
        // Exactly 76 on the last line needs no soft break.
        assert_eq!(qp(&"y".repeat(76)), "y".repeat(76));
        assert_eq!(qp(&"y".repeat(77)), format!("{}=\r\nyy", "y".repeat(75)));
    }

    #[test]
    fn the_text_part_takes_the_shorter_encoding() {
        let mut m = message();
        m.text = "Plain English, with one = sign.".into();
        assert!(text(&m).contains("quoted-printable\r\n\r\nPlain English, with one =3D sign.\r\n"));
        m.text = "Привет, как дела? Всё хорошо.".into();
        assert!(text(&m).contains("Content-Transfer-Encoding: base64\r\n"));
    }

    #[test]
    fn the_boundary_cannot_occur_in_a_part() {
        let mut m = message();
        m.text = "--=_B\n--=_B--\n=_B".into();
        m.attachments
            .push(Attachment::new("x.bin", b"--=_B\r\n".to_vec()));
        let t = text(&m);
        let delimiters = t.split("\r\n").filter(|l| l.starts_with("--=_B")).count();
        assert_eq!(delimiters, 3, "two parts and the close: {t}");
        assert!(t.contains("--=3D_B\r\n--=3D_B--\r\n=3D_B"));
    }

    #[test]
    fn attachments_are_base64_in_76_columns_with_a_guessed_type() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut m = message();
        m.attachments
            .push(Attachment::new("/tmp/dir/month-data.xlsx", data.clone()));
        m.attachments
            .push(Attachment::new("notes.txt", "заметки".as_bytes().to_vec()));
        m.attachments.push(Attachment::new("no-extension", vec![]));
        let t = text(&m);
        assert_well_formed(&t);
        assert!(t.contains(
            "Content-Type:\r\n application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;\r\n name=\"month-data.xlsx\"\r\n\
             Content-Disposition: attachment; filename=\"month-data.xlsx\"\r\n"
        ), "{t}");
        assert!(t.contains("Content-Type: text/plain; charset=\"utf-8\"; name=\"notes.txt\"\r\n"));
        assert!(t.contains("Content-Type: application/octet-stream; name=\"no-extension\"\r\n"));
        let part = t
            .split("filename=\"month-data.xlsx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
            .nth(1)
            .expect("the part");
        let b64: String = part
            .split("\r\n--")
            .next()
            .expect("its body")
            .split("\r\n")
            .inspect(|l| assert!(l.len() <= 76))
            .collect();
        assert_eq!(
            base64_simd::STANDARD.decode_to_vec(b64).expect("base64"),
            data
        );
    }

    #[test]
    fn non_ascii_and_long_file_names_use_rfc_2231() {
        assert_eq!(parameter("filename", "a b.txt"), ["filename=\"a b.txt\""]);
        assert_eq!(
            parameter("filename", "отчёт.pdf"),
            ["filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf"]
        );
        assert_eq!(
            parameter("name", "say \"hi\".txt"),
            ["name*=UTF-8''say%20%22hi%22.txt"]
        );
        let long = "квартальный отчёт отдела продаж за третий квартал.xlsx";
        let tokens = parameter("filename", long);
        assert!(tokens.len() > 2, "{tokens:?}");
        let mut joined = String::new();
        for (i, t) in tokens.iter().enumerate() {
            let prefix = format!("filename*{i}*=");
            let value = t
                .strip_prefix(&prefix)
                .expect("numbered")
                .trim_end_matches(';');
            assert!(
                !value.ends_with('%') && value.len() <= MAX_PARAMETER_SEGMENT,
                "{t}"
            );
            joined.push_str(value);
        }
        let hex = joined.strip_prefix("UTF-8''").expect("charset first");
        let mut bytes = Vec::new();
        let mut rest = hex.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                bytes.push(
                    u8::from_str_radix(std::str::from_utf8(&tail[..2]).expect("hex"), 16)
                        .expect("hex"),
                );
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        assert_eq!(String::from_utf8(bytes).expect("UTF-8"), long);
        let mut m = message();
        m.attachments.push(Attachment::new(long, b"x".to_vec()));
        assert_well_formed(&text(&m));
    }

    #[test]
    fn message_ids_are_unique_and_well_formed() {
        let now = SystemTime::now();
        let a = message_id("host.example", now);
        let b = message_id("host.example", now);
        assert_ne!(a, b, "same microsecond, different ids");
        assert!(a.starts_with('<') && a.ends_with("@host.example>"), "{a}");
        assert!(message_id("bad host/\r\n", now).ends_with("@badhost>"));
        assert!(message_id("", now).ends_with("@localhost>"));
    }
}
