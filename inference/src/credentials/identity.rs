//! The operator's C2PA signing identity: an Ed25519 end-entity certificate,
//! its chain and its private key.
//!
//! `init` makes a local certificate authority in `<data dir>/credentials/`:
//! a self-signed root (basicConstraints CA, keyCertSign) and an end-entity
//! certificate it issues with what the C2PA certificate profile asks of a
//! claim signer (C2PA 2.x, "Certificate Profile"): keyUsage digitalSignature,
//! the extended key usage emailProtection, subject and authority key
//! identifiers, and `CA:FALSE`. A root cannot sign claims, so the two are
//! separate; the root is what verifiers add as a trust anchor. An operator
//! may bring its own chain and key instead ([`SigningIdentity::from_pem`]).

use super::CredentialsError;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::{Signer as _, SigningKey};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The signing identity's directory inside a data directory.
pub const DIR: &str = "credentials";
/// The local root certificate (PEM): the trust anchor verifiers add.
pub const ROOT_CERT_FILE: &str = "root-ca.pem";
/// The root's private key (PKCS#8 PEM, mode 0600).
pub const ROOT_KEY_FILE: &str = "root-ca.key";
/// The signer's chain, end-entity first (PEM).
pub const CHAIN_FILE: &str = "signer-chain.pem";
/// The signer's private key (PKCS#8 PEM, mode 0600).
pub const KEY_FILE: &str = "signer.key";

/// How long the local root is valid.
const ROOT_VALIDITY_DAYS: i64 = 10 * 365;
/// How long a signing certificate `init` issues is valid.
const SIGNER_VALIDITY_DAYS: i64 = 2 * 365;
/// Largest chain or key file read, bytes.
const PEM_BYTES_MAX: u64 = 256 * 1024;

/// A signing certificate chain and its private key, checked to belong together.
#[derive(Clone)]
pub struct SigningIdentity {
    chain_pem: String,
    key_pem: String,
    subject: String,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// An ed25519-dalek key as rcgen's signer: no crypto backend in rcgen.
struct CertKey {
    key: SigningKey,
    public: [u8; 32],
}

impl CertKey {
    fn generate() -> Result<CertKey, CredentialsError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| CredentialsError::Identity(format!("no randomness for a key: {e}")))?;
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        Ok(CertKey { key, public })
    }

    /// RFC 7093 method 1: the leftmost 160 bits of SHA-256 of the public key.
    fn key_id(&self) -> KeyIdMethod {
        KeyIdMethod::PreSpecified(Sha256::digest(self.public)[..20].to_vec())
    }

    fn pem(&self) -> Result<String, CredentialsError> {
        Ok(self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| CredentialsError::Identity(format!("cannot encode a key: {e}")))?
            .to_string())
    }
}

impl rcgen::PublicKeyData for CertKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for CertKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

fn random_serial() -> Result<SerialNumber, CredentialsError> {
    let mut serial = [0u8; 16];
    getrandom::getrandom(&mut serial)
        .map_err(|e| CredentialsError::Identity(format!("no randomness for a serial: {e}")))?;
    serial[0] &= 0x7f; // a positive INTEGER (RFC 5280 section 4.1.2.2)
    Ok(SerialNumber::from_slice(&serial))
}

fn cert_error(e: rcgen::Error) -> CredentialsError {
    CredentialsError::Identity(format!("cannot make a certificate: {e}"))
}

/// The four PEM texts `init` writes.
struct LocalAuthority {
    root_cert: String,
    root_key: String,
    chain: String,
    key: String,
}

