//! Static files: what `python -m http.server` does, without its way out of the directory.
//!
//! A request path is decoded, split into segments, and checked *before* it touches the
//! file system: an empty or `.` segment is skipped, `..` is refused (403) whether it came
//! as `..` or `%2e%2e`, and a NUL byte is refused. The joined path is then canonicalized
//! (symlinks resolved) and must still lie under the served root: a symlink that points
//! outside gets 403, never the file.
//!
//! Then: a directory without a trailing slash is redirected (relative links in its
//! listing need the slash), a directory serves its `index.html` or an HTML listing, a file
//! gets `Content-Type` from its extension, `Last-Modified`, `Accept-Ranges`, and may answer
//! `If-Modified-Since` with 304 and a single `Range` with 206 (or 416). The body is a
//! [`FileBody`] that the connection streams in chunks as the socket drains.

use super::router::{Body, Request, Response};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A directory served over HTTP.
#[derive(Debug, Clone)]
pub struct StaticDir {
    /// Canonical (symlink-free, absolute) root.
    root: PathBuf,
}

/// A file, or a range of one, to send as a response body.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    remaining: u64,
    len: u64,
}

impl FileBody {
    /// Bytes this body has in all.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file or range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads the next chunk into `buf` (at most `buf.len()`, never past the range).
    /// `Ok(0)` once everything was read; an early end of file is an error (the file shrank
    /// under us, and the promised Content-Length can no longer be kept).
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being sent",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl StaticDir {
    /// Serves `root` (which must exist and be a directory).
    pub fn new(root: &Path) -> io::Result<StaticDir> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticDir { root })
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Answers `req` for `rest`, the decoded path after the route's `prefix`.
    pub fn serve(&self, req: &Request<'_>, rest: &str, prefix: &str) -> Response {
        let path = match self.resolve(rest) {
            Ok(p) => p,
            Err(status) => return error(status),
        };
        let meta = match path.metadata() {
            Ok(m) => m,
            Err(_) => return error(404),
        };
        if meta.is_dir() {
            if !req.path().ends_with('/') {
                // Keep the raw (still encoded) path in the Location, plus the slash.
                let location = format!("{}/", req.raw_path());
                return Response::text(301, "301 Moved Permanently\n")
                    .with_header("Location", location);
            }
            let index = path.join("index.html");
            if index.is_file() {
                return self.file(req, &index);
            }
            return listing(&path, &format!("{prefix}{rest}"));
        }
        self.file(req, &path)
    }

    /// Maps the decoded request path to a file system path under the root, or a status.
    fn resolve(&self, rest: &str) -> Result<PathBuf, u16> {
        if rest.contains('\0') {
            return Err(400);
        }
        let mut path = self.root.clone();
        for segment in rest.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(403),
                s => path.push(s),
            }
        }
        // Symlinks are followed, and the result must still be inside the root.
        match path.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(real),
            Ok(_) => Err(403),
            Err(_) => Err(404),
        }
    }

    fn file(&self, req: &Request<'_>, path: &Path) -> Response {
        let Ok(mut file) = File::open(path) else {
            return error(403);
        };
        let Ok(meta) = file.metadata() else {
            return error(404);
        };
        if !meta.is_file() {
            return error(403); // a device, a FIFO: not something to stream
        }
        let len = meta.len();
        let modified = meta.modified().ok().map(DateTime::<Utc>::from);
        let content_type = with_utf8(
            mime_guess::from_path(path)
                .first_raw()
                .unwrap_or("application/octet-stream"),
        );
        let mut headers = vec![("Accept-Ranges", "bytes".to_string())];
        if let Some(m) = modified {
            headers.push(("Last-Modified", netloop_protocols::http::http_date(m)));
            if not_modified_since(req.header("if-modified-since"), m) {
                let mut r = Response::new(304, content_type, Body::Empty);
                r.headers = headers;
                return r;
            }
        }
        let (status, offset, count) = match parse_range(req.header("range"), len) {
            RangeOutcome::Whole => (200, 0, len),
            RangeOutcome::Part { first, last } => {
                headers.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
                (206, first, last - first + 1)
            }
            RangeOutcome::Unsatisfiable => {
                let r = Response::text(416, "416 Range Not Satisfiable\n");
                return r.with_header("Content-Range", format!("bytes */{len}"));
            }
        };
        if offset > 0 && file.seek(SeekFrom::Start(offset)).is_err() {
            return error(500);
        }
        let body = FileBody {
            file,
            remaining: count,
            len: count,
        };
        let mut r = Response::new(status, content_type, Body::File(body));
        r.headers = headers;
        r
    }
}

fn error(status: u16) -> Response {
    match status {
        400 => Response::text(400, "400 Bad Request\n"),
        403 => Response::text(403, "403 Forbidden\n"),
        404 => Response::not_found(),
        _ => Response::text(500, "500 Internal Server Error\n"),
    }
}

