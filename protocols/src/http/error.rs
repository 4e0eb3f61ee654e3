//! The two ways an HTTP exchange goes wrong, kept apart because they call for different
//! answers (the peer gets an error status and a close; our own bug gets no bytes at all):
//!
//! - [`HttpError`]: the **peer** broke the protocol. Each variant knows the status code the
//!   wire answer should carry ([`HttpError::status`]); after one, the connection must close
//!   (RFC 9112 §6.3: when framing is in doubt, nothing after it can be trusted).
//! - [`UsageError`]: **our caller** used the API wrongly (a body on a 204, two response
//!   heads). That is a bug in the glue, not something to answer on the wire.

use std::fmt;

/// The peer sent something this server will not accept. The connection is must-close after
/// any of these; [`crate::http::ServerConn::write_error`] writes the matching response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// 400: the request line or a field line does not parse (the detail says what).
    Malformed(&'static str),
    /// 400: a line ended in a bare LF. RFC 9112 §2.2 lets a server accept it; we refuse,
    /// because a front proxy that disagrees about line ends is a smuggling vector.
    BareLf,
    /// 400: a field line starts with whitespace (obs-fold, RFC 9112 §5.2), or whitespace
    /// sits between the request line and the first field (§2.2).
    ObsFold,
    /// 400: an HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    MissingHost,
    /// 400: more than one `Host` field line (RFC 9112 §3.2).
    MultipleHost,
    /// 400: both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.3 item 3: "ought to
    /// be handled as an error": the classic request-smuggling shape).
    LengthAndChunked,
    /// 400: a `Content-Length` that is not a plain decimal number, or overflows u64.
    InvalidContentLength,
    /// 400: `Content-Length` repeated with different values (RFC 9112 §6.3 item 5).
    DifferingContentLengths,
    /// 400: `Transfer-Encoding` whose final coding is not `chunked`, or `chunked` twice
    /// (RFC 9112 §6.3 item 4, §7).
    TransferEncodingNotChunked,
    /// 400: `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1: the framing is faulty).
    TransferEncodingInHttp10,
    /// 400: the chunked framing is broken (the detail says how).
    InvalidChunk(&'static str),
    /// 400: the peer closed (EOF) in the middle of a request.
    Incomplete,
    /// 408: the request head did not arrive whole in time (a slowloris client). This crate
    /// reads no clock: the glue's timer decides, then answers with this error.
    HeadTimeout,
    /// 413: the body is longer than [`crate::http::Limits::max_body_bytes`].
    BodyTooLarge,
    /// 414: the request-target is longer than [`crate::http::Limits::max_target_bytes`].
    TargetTooLong,
    /// 431: the header (or trailer) section is longer than
    /// [`crate::http::Limits::max_header_bytes`].
    HeadersTooLarge,
    /// 431: more field lines than [`crate::http::Limits::max_headers`].
    TooManyHeaders,
    /// 501: a transfer coding we do not implement before the final `chunked`, such as
    /// `gzip, chunked` (RFC 9112 §6.1: "SHOULD respond with 501").
    UnsupportedTransferCoding,
    /// 505: a well-formed version other than HTTP/1.0 and HTTP/1.1.
    UnsupportedVersion,
}

impl HttpError {
    /// The status code of the response this error deserves.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_)
            | HttpError::BareLf
            | HttpError::ObsFold
            | HttpError::MissingHost
            | HttpError::MultipleHost
            | HttpError::LengthAndChunked
            | HttpError::InvalidContentLength
            | HttpError::DifferingContentLengths
            | HttpError::TransferEncodingNotChunked
            | HttpError::TransferEncodingInHttp10
            | HttpError::InvalidChunk(_)
            | HttpError::Incomplete => 400,
            HttpError::HeadTimeout => 408,
            HttpError::BodyTooLarge => 413,
            HttpError::TargetTooLong => 414,
            HttpError::HeadersTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::UnsupportedVersion => 505,
        }
    }

    /// A short human explanation, fit for a log line or the body of the error response.
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::Malformed(detail) | HttpError::InvalidChunk(detail) => detail,
            HttpError::BareLf => "line ends in a bare LF; HTTP lines end in CRLF",
            HttpError::ObsFold => "field line folded over several lines (obs-fold)",
            HttpError::MissingHost => "HTTP/1.1 request without a Host field",
            HttpError::MultipleHost => "more than one Host field",
            HttpError::LengthAndChunked => "both Content-Length and Transfer-Encoding",
            HttpError::InvalidContentLength => "Content-Length is not a decimal number",
            HttpError::DifferingContentLengths => "Content-Length repeated with different values",
            HttpError::TransferEncodingNotChunked => {
                "Transfer-Encoding does not end in a single chunked"
            }
            HttpError::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            HttpError::Incomplete => "connection closed in the middle of a request",
            HttpError::HeadTimeout => "the request head did not arrive in time",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::TargetTooLong => "request-target too long",
            HttpError::HeadersTooLarge => "header section too large",
            HttpError::TooManyHeaders => "too many header fields",
            HttpError::UnsupportedTransferCoding => "transfer coding not implemented",
            HttpError::UnsupportedVersion => "HTTP version not supported",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status(), self.reason())
    }
}

