//! A small, deterministic, synthesized catalog of multitrack songs (drums,
//! bass, chords and a sung vocal line with formants) for demos and tests:
//! nothing can be downloaded, and real signal processing needs real-sounding
//! music. The same track spec and duration always render the same samples
//! on a given platform (a seeded xorshift generator for noise; no clocks).

use crate::audio::Audio;
use std::f64::consts::TAU;

/// Rate of every rendered stem.
pub const SAMPLE_RATE: u32 = 44_100;

/// Stem names, in render order.
pub const STEM_NAMES: [&str; 4] = ["drums", "bass", "chords", "vocals"];

/// One song's musical description.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackSpec {
    /// ISRC-shaped identifier; country code `ZZ` marks test recordings.
    pub isrc: &'static str,
    pub title: &'static str,
    pub tempo_bpm: f64,
    /// MIDI note of the key's tonic (60 = middle C).
    pub tonic_midi: i32,
    pub minor: bool,
    /// Scale degrees (0-based) of the chord roots, one per bar, looped.
    pub progression: &'static [usize],
    /// Scale degrees of the vocal melody, one per beat, looped; `None` rests.
    pub melody: &'static [Option<usize>],
    pub seed: u64,
}

/// One rendered stem.
#[derive(Clone, Debug)]
pub struct Stem {
    pub name: &'static str,
    pub audio: Audio,
}

impl Stem {
    /// The catalog stem slot it is licensed as (`vocals`, `drums`, `bass`
    /// or `other`): the chords are the catalog's `other`.
    pub fn catalog_slot(&self) -> &'static str {
        match self.name {
            "chords" => "other",
            name => name,
        }
    }
}

/// The catalog: three songs in different keys, modes and tempos.
pub fn tracks() -> Vec<TrackSpec> {
    vec![
        TrackSpec {
            isrc: "ZZLL02600001",
            title: "Copper Lantern",
            tempo_bpm: 96.0,
            tonic_midi: 57,
            minor: true,
            progression: &[0, 5, 2, 6],
            melody: &[
                Some(4),
                Some(4),
                Some(2),
                Some(3),
                Some(4),
                None,
                Some(7),
                Some(6),
                Some(4),
                Some(2),
                Some(0),
                None,
            ],
            seed: 1,
        },
        TrackSpec {
            isrc: "ZZLL02600002",
            title: "Paper Harbour",
            tempo_bpm: 120.0,
            tonic_midi: 60,
            minor: false,
            progression: &[0, 4, 5, 3],
            melody: &[
                Some(2),
                Some(4),
                Some(5),
                Some(4),
                Some(2),
                Some(1),
                Some(0),
                None,
            ],
            seed: 2,
        },
        TrackSpec {
            isrc: "ZZLL02600003",
            title: "Slow Orbit",
            tempo_bpm: 78.0,
            tonic_midi: 62,
            minor: false,
            progression: &[0, 3, 4, 0],
            melody: &[
                Some(0),
                Some(2),
                Some(4),
                Some(5),
                Some(4),
                None,
                Some(2),
                Some(1),
            ],
            seed: 3,
        },
    ]
}

const MAJOR: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [i32; 7] = [0, 2, 3, 5, 7, 8, 10];

impl TrackSpec {
    /// MIDI note of scale degree `degree` (wrapping into higher octaves).
    fn note(&self, degree: usize) -> i32 {
        let scale = if self.minor { &MINOR } else { &MAJOR };
        self.tonic_midi + scale[degree % 7] + 12 * (degree / 7) as i32
    }

    fn beat_s(&self) -> f64 {
        60.0 / self.tempo_bpm
    }

    /// Renders the four stems, `seconds` long, stereo at [`SAMPLE_RATE`].
    pub fn render(&self, seconds: f64) -> Vec<Stem> {
        let len = (seconds * f64::from(SAMPLE_RATE)).round() as usize;
        vec![
            Stem {
                name: "drums",
                audio: self.drums(len),
            },
            Stem {
                name: "bass",
                audio: self.bass(len),
            },
            Stem {
                name: "chords",
                audio: self.chords(len),
            },
            Stem {
                name: "vocals",
                audio: self.vocals(len),
            },
        ]
    }

    /// The four stems summed: the "recording" as a mixture.
    pub fn render_mixture(&self, seconds: f64) -> Audio {
        let stems = self.render(seconds);
        let mut channels = stems[0].audio.channels.clone();
        for stem in &stems[1..] {
            for (out, channel) in channels.iter_mut().zip(&stem.audio.channels) {
                out.iter_mut().zip(channel).for_each(|(o, x)| *o += x);
            }
        }
        Audio::new(SAMPLE_RATE, channels)
    }

