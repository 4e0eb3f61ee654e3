//! A complete request head, parsed and checked: what the request asks for and how its body
//! is framed.
//!
//! Read RFC 9112 §3 (request line, §3.2 Host), §5 (field lines), §6 (body length: §6.1
//! Transfer-Encoding, §6.2 Content-Length, §6.3 the precedence rules that stop request
//! smuggling), §9.3 (persistence); RFC 9110 §7.6.1 (Connection), §10.1.1 (Expect).
//!
//! The head arrives here whole ([`super::head`] found its end). It is copied once into the
//! [`RequestHead`], parsed by httparse with a header array on the stack, and indexed by
//! byte ranges into that copy: one buffer for the whole head, reusable from request to
//! request through [`super::ServerConn::recycle`].

use std::fmt;
use std::mem::MaybeUninit;

use super::error::HttpError;
use super::head::complete_head_ok;
use super::limits::{Limits, MAX_HEADERS_CAP};

/// The protocol version of a request (or, for [`super::ClientConn`], of a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: closes after each response unless the client asked `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: persistent unless either side says `Connection: close`.
    Http11,
}

/// How a message body is delimited (RFC 9112 §6.3), for requests and responses alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body. On a response with a status that has a body, written as `Content-Length: 0`.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`: length-prefixed chunks, a zero chunk, trailers.
    Chunked,
}

/// A byte range into a [`Fields`] buffer; u32 keeps an index entry at 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `part`, a subslice of `whole`.
    fn of(whole: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - whole.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    fn get<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.start as usize..self.end as usize]
    }
}

/// Header (or trailer) fields in arrival order: one owned copy of their bytes and an index
/// of (name, value) ranges into it. Names are case-insensitive for every lookup.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    bytes: Vec<u8>,
    index: Vec<(Span, Span)>,
    /// A request head's method and target as text, copied from httparse's already
    /// validated `&str`s: read several times per request, they are then plain slices, where
    /// spans into `bytes` would need a UTF-8 check on every read. Empty for trailers; kept
    /// here so it is recycled with the rest.
    line: String,
}

impl Fields {
    /// Number of field lines.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if there are no field lines.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every field as (name, value), in arrival order; values have their surrounding
    /// whitespace removed and may hold any byte but CR, LF and NUL.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.index.iter().map(|(name, value)| {
            // httparse admits only token characters (ASCII) in names.
            let name = std::str::from_utf8(name.get(&self.bytes)).unwrap_or_default();
            (name, value.get(&self.bytes))
        })
    }

    /// The value of the first field called `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        // Bytes, not `iter()`'s `&str`: a lookup runs several times per request and needs
        // no UTF-8 validation to compare ASCII names.
        self.index
            .iter()
            .find(|(n, _)| n.get(&self.bytes).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.get(&self.bytes))
    }

    /// The value of the first field called `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every field called `name`, in order (a repeated field is a list).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Replaces the fields with a copy of `raw` indexed by `headers`, which httparse parsed
    /// out of `raw` (their names and values point into it). Reuses the allocations.
    pub(crate) fn fill(&mut self, raw: &[u8], headers: &[httparse::Header<'_>]) {
        self.clear();
        self.bytes.extend_from_slice(raw);
        self.index.extend(
            headers
                .iter()
                .map(|h| (Span::of(raw, h.name.as_bytes()), Span::of(raw, h.value))),
        );
    }

    /// Forgets the fields, keeping both allocations for the next head.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.index.clear();
        self.line.clear();
    }
}

/// The trailer fields that ended a request (RFC 9112 §7.1.2): empty for every body but a
/// chunked one that sent some. Read them as [`Fields`] (`trailers.get("name")`,
/// `trailers.iter()`). Boxed, and absent when empty: the event that carries them comes once
/// per request, and an empty set then costs no allocation and keeps that event three words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers(Option<Box<Fields>>);

/// What empty trailers read as.
static NO_FIELDS: Fields = Fields {
    bytes: Vec::new(),
    index: Vec::new(),
    line: String::new(),
};

impl From<Fields> for Trailers {
    fn from(fields: Fields) -> Trailers {
        Trailers((!fields.is_empty()).then(|| Box::new(fields)))
    }
}

