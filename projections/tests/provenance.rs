//! A derivative counts only as the generation engine publishes one: after
//! its job's request and steps, on the job's own stream. A publication
//! appended any other way, here straight through the ledger library as a
//! writer that ignores the API's guard would, pays no one and has no
//! lineage.

mod common;

use common::*;
use ledger::store::{AppendRequest, EventStore, ExpectedVersion};
use projections::lineage::{lineage, LineageAnswer, LineageQuery};
use projections::runner::Projections;
use projections::statement::statements;
use schemas::generation::generation_stream;
use schemas::usage::{UsageLine, LINE_IMPORTED};
use serde_json::json;
use uuid::Uuid;

const FORGED: Uuid = Uuid::from_u128(0x6f1c1c1e_1111_4a4a_8b8b_0000000000f1);
const JOB: Uuid = Uuid::from_u128(0x6f1c1c1e_1111_4a4a_8b8b_0000000000f2);

/// A usage line of 100.00 USD in 2026-03 for `derivative`.
fn usage_event(derivative: Uuid) -> ledger::NewEvent {
    let line = UsageLine {
        line_id: "F1".into(),
        period: "2026-03".into(),
        derivative,
        territory: "US".into(),
        currency: "USD".into(),
        streams: 1000,
        gross: "100.00".parse().unwrap(),
        reverses: None,
    };
    ledger::NewEvent::new(LINE_IMPORTED, serde_json::to_value(line).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_derivative_pays_no_one_and_has_no_lineage() {
    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    let attribution = json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]);
    f.store
        .append(AppendRequest::new(
            generation_stream(FORGED),
            ExpectedVersion::Exact(0),
            vec![derivative_event(FORGED, "mallory", attribution)],
        ))
        .await
        .unwrap();

    // The importer refuses its usage; a line appended past the importer is
    // folded, but not booked.
    let refused = import_csv(
        &mut f,
        &format!("F1,2026-03,{FORGED},US,USD,1000,100.00,\n"),
    )
    .await;
    let refusal = refused.unwrap_err().to_string();
    assert!(refusal.contains("is not published"), "{refusal}");
    f.store
        .append(AppendRequest::new(
            "usage-forged",
            ExpectedVersion::Any,
            vec![usage_event(FORGED)],
        ))
        .await
        .unwrap();
    let march = statements(&f.store, &mut f.projections, "2026-03", None, None)
        .await
        .unwrap();
    assert!(
        march.iter().all(|statement| statement.lines.is_empty()),
        "{march:?}"
    );

    let answer = lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Derivative(FORGED),
        None,
    )
    .await
    .unwrap();
    assert!(
        matches!(answer, LineageAnswer::NotFound { .. }),
        "{answer:?}"
    );
}

/// The fold follows a job across transactions: a job whose request and
/// step were folded before the projection tables were closed and opened
/// again is still open, and its publication is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_open_when_the_projections_close_publishes_after_they_open_again() {
    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    f.store
        .append(AppendRequest::new(
            generation_stream(JOB),
            ExpectedVersion::Exact(0),
            Vec::from(job_start(JOB, "u1")),
        ))
        .await
        .unwrap();
    f.projections.catch_up(&f.store).await.unwrap();
    let attribution = json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]);
    f.store
        .append(AppendRequest::new(
            generation_stream(JOB),
            ExpectedVersion::Exact(2),
            vec![derivative_event(JOB, "u1", attribution)],
        ))
        .await
        .unwrap();

    let mut reopened = Projections::open(f.store.database_path()).unwrap();
    reopened.catch_up(&f.store).await.unwrap();
    assert!(reopened.fold().derivatives.contains_key(&JOB));
    assert!(reopened.fold().jobs.is_empty());
    let caught_up = reopened.fold().clone();
    reopened.rebuild(&f.store).await.unwrap();
    assert_eq!(reopened.fold(), &caught_up);
}
