//! Windowing the audio for the network and stitching its outputs back into
//! one posteriorgram, exactly as Basic Pitch's reference does
//! (`basic_pitch/inference.py`, 0.4.0: `get_audio_input`,
//! `window_audio_file`, `unwrap_output`): half the overlap of zeros before
//! the audio, windows of 43,844 samples every 36,164 (30 frames of 256
//! overlap), the last one zero-padded, 15 frames dropped from each side of
//! every window's output, and the result trimmed to
//! `floor(samples × 86 / 22050)` frames (86 is the reference's integer
//! frame rate, `22050 // 256`).

use super::model::{WINDOW_FRAMES, WINDOW_SAMPLES};

/// Overlapping frames between neighbouring windows.
pub const OVERLAP_FRAMES: usize = 30;
/// Samples per output frame.
pub const HOP_SAMPLES: usize = 256;
const OVERLAP_SAMPLES: usize = OVERLAP_FRAMES * HOP_SAMPLES;
/// Samples between window starts.
pub const WINDOW_HOP: usize = WINDOW_SAMPLES - OVERLAP_SAMPLES;
/// The reference's frame rate for trimming: `AUDIO_SAMPLE_RATE // FFT_HOP`.
pub const ANNOTATIONS_FPS: usize = 22_050 / HOP_SAMPLES;

/// How many windows `samples` samples of audio make.
pub fn window_count(samples: usize) -> usize {
    (OVERLAP_SAMPLES / 2 + samples).div_ceil(WINDOW_HOP)
}

/// Window `index` of `audio` (22,050 Hz mono), [`WINDOW_SAMPLES`] long.
pub fn window(audio: &[f32], index: usize) -> Vec<f32> {
    let lead = OVERLAP_SAMPLES / 2;
    (0..WINDOW_SAMPLES)
        .map(|k| {
            (index * WINDOW_HOP + k)
                .checked_sub(lead)
                .and_then(|i| audio.get(i))
                .copied()
                .unwrap_or(0.0)
        })
        .collect()
}

/// Frames of the stitched posteriorgram of `samples` samples.
pub fn frame_count(samples: usize) -> usize {
    samples * ANNOTATIONS_FPS / 22_050
}

/// Appends one window's output (`[172, bins]`) to `stitched`, without the
/// overlapping halves at its ends.
pub fn append_window(stitched: &mut Vec<f32>, window_output: &[f32], bins: usize) {
    debug_assert_eq!(window_output.len(), WINDOW_FRAMES * bins);
    let cut = OVERLAP_FRAMES / 2;
    stitched.extend_from_slice(&window_output[cut * bins..(WINDOW_FRAMES - cut) * bins]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_the_reference_layout() {
        assert_eq!(WINDOW_HOP, 36_164);
        assert_eq!(ANNOTATIONS_FPS, 86);
        // range(0, 3840 + n, 36164) has ceil((3840 + n) / 36164) starts.
        assert_eq!(window_count(1), 1);
        assert_eq!(window_count(WINDOW_HOP - 3840), 1);
        assert_eq!(window_count(WINDOW_HOP - 3840 + 1), 2);
        let audio: Vec<f32> = (1..=50_000).map(|i| i as f32).collect();
        let first = window(&audio, 0);
        assert_eq!(first[..3840], [0.0; 3840]);
        assert_eq!(first[3840], 1.0);
        let second = window(&audio, 1);
        assert_eq!(second[0], (WINDOW_HOP - 3840 + 1) as f32);
        assert_eq!(*second.last().unwrap(), 0.0, "zero-padded at the end");
        assert_eq!(frame_count(22_050), 86);
    }

    #[test]
    fn stitching_drops_fifteen_frames_each_side() {
        let output: Vec<f32> = (0..WINDOW_FRAMES).map(|f| f as f32).collect();
        let mut stitched = Vec::new();
        append_window(&mut stitched, &output, 1);
        assert_eq!(stitched.len(), 142);
        assert_eq!(stitched[0], 15.0);
        assert_eq!(*stitched.last().unwrap(), 156.0);
    }
}
