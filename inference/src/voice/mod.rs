//! Voice models: what a consenting artist's licensed vocal stems teach the
//! harmonic-plus-noise synthesizer ([`ddsp`]) about a timbre, and that
//! synthesizer, which renders a voice from a model.
//!
//! Training tracks f0, confidence and loudness per frame with the YIN kernel
//! (on the caller's [`Engine`]), takes the STFT of the same frames (librosa
//! framing, n_fft 2048, hop 512, so frame `f` of both is centred on sample
//! `f * 512`), and for every voiced frame measures
//! - the amplitudes of the first [`HARMONICS`] harmonics, read from the STFT
//!   magnitude at `k * f0` and corrected for the Hann window's response at the
//!   fractional bin offset, relative to the frame's RMS;
//! - the residual noise: the power in the bins between harmonics (and every
//!   bin above the last modelled harmonic, whose energy the harmonic part does
//!   not reproduce), as a power density relative to the frame's mean square,
//!   in [`NOISE_BANDS`] uniform bands up to [`NOISE_TOP_HZ`].
//!
//! Unvoiced frames above the silence gate (breaths, consonants) train a
//! second noise profile from their whole spectrum.
//!
//! The model is the mean harmonic envelope per (f0 bin, loudness bin) cell
//! plus the noise profiles per loudness bin. Everything is stored relative to
//! the frame's level, so synthesis follows the driving loudness exactly and
//! the model only says how the timbre changes with pitch and loudness.
//! Cells no frame fell into borrow the envelope of the nearest filled cell,
//! resampled along frequency so formants stay where they are (see
//! [`VoiceModel::train`]).
//!
//! Training is deterministic: the same stems on the same backend give a
//! byte-identical model (fixed accumulation order, f64 sums). The CPU backend
//! is the reference; a GPU's f0 track may differ in the last digits.

pub mod ddsp;

use crate::audio::Audio;
use crate::gpu::Engine;
use crate::kernels::stft::{stft_cpu, StftConfig};
use crate::kernels::yin::{self, PitchFrame, YinParams};
use crate::kernels::{mono_mix, KernelError};

/// Harmonics per envelope.
pub const HARMONICS: usize = 32;
/// Log-spaced f0 bins spanning [`F0_RANGE_HZ`]: a low bass voice to a high soprano.
pub const F0_BINS: usize = 12;
pub const F0_RANGE_HZ: (f32, f32) = (70.0, 1000.0);
/// Uniform loudness bins spanning [`LOUDNESS_RANGE_DB`] (YIN's loudness:
/// frame mean square in dB full scale).
pub const LOUDNESS_BINS: usize = 8;
pub const LOUDNESS_RANGE_DB: (f32, f32) = (-60.0, 0.0);
/// Uniform noise bands from 0 Hz to [`NOISE_TOP_HZ`]. Uniform rather than
/// mel-spaced because the synthesizer realises the profile with a short FIR
/// filter, whose resolution is uniform in frequency.
pub const NOISE_BANDS: usize = 32;
/// Bands are in absolute Hz (the Nyquist frequency of 44.1 kHz audio), so a
/// model applies at any output rate.
pub const NOISE_TOP_HZ: f32 = 22_050.0;

/// A frame is voiced when YIN is at least this confident and it is not silent.
pub const VOICED_CONFIDENCE_MIN: f32 = 0.8;
/// Frames quieter than this (dBFS mean square) are silence: not trained on,
/// and synthesized as silence.
pub const SILENCE_DB: f32 = -60.0;
/// Level stored for "nothing here" (a harmonic never observed, a silent band).
pub const LEVEL_FLOOR_DB: f32 = -120.0;
/// Highest level a valid model stores: a pure sine's amplitude is +3 dB
/// relative to its RMS, so anything near this bound is not a measurement.
pub const LEVEL_MAX_DB: f32 = 40.0;
/// Stems per training run at most.
pub const STEMS_MAX: usize = 64;

/// First bytes of a model file.
pub const MAGIC: [u8; 8] = *b"LLVOICE\0";
/// The file format this build writes and reads (see [`VoiceModel::to_bytes`]).
pub const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 48;
/// Bounds on the dimensions a model file may declare.
const HARMONICS_MAX: usize = 256;
const GRID_BINS_MAX: usize = 64;
const NOISE_BANDS_MAX: usize = 256;

/// Half-width of the periodic Hann window's main lobe, in bins: bins closer
/// than this to a harmonic hold that harmonic's energy, not noise.
const HANN_MAIN_LOBE_BINS: f32 = 2.0;
/// Harmonics on each side of a bin whose side-lobe leakage is subtracted
/// from its noise power; farther ones are below -70 dB.
const LEAKAGE_HARMONICS: usize = 3;

/// Whether a tracked frame counts as voiced, for training and for synthesis
/// controls alike.
pub fn is_voiced(frame: &PitchFrame) -> bool {
    frame.confidence >= VOICED_CONFIDENCE_MIN
        && frame.loudness_db >= SILENCE_DB
        && frame.f0_hz.is_finite()
        && frame.f0_hz > 0.0
}

/// What training saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingReport {
    pub frames_total: usize,
    pub frames_voiced: usize,
    /// (f0, loudness) cells at least one voiced frame fell into.
    pub cells_filled: usize,
    pub cells_total: usize,
}

