//! The chat line framer ([`LineFramer`]): byte 0 picks the line limit (small ones reach the
//! over-long paths), then the split sizes (see `common.rs`) and the peer's bytes, then EOF.
//!
//! Properties:
//! - the frames are exactly those of a model written here (split at LF, drop one CR before
//!   it, `TooLong` past the limit, a last line without LF at EOF), whatever the split;
//! - the framer never holds, nor reserves memory for, more than `max_line + 1` bytes.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{pieces, split};
use netloop_protocols::chat::{Frame, LineFramer};

fn model(max: usize, payload: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut lines: Vec<&[u8]> = payload.split(|&b| b == b'\n').collect();
    let last = lines.pop().unwrap_or_default(); // after the last LF: the EOF line
    let mut frame = |line: &[u8]| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        frames.push(if line.len() > max {
            Frame::TooLong
        } else {
            Frame::Line(String::from_utf8_lossy(line).into_owned())
        });
    };
    for line in lines {
        frame(line);
    }
    if !last.is_empty() {
        frame(last);
    }
    frames
}

fn run(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
    let mut f = LineFramer::with_max_line(max);
    let mut frames = Vec::new();
    for chunk in chunks {
        f.handle_bytes(chunk);
        assert!(
            f.buffered() <= max + 1,
            "buffered {} > max + 1",
            f.buffered()
        );
        assert!(
            f.buffer_capacity() <= max + 1,
            "reserved {} > max + 1",
            f.buffer_capacity()
        );
        while let Some(frame) = f.poll_event() {
            frames.push(frame);
        }
    }
    f.handle_eof();
    while let Some(frame) = f.poll_event() {
        frames.push(frame);
    }
    frames
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let max = if limit & 0x80 != 0 {
        netloop_protocols::chat::MAX_LINE
    } else {
        usize::from(limit)
    };
    let (sizes, payload) = split(rest);
    let expected = model(max, payload);
    assert_eq!(run(max, &[payload]), expected, "whole");
    assert_eq!(run(max, &pieces(&sizes, payload)), expected, "split");
});
