//! The C2SP tlog-tiles read API under `/tlog/`, in-process against the
//! router: public, the checkpoint `/v1/checkpoint` serves, tiles that
//! rebuild its root, the right status for malformed paths and for tiles
//! beyond the tree, and the cache headers each resource calls for. Also the
//! leaf limit as the API refuses it.

mod in_process;

use in_process::Api;
use ledger::store::{AppendRequest, ExpectedVersion};
use ledger::tile::{encoding, new_entry_bundles, new_hash_tiles, verify::TileHashes};
use ledger::NewEvent;
use ledgerline::api::auth::Role;
use serde_json::json;

/// An API whose log holds `events` events and a checkpoint of them all.
async fn api_with(events: u64) -> Api {
    let api = Api::open().await;
    let store = &api.state.store;
    let all: Vec<NewEvent> = (0..events)
        .map(|n| NewEvent::new("test.tick", json!({ "n": n })))
        .collect();
    for chunk in all.chunks(1000) {
        store
            .append(AppendRequest::new(
                "s",
                ExpectedVersion::Any,
                chunk.to_vec(),
            ))
            .await
            .unwrap();
    }
    store.checkpoint_now().await.unwrap();
    api
}

#[tokio::test]
async fn the_tlog_checkpoint_is_the_checkpoint_the_log_serves() {
    let api = api_with(3).await;
    let tlog = api.get("/tlog/checkpoint", None).await;
    let v1 = api.get("/v1/checkpoint", None).await;
    assert_eq!(tlog.status, 200);
    assert_eq!(tlog.body, v1.body);
    assert_eq!(tlog.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(tlog.headers["cache-control"], "public, max-age=5");
}

#[tokio::test]
async fn tiles_and_bundles_served_without_a_key_rebuild_the_signed_root() {
    let api = api_with(600).await;
    let checkpoint = api.state.store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.size, 600);
    let mut tiles = TileHashes::new(600);
    for tile in new_hash_tiles(0, 600) {
        let reply = api.get(&format!("/tlog/{}", tile.path()), None).await;
        assert_eq!(reply.status, 200, "{tile}");
        assert_eq!(reply.headers["content-type"], "application/octet-stream");
        let cache = if tile.is_full() {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=60"
        };
        assert_eq!(reply.headers["cache-control"], cache, "{tile}");
        let hashes = encoding::decode_hash_tile(&tile, &reply.body).unwrap();
        tiles.insert(tile, hashes).unwrap();
    }
    tiles.verify(&checkpoint.root).unwrap();
    let mut seq = 0;
    for bundle in new_entry_bundles(0, 600) {
        let reply = api.get(&format!("/tlog/{}", bundle.path()), None).await;
        assert_eq!(reply.status, 200, "{bundle}");
        for leaf in encoding::decode_entry_bundle(&bundle, &reply.body).unwrap() {
            assert_eq!(tiles.leaf_hash(seq), Some(ledger::merkle::leaf_hash(leaf)));
            seq += 1;
        }
    }
    assert_eq!(seq, 600);
    // A full tile comes from memory the second time, byte for byte.
    let again = api.get("/tlog/tile/0/001", None).await;
    let first = api.get("/tlog/tile/0/001", None).await;
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn malformed_tile_paths_are_400() {
    let api = api_with(300).await;
    for path in [
        "/tlog/tile/0/1",
        "/tlog/tile/00/000",
        "/tlog/tile/0/000.p/0",
        "/tlog/tile/0/000.p/256",
        "/tlog/tile/0/001.p/044/",
        "/tlog/tile/0/x000/001",
        "/tlog/tile/64/000",
        "/tlog/tile/entries/x001",
        "/tlog/tile/data/000",
        "/tlog/tile/0%2F000",
    ] {
        let reply = api.get(path, None).await;
        assert_eq!(reply.refusal(), (400, "bad_request".into()), "{path}");
    }
}

#[tokio::test]
async fn tiles_beyond_the_tree_are_404() {
    let api = api_with(300).await;
    for path in [
        "/tlog/tile/0/001",
        "/tlog/tile/0/001.p/45",
        "/tlog/tile/0/002.p/1",
        "/tlog/tile/1/000",
        "/tlog/tile/1/000.p/2",
        "/tlog/tile/2/000.p/1",
        "/tlog/tile/63/000.p/1",
        "/tlog/tile/entries/001",
        "/tlog/tile/entries/001.p/45",
    ] {
        let reply = api.get(path, None).await;
        assert_eq!(reply.refusal(), (404, "not_found".into()), "{path}");
    }
    // The edge itself, and a narrower view of it, are there.
    assert_eq!(api.get("/tlog/tile/0/001.p/44", None).await.status, 200);
    assert_eq!(api.get("/tlog/tile/0/001.p/43", None).await.status, 200);
    assert_eq!(api.get("/tlog/tile/1/000.p/1", None).await.status, 200);
}

#[tokio::test]
async fn a_leaf_over_65535_bytes_is_refused_with_its_own_code_and_nothing_written() {
    let api = api_with(0).await;
    let admin = api.key(Role::Admin, None).await;
    let append = |length: usize| json!({"type": "t", "data": {"x": "y".repeat(length)}});
    let first = api
        .post_json("/v1/streams/a/events", Some(&admin), &append(0))
        .await;
    assert_eq!(first.status, 201);
    let store = &api.state.store;
    let empty_leaf = store.read_range(0, 1).await.unwrap()[0].leaf.len();
    let fitting = ledger::envelope::LEAF_SIZE_BYTES_MAX - empty_leaf;
    let refused = api
        .post_json("/v1/streams/b/events", Some(&admin), &append(fitting + 1))
        .await;
    assert_eq!(refused.refusal(), (422, "leaf_too_large".into()));
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("65535"));
    assert_eq!(store.size().await.unwrap(), 1);
    let accepted = api
        .post_json("/v1/streams/b/events", Some(&admin), &append(fitting))
        .await;
    assert_eq!(accepted.status, 201);
    assert_eq!(store.read_range(1, 1).await.unwrap()[0].leaf.len(), 65_535);
}
