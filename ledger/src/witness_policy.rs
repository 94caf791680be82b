//! Witness policies: which witnesses a log asks for cosignatures, and how
//! many of them must cosign a checkpoint before readers trust it.
//!
//! The file follows the line format of Sigsum's policy files
//! (sigsum-go `doc/policy.md`): one statement a line, `#` starts a comment,
//! blank lines are ignored, fields are separated by spaces or tabs.
//!
//! ```text
//! # Two label-run witnesses; both must cosign.
//! witness label-a  witness.label-a.example+1c25f8a4+BBf...=  https://witness.label-a.example/
//! witness label-b  witness.label-b.example+28c92a5a+BKf...=  http://10.0.0.7:7380
//! quorum 2
//! ```
//!
//! - `witness NAME VKEY URL`: NAME is the policy's own label for the
//!   witness (metrics and logs use it), unique in the file. VKEY is the
//!   witness's C2SP `cosignature/v1` verifier key
//!   (`<key name>+<hex8 key id>+base64(0x04 || Ed25519 public key)`, what
//!   `ledgerline witness key` prints, and the form the transparency-dev
//!   witness network publishes). URL is the witness's C2SP tlog-witness
//!   submission prefix: the log POSTs to `URL/add-checkpoint`.
//! - `quorum K`: a checkpoint is witnessed once K distinct witnesses of the
//!   file have cosigned it; 1 ≤ K ≤ the number of witnesses. Exactly one.
//!
//! Where Sigsum names a witness by a bare hex public key and builds quorums
//! from named groups, this format takes the signed-note verifier key (which
//! carries the key name that cosignature lines must bear) and one threshold.
//! Log keys are not part of it: a reader gets the log's key separately.

use crate::checkpoint::NOTE_SIGNATURES_MAX;
use crate::cosignature::{note_signatures, CosignatureError, CosignatureVerifier};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// The largest policy file read, in bytes.
pub const POLICY_BYTES_MAX: usize = 64 * 1024;

/// The most witnesses a policy may name: a note holds at most
/// [`NOTE_SIGNATURES_MAX`] signature lines, one of them the log's.
pub const POLICY_WITNESSES_MAX: usize = NOTE_SIGNATURES_MAX - 1;

/// Why a policy file was refused; `line` is 1-based, 0 when the problem is
/// the file as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the witness policy {}: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}{message}", line_prefix(*.line))]
    Invalid { line: usize, message: String },
}

fn line_prefix(line: usize) -> String {
    if line == 0 {
        "the witness policy is invalid: ".to_owned()
    } else {
        format!("line {line} of the witness policy: ")
    }
}

fn invalid(line: usize, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        line,
        message: message.into(),
    }
}

/// One witness of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    /// The policy's label for it.
    pub name: String,
    /// Checks its cosignatures.
    pub verifier: CosignatureVerifier,
    /// Its tlog-witness submission prefix, without a trailing slash.
    pub url: String,
}

impl PolicyWitness {
    /// Where the log submits checkpoints: `<url>/add-checkpoint`.
    pub fn add_checkpoint_url(&self) -> String {
        format!("{}/add-checkpoint", self.url)
    }
}

/// A parsed witness policy: its witnesses, in file order, and the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<PolicyWitness>,
    quorum: usize,
}

/// How a note's cosignatures stand against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReport {
    /// Labels of the witnesses whose cosignature verifies, in policy order.
    pub valid: Vec<String>,
    /// Witnesses whose lines are on the note but do not verify, with why.
    pub invalid: Vec<(String, String)>,
    /// How many valid cosignatures the policy requires.
    pub quorum: usize,
}

impl QuorumReport {
    /// Whether at least `quorum` witnesses cosigned validly.
    pub fn is_met(&self) -> bool {
        self.valid.len() >= self.quorum
    }
}

