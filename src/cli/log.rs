//! The log's own commands: append, read, checkpoints, keys, proofs, audit.
//! Their output formats are a contract that outside verifiers rely on.

use super::{bad_input, Context};
use clap::{Args, Subcommand};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent, NoteVerifier};
use serde_json::json;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

/// Events printed per read round trip by `events`.
const EVENTS_PAGE: usize = 4096;

#[derive(Subcommand)]
pub enum LogCommand {
    /// Append one event to a stream; prints {"seq","version","leaf_hash"}.
    Append(AppendArgs),
    /// Print events in seq order as JSON Lines, with their exact leaf bytes.
    Events(EventsArgs),
    /// Print the latest signed checkpoint note, or the stored one of --size.
    Checkpoint(CheckpointArgs),
    /// Print the checkpoint verifier key (Go note format).
    Key,
    /// Print an RFC 6962 inclusion or consistency proof as JSON.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Audit the whole log: leaves, stream links, Merkle hashes, checkpoints.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct AppendArgs {
    /// Stream name (A-Z a-z 0-9 . _ : - @, up to 200 characters).
    #[arg(long)]
    stream: String,
    /// Event type, e.g. catalog.recording-registered.
    #[arg(long = "type")]
    event_type: String,
    /// The payload: a JSON object, @FILE to read it from a file, or - for stdin.
    #[arg(long, required_unless_present = "jsonl", conflicts_with = "jsonl")]
    data: Option<String>,
    /// Bulk mode: append each line of this JSON Lines file (- for stdin) as
    /// its own event, up to 64 in flight, printing {"line","seq","version","leaf_hash"}
    /// for each as soon as it is durable.
    #[arg(long, conflicts_with_all = ["expected_version", "id"])]
    jsonl: Option<String>,
    /// Number of events the stream must hold already (0: the stream must be new).
    #[arg(long)]
    expected_version: Option<u64>,
    /// Event id (UUID) for an idempotent retry; a new one is made otherwise.
    #[arg(long)]
    id: Option<String>,
    /// Version of the payload's schema.
    #[arg(long, default_value_t = 1)]
    schema: u32,
}