    fn drums(&self, len: usize) -> Audio {
        let rate = f64::from(SAMPLE_RATE);
        let beat = self.beat_s();
        let mut noise = Noise::new(self.seed);
        let (mut left, mut right) = (vec![0.0f32; len], vec![0.0f32; len]);
        let mut previous_noise = 0.0;
        for i in 0..len {
            let t = i as f64 / rate;
            let beat_index = (t / beat).floor();
            let in_beat = t - beat_index * beat;
            let bar_beat = beat_index as i64 % 4;
            let eighth = t % (beat / 2.0);
            let n = noise.next();
            let mut centre = 0.0;
            if bar_beat == 0 || bar_beat == 2 {
                // Kick: a sine gliding 150 -> 45 Hz.
                let phase = TAU * (45.0 * in_beat + 105.0 * (1.0 - (-in_beat * 30.0).exp()) / 30.0);
                centre += 0.9 * phase.sin() * (-in_beat * 9.0).exp();
            } else {
                // Snare: noise and a 185 Hz body.
                centre += (0.5 * n + 0.3 * (TAU * 185.0 * in_beat).sin()) * (-in_beat * 22.0).exp();
            }
            // Closed hat: differentiated noise on every eighth, panned right.
            let hat = (n - previous_noise) * 0.18 * (-eighth * 70.0).exp();
            previous_noise = n;
            left[i] = (centre + 0.4 * hat) as f32 * 0.6;
            right[i] = (centre + hat) as f32 * 0.6;
        }
        Audio::new(SAMPLE_RATE, vec![left, right])
    }

    fn bass(&self, len: usize) -> Audio {
        let rate = f64::from(SAMPLE_RATE);
        let beat = self.beat_s();
        let mut phase = 0.0f64;
        let mut low = 0.0f64;
        let samples: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f64 / rate;
                let bar = (t / (4.0 * beat)).floor() as usize;
                let degree = self.progression[bar % self.progression.len()];
                let frequency = midi_hz(self.note(degree) - 24);
                phase = (phase + frequency / rate).fract();
                let saw = 2.0 * phase - 1.0;
                // One-pole low-pass around 400 Hz, plucked on every eighth.
                low += (saw - low) * (1.0 - (-TAU * 400.0 / rate).exp());
                let since = t % (beat / 2.0);
                (0.45 * low * (0.4 + 0.6 * (-since * 6.0).exp())) as f32
            })
            .collect();
        Audio::new(SAMPLE_RATE, vec![samples.clone(), samples])
    }

    fn chords(&self, len: usize) -> Audio {
        let rate = f64::from(SAMPLE_RATE);
        let bar_s = 4.0 * self.beat_s();
        let (mut left, mut right) = (vec![0.0f32; len], vec![0.0f32; len]);
        for i in 0..len {
            let t = i as f64 / rate;
            let bar = (t / bar_s).floor() as usize;
            let degree = self.progression[bar % self.progression.len()];
            let in_bar = t - bar as f64 * bar_s;
            let envelope = (in_bar / 0.08).min(1.0) * (-in_bar * 0.6).exp();
            let mut voices = [0.0f64; 3];
            for (v, step) in voices.iter_mut().zip([0usize, 2, 4]) {
                let frequency = midi_hz(self.note(degree + step));
                // A soft organ-like tone: four harmonics at 1/h^2.
                *v = (1..=4)
                    .map(|h| (TAU * frequency * h as f64 * t).sin() / (h * h) as f64)
                    .sum::<f64>();
            }
            left[i] = (0.12 * envelope * (voices[0] + 0.7 * voices[1] + 0.4 * voices[2])) as f32;
            right[i] = (0.12 * envelope * (0.4 * voices[0] + 0.7 * voices[1] + voices[2])) as f32;
        }
        Audio::new(SAMPLE_RATE, vec![left, right])
    }

    /// A sung line: a band-limited glottal source (harmonics up to 5 kHz)
    /// shaped by vowel formants, with vibrato after each onset.
    fn vocals(&self, len: usize) -> Audio {
        let rate = f64::from(SAMPLE_RATE);
        let beat = self.beat_s();
        let mut noise = Noise::new(self.seed ^ 0xA5A5);
        let mut phase = 0.0f64;
        let samples: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f64 / rate;
                let beat_index = (t / beat).floor() as usize;
                let in_note = t - beat_index as f64 * beat;
                let Some(degree) = self.melody[beat_index % self.melody.len()] else {
                    return 0.0;
                };
                let vowel = &VOWELS[beat_index % VOWELS.len()];
                let vibrato =
                    0.012 * ((in_note - 0.15).max(0.0) * 4.0).min(1.0) * (TAU * 5.5 * t).sin();
                let f0 = midi_hz(self.note(degree) + 12) * (1.0 + vibrato);
                phase = (phase + f0 / rate).fract();
                let harmonics = (5_000.0 / f0) as usize;
                let mut sum = 0.0;
                for h in 1..=harmonics {
                    let frequency = f0 * h as f64;
                    sum += formant_gain(vowel, frequency) * (TAU * phase * h as f64).sin()
                        / (h as f64).sqrt();
                }
                let envelope =
                    (in_note / 0.03).min(1.0) * ((beat - in_note) / 0.06).clamp(0.0, 1.0);
                (envelope * (0.35 * sum + 0.004 * noise.next())) as f32
            })
            .collect();
        Audio::new(SAMPLE_RATE, vec![samples.clone(), samples])
    }
}

