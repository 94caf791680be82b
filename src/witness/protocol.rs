//! The wire format of C2SP tlog-witness `add-checkpoint`
//! (<https://c2sp.org/tlog-witness>), shared by the witness that parses
//! requests and the log that writes them:
//!
//! ```text
//! old <size the witness last cosigned, decimal, no leading zeros>
//! <consistency proof hash, base64>      (0 to 63 lines, none when old is 0)
//!
//! <the signed checkpoint note>
//! ```
//!
//! A 200 answer is one or more cosignature lines; a 409 answer's body is
//! the witness's latest cosigned size and a newline, as `text/x.tlog.size`.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ledger::checkpoint::NOTE_BYTES_MAX;
use ledger::Hash;

/// The most consistency proof lines a request may carry (the spec's limit;
/// a proof between two sizes below 2^63 has at most 2·63 hashes, but a log
/// of fewer than 2^31 entries never needs more than 63 here).
pub const PROOF_LINES_MAX: usize = 63;

/// The largest request body accepted: a note of the largest accepted size,
/// the old size line and 63 proof lines of 45 bytes.
pub const REQUEST_BYTES_MAX: usize = NOTE_BYTES_MAX + 4 * 1024;

/// The largest response body a log reads from a witness: cosignature lines
/// for up to a hundred keys.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// The media type of a 409 answer's body.
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint<'a> {
    /// The size of the checkpoint the submitter believes the witness last cosigned.
    pub old_size: u64,
    /// RFC 6962 consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: &'a str,
}

/// Writes a request body.
pub fn format_request(old_size: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        body.push_str(&STANDARD.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// Parses a request body; the error says what is malformed (an answer of
/// 400 Bad Request).
pub fn parse_request(body: &[u8]) -> Result<AddCheckpoint<'_>, String> {
    let body = std::str::from_utf8(body).map_err(|_| "the request body is not UTF-8".to_owned())?;
    let (old_line, mut rest) = body
        .split_once('\n')
        .ok_or("the request body has no `old <size>` line ending in a newline")?;
    let old_size = old_line
        .strip_prefix("old ")
        .and_then(parse_canonical_size)
        .ok_or_else(|| {
            format!("the first line {old_line:?} is not `old <size>` with the size in decimal, without sign or leading zeros")
        })?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest
            .split_once('\n')
            .ok_or("the request body has no empty line before the checkpoint")?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == PROOF_LINES_MAX {
            return Err(format!(
                "the consistency proof has more than {PROOF_LINES_MAX} lines"
            ));
        }
        proof.push(parse_hash(line).ok_or_else(|| {
            format!("the consistency proof line {line:?} is not a 32-byte hash in padded base64")
        })?);
    }
    if old_size == 0 && !proof.is_empty() {
        return Err("a consistency proof from size 0 must be empty".to_owned());
    }
    Ok(AddCheckpoint {
        old_size,
        proof,
        note: rest,
    })
}

/// Reads a 409 answer's body: the witness's latest cosigned size.
pub fn parse_size_body(body: &str) -> Option<u64> {
    parse_canonical_size(body.strip_suffix('\n')?)
}

fn parse_canonical_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical {
        text.parse().ok()
    } else {
        None
    }
}

fn parse_hash(line: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(line).ok()?;
    let hash = Hash::try_from(bytes.as_slice()).ok()?;
    (STANDARD.encode(hash) == line).then_some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/log\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAA\n";

    #[test]
    fn a_written_request_parses_back() {
        let proof = vec![[1u8; 32], [2u8; 32]];
        let body = format_request(7, &proof, NOTE);
        assert!(body.starts_with("old 7\nAQEB"), "{body}");
        let parsed = parse_request(body.as_bytes()).unwrap();
        assert_eq!(
            parsed,
            AddCheckpoint {
                old_size: 7,
                proof,
                note: NOTE
            }
        );
        let empty = format_request(0, &[], NOTE);
        assert_eq!(empty, format!("old 0\n\n{NOTE}"));
        assert_eq!(
            parse_request(empty.as_bytes()).unwrap().proof,
            Vec::<Hash>::new()
        );
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let hash = STANDARD.encode([9u8; 32]);
        let too_long = format!("old 1\n{}\n{NOTE}", format!("{hash}\n").repeat(64));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\xff\n".to_vec(), "UTF-8"),
            (b"old 1".to_vec(), "no `old"),
            (format!("old 01\n\n{NOTE}").into_bytes(), "leading zeros"),
            (format!("old -1\n\n{NOTE}").into_bytes(), "leading zeros"),
            (format!("new 1\n\n{NOTE}").into_bytes(), "is not `old"),
            (format!("old 1\n{hash}\n").into_bytes(), "no empty line"),
            (
                format!("old 1\nAAAA\n\n{NOTE}").into_bytes(),
                "32-byte hash",
            ),
            (
                format!("old 1\n{hash} \n\n{NOTE}").into_bytes(),
                "32-byte hash",
            ),
            (too_long.into_bytes(), "more than 63"),
            (
                format!("old 0\n{hash}\n\n{NOTE}").into_bytes(),
                "must be empty",
            ),
        ];
        for (body, says) in cases {
            let error = parse_request(&body).unwrap_err();
            assert!(
                error.contains(says),
                "{:?}: {error}",
                String::from_utf8_lossy(&body)
            );
        }
        // 63 lines are accepted.
        let most = format!("old 1\n{}\n{NOTE}", format!("{hash}\n").repeat(63));
        assert_eq!(parse_request(most.as_bytes()).unwrap().proof.len(), 63);
    }

    #[test]
    fn size_bodies_parse() {
        assert_eq!(parse_size_body("42\n"), Some(42));
        assert_eq!(parse_size_body("0\n"), Some(0));
        for bad in ["42", "042\n", "x\n", "\n"] {
            assert_eq!(parse_size_body(bad), None, "{bad:?}");
        }
    }
}
