//! Lineage of hostile audio: a decompression bomb is answered 413 by a
//! server whose memory is capped, which stays up, and refused as bad input
//! by `ledgerline lineage FILE`; a body over the upload limit is answered
//! 413 before it is sent; a staged upload is readable by the server's user
//! only and is removed when the client goes away.

mod common;
#[path = "../inference/tests/common/flac.rs"]
mod flac;

use common::ok_json;
use common::server::Server;
use flac::ConstantFlac;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The address space of the process under attack: ample for the server,
/// a fraction of the 7.4 GB the bomb decodes to as f32.
const ADDRESS_SPACE_BYTES: u64 = 3 << 30;
/// The upload limit the API documents (128 MiB).
const UPLOAD_BYTES_MAX: u64 = 128 << 20;
/// How long a test waits for the server to show what it waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A label key: the finding's attacker.
fn label_token(data: &Path) -> String {
    ok_json(
        data,
        &["keys", "create", "--role", "label", "--party", "label"],
    )["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// 8 channels at 192 kHz for 20 minutes of constant subframes: 1.84e9
/// samples from 1.9 MB.
fn bomb(declares_total: bool) -> Vec<u8> {
    ConstantFlac {
        sample_rate: 192_000,
        channels: 8,
        block_frames: 4_096,
        blocks: 20 * 60 * 192_000 / 4_096,
        value: 1_000,
        declares_total,
    }
    .encode()
}

fn uploads(data: &Path) -> PathBuf {
    data.join("uploads")
}

fn staged_files(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(uploads(data))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn upload_bomb(declares_total: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let token = label_token(data);
    let server = Server::start_with_address_space_max(data, ADDRESS_SPACE_BYTES);
    let authorization = format!("Bearer {token}");
    let headers = [
        ("content-type", "audio/flac"),
        ("authorization", authorization.as_str()),
    ];
    let reply = server.post("/v1/lineage", &headers, &bomb(declares_total));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (413, "payload_too_large"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("samples"), "{}", reply.body);
    assert_eq!(server.get("/healthz", None).status, 200);
    assert_eq!(staged_files(data), Vec::<PathBuf>::new());
    assert!(server.stop().success());
}

#[test]
fn a_bomb_declaring_its_decoded_size_gets_413_and_the_server_stays_up() {
    upload_bomb(true);
}

#[test]
fn a_bomb_hiding_its_decoded_size_gets_413_and_the_server_stays_up() {
    upload_bomb(false);
}

/// Sends the head of a `POST /v1/lineage` declaring `length` bytes, and
/// `body`.
fn send_head(server: &Server, token: &str, length: u64, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "POST /v1/lineage HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: audio/flac\r\nContent-Length: {length}\r\n\r\n",
        server.address()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    stream
}

#[test]
fn an_upload_declaring_more_than_the_limit_gets_413_before_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let token = label_token(data);
    let server = Server::start(data);
    let mut stream = send_head(&server, &token, UPLOAD_BYTES_MAX + 1, b"fLaC");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));
    assert!(server.stop().success());
}

/// Waits until `done` holds, or fails naming `what`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_staged_upload_is_private_and_removed_when_the_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let token = label_token(data);
    let server = Server::start(data);
    let stream = send_head(&server, &token, 1 << 20, &[0x42; 4_096]);
    wait_for("the upload is staged under the data directory", || {
        staged_files(data).len() == 1
    });
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&uploads(data)), 0o700);
    assert_eq!(mode(&staged_files(data)[0]), 0o600);
    drop(stream);
    wait_for("the abandoned upload is removed", || {
        staged_files(data).is_empty()
    });
    assert!(server.stop().success());
}

#[test]
fn the_cli_refuses_a_bomb_file_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    let file = dir.path().join("bomb.flac");
    std::fs::write(&file, bomb(true)).unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {} && exec \"$0\" \"$@\"",
            ADDRESS_SPACE_BYTES / 1024
        ))
        .arg(common::binary())
        .arg("--data")
        .arg(data)
        .arg("lineage")
        .arg(&file)
        .env_remove("LEDGERLINE_DATA")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("samples"), "{stderr}");
}