/// Why a model could not be trained or read.
#[derive(Debug, thiserror::Error)]
pub enum VoiceModelError {
    #[error("training needs at least one vocal stem")]
    NoStems,
    #[error("{count} stems exceed the limit of {STEMS_MAX} per voice model")]
    TooManyStems { count: usize },
    #[error("stem {stem}: {reason}")]
    InvalidStem { stem: usize, reason: String },
    #[error(
        "stem {stem} has no voiced frames among its {frames} (voiced: YIN confidence >= \
         {VOICED_CONFIDENCE_MIN} and louder than {SILENCE_DB} dBFS); train on isolated, sung vocal stems"
    )]
    NoVoicedFrames { stem: usize, frames: usize },
    #[error("f0 tracking failed: {0}")]
    Kernel(#[from] KernelError),
    #[error("not a voice model: the file does not start with the magic bytes \"LLVOICE\\0\"")]
    BadMagic,
    #[error("voice model format version {found} is not supported; this build reads version {FORMAT_VERSION}")]
    UnsupportedVersion { found: u32 },
    #[error("the voice model is {actual_bytes} bytes but its header implies {expected_bytes}")]
    Length {
        expected_bytes: usize,
        actual_bytes: usize,
    },
    #[error("voice model field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

/// A learned timbre: harmonic envelopes per (f0, loudness) cell and noise
/// profiles per loudness bin, all relative to the frame's level.
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceModel {
    harmonics: usize,
    f0_bins: usize,
    loudness_bins: usize,
    noise_bands: usize,
    f0_range_hz: (f32, f32),
    loudness_range_db: (f32, f32),
    noise_top_hz: f32,
    /// Voiced training frames per cell, `f0_bins × loudness_bins`, f0-major;
    /// 0 marks a cell filled from a neighbour.
    cell_frames: Vec<u32>,
    /// Harmonic amplitude relative to the frame RMS, dB:
    /// `f0_bins × loudness_bins × harmonics`.
    harmonic_db: Vec<f32>,
    /// Residual noise power density relative to the frame mean square, dB,
    /// in voiced frames: `loudness_bins × noise_bands`.
    noise_voiced_db: Vec<f32>,
    /// The same for unvoiced (but not silent) frames.
    noise_unvoiced_db: Vec<f32>,
}

/// Where `value` falls among `bins` uniform bins of `[0, 1)` (after the
/// caller maps it there): the lower bin centre's index and the weight of the
/// next, clamped to the outermost centres.
fn grid_position(unit: f32, bins: usize) -> (usize, f32) {
    let u = (unit * bins as f32 - 0.5).clamp(0.0, (bins - 1) as f32);
    let low = (u.floor() as usize).min(bins.saturating_sub(2));
    (low, u - low as f32)
}

/// The bin `unit` (in `[0, 1)`, clamped) falls into.
fn grid_bin(unit: f32, bins: usize) -> usize {
    ((unit * bins as f32).floor().max(0.0) as usize).min(bins - 1)
}

/// Linear amplitude of a stored level; the floor means "nothing here" and
/// gives an exact 0, which lets synthesis skip the harmonic.
fn db_to_amplitude(db: f32) -> f32 {
    if db <= LEVEL_FLOOR_DB {
        0.0
    } else {
        10f32.powf(db / 20.0)
    }
}

fn amplitude_to_db(value: f64) -> f32 {
    (20.0 * value.max(1e-12).log10()).max(f64::from(LEVEL_FLOOR_DB)) as f32
}

fn power_to_db(value: f64) -> f32 {
    (10.0 * value.max(1e-24).log10()).max(f64::from(LEVEL_FLOOR_DB)) as f32
}

/// Magnitude response of the periodic Hann window `delta` bins off centre,
/// relative to its peak: `sinc(delta) / (1 - delta^2)`.
fn hann_response(delta: f32) -> f32 {
    let d = f64::from(delta.abs());
    if d < 1e-6 {
        return 1.0;
    }
    if (d - 1.0).abs() < 1e-6 {
        return 0.5;
    }
    let x = std::f64::consts::PI * d;
    ((x.sin() / x) / (1.0 - d * d)) as f32
}

impl VoiceModel {
    pub fn harmonics(&self) -> usize {
        self.harmonics
    }

    pub fn noise_bands(&self) -> usize {
        self.noise_bands
    }

    pub fn noise_top_hz(&self) -> f32 {
        self.noise_top_hz
    }

    /// Voiced training frames in the cell holding (`f0_hz`, `loudness_db`).
    pub fn cell_frames(&self, f0_hz: f32, loudness_db: f32) -> u32 {
        let f = grid_bin(self.f0_unit(f0_hz), self.f0_bins);
        let l = grid_bin(self.loudness_unit(loudness_db), self.loudness_bins);
        self.cell_frames[f * self.loudness_bins + l]
    }

    fn f0_unit(&self, f0_hz: f32) -> f32 {
        log_unit(f0_hz, self.f0_range_hz)
    }

    fn loudness_unit(&self, loudness_db: f32) -> f32 {
        linear_unit(loudness_db, self.loudness_range_db)
    }

    /// Centre of f0 bin `bin`, Hz.
    fn f0_centre_hz(&self, bin: usize) -> f32 {
        let (low, high) = self.f0_range_hz;
        low * (high / low).powf((bin as f32 + 0.5) / self.f0_bins as f32)
    }

    /// Harmonic amplitudes relative to the frame RMS (linear) at (`f0_hz`,
    /// `loudness_db`): bilinear interpolation in dB between the centres of the
    /// four surrounding cells (log f0, loudness), clamped at the grid's edges.
    /// Writes `out[k - 1]` for harmonic `k` in `1..=harmonics()`.
    pub fn harmonic_envelope(&self, f0_hz: f32, loudness_db: f32, out: &mut [f32]) {
        assert_eq!(out.len(), self.harmonics, "one amplitude per harmonic");
        let (f, wf) = grid_position(self.f0_unit(f0_hz), self.f0_bins);
        let (l, wl) = grid_position(self.loudness_unit(loudness_db), self.loudness_bins);
        let f1 = (f + 1).min(self.f0_bins - 1);
        let l1 = (l + 1).min(self.loudness_bins - 1);
        let cell = |fi: usize, li: usize| {
            let start = (fi * self.loudness_bins + li) * self.harmonics;
            &self.harmonic_db[start..start + self.harmonics]
        };
        let (c00, c01, c10, c11) = (cell(f, l), cell(f, l1), cell(f1, l), cell(f1, l1));
        for (k, value) in out.iter_mut().enumerate() {
            let low = c00[k] + wl * (c01[k] - c00[k]);
            let high = c10[k] + wl * (c11[k] - c10[k]);
            *value = db_to_amplitude(low + wf * (high - low));
        }
    }

    /// Noise power density per band relative to the frame mean square
    /// (linear), for a voiced or unvoiced frame at `loudness_db`: linear
    /// interpolation in dB between loudness bin centres.
    pub fn noise_profile(&self, voiced: bool, loudness_db: f32, out: &mut [f32]) {
        assert_eq!(out.len(), self.noise_bands, "one density per band");
        let table = if voiced {
            &self.noise_voiced_db
        } else {
            &self.noise_unvoiced_db
        };
        let (l, wl) = grid_position(self.loudness_unit(loudness_db), self.loudness_bins);
        let l1 = (l + 1).min(self.loudness_bins - 1);
        let low = &table[l * self.noise_bands..(l + 1) * self.noise_bands];
        let high = &table[l1 * self.noise_bands..(l1 + 1) * self.noise_bands];
        for ((value, &a), &b) in out.iter_mut().zip(low).zip(high) {
            let amplitude = db_to_amplitude(a + wl * (b - a));
            *value = amplitude * amplitude;
        }
    }

    /// Trains a model on `stems` (each mixed to mono), tracking f0 on `engine`.
    ///
    /// Every stem must be a valid, non-silent sung vocal: a stem without a
    /// single voiced frame is an error, not a silently weaker model.
    ///
    /// An empty cell takes the envelope of the nearest filled cell (grid
    /// distance `|d f0 bin| + |d loudness bin|`, ties to the smaller loudness
    /// step, then the lower index), resampled so each harmonic reads the
    /// source envelope at the same frequency `k * f0` (formants stay put)
    /// and scaled by `sqrt(f0_target / f0_source)` so the harmonics' summed
    /// power density, and with it the relative loudness, is kept.
    pub fn train(
        engine: &Engine,
        stems: &[Audio],
    ) -> Result<(VoiceModel, TrainingReport), VoiceModelError> {
        if stems.is_empty() {
            return Err(VoiceModelError::NoStems);
        }
        if stems.len() > STEMS_MAX {
            return Err(VoiceModelError::TooManyStems { count: stems.len() });
        }
        let mut totals = Totals::new();
        for (index, stem) in stems.iter().enumerate() {
            validate_stem(index, stem)?;
            let frames = yin::track(engine, stem, &YinParams::default())?;
            let voiced = totals.add_stem(stem, &frames);
            if voiced == 0 {
                return Err(VoiceModelError::NoVoicedFrames {
                    stem: index,
                    frames: frames.len(),
                });
            }
        }
        Ok(totals.finish())
    }

    /// The model as a version-1 file: little-endian throughout,
    ///
    /// | offset | bytes | field |
    /// |---|---|---|
    /// | 0 | 8 | magic `LLVOICE\0` |
    /// | 8 | 4 | format version, u32 (1) |
    /// | 12 | 4 | harmonics K, u32 |
    /// | 16 | 4 | f0 bins F, u32 |
    /// | 20 | 4 | loudness bins L, u32 |
    /// | 24 | 4 | noise bands B, u32 |
    /// | 28 | 8 | f0 range low, high (Hz), f32 × 2; bins are log-spaced |
    /// | 36 | 8 | loudness range low, high (dBFS), f32 × 2; bins are uniform |
    /// | 44 | 4 | top of the noise bands (Hz), f32; bands are uniform from 0 |
    /// | 48 | 4·F·L | voiced training frames per cell, u32, f0-major |
    /// | … | 4·F·L·K | harmonic amplitude re frame RMS (dB), f32, \[f0]\[loudness]\[k] |
    /// | … | 4·L·B | voiced residual noise density re mean square (dB), f32, \[loudness]\[band] |
    /// | … | 4·L·B | unvoiced noise density re mean square (dB), f32, \[loudness]\[band] |
    ///
    /// Nothing else: the bytes are a function of the model, so a model's
    /// content hash identifies it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.expected_len());
        out.extend_from_slice(&MAGIC);
        for value in [
            FORMAT_VERSION,
            self.harmonics as u32,
            self.f0_bins as u32,
            self.loudness_bins as u32,
            self.noise_bands as u32,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for value in [
            self.f0_range_hz.0,
            self.f0_range_hz.1,
            self.loudness_range_db.0,
            self.loudness_range_db.1,
            self.noise_top_hz,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        debug_assert_eq!(out.len(), HEADER_BYTES);
        for value in &self.cell_frames {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for table in [
            &self.harmonic_db,
            &self.noise_voiced_db,
            &self.noise_unvoiced_db,
        ] {
            for value in table {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        debug_assert_eq!(out.len(), self.expected_len());
        out
    }

    fn expected_len(&self) -> usize {
        let cells = self.f0_bins * self.loudness_bins;
        HEADER_BYTES
            + 4 * (cells + cells * self.harmonics + 2 * self.loudness_bins * self.noise_bands)
    }

    /// Reads a model written by [`VoiceModel::to_bytes`], checking the magic,
    /// the version, the dimensions (bounded), the exact length, and that every
    /// range and level is finite and plausible.
    pub fn from_bytes(bytes: &[u8]) -> Result<VoiceModel, VoiceModelError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(VoiceModelError::BadMagic);
        }
        if bytes.len() < HEADER_BYTES {
            return Err(VoiceModelError::Length {
                expected_bytes: HEADER_BYTES,
                actual_bytes: bytes.len(),
            });
        }
        let word = |offset: usize| {
            u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
        };
        let real = |offset: usize| f32::from_bits(word(offset));
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(VoiceModelError::UnsupportedVersion { found: version });
        }
        let dimension = |field: &'static str, offset: usize, max: usize| {
            let value = word(offset) as usize;
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(VoiceModelError::InvalidField {
                    field,
                    reason: format!("{value} is outside 1..={max}"),
                })
            }
        };
        let harmonics = dimension("harmonics", 12, HARMONICS_MAX)?;
        let f0_bins = dimension("f0_bins", 16, GRID_BINS_MAX)?;
        let loudness_bins = dimension("loudness_bins", 20, GRID_BINS_MAX)?;
        let noise_bands = dimension("noise_bands", 24, NOISE_BANDS_MAX)?;
        let f0_range_hz = (real(28), real(32));
        let loudness_range_db = (real(36), real(40));
        let noise_top_hz = real(44);
        let ordered = |field: &'static str, (low, high): (f32, f32), min: f32, max: f32| {
            if low.is_finite() && high.is_finite() && min <= low && low < high && high <= max {
                Ok(())
            } else {
                Err(VoiceModelError::InvalidField {
                    field,
                    reason: format!("{low}..{high} is not an increasing range within {min}..{max}"),
                })
            }
        };
        ordered("f0_range_hz", f0_range_hz, f32::MIN_POSITIVE, 20_000.0)?;
        ordered("loudness_range_db", loudness_range_db, -200.0, 40.0)?;
        ordered("noise_top_hz", (0.0, noise_top_hz), 0.0, 192_000.0)?;

        let mut model = VoiceModel {
            harmonics,
            f0_bins,
            loudness_bins,
            noise_bands,
            f0_range_hz,
            loudness_range_db,
            noise_top_hz,
            cell_frames: Vec::new(),
            harmonic_db: Vec::new(),
            noise_voiced_db: Vec::new(),
            noise_unvoiced_db: Vec::new(),
        };
        let expected_bytes = model.expected_len();
        if bytes.len() != expected_bytes {
            return Err(VoiceModelError::Length {
                expected_bytes,
                actual_bytes: bytes.len(),
            });
        }
        let cells = f0_bins * loudness_bins;
        let mut offset = HEADER_BYTES;
        let mut take = |count: usize| {
            let start = offset;
            offset += 4 * count;
            (0..count).map(move |i| start + 4 * i)
        };
        model.cell_frames = take(cells).map(word).collect();
        let levels = |field: &'static str, offsets: &mut dyn Iterator<Item = usize>| {
            offsets
                .map(|at| {
                    let value = real(at);
                    if value.is_finite() && (LEVEL_FLOOR_DB..=LEVEL_MAX_DB).contains(&value) {
                        Ok(value)
                    } else {
                        Err(VoiceModelError::InvalidField {
                            field,
                            reason: format!(
                                "level {value} dB at byte {at} is outside {LEVEL_FLOOR_DB}..={LEVEL_MAX_DB}"
                            ),
                        })
                    }
                })
                .collect::<Result<Vec<f32>, _>>()
        };
        model.harmonic_db = levels("harmonic_db", &mut take(cells * harmonics))?;
        model.noise_voiced_db = levels("noise_voiced_db", &mut take(loudness_bins * noise_bands))?;
        model.noise_unvoiced_db =
            levels("noise_unvoiced_db", &mut take(loudness_bins * noise_bands))?;
        Ok(model)
    }
}

