//! `ledgerline replay --seq N`: reruns the generation step recorded at seq N
//! on the CPU twin from its recorded inputs and parameters, and compares the
//! result with the recorded output. Prints
//! `{"seq","op","compared":"samples","snr_db","tolerance_db","matches"}` for
//! an audio output, `{"seq","op","compared":"bytes","recorded","rerun","matches"}`
//! for a file (a transcription's note list, by hash); exits 1 when the
//! rerun does not match.

use super::generate::pipeline_error;
use super::Context;
use clap::Args;
use inference::artifacts::ArtifactStore;
use inference::pipeline::replay;
use std::process::ExitCode;

#[derive(Args)]
pub struct ReplayArgs {
    /// Seq of a `generation.step` event.
    #[arg(long)]
    seq: u64,
}

pub async fn run(args: ReplayArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let artifacts = ArtifactStore::open(&context.data_dir)?;
    let store = context.open_store_read_only().await?;
    let report = replay(store.as_ref(), &artifacts, args.seq)
        .await
        .map_err(pipeline_error)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(if report.matches {
        ExitCode::SUCCESS
    } else {
        super::EXIT_FAILURE
    })
}
