//! Shared fixtures of the projections integration tests: a store in a
//! temporary directory, a catalog, derivatives appended directly.
#![allow(dead_code)]

use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::store::{AppendRequest, EventStore, ExpectedVersion};
use ledger::NewEvent;
use projections::catalog::CatalogDocument;
use projections::runner::Projections;
use projections::usage::parse_usage_csv;
use projections::usage_import::{import_usage, UsageImport};
use schemas::generation::{
    generation_stream, GenerationRequested, RecipeKind, DERIVATIVE_PUBLISHED,
};
use schemas::ContentHash;
use serde_json::json;
use uuid::Uuid;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
    pub projections: Projections,
}

pub fn open() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(SqliteConfig::new(dir.path(), "test.example/projections")).unwrap();
    let projections = Projections::open(store.database_path()).unwrap();
    Fixture {
        dir,
        store,
        projections,
    }
}

/// A content hash standing in for a file's: SHA-256 of its name.
pub fn fake_hash(name: &str) -> ContentHash {
    use sha2::{Digest, Sha256};
    ContentHash::from_sha256(Sha256::digest(name.as_bytes()).into())
}

pub fn catalog_json(master_label: &str, master_singer: &str) -> serde_json::Value {
    json!({
        "parties": [
            {"id": "label", "name": "Blue Label Records", "role": "label"},
            {"id": "singer", "name": "Ana Singer", "role": "artist"},
            {"id": "w1", "name": "Writer One", "role": "songwriter"},
            {"id": "w2", "name": "Writer Two", "role": "songwriter"},
            {"id": "w3", "name": "Writer Three, Jr.", "role": "songwriter"}
        ],
        "works": [{"iswc": "T-034524680-1", "title": "Song",
                   "publishing_splits": [{"party": "w1", "share": "0.333333"},
                                         {"party": "w2", "share": "0.333333"},
                                         {"party": "w3", "share": "0.333334"}]}],
        "recordings": [{"isrc": "GBAYE0601498", "title": "Song", "work": "T-034524680-1",
                        "master_splits": [{"party": "label", "share": master_label},
                                          {"party": "singer", "share": master_singer}],
                        "stems": {"vocals": "vocals.wav", "drums": "drums.wav"}}],
        "voice_models": [{"id": "vm1", "artist": "singer", "consent": {"granted": true, "reference": "C-2026-1"},
                          "training_stems": ["vocals.wav"],
                          "likeness_splits": [{"party": "singer", "share": "1"}]}],
        "policy": {"id": "v1", "platform_share": "0.30", "creator_share": "0.20", "master_share": "0.5"}
    })
}

pub async fn import_catalog(
    store: &dyn EventStore,
    document: &serde_json::Value,
) -> projections::catalog::CatalogImport {
    let catalog = CatalogDocument::from_json(&document.to_string())
        .unwrap()
        .validate(&mut |path| Ok(fake_hash(path)))
        .unwrap();
    catalog.import(store).await.unwrap()
}

/// A generation job's request and its one step, as the engine appends them
/// before the publication: the fold accepts a derivative only after both.
pub fn job_start(job: Uuid, requested_by: &str) -> [NewEvent; 2] {
    let mut requested = GenerationRequested::unchanged_remix(job, "GBAYE0601498", requested_by);
    requested.recipe.kind = RecipeKind::Cover;
    requested.recipe.voice_model = Some("vm1".into());
    requested.stems = [("vocals".to_string(), fake_hash("vocals.wav"))].into();
    requested
        .opening_events()
        .map(|(event_type, data)| NewEvent::new(event_type, data))
}

pub fn derivative_event(
    derivative: Uuid,
    requested_by: &str,
    attribution: serde_json::Value,
) -> NewEvent {
    NewEvent::new(
        DERIVATIVE_PUBLISHED,
        json!({
            "job": derivative, "derivative": derivative, "recording": "GBAYE0601498",
            "requested_by": requested_by, "recipe": {"op": "cover", "voice": "vm1"},
            "output": fake_hash(&format!("{derivative}.mp3")), "output_pcm": fake_hash(&format!("{derivative}.pcm")),
            "duration_ms": 180000, "attribution": attribution
        }),
    )
}

/// Appends a whole generation job (its request, a step and the derivative's
/// publication); returns the publication's seq.
pub async fn publish(
    store: &dyn EventStore,
    derivative: Uuid,
    requested_by: &str,
    attribution: serde_json::Value,
) -> u64 {
    let mut events = Vec::from(job_start(derivative, requested_by));
    events.push(derivative_event(derivative, requested_by, attribution));
    store
        .append(AppendRequest::new(
            generation_stream(derivative),
            ExpectedVersion::Exact(0),
            events,
        ))
        .await
        .unwrap()[2]
        .seq
}

pub const HEADER: &str = "line_id,period,derivative,territory,currency,streams,gross,reverses\n";

pub async fn import_csv(
    fixture: &mut Fixture,
    rows: &str,
) -> Result<UsageImport, projections::usage_import::UsageImportError> {
    let lines = parse_usage_csv(format!("{HEADER}{rows}").as_bytes())?;
    import_usage(&fixture.store, &mut fixture.projections, lines).await
}
