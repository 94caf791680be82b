//! Log-magnitude spectrogram images, for looking at what a step did to the
//! audio (the listen-check of a demo's input and output).
//!
//! One column per pixel: the channels are mixed to mono and each column is
//! the magnitude spectrum of one Hann-windowed 2048-sample frame centred at
//! that column's time (librosa's window and centring, the STFT's CPU twin's
//! FFT). Sampling frames at pixel times rather than taking the full STFT
//! keeps memory proportional to the image, not to the track. Rows are linear
//! in frequency, 0 Hz at the bottom and Nyquist at the top, each the loudest
//! bin it covers. Levels are dB relative to the loudest bin, the bottom
//! [`DYNAMIC_RANGE_DB`] mapped through the magma colour map (perceptually
//! uniform, readable in greyscale; Smith & van der Walt, matplotlib 1.5).

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

/// Renders `audio`'s spectrogram as a `width_px × height_px` RGB PNG at `path`.
pub fn render_png(
    audio: &Audio,
    path: &Path,
    width_px: u32,
    height_px: u32,
) -> Result<(), SpectrogramError> {
    let pixels = render_rgb(audio, width_px, height_px)?;
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
            let low = row * bins / height;
            let high = ((row + 1) * bins / height).max(low + 1).min(bins);
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

/// The magma colour at `t` in [0, 1].
fn magma(t: f32) -> [u8; 3] {
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
    fn a_tone_draws_a_bright_row_at_its_height_with_low_frequencies_at_the_bottom() {
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
        // A quarter of the way up from the bottom: row 64 - 1 - 16 = 47 from the top.
        let column = width - 5;
        let brightest = (0..height)
            .max_by_key(|&y| brightness(at(column, y)))
            .expect("rows");
        assert!(
            (46..=48).contains(&brightest),
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
    fn the_png_has_the_requested_size_and_bad_sizes_are_refused() {
        let audio = Audio::new(8_000, vec![tone(440.0, 8_000, 8_000)]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.png");
        render_png(&audio, &path, 120, 50).expect("writes");
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).expect("open"),
        ));
        let reader = decoder.read_info().expect("a PNG");
        assert_eq!((reader.info().width, reader.info().height), (120, 50));
        assert!(matches!(
            render_png(&audio, &dir.path().join("t.png"), 0, 50),
            Err(SpectrogramError::Size { .. })
        ));
        assert!(!dir.path().join("t.png").exists());
        let empty = Audio::new(8_000, vec![Vec::new()]);
        assert!(matches!(
            render_rgb(&empty, 10, 10),
            Err(SpectrogramError::Empty)
        ));
    }
}
