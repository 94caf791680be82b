//! Content Credentials (C2PA) on published outputs: the operator's signing
//! identity, the manifest a derivative carries, embedding and signing it
//! into the file, and reading and verifying it again.
//!
//! - [`identity`]: the Ed25519 signing certificate and key; a local CA made
//!   by `init` or on first use, or a chain and key the operator brings.
//! - [`manifest`]: what the manifest states (actions, ingredients, and the
//!   `org.ledgerline.provenance` assertion with the log proof).
//! - [`issue`]: signs a manifest for a WAV file, hard-bound to its audio.
//! - [`wav_chunk`]: where the manifest store sits in the WAV file, and the
//!   distributed file assembled from the two.
//! - [`verify`](mod@verify): reads a file's manifest store and checks its signature,
//!   hard binding, trust and log proof.
//!
//! The `c2pa` crate does the C2PA work, with its pure-Rust crypto and no
//! network: no remote manifests, no timestamp authority, no OCSP fetches.
//! This module does not decide when a file is credentialed (the pipeline
//! does) nor look anything up in the log (its caller passes the proof and
//! the log's verifier key).

pub mod identity;
pub mod issue;
pub mod manifest;
pub mod verify;
pub mod wav_chunk;

pub use identity::SigningIdentity;
pub use issue::{sign_wav, Issued};
pub use manifest::{
    GenerationFacts, NetworkIngredient, Provenance, StemIngredient, VoiceIngredient,
};
pub use verify::{read_manifest_store, verify, Check, Verification};
pub use wav_chunk::embed;

use std::path::PathBuf;

/// What went wrong with a signing identity, a manifest or a file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The signing chain or key is unusable; the message says why.
    #[error("signing identity: {0}")]
    Identity(String),
    #[error("credentials I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not in a format credentials are read from or written to.
    #[error("{0}")]
    Unsupported(String),
    /// The file carries no C2PA manifest.
    #[error("the file carries no Content Credentials (no C2PA manifest store)")]
    NoManifest,
    /// The file's manifest store cannot be parsed.
    #[error("the file's C2PA manifest cannot be read: {0}")]
    Malformed(String),
    /// The c2pa library failed while signing.
    #[error("C2PA signing failed: {0}")]
    Signing(String),
}

impl CredentialsError {
    /// True when the caller's input is at fault (a bad chain or key, a file
    /// of another format): the CLI exits 2 for these.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            CredentialsError::Identity(_) | CredentialsError::Unsupported(_)
        )
    }
}

/// A `c2pa` context with `settings`, and thumbnails off: this build of
/// the crate cannot make them (audio has none to make), and leaving the
/// default on makes it warn on every context.
fn context(mut settings: serde_json::Value) -> c2pa::Result<c2pa::Context> {
    settings["builder"]["thumbnail"]["enabled"] = false.into();
    c2pa::Context::new().with_settings(settings)
}

/// The MIME type C2PA reads `bytes` as, by their magic numbers: WAV
/// (`RIFF....WAVE`), FLAC (`fLaC`) or MP3 (an ID3v2 tag or an MPEG frame sync).
pub fn audio_format(bytes: &[u8]) -> Result<&'static str, CredentialsError> {
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        Ok("audio/wav")
    } else if bytes.starts_with(b"fLaC") {
        Ok("audio/flac")
    } else if bytes.starts_with(b"ID3")
        || (bytes.len() >= 2 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0)
    {
        Ok("audio/mpeg")
    } else {
        Err(CredentialsError::Unsupported(
            "not a WAV, FLAC or MP3 file; Content Credentials are read from those".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
