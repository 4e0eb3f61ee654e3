//! The one helper every protocol test uses: feed the same bytes whole, one byte at a time,
//! and at every split, and check that the protocol sees the same thing each way.
//!
//! TCP has no message boundaries: a peer's `write` of 100 bytes may arrive as one read of
//! 100, or as 100 reads of 1, or anything in between. A parser that only works when a
//! message arrives whole is a parser with a bug waiting for a busy network.

/// Every way of cutting `input` into pieces that this helper tries: the whole input, pieces
/// of every size from 1 (byte by byte) to `len - 1`, and every single cut into two pieces.
pub fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut ways = vec![vec![input]];
    for size in 1..input.len() {
        ways.push(input.chunks(size).collect());
    }
    for cut in 1..input.len() {
        ways.push(vec![&input[..cut], &input[cut..]]);
    }
    ways
}

/// Feeds `input` every way [`splits`] knows, each time to a fresh state from `run`, and
/// asserts that every way gives the same result as feeding it whole. Returns that result.
///
/// `run` receives the pieces in order and returns what the protocol produced (events,
/// output bytes, an error): anything comparable.
#[track_caller]
pub fn same_every_split<T, F>(input: &[u8], mut run: F) -> T
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut(&[&[u8]]) -> T,
{
    let mut ways = splits(input).into_iter();
    let whole = run(&ways.next().expect("splits always yields the whole input"));
    for pieces in ways {
        let got = run(&pieces);
        assert_eq!(
            got,
            whole,
            "fed in {} pieces of sizes {:?}, the result differs from feeding it whole",
            pieces.len(),
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_whole_bytewise_and_every_cut() {
        let ways = splits(b"abc");
        assert!(ways.contains(&vec![&b"abc"[..]]));
        assert!(ways.contains(&vec![&b"a"[..], b"b", b"c"]));
        assert!(ways.contains(&vec![&b"ab"[..], b"c"]));
        assert!(ways.contains(&vec![&b"a"[..], b"bc"]));
        for way in &ways {
            assert_eq!(way.concat(), b"abc");
        }
    }

    #[test]
    #[should_panic(expected = "differs from feeding it whole")]
    fn a_split_sensitive_parser_is_caught() {
        // A "parser" that only counts reads: wrong on purpose.
        same_every_split(b"hello", |pieces| pieces.len());
    }
}
