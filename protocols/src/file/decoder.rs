//! The lesson's file document, read as it arrives: the client side.
//!
//! Lesson program 05 reads to EOF into one buffer, then `loads` the JSON and
//! `b64decode`s the data: the whole file, plus a third more for base64, sits in memory
//! twice. [`JsonBase64Decoder`] parses the same document byte by byte, in any chunking,
//! and hands out the file's bytes as soon as each base64 group is complete. Its memory does
//! not grow with the file: a key (at most 9 bytes kept), the name (at most
//! [`MAX_NAME_BYTES`]), one unfinished base64 group, and the events for the current chunk.
//! [`super::decode_whole`] is the lesson's way, with serde_json, for documents already in memory.
//!
//! Read: RFC 8259 (JSON) §2 for whitespace, §4 objects, §7 strings and escapes; RFC 4648
//! §4 for base64; and [`super::base64`] for what is and is not accepted inside `filedata`.
//!
//! # What the streaming decoder accepts
//!
//! One JSON object, with whitespace (space, tab, CR, LF) around it and its tokens, holding:
//!
//! - `"filename"`: a string, with every JSON escape (`\uXXXX` surrogate pairs included);
//!   it must decode to valid UTF-8 of at most [`MAX_NAME_BYTES`] bytes;
//! - `"filedata"`: a string of base64. JSON escapes are decoded first, so `\/` (JSON may
//!   escape `/`) is a `/`; whitespace inside it (a literal space, or `\n`, `\r`, `\t`
//!   escapes from MIME-wrapped base64) is skipped, as Python's `b64decode` skips it;
//! - any other key with a string, number, `true`, `false` or `null` value, skipped. Skipped
//!   numbers are checked only to be made of `0-9 + - . e E`, and skipped strings are not
//!   checked for UTF-8. Objects and arrays as values are refused
//!   ([`DecodeError::UnsupportedValue`]): the lesson's document has none.
//!
//! Either key may come first. If `filedata` comes first, its [`Event::Data`] events are
//! emitted as they arrive and [`Event::FileName`] after them: buffering the data until the
//! name shows up would make memory grow with the file, which is what this decoder exists
//! to avoid. A receiver that needs the name first writes to a temporary file and renames
//! it. Each key must appear exactly once; a repeat is an error, where Python keeps the
//! last (streamed data cannot be taken back).
//!
//! The name is only checked for length. It comes from the network: pass it through
//! [`super::safe_file_name`] before opening anything (the lesson's client does
//! `open('/Users/admin/' + filename)`, so a server sending `../../.bashrc` wins).
//!
//! # States
//!
//! ```text
//! state           input                   next                     emits
//! BeforeObject    {                       BeforeFirstKey
//! BeforeFirstKey  "                       InString(Key)
//! BeforeFirstKey  }                       (missing keys: error)
//! InString(Key)   "                       AfterKey                 (DuplicateKey?)
//! AfterKey        :                       BeforeValue
//! BeforeValue     " (filename/filedata)   InString(FileName/FileData)
//! BeforeValue     " t f n - 0-9 (other)   InString(Skip), InLiteral, InNumber
//! InString(...)   bytes, escapes          same                     Data as groups finish
//! InString(Name)  "                       AfterValue               FileName
//! InString(Data)  "                       AfterValue               (Truncated base64?)
//! InLiteral       rest of true/false/null AfterValue
//! InNumber        a non-number byte       AfterValue               (byte not consumed)
//! AfterValue      ,                       BeforeKey
//! AfterValue      }                       Done                     End (or MissingKey)
//! BeforeKey       "                       InString(Key)
//! Done            whitespace              Done
//! Done            anything else           (TrailingGarbage)
//! ```
//!
//! Whitespace is skipped in every state outside strings and literals. Any other input is
//! an error, after which the decoder repeats that error.

use std::collections::VecDeque;
use std::fmt;

use super::base64::{Base64Decoder, Base64Error, first_where};
use super::name::MAX_NAME_BYTES;

