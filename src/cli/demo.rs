//! `ledgerline demo`: the main job, end to end, on the embedded store.
//!
//! Renders the synthesized sample catalog, imports it, runs two generation
//! jobs on the generation engine (a remix and a two-recording mashup, each
//! step recorded in the log with its inputs, output, kernel and backend),
//! imports a usage report, prints royalty statements and a lineage answer,
//! then proves one event against a signed checkpoint and audits the log.
//! The user-facing steps run the same commands a user would type.

use super::Context;
use anyhow::Context as _;
use clap::{Args, Parser};
use inference::artifacts::{Artifact, ArtifactStore};
use inference::kernels::mix::{self, StemInput};
use inference::sample_catalog::{self, TrackSpec};
use inference::{Audio, Backend, Engine};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use uuid::Uuid;

#[derive(Args)]
pub struct DemoArgs {
    /// Length of each rendered sample recording, in seconds.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// Where the generation kernels run: gpu, cpu or auto (GPU when an adapter exists).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// The demo's period and the party who requests the derivatives.
const PERIOD: &str = "2026-10";
const CREATOR: &str = "creator-sam";
/// Loudness target of every derivative (streaming platforms' usual -14 LUFS).
const TARGET_LUFS: f64 = -14.0;

/// The catalog parties, works and voice model, with their splits.
fn catalog_document(tracks: &[(TrackSpec, Vec<(String, Artifact)>)]) -> Value {
    let stem_paths = |stems: &[(String, Artifact)]| -> Value {
        let path = |name: &str| {
            stems
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.path.display().to_string())
        };
        // The catalog's four stem slots; the sample catalog's chords are "other".
        json!({"vocals": path("vocals"), "drums": path("drums"), "bass": path("bass"), "other": path("chords")})
    };
    let (first, second) = (&tracks[0], &tracks[1]);
    json!({
        "parties": [
            {"id": "label-copper", "name": "Copper Records", "role": "label"},
            {"id": "artist-mara", "name": "Mara Quell", "role": "artist"},
            {"id": "artist-oden", "name": "Oden Vale", "role": "artist"},
            {"id": "pub-northstar", "name": "Northstar Publishing", "role": "publisher"},
            {"id": "writer-ines", "name": "Inès Ferreira", "role": "songwriter"},
            {"id": "writer-tomas", "name": "Tomás Lind", "role": "songwriter"}
        ],
        "works": [
            {"iswc": "T-034524680-1", "title": first.0.title, "publishing_splits": [
                {"party": "pub-northstar", "share": "0.5"},
                {"party": "writer-ines", "share": "0.3333333333"},
                {"party": "writer-tomas", "share": "0.1666666667"}]},
            {"iswc": "T-123456789-4", "title": second.0.title, "publishing_splits": [
                {"party": "pub-northstar", "share": "0.4"},
                {"party": "writer-tomas", "share": "0.6"}]}
        ],
        "recordings": [
            {"isrc": first.0.isrc, "title": first.0.title, "work": "T-034524680-1",
             "master_splits": [{"party": "label-copper", "share": "0.8"}, {"party": "artist-mara", "share": "0.2"}],
             "stems": stem_paths(&first.1)},
            {"isrc": second.0.isrc, "title": second.0.title, "work": "T-123456789-4",
             "master_splits": [{"party": "label-copper", "share": "0.75"}, {"party": "artist-oden", "share": "0.25"}],
             "stems": stem_paths(&second.1)}
        ],
        "voice_models": [
            {"id": "voice-mara-v1", "artist": "artist-mara", "consent": {"granted": true, "reference": "consent/2026/0142"},
             "training_stems": [stem_paths(&first.1)["vocals"]],
             "likeness_splits": [{"party": "artist-mara", "share": "1"}]}
        ],
        "policy": {"id": "policy-v1", "platform_share": "0.30", "creator_share": "0.10", "master_share": "0.50"}
    })
}

