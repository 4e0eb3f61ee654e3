//! Response bytes: status line, header fields, chunk framing, the canned error response, and
//! the `Date` value. Pure functions appending to the caller's buffer; which of them a
//! response needs is decided by [`super::ServerConn`].
//!
//! Read RFC 9112 §4 (status line), §7.1 (chunked coding); RFC 9110 §5.6.2 (tokens),
//! §6.6.1 (Date), §15 (status codes).

use chrono::{DateTime, Utc};

use super::conn::ConnectionLine;
use super::error::{HttpError, UsageError};
use super::request::BodyFraming;

/// The reason phrase RFC 9110 §15 gives a status, or `""` for codes it does not define
/// (a reason phrase is optional: clients must ignore it).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Formats `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110
/// §5.6.7 requires for `Date`. This crate reads no clock: the glue passes the time in, and
/// since the value changes once a second it can format once a second and reuse the string.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Appends a complete, self-contained error response for `err`: status line,
/// `Content-Type: text/plain; charset=utf-8`, `Content-Length`, `Connection: close`, and the
/// reason as the body. The connection must close after it is flushed.
pub fn error_response(err: &HttpError, out: &mut Vec<u8>) {
    let body = err.reason();
    write_status_line(err.status(), reason_phrase(err.status()), out);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    write_decimal(body.len() as u64 + 1, out);
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
}

/// Header lines checked once and rendered as `name: value\r\n...`, for
/// [`ServerConn::write_response_head_block`](super::ServerConn::write_response_head_block),
/// which also leaves here the last whole head it wrote with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    bytes: Vec<u8>,
    /// The last whole head (status line to empty line) written with this block, what it
    /// was written for, and its reason phrase.
    last: Option<(HeadKey, &'static str, Vec<u8>)>,
}

/// What, besides the block and the reason phrase, decides a head's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadKey {
    pub(crate) status: u16,
    pub(crate) body: BodyFraming,
    pub(crate) connection: ConnectionLine,
}

impl HeaderBlock {
    /// Checks `headers` as [`ServerConn::write_response_head`](super::ServerConn::write_response_head)
    /// would and renders them.
    pub fn new(headers: &[(&str, &str)]) -> Result<HeaderBlock, UsageError> {
        let mut bytes = Vec::new();
        for (name, value) in headers {
            check_header(name, value)?;
            write_header(name, value, &mut bytes);
        }
        Ok(HeaderBlock { bytes, last: None })
    }

    /// The rendered lines.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole head last written for `key` and `reason`, if that was the last one.
    /// (A server passes the same `&'static str` for a status every time: the same address
    /// is the same phrase, and the bytes are compared only when it is not.)
    pub(crate) fn remembered(&self, key: &HeadKey, reason: &'static str) -> Option<&[u8]> {
        match &self.last {
            Some((k, r, head)) if k == key && (std::ptr::eq(*r, reason) || *r == reason) => {
                Some(head)
            }
            _ => None,
        }
    }

    /// Keeps `head`, just written for `key` and `reason` (the buffer is reused).
    pub(crate) fn remember(&mut self, key: HeadKey, reason: &'static str, head: &[u8]) {
        let (k, r, bytes) = self.last.get_or_insert_with(|| (key, reason, Vec::new()));
        *k = key;
        *r = reason;
        bytes.clear();
        bytes.extend_from_slice(head);
    }
}

/// `HTTP/1.1 200 OK\r\n`. Always HTTP/1.1, also to an HTTP/1.0 client: a server sends the
/// highest minor version it conforms to (RFC 9110 §2.5).
pub(crate) fn write_status_line(status: u16, reason: &str, out: &mut Vec<u8>) {
    if status == 200 && reason == "OK" {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n"); // nearly every response
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(u64::from(status), out);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `name: value\r\n`. The caller has checked both with [`check_header`].
pub(crate) fn write_header(name: &str, value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Checks a caller's header: the name a token (RFC 9110 §5.6.2), the value free of CR, LF
/// and NUL, and neither one of the fields the connection writes itself.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), UsageError> {
    if name.is_empty() || !name.bytes().all(is_tchar) || !is_field_text(value) {
        return Err(UsageError::InvalidHeader);
    }
    const RESERVED: [&str; 3] = ["content-length", "transfer-encoding", "connection"];
    if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        return Err(UsageError::ReservedHeader);
    }
    Ok(())
}

/// True if `text` can sit inside one line: no CR, LF or NUL. This runs for every header
/// of every response, so it looks at eight bytes per step for any byte below 0x20 (the
/// "has a byte less than n" trick) and only checks closely when one is there (a tab is
/// allowed).
pub(crate) fn is_field_text(text: &str) -> bool {
    const LOWS: u64 = u64::from_ne_bytes([0x20; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let bytes = text.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let mut suspect = false;
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        suspect |= x.wrapping_sub(LOWS) & !x & HIGHS != 0;
    }
    let clean = |b: &u8| !matches!(b, b'\r' | b'\n' | 0);
    if suspect {
        return bytes.iter().all(clean);
    }
    words.remainder().iter().all(clean)
}

/// `tchar` of RFC 9110 §5.6.2, one table lookup per byte: this runs for every header of
/// every response.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Appends `n` in decimal, without going through `fmt` (this runs for every response):
/// two digits per division, from a table.
pub(crate) fn write_decimal(mut n: u64, out: &mut Vec<u8>) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends one chunk: size in hex, CRLF, data, CRLF. Empty data writes nothing: an empty
/// chunk is the last-chunk, and only [`write_last_chunk`] may send it.
pub(crate) fn write_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut i = hex.len();
    let mut n = data.len();
    while n > 0 {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last-chunk and an empty trailer section: the end of a chunked body.
pub(crate) fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn decimal_and_chunks() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            out.clear();
            write_decimal(n, &mut out);
            assert_eq!(out, n.to_string().as_bytes());
        }
        out.clear();
        write_chunk(&[b'x'; 26], &mut out);
        assert_eq!(&out[..4], b"1a\r\n");
        assert_eq!(&out[out.len() - 2..], b"\r\n");
        out.clear();
        write_chunk(b"", &mut out);
        assert!(out.is_empty(), "an empty chunk would end the body");
    }

    #[test]
    fn error_response_is_complete_and_closes() {
        let mut out = Vec::new();
        error_response(&HttpError::TargetTooLong, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 24\r\nConnection: close\r\n\r\nrequest-target too long\n"
        );
    }

    #[test]
    fn header_checks_stop_injection_and_reserved_fields() {
        assert_eq!(check_header("X-Ok", "fine value"), Ok(()));
        assert_eq!(
            check_header("X-Bad", "a\r\nSet-Cookie: x"),
            Err(UsageError::InvalidHeader)
        );
        assert_eq!(
            check_header("Bad Name", "v"),
            Err(UsageError::InvalidHeader)
        );
        assert_eq!(check_header("", "v"), Err(UsageError::InvalidHeader));
        assert_eq!(
            check_header("content-LENGTH", "5"),
            Err(UsageError::ReservedHeader)
        );
        assert_eq!(
            check_header("Connection", "close"),
            Err(UsageError::ReservedHeader)
        );
    }

    #[test]
    fn date_is_imf_fixdate() {
        let t = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 37).unwrap();
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