/// What the decoder found, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The `filename` value, unescaped. Not yet checked as a safe path: see the module doc.
    FileName(String),
    /// The next bytes of the file. Empty files produce none; how the file is cut into
    /// `Data` events depends on how the document arrived.
    Data(Vec<u8>),
    /// The closing `}`: both keys were seen and the file is complete.
    End,
}

/// The peer sent something that is not the lesson's document (as far as this decoder
/// reads JSON; see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or JSON this decoder does not read, at byte offset `at` of the stream.
    InvalidJson {
        /// Offset of the offending byte from the start of the document.
        at: u64,
        /// What would have been valid there.
        expected: &'static str,
    },
    /// Non-whitespace after the closing `}`.
    TrailingGarbage {
        /// Offset of the first such byte.
        at: u64,
    },
    /// An object or array as the value of an unknown key.
    UnsupportedValue {
        /// Offset of its `{` or `[`.
        at: u64,
    },
    /// The object closed without this key.
    MissingKey(&'static str),
    /// This key appeared twice.
    DuplicateKey(&'static str),
    /// This key's value is not a string.
    WrongType(&'static str),
    /// The file name is longer than [`MAX_NAME_BYTES`] bytes.
    NameTooLong,
    /// The file name is not valid UTF-8.
    NameNotUtf8,
    /// `filedata` is not base64.
    InvalidBase64(Base64Error),
    /// The stream ended before the closing `}`: a transfer cut short.
    UnexpectedEof,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidJson { at, expected } => {
                write!(f, "invalid document at byte {at}: expected {expected}")
            }
            DecodeError::TrailingGarbage { at } => {
                write!(
                    f,
                    "unexpected data at byte {at}, after the end of the document"
                )
            }
            DecodeError::UnsupportedValue { at } => write!(
                f,
                "unsupported value at byte {at}: unknown keys may hold only strings, \
                 numbers, true, false or null"
            ),
            DecodeError::MissingKey(key) => write!(f, "the document has no \"{key}\""),
            DecodeError::DuplicateKey(key) => write!(f, "\"{key}\" appears twice"),
            DecodeError::WrongType(key) => write!(f, "\"{key}\" must be a string"),
            DecodeError::NameTooLong => {
                write!(f, "the file name is longer than {MAX_NAME_BYTES} bytes")
            }
            DecodeError::NameNotUtf8 => write!(f, "the file name is not valid UTF-8"),
            DecodeError::InvalidBase64(e) => write!(f, "filedata is not valid base64: {e}"),
            DecodeError::UnexpectedEof => {
                write!(f, "the document ended early: the transfer was cut short")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The longest key the decoder needs to recognise: `filename` and `filedata` are 8 bytes.
/// One more byte is kept so that a longer key is known not to match.
const LONGEST_KEY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    FileName,
    FileData,
    Other,
}

/// Where the characters of the current string go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Key,
    FileName,
    FileData,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    BeforeObject,
    BeforeFirstKey,
    BeforeKey,
    AfterKey,
    BeforeValue,
    InString(Target),
    /// Inside `true`, `false` or `null`; holds the bytes still expected.
    InLiteral(&'static [u8]),
    InNumber,
    AfterValue,
    Done,
}

/// Inside a string: after a backslash, or inside `\uXXXX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    Hex { digits: u8, value: u16 },
}

/// Streams `{"filename": ..., "filedata": ...}`: feed [`JsonBase64Decoder::handle_bytes`]
/// as bytes arrive and drain [`JsonBase64Decoder::poll_event`] until `Ok(None)` after each
/// call; at EOF call [`JsonBase64Decoder::handle_eof`] and drain again. The events decoded
/// before an error come out first, then the error ([`DecodeError::UnexpectedEof`] for a
/// document cut short), on that call and every later one.
///
/// ```
/// use netloop_protocols::file::{DecodeError, Event, JsonBase64Decoder};
///
/// let mut decoder = JsonBase64Decoder::new();
/// decoder.handle_bytes(br#"{"filename": "hi.txt", "file"#);
/// decoder.handle_bytes(br#"data": "aGkK"}"#);
/// decoder.handle_eof();
/// assert_eq!(decoder.poll_event(), Ok(Some(Event::FileName("hi.txt".into()))));
/// assert_eq!(decoder.poll_event(), Ok(Some(Event::Data(b"hi\n".to_vec()))));
/// assert_eq!(decoder.poll_event(), Ok(Some(Event::End)));
/// assert_eq!(decoder.poll_event(), Ok(None));
///
/// let mut cut = JsonBase64Decoder::new();
/// cut.handle_bytes(br#"{"filename": "hi.txt""#);
/// cut.handle_eof();
/// assert_eq!(cut.poll_event(), Ok(Some(Event::FileName("hi.txt".into()))));
/// assert_eq!(cut.poll_event(), Err(DecodeError::UnexpectedEof));
/// ```
#[derive(Debug, Clone)]
pub struct JsonBase64Decoder {
    state: State,
    escape: Escape,
    /// A `\uD800`-`\uDBFF` escape waiting for its low half.
    high_surrogate: Option<u16>,
    key: Vec<u8>,
    current: Key,
    name: Vec<u8>,
    seen_name: bool,
    seen_data: bool,
    base64: Base64Decoder,
    /// Decoded bytes not yet queued as an event.
    data: Vec<u8>,
    events: VecDeque<Event>,
    /// Bytes of the stream consumed so far.
    offset: u64,
    failed: Option<DecodeError>,
    /// Try [`Base64Decoder::decode_run`] on file data first; cleared by its first miss
    /// (the end of the body, or base64 with spaces in it), after which every byte takes
    /// the careful way.
    optimistic: bool,
}

impl Default for JsonBase64Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonBase64Decoder {
    /// A decoder at the start of a document.
    pub fn new() -> Self {
        JsonBase64Decoder {
            state: State::BeforeObject,
            escape: Escape::None,
            high_surrogate: None,
            key: Vec::new(),
            current: Key::Other,
            name: Vec::new(),
            seen_name: false,
            seen_data: false,
            base64: Base64Decoder::new(),
            data: Vec::new(),
            events: VecDeque::new(),
            offset: 0,
            failed: None,
            optimistic: true,
        }
    }

    /// Bytes of the document arrived, in any chunking. After an error (which
    /// [`JsonBase64Decoder::poll_event`] reports) they are dropped.
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        while !bytes.is_empty() {
            match self.step(bytes) {
                Ok(consumed) => {
                    bytes = &bytes[consumed..];
                    self.offset += consumed as u64;
                }
                Err(e) => {
                    // The bytes decoded before the error still go out, so the events are
                    // the same whatever the reads were (a read ending just before the bad
                    // byte would have handed them out). The caller drops a failed file.
                    self.flush_data();
                    self.failed = Some(e);
                    return;
                }
            }
        }
        self.flush_data();
    }

    /// The peer closed: the document must be complete, or the next
    /// [`JsonBase64Decoder::poll_event`] after the events says [`DecodeError::UnexpectedEof`].
    pub fn handle_eof(&mut self) {
        if self.failed.is_none() && self.state != State::Done {
            self.failed = Some(DecodeError::UnexpectedEof);
        }
    }

    /// The next event, in document order; `Ok(None)` until more bytes arrive. Once the
    /// events are out, a broken document's error, on this call and every later one.
    pub fn poll_event(&mut self) -> Result<Option<Event>, DecodeError> {
        match (self.events.pop_front(), &self.failed) {
            (Some(event), _) => Ok(Some(event)),
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Ok(None),
        }
    }

    /// Bytes held between calls: a key being read (up to the longest key that matters,
    /// plus one), the file name so far (up to [`MAX_NAME_BYTES`]) and up to three base64
    /// characters of an unfinished group. Decoded file bytes are never held past the
    /// call that decoded them.
    pub fn buffered(&self) -> usize {
        self.key.len() + self.name.len() + self.data.len() + self.base64.pending()
    }

    /// Whether the closing `}` has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes some bytes from the front of `input` (not empty) and returns how many. May
    /// return 0 only after changing state, so the caller's loop always progresses.
    fn step(&mut self, input: &[u8]) -> Result<usize, DecodeError> {
        let byte = input[0];
        match self.state {
            State::InString(target) => self.step_string(target, input),
            State::InLiteral(rest) => {
                if byte != rest[0] {
                    return Err(self.invalid("true, false or null"));
                }
                self.state = match &rest[1..] {
                    [] => State::AfterValue,
                    rest => State::InLiteral(rest),
                };
                Ok(1)
            }
            State::InNumber => {
                let digits = input
                    .iter()
                    .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
                if digits < input.len() {
                    self.state = State::AfterValue;
                }
                Ok(digits)
            }
            _ if is_whitespace(byte) => Ok(input.iter().take_while(|&&c| is_whitespace(c)).count()),
            State::BeforeObject if byte == b'{' => {
                self.state = State::BeforeFirstKey;
                Ok(1)
            }
            State::BeforeObject => Err(self.invalid("'{'")),
            State::BeforeFirstKey | State::BeforeKey if byte == b'"' => {
                self.key.clear();
                self.state = State::InString(Target::Key);
                Ok(1)
            }
            State::BeforeFirstKey if byte == b'}' => self.end_object(),
            State::BeforeFirstKey => Err(self.invalid("a key or '}'")),
            State::BeforeKey => Err(self.invalid("a key")),
            State::AfterKey if byte == b':' => {
                self.state = State::BeforeValue;
                Ok(1)
            }
            State::AfterKey => Err(self.invalid("':'")),
            State::BeforeValue => self.start_value(byte),
            State::AfterValue if byte == b',' => {
                self.state = State::BeforeKey;
                Ok(1)
            }
            State::AfterValue if byte == b'}' => self.end_object(),
            State::AfterValue => Err(self.invalid("',' or '}'")),
            State::Done => Err(DecodeError::TrailingGarbage { at: self.offset }),
        }
    }

    fn start_value(&mut self, byte: u8) -> Result<usize, DecodeError> {
        self.state = match (self.current, byte) {
            (Key::FileName, b'"') => State::InString(Target::FileName),
            (Key::FileData, b'"') => State::InString(Target::FileData),
            (Key::FileName, _) => return Err(DecodeError::WrongType("filename")),
            (Key::FileData, _) => return Err(DecodeError::WrongType("filedata")),
            (Key::Other, b'"') => State::InString(Target::Skip),
            (Key::Other, b't') => State::InLiteral(b"rue"),
            (Key::Other, b'f') => State::InLiteral(b"alse"),
            (Key::Other, b'n') => State::InLiteral(b"ull"),
            (Key::Other, b'-' | b'0'..=b'9') => State::InNumber,
            (Key::Other, b'{' | b'[') => {
                return Err(DecodeError::UnsupportedValue { at: self.offset });
            }
            (Key::Other, _) => return Err(self.invalid("a value")),
        };
        Ok(1)
    }

    fn step_string(&mut self, target: Target, input: &[u8]) -> Result<usize, DecodeError> {
        let byte = input[0];
        match (self.escape, self.high_surrogate) {
            (Escape::None, None) => {
                if target == Target::FileData && self.optimistic {
                    match self.base64.decode_run(input, &mut self.data) {
                        Some(0) => {}
                        Some(run) => return Ok(run),
                        None => self.optimistic = false,
                    }
                }
                // The common case, and all of a base64 body: a run of plain bytes at once.
                // `|`, not `||`: see `first_where`.
                let run = first_where(input, |c| (c == b'"') | (c == b'\\') | (c < 0x20));
                if run > 0 {
                    self.string_bytes(target, &input[..run])?;
                    return Ok(run);
                }
                match byte {
                    b'"' => self.end_string(target)?,
                    b'\\' => self.escape = Escape::Backslash,
                    _ => return Err(self.invalid("no raw control characters in a string")),
                }
                Ok(1)
            }
            (Escape::None, Some(_)) if byte == b'\\' => {
                self.escape = Escape::Backslash;
                Ok(1)
            }
            (Escape::None, Some(_)) => Err(self.invalid(LOW_SURROGATE)),
            (Escape::Backslash, high) => {
                let c = match byte {
                    b'u' => {
                        self.escape = Escape::Hex {
                            digits: 0,
                            value: 0,
                        };
                        return Ok(1);
                    }
                    _ if high.is_some() => return Err(self.invalid(LOW_SURROGATE)),
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    _ => {
                        return Err(
                            self.invalid("an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u")
                        );
                    }
                };
                self.escape = Escape::None;
                self.string_char(target, c)?;
                Ok(1)
            }
            (Escape::Hex { digits, value }, high) => {
                let digit = match byte {
                    b'0'..=b'9' => byte - b'0',
                    b'a'..=b'f' => byte - b'a' + 10,
                    b'A'..=b'F' => byte - b'A' + 10,
                    _ => return Err(self.invalid("a hex digit")),
                };
                let value = value << 4 | u16::from(digit);
                if digits < 3 {
                    self.escape = Escape::Hex {
                        digits: digits + 1,
                        value,
                    };
                    return Ok(1);
                }
                self.escape = Escape::None;
                let code = match (high, value) {
                    (None, 0xD800..=0xDBFF) => {
                        self.high_surrogate = Some(value);
                        return Ok(1);
                    }
                    (None, 0xDC00..=0xDFFF) => {
                        return Err(self.invalid("a high surrogate first"));
                    }
                    (None, _) => u32::from(value),
                    (Some(high), 0xDC00..=0xDFFF) => {
                        0x10000 + ((u32::from(high) - 0xD800) << 10 | (u32::from(value) - 0xDC00))
                    }
                    (Some(_), _) => return Err(self.invalid(LOW_SURROGATE)),
                };
                self.high_surrogate = None;
                let c = char::from_u32(code).expect("surrogates are handled above");
                self.string_char(target, c)?;
                Ok(1)
            }
        }
    }

    fn string_char(&mut self, target: Target, c: char) -> Result<(), DecodeError> {
        self.string_bytes(target, c.encode_utf8(&mut [0; 4]).as_bytes())
    }

    fn string_bytes(&mut self, target: Target, bytes: &[u8]) -> Result<(), DecodeError> {
        match target {
            Target::Key => {
                let room = (LONGEST_KEY + 1).saturating_sub(self.key.len());
                self.key.extend_from_slice(&bytes[..room.min(bytes.len())]);
            }
            Target::FileName => {
                if self.name.len() + bytes.len() > MAX_NAME_BYTES {
                    return Err(DecodeError::NameTooLong);
                }
                self.name.extend_from_slice(bytes);
            }
            Target::FileData => {
                let decoded = self.base64.handle_text(bytes, &mut self.data);
                decoded.map_err(DecodeError::InvalidBase64)?;
            }
            Target::Skip => {}
        }
        Ok(())
    }

    fn end_string(&mut self, target: Target) -> Result<(), DecodeError> {
        self.state = State::AfterValue;
        match target {
            Target::Key => {
                self.current = match self.key.as_slice() {
                    b"filename" if self.seen_name => {
                        return Err(DecodeError::DuplicateKey("filename"));
                    }
                    b"filedata" if self.seen_data => {
                        return Err(DecodeError::DuplicateKey("filedata"));
                    }
                    b"filename" => Key::FileName,
                    b"filedata" => Key::FileData,
                    _ => Key::Other,
                };
                self.state = State::AfterKey;
            }
            Target::FileName => {
                let name = String::from_utf8(std::mem::take(&mut self.name))
                    .map_err(|_| DecodeError::NameNotUtf8)?;
                self.seen_name = true;
                self.flush_data();
                self.events.push_back(Event::FileName(name));
            }
            Target::FileData => {
                self.base64.finish().map_err(DecodeError::InvalidBase64)?;
                self.seen_data = true;
            }
            Target::Skip => {}
        }
        Ok(())
    }

    fn end_object(&mut self) -> Result<usize, DecodeError> {
        if !self.seen_name {
            return Err(DecodeError::MissingKey("filename"));
        }
        if !self.seen_data {
            return Err(DecodeError::MissingKey("filedata"));
        }
        self.flush_data();
        self.events.push_back(Event::End);
        self.state = State::Done;
        Ok(1)
    }

    fn flush_data(&mut self) {
        if !self.data.is_empty() {
            self.events
                .push_back(Event::Data(std::mem::take(&mut self.data)));
        }
    }

    /// The byte at the front of the current input is not valid here.
    fn invalid(&self, expected: &'static str) -> DecodeError {
        DecodeError::InvalidJson {
            at: self.offset,
            expected,
        }
    }
}

const LOW_SURROGATE: &str = "a low surrogate \\uDC00-\\uDFFF after a high one";

/// JSON's whitespace (RFC 8259 §2).
pub(super) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{JsonBase64Encoder, decode_whole};
    use crate::testing::same_every_split;

    /// Feeds `pieces` then EOF; returns the events with adjacent `Data` merged (how data is
    /// cut into events depends on the chunking; the bytes must not), or the first error.
    fn decode(pieces: &[&[u8]]) -> Result<Vec<Event>, DecodeError> {
        let mut decoder = JsonBase64Decoder::new();
        let mut events: Vec<Event> = Vec::new();
        let mut drain = |decoder: &mut JsonBase64Decoder| {
            while let Some(event) = decoder.poll_event()? {
                match (events.last_mut(), event) {
                    (Some(Event::Data(all)), Event::Data(more)) => all.extend(more),
                    (_, Event::Data(more)) if more.is_empty() => panic!("an empty Data event"),
                    (_, event) => events.push(event),
                }
            }
            Ok::<(), DecodeError>(())
        };
        for piece in pieces {
            decoder.handle_bytes(piece);
            drain(&mut decoder)?;
        }
        decoder.handle_eof();
        drain(&mut decoder)?;
        Ok(events)
    }

    fn file(name: &str, data: &[u8]) -> Vec<Event> {
        let mut events = vec![Event::FileName(name.into())];
        if !data.is_empty() {
            events.push(Event::Data(data.to_vec()));
        }
        events.push(Event::End);
        events
    }

    fn encode(name: &str, data: &[u8]) -> Vec<u8> {
        let mut encoder = JsonBase64Encoder::new(name, data.len() as u64);
        let mut out = Vec::new();
        encoder.write_data(data, &mut out).expect("size matches");
        encoder.finish(&mut out).expect("size matches");
        out
    }

    /// Found by the `file_decoder` fuzz target: fed whole, an error dropped the file bytes
    /// of its own read; fed byte by byte, they had gone out. Now they go out either way.
    #[test]
    fn the_bytes_before_an_error_go_out_however_the_document_arrives() {
        let got = same_every_split(br#"{"filename": "a", "filedata": "YQ==YQ=="}"#, |p| {
            let mut decoder = JsonBase64Decoder::new();
            let mut data = Vec::new();
            let mut failed = None;
            'reads: for piece in p {
                decoder.handle_bytes(piece);
                loop {
                    match decoder.poll_event() {
                        Ok(Some(Event::Data(bytes))) => data.extend(bytes),
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(e);
                            break 'reads;
                        }
                    }
                }
            }
            (data, failed, decoder.buffered())
        });
        assert_eq!(
            got,
            (
                b"a".to_vec(),
                Some(DecodeError::InvalidBase64(Base64Error::AfterPadding)),
                "filedata".len(), // the last key read; nothing of the file
            )
        );
    }

    #[test]
    fn the_encoders_output_round_trips_however_it_arrives() {
        let pattern: Vec<u8> = (0..300u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
        for (name, data) in [
            ("Screenshot-1.png", &b""[..]),
            ("a", b"\xfb"),
            ("ab", b"\xfb\xff"),
            ("Снимок.png", b"\xfb\xff\xbf"),
            ("😀 \"q\" \\ \n.txt", b"\xfb\xff\xbf\x00"),
            ("pattern.bin", &pattern),
        ] {
            let document = encode(name, data);
            let got = same_every_split(&document, decode);
            assert_eq!(got, Ok(file(name, data)), "{name:?}");
            assert_eq!(
                decode_whole(&document),
                Ok((name.to_string(), data.to_vec()))
            );
        }
    }

    #[test]
    fn data_before_the_name_streams_first() {
        let document = br#"{"filedata":"aGVsbG8=","filename":"hello.txt"}"#;
        let got = same_every_split(document, decode);
        assert_eq!(
            got,
            Ok(vec![
                Event::Data(b"hello".to_vec()),
                Event::FileName("hello.txt".into()),
                Event::End
            ])
        );
        let whole = decode_whole(document);
        assert_eq!(whole, Ok(("hello.txt".into(), b"hello".to_vec())));
    }

    #[test]
    fn json_whitespace_escapes_and_extra_keys_are_read() {
        // Compact and spread-out layouts, \/ in base64 (from encoders that escape '/'),
        // escaped and wrapped base64, every escape and a surrogate pair in the name, and
        // skipped keys of every supported type.
        let document = [
            &b" \r\n{\n\t\"version\" : 1.5e3 ,\"ok\":true,\"no\":false,\"nil\":null,"[..],
            b"\"note\":\"a \\\"quoted\\\" \\u00e9 \xff\",\n",
            b"  \"file\\u006eame\" :\"\\ud83d\\ude00\\/\\\\\\b\\f\\n\\r\\t\\\"\\u00E9.bin\",",
            b"\"filedata\": \"+\\/+\\/\\nAAEC fw==\", \"n\": -0 }\r\n ",
        ]
        .concat();
        let got = same_every_split(&document, decode);
        let name = "😀/\\\u{8}\u{c}\n\r\t\"é.bin";
        assert_eq!(got, Ok(file(name, b"\xfb\xff\xbf\x00\x01\x02\x7f")));
    }

    #[test]
    fn whole_and_streaming_agree_where_both_read_the_document() {
        let document = br#"{"filename": "x", "extra": {"nested": [1, 2]}, "filedata": "eA=="}"#;
        assert_eq!(decode_whole(document), Ok(("x".into(), b"x".to_vec())));
        assert_eq!(
            same_every_split(document, decode),
            Err(DecodeError::UnsupportedValue { at: 27 })
        );
    }

    #[test]
    fn every_error_is_reported_the_same_however_it_arrives() {
        let long_name = format!(r#"{{"filename": "{}", "filedata": ""}}"#, "n".repeat(256));
        let max_name = format!(r#"{{"filename": "{}", "filedata": ""}}"#, "n".repeat(255));
        let long_escaped = format!(
            r#"{{"filename": "{}", "filedata": ""}}"#,
            "\\u00e9".repeat(128)
        );
        assert_eq!(
            decode(&[max_name.as_bytes()]),
            Ok(file(&"n".repeat(255), b""))
        );
        let invalid = |at, expected| DecodeError::InvalidJson { at, expected };
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", DecodeError::UnexpectedEof),
            (
                br#"{"filename": "a", "filedata": "YW"#,
                DecodeError::UnexpectedEof,
            ),
            (
                br#"{"filename": "a", "filedata": "YQ=="#,
                DecodeError::UnexpectedEof,
            ),
            (
                br#"{"filename": "a", "filedata": "YQ=="} x"#,
                DecodeError::TrailingGarbage { at: 38 },
            ),
            (
                br#"{"filename": "a", "filedata": "YQ=="}{}"#,
                DecodeError::TrailingGarbage { at: 37 },
            ),
            (br#"["filename"]"#, invalid(0, "'{'")),
            (br#"{filename: "a"}"#, invalid(1, "a key or '}'")),
            (br#"{"filename" "a"}"#, invalid(12, "':'")),
            (
                br#"{"filename": "a" "filedata": ""}"#,
                invalid(17, "',' or '}'"),
            ),
            (br#"{"filename": "a",}"#, invalid(17, "a key")),
            (
                br#"{"x": tru, "filename": "a"}"#,
                invalid(9, "true, false or null"),
            ),
            (br#"{"x": +1}"#, invalid(6, "a value")),
            (
                b"{\"filename\": \"a\nb\"}",
                invalid(15, "no raw control characters in a string"),
            ),
            (
                br#"{"filename": "a\qb"}"#,
                invalid(16, "an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u"),
            ),
            (br#"{"filename": "\u00g0"}"#, invalid(18, "a hex digit")),
            (br#"{"filename": "\ud83d"}"#, invalid(20, LOW_SURROGATE)),
            (br#"{"filename": "\ud83d\n"}"#, invalid(21, LOW_SURROGATE)),
            (
                br#"{"filename": "\ud83d\u0041"}"#,
                invalid(25, LOW_SURROGATE),
            ),
            (
                br#"{"filename": "\ude00"}"#,
                invalid(19, "a high surrogate first"),
            ),
            (
                br#"{"x": [1], "filename": "a"}"#,
                DecodeError::UnsupportedValue { at: 6 },
            ),
            (
                br#"{"x": {}, "filename": "a"}"#,
                DecodeError::UnsupportedValue { at: 6 },
            ),
            (br#"{}"#, DecodeError::MissingKey("filename")),
            (br#"{"filename": "a"}"#, DecodeError::MissingKey("filedata")),
            (br#"{"filedata": ""}"#, DecodeError::MissingKey("filename")),
            (
                br#"{"filename": "a", "filename": "b"}"#,
                DecodeError::DuplicateKey("filename"),
            ),
            (
                br#"{"filedata": "", "filedata": ""}"#,
                DecodeError::DuplicateKey("filedata"),
            ),
            (br#"{"filename": 7}"#, DecodeError::WrongType("filename")),
            (br#"{"filedata": null}"#, DecodeError::WrongType("filedata")),
            (long_name.as_bytes(), DecodeError::NameTooLong),
            (long_escaped.as_bytes(), DecodeError::NameTooLong),
            (b"{\"filename\": \"\xff\"}", DecodeError::NameNotUtf8),
            (
                br#"{"filedata": "YQ=*"}"#,
                DecodeError::InvalidBase64(Base64Error::Invalid),
            ),
            (
                br#"{"filedata": "\u00e9AAA"}"#,
                DecodeError::InvalidBase64(Base64Error::Invalid),
            ),
            (
                br#"{"filedata": "YQ==YQ=="}"#,
                DecodeError::InvalidBase64(Base64Error::AfterPadding),
            ),
            (
                br#"{"filedata": "YQ="}"#,
                DecodeError::InvalidBase64(Base64Error::Truncated),
            ),
        ];
        for (document, expected) in cases {
            let got = same_every_split(document, decode);
            assert_eq!(
                got.as_ref(),
                Err(expected),
                "{}",
                String::from_utf8_lossy(document)
            );
        }
    }

    #[test]
    fn a_failed_decoder_stays_failed() {
        let mut decoder = JsonBase64Decoder::new();
        decoder.handle_bytes(b"[");
        let err = decoder.poll_event().expect_err("not an object");
        decoder.handle_bytes(b"{}");
        assert_eq!(decoder.poll_event(), Err(err.clone()));
        decoder.handle_eof();
        assert_eq!(decoder.poll_event(), Err(err));
    }

    #[test]
    fn memory_stays_flat_for_a_large_file() {
        // 1 MiB of file, fed in 4 KiB reads: the decoder queues only the current read's data.
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let document = encode("big.bin", &data);
        let mut decoder = JsonBase64Decoder::new();
        let mut received = Vec::new();
        for chunk in document.chunks(4096) {
            decoder.handle_bytes(chunk);
            while let Some(event) = decoder.poll_event().expect("valid") {
                if let Event::Data(bytes) = event {
                    assert!(bytes.len() <= 4096 / 4 * 3 + 3);
                    received.extend(bytes);
                }
            }
            assert!(decoder.data.capacity() <= 4096);
        }
        decoder.handle_eof();
        assert_eq!(decoder.poll_event(), Ok(None), "complete");
        assert!(received == data);
    }
}
