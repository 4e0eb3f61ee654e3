//! The body decoder: where a request body (or, for `client.rs`, a response body) ends and
//! which bytes are data.
//!
//! Read RFC 9112 §6.2 (Content-Length), §7.1 (chunked coding: chunk-size, chunk-ext,
//! last-chunk), §7.1.1 (extensions: a recipient ignores the ones it does not understand),
//! §7.1.2 (trailer section); RFC 9110 §5.6.2 (token), §5.6.4 (quoted-string), §5.6.3 (BWS).
//!
//! ```text
//! Length{n} --n data bytes--> Done
//! Size --HEXDIG--> Size --CR--> SizeLf --LF--> Data{size}     (size 0) --LF--> Trailers
//! Size --";"--> Ext(BeforeName)     Size --SP/HTAB--> Ext(Bws) --";"--> Ext(BeforeName)
//! Ext: BeforeName --tchar--> Name --"="--> BeforeValue --tchar--> Token
//!                                                      --DQUOTE--> Quoted --DQUOTE--> ValueEnd
//!      Name / Token / ValueEnd --";"--> BeforeName   --CR--> SizeLf
//!                              --SP/HTAB--> Bws (after a name: AfterName, which also takes "=")
//! Data{n} --n data bytes--> DataCr --CR--> DataLf --LF--> Size
//! Trailers --field lines, empty line--> Done
//! ```
//!
//! Extensions are skipped, but checked against §7.1.1's grammar, the way llhttp's strict
//! mode does: `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`,
//! a name is a token, a value a token or a quoted-string. So `5;` (no name), `5;a="b`
//! (the quote never closes) and `5 ` (whitespace not followed by `;`: BWS is only allowed
//! before one) are 400: a peer that frames chunks loosely is one a front proxy may read
//! differently.
//!
//! Framing bytes go through one `match` on (state, byte), one byte at a time, so no framing
//! line is ever buffered or rescanned; data is taken in bulk. Only the trailer section, which
//! is returned to the caller, waits in the connection's buffer until it is complete.

use std::ops::Range;

use super::error::HttpError;
use super::head::{LineScan, Scan};
use super::limits::Limits;
use super::request::{BodyFraming, Fields, parse_trailers};

/// Longest chunk-size in hex digits: 16 digits is all of u64. Leading zeros past that are
/// refused rather than counted forever.
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// Chunk-extension bytes allowed in one body, all chunks together. Extensions are ignored,
/// but skipping them still costs CPU and lets a peer stall without sending data, so they get
/// a budget: hyper's `CHUNKED_EXTENSIONS_LIMIT` is the same 16 KiB for the whole body.
const MAX_CHUNK_EXT_BYTES: usize = 16 * 1024;

/// Where in the body the decoder is. Names follow RFC 9112 §7.1's grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// A `Content-Length` body with this many bytes still to come.
    Length(u64),
    /// Reading chunk-size hex digits: the value so far and how many digits.
    Size { size: u64, digits: u8 },
    /// Inside the chunk extensions of a chunk of this size: checked, then skipped.
    Ext { size: u64, at: ExtAt },
    /// Saw the CR ending the chunk-size line; LF must follow.
    SizeLf { size: u64 },
    /// Chunk data, this many bytes still to come.
    Data(u64),
    /// After chunk data: CR must follow.
    DataCr,
    /// After chunk data and CR: LF must follow.
    DataLf,
    /// After the last-chunk line: the trailer section, possibly empty.
    Trailers(LineScan),
    /// The body is complete.
    Done,
}

/// Where in RFC 9112 §7.1.1's `chunk-ext` grammar the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtAt {
    /// Whitespace (BWS) after the chunk-size or a value: only more of it, or `;`, may follow.
    Bws,
    /// After `;` (and any BWS): a chunk-ext-name must start.
    BeforeName,
    /// In a chunk-ext-name (a token).
    Name,
    /// Whitespace after a name: more of it, `=` or `;`.
    AfterName,
    /// After `=` (and any BWS): a value must start, a token or a quoted-string.
    BeforeValue,
    /// In a token value.
    Token,
    /// In a quoted-string value, after its opening DQUOTE.
    Quoted,
    /// After a backslash in a quoted-string: the quoted-pair's second byte.
    QuotedPair,
    /// After a quoted-string's closing DQUOTE.
    ValueEnd,
}

/// `tchar` (RFC 9110 §5.6.2): what a token, a chunk-ext-name or token value, is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `qdtext` (RFC 9110 §5.6.4): what a quoted-string holds unescaped.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..)
}

