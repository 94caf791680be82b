//! `ledgerline demo`: the main job, end to end, on the embedded store.
//!
//! Renders the synthesized sample catalog, imports it, trains the
//! consenting artist's voice model, runs remixes and a cover through the
//! generation pipeline (each step recorded in the log with its inputs,
//! output, kernels and backend; a request for an unlicensed voice is refused
//! and recorded), replays a step on the CPU twin, imports a usage report,
//! prints royalty statements and a lineage answer, then proves one event
//! against a signed checkpoint and audits the log. Output WAVs and their
//! spectrogram PNGs land in `<data dir>/demo/`. The user-facing steps run the
//! same commands a user would type.

use super::Context;
use anyhow::Context as _;
use clap::{Args, Parser};
use inference::artifacts::{Artifact, ArtifactStore};
use inference::pipeline::{
    train_voice_model, GenerationRequest, Generator, LicensedInputs, PipelineError,
};
use inference::sample_catalog::{self, TrackSpec};
use inference::{Audio, Backend, Engine};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Args)]
pub struct DemoArgs {
    /// Length of each rendered sample recording, in seconds (short clips
    /// keep the demo quick on the CPU twins).
    #[arg(long, default_value_t = 12.0)]
    seconds: f64,
    /// Where the generation kernels run: gpu, cpu or auto (GPU when an adapter exists).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// The demo's period and the party who requests the derivatives.
const PERIOD: &str = "2026-10";
const CREATOR: &str = "creator-sam";
/// The consenting artist's voice model in the demo catalog.
const VOICE_MODEL: &str = "voice-mara-v1";
/// Spectrogram images: 4 px per 100 ms of a 12 s clip, 0..22 kHz in 256 rows.
const SPECTROGRAM_PX: (u32, u32) = (480, 256);

/// The catalog parties, works and voice model, with their splits. The
/// document is written to `<data dir>/demo/`, and stem paths in a catalog
/// are read relative to the document, so each stem is named from there
/// (`../artifacts/...`): that holds whether the data directory was given
/// as a relative or an absolute path.
fn catalog_document(
    data_dir: &Path,
    tracks: &[(TrackSpec, Vec<(String, Artifact)>)],
    consent_reference: &str,
) -> Value {
    let from_demo_dir = |artifact: &Artifact| -> String {
        let inside_data_dir = artifact
            .path
            .strip_prefix(data_dir)
            .expect("artifacts are stored inside the data directory");
        Path::new("..").join(inside_data_dir).display().to_string()
    };
    let stem_paths = |stems: &[(String, Artifact)]| -> Value {
        let path = |name: &str| {
            stems
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| from_demo_dir(a))
        };
        // The catalog's four stem slots; the sample catalog's chords are "other".
        json!({"vocals": path("vocals"), "drums": path("drums"), "bass": path("bass"), "other": path("chords")})
    };
    let (first, second) = (&tracks[0], &tracks[1]);
    // Terms that run from the start of this year to the end of the next,
    // so the demo's requests fall inside them whenever it is run.
    let year = inference::pipeline::licensing::today().0.year();
    let (from, until) = (format!("{year}-01-01"), format!("{}-12-31", year + 1));
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
             "stems": stem_paths(&first.1),
             "licence": {"participating": true, "kinds": ["remix", "cover"],
                         "tempo_rate": {"min": "0.8", "max": "1.25"}, "semitones": {"min": -3, "max": 3},
                         "voice": true, "territories": ["WW"], "from": from, "until": until}},
            {"isrc": second.0.isrc, "title": second.0.title, "work": "T-123456789-4",
             "master_splits": [{"party": "label-copper", "share": "0.75"}, {"party": "artist-oden", "share": "0.25"}],
             "stems": stem_paths(&second.1),
             "licence": {"participating": true, "kinds": ["remix", "cover"],
                         "stems": ["drums", "bass", "other", "vocals"],
                         "tempo_rate": {"min": "0.9", "max": "1.1"}, "semitones": {"min": -3, "max": 3},
                         "voice": true, "territories": ["WW"], "from": from, "until": until}}
        ],
        "voice_models": [
            {"id": "voice-mara-v1", "artist": "artist-mara",
             "consent": {"granted": true, "reference": consent_reference,
                         "scope": {"kinds": ["cover"], "territories": ["WW"], "until": until}},
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
    // Each run grants the artist's consent afresh, under its own reference:
    // a run withdraws it, and a withdrawn consent stays withdrawn.
    let consent_reference = format!("consent/{}", &Uuid::new_v4().simple().to_string()[..8]);
    let catalog = catalog_document(&context.data_dir, &tracks, &consent_reference);
    std::fs::write(&catalog_path, serde_json::to_string_pretty(&catalog)?)?;
    run_command(
        context,
        &["catalog", "import", &catalog_path.display().to_string()],
    )
    .await?;

    println!("\n== 3. Train the consenting artist's voice model on her licensed vocal stem");
    let (first, second) = (&tracks[0], &tracks[1]);
    println!("$ ledgerline voice train --model {VOICE_MODEL}");
    let store = context.open_store().await?;
    let trained = train_voice_model(&engine, &artifacts, store.as_ref(), VOICE_MODEL)
        .await
        .map_err(super::generate::pipeline_error)?;
    println!(
        "   {VOICE_MODEL}: {} of {} frames voiced, {} of {} timbre cells learned in {} ms; model {} recorded at seq {}",
        trained.report.frames_voiced,
        trained.report.frames_total,
        trained.report.cells_filled,
        trained.report.cells_total,
        trained.duration_ms,
        trained.artifact,
        trained.seq
    );
    drop(store);

    println!("\n== 4. Generate remixes and a cover; every step is recorded in the log");
    for (spec, _) in &tracks {
        let input_png = demo_dir.join(format!("{}-input.png", spec.isrc));
        render_spectrogram(
            &spec.render_mixture(args.seconds),
            &input_png,
            &format!("{} \"{}\", input mix", spec.isrc, spec.title),
        );
        println!(
            "   input {} spectrogram: {}",
            spec.isrc,
            input_png.display()
        );
    }
    let remix = generate(
        context,
        &artifacts,
        &engine,
        json!({"recording": first.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "remix", "stems": {"drums": {"gain_db": -3.0}, "vocals": {"mute": true}}}}),
        &demo_dir,
    )
    .await?;
    generate(
        context,
        &artifacts,
        &engine,
        json!({"recording": second.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "remix", "tempo_rate": 1.1, "semitones": 2, "stems": {"bass": {"gain_db": 2.0}}}}),
        &demo_dir,
    )
    .await?;
    let cover = generate(
        context,
        &artifacts,
        &engine,
        json!({"recording": second.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "cover", "voice_model": VOICE_MODEL, "semitones": -3, "stems": {"drums": {"gain_db": -2.0}}}}),
        &demo_dir,
    )
    .await?;
    println!("   A cover in a voice the catalog does not license is refused, and the refusal is recorded:");
    refuse(
        context,
        &artifacts,
        &engine,
        json!({"recording": first.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "cover", "voice_model": "voice-unlicensed"}}),
        &demo_dir,
    )
    .await?;

    println!("\n== 5. Replay the cover's melody transcription and voice transfer on the CPU twin and compare");
    println!(
        "   The network's note list must come back byte for byte; the voice within its tolerance:"
    );
    let transcribe_step = cover
        .transcribe_step_seq
        .context("the cover recorded no transcribe step")?;
    run_command(context, &["replay", "--seq", &transcribe_step.to_string()]).await?;
    let voice_step = cover
        .voice_step_seq
        .context("the cover recorded no voice-transfer step")?;
    run_command(context, &["replay", "--seq", &voice_step.to_string()]).await?;

    println!("\n== 6. Import a usage report (USD and JPY, with one refund)");
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
        m = cover.job
    );
    std::fs::write(&usage_path, usage)?;
    run_command(
        context,
        &["usage", "import", &usage_path.display().to_string()],
    )
    .await?;

    println!(
        "\n== 7. Royalty statements for {PERIOD}, exact to the minor unit, citing a checkpoint"
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

    println!("\n== 8. A dispute: where did this file come from, and who was paid for it?");
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

    println!("\n== 9. Prove the cover's publication against the signed checkpoint");
    prove(context, cover.published_seq).await?;

    println!("\n== 10. The cover's Content Credentials (C2PA), read back and verified");
    let code = run_command(
        context,
        &[
            "credentials",
            "verify",
            &cover.output_copy.display().to_string(),
            "--format",
            "text",
        ],
    )
    .await?;
    if code != ExitCode::SUCCESS {
        anyhow::bail!("the cover's Content Credentials did not verify");
    }

    println!("\n== 11. Licence terms decide what may be made; an artist withdraws consent");
    println!("   A remix faster than the label licensed is refused:");
    refuse(
        context,
        &artifacts,
        &engine,
        json!({"recording": second.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "remix", "tempo_rate": 1.2}}),
        &demo_dir,
    )
    .await?;
    println!("   The artist withdraws her consent; the next cover in her voice is refused:");
    run_command(
        context,
        &[
            "consent",
            "withdraw",
            "--voice-model",
            VOICE_MODEL,
            "--reference",
            &consent_reference,
        ],
    )
    .await?;
    refuse(
        context,
        &artifacts,
        &engine,
        json!({"recording": second.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "cover", "voice_model": VOICE_MODEL}}),
        &demo_dir,
    )
    .await?;
    println!(
        "   The label of {} ends its participation; requests for it are refused:",
        first.0.isrc
    );
    let mut withdrawn = catalog;
    withdrawn["recordings"][0]["licence"]["participating"] = json!(false);
    std::fs::write(&catalog_path, serde_json::to_string_pretty(&withdrawn)?)?;
    run_command(
        context,
        &["catalog", "import", &catalog_path.display().to_string()],
    )
    .await?;
    refuse(
        context,
        &artifacts,
        &engine,
        json!({"recording": first.0.isrc, "requested_by": CREATOR, "territory": "US",
               "recipe": {"kind": "remix"}}),
        &demo_dir,
    )
    .await?;
    println!("   What was made under the ended consent and licence is listed for takedown, each with its proof:");
    run_command(context, &["takedowns", "--format", "text"]).await?;
    run_command(
        context,
        &["licence", "show", first.0.isrc, "--format", "text"],
    )
    .await?;

    println!("\n== 12. Audit the whole log");
    let code = run_command(context, &["verify"]).await?;
    println!("\nOutput audio is in {}", demo_dir.display());
    Ok(code)
}