#[derive(Args)]
pub struct EventsArgs {
    /// First seq to print.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Most events to print (all by default).
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(Args)]
pub struct CheckpointArgs {
    /// Tree size of a stored checkpoint to print.
    #[arg(long, conflicts_with = "witnessed")]
    size: Option<u64>,
    /// Print the latest checkpoint cosigned by the quorum of --witness-policy
    /// (exit 1 while there is none).
    #[arg(long, requires = "witness_policy")]
    witnessed: bool,
    /// The witness policy that --witnessed counts cosignatures under.
    #[arg(long, value_name = "FILE", env = "LEDGERLINE_WITNESS_POLICY")]
    witness_policy: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
pub enum ProofCommand {
    /// Inclusion proof of the event at --seq in the tree of --size leaves.
    Inclusion {
        #[arg(long)]
        seq: u64,
        /// Tree size (default: the latest checkpoint's).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Consistency proof between tree sizes --from and --to.
    Consistency {
        #[arg(long)]
        from: u64,
        /// Tree size (default: the latest checkpoint's).
        #[arg(long)]
        to: Option<u64>,
    },
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Verifier key to check checkpoints against (default: this log's own key).
    #[arg(long)]
    key: Option<String>,
}

pub async fn run(command: LogCommand, context: &Context) -> anyhow::Result<ExitCode> {
    match command {
        LogCommand::Append(args) => append(args, context).await,
        LogCommand::Events(args) => events(args, context).await,
        LogCommand::Checkpoint(args) => checkpoint(args, context).await,
        LogCommand::Key => {
            let store = context.open_store_read_only().await?;
            println!("{}", store.verifier_key());
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Proof(command) => proof(command, context).await,
        LogCommand::Verify(args) => verify(args, context).await,
    }
}

/// The most bytes of `--data` read: sixteen times the largest leaf, room
/// for JSON written with white space.
const DATA_ARGUMENT_BYTES_MAX: usize = 16 * ledger::envelope::LEAF_SIZE_BYTES_MAX;

/// Reads `--data`: inline JSON, `@FILE` or `-` (stdin). Must be UTF-8 JSON.
pub fn read_json_argument(argument: &str) -> anyhow::Result<serde_json::Value> {
    let (bytes, origin) = match argument {
        "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| bad_input(format!("cannot read --data from stdin: {e}")))?;
            (bytes, "stdin".to_string())
        }
        _ if argument.starts_with('@') => {
            let path = &argument[1..];
            let bytes = std::fs::read(path)
                .map_err(|e| bad_input(format!("cannot read --data file {path}: {e}")))?;
            (bytes, path.to_string())
        }
        _ => (argument.as_bytes().to_vec(), "--data".to_string()),
    };
    // JSON text may shrink when canonicalized (white space), so the exact
    // limit is the ledger's, on the leaf; this only bounds what is read.
    if bytes.len() > DATA_ARGUMENT_BYTES_MAX {
        return Err(bad_input(format!(
            "{origin} is {} bytes; an event's leaf may be at most {} bytes",
            bytes.len(),
            ledger::envelope::LEAF_SIZE_BYTES_MAX
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        bad_input(format!(
            "{origin} is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| bad_input(format!("{origin} is not valid JSON: {e}")))
}

/// Refuses, before the log is opened, the event types and streams that only
/// the generation engine and the importers write (`generate`, `catalog
/// import`, `usage import`, `voice train`).
fn refuse_reserved(stream: &str, event_type: &str) -> anyhow::Result<()> {
    match schemas::reserved::raw_append_refusal(stream, [event_type]) {
        Some(refusal) => Err(bad_input(refusal)),
        None => Ok(()),
    }
}

async fn append(args: AppendArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let Some(data) = &args.data else {
        return append_lines(args, context).await;
    };
    let data = read_json_argument(data)?;
    let id = args
        .id
        .as_deref()
        .map(|text| {
            uuid::Uuid::parse_str(text)
                .map_err(|e| bad_input(format!("--id {text:?} is not a UUID: {e}")))
        })
        .transpose()?;
    let expected = args
        .expected_version
        .map_or(ExpectedVersion::Any, ExpectedVersion::Exact);
    refuse_reserved(&args.stream, &args.event_type)?;
    let event = NewEvent {
        id,
        event_type: args.event_type,
        schema: args.schema,
        data,
    };
    let store = context.open_store().await?;
    let appended = store
        .append(AppendRequest::new(args.stream, expected, vec![event]))
        .await?;
    let appended = appended[0];
    println!(
        "{}",
        json!({"seq": appended.seq, "version": appended.version, "leaf_hash": hex::encode(appended.leaf_hash)})
    );
    Ok(ExitCode::SUCCESS)
}

/// Appends in flight at once in bulk mode: enough to fill group commits.
const BULK_IN_FLIGHT_MAX: usize = 64;

async fn append_lines(args: AppendArgs, context: &Context) -> anyhow::Result<ExitCode> {
    use futures::stream::{FuturesUnordered, StreamExt};
    use tokio::io::AsyncBufReadExt;

    refuse_reserved(&args.stream, &args.event_type)?;
    let path = args.jsonl.expect("clap requires --data or --jsonl");
    let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if path == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(&path)
                .await
                .map_err(|e| bad_input(format!("cannot read --jsonl file {path}: {e}")))?,
        )
    };
    let mut lines = tokio::io::BufReader::new(input).lines();
    let store = context.open_store().await?;
    let mut in_flight = FuturesUnordered::new();
    let mut line_number = 0u64;
    let mut reading = true;
    let mut failure = None;
    loop {
        tokio::select! {
            line = lines.next_line(), if reading && in_flight.len() < BULK_IN_FLIGHT_MAX => {
                let line = match line {
                    Ok(Some(line)) => line,
                    Ok(None) => { reading = false; continue }
                    Err(e) => {
                        failure = Some(bad_input(format!("--jsonl line {}: {e}", line_number + 1)));
                        reading = false;
                        continue;
                    }
                };
                line_number += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let data = match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(data) => data,
                    Err(e) => {
                        failure = Some(bad_input(format!("--jsonl line {line_number} is not valid JSON: {e}")));
                        reading = false;
                        continue;
                    }
                };
                let event = NewEvent { id: None, event_type: args.event_type.clone(), schema: args.schema, data };
                let request = AppendRequest::new(args.stream.clone(), ExpectedVersion::Any, vec![event]);
                let store = store.clone();
                in_flight.push(async move { (line_number, store.append(request).await) });
            }
            Some((line, result)) = in_flight.next(), if !in_flight.is_empty() => {
                match result {
                    Ok(appended) => println!(
                        "{}",
                        json!({"line": line, "seq": appended[0].seq, "version": appended[0].version,
                               "leaf_hash": hex::encode(appended[0].leaf_hash)})
                    ),
                    Err(e) => {
                        failure.get_or_insert(anyhow::Error::from(e).context(format!("--jsonl line {line}")));
                        reading = false;
                    }
                }
            }
            else => break,
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn events(args: EventsArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let store = context.open_store_read_only().await?;
    let mut next = args.from;
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while remaining > 0 {
        let page = store
            .read_range(next, EVENTS_PAGE.min(remaining as usize))
            .await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        remaining -= page.len() as u64;
        for event in &page {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a checkpoint note with the cosignatures kept for it, built by
/// `ledger::witnessed` as the API serves it.
async fn checkpoint(args: CheckpointArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let policy = match (&args.witness_policy, args.witnessed) {
        (Some(path), true) => Some(super::witness::load_policy(path)?),
        _ => None,
    };
    let store = context.open_store_read_only().await?;
    let checkpoint = match (args.size, policy) {
        (_, Some(policy)) => ledger::witnessed::latest_witnessed(store.as_ref(), &policy)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no checkpoint has been cosigned by {} of the policy's witnesses yet",
                    policy.quorum()
                )
            })?,
        (Some(size), None) => ledger::witnessed::served(store.as_ref(), Some(size))
            .await?
            .ok_or_else(|| bad_input(format!("no checkpoint of size {size} is stored")))?,
        (None, None) => ledger::witnessed::served(store.as_ref(), None)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the log has no checkpoint yet"))?,
    };
    print!("{}", checkpoint.note);
    Ok(ExitCode::SUCCESS)
}

async fn latest(store: &dyn EventStore) -> anyhow::Result<ledger::SignedCheckpoint> {
    store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the log has no checkpoint yet"))
}

async fn proof(command: ProofCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let store = context.open_store_read_only().await?;
    let output = match command {
        ProofCommand::Inclusion { seq, size } => {
            let size = match size {
                Some(size) => size,
                None => latest(store.as_ref()).await?.size,
            };
            serde_json::to_string(&store.prove_inclusion(seq, size).await?)?
        }
        ProofCommand::Consistency { from, to } => {
            let to = match to {
                Some(to) => to,
                None => latest(store.as_ref()).await?.size,
            };
            serde_json::to_string(&store.prove_consistency(from, to).await?)?
        }
    };
    println!("{output}");
    Ok(ExitCode::SUCCESS)
}

async fn verify(args: VerifyArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let store = context.open_store_read_only().await?;
    let verifier = match &args.key {
        Some(key) => {
            NoteVerifier::from_verifier_key(key).map_err(|e| bad_input(format!("--key: {e}")))?
        }
        None => store.verifier().clone(),
    };
    let started = Instant::now();
    let mut progress = super::progress_every_two_seconds(|done, total| {
        eprintln!("verify: {done}/{total} events checked")
    });
    match ledger::verify::audit(store.as_ref(), &verifier, &mut progress).await {
        Ok(report) => {
            println!(
                "ok {} events, {} checkpoints, root {}",
                report.events,
                report.checkpoints,
                hex::encode(report.root)
            );
            tracing::info!(
                "verified in {:.3} s; {} events after the newest checkpoint",
                started.elapsed().as_secs_f64(),
                report.unsigned_events
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            eprintln!("ledgerline: verify failed: {failure}");
            Ok(super::EXIT_FAILURE)
        }
    }
}
