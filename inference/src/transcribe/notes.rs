//! Notes from the posteriorgrams, as Basic Pitch's reference makes them
//! (`basic_pitch/note_creation.py`, 0.4.0, `model_output_to_notes` with the
//! defaults of `predict`): onsets inferred from rises of the note
//! posteriorgram added to the predicted ones, onset peaks of at least 0.5
//! start notes that last while the note posteriorgram stays at or above
//! 0.3 (with 11 frames of tolerance), notes of 11 frames or fewer dropped,
//! the "melodia trick" adding notes from the energy left, and each note's
//! pitch bends read from the contour posteriorgram near its pitch.

use super::model::{CONTOUR_BINS, NOTE_BINS, WINDOW_FRAMES, WINDOW_SAMPLES};
use super::windows::HOP_SAMPLES;

/// The onset posterior a peak needs to start a note.
pub const ONSET_THRESHOLD: f32 = 0.5;
/// The note posterior a note needs to go on.
pub const FRAME_THRESHOLD: f32 = 0.3;
/// Notes this many frames long or shorter are dropped: 127.70 ms at
/// 22050/256 frames a second, rounded.
pub const MIN_NOTE_FRAMES: usize = 11;
/// Frames below the threshold a note may span before it ends.
const ENERGY_TOLERANCE: usize = 11;
/// MIDI number of the lowest bin (A0).
pub const MIDI_OFFSET: u8 = 21;
/// Contour bins either side of a note's pitch searched for its bend.
const BEND_TOLERANCE_BINS: usize = 25;

/// One note: frames `[start, end)` of the posteriorgram, its MIDI pitch,
/// its mean note posterior, and its pitch bend per frame in thirds of a
/// semitone.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub start_frame: usize,
    pub end_frame: usize,
    pub pitch_midi: u8,
    pub amplitude: f32,
    pub bends: Vec<i32>,
}

impl Note {
    /// Start time in seconds ([`frame_time`]).
    pub fn start_s(&self) -> f64 {
        frame_time(self.start_frame)
    }

    pub fn end_s(&self) -> f64 {
        frame_time(self.end_frame)
    }
}

/// The time of frame `frame` as the reference computes it
/// (`model_frames_to_time`): its hop's start, less a per-window offset for
/// the 0.73 frame by which a window's 172 frames overrun its samples, and
/// the reference's 1.8 ms alignment constant.
pub fn frame_time(frame: usize) -> f64 {
    let hop_s = HOP_SAMPLES as f64 / 22_050.0;
    let window_offset =
        hop_s * (WINDOW_FRAMES as f64 - WINDOW_SAMPLES as f64 / HOP_SAMPLES as f64) + 0.0018;
    frame as f64 * hop_s - window_offset * (frame / WINDOW_FRAMES) as f64
}

/// A posteriorgram: `frames × bins`, row-major.
pub struct Grid<'a> {
    pub values: &'a [f32],
    pub bins: usize,
}

impl Grid<'_> {
    fn frames(&self) -> usize {
        self.values.len() / self.bins
    }

    fn at(&self, frame: usize, bin: usize) -> f32 {
        self.values[frame * self.bins + bin]
    }
}