impl std::ops::Deref for Trailers {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        self.0.as_deref().unwrap_or(&NO_FIELDS)
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

/// A request line and header section, parsed and validated, with what they mean for the
/// connection already worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The whole head's bytes (request line included) and the header index.
    fields: Fields,
    /// `fields.line` is the method, then the target; the method's length.
    method_len: usize,
    /// Where the origin-form path ends in `fields.line` (at `?`, `#` or the end); 0 when
    /// the target is not in origin form.
    path_end: usize,
    version: Version,
    body: BodyFraming,
    keep_alive: bool,
    expects_continue: bool,
}

impl RequestHead {
    /// The method, case-sensitive as RFC 9110 §9.1 says (`GET`, not `get`).
    pub fn method(&self) -> &str {
        &self.fields.line[..self.method_len]
    }

    /// The request-target exactly as sent: `/path?query`, an absolute URI, `*`, or
    /// `host:port` for CONNECT (RFC 9112 §3.2).
    pub fn target(&self) -> &str {
        &self.fields.line[self.method_len..]
    }

    /// The path of the target, still percent-encoded (see [`super::url::decode_path`]):
    /// everything before `?`. For an absolute-form target (`http://host/p?q`) the part after
    /// the authority, `/` if empty; `*` and authority-form targets are returned whole.
    #[inline]
    pub fn path(&self) -> &str {
        // Origin form (`/path?query`), what every request but a proxy's uses: found at parse.
        if self.path_end > 0 {
            return &self.fields.line[self.method_len..self.path_end];
        }
        self.path_of_other_form()
    }

    /// [`Self::path`] of a target not in origin form: found per call (a proxy's request).
    fn path_of_other_form(&self) -> &str {
        let target = self.target();
        let from = match target.find("://") {
            Some(scheme_end) if target.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                let authority = scheme_end + 3;
                match target[authority..].find(['/', '?', '#']) {
                    Some(i) => authority + i,
                    None => target.len(),
                }
            }
            _ => 0,
        };
        let rest = &target[from..];
        let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
        if path.is_empty() { "/" } else { path }
    }

    /// The raw query string (after `?`, without it), or `None` if the target has no `?`.
    /// Decode it with [`super::url::query_pairs`].
    pub fn query(&self) -> Option<&str> {
        let target = self.target();
        let target = &target[..target.find('#').unwrap_or(target.len())];
        target.split_once('?').map(|(_, q)| q)
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields, in arrival order.
    pub fn headers(&self) -> &Fields {
        &self.fields
    }

    /// The first value of the header `name` (any case); shorthand for `headers().get(name)`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name)
    }

    /// How the request body is framed; `Empty` for a request with neither `Content-Length`
    /// nor `Transfer-Encoding` (RFC 9112 §6.3 item 6).
    pub fn body(&self) -> BodyFraming {
        self.body
    }

    /// Whether the client wants the connection kept open after the response: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether an HTTP/1.1 client sent `Expect: 100-continue` with a non-empty body and waits
    /// for [`super::ServerConn::write_continue`] (or a final response) before sending it.
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }

    /// True for `HEAD`: the response gets headers but no body (RFC 9110 §9.3.2).
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }

    /// A head with nothing in it yet, for [`parse_head_into`] to fill.
    pub(crate) fn empty() -> RequestHead {
        RequestHead {
            fields: Fields::default(),
            method_len: 0,
            path_end: 0,
            version: Version::Http11,
            body: BodyFraming::Empty,
            keep_alive: true,
            expects_continue: false,
        }
    }
}