fn validate_stem(index: usize, stem: &Audio) -> Result<(), VoiceModelError> {
    let invalid = |reason: String| VoiceModelError::InvalidStem {
        stem: index,
        reason,
    };
    if stem.frames() == 0 {
        return Err(invalid("the stem is empty".into()));
    }
    let rates = crate::artifacts::SAMPLE_RATE_RANGE;
    if !rates.contains(&stem.sample_rate) {
        return Err(invalid(format!(
            "sample rate {} Hz is outside the accepted {rates:?} Hz",
            stem.sample_rate
        )));
    }
    let frames_max = crate::artifacts::DURATION_S_MAX as usize * stem.sample_rate as usize;
    if stem.frames() > frames_max {
        return Err(invalid(format!(
            "{} frames exceed {} s",
            stem.frames(),
            crate::artifacts::DURATION_S_MAX
        )));
    }
    if let Some(position) = stem.channels.iter().flatten().position(|x| !x.is_finite()) {
        return Err(invalid(format!(
            "planar sample {position} is not finite (NaN or infinity)"
        )));
    }
    Ok(())
}

/// Running sums over all training frames, in f64 and a fixed order.
struct Totals {
    frames_total: usize,
    frames_voiced: usize,
    /// Per cell: voiced frames.
    cell_frames: Vec<u32>,
    /// Per cell and harmonic: sum of relative amplitudes, observations.
    harmonic_sum: Vec<f64>,
    harmonic_count: Vec<u32>,
    /// Per (voicing, loudness bin, band): each frame's mean relative density
    /// over the band's bins. The model keeps the median: note onsets and
    /// transitions smear harmonics across whole bands in a few frames, and
    /// a mean would let those few set the level.
    noise_frames: [Vec<Vec<f64>>; 2],
}

