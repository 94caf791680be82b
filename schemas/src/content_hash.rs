//! Content hashes: how events name bulk content (audio files, decoded PCM,
//! stems) without carrying it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Length of the lowercase hex SHA-256 digest in a content hash.
pub const SHA256_HEX_LEN: usize = 64;

/// `sha256:<64 lowercase hex digits>`: the SHA-256 of some bytes (a file, or
/// the canonical PCM of decoded audio). Deserializing checks the form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content hash {0:?} is invalid: use \"sha256:\" followed by 64 lowercase hex digits")]
pub struct ContentHashError(pub String);

impl ContentHash {
    /// Wraps a 32-byte SHA-256 digest.
    pub fn from_sha256(digest: [u8; 32]) -> ContentHash {
        let mut text = String::with_capacity(7 + SHA256_HEX_LEN);
        text.push_str("sha256:");
        for byte in digest {
            text.push_str(&format!("{byte:02x}"));
        }
        ContentHash(text)
    }

    /// Parses `sha256:<hex>`.
    pub fn parse(text: &str) -> Result<ContentHash, ContentHashError> {
        let ok = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == SHA256_HEX_LEN
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(ContentHash(text.to_string()))
        } else {
            Err(ContentHashError(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContentHash {
    type Error = ContentHashError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        ContentHash::parse(&text)
    }
}

impl From<ContentHash> for String {
    fn from(hash: ContentHash) -> String {
        hash.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_form_is_checked() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(ContentHash::parse(&good).unwrap().as_str(), good);
        assert!(ContentHash::parse(&good.to_uppercase()).is_err());
        assert!(ContentHash::parse("sha256:abc").is_err());
        assert!(ContentHash::parse(&format!("md5:{}", "ab".repeat(32))).is_err());
        assert_eq!(ContentHash::from_sha256([0xab; 32]).as_str(), good);
        let parsed: Result<ContentHash, _> = serde_json::from_str("\"sha256:00\"");
        assert!(parsed.is_err());
    }
}
