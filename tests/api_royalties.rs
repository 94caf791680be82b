//! End to end over HTTP: catalog and usage imports, and royalty statements
//! from the projections with the same amounts as the CLI, where label keys
//! see their own party's line and nothing of any other party's, whatever
//! they put in the query.

mod common;

use common::server::Server;
use common::{ok, ok_json, publish_derivative};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

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

fn token(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["keys", "create"];
    all.extend_from_slice(args);
    ok_json(data, &all)["token"].as_str().unwrap().to_string()
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
fn statements_are_served_and_labels_see_only_their_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    import_month(data, dir.path());
    let admin = token(data, &["--role", "admin"]);
    let auditor = token(data, &["--role", "auditor"]);
    let ingest = token(data, &["--role", "ingest"]);
    let label = token(data, &["--role", "label", "--party", "label"]);
    let publisher = token(data, &["--role", "label", "--party", "pub"]);
    let server = Server::start(data);

    // Admin and auditor: every party, the gross, the CLI's amounts and checkpoint.
    let cli = ok_json(
        data,
        &["statements", "--period", "2026-03", "--currency", "USD"],
    );
    for reader in [&admin, &auditor] {
        let reply = server.get("/v1/statements/2026-03?currency=USD", Some(reader));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let statement = reply.json()["statements"][0].clone();
        assert_eq!(statement["total"], "10.00");
        assert_eq!(statement["checkpoint"], cli["checkpoint"]);
        assert_eq!(statement["lines"], cli["lines"]);
    }
    let both = server.get("/v1/statements/2026-03", Some(&admin)).json();
    assert_eq!(both["statements"].as_array().unwrap().len(), 2);
    let one_party = server
        .get(
            "/v1/statements/2026-03?currency=USD&party=pub",
            Some(&admin),
        )
        .json();
    assert_eq!(
        parties(&one_party["statements"][0]),
        [("pub".into(), "1.25".into())]
    );

    // A label: its own line in each currency, no gross, by default or by name.
    for path in [
        "/v1/statements/2026-03",
        "/v1/statements/2026-03?party=label",
    ] {
        let reply = server.get(path, Some(&label));
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
    let publisher_view = server
        .get("/v1/statements/2026-03?currency=USD", Some(&publisher))
        .json();
    assert_eq!(
        parties(&publisher_view["statements"][0]),
        [("pub".into(), "1.25".into())]
    );

    // Another party's statement, by any query: 403, and nothing of it leaks.
    for path in [
        "/v1/statements/2026-03?party=pub",
        "/v1/statements/2026-03?currency=USD&party=pub",
        "/v1/statements/2026-03?party=singer&currency=JPY",
        "/v1/statements/2026-03?party=platform&as_of=3",
    ] {
        let reply = server.get(path, Some(&label));
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (403, "forbidden"),
            "{path}"
        );
        assert!(!reply.body.contains("1.25"), "{}", reply.body);
    }
    let reply = server.get("/v1/statements/2026-03?party=label", Some(&publisher));
    assert_eq!(reply.status, 403);

    // CSV for a label: its rows only, the total column empty.
    let authorization = format!("Bearer {label}");
    let csv = server.get_with(
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

    // Roles without statements, no key, bad input.
    let reply = server.get("/v1/statements/2026-03", Some(&ingest));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (403, "forbidden")
    );
    let reply = server.get("/v1/statements/2026-03", None);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "unauthorized")
    );
    for (path, mentions) in [
        ("/v1/statements/March", "period"),
        ("/v1/statements/2026-03?currency=XXX", "currency"),
        ("/v1/statements/2026-03?as_of=999999", "999999"),
        ("/v1/statements/2026-03?as_of=-1", "as_of"),
    ] {
        let reply = server.get(path, Some(&admin));
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (400, "bad_request"),
            "{path}: {}",
            reply.body
        );
        assert!(reply.body.contains(mentions), "{path}: {}", reply.body);
    }
    assert!(server.stop().success());
}

/// A label statement CSV (party totals) from a statement's lines.
fn label_csv(rows: &[(String, String)], currency: &str) -> String {
    let mut csv = String::from("party,currency,amount\n");
    for (party, amount) in rows {
        csv.push_str(&format!("{party},{currency},{amount}\n"));
    }
    csv
}

