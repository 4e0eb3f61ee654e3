//! File transfer (lesson programs 04/05), sans-IO: the lesson's JSON-and-base64 document,
//! streamed, plus a request mode with a raw encoding, names that are safe to open, and
//! checksums.
//!
//! # Reading order
//!
//! 1. [`encoder`]: the server writes the lesson's document while reading the file
//!    ([`JsonBase64Encoder`]), byte-identical to Python's `json.dumps`.
//! 2. [`decoder`]: the client reads it as it arrives ([`JsonBase64Decoder`]), in constant
//!    memory; [`whole`] is the lesson's read-everything way ([`decode_whole`]); [`base64`]
//!    is the incremental base64 underneath both.
//! 3. [`name`]: which names may be opened ([`safe_file_name`]).
//! 4. [`request`] and [`line_reader`]: request mode, JSON lines ([`Request`], [`Reply`],
//!    [`RequestReader`]).
//! 5. [`verify`]: size and SHA-256 checked as the bytes stream ([`Sha256Verifier`]).
//!
//! # Lesson mode: one document, then close
//!
//! The server sends one JSON object and closes; the client reads to EOF. There is no
//! request, and the server chooses the file.
//!
//! ```text
//! C: (connects, sends nothing)
//! S: {"filename": "Screenshot-1.png", "filedata": "iVBORw0KGgoAAAANSUhEUgAA..."}
//! S: (closes)
//! ```
//!
//! The separators are Python's (`", "` and `": "`), non-ASCII in the name is `\uXXXX`,
//! and there is no trailing newline: these are exactly the bytes the lesson's server
//! sends, so the lesson's client can talk to netloop and the other way round. Unlike the
//! lesson's client, [`JsonBase64Decoder`] knows the document is complete at its closing
//! `}`, so a server that dies halfway is an error ([`DecodeError::UnexpectedEof`]), not a
//! short file.
//!
//! # Request mode: a JSON line, a header line, a body
//!
//! ```text
//! C: {"op":"get","filename":"hello.txt","encoding":"raw"}
//! S: {"status":"ok","filename":"hello.txt","size":6,"sha256":"5891b5b5...","encoding":"raw"}
//! S: hello              (6 raw bytes; with "encoding":"base64", the lesson's document)
//! S: (closes)
//! ```
//!
//! See [`request`] for every request and reply, and the reasons for the header line.
//!
//! # Non-goals
//!
//! Resuming a transfer, several requests per connection, directories, and compression.

pub mod base64;
pub mod decoder;
pub mod encoder;
pub mod line_reader;
pub mod name;
pub mod request;
pub mod verify;
pub mod whole;

pub use decoder::{DecodeError, Event, JsonBase64Decoder};
pub use encoder::{EncodeError, JsonBase64Encoder, write_json_string_ascii};
pub use line_reader::{JsonLine, JsonLineReader, LineError, MAX_JSON_LINE, RequestReader};
pub use name::{MAX_NAME_BYTES, NameError, safe_file_name};
pub use request::{Encoding, FileHeader, ListEntry, Listing, Reply, Request, Stored, write_error};
pub use verify::{BadDigest, Sha256Digest, Sha256Verifier, VerifyError};
pub use whole::decode_whole;
