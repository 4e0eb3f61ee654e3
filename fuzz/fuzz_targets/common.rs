//! Shared by every target: how the fuzzer's input chooses the split points.
//!
//! Input layout: byte 0 says how many piece sizes follow (`% 16`); each of those bytes is a
//! piece size (`1..=256`), used in turn, cyclically, until the payload is used up; no sizes
//! means one piece. Every target compares feeding the payload whole with feeding it in
//! these pieces, so the fuzzer explores the split points along with the bytes.
#![allow(dead_code)]

/// The piece sizes and the payload.
pub fn split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(first % 16).min(rest.len());
    let sizes = rest[..n].iter().map(|&b| usize::from(b) + 1).collect();
    (sizes, &rest[n..])
}

/// `payload` cut into pieces by `sizes` (cyclically); one piece if `sizes` is empty.
pub fn pieces<'a>(sizes: &[usize], mut payload: &'a [u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![payload];
    }
    let mut out = Vec::new();
    let mut i = 0;
    while !payload.is_empty() {
        let n = sizes[i % sizes.len()].min(payload.len());
        out.push(&payload[..n]);
        payload = &payload[n..];
        i += 1;
    }
    out
}

/// Occurrences of `needle` in `hay`, overlapping ones included.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

use netloop_protocols::http::{BodyFraming, Event, Fields, Limits, ServerConn, Version};

/// One server event, owned, with the body pieces of a request merged (how a body is cut
/// into `Body` events depends on the reads, so only their concatenation is compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    /// A request head.
    Head {
        method: String,
        target: String,
        version: Version,
        headers: Vec<(String, Vec<u8>)>,
        framing: BodyFraming,
    },
    /// All the body bytes between the head and the end.
    Body(Vec<u8>),
    /// The end, with the trailers.
    End(Vec<(String, Vec<u8>)>),
    /// The connection failed (the error's Debug form).
    Error(String),
}

fn owned(fields: &Fields) -> Vec<(String, Vec<u8>)> {
    fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect()
}

/// What the server did with some reads: its events and its output.
pub struct HttpRun {
    pub events: Vec<HttpEvent>,
    pub out: Vec<u8>,
}

/// Feeds `pieces` to a [`ServerConn`] as the reactor would (a read only while
/// `wants_read`), answering every request with an empty 200 once it has ended, then EOF.
/// Asserts the input buffer bound that `wants_read` promises: at most
/// `Limits::max_head_bytes` plus one read.
pub fn run_server(limits: Limits, pieces: &[&[u8]]) -> HttpRun {
    let mut conn = ServerConn::new(limits);
    let mut run = HttpRun {
        events: Vec::new(),
        out: Vec::new(),
    };
    let mut failed = false;
    let drain = |conn: &mut ServerConn, run: &mut HttpRun, failed: &mut bool| {
        while !*failed {
            match conn.poll_event() {
                Ok(None) => break,
                Ok(Some(Event::Request(head))) => {
                    let headers = owned(head.headers());
                    assert!(
                        headers.len() <= limits.max_headers,
                        "more fields than the limit"
                    );
                    assert!(
                        head.target().len() <= limits.max_target_bytes,
                        "a target over the limit"
                    );
                    run.events.push(HttpEvent::Head {
                        method: head.method().to_string(),
                        target: head.target().to_string(),
                        version: head.version(),
                        headers,
                        framing: head.body(),
                    });
                }
                Ok(Some(Event::Body(bytes))) => {
                    assert!(!bytes.is_empty(), "an empty Body event");
                    match run.events.last_mut() {
                        Some(HttpEvent::Body(b)) => b.extend_from_slice(&bytes),
                        _ => run.events.push(HttpEvent::Body(bytes)),
                    }
                }
                Ok(Some(Event::RequestEnd(trailers))) => {
                    run.events.push(HttpEvent::End(owned(&trailers)));
                    conn.write_response_head(200, "OK", &[], BodyFraming::Length(0), &mut run.out)
                        .expect("a response head after RequestEnd");
                    conn.finish_response(&mut run.out)
                        .expect("finishing an empty response");
                }
                Err(e) => {
                    run.events.push(HttpEvent::Error(format!("{e:?}")));
                    conn.write_error(&e, &mut run.out);
                    *failed = true;
                }
            }
        }
    };
    let bound = limits.max_head_bytes();
    for piece in pieces {
        if failed || conn.is_closed() || !conn.wants_read() {
            break;
        }
        conn.handle_bytes(piece);
        assert!(
            conn.buffered() <= bound + piece.len(),
            "buffered {} > max_head_bytes {} + one read {}",
            conn.buffered(),
            bound,
            piece.len()
        );
        drain(&mut conn, &mut run, &mut failed);
    }
    if !failed && !conn.is_closed() {
        conn.handle_eof();
        drain(&mut conn, &mut run, &mut failed);
    }
    run
}

/// Limits chosen by one byte: the defaults, or small ones so the limit paths are reached.
pub fn http_limits(b: u8) -> Limits {
    if b & 1 == 0 {
        return Limits::default();
    }
    Limits {
        max_target_bytes: 8 + usize::from(b >> 1 & 7) * 16,
        max_header_bytes: 16 + usize::from(b >> 4 & 7) * 32,
        max_headers: 1 + usize::from(b >> 4 & 3),
        max_body_bytes: 64 << (b >> 6),
    }
}

/// Writes a request back out from its events: request line, each field, the body (one
/// chunk and the trailers, for a chunked one).
pub fn reserialise(head: &HttpEvent, body: &[u8], trailers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let HttpEvent::Head {
        method,
        target,
        version,
        headers,
        framing,
    } = head
    else {
        unreachable!("reserialise takes a head");
    };
    let mut out = Vec::new();
    let v = match version {
        Version::Http10 => "1.0",
        Version::Http11 => "1.1",
    };
    out.extend_from_slice(format!("{method} {target} HTTP/{v}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match framing {
        BodyFraming::Chunked => {
            if !body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            for (name, value) in trailers {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Length(_) | BodyFraming::Empty => out.extend_from_slice(body),
    }
    out
}
