//! Request mode: the messages, one JSON object per line.
//!
//! The lesson's server sends one fixed file to whoever connects. Request mode lets the
//! client say what it wants, and lets it send files too. One request per connection, as in
//! the lesson: the server answers and closes (after a `put`, once the body is in).
//!
//! ```text
//! C: {"op":"get","filename":"hello.txt","encoding":"raw"}
//! S: {"status":"ok","filename":"hello.txt","size":6,"sha256":"5891b5b5...","encoding":"raw"}
//! S: hello               (exactly 6 raw bytes, then the server closes)
//!
//! C: {"op":"get","filename":"hello.txt"}          (encoding defaults to base64)
//! S: {"status":"ok","filename":"hello.txt","size":6,"sha256":"5891b5b5...","encoding":"base64"}
//! S: {"filename": "hello.txt", "filedata": "aGVsbG8K"}    (the lesson's document; closes)
//!
//! C: {"op":"put","filename":"up.txt","size":6,"sha256":"5891b5b5...","encoding":"raw"}
//! C: hello               (exactly 6 raw bytes; for base64, the lesson's document)
//! S: {"status":"ok","filename":"up.txt","size":6}
//!
//! C: {"op":"list"}
//! S: {"status":"ok","files":[{"name":"hello.txt","size":6}]}
//!
//! C: {"op":"get","filename":"../etc/passwd"}
//! S: {"status":"error","message":"bad file name: a file name cannot contain '/' or '\\'"}
//! ```
//!
//! The header line comes first even for base64, although the lesson's document carries
//! the name itself: it is where an error can be told apart from a file, and it announces
//! the size and SHA-256 the client checks the body against ([`super::Sha256Verifier`]).
//! Both bodies end themselves (after `size` bytes, at the document's `}`), so a close
//! before that end is a transfer cut short, not a short file. For a base64 `put`, the
//! document's `filename` must equal the request's.
//!
//! Unknown fields in a request are ignored, so a newer client can talk to this server.

use serde::{Deserialize, Serialize};

use super::verify::Sha256Digest;

/// How a file's bytes travel after the header line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The lesson's JSON document with base64 data: text-safe, a third larger, and what the
    /// lesson's client reads. The default, so a request without `encoding` gets the
    /// lesson's format.
    #[default]
    Base64,
    /// Exactly `size` bytes as they are: no overhead, not printable.
    Raw,
}

/// What a client asks for: the first line it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// `{"op":"get","filename":...,"encoding":...}`: send me this file.
    Get {
        /// A plain base name (see [`super::safe_file_name`]).
        filename: String,
        /// How to send it.
        #[serde(default)]
        encoding: Encoding,
    },
    /// `{"op":"put","filename":...,"size":N,"sha256":"hex","encoding":...}`: here comes a
    /// file; the body follows the line.
    Put {
        /// A plain base name (see [`super::safe_file_name`]).
        filename: String,
        /// The file's size in bytes (decoded, for base64).
        size: u64,
        /// The SHA-256 of the file's bytes.
        sha256: Sha256Digest,
        /// How the body is sent.
        #[serde(default)]
        encoding: Encoding,
    },
    /// `{"op":"list"}`: which files are there?
    List,
}

/// A server's answer line: `{"status":"ok", ...T's fields}` or
/// `{"status":"error","message":...}`. The client knows which `T` to expect from what it
/// asked: [`FileHeader`] for `get`, [`Stored`] for `put`, [`Listing`] for `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Reply<T> {
    /// It worked; here are the details.
    Ok(T),
    /// It did not; `message` says why, for a human.
    Error {
        /// Why, in words.
        message: String,
    },
}

/// The header before a file's body (reply to `get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The file's name.
    pub filename: String,
    /// The file's size in bytes (decoded, for base64).
    pub size: u64,
    /// The SHA-256 of the file's bytes.
    pub sha256: Sha256Digest,
    /// How the body follows.
    pub encoding: Encoding,
}

/// The reply to a `put` whose body arrived complete and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The name it was stored under.
    pub filename: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The reply to `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The files served, in the server's order.
    pub files: Vec<ListEntry>,
}

/// One file in a [`Listing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Request {
    /// Appends this request as one JSON line.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        write_json_line(self, out);
    }
}

