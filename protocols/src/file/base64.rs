//! Base64 decoding in pieces (RFC 4648 §4, the standard alphabet with `=` padding).
//!
//! Base64 decodes in groups of 4 characters to 3 bytes, and text arrives cut anywhere, so
//! [`Base64Decoder`] carries up to 3 characters of an unfinished group between calls and
//! decodes the rest in bulk. Padding may only close the last group; any character after it
//! is an error.
//!
//! Compared with Python's `b64decode`, which the lesson's client uses: ASCII whitespace is
//! skipped, as Python skips it (so base64 wrapped at 76 columns, MIME-style, decodes), but
//! any other character outside the alphabet is an error, where Python silently drops it.
//! A transfer that was corrupted should fail loudly rather than write a different file.
//!
//! The groups themselves are decoded by `base64-simd` (SIMD chosen at run time): a file
//! body is megabytes of unbroken base64, where it decodes about 4x faster than the
//! `base64` crate's scalar engine. [`Base64Decoder::decode_run`] is the fast path.
//! Non-zero bits after the last character (`QR==` instead of `QQ==`) are also an error:
//! no encoder produces them, so they signal corruption.

use std::fmt;

use base64_simd::STANDARD;

/// Text that is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Error {
    /// A character outside the alphabet, padding in the wrong place, or non-zero bits in
    /// the last character.
    Invalid,
    /// Characters after a padded (final) group.
    AfterPadding,
    /// The text ended inside a group of 4 (a truncated or unpadded encoding).
    Truncated,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::Invalid => write!(f, "a character that is not base64"),
            Base64Error::AfterPadding => write!(f, "characters after the final '=' padding"),
            Base64Error::Truncated => write!(f, "it ends in the middle of a 4-character group"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// An incremental base64 decoder: [`Base64Decoder::handle_text`] for each piece, then
/// [`Base64Decoder::finish`] to check that the text ended on a group boundary.
///
/// A codec inside [`super::JsonBase64Decoder`] and [`super::decode_whole`], not a protocol
/// machine: text in, bytes out into the caller's buffer and any error, all in one call (see
/// the crate doc). Its callers turn that into events.
#[derive(Debug, Clone, Default)]
pub struct Base64Decoder {
    group: [u8; 4],
    group_len: usize,
    padded: bool,
}

impl Base64Decoder {
    /// A decoder at the start of the text.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next piece of base64 text: appends the bytes of every group it completes to
    /// `out`. On error, `out` holds the bytes of every group before the bad one, however
    /// the text was split; the transfer is broken either way.
    pub fn handle_text(&mut self, mut text: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
        while let Some((&c, rest)) = text.split_first() {
            if self.group_len == 0 {
                // At a group boundary: decode the longest run of whole groups in one call.
                // The run ends at the first space; and after the first group with padding,
                // so that what follows it is reported the same way however the text was
                // split. One scan finds whichever comes first.
                let stop = first_where(text, space_or_pad);
                let run = match text.get(stop) {
                    Some(b'=') => {
                        let space = stop + first_where(&text[stop..], is_space);
                        ((stop / 4 + 1) * 4).min(space / 4 * 4)
                    }
                    _ => stop / 4 * 4,
                };
                if run > 0 {
                    self.decode_groups(&text[..run], out)?;
                    text = &text[run..];
                    continue;
                }
            }
            text = rest;
            if is_space(c) {
                continue;
            }
            if self.padded {
                return Err(Base64Error::AfterPadding);
            }
            self.group[self.group_len] = c;
            self.group_len += 1;
            if self.group_len == 4 {
                let group = self.group;
                self.group_len = 0;
                self.decode_groups(&group, out)?;
            }
        }
        Ok(())
    }

    /// The fast path for text expected to be nothing but base64 (a file body): decodes the
    /// longest whole-group prefix of `text` in one pass that also validates it, and returns
    /// how many bytes that consumed (0 inside a group or after padding, where only
    /// [`Base64Decoder::handle_text`] knows what to do). `None` if the prefix is not plain
    /// base64 (a space, padding before its end, a quote or a backslash after it): `out` is
    /// then untouched, and the caller goes the careful way, which also says exactly what is
    /// wrong.
    ///
    /// Why: the careful way scans every byte for spaces and padding, and its caller scans
    /// them for quotes and escapes, before decoding; two scans that cost as much as the
    /// decoding itself. A body has no such bytes, so decoding first and asking questions
    /// only on failure does one pass instead of three.
    pub fn decode_run(&mut self, text: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let run = text.len() / 4 * 4;
        if self.group_len != 0 || self.padded || run == 0 {
            return Some(0);
        }
        STANDARD.decode_append(&text[..run], out).ok()?;
        self.padded = text[run - 1] == b'=';
        Some(run)
    }

    /// The text ended: it must end on a group boundary.
    pub fn finish(&self) -> Result<(), Base64Error> {
        match self.group_len {
            0 => Ok(()),
            _ => Err(Base64Error::Truncated),
        }
    }

    /// Decodes whole groups (`groups.len()` is a multiple of 4) onto the end of `out`.
    fn decode_groups(&mut self, groups: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
        if self.padded {
            return Err(Base64Error::AfterPadding);
        }
        // SIMD (AVX2 or SSSE3, chosen at run time) straight into `out`'s spare capacity:
        // no zero-filling first. On error `out` is left as it was.
        if STANDARD.decode_append(groups, out).is_ok() {
            self.padded = groups.last() == Some(&b'=');
            return Ok(());
        }
        // Some group is bad. The ones before it go out, as they would have if the text had
        // arrived in pieces: the result must not depend on how it was read.
        for group in groups.chunks_exact(4) {
            if self.padded {
                return Err(Base64Error::AfterPadding);
            }
            STANDARD
                .decode_append(group, out)
                .map_err(|_| Base64Error::Invalid)?;
            self.padded = group[3] == b'=';
        }
        Ok(())
    }

    /// Characters of an unfinished group, held until the group is whole (0 to 3).
    pub fn pending(&self) -> usize {
        self.group_len
    }
}

/// The index of the first byte of `bytes` for which `hit` is true, or `bytes.len()`.
///
/// A base64 body is hundreds of kilobytes in which the byte searched for (a quote, a
/// space, `=`) never occurs, and a byte-at-a-time `position` loop cost as much as the
/// decoding itself (measured with the file bench). So whole blocks are tested first with a
/// branch-free `fold`, which the compiler turns into SIMD compares (when `hit` has no
/// branches itself: `|`, not `||`), and only the block holding a hit is searched byte by
/// byte.
pub(super) fn first_where(bytes: &[u8], hit: impl Fn(u8) -> bool) -> usize {
    /// Bytes tested per block: two SSE2 registers' worth.
    const BLOCK: usize = 32;
    let mut start = 0;
    for block in bytes.chunks_exact(BLOCK) {
        if block.iter().fold(0u8, |any, &c| any | u8::from(hit(c))) != 0 {
            break;
        }
        start += BLOCK;
    }
    start
        + bytes[start..]
            .iter()
            .position(|&c| hit(c))
            .unwrap_or(bytes.len() - start)
}

/// A space or `=`, written with `|` rather than `||` so that [`first_where`] compiles to
/// SIMD compares (`||` branches, and a branch per byte cannot be vectorized).
fn space_or_pad(c: u8) -> bool {
    (c == b' ') | (c == b'\t') | (c == b'\n') | (c == b'\r') | (c == b'=')
}

/// The whitespace that is skipped: what JSON and MIME line wrapping put into base64.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, Base64Error> {
        let mut decoder = Base64Decoder::new();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.handle_text(piece, &mut out)?;
        }
        decoder.finish()?;
        Ok(out)
    }

    /// Found by the `file_decoder` fuzz target: the bytes handed out before an error
    /// depended on the reads (a run of whole groups with a bad one in it gave nothing).
    #[test]
    fn the_bytes_before_an_error_are_the_same_however_it_is_split() {
        for (text, before, error) in [
            (&b"QUJD!!!!"[..], &b"ABC"[..], Base64Error::Invalid),
            (b"QUJDREVG QU*D", b"ABCDEF", Base64Error::Invalid),
            (b"YQ==YQ==", b"a", Base64Error::AfterPadding),
            (b"QUJDYQ==QUJD", b"ABCa", Base64Error::AfterPadding),
        ] {
            let got = same_every_split(text, |pieces| {
                let mut decoder = Base64Decoder::new();
                let mut out = Vec::new();
                let failed = pieces
                    .iter()
                    .find_map(|piece| decoder.handle_text(piece, &mut out).err());
                (out, failed)
            });
            assert_eq!(got, (before.to_vec(), Some(error)), "{text:?}");
        }
    }

    #[test]
    fn decodes_the_same_however_it_is_split() {
        for (text, bytes) in [
            (&b""[..], &b""[..]),
            (b"+w==", b"\xfb"),
            (b"+/8=", b"\xfb\xff"),
            (b"+/+/", b"\xfb\xff\xbf"),
            (b"+/+/AAECfw==", b"\xfb\xff\xbf\x00\x01\x02\x7f"),
            (b"aGVs\r\nbG8g\n d29y bGQ=", b"hello world"),
        ] {
            let got = same_every_split(text, decode);
            assert_eq!(
                got.as_deref(),
                Ok(bytes),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn first_where_finds_the_first_hit_in_any_block() {
        let mut text = vec![b'A'; 100];
        assert_eq!(first_where(&text, |c| c == b'='), 100);
        for at in [0, 1, 31, 32, 33, 63, 64, 95, 96, 99] {
            text[at] = b'=';
            if at + 1 < text.len() {
                text[at + 1] = b'=';
            }
            assert_eq!(first_where(&text, |c| c == b'='), at);
            text.fill(b'A');
        }
        assert_eq!(first_where(b"", |_| true), 0);
    }

    #[test]
    fn broken_text_is_an_error_however_it_is_split() {
        for (text, err) in [
            (&b"aGk"[..], Base64Error::Truncated),
            (b"aGk=aGk=", Base64Error::AfterPadding),
            (b"aGk= aGk=", Base64Error::AfterPadding),
            (b"aG=k", Base64Error::Invalid),
            (b"aGk*", Base64Error::Invalid),
            (b"aGk\\/", Base64Error::Invalid),
            (b"aGl=", Base64Error::Invalid),
            (b"QQ=", Base64Error::Truncated),
            (b"QQ===", Base64Error::AfterPadding),
            (b"\xd0\x90AAA", Base64Error::Invalid),
        ] {
            let got = same_every_split(text, decode);
            assert_eq!(got, Err(err), "{:?}", String::from_utf8_lossy(text));
        }
    }
}
