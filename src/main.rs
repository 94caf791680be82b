//! The `ledgerline` binary: parses the command line and hands the
//! subcommand to the `ledgerline` library (`src/lib.rs`).

use clap::Parser;
use ledgerline::{cli, dispatch, Command};
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
    /// The certificate chain (PEM, signing certificate first) that signs
    /// Content Credentials, instead of the data directory's own; with
    /// --c2pa-key.
    #[arg(
        long,
        global = true,
        value_name = "CHAIN.pem",
        env = "LEDGERLINE_C2PA_CERT"
    )]
    c2pa_cert: Option<PathBuf>,
    /// The Ed25519 private key (PKCS#8 PEM) of --c2pa-cert's first certificate.
    #[arg(
        long,
        global = true,
        value_name = "KEY.pem",
        env = "LEDGERLINE_C2PA_KEY"
    )]
    c2pa_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
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
    let context = ledgerline::context::Context {
        data_dir: args.data,
        origin: args.origin,
        signing_key: args.signing_key,
        store_url: args.store,
        c2pa_cert: args.c2pa_cert,
        c2pa_key: args.c2pa_key,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let outcome = runtime.block_on(dispatch(args.command, &context));
    cli::finish(outcome)
}
