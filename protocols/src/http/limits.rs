//! How much a request may be before the server refuses it, and why each default is what it
//! is. Every limit is checked while the bytes are still arriving, so an incomplete request
//! can never make the connection buffer more than [`Limits::max_head_bytes`]: a limit
//! checked only once the head is complete would let a peer that never ends it fill memory.

/// Longest method this server reads before calling the request line garbage. The longest
/// registered method is `BASELINE-CONTROL` (16 bytes, RFC 3253); nginx refuses methods over
/// 32 bytes too (`NGX_HTTP_PARSE_INVALID_METHOD`). Only bounds the request line; not a knob.
pub const MAX_METHOD_BYTES: usize = 32;

/// The most field lines [`Limits::max_headers`] may allow: the parser puts this many httparse
/// slots on the stack (about 32 bytes each, 4 KiB in all), so a request costs no heap
/// allocation for its header index while parsing. 128 leaves room above hyper's default 100.
pub const MAX_HEADERS_CAP: usize = 128;

/// The longest request line around a target of `max_target_bytes`: method, two spaces and
/// `HTTP/1.1`. Used to fail a request line early, before its CRLF arrives.
const REQUEST_LINE_OVERHEAD: usize = MAX_METHOD_BYTES + 2 + "HTTP/1.1".len();

/// Per-connection limits. `Limits::default()` is a sensible public-facing server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request-target, in bytes → `414 URI Too Long`. Default 8 KiB: the length
    /// nginx (`large_client_header_buffers 4 8k`) and Apache (`LimitRequestLine 8190`) allow
    /// for a whole request line, and RFC 9112 §3 asks servers to accept at least 8000 octets.
    pub max_target_bytes: usize,
    /// Longest header section (every field line and the final CRLF, not the request line),
    /// and likewise the trailer section of a chunked body → `431 Request Header Fields Too
    /// Large`. Default 8 KiB: Apache's per-field 8190 and nginx's 8k buffer; Node.js allows
    /// 16 KiB. Real browsers send 0.5-2 KiB; big cookies are what push past 8 KiB.
    pub max_header_bytes: usize,
    /// Most field lines in the header (or trailer) section → `431`. Default 100: hyper's
    /// `DEFAULT_MAX_HEADERS` and Apache's `LimitRequestFields`. Clamped to [`MAX_HEADERS_CAP`].
    pub max_headers: usize,
    /// Largest request body, by `Content-Length` up front or by the running total of a chunked
    /// body → `413 Content Too Large`. Default 1 MiB: nginx's `client_max_body_size`. A
    /// service that takes uploads raises it.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_target_bytes: 8 * 1024,
            max_header_bytes: 8 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Longest request line (without its CRLF) that can carry a target of the allowed length.
    pub fn max_request_line(&self) -> usize {
        self.max_target_bytes + REQUEST_LINE_OVERHEAD
    }

    /// The most bytes an incomplete request head can occupy: the longest request line, its
    /// CRLF, and the longest header section. The connection's input buffer stays within
    /// this plus one read while it waits for a head.
    pub fn max_head_bytes(&self) -> usize {
        self.max_request_line() + 2 + self.max_header_bytes
    }

    /// [`Limits::max_headers`] clamped to what the parser has slots for.
    pub(crate) fn header_slots(&self) -> usize {
        self.max_headers.min(MAX_HEADERS_CAP)
    }
}