/// The notes of the stitched note, onset and contour posteriorgrams, by
/// start frame, then pitch, then end frame (the reference lists them in
/// the order it finds them: onset-started notes from the last onset back,
/// then the melodia trick's).
pub fn notes(note: &[f32], onset: &[f32], contour: &[f32]) -> Vec<Note> {
    let frames = Grid {
        values: note,
        bins: NOTE_BINS,
    };
    let n = frames.frames();
    let onsets = inferred_onsets(onset, note);
    let mut remaining = note.to_vec();
    let mut found = Vec::new();

    // Onset peaks (strict local maxima in time, never the first or last
    // frame), latest first and, within a frame, highest pitch first.
    let mut peaks = Vec::new();
    for t in 1..n.saturating_sub(1) {
        for f in 0..NOTE_BINS {
            let o = onsets[t * NOTE_BINS + f];
            if o > onsets[(t - 1) * NOTE_BINS + f]
                && o > onsets[(t + 1) * NOTE_BINS + f]
                && o >= ONSET_THRESHOLD
            {
                peaks.push((t, f));
            }
        }
    }
    for &(start, f) in peaks.iter().rev() {
        if start >= n - 1 {
            continue;
        }
        let mut i = start + 1;
        let mut k = 0;
        while i < n - 1 && k < ENERGY_TOLERANCE {
            if remaining[i * NOTE_BINS + f] < FRAME_THRESHOLD {
                k += 1;
            } else {
                k = 0;
            }
            i += 1;
        }
        i -= k;
        if i - start <= MIN_NOTE_FRAMES {
            continue;
        }
        for t in start..i {
            clear_around(&mut remaining, t, f);
        }
        found.push((start, i, f, mean(&frames, start, i, f)));
    }

    // The melodia trick: notes grown from the strongest energy left, both
    // ways in time, until none is above the threshold.
    while let Some((peak, value)) = argmax(&remaining) {
        if value <= FRAME_THRESHOLD {
            break;
        }
        let (middle, f) = (peak / NOTE_BINS, peak % NOTE_BINS);
        remaining[peak] = 0.0;
        let mut i = middle + 1;
        let mut k = 0;
        while i < n - 1 && k < ENERGY_TOLERANCE {
            if remaining[i * NOTE_BINS + f] < FRAME_THRESHOLD {
                k += 1;
            } else {
                k = 0;
            }
            clear_around(&mut remaining, i, f);
            i += 1;
        }
        let end = i - 1 - k;
        let mut i = middle as isize - 1;
        let mut k = 0;
        while i > 0 && k < ENERGY_TOLERANCE {
            if remaining[i as usize * NOTE_BINS + f] < FRAME_THRESHOLD {
                k += 1;
            } else {
                k = 0;
            }
            clear_around(&mut remaining, i as usize, f);
            i -= 1;
        }
        let start = (i + 1 + k as isize) as usize;
        if end <= start || end - start <= MIN_NOTE_FRAMES {
            continue;
        }
        found.push((start, end, f, mean(&frames, start, end, f)));
    }

    let contours = Grid {
        values: contour,
        bins: CONTOUR_BINS,
    };
    // In time order, lowest pitch first, whatever order they were found in.
    found.sort_by_key(|&(start, end, f, _)| (start, f, end));
    found
        .into_iter()
        .map(|(start, end, f, amplitude)| Note {
            start_frame: start,
            end_frame: end,
            pitch_midi: f as u8 + MIDI_OFFSET,
            amplitude,
            bends: bends(&contours, start, end, f),
        })
        .collect()
}

/// Zeroes the energy at `(t, f)` and in the bins either side.
fn clear_around(remaining: &mut [f32], t: usize, f: usize) {
    remaining[t * NOTE_BINS + f] = 0.0;
    if f + 1 < NOTE_BINS {
        remaining[t * NOTE_BINS + f + 1] = 0.0;
    }
    if f > 0 {
        remaining[t * NOTE_BINS + f - 1] = 0.0;
    }
}

fn mean(frames: &Grid, start: usize, end: usize, f: usize) -> f32 {
    // In f64, as numpy's mean accumulates f32 pairwise: closer to it than a
    // running f32 sum.
    let sum: f64 = (start..end).map(|t| f64::from(frames.at(t, f))).sum();
    (sum / (end - start) as f64) as f32
}

/// The first largest value and its index.
fn argmax(values: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best
}

/// The onset posteriorgram with onsets inferred from the note
/// posteriorgram's rises (`get_infered_onsets`, two frames of
/// difference) added, scaled to the onsets' peak. Where the note
/// posteriorgram never rises, nothing is inferred (the reference divides
/// zero by zero there and, through NaN, also finds no peak).
fn inferred_onsets(onset: &[f32], note: &[f32]) -> Vec<f32> {
    let n = note.len() / NOTE_BINS;
    let at = |t: isize, f: usize| {
        if t < 0 {
            0.0
        } else {
            note[t as usize * NOTE_BINS + f]
        }
    };
    let mut diff = vec![0f32; note.len()];
    for t in 2..n {
        for f in 0..NOTE_BINS {
            let now = at(t as isize, f);
            let rise = (now - at(t as isize - 1, f)).min(now - at(t as isize - 2, f));
            diff[t * NOTE_BINS + f] = rise.max(0.0);
        }
    }
    let onset_peak = onset.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let diff_peak = diff.iter().copied().fold(0.0, f32::max);
    if diff_peak > 0.0 {
        for d in &mut diff {
            *d = onset_peak * *d / diff_peak;
        }
    }
    onset.iter().zip(&diff).map(|(&o, &d)| o.max(d)).collect()
}

