use super::identity::{CHAIN_FILE, DIR, KEY_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE};
use super::*;
use crate::artifacts::encode_wav;
use crate::audio::Audio;
use ledger::checkpoint::{Checkpoint, NoteSigner};
use ledger::merkle::leaf_hash;
use ledger::tlog_proof::TlogProof;
use schemas::generation::{ComputeBackend, GenerationStep, StepArtifact, StepOp};
use schemas::ContentHash;
use std::collections::BTreeMap;
use uuid::Uuid;

const ORIGIN: &str = "example.com/log";

fn wav() -> Vec<u8> {
    let samples: Vec<f32> = (0..8_000)
        .map(|i| ((i as f32) * 0.05).sin() * 0.3)
        .collect();
    encode_wav(&Audio::new(16_000, vec![samples.clone(), samples]))
}

fn hash(byte: u8) -> ContentHash {
    ContentHash::parse(&format!("sha256:{}", hex::encode([byte; 32]))).unwrap()
}

/// Facts for a one-leaf log whose only leaf is the published event.
fn facts(log: &NoteSigner) -> GenerationFacts {
    let leaf = b"the published event".to_vec();
    let leaf_hash = leaf_hash(&leaf);
    let note = log.sign(&Checkpoint {
        origin: ORIGIN.into(),
        size: 1,
        root: leaf_hash,
    });
    let job = Uuid::from_u128(7);
    let stems = vec![
        StemIngredient {
            isrc: "GBAYE0601498".into(),
            stem: "drums".into(),
            file: hash(1),
        },
        StemIngredient {
            isrc: "GBAYE0601498".into(),
            stem: "bass".into(),
            file: hash(2),
        },
    ];
    let step = GenerationStep {
        job,
        step: 1,
        op: StepOp::Mix,
        params: serde_json::json!({"gains_mb": [0, -300], "target_centi_lufs": -1400}),
        inputs: stems
            .iter()
            .map(|s| StepArtifact {
                name: s.stem.clone(),
                file: s.file.clone(),
                pcm: None,
            })
            .collect(),
        outputs: vec![StepArtifact {
            name: "output".into(),
            file: hash(3),
            pcm: None,
        }],
        kernels: Vec::new(),
        backend: ComputeBackend::Cpu,
        adapter: None,
        measurements: BTreeMap::new(),
        duration_ms: 5,
    };
    GenerationFacts {
        stems,
        voice: Some(VoiceIngredient {
            model: "vm1".into(),
            artifact: hash(4),
            artist: "Ada".into(),
            consent_reference: Some("consent-1".into()),
        }),
        network: Some(NetworkIngredient {
            model: "basic-pitch-icassp-2022".into(),
            artifact: hash(5),
            licence: "Apache-2.0".into(),
            authors: "Spotify AB".into(),
            source: "pypi:basic-pitch 0.4.0".into(),
        }),
        steps: vec![step],
        provenance: Provenance {
            origin: ORIGIN.into(),
            derivative: job,
            job,
            published_seq: 0,
            published_leaf_hash: hex::encode(leaf_hash),
            tlog_proof: TlogProof {
                index: 0,
                proof: Vec::new(),
                checkpoint_note: note,
            }
            .to_text(),
        },
    }
}

struct Signed {
    _dir: tempfile::TempDir,
    anchor: String,
    identity: SigningIdentity,
    log: NoteSigner,
    /// The distributed file: the WAV with its manifest embedded.
    file: Vec<u8>,
}

fn signed() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let identity = SigningIdentity::init(dir.path(), ORIGIN).unwrap();
    let anchor = SigningIdentity::trust_anchor_pem(dir.path())
        .unwrap()
        .unwrap();
    let log = NoteSigner::generate(ORIGIN).unwrap();
    let issued = sign_wav(&identity, &facts(&log), &wav()).unwrap();
    let file = embed(&wav(), &issued.manifest).unwrap();
    assert_eq!(crate::artifacts::file_hash(&file), issued.file_hash);
    Signed {
        _dir: dir,
        anchor,
        identity,
        log,
        file,
    }
}

