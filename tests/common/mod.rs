//! Helpers for end-to-end tests that drive the real `ledgerline` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary cargo built for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ledgerline"))
}

/// The Python of a virtual environment `scripts/test` makes,
/// `target/<venv>/bin/python` or `$<env_var>`, and whether `import <module>`
/// works there.
pub fn venv_python(env_var: &str, venv: &str, module: &str) -> (PathBuf, bool) {
    let python = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(venv)
                .join("bin/python")
        });
    let imports = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    (python, imports)
}

/// A test whose tools are missing (`why`): fails when `$<require_var>` is
/// `1` (as `scripts/test` sets it), else says it was skipped.
pub fn skip_unless_required(require_var: &str, why: &str) {
    assert!(
        std::env::var(require_var).as_deref() != Ok("1"),
        "{require_var}=1 but the test cannot run: {why}"
    );
    eprintln!("skipped: {why} (scripts/test installs what it needs)");
}

/// A 16-bit mono WAV of `samples`, with an optional extra `LIST` chunk (which
/// changes the file bytes but not the decoded PCM).
pub fn wav(samples: &[i16], extra_chunk: bool) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let list: &[u8] = if extra_chunk {
        b"LIST\x04\x00\x00\x00INFO"
    } else {
        b""
    };
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + list.len() as u32 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&44_100u32.to_le_bytes());
    out.extend_from_slice(&88_200u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(list);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A short real stem (a quarter second of a mono tone), for catalogs:
/// `catalog import` checks every stem is audio.
pub fn stem_wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..11_025)
        .map(|i| ((i as f32 * 0.0627).sin() * 8_000.0) as i16)
        .collect();
    wav(&samples, false)
}

/// Renders `track`'s stems (`seconds` long) into `data`'s artifact store,
/// where generation reads licensed stems by hash; returns a catalog
/// document's `stems` object naming their files by slot.
pub fn stored_stems(
    data: &Path,
    track: &inference::sample_catalog::TrackSpec,
    seconds: f64,
) -> serde_json::Map<String, serde_json::Value> {
    let artifacts = inference::artifacts::ArtifactStore::open(data).unwrap();
    track
        .render(seconds)
        .iter()
        .map(|stem| {
            let stored = artifacts.write_wav(&stem.audio).unwrap();
            let path = stored.path.display().to_string();
            (
                stem.catalog_slot().to_owned(),
                serde_json::Value::from(path),
            )
        })
        .collect()
}