pub async fn run(args: DemoArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let demo_dir = context.data_dir.join("demo");
    std::fs::create_dir_all(&demo_dir)
        .with_context(|| format!("cannot create {}", demo_dir.display()))?;
    let artifacts = ArtifactStore::open(&context.data_dir)?;
    let engine = Engine::select(args.backend)?;
    println!(
        "ledgerline demo in {} (generation backend: {}{})\n",
        context.data_dir.display(),
        engine.backend_name(),
        engine
            .adapter()
            .map(|a| format!(", adapter {a}"))
            .unwrap_or_default()
    );

    println!(
        "== 1. Render the sample catalog ({} s per recording)",
        args.seconds
    );
    let mut tracks = Vec::new();
    for spec in sample_catalog::tracks().into_iter().take(2) {
        let mut stems = Vec::new();
        for stem in spec.render(args.seconds) {
            let artifact = artifacts.write_wav(&stem.audio)?;
            stems.push((stem.name.to_string(), artifact));
        }
        println!(
            "   {} \"{}\": {} stems stored as artifacts",
            spec.isrc,
            spec.title,
            stems.len()
        );
        tracks.push((spec, stems));
    }

    println!("\n== 2. Import the catalog (parties, works, recordings, a consenting artist's voice model, policy)");
    let catalog_path = demo_dir.join("catalog.json");
    std::fs::write(
        &catalog_path,
        serde_json::to_string_pretty(&catalog_document(&tracks))?,
    )?;
    run_command(
        context,
        &["catalog", "import", &catalog_path.display().to_string()],
    )
    .await?;

    println!("\n== 3. Generate: a remix and a mashup, every step recorded in the log");
    let (first, second) = (&tracks[0], &tracks[1]);
    let remix = generate(
        context,
        &artifacts,
        &engine,
        &first.0,
        json!({"kind": "remix", "stems": {"drums": {"gain_db": -3.0}, "vocals": {"mute": true}}}),
        first
            .1
            .iter()
            .filter(|(name, _)| name != "vocals")
            .map(|(name, a)| {
                (
                    first.0.isrc,
                    name.clone(),
                    a.clone(),
                    if name == "drums" { -3.0 } else { 0.0 },
                )
            })
            .collect(),
        &demo_dir,
    )
    .await?;
    let mashup = generate(
        context,
        &artifacts,
        &engine,
        &first.0,
        json!({"kind": "remix", "mashup_with": second.0.isrc, "stems": {"vocals": {"from": first.0.isrc}, "drums": {"from": second.0.isrc}}}),
        first
            .1
            .iter()
            .filter(|(name, _)| name == "vocals" || name == "chords")
            .map(|(name, a)| (first.0.isrc, name.clone(), a.clone(), 0.0))
            .chain(second.1.iter().filter(|(name, _)| name == "drums" || name == "bass").map(|(name, a)| (second.0.isrc, name.clone(), a.clone(), -2.0)))
            .collect(),
        &demo_dir,
    )
    .await?;

    println!("\n== 4. Import a usage report (USD and JPY, with one refund)");
    let usage_path = demo_dir.join(format!(
        "usage-{}.csv",
        &remix.job.simple().to_string()[..8]
    ));
    let tag = &remix.job.simple().to_string()[..8];
    let usage = format!(
        "line_id,period,derivative,territory,currency,streams,gross,reverses\n\
         {tag}-1,{PERIOD},{r},US,USD,120000,480.00,\n\
         {tag}-2,{PERIOD},{r},GB,USD,8000,31.337,\n\
         {tag}-3,{PERIOD},{r},JP,JPY,50000,21000,\n\
         {tag}-4,{PERIOD},{m},US,USD,40210,160.84,\n\
         {tag}-5,{PERIOD},{r},GB,USD,0,-31.337,{tag}-2\n",
        r = remix.job,
        m = mashup.job
    );
    std::fs::write(&usage_path, usage)?;
    run_command(
        context,
        &["usage", "import", &usage_path.display().to_string()],
    )
    .await?;

    println!(
        "\n== 5. Royalty statements for {PERIOD}, exact to the minor unit, citing a checkpoint"
    );
    for currency in ["USD", "JPY"] {
        let args = [
            "statements",
            "--period",
            PERIOD,
            "--currency",
            currency,
            "--format",
            "csv",
        ];
        run_command(context, &args).await?;
    }

    println!("\n== 6. A dispute: where did this file come from, and who was paid for it?");
    run_command(
        context,
        &[
            "lineage",
            &remix.output_copy.display().to_string(),
            "--format",
            "text",
        ],
    )
    .await?;

    println!("\n== 7. Prove the mashup's publication against the signed checkpoint");
    prove(context, mashup.published_seq).await?;

    println!("\n== 8. Audit the whole log");
    let code = run_command(context, &["verify"]).await?;
    println!("\nOutput audio is in {}", demo_dir.display());
    Ok(code)
}

