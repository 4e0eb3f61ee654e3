//! Percent-decoding of paths and `application/x-www-form-urlencoded` query strings.
//!
//! Read RFC 3986 §2.1 (percent-encoding) and the WHATWG URL standard §5.1
//! (application/x-www-form-urlencoded parsing). Both are small enough to write out here
//! rather than pull in `url` and `percent-encoding`; the rules are the WHATWG ones: a `%`
//! not followed by two hex digits stays as it is, `+` means space in a form (never in a
//! path), and bytes that are not UTF-8 become U+FFFD.

use std::borrow::Cow;

/// Percent-decodes a path into bytes. `%2F` becomes `/` and `%00` a NUL byte, so a caller
/// that maps paths to files must check the decoded segments (`..`, NUL, `/`) itself.
/// Borrows when there is nothing to decode.
pub fn decode_path(path: &str) -> Cow<'_, [u8]> {
    percent_decode(path.as_bytes(), false)
}

/// The (name, value) pairs of a query string such as `a=1&b=two+words&c=%C3%A9`, in order.
/// Empty pieces (`&&`) are skipped; a piece without `=` has an empty value. Each part borrows
/// when it needs no decoding.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
}

/// One form-encoded name or value: `+` is space, then percent-decoding, then UTF-8 (lossy).
fn form_decode(text: &str) -> Cow<'_, str> {
    match percent_decode(text.as_bytes(), true) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

/// Replaces `%XX` with the byte it names (and `+` with space if `plus_is_space`).
fn percent_decode(input: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let special = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    let Some(first) = input.iter().position(special) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < input.len() {
        match input[i] {
            b'%' => match (
                input.get(i + 1).and_then(hex),
                input.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        query_pairs(q)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn query_pairs_decode_plus_and_percent() {
        assert_eq!(
            pairs("a=1&b=two+words&c=%C3%A9t%C3%A9&d"),
            vec![
                kv("a", "1"),
                kv("b", "two words"),
                kv("c", "été"),
                kv("d", "")
            ]
        );
        assert_eq!(pairs("&&x=%2B1&&"), vec![kv("x", "+1")]);
        assert_eq!(pairs("k=a=b"), vec![kv("k", "a=b")]);
        assert!(pairs("").is_empty());
    }

    #[test]
    fn bad_escapes_stay_and_bad_utf8_is_replaced() {
        assert_eq!(
            pairs("p=100%&q=%zz&r=%4"),
            vec![kv("p", "100%"), kv("q", "%zz"), kv("r", "%4")]
        );
        assert_eq!(pairs("x=%FF"), vec![kv("x", "\u{FFFD}")]);
    }

    #[test]
    fn undecoded_parts_borrow() {
        let (k, v) = query_pairs("plain=text").next().unwrap();
        assert!(matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))));
    }

    #[test]
    fn paths_decode_to_bytes_and_keep_plus() {
        assert_eq!(&*decode_path("/a%20b+c/%2e%2E/%00"), b"/a b+c/../\0");
        assert_eq!(&*decode_path("/%E2%82%AC"), "/€".as_bytes());
        assert!(matches!(decode_path("/plain"), Cow::Borrowed(_)));
    }
}
