//! The `ledgerline` binary: thin CLI and HTTP glue over the `ledger`,
//! `inference` and `projections` libraries.

mod api;
mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ledgerline",
    version,
    about = "A verifiable ledger for licensed AI covers and remixes."
)]
struct Args {
    /// Data directory holding the embedded store, the checkpoint key and
    /// artifacts. Given before the subcommand (`ledgerline --data DIR append
    /// --data JSON`): `append` has a `--data` of its own.
    #[arg(
        long = "data",
        value_name = "DIR",
        env = "LEDGERLINE_DATA",
        default_value = "./ledgerline-data"
    )]
    data: PathBuf,
    /// Checkpoint origin (and signing key name) used when the log is created.
    #[arg(long, global = true, env = "LEDGERLINE_ORIGIN", default_value = ledger::checkpoint::DEFAULT_ORIGIN)]
    origin: String,
    /// A checkpoint signing key supplied by the operator (a file holding a Go
    /// note private key, `PRIVATE+KEY+name+hex8+base64`), instead of the key
    /// kept in the data directory.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LEDGERLINE_SIGNING_KEY_FILE"
    )]
    signing_key: Option<PathBuf>,
    /// The log's store: `postgres://USER@HOST:PORT/DATABASE` for the
    /// scale-out PostgreSQL store shared by several nodes; absent, the
    /// embedded SQLite log in the data directory.
    #[arg(
        long = "store",
        global = true,
        value_name = "URL",
        env = "LEDGERLINE_STORE"
    )]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the main job end to end on the embedded store: sample catalog,
    /// generation, usage, statements, lineage, proofs and the audit.
    Demo(cli::demo::DemoArgs),
    #[command(flatten)]
    Log(cli::log::LogCommand),
    /// Run one inference kernel on audio files (reproduce a generation step by hand).
    #[command(subcommand)]
    Audio(cli::audio::AudioCommand),
    /// Import the catalog (parties, works, recordings, voice models, policy).
    #[command(subcommand)]
    Catalog(cli::catalog::CatalogCommand),
    /// Import usage reports (CSV).
    #[command(subcommand)]
    Usage(cli::usage::UsageCommand),
    /// Royalty statements for a period, citing a checkpoint.
    Statements(cli::statements::StatementsArgs),
    /// Compare a label's statement with ours (exit 1 on any difference).
    Reconcile(cli::reconcile::ReconcileArgs),
    /// Lineage of an audio file or derivative, with inclusion proofs.
    Lineage(cli::lineage::LineageArgs),
    /// Maintain the projection tables (rebuild, catch-up).
    #[command(subcommand)]
    Projections(cli::projections::ProjectionsCommand),
    /// Serve the HTTP API on the data directory until SIGTERM or ctrl-c.
    Serve(cli::serve::ServeArgs),
    /// Copy an embedded log into PostgreSQL (--from sqlite:DIR --to
    /// postgres://...), checking the root at every checkpoint.
    Migrate(cli::migrate::MigrateArgs),
    /// Manage the HTTP API's keys (create, list, revoke).
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// Run a generation job (remix or cover) from a request document;
    /// every step is recorded in the log. Exit 2 when refused.
    Generate(cli::generate::GenerateArgs),
    /// Rerun a recorded generation step on the CPU twin and compare (exit 1 on mismatch).
    Replay(cli::replay::ReplayArgs),
    /// Voice models: training on the licensed stems, recorded in the log.
    #[command(subcommand)]
    Voice(cli::voice::VoiceCommand),
}

fn main() -> ExitCode {
    cli::quiet_headless_vulkan();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(cli::EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_tracing();
    let context = cli::Context {
        data_dir: args.data,
        origin: args.origin,
        signing_key: args.signing_key,
        store_url: args.store,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let outcome = runtime.block_on(dispatch(args.command, &context));
    cli::finish(outcome)
}

/// Runs one subcommand (the demo runs several through here, as a user would).
pub(crate) async fn dispatch(command: Command, context: &cli::Context) -> anyhow::Result<ExitCode> {
    match command {
        Command::Log(command) => cli::log::run(command, context).await,
        Command::Audio(command) => cli::audio::run(command).await,
        Command::Catalog(command) => cli::catalog::run(command, context).await,
        Command::Usage(command) => cli::usage::run(command, context).await,
        Command::Statements(args) => cli::statements::run(args, context).await,
        Command::Reconcile(args) => cli::reconcile::run(args, context).await,
        Command::Lineage(args) => cli::lineage::run(args, context).await,
        Command::Projections(command) => cli::projections::run(command, context).await,
        Command::Demo(args) => cli::demo::run(args, context).await,
        Command::Serve(args) => cli::serve::run(args, context).await,
        Command::Keys(command) => cli::keys::run(command, context).await,
        Command::Migrate(args) => cli::migrate::run(args, context).await,
        Command::Generate(args) => cli::generate::run(args, context).await,
        Command::Replay(args) => cli::replay::run(args, context).await,
        Command::Voice(command) => cli::voice::run(command, context).await,
    }
}
