//! C2SP `tlog-proof@v1`: a text proof that one entry is in the log,
//! checkable offline with nothing but the log's verifier key
//! (<https://c2sp.org/tlog-proof>).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! index 41
//! <base64 inclusion proof hash>
//! ...
//!
//! <the signed checkpoint note, verbatim, cosignatures included>
//! ```
//!
//! The proof is the RFC 6962 inclusion proof of leaf `index` in the tree the
//! checkpoint commits to. This module writes and verifies the text; it does
//! not fetch checkpoints or choose which one to prove against, and it does
//! not write the optional `extra` line (one it reads is skipped: the format
//! leaves it unauthenticated).

use crate::checkpoint::{Checkpoint, CheckpointError, NoteVerifier, NOTE_BYTES_MAX};
use crate::merkle::{verify_inclusion, Hash, MerkleError};
use base64::{engine::general_purpose::STANDARD, Engine as _};

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// The most proof hashes accepted: a tree of 2^62 leaves needs 62.
const PROOF_HASHES_MAX: usize = 64;

/// What is wrong with a proof's text, or what it fails to prove.
#[derive(Debug, thiserror::Error)]
pub enum TlogProofError {
    #[error("the tlog-proof is malformed: {0}")]
    Malformed(String),
    #[error("the tlog-proof's checkpoint does not verify: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "the tlog-proof does not prove leaf {index} in the checkpoint of size {size}: {source}"
    )]
    Inclusion {
        index: u64,
        size: u64,
        source: MerkleError,
    },
}

/// A parsed proof: the entry's index, its inclusion proof and the signed
/// checkpoint note it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The signed note, exactly as the log signed it.
    pub checkpoint_note: String,
}

impl TlogProof {
    /// The proof's text, c2sp.org/tlog-proof@v1.
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\nindex {}\n", self.index);
        for hash in &self.proof {
            text.push_str(&STANDARD.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint_note);
        text
    }

    /// Parses a proof strictly: the header line, an optional `extra` line,
    /// `index N` in canonical decimal, canonical base64 hashes of 32 bytes,
    /// a blank line, then the checkpoint note (checked when verified).
    pub fn parse(text: &str) -> Result<TlogProof, TlogProofError> {
        let malformed = |why: &str| TlogProofError::Malformed(why.to_string());
        if text.len() > NOTE_BYTES_MAX + PROOF_HASHES_MAX * 45 + 128 {
            return Err(malformed("it is longer than any proof of a checkpoint"));
        }
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(malformed("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| malformed("no index line"))?;
        if line.starts_with("extra ") {
            line = lines.next().ok_or_else(|| malformed("no index line"))?;
        }
        let digits = line
            .strip_prefix("index ")
            .ok_or_else(|| malformed("the index line must read `index N`"))?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        let index: u64 =
            digits.parse().ok().filter(|_| canonical).ok_or_else(|| {
                malformed("the index must be a decimal number without leading zeros")
            })?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == PROOF_HASHES_MAX {
                return Err(malformed("more proof hashes than any tree needs"));
            }
            let bytes = STANDARD
                .decode(line)
                .ok()
                .filter(|b| b.len() == 32 && STANDARD.encode(b) == line)
                .ok_or_else(|| malformed("each proof line must be the base64 of a 32-byte hash"))?;
            proof.push(bytes.try_into().expect("32 bytes"));
        }
        Ok(TlogProof {
            index,
            proof,
            checkpoint_note: note.to_string(),
        })
    }

    /// Verifies that the log whose key is `verifier` signed the checkpoint,
    /// and that the leaf with hash `leaf_hash` is at `index` in the tree it
    /// commits to. Returns the checkpoint.
    pub fn verify(
        &self,
        verifier: &NoteVerifier,
        leaf_hash: &Hash,
    ) -> Result<Checkpoint, TlogProofError> {
        let checkpoint = verifier.verify_checkpoint(&self.checkpoint_note)?;
        verify_inclusion(
            self.index,
            checkpoint.size,
            leaf_hash,
            &self.proof,
            &checkpoint.root,
        )
        .map_err(|source| TlogProofError::Inclusion {
            index: self.index,
            size: checkpoint.size,
            source,
        })?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::NoteSigner;
    use crate::merkle::{leaf_hash, prove_inclusion, tree_hash, Frontier, MemoryHashes};

    /// A log of `n` leaves, its signer, and a proof of leaf `index`.
    fn proof_of(n: u64, index: u64) -> (NoteSigner, Vec<Vec<u8>>, TlogProof) {
        let signer = NoteSigner::generate("example.com/log").unwrap();
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i}").into_bytes()).collect();
        let mut frontier = Frontier::new();
        let mut hashes = MemoryHashes(Vec::new());
        for leaf in &leaves {
            let mut out = Vec::new();
            frontier.append(leaf_hash(leaf), &mut out);
            for (i, h) in out {
                if hashes.0.len() <= i as usize {
                    hashes.0.resize(i as usize + 1, [0; 32]);
                }
                hashes.0[i as usize] = h;
            }
        }
        let root = tree_hash(n, &hashes).unwrap();
        let note = signer.sign(&Checkpoint {
            origin: "example.com/log".into(),
            size: n,
            root,
        });
        let proof = prove_inclusion(index, n, &hashes).unwrap();
        (
            signer,
            leaves,
            TlogProof {
                index,
                proof,
                checkpoint_note: note,
            },
        )
    }

    #[test]
    fn a_written_proof_parses_back_and_verifies_offline() {
        let (signer, leaves, proof) = proof_of(13, 6);
        let text = proof.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 6\n"));
        let parsed = TlogProof::parse(&text).unwrap();
        assert_eq!(parsed, proof);
        let checkpoint = parsed
            .verify(&signer.verifier(), &leaf_hash(&leaves[6]))
            .unwrap();
        assert_eq!(checkpoint.size, 13);
    }

    #[test]
    fn a_proof_of_another_leaf_or_under_another_key_fails() {
        let (signer, leaves, proof) = proof_of(13, 6);
        assert!(matches!(
            proof.verify(&signer.verifier(), &leaf_hash(&leaves[7])),
            Err(TlogProofError::Inclusion {
                index: 6,
                size: 13,
                ..
            })
        ));
        let stranger = NoteSigner::generate("example.com/log").unwrap();
        assert!(matches!(
            proof.verify(&stranger.verifier(), &leaf_hash(&leaves[6])),
            Err(TlogProofError::Checkpoint(_))
        ));
    }

    #[test]
    fn a_tampered_proof_line_fails() {
        let (signer, leaves, mut proof) = proof_of(13, 6);
        proof.proof[0][0] ^= 1;
        let parsed = TlogProof::parse(&proof.to_text()).unwrap();
        assert!(parsed
            .verify(&signer.verifier(), &leaf_hash(&leaves[6]))
            .is_err());
    }

    #[test]
    fn malformed_text_is_refused_with_a_reason() {
        let (_, _, proof) = proof_of(4, 1);
        let good = proof.to_text();
        let extra = good.replacen("index", "extra aGk=\nindex", 1);
        assert_eq!(TlogProof::parse(&extra).unwrap(), proof);
        for bad in [
            good.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
            good.replacen("index 1", "index 01", 1),
            good.replacen("index 1", "index -1", 1),
            good.replacen("index 1", "idx 1", 1),
            good.replacen("\n\n", "\n", 1),
            good.replacen("index 1\n", "index 1\nnot base64!\n", 1),
            good.replacen("index 1\n", "index 1\naGk=\n", 1),
            String::new(),
        ] {
            assert!(
                matches!(TlogProof::parse(&bad), Err(TlogProofError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