/// `If-Modified-Since` (RFC 9110 §13.1.3): true when the file has not changed since the
/// client's copy. HTTP dates have whole seconds, so the file's time is compared in seconds.
fn not_modified_since(header: Option<&[u8]>, modified: DateTime<Utc>) -> bool {
    let Some(since) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    match DateTime::parse_from_rfc2822(since.trim()) {
        Ok(since) => modified.timestamp() <= since.timestamp(),
        Err(_) => false, // an invalid date is ignored (RFC 9110 §13.1.3)
    }
}

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No (usable) Range: send everything with 200.
    Whole,
    /// One satisfiable range, inclusive: 206.
    Part {
        /// First byte.
        first: u64,
        /// Last byte (inclusive).
        last: u64,
    },
    /// A valid range that starts past the end: 416.
    Unsatisfiable,
}

/// Parses a single byte range (RFC 9110 §14.1.2): `bytes=first-last`, `bytes=first-`,
/// `bytes=-suffix`. Several ranges, other units and malformed values are ignored, which
/// RFC 9110 §14.2 allows (the whole representation is sent instead).
pub fn parse_range(header: Option<&[u8]>, len: u64) -> RangeOutcome {
    let Some(spec) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return RangeOutcome::Whole;
    };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Whole;
    };
    if spec.contains(',') {
        return RangeOutcome::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeOutcome::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if len == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
            None => RangeOutcome::Whole,
        },
        (first, "") => match num(first) {
            Some(f) if f >= len => RangeOutcome::Unsatisfiable,
            Some(f) => RangeOutcome::Part {
                first: f,
                last: len - 1,
            },
            None => RangeOutcome::Whole,
        },
        (first, last) => match (num(first), num(last)) {
            (Some(f), Some(l)) if f > l => RangeOutcome::Whole, // invalid: ignore
            (Some(f), Some(_)) if f >= len => RangeOutcome::Unsatisfiable,
            (Some(f), Some(l)) => RangeOutcome::Part {
                first: f,
                last: l.min(len - 1),
            },
            _ => RangeOutcome::Whole,
        },
    }
}

/// An HTML listing of `dir`, shown at `shown` (the decoded request path, ending in `/`).
fn listing(dir: &Path, shown: &str) -> Response {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return error(403);
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let mut name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                name.push('/');
            }
            name
        })
        .collect();
    names.sort();
    let title = html_escape(shown);
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Directory listing for {title}</title>\n</head>\n<body>\n<h1>Directory listing for {title}</h1>\n<hr>\n<ul>\n"
    );
    for name in &names {
        let _ = writeln!(
            html,
            "<li><a href=\"{}\">{}</a></li>",
            href_escape(name),
            html_escape(name)
        );
    }
    html.push_str("</ul>\n<hr>\n</body>\n</html>\n");
    Response::html(200, html)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a name for an `href`, keeping RFC 3986 unreserved characters and `/`.
fn href_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Text types say `charset=utf-8`: without it a browser reads `text/plain` as
/// windows-1252, and `été` shows as `Ã©tÃ©`. HTML is left alone (a page declares its own
/// charset in a `<meta>`, which a header would override).
fn with_utf8(content_type: &'static str) -> &'static str {
    match content_type {
        "text/plain" => "text/plain; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        "text/csv" => "text/csv; charset=utf-8",
        "text/markdown" | "text/x-markdown" => "text/markdown; charset=utf-8",
        "text/javascript" | "application/javascript" => "text/javascript; charset=utf-8",
        "application/json" => "application/json; charset=utf-8",
        "text/xml" | "application/xml" => "application/xml; charset=utf-8",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        let r = |h: &str| parse_range(Some(h.as_bytes()), 100);
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(r("bytes=0-9"), Part { first: 0, last: 9 });
        assert_eq!(
            r("bytes=90-"),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            r("bytes=-10"),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(r("bytes=-1000"), Part { first: 0, last: 99 });
        assert_eq!(
            r("bytes=50-1000"),
            Part {
                first: 50,
                last: 99
            }
        );
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=100-200"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Whole, "several ranges: the whole file");
        assert_eq!(r("bytes=9-0"), Whole, "invalid: ignored");
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(r("bytes=a-b"), Whole);
        assert_eq!(r("bytes=+1-2"), Whole);
        assert_eq!(parse_range(Some(b"bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn if_modified_since_compares_whole_seconds() {
        let t = DateTime::parse_from_rfc2822("Wed, 25 Nov 2026 10:00:00 GMT")
            .expect("date")
            .with_timezone(&Utc);
        let later = t + chrono::Duration::milliseconds(500);
        assert!(not_modified_since(
            Some(b"Wed, 25 Nov 2026 10:00:00 GMT"),
            later
        ));
        assert!(!not_modified_since(
            Some(b"Wed, 25 Nov 2026 09:59:59 GMT"),
            later
        ));
        assert!(
            !not_modified_since(Some(b"yesterday"), later),
            "invalid dates are ignored"
        );
        assert!(!not_modified_since(None, later));
    }

    #[test]
    fn escaping() {
        assert_eq!(html_escape("<a & 'b'>"), "&lt;a &amp; &#x27;b&#x27;&gt;");
        assert_eq!(href_escape("a b/ü?.txt"), "a%20b/%C3%BC%3F.txt");
    }
}
