//! `ledgerline serve`: the HTTP API (see `crate::api`) on the data directory.

use super::Context;
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
}

pub async fn run(args: ServeArgs, context: &Context) -> anyhow::Result<ExitCode> {
    crate::api::serve(args.listen, args.generation_queue as usize, context).await?;
    Ok(ExitCode::SUCCESS)
}
