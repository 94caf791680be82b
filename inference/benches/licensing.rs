//! Licensing decisions per second against a catalog of 100,000 recordings
//! (`LICENSING_BENCH_RECORDINGS` to change it) in an SQLite log in a
//! temporary directory. A decision is what a generation request costs the
//! server before any audio is touched: catching its [`LicensingIndex`] up
//! with the log (one read of the log's size when nothing changed), reading
//! the request's recording and voice model from it, and checking every term
//! ([`LicensedInputs::license`]). Requests pick recordings at random, half
//! remixes and half covers, with tempo, key and territory drawn so that
//! some are refused. The baseline, run in the same process, is one read of
//! the recording's stream; the row beside it decides by reading the
//! catalog's streams ([`LicensedInputs::from_log`], as the one-shot
//! `ledgerline generate` does). Goal: at least 50,000 decisions/s. Run with
//! `scripts/bench licensing`.

use inference::pipeline::licensing::today;
use inference::pipeline::{LicensedInputs, LicensingIndex, ValidRequest};
use ledger::store::sqlite::{SqliteConfig, SqliteStore};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use schemas::catalog::{self, Consent, Recording, Split, Stems, VoiceModel};
use schemas::generation::{Recipe, RecipeKind, VoiceModelTrained, VOICE_MODEL_TRAINED};
use schemas::licence::{ConsentScope, LicenceTerms, RateBounds, SemitoneBounds};
use schemas::ContentHash;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Decisions are timed for this long, after a warm-up of the same length.
const TIMED: Duration = Duration::from_secs(3);
/// Voice models in the catalog; covers pick one at random.
const VOICE_MODELS: usize = 100;
/// Events per append while the catalog is written.
const BATCH: usize = 1_000;
/// Decision rate the issue asks for.
const GOAL_PER_S: f64 = 50_000.0;

fn hash(n: u64) -> ContentHash {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    ContentHash::from_sha256(digest)
}

fn isrc(n: usize) -> String {
    format!("ZZLL0{n:07}")
}

/// A small deterministic generator, so every run asks the same requests.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn terms(n: usize) -> LicenceTerms {
    LicenceTerms {
        participating: n % 20 != 0,
        kinds: Some(vec![RecipeKind::Remix, RecipeKind::Cover]),
        stems: Some(
            ["vocals", "drums", "bass", "other"]
                .map(String::from)
                .to_vec(),
        ),
        tempo_rate: Some(RateBounds {
            min: rust_decimal::Decimal::new(8, 1),
            max: rust_decimal::Decimal::new(125, 2),
        }),
        semitones: Some(SemitoneBounds { min: -3, max: 3 }),
        voice: Some(n % 7 != 0),
        territories: Some(if n % 3 == 0 {
            vec!["US".into(), "CA".into()]
        } else {
            vec!["WW".into()]
        }),
        from: Some("2020-01-01".parse().expect("a date")),
        until: Some("2099-12-31".parse().expect("a date")),
    }
}

async fn append(store: &SqliteStore, requests: Vec<AppendRequest>) {
    store.append_all(requests).await.expect("an append");
}

