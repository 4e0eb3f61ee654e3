//! A file on its way in: decode the body as it arrives, write it to a temporary file,
//! verify it, and only then give it its name.
//!
//! The server receiving an upload and the client receiving a download (or the lesson's
//! document) do the same thing, with three kinds of body:
//!
//! | body | ends at | checked against |
//! |---|---|---|
//! | raw | the announced size | size and SHA-256 from the header line |
//! | document, streamed | its closing `}` | the header's (request mode); nothing (lesson mode) |
//! | document, whole | EOF (serde_json, the lesson's way, bounded) | nothing (lesson mode) |
//!
//! Feed [`Receiver::handle_bytes`] until [`Receiver::is_complete`], or call
//! [`Receiver::handle_eof`] when the peer closes; then [`Receiver::commit`]. Any error,
//! or dropping the receiver, removes the temporary file: nothing is left under a final name.

use super::incoming::{CommitError, Incoming};
use netloop_protocols::file::{
    DecodeError, Event, JsonBase64Decoder, NameError, Sha256Digest, Sha256Verifier, VerifyError,
    decode_whole, safe_file_name,
};
use std::io;
use std::path::PathBuf;

/// Largest lesson document read whole (`--whole`): the lesson's way holds the document,
/// and then the file, in memory, so it is capped; 64 MiB is far above a screenshot and
/// far below what a laptop misses. The streamed way has no such limit.
pub const MAX_WHOLE_DOCUMENT: usize = 64 << 20;

/// Why a received file was refused. The `Display` text goes to the other side (an error
/// reply) or to the user.
#[derive(Debug)]
pub enum ReceiveError {
    /// The body is not the lesson's document (invalid JSON, invalid base64, cut short).
    Decode(DecodeError),
    /// Size or checksum do not match the announcement.
    Verify(VerifyError),
    /// The document names an unsafe file.
    BadName(String, NameError),
    /// The document names a different file than the header or request.
    NameMismatch {
        /// The name announced first.
        expected: String,
        /// The name in the document.
        got: String,
    },
    /// A whole document over [`MAX_WHOLE_DOCUMENT`].
    TooLarge,
    /// Writing the file failed.
    Disk(io::Error),
    /// The file could not be given its name.
    Commit(CommitError),
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveError::Decode(e) => write!(f, "invalid body: {e}"),
            ReceiveError::Verify(e) => write!(f, "{e}"),
            ReceiveError::BadName(name, e) => write!(f, "refused file name {name:?}: {e}"),
            ReceiveError::NameMismatch { expected, got } => write!(
                f,
                "the document names {got:?}, but {expected:?} was announced"
            ),
            ReceiveError::TooLarge => write!(
                f,
                "the document is larger than {MAX_WHOLE_DOCUMENT} bytes, the limit for reading it whole"
            ),
            ReceiveError::Disk(e) => write!(f, "disk error: {e}"),
            ReceiveError::Commit(e) => write!(f, "{e}"),
        }
    }
}

enum Body {
    /// Exactly `size` bytes, `remaining` still to come.
    Raw { size: u64, remaining: u64 },
    /// The lesson's document, decoded as it arrives.
    Streamed(Box<JsonBase64Decoder>),
    /// The lesson's document, collected to EOF and parsed with serde_json.
    Whole(Vec<u8>),
}

/// A body being received into a temporary file.
pub struct Receiver {
    body: Body,
    verifier: Option<Sha256Verifier>,
    /// The announced size, checked at the end when there is no verifier to check it.
    expected_size: Option<u64>,
    incoming: Incoming,
    /// The name announced before the body (request mode), which a document must repeat.
    expected_name: Option<String>,
    /// The name the file will get.
    name: Option<String>,
    complete: bool,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("expected_size", &self.expected_size)
            .field("name", &self.name)
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

/// A file that arrived complete and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its name.
    pub name: String,
    /// Where it is now.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its digest, when one was announced and verified.
    pub sha256: Option<Sha256Digest>,
}

impl Receiver {
    /// A request-mode body: `size` bytes with digest `sha256`, raw or as a document that
    /// must name `name`.
    pub fn announced(
        incoming: Incoming,
        name: &str,
        size: u64,
        sha256: Sha256Digest,
        raw: bool,
    ) -> Receiver {
        let body = match raw {
            true => Body::Raw {
                size,
                remaining: size,
            },
            false => Body::Streamed(Box::default()),
        };
        let mut rx = Receiver {
            body,
            verifier: Some(Sha256Verifier::new(size, sha256)),
            expected_size: Some(size),
            incoming,
            expected_name: Some(name.to_string()),
            name: Some(name.to_string()),
            complete: false,
        };
        rx.complete = size == 0 && raw;
        rx
    }

    /// The lesson's document, with no announcement: the name comes from the document (and
    /// is checked with `safe_file_name`). `whole`: collect it and parse it with serde_json
    /// at EOF, the lesson's way.
    pub fn lesson(incoming: Incoming, whole: bool) -> Receiver {
        Receiver {
            body: match whole {
                true => Body::Whole(Vec::new()),
                false => Body::Streamed(Box::default()),
            },
            verifier: None,
            expected_size: None,
            incoming,
            expected_name: None,
            name: None,
            complete: false,
        }
    }

