//! `ledgerline witness`: a C2SP tlog-witness (<https://c2sp.org/tlog-witness>)
//! that a label runs beside the log it audits. It cosigns a checkpoint only
//! after checking that it is consistent with the last one it cosigned for
//! that log, and remembers that checkpoint durably before it answers.
//!
//! - [`protocol`]: the `add-checkpoint` wire format (also written by the log).
//! - [`state`]: the witness's durable record, one checkpoint per origin.
//! - [`cosign`]: the decision on one request.
//! - [`server`]: the HTTP route.

pub mod cosign;
pub mod protocol;
pub mod server;
pub mod state;

use anyhow::Context as _;
use ledger::cosignature::Cosigner;
use std::path::Path;

/// The witness's key file inside its data directory (Go note private key
/// format, mode 0600).
pub const KEY_FILE: &str = "witness.key";

/// The key name of a witness whose operator names none.
pub const DEFAULT_NAME: &str = "ledgerline.local/witness";

/// Loads the witness key of `dir`, or creates it (and the directory, 0700)
/// on first use, named `name` or [`DEFAULT_NAME`]. An existing key keeps its
/// name; naming another is an error.
pub fn load_or_create_key(dir: &Path, name: Option<&str>) -> anyhow::Result<Cosigner> {
    ledger::private::create_private_dir(dir)
        .with_context(|| format!("cannot create the witness directory {}", dir.display()))?;
    let path = dir.join(KEY_FILE);
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let stored_name = match &existing {
        Some(text) => Some(
            Cosigner::from_private_key(text.trim())
                .with_context(|| format!("the witness key {} is damaged", path.display()))?
                .name()
                .to_owned(),
        ),
        None => None,
    };
    let name = match (name, stored_name) {
        (Some(given), Some(stored)) if given != stored => {
            return Err(crate::context::bad_input(format!(
                "the witness key {} is named {stored:?}, not {given:?}; leave --name out or use another --data",
                path.display()
            )))
        }
        (_, Some(stored)) => stored,
        (Some(given), None) => given.to_owned(),
        (None, None) => DEFAULT_NAME.to_owned(),
    };
    Cosigner::load_or_create(&path, &name).map_err(|e| crate::context::bad_input(e.to_string()))
}