impl fmt::Display for QuorumReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} required witness cosignatures verify",
            self.valid.len(),
            self.quorum
        )?;
        if !self.valid.is_empty() {
            write!(f, " ({})", self.valid.join(", "))?;
        }
        for (name, reason) in &self.invalid {
            write!(f, "; {name}: {reason}")?;
        }
        Ok(())
    }
}

impl WitnessPolicy {
    /// Reads and parses the policy file at `path`.
    pub fn load(path: &Path) -> Result<WitnessPolicy, PolicyError> {
        let read_error = |source| PolicyError::Read {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        if metadata.len() > POLICY_BYTES_MAX as u64 {
            return Err(invalid(
                0,
                format!(
                    "the file is {} bytes, more than the {POLICY_BYTES_MAX} accepted",
                    metadata.len()
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(0, "the file is not UTF-8 text".to_owned()))?;
        Self::parse(&text)
    }

    /// Parses a policy (the format is in the module documentation).
    pub fn parse(text: &str) -> Result<WitnessPolicy, PolicyError> {
        if text.len() > POLICY_BYTES_MAX {
            return Err(invalid(
                0,
                format!(
                    "it is {} bytes, more than the {POLICY_BYTES_MAX} accepted",
                    text.len()
                ),
            ));
        }
        let mut witnesses: Vec<PolicyWitness> = Vec::new();
        let mut quorum: Option<(usize, usize)> = None;
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split_once('#').map_or(raw, |(before, _)| before);
            let fields: Vec<&str> = content
                .split([' ', '\t'])
                .filter(|f| !f.is_empty())
                .collect();
            match fields.as_slice() {
                [] => {}
                ["witness", name, vkey, url] => {
                    let witness = parse_witness(line, name, vkey, url)?;
                    if !names.insert(witness.name.clone()) {
                        return Err(invalid(line, format!("the witness name {name:?} is used twice")));
                    }
                    let key = (witness.verifier.name().to_owned(), witness.verifier.key_id());
                    if !keys.insert(key) {
                        return Err(invalid(
                            line,
                            format!("the verifier key of {name:?} is another witness's too; one key counts once towards the quorum"),
                        ));
                    }
                    if witnesses.len() == POLICY_WITNESSES_MAX {
                        return Err(invalid(
                            line,
                            format!("a policy names at most {POLICY_WITNESSES_MAX} witnesses"),
                        ));
                    }
                    witnesses.push(witness);
                }
                ["witness", ..] => {
                    return Err(invalid(
                        line,
                        "a witness line is `witness NAME VKEY URL` (three fields after `witness`)",
                    ))
                }
                ["quorum", text] => {
                    if let Some((first, _)) = quorum {
                        return Err(invalid(
                            line,
                            format!("a second quorum line (the first is line {first})"),
                        ));
                    }
                    let k = text
                        .parse::<usize>()
                        .ok()
                        .filter(|k| *k >= 1 && k.to_string() == **text)
                        .ok_or_else(|| {
                            invalid(line, format!("the quorum {text:?} is not a whole number of at least 1"))
                        })?;
                    quorum = Some((line, k));
                }
                ["quorum", ..] => {
                    return Err(invalid(line, "a quorum line is `quorum K` (one number)"))
                }
                [keyword, ..] => {
                    return Err(invalid(
                        line,
                        format!("unknown statement {keyword:?}; a policy has `witness NAME VKEY URL` and `quorum K` lines"),
                    ))
                }
            }
        }
        let (quorum_line, quorum) =
            quorum.ok_or_else(|| invalid(0, "it has no `quorum K` line"))?;
        if quorum > witnesses.len() {
            return Err(invalid(
                quorum_line,
                format!(
                    "the quorum {quorum} is more than the {} witnesses named",
                    witnesses.len()
                ),
            ));
        }
        Ok(WitnessPolicy { witnesses, quorum })
    }

    /// The witnesses, in file order.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// How many distinct witnesses must cosign.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Checks the cosignatures on a signed checkpoint note against this
    /// policy: which witnesses' cosignatures verify over the note's body,
    /// which are present but invalid, and whether the quorum is met. The
    /// log's own signature is not checked here
    /// ([`crate::NoteVerifier::verify_checkpoint`] does that).
    pub fn check(&self, note: &str) -> Result<QuorumReport, CosignatureError> {
        let (body, signatures) = note_signatures(note)?;
        let mut report = QuorumReport {
            valid: Vec::new(),
            invalid: Vec::new(),
            quorum: self.quorum,
        };
        for witness in &self.witnesses {
            match witness.verifier.find(body, &signatures) {
                Ok(Some(_)) => report.valid.push(witness.name.clone()),
                Ok(None) => {}
                Err(error) => report
                    .invalid
                    .push((witness.name.clone(), error.to_string())),
            }
        }
        Ok(report)
    }
}

fn parse_witness(
    line: usize,
    name: &str,
    vkey: &str,
    url: &str,
) -> Result<PolicyWitness, PolicyError> {
    let label_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
    if !label_ok {
        return Err(invalid(
            line,
            format!("the witness name {name:?} may hold only ASCII letters, digits and . _ - / :"),
        ));
    }
    let verifier = CosignatureVerifier::from_verifier_key(vkey)
        .map_err(|e| invalid(line, format!("the verifier key of {name:?}: {e}")))?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            invalid(
                line,
                format!("the URL {url:?} of {name:?} must start with http:// or https://"),
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') || url.contains(['?', '#']) {
        return Err(invalid(
            line,
            format!("the URL {url:?} of {name:?} needs a host and no query or fragment"),
        ));
    }
    Ok(PolicyWitness {
        name: name.to_owned(),
        verifier,
        url: url.trim_end_matches('/').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteSigner};
    use crate::cosignature::Cosigner;
    use crate::merkle::leaf_hash;

    fn cosigner(name: &str) -> Cosigner {
        Cosigner::generate(name).unwrap()
    }

    fn policy_text(witnesses: &[&Cosigner], quorum: usize) -> String {
        let mut text = String::from("# test policy\n\n");
        for (i, w) in witnesses.iter().enumerate() {
            text.push_str(&format!(
                "witness w{i}\t{}  http://127.0.0.1:{}/  # comment\n",
                w.verifier_key(),
                9000 + i
            ));
        }
        text.push_str(&format!("quorum {quorum}\n"));
        text
    }

    fn error_of(text: &str) -> String {
        WitnessPolicy::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_witnesses_and_quorum() {
        let (a, b) = (cosigner("a.example/w"), cosigner("b.example/w"));
        let policy = WitnessPolicy::parse(&policy_text(&[&a, &b], 2)).unwrap();
        assert_eq!(policy.quorum(), 2);
        let names: Vec<_> = policy.witnesses().iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["w0", "w1"]);
        assert_eq!(policy.witnesses()[0].verifier, a.verifier());
        assert_eq!(policy.witnesses()[1].url, "http://127.0.0.1:9001");
        assert_eq!(
            policy.witnesses()[1].add_checkpoint_url(),
            "http://127.0.0.1:9001/add-checkpoint"
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line_number() {
        let a = cosigner("a.example/w");
        let vkey = a.verifier_key();
        let cases = [
            (
                format!("witness w {vkey}\nquorum 1\n"),
                "line 1",
                "three fields",
            ),
            (
                format!("witness w {vkey} ftp://x\nquorum 1\n"),
                "line 1",
                "http://",
            ),
            (
                format!("witness w {vkey} http://\nquorum 1\n"),
                "line 1",
                "needs a host",
            ),
            (
                "\nwitness w a.example/w+00000000+AAAA http://x\nquorum 1\n".to_owned(),
                "line 2",
                "verifier key",
            ),
            (
                format!("witness w {vkey} http://x\nquorum 0\n"),
                "line 2",
                "at least 1",
            ),
            (
                format!("witness w {vkey} http://x\nquorum 01\n"),
                "line 2",
                "at least 1",
            ),
            (
                format!("witness w {vkey} http://x\nquorum two\n"),
                "line 2",
                "at least 1",
            ),
            (
                format!("witness w {vkey} http://x\nquorum 2\n"),
                "line 2",
                "more than the 1 witnesses",
            ),
            (
                format!("witness w {vkey} http://x\nquorum 1\nquorum 1\n"),
                "line 3",
                "second quorum",
            ),
            (
                format!("witness w {vkey} http://x\nlog abc\nquorum 1\n"),
                "line 2",
                "unknown statement",
            ),
            (
                format!("witness w {vkey} http://x\n"),
                "invalid",
                "no `quorum K`",
            ),
            (
                format!(
                    "witness w {vkey} http://x\nwitness w {} http://y\nquorum 1\n",
                    cosigner("b.example/w").verifier_key()
                ),
                "line 2",
                "used twice",
            ),
            (
                format!("witness w {vkey} http://x\nwitness v {vkey} http://y\nquorum 1\n"),
                "line 2",
                "counts once",
            ),
            (
                format!("witness w! {vkey} http://x\nquorum 1\n"),
                "line 1",
                "ASCII letters",
            ),
        ];
        for (text, at, says) in cases {
            let message = error_of(&text);
            assert!(
                message.contains(at) && message.contains(says),
                "{text:?}: {message}"
            );
        }
        // A note signature key (type 0x01) is not a cosignature key.
        let plain = NoteSigner::generate("a.example/w").unwrap().verifier_key();
        let message = error_of(&format!("witness w {plain} http://x\nquorum 1\n"));
        assert!(message.contains("cosignature/v1"), "{message}");
    }

    #[test]
    fn oversized_and_unreadable_files_are_refused() {
        let huge = "#".repeat(POLICY_BYTES_MAX + 1);
        assert!(error_of(&huge).contains("bytes"));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.policy");
        let error = WitnessPolicy::load(&missing).unwrap_err().to_string();
        assert!(error.contains("none.policy"), "{error}");
        let path = dir.path().join("ok.policy");
        let a = cosigner("a.example/w");
        std::fs::write(&path, policy_text(&[&a], 1)).unwrap();
        assert_eq!(WitnessPolicy::load(&path).unwrap().quorum(), 1);
    }

    #[test]
    fn check_counts_valid_cosignatures_against_the_quorum() {
        let log = NoteSigner::generate("example.com/log").unwrap();
        let (a, b, c) = (
            cosigner("a.example/w"),
            cosigner("b.example/w"),
            cosigner("c.example/w"),
        );
        let policy = WitnessPolicy::parse(&policy_text(&[&a, &b, &c], 2)).unwrap();
        let checkpoint = Checkpoint {
            origin: "example.com/log".into(),
            size: 5,
            root: leaf_hash(b"5"),
        };
        let body = checkpoint.body();
        let note = log.sign(&checkpoint);

        let report = policy.check(&note).unwrap();
        assert_eq!((report.valid.len(), report.is_met()), (0, false));

        let one = format!("{note}{}", a.sign(&body).line());
        let report = policy.check(&one).unwrap();
        assert_eq!(report.valid, ["w0"]);
        assert!(!report.is_met());

        // A stranger's cosignature does not count; a second witness's does.
        let stranger = cosigner("d.example/w");
        let two = format!(
            "{one}{}{}",
            stranger.sign(&body).line(),
            c.sign(&body).line()
        );
        let report = policy.check(&two).unwrap();
        assert_eq!(report.valid, ["w0", "w2"]);
        assert!(report.is_met());
        assert!(report.to_string().starts_with("2 of 2"), "{report}");

        // A cosignature of another checkpoint is reported invalid.
        let other = Checkpoint {
            size: 6,
            ..checkpoint
        };
        let wrong = format!("{one}{}", b.sign(&other.body()).line());
        let report = policy.check(&wrong).unwrap();
        assert_eq!(report.valid, ["w0"]);
        assert_eq!(report.invalid.len(), 1);
        assert_eq!(report.invalid[0].0, "w1");
        assert!(!report.is_met());
    }
}