    /// Checks the size only, not the SHA-256 digest (`file_client --no-verify`): hashing
    /// is the dearest part of receiving (SHA-NI here does ~1.5 GB/s, slower than loopback
    /// TCP), and a peer that is trusted, or a check made elsewhere, may not need it.
    pub fn without_digest(mut self) -> Receiver {
        self.verifier = None;
        self
    }

    /// The body has ended (size reached, or the document's closing `}` read).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Bytes of the file written so far.
    pub fn written(&self) -> u64 {
        self.incoming.written()
    }

    /// The next bytes of the body. Returns how many bytes of the *file* they carried (for
    /// a progress bar). Bytes past the body's end are an error.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<u64, ReceiveError> {
        let before = self.incoming.written();
        match &mut self.body {
            Body::Raw { size, remaining } => {
                let take = (*remaining).min(bytes.len() as u64) as usize;
                *remaining -= take as u64;
                self.complete = *remaining == 0;
                if take < bytes.len() {
                    return Err(ReceiveError::Verify(VerifyError::TooMuchData {
                        expected: *size,
                    }));
                }
                write_verified(&mut self.incoming, &mut self.verifier, &bytes[..take])?;
            }
            Body::Streamed(decoder) => {
                decoder.handle_bytes(bytes);
                while let Some(event) = decoder.poll_event().map_err(ReceiveError::Decode)? {
                    match event {
                        Event::FileName(name) => {
                            self.name = Some(check_name(self.expected_name.as_deref(), name)?);
                        }
                        Event::Data(data) => {
                            write_verified(&mut self.incoming, &mut self.verifier, &data)?;
                        }
                        Event::End => self.complete = true,
                    }
                }
            }
            Body::Whole(buf) => {
                if buf.len() + bytes.len() > MAX_WHOLE_DOCUMENT {
                    return Err(ReceiveError::TooLarge);
                }
                buf.extend_from_slice(bytes);
                return Ok(0);
            }
        }
        Ok(self.incoming.written() - before)
    }

    /// The peer closed. A streamed body must be complete by now; a whole document is
    /// parsed now. Returns the file bytes this wrote (a whole document's).
    pub fn handle_eof(&mut self) -> Result<u64, ReceiveError> {
        match &mut self.body {
            _ if self.complete => Ok(0),
            Body::Raw { size, remaining } => Err(ReceiveError::Verify(VerifyError::SizeMismatch {
                expected: *size,
                received: *size - *remaining,
            })),
            Body::Streamed(decoder) => {
                decoder.handle_eof();
                match decoder.poll_event() {
                    Err(e) => Err(ReceiveError::Decode(e)),
                    // Complete would have been set by the `End` event.
                    Ok(_) => Err(ReceiveError::Decode(DecodeError::UnexpectedEof)),
                }
            }
            Body::Whole(buf) => {
                let document = std::mem::take(buf);
                let (name, data) = decode_whole(&document).map_err(ReceiveError::Decode)?;
                drop(document);
                self.name = Some(check_name(self.expected_name.as_deref(), name)?);
                write_verified(&mut self.incoming, &mut self.verifier, &data)?;
                self.complete = true;
                Ok(data.len() as u64)
            }
        }
    }

    /// Checks the complete body against its announcement, then gives the file its name
    /// (replacing an existing file only if `force`).
    pub fn commit(self, force: bool) -> Result<Received, ReceiveError> {
        if !self.complete {
            return Err(ReceiveError::Decode(DecodeError::UnexpectedEof));
        }
        let sha256 = match self.verifier {
            Some(v) => Some(v.finish().map_err(ReceiveError::Verify)?),
            None => None,
        };
        let received = self.incoming.written();
        if let Some(expected) = self.expected_size.filter(|&size| size != received) {
            return Err(ReceiveError::Verify(VerifyError::SizeMismatch {
                expected,
                received,
            }));
        }
        let Some(name) = self.name else {
            return Err(ReceiveError::Decode(DecodeError::MissingKey("filename")));
        };
        let size = self.incoming.written();
        let path = self
            .incoming
            .commit(&name, force)
            .map_err(ReceiveError::Commit)?;
        Ok(Received {
            name,
            path,
            size,
            sha256,
        })
    }
}

/// The name a document carries must be safe, and the announced one if there was one.
fn check_name(expected: Option<&str>, got: String) -> Result<String, ReceiveError> {
    if let Err(e) = safe_file_name(&got) {
        return Err(ReceiveError::BadName(got, e));
    }
    match expected {
        Some(expected) if expected != got => Err(ReceiveError::NameMismatch {
            expected: expected.to_string(),
            got,
        }),
        _ => Ok(got),
    }
}

