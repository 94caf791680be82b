//! The [`Streams`] the store uses, over the official `kurrentdb` gRPC client.

use super::record::Record;
use super::{CopyOutcome, KurrentDbConfig, LedgerAppend, Streams};
use crate::envelope::validate_stream_name;
use crate::store::{StoreError, StoredEvent};
use async_trait::async_trait;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadStreamOptions,
    StreamPosition, StreamState,
};
use std::time::Duration;
use tokio::runtime::Handle;
use uuid::Uuid;

/// The ledger stream's name (in the namespace, if any). `#` cannot occur
/// in a ledgerline stream name, so no stream's copy can take this name.
const LEDGER_STREAM: &str = "ledgerline#log";
/// How long one KurrentDB call may take before it fails (a server that
/// stopped answering must not stall the writer forever).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// A KurrentDB database holding one log.
pub(super) struct KurrentDbStreams {
    client: Client,
    /// `NAMESPACE/` or empty.
    prefix: String,
    ledger: String,
    hosts: String,
}

impl KurrentDbStreams {
    /// Parses the connection string and creates the client, driven by the
    /// store's runtime (it connects on first use).
    pub(super) fn connect(
        config: &KurrentDbConfig,
        runtime: Handle,
    ) -> Result<KurrentDbStreams, StoreError> {
        let settings: ClientSettings = config.url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "the KurrentDB connection string is invalid ({e}); expected esdb://HOST:2113?tls=false or kurrentdb://USER:PASSWORD@HOST:2113"
            ))
        })?;
        let prefix = match &config.namespace {
            Some(namespace) => {
                validate_stream_name(namespace).map_err(|_| {
                    StoreError::Backend(format!(
                        "the KurrentDB namespace {namespace:?} is invalid: use 1 to 200 characters from A-Z a-z 0-9 . _ : - @"
                    ))
                })?;
                format!("{namespace}/")
            }
            None => String::new(),
        };
        let hosts = settings
            .hosts()
            .iter()
            .map(|endpoint| format!("{}:{}", endpoint.host, endpoint.port))
            .collect::<Vec<_>>()
            .join(",");
        let client = Client::with_runtime_handle(runtime, settings)
            .map_err(|e| StoreError::Backend(format!("cannot create the KurrentDB client: {e}")))?;
        Ok(KurrentDbStreams {
            client,
            ledger: format!("{prefix}{LEDGER_STREAM}"),
            prefix,
            hosts,
        })
    }

    fn copy_stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.prefix)
    }
}

/// The server's answer as one sentence, with what to do where that is known.
fn kurrentdb_error(error: kurrentdb::Error) -> StoreError {
    let hint = match &error {
        kurrentdb::Error::AccessDenied => {
            "; give a user allowed to read and write these streams in the URL (kurrentdb://USER:PASSWORD@HOST:2113)"
        }
        kurrentdb::Error::ConnectionClosed
        | kurrentdb::Error::GrpcConnectionError(_)
        | kurrentdb::Error::DeadlineExceeded
        | kurrentdb::Error::ServerError(_) => {
            "; check that the KurrentDB server is up and reachable (add ?tls=false for a server without TLS); an append that failed here may still have committed, so retry it with the same event ids"
        }
        kurrentdb::Error::NotLeaderException(_) => {
            "; connect to the cluster's leader (use a +discover URL or nodePreference=leader)"
        }
        kurrentdb::Error::ResourceDeleted => {
            "; a deleted ledger stream cannot hold a log, use another namespace"
        }
        _ => "",
    };
    StoreError::Backend(format!("KurrentDB: {error}{hint}"))
}

/// Events one read returns, one by one.
async fn drain(
    read: Result<kurrentdb::ReadStream, kurrentdb::Error>,
) -> Result<Vec<kurrentdb::RecordedEvent>, StoreError> {
    let mut read = match read {
        Ok(read) => read,
        Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
        Err(e) => return Err(kurrentdb_error(e)),
    };
    let mut events = Vec::new();
    loop {
        match read.next().await {
            // The original event, as `ResolvedEvent::get_original_event` picks it.
            Ok(Some(resolved)) => events.extend(resolved.link.or(resolved.event)),
            Ok(None) => return Ok(events),
            // The stream does not exist (yet): it holds nothing.
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
            Err(e) => return Err(kurrentdb_error(e)),
        }
    }
}

