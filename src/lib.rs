//! The `ledgerline` library behind the binary: thin CLI ([`cli`]), HTTP
//! ([`api`]) and web console ([`console`]) glue over the `ledger`, `inference` and `projections`
//! libraries. `main.rs` only parses the command line and calls [`dispatch`];
//! tests drive the API's router in-process through [`api::router`].

pub mod api;
pub mod cli;
pub mod console;
pub mod context;
pub mod lineage_credentials;
pub mod witness;
pub mod witnessing;

use clap::Subcommand;
use context::Context;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
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
    /// Artists' consent to voice models: withdrawal.
    #[command(subcommand)]
    Consent(cli::consent::ConsentCommand),
    /// Recordings' licence terms, as of any seq.
    #[command(subcommand)]
    Licence(cli::licence::LicenceCommand),
    /// Published derivatives to take down (consent withdrawn, recording
    /// withdrawn or its licence ended), with inclusion proofs.
    Takedowns(cli::takedowns::TakedownsArgs),
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
    /// Mirror a log from its tlog-tiles API into MDIR, verifying every tile,
    /// entry and checkpoint (exit 1 on any inconsistency, with both
    /// checkpoints); print the new events that concern --party.
    Monitor(cli::monitor::MonitorArgs),
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
    /// Run a C2SP tlog-witness that cosigns a log's consistent checkpoints.
    #[command(subcommand)]
    Witness(cli::witness::WitnessCommand),
    /// Content Credentials (C2PA): the signing identity, and reading and
    /// verifying a file's manifest (verify: exit 1 on any failed check).
    #[command(subcommand)]
    Credentials(cli::credentials::CredentialsCommand),
}

/// Runs one subcommand (the demo runs several through here, as a user would).
pub async fn dispatch(command: Command, context: &Context) -> anyhow::Result<ExitCode> {
    match command {
        Command::Log(command) => cli::log::run(command, context).await,
        Command::Audio(command) => cli::audio::run(command).await,
        Command::Catalog(command) => cli::catalog::run(command, context).await,
        Command::Consent(command) => cli::consent::run(command, context).await,
        Command::Licence(command) => cli::licence::run(command, context).await,
        Command::Takedowns(args) => cli::takedowns::run(args, context).await,
        Command::Usage(command) => cli::usage::run(command, context).await,
        Command::Statements(args) => cli::statements::run(args, context).await,
        Command::Reconcile(args) => cli::reconcile::run(args, context).await,
        Command::Lineage(args) => cli::lineage::run(args, context).await,
        Command::Projections(command) => cli::projections::run(command, context).await,
        Command::Demo(args) => cli::demo::run(args, context).await,
        Command::Serve(args) => cli::serve::run(args, context).await,
        Command::Keys(command) => cli::keys::run(command, context).await,
        Command::Migrate(args) => cli::migrate::run(args, context).await,
        Command::Monitor(args) => cli::monitor::run(args, context).await,
        Command::Generate(args) => cli::generate::run(args, context).await,
        Command::Replay(args) => cli::replay::run(args, context).await,
        Command::Voice(command) => cli::voice::run(command, context).await,
        Command::Witness(command) => cli::witness::run(command, context).await,
        Command::Credentials(command) => cli::credentials::run(command, context).await,
    }
}