/// Runs a ledgerline subcommand in this process, as a user would type it.
async fn run_command(context: &Context, args: &[&str]) -> anyhow::Result<ExitCode> {
    #[derive(Parser)]
    #[command(name = "ledgerline")]
    struct Command {
        #[command(subcommand)]
        command: crate::Command,
    }
    println!("$ ledgerline {}", args.join(" "));
    let parsed = Command::try_parse_from(std::iter::once("ledgerline").chain(args.iter().copied()))
        .map_err(|e| anyhow::anyhow!("demo command {args:?} is malformed: {e}"))?;
    let code = Box::pin(crate::dispatch(parsed.command, context)).await?;
    if code != ExitCode::SUCCESS {
        anyhow::bail!("`ledgerline {}` failed", args.join(" "));
    }
    Ok(code)
}

struct Generated {
    job: Uuid,
    published_seq: u64,
    output_copy: PathBuf,
}

/// Gain in millibels: gains enter events as integers, never floats.
fn millibels(gain_db: f64) -> i64 {
    (gain_db * 100.0).round() as i64
}

/// One generation job: mixdown of licensed stems (gains, loudness
/// normalization) with attribution measured on the audio, recorded as
/// requested, step and published events on the job's stream.
async fn generate(
    context: &Context,
    artifacts: &ArtifactStore,
    engine: &Engine,
    source: &TrackSpec,
    recipe: Value,
    stems: Vec<(&'static str, String, Artifact, f64)>,
    demo_dir: &Path,
) -> anyhow::Result<Generated> {
    let job = Uuid::new_v4();
    let stream = schemas::generation::generation_stream(job);
    let store = context.open_store().await?;
    store
        .append(AppendRequest::new(
            &stream,
            ExpectedVersion::Exact(0),
            vec![NewEvent::new(
                "generation.requested",
                json!({"job": job, "recording": source.isrc, "requested_by": CREATOR, "recipe": recipe}),
            )],
        ))
        .await?;

    let loaded: Vec<(Audio, f64)> = stems
        .iter()
        .map(|(_, _, artifact, gain)| Ok((artifacts.load(&artifact.file_hash)?.1, *gain)))
        .collect::<anyhow::Result<_>>()?;
    let inputs: Vec<StemInput<'_>> = loaded
        .iter()
        .map(|(audio, gain_db)| StemInput {
            audio,
            gain_db: *gain_db,
        })
        .collect();
    let started = Instant::now();
    let mixdown = mix::mixdown(engine, &inputs, Some(TARGET_LUFS))?;
    let duration_ms = started.elapsed().as_millis() as u64;
    let output = artifacts.write_wav(&mixdown.audio)?;

    // Attribution: each recording's share of the output's energy.
    let mut energy_by_recording: Vec<(&str, f64)> = Vec::new();
    for ((isrc, _, _, _), energy) in stems.iter().zip(&mixdown.stem_energy) {
        match energy_by_recording.iter_mut().find(|(r, _)| r == isrc) {
            Some((_, total)) => *total += energy,
            None => energy_by_recording.push((isrc, *energy)),
        }
    }
    let weights = inference::attribution::basis_points(
        &energy_by_recording
            .iter()
            .map(|(_, e)| *e)
            .collect::<Vec<_>>(),
    )?;
    let attribution: Vec<Value> = energy_by_recording
        .iter()
        .zip(&weights)
        .map(|((isrc, _), bp)| json!({"kind": "recording", "ref": isrc, "weight_bp": bp}))
        .collect();

    let adapter = engine.adapter().map(|a| json!({"name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver}));
    let step = json!({
        "job": job,
        "step": 1,
        "op": "mix",
        "params": {
            "gains_mb": stems.iter().map(|(_, name, _, gain)| json!({"stem": name, "gain_mb": millibels(*gain)})).collect::<Vec<_>>(),
            "target_lufs_centi": (TARGET_LUFS * 100.0).round() as i64,
            "measured_lufs_centi": (mixdown.loudness_lufs * 100.0).round() as i64,
        },
        "inputs": stems.iter().map(|(isrc, name, artifact, _)| json!({"recording": isrc, "stem": name, "hash": artifact.file_hash})).collect::<Vec<_>>(),
        "output": output.file_hash,
        "output_pcm": output.pcm_hash,
        "kernel": mix::SOURCE.source_hash(),
        "backend": engine.backend_name(),
        "adapter": adapter,
        "duration_ms": duration_ms,
    });
    let duration_audio_ms = (mixdown.audio.duration_s() * 1000.0).round() as u64;
    let published = json!({
        "job": job,
        "derivative": job,
        "recording": source.isrc,
        "requested_by": CREATOR,
        "recipe": recipe,
        "output": output.file_hash,
        "output_pcm": output.pcm_hash,
        "duration_ms": duration_audio_ms,
        "attribution": attribution,
    });
    let appended = store
        .append(AppendRequest::new(
            &stream,
            ExpectedVersion::Exact(1),
            vec![
                NewEvent::new("generation.step", step),
                NewEvent::new(schemas::generation::DERIVATIVE_PUBLISHED, published),
            ],
        ))
        .await?;
    drop(store);
    let output_copy = demo_dir.join(format!("{job}.wav"));
    std::fs::copy(&output.path, &output_copy)?;
    println!(
        "   job {job}: mix of {} stems on {} in {duration_ms} ms, {:.1} LUFS -> {TARGET_LUFS} LUFS, attribution {}",
        stems.len(),
        engine.backend_name(),
        mixdown.loudness_lufs,
        serde_json::to_string(&attribution)?
    );
    println!(
        "   derivative {job} published at seq {}, output {}",
        appended[1].seq,
        output_copy.display()
    );
    Ok(Generated {
        job,
        published_seq: appended[1].seq,
        output_copy,
    })
}

/// Fetches an inclusion proof and checks it the way an outside verifier
/// would: the note's signature with the published key, then the proof
/// against the note's root.
async fn prove(context: &Context, seq: u64) -> anyhow::Result<()> {
    let store = context.open_store_read_only().await?;
    let checkpoint = store
        .latest_checkpoint()
        .await?
        .context("the log has no checkpoint")?;
    let signed = store.verifier().verify_checkpoint(&checkpoint.note)?;
    let event = store
        .read_range(seq, 1)
        .await?
        .pop()
        .context("the event is missing")?;
    let proof = store.prove_inclusion(seq, signed.size).await?;
    let verified = ledger::merkle::verify_inclusion(
        seq,
        signed.size,
        &ledger::merkle::leaf_hash(&event.leaf),
        &proof.proof,
        &signed.root,
    );
    print!("{}", checkpoint.note);
    println!("verifier key: {}", store.verifier_key());
    println!(
        "inclusion proof of seq {seq} in tree size {} ({} hashes): {}",
        signed.size,
        proof.proof.len(),
        if verified.is_ok() {
            "verified"
        } else {
            "FAILED"
        }
    );
    verified.map_err(|e| anyhow::anyhow!("the inclusion proof did not verify: {e}"))
}
