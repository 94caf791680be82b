//! Signs a derivative's manifest for its WAV file.
//!
//! The hard binding is C2PA's data hash (`c2pa.hash.data`): SHA-256 over
//! the distributed file's bytes except the manifest chunk, so the audio
//! cannot change without the signature failing. The manifest goes in a
//! chunk appended to the WAV ([`wav_chunk`](super::wav_chunk)). We hash the
//! file ourselves, in one pass over the audio that also gives the
//! distributed file's own hash, and sign with the crate's data-hashed
//! embeddable workflow, so the crate neither reads nor copies the audio.
//! The distributed file is then the WAV plus its manifest store, and need
//! not be written out to exist: [`wav_chunk::embed`](super::wav_chunk::embed)
//! assembles it.

use super::manifest::{GenerationFacts, PROVENANCE_LABEL};
use super::wav_chunk::Layout;
use super::{CredentialsError, SigningIdentity};
use c2pa::assertions::DataHash;
use c2pa::{Builder, HashRange};
use serde_json::json;
use sha2::{Digest, Sha256};

/// What the crate's embeddable workflow composes the manifest store as:
/// the bare JUMBF, which we put in the WAV's chunk ourselves.
const BARE_MANIFEST_FORMAT: &str = "application/c2pa";
/// The name the crate gives its data-hash assertion; the signed one must
/// keep it to replace the placeholder.
const DATA_HASH_NAME: &str = "jumbf manifest";

/// A signed manifest store for one WAV file.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The manifest store (JUMBF) to embed.
    pub manifest: Vec<u8>,
    /// `sha256:<hex>` of the distributed file, `embed(wav, &manifest)`.
    pub file_hash: String,
}

/// Signs `facts` with `identity` for `wav`, as embedded in it.
pub fn sign_wav(
    identity: &SigningIdentity,
    facts: &GenerationFacts,
    wav: &[u8],
) -> Result<Issued, CredentialsError> {
    if super::audio_format(wav)? != "audio/wav" {
        return Err(CredentialsError::Unsupported(
            "published outputs are credentialed as WAV files".into(),
        ));
    }
    // Checks the WAV's structure before anything is signed.
    let unsigned = Layout::new(wav, 0)?;
    let signing = |e: c2pa::Error| CredentialsError::Signing(e.to_string());
    let context =
        super::context(json!({"verify": {"verify_after_sign": false}})).map_err(signing)?;
    let mut builder = Builder::from_context(context)
        .with_definition(facts.definition())
        .map_err(signing)?;
    builder
        .add_assertion_json(PROVENANCE_LABEL, &facts.provenance)
        .map_err(signing)?;
    let signer = identity.signer()?;
    // The placeholder adds the crate's data-hash assertion, with room for
    // ten exclusions; the signed one is padded to the same size.
    builder
        .data_hashed_placeholder(signer.reserve_size(), BARE_MANIFEST_FORMAT)
        .map_err(signing)?;
    builder.set_format("audio/wav");

    // The manifest's length is in the RIFF size, which the hash covers, so
    // it must be known before the audio is hashed. A trial signature over
    // a dummy hash gives it: signing is cheap next to a pass over the audio.
    let trial = data_hash(unsigned.exclusion(), vec![0; 32]);
    let manifest_len = builder
        .sign_data_hashed_embeddable(signer.as_ref(), &trial, BARE_MANIFEST_FORMAT)
        .map_err(signing)?
        .len();
    let layout = Layout::new(wav, manifest_len)?;

    let mut prefix = Sha256::new();
    prefix.update(layout.riff_header());
    prefix.update(&wav[8..]);
    let mut bound = prefix.clone();
    bound.update(layout.pad());
    let binding = data_hash(layout.exclusion(), bound.finalize().to_vec());
    let manifest = builder
        .sign_data_hashed_embeddable(signer.as_ref(), &binding, BARE_MANIFEST_FORMAT)
        .map_err(signing)?;
    if manifest.len() != manifest_len {
        return Err(CredentialsError::Signing(format!(
            "the signed manifest store is {} bytes, not the {manifest_len} its chunk was laid out for",
            manifest.len()
        )));
    }
    let mut file = prefix;
    file.update(layout.manifest_chunk_header());
    file.update(&manifest);
    file.update(layout.pad());
    Ok(Issued {
        manifest,
        file_hash: format!("sha256:{}", hex::encode(file.finalize())),
    })
}

/// A SHA-256 data hash leaving out `(start, length)`.
fn data_hash((start, length): (u64, u64), hash: Vec<u8>) -> DataHash {
    let mut data_hash = DataHash::new(DATA_HASH_NAME, "sha256");
    data_hash.add_exclusion(HashRange::new(start, length));
    data_hash.set_hash(hash);
    data_hash
}