/// Parses the complete head `raw` (request line to the empty line) into `head`, reusing
/// its allocations. Every framing and smuggling rule of RFC 9112 §6.3 is enforced here.
pub(crate) fn parse_head(
    raw: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<(), HttpError> {
    match parse_head_into(raw, limits, head)? {
        Some(_) => Ok(()),
        // The scanner saw the empty line, so httparse cannot want more.
        None => Err(HttpError::Malformed("incomplete head")),
    }
}

/// Parses the head at the start of `unread` (which may hold more after it: pipelined
/// requests, a body) in place, into `head` (its buffers reused; only the head's bytes are
/// copied). Returns the head's length, and whether the line scanner ([`super::head`])
/// would have accepted it as it is; or `None` if no complete head has arrived.
///
/// httparse accepts bare LF line ends, which the scanner refuses; rather than a pass over
/// the bytes, every line end httparse found is checked to be CRLF, a comparison per line.
/// The check is strict where it could be lenient (a value httparse trimmed of trailing
/// spaces does not end right before its CR, and counts as not CRLF), and the scanner's
/// other rules are [`complete_head_ok`]'s: a head either doubts goes the slow way, which
/// decides and names the error.
///
/// Filling a head in place, rather than returning a new one, matters: a head is a dozen
/// words, and the request it becomes travels through the connection in a `Box`.
pub(crate) fn parse_head_into(
    unread: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<Option<(usize, bool)>, HttpError> {
    head.fields.clear();
    let Fields { bytes, index, line } = &mut head.fields;

    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(unread, &mut slots[..limits.header_slots()]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) => return Err(version_error(unread)),
        Err(e) => return Err(httparse_error(e)),
    };
    bytes.extend_from_slice(&unread[..len]);
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    // httparse admits bytes 0x80..=0xFF in the target (as UTF-8); RFC 9112 §3.2 builds it
    // from RFC 3986's URI grammar, which is ASCII only: anything else arrives
    // percent-encoded. Visible ASCII RFC 3986 leaves out (" < > \ ^ ` { | }) is allowed,
    // as llhttp's strict mode and nginx allow it: browsers send `{|}^` in queries unencoded
    // (the WHATWG URL standard's query set does not escape them).
    if !target.is_ascii() {
        return Err(HttpError::Malformed("non-ASCII byte in request-target"));
    }
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };

    // The request line ends after "METHOD SP TARGET SP HTTP/1.x" (single spaces: httparse
    // accepts no others), and the head with the empty line.
    let line_len = method.len() + target.len() + 10;
    let crlf_at = |at: usize| unread.get(at..at + 2) == Some(b"\r\n");
    let mut crlf = crlf_at(line_len) && crlf_at(len - 2);
    let mut framing = Framing::default();
    let mut hosts = 0;
    let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
    for h in req.headers.iter() {
        let value = h.value;
        match h.name.len() {
            4 if h.name.eq_ignore_ascii_case("host") => hosts += 1,
            6 if h.name.eq_ignore_ascii_case("expect") => {
                expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
            }
            10 if h.name.eq_ignore_ascii_case("connection") => {
                for token in list(value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if h.name.eq_ignore_ascii_case("content-length") => framing.content_length(value)?,
            17 if h.name.eq_ignore_ascii_case("transfer-encoding") => {
                framing.transfer_encoding(value)
            }
            _ => {}
        }
        // Spans into `unread` are the same offsets into its copy, `bytes`.
        let value_span = Span::of(unread, value);
        crlf &= crlf_at(value_span.end as usize);
        index.push((Span::of(unread, h.name.as_bytes()), value_span));
    }

    if hosts > 1 {
        return Err(HttpError::MultipleHost);
    }
    if hosts == 0 && version == Version::Http11 {
        return Err(HttpError::MissingHost);
    }
    let body = framing.decide(version)?;
    if let BodyFraming::Length(n) = body {
        if n > limits.max_body_bytes {
            return Err(HttpError::BodyTooLarge);
        }
    }
    let has_body = !matches!(body, BodyFraming::Empty | BodyFraming::Length(0));
    line.push_str(method);
    line.push_str(target);
    let path_end = match target.as_bytes().first() {
        Some(b'/') => {
            let end = target.bytes().position(|b| b == b'?' || b == b'#');
            method.len() + end.unwrap_or(target.len())
        }
        _ => 0,
    };
    head.method_len = method.len();
    head.path_end = path_end;
    head.version = version;
    head.body = body;
    head.keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    };
    // RFC 9110 §10.1.1: an HTTP/1.0 client cannot have meant it.
    head.expects_continue = expect_continue && version == Version::Http11 && has_body;
    Ok(Some((
        len,
        crlf && complete_head_ok(&unread[..len], line_len, limits),
    )))
}

/// Parses a complete trailer section (field lines and the final CRLF).
pub(crate) fn parse_trailers(raw: &[u8], limits: &Limits) -> Result<Fields, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
    let parsed = match httparse::parse_headers(raw, &mut slots[..limits.header_slots()]) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        Ok(httparse::Status::Partial) => return Err(HttpError::Malformed("incomplete trailers")),
        Err(e) => return Err(httparse_error(e)),
    };
    let mut fields = Fields::default();
    fields.fill(raw, parsed);
    Ok(fields)
}

/// What the `Content-Length` and `Transfer-Encoding` fields said, across all their lines.
/// Requests decide with [`Framing::decide`]; responses (`client.rs`) read the fields, since
/// RFC 9112 §6.3 frames them differently.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    pub(crate) content_length: Option<u64>,
    /// Any `Transfer-Encoding` line at all.
    pub(crate) te_present: bool,
    /// How many times `chunked` was listed.
    pub(crate) chunked: u32,
    /// Whether the last coding listed so far is `chunked`.
    pub(crate) chunked_last: bool,
    /// Whether a coding other than `chunked` was listed.
    pub(crate) other_coding: bool,
}