/// Sends a request the catalog does not license: the refusal, recorded as
/// `generation.rejected`, is printed with its code.
async fn refuse(
    context: &Context,
    artifacts: &ArtifactStore,
    engine: &Engine,
    request: Value,
    demo_dir: &Path,
) -> anyhow::Result<()> {
    match generate(context, artifacts, engine, request, demo_dir).await {
        Err(error) if error.chain().any(|c| c.is::<super::BadInput>()) => {
            println!("   {error}");
            Ok(())
        }
        Err(error) => Err(error),
        Ok(generated) => anyhow::bail!(
            "job {} was not refused, though the catalog does not license it",
            generated.job
        ),
    }
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
    voice_step_seq: Option<u64>,
    transcribe_step_seq: Option<u64>,
    output_copy: PathBuf,
}

/// A spectrogram PNG for the listen-check; a failure to draw one is
/// reported and the demo goes on (the audio and the log are what count).
fn render_spectrogram(audio: &Audio, path: &Path, title: &str) {
    let (width, height) = SPECTROGRAM_PX;
    if let Err(e) = inference::spectrogram::render_png(audio, path, width, height, title) {
        println!("   (no spectrogram: {e})");
    }
}

/// One generation job through the pipeline, as `ledgerline generate
/// --request REQ.json` runs it; the output WAV and its spectrogram are
/// copied to the demo directory.
async fn generate(
    context: &Context,
    artifacts: &ArtifactStore,
    engine: &Engine,
    request: Value,
    demo_dir: &Path,
) -> anyhow::Result<Generated> {
    let job = Uuid::new_v4();
    let request_path = demo_dir.join(format!("request-{}.json", &job.simple().to_string()[..8]));
    std::fs::write(&request_path, serde_json::to_string_pretty(&request)?)?;
    println!("$ ledgerline generate --request {}", request_path.display());
    let request = GenerationRequest::from_json(&request.to_string())
        .and_then(|r| r.validate())
        .map_err(|e| super::bad_input(e.to_string()))?;
    let store = context.open_store().await?;
    let licensed = LicensedInputs::from_log(store.as_ref(), &request).await?;
    let identity = context.signing_identity()?;
    let generator = Generator {
        engine: *engine,
        artifacts,
        store: store.as_ref(),
        identity: &identity,
    };
    let generated = generator
        .generate(job, &request, &licensed)
        .await
        .map_err(|e: PipelineError| super::generate::pipeline_error(e))?;
    drop(store);
    for step in &generated.steps {
        println!(
            "   seq {:>3} generation.step {:<14} {} ms on {}",
            step.seq,
            step.op.as_str(),
            step.duration_ms,
            engine.backend_name()
        );
    }
    let output_copy = demo_dir.join(format!("{job}.wav"));
    // The file as distributed: the output with its Content Credentials.
    let distributed = artifacts
        .load_distributed(&generated.credentialed.file_hash)?
        .ok_or_else(|| anyhow::anyhow!("the job's credentials were not stored"))?;
    std::fs::write(&output_copy, distributed)?;
    let (_, audio) = artifacts.load(&generated.output.file_hash)?;
    let png = output_copy.with_extension("png");
    render_spectrogram(&audio, &png, &format!("Derivative {job}"));
    println!(
        "   derivative {job} published at seq {}, attribution {}\n   output {} (spectrogram {})",
        generated.published_seq,
        serde_json::to_string(&generated.attribution)?,
        output_copy.display(),
        png.display()
    );
    let step_seq = |op| generated.steps.iter().find(|s| s.op == op).map(|s| s.seq);
    Ok(Generated {
        job,
        published_seq: generated.published_seq,
        voice_step_seq: step_seq(schemas::generation::StepOp::VoiceTransfer),
        transcribe_step_seq: step_seq(schemas::generation::StepOp::Transcribe),
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
