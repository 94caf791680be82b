//! `ledgerline serve`: the HTTP API (see `crate::api`) on the data directory.

use super::Context;
use crate::api::connections::CONNECTIONS_MAX_DEFAULT;
use crate::api::generations::{QUEUE_JOBS_DEFAULT, QUEUE_JOBS_MAX};
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "LEDGERLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Generation jobs that may wait for the worker; more are refused with 429.
    #[arg(long, env = "LEDGERLINE_GENERATION_QUEUE", default_value_t = QUEUE_JOBS_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=QUEUE_JOBS_MAX as u64))]
    generation_queue: u64,
    /// Open connections at most; beyond it the longest idle one is closed,
    /// or new ones wait. Keep it well below the process's file descriptor
    /// limit (`ulimit -n`), which the store needs too.
    #[arg(long, env = "LEDGERLINE_CONNECTIONS_MAX", default_value_t = CONNECTIONS_MAX_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    connections_max: u64,
    /// A witness policy (see docs/witnessing.md): each new checkpoint is
    /// submitted to its witnesses in the background, their cosignatures are
    /// kept and served, and `/tlog/checkpoint` serves the latest checkpoint
    /// the quorum cosigned.
    #[arg(long, value_name = "FILE", env = "LEDGERLINE_WITNESS_POLICY")]
    witness_policy: Option<std::path::PathBuf>,
}

pub async fn run(args: ServeArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let witness_policy = args
        .witness_policy
        .as_deref()
        .map(super::witness::load_policy)
        .transpose()?;
    crate::api::serve(
        args.listen,
        args.generation_queue as usize,
        args.connections_max as usize,
        witness_policy,
        context,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
