//! Witness cosignatures: C2SP `tlog-cosignature` `cosignature/v1`
//! (<https://c2sp.org/tlog-cosignature>), Ed25519.
//!
//! A cosignature is one more signature line on a checkpoint note, by which a
//! witness states that, as of a time, this is the largest checkpoint of the
//! log it has seen that is consistent with every one it saw before:
//!
//! ```text
//! — <witness name> base64(key id (4) || timestamp (8, big-endian) || Ed25519 signature (64))
//! ```
//!
//! The signature covers `cosignature/v1\ntime <timestamp>\n` followed by the
//! whole checkpoint body. Keys are signed-note keys of signature type 0x04:
//! the verifier key is `<name>+<hex8 key id>+base64(0x04 || public key)`, the
//! key id the first four bytes of `SHA-256(name || "\n" || 0x04 || public
//! key)`. A cosigner's private key is kept as an ordinary signed-note private
//! key (type 0x01), as transparency-dev's witness keeps it, and only its
//! cosignatures and verifier key use type 0x04.
//!
//! Not here: ML-DSA-44 cosignatures (type 0x06) and subtrees, the witness
//! protocol that asks for cosignatures (c2sp.org/tlog-witness), and which
//! witnesses a reader trusts ([`crate::witness_policy`]).

use crate::checkpoint::{
    key_id_of, parse_key_fields_of, split_note, CheckpointError, NoteSigner, SignatureLine,
    SIGNATURE_PREFIX,
};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use std::fmt;
use std::path::Path;

/// The signature type of an Ed25519 `cosignature/v1` key (c2sp.org/tlog-cosignature).
pub const ALGORITHM_COSIGNATURE_V1: u8 = 0x04;

/// The largest timestamp a cosignature may carry: 2^63 - 1.
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;

/// Key id, timestamp and Ed25519 signature.
const COSIGNATURE_BYTES: usize = 4 + 8 + Signature::BYTE_SIZE;

/// What is wrong with a cosignature or a cosigner key.
#[derive(Debug, thiserror::Error)]
pub enum CosignatureError {
    #[error(transparent)]
    Note(#[from] CheckpointError),
    #[error("the signature by {name}+{key_id:08x} is {length} bytes after its key id; a cosignature/v1 holds a timestamp and an Ed25519 signature, 72 bytes")]
    WrongLength {
        name: String,
        key_id: u32,
        length: usize,
    },
    #[error("the cosignature by {name}+{key_id:08x} has the timestamp {timestamp}, above the largest allowed, 2^63-1")]
    TimestampOutOfRange {
        name: String,
        key_id: u32,
        timestamp: u64,
    },
    #[error("the note carries no cosignature by the witness key {name}+{key_id:08x}")]
    Missing { name: String, key_id: u32 },
    #[error("the cosignature by {name}+{key_id:08x} does not verify over the checkpoint")]
    BadSignature { name: String, key_id: u32 },
}

/// One `cosignature/v1` signature: who made it, when (POSIX seconds), and
/// the Ed25519 signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Cosignature {
    pub name: String,
    pub key_id: u32,
    pub timestamp: u64,
    pub signature: [u8; Signature::BYTE_SIZE],
}

