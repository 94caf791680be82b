//! Log-magnitude spectrogram images, for looking at what a step did to the
//! audio (the listen-check of a demo's input and output).
//!
//! One column per pixel: the channels are mixed to mono and each column is
//! the magnitude spectrum of one Hann-windowed 2048-sample frame centred at
//! that column's time (librosa's window and centring, the STFT's CPU twin's
//! FFT). Sampling frames at pixel times rather than taking the full STFT
//! keeps memory proportional to the image, not to the track. Rows are
//! logarithmic in frequency, [`LOWEST_HZ`] at the bottom and Nyquist at the
//! top, as pitch is heard; each row is the loudest bin it covers. Levels are
//! dB relative to the loudest bin, the bottom [`DYNAMIC_RANGE_DB`] mapped
//! through the magma colour map (perceptually uniform, readable in
//! greyscale; Smith & van der Walt, matplotlib 1.5).
//!
//! [`render_png`] draws the plot inside a figure ([`figure`]): a title,
//! time (s) and frequency (Hz) axes with ticks, and a dB colour scale.

use crate::audio::Audio;
use crate::kernels::mono_mix;
use crate::kernels::stft::StftConfig;
use realfft::RealFftPlanner;
use std::path::{Path, PathBuf};

/// Largest accepted image side, pixels.
pub const SIDE_PX_MAX: u32 = 8192;
/// Levels shown below the loudest bin (librosa's `top_db`).
pub const DYNAMIC_RANGE_DB: f32 = 80.0;
/// Analysis frame, samples.
const N_FFT: usize = 2048;
/// The frequency at the bottom row: the low end of hearing.
pub const LOWEST_HZ: f64 = 20.0;

pub mod figure;

/// matplotlib's magma at 0, 1/8, ..., 1 (sRGB); interpolated linearly between.
const MAGMA: [[f32; 3]; 9] = [
    [0.0, 0.0, 4.0],
    [28.0, 16.0, 68.0],
    [79.0, 18.0, 123.0],
    [129.0, 37.0, 129.0],
    [181.0, 54.0, 122.0],
    [229.0, 80.0, 100.0],
    [251.0, 135.0, 97.0],
    [254.0, 194.0, 135.0],
    [252.0, 253.0, 191.0],
];

#[derive(Debug, thiserror::Error)]
pub enum SpectrogramError {
    #[error("image size {width_px}x{height_px} px: each side must be in 1..={SIDE_PX_MAX}")]
    Size { width_px: u32, height_px: u32 },
    #[error("the audio is empty: there is nothing to draw")]
    Empty,
    #[error("writing {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Renders `audio`'s spectrogram as an RGB PNG at `path`: a plot of
/// `width_px × height_px` inside a figure with `title`, axes and a colour
/// scale (the PNG is [`figure::MARGIN_PX`] larger each way).
pub fn render_png(
    audio: &Audio,
    path: &Path,
    width_px: u32,
    height_px: u32,
    title: &str,
) -> Result<(), SpectrogramError> {
    let plot = render_rgb(audio, width_px, height_px)?;
    let (pixels, width_px, height_px) = figure::compose(&plot, width_px, height_px, audio, title);
    let failed = |reason: String| SpectrogramError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width_px, height_px);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| failed(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| failed(e.to_string()))?;
        writer.finish().map_err(|e| failed(e.to_string()))?;
    }
    std::fs::write(path, bytes).map_err(|e| failed(e.to_string()))
}

/// The image as row-major RGB bytes, top row first.
pub fn render_rgb(
    audio: &Audio,
    width_px: u32,
    height_px: u32,
) -> Result<Vec<u8>, SpectrogramError> {
    let sides = 1..=SIDE_PX_MAX;
    if !sides.contains(&width_px) || !sides.contains(&height_px) {
        return Err(SpectrogramError::Size {
            width_px,
            height_px,
        });
    }
    if audio.frames() == 0 {
        return Err(SpectrogramError::Empty);
    }
    let (width, height) = (width_px as usize, height_px as usize);
    let mono = mono_mix(audio);
    let config = StftConfig {
        n_fft: N_FFT,
        hop: N_FFT / 4,
    };
    let window = config.window();
    let bins = config.bins();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    // levels[row * width + column], row 0 at the bottom (0 Hz).
    let mut levels = vec![0.0f32; width * height];
    for column in 0..width {
        let centre = ((column as f64 + 0.5) * mono.len() as f64 / width as f64) as isize;
        let start = centre - config.pad() as isize;
        for (i, value) in input.iter_mut().enumerate() {
            let s = start + i as isize;
            *value = if s >= 0 && (s as usize) < mono.len() {
                mono[s as usize] * window[i]
            } else {
                0.0
            };
        }
        fft.process_with_scratch(&mut input, &mut output, &mut scratch)
            .expect("buffers come from the plan");
        for row in 0..height {
            let (low, high) = row_bins(row, height, audio.sample_rate, bins);
            levels[row * width + column] = output[low..high]
                .iter()
                .map(|c| c.norm())
                .fold(0.0f32, f32::max);
        }
    }
    let peak = levels.iter().copied().fold(0.0f32, f32::max);
    let mut pixels = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        let row = height - 1 - y;
        for &level in &levels[row * width..(row + 1) * width] {
            let db = if peak > 0.0 && level > 0.0 {
                20.0 * (level / peak).log10()
            } else {
                -DYNAMIC_RANGE_DB
            };
            pixels.extend(magma(1.0 + db.max(-DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB));
        }
    }
    Ok(pixels)
}