const VOICED: usize = 0;
const UNVOICED: usize = 1;

impl Totals {
    fn new() -> Totals {
        let cells = F0_BINS * LOUDNESS_BINS;
        let noise = LOUDNESS_BINS * NOISE_BANDS;
        Totals {
            frames_total: 0,
            frames_voiced: 0,
            cell_frames: vec![0; cells],
            harmonic_sum: vec![0.0; cells * HARMONICS],
            harmonic_count: vec![0; cells * HARMONICS],
            noise_frames: [vec![Vec::new(); noise], vec![Vec::new(); noise]],
        }
    }

    /// Adds one stem's frames; returns how many were voiced.
    fn add_stem(&mut self, stem: &Audio, frames: &[PitchFrame]) -> usize {
        let config = StftConfig::LIBROSA;
        let mono = mono_mix(stem);
        let spectrum = stft_cpu(&config, &mono);
        let bins = config.bins();
        debug_assert_eq!(
            spectrum.len(),
            frames.len() * bins,
            "YIN and the STFT share librosa's framing"
        );
        let sample_rate = stem.sample_rate as f32;
        let bin_hz = sample_rate / config.n_fft as f32;
        // |X|^2 of white noise with variance s^2 is s^2 * sum(w^2); for the
        // periodic Hann window sum(w^2) = 3N/8.
        let window_power = 3.0 * config.n_fft as f64 / 8.0;
        // A sinusoid of amplitude A peaks at A * sum(w) / 2 = A * N / 4.
        let peak_to_amplitude = 4.0 / config.n_fft as f32;
        let band_hz = NOISE_TOP_HZ / NOISE_BANDS as f32;
        let mut voiced = 0;
        for (frame, row) in frames.iter().zip(spectrum.chunks_exact(bins)) {
            self.frames_total += 1;
            if frame.loudness_db < SILENCE_DB {
                continue;
            }
            let mean_square = 10f64.powf(f64::from(frame.loudness_db) / 10.0);
            let rms = mean_square.sqrt() as f32;
            let l = grid_bin(
                linear_unit(frame.loudness_db, LOUDNESS_RANGE_DB),
                LOUDNESS_BINS,
            );
            let is_voiced = is_voiced(frame);
            let f0 = frame.f0_hz;
            // Per harmonic, the magnitude of its spectral peak (0 above Nyquist).
            let mut peaks = [0.0f32; HARMONICS];
            if is_voiced {
                voiced += 1;
                self.frames_voiced += 1;
                let f = grid_bin(log_unit(f0, F0_RANGE_HZ), F0_BINS);
                let cell = f * LOUDNESS_BINS + l;
                self.cell_frames[cell] += 1;
                for k in 1..=HARMONICS {
                    let position = k as f32 * f0 / bin_hz;
                    let bin = position.round() as usize;
                    // Keep a main lobe clear of Nyquist, where the spectrum folds.
                    if bin + 2 >= bins {
                        break;
                    }
                    // The magnitude a centred bin would show.
                    peaks[k - 1] = row[bin].norm() / hann_response(position - bin as f32);
                    let amplitude = peaks[k - 1] * peak_to_amplitude;
                    let at = cell * HARMONICS + (k - 1);
                    self.harmonic_sum[at] += f64::from(amplitude / rms);
                    self.harmonic_count[at] += 1;
                }
            }
            let voicing = if is_voiced { VOICED } else { UNVOICED };
            let mut band_sum = [0.0f64; NOISE_BANDS];
            let mut band_bins = [0u32; NOISE_BANDS];
            for (bin, value) in row.iter().enumerate().take(bins - 1).skip(1) {
                let hz = bin as f32 * bin_hz;
                let band = (hz / band_hz) as usize;
                if band >= NOISE_BANDS {
                    break;
                }
                let mut power = f64::from(value.norm_sqr());
                if is_voiced {
                    let nearest = (hz / f0).round() as usize;
                    let off_bins = (hz - nearest as f32 * f0).abs() / bin_hz;
                    if (1..=HARMONICS).contains(&nearest) && off_bins < HANN_MAIN_LOBE_BINS {
                        continue;
                    }
                    // Take away what the measured harmonics leak into this
                    // bin through the window's side lobes (-31 dB at 2.5
                    // bins, falling 18 dB per octave): their expected power
                    // adds to the noise's, so the difference is unbiased.
                    let near = nearest.saturating_sub(LEAKAGE_HARMONICS).max(1)
                        ..=(nearest + LEAKAGE_HARMONICS).min(HARMONICS);
                    for k in near {
                        let peak = peaks[k - 1];
                        let response = hann_response(bin as f32 - k as f32 * f0 / bin_hz);
                        power -= f64::from(peak * response).powi(2);
                    }
                }
                band_sum[band] += power / window_power / mean_square;
                band_bins[band] += 1;
            }
            for band in 0..NOISE_BANDS {
                if band_bins[band] > 0 {
                    self.noise_frames[voicing][l * NOISE_BANDS + band]
                        .push(band_sum[band] / f64::from(band_bins[band]));
                }
            }
        }
        voiced
    }

