//! Property tests of two parsers of user input. The generation request
//! parser: any bytes, any damage to a valid request document, and any
//! numbers in its parameters give a valid request or an error, never a
//! panic, in memory proportional to the input. The audio decoder: any bytes
//! and any damage to a valid WAV or FLAC file, decoded as a stream, give
//! samples or an error, never a panic, never more samples than the budget,
//! and memory that does not grow with what the file claims to hold.

mod common;

#[path = "../../projections/tests/hostile_input"]
mod hostile_input {
    pub mod allocation_meter;
    pub mod damage;
}

use common::flac::ConstantFlac;
use hostile_input::allocation_meter::{parser_budget_bytes, peak_bytes};
use hostile_input::damage::mutate;
use inference::artifacts::decode_stream;
use inference::pipeline::GenerationRequest;
use proptest::prelude::*;
use serde_json::json;

const CASES: u32 = 512;

/// Parses and validates, as `ledgerline generate` and `POST /v1/generations` do.
fn parse_request(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let request = GenerationRequest::from_json(text).map_err(|e| e.to_string())?;
    request.validate().map(drop).map_err(|e| e.to_string())
}

fn parses_within_budget(input: &[u8]) {
    let (_, used_bytes) = peak_bytes(|| {
        let _ = parse_request(input);
    });
    let budget_bytes = parser_budget_bytes(input.len());
    assert!(
        used_bytes <= budget_bytes,
        "{used_bytes} bytes for {} bytes of input (budget {budget_bytes})",
        input.len()
    );
}

fn valid_request() -> serde_json::Value {
    json!({"recording": "GBAYE0601498", "requested_by": "creator-sam", "territory": "US",
           "recipe": {"kind": "cover", "voice_model": "voice-mara-v1", "tempo_rate": 1.1, "semitones": -3,
                      "stems": {"drums": {"gain_db": -2.0}, "bass": {"mute": true}}}})
}

/// Numbers at and past every edge the quantization meets: zero and signed
/// zero, the schema's bounds and just past them, huge and tiny magnitudes.
fn edge_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(0.5),
        Just(2.0),
        Just(0.499_999_999_999),
        Just(2.000_000_000_001),
        Just(-60.0),
        Just(12.0),
        Just(1e308),
        Just(-1e308),
        Just(5e-324),
        Just(9_007_199_254_740_993.0),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |x| x.is_finite()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_bytes_as_a_request_give_an_answer_in_bounded_memory(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096)
    ) {
        parses_within_budget(&bytes);
    }

    #[test]
    fn a_damaged_request_gives_an_answer_in_bounded_memory(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>(), 1usize..64), 1..12)
    ) {
        let valid = serde_json::to_vec(&valid_request()).unwrap();
        parses_within_budget(&mutate(&valid, &edits));
    }

    /// Every number the parameters can carry is quantized or refused; an
    /// accepted request always holds integers inside the schema's bounds.
    #[test]
    fn any_parameter_numbers_are_quantized_or_refused(
        tempo_rate in edge_number(),
        semitones in edge_number(),
        gain_db in edge_number(),
    ) {
        let mut request = valid_request();
        request["recipe"]["tempo_rate"] = json!(tempo_rate);
        request["recipe"]["semitones"] = json!(semitones);
        request["recipe"]["stems"]["drums"]["gain_db"] = json!(gain_db);
        let text = request.to_string();
        parses_within_budget(text.as_bytes());
        let accepted = GenerationRequest::from_json(&text).and_then(|r| r.validate()).is_ok();
        let in_bounds = (0.5..=2.0).contains(&tempo_rate)
            && (-12.0..=12.0).contains(&semitones)
            && (-60.0..=12.0).contains(&gain_db);
        prop_assert_eq!(accepted, in_bounds, "tempo_rate {} semitones {} gain_db {}", tempo_rate, semitones, gain_db);
    }
}

/// The budget of decoded samples the audio properties decode under: small,
/// so that a damaged header claiming hours of audio costs nothing to test.
const DECODED_SAMPLES_BUDGET: u64 = 200_000;
/// What one streamed decode may hold at once beyond its input: the
/// decoder's packet buffers, not the file's claimed length.
const DECODE_MEMORY_BYTES_MAX: usize = 16 << 20;

/// A valid 16-bit mono PCM WAV of a short ramp.
fn valid_wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..2_000).map(|i| (i * 13 % 20_000) as i16).collect();
    let data_bytes = (samples.len() * 2) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    for field in [
        16u32.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
        22_050u32.to_le_bytes().to_vec(),
        44_100u32.to_le_bytes().to_vec(),
        2u16.to_le_bytes().to_vec(),
        16u16.to_le_bytes().to_vec(),
    ] {
        out.extend_from_slice(&field);
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_bytes.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// A valid FLAC that decodes to far more samples than the budget.
fn valid_flac() -> Vec<u8> {
    ConstantFlac {
        sample_rate: 48_000,
        channels: 2,
        block_frames: 4_096,
        blocks: 64,
        value: 1_000,
        declares_total: true,
    }
    .encode()
}

/// Decodes `bytes` as a file named `audio.EXTENSION`, counting samples.
fn decode_within_budget(bytes: &[u8], extension: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("audio.{extension}"));
    std::fs::write(&path, bytes).unwrap();
    let mut counted: u64 = 0;
    let (outcome, used_bytes) = peak_bytes(|| {
        decode_stream(&path, DECODED_SAMPLES_BUDGET, &mut |_, samples| {
            counted += samples.len() as u64
        })
    });
    // A refusal (undecodable, or past the budget) is an answer too.
    if let Ok(total) = outcome {
        assert!(
            total <= DECODED_SAMPLES_BUDGET,
            "{total} samples decoded past the budget"
        );
    }
    assert!(
        counted <= DECODED_SAMPLES_BUDGET,
        "{counted} samples reached the sink"
    );
    assert!(
        used_bytes <= DECODE_MEMORY_BYTES_MAX + 32 * bytes.len(),
        "{used_bytes} bytes to decode {} bytes",
        bytes.len()
    );
}

fn audio_extension() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("wav"), Just("flac"), Just("mp3"), Just("ogg")]
}

proptest! {
    // Each case writes a file and decodes it: fewer cases than the parsers.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_as_audio_decode_within_the_budget(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        extension in audio_extension(),
    ) {
        decode_within_budget(&bytes, extension);
    }

    #[test]
    fn a_damaged_wav_decodes_within_the_budget(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>(), 1usize..64), 1..12)
    ) {
        decode_within_budget(&mutate(&valid_wav(), &edits), "wav");
    }

    #[test]
    fn a_damaged_flac_decodes_within_the_budget(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>(), 1usize..64), 1..12)
    ) {
        decode_within_budget(&mutate(&valid_flac(), &edits), "flac");
    }
}