/// The pitch bend of each frame of a note at bin `f`, in thirds of a
/// semitone (`get_pitch_bends`): the contour bin of greatest value near
/// the note's pitch, weighted by a Gaussian (51 bins, σ = 5) centred on it.
fn bends(contours: &Grid, start: usize, end: usize, f: usize) -> Vec<i32> {
    let tolerance = BEND_TOLERANCE_BINS;
    let centre = 3 * f;
    let first = centre.saturating_sub(tolerance);
    let last = (centre + tolerance + 1).min(CONTOUR_BINS);
    let gaussian_offset = tolerance.saturating_sub(centre);
    let shift = tolerance - gaussian_offset;
    (start..end)
        .map(|t| {
            let mut best = (0usize, f32::NEG_INFINITY);
            for (k, bin) in (first..last).enumerate() {
                let x = (gaussian_offset + k) as f32 - tolerance as f32;
                let weight = (-0.5 * (x / 5.0).powi(2)).exp();
                let value = contours.at(t, bin) * weight;
                if value > best.1 {
                    best = (k, value);
                }
            }
            best.0 as i32 - shift as i32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A note posteriorgram with one note at bin `f` from `start` to `end`.
    fn one_note(frames: usize, f: usize, start: usize, end: usize, level: f32) -> Vec<f32> {
        let mut grid = vec![0.0; frames * NOTE_BINS];
        for t in start..end {
            grid[t * NOTE_BINS + f] = level;
        }
        grid
    }

    #[test]
    fn an_onset_starts_a_note_that_lasts_while_the_frames_stay_on() {
        let frames = 100;
        let note = one_note(frames, 48, 20, 60, 0.8);
        let mut onset = vec![0.0; frames * NOTE_BINS];
        onset[20 * NOTE_BINS + 48] = 0.9;
        let contour = vec![0.0; frames * CONTOUR_BINS];
        let found = notes(&note, &onset, &contour);
        assert_eq!(found.len(), 1, "{found:?}");
        let n = &found[0];
        assert_eq!((n.start_frame, n.end_frame, n.pitch_midi), (20, 60, 69));
        assert!((n.amplitude - 0.8).abs() < 1e-6);
        assert_eq!(n.bends.len(), 40);
    }

    #[test]
    fn short_notes_are_dropped_and_silence_has_none() {
        let frames = 100;
        let note = one_note(frames, 10, 30, 41, 0.9);
        let silent = vec![0.0; frames * NOTE_BINS];
        let contour = vec![0.0; frames * CONTOUR_BINS];
        assert_eq!(notes(&note, &silent, &contour), []);
        assert_eq!(notes(&silent, &silent, &contour), []);
    }

    #[test]
    fn bends_follow_the_contour_in_thirds_of_a_semitone() {
        let frames = 60;
        let note = one_note(frames, 40, 5, 30, 0.9);
        let mut contour = vec![0.0; frames * CONTOUR_BINS];
        for t in 5..30 {
            // A third of a semitone sharp, then two thirds flat.
            let bin = if t < 15 { 3 * 40 + 1 } else { 3 * 40 - 2 };
            contour[t * CONTOUR_BINS + bin] = 1.0;
        }
        let onset = vec![0.0; frames * NOTE_BINS];
        // No onset: the melodia trick finds the note. Like the reference,
        // it ends at the last frame above the threshold, exclusive.
        let found = notes(&note, &onset, &contour);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start_frame, found[0].end_frame), (5, 29));
        assert_eq!(found[0].bends[..10], [1; 10]);
        assert_eq!(found[0].bends[10..], [-2; 14]);
    }

    #[test]
    fn frame_times_follow_the_reference() {
        assert_eq!(frame_time(0), 0.0);
        assert!((frame_time(86) - 86.0 * 256.0 / 22_050.0).abs() < 1e-12);
        // From the second window of frames on, the window offset applies.
        let offset = 256.0 / 22_050.0 * (172.0 - 43_844.0 / 256.0) + 0.0018;
        assert!((frame_time(172) - (172.0 * 256.0 / 22_050.0 - offset)).abs() < 1e-12);
    }
}