    fn finish(mut self) -> (VoiceModel, TrainingReport) {
        let cells = F0_BINS * LOUDNESS_BINS;
        let mut model = VoiceModel {
            harmonics: HARMONICS,
            f0_bins: F0_BINS,
            loudness_bins: LOUDNESS_BINS,
            noise_bands: NOISE_BANDS,
            f0_range_hz: F0_RANGE_HZ,
            loudness_range_db: LOUDNESS_RANGE_DB,
            noise_top_hz: NOISE_TOP_HZ,
            cell_frames: self.cell_frames.clone(),
            harmonic_db: vec![LEVEL_FLOOR_DB; cells * HARMONICS],
            noise_voiced_db: vec![LEVEL_FLOOR_DB; LOUDNESS_BINS * NOISE_BANDS],
            noise_unvoiced_db: vec![LEVEL_FLOOR_DB; LOUDNESS_BINS * NOISE_BANDS],
        };
        for (at, value) in model.harmonic_db.iter_mut().enumerate() {
            if self.harmonic_count[at] > 0 {
                *value =
                    amplitude_to_db(self.harmonic_sum[at] / f64::from(self.harmonic_count[at]));
            }
        }
        let filled: Vec<usize> = (0..cells).filter(|&c| self.cell_frames[c] > 0).collect();
        for cell in 0..cells {
            if self.cell_frames[cell] > 0 {
                continue;
            }
            let (f, l) = (cell / LOUDNESS_BINS, cell % LOUDNESS_BINS);
            let Some(&source) = filled.iter().min_by_key(|&&c| {
                let (cf, cl) = (c / LOUDNESS_BINS, c % LOUDNESS_BINS);
                (f.abs_diff(cf) + l.abs_diff(cl), l.abs_diff(cl), c)
            }) else {
                continue;
            };
            let envelope = model.resampled_envelope(source / LOUDNESS_BINS, source, f);
            model.harmonic_db[cell * HARMONICS..(cell + 1) * HARMONICS].copy_from_slice(&envelope);
        }

        for (voicing, table) in [
            (VOICED, &mut model.noise_voiced_db),
            (UNVOICED, &mut model.noise_unvoiced_db),
        ] {
            fill_noise_table(&mut self.noise_frames[voicing], table);
        }
        let unvoiced_seen = self.noise_frames[UNVOICED].iter().any(|v| !v.is_empty());
        if !unvoiced_seen {
            // No breaths or consonants in the stems: unvoiced frames get the
            // voice's residual noise shape carrying the frame's whole power.
            model.noise_unvoiced_db = model.noise_voiced_db.clone();
            for row in model.noise_unvoiced_db.chunks_exact_mut(NOISE_BANDS) {
                let heard: Vec<f64> = row
                    .iter()
                    .filter(|&&db| db > LEVEL_FLOOR_DB)
                    .map(|&db| 10f64.powf(f64::from(db) / 10.0))
                    .collect();
                if heard.is_empty() {
                    continue;
                }
                let shift = -power_to_db(heard.iter().sum::<f64>() / heard.len() as f64);
                for db in row.iter_mut().filter(|db| **db > LEVEL_FLOOR_DB) {
                    *db = (*db + shift).clamp(LEVEL_FLOOR_DB, LEVEL_MAX_DB);
                }
            }
        }
        let report = TrainingReport {
            frames_total: self.frames_total,
            frames_voiced: self.frames_voiced,
            cells_filled: filled.len(),
            cells_total: cells,
        };
        (model, report)
    }
}

