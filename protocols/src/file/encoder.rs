//! The lesson's file document, written as the file is read: the server side.
//!
//! Lesson program 04 sends one JSON document and closes:
//!
//! ```python
//! json_str = dumps({'filename': 'Screenshot-1.png', 'filedata': b64encode(data).decode()})
//! ```
//!
//! which is the bytes `{"filename": "Screenshot-1.png", "filedata": "iVBORw0KGgo..."}`:
//! Python's default separators are `", "` and `": "`, and its default `ensure_ascii=True`
//! writes every non-ASCII character as `\uXXXX` (lowercase hex, UTF-16 surrogate pairs
//! above U+FFFF). [`JsonBase64Encoder`] produces exactly those bytes, but in pieces: the
//! prefix up to the opening quote of the base64, then base64 for each chunk of the file
//! as it is read, then `"}`. It never holds more than two bytes of the file.
//!
//! Base64 turns every 3 input bytes into 4 characters, and only the very end may be
//! padded with `=`. So each chunk is encoded up to its last multiple of 3 and the 0 to 2
//! bytes left over are carried into the next chunk; [`JsonBase64Encoder::finish`] encodes
//! the final 1 or 2 with padding. The output is the same for every chunking.
//!
//! # States
//!
//! ```text
//! state     input                     next      writes
//! Start     write_data(chunk)         Body      prefix, base64 of whole triples
//! Start     finish                    Finished  prefix, "}   (an empty file)
//! Body      write_data(chunk)         Body      base64 of whole triples
//! Body      finish                    Finished  padded last group, "}
//! Finished  anything                  Finished  nothing: Err(AlreadyFinished)
//! ```

use std::fmt;
use std::io::Write;

use base64_simd::STANDARD;

/// The caller fed a different amount of data than the size it announced, or kept going
/// after `finish`. All of these are the caller's mistakes (or a file that changed size
/// while being sent); the peer has done nothing wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// A chunk would take the file past its announced size; nothing was written.
    MoreThanAnnounced {
        /// The announced size.
        size: u64,
    },
    /// `finish` was called before the announced size was fed; nothing was written. Close
    /// the connection without finishing: the client will see a truncated document.
    LessThanAnnounced {
        /// The announced size.
        size: u64,
        /// How many bytes were fed.
        fed: u64,
    },
    /// `write_data` or `finish` after `finish`.
    AlreadyFinished,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::MoreThanAnnounced { size } => {
                write!(f, "the file grew past its announced {size} bytes")
            }
            EncodeError::LessThanAnnounced { size, fed } => {
                write!(
                    f,
                    "the file ended after {fed} of its announced {size} bytes"
                )
            }
            EncodeError::AlreadyFinished => write!(f, "the document is already finished"),
        }
    }
}

impl std::error::Error for EncodeError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Body,
    Finished,
}

/// Streams `{"filename": NAME, "filedata": BASE64}` byte-for-byte as Python's
/// `json.dumps` would write it. Call [`JsonBase64Encoder::write_data`] with each chunk of
/// the file as it is read, then [`JsonBase64Encoder::finish`] once.
///
/// Both are `write_*`, not the crate's `handle_*`/`poll_transmit` (see the crate doc): the
/// file's bytes are written *through* the encoder into the caller's buffer in the same call,
/// so there is no queue to poll, and a caller that feeds the wrong amount hears so at once.
///
/// ```
/// use netloop_protocols::file::JsonBase64Encoder;
///
/// let mut encoder = JsonBase64Encoder::new("hi.txt", 3);
/// let mut out = Vec::new();
/// encoder.write_data(b"h", &mut out).unwrap();
/// encoder.write_data(b"i\n", &mut out).unwrap();
/// encoder.finish(&mut out).unwrap();
/// assert_eq!(out, br#"{"filename": "hi.txt", "filedata": "aGkK"}"#);
/// ```
#[derive(Debug, Clone)]
pub struct JsonBase64Encoder {
    state: State,
    prefix: Vec<u8>,
    carry: [u8; 3],
    carry_len: usize,
    size: u64,
    fed: u64,
}

