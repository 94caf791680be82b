//! Bearer API keys: created, listed and revoked by `ledgerline keys`, checked
//! on every request. They live in the API's records ([`super::records`]):
//! the data directory's `api.db`, or the log's PostgreSQL database, which
//! every node of that log shares.
//!
//! Only the SHA-256 of each token is stored: a token is 256 random bits, so
//! a hash is as good as a slow password hash, and a stolen key table yields
//! no usable token.

use super::auth::{Principal, Role};
use super::records::{Records, RecordsError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::OffsetDateTime;

/// Tokens start with this, so that a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "llk_";
/// Random bytes in a token (256 bits).
const TOKEN_SECRET_BYTES: usize = 32;
/// A party id a label key may be bound to: same alphabet and bound as stream names.
const PARTY_BYTES_MAX: usize = 200;

/// One key as `keys list` shows it (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub role: Role,
    pub party: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
    /// RFC 3339 UTC, when revoked.
    pub revoked: Option<String>,
}

/// A newly created key: the only time its token is seen.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    pub id: String,
    pub role: Role,
    pub party: Option<String>,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a label key needs --party (the party id it may read)")]
    LabelWithoutParty,
    #[error("only label keys are bound to a party; drop --party for the {0} role")]
    PartyForOtherRole(&'static str),
    #[error("party id {0:?} is invalid: use 1 to 200 characters from A-Z a-z 0-9 . _ : - @")]
    BadParty(String),
    #[error("no API key has id {0:?}; `ledgerline keys list` shows them")]
    UnknownKey(String),
    #[error(transparent)]
    Storage(#[from] RecordsError),
}

impl KeyError {
    /// True when the caller's input was wrong (exit status 2 in the CLI).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, KeyError::Storage(_))
    }
}

/// A key row as stored: id, role name, party, created and revoked (Unix seconds).
type KeyRow = (String, String, Option<String>, i64, Option<i64>);

/// The API keys in the records.
pub struct KeyStore {
    records: Arc<Records>,
}

impl KeyStore {
    pub fn new(records: Arc<Records>) -> KeyStore {
        KeyStore { records }
    }

    /// Creates a key with a fresh random token; returns the token once.
    pub async fn create(&self, role: Role, party: Option<&str>) -> Result<CreatedKey, KeyError> {
        match (role, party) {
            (Role::Label, None) => return Err(KeyError::LabelWithoutParty),
            (Role::Label, Some(party)) => validate_party(party)?,
            (_, Some(_)) => return Err(KeyError::PartyForOtherRole(role.name())),
            (_, None) => {}
        }
        let mut secret = [0u8; TOKEN_SECRET_BYTES];
        getrandom::getrandom(&mut secret).map_err(|e| self.records.failed(e))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let mut id_bytes = [0u8; 6];
        getrandom::getrandom(&mut id_bytes).map_err(|e| self.records.failed(e))?;
        let id = hex::encode(id_bytes);
        let hash = token_hash(&token).to_vec();
        let created = OffsetDateTime::now_utc().unix_timestamp();
        let party_owned = party.map(str::to_string);
        match self.records.as_ref() {
            Records::Sqlite(db) => {
                let (id, party) = (id.clone(), party_owned.clone());
                db.run(move |conn| {
                    conn.execute(
                        "INSERT INTO api_keys (id, role, party, token_sha256, created_unix) VALUES (?1, ?2, ?3, ?4, ?5)",
                        rusqlite::params![id, role.name(), party, hash, created],
                    )
                })
                .await?;
            }
            Records::Postgres(db) => {
                db.execute(
                    "INSERT INTO api_keys (id, role, party, token_sha256, created_unix) VALUES ($1, $2, $3, $4, $5)",
                    &[&id, &role.name(), &party_owned, &hash, &created],
                )
                .await?;
            }
        }
        Ok(CreatedKey {
            id,
            role,
            party: party_owned,
            token,
        })
    }

