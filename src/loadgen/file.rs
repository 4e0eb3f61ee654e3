//! File transfer load: each connection asks for one file in request mode, reads the header
//! line and the body, and checks what arrived; the server closes, and the generator opens
//! the next connection. The figures are transfers per second and MB/s of file bytes.
//!
//! ```text
//! C: {"op":"get","filename":"big.bin","encoding":"raw"}
//! S: {"status":"ok","filename":"big.bin","size":N,"sha256":"...","encoding":"raw"}
//! S: N raw bytes (base64: the lesson's JSON document), then close
//! ```
//!
//! Memory is bounded whatever the file's size: the body is counted (and, with
//! [`FileGet::verify_sha256`], hashed) as it arrives, and never stored. A base64 body is
//! decoded chunk by chunk with the same streaming decoder the client uses.
//!
//! # States
//!
//! ```text
//! Header  header line complete, "ok"     Body   (the rest of the read is body)
//! Header  header line complete, "error"  Done   one unsuccessful transfer
//! Body    the announced size arrived     Done   one transfer (unsuccessful if the sha256
//!         (base64: the closing `}`)              differs)
//! Body    more than the size             -      error: the connection is dropped
//! Done    EOF                            -      the connection ends; the next one starts
//! Header, Body  EOF                      -      error: cut short (a size mismatch)
//! ```
//!
//! The latency of a transfer runs from `connect` to its last byte.

use super::driver::{Answers, BadResponse, Driver, Shape};
use netloop_protocols::file::{
    DecodeError, Encoding, Event, FileHeader, JsonBase64Decoder, JsonLineReader, LineError, Reply,
    Request, Sha256Verifier, VerifyError,
};
use std::fmt;

/// What was wrong with a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileError {
    /// The header line is not a file header (or too long, or missing).
    Header(LineError),
    /// The body does not match the header's size (or, when checked, its SHA-256).
    Verify(VerifyError),
    /// A base64 body that is not the lesson's document.
    Decode(DecodeError),
    /// The header's encoding is not the one asked for.
    WrongEncoding,
    /// Bytes after a complete transfer (the server closes after one).
    Trailing,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Header(e) => write!(f, "bad header line: {e}"),
            FileError::Verify(e) => write!(f, "{e}"),
            FileError::Decode(e) => write!(f, "bad base64 document: {e:?}"),
            FileError::WrongEncoding => f.write_str("the header's encoding is not the one asked"),
            FileError::Trailing => f.write_str("bytes after the file"),
        }
    }
}

enum State {
    Header(JsonLineReader<Reply<FileHeader>>),
    Body {
        size: u64,
        /// Counts, and hashes if asked; checks against the header at the end.
        verifier: Counter,
        /// Base64 only.
        decoder: Option<JsonBase64Decoder>,
    },
    Done,
}

/// Counts a body's bytes, and hashes them when asked.
enum Counter {
    Size { received: u64, size: u64 },
    Sha256(Box<Sha256Verifier>),
}

impl Counter {
    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        match self {
            Counter::Size { received, size } => {
                if bytes.len() as u64 > *size - *received {
                    return Err(VerifyError::TooMuchData { expected: *size });
                }
                *received += bytes.len() as u64;
                Ok(())
            }
            Counter::Sha256(v) => v.handle_bytes(bytes),
        }
    }

    fn received(&self) -> u64 {
        match self {
            Counter::Size { received, .. } => *received,
            Counter::Sha256(v) => v.received(),
        }
    }

    fn finish(self) -> Result<(), VerifyError> {
        match self {
            Counter::Size { received, size } if received != size => {
                Err(VerifyError::SizeMismatch {
                    expected: size,
                    received,
                })
            }
            Counter::Size { .. } => Ok(()),
            Counter::Sha256(v) => v.finish().map(drop),
        }
    }
}

/// `get` one file per connection, in request mode.
pub struct FileGet {
    request: Vec<u8>,
    encoding: Encoding,
    sha256: bool,
    state: State,
}

impl std::fmt::Debug for FileGet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileGet")
            .field("request", &String::from_utf8_lossy(&self.request))
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl FileGet {
    /// A driver that asks for `name` with `encoding` and checks the size of what arrives.
    pub fn new(name: &str, encoding: Encoding) -> FileGet {
        let mut request = Vec::new();
        Request::Get {
            filename: name.to_string(),
            encoding,
        }
        .write_line(&mut request);
        FileGet {
            request,
            encoding,
            sha256: false,
            state: State::Header(JsonLineReader::new()),
        }
    }

    /// Also checks the SHA-256 of every transfer against the header's (costs the hashing:
    /// about 2 GB/s per core with SHA extensions, a few hundred MB/s without).
    pub fn verify_sha256(mut self, yes: bool) -> FileGet {
        self.sha256 = yes;
        self
    }

    fn body(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse> {
        let bad = BadResponse::File;
        let State::Body {
            size,
            verifier,
            decoder,
        } = &mut self.state
        else {
            return Ok(Answers::default());
        };
        let size = *size;
        let complete = match decoder {
            None => {
                verifier
                    .handle_bytes(bytes)
                    .map_err(|e| bad(FileError::Verify(e)))?;
                verifier.received() == size
            }
            Some(d) => {
                d.handle_bytes(bytes);
                let mut end = false;
                while let Some(event) = d.poll_event().map_err(|e| bad(FileError::Decode(e)))? {
                    match event {
                        Event::Data(data) => verifier
                            .handle_bytes(&data)
                            .map_err(|e| bad(FileError::Verify(e)))?,
                        Event::FileName(_) => {}
                        Event::End => end = true,
                    }
                }
                end
            }
        };
        if !complete {
            return Ok(Answers::default());
        }
        let State::Body { verifier, .. } = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(Answers::default());
        };
        let ok = match verifier.finish() {
            Ok(()) => true,
            Err(VerifyError::ChecksumMismatch { .. }) => false,
            Err(e) => return Err(bad(FileError::Verify(e))),
        };
        Ok(Answers {
            complete: 1,
            unsuccessful: usize::from(!ok),
            closing: true,
            bytes: size,
        })
    }
}

