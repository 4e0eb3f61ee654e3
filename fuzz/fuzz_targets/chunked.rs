//! The chunked decoder (http/body.rs), reached through [`ServerConn`]: a chunked `POST`
//! whose body is the fuzzer's, then a `GET /next`. Byte 0 picks the mode; then the split
//! sizes (see `common.rs`) and the body.
//!
//! - Raw mode (byte 0 even): the body bytes as they are. Properties: never more body bytes
//!   out than were fed; the body out is always a prefix of what a strict reference decoder
//!   (RFC 9112 §7.1, written here) reads from the same bytes, so nothing past the last
//!   chunk (trailers, the next request) is ever data; a body the server ends, the reference
//!   ends too, with the same data.
//! - Built mode (byte 0 odd): the payload is made into well-formed chunks (sizes in upper,
//!   lower case and with leading zeros, extensions, a trailer); the events must be exactly
//!   that body, its end, and the `GET /next`.
//!
//! In both, whole and split feeds give the same events.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{HttpEvent, pieces, run_server, split};
use netloop_protocols::http::{BodyFraming, Limits};

const HEAD: &[u8] = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

/// How far a strict reading of a chunked body got.
enum Outcome {
    /// The last chunk and the trailer section's empty line were read.
    Complete,
    /// The bytes ran out first.
    Incomplete,
    /// Not chunked coding.
    Invalid,
}

/// RFC 9112 §7.1, strictly: `1*HEXDIG *(SP/HTAB) [";" ext] CRLF`, data, CRLF; the last
/// chunk; trailer lines up to an empty line. Returns the data read so far.
fn reference(body: &[u8]) -> (Vec<u8>, Outcome) {
    let mut data = Vec::new();
    let mut i = 0;
    loop {
        // chunk-size
        let start = i;
        let mut size: u64 = 0;
        while i < body.len() && body[i].is_ascii_hexdigit() {
            if i - start >= 16 {
                return (data, Outcome::Invalid);
            }
            size = size * 16 + u64::from((body[i] as char).to_digit(16).unwrap());
            i += 1;
        }
        if i == body.len() {
            return (data, Outcome::Incomplete);
        }
        if i == start {
            return (data, Outcome::Invalid);
        }
        // extensions: anything printable (and tabs) up to CR
        while i < body.len() && body[i] != b'\r' && body[i] != b'\n' {
            if body[i] < 0x20 && body[i] != b'\t' || body[i] == 0x7f {
                return (data, Outcome::Invalid);
            }
            i += 1;
        }
        match body.get(i..i + 2) {
            None if body.len() - i < 2 && body[i..] == b"\r"[..body.len() - i] => {
                return (data, Outcome::Incomplete);
            }
            Some(b"\r\n") => i += 2,
            _ => return (data, Outcome::Invalid),
        }
        if size == 0 {
            break;
        }
        let available = (body.len() - i) as u64;
        if available < size {
            data.extend_from_slice(&body[i..]);
            return (data, Outcome::Incomplete);
        }
        data.extend_from_slice(&body[i..i + size as usize]);
        i += size as usize;
        match body.get(i..i + 2) {
            Some(b"\r\n") => i += 2,
            None if body[i..] == b"\r"[..body.len() - i] => return (data, Outcome::Incomplete),
            _ => return (data, Outcome::Invalid),
        }
    }
    // trailer section: lines up to an empty one
    loop {
        let Some(lf) = body[i..].iter().position(|&b| b == b'\n') else {
            return (data, Outcome::Incomplete);
        };
        let line = &body[i..i + lf];
        i += lf + 1;
        if line == b"\r" {
            return (data, Outcome::Complete);
        }
    }
}

/// Well-formed chunks from the fuzzer's bytes; returns the body and its data.
fn build(mut payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut body = Vec::new();
    let mut data = Vec::new();
    while let Some((&spec, rest)) = payload.split_first() {
        let n = usize::from(spec & 0x3f).min(rest.len());
        let (chunk, rest) = rest.split_at(n);
        payload = rest;
        if n == 0 {
            continue; // a zero size would be the last chunk
        }
        let size = match spec >> 6 {
            0 => format!("{n:x}"),
            1 => format!("{n:X}"),
            2 => format!("000{n:x}"),
            _ => format!("{n:x} ;ext=\"v\";e"),
        };
        body.extend_from_slice(size.as_bytes());
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
        data.extend_from_slice(chunk);
    }
    body.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    (body, data)
}

fn body_of(events: &[HttpEvent]) -> &[u8] {
    match events.get(1) {
        Some(HttpEvent::Body(b)) => b,
        _ => &[],
    }
}

fn first_ended(events: &[HttpEvent]) -> bool {
    events
        .iter()
        .take(3)
        .any(|e| matches!(e, HttpEvent::End(_)))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sizes, payload) = split(rest);
    let limits = Limits::default();
    let (body, expected) = if mode & 1 == 1 {
        let (b, d) = build(payload);
        (b, Some(d))
    } else {
        (payload.to_vec(), None)
    };
    let stream = [HEAD, &body, NEXT].concat();
    let whole = run_server(limits, &[&stream]);
    let cut = run_server(limits, &pieces(&sizes, &stream));
    assert_eq!(whole.events, cut.events, "whole and split disagree");
    assert!(
        matches!(
            &whole.events[0],
            HttpEvent::Head {
                framing: BodyFraming::Chunked,
                ..
            }
        ),
        "the fixed head: {:?}",
        whole.events[0]
    );
    let got = body_of(&whole.events);
    assert!(
        got.len() <= body.len() + NEXT.len(),
        "more body bytes out than in"
    );
    match expected {
        Some(expected) => {
            assert_eq!(
                got,
                &expected[..],
                "a well-formed chunked body decoded wrong"
            );
            assert!(first_ended(&whole.events), "a well-formed body did not end");
            assert!(
                whole
                    .events
                    .iter()
                    .any(|e| matches!(e, HttpEvent::Head { target, .. } if target == "/next")),
                "the request after the body was lost: {:?}",
                whole.events
            );
        }
        None => {
            // The server reads on into the next request when the body is cut short.
            let (reference, outcome) = reference(&[&body[..], NEXT].concat());
            assert!(
                reference.starts_with(got),
                "body bytes that a strict decoder does not read as data"
            );
            if first_ended(&whole.events) {
                assert!(
                    matches!(outcome, Outcome::Complete),
                    "the server ended a body the reference does not end"
                );
                assert_eq!(got, &reference[..], "an ended body with other data");
            }
        }
    }
});