#[test]
fn label_statements_are_reconciled_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    import_month(data, dir.path());
    let admin = token(data, &["--role", "admin"]);
    let ingest = token(data, &["--role", "ingest"]);
    let label = token(data, &["--role", "label", "--party", "label"]);
    let server = Server::start(data);
    let post = |token: Option<&str>, query: &str, content_type: &str, body: &str| {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", content_type)];
        if let Some(value) = &authorization {
            headers.push(("authorization", value.as_str()));
        }
        server.post(
            &format!("/v1/reconciliations{query}"),
            &headers,
            body.as_bytes(),
        )
    };
    let ours = parties(
        &server
            .get("/v1/statements/2026-03?currency=USD", Some(&admin))
            .json()["statements"][0],
    );
    let matching = label_csv(&ours, "USD");

    // Every party matches, and the report is the CLI's, byte for byte as JSON.
    let reply = post(
        Some(&admin),
        "?period=2026-03&currency=USD",
        "text/csv",
        &matching,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["all_match"], true, "{report}");
    assert_eq!(report["counts"]["matched"], ours.len());
    let file = write(dir.path(), "label-statement.csv", matching.as_bytes());
    let cli = ok_json(
        data,
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

    // One cent off for one party: a 200 report naming that party as mismatched.
    let mut off = ours.clone();
    let label_row = off.iter_mut().find(|(party, _)| party == "label").unwrap();
    label_row.1 = format!("{:.2}", label_row.1.parse::<f64>().unwrap() + 0.01);
    let report = post(
        Some(&admin),
        "?period=2026-03&currency=USD",
        "text/csv",
        &label_csv(&off, "USD"),
    )
    .json();
    assert_eq!(report["all_match"], false);
    let mismatched: Vec<&Value> = report["parties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "mismatched")
        .collect();
    assert_eq!(mismatched.len(), 1, "{report}");
    assert_eq!(mismatched[0]["party"], "label");

    // A label reconciles its own rows and sees no other party in the report.
    let own: Vec<(String, String)> = ours.iter().filter(|(p, _)| p == "label").cloned().collect();
    let reply = post(
        Some(&label),
        "?period=2026-03&currency=USD",
        "text/csv",
        &label_csv(&own, "USD"),
    );
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
    // ...and may not send another party's rows.
    let reply = post(
        Some(&label),
        "?period=2026-03&currency=USD",
        "text/csv",
        &matching,
    );
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (403, "forbidden"),
        "{}",
        reply.body
    );

    // Other roles, no key, wrong media type, bad CSV, bad period.
    for (token, query, content_type, body, status, code) in [
        (
            Some(&ingest),
            "?period=2026-03",
            "text/csv",
            matching.as_str(),
            403,
            "forbidden",
        ),
        (
            None,
            "?period=2026-03",
            "text/csv",
            matching.as_str(),
            401,
            "unauthorized",
        ),
        (
            Some(&admin),
            "?period=2026-03",
            "application/json",
            "{}",
            415,
            "unsupported_media_type",
        ),
        (
            Some(&admin),
            "?period=2026-03",
            "text/csv",
            "who,what\nx,y\n",
            400,
            "bad_request",
        ),
        (
            Some(&admin),
            "?period=2026-03",
            "text/csv",
            "party,currency,amount\nlabel,USD,ten\n",
            400,
            "bad_request",
        ),
        (
            Some(&admin),
            "?period=March",
            "text/csv",
            matching.as_str(),
            400,
            "bad_request",
        ),
        (
            Some(&admin),
            "",
            "text/csv",
            matching.as_str(),
            400,
            "bad_request",
        ),
    ] {
        let reply = post(token.map(String::as_str), query, content_type, body);
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (status, code),
            "{query} {content_type}: {}",
            reply.body
        );
    }
    assert!(server.stop().success());
}

