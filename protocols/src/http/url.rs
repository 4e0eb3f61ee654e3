//! Percent-decoding of paths and `application/x-www-form-urlencoded` query strings.
//!
//! Read RFC 3986 §2.1 (percent-encoding) and the WHATWG URL standard §5.1
//! (application/x-www-form-urlencoded parsing). The decoding itself is done by
//! `percent-encoding` and `form_urlencoded`, the two crates the `url` crate is built on; this
//! file only fixes which rules apply where, and its tests pin them: a `%` not followed by two
//! hex digits stays as it is, `+` means space in a form (never in a path), and bytes that are
//! not UTF-8 become U+FFFD in a form (a path stays bytes; the caller decides).

use std::borrow::Cow;

/// Percent-decodes a path into bytes. `%2F` becomes `/` and `%00` a NUL byte, so a caller
/// that maps paths to files must check the decoded segments (`..`, NUL, `/`) itself.
/// Borrows when there is nothing to decode (a lone `%`, as in `%zz`, decodes to nothing and
/// so borrows too).
pub fn decode_path(path: &str) -> Cow<'_, [u8]> {
    // `percent_decode_str` never treats `+` as space: that rule belongs to forms only.
    percent_encoding::percent_decode_str(path).into()
}

/// The (name, value) pairs of a query string such as `a=1&b=two+words&c=%C3%A9`, in order.
/// Empty pieces (`&&`) are skipped; a piece without `=` has an empty value. Each part borrows
/// when it needs no decoding.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    form_urlencoded::parse(query.as_bytes())
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

    #[test]
    fn paths_keep_bad_escapes_and_non_utf8_bytes() {
        assert_eq!(&*decode_path("/100%/%zz/%4"), b"/100%/%zz/%4");
        assert_eq!(&*decode_path("/a%FFb"), b"/a\xFFb");
        assert_eq!(pairs("a+b=c+d%2b"), vec![kv("a b", "c d+")]);
    }
}
