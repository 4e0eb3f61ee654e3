//! `ClientConn` tests. Every response input is fed whole, byte by byte and at every split
//! (through [`same_every_split`]), and what the connection made of it is written down as a
//! transcript, one line per event, consecutive body pieces joined (how a body is cut into
//! `Body` events depends on how it arrived; its bytes do not).

use super::*;
use crate::http::{BodyFraming, Event, ServerConn, Version};
use crate::testing::same_every_split;

/// What one run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// `head 200 OK HTTP/1.1 Length(13)`, `body ...`, `end keep-alive` / `end close`.
    seen: Vec<String>,
    error: Option<ResponseError>,
    idle: bool,
    outstanding: usize,
}

/// Feeds `pieces` to `conn` (then EOF, if `eof`), draining events after each.
fn feed(conn: &mut ClientConn, pieces: &[&[u8]], eof: bool) -> Run {
    let mut seen: Vec<String> = Vec::new();
    let mut error = None;
    let drain = |conn: &mut ClientConn, mut input: &[u8], seen: &mut Vec<String>| loop {
        match conn.poll_event(&mut input) {
            Ok(Some(event)) => record(conn, event, seen),
            Ok(None) => {
                assert!(input.is_empty(), "Ok(None) leaves no input behind");
                return None;
            }
            Err(e) => {
                assert!(conn.is_broken());
                assert_eq!(conn.poll_event(&mut &b""[..]), Err(e), "errors stick");
                return Some(e);
            }
        }
    };
    for piece in pieces {
        error = drain(conn, piece, &mut seen);
        if error.is_some() {
            break;
        }
    }
    if eof && error.is_none() {
        conn.handle_eof();
        error = drain(conn, b"", &mut seen);
    }
    Run {
        seen,
        error,
        idle: conn.is_idle(),
        outstanding: conn.outstanding(),
    }
}

fn record(conn: &mut ClientConn, event: ResponseEvent<'_>, seen: &mut Vec<String>) {
    match event {
        ResponseEvent::Head(head) => {
            let version = match head.version {
                Version::Http10 => "HTTP/1.0",
                Version::Http11 => "HTTP/1.1",
            };
            seen.push(format!(
                "head {} {} {version} {:?}",
                head.status, head.reason, head.framing
            ));
            conn.recycle(head);
        }
        ResponseEvent::Body(data) => {
            assert!(!data.is_empty(), "no empty Body events");
            let text = String::from_utf8_lossy(data);
            match seen.last_mut() {
                Some(last) if last.starts_with("body ") => last.push_str(&text),
                _ => seen.push(format!("body {text}")),
            }
        }
        ResponseEvent::End { keep_alive } => seen.push(
            if keep_alive {
                "end keep-alive"
            } else {
                "end close"
            }
            .into(),
        ),
    }
}

/// A fresh connection expecting responses to `methods` (only `HEAD` matters), fed `input`
/// every way.
fn frame_with(limits: ClientLimits, methods: &[&str], input: &[u8], eof: bool) -> Run {
    same_every_split(input, |pieces| {
        let mut conn = ClientConn::new(limits);
        for method in methods {
            conn.expect_response(*method == "HEAD");
        }
        feed(&mut conn, pieces, eof)
    })
}

fn frame(methods: &[&str], input: &[u8], eof: bool) -> Run {
    frame_with(ClientLimits::default(), methods, input, eof)
}

/// Just the error a single GET's response `input` ends in.
fn error_of(input: &[u8], eof: bool) -> Option<ResponseError> {
    frame(&["GET"], input, eof).error
}

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

#[test]
fn content_length_body() {
    let run = frame(&["GET"], HELLO, false);
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 Length(13)",
            "body Hello, world!",
            "end keep-alive"
        ]
    );
    assert_eq!((run.error, run.idle, run.outstanding), (None, true, 0));
}