impl Framing {
    /// One `Content-Length` line: a list of decimal numbers, all equal to any seen before.
    /// `5, 5` is one length written twice (RFC 9112 §6.3 item 5 lets us accept it).
    pub(crate) fn content_length(&mut self, value: &[u8]) -> Result<(), HttpError> {
        let mut any = false;
        for element in value.split(|&b| b == b',').map(trim) {
            let n = parse_decimal(element).ok_or(HttpError::InvalidContentLength)?;
            match self.content_length {
                Some(seen) if seen != n => return Err(HttpError::DifferingContentLengths),
                _ => self.content_length = Some(n),
            }
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(HttpError::InvalidContentLength)
        }
    }

    /// One `Transfer-Encoding` line: a list of codings, continuing any earlier line.
    pub(crate) fn transfer_encoding(&mut self, value: &[u8]) {
        self.te_present = true;
        for coding in list(value) {
            let is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            self.chunked += u32::from(is_chunked);
            self.other_coding |= !is_chunked;
            self.chunked_last = is_chunked;
        }
    }

    /// RFC 9112 §6.1 and §6.3, in the order the RFC gives them.
    fn decide(&self, version: Version) -> Result<BodyFraming, HttpError> {
        if !self.te_present {
            return Ok(match self.content_length {
                Some(n) => BodyFraming::Length(n),
                None => BodyFraming::Empty,
            });
        }
        if version == Version::Http10 {
            return Err(HttpError::TransferEncodingInHttp10);
        }
        if self.content_length.is_some() {
            return Err(HttpError::LengthAndChunked);
        }
        // "chunked" must be the final coding, and applied once (§6.3 item 4, §7).
        if !self.chunked_last || self.chunked != 1 {
            return Err(HttpError::TransferEncodingNotChunked);
        }
        // `gzip, chunked`: framed correctly, but a coding we cannot undo (§6.1).
        if self.other_coding {
            return Err(HttpError::UnsupportedTransferCoding);
        }
        Ok(BodyFraming::Chunked)
    }
}

/// `1*DIGIT` as u64; `None` for anything else (sign, space, hex, empty, overflow).
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), trimmed.
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

/// `value` without leading and trailing spaces and tabs (OWS).
pub(crate) fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

/// httparse refused the version: a well-formed `HTTP/x.y` it does not speak is 505, anything
/// else is a malformed request line. So is a line of more than three parts, such as
/// `GET /a b HTTP/1.1`: httparse ends the target at the first space and reads `b` as the
/// version, but the fault is the space in the target (RFC 9112 §3: one SP between the
/// parts, none inside a target; §3.2: answer 400), not the version.
fn version_error(head: &[u8]) -> HttpError {
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    let line = &head[..line_end];
    if line.iter().filter(|&&b| b == b' ').count() > 2 {
        return HttpError::Malformed("space in request-target");
    }
    let version = &line[line.iter().rposition(|&b| b == b' ').map_or(0, |i| i + 1)..];
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HttpError::UnsupportedVersion
        }
        _ => HttpError::Malformed("invalid HTTP version"),
    }
}

