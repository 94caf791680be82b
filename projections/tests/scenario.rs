//! The hand-worked scenario: splits of 1/3 written as decimals that sum to
//! 1, a reversal booked in its own period, a JPY line, a split amendment, and
//! `--as-of`; every cent below was worked out by hand (see the comments).

mod common;

use common::*;
use ledger::store::EventStore;
use projections::statement::{statements, Statement};
use serde_json::json;
use uuid::Uuid;

const D1: Uuid = Uuid::from_u128(0x6f1c1c1e_1111_4a4a_8b8b_000000000001);

fn amounts(statement: &Statement) -> Vec<(&str, &str, &str)> {
    statement
        .lines
        .iter()
        .map(|l| (l.party.as_str(), l.amount.as_str(), l.exact.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_worked_statements_to_the_cent() {
    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    publish(
        &f.store,
        D1,
        "u1",
        json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 6000},
               {"kind": "voice", "ref": "vm1", "weight_bp": 4000}]),
    )
    .await;
    let d = D1.to_string();
    let first = import_csv(&mut f, &format!("L1,2026-03,{d},US,USD,1000,10.00,\n"))
        .await
        .unwrap();
    let after_l1 = first.imported[0].1 + 1;
    let second = import_csv(
        &mut f,
        &format!("L2,2026-03,{d},GB,USD,7,0.05,\nL3,2026-03,{d},JP,JPY,300,1000,\n"),
    )
    .await
    .unwrap();
    assert_eq!(second.imported.len(), 2);

    // 2026-03 USD, L1 (10.00) + L2 (0.05). Per line: platform 30%, creator
    // 20%, pool 50% = recording 60% + voice 40%; master half of recording:
    // label 0.75, singer 0.25; publishing over w1/w2/w3 at 0.333333/0.333333/0.333334.
    // Exact: platform 3.015, u1 2.01, label 1.130625, singer 2.386875,
    // w1 = w2 = 0.5024994975, w3 0.502501005 (sum 10.05). Floors in cents
    // 301+201+113+238+50+50+50 = 1003; 2 leftover cents to the largest
    // remainders: singer (.6875) and platform (.5).
    let march = statements(&f.store, &mut f.projections, "2026-03", None, None)
        .await
        .unwrap();
    assert_eq!(march.len(), 2, "JPY and USD");
    let (jpy, usd) = (&march[0], &march[1]);
    assert_eq!(
        (usd.currency.as_str(), usd.total.as_str()),
        ("USD", "10.05")
    );
    assert_eq!(
        amounts(usd),
        vec![
            ("label", "1.13", "1.130625"),
            ("platform", "3.02", "3.015"),
            ("singer", "2.39", "2.386875"),
            ("u1", "2.01", "2.01"),
            ("w1", "0.50", "0.5024994975"),
            ("w2", "0.50", "0.5024994975"),
            ("w3", "0.50", "0.502501005"),
        ]
    );
    assert_eq!(usd.lines[0].name, "Blue Label Records");
    assert_eq!(
        usd.lines[3].name, "u1",
        "an unregistered creator is named by id"
    );

    // 2026-03 JPY, L3 (1000 yen, exponent 0): exact platform 300, u1 200,
    // label 112.5, singer 237.5, w1 = w2 = 49.99995, w3 50.0001. Floors
    // 300+200+112+237+49+49+50 = 997; 3 leftover yen: w1, w2 (.99995), then
    // the .5 tie between label and singer goes to "label" (lower id).
    assert_eq!((jpy.currency.as_str(), jpy.total.as_str()), ("JPY", "1000"));
    assert_eq!(
        amounts(jpy),
        vec![
            ("label", "113", "112.5"),
            ("platform", "300", "300"),
            ("singer", "237", "237.5"),
            ("u1", "200", "200"),
            ("w1", "50", "49.99995"),
            ("w2", "50", "49.99995"),
            ("w3", "50", "50.0001"),
        ]
    );

    // Amend the master splits (label 0.5, singer 0.5): it applies to usage
    // appended after it, not to L2's reversal, which books L2's original
    // allocations negated in the reversal's own period (2026-04).
    let amendment = import_catalog(&f.store, &catalog_json("0.5", "0.5")).await;
    assert_eq!(
        (amendment.registered, amendment.amended, amendment.unchanged),
        (0, 1, 8)
    );
    import_csv(
        &mut f,
        &format!("L4,2026-04,{d},GB,USD,0,-0.05,L2\nL5,2026-05,{d},US,USD,100,1.00,\n"),
    )
    .await
    .unwrap();

    // 2026-04 USD, only the reversal of L2 (-0.05): exact platform -0.015,
    // u1 -0.01, label -0.005625, singer -0.011875, w1 = w2 = -0.0024999975,
    // w3 -0.002500005. Floors toward minus infinity: -2-1-1-2-1-1-1 = -9
    // cents; 4 leftover cents to the largest remainders: singer (.8125),
    // w1 = w2 (.75000025), w3 (.7499995).
    let april = statements(&f.store, &mut f.projections, "2026-04", Some("USD"), None)
        .await
        .unwrap();
    assert_eq!(april[0].total, "-0.05");
    assert_eq!(
        amounts(&april[0]),
        vec![
            ("label", "-0.01", "-0.005625"),
            ("platform", "-0.02", "-0.015"),
            ("singer", "-0.01", "-0.011875"),
            ("u1", "-0.01", "-0.01"),
            ("w1", "0.00", "-0.0024999975"),
            ("w2", "0.00", "-0.0024999975"),
            ("w3", "0.00", "-0.002500005"),
        ]
    );

    // 2026-05 USD, L5 (1.00) under the amended splits: master 0.15 gives
    // label 0.075 and singer 0.075 (+0.20 voice). Floors 7+27+20+30+4+4+5 = 97;
    // 3 leftover cents: w1, w2 (.999995), then label over singer on the .5 tie.
    let may = statements(&f.store, &mut f.projections, "2026-05", Some("USD"), None)
        .await
        .unwrap();
    assert_eq!(
        amounts(&may[0]),
        vec![
            ("label", "0.08", "0.075"),
            ("platform", "0.30", "0.3"),
            ("singer", "0.27", "0.275"),
            ("u1", "0.20", "0.2"),
            ("w1", "0.05", "0.04999995"),
            ("w2", "0.05", "0.04999995"),
            ("w3", "0.05", "0.0500001"),
        ]
    );

    // As of the log prefix that ends with L1, 2026-03 USD holds L1 alone:
    // label 1.125 and singer 2.375 tie at .5, and w1/w2 (.99995) come first.
    let as_of = statements(
        &f.store,
        &mut f.projections,
        "2026-03",
        Some("USD"),
        Some(after_l1),
    )
    .await
    .unwrap();
    assert_eq!(as_of[0].checkpoint.size, after_l1);
    assert_eq!(as_of[0].total, "10.00");
    assert_eq!(
        amounts(&as_of[0])
            .iter()
            .map(|(p, a, _)| (*p, *a))
            .collect::<Vec<_>>(),
        vec![
            ("label", "1.13"),
            ("platform", "3.00"),
            ("singer", "2.37"),
            ("u1", "2.00"),
            ("w1", "0.50"),
            ("w2", "0.50"),
            ("w3", "0.50")
        ]
    );
    // The cited root is the log's own root at that size.
    let proof = f
        .store
        .prove_consistency(after_l1, f.store.size().await.unwrap())
        .await
        .unwrap();
    assert_eq!(as_of[0].checkpoint.root_hash, hex::encode(proof.from_root));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_import_is_all_or_nothing_and_idempotent() {
    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    publish(
        &f.store,
        D1,
        "u1",
        json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]),
    )
    .await;
    let d = D1.to_string();
    let size = f.store.size().await.unwrap();

    // One bad line (unknown derivative) rejects the whole file.
    let unknown = Uuid::from_u128(7);
    let error = import_csv(
        &mut f,
        &format!("L1,2026-03,{d},US,USD,1,1.00,\nL2,2026-03,{unknown},US,USD,1,1.00,\n"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("line 3 (line_id \"L2\"): derivative 00000000-0000-0000-0000-000000000007 is not published"), "{error}");
    assert_eq!(f.store.size().await.unwrap(), size, "nothing was written");

    // A reversal whose gross is not the negated original is rejected.
    let error = import_csv(
        &mut f,
        &format!("L1,2026-03,{d},US,USD,1,1.00,\nR1,2026-04,{d},US,USD,0,-0.99,L1\n"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("must be exactly the negated gross"),
        "{error}"
    );
    assert_eq!(f.store.size().await.unwrap(), size);

    let rows = format!("L1,2026-03,{d},US,USD,1,1.00,\nR1,2026-04,{d},US,USD,0,-1.00,L1\n");
    let first = import_csv(&mut f, &rows).await.unwrap();
    assert_eq!(first.imported.len(), 2);
    let again = import_csv(&mut f, &format!("{rows}L3,2026-03,{d},US,USD,1,2.00,\n"))
        .await
        .unwrap();
    assert_eq!(again.skipped, vec!["L1".to_string(), "R1".to_string()]);
    assert_eq!(again.imported.len(), 1);
    // A second reversal of the same line is refused.
    let error = import_csv(&mut f, &format!("R2,2026-04,{d},US,USD,0,-1.00,L1\n"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("was already reversed"), "{error}");
    // The same id with other content is an error, not a skip.
    let error = import_csv(&mut f, &format!("L1,2026-03,{d},US,USD,1,5.00,\n"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("a different line with this id"), "{error}");

    let march = statements(&f.store, &mut f.projections, "2026-03", Some("USD"), None)
        .await
        .unwrap();
    assert_eq!(march[0].total, "3.00", "L1 and L3 counted once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_gives_byte_identical_statements() {
    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    publish(&f.store, D1, "u1", json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 5000}, {"kind": "voice", "ref": "vm1", "weight_bp": 5000}])).await;
    let d = D1.to_string();
    import_csv(
        &mut f,
        &format!("L1,2026-03,{d},US,USD,1,10.01,\nL2,2026-03,{d},FR,EUR,1,3.333333,\n"),
    )
    .await
    .unwrap();
    import_catalog(&f.store, &catalog_json("0.6", "0.4")).await;
    import_csv(
        &mut f,
        &format!("L3,2026-03,{d},US,USD,1,7.77,\nL4,2026-03,{d},US,USD,1,-10.01,L1\n"),
    )
    .await
    .unwrap();

    let before = statements(&f.store, &mut f.projections, "2026-03", None, None)
        .await
        .unwrap();
    let before_json = serde_json::to_string_pretty(&before).unwrap();
    let before_csv = projections::statement::render_csv(&before);
    let position = f.projections.position();
    f.projections.rebuild(&f.store).await.unwrap();
    assert_eq!(f.projections.position(), position);
    let after = statements(&f.store, &mut f.projections, "2026-03", None, None)
        .await
        .unwrap();
    assert_eq!(serde_json::to_string_pretty(&after).unwrap(), before_json);
    assert_eq!(projections::statement::render_csv(&after), before_csv);
    // A second runner on the same file sees the same position and state.
    let other = projections::runner::Projections::open(f.store.database_path()).unwrap();
    assert_eq!(other.position(), position);
    assert_eq!(other.fold(), f.projections.fold());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_around_the_importer_are_never_counted_twice() {
    use ledger::store::{AppendRequest, ExpectedVersion};
    use ledger::NewEvent;

    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    publish(
        &f.store,
        D1,
        "u1",
        json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]),
    )
    .await;
    let d = D1.to_string();
    import_csv(&mut f, &format!("L1,2026-03,{d},US,USD,1,1.00,\n"))
        .await
        .unwrap();

    // Raw appends that bypass the importer: the same line id again under a
    // new event id, a line for an unknown derivative, a malformed catalog
    // event, and an event type the projection does not know.
    let line = json!({"line_id": "L1", "period": "2026-03", "derivative": D1, "territory": "US", "currency": "USD", "streams": 1, "gross": "1.00"});
    let mut unknown = line.clone();
    unknown["line_id"] = json!("L2");
    unknown["derivative"] = json!(Uuid::from_u128(99));
    f.store
        .append_all(vec![
            AppendRequest::new(
                "usage-raw",
                ExpectedVersion::Any,
                vec![
                    NewEvent::new("usage.line-imported", line),
                    NewEvent::new("usage.line-imported", unknown),
                ],
            ),
            AppendRequest::new(
                "recording-XX",
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    "catalog.recording-amended",
                    json!({"isrc": 7}),
                )],
            ),
            AppendRequest::new(
                "misc",
                ExpectedVersion::Any,
                vec![NewEvent::new("something.else", json!({"a": 1}))],
            ),
        ])
        .await
        .unwrap();
    let march = statements(&f.store, &mut f.projections, "2026-03", Some("USD"), None)
        .await
        .unwrap();
    assert_eq!(
        march[0].total, "1.00",
        "the duplicate line id and the unknown derivative are not booked"
    );
    let lines = f
        .projections
        .lines_of_derivative(D1, f.store.size().await.unwrap())
        .unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1].status,
        projections::fold::LineStatus::Rejected("line_id \"L1\" was already imported".into())
    );
    assert_eq!(
        f.projections.position(),
        f.store.size().await.unwrap(),
        "every event was folded"
    );
    // The importer refuses to treat the rejected L2 as imported.
    let error = import_csv(&mut f, &format!("L2,2026-03,{d},US,USD,1,1.00,\n"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("is in the log at seq") && error.contains("was not booked"),
        "{error}"
    );
}
