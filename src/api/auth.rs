//! Who may call what: bearer API keys, their roles, and the one access table.
//!
//! Keys live in the API's own SQLite file in the data directory (`api.db`,
//! table `api_keys`), apart from the log, so that managing keys never
//! touches the audited ledger. Only the SHA-256 of each token is stored: a token is 256 random
//! bits, so a hash is as good as a slow password hash and a stolen key file
//! yields no usable token.

use super::error::ApiError;
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Tokens start with this, so that a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "llk_";
/// Random bytes in a token (256 bits).
const TOKEN_SECRET_BYTES: usize = 32;
/// A party id a label key may be bound to: same alphabet and bound as stream names.
const PARTY_BYTES_MAX: usize = 200;

const KEYS_DDL: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    party         TEXT,
    token_sha256  BLOB NOT NULL UNIQUE,
    created_unix  INTEGER NOT NULL,
    revoked_unix  INTEGER
) STRICT;
";

/// What a key may do. `Label` keys are bound to one party id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Writes: catalog, usage, raw events.
    Ingest,
    /// Generation requests.
    Generator,
    /// Reads everything: the log, statements, lineage, metrics.
    Auditor,
    /// One party's own data only.
    Label,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Ingest,
        Role::Generator,
        Role::Auditor,
        Role::Label,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Generator => "generator",
            Role::Auditor => "auditor",
            Role::Label => "label",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == text)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    /// The party a `label` key is bound to; `None` for every other role.
    pub party: Option<String>,
}

/// What an endpoint does, as the access table knows it. Endpoints added
/// later (statements, lineage, generations) add a variant and a table row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read events and streams: the full content of the log.
    ReadLog,
    /// Append raw events to a stream.
    AppendEvents,
    /// Read the server's metrics.
    ReadMetrics,
    /// Read royalty statements: a label only its own party's.
    ReadStatement,
    /// Import a usage report.
    ImportUsage,
    /// Import a catalog document.
    ImportCatalog,
    /// Read a derivative's lineage: a label only derivatives that paid it.
    ReadLineage,
    /// Reconcile a statement with ours: a label only its own party's rows.
    Reconcile,
    /// Submit a generation request.
    Generate,
    /// Read generation jobs, their events and their artifacts.
    ReadGeneration,
}

/// Which roles may perform each action. A `label` appears only beside
/// actions on one party's data, and [`authorize`] pins it to its own party.
const ACCESS: &[(Action, &[Role])] = &[
    (Action::ReadLog, &[Role::Admin, Role::Auditor]),
    (Action::AppendEvents, &[Role::Admin, Role::Ingest]),
    (Action::ReadMetrics, &[Role::Admin, Role::Auditor]),
    (
        Action::ReadStatement,
        &[Role::Admin, Role::Auditor, Role::Label],
    ),
    (Action::ImportUsage, &[Role::Admin, Role::Ingest]),
    (Action::ImportCatalog, &[Role::Admin, Role::Ingest]),
    (
        Action::ReadLineage,
        &[Role::Admin, Role::Auditor, Role::Label],
    ),
    (
        Action::Reconcile,
        &[Role::Admin, Role::Auditor, Role::Label],
    ),
    (Action::Generate, &[Role::Admin, Role::Generator]),
    (
        Action::ReadGeneration,
        &[Role::Admin, Role::Generator, Role::Auditor],
    ),
];

/// Whose data a permitted request may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every party's.
    All,
    /// This party's only (a label key).
    Party(String),
}

