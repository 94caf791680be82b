//! `ledgerline serve`: the HTTP API (see `crate::api`) on the data directory.

use super::Context;
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "LEDGERLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

pub async fn run(args: ServeArgs, context: &Context) -> anyhow::Result<ExitCode> {
    crate::api::serve(args.listen, context).await?;
    Ok(ExitCode::SUCCESS)
}
