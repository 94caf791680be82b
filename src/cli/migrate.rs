//! `ledgerline migrate --from sqlite:PATH --to postgres://...`: moves a log
//! from the embedded store to the scale-out store, leaf for leaf, checking
//! the Merkle root at every signed checkpoint on the way, then audits the
//! copy.

use super::{bad_input, Context};
use clap::Args;
use ledger::store::postgres::{self, PostgresConfig, PostgresStore};
use ledger::store::sequencer::load_signer;
use ledger::store::sqlite::{self, SqliteConfig, SqliteStore};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct MigrateArgs {
    /// The source log: `sqlite:DIR`, a data directory holding ledger.db and
    /// the checkpoint key (or give the key with --signing-key).
    #[arg(long)]
    from: String,
    /// The target: `postgres://USER@HOST:PORT/DATABASE`, empty or holding
    /// the start of the same log (an interrupted copy resumes).
    #[arg(long)]
    to: String,
}

pub async fn run(args: MigrateArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let source_dir = match args.from.strip_prefix("sqlite:") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            return Err(bad_input(format!(
                "--from {:?}: give sqlite:DIR, the data directory of an embedded log",
                args.from
            )))
        }
    };
    if !postgres::is_postgres_url(&args.to) {
        return Err(bad_input(format!(
            "--to {:?}: give postgres://USER@HOST:PORT/DATABASE",
            args.to
        )));
    }
    // The copied checkpoints keep their signatures, so the target signs with
    // the source's key from now on.
    let signing_key = match &context.signing_key {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    bad_input(format!("cannot read --signing-key {}: {e}", path.display()))
                })?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let key_file = source_dir.join(sqlite::KEY_FILE);
    if signing_key.is_none() && !key_file.exists() {
        return Err(bad_input(format!(
            "the source's checkpoint key {} is missing; give it with --signing-key FILE",
            key_file.display()
        )));
    }
    let signer = load_signer(signing_key.as_deref(), &key_file, &context.origin)?;
    let mut source_config = SqliteConfig::new(&source_dir, &context.origin);
    source_config.signing_key = Some(signer.private_key());
    let source =
        tokio::task::spawn_blocking(move || SqliteStore::open_read_only(source_config)).await??;
    let target = PostgresStore::open(PostgresConfig::new(&args.to, signer.clone())).await?;

    let started = Instant::now();
    let mut progress = super::progress_every_two_seconds(|done, total| {
        eprintln!("migrate: {done}/{total} events copied")
    });
    let report = target.copy_log(&source, &mut progress).await?;
    let audit = ledger::verify::audit(&target, &signer.verifier(), &mut |_, _| {})
        .await
        .map_err(|failure| anyhow::anyhow!("the copy does not verify: {failure}"))?;
    anyhow::ensure!(
        audit.root == report.root,
        "the copy's root {} differs from the source's {}",
        hex::encode(audit.root),
        hex::encode(report.root)
    );
    println!(
        "ok copied {} events ({} were there already), {} checkpoints, root {}",
        report.copied,
        report.skipped,
        report.checkpoints,
        hex::encode(report.root)
    );
    tracing::info!("migrated in {:.3} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
