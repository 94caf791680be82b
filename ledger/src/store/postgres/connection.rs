//! Connections to the server: parsing the URL, opening a connection on the
//! store's runtime, and turning the driver's errors into [`StoreError`]s
//! that carry PostgreSQL's own words. No statements are run here: the writer
//! and the read pool own what their connections do.

use crate::store::StoreError;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_postgres::{Client, NoTls};

/// How long a connection attempt may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// PostgreSQL's own message where there is one (tokio-postgres' `Display`
/// says only "db error"), and a plain word when the server went away.
pub(super) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        return StoreError::Backend(format!(
            "PostgreSQL refused: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        ));
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_closed() {
        message.push_str(" (the PostgreSQL connection was lost; it is reopened on the next call)");
    }
    StoreError::Backend(format!("PostgreSQL: {message}"))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        pg_error(error)
    }
}

/// Opens connections, driven by the store's own runtime.
#[derive(Clone)]
pub(super) struct Connector {
    pub(super) config: tokio_postgres::Config,
    pub(super) runtime: Handle,
}

impl Connector {
    pub(super) fn new(url: &str, runtime: Handle) -> Result<Connector, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            backend(format!(
                "{url:?} is not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // Notice a dead server or network on an idle connection in seconds,
        // not after the kernel's two-hour default.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.application_name("ledgerline");
        Ok(Connector { config, runtime })
    }

    pub(super) async fn connect(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        self.runtime
            .spawn(async move {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!("PostgreSQL connection ended: {e}");
                    }
                });
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(pg_error)
    }
}

/// The URL without its password, for messages.
pub(super) fn redacted_url(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "PostgreSQL database {:?} on {}",
                config.get_dbname().unwrap_or("(default)"),
                hosts.join(",")
            )
        }
        Err(_) => "the PostgreSQL database".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::is_postgres_url;

    #[test]
    fn urls_are_recognized_and_redacted() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("sqlite:./data"));
        let shown = redacted_url("postgres://user:secret@db.example:5432/ledger");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("ledger") && shown.contains("db.example"),
            "{shown}"
        );
    }
}