/// Checks `principal` against the access table for `action` on the data of
/// `party` (the party a request names, if any), and returns the scope the
/// request may see. A label may act only on its own party: naming another is
/// 403, naming none scopes the request to its own.
pub fn authorize(
    principal: &Principal,
    action: Action,
    party: Option<&str>,
) -> Result<Scope, ApiError> {
    let roles = ACCESS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or(&[][..], |(_, roles)| *roles);
    if !roles.contains(&principal.role) {
        return Err(ApiError::Forbidden(format!(
            "a {} key may not do this; allowed roles: {}",
            principal.role.name(),
            roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    match (&principal.party, party) {
        (None, None) => Ok(Scope::All),
        (None, Some(party)) => Ok(Scope::Party(party.to_string())),
        (Some(own), None) => Ok(Scope::Party(own.clone())),
        (Some(own), Some(party)) if own == party => Ok(Scope::Party(own.clone())),
        (Some(own), Some(party)) => Err(ApiError::Forbidden(format!(
            "this key belongs to party {own:?} and may not read party {party:?}"
        ))),
    }
}

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
    #[error("the key store {path} failed: {message}")]
    Storage { path: String, message: String },
}

impl KeyError {
    /// True when the caller's input was wrong (exit status 2 in the CLI).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, KeyError::Storage { .. })
    }
}

/// The key database: one connection, serialized by a mutex (key checks are
/// one indexed lookup each).
pub struct KeyStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl KeyStore {
    /// Opens (creating on first use) the key database in `data_dir`. Blocking.
    pub fn open(data_dir: &Path) -> Result<KeyStore, KeyError> {
        let path = data_dir.join(super::API_DATABASE_FILE);
        let storage = |e: &dyn std::fmt::Display| KeyError::Storage {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(|e| storage(&e))?;
        let conn = Connection::open(&path).map_err(|e| storage(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| storage(&e))?;
        conn.execute_batch(KEYS_DDL).map_err(|e| storage(&e))?;
        Ok(KeyStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    fn storage(&self, error: impl std::fmt::Display) -> KeyError {
        KeyError::Storage {
            path: self.path.display().to_string(),
            message: error.to_string(),
        }
    }

    /// Creates a key with a fresh random token; returns the token once.
    pub fn create(&self, role: Role, party: Option<&str>) -> Result<CreatedKey, KeyError> {
        match (role, party) {
            (Role::Label, None) => return Err(KeyError::LabelWithoutParty),
            (Role::Label, Some(party)) => validate_party(party)?,
            (_, Some(_)) => return Err(KeyError::PartyForOtherRole(role.name())),
            (_, None) => {}
        }
        let mut secret = [0u8; TOKEN_SECRET_BYTES];
        getrandom::getrandom(&mut secret).map_err(|e| self.storage(e))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let mut id_bytes = [0u8; 6];
        getrandom::getrandom(&mut id_bytes).map_err(|e| self.storage(e))?;
        let id = hex::encode(id_bytes);
        let conn = self.conn.lock().expect("key store lock");
        conn.execute(
            "INSERT INTO api_keys (id, role, party, token_sha256, created_unix) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, role.name(), party, token_hash(&token).to_vec(), OffsetDateTime::now_utc().unix_timestamp()],
        )
        .map_err(|e| self.storage(e))?;
        Ok(CreatedKey {
            id,
            role,
            party: party.map(str::to_string),
            token,
        })
    }

    /// Every key, oldest first, revoked ones included.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let conn = self.conn.lock().expect("key store lock");
        let mut statement = conn
            .prepare("SELECT id, role, party, created_unix, revoked_unix FROM api_keys ORDER BY created_unix, id")
            .map_err(|e| self.storage(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            })
            .map_err(|e| self.storage(e))?;
        let mut keys = Vec::new();
        for row in rows {
            let (id, role, party, created, revoked) = row.map_err(|e| self.storage(e))?;
            let role = Role::parse(&role)
                .ok_or_else(|| self.storage(format!("key {id} has unknown role {role:?}")))?;
            keys.push(KeyRecord {
                id,
                role,
                party,
                created: rfc3339(created),
                revoked: revoked.map(rfc3339),
            });
        }
        Ok(keys)
    }

    /// Revokes a key: from now on its token is refused with 401.
    pub fn revoke(&self, id: &str) -> Result<(), KeyError> {
        let conn = self.conn.lock().expect("key store lock");
        let changed = conn
            .execute(
                "UPDATE api_keys SET revoked_unix = coalesce(revoked_unix, ?2) WHERE id = ?1",
                params![id, OffsetDateTime::now_utc().unix_timestamp()],
            )
            .map_err(|e| self.storage(e))?;
        if changed == 0 {
            return Err(KeyError::UnknownKey(id.to_string()));
        }
        Ok(())
    }

    /// The caller a token belongs to, or `None` for an unknown or revoked token.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, KeyError> {
        let conn = self.conn.lock().expect("key store lock");
        let row = conn
            .query_row(
                "SELECT id, role, party FROM api_keys WHERE token_sha256 = ?1 AND revoked_unix IS NULL",
                params![token_hash(token).to_vec()],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.storage(e))?;
        let Some((key_id, role, party)) = row else {
            return Ok(None);
        };
        let role = Role::parse(&role)
            .ok_or_else(|| self.storage(format!("key {key_id} has unknown role {role:?}")))?;
        Ok(Some(Principal {
            key_id,
            role,
            party,
        }))
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

/// Extracts the caller from `Authorization: Bearer <token>`: 401 when the
/// header is missing or malformed, or the token unknown or revoked.
impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized(
                "this endpoint needs an API key: send `Authorization: Bearer <token>`".into(),
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?
            .to_string();
        let keys = state.keys.clone();
        let principal = tokio::task::spawn_blocking(move || keys.authenticate(&token))
            .await
            .map_err(|e| ApiError::Internal(format!("key check failed: {e}")))?
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let principal = principal.ok_or_else(|| {
            ApiError::Unauthorized("the API key is unknown or has been revoked".into())
        })?;
        tracing::Span::current().record("key", principal.key_id.as_str());
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, party: Option<&str>) -> Principal {
        Principal {
            key_id: "k".into(),
            role,
            party: party.map(str::to_string),
        }
    }

    #[test]
    fn every_action_has_exactly_one_row() {
        for (action, _) in ACCESS {
            assert_eq!(ACCESS.iter().filter(|(a, _)| a == action).count(), 1);
        }
    }

    #[test]
    fn roles_outside_the_table_are_forbidden() {
        let ingest = principal(Role::Ingest, None);
        assert!(matches!(
            authorize(&ingest, Action::ReadLog, None),
            Err(ApiError::Forbidden(_))
        ));
        let label = principal(Role::Label, Some("party-a"));
        for action in [Action::ReadLog, Action::AppendEvents, Action::ReadMetrics] {
            assert!(matches!(
                authorize(&label, action, None),
                Err(ApiError::Forbidden(_))
            ));
        }
        let auditor = principal(Role::Auditor, None);
        assert_eq!(
            authorize(&auditor, Action::ReadLog, None).unwrap(),
            Scope::All
        );
    }

    #[test]
    fn a_label_is_pinned_to_its_own_party() {
        let label = principal(Role::Label, Some("party-a"));
        let own = Scope::Party("party-a".into());
        assert_eq!(authorize(&label, Action::ReadStatement, None).unwrap(), own);
        assert_eq!(
            authorize(&label, Action::ReadStatement, Some("party-a")).unwrap(),
            own
        );
        assert!(matches!(
            authorize(&label, Action::ReadStatement, Some("party-b")),
            Err(ApiError::Forbidden(_))
        ));
        let admin = principal(Role::Admin, None);
        assert_eq!(
            authorize(&admin, Action::ReadStatement, None).unwrap(),
            Scope::All
        );
        assert_eq!(
            authorize(&admin, Action::ReadStatement, Some("party-b")).unwrap(),
            Scope::Party("party-b".into())
        );
    }

    #[test]
    fn keys_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyStore::open(dir.path()).unwrap();
        let created = keys.create(Role::Label, Some("party-a")).unwrap();
        assert!(created.token.starts_with(TOKEN_PREFIX));
        let found = keys.authenticate(&created.token).unwrap().unwrap();
        assert_eq!(found.role, Role::Label);
        assert_eq!(found.party.as_deref(), Some("party-a"));
        let file = std::fs::read(dir.path().join(crate::api::API_DATABASE_FILE)).unwrap();
        let secret = created.token.as_bytes();
        assert!(
            !file.windows(secret.len()).any(|w| w == secret),
            "the token must not be stored in plain text"
        );
        keys.revoke(&created.id).unwrap();
        assert_eq!(keys.authenticate(&created.token).unwrap(), None);
        assert!(matches!(keys.revoke("nope"), Err(KeyError::UnknownKey(_))));
        assert!(matches!(
            keys.create(Role::Label, None),
            Err(KeyError::LabelWithoutParty)
        ));
        assert!(matches!(
            keys.create(Role::Admin, Some("p")),
            Err(KeyError::PartyForOtherRole(_))
        ));
    }
}
