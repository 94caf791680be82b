//! End to end over HTTP: API keys from `ledgerline keys`, stored hashed;
//! every role against every protected endpoint; 401 for missing, malformed,
//! unknown and revoked keys; the public endpoints open to all; and a label
//! key that reads nothing but what belongs to its own party.

mod common;

use common::server::Server;
use common::{ok, ok_json, run};
use serde_json::{json, Value};

/// Creates a key with `ledgerline keys create` and returns (id, token).
fn create_key(data: &std::path::Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["keys", "create"];
    all.extend_from_slice(args);
    let created = ok_json(data, &all);
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

#[test]
fn keys_are_created_listed_revoked_and_never_stored_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (admin_id, admin) = create_key(data, &["--role", "admin"]);
    let (label_id, label) = create_key(data, &["--role", "label", "--party", "label-a"]);
    assert!(admin.starts_with("llk_") && admin.len() == 68, "{admin}");
    assert_ne!(admin, label);

    let listed: Vec<Value> = ok(data, &["keys", "list"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    let label_entry = listed
        .iter()
        .find(|k| k["id"] == label_id.as_str())
        .unwrap();
    assert_eq!(label_entry["role"], "label");
    assert_eq!(label_entry["party"], "label-a");
    assert_eq!(label_entry["revoked"], Value::Null);
    for entry in &listed {
        assert!(
            entry.get("token").is_none(),
            "list never shows a token: {entry}"
        );
    }
    let stored = std::fs::read(data.join("api.db")).unwrap();
    for token in [&admin, &label] {
        let secret = token.trim_start_matches("llk_").as_bytes();
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret),
            "a token is stored in plain text"
        );
    }

    // Bad usage exits 2 and creates nothing.
    for args in [
        &["keys", "create", "--role", "label"][..],
        &["keys", "create", "--role", "admin", "--party", "label-a"],
        &["keys", "create", "--role", "root"],
        &["keys", "create", "--role", "label", "--party", "bad party"],
        &["keys", "revoke", "no-such-key"],
    ] {
        let output = run(data, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
    assert_eq!(ok(data, &["keys", "list"]).lines().count(), 2);

    // Revoking takes effect on a running server.
    let server = Server::start(data);
    assert_eq!(server.get("/v1/events", Some(&admin)).status, 200);
    ok(data, &["keys", "revoke", &admin_id]);
    let revoked = server.get("/v1/events", Some(&admin));
    assert_eq!(
        (revoked.status, revoked.error_code().as_str()),
        (401, "unauthorized")
    );
    let listed = ok(data, &["keys", "list"]);
    let admin_entry: Value = listed
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|k| k["id"] == admin_id.as_str())
        .unwrap();
    assert!(admin_entry["revoked"].is_string());
    assert!(server.stop().success());
}

#[test]
fn each_role_reaches_only_its_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let tokens: Vec<(&str, String)> = [
        ("admin", &["--role", "admin"][..]),
        ("ingest", &["--role", "ingest"]),
        ("generator", &["--role", "generator"]),
        ("auditor", &["--role", "auditor"]),
        ("label-a", &["--role", "label", "--party", "label-a"]),
        ("label-b", &["--role", "label", "--party", "label-b"]),
    ]
    .into_iter()
    .map(|(name, args)| (name, create_key(data, args).1))
    .collect();
    let server = Server::start(data);
    let event = json!({"type": "note.test", "data": {"party": "label-a"}});

    // Expected status per role: admin, ingest, generator, auditor, label-a, label-b.
    let matrix: &[(&str, &str, [u16; 6])] = &[
        ("GET", "/v1/events", [200, 403, 403, 200, 403, 403]),
        (
            "GET",
            "/v1/events?party=label-a",
            [200, 403, 403, 200, 403, 403],
        ),
        ("GET", "/v1/streams/s", [200, 403, 403, 200, 403, 403]),
        (
            "POST",
            "/v1/streams/s/events",
            [201, 201, 403, 403, 403, 403],
        ),
        ("GET", "/metrics", [200, 403, 403, 200, 403, 403]),
    ];
    // The stream exists before anyone reads it.
    let admin = &tokens[0].1;
    assert_eq!(
        server
            .post_json("/v1/streams/s/events", admin, &event)
            .status,
        201
    );
    for (method, path, expected) in matrix {
        for ((role, token), want) in tokens.iter().zip(expected) {
            let reply = match *method {
                "GET" => server.get(path, Some(token)),
                _ => server.post_json(path, token, &event),
            };
            assert_eq!(
                reply.status, *want,
                "{role} {method} {path}: {}",
                reply.body
            );
            if *want == 403 {
                assert_eq!(reply.error_code(), "forbidden");
            }
        }
        // No key at all: 401 with the Bearer challenge.
        let anonymous = match *method {
            "GET" => server.get(path, None),
            _ => server.post(
                "/v1/streams/s/events",
                &[("content-type", "application/json")],
                event.to_string().as_bytes(),
            ),
        };
        assert_eq!(
            (anonymous.status, anonymous.error_code().as_str()),
            (401, "unauthorized"),
            "{method} {path}"
        );
    }

    // Malformed and unknown credentials are 401, never 403 or 200.
    for authorization in [
        "Basic YWRtaW46YWRtaW4=".to_string(),
        "Bearer ".to_string(),
        format!("Bearer {}x", tokens[0].1),
        "Bearer llk_0000000000000000000000000000000000000000000000000000000000000000".to_string(),
    ] {
        let reply = server.post(
            "/v1/streams/s/events",
            &[
                ("authorization", &authorization),
                ("content-type", "application/json"),
            ],
            event.to_string().as_bytes(),
        );
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (401, "unauthorized"),
            "{authorization}"
        );
    }

    // The checkpoint, the key, proofs, health and the API document are public.
    for path in [
        "/v1/checkpoint",
        "/v1/key",
        "/v1/proofs/inclusion?seq=0&size=1",
        "/v1/proofs/consistency?from=1&to=1",
        "/healthz",
        "/openapi.json",
    ] {
        assert_eq!(server.get(path, None).status, 200, "{path}");
    }
    assert!(server.stop().success());
}
