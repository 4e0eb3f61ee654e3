//! Connection-level tests: every input is fed whole, byte by byte and at every split
//! (through [`same_every_split`]), and what the connection made of it is written down as a
//! short transcript, one line per event, plus the response bytes.

use super::*;
use crate::testing::same_every_split;

/// What one run of a connection produced.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    /// One line per event: `head GET / HTTP/1.1 keep-alive`, `body ...` (consecutive body
    /// pieces joined, since how the body is cut depends on how the bytes arrived), `end`,
    /// `end X: 1`, `error 400 ...`.
    seen: Vec<String>,
    /// Everything written to the output buffer, lossily as text.
    out: String,
    /// What the responder reported (usage errors, `write_continue` results...).
    notes: Vec<String>,
    closed: bool,
}

/// How to drive the connection.
#[derive(Clone, Copy, Default)]
struct Opts {
    limits: Limits,
    /// Send EOF after the last piece.
    eof: bool,
    /// Respond as soon as the head arrives, rather than at `RequestEnd`.
    at_head: bool,
}

/// A responder: answers one request, returns a note for the transcript.
type Respond<'a> = &'a dyn Fn(&RequestHead, &mut ServerConn, &mut Vec<u8>) -> String;

/// Answers `200` with the method and target as a `Content-Length` body.
fn echo_target(head: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>) -> String {
    let body = format!("{} {}", head.method(), head.target());
    let len = BodyFraming::Length(body.len() as u64);
    let results = [
        conn.write_response_head(200, "OK", &[], len, out),
        conn.write_body(body.as_bytes(), out),
        conn.finish_response(out),
    ];
    notes_of(&results)
}

fn notes_of(results: &[Result<(), UsageError>]) -> String {
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.err().map(|e| format!("{e:?}")))
        .collect();
    errors.join(",")
}

fn describe(head: &RequestHead) -> String {
    let mut s = format!(
        "head {} {} {}",
        head.method(),
        head.target(),
        match head.version() {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    );
    s.push_str(if head.keep_alive() {
        " keep-alive"
    } else {
        " close"
    });
    if head.expects_continue() {
        s.push_str(" expect-100");
    }
    match head.body() {
        BodyFraming::Empty => {}
        BodyFraming::Length(n) => s.push_str(&format!(" length={n}")),
        BodyFraming::Chunked => s.push_str(" chunked"),
    }
    s
}

/// Feeds `pieces` to a fresh connection, polling after each, as a server's glue would.
fn run_pieces(pieces: &[&[u8]], opts: Opts, respond: Respond<'_>) -> Run {
    let mut conn = ServerConn::new(opts.limits);
    let mut run = Run {
        seen: Vec::new(),
        out: String::new(),
        notes: Vec::new(),
        closed: false,
    };
    let mut out = Vec::new();
    let mut pending: Option<Box<RequestHead>> = None;
    let mut drain = |conn: &mut ServerConn, run: &mut Run, out: &mut Vec<u8>| loop {
        match conn.poll_event() {
            Ok(Some(Event::Request(head))) => {
                run.seen.push(describe(&head));
                if opts.at_head {
                    run.notes.push(respond(&head, conn, out));
                    conn.recycle(head);
                } else {
                    pending = Some(head);
                }
            }
            Ok(Some(Event::Body(bytes))) => {
                let text = String::from_utf8_lossy(&bytes);
                match run.seen.last_mut() {
                    Some(last) if last.starts_with("body ") => last.push_str(&text),
                    _ => run.seen.push(format!("body {text}")),
                }
            }
            Ok(Some(Event::RequestEnd(trailers))) => {
                let fields: Vec<String> = trailers
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                    .collect();
                run.seen
                    .push(format!("end {}", fields.join(", ")).trim_end().to_string());
                if let Some(head) = pending.take() {
                    run.notes.push(respond(&head, conn, out));
                    conn.recycle(head);
                }
            }
            Ok(None) => break,
            Err(e) => {
                run.seen.push(format!("error {e}"));
                conn.write_error(&e, out);
                break;
            }
        }
    };
    for piece in pieces {
        conn.handle_bytes(piece);
        drain(&mut conn, &mut run, &mut out);
    }
    if opts.eof {
        conn.handle_eof();
        drain(&mut conn, &mut run, &mut out);
    }
    run.notes.retain(|n| !n.is_empty());
    run.out = String::from_utf8_lossy(&out).into_owned();
    run.closed = conn.is_closed();
    run
}

/// Feeds `input` every way, answering with `respond`; asserts every way agrees.
#[track_caller]
fn serve_with(input: &[u8], opts: Opts, respond: Respond<'_>) -> Run {
    same_every_split(input, |pieces| run_pieces(pieces, opts, respond))
}

/// Feeds `input` every way with default limits, answering with [`echo_target`].
#[track_caller]
fn serve(input: &[u8]) -> Run {
    serve_with(input, Opts::default(), &echo_target)
}

/// The response expected from [`echo_target`], with an optional `Connection` value.
fn echoed(text: &str, connection: Option<&str>) -> String {
    let conn = connection.map_or(String::new(), |c| format!("Connection: {c}\r\n"));
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{conn}\r\n{text}",
        text.len()
    )
}