/// The expected state of a stream that must hold exactly `len` events.
fn holding(len: u64) -> StreamState {
    match len {
        0 => StreamState::NoStream,
        len => StreamState::StreamRevision(len - 1),
    }
}

/// How many events a stream holds, from a wrong-expected-version answer.
fn held(current: CurrentRevision) -> u64 {
    match current {
        CurrentRevision::Current(revision) => revision + 1,
        CurrentRevision::NoStream => 0,
    }
}

#[async_trait]
impl Streams for KurrentDbStreams {
    async fn read_ledger(&self, from: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        // Reads go to the leader, so a node sees every record another node
        // was told is committed.
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(from))
            .max_count(limit)
            .requires_leader(true)
            .deadline(REQUEST_DEADLINE);
        let events = drain(
            self.client
                .read_stream(self.ledger.as_str(), &options)
                .await,
        )
        .await?;
        events
            .into_iter()
            .map(|event| {
                let record = Record::decode(event.revision, &event.event_type, &event.data)?;
                Ok((event.revision, record))
            })
            .collect()
    }

    async fn append_ledger(
        &self,
        expected_len: u64,
        records: &[Record],
    ) -> Result<LedgerAppend, StoreError> {
        let events = records
            .iter()
            .map(|record| {
                EventData::json(record.event_type(), &record.to_json())
                    .map(|event| event.id(Uuid::new_v4()))
                    .map_err(|e| StoreError::Backend(format!("encoding a ledger record: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = AppendToStreamOptions::default()
            .stream_state(holding(expected_len))
            .deadline(REQUEST_DEADLINE);
        match self
            .client
            .append_to_stream(self.ledger.as_str(), &options, events)
            .await
        {
            Ok(_) => Ok(LedgerAppend::Committed),
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => Ok(LedgerAppend::Conflict),
            Err(e) => Err(kurrentdb_error(e)),
        }
    }

    async fn copy_events(
        &self,
        stream: &str,
        events: &[StoredEvent],
    ) -> Result<CopyOutcome, StoreError> {
        let Some(first) = events.first() else {
            return Ok(CopyOutcome::Written);
        };
        let data = events
            .iter()
            .map(|event| {
                // The leaf as it is, so a consumer can hash what it reads.
                let text = String::from_utf8(event.leaf.clone()).map_err(|_| {
                    StoreError::Corrupt(format!("the leaf of seq {} is not UTF-8", event.seq))
                })?;
                let leaf = serde_json::value::RawValue::from_string(text).map_err(|e| {
                    StoreError::Corrupt(format!("the leaf of seq {} is not JSON: {e}", event.seq))
                })?;
                EventData::json(&event.event_type, &leaf)
                    .map(|data| data.id(event.id))
                    .map_err(|e| StoreError::Backend(format!("encoding seq {}: {e}", event.seq)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = AppendToStreamOptions::default()
            .stream_state(holding(first.version))
            .deadline(REQUEST_DEADLINE);
        match self
            .client
            .append_to_stream(self.copy_stream(stream), &options, data)
            .await
        {
            Ok(_) => Ok(CopyOutcome::Written),
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                Ok(CopyOutcome::Conflict {
                    copied: held(current),
                })
            }
            Err(e) => Err(kurrentdb_error(e)),
        }
    }

    async fn copied_len(&self, stream: &str) -> Result<u64, StoreError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .max_count(1)
            .requires_leader(true)
            .deadline(REQUEST_DEADLINE);
        let last = drain(
            self.client
                .read_stream(self.copy_stream(stream), &options)
                .await,
        )
        .await?;
        Ok(last.first().map_or(0, |event| event.revision + 1))
    }

    fn describe(&self) -> String {
        format!("the KurrentDB stream {:?} on {}", self.ledger, self.hosts)
    }
}
