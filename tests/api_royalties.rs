//! End to end over HTTP: catalog and usage imports, and royalty statements
//! from the projections with the same amounts as the CLI, where label keys
//! see their own party's line and nothing of any other party's, whatever
//! they put in the query.

mod common;

use common::server::{Reply, Server};
use common::{ok, ok_json, publish_derivative};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const DERIVATIVE: &str = "6f1c1c1e-1111-4a4a-8b8b-000000000001";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// A catalog document (a label, an artist, a publisher) whose one stem is `stem`.
fn catalog(stem: &str) -> Value {
    json!({
        "parties": [
            {"id": "label", "name": "Blue Label Records", "role": "label"},
            {"id": "singer", "name": "Ana Singer", "role": "artist"},
            {"id": "pub", "name": "Pub, Inc.", "role": "publisher"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song", "publishing_splits": [{"party": "pub", "share": "1"}]}],
        "recordings": [{"isrc": "GBAYE0601498", "title": "Song", "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": "0.5"}, {"party": "singer", "share": "0.5"}],
                        "stems": {"vocals": stem}}],
        "voice_models": [{"id": "vm1", "artist": "singer", "consent": {"granted": true},
                          "training_stems": [stem], "likeness_splits": [{"party": "singer", "share": "1"}]}],
        "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.2", "master_share": "0.5"}
    })
}

/// The published cover's audio: a short real WAV, so it can be uploaded.
fn cover_audio() -> Vec<u8> {
    let samples: Vec<i16> = (0..4_410)
        .map(|i| ((i * 53) % 3_000 - 1_500) as i16)
        .collect();
    common::wav(&samples, false)
}

/// The catalog and a published cover, imported with the CLI.
fn import_catalog(data: &Path, work: &Path) {
    std::fs::create_dir_all(work.join("stems")).unwrap();
    write(work, "stems/vocals.wav", &common::stem_wav());
    let catalog = catalog("stems/vocals.wav");
    let catalog_file = write(work, "catalog.json", catalog.to_string().as_bytes());
    ok(data, &["catalog", "import", &catalog_file]);
    let published = json!({
        "job": DERIVATIVE, "derivative": DERIVATIVE, "recording": "GBAYE0601498", "requested_by": "u1",
        "recipe": {"op": "cover"}, "output": format!("sha256:{}", hex(&Sha256::digest(cover_audio()))),
        "output_pcm": format!("sha256:{}", "0".repeat(64)), "duration_ms": 1000,
        "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 5000}, {"kind": "voice", "ref": "vm1", "weight_bp": 5000}]
    });
    publish_derivative(data, &published);
}

/// The catalog and one month of usage in USD and JPY, imported with the CLI.
fn import_month(data: &Path, work: &Path) {
    import_catalog(data, work);
    let usage = write(
        work,
        "usage.csv",
        format!("line_id,period,derivative,territory,currency,streams,gross,reverses\nL1,2026-03,{DERIVATIVE},US,USD,100,10.00,\nL2,2026-03,{DERIVATIVE},JP,JPY,100,999,\n").as_bytes(),
    );
    ok(data, &["usage", "import", &usage]);
}

/// A server over a data directory that `setup` filled (with the work
/// folder beside it for its files).
struct Served {
    dir: tempfile::TempDir,
    data: PathBuf,
    server: Server,
}

impl Served {
    fn start(setup: fn(&Path, &Path)) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        setup(&data, dir.path());
        let server = Server::start(&data);
        Served { dir, data, server }
    }

    /// The catalog, a published cover and March's usage in USD and JPY.
    fn month() -> Served {
        Served::start(import_month)
    }

    /// A new key's token, from `ledgerline keys create ARGS`.
    fn key(&self, args: &[&str]) -> String {
        let mut all = vec!["keys", "create"];
        all.extend_from_slice(args);
        ok_json(&self.data, &all)["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn admin(&self) -> String {
        self.key(&["--role", "admin"])
    }

    /// A label key bound to `party`.
    fn label(&self, party: &str) -> String {
        self.key(&["--role", "label", "--party", party])
    }

    fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.server.get(path, token)
    }

    /// POSTs `body` as `content_type`, with `token` if any and more headers.
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", content_type)];
        if let Some(value) = &authorization {
            headers.push(("authorization", value.as_str()));
        }
        headers.extend_from_slice(extra);
        self.server.post(path, &headers, body)
    }

    /// The log's size, from the public health endpoint.
    fn events(&self) -> u64 {
        self.get("/healthz", None).json()["events"]
            .as_u64()
            .unwrap()
    }

    /// Stops the server, which must exit cleanly.
    fn stop(self) {
        assert!(self.server.stop().success());
    }
}

