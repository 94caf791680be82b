//! Embeds a derivative's manifest in its WAV file and signs it.
//!
//! The hard binding is C2PA's data hash (`c2pa.hash.data`): SHA-256 over
//! the file's bytes except the manifest store, so the audio cannot change
//! without the signature failing.

use super::manifest::{GenerationFacts, PROVENANCE_LABEL};
use super::{CredentialsError, SigningIdentity};
use c2pa::Builder;
use serde_json::json;
use std::io::Cursor;

/// A credentialed file and the manifest store embedded in it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The distributed file: the input with its manifest store embedded.
    pub file: Vec<u8>,
    /// The manifest store (JUMBF) as embedded.
    pub manifest: Vec<u8>,
}

/// Signs `facts` with `identity` and embeds them in `wav`.
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
    let mut source = Cursor::new(wav);
    let mut dest = Cursor::new(Vec::with_capacity(wav.len() + 64 * 1024));
    let manifest = builder
        .sign(signer.as_ref(), "audio/wav", &mut source, &mut dest)
        .map_err(signing)?;
    Ok(Issued {
        file: dest.into_inner(),
        manifest,
    })
}