impl std::error::Error for HttpError {}

/// The caller used [`crate::http::ServerConn`] in a way HTTP does not allow. Nothing was
/// written to `out` when one of these is returned, except where the variant says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageError {
    /// The connection is closed (after an error, or after the last response).
    Closed,
    /// No request is waiting for a response: respond only after [`crate::http::Event::Request`].
    NoRequest,
    /// The response head for this request was already written.
    HeadAlreadyWritten,
    /// Body or finish before the response head.
    NoHead,
    /// A status outside 200..=999: 1xx are written by
    /// [`crate::http::ServerConn::write_continue`] only, and status codes have three digits.
    InvalidStatus,
    /// 204 and 304 responses never have a body (RFC 9110 §15.3.5, §15.4.5): pass
    /// [`crate::http::BodyFraming::Empty`].
    BodyNotAllowed,
    /// A header name that is not a token, or a value or reason with CR, LF or NUL (header
    /// injection).
    InvalidHeader,
    /// `Content-Length`, `Transfer-Encoding` and `Connection` are written by the connection
    /// from the framing and keep-alive state; pass them through the arguments instead.
    ReservedHeader,
    /// More body bytes than the `Content-Length` promised.
    BodyTooLong,
    /// `finish_response` before the promised `Content-Length` was written. The connection
    /// is now must-close: the peer can only learn the body is short from the close.
    BodyTooShort,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsageError::Closed => "the connection is closed",
            UsageError::NoRequest => "no request is waiting for a response",
            UsageError::HeadAlreadyWritten => "the response head was already written",
            UsageError::NoHead => "the response head has not been written",
            UsageError::InvalidStatus => "status must be 200..=999 (1xx via write_continue)",
            UsageError::BodyNotAllowed => "204 and 304 responses have no body",
            UsageError::InvalidHeader => "header name not a token, or CR/LF/NUL in a value",
            UsageError::ReservedHeader => {
                "Content-Length, Transfer-Encoding and Connection are set by the connection"
            }
            UsageError::BodyTooLong => "more body bytes than Content-Length",
            UsageError::BodyTooShort => "fewer body bytes than Content-Length",
        })
    }
}

impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status() {
        assert_eq!(HttpError::BareLf.status(), 400);
        assert_eq!(HttpError::InvalidChunk("x").status(), 400);
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        assert_eq!(HttpError::TargetTooLong.status(), 414);
        assert_eq!(HttpError::HeadersTooLarge.status(), 431);
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        assert_eq!(HttpError::UnsupportedTransferCoding.status(), 501);
        assert_eq!(HttpError::UnsupportedVersion.status(), 505);
        assert_eq!(
            HttpError::Malformed("invalid token").to_string(),
            "400: invalid token"
        );
    }
}