/// Asserts a refusal's status and error code.
fn assert_refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (status, code),
        "{}",
        reply.body
    );
}

fn parties(statement: &Value) -> Vec<(String, String)> {
    statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["party"].as_str().unwrap().to_string(),
                l["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn admin_and_auditor_get_the_clis_statement_and_checkpoint() {
    let served = Served::month();
    let auditor = served.key(&["--role", "auditor"]);
    let args = ["statements", "--period", "2026-03", "--currency", "USD"];
    let cli = ok_json(&served.data, &args);
    for reader in [&served.admin(), &auditor] {
        let reply = served.get("/v1/statements/2026-03?currency=USD", Some(reader));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let statement = reply.json()["statements"][0].clone();
        assert_eq!(statement["total"], "10.00");
        assert_eq!(statement["checkpoint"], cli["checkpoint"]);
        assert_eq!(statement["lines"], cli["lines"]);
    }
    served.stop();
}

#[test]
fn a_statement_without_a_currency_covers_every_currency() {
    let served = Served::month();
    let both = served
        .get("/v1/statements/2026-03", Some(&served.admin()))
        .json();
    assert_eq!(both["statements"].as_array().unwrap().len(), 2);
    served.stop();
}

#[test]
fn an_admin_may_ask_for_one_partys_line() {
    let served = Served::month();
    let path = "/v1/statements/2026-03?currency=USD&party=pub";
    let one_party = served.get(path, Some(&served.admin())).json();
    assert_eq!(
        parties(&one_party["statements"][0]),
        [("pub".into(), "1.25".into())]
    );
    served.stop();
}

#[test]
fn a_label_sees_its_own_line_in_each_currency_and_no_gross() {
    let served = Served::month();
    let label = served.label("label");
    for path in [
        "/v1/statements/2026-03",
        "/v1/statements/2026-03?party=label",
    ] {
        let reply = served.get(path, Some(&label));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let statements = reply.json()["statements"].clone();
        assert_eq!(statements.as_array().unwrap().len(), 2);
        for statement in statements.as_array().unwrap() {
            assert!(statement.get("total").is_none(), "{statement}");
            let lines = parties(statement);
            assert_eq!(lines.len(), 1, "{statement}");
            assert_eq!(lines[0].0, "label");
        }
        assert_eq!(parties(&statements[1]), [("label".into(), "0.63".into())]);
    }
    served.stop();
}

#[test]
fn a_publishers_key_sees_the_publishers_line() {
    let served = Served::month();
    let publisher = served.label("pub");
    let view = served
        .get("/v1/statements/2026-03?currency=USD", Some(&publisher))
        .json();
    assert_eq!(
        parties(&view["statements"][0]),
        [("pub".into(), "1.25".into())]
    );
    served.stop();
}

#[test]
fn a_label_asking_for_another_partys_statement_gets_403_and_none_of_its_amounts() {
    let served = Served::month();
    let label = served.label("label");
    for path in [
        "/v1/statements/2026-03?party=pub",
        "/v1/statements/2026-03?currency=USD&party=pub",
        "/v1/statements/2026-03?party=singer&currency=JPY",
        "/v1/statements/2026-03?party=platform&as_of=3",
    ] {
        let reply = served.get(path, Some(&label));
        assert_refused(&reply, 403, "forbidden");
        assert!(!reply.body.contains("1.25"), "{path}: {}", reply.body);
    }
    let publisher = served.label("pub");
    let reply = served.get("/v1/statements/2026-03?party=label", Some(&publisher));
    assert_eq!(reply.status, 403);
    served.stop();
}

#[test]
fn a_labels_csv_statement_has_its_own_rows_and_an_empty_total() {
    let served = Served::month();
    let authorization = format!("Bearer {}", served.label("label"));
    let csv = served.server.get_with(
        "/v1/statements/2026-03",
        &[("authorization", &authorization), ("accept", "text/csv")],
    );
    assert_eq!(csv.status, 200);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let rows: Vec<&str> = csv.body.lines().collect();
    assert!(
        rows[0].starts_with("period,currency,checkpoint_size"),
        "{}",
        csv.body
    );
    assert_eq!(rows.len(), 3, "{}", csv.body);
    for row in &rows[1..] {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!((fields[4], fields[5]), ("", "label"), "{row}");
    }
    served.stop();
}

#[test]
fn a_statement_needs_a_reading_role_and_a_key() {
    let served = Served::month();
    let ingest = served.key(&["--role", "ingest"]);
    let reply = served.get("/v1/statements/2026-03", Some(&ingest));
    assert_refused(&reply, 403, "forbidden");
    let reply = served.get("/v1/statements/2026-03", None);
    assert_refused(&reply, 401, "unauthorized");
    served.stop();
}

#[test]
fn a_bad_period_currency_or_as_of_is_400_naming_it() {
    let served = Served::month();
    let admin = served.admin();
    for (path, mentions) in [
        ("/v1/statements/March", "period"),
        ("/v1/statements/2026-03?currency=XXX", "currency"),
        ("/v1/statements/2026-03?as_of=999999", "999999"),
        ("/v1/statements/2026-03?as_of=-1", "as_of"),
    ] {
        let reply = served.get(path, Some(&admin));
        assert_refused(&reply, 400, "bad_request");
        assert!(reply.body.contains(mentions), "{path}: {}", reply.body);
    }
    served.stop();
}

/// A label statement CSV (party totals) from a statement's lines.
fn label_csv(rows: &[(String, String)], currency: &str) -> String {
    let mut csv = String::from("party,currency,amount\n");
    for (party, amount) in rows {
        csv.push_str(&format!("{party},{currency},{amount}\n"));
    }
    csv
}

impl Served {
    /// Our USD statement for March, as (party, amount) lines.
    fn ours(&self) -> Vec<(String, String)> {
        let path = "/v1/statements/2026-03?currency=USD";
        parties(&self.get(path, Some(&self.admin())).json()["statements"][0])
    }

    /// POSTs a label statement to `/v1/reconciliations{query}`.
    fn reconcile(&self, token: Option<&str>, query: &str, content_type: &str, body: &str) -> Reply {
        let path = format!("/v1/reconciliations{query}");
        self.post(&path, token, content_type, &[], body.as_bytes())
    }
}

const MARCH_USD: &str = "?period=2026-03&currency=USD";

#[test]
fn a_matching_label_statement_reconciles_with_the_clis_report() {
    let served = Served::month();
    let ours = served.ours();
    let matching = label_csv(&ours, "USD");
    let reply = served.reconcile(Some(&served.admin()), MARCH_USD, "text/csv", &matching);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["all_match"], true, "{report}");
    assert_eq!(report["counts"]["matched"], ours.len());
    let file = write(
        served.dir.path(),
        "label-statement.csv",
        matching.as_bytes(),
    );
    let cli = ok_json(
        &served.data,
        &[
            "reconcile",
            "--statement",
            &file,
            "--period",
            "2026-03",
            "--currency",
            "USD",
            "--format",
            "json",
        ],
    );
    assert_eq!(report, cli);
    served.stop();
}

