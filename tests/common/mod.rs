//! Helpers for end-to-end tests that drive the real `ledgerline` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary cargo built for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ledgerline"))
}

/// A `ledgerline` command on the data directory `data`.
pub fn ledgerline(data: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("--data")
        .arg(data)
        .env_remove("LEDGERLINE_DATA");
    command
}

/// Runs `ledgerline ARGS` and returns its output.
pub fn run(data: &Path, args: &[&str]) -> Output {
    ledgerline(data)
        .args(args)
        .output()
        .expect("ledgerline runs")
}

/// Runs `ledgerline ARGS` with `stdin` fed to it.
pub fn run_with_stdin(data: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = ledgerline(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ledgerline starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `ledgerline ARGS`, asserts success, and returns stdout.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let output = run(data, args);
    assert!(
        output.status.success(),
        "ledgerline {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Parses stdout as one JSON value.
pub fn ok_json(data: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(data, args)).unwrap()
}
