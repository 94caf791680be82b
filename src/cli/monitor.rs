//! `ledgerline monitor`: a label's verified mirror of a log served over the
//! C2SP tlog-tiles API (`ledger::monitor` does the verifying, into an
//! embedded-store data directory that `ledgerline verify` audits offline).
//! This module fetches over HTTP, polls, prints the new events that
//! concern a party, and turns an inconsistency into exit status 1.

use super::{bad_input, Context, EXIT_FAILURE};
use clap::Args;
use ledger::checkpoint::NoteVerifier;
use ledger::monitor::{Monitor, MonitorError, Round, SourceError, TileSource};
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::tile::Tile;
use ledger::EventStore;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The most bytes read for one resource: a full entry bundle of the
/// largest leaves (256 × 65,537 bytes) fits.
const RESOURCE_BYTES_MAX: u64 = 17 << 20;
/// How long one request may take before the round fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args)]
pub struct MonitorArgs {
    /// The log's tlog-tiles URL prefix: `<prefix>/checkpoint` is its
    /// checkpoint (for a ledgerline server, `http://HOST:PORT/tlog`).
    #[arg(long, value_name = "BASE")]
    url: String,
    /// The log's verifier key (`ledgerline key` on the log's side).
    #[arg(long, value_name = "VKEY")]
    key: String,
    /// A witness policy (`witness NAME VKEY URL` lines and `quorum K`): a
    /// checkpoint is trusted only once K of its witnesses cosigned it.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
    /// The mirror's data directory, created on first use; audit it with
    /// `ledgerline --data MDIR --origin ORIGIN verify`.
    #[arg(long, value_name = "MDIR")]
    data: PathBuf,
    /// Print (as JSON lines, like `ledgerline events`) the new events that
    /// concern this party: its catalog entries, the split sheets naming it,
    /// and usage lines that pay it.
    #[arg(long, value_name = "P")]
    party: Option<String>,
    /// Verify the current checkpoint once, then exit.
    #[arg(long)]
    once: bool,
    /// Seconds between checkpoints when polling (without --once).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
}

/// A log's tlog-tiles resources over HTTP(S).
struct HttpSource {
    prefix: String,
    agent: ureq::Agent,
}

impl HttpSource {
    fn get(&self, path: &str) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}/{path}", self.prefix);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| SourceError(format!("GET {url}: {e}")))?;
        let status = response.status();
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(RESOURCE_BYTES_MAX + 1)
            .read_to_end(&mut body)
            .map_err(|e| SourceError(format!("GET {url}: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
            return Err(SourceError(format!("GET {url}: {status} {text}")));
        }
        if body.len() as u64 > RESOURCE_BYTES_MAX {
            return Err(SourceError(format!(
                "GET {url}: the answer is over {RESOURCE_BYTES_MAX} bytes"
            )));
        }
        Ok(body)
    }
}

impl TileSource for HttpSource {
    fn checkpoint(&self) -> Result<String, SourceError> {
        let body = self.get("checkpoint")?;
        String::from_utf8(body)
            .map_err(|_| SourceError(format!("{}/checkpoint is not UTF-8 text", self.prefix)))
    }

    fn tile(&self, tile: &Tile) -> Result<Vec<u8>, SourceError> {
        self.get(&tile.path())
    }
}

