//! Who may call what: the roles of bearer API keys, the one access table,
//! and the extractor that turns `Authorization: Bearer <token>` into the
//! caller. The keys themselves are in [`super::keys`].

use super::error::ApiError;
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Serialize;
use std::sync::Arc;

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
    /// Record the withdrawal of an artist's consent.
    WithdrawConsent,
    /// Read the takedown list.
    ReadTakedowns,
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
    (Action::WithdrawConsent, &[Role::Admin]),
    (
        Action::ReadTakedowns,
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
        let principal = state
            .keys
            .authenticate(&token)
            .await
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
}
