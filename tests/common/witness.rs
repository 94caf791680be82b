//! A `ledgerline witness serve` process and witness policies naming such
//! processes, for the tests of witnessing and of what shows cosignatures.

use super::{binary, ok};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `ledgerline witness serve` process for the logs of `log_keys`.
pub struct WitnessProcess {
    child: Child,
    /// Its tlog-witness submission prefix, `http://127.0.0.1:PORT`.
    pub url: String,
    data: PathBuf,
    log_keys: Vec<String>,
}

impl WitnessProcess {
    pub fn start(data: &Path, name: &str, log_keys: &[String]) -> WitnessProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(data, name, log_keys, port)
    }

    pub fn start_on(data: &Path, name: &str, log_keys: &[String], port: u16) -> WitnessProcess {
        let mut command = Command::new(binary());
        command.args(["witness", "serve", "--data"]).arg(data);
        command.args(["--name", name, "--listen", &format!("127.0.0.1:{port}")]);
        for key in log_keys {
            command.args(["--log", key]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the witness starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the witness did not start: {line:?}"))
            .to_owned();
        WitnessProcess {
            child,
            url,
            data: data.to_owned(),
            log_keys: log_keys.to_vec(),
        }
    }

    /// SIGKILLs the witness and starts it again on the same port and data.
    pub fn kill_and_restart(mut self, name: &str) -> WitnessProcess {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let port: u16 = self.url.rsplit_once(':').unwrap().1.parse().unwrap();
        Self::start_on(&self.data.clone(), name, &self.log_keys.clone(), port)
    }

    pub fn key(&self) -> String {
        witness_key(&self.data)
    }

    /// POSTs an add-checkpoint body; returns status, content type, body.
    pub fn add(&self, body: &str) -> (u16, String, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let mut response = agent
            .post(format!("{}/add-checkpoint", self.url))
            .send(body)
            .expect("the witness answers");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), content_type, body)
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The witness's `cosignature/v1` verifier key (`witness key`).
pub fn witness_key(data: &Path) -> String {
    let output = Command::new(binary())
        .args(["witness", "key", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Writes a witness policy naming `witnesses` with `quorum`; returns its path.
pub fn write_policy(dir: &Path, witnesses: &[(&str, &WitnessProcess)], quorum: usize) -> PathBuf {
    let mut text = String::from("# witnesses of the test log\n");
    for (name, witness) in witnesses {
        text.push_str(&format!(
            "witness {name} {} {}\n",
            witness.key(),
            witness.url
        ));
    }
    text.push_str(&format!("quorum {quorum}\n"));
    let path = dir.join("witnesses.policy");
    std::fs::write(&path, text).unwrap();
    path
}

/// Two witnesses, `w1.example` and `w2.example`, of the log whose key is
/// `log_key`, with their data under `dir`, and a policy naming both (as
/// `w1` and `w2`) with quorum 2.
pub fn two_witnesses(dir: &Path, log_key: &str) -> (WitnessProcess, WitnessProcess, PathBuf) {
    let keys = [log_key.to_owned()];
    let w1 = WitnessProcess::start(&dir.join("w1"), "w1.example", &keys);
    let w2 = WitnessProcess::start(&dir.join("w2"), "w2.example", &keys);
    let policy = write_policy(dir, &[("w1", &w1), ("w2", &w2)], 2);
    (w1, w2, policy)
}

/// Appends event `{"n": n}` to the stream `witnessed` of the log in `data`.
pub fn append(data: &Path, n: u64) {
    ok(
        data,
        &[
            "append",
            "--stream",
            "witnessed",
            "--type",
            "test.appended",
            "--data",
            &format!("{{\"n\":{n}}}"),
        ],
    );
}

/// Polls `check` until it returns Some, for at most 30 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
