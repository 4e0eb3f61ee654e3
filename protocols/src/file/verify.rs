//! Checking a received file against what the sender announced: its size and SHA-256.
//!
//! The lesson's client trusts that reading to EOF got the whole file. It cannot tell a
//! finished transfer from one cut short by a crash or a reset. Request mode announces the
//! size and a SHA-256 digest before the bytes, and [`Sha256Verifier`] checks both while the
//! bytes stream through, so the receiver never has to hold the file to check it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest. On the wire it is 64 lowercase hex digits (uppercase is accepted).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

/// A digest that is not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadDigest;

impl fmt::Display for BadDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sha256 digest is 64 hex digits")
    }
}

impl std::error::Error for BadDigest {}

impl Sha256Digest {
    /// The digest of `data`, all at once (for data already in memory).
    pub fn of(data: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(data).into())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Sha256Digest, BadDigest> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return Err(BadDigest);
        }
        let mut digest = [0; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
        }
        Ok(Sha256Digest(digest))
    }
}

fn hex_value(digit: u8) -> Result<u8, BadDigest> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(BadDigest),
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Sha256Digest::from_hex(&hex).map_err(serde::de::Error::custom)
    }
}

/// The received file does not match what was announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// More bytes arrived than announced; reported as soon as it happens.
    TooMuchData {
        /// The announced size.
        expected: u64,
    },
    /// The transfer ended with fewer bytes than announced.
    SizeMismatch {
        /// The announced size.
        expected: u64,
        /// What arrived.
        received: u64,
    },
    /// The size is right, the content is not.
    ChecksumMismatch {
        /// The announced digest.
        expected: Sha256Digest,
        /// The digest of what arrived.
        actual: Sha256Digest,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::TooMuchData { expected } => {
                write!(f, "more than the announced {expected} bytes arrived")
            }
            VerifyError::SizeMismatch { expected, received } => write!(
                f,
                "expected {expected} bytes, received {received}: the transfer was cut short"
            ),
            VerifyError::ChecksumMismatch { expected, actual } => {
                write!(f, "sha256 mismatch: expected {expected}, received {actual}")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// Counts and hashes a file's bytes as they arrive; [`Sha256Verifier::finish`] compares
/// them with the announced size and digest.
///
/// A running check inside a receiver, not a protocol machine: it has no events, so
/// [`Sha256Verifier::handle_bytes`] answers in the call (bytes past the announced size are
/// refused there) rather than through a `poll_event` (see the crate doc).
#[derive(Clone)]
pub struct Sha256Verifier {
    hasher: Sha256,
    expected_size: u64,
    expected_digest: Sha256Digest,
    received: u64,
}

impl fmt::Debug for Sha256Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256Verifier")
            .field("expected_size", &self.expected_size)
            .field("expected_digest", &self.expected_digest)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Sha256Verifier {
    /// A verifier for a file announced as `expected_size` bytes with `expected_digest`.
    pub fn new(expected_size: u64, expected_digest: Sha256Digest) -> Self {
        Sha256Verifier {
            hasher: Sha256::new(),
            expected_size,
            expected_digest,
            received: 0,
        }
    }

    /// Bytes of the file arrived. Bytes past the announced size are refused (and not
    /// counted); a raw-mode receiver can avoid that by passing at most
    /// [`Sha256Verifier::remaining`] bytes and treating the rest as the peer's error.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        if bytes.len() as u64 > self.remaining() {
            return Err(VerifyError::TooMuchData {
                expected: self.expected_size,
            });
        }
        self.hasher.update(bytes);
        self.received += bytes.len() as u64;
        Ok(())
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes still to come, by the announced size.
    pub fn remaining(&self) -> u64 {
        self.expected_size - self.received
    }

    /// The transfer ended: is it the announced file? Returns its digest if so.
    pub fn finish(self) -> Result<Sha256Digest, VerifyError> {
        if self.received != self.expected_size {
            return Err(VerifyError::SizeMismatch {
                expected: self.expected_size,
                received: self.received,
            });
        }
        let actual = Sha256Digest(self.hasher.finalize().into());
        if actual != self.expected_digest {
            return Err(VerifyError::ChecksumMismatch {
                expected: self.expected_digest,
                actual,
            });
        }
        Ok(actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same_every_split;

    /// `sha256(b"hello\n")`, from Python's `hashlib.sha256(b"hello\n").hexdigest()`.
    const HELLO: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    /// `sha256(b"")`.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest(hex: &str) -> Sha256Digest {
        Sha256Digest::from_hex(hex).expect("valid hex")
    }

    #[test]
    fn digests_print_and_parse_as_hex() {
        assert_eq!(Sha256Digest::of(b"hello\n").to_string(), HELLO);
        assert_eq!(Sha256Digest::of(b"").to_string(), EMPTY);
        assert_eq!(digest(&HELLO.to_uppercase()), digest(HELLO));
        assert_eq!(Sha256Digest::from_hex("abc"), Err(BadDigest));
        assert_eq!(Sha256Digest::from_hex(&"g".repeat(64)), Err(BadDigest));
        assert_eq!(Sha256Digest::from_hex(&"é".repeat(32)), Err(BadDigest));
    }

    #[test]
    fn the_announced_file_verifies_however_it_arrives() {
        let got = same_every_split(b"hello\n", |pieces| {
            let mut verifier = Sha256Verifier::new(6, digest(HELLO));
            for piece in pieces {
                verifier.handle_bytes(piece)?;
            }
            verifier.finish()
        });
        assert_eq!(got, Ok(digest(HELLO)));
        assert_eq!(
            Sha256Verifier::new(0, digest(EMPTY)).finish(),
            Ok(digest(EMPTY))
        );
    }

    #[test]
    fn short_long_and_corrupt_transfers_are_caught() {
        let mut v = Sha256Verifier::new(6, digest(HELLO));
        v.handle_bytes(b"hell").expect("within size");
        assert_eq!(v.remaining(), 2);
        assert_eq!(
            v.finish(),
            Err(VerifyError::SizeMismatch {
                expected: 6,
                received: 4
            })
        );

        let mut v = Sha256Verifier::new(6, digest(HELLO));
        v.handle_bytes(b"hello").expect("within size");
        assert_eq!(
            v.handle_bytes(b"\n!"),
            Err(VerifyError::TooMuchData { expected: 6 })
        );
        assert_eq!(v.received(), 5);

        let mut v = Sha256Verifier::new(6, digest(HELLO));
        v.handle_bytes(b"HELLO\n").expect("within size");
        assert_eq!(
            v.finish(),
            Err(VerifyError::ChecksumMismatch {
                expected: digest(HELLO),
                actual: Sha256Digest::of(b"HELLO\n"),
            })
        );
    }
}
