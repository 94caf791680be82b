//! Slow and idle clients against the real `ledgerline serve`: a client that
//! sends half a request head, or stops sending its body, is cut off within
//! the server's timeouts; idle sockets beyond the connection limit (more
//! than the process has file descriptors for) leave `/healthz` and
//! authenticated reads answering.

mod common;

use common::ok_json;
use common::server::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's `HEADER_READ_TIMEOUT` and `BODY_READ_TIMEOUT`.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Leeway for a loaded test machine.
const MARGIN: Duration = Duration::from_secs(5);

fn admin_token(data: &Path) -> String {
    let created = ok_json(data, &["keys", "create", "--role", "admin"]);
    created["token"].as_str().unwrap().to_string()
}

/// Reads until the server closes the connection (or the read times out),
/// and returns what came and how long that took.
fn read_until_closed(stream: &mut TcpStream, started: Instant) -> (String, Duration) {
    stream
        .set_read_timeout(Some(READ_TIMEOUT + MARGIN * 2))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_client_that_sends_half_a_request_head_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut stream = TcpStream::connect(server.address()).unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ledgerline\r\n")
        .unwrap();

    let (received, elapsed) = read_until_closed(&mut stream, started);
    assert!(
        elapsed < READ_TIMEOUT + MARGIN,
        "the connection was still open after {elapsed:?}"
    );
    assert!(
        received.is_empty(),
        "no answer to half a request: {received}"
    );
}

#[test]
fn a_request_body_that_stops_arriving_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    let server = Server::start(dir.path());
    let mut stream = TcpStream::connect(server.address()).unwrap();
    let started = Instant::now();
    let head = format!(
        "POST /v1/streams/slow/events HTTP/1.1\r\nHost: ledgerline\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n[{{\"type\""
    );
    stream.write_all(head.as_bytes()).unwrap();

    let (received, elapsed) = read_until_closed(&mut stream, started);
    assert!(
        elapsed < READ_TIMEOUT + MARGIN,
        "the connection was still open after {elapsed:?}"
    );
    assert!(
        received.starts_with("HTTP/1.1 400"),
        "a body that stopped is refused: {received}"
    );
    assert_eq!(
        server.get("/healthz", None).json()["events"],
        0,
        "nothing was appended"
    );
}

/// File descriptors the server process gets in the descriptor test: room for
/// its store and a few connections, far fewer than the idle sockets.
const SERVER_FILES_MAX: usize = 64;
/// The server's connection limit in that test, below its descriptor limit.
const CONNECTIONS_MAX: usize = 16;
/// Idle sockets opened against it: more than it has descriptors.
const IDLE_SOCKETS: usize = 100;

/// `ledgerline serve` with at most `SERVER_FILES_MAX` open files and
/// `--connections-max CONNECTIONS_MAX`; returns it and its address.
fn start_with_few_files(data: &Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {SERVER_FILES_MAX} && exec \"$0\" \"$@\""
        ))
        .arg(common::binary())
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--connections-max", &CONNECTIONS_MAX.to_string()])
        .env_remove("LEDGERLINE_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().strip_prefix("listening on http://").unwrap();
    (child, base.to_string())
}

#[test]
fn idle_sockets_beyond_the_limit_leave_health_and_reads_answering() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    let (mut child, address) = start_with_few_files(dir.path());
    let idle: Vec<TcpStream> = (0..IDLE_SOCKETS)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();

    // Well within the header timeout: room is made by closing idle
    // connections, not by waiting for them to time out.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(READ_TIMEOUT / 2))
        .build()
        .new_agent();
    let health = agent.get(format!("http://{address}/healthz")).call();
    let checkpoint = agent
        .get(format!("http://{address}/v1/checkpoint"))
        .header("authorization", format!("Bearer {token}"))
        .call();
    let _ = child.kill();
    let _ = child.wait();
    drop(idle);
    assert_eq!(health.expect("/healthz answers").status(), 200);
    assert_eq!(
        checkpoint.expect("an authenticated read answers").status(),
        200
    );
}