impl fmt::Debug for Cosignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cosignature")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl Cosignature {
    /// The signature line, `— <name> <base64>\n`, to append to the note.
    pub fn line(&self) -> String {
        let mut data = [0u8; COSIGNATURE_BYTES];
        data[..4].copy_from_slice(&self.key_id.to_be_bytes());
        data[4..12].copy_from_slice(&self.timestamp.to_be_bytes());
        data[12..].copy_from_slice(&self.signature);
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(data)
        )
    }

    /// Parses one signature line (with or without its final newline) as a
    /// cosignature. Whether it verifies is [`CosignatureVerifier::verify`]'s
    /// question.
    pub fn parse_line(line: &str) -> Result<Cosignature, CosignatureError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let parsed = crate::checkpoint::parse_signature_line(line)?;
        Self::from_signature_line(&parsed)
    }

    fn from_signature_line(line: &SignatureLine<'_>) -> Result<Cosignature, CosignatureError> {
        let data = &line.signature;
        if data.len() != COSIGNATURE_BYTES - 4 {
            return Err(CosignatureError::WrongLength {
                name: line.name.to_owned(),
                key_id: line.key_id,
                length: data.len(),
            });
        }
        let timestamp = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        if timestamp > TIMESTAMP_MAX {
            return Err(CosignatureError::TimestampOutOfRange {
                name: line.name.to_owned(),
                key_id: line.key_id,
                timestamp,
            });
        }
        Ok(Cosignature {
            name: line.name.to_owned(),
            key_id: line.key_id,
            timestamp,
            signature: data[8..].try_into().expect("64 bytes"),
        })
    }
}

/// The signed message: `cosignature/v1\ntime <timestamp>\n` and the
/// checkpoint body (c2sp.org/tlog-cosignature, "Ed25519 signed message").
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A signature line of a note: key name, key id and the bytes after the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub data: Vec<u8>,
}

/// Splits a signed note into its body and all its signature lines (the
/// log's, cosignatures and any others), checking the note's form
/// (c2sp.org/signed-note).
pub fn note_signatures(note: &str) -> Result<(&str, Vec<NoteSignature>), CosignatureError> {
    let (text, lines) = split_note(note)?;
    let signatures = lines
        .into_iter()
        .map(|line| NoteSignature {
            name: line.name.to_owned(),
            key_id: line.key_id,
            data: line.signature,
        })
        .collect();
    Ok((text, signatures))
}

/// Holds a witness's Ed25519 key and name, and cosigns checkpoints.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: SigningKey,
    note_signer: NoteSigner,
}

impl fmt::Debug for Cosigner {
    /// Shows the public identity only, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// The cosigner of an Ed25519 signed-note private key (type 0x01).
    pub fn from_note_signer(note_signer: NoteSigner) -> Cosigner {
        let key = note_signer.signing_key().clone();
        let name = note_signer.name().to_owned();
        Cosigner {
            key_id: key_id_of(&name, ALGORITHM_COSIGNATURE_V1, &key.verifying_key()),
            name,
            key,
            note_signer,
        }
    }

    /// Makes a new key named `name` from the operating system's randomness.
    pub fn generate(name: &str) -> Result<Cosigner, CosignatureError> {
        Ok(Self::from_note_signer(NoteSigner::generate(name)?))
    }

    /// Parses a private key in the Go note format
    /// `PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || seed)>`.
    pub fn from_private_key(text: &str) -> Result<Cosigner, CosignatureError> {
        Ok(Self::from_note_signer(NoteSigner::from_private_key(text)?))
    }

    /// Loads the key file at `path`, or creates it (mode 0600, atomically)
    /// with a new key named `name`; see [`NoteSigner::load_or_create`].
    pub fn load_or_create(path: &Path, name: &str) -> Result<Cosigner, CosignatureError> {
        Ok(Self::from_note_signer(NoteSigner::load_or_create(
            path, name,
        )?))
    }

