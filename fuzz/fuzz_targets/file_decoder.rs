//! The streaming base64 envelope reader ([`JsonBase64Decoder`]), against the whole-document
//! reader ([`decode_whole`], serde_json): the split sizes (see `common.rs`), then the
//! document, then EOF.
//!
//! Properties:
//! - whole and split give the same events (data pieces merged) and the same error, with
//!   the same bytes handed out before it;
//! - `End` comes once, last, followed by no error but trailing garbage; never more file
//!   bytes than three quarters of the document;
//! - a document both readers accept gives both the same name and bytes; one the whole
//!   reader refuses the streaming reader refuses too, except where the module doc says the
//!   streaming reader reads less of JSON (skipped values are not fully checked).
#![no_main]

#[path = "common.rs"]
mod common;

use common::{pieces, split};
use netloop_protocols::file::{DecodeError, Event, JsonBase64Decoder, MAX_NAME_BYTES, decode_whole};

#[derive(Debug, PartialEq, Eq, Default)]
struct Run {
    name: Option<String>,
    data: Vec<u8>,
    ended: bool,
    error: Option<DecodeError>,
}

fn run(chunks: &[&[u8]]) -> Run {
    let mut d = JsonBase64Decoder::new();
    let mut run = Run::default();
    // Takes the events, then the error after them, if any; true once there was one.
    let take = |d: &mut JsonBase64Decoder, run: &mut Run| loop {
        let e = match d.poll_event() {
            Ok(Some(e)) => e,
            Ok(None) => return false,
            Err(e) => {
                assert_eq!(d.poll_event(), Err(e.clone()), "the error stays");
                run.error = Some(e);
                return true;
            }
        };
        assert!(!run.ended, "an event after End");
        match e {
            Event::FileName(n) => {
                assert!(run.name.is_none(), "two names");
                run.name = Some(n);
            }
            Event::Data(b) => {
                assert!(!b.is_empty(), "an empty Data event");
                run.data.extend_from_slice(&b);
            }
            Event::End => run.ended = true,
        }
    };
    for chunk in chunks {
        d.handle_bytes(chunk);
        let failed = take(&mut d, &mut run);
        // A key ("filename" and "filedata" are the longest that matter, plus one byte to
        // tell a longer one), the name, one unfinished base64 group: nothing of the file.
        assert!(
            d.buffered() <= "filedata".len() + 1 + MAX_NAME_BYTES + 3,
            "{} bytes buffered",
            d.buffered()
        );
        if failed {
            return run;
        }
    }
    d.handle_eof();
    take(&mut d, &mut run);
    run
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (sizes, payload) = split(data);
    let whole = run(&[payload]);
    let cut = run(&pieces(&sizes, payload));
    // Errors included: the bytes decoded before an error go out whatever the reads.
    assert_eq!(whole, cut, "whole and split disagree");
    assert!(
        whole.data.len() <= payload.len() / 4 * 3,
        "more bytes out than base64 holds"
    );
    if whole.ended {
        // The document is complete at its `}`; only bytes after it can still be wrong.
        assert!(
            matches!(
                whole.error,
                None | Some(DecodeError::TrailingGarbage { .. })
            ),
            "End, then {:?}",
            whole.error
        );
        assert!(whole.name.is_some(), "End without a name");
    }
    let ok = whole.ended && whole.error.is_none();
    match decode_whole(payload) {
        Ok((name, bytes)) => {
            if ok {
                assert_eq!(
                    whole.name.as_deref(),
                    Some(name.as_str()),
                    "the two readers' names"
                );
                assert_eq!(whole.data, bytes, "the two readers' bytes");
            }
        }
        Err(e) => {
            // The streaming reader reads less of JSON than serde_json; where it accepts
            // what serde_json refuses, the reason must be one the module doc names.
            if ok {
                assert!(
                    matches!(
                        e,
                        DecodeError::InvalidJson { .. } | DecodeError::UnexpectedEof
                    ),
                    "the streaming reader accepted what decode_whole refuses with {e:?}"
                );
            }
        }
    }
});