/// A new API key of role `role` for `data`'s log; returns its token.
pub fn api_token(data: &Path, role: &str) -> String {
    ok_json(data, &["keys", "create", "--role", role])["token"]
        .as_str()
        .expect("keys create prints a token")
        .to_owned()
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

/// A `ledgerline serve` process on a free loopback port, and an HTTP client for it.
/// The events the generation engine appends for a derivative: its request
/// and one step, then `published` (a `generation.derivative-published`
/// payload, whose `job`, `recording` and `requested_by` the request repeats).
/// The fold accepts a derivative only after its request and a step.
pub fn generation_job(published: &serde_json::Value) -> (String, Vec<ledger::NewEvent>) {
    use schemas::generation::{generation_stream, GenerationRequested, DERIVATIVE_PUBLISHED};
    let job: uuid::Uuid = serde_json::from_value(published["job"].clone()).unwrap();
    let requested = GenerationRequested::unchanged_remix(
        job,
        published["recording"].as_str().unwrap(),
        published["requested_by"].as_str().unwrap(),
    );
    let mut events: Vec<ledger::NewEvent> = requested
        .opening_events()
        .into_iter()
        .map(|(event_type, data)| ledger::NewEvent::new(event_type, data))
        .collect();
    events.push(ledger::NewEvent::new(
        DERIVATIVE_PUBLISHED,
        published.clone(),
    ));
    (generation_stream(job), events)
}

/// Appends `events` to `stream` of `store`; returns their seqs.
pub async fn append_to(
    store: &dyn ledger::store::EventStore,
    stream: &str,
    events: Vec<ledger::NewEvent>,
) -> Vec<u64> {
    let request =
        ledger::store::AppendRequest::new(stream, ledger::store::ExpectedVersion::Exact(0), events);
    let appended = store.append(request).await.unwrap();
    appended.iter().map(|a| a.seq).collect()
}

/// Appends `events` as a new stream of the embedded log in `data`, through
/// the ledger library as the engine and the importers write:
/// `ledgerline append` refuses their event types and streams. No other
/// process may hold the log meanwhile. Returns the events' seqs.
pub fn append_as_owner(data: &Path, stream: &str, events: Vec<ledger::NewEvent>) -> Vec<u64> {
    use ledger::store::sqlite::{SqliteConfig, SqliteStore};
    let config = SqliteConfig::new(data, ledger::checkpoint::DEFAULT_ORIGIN);
    let store = SqliteStore::open(config).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(append_to(&store, stream, events))
}

/// Publishes a derivative in the embedded log in `data` as the engine does
/// (see [`generation_job`]); returns the publication's seq.
pub fn publish_derivative(data: &Path, published: &serde_json::Value) -> u64 {
    let (stream, events) = generation_job(published);
    append_as_owner(data, &stream, events)[2]
}

pub mod witness;

pub mod server {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Child, ChildStdout, ExitStatus, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Attempts to find a free port and start the server on it.
    const START_ATTEMPTS: usize = 5;
    /// How long the server may take to print its listening line.
    const START_TIMEOUT: Duration = Duration::from_secs(20);

    /// A response, read whole.
    pub struct Reply {
        pub status: u16,
        pub content_type: String,
        pub request_id: Option<String>,
        pub body: String,
    }

    impl Reply {
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
        }

        /// The `error.code` of an error body, asserting the error shape.
        pub fn error_code(&self) -> String {
            let body = self.json();
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "error bodies carry a message: {body}"
            );
            body["error"]["code"].as_str().unwrap().to_string()
        }
    }

    pub struct Server {
        child: Child,
        _stdout: BufReader<ChildStdout>,
        pub base: String,
        agent: ureq::Agent,
    }

    /// A port that was free a moment ago: bind :0, read the port, release it.
    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    impl Server {
        /// Starts `ledgerline --data DATA serve` on a free loopback port,
        /// retrying with another port if the one picked was taken meanwhile.
        pub fn start(data: &Path) -> Server {
            Server::start_with(data, &[])
        }

        /// As [`start`](Self::start), with more global options before
        /// `serve` (`--store URL`, `--signing-key FILE`).
        pub fn start_with(data: &Path, options: &[String]) -> Server {
            Server::start_command(|| {
                let mut command = super::ledgerline(data);
                command.args(options);
                command
            })
        }

        /// As [`start`](Self::start), with environment variables set (the
        /// `serve` options have `LEDGERLINE_*` variables, e.g.
        /// `LEDGERLINE_WITNESS_POLICY`).
        pub fn start_with_env(data: &Path, env: &[(&str, &Path)]) -> Server {
            Server::start_command(|| {
                let mut command = super::ledgerline(data);
                command.envs(env.iter().map(|(k, v)| (*k, *v)));
                command
            })
        }

        /// As [`start`](Self::start), with the process's address space
        /// capped at `bytes` (`ulimit -v`), so that a request that would
        /// take more memory fails at once and kills the server, whatever
        /// memory the machine has.
        pub fn start_with_address_space_max(data: &Path, bytes: u64) -> Server {
            Server::start_command(|| {
                let mut command = std::process::Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", bytes / 1024))
                    .arg(super::binary())
                    .arg("--data")
                    .arg(data)
                    .env_remove("LEDGERLINE_DATA");
                command
            })
        }

        /// Starts `command() serve` on a free loopback port.
        fn start_command(command: impl Fn() -> std::process::Command) -> Server {
            for _ in 0..START_ATTEMPTS {
                let port = free_port();
                let mut child = command()
                    .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("ledgerline serve starts");
                let mut stdout = BufReader::new(child.stdout.take().unwrap());
                let (sender, receiver) = mpsc::channel();
                let reader = std::thread::spawn(move || {
                    let mut line = String::new();
                    let _ = stdout.read_line(&mut line);
                    let _ = sender.send(line);
                    stdout
                });
                let line = receiver.recv_timeout(START_TIMEOUT).unwrap_or_default();
                let Some(base) = line.trim().strip_prefix("listening on ") else {
                    let _ = child.kill();
                    let _ = child.wait();
                    continue;
                };
                let base = base.to_string();
                let stdout = reader.join().unwrap();
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .new_agent();
                return Server {
                    child,
                    _stdout: stdout,
                    base,
                    agent,
                };
            }
            panic!("ledgerline serve did not start in {START_ATTEMPTS} attempts");
        }

        /// The host:port the server listens on.
        pub fn address(&self) -> &str {
            self.base.strip_prefix("http://").unwrap()
        }

        fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
            let mut response = response.expect("the server answers");
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            let content_type = header("content-type").unwrap_or_default();
            let request_id = header("x-request-id");
            Reply {
                status: response.status().as_u16(),
                content_type,
                request_id,
                body: response.body_mut().read_to_string().unwrap(),
            }
        }

        /// GET `path` with an optional bearer token.
        pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
            let authorization = token.map(|token| format!("Bearer {token}"));
            match &authorization {
                Some(value) => self.get_with(path, &[("authorization", value)]),
                None => self.get_with(path, &[]),
            }
        }

        /// GET `path` with these headers.
        pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
            let mut request = self.agent.get(format!("{}{path}", self.base));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            Self::reply(request.call())
        }

        /// POSTs an audio file to `/v1/lineage` with a bearer token.
        pub fn post_lineage(&self, token: &str, wav: &[u8]) -> Reply {
            let authorization = format!("Bearer {token}");
            let headers = [
                ("content-type", "audio/wav"),
                ("authorization", authorization.as_str()),
            ];
            self.post("/v1/lineage", &headers, wav)
        }

        /// POST `body` to `path` with extra headers (content type included).
        pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
            let mut request = self.agent.post(format!("{}{path}", self.base));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            Self::reply(request.send(body))
        }

        /// POST a JSON value with a bearer token.
        pub fn post_json(&self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
            let authorization = format!("Bearer {token}");
            self.post(
                path,
                &[
                    ("authorization", &authorization),
                    ("content-type", "application/json"),
                ],
                body.to_string().as_bytes(),
            )
        }

        /// Sends SIGTERM and waits for the server to exit.
        pub fn stop(mut self) -> ExitStatus {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -TERM works");
            self.child.wait().unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