#[test]
fn a_party_one_cent_off_is_reported_as_mismatched() {
    let served = Served::month();
    let mut off = served.ours();
    let label_row = off.iter_mut().find(|(party, _)| party == "label").unwrap();
    label_row.1 = format!("{:.2}", label_row.1.parse::<f64>().unwrap() + 0.01);
    let reply = served.reconcile(
        Some(&served.admin()),
        MARCH_USD,
        "text/csv",
        &label_csv(&off, "USD"),
    );
    let report = reply.json();
    assert_eq!(report["all_match"], false);
    let mismatched: Vec<&Value> = report["parties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "mismatched")
        .collect();
    assert_eq!(mismatched.len(), 1, "{report}");
    assert_eq!(mismatched[0]["party"], "label");
    served.stop();
}

#[test]
fn a_label_reconciles_its_own_rows_and_sees_no_other_party() {
    let served = Served::month();
    let own: Vec<_> = served
        .ours()
        .into_iter()
        .filter(|(p, _)| p == "label")
        .collect();
    let label = served.label("label");
    let reply = served.reconcile(Some(&label), MARCH_USD, "text/csv", &label_csv(&own, "USD"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["all_match"], true, "{report}");
    let named: Vec<&Value> = report["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["party"])
        .collect();
    assert_eq!(named, [&json!("label")], "{report}");
    served.stop();
}

#[test]
fn a_label_sending_another_partys_rows_gets_403() {
    let served = Served::month();
    let matching = label_csv(&served.ours(), "USD");
    let reply = served.reconcile(
        Some(&served.label("label")),
        MARCH_USD,
        "text/csv",
        &matching,
    );
    assert_refused(&reply, 403, "forbidden");
    served.stop();
}

#[test]
fn a_reconciliation_needs_a_reconciling_role_and_a_key() {
    let served = Served::month();
    let matching = label_csv(&served.ours(), "USD");
    let ingest = served.key(&["--role", "ingest"]);
    let reply = served.reconcile(Some(&ingest), "?period=2026-03", "text/csv", &matching);
    assert_refused(&reply, 403, "forbidden");
    let reply = served.reconcile(None, "?period=2026-03", "text/csv", &matching);
    assert_refused(&reply, 401, "unauthorized");
    served.stop();
}

#[test]
fn a_label_statement_not_sent_as_csv_is_415() {
    let served = Served::month();
    let reply = served.reconcile(
        Some(&served.admin()),
        "?period=2026-03",
        "application/json",
        "{}",
    );
    assert_refused(&reply, 415, "unsupported_media_type");
    served.stop();
}

#[test]
fn a_label_statement_with_a_bad_header_or_amount_is_400() {
    let served = Served::month();
    let admin = served.admin();
    for csv in ["who,what\nx,y\n", "party,currency,amount\nlabel,USD,ten\n"] {
        let reply = served.reconcile(Some(&admin), "?period=2026-03", "text/csv", csv);
        assert_refused(&reply, 400, "bad_request");
    }
    served.stop();
}

#[test]
fn a_reconciliation_with_a_bad_or_missing_period_is_400() {
    let served = Served::month();
    let matching = label_csv(&served.ours(), "USD");
    let admin = served.admin();
    for query in ["?period=March", ""] {
        let reply = served.reconcile(Some(&admin), query, "text/csv", &matching);
        assert_refused(&reply, 400, "bad_request");
    }
    served.stop();
}

const USAGE_HEADER: &str = "line_id,period,derivative,territory,currency,streams,gross,reverses\n";

/// Two lines of April usage in USD, 10.00 in all.
fn april() -> String {
    format!("{USAGE_HEADER}A1,2026-04,{DERIVATIVE},US,USD,10,4.00,\nA2,2026-04,{DERIVATIVE},US,USD,10,6.00,\n")
}

impl Served {
    /// The catalog and a published cover, no usage.
    fn catalog() -> Served {
        Served::start(import_catalog)
    }

    /// POSTs a usage report, with an `Idempotency-Key` if `key` is given.
    fn import_usage(&self, token: &str, key: Option<&str>, body: &str) -> Reply {
        let idempotency_key = key.map(|key| [("idempotency-key", key)]);
        let extra = idempotency_key.as_ref().map_or(&[][..], |h| &h[..]);
        self.post("/v1/usage", Some(token), "text/csv", extra, body.as_bytes())
    }
}

/// Sends a usage report that must be refused, and checks nothing was written.
fn assert_usage_refused(token: &str, content_type: &str, body: &str, status: u16, code: &str) {
    let served = Served::catalog();
    let token = match token {
        "ingest" | "auditor" => served.key(&["--role", token]),
        "label" => served.label("label"),
        unknown => unknown.to_string(),
    };
    let before = served.events();
    let reply = served.post(
        "/v1/usage",
        Some(&token),
        content_type,
        &[],
        body.as_bytes(),
    );
    assert_refused(&reply, status, code);
    assert_eq!(served.events(), before, "nothing is written");
    served.stop();
}

#[test]
fn a_usage_report_not_sent_as_csv_is_415_and_writes_nothing() {
    assert_usage_refused(
        "ingest",
        "application/json",
        &april(),
        415,
        "unsupported_media_type",
    );
}

#[test]
fn a_usage_report_with_a_bad_header_is_400_and_writes_nothing() {
    assert_usage_refused(
        "ingest",
        "text/csv",
        "line,period\nx,y\n",
        400,
        "bad_request",
    );
}

#[test]
fn usage_of_an_unknown_derivative_is_422_and_writes_nothing() {
    let unknown =
        format!("{USAGE_HEADER}A3,2026-04,6f1c1c1e-1111-4a4a-8b8b-00000000dead,US,USD,1,1.00,\n");
    assert_usage_refused("ingest", "text/csv", &unknown, 422, "unprocessable");
}

#[test]
fn usage_imports_by_label_or_auditor_keys_are_403_and_write_nothing() {
    assert_usage_refused("label", "text/csv", &april(), 403, "forbidden");
    assert_usage_refused("auditor", "text/csv", &april(), 403, "forbidden");
}

#[test]
fn a_usage_import_with_an_unknown_key_is_401_and_writes_nothing() {
    assert_usage_refused("llk_unknown", "text/csv", &april(), 401, "unauthorized");
}

#[test]
fn an_imported_usage_report_is_in_the_periods_statement() {
    let served = Served::catalog();
    let before = served.events();
    let imported = served.import_usage(&served.key(&["--role", "ingest"]), None, &april());
    assert_eq!(imported.status, 200, "{}", imported.body);
    let imported = imported.json();
    assert_eq!(imported["imported"], 2);
    assert_eq!(imported["seqs"].as_array().unwrap().len(), 2);
    assert_eq!(served.events(), before + 2);
    let statement = served
        .get("/v1/statements/2026-04?currency=USD", Some(&served.admin()))
        .json();
    assert_eq!(statement["statements"][0]["total"], "10.00");
    served.stop();
}

#[test]
fn a_usage_import_retried_with_its_idempotency_key_gets_the_first_response() {
    let served = Served::catalog();
    let ingest = served.key(&["--role", "ingest"]);
    let before = served.events();
    let first = served.import_usage(&ingest, Some("usage-april"), &april());
    assert_eq!(first.status, 200, "{}", first.body);
    let retry = served.import_usage(&ingest, Some("usage-april"), &april());
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (200, first.body.as_str())
    );
    assert_eq!(served.events(), before + 2);
    served.stop();
}

#[test]
fn a_usage_report_imported_again_without_a_key_reports_its_lines_skipped() {
    let served = Served::catalog();
    let ingest = served.key(&["--role", "ingest"]);
    let before = served.events();
    assert_eq!(served.import_usage(&ingest, None, &april()).status, 200);
    let again = served.import_usage(&ingest, None, &april()).json();
    assert_eq!(
        again,
        json!({"imported": 0, "skipped": ["A1", "A2"], "seqs": []})
    );
    assert_eq!(served.events(), before + 2);
    served.stop();
}

#[test]
fn an_idempotency_key_reused_for_another_usage_report_is_409() {
    let served = Served::catalog();
    let ingest = served.key(&["--role", "ingest"]);
    assert_eq!(
        served
            .import_usage(&ingest, Some("usage-april"), &april())
            .status,
        200
    );
    let before = served.events();
    let other = format!("{USAGE_HEADER}A9,2026-04,{DERIVATIVE},US,USD,1,1.00,\n");
    let reused = served.import_usage(&ingest, Some("usage-april"), &other);
    assert_refused(&reused, 409, "id_reused");
    assert_eq!(served.events(), before);
    served.stop();
}

#[test]
fn a_kept_usage_response_outlives_the_server() {
    let served = Served::catalog();
    let ingest = served.key(&["--role", "ingest"]);
    let first = served.import_usage(&ingest, Some("usage-april"), &april());
    assert_eq!(first.status, 200, "{}", first.body);
    let events = served.events();
    let Served { dir, data, server } = served;
    assert!(server.stop().success());
    let served = Served {
        dir,
        server: Server::start(&data),
        data,
    };
    let retry = served.import_usage(&ingest, Some("usage-april"), &april());
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (200, first.body.as_str())
    );
    assert_eq!(served.events(), events);
    served.stop();
}

/// A catalog document whose stem is given by its content hash, as the API takes it.
fn catalog_document() -> String {
    catalog(&format!("sha256:{}", "ab".repeat(32))).to_string()
}

impl Served {
    fn empty() -> Served {
        Served::start(|_, _| {})
    }

    /// POSTs a catalog document, with an `Idempotency-Key` if `key` is given.
    fn import_catalog(&self, token: &str, key: Option<&str>, body: &str) -> Reply {
        let idempotency_key = key.map(|key| [("idempotency-key", key)]);
        let extra = idempotency_key.as_ref().map_or(&[][..], |h| &h[..]);
        self.post(
            "/v1/catalog",
            Some(token),
            "application/json",
            extra,
            body.as_bytes(),
        )
    }
}

/// Sends a catalog import that must be refused with a message naming
/// `mentions`, and checks nothing was written.
fn assert_catalog_refused(
    role: &str,
    content_type: &str,
    body: &str,
    refusal: (u16, &str),
    mentions: &str,
) {
    let served = Served::empty();
    let token = match role {
        "label" => served.label("label"),
        "ingest" | "generator" => served.key(&["--role", role]),
        unknown => unknown.to_string(),
    };
    let reply = served.post(
        "/v1/catalog",
        Some(&token),
        content_type,
        &[],
        body.as_bytes(),
    );
    assert_refused(&reply, refusal.0, refusal.1);
    assert!(reply.body.contains(mentions), "{}", reply.body);
    assert_eq!(served.events(), 0, "nothing is written");
    served.stop();
}

#[test]
fn a_catalog_not_sent_as_json_is_415_naming_the_media_type() {
    let refusal = (415, "unsupported_media_type");
    assert_catalog_refused(
        "ingest",
        "text/plain",
        &catalog_document(),
        refusal,
        "application/json",
    );
}

#[test]
fn a_body_that_is_not_a_catalog_document_is_400() {
    let refusal = (400, "bad_request");
    assert_catalog_refused(
        "ingest",
        "application/json",
        r#"{"parties": 1}"#,
        refusal,
        "catalog",
    );
}

#[test]
fn a_catalog_naming_a_stem_by_file_path_is_422_naming_the_field() {
    let with_path = catalog("stems/vocals.wav").to_string();
    let refusal = (422, "unprocessable");
    assert_catalog_refused(
        "ingest",
        "application/json",
        &with_path,
        refusal,
        "recordings[0].stems.vocals",
    );
}

#[test]
fn catalog_imports_by_label_or_generator_keys_are_403_naming_the_role() {
    let document = catalog_document();
    for role in ["label", "generator"] {
        assert_catalog_refused(
            role,
            "application/json",
            &document,
            (403, "forbidden"),
            role,
        );
    }
}

#[test]
fn a_catalog_import_with_an_unknown_key_is_401() {
    let refusal = (401, "unauthorized");
    assert_catalog_refused(
        "llk_unknown",
        "application/json",
        &catalog_document(),
        refusal,
        "key",
    );
}

#[test]
fn a_catalog_document_is_imported_one_event_per_entry() {
    let served = Served::empty();
    let imported = served.import_catalog(
        &served.key(&["--role", "ingest"]),
        None,
        &catalog_document(),
    );
    assert_eq!(imported.status, 200, "{}", imported.body);
    let imported = imported.json();
    assert_eq!(imported["registered"], 7);
    assert_eq!(imported["seqs"].as_array().unwrap().len(), 7);
    assert_eq!(served.events(), 7);
    served.stop();
}

#[test]
fn a_catalog_import_retried_with_its_idempotency_key_gets_the_first_response() {
    let served = Served::empty();
    let ingest = served.key(&["--role", "ingest"]);
    let document = catalog_document();
    assert_eq!(served.import_catalog(&ingest, None, &document).status, 200);
    let first = served.import_catalog(&ingest, Some("catalog-v1"), &document);
    assert_eq!(first.json()["unchanged"], 7);
    let retry = served.import_catalog(&ingest, Some("catalog-v1"), &document);
    assert_eq!(retry.body, first.body);
    served.stop();
}

#[test]
fn a_catalog_imported_again_appends_nothing() {
    let served = Served::empty();
    let ingest = served.key(&["--role", "ingest"]);
    let document = catalog_document();
    assert_eq!(served.import_catalog(&ingest, None, &document).status, 200);
    let again = served.import_catalog(&ingest, None, &document).json();
    assert_eq!(
        (again["registered"].clone(), again["unchanged"].clone()),
        (json!(0), json!(7))
    );
    assert_eq!(served.events(), 7);
    served.stop();
}

fn lineage_path() -> String {
    format!("/v1/lineage/{DERIVATIVE}")
}

/// The parties of every revenue entry of a lineage answer.
fn revenue_parties(answer: &Value) -> Vec<String> {
    answer["revenue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["parties"].as_array().unwrap().iter())
        .map(|p| p["party"].as_str().unwrap().to_string())
        .collect()
}

impl Served {
    /// Uploads `body` to `POST /v1/lineage` as `content_type`.
    fn upload(&self, token: Option<&str>, content_type: &str, body: &[u8]) -> Reply {
        self.post("/v1/lineage", token, content_type, &[], body)
    }
}

#[test]
fn admin_and_auditor_get_the_clis_lineage_with_every_partys_revenue() {
    let served = Served::month();
    let cli = ok_json(&served.data, &["lineage", DERIVATIVE]);
    assert!(revenue_parties(&cli).contains(&"pub".to_string()));
    for reader in [served.admin(), served.key(&["--role", "auditor"])] {
        let reply = served.get(&lineage_path(), Some(&reader));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json(), cli);
    }
    served.stop();
}

#[test]
fn a_label_the_derivative_paid_gets_its_lineage_with_only_its_own_revenue() {
    let served = Served::month();
    let cli = ok_json(&served.data, &["lineage", DERIVATIVE]);
    let reply = served.get(&lineage_path(), Some(&served.label("label")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["derivative_seq"], cli["derivative_seq"]);
    let own = revenue_parties(&answer);
    assert!(
        !own.is_empty() && own.iter().all(|p| p == "label"),
        "{own:?}"
    );
    served.stop();
}

#[test]
fn a_label_the_derivative_did_not_pay_gets_404_and_nothing_of_the_lineage() {
    let served = Served::month();
    let reply = served.get(&lineage_path(), Some(&served.label("other-label")));
    assert_refused(&reply, 404, "not_found");
    assert!(!reply.body.contains("GBAYE0601498"), "{}", reply.body);
    served.stop();
}

#[test]
fn lineage_needs_a_reading_role_and_a_key() {
    let served = Served::month();
    let ingest = served.key(&["--role", "ingest"]);
    assert_refused(
        &served.get(&lineage_path(), Some(&ingest)),
        403,
        "forbidden",
    );
    assert_refused(&served.get(&lineage_path(), None), 401, "unauthorized");
    served.stop();
}

#[test]
fn an_uploaded_cover_is_matched_by_its_file_hash() {
    let served = Served::month();
    let cli = ok_json(&served.data, &["lineage", DERIVATIVE]);
    let auditor = served.key(&["--role", "auditor"]);
    let reply = served.upload(Some(&auditor), "audio/wav", &cover_audio());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let by_file = reply.json();
    assert_eq!(by_file["derivative_seq"], cli["derivative_seq"]);
    assert_eq!(by_file["matched_by"], "file-hash", "{by_file}");
    served.stop();
}

#[test]
fn a_labels_upload_as_octet_stream_shows_only_its_own_revenue() {
    let served = Served::month();
    let label = served.label("label");
    let reply = served.upload(Some(&label), "application/octet-stream", &cover_audio());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(revenue_parties(&reply.json()).iter().all(|p| p == "label"));
    served.stop();
}

#[test]
fn an_upload_by_a_label_not_paid_a_role_without_lineage_or_no_key_is_refused() {
    let served = Served::month();
    let (other_label, ingest) = (
        served.label("other-label"),
        served.key(&["--role", "ingest"]),
    );
    let audio = cover_audio();
    assert_refused(
        &served.upload(Some(&other_label), "audio/wav", &audio),
        404,
        "not_found",
    );
    assert_refused(
        &served.upload(Some(&ingest), "audio/wav", &audio),
        403,
        "forbidden",
    );
    assert_refused(
        &served.upload(None, "audio/wav", &audio),
        401,
        "unauthorized",
    );
    served.stop();
}

#[test]
fn an_upload_not_sent_as_audio_is_415() {
    let served = Served::month();
    let reply = served.upload(Some(&served.admin()), "text/plain", &cover_audio());
    assert_refused(&reply, 415, "unsupported_media_type");
    served.stop();
}

#[test]
fn an_empty_upload_is_400() {
    let served = Served::month();
    assert_refused(
        &served.upload(Some(&served.admin()), "audio/wav", b""),
        400,
        "bad_request",
    );
    served.stop();
}

#[test]
fn an_upload_of_audio_never_published_is_404() {
    let served = Served::month();
    let reply = served.upload(
        Some(&served.admin()),
        "audio/mpeg",
        b"not any audio we published",
    );
    assert_refused(&reply, 404, "not_found");
    served.stop();
}

#[test]
fn lineage_of_an_unknown_derivative_is_404() {
    let served = Served::month();
    let path = "/v1/lineage/6f1c1c1e-1111-4a4a-8b8b-00000000dead";
    assert_refused(&served.get(path, Some(&served.admin())), 404, "not_found");
    served.stop();
}

#[test]
fn lineage_of_an_id_that_is_not_a_uuid_is_400() {
    let served = Served::month();
    let reply = served.get("/v1/lineage/not-a-uuid", Some(&served.admin()));
    assert_refused(&reply, 400, "bad_request");
    served.stop();
}

#[test]
fn lineage_as_of_beyond_the_log_is_400() {
    let served = Served::month();
    let path = format!("{}?as_of=999999", lineage_path());
    assert_refused(
        &served.get(&path, Some(&served.admin())),
        400,
        "bad_request",
    );
    served.stop();
}

/// A label's lineage answer keeps the provenance with only the label's own
/// share: no gross, no other party's splits, and only generation events
/// cited (catalog and usage leaves carry every party's splits and the gross).
fn assert_only_the_labels_share(answer: &Value) {
    assert_eq!(answer["derivative"]["derivative"], DERIVATIVE);
    for revenue in answer["revenue"].as_array().unwrap() {
        assert!(revenue.get("gross").is_none(), "{revenue}");
        let parties = revenue["parties"].as_array().unwrap();
        assert!(parties.iter().all(|p| p["party"] == "label"), "{revenue}");
    }
    for line in answer["usage"].as_array().unwrap() {
        assert!(line.get("gross").is_none(), "{line}");
    }
    let data = |kind: &str, id: &str, field: &str| answer[kind][id]["data"][field].clone();
    let own_master = json!([{"party": "label", "share": "0.5"}]);
    assert_eq!(
        data("recordings", "GBAYE0601498", "master_splits"),
        own_master
    );
    assert_eq!(
        data("works", "T-034524680-1", "publishing_splits"),
        json!([])
    );
    assert_eq!(data("voice_models", "vm1", "likeness_splits"), json!([]));
    for cited in answer["cited"].as_array().unwrap() {
        let event_type = cited["type"].as_str().unwrap();
        assert!(event_type.starts_with("generation."), "{event_type}");
        let leaf = cited["leaf"].as_str().unwrap();
        assert!(
            !leaf.contains("\"party\"") && !leaf.contains("gross"),
            "{leaf}"
        );
    }
}

#[test]
fn a_labels_lineage_by_id_shows_its_own_share_and_no_other_partys_amounts() {
    let served = Served::month();
    let by_id = served.get(&lineage_path(), Some(&served.label("label")));
    assert_eq!(by_id.status, 200, "{}", by_id.body);
    assert_only_the_labels_share(&by_id.json());
    served.stop();
}

#[test]
fn a_labels_lineage_by_upload_shows_its_own_share_and_no_other_partys_amounts() {
    let served = Served::month();
    let by_file = served.upload(Some(&served.label("label")), "audio/wav", &cover_audio());
    assert_eq!(by_file.status, 200, "{}", by_file.body);
    assert_only_the_labels_share(&by_file.json());
    served.stop();
}

#[test]
fn another_partys_derivative_gets_the_same_404_as_an_unknown_one() {
    let served = Served::month();
    let other_label = served.label("other-label");
    let theirs = served.get(&lineage_path(), Some(&other_label));
    let unknown = served.get(
        "/v1/lineage/6f1c1c1e-1111-4a4a-8b8b-00000000dead",
        Some(&other_label),
    );
    assert_eq!(
        (theirs.status, unknown.status),
        (404, 404),
        "{}",
        theirs.body
    );
    assert_eq!(theirs.body, unknown.body);
    served.stop();
}