// ---------------------------------------------------------------- requests and bodies

#[test]
fn simple_get() {
    let run = serve(b"GET /index.html HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n");
    assert_eq!(
        run.seen,
        ["head GET /index.html HTTP/1.1 keep-alive", "end"]
    );
    assert_eq!(run.out, echoed("GET /index.html", None));
    assert!(!run.closed);
}

#[test]
fn post_with_content_length_body() {
    let run = serve(b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
    assert_eq!(
        run.seen,
        [
            "head POST /form HTTP/1.1 keep-alive length=11",
            "body hello world",
            "end"
        ]
    );
    assert_eq!(run.out, echoed("POST /form", None));
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let run = serve(
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;note=first\r\nWiki\r\n5\r\npedia\r\nE ; x=\"y\"\r\n in\r\n\r\nchunks.\r\n\
          0\r\nExpires: never\r\nX-Checksum: 42\r\n\r\n",
    );
    assert_eq!(
        run.seen,
        [
            "head POST /up HTTP/1.1 keep-alive chunked",
            "body Wikipedia in\r\n\r\nchunks.",
            "end Expires: never, X-Checksum: 42"
        ]
    );
    assert!(!run.closed);
}

#[test]
fn headers_are_indexed_in_order_and_case_insensitively() {
    let respond = |head: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        let all: Vec<String> = head
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
            .collect();
        let cookies: Vec<&[u8]> = head.headers().get_all("COOKIE").collect();
        let note = format!(
            "{} | host={:?} | cookies={}",
            all.join(" "),
            head.headers().get_str("host"),
            cookies.len()
        );
        echo_target(head, conn, out);
        note
    };
    let run = serve_with(
        b"GET / HTTP/1.1\r\nHost:   example.org  \r\nCookie: a=1\r\ncookie: b=2\r\n\r\n",
        Opts::default(),
        &respond,
    );
    assert_eq!(
        run.notes,
        ["Host=example.org Cookie=a=1 cookie=b=2 | host=Some(\"example.org\") | cookies=2"]
    );
}

