//! End to end: licence terms and consent, enforced and logged. A cover is
//! made with a voice; the artist withdraws consent; the next request is
//! refused with `consent_withdrawn`, the cover is on the takedown list
//! (CLI and API) with a proof that verifies, and usage reported for it
//! afterwards is paid and marked in the statement's detail. A label ending
//! participation lists its recording's derivatives; `licence show --as-of`
//! shows the terms before and after. Bad input writes nothing.

mod common;

use common::server::Server;
use common::{api_token, ok, ok_json, run};
use inference::sample_catalog;
use serde_json::{json, Value};
use std::path::Path;

const VOICE: &str = "vm-mara";
const REFERENCE: &str = "consent/2026/7";
/// Short clips keep the CPU twins quick in a debug test run.
const SECONDS: f64 = 1.5;

/// The catalog: one participating recording and a consenting voice.
fn catalog(data: &Path, participating: bool) -> (String, Value) {
    let track = &sample_catalog::tracks()[0];
    let stems = common::stored_stems(data, track, SECONDS);
    let vocals = stems["vocals"].clone();
    let catalog = json!({
        "parties": [
            {"id": "label", "name": "Label", "role": "label"},
            {"id": "mara", "name": "Mara", "role": "artist"},
            {"id": "pub", "name": "Publisher", "role": "publisher"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song", "publishing_splits": [{"party": "pub", "share": "1"}]}],
        "recordings": [{"isrc": track.isrc, "title": track.title, "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": "1"}], "stems": stems,
                        "licence": {"participating": participating, "kinds": ["remix", "cover"],
                                    "tempo_rate": {"min": "0.9", "max": "1.1"}, "semitones": {"min": -3, "max": 3},
                                    "voice": true, "territories": ["WW"]}}],
        "voice_models": [{"id": VOICE, "artist": "mara",
                          "consent": {"granted": true, "reference": REFERENCE, "scope": {"kinds": ["cover"], "territories": ["WW"]}},
                          "training_stems": [vocals], "likeness_splits": [{"party": "mara", "share": "1"}]}],
        "policy": {"id": "v1", "platform_share": "0.3", "creator_share": "0.1", "master_share": "0.5"}
    });
    (track.isrc.to_string(), catalog)
}

fn import(data: &Path, catalog: &Value) {
    let path = data.join("catalog.json");
    std::fs::write(&path, catalog.to_string()).unwrap();
    ok(data, &["catalog", "import", &path.display().to_string()]);
}

fn request(data: &Path, name: &str, request: Value) -> String {
    let path = data.join(name);
    std::fs::write(&path, request.to_string()).unwrap();
    path.display().to_string()
}

fn log_size(data: &Path) -> usize {
    ok(data, &["events"]).lines().count()
}

