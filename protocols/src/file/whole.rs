//! The lesson's client, for a document already in memory: `loads`, then `b64decode`.
//!
//! Lesson program 05 collects every byte until the server closes, then parses the whole
//! document at once. [`decode_whole`] does the same with serde_json. It is the simple way
//! when the document is small or already in memory; for a file arriving over a socket,
//! [`super::JsonBase64Decoder`] does the same job without holding the file.

use serde::Deserialize;

use super::base64::Base64Decoder;
use super::decoder::{DecodeError, is_whitespace};
use super::name::MAX_NAME_BYTES;

/// The lesson's client, for a document already in memory: parses it with serde_json and
/// decodes the base64. Returns the name (checked for length, not for safety) and the data.
///
/// This path reads all of JSON, as Python's `json.loads` does: nested values under unknown
/// keys are fine, and a repeated key keeps its last value. Base64 is read as by the
/// streaming decoder ([`super::base64`]). The `at` offsets in its errors are computed from
/// serde_json's line and column.
pub fn decode_whole(document: &[u8]) -> Result<(String, Vec<u8>), DecodeError> {
    use serde_json::Value;

    let mut deserializer = serde_json::Deserializer::from_slice(document);
    let value =
        Value::deserialize(&mut deserializer).map_err(|e| from_serde(document, &e, false))?;
    deserializer
        .end()
        .map_err(|e| from_serde(document, &e, true))?;
    let Value::Object(object) = value else {
        let at = document.iter().take_while(|&&c| is_whitespace(c)).count() as u64;
        return Err(DecodeError::InvalidJson {
            at,
            expected: "'{'",
        });
    };
    let string = |key: &'static str| match object.get(key) {
        None => Err(DecodeError::MissingKey(key)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(DecodeError::WrongType(key)),
    };
    let name = string("filename")?;
    let data = string("filedata")?;
    if name.len() > MAX_NAME_BYTES {
        return Err(DecodeError::NameTooLong);
    }
    let mut decoder = Base64Decoder::new();
    let mut bytes = Vec::with_capacity(data.len() / 4 * 3);
    decoder
        .handle_text(data.as_bytes(), &mut bytes)
        .and_then(|()| decoder.finish())
        .map_err(DecodeError::InvalidBase64)?;
    Ok((name.clone(), bytes))
}

/// Maps a serde_json error onto ours, turning its line and column into a byte offset.
fn from_serde(document: &[u8], e: &serde_json::Error, trailing: bool) -> DecodeError {
    if e.is_eof() {
        return DecodeError::UnexpectedEof;
    }
    let line_start = match e.line() {
        0 | 1 => 0,
        line => document
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == b'\n')
            .nth(line - 2)
            .map_or(document.len(), |(i, _)| i + 1),
    };
    let at = (line_start + e.column().saturating_sub(1)) as u64;
    match trailing {
        true => DecodeError::TrailingGarbage { at },
        false => DecodeError::InvalidJson {
            at,
            expected: "valid JSON",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::base64::Base64Error;

    #[test]
    fn whole_documents_report_errors_too() {
        assert_eq!(decode_whole(b""), Err(DecodeError::UnexpectedEof));
        assert_eq!(
            decode_whole(br#"{"filename": "a"#),
            Err(DecodeError::UnexpectedEof)
        );
        assert_eq!(
            decode_whole(br#"{"filename": "a", "filedata": ""} x"#),
            Err(DecodeError::TrailingGarbage { at: 34 })
        );
        assert!(matches!(
            decode_whole(b"{\n  \"filename\" 1}"),
            Err(DecodeError::InvalidJson { at: 15, .. })
        ));
        assert_eq!(
            decode_whole(br#"  [1]"#),
            Err(DecodeError::InvalidJson {
                at: 2,
                expected: "'{'"
            })
        );
        assert_eq!(
            decode_whole(br#"{"filedata": ""}"#),
            Err(DecodeError::MissingKey("filename"))
        );
        assert_eq!(
            decode_whole(br#"{"filename": 1, "filedata": ""}"#),
            Err(DecodeError::WrongType("filename"))
        );
        assert_eq!(
            decode_whole(br#"{"filename": "a", "filedata": "YQ"}"#),
            Err(DecodeError::InvalidBase64(Base64Error::Truncated))
        );
        let long = format!(r#"{{"filename": "{}", "filedata": ""}}"#, "n".repeat(256));
        assert_eq!(decode_whole(long.as_bytes()), Err(DecodeError::NameTooLong));
    }
}