/// Makes a root CA and an end-entity signing certificate for `name` (the
/// log's origin), valid from `now`.
fn make_local_authority(
    name: &str,
    now: OffsetDateTime,
) -> Result<LocalAuthority, CredentialsError> {
    let root_key = CertKey::generate()?;
    let mut root = CertificateParams::default();
    root.distinguished_name = rcgen::DistinguishedName::new();
    root.distinguished_name.push(
        DnType::CommonName,
        format!("{name} content credentials root"),
    );
    root.distinguished_name
        .push(DnType::OrganizationName, "ledgerline");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.key_identifier_method = root_key.key_id();
    root.not_before = now - Duration::minutes(5);
    root.not_after = now + Duration::days(ROOT_VALIDITY_DAYS);
    root.serial_number = Some(random_serial()?);
    let root_cert = root.self_signed(&root_key).map_err(cert_error)?;

    let key = CertKey::generate()?;
    let mut signer = CertificateParams::default();
    signer.distinguished_name = rcgen::DistinguishedName::new();
    signer
        .distinguished_name
        .push(DnType::CommonName, format!("{name} content credentials"));
    signer
        .distinguished_name
        .push(DnType::OrganizationName, "ledgerline");
    signer.is_ca = IsCa::ExplicitNoCa;
    signer.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    signer.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    signer.use_authority_key_identifier_extension = true;
    signer.key_identifier_method = key.key_id();
    signer.not_before = now - Duration::minutes(5);
    signer.not_after = now + Duration::days(SIGNER_VALIDITY_DAYS);
    signer.serial_number = Some(random_serial()?);
    let root_pem = root_cert.pem();
    let root_key_pem = root_key.pem()?;
    let issuer = Issuer::new(root, root_key);
    let signer_cert = signer.signed_by(&key, &issuer).map_err(cert_error)?;
    // The chain is the end-entity certificate alone: the root is the
    // verifier's trust anchor, not something the file vouches for.
    Ok(LocalAuthority {
        root_cert: root_pem,
        root_key: root_key_pem,
        chain: signer_cert.pem(),
        key: key.pem()?,
    })
}