#[test]
fn the_head_reads_as_fields() {
    let mut conn = ClientConn::default();
    conn.expect_response(false);
    let mut input =
        &b"HTTP/1.1 404 Not Found\r\nX-A:  one \r\nx-a: two\r\nContent-Length: 0\r\n\r\n"[..];
    let Ok(Some(ResponseEvent::Head(head))) = conn.poll_event(&mut input) else {
        panic!("a head");
    };
    assert_eq!((head.status, head.reason.as_str()), (404, "Not Found"));
    assert_eq!(head.headers.get_str("x-a"), Some("one"));
    assert_eq!(
        head.headers.get_all("X-A").collect::<Vec<_>>(),
        [b"one", b"two"]
    );
    assert_eq!(head.headers.len(), 3);
    assert_eq!(head.framing, ResponseFraming::Length(0));
}

#[test]
fn odd_but_valid_heads_read_the_same_either_way() {
    // No reason phrase, a value with trailing spaces, an empty value, obs-text in a value:
    // the in-place fast path leaves some of these to the scanner; both must agree.
    let input = [
        &b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\na"[..],
        b"HTTP/1.1 200 OK\r\nX-Pad: v  \r\nX-Empty:\r\nContent-Length: 1\r\n\r\nb",
        b"HTTP/1.1 299 Caf\xc3\xa9 \xff\r\nX: \xe9t\xe9\r\nContent-Length: 1\r\n\r\nc",
    ]
    .concat();
    let run = frame(&["GET"; 3], &input, false);
    assert_eq!(
        run.seen,
        [
            "head 200  HTTP/1.1 Length(1)",
            "body a",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Length(1)",
            "body b",
            "end keep-alive",
            "head 299  HTTP/1.1 Length(1)",
            "body c",
            "end keep-alive",
        ]
    );
    assert_eq!(run.error, None);
}

#[test]
fn pipelined_responses_to_pipelined_requests() {
    let input = [
        HELLO,
        b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n",
        // A body that looks like CRLF CRLF is still body.
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\n\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
    ]
    .concat();
    let run = frame(&["GET"; 7], &input, false);
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 Length(13)",
            "body Hello, world!",
            "end keep-alive",
            "head 204 No Content HTTP/1.1 Empty",
            "end keep-alive",
            "head 404 Not Found HTTP/1.1 Length(4)",
            "body \r\n\r\n",
            "end keep-alive",
            "head 200 OK HTTP/1.0 Length(0)",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Chunked",
            "body abc",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Length(1)",
            "body x",
            "end close",
        ]
    );
    // The seventh request went unanswered: the sixth response closed the connection.
    assert_eq!((run.error, run.idle, run.outstanding), (None, false, 1));
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let input = [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"5;name=value\r\nhello\r\n6 ; a=\"b c\"\r\n world\r\nA\r\n0123456789\r\n",
        b"0;last\r\nX-Sum: 1\r\nY: 2\r\n\r\n",
        // The next response right behind the trailers: none of it is taken for them.
        HELLO,
    ]
    .concat();
    let run = frame(&["GET", "GET"], &input, false);
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 Chunked",
            "body hello world0123456789",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Length(13)",
            "body Hello, world!",
            "end keep-alive",
        ]
    );
    assert_eq!((run.error, run.idle), (None, true));
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end\r\n\r\nof it";
    let run = frame(&["GET"], input, true);
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 UntilClose",
            "body until the end\r\n\r\nof it",
            "end close",
        ]
    );
    assert_eq!((run.error, run.idle, run.outstanding), (None, false, 0));
    // Before the EOF it is simply not over.
    let open = frame(&["GET"], input, false);
    assert_eq!(open.seen.len(), 2);
    assert_eq!((open.error, open.idle, open.outstanding), (None, false, 1));
    // An HTTP/1.0 response without a length: the same.
    let old = frame(&["GET"], b"HTTP/1.0 200 OK\r\n\r\nold", true);
    assert_eq!(
        old.seen,
        ["head 200 OK HTTP/1.0 UntilClose", "body old", "end close"]
    );
}

#[test]
fn interim_responses_are_skipped_and_101_refused() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\n\
        HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nContent-Length: 7\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let run = frame(&["POST"], input, false);
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 Length(2)",
            "body ok",
            "end keep-alive"
        ]
    );
    assert_eq!((run.error, run.idle), (None, true));
    let upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    assert_eq!(error_of(upgrade, false), Some(ResponseError::Upgrade));
}