impl<T: Serialize> Reply<T> {
    /// Appends this reply as one JSON line.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        write_json_line(self, out);
    }
}

/// Appends `{"status":"error","message":...}` and a newline: the answer to any request
/// that cannot be served.
pub fn write_error(message: &str, out: &mut Vec<u8>) {
    Reply::<Stored>::Error {
        message: message.to_string(),
    }
    .write_line(out);
}

fn write_json_line<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and these types have only string keys, so
    // serialization cannot either.
    serde_json::to_writer(&mut *out, value).expect("request and reply types always serialize");
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    fn hello() -> Sha256Digest {
        Sha256Digest::from_hex(HELLO).expect("valid")
    }

    fn line<T: Serialize>(value: &T) -> String {
        let mut out = Vec::new();
        write_json_line(value, &mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// `value` is written as `wire` (plus a newline), and `wire` reads back as `value`.
    #[track_caller]
    fn round_trip<T>(value: T, wire: &str)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        assert_eq!(line(&value), format!("{wire}\n"));
        assert_eq!(serde_json::from_str::<T>(wire).expect("parses"), value);
    }

    #[test]
    fn requests_on_the_wire() {
        round_trip(
            Request::Get {
                filename: "hello.txt".into(),
                encoding: Encoding::Raw,
            },
            r#"{"op":"get","filename":"hello.txt","encoding":"raw"}"#,
        );
        round_trip(
            Request::Put {
                filename: "up.txt".into(),
                size: 6,
                sha256: hello(),
                encoding: Encoding::Base64,
            },
            &format!(
                r#"{{"op":"put","filename":"up.txt","size":6,"sha256":"{HELLO}","encoding":"base64"}}"#
            ),
        );
        round_trip(Request::List, r#"{"op":"list"}"#);
    }

    #[test]
    fn encoding_defaults_to_the_lessons_base64_and_unknown_fields_are_ignored() {
        let request: Request =
            serde_json::from_str(r#"{"filename":"a","op":"get","future":[1]}"#).expect("parses");
        assert_eq!(
            request,
            Request::Get {
                filename: "a".into(),
                encoding: Encoding::Base64
            }
        );
    }

    #[test]
    fn malformed_requests_do_not_parse() {
        for wire in [
            r#"{"op":"delete","filename":"a"}"#,
            r#"{"filename":"a"}"#,
            r#"{"op":"get"}"#,
            r#"{"op":"get","filename":"a","encoding":"gzip"}"#,
            r#"{"op":"put","filename":"a","size":-1,"sha256":"00"}"#,
            r#"{"op":"put","filename":"a","size":1,"sha256":"xyz"}"#,
            r#"{"op":"put","filename":"a","size":1}"#,
        ] {
            assert!(serde_json::from_str::<Request>(wire).is_err(), "{wire}");
        }
    }

    #[test]
    fn replies_on_the_wire() {
        round_trip(
            Reply::Ok(FileHeader {
                filename: "hello.txt".into(),
                size: 6,
                sha256: hello(),
                encoding: Encoding::Raw,
            }),
            &format!(
                r#"{{"status":"ok","filename":"hello.txt","size":6,"sha256":"{HELLO}","encoding":"raw"}}"#
            ),
        );
        round_trip(
            Reply::Ok(Stored {
                filename: "up.txt".into(),
                size: 6,
            }),
            r#"{"status":"ok","filename":"up.txt","size":6}"#,
        );
        round_trip(
            Reply::Ok(Listing {
                files: vec![
                    ListEntry {
                        name: "a".into(),
                        size: 1,
                    },
                    ListEntry {
                        name: "b".into(),
                        size: 0,
                    },
                ],
            }),
            r#"{"status":"ok","files":[{"name":"a","size":1},{"name":"b","size":0}]}"#,
        );
        round_trip(
            Reply::<FileHeader>::Error {
                message: "no such file".into(),
            },
            r#"{"status":"error","message":"no such file"}"#,
        );
        let mut out = Vec::new();
        write_error("no \"such\" file", &mut out);
        assert_eq!(
            out,
            b"{\"status\":\"error\",\"message\":\"no \\\"such\\\" file\"}\n"
        );
    }
}
