//! Which file names a file server may accept from the network.
//!
//! A name from a peer ends up in a path the server opens: `dir.join(name)`. Anything but a
//! plain base name lets the peer leave `dir`: `../etc/passwd`, `/etc/passwd` (joining an
//! absolute path replaces the base), `..\..\boot.ini` on Windows, `C:secret` (a drive-
//! relative path). [`safe_file_name`] accepts only names that stay a single component
//! inside the served directory on Unix and on Windows, and refuses the rest with a reason
//! that can go back to the client.
//!
//! Not covered, because the server runs on Unix: Windows device names (`CON`, `NUL`) and
//! Windows' silent stripping of trailing dots and spaces.

use std::fmt;

/// Longest file name, in bytes of UTF-8: `NAME_MAX` on Linux, and the limit of ext4, XFS
/// and btrfs. A longer name could not be created on the receiving side anyway.
pub const MAX_NAME_BYTES: usize = 255;

/// Why a file name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The empty string.
    Empty,
    /// More than [`MAX_NAME_BYTES`] bytes.
    TooLong,
    /// `.` or `..`: the directory itself or its parent.
    DotOrDotDot,
    /// Starts with `.`: hidden files (`.ssh`, `.env`) are not served.
    Hidden,
    /// Contains `/` or `\`: a path, not a name (this includes absolute paths).
    Separator,
    /// Contains `:`: a Windows drive (`C:`) or an NTFS alternate stream (`a.txt:x`).
    Colon,
    /// Contains NUL or another control character: NUL ends a C string early, so
    /// `a.txt\0.png` would be checked as one name and opened as another; the rest have no
    /// business in a name and make log lines lie.
    Control,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self {
            NameError::Empty => "the file name is empty",
            NameError::TooLong => "the file name is longer than 255 bytes",
            NameError::DotOrDotDot => "'.' and '..' are not file names",
            NameError::Hidden => "file names starting with '.' are not served",
            NameError::Separator => "a file name cannot contain '/' or '\\'",
            NameError::Colon => "a file name cannot contain ':'",
            NameError::Control => "a file name cannot contain control characters",
        };
        f.write_str(why)
    }
}

impl std::error::Error for NameError {}

/// Returns `name` unchanged if it is a plain base name that is safe to join to the served
/// directory; otherwise says why not. Nothing is trimmed or rewritten: a name that needs
/// fixing is refused, so what the client asked for is what the server opens.
pub fn safe_file_name(name: &str) -> Result<&str, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name == "." || name == ".." {
        return Err(NameError::DotOrDotDot);
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator);
    }
    if name.starts_with('.') {
        return Err(NameError::Hidden);
    }
    if name.contains(':') {
        return Err(NameError::Colon);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_unchanged() {
        for name in [
            "Screenshot-1.png",
            "a",
            "report 2024.pdf",
            "Снимок экрана.png",
            "😀.txt",
            "a..b",
            "trailing.",
            " leading space",
            &"n".repeat(MAX_NAME_BYTES),
        ] {
            assert_eq!(safe_file_name(name), Ok(name));
        }
    }

    #[test]
    fn unsafe_names_are_refused_with_a_reason() {
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        // 128 two-byte letters: 128 characters, 256 bytes.
        let long_utf8 = "я".repeat(128);
        for (name, err) in [
            ("", NameError::Empty),
            (&long, NameError::TooLong),
            (&long_utf8, NameError::TooLong),
            (".", NameError::DotOrDotDot),
            ("..", NameError::DotOrDotDot),
            (".ssh", NameError::Hidden),
            ("...", NameError::Hidden),
            ("../etc/passwd", NameError::Separator),
            ("/etc/passwd", NameError::Separator),
            ("dir/file", NameError::Separator),
            ("..\\boot.ini", NameError::Separator),
            ("\\\\server\\share", NameError::Separator),
            ("C:", NameError::Colon),
            ("C:secret.txt", NameError::Colon),
            ("a.txt:stream", NameError::Colon),
            ("a.txt\0.png", NameError::Control),
            ("new\nline", NameError::Control),
            ("esc\u{1b}[2J", NameError::Control),
            ("del\u{7f}", NameError::Control),
        ] {
            assert_eq!(safe_file_name(name), Err(err), "{name:?}");
        }
        assert_eq!(
            NameError::Separator.to_string(),
            "a file name cannot contain '/' or '\\'"
        );
    }
}