#[test]
fn head_204_and_304_have_no_body_whatever_their_fields_say() {
    let input = [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"[..], // to the HEAD
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", // to the second HEAD
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: abc\r\nTransfer-Encoding: gzip\r\n\r\n",
        HELLO,
    ]
    .concat();
    let run = frame(&["HEAD", "HEAD", "GET", "GET", "GET", "GET"], &input, false);
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 Empty",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Empty",
            "end keep-alive",
            "head 204 No Content HTTP/1.1 Empty",
            "end keep-alive",
            "head 304 Not Modified HTTP/1.1 Empty",
            "end keep-alive",
            "head 304 Not Modified HTTP/1.1 Empty",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Length(13)",
            "body Hello, world!",
            "end keep-alive",
        ]
    );
    assert_eq!((run.error, run.idle), (None, true));
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 7] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: te\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
    ];
    for (input, keep_alive) in cases {
        let run = frame(&["GET"], input, false);
        let end = if keep_alive {
            "end keep-alive"
        } else {
            "end close"
        };
        assert_eq!(run.seen.last().map(String::as_str), Some(end), "{input:?}");
        assert_eq!(run.idle, keep_alive, "{input:?}");
    }
}

#[test]
fn a_request_that_said_close_gets_the_last_response() {
    let mut conn = ClientConn::default();
    let mut out = Vec::new();
    let req = Request {
        method: "GET",
        target: "/",
        host: "h",
        headers: &[("Connection", "close")],
        body: b"",
    };
    conn.write_request(&req, &mut out).unwrap();
    assert!(!conn.is_idle());
    assert_eq!(
        conn.write_request(&req, &mut out),
        Err(RequestError::Closed)
    );
    let run = feed(
        &mut conn,
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        true,
    );
    assert_eq!(run.seen.last().map(String::as_str), Some("end close"));
    assert_eq!((run.error, run.idle), (None, false));
}

#[test]
fn leading_empty_lines_are_skipped() {
    let input = [&b"\r\n\r\n"[..], HELLO].concat();
    let run = frame(&["GET"], &input, false);
    assert_eq!(run.seen.len(), 3);
    assert_eq!(run.error, None);
    assert_eq!(
        error_of(&[&b"\n"[..], HELLO].concat(), false),
        Some(ResponseError::Malformed)
    );
}

#[test]
fn conflicting_lengths_and_codings_are_errors() {
    let head = |fields: &str| format!("HTTP/1.1 200 OK\r\n{fields}\r\n\r\nhello");
    let err = |fields: &str| error_of(head(fields).as_bytes(), false);
    use ResponseError::{ConflictingLength, UnsupportedCoding};
    assert_eq!(
        err("Content-Length: 5\r\nContent-Length: 6"),
        Some(ConflictingLength)
    );
    assert_eq!(err("Content-Length: 5, 6"), Some(ConflictingLength));
    assert_eq!(err("Content-Length: x"), Some(ConflictingLength));
    assert_eq!(err("Content-Length: -5"), Some(ConflictingLength));
    assert_eq!(
        err("Content-Length: 5\r\nTransfer-Encoding: chunked"),
        Some(ConflictingLength)
    );
    assert_eq!(err("Transfer-Encoding: gzip"), Some(UnsupportedCoding));
    assert_eq!(
        err("Transfer-Encoding: gzip, chunked"),
        Some(UnsupportedCoding)
    );
    assert_eq!(
        err("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
        Some(UnsupportedCoding)
    );
    assert_eq!(
        err("Transfer-Encoding: chunked, gzip"),
        Some(UnsupportedCoding)
    );
    let http10 = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(error_of(http10, false), Some(ConflictingLength));
    // One length written twice is one length (RFC 9112 §6.3 rule 5).
    let twice = frame(
        &["GET"],
        head("Content-Length: 5, 5\r\nContent-Length: 5").as_bytes(),
        false,
    );
    assert_eq!((twice.seen.len(), twice.error), (3, None));
}

#[test]
fn broken_chunk_framing_is_bad_chunk() {
    let chunked = |body: &[u8]| {
        let input = [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            body,
        ]
        .concat();
        frame(&["GET"], &input, false)
    };
    for body in [
        &b"zz\r\n"[..],
        b"5\nhello\r\n",
        b"5\r\nhelloX\r\n",
        b"5x\r\n",
        b"00000000000000001\r\n",
        b"1;a=\x00\r\n",
    ] {
        assert_eq!(
            chunked(body).error,
            Some(ResponseError::BadChunk),
            "{body:?}"
        );
    }
    // The data before the break was handed out first.
    let run = chunked(b"5\r\nhello\r\n5\r\nworldX");
    assert_eq!(
        run.seen,
        ["head 200 OK HTTP/1.1 Chunked", "body helloworld"]
    );
    assert_eq!(run.error, Some(ResponseError::BadChunk));
}

#[test]
fn malformed_heads() {
    use ResponseError::Malformed;
    let cases: [&[u8]; 7] = [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
    ];
    for input in cases {
        assert_eq!(error_of(input, false), Some(Malformed), "{input:?}");
    }
}

#[test]
fn heads_and_trailers_are_bounded() {
    let limits = ClientLimits {
        max_head: 64,
        max_fields: 3,
    };
    let run = |input: &[u8]| frame_with(limits, &["GET"], input, false).error;
    // 64 bytes exactly fits; one more does not.
    let fits = b"HTTP/1.1 200 OK\r\nX: 012345678901234567890\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(fits.len(), 64);
    assert_eq!(run(fits), None);
    let over = b"HTTP/1.1 200 OK\r\nX: 0123456789012345678901\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(run(over), Some(ResponseError::HeadTooLarge));
    // A status line that never ends, and a field line that never ends.
    assert_eq!(run(&[b'H'; 100]), Some(ResponseError::HeadTooLarge));
    let endless = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 100]].concat();
    assert_eq!(run(&endless), Some(ResponseError::HeadTooLarge));
    let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_eq!(run(many), Some(ResponseError::HeadTooLarge));
    let trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Long: 0123456789012345678901234567890123456789012345678901234567890\r\n\r\n";
    assert_eq!(run(trailers), Some(ResponseError::HeadTooLarge));
}

