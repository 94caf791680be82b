//! Decoding the formats generation accepts besides WAV (FLAC, MP3, Ogg
//! Vorbis), from files made by the reference encoders (see
//! `tests/fixtures/README.md`).

use inference::artifacts::{decode_file, pcm_hash, pcm_hash_of_file};
use inference::fingerprint::{fingerprint, fingerprint_file};
use inference::Audio;
use std::path::PathBuf;

const RATE: u32 = 44_100;
const FRAMES: usize = RATE as usize / 2;

fn fixture(name: &str) -> Audio {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    decode_file(&path).unwrap_or_else(|e| panic!("{name} decodes: {e}"))
}

/// Power of `samples` at `hz` (Goertzel), normalised by length.
fn power_at(samples: &[f32], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(RATE);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / samples.len() as f64
}

#[test]
fn flac_decodes_to_the_wavs_exact_pcm_so_the_pcm_hashes_match() {
    let wav = fixture("tone-440hz.wav");
    let flac = fixture("tone-440hz.flac");
    assert_eq!((flac.sample_rate, flac.channel_count()), (RATE, 2));
    assert_eq!(flac.frames(), FRAMES);
    assert_eq!(flac.channels, wav.channels);
    assert_eq!(pcm_hash(&flac), pcm_hash(&wav));
}

#[test]
fn lossy_mp3_and_ogg_keep_each_channels_tone() {
    for name in ["tone-440hz.mp3", "tone-440hz.ogg"] {
        let audio = fixture(name);
        assert_eq!(
            (audio.sample_rate, audio.channel_count()),
            (RATE, 2),
            "{name}"
        );
        // Encoders add priming and padding frames; the length stays close.
        let frames = audio.frames();
        assert!(
            frames.abs_diff(FRAMES) <= 3_000,
            "{name}: {frames} frames for {FRAMES}"
        );
        for (channel, (tone, other)) in [(440.0, 660.0), (660.0, 440.0)].into_iter().enumerate() {
            let samples = &audio.channels[channel];
            let ratio_db = 10.0 * (power_at(samples, tone) / power_at(samples, other)).log10();
            assert!(
                ratio_db > 30.0,
                "{name} channel {channel}: {tone} Hz only {ratio_db:.1} dB above {other} Hz"
            );
        }
    }
}

#[test]
fn streamed_pcm_hashes_and_fingerprints_equal_those_of_the_decoded_audio() {
    for name in [
        "tone-440hz.wav",
        "tone-440hz.flac",
        "tone-440hz.mp3",
        "tone-440hz.ogg",
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let audio = fixture(name);
        assert_eq!(pcm_hash_of_file(&path).unwrap(), pcm_hash(&audio), "{name}");
        assert_eq!(
            fingerprint_file(&path).unwrap(),
            fingerprint(&audio).unwrap(),
            "{name}"
        );
    }
}