impl VoiceModel {
    /// The envelope of cell `source` (in f0 bin `source_f0_bin`) as it would
    /// sound at the centre of f0 bin `target_f0_bin`: harmonic `k` reads the
    /// source at fractional harmonic `k * f_target / f_source` (linear in dB),
    /// shifted by `10 log10(f_target / f_source)` dB.
    fn resampled_envelope(
        &self,
        source_f0_bin: usize,
        source: usize,
        target_f0_bin: usize,
    ) -> Vec<f32> {
        let from = &self.harmonic_db[source * self.harmonics..(source + 1) * self.harmonics];
        let ratio = self.f0_centre_hz(target_f0_bin) / self.f0_centre_hz(source_f0_bin);
        let shift = 10.0 * ratio.log10();
        (1..=self.harmonics)
            .map(|k| {
                let position = k as f32 * ratio;
                if position > self.harmonics as f32 {
                    return LEVEL_FLOOR_DB;
                }
                let position = position.max(1.0) - 1.0;
                let low = position.floor() as usize;
                let high = (low + 1).min(self.harmonics - 1);
                let w = position - low as f32;
                let db = from[low] + w * (from[high] - from[low]);
                if db <= LEVEL_FLOOR_DB {
                    LEVEL_FLOOR_DB
                } else {
                    (db + shift).clamp(LEVEL_FLOOR_DB, LEVEL_MAX_DB)
                }
            })
            .collect()
    }
}