#[test]
fn eof_mid_response_is_truncated() {
    use ResponseError::{NoResponse, Truncated};
    assert_eq!(error_of(&HELLO[..HELLO.len() - 1], true), Some(Truncated));
    assert_eq!(error_of(&HELLO[..20], true), Some(Truncated));
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\r\n";
    for cut in [
        chunked.len() - 30,
        chunked.len() - 12,
        chunked.len() - 3,
        chunked.len(),
    ] {
        assert_eq!(
            error_of(&chunked[..cut], true),
            Some(Truncated),
            "cut at {cut}"
        );
    }
    // Nothing of the response at all: not a framing error, a request not answered.
    assert_eq!(error_of(b"", true), Some(NoResponse));
    assert_eq!(error_of(b"\r\n", true), Some(NoResponse));
    // EOF with nothing expected, or after the last response, is a clean end.
    let mut conn = ClientConn::default();
    assert_eq!(feed(&mut conn, &[], true).error, None);
    let closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    let run = frame(&["GET", "GET"], closing, true);
    assert_eq!((run.error, run.outstanding), (None, 1));
}

#[test]
fn bytes_nobody_asked_for_are_unexpected() {
    let run = frame(&[], HELLO, false);
    assert_eq!(
        (run.seen.len(), run.error),
        (0, Some(ResponseError::Unexpected))
    );
    // One answer too many: the first is framed, the second is refused.
    let run = frame(&["GET"], &[HELLO, HELLO].concat(), false);
    assert_eq!(
        (run.seen.len(), run.error),
        (3, Some(ResponseError::Unexpected))
    );
    // Bytes after the response that ended the connection.
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n\r\n";
    let run = frame(&["GET", "GET"], close, false);
    assert_eq!(
        (run.seen.len(), run.error),
        (2, Some(ResponseError::Unexpected))
    );
}

