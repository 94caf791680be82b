//! Transcription with Basic Pitch on audio whose notes are known: single
//! notes, a chord and a glide come out at their pitch, each starting within
//! 50 ms of when it was played; and bad input (empty, silent, shorter than
//! a window, 8 kHz, 96 kHz, NaN) gets a clear error or a correct result,
//! never a panic.

use inference::gpu::Engine;
use inference::transcribe::{self, BasicPitch, Note, TranscribeError};
use inference::Audio;
use std::f64::consts::TAU;

/// A harmonic tone with a 10 ms attack and a slow decay.
fn tone(samples: &mut [f32], rate: u32, start_s: f64, length_s: f64, midi: impl Fn(f64) -> f64) {
    let mut phase = 0.0f64;
    let first = (start_s * f64::from(rate)) as usize;
    let count = (length_s * f64::from(rate)) as usize;
    for (k, s) in samples.iter_mut().skip(first).take(count).enumerate() {
        let t = k as f64 / f64::from(rate);
        let f = 440.0 * 2f64.powf((midi(t) - 69.0) / 12.0);
        phase = (phase + TAU * f / f64::from(rate)) % TAU;
        let envelope = (t / 0.01).min(1.0) * (-t * 1.2).exp() * ((length_s - t) / 0.02).min(1.0);
        let wave: f64 = (1..=6).map(|h| (phase * h as f64).sin() / h as f64).sum();
        *s += (0.12 * envelope * wave) as f32;
    }
}

fn model() -> BasicPitch {
    BasicPitch::load_vendored().unwrap()
}

/// The note of `pitch` that starts nearest `start_s`, if one starts within
/// 50 ms of it.
fn found(notes: &[Note], pitch: u8, start_s: f64) -> Option<&Note> {
    notes
        .iter()
        .filter(|n| n.pitch_midi == pitch && (n.start_s() - start_s).abs() <= 0.05)
        .min_by(|a, b| {
            (a.start_s() - start_s)
                .abs()
                .partial_cmp(&(b.start_s() - start_s).abs())
                .unwrap()
        })
}

#[test]
fn single_notes_a_chord_and_a_glide_are_found_at_their_pitch_and_onset() {
    let rate = 22_050;
    let mut samples = vec![0f32; 7 * rate as usize];
    let played: [(f64, f64, u8); 5] = [
        (0.5, 0.8, 69),
        (1.6, 0.8, 72),
        (2.8, 1.2, 60),
        (2.8, 1.2, 64),
        (2.8, 1.2, 67),
    ];
    for &(start, length, pitch) in &played {
        tone(&mut samples, rate, start, length, |_| f64::from(pitch));
    }
    // A glide from C4 up a whole tone to D4 over a second.
    tone(&mut samples, rate, 4.6, 1.4, |t| 60.0 + 2.0 * t.min(1.0));
    let audio = Audio::new(rate, vec![samples]);
    let transcription = transcribe::transcribe(&model(), &Engine::Cpu, &audio, |_, _| {}).unwrap();
    let notes = &transcription.notes;
    for &(start, _, pitch) in &played {
        assert!(
            found(notes, pitch, start).is_some(),
            "no note {pitch} starting within 50 ms of {start} s in {:#?}",
            notes
                .iter()
                .map(|n| (n.pitch_midi, n.start_s(), n.end_s()))
                .collect::<Vec<_>>()
        );
    }
    // The glide starts as C4 (or its neighbour) and bends upwards.
    let glide = notes
        .iter()
        .filter(|n| (n.start_s() - 4.6).abs() <= 0.05 && (59..=62).contains(&n.pitch_midi))
        .max_by_key(|n| n.end_frame - n.start_frame)
        .expect("a note where the glide starts");
    let (first, last) = (glide.bends[0], *glide.bends.last().unwrap());
    assert!(
        last > first || glide.pitch_midi > 60,
        "the glide does not rise: {glide:?}"
    );
    // Every other note is one of the tones' six harmonics (an octave, a
    // twelfth, two octaves, a major third and a fifth above them) of a note
    // sounding then: the tones are rich in harmonics.
    let sounding = |n: &Note| {
        let mut pitches: Vec<i32> = played
            .iter()
            .filter(|&&(start, length, _)| n.start_s() < start + length && start < n.end_s())
            .map(|&(_, _, p)| i32::from(p))
            .collect();
        if n.start_s() < 6.0 && 4.6 < n.end_s() {
            pitches.extend([60, 61, 62]);
        }
        pitches
    };
    for n in notes {
        let pitch = i32::from(n.pitch_midi);
        let pitches = sounding(n);
        assert!(
            pitches
                .iter()
                .any(|p| [0, 12, 19, 24, 28, 31].contains(&(pitch - p))),
            "note {n:?} is neither played nor a harmonic of {pitches:?}"
        );
    }
    assert_eq!(transcription.frames, 7 * 86);
}

#[test]
fn other_sample_rates_are_resampled_and_give_the_same_note() {
    for rate in [8_000, 96_000] {
        let mut samples = vec![0f32; 2 * rate as usize];
        tone(&mut samples, rate, 0.4, 1.0, |_| 64.0);
        let audio = Audio::new(rate, vec![samples.clone(), samples]);
        let transcription =
            transcribe::transcribe(&model(), &Engine::Cpu, &audio, |_, _| {}).unwrap();
        assert!(
            found(&transcription.notes, 64, 0.4).is_some(),
            "{rate} Hz: {:?}",
            transcription.notes
        );
    }
}

#[test]
fn bad_input_is_an_error_or_an_empty_answer_never_a_panic() {
    let model = model();
    let empty = Audio::new(22_050, vec![vec![]]);
    assert!(matches!(
        transcribe::transcribe(&model, &Engine::Cpu, &empty, |_, _| {}),
        Err(TranscribeError::Empty)
    ));
    let silent = Audio::new(44_100, vec![vec![0.0; 3 * 44_100]]);
    let transcription = transcribe::transcribe(&model, &Engine::Cpu, &silent, |_, _| {}).unwrap();
    assert_eq!(transcription.notes, []);
    assert_eq!(transcription.frames, 3 * 86);
    // Shorter than one window (and than the shortest note): no notes.
    let mut short = vec![0f32; 2_205];
    tone(&mut short, 22_050, 0.0, 0.1, |_| 69.0);
    let transcription = transcribe::transcribe(
        &model,
        &Engine::Cpu,
        &Audio::new(22_050, vec![short]),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(transcription.frames, 8);
    assert_eq!(transcription.notes, []);
    let mut broken = vec![0.1f32; 1_000];
    broken[500] = f32::NAN;
    let error = transcribe::transcribe(
        &model,
        &Engine::Cpu,
        &Audio::new(22_050, vec![broken]),
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            TranscribeError::NotFinite {
                channel: 0,
                frame: 500
            }
        ),
        "{error}"
    );
}