pub async fn run(args: MonitorArgs, _context: &Context) -> anyhow::Result<ExitCode> {
    let verifier =
        NoteVerifier::from_verifier_key(&args.key).map_err(|e| bad_input(format!("--key: {e}")))?;
    let prefix = args.url.trim_end_matches('/').to_string();
    if !(prefix.starts_with("http://") || prefix.starts_with("https://")) {
        return Err(bad_input(format!(
            "--url {:?}: give the log's http:// or https:// tlog-tiles prefix (for a ledgerline server, http://HOST:PORT/tlog)",
            args.url
        )));
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .new_agent();
    let source = HttpSource { prefix, agent };
    let policy = match &args.witness_policy {
        Some(path) => Some(
            ledger::witness_policy::WitnessPolicy::load(path)
                .map_err(|e| bad_input(format!("--witness-policy: {e}")))?,
        ),
        None => None,
    };
    let origin = verifier.name().to_string();
    let data = args.data.clone();
    let mut monitor = tokio::task::spawn_blocking({
        let verifier = verifier.clone();
        move || {
            let monitor = Monitor::open(&data, verifier)?;
            Ok::<_, ledger::StoreError>(match policy {
                Some(policy) => monitor.with_witness_policy(policy),
                None => monitor,
            })
        }
    })
    .await??;
    let source = std::sync::Arc::new(source);
    loop {
        let outcome = tokio::task::spawn_blocking({
            let source = source.clone();
            move || {
                let mut progress = super::progress_every_two_seconds(|done, total| {
                    eprintln!("monitor: {done}/{total} events verified")
                });
                let round = monitor.round(source.as_ref(), &mut |_| {}, &mut progress);
                (monitor, round)
            }
        })
        .await?;
        monitor = outcome.0;
        match outcome.1 {
            Ok(round) => {
                report(&round);
                if let Some(party) = &args.party {
                    print_concerning(&args.data, &origin, party, &round).await?;
                }
            }
            Err(MonitorError::Source(error)) if !args.once => {
                eprintln!(
                    "monitor: the log did not answer ({error}); trying again in {} s",
                    args.interval
                );
            }
            // Witnesses may lag behind the log: wait for the quorum.
            Err(error @ MonitorError::NotWitnessed { .. }) if !args.once => {
                eprintln!("monitor: {error}trying again in {} s", args.interval);
            }
            Err(error @ MonitorError::Mirror(_)) => return Err(error.into()),
            Err(error) => {
                eprintln!("ledgerline: monitor: {error}");
                return Ok(EXIT_FAILURE);
            }
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(args.interval)).await;
    }
}

/// One line on stderr per round: what was verified, and what was fetched.
fn report(round: &Round) {
    eprintln!(
        "monitor: verified checkpoint of size {} (root {}): {} new events, {} tiles and {} entry bundles fetched",
        round.checkpoint.size,
        hex::encode(round.checkpoint.root),
        round.to - round.from,
        round.tiles_fetched,
        round.bundles_fetched
    );
}

/// Folds the mirror's new events into its projections and prints, as
/// `ledgerline events` does, those that concern `party`.
async fn print_concerning(
    data: &std::path::Path,
    origin: &str,
    party: &str,
    round: &Round,
) -> anyhow::Result<()> {
    let config = SqliteConfig::new(data, origin);
    let store = tokio::task::spawn_blocking(move || SqliteStore::open_read_only(config)).await??;
    let database = data.join(ledger::store::sqlite::DATABASE_FILE);
    let mut projections =
        tokio::task::spawn_blocking(move || ::projections::runner::Projections::open(&database))
            .await??;
    let mut seqs = Vec::new();
    let mut failure = None;
    projections
        .catch_up_reporting(&store, round.to, &mut |change| {
            match ::projections::party_scope::concerns(change, party) {
                Ok(true) => seqs.push(change_seq(change)),
                Ok(false) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        })
        .await?;
    if let Some(error) = failure {
        anyhow::bail!("cannot tell whose a usage line is: {error}");
    }
    seqs.sort_unstable();
    seqs.dedup();
    let events = store.read_seqs(seqs).await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for event in &events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// The seq of the event that made a change.
fn change_seq(change: &::projections::fold::Change) -> u64 {
    use ::projections::fold::Change;
    match change {
        Change::CatalogEntry { seq, .. } => *seq,
        Change::UsageLine(record) => record.seq,
        Change::Derivative(record) => record.seq,
        Change::Credentialed { seq, .. } => *seq,
        // Never concerns a party (see party_scope); no seq to cite.
        Change::JobProgress { .. } | Change::JobAbandoned { .. } => u64::MAX,
    }
}
