//! `cosignature/v1` against an independent implementation: the `sigsum`
//! crate (Mullvad's Rust library for Sigsum logs, whose tree heads are C2SP
//! checkpoints cosigned by the public witness network).
//!
//! Both directions: cosignatures made by production witnesses verify with
//! ledgerline's [`CosignatureVerifier`], and a ledgerline [`Cosigner`]'s
//! cosignature satisfies `sigsum::verify` under a policy that requires it.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ed25519_dalek::{Signer as _, SigningKey};
use ledger::cosignature::{Cosignature, CosignatureVerifier, Cosigner};
use sha2::{Digest, Sha256};
use sigsum::policy::SIGSUM_TEST_2025_3;
use sigsum::{Hash, Policy, PublicKey, SignedTreeHead, SigsumSignature};

const VECTOR: &str = include_str!("testdata/sigsum/hello-sigsum.ascii");

/// The Sigsum checkpoint origin of a log: `sigsum.org/v1/tree/<hex key hash>`.
fn sigsum_origin(log_key_hash: &[u8]) -> String {
    format!("sigsum.org/v1/tree/{}", hex::encode(log_key_hash))
}

/// A cosignature/v1 verifier key for a raw Ed25519 public key and a name:
/// `<name>+<hex8 SHA-256(name \n 0x04 key)[:4]>+base64(0x04 || key)`.
fn verifier_key(name: &str, public_key: &[u8]) -> String {
    let id = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n\x04")
        .chain_update(public_key)
        .finalize();
    let mut data = vec![0x04];
    data.extend_from_slice(public_key);
    format!("{name}+{}+{}", hex::encode(&id[..4]), STANDARD.encode(data))
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= line"))
}

#[test]
fn production_witness_cosignatures_verify_with_our_verifier() {
    // The vector is sound by the sigsum crate's own account.
    let signature = SigsumSignature::from_ascii(VECTOR).unwrap();
    let signer: PublicKey = <[u8; 32]>::try_from(
        hex::decode("99ed58583e8750b20548e69df4a4e1a592379a9a66c51cd32e42fbe4e1bde78a").unwrap(),
    )
    .unwrap()
    .into();
    sigsum::verify(
        &Hash::new(b"Hello, Sigsum!\n"),
        &signature,
        &[signer],
        &SIGSUM_TEST_2025_3,
    )
    .unwrap();

    let tree_head = VECTOR.split("\n\n").nth(1).unwrap();
    let head = SignedTreeHead::from_ascii(tree_head).unwrap();
    let body = format!(
        "{}\n{}\n{}\n",
        sigsum_origin(&hex::decode(field(VECTOR, "log")).unwrap()),
        head.size,
        STANDARD.encode(&head.root_hash)
    );
    assert_eq!(head.cosignatures.len(), 8);
    for cosigned in &head.cosignatures {
        let witness = SIGSUM_TEST_2025_3
            .get_witness_by_keyhash(&cosigned.keyhash)
            .expect("a witness of the policy");
        let verifier = CosignatureVerifier::from_verifier_key(&verifier_key(
            &witness.name,
            witness.pubkey.as_ref(),
        ))
        .unwrap();
        let cosignature = Cosignature {
            name: witness.name.clone(),
            key_id: verifier.key_id(),
            timestamp: cosigned.timestamp,
            signature: <[u8; 64]>::try_from(cosigned.cosignature.as_ref()).unwrap(),
        };
        verifier.verify(&body, &cosignature).unwrap();
        // Through a note, as a log serves it: the line parses and verifies.
        let note = format!("{body}\n{}", cosignature.line());
        assert_eq!(verifier.verify_note(&note).unwrap(), cosignature);
        // One second later is another message.
        let shifted = Cosignature {
            timestamp: cosigned.timestamp + 1,
            ..cosignature
        };
        assert!(verifier.verify(&body, &shifted).is_err());
    }
}

/// A one-leaf Sigsum log holding a signature of `message`, its tree head
/// signed by `log`, cosigned by `witness` at `timestamp`, in Sigsum's ASCII
/// signature format.
fn sigsum_signature(
    log: &SigningKey,
    witness: &Cosigner,
    timestamp: u64,
    message: &[u8],
) -> (String, PublicKey) {
    let submitter = SigningKey::from_bytes(&[7; 32]);
    let checksum = Sha256::digest(Sha256::digest(message));
    let leaf_signature =
        submitter.sign(&[b"sigsum.org/v1/tree-leaf\0".as_slice(), &checksum].concat());
    let leaf_key_hash = Sha256::digest(submitter.verifying_key().as_bytes());
    let leaf = [
        checksum.as_slice(),
        &leaf_signature.to_bytes(),
        &leaf_key_hash,
    ]
    .concat();
    let root = Sha256::new()
        .chain_update([0u8])
        .chain_update(&leaf)
        .finalize();

    let log_key_hash = Sha256::digest(log.verifying_key().as_bytes());
    let body = format!(
        "{}\n1\n{}\n",
        sigsum_origin(&log_key_hash),
        STANDARD.encode(root)
    );
    let log_signature = log.sign(body.as_bytes());
    let cosignature = witness.sign_at(&body, timestamp);
    let witness_key = STANDARD
        .decode(witness.verifier_key().splitn(3, '+').nth(2).unwrap())
        .unwrap();
    let text = format!(
        "version=2\nlog={}\nleaf={} {}\n\nsize=1\nroot_hash={}\nsignature={}\ncosignature={} {} {}\n\nleaf_index=0\n",
        hex::encode(log_key_hash),
        hex::encode(leaf_key_hash),
        hex::encode(leaf_signature.to_bytes()),
        hex::encode(root),
        hex::encode(log_signature.to_bytes()),
        hex::encode(Sha256::digest(&witness_key[1..])),
        cosignature.timestamp,
        hex::encode(cosignature.signature),
    );
    let submitter_key = submitter.verifying_key().to_bytes().into();
    (text, submitter_key)
}

#[test]
fn our_cosignature_satisfies_the_sigsum_crate() {
    let log = SigningKey::from_bytes(&[3; 32]);
    let witness = Cosigner::generate("witness.example/w1").unwrap();
    let witness_key = STANDARD
        .decode(witness.verifier_key().splitn(3, '+').nth(2).unwrap())
        .unwrap();
    let policy = Policy::parse(&format!(
        "log {}\nwitness w1 {}\nquorum w1\n",
        hex::encode(log.verifying_key().as_bytes()),
        hex::encode(&witness_key[1..])
    ))
    .unwrap();
    let message = b"an event of ledgerline";

    let (text, submitter) = sigsum_signature(&log, &witness, 1_765_000_000, message);
    let signature = SigsumSignature::from_ascii(&text).unwrap();
    sigsum::verify(
        &Hash::new(message),
        &signature,
        std::slice::from_ref(&submitter),
        &policy,
    )
    .unwrap();

    // The same cosignature under another timestamp fails there too.
    let timestamp_field = "1765000000 ";
    let forged = text.replacen(timestamp_field, "1765000001 ", 1);
    assert_ne!(forged, text);
    let signature = SigsumSignature::from_ascii(&forged).unwrap();
    assert!(sigsum::verify(&Hash::new(message), &signature, &[submitter], &policy).is_err());
}