#[test]
fn usage_reports_are_imported_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    import_catalog(data, dir.path());
    let admin = token(data, &["--role", "admin"]);
    let ingest = token(data, &["--role", "ingest"]);
    let auditor = token(data, &["--role", "auditor"]);
    let label = token(data, &["--role", "label", "--party", "label"]);
    let server = Server::start(data);
    let events_before = server.get("/healthz", None).json()["events"]
        .as_u64()
        .unwrap();
    let post = |token: &str, content_type: &str, body: &str| {
        let authorization = format!("Bearer {token}");
        server.post(
            "/v1/usage",
            &[
                ("authorization", &authorization),
                ("content-type", content_type),
            ],
            body.as_bytes(),
        )
    };
    let header = "line_id,period,derivative,territory,currency,streams,gross,reverses\n";
    let report = format!("{header}A1,2026-04,{DERIVATIVE},US,USD,10,4.00,\nA2,2026-04,{DERIVATIVE},US,USD,10,6.00,\n");

    // Refused reports write nothing.
    let unknown =
        format!("{header}A3,2026-04,6f1c1c1e-1111-4a4a-8b8b-00000000dead,US,USD,1,1.00,\n");
    let cases = [
        (
            &ingest,
            "application/json",
            report.as_str(),
            415,
            "unsupported_media_type",
        ),
        (
            &ingest,
            "text/csv",
            "line,period\nx,y\n",
            400,
            "bad_request",
        ),
        (&ingest, "text/csv", unknown.as_str(), 422, "unprocessable"),
        (&label, "text/csv", report.as_str(), 403, "forbidden"),
        (&auditor, "text/csv", report.as_str(), 403, "forbidden"),
        (
            &"llk_unknown".to_string(),
            "text/csv",
            report.as_str(),
            401,
            "unauthorized",
        ),
    ];
    for (token, content_type, body, status, code) in cases {
        let reply = post(token, content_type, body);
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (status, code),
            "{body}: {}",
            reply.body
        );
    }
    assert_eq!(
        server.get("/healthz", None).json()["events"]
            .as_u64()
            .unwrap(),
        events_before
    );

    let keyed = |server: &Server, key: &str, body: &str| {
        let authorization = format!("Bearer {ingest}");
        server.post(
            "/v1/usage",
            &[
                ("authorization", &authorization),
                ("content-type", "text/csv"),
                ("idempotency-key", key),
            ],
            body.as_bytes(),
        )
    };
    let imported = keyed(&server, "usage-april", &report);
    assert_eq!(imported.status, 200, "{}", imported.body);
    let first = imported.body.clone();
    let imported = imported.json();
    assert_eq!(imported["imported"], 2);
    assert_eq!(imported["seqs"].as_array().unwrap().len(), 2);
    // A retry with the key gets the first response; without it, the lines
    // are reported as skipped. Neither appends anything.
    let retry = keyed(&server, "usage-april", &report);
    assert_eq!((retry.status, retry.body.as_str()), (200, first.as_str()));
    let again = post(&ingest, "text/csv", &report).json();
    assert_eq!(
        again,
        json!({"imported": 0, "skipped": ["A1", "A2"], "seqs": []})
    );
    let reused = keyed(
        &server,
        "usage-april",
        &format!("{header}A9,2026-04,{DERIVATIVE},US,USD,1,1.00,\n"),
    );
    assert_eq!(
        (reused.status, reused.error_code().as_str()),
        (409, "id_reused")
    );
    let events = server.get("/healthz", None).json()["events"].clone();
    assert_eq!(events, events_before + 2);

    let statement = server
        .get("/v1/statements/2026-04?currency=USD", Some(&admin))
        .json();
    assert_eq!(statement["statements"][0]["total"], "10.00");
    assert!(server.stop().success());

    // The kept response outlives the server.
    let server = Server::start(data);
    let retry = keyed(&server, "usage-april", &report);
    assert_eq!((retry.status, retry.body.as_str()), (200, first.as_str()));
    assert_eq!(server.get("/healthz", None).json()["events"], events);
    assert!(server.stop().success());
}

