//! A sung melody as the generation pipeline logs it: one line of notes,
//! none overlapping, each with its start and end in milliseconds and its
//! MIDI pitch. Only decisions go in (a note is there or not, at a pitch),
//! not the network's float posteriors or amplitudes, so the GPU pass and
//! its CPU twin, whose floats differ in the last bits, give the same bytes
//! and the log can hold their hash.

use super::notes::frame_time;
use super::Note;
use serde::{Deserialize, Serialize};

/// One note of the melody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelodyNote {
    pub start_ms: u32,
    pub end_ms: u32,
    pub pitch_midi: u8,
}

impl MelodyNote {
    /// The note's pitch in Hz (A4 = 440 Hz, equal temperament).
    pub fn pitch_hz(&self) -> f64 {
        440.0 * 2f64.powf((f64::from(self.pitch_midi) - 69.0) / 12.0)
    }
}

/// The melody's notes in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Melody {
    pub notes: Vec<MelodyNote>,
}

/// Why a note list could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("not a melody note list: {0}")]
pub struct MelodyError(String);

fn to_ms(seconds: f64) -> u32 {
    (seconds * 1000.0).round() as u32
}

impl Melody {
    /// The single line a voice sings from Basic Pitch's polyphonic notes.
    /// A sung tone also lights up its overtones, so where notes overlap the
    /// strongest is kept (ties to the lower pitch, then the earlier start).
    /// A weaker note that only touches a kept one at its ends (legato: the
    /// next note's onset a frame before the last one's release) is trimmed
    /// to the gap; one that loses more than half its length is dropped.
    pub fn from_notes(notes: &[Note]) -> Melody {
        let mut by_strength: Vec<&Note> = notes.iter().collect();
        by_strength.sort_by(|a, b| {
            b.amplitude
                .total_cmp(&a.amplitude)
                .then(a.pitch_midi.cmp(&b.pitch_midi))
                .then(a.start_frame.cmp(&b.start_frame))
        });
        // (start frame, end frame, pitch) of the notes kept so far.
        let mut kept: Vec<(usize, usize, u8)> = Vec::new();
        for note in by_strength {
            let (mut start, mut end) = (note.start_frame, note.end_frame);
            for &(k_start, k_end, _) in &kept {
                if k_start <= start && start < k_end {
                    start = k_end;
                }
                if k_start < end && end <= k_end {
                    end = k_start;
                }
            }
            let covered = kept
                .iter()
                .any(|&(k_start, k_end, _)| start < k_end && k_start < end);
            let length = end.saturating_sub(start);
            if !covered && length > 0 && 2 * length >= note.end_frame - note.start_frame {
                kept.push((start, end, note.pitch_midi));
            }
        }
        kept.sort();
        Melody {
            notes: kept
                .into_iter()
                .map(|(start, end, pitch_midi)| MelodyNote {
                    start_ms: to_ms(frame_time(start)),
                    end_ms: to_ms(frame_time(end)),
                    pitch_midi,
                })
                .collect(),
        }
    }

    /// The note list as stored and hashed: compact JSON of integers, in a
    /// fixed field order, so the same notes are always the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a melody serializes")
    }

    /// Reads a stored note list, checking that its notes are in order and
    /// do not overlap.
    pub fn from_bytes(bytes: &[u8]) -> Result<Melody, MelodyError> {
        let melody: Melody =
            serde_json::from_slice(bytes).map_err(|e| MelodyError(e.to_string()))?;
        let mut last_end = 0;
        for (i, note) in melody.notes.iter().enumerate() {
            if note.end_ms <= note.start_ms || note.start_ms < last_end {
                return Err(MelodyError(format!(
                    "note {i} ({}..{} ms) is empty or overlaps the one before",
                    note.start_ms, note.end_ms
                )));
            }
            last_end = note.end_ms;
        }
        Ok(melody)
    }

    /// The note sounding at `time_s`, if any.
    pub fn note_at(&self, time_s: f64) -> Option<&MelodyNote> {
        let ms = time_s * 1000.0;
        let after = self.notes.partition_point(|n| f64::from(n.start_ms) <= ms);
        after
            .checked_sub(1)
            .map(|i| &self.notes[i])
            .filter(|n| ms < f64::from(n.end_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(start_frame: usize, end_frame: usize, pitch_midi: u8, amplitude: f32) -> Note {
        Note {
            start_frame,
            end_frame,
            pitch_midi,
            amplitude,
            bends: Vec::new(),
        }
    }

    #[test]
    fn overlapping_overtones_give_way_to_the_strongest_note() {
        let melody = Melody::from_notes(&[
            note(0, 40, 69, 0.8),
            // The octave above, weaker, over the same span.
            note(2, 38, 81, 0.4),
            note(50, 90, 71, 0.6),
            // A fifth above the second note, weaker, over most of it.
            note(60, 100, 78, 0.3),
            // Legato: the next note starts a frame before this one ends.
            note(89, 130, 72, 0.5),
        ]);
        let spans: Vec<(u32, u8)> = melody
            .notes
            .iter()
            .map(|n| (n.start_ms, n.pitch_midi))
            .collect();
        // The legato note is trimmed to start where the stronger one ends.
        assert_eq!(spans, vec![(0, 69), (580, 71), (1045, 72)]);
        // 40 frames of 256 samples at 22,050 Hz are 464 ms.
        assert_eq!(melody.notes[0].start_ms, 0);
        assert_eq!(melody.notes[0].end_ms, 464);
        assert_eq!(melody.notes[1].start_ms, 580);
        assert!((melody.notes[0].pitch_hz() - 440.0).abs() < 1e-9);
    }

    #[test]
    fn the_note_list_round_trips_through_its_bytes_and_bad_lists_are_refused() {
        let melody = Melody {
            notes: vec![
                MelodyNote {
                    start_ms: 100,
                    end_ms: 400,
                    pitch_midi: 64,
                },
                MelodyNote {
                    start_ms: 400,
                    end_ms: 900,
                    pitch_midi: 67,
                },
            ],
        };
        let bytes = melody.to_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"notes":[{"start_ms":100,"end_ms":400,"pitch_midi":64},{"start_ms":400,"end_ms":900,"pitch_midi":67}]}"#
        );
        assert_eq!(Melody::from_bytes(&bytes).unwrap(), melody);
        assert_eq!(melody.note_at(0.05), None);
        assert_eq!(melody.note_at(0.1).map(|n| n.pitch_midi), Some(64));
        assert_eq!(melody.note_at(0.4).map(|n| n.pitch_midi), Some(67));
        assert_eq!(melody.note_at(0.9), None);
        for bad in [
            &br#"{"notes":[{"start_ms":500,"end_ms":400,"pitch_midi":64}]}"#[..],
            br#"{"notes":[{"start_ms":0,"end_ms":400,"pitch_midi":64},{"start_ms":300,"end_ms":500,"pitch_midi":60}]}"#,
            br#"{"notes":[{"start_ms":0,"end_ms":400,"pitch_midi":300}]}"#,
            br#"{"notes":[],"x":1}"#,
            b"\xff",
        ] {
            assert!(Melody::from_bytes(bad).is_err());
        }
    }
}