fn write_verified(
    incoming: &mut Incoming,
    verifier: &mut Option<Sha256Verifier>,
    data: &[u8],
) -> Result<(), ReceiveError> {
    if let Some(v) = verifier {
        v.handle_bytes(data).map_err(ReceiveError::Verify)?;
    }
    incoming.write(data).map_err(ReceiveError::Disk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netloop_protocols::file::JsonBase64Encoder;

    fn document(name: &str, data: &[u8]) -> Vec<u8> {
        let mut e = JsonBase64Encoder::new(name, data.len() as u64);
        let mut out = Vec::new();
        e.write_data(data, &mut out).expect("size");
        e.finish(&mut out).expect("size");
        out
    }

    fn entries(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).expect("dir").count()
    }

    /// Feeds `body` cut at `cut`, then EOF if `eof`; commits if complete.
    fn receive(rx: Receiver, body: &[u8], cut: usize, eof: bool) -> Result<Received, String> {
        let mut rx = rx;
        for piece in [&body[..cut], &body[cut..]] {
            rx.handle_bytes(piece).map_err(|e| e.to_string())?;
        }
        if eof {
            rx.handle_eof().map_err(|e| e.to_string())?;
        }
        rx.commit(false).map_err(|e| e.to_string())
    }

    #[test]
    fn every_body_kind_lands_under_its_name_however_it_is_cut() {
        let data = b"hello, file\n".repeat(100);
        let digest = Sha256Digest::of(&data);
        let doc = document("f.bin", &data);
        for cut in [0, 1, 17, data.len() / 2, data.len()] {
            let dir = tempfile::tempdir().expect("dir");
            let inc = || Incoming::create(dir.path()).expect("create");
            let raw = Receiver::announced(inc(), "raw.bin", data.len() as u64, digest, true);
            let got = receive(raw, &data, cut, false).expect("raw");
            assert_eq!((got.name.as_str(), got.sha256), ("raw.bin", Some(digest)));
            let streamed = Receiver::announced(inc(), "f.bin", data.len() as u64, digest, false);
            let got = receive(streamed, &doc, cut.min(doc.len()), false).expect("document");
            assert_eq!(std::fs::read(got.path).expect("read"), data);
            std::fs::remove_file(dir.path().join("f.bin")).expect("rm");
            let lesson = Receiver::lesson(inc(), false);
            receive(lesson, &doc, cut.min(doc.len()), true).expect("lesson");
            std::fs::remove_file(dir.path().join("f.bin")).expect("rm");
            let whole = Receiver::lesson(inc(), true);
            receive(whole, &doc, cut.min(doc.len()), true).expect("whole");
            assert_eq!(
                entries(dir.path()),
                2,
                "raw.bin and f.bin, no temporary file"
            );
        }
    }

    #[test]
    fn a_bad_body_leaves_nothing_behind_and_says_why() {
        let data = b"0123456789";
        let digest = Sha256Digest::of(data);
        /// What the error says, how to make the receiver, the body, and whether EOF follows.
        type Case = (
            &'static str,
            Box<dyn Fn(Incoming) -> Receiver>,
            Vec<u8>,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "expected 10 bytes, received 9: the transfer was cut short",
                Box::new(move |i| Receiver::announced(i, "a", 10, digest, true)),
                data[..9].to_vec(),
                true,
            ),
            (
                "more than the announced 10 bytes arrived",
                Box::new(move |i| Receiver::announced(i, "a", 10, digest, true)),
                b"0123456789!".to_vec(),
                false,
            ),
            (
                "sha256 mismatch",
                Box::new(move |i| Receiver::announced(i, "a", 10, digest, true)),
                b"0123456780".to_vec(),
                false,
            ),
            (
                "invalid body: filedata is not valid base64",
                Box::new(move |i| Receiver::announced(i, "a", 10, digest, false)),
                br#"{"filename": "a", "filedata": "MDEy*"}"#.to_vec(),
                false,
            ),
            (
                "invalid body: invalid document at byte 0",
                Box::new(|i| Receiver::lesson(i, false)),
                b"not json".to_vec(),
                true,
            ),
            (
                "the document ended early",
                Box::new(|i| Receiver::lesson(i, false)),
                br#"{"filename": "a", "filedata": "MDEy"#.to_vec(),
                true,
            ),
            (
                r#"refused file name "../../.bashrc""#,
                Box::new(|i| Receiver::lesson(i, false)),
                document("../../.bashrc", data),
                true,
            ),
            (
                r#"refused file name "/etc/passwd""#,
                Box::new(|i| Receiver::lesson(i, true)),
                document("/etc/passwd", data),
                true,
            ),
            (
                r#"the document names "b", but "a" was announced"#,
                Box::new(move |i| Receiver::announced(i, "a", 10, digest, false)),
                document("b", data),
                false,
            ),
        ];
        for (why, make, body, eof) in cases {
            let dir = tempfile::tempdir().expect("dir");
            let rx = make(Incoming::create(dir.path()).expect("create"));
            let err = receive(rx, &body, body.len() / 2, eof).expect_err(why);
            assert!(err.contains(why), "{err:?} should say {why:?}");
            assert_eq!(entries(dir.path()), 0, "{why}: nothing written");
        }
    }
}