#[test]
fn catalog_documents_are_imported_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let ingest = token(data, &["--role", "ingest"]);
    let generator = token(data, &["--role", "generator"]);
    let label = token(data, &["--role", "label", "--party", "label"]);
    let server = Server::start(data);
    let post = |token: &str, content_type: &str, body: &str| {
        let authorization = format!("Bearer {token}");
        server.post(
            "/v1/catalog",
            &[
                ("authorization", &authorization),
                ("content-type", content_type),
            ],
            body.as_bytes(),
        )
    };
    let stem = format!("sha256:{}", "ab".repeat(32));
    let document = catalog(&stem).to_string();

    // Refused documents write nothing.
    let with_path = catalog("stems/vocals.wav").to_string();
    let cases = [
        (
            &ingest,
            "text/plain",
            document.as_str(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            &ingest,
            "application/json",
            r#"{"parties": 1}"#,
            400,
            "bad_request",
            "catalog",
        ),
        (
            &ingest,
            "application/json",
            with_path.as_str(),
            422,
            "unprocessable",
            "recordings[0].stems.vocals",
        ),
        (
            &label,
            "application/json",
            document.as_str(),
            403,
            "forbidden",
            "label",
        ),
        (
            &generator,
            "application/json",
            document.as_str(),
            403,
            "forbidden",
            "generator",
        ),
        (
            &"llk_unknown".to_string(),
            "application/json",
            document.as_str(),
            401,
            "unauthorized",
            "key",
        ),
    ];
    for (token, content_type, body, status, code, mentions) in cases {
        let reply = post(token, content_type, body);
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (status, code),
            "{body}: {}",
            reply.body
        );
        assert!(reply.body.contains(mentions), "{}", reply.body);
    }
    assert_eq!(server.get("/healthz", None).json()["events"], 0);

    let imported = post(&ingest, "application/json", &document);
    assert_eq!(imported.status, 200, "{}", imported.body);
    let imported = imported.json();
    assert_eq!(imported["registered"], 7);
    assert_eq!(imported["seqs"].as_array().unwrap().len(), 7);
    // Importing the same document again appends nothing; with an
    // Idempotency-Key the retry gets the first response back.
    let authorization = format!("Bearer {ingest}");
    let keyed = || {
        server.post(
            "/v1/catalog",
            &[
                ("authorization", &authorization),
                ("content-type", "application/json"),
                ("idempotency-key", "catalog-v1"),
            ],
            document.as_bytes(),
        )
    };
    let first = keyed();
    assert_eq!(first.json()["unchanged"], 7);
    assert_eq!(keyed().body, first.body);
    let again = post(&ingest, "application/json", &document).json();
    assert_eq!(
        (again["registered"].clone(), again["unchanged"].clone()),
        (json!(0), json!(7))
    );
    assert_eq!(server.get("/healthz", None).json()["events"], 7);
    assert!(server.stop().success());
}