fn httparse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Token => HttpError::Malformed("invalid method or request-target"),
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::Version => HttpError::Malformed("invalid HTTP version"),
        httparse::Error::Status => HttpError::Malformed("invalid status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Event, ServerConn};
    use crate::testing::same_every_split;

    /// The first head a connection makes of `raw`, fed every way.
    fn parse(raw: &[u8]) -> Result<RequestHead, HttpError> {
        same_every_split(raw, |pieces| {
            let mut conn = ServerConn::default();
            for piece in pieces {
                conn.handle_bytes(piece);
                match conn.poll_event() {
                    Ok(Some(Event::Request(head))) => return Ok(*head),
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
            }
            Err(HttpError::Incomplete)
        })
    }

    #[test]
    fn request_line_and_fields() {
        let head = parse(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-A:  v \r\n\r\n").unwrap();
        assert_eq!(head.method(), "GET");
        assert_eq!(head.target(), "/a/b?x=1&y=2");
        assert_eq!(head.path(), "/a/b");
        assert_eq!(head.query(), Some("x=1&y=2"));
        assert_eq!(head.version(), Version::Http11);
        assert_eq!(head.header("x-a"), Some(&b"v"[..]));
        assert_eq!(head.headers().len(), 2);
        assert_eq!(head.body(), BodyFraming::Empty);
        assert!(head.keep_alive());
        assert!(!head.is_head());
    }

    #[test]
    fn path_of_absolute_and_odd_targets() {
        let p = |t: &str| {
            let raw = format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n");
            let head = parse(raw.as_bytes()).unwrap();
            (head.path().to_string(), head.query().map(str::to_string))
        };
        assert_eq!(p("http://h:80/x?q"), ("/x".into(), Some("q".into())));
        assert_eq!(p("http://h"), ("/".into(), None));
        assert_eq!(p("http://h?q=1"), ("/".into(), Some("q=1".into())));
        assert_eq!(p("*"), ("*".into(), None));
        assert_eq!(p("/p?"), ("/p".into(), Some(String::new())));
    }

    #[test]
    fn content_length_rules() {
        let cl = |v: &str| {
            let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {v}\r\n\r\n");
            parse(raw.as_bytes()).map(|h| h.body())
        };
        assert_eq!(cl("5"), Ok(BodyFraming::Length(5)));
        assert_eq!(cl("5, 5"), Ok(BodyFraming::Length(5)));
        assert_eq!(cl("007"), Ok(BodyFraming::Length(7)));
        assert_eq!(cl("5, 6"), Err(HttpError::DifferingContentLengths));
        assert_eq!(cl("+5"), Err(HttpError::InvalidContentLength));
        assert_eq!(cl("-1"), Err(HttpError::InvalidContentLength));
        assert_eq!(cl("0x10"), Err(HttpError::InvalidContentLength));
        assert_eq!(cl("5,,5"), Err(HttpError::InvalidContentLength));
        assert_eq!(cl("1 2"), Err(HttpError::InvalidContentLength));
        assert_eq!(cl(""), Err(HttpError::InvalidContentLength));
        assert_eq!(
            cl("99999999999999999999999"),
            Err(HttpError::InvalidContentLength)
        );
        assert_eq!(cl("1048577"), Err(HttpError::BodyTooLarge));
    }

    #[test]
    fn version_errors() {
        let v = |line: &str| parse(format!("{line}\r\nHost: h\r\n\r\n").as_bytes()).err();
        assert_eq!(v("GET / HTTP/2.0"), Some(HttpError::UnsupportedVersion));
        assert_eq!(v("GET / HTTP/1.2"), Some(HttpError::UnsupportedVersion));
        assert_eq!(
            v("GET / HTTQ/1.1"),
            Some(HttpError::Malformed("invalid HTTP version"))
        );
    }

    #[test]
    fn trailers_read_as_fields_and_empty_ones_hold_nothing() {
        let limits = Limits::default();
        let some = Trailers::from(parse_trailers(b"X-Sum: 1\r\n\r\n", &limits).expect("ok"));
        assert_eq!(some.get("x-sum"), Some(&b"1"[..]));
        assert_eq!(some.len(), 1);
        let none = Trailers::from(parse_trailers(b"\r\n", &limits).expect("ok"));
        assert!(none.is_empty() && none.get("x-sum").is_none());
        assert_eq!(
            none,
            Trailers::default(),
            "empty is empty, however it was made"
        );
        assert!(none.0.is_none(), "no allocation for no trailers");
    }

    #[test]
    fn recycled_heads_are_reused() {
        let input = b"GET /abc HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let reused = same_every_split(input, |pieces| {
            let mut conn = ServerConn::default();
            let mut out = Vec::new();
            let mut seen = Vec::new();
            let mut decoys = Vec::new();
            for piece in pieces {
                conn.handle_bytes(piece);
                while let Ok(Some(event)) = conn.poll_event() {
                    let Event::Request(head) = event else {
                        continue;
                    };
                    seen.push((
                        head.target().to_string(),
                        head.fields.bytes.as_ptr() as usize,
                    ));
                    conn.write_response_head(200, "OK", &[], BodyFraming::Empty, &mut out)
                        .unwrap();
                    conn.finish_response(&mut out).unwrap();
                    let capacity = head.fields.bytes.capacity();
                    conn.recycle(head);
                    // Were the head freed instead, this would take its memory.
                    decoys.push(Vec::<u8>::with_capacity(capacity));
                }
            }
            // The second head lives in the first one's allocation.
            (seen[0].0.clone(), seen[1].0.clone(), seen[0].1 == seen[1].1)
        });
        assert_eq!(reused, ("/abc".into(), "/x".into(), true));
    }
}
