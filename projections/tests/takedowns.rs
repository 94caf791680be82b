//! The takedown list's rules on a real log: a derivative requested before
//! its recording's label ended participation is listed even when published
//! after; the entry cites the event that ended participation, not a later
//! edit; `--since` and the day bound what is listed and marked.

mod common;

use common::{derivative_event, import_catalog, job_start, open};
use ledger::store::{AppendRequest, EventStore, ExpectedVersion};
use projections::takedowns::{marks, takedowns, TakedownIndex, TakedownReason};
use schemas::generation::generation_stream;
use schemas::licence::CalendarDate;
use serde_json::json;
use uuid::Uuid;

/// The day the log's last event was appended: today, for these tests.
async fn today_of(store: &dyn EventStore) -> CalendarDate {
    let size = store.size().await.unwrap();
    let last = store.read_range(size - 1, 1).await.unwrap().remove(0);
    last.envelope().unwrap().time[..10].parse().unwrap()
}

#[tokio::test]
async fn participation_ended_lists_what_was_licensed_before_and_cites_the_ending() {
    let f = open();
    let mut catalog = common::catalog_json("0.5", "0.5");
    catalog["recordings"][0]["licence"] = json!({"participating": true});
    import_catalog(&f.store, &catalog).await;

    // Requested (and licensed) while participating...
    let job = Uuid::new_v4();
    f.store
        .append(AppendRequest::new(
            generation_stream(job),
            ExpectedVersion::Exact(0),
            job_start(job, "creator").into(),
        ))
        .await
        .unwrap();
    let today = today_of(&f.store).await;
    let index = TakedownIndex::default();
    let none = index.list(&f.store, 0, today, None).await.unwrap();
    assert!(none.takedowns.is_empty());

    // ...then the label ends participation, then the job publishes.
    catalog["recordings"][0]["licence"]["participating"] = json!(false);
    let ended = import_catalog(&f.store, &catalog).await.seqs[0];
    let published = f
        .store
        .append(AppendRequest::new(
            generation_stream(job),
            ExpectedVersion::Exact(2),
            vec![derivative_event(
                job,
                "creator",
                json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]),
            )],
        ))
        .await
        .unwrap()[0]
        .seq;
    // A later edit of the recording does not move the cause.
    catalog["recordings"][0]["title"] = json!("Song (remastered)");
    let edited = import_catalog(&f.store, &catalog).await.seqs[0];
    assert!(ended < published && published < edited);

    for list in [
        takedowns(&f.store, 0, today, None).await.unwrap(),
        index.list(&f.store, 0, today, None).await.unwrap(),
    ] {
        assert_eq!(list.takedowns.len(), 1, "{list:?}");
        let entry = &list.takedowns[0];
        assert_eq!((entry.derivative, entry.published_seq), (job, published));
        assert_eq!(entry.reason, TakedownReason::NotParticipating);
        assert_eq!((entry.event_seq, entry.effective), (ended, today));
        assert_eq!(entry.proof.leaf_index, ended);
    }
    // --since: kept while its cause or its publication is at or after SEQ.
    let store: &dyn EventStore = &f.store;
    let listed_since = |seq| async move {
        takedowns(store, seq, today, None)
            .await
            .unwrap()
            .takedowns
            .len()
    };
    assert_eq!(listed_since(published).await, 1);
    assert_eq!(listed_since(published + 1).await, 0);

    // Marks: only from the day participation ended.
    let size = f.store.size().await.unwrap();
    let yesterday = CalendarDate(today.0.previous_day().unwrap());
    assert_eq!(
        today_of(&f.store).await,
        today,
        "the test ran across midnight"
    );
    assert!(marks(&f.store, size, yesterday).await.unwrap().is_empty());
    let marked = marks(&f.store, size, today).await.unwrap();
    assert_eq!(marked[&job].event_seq, ended);

    // Participation resumed: nothing to take down.
    catalog["recordings"][0]["licence"]["participating"] = json!(true);
    import_catalog(&f.store, &catalog).await;
    assert!(index
        .list(&f.store, 0, today, None)
        .await
        .unwrap()
        .takedowns
        .is_empty());
}