/// Median density per (loudness bin, band) in dB; bands never observed in an
/// observed loudness bin stay at the floor (no energy there: above the
/// stems' Nyquist frequency, say); unobserved loudness bins copy the nearest
/// observed one (ties to the quieter).
fn fill_noise_table(frames: &mut [Vec<f64>], table: &mut [f32]) {
    let observed: Vec<usize> = (0..LOUDNESS_BINS)
        .filter(|&l| {
            frames[l * NOISE_BANDS..(l + 1) * NOISE_BANDS]
                .iter()
                .any(|v| !v.is_empty())
        })
        .collect();
    for (at, values) in frames.iter_mut().enumerate() {
        if values.is_empty() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let middle = values.len() / 2;
        let median = if values.len() % 2 == 0 {
            (values[middle - 1] + values[middle]) / 2.0
        } else {
            values[middle]
        };
        table[at] = power_to_db(median).min(LEVEL_MAX_DB);
    }
    for l in 0..LOUDNESS_BINS {
        if observed.contains(&l) {
            continue;
        }
        if let Some(&source) = observed.iter().min_by_key(|&&o| (o.abs_diff(l), o)) {
            let row: Vec<f32> = table[source * NOISE_BANDS..(source + 1) * NOISE_BANDS].to_vec();
            table[l * NOISE_BANDS..(l + 1) * NOISE_BANDS].copy_from_slice(&row);
        }
    }
}

/// `value`'s position in `low..high` on a linear axis, 0 at `low`, 1 at `high`.
fn linear_unit(value: f32, (low, high): (f32, f32)) -> f32 {
    (value - low) / (high - low)
}