impl JsonBase64Encoder {
    /// An encoder for a file called `filename` of exactly `size` bytes.
    pub fn new(filename: &str, size: u64) -> Self {
        let mut prefix = b"{\"filename\": ".to_vec();
        write_json_string_ascii(filename, &mut prefix);
        prefix.extend_from_slice(b", \"filedata\": \"");
        JsonBase64Encoder {
            state: State::Start,
            prefix,
            carry: [0; 3],
            carry_len: 0,
            size,
            fed: 0,
        }
    }

    /// The length of the whole document in bytes, known before any of it is written (for
    /// progress reports, or a `Content-Length`).
    pub fn document_len(&self) -> u64 {
        self.prefix.len() as u64 + self.size.div_ceil(3) * 4 + 2
    }

    /// The next chunk of the file, of any size (empty is fine): appends the prefix if not
    /// yet written and the base64 of every complete 3-byte group to `out`.
    pub fn write_data(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self.state {
            State::Finished => return Err(EncodeError::AlreadyFinished),
            _ if self.fed + input.len() as u64 > self.size => {
                return Err(EncodeError::MoreThanAnnounced { size: self.size });
            }
            State::Start => {
                out.extend_from_slice(&self.prefix);
                self.state = State::Body;
            }
            State::Body => {}
        }
        self.fed += input.len() as u64;
        if self.carry_len > 0 {
            let take = (3 - self.carry_len).min(input.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&input[..take]);
            self.carry_len += take;
            input = &input[take..];
            if self.carry_len < 3 {
                return Ok(());
            }
            encode_into(&self.carry, out);
            self.carry_len = 0;
        }
        let whole = input.len() / 3 * 3;
        encode_into(&input[..whole], out);
        let rest = &input[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
        Ok(())
    }

    /// The file is complete: appends the last group with its padding and `"}`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self.state {
            State::Finished => return Err(EncodeError::AlreadyFinished),
            _ if self.fed != self.size => {
                return Err(EncodeError::LessThanAnnounced {
                    size: self.size,
                    fed: self.fed,
                });
            }
            State::Start => out.extend_from_slice(&self.prefix),
            State::Body => {}
        }
        encode_into(&self.carry[..self.carry_len], out);
        self.carry_len = 0;
        out.extend_from_slice(b"\"}");
        self.state = State::Finished;
        Ok(())
    }
}

/// Appends the padded base64 of `input` to `out`, encoding straight into its spare
/// capacity (SIMD, chosen at run time; no zero-filling first).
fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    STANDARD.encode_append(input, out);
}

