//! HTTP/1.1 request framing ([`ServerConn`]): the input is a byte of limits, the split
//! sizes (see `common.rs`) and a stream of requests.
//!
//! Properties:
//! - the same bytes whole or in the chosen pieces give the same events (errors included)
//!   and the same response bytes;
//! - the input buffer never holds more than `max_head_bytes` plus one read, no head has
//!   more fields or a longer target than the limits;
//! - a `Content-Length` body is exactly that long;
//! - every request the server accepted, written back out and parsed by a new connection,
//!   gives the same request (head, body and trailers).
#![no_main]

#[path = "common.rs"]
mod common;

use common::{HttpEvent, http_limits, pieces, reserialise, run_server, split};
use netloop_protocols::http::BodyFraming;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&limits, rest)) = data.split_first() else {
        return;
    };
    let limits = http_limits(limits);
    let (sizes, payload) = split(rest);
    let whole = run_server(limits, &[payload]);
    let cut = run_server(limits, &pieces(&sizes, payload));
    assert_eq!(whole.events, cut.events, "whole and split disagree");
    assert_eq!(whole.out, cut.out, "whole and split answer differently");

    // Every complete request: head, optional body, end.
    let mut i = 0;
    while i < whole.events.len() {
        let head = &whole.events[i];
        let HttpEvent::Head { framing, .. } = head else {
            i += 1;
            continue;
        };
        let (body, next) = match whole.events.get(i + 1) {
            Some(HttpEvent::Body(b)) => (b.as_slice(), i + 2),
            _ => (&[][..], i + 1),
        };
        let Some(HttpEvent::End(trailers)) = whole.events.get(next) else {
            break; // cut short by an error or EOF
        };
        if let BodyFraming::Length(n) = framing {
            assert_eq!(
                body.len() as u64,
                *n,
                "a Content-Length body of another length"
            );
        }
        if *framing == BodyFraming::Empty {
            assert!(body.is_empty(), "a body on a request without one");
        }
        let again = reserialise(head, body, trailers);
        // The defaults: ": " after each name may make the copy longer than small limits.
        let reparsed = run_server(netloop_protocols::http::Limits::default(), &[&again]);
        let mut expected = vec![head.clone()];
        if !body.is_empty() {
            expected.push(HttpEvent::Body(body.to_vec()));
        }
        expected.push(HttpEvent::End(trailers.clone()));
        assert_eq!(
            reparsed.events.get(..expected.len()),
            Some(expected.as_slice()),
            "re-serialised request {:?} parses differently",
            String::from_utf8_lossy(&again)
        );
        i = next + 1;
    }
});
