//! A file on its way out, one chunk per `drained`: raw bytes, or the lesson's document.
//!
//! The server sending a file (lesson mode, or a `get`) and the client uploading one (`put`)
//! do the same thing: when the connection's queue has gone to the kernel, read the next
//! chunk of the file and append it, as is or as base64, to the queue. Memory per
//! connection is one chunk, whatever the file's size; the reactor's high-water mark is
//! never reached because nothing is queued until the last chunk has left.
//!
//! ```text
//! raw:     [chunk 0][chunk 1]...[last chunk]                         Done
//! base64:  {"filename": "f", "filedata": "[b64 0][b64 1]...[b64 last]"}  Done
//! ```

use netloop_protocols::file::{EncodeError, Encoding, JsonBase64Encoder};
use std::fs::File;
use std::io::{self, Read};

/// File bytes read per raw chunk. 256 KiB is the reactor's high-water mark: one chunk is
/// about what a loopback socket's send buffer takes in one `write(2)` once autotuned, so
/// each `drained` costs one read and about one write. Measured with the bench: 64 KiB
/// chunks cost a fifth of the throughput in system calls, 1 MiB gained nothing.
pub const CHUNK: usize = 256 * 1024;

/// File bytes read per base64 chunk: three quarters of [`CHUNK`], so the encoded text (4
/// characters per 3 bytes) is one `CHUNK` on the wire.
pub const BASE64_CHUNK: usize = CHUNK / 4 * 3;

/// File bytes read and encoded at a time within a base64 chunk.
const BASE64_PIECE: usize = 48 * 1024;

/// What one [`Outgoing::poll_transmit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Appended a chunk holding this many bytes of the file; call again on `drained`.
    More(u64),
    /// Appended the last chunk (this many bytes of the file): the body is complete.
    Done(u64),
}

/// The file could not be sent as announced. The peer has done nothing wrong; close the
/// connection without finishing the body, so the peer sees a transfer cut short.
#[derive(Debug)]
pub enum SendError {
    /// Reading the file failed.
    Io(io::Error),
    /// The file ended before its announced size (it was truncated while being sent).
    Shrank {
        /// The size announced to the peer.
        size: u64,
        /// Where the file ended.
        at: u64,
    },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Io(e) => write!(f, "reading the file failed: {e}"),
            SendError::Shrank { size, at } => {
                write!(f, "the file shrank while being sent: {at} of {size} bytes")
            }
        }
    }
}

/// A file being streamed, raw or as the lesson's document.
#[derive(Debug)]
pub struct Outgoing {
    file: File,
    size: u64,
    sent: u64,
    /// `None`: raw bytes.
    encoder: Option<JsonBase64Encoder>,
}

impl Outgoing {
    /// Streams the first `size` bytes of `file` (from its current position) as `encoding`;
    /// `name` is the document's `filename` for base64.
    pub fn new(file: File, size: u64, encoding: Encoding, name: &str) -> Outgoing {
        let encoder = match encoding {
            Encoding::Raw => None,
            Encoding::Base64 => Some(JsonBase64Encoder::new(name, size)),
        };
        Outgoing {
            file,
            size,
            sent: 0,
            encoder,
        }
    }

    /// Bytes of the file sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The file's announced size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the next chunk of the file and appends it, encoded, to `out`. `scratch` is a
    /// buffer the caller keeps (base64 reads into it before encoding; raw reads straight
    /// into `out`).
    pub fn poll_transmit(
        &mut self,
        scratch: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Step, SendError> {
        let left = self.size - self.sent;
        let chunk = match self.encoder {
            None => CHUNK,
            Some(_) => BASE64_CHUNK,
        };
        let want = left.min(chunk as u64);
        let got = match &mut self.encoder {
            None => read_chunk(&mut self.file, want, out)?,
            Some(encoder) => {
                // Read and encode in pieces small enough to stay in the CPU's cache
                // between the kernel's copy into `scratch` and the encoder's pass over it.
                let mut got = 0;
                while got < want {
                    let piece = (want - got).min(BASE64_PIECE as u64);
                    scratch.clear();
                    let n = read_chunk(&mut self.file, piece, scratch)?;
                    encoder
                        .write_data(scratch, out)
                        .map_err(|e| encode_bug(&e))?;
                    got += n;
                    if n < piece {
                        break;
                    }
                }
                got
            }
        };
        if got < want {
            return Err(SendError::Shrank {
                size: self.size,
                at: self.sent + got,
            });
        }
        self.sent += got;
        if self.sent < self.size {
            return Ok(Step::More(got));
        }
        if let Some(encoder) = &mut self.encoder {
            encoder.finish(out).map_err(|e| encode_bug(&e))?;
        }
        Ok(Step::Done(got))
    }
}

/// Appends up to `want` bytes of `file` to `out`; fewer only at the end of the file.
/// (`read_to_end` on a `Take` fills the vector's spare capacity without zeroing it first.)
fn read_chunk(file: &mut File, want: u64, out: &mut Vec<u8>) -> Result<u64, SendError> {
    out.reserve(want as usize);
    let got = file.take(want).read_to_end(out).map_err(SendError::Io)?;
    Ok(got as u64)
}

/// The encoder is fed exactly the announced size by construction (we read at most what is
/// left, and stop short as `Shrank`): an error here is a bug in this file. Reported as an
/// I/O error rather than a panic, since the connection can simply be closed.
fn encode_bug(e: &EncodeError) -> SendError {
    SendError::Io(io::Error::other(format!("encoder refused a chunk: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netloop_protocols::file::decode_whole;
    use std::io::Write;

    fn temp_file(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(data).expect("write");
        use std::io::Seek;
        f.rewind().expect("rewind");
        f
    }

    fn send_all(mut o: Outgoing) -> Result<(Vec<u8>, usize), SendError> {
        let (mut scratch, mut out, mut chunks) = (Vec::new(), Vec::new(), 0);
        loop {
            let before = out.len();
            let step = o.poll_transmit(&mut scratch, &mut out)?;
            assert!(out.len() - before <= CHUNK + 64, "one chunk at a time");
            chunks += 1;
            if let Step::Done(_) = step {
                return Ok((out, chunks));
            }
        }
    }

    #[test]
    fn raw_and_base64_bodies_carry_the_file_in_bounded_chunks() {
        let data: Vec<u8> = (0..CHUNK * 2 + 7).map(|i| (i * 31 % 251) as u8).collect();
        let (raw, chunks) = send_all(Outgoing::new(
            temp_file(&data),
            data.len() as u64,
            Encoding::Raw,
            "x",
        ))
        .expect("sent");
        assert_eq!((raw == data, chunks), (true, 3));
        let (doc, _) = send_all(Outgoing::new(
            temp_file(&data),
            data.len() as u64,
            Encoding::Base64,
            "x.bin",
        ))
        .expect("sent");
        assert_eq!(decode_whole(&doc), Ok(("x.bin".into(), data)));
    }

    #[test]
    fn an_empty_file_is_one_step_and_a_shrunk_file_an_error() {
        let (doc, chunks) =
            send_all(Outgoing::new(temp_file(b""), 0, Encoding::Base64, "e")).expect("sent");
        assert_eq!(
            (doc.as_slice(), chunks),
            (&br#"{"filename": "e", "filedata": ""}"#[..], 1)
        );
        let err =
            send_all(Outgoing::new(temp_file(b"abc"), 5, Encoding::Raw, "s")).expect_err("shrank");
        assert!(matches!(err, SendError::Shrank { size: 5, at: 3 }), "{err}");
    }
}