/// Runs `args` expecting exit 2 and nothing appended; returns stderr.
fn refused_with_nothing_written(data: &Path, args: &[&str]) -> String {
    let before = log_size(data);
    let output = run(data, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(log_size(data), before, "{args:?} wrote to the log");
    stderr
}

/// Checks a takedown entry's inclusion proof against the list's checkpoint.
fn assert_proven(list: &Value, entry: &Value) {
    let proof = &entry["proof"];
    let hash = |v: &Value| -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    assert_eq!(proof["leaf_index"], entry["event_seq"]);
    assert_eq!(proof["root_hash"], list["checkpoint"]["root_hash"]);
    let path: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    ledger::merkle::verify_inclusion(
        proof["leaf_index"].as_u64().unwrap(),
        proof["tree_size"].as_u64().unwrap(),
        &hash(&proof["leaf_hash"]),
        &path,
        &hash(&proof["root_hash"]),
    )
    .expect("the takedown's proof verifies");
}

#[test]
fn a_withdrawn_consent_refuses_new_covers_lists_the_old_and_marks_their_revenue() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (isrc, catalog) = catalog(data, true);
    import(data, &catalog);
    ok(
        data,
        &["voice", "train", "--model", VOICE, "--backend", "cpu"],
    );

    let cover_request = json!({"recording": isrc, "requested_by": "creator-1", "territory": "FR",
                               "recipe": {"kind": "cover", "voice_model": VOICE}});
    let cover = ok_json(
        data,
        &[
            "generate",
            "--request",
            &request(data, "cover.json", cover_request.clone()),
            "--backend",
            "cpu",
        ],
    );
    let derivative = cover["derivative"].as_str().unwrap().to_string();
    let lineage = ok_json(data, &["lineage", &derivative]);
    assert_eq!(lineage["licensed"]["territory"], "FR");
    assert_eq!(
        lineage["licensed"]["terms"]["data"]["tempo_rate"]["max"],
        "1.1"
    );
    assert_eq!(
        lineage["licensed"]["consent"]["data"]["reference"],
        REFERENCE
    );

    // A request past the terms is refused with the term and the value.
    let fast = request(
        data,
        "fast.json",
        json!({"recording": isrc, "requested_by": "creator-1", "territory": "US",
               "recipe": {"kind": "remix", "tempo_rate": 1.2}}),
    );
    let output = run(data, &["generate", "--request", &fast, "--backend", "cpu"]);
    assert_eq!(output.status.code(), Some(2));
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (refused["reason"].as_str(), refused["value"].as_str()),
        (Some("tempo_out_of_bounds"), Some("1.2"))
    );

    // Withdrawal: bad input first, each refused with nothing written.
    for (args, expected) in [
        (
            vec!["--voice-model", "vm-nobody", "--reference", REFERENCE],
            "not in the catalog",
        ),
        (
            vec!["--voice-model", VOICE, "--reference", "consent/other"],
            "was ever granted",
        ),
        (
            vec![
                "--voice-model",
                VOICE,
                "--reference",
                REFERENCE,
                "--effective",
                "2026-02-30",
            ],
            "not a calendar date",
        ),
    ] {
        let mut command = vec!["consent", "withdraw"];
        command.extend(args);
        let stderr = refused_with_nothing_written(data, &command);
        assert!(stderr.contains(expected), "{command:?}: {stderr}");
    }
    let withdraw = [
        "consent",
        "withdraw",
        "--voice-model",
        VOICE,
        "--reference",
        REFERENCE,
    ];
    let withdrawal_seq = ok_json(data, &withdraw)["seq"].as_u64().unwrap();
    let stderr = refused_with_nothing_written(data, &withdraw);
    assert!(stderr.contains("already withdrawn"), "{stderr}");

    // The next cover in that voice is refused, and the refusal logged.
    let again = request(data, "again.json", cover_request);
    let output = run(data, &["generate", "--request", &again, "--backend", "cpu"]);
    assert_eq!(output.status.code(), Some(2));
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refused["reason"], "consent_withdrawn");
    assert_eq!(refused["value"], REFERENCE);
    let events = ok(data, &["events"]);
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "generation.rejected");
    use base64::Engine as _;
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(last["leaf"].as_str().unwrap())
        .unwrap();
    let rejected: Value = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(rejected["data"]["reason"], "consent_withdrawn");
    assert_eq!(rejected["data"]["value"], REFERENCE);

    // The cover is on the takedown list, with a proof of the withdrawal.
    let list = ok_json(data, &["takedowns"]);
    let entries = list["takedowns"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["derivative"], derivative.as_str());
    assert_eq!(entries[0]["reason"], "consent_withdrawn");
    assert_eq!(entries[0]["event_seq"], withdrawal_seq);
    assert_eq!(entries[0]["voice_model"], VOICE);
    assert_proven(&list, &entries[0]);
    let later = ok_json(
        data,
        &["takedowns", "--since", &(withdrawal_seq + 1).to_string()],
    );
    assert!(later["takedowns"].as_array().unwrap().is_empty());

    // Usage reported after the withdrawal is paid, and marked.
    let period = ok_json(data, &["takedowns"])["day"].as_str().unwrap()[..7].to_string();
    let usage = data.join("usage.csv");
    std::fs::write(
        &usage,
        format!("line_id,period,derivative,territory,currency,streams,gross,reverses\nL1,{period},{derivative},FR,EUR,1000,10.00,\n"),
    )
    .unwrap();
    ok(data, &["usage", "import", &usage.display().to_string()]);
    let detail = ok(
        data,
        &[
            "statements",
            "--period",
            &period,
            "--currency",
            "EUR",
            "--party",
            "mara",
            "--detail",
            "--format",
            "csv",
        ],
    );
    let rows: Vec<&str> = detail.lines().skip(1).collect();
    assert!(!rows.is_empty(), "{detail}");
    for row in rows {
        let fields: Vec<&str> = row.split(',').collect();
        assert!(fields[9].parse::<f64>().unwrap() > 0.0, "paid: {row}");
        assert_eq!(fields[10], "consent_withdrawn", "{row}");
        assert_eq!(fields[11], withdrawal_seq.to_string(), "{row}");
    }

    // The API answers the same list, and takes withdrawals from admins only.
    let server = Server::start(data);
    let admin = api_token(data, "admin");
    let generator = api_token(data, "generator");
    let reply = server.get("/v1/takedowns", Some(&generator));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["takedowns"][0]["derivative"],
        derivative.as_str()
    );
    let reply = server.post_json(
        &format!("/v1/voice-models/{VOICE}/consent-withdrawals"),
        &generator,
        &json!({"reference": REFERENCE}),
    );
    assert_eq!(reply.status, 403);
    let before = log_size(data);
    for (voice, body, expected) in [
        ("vm-nobody", json!({"reference": REFERENCE}), 404),
        (VOICE, json!({"reference": "consent/other"}), 422),
        (
            VOICE,
            json!({"reference": REFERENCE, "effective": "2026-13-01"}),
            400,
        ),
        (VOICE, json!({"reference": REFERENCE}), 409),
    ] {
        let reply = server.post_json(
            &format!("/v1/voice-models/{voice}/consent-withdrawals"),
            &admin,
            &body,
        );
        assert_eq!(reply.status, expected, "{voice} {body}: {}", reply.body);
    }
    assert_eq!(log_size(data), before, "refused withdrawals wrote nothing");
}