/// The frequency at `position` (0 at the bottom edge of the plot, 1 at
/// the top) for audio at `sample_rate`.
pub fn frequency_at(position: f64, sample_rate: u32) -> f64 {
    let nyquist = f64::from(sample_rate) / 2.0;
    LOWEST_HZ * (nyquist / LOWEST_HZ).powf(position)
}

/// Where `hz` is drawn: 0 at the bottom edge of the plot, 1 at the top.
pub fn position_of(hz: f64, sample_rate: u32) -> f64 {
    let nyquist = f64::from(sample_rate) / 2.0;
    (hz / LOWEST_HZ).ln() / (nyquist / LOWEST_HZ).ln()
}

/// The FFT bins row `row` of `height` covers, at least one.
fn row_bins(row: usize, height: usize, sample_rate: u32, bins: usize) -> (usize, usize) {
    let bin_hz = f64::from(sample_rate) / N_FFT as f64;
    let low_hz = frequency_at(row as f64 / height as f64, sample_rate);
    let high_hz = frequency_at((row + 1) as f64 / height as f64, sample_rate);
    let low = ((low_hz / bin_hz).round() as usize).min(bins - 1);
    let high = ((high_hz / bin_hz).round() as usize).clamp(low + 1, bins);
    (low, high)
}

/// The magma colour at `t` in [0, 1].
pub(crate) fn magma(t: f32) -> [u8; 3] {
    let position = t.clamp(0.0, 1.0) * (MAGMA.len() - 1) as f32;
    let low = (position.floor() as usize).min(MAGMA.len() - 2);
    let w = position - low as f32;
    let mut rgb = [0u8; 3];
    for (c, out) in rgb.iter_mut().enumerate() {
        let value = MAGMA[low][c] + w * (MAGMA[low + 1][c] - MAGMA[low][c]);
        *out = value.round() as u8;
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::phase_vocoder::tests::tone;

    fn brightness(pixel: &[u8]) -> u32 {
        pixel.iter().map(|&c| u32::from(c)).sum()
    }

    #[test]
    fn a_tone_draws_a_bright_row_at_its_log_frequency_height_with_low_frequencies_at_the_bottom() {
        let rate = 22_050;
        // 0.5 s of silence, then 0.5 s of a 2756.25 Hz tone (1/4 of Nyquist).
        let mut samples = vec![0.0f32; 11_025];
        samples.extend(tone(2_756.25, 11_025, rate));
        let audio = Audio::new(rate, vec![samples]);
        let (width, height) = (40u32, 64u32);
        let pixels = render_rgb(&audio, width, height).expect("renders");
        assert_eq!(pixels.len(), (width * height * 3) as usize);
        let at = |x: u32, y: u32| {
            let i = ((y * width + x) * 3) as usize;
            &pixels[i..i + 3]
        };
        // ln(2756.25 / 20) / ln(11025 / 20) = 0.780 of the way up from the
        // bottom: row 49.9 from the bottom, 64 - 1 - 49 = 14 from the top.
        let column = width - 5;
        let brightest = (0..height)
            .max_by_key(|&y| brightness(at(column, y)))
            .expect("rows");
        assert!(
            (13..=15).contains(&brightest),
            "tone drawn at row {brightest}"
        );
        assert_eq!(
            at(column, brightest),
            [252, 253, 191],
            "peak is magma's top"
        );
        // Silence before the tone is magma's bottom colour.
        assert_eq!(at(2, brightest), [0, 0, 4]);
    }

    #[test]
    fn the_png_is_the_plot_in_its_figure_and_bad_sizes_are_refused() {
        let audio = Audio::new(8_000, vec![tone(440.0, 8_000, 8_000)]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.png");
        render_png(&audio, &path, 120, 50, "a tone").expect("writes");
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).expect("open"),
        ));
        let reader = decoder.read_info().expect("a PNG");
        let (x, y) = figure::MARGIN_PX;
        assert_eq!(
            (reader.info().width, reader.info().height),
            (120 + x, 50 + y)
        );
        assert!(matches!(
            render_png(&audio, &dir.path().join("t.png"), 0, 50, "t"),
            Err(SpectrogramError::Size { .. })
        ));
        assert!(!dir.path().join("t.png").exists());
        let empty = Audio::new(8_000, vec![Vec::new()]);
        assert!(matches!(
            render_rgb(&empty, 10, 10),
            Err(SpectrogramError::Empty)
        ));
    }

    #[test]
    fn frequencies_and_positions_are_inverse_on_a_log_scale() {
        assert!((position_of(LOWEST_HZ, 44_100)).abs() < 1e-12);
        assert!((position_of(22_050.0, 44_100) - 1.0).abs() < 1e-12);
        // Each octave takes the same height.
        let octave = position_of(880.0, 44_100) - position_of(440.0, 44_100);
        let next = position_of(1_760.0, 44_100) - position_of(880.0, 44_100);
        assert!((octave - next).abs() < 1e-12);
        assert!((frequency_at(position_of(1_000.0, 44_100), 44_100) - 1_000.0).abs() < 1e-6);
    }
}