impl SigningIdentity {
    /// A brought chain (PEM, end-entity first) and its Ed25519 private key
    /// (PKCS#8 PEM). Refused, with the reason, when the chain or key does not
    /// parse, the key is not the end-entity certificate's, or that
    /// certificate is expired, not yet valid, a CA, or lacks the
    /// digitalSignature key usage.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<SigningIdentity, CredentialsError> {
        let bad = |why: String| CredentialsError::Identity(why);
        let chain_text = std::str::from_utf8(chain_pem)
            .map_err(|_| bad("the certificate chain is not PEM text".into()))?;
        let key_text = std::str::from_utf8(key_pem)
            .map_err(|_| bad("the private key is not PEM text".into()))?;
        let mut certs = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(chain_text.as_bytes()) {
            let pem = pem.map_err(|e| bad(format!("the certificate chain is not PEM: {e}")))?;
            if pem.label == "CERTIFICATE" {
                certs.push(pem.contents);
            }
        }
        let leaf_der = certs
            .first()
            .ok_or_else(|| bad("the certificate chain holds no CERTIFICATE block".into()))?;
        let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
            .map_err(|e| bad(format!("the signing certificate does not parse: {e}")))?;
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let key = SigningKey::from_pkcs8_pem(key_text.trim()).map_err(|e| {
            bad(format!(
                "the private key is not an Ed25519 key in PKCS#8 PEM (BEGIN PRIVATE KEY): {e}"
            ))
        })?;
        if leaf.public_key().subject_public_key.data.as_ref() != key.verifying_key().as_bytes() {
            return Err(bad(
                "the private key is not the key of the chain's first (signing) certificate".into(),
            ));
        }
        let validity = leaf.validity();
        let now = x509_parser::time::ASN1Time::now();
        if validity.not_after < now {
            return Err(bad(format!(
                "the signing certificate expired on {}",
                validity.not_after
            )));
        }
        if validity.not_before > now {
            return Err(bad(format!(
                "the signing certificate is not valid before {}",
                validity.not_before
            )));
        }
        if leaf.is_ca() {
            return Err(bad(
                "the signing certificate is a CA; C2PA claims are signed by an end-entity certificate".into(),
            ));
        }
        let digital_signature = leaf
            .key_usage()
            .ok()
            .flatten()
            .is_some_and(|ku| ku.value.digital_signature());
        if !digital_signature {
            return Err(bad(
                "the signing certificate lacks the digitalSignature key usage C2PA requires".into(),
            ));
        }
        let subject = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("(no common name)")
            .to_string();
        Ok(SigningIdentity {
            chain_pem: chain_text.to_string(),
            key_pem: key_text.to_string(),
            subject,
        })
    }

    /// Reads a brought chain and key from files.
    pub fn from_files(chain: &Path, key: &Path) -> Result<SigningIdentity, CredentialsError> {
        Self::from_pem(&read_pem(chain)?, &read_pem(key)?)
    }

    /// Makes a local CA and signing certificate for `name` in
    /// `<data_dir>/credentials/`; refused if one is there already.
    pub fn init(data_dir: &Path, name: &str) -> Result<SigningIdentity, CredentialsError> {
        let dir = data_dir.join(DIR);
        if dir.exists() {
            return Err(CredentialsError::Identity(format!(
                "{} already holds a signing identity; remove it first to make a new one",
                dir.display()
            )));
        }
        Self::create(data_dir, name)?;
        Self::load(data_dir)?.ok_or_else(|| {
            CredentialsError::Identity(format!("{} vanished after it was made", dir.display()))
        })
    }

    /// The identity in `<data_dir>/credentials/`, if there is one.
    pub fn load(data_dir: &Path) -> Result<Option<SigningIdentity>, CredentialsError> {
        let dir = data_dir.join(DIR);
        if !dir.exists() {
            return Ok(None);
        }
        Self::from_files(&dir.join(CHAIN_FILE), &dir.join(KEY_FILE)).map(Some)
    }

    /// The identity in the data directory, made on first use (as the
    /// checkpoint key is).
    pub fn load_or_create(
        data_dir: &Path,
        name: &str,
    ) -> Result<SigningIdentity, CredentialsError> {
        if let Some(identity) = Self::load(data_dir)? {
            return Ok(identity);
        }
        Self::create(data_dir, name)?;
        Self::load(data_dir)?.ok_or_else(|| {
            CredentialsError::Identity("the signing identity vanished after it was made".into())
        })
    }

    /// Writes the local authority to a temporary directory and renames it
    /// into place, so a reader sees all four files or none; if another
    /// process got there first, its identity stands.
    fn create(data_dir: &Path, name: &str) -> Result<(), CredentialsError> {
        let authority = make_local_authority(name, OffsetDateTime::now_utc())?;
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| CredentialsError::Identity(format!("no randomness: {e}")))?;
        let temp = data_dir.join(format!(".{DIR}.{}.tmp", hex::encode(nonce)));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialsError::Io { path, source }
        };
        fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        create_private_dir(&temp).map_err(io(&temp))?;
        let written = (|| {
            write_file(
                &temp.join(ROOT_CERT_FILE),
                authority.root_cert.as_bytes(),
                0o644,
            )?;
            write_file(
                &temp.join(ROOT_KEY_FILE),
                authority.root_key.as_bytes(),
                0o600,
            )?;
            write_file(&temp.join(CHAIN_FILE), authority.chain.as_bytes(), 0o644)?;
            write_file(&temp.join(KEY_FILE), authority.key.as_bytes(), 0o600)
        })();
        if let Err(source) = written {
            let _ = fs::remove_dir_all(&temp);
            return Err(CredentialsError::Io { path: temp, source });
        }
        let dir = data_dir.join(DIR);
        if let Err(source) = fs::rename(&temp, &dir) {
            let _ = fs::remove_dir_all(&temp);
            if !dir.exists() {
                return Err(CredentialsError::Io { path: dir, source });
            }
        }
        Ok(())
    }

    /// The root certificate of the local authority (PEM), to add to a
    /// verifier's trust list; `None` for a brought identity.
    pub fn trust_anchor_pem(data_dir: &Path) -> Result<Option<String>, CredentialsError> {
        let path = data_dir.join(DIR).join(ROOT_CERT_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CredentialsError::Io { path, source }),
        }
    }

    /// The signing certificate's subject common name.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The chain, PEM, end-entity first.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// A c2pa signer over this chain and key.
    pub(crate) fn signer(&self) -> Result<c2pa::BoxedSigner, CredentialsError> {
        c2pa::create_signer::from_keys(
            self.chain_pem.as_bytes(),
            self.key_pem.as_bytes(),
            c2pa::SigningAlg::Ed25519,
            None,
        )
        .map_err(|e| CredentialsError::Identity(format!("c2pa refuses the signing key: {e}")))
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, CredentialsError> {
    let file = fs::File::open(path)
        .map_err(|e| CredentialsError::Identity(format!("cannot read {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    use std::io::Read as _;
    file.take(PEM_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| CredentialsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > PEM_BYTES_MAX {
        return Err(CredentialsError::Identity(format!(
            "{} is larger than {PEM_BYTES_MAX} bytes, more than any chain or key",
            path.display()
        )));
    }
    Ok(bytes)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

fn write_file(path: &PathBuf, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    /// The signer chain and key of a local authority made at `now`.
    pub fn local_authority_at(name: &str, now: OffsetDateTime) -> (String, String) {
        let authority = make_local_authority(name, now).unwrap();
        (authority.chain, authority.key)
    }
}
