//! The data directory is its owner's alone: created with mode 0700, and the
//! databases in it (the log, the API's records, SQLite's WAL and shared
//! memory files beside them) with mode 0600, whatever the umask, by the CLI
//! and by `ledgerline serve`; databases left readable by others are made
//! owner-only when next opened.

mod common;

use common::server::Server;
use common::{ok, ok_json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn append(data: &Path) {
    ok(
        data,
        &[
            "append",
            "--stream",
            "notes-1",
            "--type",
            "note.added",
            "--data",
            "{}",
        ],
    );
}

fn assert_owner_only(data: &Path, files: &[&str]) {
    assert_eq!(mode(data), 0o700, "{}", data.display());
    for file in files {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

#[test]
fn cli_commands_create_an_owner_only_data_directory_and_databases() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    append(&data);
    ok_json(&data, &["keys", "create", "--role", "admin"]);
    assert_owner_only(&data, &["ledger.db", "api.db"]);
}

#[test]
fn serve_keeps_its_databases_and_their_wal_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    // An append through the API leaves the log's WAL in place while the
    // server runs.
    let token = ok_json(&data, &["keys", "create", "--role", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = server.post_json(
        "/v1/streams/notes-1/events",
        &token,
        &serde_json::json!([{"type": "note.added", "data": {}}]),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_owner_only(
        &data,
        &["ledger.db", "ledger.db-wal", "ledger.db-shm", "api.db"],
    );
    assert!(server.stop().success());
    assert_owner_only(&data, &["ledger.db", "api.db"]);
}

#[test]
fn databases_readable_by_others_are_made_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    append(&data);
    ok_json(&data, &["keys", "create", "--role", "admin"]);
    for file in ["ledger.db", "api.db"] {
        std::fs::set_permissions(data.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    append(&data);
    ok_json(&data, &["keys", "create", "--role", "admin"]);
    assert_owner_only(&data, &["ledger.db", "api.db"]);
}
