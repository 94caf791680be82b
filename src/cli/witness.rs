//! `ledgerline witness serve|key`: run a C2SP tlog-witness (see
//! `crate::witness`), and print its verifier key.

use super::bad_input;
use crate::api::connections::CONNECTIONS_MAX_DEFAULT;
use crate::witness::cosign::Witness;
use crate::witness::state::WitnessState;
use crate::witness::{load_or_create_key, server};
use clap::{Args, Subcommand};
use ledger::NoteVerifier;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Serve C2SP tlog-witness `POST /add-checkpoint` for the logs of --log
    /// until SIGTERM or ctrl-c.
    Serve(ServeArgs),
    /// Print the witness's cosignature/v1 verifier key (the key is created
    /// in --data on first use).
    Key(KeyArgs),
    /// Ask the witnesses of a policy to cosign the log's latest checkpoint
    /// now (as `serve --witness-policy` does in the background) and print
    /// it with its cosignatures; exit 1 if fewer than the quorum cosigned.
    Submit(SubmitArgs),
}

#[derive(Args)]
pub struct SubmitArgs {
    /// The witness policy: `witness NAME VKEY URL` lines and `quorum K`.
    #[arg(long, value_name = "FILE", env = "LEDGERLINE_WITNESS_POLICY")]
    witness_policy: PathBuf,
}

#[derive(Args)]
pub struct ServeArgs {
    /// The witness's data directory: its key and what it has cosigned.
    #[arg(long, value_name = "WDIR")]
    data: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:7380")]
    listen: SocketAddr,
    /// A log's verifier key (`origin+hex8+base64`, what `ledgerline key`
    /// prints); repeat for several logs, or several keys of one origin.
    #[arg(long = "log", value_name = "VKEY", required = true)]
    logs: Vec<String>,
    /// The witness key's name when the key is created (a schema-less URL
    /// naming the witness, e.g. witness.label.example/w1).
    #[arg(long)]
    name: Option<String>,
    /// Open connections at most.
    #[arg(long, default_value_t = CONNECTIONS_MAX_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    connections_max: u64,
}

#[derive(Args)]
pub struct KeyArgs {
    /// The witness's data directory.
    #[arg(long, value_name = "WDIR")]
    data: PathBuf,
    /// The key's name if it is created now.
    #[arg(long)]
    name: Option<String>,
}

pub async fn run(command: WitnessCommand, context: &super::Context) -> anyhow::Result<ExitCode> {
    match command {
        WitnessCommand::Key(args) => {
            let cosigner = load_or_create_key(&args.data, args.name.as_deref())?;
            println!("{}", cosigner.verifier_key());
            Ok(ExitCode::SUCCESS)
        }
        WitnessCommand::Serve(args) => serve(args).await,
        WitnessCommand::Submit(args) => submit(args, context).await,
    }
}

async fn submit(args: SubmitArgs, context: &super::Context) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args.witness_policy)?;
    let store = context.open_store().await?;
    let (checkpoint, report) = crate::witnessing::witness_latest(store.as_ref(), &policy).await?;
    print!("{}", checkpoint.note);
    eprintln!("checkpoint {}: {report}", checkpoint.size);
    Ok(if report.is_met() {
        ExitCode::SUCCESS
    } else {
        super::EXIT_FAILURE
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let logs = args
        .logs
        .iter()
        .map(|key| {
            NoteVerifier::from_verifier_key(key)
                .map_err(|e| bad_input(format!("--log {key:?}: {e}")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cosigner = load_or_create_key(&args.data, args.name.as_deref())?;
    let state = WitnessState::open(&args.data)?;
    let verifier_key = cosigner.verifier_key();
    let witness = Arc::new(Witness::new(cosigner, logs, state));
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr()?;
    eprintln!("witness key {verifier_key}");
    // Tests and scripts wait for this line before sending requests.
    println!("listening on http://{address}");
    crate::api::connections::serve(
        listener,
        server::router(witness),
        args.connections_max as usize,
        shutdown,
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Reads `--witness-policy FILE`; a malformed file is bad input (exit 2).
pub fn load_policy(
    path: &std::path::Path,
) -> anyhow::Result<ledger::witness_policy::WitnessPolicy> {
    ledger::witness_policy::WitnessPolicy::load(path)
        .map_err(|e| bad_input(format!("--witness-policy {}: {e}", path.display())))
}