#[test]
fn body_data_is_the_input_not_a_copy() {
    let body = vec![b'x'; 1 << 20];
    let input = [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"[..],
        &body,
    ]
    .concat();
    let mut conn = ClientConn::default();
    conn.expect_response(false);
    let mut rest = &input[..];
    assert!(matches!(
        conn.poll_event(&mut rest),
        Ok(Some(ResponseEvent::Head(_)))
    ));
    let Ok(Some(ResponseEvent::Body(data))) = conn.poll_event(&mut rest) else {
        panic!("the body");
    };
    assert_eq!(data.len(), 1 << 20);
    assert!(std::ptr::eq(
        data.as_ptr(),
        input[input.len() - (1 << 20)..].as_ptr()
    ));
    assert_eq!(
        conn.poll_event(&mut rest),
        Ok(Some(ResponseEvent::End { keep_alive: true }))
    );
    // Chunked data too.
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    conn.expect_response(false);
    let mut rest = &chunked[..];
    conn.poll_event(&mut rest).unwrap();
    let Ok(Some(ResponseEvent::Body(data))) = conn.poll_event(&mut rest) else {
        panic!("the body");
    };
    assert!(std::ptr::eq(
        data.as_ptr(),
        chunked[chunked.len() - 12..].as_ptr()
    ));
}

fn written(req: &Request<'_>) -> Result<String, RequestError> {
    let mut out = b"kept".to_vec();
    let mut conn = ClientConn::default();
    let got = conn.write_request(req, &mut out);
    assert_eq!(conn.outstanding(), usize::from(got.is_ok()));
    got.map(|()| String::from_utf8(out[4..].to_vec()).unwrap())
        .inspect_err(|_| assert_eq!(out, b"kept", "nothing written on error"))
}

const GET: Request<'static> = Request {
    method: "GET",
    target: "/a?b=c",
    host: "example.com:8080",
    headers: &[],
    body: b"",
};

#[test]
fn requests_are_serialised_exactly() {
    assert_eq!(
        written(&GET).unwrap(),
        "GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"
    );
    let post = Request {
        method: "POST",
        headers: &[("Content-Type", "text/plain"), ("X-Empty", "")],
        body: b"hi there",
        ..GET
    };
    assert_eq!(
        written(&post).unwrap(),
        "POST /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\n\
         X-Empty: \r\nContent-Length: 8\r\n\r\nhi there"
    );
    let put = Request {
        method: "PUT",
        ..GET
    };
    assert_eq!(
        written(&put).unwrap(),
        "PUT /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 0\r\n\r\n"
    );
    let options = Request {
        method: "OPTIONS",
        target: "*",
        host: "",
        ..GET
    };
    assert_eq!(
        written(&options).unwrap(),
        "OPTIONS * HTTP/1.1\r\nHost: \r\n\r\n"
    );
}

#[test]
fn header_injection_is_refused() {
    use RequestError::*;
    let bad = |req: Request<'_>| written(&req).err();
    assert_eq!(
        bad(Request {
            method: "GET /x HTTP/1.1\r\n",
            ..GET
        }),
        Some(InvalidMethod)
    );
    assert_eq!(bad(Request { method: "", ..GET }), Some(InvalidMethod));
    assert_eq!(
        bad(Request {
            target: "/a b",
            ..GET
        }),
        Some(InvalidTarget)
    );
    assert_eq!(
        bad(Request {
            target: "/a\r\nX: y",
            ..GET
        }),
        Some(InvalidTarget)
    );
    assert_eq!(
        bad(Request {
            target: "/caf\u{e9}",
            ..GET
        }),
        Some(InvalidTarget)
    );
    assert_eq!(bad(Request { target: "", ..GET }), Some(InvalidTarget));
    assert_eq!(
        bad(Request {
            host: "h\r\nX: y",
            ..GET
        }),
        Some(InvalidHeader)
    );
    let header = |name, value| {
        bad(Request {
            headers: &[(name, value)],
            ..GET
        })
    };
    assert_eq!(header("X", "a\r\nSet-Cookie: x"), Some(InvalidHeader));
    assert_eq!(header("X", "a\nb"), Some(InvalidHeader));
    assert_eq!(header("X", "a\0b"), Some(InvalidHeader));
    assert_eq!(header("Bad Name", "v"), Some(InvalidHeader));
    assert_eq!(header("X:", "v"), Some(InvalidHeader));
    assert_eq!(header("", "v"), Some(InvalidHeader));
    assert_eq!(header("host", "other"), Some(ReservedHeader));
    assert_eq!(header("Content-Length", "5"), Some(ReservedHeader));
    assert_eq!(header("Transfer-Encoding", "chunked"), Some(ReservedHeader));
    assert_eq!(header("X-Ok", "tab\tand caf\u{e9}"), None);
}

