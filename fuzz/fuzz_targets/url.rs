//! The URL functions (http/url.rs): `decode_path` and `query_pairs`. Byte 0 picks the
//! property; the rest is the input.
//!
//! Properties:
//! - `decode_path` never grows its input, borrows when there is no `%`, and undoes
//!   percent-encoding of any bytes exactly (encoded with the `percent-encoding` crate);
//!   `+` stays `+` in a path;
//! - `query_pairs` undoes `form_urlencoded`'s serialiser for any pairs of strings, and on
//!   any query string never yields more text than it was given (a `%XX` or `+` only
//!   shrinks, and bad UTF-8 becomes U+FFFD, 3 bytes for each bad byte at most).
#![no_main]

use std::borrow::Cow;

use netloop_protocols::http::url::{decode_path, query_pairs};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // decode_path on arbitrary text
    let decoded = decode_path(&text);
    assert!(decoded.len() <= text.len(), "decoding grew the path");
    if !text.contains('%') {
        assert!(
            matches!(decoded, Cow::Borrowed(_)),
            "copied a path with nothing to decode"
        );
        assert_eq!(&decoded[..], text.as_bytes());
    }
    // query_pairs on arbitrary text
    let mut out = 0;
    for (k, v) in query_pairs(&text) {
        out += k.len() + v.len();
    }
    assert!(
        out <= text.len() * 3,
        "a query that decodes larger than it can"
    );

    if which & 1 == 0 {
        // percent-encoding of any bytes, decoded back
        let encoded: String = percent_encode(rest, NON_ALPHANUMERIC).collect();
        assert_eq!(
            &decode_path(&encoded)[..],
            rest,
            "path round trip of {encoded:?}"
        );
        let plus = decode_path("a+b");
        assert_eq!(&plus[..], b"a+b");
    } else {
        // pairs cut from the input at NUL and 0x01, serialised, parsed back
        let pairs: Vec<(String, String)> = text
            .split('\0')
            .map(|p| match p.split_once('\u{1}') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect();
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            ser.append_pair(k, v);
        }
        let query = ser.finish();
        let back: Vec<(String, String)> = query_pairs(&query)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        // The serialiser writes an empty pair as `=`, which reads back as one.
        let expected = pairs;
        assert_eq!(back, expected, "query round trip of {query:?}");
    }
});