#[test]
fn init_writes_a_root_and_a_signer_with_private_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let identity = SigningIdentity::init(dir.path(), ORIGIN).unwrap();
    assert_eq!(identity.subject(), "example.com/log content credentials");
    let credentials = dir.path().join(DIR);
    for file in [ROOT_CERT_FILE, ROOT_KEY_FILE, CHAIN_FILE, KEY_FILE] {
        assert!(credentials.join(file).is_file(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for key in [ROOT_KEY_FILE, KEY_FILE] {
            let mode = std::fs::metadata(credentials.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
    let again = SigningIdentity::init(dir.path(), ORIGIN).unwrap_err();
    assert!(again.to_string().contains("already holds"), "{again}");
    let loaded = SigningIdentity::load_or_create(dir.path(), ORIGIN).unwrap();
    assert_eq!(loaded.chain_pem(), identity.chain_pem());
}

#[test]
fn a_signed_file_verifies_trusted_against_our_root_with_its_log_proof() {
    let s = signed();
    let v = verify(&s.file, Some(&s.anchor), Some(&s.log.verifier())).unwrap();
    assert!(v.ok(), "{v:#?}");
    assert_eq!(v.state, "Trusted");
    assert_eq!(
        v.signer.as_deref(),
        Some("example.com/log content credentials")
    );
    assert_eq!(v.provenance.unwrap().published_seq, 0);
    // The file still decodes to the same audio.
    let audio = crate::artifacts::decode_bytes(&s.file, Some("wav")).unwrap();
    assert_eq!(audio.frames(), 8_000);
}

#[test]
fn the_manifest_names_the_ai_source_type_the_stems_and_the_voice_model() {
    let s = signed();
    let store = read_manifest_store(&s.file).unwrap();
    let label = store["active_manifest"].as_str().unwrap();
    let manifest = &store["manifests"][label];
    let ingredients = manifest["ingredients"].as_array().unwrap();
    let titles: Vec<&str> = ingredients
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "GBAYE0601498 drums",
            "GBAYE0601498 bass",
            "voice model vm1",
            "trained network basic-pitch-icassp-2022"
        ]
    );
    assert_eq!(ingredients[0]["relationship"], "componentOf");
    assert_eq!(ingredients[0]["instance_id"], hash(1).as_str());
    assert_eq!(ingredients[2]["relationship"], "inputTo");
    assert_eq!(ingredients[3]["relationship"], "inputTo");
    assert_eq!(ingredients[3]["instance_id"], hash(5).as_str());
    assert!(ingredients[3]["description"]
        .as_str()
        .unwrap()
        .contains("Apache-2.0"));
    let text = store.to_string();
    assert!(
        text.contains(manifest::COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),
        "{text}"
    );
    assert!(text.contains("c2pa.created"), "{text}");
    // Each step's parameters read back exactly as logged, negative and
    // multi-byte integers in arrays included.
    let edited = manifest["assertions"][0]["data"]["actions"][1]["parameters"].clone();
    assert_eq!(edited["org.ledgerline.op"], "mix");
    let params: serde_json::Value =
        serde_json::from_str(edited["org.ledgerline.params"].as_str().unwrap()).unwrap();
    assert_eq!(
        params,
        serde_json::json!({"gains_mb": [0, -300], "target_centi_lufs": -1400})
    );
    assert!(text.contains("org.ledgerline.provenance"), "{text}");
}

#[test]
fn without_an_anchor_or_with_a_strangers_root_the_signer_is_not_trusted() {
    let s = signed();
    let log = s.log.verifier();
    let v = verify(&s.file, None, Some(&log)).unwrap();
    assert!(
        v.signature.ok && v.hard_binding.ok && v.log_proof.ok,
        "{v:#?}"
    );
    assert!(!v.trust.ok && !v.ok());
    let other = tempfile::tempdir().unwrap();
    SigningIdentity::init(other.path(), ORIGIN).unwrap();
    let stranger = SigningIdentity::trust_anchor_pem(other.path())
        .unwrap()
        .unwrap();
    let v = verify(&s.file, Some(&stranger), Some(&log)).unwrap();
    assert!(!v.trust.ok, "{v:#?}");
}

#[test]
fn one_changed_audio_byte_is_a_hash_mismatch() {
    let s = signed();
    let mut file = s.file.clone();
    // A byte inside the RIFF `data` chunk: audio, not manifest.
    let data = file.windows(4).position(|w| w == b"data").unwrap() + 8;
    file[data + 1_001] ^= 0x01;
    let v = verify(&file, Some(&s.anchor), Some(&s.log.verifier())).unwrap();
    assert!(!v.hard_binding.ok, "{v:#?}");
    assert!(
        v.hard_binding.detail.contains("mismatch"),
        "{}",
        v.hard_binding.detail
    );
    assert!(!v.ok());
}

#[test]
fn a_proof_under_another_log_key_fails_the_log_check_only() {
    let s = signed();
    let stranger = NoteSigner::generate(ORIGIN).unwrap();
    let v = verify(&s.file, Some(&s.anchor), Some(&stranger.verifier())).unwrap();
    assert!(v.signature.ok && v.hard_binding.ok && v.trust.ok);
    assert!(!v.log_proof.ok, "{v:#?}");
}

#[test]
fn a_file_without_a_manifest_or_not_audio_is_refused_with_the_reason() {
    assert!(matches!(
        verify(&wav(), None, None),
        Err(CredentialsError::NoManifest)
    ));
    assert!(matches!(
        verify(b"hello, not audio", None, None),
        Err(CredentialsError::Unsupported(_))
    ));
}

#[test]
fn a_brought_key_that_is_not_the_certificates_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    SigningIdentity::init(a.path(), ORIGIN).unwrap();
    SigningIdentity::init(b.path(), ORIGIN).unwrap();
    let err = SigningIdentity::from_files(
        &a.path().join(DIR).join(CHAIN_FILE),
        &b.path().join(DIR).join(KEY_FILE),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not the key"), "{err}");
    assert!(err.is_client_error());
    // A root certificate is a CA: it cannot sign claims.
    let err = SigningIdentity::from_files(
        &a.path().join(DIR).join(ROOT_CERT_FILE),
        &a.path().join(DIR).join(ROOT_KEY_FILE),
    )
    .unwrap_err();
    assert!(err.to_string().contains("is a CA"), "{err}");
}

#[test]
fn an_expired_signing_certificate_is_refused() {
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(3 * 365);
    let authority = identity::tests_support::local_authority_at(ORIGIN, long_ago);
    let err =
        SigningIdentity::from_pem(authority.0.as_bytes(), authority.1.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn the_manifest_is_a_chunk_after_the_wav_and_the_riff_size_counts_it() {
    let wav = wav();
    for manifest in [&b"odd"[..], &b"even"[..]] {
        let file = embed(&wav, manifest).unwrap();
        let padded = manifest.len() + manifest.len() % 2;
        assert_eq!(file.len(), wav.len() + 8 + padded);
        let riff_size = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_size + 8, file.len());
        assert_eq!(file[8..wav.len()], wav[8..]);
        assert_eq!(&file[wav.len()..wav.len() + 4], b"C2PA");
        let len = u32::from_le_bytes(file[wav.len() + 4..wav.len() + 8].try_into().unwrap());
        assert_eq!(len as usize, manifest.len());
        assert_eq!(
            &file[wav.len() + 8..wav.len() + 8 + manifest.len()],
            manifest
        );
        // Still the same audio to a WAV reader.
        let audio = crate::artifacts::decode_bytes(&file, Some("wav")).unwrap();
        assert_eq!(audio.frames(), 8_000);
        // A file that already carries a manifest is not given a second.
        let again = embed(&file, b"x").unwrap_err();
        assert!(again.to_string().contains("already carries"), "{again}");
    }
}

#[test]
fn a_wav_whose_chunks_do_not_tile_it_is_refused_before_signing() {
    let wav = wav();
    let mut short_header = wav.clone();
    short_header[4..8].copy_from_slice(&(wav.len() as u32).to_le_bytes());
    let mut trailing = wav.clone();
    trailing.extend_from_slice(b"junk");
    let mut overlong_chunk = wav.clone();
    let data = overlong_chunk
        .windows(4)
        .position(|w| w == b"data")
        .unwrap();
    overlong_chunk[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let identity = SigningIdentity::init(dir.path(), ORIGIN).unwrap();
    let log = NoteSigner::generate(ORIGIN).unwrap();
    for (name, bytes) in [
        ("RIFF size", short_header),
        ("trailing bytes", trailing),
        ("overlong chunk", overlong_chunk),
        ("header only", wav[..12].to_vec()),
    ] {
        let error = sign_wav(&identity, &facts(&log), &bytes).unwrap_err();
        assert!(
            matches!(error, CredentialsError::Unsupported(_)),
            "{name}: {error}"
        );
    }
}

#[test]
fn manifests_of_odd_and_even_length_both_verify() {
    // The manifest's length follows the provenance's; a pad byte follows an
    // odd-length chunk and the hard binding covers it.
    let Signed {
        _dir,
        identity,
        anchor,
        log,
        ..
    } = signed();
    let mut parities = std::collections::BTreeSet::new();
    for extra in 0..4 {
        let mut facts = facts(&log);
        facts
            .voice
            .as_mut()
            .unwrap()
            .artist
            .push_str(&"a".repeat(extra));
        let issued = sign_wav(&identity, &facts, &wav()).unwrap();
        parities.insert(issued.manifest.len() % 2);
        let file = embed(&wav(), &issued.manifest).unwrap();
        assert_eq!(crate::artifacts::file_hash(&file), issued.file_hash);
        let v = verify(&file, Some(&anchor), Some(&log.verifier())).unwrap();
        assert!(v.ok(), "{extra}: {v:#?}");
    }
    assert_eq!(parities.len(), 2, "both parities were signed");
}