#[test]
fn idle_busy_and_broken() {
    let mut conn = ClientConn::default();
    let mut out = Vec::new();
    assert!(conn.is_idle());
    conn.write_request(&GET, &mut out).unwrap();
    conn.write_request(
        &Request {
            method: "HEAD",
            ..GET
        },
        &mut out,
    )
    .unwrap();
    assert!(!conn.is_idle());
    assert_eq!(conn.outstanding(), 2);
    let mut input = &HELLO[..30];
    assert!(matches!(conn.poll_event(&mut input), Ok(None)));
    assert!(!conn.is_idle() && !conn.is_broken());
    let rest = [
        &HELLO[30..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n",
    ]
    .concat();
    let run = feed(&mut conn, &[&rest], false);
    assert_eq!(run.seen.last().map(String::as_str), Some("end keep-alive"));
    assert!(run.idle && run.error.is_none());
    assert_eq!(
        conn.poll_event(&mut &b"x"[..]),
        Err(ResponseError::Unexpected)
    );
    assert!(conn.is_broken() && !conn.is_idle());
    assert_eq!(
        conn.write_request(&GET, &mut out),
        Err(RequestError::Closed)
    );
}

#[test]
fn errors_read_as_one_line() {
    for e in [
        ResponseError::Malformed,
        ResponseError::HeadTooLarge,
        ResponseError::ConflictingLength,
        ResponseError::BadChunk,
        ResponseError::UnsupportedCoding,
        ResponseError::Upgrade,
        ResponseError::Truncated,
        ResponseError::NoResponse,
        ResponseError::Unexpected,
    ] {
        let text = e.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{e:?}");
    }
    assert_eq!(
        RequestError::Closed.to_string(),
        "the connection takes no more requests"
    );
}

/// Both ends in memory, so a disagreement between them shows up here, with no socket to
/// blame: our client's requests, pipelined, through our
/// server, and the server's responses (Content-Length, chunked, to HEAD) back through the
/// client, cut every way.
#[test]
fn our_client_and_our_server_agree() {
    let mut client = ClientConn::default();
    let mut requests = Vec::new();
    for req in [
        GET,
        Request {
            method: "POST",
            target: "/echo",
            body: b"ping",
            ..GET
        },
        Request {
            method: "HEAD",
            ..GET
        },
        Request {
            target: "/chunked",
            ..GET
        },
    ] {
        client.write_request(&req, &mut requests).unwrap();
    }
    // The server reads them whole (its own tests cut requests every way).
    let mut server = ServerConn::default();
    let mut responses = Vec::new();
    server.handle_bytes(&requests);
    let (mut target, mut body) = (String::new(), Vec::new());
    while let Some(event) = server.poll_event().expect("our requests are valid") {
        let out = &mut responses;
        match event {
            Event::Request(head) => {
                target = head.target().to_string();
                body.clear();
            }
            Event::Body(data) => body.extend_from_slice(&data),
            Event::RequestEnd(_) if target == "/chunked" => {
                server
                    .write_response_head(200, "OK", &[], BodyFraming::Chunked, out)
                    .unwrap();
                server.write_body(b"chunk one, ", out).unwrap();
                server.write_body(b"chunk two", out).unwrap();
                server.finish_response(out).unwrap();
            }
            Event::RequestEnd(_) => {
                let answer = format!("got {} bytes", body.len());
                let len = BodyFraming::Length(answer.len() as u64);
                server
                    .write_response_head(200, "OK", &[], len, out)
                    .unwrap();
                server.write_body(answer.as_bytes(), out).unwrap();
                server.finish_response(out).unwrap();
            }
        }
    }
    let run = same_every_split(&responses, |pieces| {
        let mut conn = ClientConn::default();
        for method in ["GET", "POST", "HEAD", "GET"] {
            conn.expect_response(method == "HEAD");
        }
        feed(&mut conn, pieces, false)
    });
    assert_eq!(
        run.seen,
        [
            "head 200 OK HTTP/1.1 Length(11)",
            "body got 0 bytes",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Length(11)",
            "body got 4 bytes",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Empty",
            "end keep-alive",
            "head 200 OK HTTP/1.1 Chunked",
            "body chunk one, chunk two",
            "end keep-alive",
        ]
    );
    assert!(run.idle && run.error.is_none());
}