impl Driver for FileGet {
    fn shape(&self) -> Shape {
        Shape::ConnectionPerRequest
    }

    fn unit(&self) -> &'static str {
        "transfers"
    }

    fn write_request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Answers, BadResponse> {
        let State::Header(reader) = &mut self.state else {
            if matches!(self.state, State::Done) && !bytes.is_empty() {
                return Err(BadResponse::File(FileError::Trailing));
            }
            return self.body(bytes);
        };
        let used = reader.handle_bytes(bytes);
        match reader.poll_event() {
            Ok(None) => Ok(Answers::default()),
            Err(e) => Err(BadResponse::File(FileError::Header(e))),
            Ok(Some(Reply::Error { message })) => {
                log::debug!("loadgen-file: the server said: {message}");
                self.state = State::Done;
                Ok(Answers {
                    complete: 1,
                    unsuccessful: 1,
                    closing: true,
                    bytes: 0,
                })
            }
            Ok(Some(Reply::Ok(header))) => {
                if header.encoding != self.encoding {
                    return Err(BadResponse::File(FileError::WrongEncoding));
                }
                let verifier = if self.sha256 {
                    Counter::Sha256(Box::new(Sha256Verifier::new(header.size, header.sha256)))
                } else {
                    Counter::Size {
                        received: 0,
                        size: header.size,
                    }
                };
                self.state = State::Body {
                    size: header.size,
                    verifier,
                    decoder: (self.encoding == Encoding::Base64).then(JsonBase64Decoder::new),
                };
                // An empty raw file is complete with its header.
                self.body(&bytes[used..])
            }
        }
    }

    fn handle_eof(&mut self) -> Result<Answers, BadResponse> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => Ok(Answers::default()),
            State::Header(mut reader) => {
                reader.handle_eof();
                match reader.poll_event() {
                    Err(e) => Err(BadResponse::File(FileError::Header(e))),
                    _ => Err(BadResponse::CutShort),
                }
            }
            // Every byte but the document's closing `}` (base64): still cut short.
            State::Body { verifier, .. } => match verifier.finish() {
                Err(e) => Err(BadResponse::File(FileError::Verify(e))),
                Ok(()) => Err(BadResponse::CutShort),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netloop_protocols::file::Sha256Digest;

    fn header(size: u64, digest: Sha256Digest) -> Vec<u8> {
        let mut out = Vec::new();
        Reply::Ok(FileHeader {
            filename: "f".into(),
            size,
            sha256: digest,
            encoding: Encoding::Raw,
        })
        .write_line(&mut out);
        out
    }

    /// The whole reply fed at every split point: one transfer of 5 bytes, however it
    /// arrives.
    #[test]
    fn a_raw_transfer_completes_at_its_size_at_every_split() {
        let mut wire = header(5, Sha256Digest::of(b"hello"));
        wire.extend_from_slice(b"hello");
        for cut in 0..=wire.len() {
            let mut d = FileGet::new("f", Encoding::Raw).verify_sha256(true);
            let a = d.handle_bytes(&wire[..cut]).expect("first part");
            let b = d.handle_bytes(&wire[cut..]).expect("second part");
            assert_eq!(a.complete + b.complete, 1, "cut at {cut}");
            assert_eq!(a.unsuccessful + b.unsuccessful, 0);
            assert_eq!(a.bytes + b.bytes, 5);
            assert_eq!(d.handle_eof(), Ok(Answers::default()));
        }
    }

    #[test]
    fn too_many_or_too_few_bytes_are_errors_and_a_bad_digest_is_unsuccessful() {
        let mut long = header(3, Sha256Digest::of(b"abc"));
        long.extend_from_slice(b"abcd");
        let mut d = FileGet::new("f", Encoding::Raw);
        assert!(matches!(d.handle_bytes(&long), Err(BadResponse::File(_))));

        let mut short = header(3, Sha256Digest::of(b"abc"));
        short.extend_from_slice(b"ab");
        let mut d = FileGet::new("f", Encoding::Raw);
        assert_eq!(d.handle_bytes(&short).map(|a| a.complete), Ok(0));
        assert!(matches!(d.handle_eof(), Err(BadResponse::File(_))));

        let mut wrong = header(3, Sha256Digest::of(b"abc"));
        wrong.extend_from_slice(b"abd");
        let mut d = FileGet::new("f", Encoding::Raw).verify_sha256(true);
        let a = d.handle_bytes(&wrong).expect("framing is fine");
        assert_eq!((a.complete, a.unsuccessful), (1, 1));
    }
}