#[test]
fn a_label_ending_participation_lists_its_derivatives_and_licence_show_has_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (isrc, mut catalog) = catalog(data, true);
    import(data, &catalog);
    let remix = ok_json(
        data,
        &[
            "generate",
            "--request",
            &request(
                data,
                "remix.json",
                json!({"recording": isrc, "requested_by": "creator-1", "territory": "JP", "recipe": {"kind": "remix"}}),
            ),
            "--backend",
            "cpu",
        ],
    );
    // A server running all along: its takedown index catches up with the
    // amendment another process appends.
    let auditor = api_token(data, "auditor");
    let server = Server::start(data);
    let served = || {
        let reply = server.get("/v1/takedowns", Some(&auditor));
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    };
    assert_eq!(served()["takedowns"], json!([]));
    let before = log_size(data);

    // Overlapping (inverted) windows and unparseable dates are refused whole.
    let mut bad = catalog.clone();
    bad["recordings"][0]["licence"]["from"] = json!("2027-06-01");
    bad["recordings"][0]["licence"]["until"] = json!("2027-01-01");
    let path = data.join("bad.json");
    std::fs::write(&path, bad.to_string()).unwrap();
    refused_with_nothing_written(data, &["catalog", "import", &path.display().to_string()]);
    bad["recordings"][0]["licence"]["until"] = json!("2027-02-30");
    std::fs::write(&path, bad.to_string()).unwrap();
    refused_with_nothing_written(data, &["catalog", "import", &path.display().to_string()]);

    catalog["recordings"][0]["licence"]["participating"] = json!(false);
    import(data, &catalog);
    let amended_seq = before as u64;

    let list = ok_json(data, &["takedowns"]);
    let entries = list["takedowns"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["derivative"], remix["derivative"]);
    assert_eq!(entries[0]["reason"], "not_participating");
    assert_eq!(entries[0]["event_seq"], amended_seq);
    assert_proven(&list, &entries[0]);
    let from_server = served();
    assert_eq!(from_server["takedowns"], list["takedowns"]);
    assert_proven(&from_server, &from_server["takedowns"][0]);

    let now = ok_json(data, &["licence", "show", &isrc]);
    assert_eq!(now["participating"], false);
    assert_eq!(now["in_force"]["seq"], amended_seq);
    assert_eq!(now["versions"].as_array().unwrap().len(), 2);
    let then = ok_json(
        data,
        &[
            "licence",
            "show",
            &isrc,
            "--as-of",
            &amended_seq.to_string(),
        ],
    );
    assert_eq!(then["participating"], true);
    assert_eq!(then["versions"].as_array().unwrap().len(), 1);
    assert_eq!(then["in_force"]["licence"]["territories"], json!(["WW"]));

    // The next request for it is refused as not participating.
    let output = run(
        data,
        &[
            "generate",
            "--request",
            &request(
                data,
                "again.json",
                json!({"recording": isrc, "requested_by": "creator-1", "territory": "JP", "recipe": {"kind": "remix"}}),
            ),
            "--backend",
            "cpu",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refused["reason"], "not_participating");

    // Bad input to licence show: an unknown recording, a seq past the log.
    refused_with_nothing_written(data, &["licence", "show", "ZZLL09999999"]);
    refused_with_nothing_written(data, &["licence", "show", &isrc, "--as-of", "999999"]);
    // A request without a territory is refused by its code, nothing written.
    let stderr = refused_with_nothing_written(
        data,
        &[
            "generate",
            "--request",
            &request(
                data,
                "nowhere.json",
                json!({"recording": isrc, "requested_by": "creator-1", "recipe": {"kind": "remix"}}),
            ),
        ],
    );
    assert!(stderr.contains("territory_missing"), "{stderr}");
}
