//! HTTP/1.1 response framing ([`ClientConn`]): byte 0 says how many responses are expected
//! (1-4) and which answer a HEAD; then the split sizes (see `common.rs`) and the server's
//! bytes, followed by EOF.
//!
//! Properties:
//! - whole and split give the same events and the same error;
//! - never more body bytes out than bytes in, and a `Content-Length` body is exactly that
//!   long; no body for a HEAD, a 204 or a 304;
//! - never more final responses than requests, and none after `End { keep_alive: false }`;
//! - heads hold no more fields than the limit.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{pieces, split};
use netloop_protocols::http::{ClientConn, ClientLimits, ResponseEvent, ResponseFraming};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Head(u16, ResponseFraming, usize),
    Body(Vec<u8>),
    End(bool),
    Error(String),
}

fn run(heads: &[bool], chunks: &[&[u8]]) -> Vec<Ev> {
    let limits = ClientLimits::default();
    let mut conn = ClientConn::new(limits);
    for &head in heads {
        conn.expect_response(head);
    }
    let mut events = Vec::new();
    let poll = |conn: &mut ClientConn, mut input: &[u8], events: &mut Vec<Ev>| loop {
        let before = input.len();
        match conn.poll_event(&mut input) {
            Ok(None) => {
                assert!(input.is_empty(), "Ok(None) with input left");
                assert!(
                    conn.buffered() <= limits.max_head + 1,
                    "{} bytes buffered, past the head limit",
                    conn.buffered()
                );
                return true;
            }
            Ok(Some(ResponseEvent::Head(h))) => {
                assert!(
                    h.headers.len() <= limits.max_fields,
                    "more fields than the limit"
                );
                events.push(Ev::Head(h.status, h.framing, h.headers.len()));
            }
            Ok(Some(ResponseEvent::Body(b))) => {
                assert!(!b.is_empty(), "an empty Body event");
                assert!(b.len() <= before, "a body slice longer than the input");
                match events.last_mut() {
                    Some(Ev::Body(all)) => all.extend_from_slice(b),
                    _ => events.push(Ev::Body(b.to_vec())),
                }
            }
            Ok(Some(ResponseEvent::End { keep_alive })) => events.push(Ev::End(keep_alive)),
            Err(e) => {
                events.push(Ev::Error(format!("{e:?}")));
                return false;
            }
        }
    };
    for chunk in chunks {
        if !poll(&mut conn, chunk, &mut events) {
            return events;
        }
    }
    conn.handle_eof();
    poll(&mut conn, &[], &mut events);
    events
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&spec, rest)) = data.split_first() else {
        return;
    };
    let heads: Vec<bool> = (0..=usize::from(spec & 3))
        .map(|i| spec >> (2 + i) & 1 == 1)
        .collect();
    let (sizes, payload) = split(rest);
    let whole = run(&heads, &[payload]);
    let cut = run(&heads, &pieces(&sizes, payload));
    assert_eq!(whole, cut, "whole and split disagree");

    let mut total = 0;
    let mut responses = 0;
    let mut closed = false;
    let mut framing = None;
    let mut body = 0u64;
    for ev in &whole {
        match ev {
            Ev::Head(status, f, _) => {
                assert!(!closed, "a response after the connection's last");
                assert!(responses < heads.len(), "more responses than requests");
                if heads[responses] || *status == 204 || *status == 304 {
                    assert_eq!(*f, ResponseFraming::Empty, "a body where there is none");
                }
                responses += 1;
                framing = Some(*f);
                body = 0;
            }
            Ev::Body(b) => {
                total += b.len();
                body += b.len() as u64;
                assert!(
                    !matches!(framing, Some(ResponseFraming::Empty)),
                    "body bytes for a response without a body"
                );
            }
            Ev::End(keep_alive) => {
                if let Some(ResponseFraming::Length(n)) = framing {
                    assert_eq!(body, n, "a Content-Length body of another length");
                }
                closed |= !keep_alive;
            }
            Ev::Error(_) => {}
        }
    }
    assert!(total <= payload.len(), "more body bytes out than in");
});