#[test]
fn three_pipelined_requests_are_answered_in_order() {
    let run = serve(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n\
          POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
          GET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!(
        run.seen,
        [
            "head GET /1 HTTP/1.1 keep-alive",
            "end",
            "head POST /2 HTTP/1.1 keep-alive length=3",
            "body abc",
            "end",
            "head GET /3 HTTP/1.1 keep-alive",
            "end"
        ]
    );
    let expected = [
        echoed("GET /1", None),
        echoed("POST /2", None),
        echoed("GET /3", None),
    ];
    assert_eq!(run.out, expected.concat());
}

#[test]
fn a_burst_of_100_pipelined_gets_gives_100_requests_in_order() {
    // Fed whole only: at ~3 KB, every split would take O(n^2) runs for no new coverage.
    let input: Vec<u8> = (0..100)
        .flat_map(|i| format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
        .collect();
    let run = run_pieces(&[&input], Opts::default(), &echo_target);
    let heads: Vec<&String> = run.seen.iter().filter(|s| s.starts_with("head")).collect();
    assert_eq!(heads.len(), 100);
    for (i, head) in heads.iter().enumerate() {
        assert_eq!(**head, format!("head GET /{i} HTTP/1.1 keep-alive"));
    }
    let expected: String = (0..100)
        .map(|i| echoed(&format!("GET /{i}"), None))
        .collect();
    assert_eq!(run.out, expected);
    assert!(!run.closed);
}

#[test]
fn leading_empty_lines_before_a_request_are_ignored() {
    // RFC 9112 §2.2: some clients send a CRLF after a POST body.
    let run = serve(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(run.seen[3], "head GET /b HTTP/1.1 keep-alive");
}

// ---------------------------------------------------------------- responses

#[test]
fn head_response_has_headers_but_no_body() {
    let run = serve(b"HEAD /file HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    // echo_target writes Content-Length: 10 and 10 body bytes; only the head goes out.
    assert_eq!(
        run.out,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
            echoed("GET /next", None)
        )
    );
    assert!(run.notes.is_empty(), "{:?}", run.notes);
}

#[test]
fn chunked_response_and_bodiless_statuses() {
    let respond = |head: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        let results = match head.path() {
            "/chunked" => vec![
                conn.write_response_head(
                    200,
                    "OK",
                    &[
                        ("Content-Type", "text/plain"),
                        ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ],
                    BodyFraming::Chunked,
                    out,
                ),
                conn.write_body(b"hello ", out),
                conn.write_body(b"", out),
                conn.write_body(b"chunked world", out),
                conn.finish_response(out),
            ],
            "/204" => vec![
                conn.write_response_head(204, "No Content", &[], BodyFraming::Length(3), out),
                conn.write_response_head(204, "No Content", &[], BodyFraming::Empty, out),
                conn.write_body(b"x", out),
                conn.finish_response(out),
            ],
            _ => vec![
                conn.write_response_head(
                    304,
                    "Not Modified",
                    &[("ETag", "\"v1\"")],
                    BodyFraming::Empty,
                    out,
                ),
                conn.finish_response(out),
            ],
        };
        notes_of(&results)
    };
    let run = serve_with(
        b"GET /chunked HTTP/1.1\r\nHost: h\r\n\r\nGET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\n",
        Opts::default(),
        &respond,
    );
    assert_eq!(
        run.out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\nd\r\nchunked world\r\n0\r\n\r\n\
         HTTP/1.1 204 No Content\r\n\r\n\
         HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
    );
    assert_eq!(run.notes, ["BodyNotAllowed,BodyNotAllowed"]);
    assert!(!run.closed);
}

#[test]
fn response_usage_errors() {
    let respond = |_: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        let mut notes = vec![
            conn.write_body(b"early", out),
            conn.finish_response(out),
            conn.write_response_head(101, "Switching", &[], BodyFraming::Empty, out),
            conn.write_response_head(200, "OK", &[("X", "a\r\nb")], BodyFraming::Empty, out),
            conn.write_response_head(
                200,
                "OK",
                &[("content-length", "1")],
                BodyFraming::Empty,
                out,
            ),
            conn.write_response_head(200, "O\nK", &[], BodyFraming::Empty, out),
            conn.write_response_head(200, "OK", &[], BodyFraming::Length(4), out),
            conn.write_response_head(200, "OK", &[], BodyFraming::Length(4), out),
            conn.write_body(b"12345", out),
            conn.write_body(b"12", out),
        ];
        // Two bytes short of the promised four: the framing is broken, so it must close.
        notes.push(conn.finish_response(out));
        notes.push(conn.write_body(b"34", out));
        notes_of(&notes)
    };
    let run = serve_with(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        Opts::default(),
        &respond,
    );
    assert_eq!(
        run.notes,
        [
            "NoHead,NoHead,InvalidStatus,InvalidHeader,ReservedHeader,InvalidHeader,\
          HeadAlreadyWritten,BodyTooLong,BodyTooShort,Closed"
        ]
    );
    assert_eq!(run.out, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n12");
    assert!(run.closed);
}

#[test]
fn responding_without_a_request_is_a_usage_error() {
    let mut conn = ServerConn::default();
    let mut out = Vec::new();
    let got = conn.write_response_head(200, "OK", &[], BodyFraming::Empty, &mut out);
    assert_eq!(got, Err(UsageError::NoRequest));
    assert!(!conn.write_continue(&mut out));
    assert!(out.is_empty());
}

// ---------------------------------------------------------------- keep-alive

#[test]
fn keep_alive_matrix() {
    let cases: [(&str, &str, bool, Option<&str>); 8] = [
        ("HTTP/1.1", "", true, None),
        ("HTTP/1.1", "Connection: close\r\n", false, Some("close")),
        (
            "HTTP/1.1",
            "Connection: Keep-Alive, CLOSE\r\n",
            false,
            Some("close"),
        ),
        ("HTTP/1.1", "Connection: keep-alive\r\n", true, None),
        ("HTTP/1.0", "", false, Some("close")),
        (
            "HTTP/1.0",
            "Connection: keep-alive\r\n",
            true,
            Some("keep-alive"),
        ),
        (
            "HTTP/1.0",
            "Connection: foo,  Keep-Alive \r\n",
            true,
            Some("keep-alive"),
        ),
        (
            "HTTP/1.0",
            "Connection: keep-alive\r\nConnection: close\r\n",
            false,
            Some("close"),
        ),
    ];
    for (version, field, keep_alive, header) in cases {
        let input = format!("GET / {version}\r\nHost: h\r\n{field}\r\n");
        let run = serve(input.as_bytes());
        let state = if keep_alive { "keep-alive" } else { "close" };
        assert_eq!(
            run.seen[0],
            format!("head GET / {version} {state}"),
            "{input:?}"
        );
        assert_eq!(run.out, echoed("GET /", header), "{input:?}");
        assert_eq!(run.closed, !keep_alive, "{input:?}");
    }
}

#[test]
fn nothing_after_a_closing_request_is_served() {
    let run = serve(
        b"GET /1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!(run.seen, ["head GET /1 HTTP/1.1 close", "end"]);
    assert_eq!(run.out, echoed("GET /1", Some("close")));
    assert!(run.closed);
}

#[test]
fn chunked_response_to_http10_is_close_delimited() {
    let respond = |_: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        notes_of(&[
            conn.write_response_head(200, "OK", &[], BodyFraming::Chunked, out),
            conn.write_body(b"raw bytes", out),
            conn.finish_response(out),
        ])
    };
    let input = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let run = serve_with(input, Opts::default(), &respond);
    assert_eq!(
        run.out,
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nraw bytes"
    );
    assert!(run.closed);
}

#[test]
fn close_after_response_adds_connection_close() {
    let respond = |head: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        conn.close_after_response();
        echo_target(head, conn, out)
    };
    let run = serve_with(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
        Opts::default(),
        &respond,
    );
    assert_eq!(run.out, echoed("GET /", Some("close")));
    assert!(run.closed);
}

// ---------------------------------------------------------------- EOF

#[test]
fn eof_between_requests_closes_cleanly() {
    let opts = Opts {
        eof: true,
        ..Opts::default()
    };
    let run = serve_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", opts, &echo_target);
    assert_eq!(run.seen, ["head GET / HTTP/1.1 keep-alive", "end"]);
    assert_eq!(run.out, echoed("GET /", None));
    assert!(run.closed);
}

#[test]
fn half_closed_client_still_gets_its_response() {
    // The request head arrives, then EOF, and only then does the server answer.
    let mut conn = ServerConn::default();
    let mut out = Vec::new();
    let run = same_every_split(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", |pieces| {
        conn = ServerConn::default();
        out.clear();
        for piece in pieces {
            conn.handle_bytes(piece);
        }
        conn.handle_eof();
        let mut seen = Vec::new();
        while let Ok(Some(event)) = conn.poll_event() {
            seen.push(matches!(event, Event::Request(_)));
        }
        seen
    });
    assert_eq!(run, [true, false]);
    assert!(!conn.is_closed(), "the response is still owed");
    assert!(!conn.wants_read());
    conn.write_response_head(200, "OK", &[], BodyFraming::Empty, &mut out)
        .unwrap();
    conn.finish_response(&mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert!(conn.is_closed());
}

#[test]
fn eof_in_the_middle_of_a_request_is_400() {
    let opts = Opts {
        eof: true,
        ..Opts::default()
    };
    let run = serve_with(b"GET / HTTP/1.1\r\nHost:", opts, &echo_target);
    assert_eq!(
        run.seen,
        ["error 400: connection closed in the middle of a request"]
    );
    assert!(run.out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    let run = serve_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc",
        opts,
        &echo_target,
    );
    assert_eq!(
        run.seen.last().unwrap(),
        "error 400: connection closed in the middle of a request"
    );
    assert!(run.closed);
}

// ---------------------------------------------------------------- Expect: 100-continue

#[test]
fn expect_100_continue_is_answered_once() {
    let respond = |head: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        format!(
            "{} {} {}",
            head.expects_continue(),
            conn.write_continue(out),
            conn.write_continue(out)
        )
    };
    let opts = Opts {
        at_head: true,
        ..Opts::default()
    };
    let head = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
    let run = serve_with(head, opts, &respond);
    assert_eq!(
        run.seen,
        ["head PUT /f HTTP/1.1 keep-alive expect-100 length=4"]
    );
    assert_eq!(run.notes, ["true true false"]);
    assert_eq!(run.out, "HTTP/1.1 100 Continue\r\n\r\n");
    assert!(!run.closed);
}

