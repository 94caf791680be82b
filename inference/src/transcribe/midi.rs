//! A Standard MIDI File of transcribed notes, as Basic Pitch's reference
//! writes one through pretty_midi (`note_events_to_midi`): format 1, 220
//! ticks per quarter note at 120 beats a minute, a tempo track, then one
//! track of Electric Piano 1 with each note's velocity `round(127 ×
//! amplitude)` and, for notes that overlap no other, their pitch bends
//! spread evenly over the note (4096 per semitone, clipped to ±2).

use super::notes::Note;

/// Ticks per quarter note (pretty_midi's default resolution).
const TICKS_PER_QUARTER: u16 = 220;
/// Microseconds per quarter note at 120 beats a minute.
const TEMPO_US: u32 = 500_000;
/// General MIDI program 5, "Electric Piano 1" (0-based 4).
const ELECTRIC_PIANO_1: u8 = 4;

fn ticks(seconds: f64) -> u32 {
    let per_second = f64::from(TICKS_PER_QUARTER) * 1e6 / f64::from(TEMPO_US);
    (seconds.max(0.0) * per_second).round() as u32
}

/// One timed event of the note track; the order key puts note-offs before
/// note-ons at the same tick, as pretty_midi sorts them.
struct Event {
    tick: u32,
    order: u8,
    bytes: Vec<u8>,
}

/// The `.mid` bytes of `notes` (times from [`Note::start_s`]).
pub fn midi_file(notes: &[Note]) -> Vec<u8> {
    let mut sorted: Vec<&Note> = notes.iter().collect();
    sorted.sort_by(|a, b| {
        (a.start_s(), a.end_s(), a.pitch_midi)
            .partial_cmp(&(b.start_s(), b.end_s(), b.pitch_midi))
            .unwrap()
    });
    // Bends only where no other note overlaps (MIDI bends a whole channel).
    let alone: Vec<bool> = sorted
        .iter()
        .enumerate()
        .map(|(i, n)| {
            !sorted
                .iter()
                .enumerate()
                .any(|(j, m)| i != j && m.start_s() < n.end_s() && n.start_s() < m.end_s())
        })
        .collect();
    let mut events = Vec::new();
    for (note, alone) in sorted.iter().zip(alone) {
        let velocity = (127.0 * note.amplitude).round().clamp(0.0, 127.0) as u8;
        let (start, end) = (ticks(note.start_s()), ticks(note.end_s()));
        events.push(Event {
            tick: start,
            order: 2,
            bytes: vec![0x90, note.pitch_midi, velocity],
        });
        events.push(Event {
            tick: end,
            order: 0,
            bytes: vec![0x80, note.pitch_midi, 0],
        });
        if alone && !note.bends.is_empty() {
            let count = note.bends.len();
            for (k, &bend) in note.bends.iter().enumerate() {
                let at = if count == 1 {
                    note.start_s()
                } else {
                    note.start_s() + (note.end_s() - note.start_s()) * k as f64 / (count - 1) as f64
                };
                let value =
                    ((f64::from(bend) * 4096.0 / 3.0).round() as i32).clamp(-8192, 8191) + 8192;
                events.push(Event {
                    tick: ticks(at),
                    order: 1,
                    bytes: vec![0xe0, (value & 0x7f) as u8, (value >> 7) as u8],
                });
            }
        }
    }
    events.sort_by_key(|e| (e.tick, e.order));

    let mut tempo = Vec::new();
    tempo.extend([0x00, 0xff, 0x51, 0x03]);
    tempo.extend(&TEMPO_US.to_be_bytes()[1..]);
    tempo.extend([0x00, 0xff, 0x2f, 0x00]);

    let mut track = vec![0x00, 0xc0, ELECTRIC_PIANO_1];
    let mut last = 0;
    for event in events {
        delta(&mut track, event.tick - last);
        last = event.tick;
        track.extend(event.bytes);
    }
    track.extend([0x00, 0xff, 0x2f, 0x00]);

    let mut file = Vec::new();
    file.extend(b"MThd");
    file.extend(6u32.to_be_bytes());
    file.extend(1u16.to_be_bytes());
    file.extend(2u16.to_be_bytes());
    file.extend(TICKS_PER_QUARTER.to_be_bytes());
    for body in [tempo, track] {
        file.extend(b"MTrk");
        file.extend((body.len() as u32).to_be_bytes());
        file.extend(body);
    }
    file
}

/// A variable-length quantity: seven bits a byte, most significant first.
fn delta(out: &mut Vec<u8>, mut value: u32) {
    let mut groups = vec![(value & 0x7f) as u8];
    value >>= 7;
    while value > 0 {
        groups.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.extend(groups.iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_length_quantities_match_the_smf_spec() {
        for (value, bytes) in [
            (0u32, vec![0x00]),
            (0x40, vec![0x40]),
            (0x7f, vec![0x7f]),
            (0x80, vec![0x81, 0x00]),
            (0x2000, vec![0xc0, 0x00]),
            (0x0fff_ffff, vec![0xff, 0xff, 0xff, 0x7f]),
        ] {
            let mut out = Vec::new();
            delta(&mut out, value);
            assert_eq!(out, bytes, "{value:#x}");
        }
    }

    #[test]
    fn a_note_becomes_an_on_and_an_off_at_its_ticks() {
        let note = Note {
            start_frame: 86,
            end_frame: 172,
            pitch_midi: 60,
            amplitude: 0.5,
            bends: vec![],
        };
        let file = midi_file(std::slice::from_ref(&note));
        assert_eq!(&file[..4], b"MThd");
        assert_eq!(&file[8..14], [0, 1, 0, 2, 0, 220]);
        let on = ticks(note.start_s());
        let track = &file[file.len() - 4 - 3 - 4..];
        // ... note on (delta = its start), note off, end of track.
        let mut expected = Vec::new();
        delta(&mut expected, ticks(note.end_s()) - on);
        expected.extend([0x80, 60, 0, 0x00, 0xff, 0x2f, 0x00]);
        assert_eq!(track[track.len() - expected.len()..], expected[..]);
        assert!(file.windows(3).any(|w| w == [0x90, 60, 64]));
    }
}
