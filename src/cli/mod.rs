//! Command-line front end: each submodule is one group of subcommands that
//! parses its arguments, calls a library and prints the result.

pub mod audio;
pub mod catalog;
pub mod consent;
pub mod credentials;
pub mod demo;
pub mod generate;
pub mod keys;
pub mod licence;
pub mod lineage;
pub mod log;
pub mod migrate;
pub mod monitor;
pub mod projections;
pub mod reconcile;
pub mod replay;
pub mod serve;
pub mod statements;
pub mod takedowns;
pub mod transcribe;
pub mod usage;
pub mod voice;
pub mod witness;

pub use crate::context::{bad_input, BadInput, Context, NODE_DATABASE_FILE};
use ::projections::lineage::LineageError;
use ::projections::reconcile::ReconcileError;
use ::projections::statement::StatementError;
use ledger::StoreError;
use std::process::ExitCode;

/// Exit status for a failed check or an operational failure.
pub const EXIT_FAILURE: ExitCode = ExitCode::FAILURE;
/// Exit status for bad usage or bad input (nothing was written).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Prints a failed command's error as one sentence on stderr and picks the exit status.
pub fn finish(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(error) => {
            let hint = error
                .chain()
                .find_map(|c| c.downcast_ref().and_then(store_hint));
            eprintln!("ledgerline: {error:#}{}", hint.unwrap_or_default());
            let client_error = error.chain().any(|cause| {
                cause.is::<BadInput>()
                    || cause
                        .downcast_ref::<StoreError>()
                        .is_some_and(StoreError::is_client_error)
                    || cause
                        .downcast_ref::<StatementError>()
                        .is_some_and(StatementError::is_client_error)
                    || cause
                        .downcast_ref::<LineageError>()
                        .is_some_and(LineageError::is_client_error)
                    || cause
                        .downcast_ref::<ReconcileError>()
                        .is_some_and(ReconcileError::is_client_error)
            });
            if client_error {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// What the user can do about a store error, in this CLI's flags and commands.
fn store_hint(error: &StoreError) -> Option<String> {
    Some(match error {
        StoreError::NoLog(_) => "; append an event or run `ledgerline demo` first".into(),
        StoreError::OriginMismatch { stored, .. } => {
            format!("; pass --origin {stored:?}, or use another --data or --store")
        }
        StoreError::ForeignKey { .. } => "; give the log's key with --signing-key FILE".into(),
        StoreError::SchemaBehind { .. } => {
            "; open it once with a writing node (`ledgerline serve`, or any append)".into()
        }
        _ => return None,
    })
}

/// Keeps a headless machine's terminal free of window-system errors.
///
/// Mesa's `VK_LAYER_MESA_device_select` Vulkan layer, loaded implicitly
/// with Mesa's drivers, connects to the Wayland and X displays while it
/// enumerates GPUs, to prefer the one driving the screen. With no display,
/// libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set` on
/// stderr, which reads as a failure though nothing failed. Where no display
/// is set there is no screen to prefer, so the layer is switched off with
/// the `NODEVICE_SELECT` variable its manifest declares, unless the user
/// chose a device with `MESA_VK_DEVICE_SELECT` or set the switch already.
///
/// Call it first in `main`, before any thread starts: it sets an
/// environment variable of this process.
pub fn quiet_headless_vulkan() {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let headless = !set("DISPLAY") && !set("WAYLAND_DISPLAY");
    if headless && !set("MESA_VK_DEVICE_SELECT") && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// Logs go to stderr so that stdout stays machine-readable; `RUST_LOG` tunes them.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A progress callback for long commands: passes `(done, total)` to
/// `report` at most once every two seconds, so a long run says it is alive
/// without flooding stderr.
pub(crate) fn progress_every_two_seconds(
    mut report: impl FnMut(u64, u64) + Send,
) -> impl FnMut(u64, u64) + Send {
    let mut last_report = std::time::Instant::now();
    move |done, total| {
        if last_report.elapsed() >= std::time::Duration::from_secs(2) {
            last_report = std::time::Instant::now();
            report(done, total);
        }
    }
}