#[test]
fn lineage_is_served_and_labels_see_only_derivatives_that_paid_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    import_month(data, dir.path());
    let admin = token(data, &["--role", "admin"]);
    let auditor = token(data, &["--role", "auditor"]);
    let ingest = token(data, &["--role", "ingest"]);
    let label = token(data, &["--role", "label", "--party", "label"]);
    let other_label = token(data, &["--role", "label", "--party", "other-label"]);
    let server = Server::start(data);
    let path = format!("/v1/lineage/{DERIVATIVE}");

    // Admin and auditor: the CLI's answer, every party's revenue.
    let cli = ok_json(data, &["lineage", DERIVATIVE]);
    for reader in [&admin, &auditor] {
        let reply = server.get(&path, Some(reader));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json(), cli);
    }
    let revenue_parties = |answer: &Value| -> Vec<String> {
        answer["revenue"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["parties"].as_array().unwrap().iter())
            .map(|p| p["party"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(revenue_parties(&cli).contains(&"pub".to_string()));

    // A label the derivative paid: the lineage, with only its own revenue.
    let reply = server.get(&path, Some(&label));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["derivative_seq"], cli["derivative_seq"]);
    let own = revenue_parties(&answer);
    assert!(
        !own.is_empty() && own.iter().all(|p| p == "label"),
        "{own:?}"
    );
    // A label it did not pay: 404, nothing of the lineage.
    let reply = server.get(&path, Some(&other_label));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (404, "not_found")
    );
    assert!(!reply.body.contains("GBAYE0601498"), "{}", reply.body);

    let reply = server.get(&path, Some(&ingest));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (403, "forbidden")
    );
    let reply = server.get(&path, None);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "unauthorized")
    );
    // The same lineage from the audio file itself, uploaded.
    let upload = |token: Option<&str>, content_type: &str, body: &[u8]| {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", content_type)];
        if let Some(value) = &authorization {
            headers.push(("authorization", value.as_str()));
        }
        server.post("/v1/lineage", &headers, body)
    };
    let audio = cover_audio();
    let reply = upload(Some(&auditor), "audio/wav", &audio);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let by_file = reply.json();
    assert_eq!(by_file["derivative_seq"], cli["derivative_seq"]);
    assert_eq!(by_file["matched_by"], "file-hash", "{by_file}");
    let reply = upload(Some(&label), "application/octet-stream", &audio);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(revenue_parties(&reply.json()).iter().all(|p| p == "label"));
    for (token, content_type, body, status, code) in [
        (
            Some(&other_label),
            "audio/wav",
            audio.as_slice(),
            404,
            "not_found",
        ),
        (
            Some(&ingest),
            "audio/wav",
            audio.as_slice(),
            403,
            "forbidden",
        ),
        (None, "audio/wav", audio.as_slice(), 401, "unauthorized"),
        (
            Some(&admin),
            "text/plain",
            audio.as_slice(),
            415,
            "unsupported_media_type",
        ),
        (
            Some(&admin),
            "audio/wav",
            b"".as_slice(),
            400,
            "bad_request",
        ),
        (
            Some(&admin),
            "audio/mpeg",
            b"not any audio we published".as_slice(),
            404,
            "not_found",
        ),
    ] {
        let reply = upload(token.map(String::as_str), content_type, body);
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (status, code),
            "{content_type}: {}",
            reply.body
        );
    }

    for (bad, status) in [
        (
            "/v1/lineage/6f1c1c1e-1111-4a4a-8b8b-00000000dead".to_string(),
            404,
        ),
        ("/v1/lineage/not-a-uuid".to_string(), 400),
        (format!("{path}?as_of=999999"), 400),
    ] {
        let reply = server.get(&bad, Some(&admin));
        assert_eq!(reply.status, status, "{bad}: {}", reply.body);
        reply.error_code();
    }
    assert!(server.stop().success());
}

#[test]
fn a_label_key_sees_its_own_share_of_a_lineage_and_no_other_partys_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    import_month(data, dir.path());
    let label = token(data, &["--role", "label", "--party", "label"]);
    let server = Server::start(data);
    let by_id = server.get(&format!("/v1/lineage/{DERIVATIVE}"), Some(&label));
    assert_eq!(by_id.status, 200, "{}", by_id.body);
    let authorization = format!("Bearer {label}");
    let headers = [
        ("content-type", "audio/wav"),
        ("authorization", authorization.as_str()),
    ];
    let by_file = server.post("/v1/lineage", &headers, &cover_audio());
    assert_eq!(by_file.status, 200, "{}", by_file.body);

    for answer in [by_id.json(), by_file.json()] {
        assert_eq!(answer["derivative"]["derivative"], DERIVATIVE);
        for revenue in answer["revenue"].as_array().unwrap() {
            assert!(revenue.get("gross").is_none(), "{revenue}");
            let parties = revenue["parties"].as_array().unwrap();
            assert!(parties.iter().all(|p| p["party"] == "label"), "{revenue}");
        }
        for line in answer["usage"].as_array().unwrap() {
            assert!(line.get("gross").is_none(), "{line}");
        }
        assert_eq!(
            answer["recordings"]["GBAYE0601498"]["data"]["master_splits"],
            json!([{"party": "label", "share": "0.5"}])
        );
        assert_eq!(
            answer["works"]["T-034524680-1"]["data"]["publishing_splits"],
            json!([])
        );
        assert_eq!(
            answer["voice_models"]["vm1"]["data"]["likeness_splits"],
            json!([])
        );
        // Only generation events are cited: catalog and usage leaves carry
        // every party's splits and the gross.
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
    assert!(server.stop().success());
}

#[test]
fn another_partys_derivative_gets_the_same_404_as_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = &dir.path().join("data");
    import_month(data, dir.path());
    let other_label = token(data, &["--role", "label", "--party", "other-label"]);
    let server = Server::start(data);
    let theirs = server.get(&format!("/v1/lineage/{DERIVATIVE}"), Some(&other_label));
    let unknown = server.get(
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
    assert!(server.stop().success());
}