/// `value`'s position in `low..high` on a logarithmic axis (frequencies).
fn log_unit(value: f32, (low, high): (f32, f32)) -> f32 {
    (value.max(1e-3) / low).ln() / (high / low).ln()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sample_catalog::{tracks, SAMPLE_RATE};

    /// The first `seconds` of a catalog song's vocal stem (stereo, 44.1 kHz).
    pub(crate) fn catalog_vocal(track: usize, seconds: f64) -> Audio {
        tracks()[track]
            .render(seconds)
            .into_iter()
            .find(|stem| stem.name == "vocals")
            .expect("every song has vocals")
            .audio
    }

    /// A synthetic singer: notes of `note_s` seconds cycling through
    /// `notes_hz`, harmonic `k` at amplitude `level * tilt(k)` up to
    /// `harmonics`, faded in and out, plus white noise of standard
    /// deviation `noise_std` (xorshift, seeded). Deterministic.
    pub(crate) fn synthetic_voice(
        notes_hz: &[f64],
        note_s: f64,
        seconds: f64,
        harmonics: usize,
        tilt: impl Fn(usize) -> f64,
        noise_std: f64,
    ) -> Audio {
        let rate = f64::from(SAMPLE_RATE);
        let len = (seconds * rate) as usize;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut phase = 0.0f64;
        let samples = (0..len)
            .map(|i| {
                let f0 = notes_hz[(i as f64 / rate / note_s) as usize % notes_hz.len()];
                phase = (phase + f0 / rate).fract();
                let tone: f64 = (1..=harmonics)
                    .filter(|&k| k as f64 * f0 < rate / 2.0)
                    .map(|k| tilt(k) * (std::f64::consts::TAU * phase * k as f64).sin())
                    .sum();
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let uniform = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                // 20 ms fades: a singer does not start with a step.
                let fade = (i.min(len - 1 - i) as f64 / (0.02 * rate)).min(1.0);
                (fade * tone + noise_std * 3f64.sqrt() * uniform) as f32
            })
            .collect();
        Audio::new(SAMPLE_RATE, vec![samples])
    }

    #[test]
    fn training_is_deterministic_and_the_file_round_trips() {
        let stems = [catalog_vocal(1, 4.0), catalog_vocal(0, 3.0)];
        let (model, report) = VoiceModel::train(&Engine::Cpu, &stems).expect("trains");
        let (again, _) = VoiceModel::train(&Engine::Cpu, &stems).expect("trains");
        let bytes = model.to_bytes();
        assert_eq!(bytes, again.to_bytes(), "same stems, same bytes");
        assert_eq!(&bytes[..8], b"LLVOICE\0");
        assert_eq!(VoiceModel::from_bytes(&bytes).expect("reads"), model);
        // 4 s and 3 s at hop 512: 1 + 176400/512 and 1 + 132300/512 frames.
        assert_eq!(report.frames_total, 345 + 259);
        assert!(report.frames_voiced > report.frames_total / 2, "{report:?}");
        assert_eq!(report.cells_total, F0_BINS * LOUDNESS_BINS);
        assert!(
            (2..report.cells_total).contains(&report.cells_filled),
            "{report:?}"
        );
        let filled: u32 = model.cell_frames.iter().sum();
        assert_eq!(filled as usize, report.frames_voiced);
    }

    /// A voice whose harmonic amplitudes and noise level are known: the
    /// model must measure them (harmonics within 0.5 dB, noise bands within
    /// 1 dB, 3 dB in the lowest band).
    #[test]
    fn training_measures_the_harmonic_envelope_and_the_noise_floor() {
        let noise_std = 0.002;
        let voice = synthetic_voice(&[220.0], 1.0, 2.0, HARMONICS, |k| 0.1 / k as f64, noise_std);
        let (model, report) = VoiceModel::train(&Engine::Cpu, &[voice]).expect("trains");
        // One pitch at one level; only the half-padded first and last frames
        // may read 3 dB quieter.
        assert!(report.cells_filled <= 2, "{report:?}");
        let mean_square = (1..=HARMONICS)
            .map(|k| (0.1 / k as f64).powi(2) / 2.0)
            .sum::<f64>()
            + noise_std.powi(2);
        let cell = (0..model.cell_frames.len())
            .max_by_key(|&c| model.cell_frames[c])
            .expect("cells");
        let measured = &model.harmonic_db[cell * HARMONICS..(cell + 1) * HARMONICS];
        for k in 1..=HARMONICS {
            let expected = 20.0 * (0.1 / k as f64 / mean_square.sqrt()).log10();
            assert!(
                (f64::from(measured[k - 1]) - expected).abs() < 0.5,
                "harmonic {k}: {} dB, expected {expected:.2} dB",
                measured[k - 1]
            );
        }
        // White noise of variance s^2 has density s^2 / mean square in every
        // band. The harmonics peak 59 dB above the noise per bin, so in the
        // lowest band, which holds the strongest ones, what their side lobes
        // leak coherently (the subtraction assumes incoherent sums) still
        // reads up to 3 dB; elsewhere the residual is within 1 dB.
        let expected = 10.0 * (noise_std.powi(2) / mean_square).log10();
        let loudness_bin = cell % LOUDNESS_BINS;
        let row =
            &model.noise_voiced_db[loudness_bin * NOISE_BANDS..(loudness_bin + 1) * NOISE_BANDS];
        for (band, &db) in row.iter().enumerate() {
            let tolerance_db = if band == 0 { 3.0 } else { 1.0 };
            assert!(
                (f64::from(db) - expected).abs() < tolerance_db,
                "band {band}: {db} dB, expected {expected:.1} dB"
            );
        }
    }

    /// An empty cell an octave up reads the filled cell's envelope at the
    /// same frequencies: its fundamental sits where the source's second
    /// harmonic was (level shifted by 10 log10 of the f0 ratio).
    #[test]
    fn empty_cells_borrow_the_nearest_envelope_at_the_same_frequencies() {
        let voice = synthetic_voice(&[150.0], 1.0, 1.5, HARMONICS, |k| 0.1 / k as f64, 0.0005);
        let (model, _) = VoiceModel::train(&Engine::Cpu, &[voice]).expect("trains");
        let source = (0..model.cell_frames.len())
            .max_by_key(|&c| model.cell_frames[c])
            .expect("cells");
        let (f, l) = (source / LOUDNESS_BINS, source % LOUDNESS_BINS);
        let target = (f + 3) * LOUDNESS_BINS + l;
        assert_eq!(model.cell_frames[target], 0);
        let ratio = model.f0_centre_hz(f + 3) / model.f0_centre_hz(f);
        let from = &model.harmonic_db[source * HARMONICS..];
        let to = &model.harmonic_db[target * HARMONICS..];
        let position = ratio - 1.0;
        let low = position.floor() as usize;
        let w = position - low as f32;
        let expected = from[low] + w * (from[low + 1] - from[low]) + 10.0 * ratio.log10();
        assert!((to[0] - expected).abs() < 1e-4, "{} vs {expected}", to[0]);
        assert!(to[HARMONICS - 1] <= LEVEL_FLOOR_DB, "no data above K * f0");
    }

    #[test]
    fn stems_without_voiced_frames_or_with_bad_samples_are_refused() {
        let voice = catalog_vocal(1, 1.0);
        let silence = Audio::new(SAMPLE_RATE, vec![vec![0.0; 44_100]]);
        match VoiceModel::train(&Engine::Cpu, &[voice.clone(), silence]) {
            Err(VoiceModelError::NoVoicedFrames {
                stem: 1,
                frames: 87,
            }) => {}
            other => panic!("expected NoVoicedFrames for stem 1, got {other:?}"),
        }
        assert!(matches!(
            VoiceModel::train(&Engine::Cpu, &[]),
            Err(VoiceModelError::NoStems)
        ));
        let mut broken = voice.clone();
        broken.channels[1][100] = f32::NAN;
        let error = VoiceModel::train(&Engine::Cpu, &[broken]).unwrap_err();
        assert!(
            matches!(error, VoiceModelError::InvalidStem { stem: 0, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("not finite"), "{error}");
    }

    #[test]
    fn tampered_or_foreign_model_files_are_rejected() {
        let voice = synthetic_voice(&[200.0, 300.0], 0.5, 1.0, 16, |k| 0.1 / k as f64, 0.001);
        let (model, _) = VoiceModel::train(&Engine::Cpu, &[voice]).expect("trains");
        let bytes = model.to_bytes();
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(matches!(
            VoiceModel::from_bytes(&magic),
            Err(VoiceModelError::BadMagic)
        ));
        let mut version = bytes.clone();
        version[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            VoiceModel::from_bytes(&version),
            Err(VoiceModelError::UnsupportedVersion { found: 2 })
        ));
        assert!(matches!(
            VoiceModel::from_bytes(&bytes[..bytes.len() - 4]),
            Err(VoiceModelError::Length { .. })
        ));
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(
            VoiceModel::from_bytes(&huge),
            Err(VoiceModelError::InvalidField {
                field: "harmonics",
                ..
            })
        ));
        let mut not_a_number = bytes.clone();
        let last = not_a_number.len() - 4;
        not_a_number[last..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            VoiceModel::from_bytes(&not_a_number),
            Err(VoiceModelError::InvalidField {
                field: "noise_unvoiced_db",
                ..
            })
        ));
        let mut backwards = bytes.clone();
        backwards[28..32].copy_from_slice(&2000f32.to_le_bytes());
        assert!(matches!(
            VoiceModel::from_bytes(&backwards),
            Err(VoiceModelError::InvalidField {
                field: "f0_range_hz",
                ..
            })
        ));
    }
}