/// One call's work: how many input bytes are used up, and which of them (a range within
/// the consumed ones) are body data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Bytes of input the caller may drop.
    pub consumed: usize,
    /// Body data within `input[..consumed]`; may be empty.
    pub data: Range<usize>,
}

/// Decodes one request body. Create it from the head's [`BodyFraming`], call
/// [`BodyDecoder::decode`] until it makes no progress, and stop when [`BodyDecoder::is_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyDecoder {
    state: State,
    /// Chunk data bytes announced so far, checked against the body limit.
    total: u64,
    /// Chunk-extension bytes skipped so far.
    ext_bytes: usize,
    trailers: Fields,
}

impl BodyDecoder {
    pub(crate) fn new(framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Size { size: 0, digits: 0 },
        };
        BodyDecoder {
            state,
            total: 0,
            ext_bytes: 0,
            trailers: Fields::default(),
        }
    }

    /// True once the whole body, trailers included, has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True while the trailer section is being read. It is scanned in place, so until it is
    /// complete `decode` consumes none of it: a caller that cannot keep unconsumed input
    /// (the client, whose input is the caller's read) buffers it and passes the buffer.
    pub(crate) fn in_trailers(&self) -> bool {
        matches!(self.state, State::Trailers(_))
    }

    /// The trailer fields of a finished chunked body (empty otherwise).
    pub(crate) fn take_trailers(&mut self) -> Fields {
        std::mem::take(&mut self.trailers)
    }

    /// Reads framing from the start of `input` up to and including at most one run of data.
    /// `input` starts where the previous call's consumed bytes ended.
    pub(crate) fn decode(&mut self, input: &[u8], limits: &Limits) -> Result<Step, HttpError> {
        let mut pos = 0;
        loop {
            let need_more = Step {
                consumed: pos,
                data: pos..pos,
            };
            match &mut self.state {
                State::Done => return Ok(need_more),
                State::Length(remaining) | State::Data(remaining) => {
                    let n = (*remaining).min((input.len() - pos) as u64) as usize;
                    if n == 0 {
                        return Ok(need_more);
                    }
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = match self.state {
                            State::Length(_) => State::Done,
                            _ => State::DataCr,
                        };
                    }
                    return Ok(Step {
                        consumed: pos + n,
                        data: pos..pos + n,
                    });
                }
                State::Trailers(scan) => match scan.scan(&input[pos..], limits)? {
                    Scan::Partial => return Ok(need_more),
                    Scan::Complete(len) => {
                        if len > 2 {
                            self.trailers = parse_trailers(&input[pos..pos + len], limits)?;
                        }
                        pos += len;
                        self.state = State::Done;
                    }
                    // A trailer scanner has no start line to skip empty lines before.
                    Scan::EmptyLine(_) => return Err(HttpError::Malformed("trailer scan")),
                },
                _ => {
                    let Some(&byte) = input.get(pos) else {
                        return Ok(need_more);
                    };
                    pos += 1;
                    let state = std::mem::replace(&mut self.state, State::Done);
                    self.state = self.on_framing_byte(state, byte, limits)?;
                }
            }
        }
    }

    /// Every transition on a chunked framing byte.
    fn on_framing_byte(
        &mut self,
        state: State,
        b: u8,
        limits: &Limits,
    ) -> Result<State, HttpError> {
        Ok(match (state, b) {
            (State::Size { size, digits }, b) if b.is_ascii_hexdigit() => {
                if digits == MAX_CHUNK_SIZE_DIGITS {
                    return Err(HttpError::InvalidChunk("chunk size has too many digits"));
                }
                let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                let size = (size << 4) | digit;
                if self.total.saturating_add(size) > limits.max_body_bytes {
                    return Err(HttpError::BodyTooLarge);
                }
                State::Size {
                    size,
                    digits: digits + 1,
                }
            }
            (State::Size { digits: 0, .. }, _) => {
                return Err(HttpError::InvalidChunk("chunk size is not hexadecimal"));
            }
            (State::Size { size, .. }, b'\r') => State::SizeLf { size },
            (State::Size { .. }, b'\n') => return Err(HttpError::BareLf),
            (State::Size { size, .. }, b' ' | b'\t') => self.ext(size, ExtAt::Bws)?,
            (State::Size { size, .. }, b';') => self.ext(size, ExtAt::BeforeName)?,
            (State::Size { .. }, _) => {
                return Err(HttpError::InvalidChunk("invalid byte after chunk size"));
            }
            // §7.1.1, byte by byte. The line ends (CR) only after a name or a value.
            (State::Ext { size, at }, b) => {
                let next = match (at, b) {
                    (ExtAt::Name | ExtAt::Token | ExtAt::ValueEnd, b'\r') => {
                        return Ok(State::SizeLf { size });
                    }
                    (ExtAt::Bws, b'\r') => {
                        return Err(HttpError::InvalidChunk(
                            "whitespace after chunk size or extension not followed by ;",
                        ));
                    }
                    (ExtAt::BeforeName, b'\r') => {
                        return Err(HttpError::InvalidChunk("chunk extension without a name"));
                    }
                    (ExtAt::AfterName | ExtAt::BeforeValue, b'\r') => {
                        return Err(HttpError::InvalidChunk("chunk extension cut short"));
                    }
                    (ExtAt::Quoted | ExtAt::QuotedPair, b'\r') => {
                        return Err(HttpError::InvalidChunk(
                            "unterminated quoted string in chunk extension",
                        ));
                    }
                    (_, b'\n') => return Err(HttpError::BareLf),
                    (ExtAt::Quoted, b'"') => ExtAt::ValueEnd,
                    (ExtAt::Quoted, b'\\') => ExtAt::QuotedPair,
                    (ExtAt::Quoted, b) if is_qdtext(b) => ExtAt::Quoted,
                    (ExtAt::QuotedPair, b) if b == b'\t' || (b >= b' ' && b != 0x7f) => {
                        ExtAt::Quoted
                    }
                    (ExtAt::Bws | ExtAt::BeforeName | ExtAt::BeforeValue, b' ' | b'\t') => at,
                    (ExtAt::Name | ExtAt::AfterName, b' ' | b'\t') => ExtAt::AfterName,
                    (ExtAt::Token | ExtAt::ValueEnd, b' ' | b'\t') => ExtAt::Bws,
                    (
                        ExtAt::Bws
                        | ExtAt::Name
                        | ExtAt::AfterName
                        | ExtAt::Token
                        | ExtAt::ValueEnd,
                        b';',
                    ) => ExtAt::BeforeName,
                    (ExtAt::Name | ExtAt::AfterName, b'=') => ExtAt::BeforeValue,
                    (ExtAt::BeforeName | ExtAt::Name, b) if is_tchar(b) => ExtAt::Name,
                    (ExtAt::BeforeValue | ExtAt::Token, b) if is_tchar(b) => ExtAt::Token,
                    (ExtAt::BeforeValue, b'"') => ExtAt::Quoted,
                    (ExtAt::BeforeName, b';') => {
                        return Err(HttpError::InvalidChunk("chunk extension without a name"));
                    }
                    (_, b) if b < b' ' || b == 0x7f => {
                        return Err(HttpError::InvalidChunk("control byte in chunk extension"));
                    }
                    _ => return Err(HttpError::InvalidChunk("invalid byte in chunk extension")),
                };
                self.ext(size, next)?
            }
            (State::SizeLf { size: 0 }, b'\n') => State::Trailers(LineScan::trailers()),
            (State::SizeLf { size }, b'\n') => {
                // Saturating: a client decodes with no body limit (`u64::MAX`), and the
                // total then only has to stay a bound, not an exact count.
                self.total = self.total.saturating_add(size);
                State::Data(size)
            }
            (State::SizeLf { .. }, _) => {
                return Err(HttpError::InvalidChunk("CR without LF after chunk size"));
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr, b'\n') => return Err(HttpError::BareLf),
            (State::DataLf, b'\n') => State::Size { size: 0, digits: 0 },
            (State::DataCr | State::DataLf, _) => {
                return Err(HttpError::InvalidChunk("chunk data not followed by CRLF"));
            }
            // decode() handles these states itself and never passes them a byte.
            (state @ (State::Length(_) | State::Data(_) | State::Trailers(_) | State::Done), _) => {
                state
            }
        })
    }

    /// The next extension state, counting the byte against the extension budget.
    fn ext(&mut self, size: u64, at: ExtAt) -> Result<State, HttpError> {
        self.ext_bytes += 1;
        if self.ext_bytes > MAX_CHUNK_EXT_BYTES {
            return Err(HttpError::InvalidChunk("chunk extensions too long"));
        }
        Ok(State::Ext { size, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    /// What a decoder made of some bytes: the data, trailers, whether it finished, and the
    /// bytes after the body.
    #[derive(Debug, PartialEq)]
    struct Decoded {
        data: Vec<u8>,
        trailers: Vec<(String, String)>,
        done: bool,
        rest: Vec<u8>,
    }

    /// Feeds pieces through a buffer the way the connection does.
    fn decode(framing: BodyFraming, input: &[u8], limits: &Limits) -> Result<Decoded, HttpError> {
        same_every_split(input, |pieces| {
            let mut dec = BodyDecoder::new(framing);
            let mut buf = Vec::new();
            let mut data = Vec::new();
            for piece in pieces {
                buf.extend_from_slice(piece);
                loop {
                    if dec.is_done() {
                        break;
                    }
                    let step = dec.decode(&buf, limits)?;
                    data.extend_from_slice(&buf[step.data.clone()]);
                    buf.drain(..step.consumed);
                    if step.consumed == 0 {
                        break;
                    }
                }
            }
            let trailers = dec
                .take_trailers()
                .iter()
                .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            Ok(Decoded {
                data,
                trailers,
                done: dec.is_done(),
                rest: buf,
            })
        })
    }

    fn chunked(input: &[u8]) -> Result<Decoded, HttpError> {
        decode(BodyFraming::Chunked, input, &Limits::default())
    }

    #[test]
    fn content_length_body_stops_at_its_length() {
        let got = decode(BodyFraming::Length(5), b"hello GET", &Limits::default()).unwrap();
        assert_eq!(got.data, b"hello");
        assert!(got.done);
        assert_eq!(got.rest, b" GET");
        let short = decode(BodyFraming::Length(5), b"hel", &Limits::default()).unwrap();
        assert!(!short.done);
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let body = b"5;name=value\r\nhello\r\n6 ; a=\"b c\"\r\n world\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\nNEXT";
        let got = chunked(body).unwrap();
        assert_eq!(got.data, b"hello world");
        assert_eq!(
            got.trailers,
            vec![("X-Sum".into(), "1".into()), ("Y".into(), "2".into())]
        );
        assert!(got.done);
        assert_eq!(got.rest, b"NEXT");
    }

    #[test]
    fn chunked_hex_sizes_and_empty_trailers() {
        let got = chunked(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap();
        assert_eq!(got.data, b"0123456789");
        assert!(got.trailers.is_empty());
        assert!(got.done);
        assert!(got.rest.is_empty());
        let got = chunked(b"0000\r\n\r\n").unwrap();
        assert!(got.done && got.data.is_empty());
    }

    #[test]
    fn broken_chunk_framing_is_400() {
        let bad = |input: &[u8]| chunked(input).err();
        assert_eq!(bad(b"5\nhello\r\n0\r\n\r\n"), Some(HttpError::BareLf));
        assert_eq!(bad(b"5\r\nhello\n0\r\n\r\n"), Some(HttpError::BareLf));
        assert_eq!(bad(b"0\r\n\n"), Some(HttpError::BareLf));
        assert_eq!(
            bad(b"x\r\n"),
            Some(HttpError::InvalidChunk("chunk size is not hexadecimal"))
        );
        assert_eq!(
            bad(b"-5\r\n"),
            Some(HttpError::InvalidChunk("chunk size is not hexadecimal"))
        );
        assert_eq!(
            bad(b"5x\r\n"),
            Some(HttpError::InvalidChunk("invalid byte after chunk size"))
        );
        assert_eq!(
            bad(b"5\r\nhelloX\r\n"),
            Some(HttpError::InvalidChunk("chunk data not followed by CRLF"))
        );
        assert_eq!(
            bad(b"5\rX"),
            Some(HttpError::InvalidChunk("CR without LF after chunk size"))
        );
        assert_eq!(
            bad(b"00000000000000001\r\n"),
            Some(HttpError::InvalidChunk("chunk size has too many digits"))
        );
        assert_eq!(
            bad(b"1;a=\x00\r\n"),
            Some(HttpError::InvalidChunk("control byte in chunk extension"))
        );
    }

    #[test]
    fn chunk_extensions_follow_the_grammar() {
        // RFC 9112 §7.1.1: BWS before `;` and around `=`, token names, token or
        // quoted-string values; a quoted-pair and obs-text inside the quotes.
        for ext in [
            ";a",
            ";a=b",
            " ;a",
            "\t; a ;b",
            ";a = b",
            ";a=\"\"",
            ";a=\"x;y z\" ;b=c",
            ";a=\"q\\\"\\\\\";b",
            ";a=\"\u{e9}\"",
            ";!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz",
        ] {
            let body = format!("3{ext}\r\nabc\r\n0{ext}\r\n\r\n");
            let got = chunked(body.as_bytes()).unwrap_or_else(|e| panic!("{ext:?}: {e}"));
            assert_eq!(got.data, b"abc", "{ext:?}");
            assert!(got.done, "{ext:?}");
        }
    }

    #[test]
    fn broken_chunk_extensions_are_400() {
        let bad = |input: &[u8]| chunked(input).err();
        let invalid = |reason| Some(HttpError::InvalidChunk(reason));
        // No name: llhttp's "No extension after semicolon".
        assert_eq!(bad(b"2;\r\n"), invalid("chunk extension without a name"));
        assert_eq!(bad(b"2; \r\n"), invalid("chunk extension without a name"));
        assert_eq!(bad(b"2;;a\r\n"), invalid("chunk extension without a name"));
        assert_eq!(bad(b"2;a;\r\n"), invalid("chunk extension without a name"));
        // A name, `=`, and then no value; or whitespace after a name that ends the line.
        assert_eq!(bad(b"2;a=\r\n"), invalid("chunk extension cut short"));
        assert_eq!(bad(b"2;a =\r\n"), invalid("chunk extension cut short"));
        assert_eq!(bad(b"2;a \r\n"), invalid("chunk extension cut short"));
        // The quotes never close: the CR is inside the quoted-string.
        let unterminated = invalid("unterminated quoted string in chunk extension");
        assert_eq!(bad(b"5;a=\"abc\";b=\"def; ghi\r\n"), unterminated);
        assert_eq!(bad(b"5;a=\"abc\\\r\n"), unterminated);
        // Bytes that are not tchar where a token is, or text after a quoted value.
        let byte = invalid("invalid byte in chunk extension");
        assert_eq!(bad(b"2;a@b\r\n"), byte);
        assert_eq!(bad(b"2;=b\r\n"), byte);
        assert_eq!(bad(b"2;a=b c\r\n"), byte);
        assert_eq!(bad(b"2;a=\"b\"c\r\n"), byte);
        assert_eq!(bad(b"2;a=b=c\r\n"), byte);
        assert_eq!(bad(b"2;a=\xff\r\n"), byte);
        assert_eq!(
            bad(b"2;a=\"\x7f\"\r\n"),
            invalid("control byte in chunk extension")
        );
        assert_eq!(bad(b"2;a\nb"), Some(HttpError::BareLf));
        assert_eq!(bad(b"2;a=\"b\nc"), Some(HttpError::BareLf));
    }

    #[test]
    fn whitespace_after_the_chunk_size_must_lead_to_a_semicolon() {
        // BWS is allowed only before `;`: llhttp's "Space after chunk header" (`a \r\n`).
        let bad = |input: &[u8]| chunked(input).err();
        let ws = Some(HttpError::InvalidChunk(
            "whitespace after chunk size or extension not followed by ;",
        ));
        assert_eq!(bad(b"a \r\n0123456789\r\n0\r\n\r\n"), ws);
        assert_eq!(bad(b"a\t\r\n"), ws);
        assert_eq!(bad(b"0 \r\n\r\n"), ws);
        assert_eq!(bad(b"2;a=b \r\n"), ws);
        assert_eq!(bad(b"2;a=\"b\"\t\r\n"), ws);
        assert_eq!(
            bad(b"a 1\r\n"),
            Some(HttpError::InvalidChunk("invalid byte in chunk extension"))
        );
    }

    #[test]
    fn chunk_extension_bytes_have_a_budget() {
        // Fed whole only: every split of 16 KiB would be 32 K runs over 16 KiB each.
        let mut body = b"1;a=".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_CHUNK_EXT_BYTES));
        body.extend_from_slice(b"\r\n");
        assert_eq!(
            BodyDecoder::new(BodyFraming::Chunked)
                .decode(&body, &Limits::default())
                .err(),
            Some(HttpError::InvalidChunk("chunk extensions too long"))
        );
    }

    #[test]
    fn chunk_size_overflow_and_body_limit_are_413() {
        // 16 hex digits of f: far past any body limit, refused before any data arrives.
        assert_eq!(
            chunked(b"ffffffffffffffff\r\n").err(),
            Some(HttpError::BodyTooLarge)
        );
        let limits = Limits {
            max_body_bytes: 8,
            ..Limits::default()
        };
        let total = decode(BodyFraming::Chunked, b"5\r\nhello\r\n4\r\n", &limits);
        assert_eq!(total.err(), Some(HttpError::BodyTooLarge));
        let fits = decode(
            BodyFraming::Chunked,
            b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
            &limits,
        );
        assert_eq!(fits.map(|d| d.data), Ok(b"helloabc".to_vec()));
    }

    #[test]
    fn trailer_section_is_bounded() {
        let limits = Limits {
            max_header_bytes: 16,
            ..Limits::default()
        };
        let got = decode(
            BodyFraming::Chunked,
            b"0\r\nX-Long-Trailer: 0123456789\r\n\r\n",
            &limits,
        );
        assert_eq!(got.err(), Some(HttpError::HeadersTooLarge));
    }
}