    /// Every key, oldest first, revoked ones included.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        const LIST: &str = "SELECT id, role, party, created_unix, revoked_unix FROM api_keys ORDER BY created_unix, id";
        let rows: Vec<KeyRow> = match self.records.as_ref() {
            Records::Sqlite(db) => {
                db.run(|conn| {
                    let mut statement = conn.prepare(LIST)?;
                    let rows = statement.query_map([], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })?;
                    rows.collect()
                })
                .await?
            }
            Records::Postgres(db) => db
                .query(LIST, &[])
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
                .collect(),
        };
        rows.into_iter()
            .map(|(id, role, party, created, revoked)| {
                Ok(KeyRecord {
                    role: self.role(&id, &role)?,
                    id,
                    party,
                    created: rfc3339(created),
                    revoked: revoked.map(rfc3339),
                })
            })
            .collect()
    }

    /// Revokes a key: from now on its token is refused with 401, by every
    /// node that shares these records.
    pub async fn revoke(&self, id: &str) -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let changed = match self.records.as_ref() {
            Records::Sqlite(db) => {
                let id = id.to_string();
                db.run(move |conn| {
                    conn.execute(
                        "UPDATE api_keys SET revoked_unix = coalesce(revoked_unix, ?2) WHERE id = ?1",
                        rusqlite::params![id, now],
                    )
                })
                .await? as u64
            }
            Records::Postgres(db) => {
                db.execute(
                    "UPDATE api_keys SET revoked_unix = coalesce(revoked_unix, $2) WHERE id = $1",
                    &[&id, &now],
                )
                .await?
            }
        };
        if changed == 0 {
            return Err(KeyError::UnknownKey(id.to_string()));
        }
        Ok(())
    }

    /// The caller a token belongs to, or `None` for an unknown or revoked token.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, KeyError> {
        let hash = token_hash(token).to_vec();
        let row: Option<(String, String, Option<String>)> = match self.records.as_ref() {
            Records::Sqlite(db) => {
                db.run(move |conn| {
                    use rusqlite::OptionalExtension;
                    conn.query_row(
                        "SELECT id, role, party FROM api_keys WHERE token_sha256 = ?1 AND revoked_unix IS NULL",
                        rusqlite::params![hash],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                })
                .await?
            }
            Records::Postgres(db) => db
                .query(
                    "SELECT id, role, party FROM api_keys WHERE token_sha256 = $1 AND revoked_unix IS NULL",
                    &[&hash],
                )
                .await?
                .first()
                .map(|row| (row.get(0), row.get(1), row.get(2))),
        };
        let Some((key_id, role, party)) = row else {
            return Ok(None);
        };
        Ok(Some(Principal {
            role: self.role(&key_id, &role)?,
            key_id,
            party,
        }))
    }

    fn role(&self, key_id: &str, role: &str) -> Result<Role, KeyError> {
        Role::parse(role).ok_or_else(|| {
            self.records
                .failed(format!("key {key_id} has unknown role {role:?}"))
                .into()
        })
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Party ids appear in URLs and queries, so they share the stream-name alphabet.
fn validate_party(party: &str) -> Result<(), KeyError> {
    let ok = !party.is_empty()
        && party.len() <= PARTY_BYTES_MAX
        && party
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadParty(party.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::records::RecordsLocation;

    #[tokio::test]
    async fn keys_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let location = RecordsLocation::DataDir(dir.path().to_path_buf());
        let records = Records::open(&location, "test.example/log").await.unwrap();
        let keys = KeyStore::new(Arc::new(records));
        let created = keys.create(Role::Label, Some("party-a")).await.unwrap();
        assert!(created.token.starts_with(TOKEN_PREFIX));
        let found = keys.authenticate(&created.token).await.unwrap().unwrap();
        assert_eq!(found.role, Role::Label);
        assert_eq!(found.party.as_deref(), Some("party-a"));
        let file = std::fs::read(dir.path().join(crate::api::API_DATABASE_FILE)).unwrap();
        let secret = created.token.as_bytes();
        assert!(
            !file.windows(secret.len()).any(|w| w == secret),
            "the token must not be stored in plain text"
        );
        let listed = keys.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, created.id);
        assert_eq!(listed[0].revoked, None);
        keys.revoke(&created.id).await.unwrap();
        assert_eq!(keys.authenticate(&created.token).await.unwrap(), None);
        assert!(keys.list().await.unwrap()[0].revoked.is_some());
        assert!(matches!(
            keys.revoke("nope").await,
            Err(KeyError::UnknownKey(_))
        ));
        assert!(matches!(
            keys.create(Role::Label, None).await,
            Err(KeyError::LabelWithoutParty)
        ));
        assert!(matches!(
            keys.create(Role::Admin, Some("p")).await,
            Err(KeyError::PartyForOtherRole(_))
        ));
        assert!(matches!(
            keys.create(Role::Label, Some("a b")).await,
            Err(KeyError::BadParty(_))
        ));
    }
}