#[test]
fn no_100_continue_once_the_body_has_started() {
    // The client did not wait: the body's first bytes are already here.
    let input =
        b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nab";
    let sent = same_every_split(input, |pieces| {
        let mut conn = ServerConn::default();
        for piece in pieces {
            conn.handle_bytes(piece);
            while let Ok(Some(_)) = conn.poll_event() {}
        }
        let mut out = Vec::new();
        (conn.write_continue(&mut out), out)
    });
    assert_eq!(sent, (false, Vec::new()));
    // Same, but asked at the Request event, before the body bytes were turned into events.
    let sent = same_every_split(input, |pieces| {
        let mut conn = ServerConn::default();
        for piece in pieces {
            conn.handle_bytes(piece);
        }
        let first = conn.poll_event();
        let mut out = Vec::new();
        (
            matches!(first, Ok(Some(Event::Request(_)))),
            conn.write_continue(&mut out),
        )
    });
    assert_eq!(sent, (true, false));
}

#[test]
fn refusing_a_100_continue_body_closes_the_connection() {
    let respond = |_: &RequestHead, conn: &mut ServerConn, out: &mut Vec<u8>| {
        notes_of(&[
            conn.write_response_head(413, "Content Too Large", &[], BodyFraming::Empty, out),
            conn.finish_response(out),
        ])
    };
    let opts = Opts {
        at_head: true,
        ..Opts::default()
    };
    let head = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let run = serve_with(head, opts, &respond);
    assert_eq!(
        run.out,
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert!(run.closed);
}

#[test]
fn expect_is_ignored_in_http10_and_without_a_body() {
    let run = serve(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(run.seen[0], "head PUT / HTTP/1.0 close length=1");
    let run = serve(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(run.seen[0], "head GET / HTTP/1.1 keep-alive");
}

#[test]
fn responding_early_still_reads_the_rest_of_the_body() {
    // A 404 written before the body arrived: the body is read (and reported) to find the
    // next request, and the connection stays open.
    let opts = Opts {
        at_head: true,
        ..Opts::default()
    };
    let run = serve_with(
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /y HTTP/1.1\r\nHost: h\r\n\r\n",
        opts,
        &echo_target,
    );
    assert_eq!(
        run.seen,
        [
            "head POST /x HTTP/1.1 keep-alive length=3",
            "body abc",
            "end",
            "head GET /y HTTP/1.1 keep-alive",
            "end"
        ]
    );
    assert_eq!(
        run.out,
        [echoed("POST /x", None), echoed("GET /y", None)].concat()
    );
}

// ---------------------------------------------------------------- smuggling and bad input

/// Serves `input` and checks it is refused with `status` and the connection closes.
#[track_caller]
fn refused(input: &[u8], status: u16) -> String {
    let run = serve(input);
    let error = run.seen.last().cloned().unwrap_or_default();
    assert!(
        error.starts_with(&format!("error {status}")),
        "{:?}: {:?}",
        String::from_utf8_lossy(input),
        run.seen
    );
    assert!(
        run.out.ends_with(&format!("\n{}\n", &error[11..])),
        "the error response carries the reason: {:?}",
        run.out
    );
    assert!(run.out.contains("Connection: close\r\n"));
    assert!(run.closed);
    error
}

#[test]
fn content_length_and_transfer_encoding_together_is_400() {
    refused(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    refused(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        400,
    );
}

#[test]
fn content_length_smuggling() {
    let cl = |values: &[&str]| {
        let fields: String = values
            .iter()
            .map(|v| format!("Content-Length: {v}\r\n"))
            .collect();
        format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\nhello")
    };
    refused(cl(&["5", "6"]).as_bytes(), 400);
    refused(cl(&["5, 6"]).as_bytes(), 400);
    refused(cl(&["abc"]).as_bytes(), 400);
    refused(cl(&["-5"]).as_bytes(), 400);
    refused(cl(&["+5"]).as_bytes(), 400);
    refused(cl(&["18446744073709551616"]).as_bytes(), 400);
    // The same length twice, in one line or two, is one length (RFC 9112 §6.3 item 5).
    for same in [cl(&["5", "5"]), cl(&["5, 5"])] {
        let run = serve(same.as_bytes());
        assert_eq!(run.seen[1..], ["body hello", "end"]);
    }
}

#[test]
fn transfer_encoding_must_be_exactly_a_final_chunked() {
    let te = |value: &str| {
        format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {value}\r\n\r\n0\r\n\r\n")
    };
    refused(te("chunked, gzip").as_bytes(), 400);
    refused(te("identity").as_bytes(), 400);
    refused(te("chunked, chunked").as_bytes(), 400);
    refused(te("").as_bytes(), 400);
    refused(te("gzip, chunked").as_bytes(), 501);
    refused(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        501,
    );
    let run = serve(te("Chunked").as_bytes());
    assert_eq!(run.seen, ["head POST / HTTP/1.1 keep-alive chunked", "end"]);
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    refused(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn malformed_heads_are_400() {
    refused(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n",
        400,
    );
    refused(b"GET / HTTP/1.1\nHost: h\n\n", 400);
    refused(b"GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    refused(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400);
    refused(b"G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    // HTTP/1.0 needs no Host.
    let run = serve(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(run.seen, ["head GET / HTTP/1.0 close", "end"]);
}

/// A head that arrives whole is parsed in place by httparse and checked per line (the fast
/// path); one that arrives in pieces goes through the line scanner first. `serve` feeds
/// every input both ways and asserts they agree: these are the inputs where they could
/// differ, the line ends httparse accepts and the scanner does not.
#[test]
fn whole_and_piecemeal_heads_agree_on_every_line_end() {
    for bad in [
        &b"GET / HTTP/1.1\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: 1\nY: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h  \n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX:\n\r\n",
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\n\r\n",
    ] {
        let run = serve(bad);
        assert!(
            run.seen.last().is_some_and(|e| e.starts_with("error 400")),
            "{:?}: {:?}",
            String::from_utf8_lossy(bad),
            run.seen
        );
    }
    for good in [
        &b"GET / HTTP/1.1\r\nHost: h  \r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nX:\r\nY: \t\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /?a=b#c HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let run = serve(good);
        assert_eq!(
            run.seen.last().map(String::as_str),
            Some("end"),
            "{:?}",
            run.seen
        );
    }
}

#[test]
fn unknown_http_version_is_505() {
    refused(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    refused(b"GET / HTTP/3.1\r\nHost: h\r\n\r\n", 505);
    refused(b"GET / FTP/1.1\r\nHost: h\r\n\r\n", 400);
}

#[test]
fn broken_chunked_bodies_are_400() {
    let chunked = |body: &str| {
        format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
    };
    refused(chunked("5\nhello\r\n0\r\n\r\n").as_bytes(), 400);
    refused(chunked("5\r\nhello\n0\r\n\r\n").as_bytes(), 400);
    refused(chunked("zz\r\nhello\r\n0\r\n\r\n").as_bytes(), 400);
    refused(chunked("5\r\nhelloXX0\r\n\r\n").as_bytes(), 400);
    refused(chunked("00000000000000000005\r\nhello\r\n").as_bytes(), 400);
    refused(chunked("0\r\nX: 1\nY: 2\r\n\r\n").as_bytes(), 400);
    // The error comes after the body bytes that were fine.
    let error = refused(chunked("3\r\nabc\r\n3\r\ndefXY").as_bytes(), 400);
    assert_eq!(error, "error 400: chunk data not followed by CRLF");
}

#[test]
fn a_space_inside_the_target_is_400_not_505() {
    // httparse ends the target at the first space and reads the rest as the version; the
    // fault is the request line's shape (RFC 9112 §3), not an unsupported version.
    for line in [
        "GET /a b HTTP/1.1",
        "GET /foo bar/ HTTP/1.1",
        "GET /a b c HTTP/1.0",
    ] {
        let error = refused(format!("{line}\r\nHost: h\r\n\r\n").as_bytes(), 400);
        assert_eq!(error, "error 400: space in request-target", "{line}");
    }
    // A well-formed request line with a version we do not speak is still 505.
    refused(b"GET /a%20b HTTP/2.0\r\nHost: h\r\n\r\n", 505);
}

#[test]
fn non_ascii_bytes_in_the_target_are_400() {
    // UTF-8 (llhttp's "Disallow UTF-8 in URI path" case): RFC 3986 is ASCII only.
    let error = refused(
        "GET /\u{3b4}\u{b6}/pope?q=1 HTTP/1.1\r\nHost: h\r\n\r\n".as_bytes(),
        400,
    );
    assert_eq!(error, "error 400: non-ASCII byte in request-target");
    refused(b"GET /?q=\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    // Not UTF-8 at all: httparse refuses it itself.
    refused(b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    // Percent-encoded, and visible ASCII that browsers leave unencoded in queries, pass.
    for target in ["/%CE%B4", "/q?a={b}|c^d"] {
        let run = serve(format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        assert_eq!(
            run.seen,
            [
                format!("head GET {target} HTTP/1.1 keep-alive"),
                "end".into()
            ]
        );
    }
}

#[test]
fn chunk_extension_syntax_is_checked() {
    let chunked = |body: &str| {
        format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
    };
    // RFC 9112 §7.1.1: `chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )`.
    for (body, reason) in [
        ("2;\r\naa\r\n0\r\n\r\n", "chunk extension without a name"),
        ("2;;a\r\naa\r\n0\r\n\r\n", "chunk extension without a name"),
        ("2;a=\r\naa\r\n0\r\n\r\n", "chunk extension cut short"),
        (
            "2;a@b\r\naa\r\n0\r\n\r\n",
            "invalid byte in chunk extension",
        ),
        (
            "5;ilovew3=\"abc\";somuchlove=\"def; ghi\r\nhello\r\n0\r\n\r\n",
            "unterminated quoted string in chunk extension",
        ),
        // BWS is allowed only before `;` (or `=`): whitespace then CRLF is not.
        (
            "a \r\n0123456789\r\n0\r\n\r\n",
            "whitespace after chunk size or extension not followed by ;",
        ),
        (
            "2;a=b\t\r\naa\r\n0\r\n\r\n",
            "whitespace after chunk size or extension not followed by ;",
        ),
    ] {
        let error = refused(chunked(body).as_bytes(), 400);
        assert_eq!(error, format!("error 400: {reason}"), "{body:?}");
    }
    // What the grammar allows: BWS around `;` and `=`, token and quoted values.
    let run = serve(chunked("2 ; a = b ;c;d=\"x;\\\"y\"\r\naa\r\n0;e\r\n\r\n").as_bytes());
    assert_eq!(
        run.seen,
        ["head POST / HTTP/1.1 keep-alive chunked", "body aa", "end"]
    );
}

#[test]
fn an_error_stops_pipelined_requests() {
    let run = serve(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/9.9\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
    );
    assert_eq!(
        run.seen,
        [
            "head GET /1 HTTP/1.1 keep-alive",
            "end",
            "error 505: HTTP version not supported"
        ]
    );
    assert!(run.out.starts_with(&echoed("GET /1", None)));
    assert!(run.closed);
}

// ---------------------------------------------------------------- limits

fn small_limits() -> Limits {
    Limits {
        max_target_bytes: 128,
        max_header_bytes: 256,
        max_headers: 8,
        max_body_bytes: 64,
    }
}

#[test]
fn a_long_request_line_fails_at_the_limit_without_buffering_more() {
    let limits = small_limits();
    let mut input = b"GET /".to_vec();
    input.extend(std::iter::repeat_n(b'a', 400));
    let run = same_every_split(&input, |pieces| {
        let mut conn = ServerConn::new(limits);
        let biggest = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut fed = 0;
        let mut failed_after = None;
        let mut bounded = true;
        for piece in pieces {
            conn.handle_bytes(piece);
            fed += piece.len();
            // Vec doubles as it grows: twice the bound is the most it can have reserved.
            bounded &= conn.buffer_capacity() <= 2 * (limits.max_head_bytes() + biggest);
            match conn.poll_event() {
                Ok(None) => {}
                other => {
                    failed_after.get_or_insert((fed - piece.len(), other));
                }
            }
        }
        let (before, error) = failed_after.expect("the line is refused");
        // It failed on the piece that crossed the limit, not later.
        assert!(
            before <= limits.max_request_line(),
            "fed {before} before failing"
        );
        (error, bounded, conn.buffer_capacity(), conn.buffered())
    });
    assert_eq!(run, (Err(HttpError::TargetTooLong), true, 0, 0));
}

#[test]
fn a_long_complete_target_is_414() {
    let mut input = b"GET /".to_vec();
    input.extend(std::iter::repeat_n(b'a', 200));
    input.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    let run = serve_with(
        &input,
        Opts {
            limits: small_limits(),
            ..Opts::default()
        },
        &echo_target,
    );
    assert_eq!(run.seen, ["error 414: request-target too long"]);
    assert!(run.out.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
}

#[test]
fn header_section_limits_are_431() {
    let opts = Opts {
        limits: small_limits(),
        ..Opts::default()
    };
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nCookie: {}\r\n\r\n",
        "c".repeat(300)
    );
    let run = serve_with(big.as_bytes(), opts, &echo_target);
    assert_eq!(run.seen, ["error 431: header section too large"]);
    // Unterminated: refused as soon as the section passes the limit.
    let endless = format!("GET / HTTP/1.1\r\nHost: h\r\nCookie: {}", "c".repeat(300));
    let run = serve_with(endless.as_bytes(), opts, &echo_target);
    assert_eq!(run.seen, ["error 431: header section too large"]);
    let many: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
    let run = serve_with(
        format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(),
        opts,
        &echo_target,
    );
    assert_eq!(run.seen, ["error 431: too many header fields"]);
    assert!(
        run.out
            .starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")
    );
    // Eight fields is the limit, not over it.
    let eight: String = (0..7).map(|i| format!("X-{i}: v\r\n")).collect();
    let run = serve_with(
        format!("GET / HTTP/1.1\r\nHost: h\r\n{eight}\r\n").as_bytes(),
        opts,
        &echo_target,
    );
    assert_eq!(run.seen, ["head GET / HTTP/1.1 keep-alive", "end"]);
}

#[test]
fn body_too_large_is_413_by_length_and_by_chunked_total() {
    let opts = Opts {
        limits: small_limits(),
        ..Opts::default()
    };
    // Refused from the head alone: no body byte is needed.
    let run = serve_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n",
        opts,
        &echo_target,
    );
    assert_eq!(run.seen, ["error 413: request body too large"]);
    assert!(run.out.starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    let fits = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 64\r\n\r\n{}",
        "b".repeat(64)
    );
    assert_eq!(
        serve_with(fits.as_bytes(), opts, &echo_target).seen.len(),
        3
    );
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{0}\r\n20\r\n{0}\r\n1\r\nx\r\n0\r\n\r\n",
        "b".repeat(32)
    );
    let run = serve_with(chunked.as_bytes(), opts, &echo_target);
    assert_eq!(
        run.seen.last().unwrap(),
        "error 413: request body too large"
    );
    assert_eq!(run.seen[1], format!("body {}", "b".repeat(64)));
}

#[test]
fn reading_pauses_while_pipelined_requests_wait_for_responses() {
    let limits = small_limits();
    let burst: Vec<u8> = (0..40)
        .flat_map(|i| format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
        .collect();
    let waits = same_every_split(&burst, |pieces| {
        let mut conn = ServerConn::new(limits);
        let biggest = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut heads = 0;
        for piece in pieces {
            if !conn.wants_read() {
                // A well-behaved glue stops reading here.
                break;
            }
            conn.handle_bytes(piece);
            while let Ok(Some(event)) = conn.poll_event() {
                heads += usize::from(matches!(event, Event::Request(_)));
            }
        }
        let bounded = conn.buffered() <= limits.max_head_bytes() + biggest;
        (heads, conn.wants_read(), bounded)
    });
    // Nobody answered the first request, so nothing else was parsed, and reading paused
    // with no more than a head's worth and one read buffered.
    assert_eq!(waits, (1, false, true));
}

#[test]
fn idle_means_between_requests_with_nothing_buffered() {
    let mut conn = ServerConn::default();
    assert!(conn.is_idle(), "a new connection is idle");
    conn.handle_bytes(b"GET / HTTP/1.1\r\nHo");
    assert!(matches!(conn.poll_event(), Ok(None)));
    assert!(!conn.is_idle(), "half a head is state");
    conn.handle_bytes(b"st: x\r\n\r\nGET /2 HTTP/1.1\r\n");
    let mut out = Vec::new();
    while let Ok(Some(event)) = conn.poll_event() {
        if let Event::RequestEnd(_) = event {
            conn.write_response_head(204, "No Content", &[], BodyFraming::Empty, &mut out)
                .expect("head");
            conn.finish_response(&mut out).expect("finish");
        }
    }
    assert!(!conn.is_idle(), "the next head has begun");
    conn.handle_bytes(b"Host: x\r\n\r\n");
    while let Ok(Some(event)) = conn.poll_event() {
        assert!(!conn.is_idle(), "an exchange is under way");
        if let Event::RequestEnd(_) = event {
            conn.write_response_head(204, "No Content", &[], BodyFraming::Empty, &mut out)
                .expect("head");
            conn.finish_response(&mut out).expect("finish");
        }
    }
    assert!(conn.is_idle(), "both answered, nothing buffered");
    conn.handle_eof();
    assert!(!conn.is_idle(), "the peer closed");
}

#[test]
fn a_header_block_writes_the_same_bytes_as_the_header_list() {
    let headers = [
        ("Date", "Wed, 25 Nov 2026 10:00:00 GMT"),
        ("Server", "netloop"),
    ];
    // One block for a run of responses, as a server uses it for a second: every head must
    // be what the header list writes, whether it repeats the one before (the block's
    // remembered head) or differs from it in any part.
    let mut block = HeaderBlock::new(&headers).expect("valid");
    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const GET_10: &[u8] = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    use BodyFraming::{Chunked, Empty, Length};
    #[rustfmt::skip]
    let run = [
        (GET, 200, "OK", Length(2)),
        (GET, 200, "OK", Length(2)),
        (GET, 200, "OK", Length(3)),
        (GET, 200, "Fine", Length(3)),
        (GET, 404, "Not Found", Length(3)),
        (GET_10, 404, "Not Found", Length(3)),
        (GET_CLOSE, 404, "Not Found", Length(3)),
        (GET, 200, "OK", Chunked),
        (GET, 204, "No Content", Empty),
        (GET, 200, "OK", Empty),
        (GET, 200, "OK", Length(2)),
    ];
    for (request, status, reason, body) in run {
        let mut by_list = Vec::new();
        let mut by_block = Vec::new();
        for (conn_out, use_block) in [(&mut by_list, false), (&mut by_block, true)] {
            let mut conn = ServerConn::default();
            conn.handle_bytes(request);
            let _ = conn.poll_event().expect("request");
            if use_block {
                conn.write_response_head_block(status, reason, &mut block, body, conn_out)
            } else {
                conn.write_response_head(status, reason, &headers, body, conn_out)
            }
            .expect("head");
        }
        assert_eq!(
            String::from_utf8_lossy(&by_block),
            String::from_utf8_lossy(&by_list),
            "{status} {reason} {body:?} after {:?}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(
        HeaderBlock::new(&[("X-Bad", "a\r\nInjected: 1")]),
        Err(UsageError::InvalidHeader)
    );
    assert_eq!(
        HeaderBlock::new(&[("Content-Length", "5")]),
        Err(UsageError::ReservedHeader)
    );
}

#[test]
fn a_header_block_refuses_a_reason_phrase_that_would_break_the_line() {
    // The phrase is checked where a head is rendered, not when a remembered one is copied:
    // a phrase that breaks the line is refused before anything is written, whatever the
    // block remembers.
    let mut block = HeaderBlock::new(&[("Server", "netloop")]).expect("valid");
    for reason in ["OK", "O\r\nInjected: 1", "OK"] {
        let mut conn = ServerConn::default();
        conn.handle_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let _ = conn.poll_event().expect("request");
        let mut out = Vec::new();
        let got =
            conn.write_response_head_block(200, reason, &mut block, BodyFraming::Empty, &mut out);
        if reason == "OK" {
            assert_eq!(got, Ok(()));
            assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        } else {
            assert_eq!(got, Err(UsageError::InvalidHeader));
            assert!(out.is_empty(), "nothing written: {out:?}");
        }
    }
}

#[test]
fn decimals() {
    for n in [
        0u64,
        7,
        10,
        42,
        99,
        100,
        101,
        999,
        1000,
        65_535,
        20_971_520,
        u64::MAX,
    ] {
        let mut out = Vec::new();
        crate::http::response::write_decimal(n, &mut out);
        assert_eq!(out, n.to_string().as_bytes());
    }
}
