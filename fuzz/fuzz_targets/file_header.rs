//! The file-transfer header lines ([`RequestReader`], and the client's reader of the
//! `get` reply header): the split sizes (see `common.rs`), then the bytes.
//!
//! Properties:
//! - whole and split give the same result and consume the same bytes (up to and including
//!   the header's LF; the rest is the body);
//! - a request the server accepts, written out again with [`Request::write_line`] and read
//!   by a new reader, is the same request; likewise a `get` reply header;
//! - a line over `MAX_JSON_LINE` is never accepted.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{pieces, split};
use netloop_protocols::file::{
    FileHeader, JsonLine, JsonLineReader, LineError, MAX_JSON_LINE, Reply,
};

fn read<T: JsonLine>(chunks: &[&[u8]]) -> (Option<Result<T, LineError>>, usize) {
    let mut r = JsonLineReader::<T>::new();
    let mut consumed = 0;
    let mut result = None;
    for chunk in chunks {
        let n = r.handle_bytes(chunk);
        assert!(n <= chunk.len());
        consumed += n;
        if let Some(got) = r.poll_event().transpose() {
            result = Some(got);
            break;
        }
        assert_eq!(n, chunk.len(), "bytes left over before the line ended");
    }
    if result.is_none() {
        r.handle_eof();
        result = r.poll_event().transpose();
    }
    (result, consumed)
}

fn check<T: JsonLine + PartialEq + std::fmt::Debug>(
    sizes: &[usize],
    payload: &[u8],
    write: impl Fn(&T, &mut Vec<u8>),
) {
    let (whole, n_whole) = read::<T>(&[payload]);
    let (cut, n_cut) = read::<T>(&pieces(sizes, payload));
    assert_eq!(
        format!("{whole:?}"),
        format!("{cut:?}"),
        "whole and split disagree"
    );
    assert_eq!(n_whole, n_cut, "whole and split consume differently");
    if let Some(Ok(message)) = whole {
        let line_end = if payload[..n_whole].ends_with(b"\n") {
            n_whole - 1
        } else {
            n_whole
        };
        let line = payload[..line_end]
            .strip_suffix(b"\r")
            .unwrap_or(&payload[..line_end]);
        let start = line.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        assert!(
            line.len() - start <= MAX_JSON_LINE,
            "a line over MAX_JSON_LINE accepted"
        );
        let mut again = Vec::new();
        write(&message, &mut again);
        let (reread, _) = read::<T>(&[&again]);
        match reread {
            Some(Ok(m)) => assert_eq!(
                m,
                message,
                "re-serialised as {:?}",
                String::from_utf8_lossy(&again)
            ),
            other => panic!("{:?} re-read as {other:?}", String::from_utf8_lossy(&again)),
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let (sizes, payload) = split(rest);
    if which & 1 == 0 {
        check::<netloop_protocols::file::Request>(&sizes, payload, |m, out| m.write_line(out));
    } else {
        check::<Reply<FileHeader>>(&sizes, payload, |m, out| m.write_line(out));
    }
});