    /// The private key in the Go note format (type 0x01); it is secret.
    pub fn private_key(&self) -> String {
        self.note_signer.private_key()
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id of the cosignature key (type 0x04).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key, `<name>+<hex8 key id>+base64(0x04 || public key)`,
    /// that logs and readers configure to check this witness's cosignatures.
    pub fn verifier_key(&self) -> String {
        self.verifier().verifier_key()
    }

    /// The verifier of this key's cosignatures.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Cosigns the checkpoint `body` (the note text, ending in a newline) as
    /// of `timestamp` (POSIX seconds, at most [`TIMESTAMP_MAX`]).
    ///
    /// # Panics
    ///
    /// If the timestamp is above [`TIMESTAMP_MAX`] or the body does not end
    /// in a newline: such a cosignature could never verify.
    pub fn sign_at(&self, body: &str, timestamp: u64) -> Cosignature {
        assert!(
            timestamp <= TIMESTAMP_MAX,
            "cosignature timestamp above 2^63-1"
        );
        assert!(body.ends_with('\n'), "a note body ends in a newline");
        let signature = self.key.sign(signed_message(body, timestamp).as_bytes());
        Cosignature {
            name: self.name.clone(),
            key_id: self.key_id,
            timestamp,
            signature: signature.to_bytes(),
        }
    }

    /// Cosigns the checkpoint `body` as of now.
    pub fn sign(&self, body: &str) -> Cosignature {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.sign_at(body, now.min(TIMESTAMP_MAX))
    }
}

/// Checks the cosignatures of one witness key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a verifier key `<name>+<hex8 key id>+base64(0x04 || public
    /// key)`, checking that the key id matches the name and key.
    pub fn from_verifier_key(text: &str) -> Result<CosignatureVerifier, CosignatureError> {
        let (name, id, bytes) = parse_key_fields_of(
            text,
            ALGORITHM_COSIGNATURE_V1,
            "an Ed25519 cosignature/v1 key (4)",
        )?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            CheckpointError::MalformedKey("the public key is not a valid Ed25519 point".into())
        })?;
        let computed = key_id_of(name, ALGORITHM_COSIGNATURE_V1, &key);
        if computed != id {
            return Err(CheckpointError::MalformedKey(format!(
                "the key id {id:08x} does not match the key, whose id is {computed:08x}"
            ))
            .into());
        }
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The verifier key in the signed-note format.
    pub fn verifier_key(&self) -> String {
        let mut data = [0u8; 33];
        data[0] = ALGORITHM_COSIGNATURE_V1;
        data[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(data)
        )
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id of this key.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Whether a signature line with this name and key id is this key's.
    pub fn is_signer_of(&self, name: &str, key_id: u32) -> bool {
        self.name == name && self.key_id == key_id
    }

    /// Checks that `cosignature` is this key's and verifies over `body`.
    pub fn verify(&self, body: &str, cosignature: &Cosignature) -> Result<(), CosignatureError> {
        let bad = || CosignatureError::BadSignature {
            name: self.name.clone(),
            key_id: self.key_id,
        };
        if !self.is_signer_of(&cosignature.name, cosignature.key_id)
            || cosignature.timestamp > TIMESTAMP_MAX
        {
            return Err(bad());
        }
        let message = signed_message(body, cosignature.timestamp);
        let signature = Signature::from_bytes(&cosignature.signature);
        self.key
            .verify_strict(message.as_bytes(), &signature)
            .map_err(|_| bad())
    }

    /// Finds this key's cosignature on a signed note and verifies it over
    /// the note's body. Lines by other keys are ignored; every line by this
    /// key must be a valid cosignature. With several, the latest is returned.
    pub fn verify_note(&self, note: &str) -> Result<Cosignature, CosignatureError> {
        let (body, lines) = split_note(note)?;
        self.verify_lines(body, &lines)?
            .ok_or_else(|| CosignatureError::Missing {
                name: self.name.clone(),
                key_id: self.key_id,
            })
    }

    /// This key's cosignatures among `lines`, each verified over `body`; the
    /// latest, or none.
    fn verify_lines(
        &self,
        body: &str,
        lines: &[SignatureLine<'_>],
    ) -> Result<Option<Cosignature>, CosignatureError> {
        let mut latest: Option<Cosignature> = None;
        for line in lines {
            if !self.is_signer_of(line.name, line.key_id) {
                continue;
            }
            let cosignature = Cosignature::from_signature_line(line)?;
            self.verify(body, &cosignature)?;
            if latest
                .as_ref()
                .is_none_or(|seen| seen.timestamp < cosignature.timestamp)
            {
                latest = Some(cosignature);
            }
        }
        Ok(latest)
    }

    /// This key's valid cosignature of `body` among the signatures of
    /// [`note_signatures`], or none; an invalid one is an error.
    pub fn find(
        &self,
        body: &str,
        signatures: &[NoteSignature],
    ) -> Result<Option<Cosignature>, CosignatureError> {
        let lines: Vec<SignatureLine<'_>> = signatures
            .iter()
            .map(|s| SignatureLine {
                name: &s.name,
                key_id: s.key_id,
                signature: s.data.clone(),
            })
            .collect();
        self.verify_lines(body, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteVerifier};
    use crate::merkle::leaf_hash;

    const ORIGIN: &str = "example.com/log";

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: leaf_hash(&size.to_le_bytes()),
        }
    }

    fn witness() -> Cosigner {
        Cosigner::generate("witness.example/w1").unwrap()
    }

    #[test]
    fn key_id_is_computed_with_type_0x04() {
        // transparency-dev/formats note_cosigv1_test.go: a witness's native
        // cosignature/v1 verifier key in the public witness network.
        let vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
        let verifier = CosignatureVerifier::from_verifier_key(vkey).unwrap();
        assert_eq!(verifier.name(), "remora.n621.de");
        assert_eq!(verifier.key_id(), 0xda77ade7);
        assert_eq!(verifier.verifier_key(), vkey);
        // A wrong key id, and a type 0x01 key, are refused.
        for bad in [
            "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
            "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6",
        ] {
            assert!(
                CosignatureVerifier::from_verifier_key(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamp_is_read_from_a_published_cosignature() {
        // transparency-dev/formats note_cosigv1_test.go, TestCoSigV1Timestamp.
        let line = "— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";
        let cosignature = Cosignature::parse_line(line).unwrap();
        assert_eq!(cosignature.timestamp, 1727964367);
        assert_eq!(cosignature.key_id, 0x646846b9);
        assert_eq!(format!("{}\n", line), cosignature.line());
        // A plain Ed25519 signature line (68 bytes) is not a cosignature.
        let plain = "— w eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=";
        assert!(matches!(
            Cosignature::parse_line(plain),
            Err(CosignatureError::WrongLength { length: 64, .. })
        ));
    }

    #[test]
    fn signs_the_timestamped_message_and_verifies() {
        let witness = witness();
        let body = checkpoint(7).body();
        let cosignature = witness.sign_at(&body, 1_700_000_000);
        assert_eq!(cosignature.timestamp, 1_700_000_000);
        // The signature is a plain Ed25519 signature over the message.
        let message = format!("cosignature/v1\ntime 1700000000\n{body}");
        let public = VerifyingKey::from_bytes(
            STANDARD
                .decode(witness.verifier_key().splitn(3, '+').nth(2).unwrap())
                .unwrap()[1..]
                .try_into()
                .unwrap(),
        )
        .unwrap();
        public
            .verify_strict(
                message.as_bytes(),
                &Signature::from_bytes(&cosignature.signature),
            )
            .unwrap();
        let verifier = CosignatureVerifier::from_verifier_key(&witness.verifier_key()).unwrap();
        assert_eq!(verifier, witness.verifier());
        verifier.verify(&body, &cosignature).unwrap();
        // The line round-trips.
        assert_eq!(
            Cosignature::parse_line(&cosignature.line()).unwrap(),
            cosignature
        );
    }

    #[test]
    fn cosigned_note_verifies_for_the_log_and_the_witness() {
        let log = NoteSigner::generate(ORIGIN).unwrap();
        let witness = witness();
        let note = log.sign(&checkpoint(9));
        let cosigned = format!("{note}{}", witness.sign(&checkpoint(9).body()).line());
        // The log's verifier ignores the cosignature, the witness's finds it.
        assert_eq!(
            log.verifier().verify_checkpoint(&cosigned).unwrap(),
            checkpoint(9)
        );
        let found = witness.verifier().verify_note(&cosigned).unwrap();
        assert_eq!(found.name, "witness.example/w1");
        // Go's note.Open with a 0x01 verifier of the same key must not take
        // the cosignature for a note signature: the key ids differ.
        let plain = NoteVerifier::from_verifier_key(&witness.note_signer.verifier_key()).unwrap();
        assert!(plain.verify_checkpoint(&cosigned).is_err());
        // A note without the witness's line.
        assert!(matches!(
            witness.verifier().verify_note(&note),
            Err(CosignatureError::Missing { .. })
        ));
    }

    #[test]
    fn tampering_breaks_the_cosignature() {
        let witness = witness();
        let verifier = witness.verifier();
        let body = checkpoint(42).body();
        let cosignature = witness.sign_at(&body, 1_000);
        // Another body, another timestamp, another signature byte.
        assert!(verifier
            .verify(&checkpoint(43).body(), &cosignature)
            .is_err());
        let later = Cosignature {
            timestamp: 1_001,
            ..cosignature.clone()
        };
        assert!(verifier.verify(&body, &later).is_err());
        let mut flipped = cosignature.clone();
        flipped.signature[3] ^= 1;
        assert!(matches!(
            verifier.verify(&body, &flipped),
            Err(CosignatureError::BadSignature { .. })
        ));
        // A valid cosignature by another witness, relabelled as ours.
        let other = Cosigner::generate("witness.example/w1").unwrap();
        let relabelled = Cosignature {
            key_id: witness.key_id(),
            ..other.sign_at(&body, 1_000)
        };
        assert!(verifier.verify(&body, &relabelled).is_err());
        // On a note, a bad line by this key is an error, not ignored.
        let log = NoteSigner::generate(ORIGIN).unwrap();
        let note = format!("{}{}", log.sign(&checkpoint(42)), flipped.line());
        assert!(matches!(
            verifier.verify_note(&note),
            Err(CosignatureError::BadSignature { .. })
        ));
    }

    #[test]
    fn timestamps_above_2_pow_63_are_refused() {
        let witness = witness();
        let mut data = vec![0u8; COSIGNATURE_BYTES];
        data[..4].copy_from_slice(&witness.key_id().to_be_bytes());
        data[4..12].copy_from_slice(&(1u64 << 63).to_be_bytes());
        let line = format!("— witness.example/w1 {}", STANDARD.encode(&data));
        assert!(matches!(
            Cosignature::parse_line(&line),
            Err(CosignatureError::TimestampOutOfRange { .. })
        ));
        let top = witness.sign_at(&checkpoint(1).body(), TIMESTAMP_MAX);
        witness
            .verifier()
            .verify(&checkpoint(1).body(), &top)
            .unwrap();
    }

    #[test]
    fn note_signatures_lists_every_line() {
        let log = NoteSigner::generate(ORIGIN).unwrap();
        let (w1, w2) = (witness(), Cosigner::generate("w2.example").unwrap());
        let body = checkpoint(3).body();
        let note = format!(
            "{}{}{}",
            log.sign(&checkpoint(3)),
            w1.sign(&body).line(),
            w2.sign(&body).line()
        );
        let (text, signatures) = note_signatures(&note).unwrap();
        assert_eq!(text, body);
        let names: Vec<_> = signatures.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [ORIGIN, "witness.example/w1", "w2.example"]);
        assert!(w2.verifier().find(text, &signatures).unwrap().is_some());
        assert!(note_signatures("no blank line\n").is_err());
    }

    #[test]
    fn private_key_is_a_signed_note_key_and_reloads() {
        let witness = witness();
        assert!(witness
            .private_key()
            .starts_with("PRIVATE+KEY+witness.example/w1+"));
        let again = Cosigner::from_private_key(&witness.private_key()).unwrap();
        assert_eq!(again.verifier_key(), witness.verifier_key());
        let debug = format!("{witness:?}");
        let secret = witness.private_key();
        assert!(!debug.contains(secret.splitn(5, '+').nth(4).unwrap()));
    }
}