/// Formant centre frequencies and bandwidths (Hz) of a vowel (Peterson & Barney style values).
struct Vowel {
    formants: [(f64, f64); 3],
}

const VOWELS: [Vowel; 4] = [
    Vowel {
        formants: [(800.0, 80.0), (1150.0, 90.0), (2900.0, 120.0)],
    }, // a
    Vowel {
        formants: [(400.0, 70.0), (2000.0, 100.0), (2550.0, 120.0)],
    }, // e
    Vowel {
        formants: [(450.0, 70.0), (800.0, 80.0), (2830.0, 100.0)],
    }, // o
    Vowel {
        formants: [(325.0, 50.0), (700.0, 60.0), (2530.0, 170.0)],
    }, // u
];

/// Magnitude of three resonances (second-order peaks) at `frequency`.
fn formant_gain(vowel: &Vowel, frequency: f64) -> f64 {
    vowel
        .formants
        .iter()
        .zip([1.0, 0.6, 0.3])
        .map(|(&(centre, bandwidth), level)| {
            let x = (frequency - centre) / (bandwidth / 2.0);
            level / (1.0 + x * x).sqrt()
        })
        .sum::<f64>()
        + 0.02
}

fn midi_hz(note: i32) -> f64 {
    440.0 * 2f64.powf(f64::from(note - 69) / 12.0)
}

/// xorshift64 noise in [-1, 1).
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Noise {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::pcm_hash;
    use crate::kernels::yin::{track_cpu, YinParams};

    #[test]
    fn rendering_is_deterministic_and_stems_are_audible_and_bounded() {
        let track = &tracks()[1];
        let first = track.render(2.0);
        let second = track.render(2.0);
        assert_eq!(first.len(), 4);
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(
                pcm_hash(&a.audio),
                pcm_hash(&b.audio),
                "{} is deterministic",
                a.name
            );
            assert_eq!(a.audio.frames(), 88_200);
            assert_eq!(a.audio.channel_count(), 2);
            let peak = a
                .audio
                .channels
                .iter()
                .flatten()
                .fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(peak > 0.05 && peak < 1.0, "{} peak {peak}", a.name);
        }
        let mixture = track.render_mixture(2.0);
        let peak = mixture
            .channels
            .iter()
            .flatten()
            .fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak < 1.0, "mixture peak {peak}");
        assert_ne!(
            pcm_hash(&tracks()[0].render(1.0)[0].audio),
            pcm_hash(&first[0].audio)
        );
    }

    #[test]
    fn the_vocal_sings_the_melody_notes() {
        let track = &tracks()[1];
        let vocals = &track.render(2.0)[3].audio;
        let frames = track_cpu(vocals, &YinParams::default()).expect("track");
        // Beat 0 (0..0.5 s) sings degree 2 of C major an octave up: E5, 659 Hz.
        let expected = midi_hz(track.note(2) + 12);
        let voiced: Vec<f32> = frames
            .iter()
            .filter(|f| f.time_s > 0.1 && f.time_s < 0.4 && f.confidence > 0.8)
            .map(|f| f.f0_hz)
            .collect();
        assert!(!voiced.is_empty());
        for f0 in voiced {
            assert!(
                (f64::from(f0) - expected).abs() < expected * 0.03,
                "{f0} Hz, want ~{expected:.0}"
            );
        }
    }
}
