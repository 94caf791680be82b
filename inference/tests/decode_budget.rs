//! Decompression bombs: a small FLAC of constant subframes that decodes to
//! more samples than [`DECODED_SAMPLES_MAX`] is refused, whether its header
//! says so or it hides its length, and a streamed decode never hands on
//! more than its budget.

mod common;

use common::flac::ConstantFlac;
use inference::artifacts::{
    decode_file, decode_stream, pcm_hash, pcm_hash_of_file, ArtifactError, DECODED_SAMPLES_MAX,
};
use inference::fingerprint::{fingerprint_file, FingerprintError};
use std::path::{Path, PathBuf};

/// 8 channels at 192 kHz for 20 minutes, the most the duration, rate and
/// channel limits allow: 1.84e9 samples (7.4 GB as f32) from 1.9 MB.
fn bomb(declares_total: bool) -> ConstantFlac {
    ConstantFlac {
        sample_rate: 192_000,
        channels: 8,
        block_frames: 4_096,
        blocks: 20 * 60 * 192_000 / 4_096,
        value: 1_000,
        declares_total,
    }
}

fn write(dir: &Path, name: &str, flac: &ConstantFlac) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, flac.encode()).unwrap();
    path
}

fn is_too_many_samples(error: &ArtifactError) -> bool {
    matches!(error, ArtifactError::TooManySamples { limit, .. } if *limit == DECODED_SAMPLES_MAX)
}

#[test]
fn a_flac_declaring_more_samples_than_the_budget_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flac = bomb(true);
    assert!(flac.frames() * 8 > DECODED_SAMPLES_MAX);
    let path = write(dir.path(), "bomb.flac", &flac);
    assert!(std::fs::metadata(&path).unwrap().len() < 2 << 20);

    let error = decode_file(&path).unwrap_err();
    assert!(is_too_many_samples(&error), "{error}");
    assert!(
        error.to_string().contains("8 channels at 192000 Hz"),
        "{error}"
    );
    let error = pcm_hash_of_file(&path).unwrap_err();
    assert!(is_too_many_samples(&error), "{error}");
    match fingerprint_file(&path).unwrap_err() {
        FingerprintError::Decode(error) => assert!(is_too_many_samples(&error), "{error}"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_streamed_decode_stops_at_its_budget_when_the_length_is_hidden() {
    let dir = tempfile::tempdir().unwrap();
    // 2 channels, 100 blocks of 4096 frames, total not declared: 819,200 samples.
    let flac = ConstantFlac {
        sample_rate: 48_000,
        channels: 2,
        block_frames: 4_096,
        blocks: 100,
        value: -1_000,
        declares_total: false,
    };
    let path = write(dir.path(), "hidden.flac", &flac);
    let budget = 100_000;
    let mut handed_on = 0u64;
    let error = decode_stream(&path, budget, &mut |_, samples| {
        handed_on += samples.len() as u64
    })
    .unwrap_err();
    assert!(
        matches!(error, ArtifactError::TooManySamples { limit, .. } if limit == budget),
        "{error}"
    );
    assert!(handed_on <= budget, "{handed_on} samples handed on");

    // Within the budget, the same file decodes whole.
    let frames = decode_stream(&path, flac.frames() * 2, &mut |_, _| {}).unwrap();
    assert_eq!(frames, flac.frames());
}

#[test]
fn a_constant_flac_within_the_budget_decodes_to_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let flac = ConstantFlac {
        sample_rate: 44_100,
        channels: 3,
        block_frames: 1_152,
        blocks: 300,
        value: 16_384,
        declares_total: false,
    };
    let path = write(dir.path(), "constant.flac", &flac);
    let audio = decode_file(&path).unwrap();
    assert_eq!((audio.sample_rate, audio.channel_count()), (44_100, 3));
    assert_eq!(audio.frames() as u64, flac.frames());
    assert!(audio.channels.iter().flatten().all(|&s| s == 0.5));
    assert_eq!(pcm_hash_of_file(&path).unwrap(), pcm_hash(&audio));
}