/// Writes the catalog: `recordings` recordings with terms, and the voice
/// models, consented and trained.
async fn write_catalog(store: &SqliteStore, recordings: usize) {
    let split = || {
        vec![Split {
            party: "label".into(),
            share: 1.into(),
        }]
    };
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..recordings {
        let recording = Recording {
            isrc: isrc(n),
            title: format!("Recording {n}"),
            work: "T-034524680-1".into(),
            master_splits: split(),
            stems: Stems {
                vocals: Some(hash(4 * n as u64)),
                drums: Some(hash(4 * n as u64 + 1)),
                bass: Some(hash(4 * n as u64 + 2)),
                other: Some(hash(4 * n as u64 + 3)),
                mixture: None,
            },
            licence: Some(terms(n)),
        };
        batch.push(AppendRequest::new(
            catalog::recording_stream(&recording.isrc),
            ExpectedVersion::Exact(0),
            vec![NewEvent::new(
                catalog::RECORDING_REGISTERED,
                serde_json::to_value(&recording).expect("a payload"),
            )],
        ));
        if batch.len() == BATCH {
            append(store, std::mem::take(&mut batch)).await;
        }
        if (n + 1) % 20_000 == 0 {
            eprintln!(
                "  catalog: {} of {recordings} recordings written ({:.1} s)",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    for v in 0..VOICE_MODELS {
        let id = format!("voice-{v}");
        let model = VoiceModel {
            id: id.clone(),
            artist: format!("artist-{v}"),
            consent: Consent {
                granted: v % 10 != 0,
                reference: Some(format!("consent/{v}")),
                scope: Some(ConsentScope {
                    kinds: Some(vec![RecipeKind::Cover]),
                    territories: Some(vec!["WW".into()]),
                    until: Some("2099-12-31".parse().expect("a date")),
                }),
            },
            training_stems: vec![hash(1 << 40 | v as u64)],
            likeness_splits: split(),
        };
        let trained = VoiceModelTrained {
            voice_model: id.clone(),
            artist: model.artist.clone(),
            consent_reference: model.consent.reference.clone(),
            training_stems: model.training_stems.clone(),
            artifact: hash(1 << 41 | v as u64),
            kernels: Vec::new(),
            backend: schemas::generation::ComputeBackend::Cpu,
            adapter: None,
            frames_total: 1,
            frames_voiced: 1,
            cells_filled: 1,
            cells_total: 1,
            duration_ms: 1,
        };
        batch.push(AppendRequest::new(
            catalog::voice_model_stream(&id),
            ExpectedVersion::Exact(0),
            vec![NewEvent::new(
                catalog::VOICE_MODEL_REGISTERED,
                serde_json::to_value(&model).expect("a payload"),
            )],
        ));
        batch.push(AppendRequest::new(
            schemas::generation::voice_training_stream(&id),
            ExpectedVersion::Exact(0),
            vec![NewEvent::new(
                VOICE_MODEL_TRAINED,
                serde_json::to_value(&trained).expect("a payload"),
            )],
        ));
    }
    append(store, batch).await;
    eprintln!(
        "  catalog: {recordings} recordings and {VOICE_MODELS} trained voice models written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A request as a subscriber would send it, drawn from `rng`.
fn request(rng: &mut SplitMix, recordings: usize) -> ValidRequest {
    let cover = rng.below(2) == 0;
    ValidRequest {
        recording: isrc(rng.below(recordings)),
        requested_by: "creator".into(),
        territory: ["US", "GB", "FR", "JP"][rng.below(4)].into(),
        recipe: Recipe {
            kind: if cover {
                RecipeKind::Cover
            } else {
                RecipeKind::Remix
            },
            stems: BTreeMap::new(),
            tempo_rate_ppm: [800_000, 1_000_000, 1_250_000, 1_300_000][rng.below(4)],
            semitones_cents: [-400, -300, 0, 300][rng.below(4)],
            voice_model: cover.then(|| format!("voice-{}", rng.below(VOICE_MODELS))),
        },
    }
}

/// Runs `work` on every core for [`TIMED`] after as long a warm-up, and
/// returns (operations per second, accepted share of them).
fn measure<F, Fut>(runtime: &tokio::runtime::Runtime, name: &str, work: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = |duration: Duration| {
        let tasks: Vec<_> = (0..threads)
            .map(|t| {
                let work = work.clone();
                runtime.spawn(async move {
                    let started = Instant::now();
                    let (mut done, mut accepted) = (0u64, 0u64);
                    let mut i = t as u64;
                    while started.elapsed() < duration {
                        accepted += u64::from(work(i).await);
                        done += 1;
                        i += threads as u64;
                    }
                    (done, accepted)
                })
            })
            .collect();
        runtime.block_on(async {
            let mut total = (0, 0);
            for task in tasks {
                let (done, accepted) = task.await.expect("a bench task");
                total = (total.0 + done, total.1 + accepted);
            }
            total
        })
    };
    run(TIMED);
    let (done, accepted) = run(TIMED);
    let per_s = done as f64 / TIMED.as_secs_f64();
    println!(
        "{name:<38} {per_s:>12.0} /s   ({done} in {:.0} s on {threads} tasks, {:.0}% accepted)",
        TIMED.as_secs_f64(),
        100.0 * accepted as f64 / done.max(1) as f64
    );
    per_s
}

fn main() {
    let recordings: usize = std::env::var("LICENSING_BENCH_RECORDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(
        SqliteStore::open(SqliteConfig::new(
            dir.path(),
            ledger::checkpoint::DEFAULT_ORIGIN,
        ))
        .expect("a log"),
    );
    println!("licensing decisions against {recordings} recordings in an SQLite log");
    runtime.block_on(write_catalog(&store, recordings));
    let requests: Arc<Vec<ValidRequest>> = {
        let mut rng = SplitMix(0x5eed);
        Arc::new((0..65_536).map(|_| request(&mut rng, recordings)).collect())
    };
    let day = today();

    let baseline = {
        let (store, requests) = (store.clone(), requests.clone());
        measure(
            &runtime,
            "baseline: read the recording's stream",
            move |i| {
                let (store, requests) = (store.clone(), requests.clone());
                async move {
                    let request = &requests[i as usize % requests.len()];
                    let stream = catalog::recording_stream(&request.recording);
                    !store
                        .read_stream(&stream, 0, 16)
                        .await
                        .expect("a read")
                        .is_empty()
                }
            },
        )
    };
    let from_streams = {
        let (store, requests) = (store.clone(), requests.clone());
        measure(
            &runtime,
            "decision reading the catalog's streams",
            move |i| {
                let (store, requests) = (store.clone(), requests.clone());
                async move {
                    let request = &requests[i as usize % requests.len()];
                    let inputs = LicensedInputs::from_log(store.as_ref(), request)
                        .await
                        .expect("a read");
                    inputs.license(request, day).is_ok()
                }
            },
        )
    };
    let index = Arc::new(LicensingIndex::new());
    let started = Instant::now();
    runtime
        .block_on(index.catch_up(store.as_ref()))
        .expect("a catch-up");
    println!(
        "{:<38} {:>12.2} s (the server's first catch-up)",
        "index: fold the catalog from the log",
        started.elapsed().as_secs_f64()
    );
    let decisions = {
        let (store, requests, index) = (store.clone(), requests.clone(), index.clone());
        measure(&runtime, "decision: catch up, check terms", move |i| {
            let (store, requests, index) = (store.clone(), requests.clone(), index.clone());
            async move {
                let request = &requests[i as usize % requests.len()];
                let inputs = index
                    .inputs_now(store.as_ref(), request)
                    .await
                    .expect("a catch-up");
                inputs.license(request, day).is_ok()
            }
        })
    };
    // The takedown list folds the whole log each time it is asked.
    let size = runtime.block_on(store.size()).expect("a size");
    let started = Instant::now();
    let list = runtime
        .block_on(projections::takedowns::takedowns(
            store.as_ref(),
            0,
            day,
            None,
        ))
        .expect("a takedown list");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{:<38} {:>12.0} events/s ({size} events in {:.2} s, {} entries)",
        "takedown list: fold the log once",
        size as f64 / seconds,
        seconds,
        list.takedowns.len()
    );
    // A server's index: folded once, then caught up on each request.
    let index = projections::takedowns::TakedownIndex::default();
    runtime
        .block_on(index.list(store.as_ref(), 0, day, None))
        .expect("a takedown list");
    let started = Instant::now();
    let rounds = 1_000;
    for _ in 0..rounds {
        runtime
            .block_on(index.list(store.as_ref(), 0, day, None))
            .expect("a takedown list");
    }
    println!(
        "{:<38} {:>12.3} ms per request (mean of {rounds})",
        "takedown list from the server's index",
        started.elapsed().as_secs_f64() * 1e3 / f64::from(rounds)
    );
    println!(
        "\ndecisions / baseline read: {:.2} (reading the streams instead: {:.2}); decisions / goal ({GOAL_PER_S:.0}/s): {:.2} ({})",
        decisions / baseline,
        from_streams / baseline,
        decisions / GOAL_PER_S,
        if decisions >= GOAL_PER_S { "met" } else { "missed" }
    );
}