/// Appends `s` as a JSON string exactly as Python's `json.dumps(s)` writes it (with the
/// default `ensure_ascii=True`): `"` and `\` backslash-escaped; `\n \r \t \b \f` by name;
/// every other character outside printable ASCII (space to `~`) as `\uXXXX` in lowercase
/// hex, characters above U+FFFF as a UTF-16 surrogate pair. `/` is not escaped.
///
/// serde_json writes non-ASCII as raw UTF-8, which is equally valid JSON but not the same
/// bytes, hence this small escaper.
pub fn write_json_string_ascii(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    // Writing into a Vec cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    /// The bytes the fixtures below encode, prefixes of: `[0xfb, 0xff, 0xbf, 0, 1, 2, 0x7f]`
    /// (chosen so the base64 contains both `+` and `/`).
    const DATA: [u8; 7] = [0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02, 0x7f];

    /// Produced once by Python 3:
    /// `dumps({'filename': 'Screenshot-1.png', 'filedata': b64encode(DATA[:n]).decode()})`.
    const BY_SIZE: [&str; 8] = [
        r#"{"filename": "Screenshot-1.png", "filedata": ""}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+w=="}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+/8="}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+/+/"}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+/+/AA=="}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+/+/AAE="}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+/+/AAEC"}"#,
        r#"{"filename": "Screenshot-1.png", "filedata": "+/+/AAECfw=="}"#,
    ];

    /// Names and Python's `dumps({'filename': name, 'filedata': b64encode(b'hi').decode()})`.
    const NAMES: [(&str, &str); 4] = [
        (
            "Снимок экрана-1.png",
            r#"{"filename": "\u0421\u043d\u0438\u043c\u043e\u043a \u044d\u043a\u0440\u0430\u043d\u0430-1.png", "filedata": "aGk="}"#,
        ),
        (
            "😀 smile.txt",
            r#"{"filename": "\ud83d\ude00 smile.txt", "filedata": "aGk="}"#,
        ),
        (
            "a\"b\\c\n\t\u{1}\u{7f}/é\u{2028}.txt",
            r#"{"filename": "a\"b\\c\n\t\u0001\u007f/\u00e9\u2028.txt", "filedata": "aGk="}"#,
        ),
        (
            "x\u{8}\u{c}\u{1f}\r",
            r#"{"filename": "x\b\f\u001f\r", "filedata": "aGk="}"#,
        ),
    ];

    /// 100 bytes `(i * 7 + 3) % 256`, and Python's document for them.
    const PATTERN: &str = r#"{"filename": "pattern.bin", "filedata": "AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSLkpmgp661vMPK0djf5u30+wIJEBceJSwzOkFIT1ZdZGtyeYCHjpWco6qxuA=="}"#;

    fn pattern() -> Vec<u8> {
        (0..100u32).map(|i| ((i * 7 + 3) % 256) as u8).collect()
    }

    /// Encodes `data`, fed in `pieces`, for a file called `name`.
    fn encode(name: &str, pieces: &[&[u8]]) -> Result<Vec<u8>, EncodeError> {
        let size = pieces.iter().map(|p| p.len() as u64).sum();
        let mut encoder = JsonBase64Encoder::new(name, size);
        let mut out = Vec::new();
        for piece in pieces {
            encoder.write_data(piece, &mut out)?;
        }
        encoder.finish(&mut out)?;
        assert_eq!(out.len() as u64, encoder.document_len());
        Ok(out)
    }

    #[test]
    fn output_matches_python_for_every_size_mod_3_and_any_chunking() {
        for (n, expected) in BY_SIZE.iter().enumerate() {
            let got = same_every_split(&DATA[..n], |pieces| encode("Screenshot-1.png", pieces));
            assert_eq!(got.as_deref(), Ok(expected.as_bytes()), "size {n}");
        }
    }

    #[test]
    fn a_longer_file_matches_python_however_it_is_read() {
        let got = same_every_split(&pattern(), |pieces| encode("pattern.bin", pieces));
        assert_eq!(got.as_deref(), Ok(PATTERN.as_bytes()));
    }

    #[test]
    fn names_are_escaped_as_python_escapes_them() {
        for (name, expected) in NAMES {
            let got = encode(name, &[b"hi"]).expect("sizes match");
            assert_eq!(String::from_utf8(got).expect("ASCII"), expected, "{name:?}");
        }
    }

    #[test]
    fn the_escaper_is_valid_json_for_every_kind_of_character() {
        let all: String = (0..0x3000u32)
            .chain(0xFFF0..0x10100)
            .filter_map(char::from_u32)
            .collect();
        let mut out = Vec::new();
        write_json_string_ascii(&all, &mut out);
        assert!(out.iter().all(|b| (b' '..=b'~').contains(b)));
        let back: String = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(back, all);
    }

    #[test]
    fn an_empty_file_needs_only_finish() {
        let mut encoder = JsonBase64Encoder::new("empty", 0);
        let mut out = Vec::new();
        encoder
            .finish(&mut out)
            .expect("nothing announced, nothing fed");
        assert_eq!(out, br#"{"filename": "empty", "filedata": ""}"#);
    }

    #[test]
    fn feeding_the_wrong_amount_is_refused_without_writing() {
        let mut encoder = JsonBase64Encoder::new("f", 2);
        let mut out = Vec::new();
        assert_eq!(
            encoder.write_data(b"abc", &mut out),
            Err(EncodeError::MoreThanAnnounced { size: 2 })
        );
        assert!(out.is_empty());
        encoder.write_data(b"a", &mut out).expect("within size");
        let written = out.len();
        assert_eq!(
            encoder.finish(&mut out),
            Err(EncodeError::LessThanAnnounced { size: 2, fed: 1 })
        );
        assert_eq!(out.len(), written);
        encoder.write_data(b"b", &mut out).expect("within size");
        encoder.finish(&mut out).expect("complete");
        assert_eq!(out, br#"{"filename": "f", "filedata": "YWI="}"#);
        assert_eq!(encoder.finish(&mut out), Err(EncodeError::AlreadyFinished));
        assert_eq!(
            encoder.write_data(b"", &mut out),
            Err(EncodeError::AlreadyFinished)
        );
    }
}
