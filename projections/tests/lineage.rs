//! Lineage: by derivative id, by file hash, by PCM hash, as of a log prefix;
//! every cited event's inclusion proof verifies against the cited signed
//! checkpoint; an unknown file gets a clear "no lineage" answer.

mod common;

use common::*;
use ledger::store::EventStore;
use projections::lineage::{lineage, render_text, AudioIdentity, LineageAnswer, LineageQuery};
use serde_json::json;
use uuid::Uuid;

const D1: Uuid = Uuid::from_u128(0x6f1c1c1e_1111_4a4a_8b8b_0000000000d1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_answers_with_verifiable_proofs() {
    let mut f = open();
    import_catalog(&f.store, &catalog_json("0.75", "0.25")).await;
    let before_publication = f.store.size().await.unwrap() + 2;
    publish(&f.store, D1, "u1", json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 7000}, {"kind": "voice", "ref": "vm1", "weight_bp": 3000}])).await;
    let d = D1.to_string();
    import_csv(
        &mut f,
        &format!("L1,2026-03,{d},US,USD,10,10.00,\nL2,2026-03,{d},JP,JPY,10,500,\n"),
    )
    .await
    .unwrap();

    let answer = lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Derivative(D1),
        None,
    )
    .await
    .unwrap();
    let LineageAnswer::Found(found) = &answer else {
        panic!("expected a lineage")
    };
    assert_eq!(found.matched_by, "derivative-id");
    assert_eq!(found.derivative.requested_by, "u1");
    assert_eq!(
        found.generation_steps.len(),
        3,
        "the request, a step and the publication"
    );
    assert_eq!(
        found.recordings["GBAYE0601498"].data["master_splits"][0]["party"],
        "label"
    );
    assert_eq!(
        found.works["T-034524680-1"].data["publishing_splits"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(found.voice_models["vm1"].data["consent"]["granted"], true);
    assert_eq!(
        found.voice_models["vm1"].data["training_stems"][0],
        fake_hash("vocals.wav").as_str()
    );
    assert_eq!(found.usage.len(), 2);
    let usd = found.revenue.iter().find(|r| r.currency == "USD").unwrap();
    assert_eq!(usd.gross.as_deref(), Some("10.00"));
    let singer = usd.parties.iter().find(|p| p.party == "singer").unwrap();
    // Voice 5.00 x 0.3 = 1.50 likeness, master 3.50 x 0.5 x 0.25 = 0.4375.
    assert_eq!(singer.exact, "1.9375");
    assert_eq!(singer.components["likeness vm1"], "1.5");

    // Every cited event verifies against the signed checkpoint.
    let checkpoint = f
        .store
        .verifier()
        .verify_checkpoint(&found.checkpoint.note)
        .unwrap();
    assert_eq!(checkpoint.size, found.checkpoint.size);
    assert_eq!(hex::encode(checkpoint.root), found.checkpoint.root_hash);
    // derivative, 2 steps, recording, work, voice model, 2 usage lines.
    assert_eq!(found.cited.len(), 8);
    for cited in &found.cited {
        assert_eq!(
            cited.proof,
            f.store
                .prove_inclusion(cited.seq, checkpoint.size)
                .await
                .unwrap(),
            "the batched proof is the store's"
        );
        let leaf_hash = ledger::merkle::leaf_hash(cited.leaf.as_bytes());
        assert_eq!(leaf_hash, cited.proof.leaf_hash);
        ledger::merkle::verify_inclusion(
            cited.seq,
            checkpoint.size,
            &leaf_hash,
            &cited.proof.proof,
            &checkpoint.root,
        )
        .unwrap();
    }
    assert!(render_text(&answer).contains("requested by u1"));

    // By file hash, by PCM hash, and a file never generated here.
    let by_file = AudioIdentity {
        file_hash: fake_hash(&format!("{D1}.mp3")).to_string(),
        pcm_hash: None,
        fingerprint: None,
    };
    let LineageAnswer::Found(found) = lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Audio(by_file),
        None,
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (found.matched_by.as_str(), found.derivative.derivative),
        ("file-hash", D1)
    );
    let by_pcm = AudioIdentity {
        file_hash: fake_hash("re-encoded.ogg").to_string(),
        pcm_hash: Some(fake_hash(&format!("{D1}.pcm")).to_string()),
        fingerprint: None,
    };
    let LineageAnswer::Found(found) = lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Audio(by_pcm),
        None,
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(found.matched_by, "pcm-hash");
    let stranger = AudioIdentity {
        file_hash: fake_hash("stranger.wav").to_string(),
        pcm_hash: None,
        fingerprint: None,
    };
    let answer = lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Audio(stranger),
        None,
    )
    .await
    .unwrap();
    assert!(
        render_text(&answer)
            .starts_with("no lineage: no derivative published in this log has file hash sha256:"),
        "{}",
        render_text(&answer)
    );

    // As of the prefix before the publication, the derivative does not exist.
    let answer = lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Derivative(D1),
        Some(before_publication),
    )
    .await
    .unwrap();
    assert!(matches!(answer, LineageAnswer::NotFound { .. }));
    assert!(lineage(
        &f.store,
        &mut f.projections,
        &LineageQuery::Derivative(D1),
        Some(10_000)
    )
    .await
    .is_err());
}
