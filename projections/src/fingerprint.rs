//! Acoustic-fingerprint matching for lineage: finds the published derivative
//! a re-encoded, resampled, gain-changed or trimmed copy came from.
//!
//! Derivatives carry the Chromaprint fingerprint of their decoded output in
//! `generation.derivative-published` ([`AcousticFingerprint`]). Comparing a
//! query with every derivative would not scale, so the fold keeps an inverted
//! index (`projection_fingerprint_key`), as AcoustID does: each item's top
//! [`KEY_BITS`] bits are a key, and each derivative is listed once under each
//! distinct key of its fingerprint. A query votes over its own keys, and only
//! the [`CANDIDATES_MAX`] derivatives with the most keys in common are
//! aligned and scored with Chromaprint's matcher ([`compare`]).

use base64::Engine as _;
use rusty_chromaprint::{match_fingerprints, Configuration};
use schemas::generation::{AcousticFingerprint, FINGERPRINT_CHROMAPRINT_TEST2};
use serde::Serialize;
use std::collections::BTreeSet;

/// The most items a fingerprint may hold: 20 minutes (the longest audio
/// generation accepts) at one item per 1365 samples of 11025 Hz is 9 692.
pub const ITEMS_MAX: usize = 12_000;
/// The top bits of an item that form its index key. Chromaprint's items are
/// 16 two-bit classifier outputs; a copy's items differ from the original's
/// in a few bits each, so a short key survives intact for a good share of
/// items while 2^20 keys still spread 10k derivatives' postings thin.
pub const KEY_BITS: u32 = 20;
/// Keys listed for more derivatives than this (near-silence, a held chord)
/// say little about which one matches and are skipped at query time, which
/// bounds the rows a query reads.
pub const KEY_POSTINGS_MAX: usize = 1_000;
/// The most distinct keys of a query that vote (spread evenly over it).
pub const QUERY_KEYS_MAX: usize = 4_096;
/// The most derivatives aligned and scored with the full matcher per query.
pub const CANDIDATES_MAX: usize = 8;
/// A derivative must share at least this many keys with the query to be a
/// candidate at all: unrelated audio shares only a stray few.
pub const CANDIDATE_VOTES_MIN: u32 = 4;
/// A segment counts as a match only when at least this share of its
/// fingerprint bits agree, in basis points (8500: at most 4.8 of 32 bits
/// differ per item on average). Unrelated audio agrees in about half its
/// bits (each is a coin flip), and Chromaprint's own matcher keeps segments
/// down to 6875 bp (10 differing bits), which lets chance alignments of
/// similar music through: two different songs of the sample catalog, same
/// instruments, aligned at 7729 bp over 3.7 s. Copies of a derivative that
/// were trimmed, or changed in gain and resampled to 22.05 kHz, scored
/// 9500 to 9940 bp.
pub const SCORE_BP_MIN: u32 = 8_500;
/// And it must last at least this long: short agreements happen by chance
/// between pieces with the same instruments in the same key.
pub const MATCH_DURATION_MS_MIN: u64 = 5_000;

/// Chromaprint's analysis rate, and samples per item at that rate
/// (`frame_size - frame_overlap` of its default configuration, 4096 / 3).
const ANALYSIS_RATE_HZ: u64 = 11_025;
const SAMPLES_PER_ITEM: u64 = 1_365;

/// Why a recorded fingerprint could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error(
        "fingerprint algorithm {0:?} is not supported; expected {FINGERPRINT_CHROMAPRINT_TEST2:?}"
    )]
    Algorithm(String),
    #[error("fingerprint items are not base64: {0}")]
    Base64(String),
    #[error("fingerprint items are {0} bytes, not a whole number of 32-bit items")]
    Length(usize),
    #[error("fingerprint has {0} items, more than the {ITEMS_MAX} of 20 minutes of audio")]
    TooLong(usize),
}

/// The items of a recorded fingerprint.
pub fn items_of(record: &AcousticFingerprint) -> Result<Vec<u32>, FingerprintError> {
    if record.algorithm != FINGERPRINT_CHROMAPRINT_TEST2 {
        return Err(FingerprintError::Algorithm(record.algorithm.clone()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.items)
        .map_err(|e| FingerprintError::Base64(e.to_string()))?;
    if bytes.len() % 4 != 0 {
        return Err(FingerprintError::Length(bytes.len()));
    }
    if bytes.len() / 4 > ITEMS_MAX {
        return Err(FingerprintError::TooLong(bytes.len() / 4));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// One key in this many is indexed, chosen by the key's value (a hash of
/// it), not by its place in the audio: a trimmed copy's items sit at other
/// places, but each key is kept or dropped the same way on both sides. A
/// 3-minute derivative then adds about 360 index rows instead of 1400,
/// which is what a rebuild over thousands of derivatives spends its time
/// on, while a 20-second clip still brings dozens of votes.
pub const KEY_SAMPLING: u32 = 4;

/// The distinct index keys of a fingerprint, ascending.
pub fn index_keys(items: &[u32]) -> Vec<u32> {
    let keys: BTreeSet<u32> = items
        .iter()
        .map(|item| key_of(*item))
        .filter(|key| is_sampled(*key))
        .collect();
    keys.into_iter().collect()
}

/// Whether `key` is one of the indexed ones: the top bits of a
/// multiplicative hash (Knuth's, by the golden ratio) depend on every bit of
/// the key, so neighbouring keys are spread over the kept and the dropped.
fn is_sampled(key: u32) -> bool {
    (u64::from(key.wrapping_mul(0x9E37_79B1)) * u64::from(KEY_SAMPLING)) >> 32 == 0
}

/// The keys a query votes with: its distinct keys, at most
/// [`QUERY_KEYS_MAX`] of them taken evenly across the sorted set, so a long
/// query reads a bounded number of postings.
pub fn query_keys(items: &[u32]) -> Vec<u32> {
    let keys = index_keys(items);
    if keys.len() <= QUERY_KEYS_MAX {
        return keys;
    }
    (0..QUERY_KEYS_MAX)
        .map(|i| keys[i * keys.len() / QUERY_KEYS_MAX])
        .collect()
}

fn key_of(item: u32) -> u32 {
    item >> (32 - KEY_BITS)
}

/// Where and how well a query matched a derivative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FingerprintMatch {
    /// The share of fingerprint bits that agree over the matched segment, in
    /// basis points: 10000 for identical audio, about 5000 for unrelated.
    pub score_bp: u32,
    /// Where the segment starts in the queried audio.
    pub query_start_ms: u64,
    /// Where the segment starts in the derivative's output.
    pub derivative_start_ms: u64,
    pub duration_ms: u64,
}

impl FingerprintMatch {
    /// Whether the match is strong and long enough to trace a copy by.
    pub fn is_accepted(&self) -> bool {
        self.score_bp >= SCORE_BP_MIN && self.duration_ms >= MATCH_DURATION_MS_MIN
    }
}

/// Aligns `query` with `derivative` and scores the longest segment that
/// agrees (Chromaprint's matcher: offset voting on the items' top 12 bits,
/// then bit errors along the best offset, split where they jump). `None`
/// when no segment agrees at all; check [`FingerprintMatch::is_accepted`].
pub fn compare(query: &[u32], derivative: &[u32]) -> Option<FingerprintMatch> {
    if query.len() > ITEMS_MAX || derivative.len() > ITEMS_MAX {
        // Both are bounded where they are read; the matcher's own limit is
        // far above this.
        return None;
    }
    let segments = match_fingerprints(query, derivative, &Configuration::preset_test2()).ok()?;
    let best = segments.iter().max_by(|a, b| {
        a.items_count
            .cmp(&b.items_count)
            .then(b.score.total_cmp(&a.score))
    })?;
    // The matcher's score is the mean number of differing bits of 32.
    let score_bp = ((32.0 - best.score.clamp(0.0, 32.0)) / 32.0 * 10_000.0).round() as u32;
    Some(FingerprintMatch {
        score_bp,
        query_start_ms: items_to_ms(best.offset1),
        derivative_start_ms: items_to_ms(best.offset2),
        duration_ms: items_to_ms(best.items_count),
    })
}

/// The length of `items` fingerprint items in milliseconds.
pub fn items_to_ms(items: usize) -> u64 {
    items as u64 * SAMPLES_PER_ITEM * 1_000 / ANALYSIS_RATE_HZ
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lineage::{lineage, render_text, AudioIdentity, LineageAnswer, LineageQuery};
    use crate::runner::Projections;
    use ledger::store::sqlite::{SqliteConfig, SqliteStore};
    use ledger::store::{AppendRequest, EventStore, ExpectedVersion};
    use ledger::NewEvent;
    use rusty_chromaprint::Fingerprinter;
    use schemas::generation::{generation_stream, DERIVATIVE_PUBLISHED};
    use std::f64::consts::TAU;
    use uuid::Uuid;

    /// A synthesized song: a chord progression (root, third, fifth and an
    /// octave) with a plucked envelope per beat and a melody on top, from a
    /// seed that picks the progression, melody and tempo, so two seeds are
    /// two unrelated pieces.
    pub(crate) fn song(seed: u64, sample_rate: u32, seconds: f64) -> Vec<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let tonic = 48 + next(12) as i32;
        let beat_s = 60.0 / (90 + next(60)) as f64;
        let progression: Vec<i32> = (0..8)
            .map(|_| [0, 5, 7, 9, 2, 4][next(6) as usize])
            .collect();
        let melody: Vec<i32> = (0..32)
            .map(|_| [0, 2, 4, 5, 7, 9, 11, 12][next(8) as usize])
            .collect();
        let hz = |midi: i32| 440.0 * 2f64.powf((midi - 69) as f64 / 12.0);
        let frames = (seconds * sample_rate as f64) as usize;
        (0..frames)
            .map(|i| {
                let t = i as f64 / sample_rate as f64;
                let beat = (t / beat_s) as usize;
                let in_beat = t - beat as f64 * beat_s;
                let root = tonic + progression[(beat / 4) % progression.len()];
                let envelope = (-in_beat * 3.0).exp();
                let chord: f64 = [0, 4, 7, 12]
                    .iter()
                    .map(|step| (TAU * hz(root + step) * t).sin())
                    .sum();
                let lead = (TAU * hz(tonic + 12 + melody[beat % melody.len()]) * t).sin();
                0.08 * chord * envelope + 0.2 * lead * (0.5 + 0.5 * envelope)
            })
            .collect()
    }

    /// The Chromaprint items of mono `samples` at `sample_rate`.
    pub(crate) fn items(samples: &[f64], sample_rate: u32) -> Vec<u32> {
        let pcm: Vec<i16> = samples
            .iter()
            .map(|s| (s.clamp(-1.0, 1.0) * f64::from(i16::MAX)).round() as i16)
            .collect();
        let mut printer = Fingerprinter::new(&Configuration::preset_test2());
        printer.start(sample_rate, 1).unwrap();
        printer.consume(&pcm);
        printer.finish();
        printer.fingerprint().to_vec()
    }

    /// Linear-interpolation resampling, cruder than any real encoder's.
    pub(crate) fn resample(samples: &[f64], from_hz: u32, to_hz: u32) -> Vec<f64> {
        let frames = samples.len() as u64 * u64::from(to_hz) / u64::from(from_hz);
        (0..frames as usize)
            .map(|i| {
                let x = i as f64 * f64::from(from_hz) / f64::from(to_hz);
                let j = x as usize;
                let frac = x - j as f64;
                let a = samples[j];
                let b = samples.get(j + 1).copied().unwrap_or(a);
                a + (b - a) * frac
            })
            .collect()
    }

    #[test]
    fn a_trimmed_resampled_quieter_copy_matches_and_another_song_does_not() {
        let rate = 44_100;
        let original = song(1, rate, 40.0);
        let published = items(&original, rate);

        let trim_s = 7.3;
        let trimmed: Vec<f64> = original[(trim_s * rate as f64) as usize..]
            .iter()
            .map(|s| s * 0.5)
            .collect();
        let copy = items(&resample(&trimmed, rate, 22_050), 22_050);
        let found = compare(&copy, &published).expect("the copy aligns");
        assert!(found.is_accepted(), "{found:?}");
        assert!(found.score_bp >= 8_500, "{found:?}");
        assert!(found.duration_ms >= 25_000, "{found:?}");
        // The copy's start is 7.3 s into the original, to within an item or two.
        let shift_ms = found.derivative_start_ms as i64 - found.query_start_ms as i64;
        assert!((shift_ms - 7_300).abs() <= 250, "{found:?}");

        let other = items(&song(2, rate, 40.0), rate);
        assert!(
            compare(&other, &published).is_none_or(|m| !m.is_accepted()),
            "{:?}",
            compare(&other, &published)
        );
    }

    #[test]
    fn a_copy_shares_many_index_keys_and_another_song_few() {
        let rate = 44_100;
        let original = song(3, rate, 40.0);
        let published: BTreeSet<u32> = index_keys(&items(&original, rate)).into_iter().collect();
        let copy = items(
            &resample(&original[rate as usize * 5..], rate, 22_050),
            22_050,
        );
        let shared = query_keys(&copy)
            .iter()
            .filter(|k| published.contains(k))
            .count() as u32;
        let other = items(&song(4, rate, 40.0), rate);
        let stray = query_keys(&other)
            .iter()
            .filter(|k| published.contains(k))
            .count() as u32;
        assert!(shared >= 4 * CANDIDATE_VOTES_MIN, "{shared} shared keys");
        assert!(stray < CANDIDATE_VOTES_MIN, "{stray} stray keys");
    }

    /// Publishes a derivative whose output is `samples`, with its fingerprint
    /// recorded (or, for `None`, a version 1 event without one).
    async fn publish(store: &dyn EventStore, derivative: Uuid, recorded: Option<&[u32]>) -> u64 {
        use base64::engine::general_purpose::STANDARD;
        let mut event = crate::fold::tests::published(derivative, "u1");
        if let Some(items) = recorded {
            let bytes: Vec<u8> = items.iter().flat_map(|i| i.to_le_bytes()).collect();
            event["output_fingerprint"] = serde_json::json!({
                "algorithm": FINGERPRINT_CHROMAPRINT_TEST2, "items": STANDARD.encode(bytes)
            });
        }
        let mut events: Vec<NewEvent> = crate::fold::tests::job_start(derivative, "u1")
            .into_iter()
            .map(|(event_type, data)| NewEvent::new(event_type, data))
            .collect();
        events.push(NewEvent::new(DERIVATIVE_PUBLISHED, event));
        store
            .append(AppendRequest::new(
                generation_stream(derivative),
                ExpectedVersion::Exact(0),
                events,
            ))
            .await
            .unwrap()[2]
            .seq
    }

    fn audio_query(items: Vec<u32>) -> LineageQuery {
        LineageQuery::Audio(AudioIdentity {
            file_hash: format!("sha256:{}", "e".repeat(64)),
            pcm_hash: Some(format!("sha256:{}", "f".repeat(64))),
            fingerprint: Some(items),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lineage_traces_a_copy_to_the_right_derivative_by_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path(), "test.example/fp")).unwrap();
        let mut projections = Projections::open(store.database_path()).unwrap();
        let rate = 44_100;
        let (first, second) = (Uuid::from_u128(0xd1), Uuid::from_u128(0xd2));
        let first_song = song(5, rate, 40.0);
        let second_song = song(6, rate, 40.0);
        publish(&store, Uuid::from_u128(0xd0), None).await;
        publish(&store, first, Some(&items(&first_song, rate))).await;
        let second_seq = publish(&store, second, Some(&items(&second_song, rate))).await;

        // The second song, its first 6 s cut, at half the gain and 22.05 kHz.
        let copy: Vec<f64> = second_song[6 * rate as usize..]
            .iter()
            .map(|s| s * 0.5)
            .collect();
        let copy = items(&resample(&copy, rate, 22_050), 22_050);
        let answer = lineage(&store, &mut projections, &audio_query(copy.clone()), None)
            .await
            .unwrap();
        let LineageAnswer::Found(found) = &answer else {
            panic!("expected a lineage, got {answer:?}")
        };
        assert_eq!(found.derivative.derivative, second);
        assert_eq!(found.matched_by, "fingerprint");
        let matched = found.matched.fingerprint.expect("a fingerprint match");
        assert!(
            matched.is_accepted() && matched.score_bp >= 8_500,
            "{matched:?}"
        );
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["match"]["method"], "fingerprint");
        assert_eq!(json["match"]["score_bp"], matched.score_bp);
        assert!(render_text(&answer).contains("fingerprint match: score"));

        // Before the second derivative was published, nothing matches.
        let answer = lineage(
            &store,
            &mut projections,
            &audio_query(copy.clone()),
            Some(second_seq),
        )
        .await
        .unwrap();
        let LineageAnswer::NotFound { message, .. } = &answer else {
            panic!("expected no lineage as of seq {second_seq}, got {answer:?}")
        };
        assert!(
            message.contains("or a matching acoustic fingerprint"),
            "{message}"
        );

        // A song never published here has no lineage, with every method named.
        let stranger = items(&song(7, rate, 30.0), rate);
        let answer = lineage(&store, &mut projections, &audio_query(stranger), None)
            .await
            .unwrap();
        let LineageAnswer::NotFound { message, .. } = &answer else {
            panic!("expected no lineage, got {answer:?}")
        };
        assert!(
            message.starts_with(
                "no lineage: no derivative published in this log has file hash sha256:eee"
            ) && message.contains("PCM hash sha256:fff")
                && message.contains("acoustic fingerprint"),
            "{message}"
        );

        // The index is a fold of the log: a rebuild answers the same.
        projections.rebuild(&store).await.unwrap();
        let answer = lineage(&store, &mut projections, &audio_query(copy), None)
            .await
            .unwrap();
        assert!(
            matches!(&answer, LineageAnswer::Found(f) if f.derivative.derivative == second),
            "{answer:?}"
        );
    }

    #[test]
    fn recorded_items_round_trip_and_bad_records_are_refused() {
        let record = |algorithm: &str, items: &str| AcousticFingerprint {
            algorithm: algorithm.into(),
            items: items.into(),
        };
        assert_eq!(
            items_of(&record("chromaprint-test2", "AQAAAAECAwQ=")),
            Ok(vec![1, 0x0403_0201])
        );
        assert_eq!(
            items_of(&record("chromaprint-test1", "AQAAAA==")),
            Err(FingerprintError::Algorithm("chromaprint-test1".into()))
        );
        assert_eq!(
            items_of(&record("chromaprint-test2", "AQAA")),
            Err(FingerprintError::Length(3))
        );
        assert!(matches!(
            items_of(&record("chromaprint-test2", "not base64!")),
            Err(FingerprintError::Base64(_))
        ));
        let long = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 4 * (ITEMS_MAX + 1)]);
        assert_eq!(
            items_of(&record("chromaprint-test2", &long)),
            Err(FingerprintError::TooLong(ITEMS_MAX + 1))
        );
    }

    #[test]
    fn keys_are_a_sampled_quarter_of_the_distinct_top_bits_and_queries_are_bounded() {
        // Keys 2 and 5 are in the sampled quarter; 1 and 3 are not.
        assert_eq!(
            index_keys(&[5 << 12 | 0xFFF, 2 << 12, 5 << 12, 1 << 12, 3 << 12]),
            [2, 5]
        );
        let many: Vec<u32> = (0..8 * QUERY_KEYS_MAX as u32).map(|i| i << 12).collect();
        let sampled = index_keys(&many);
        assert!(
            (7 * QUERY_KEYS_MAX / 4..9 * QUERY_KEYS_MAX / 4).contains(&sampled.len()),
            "about one key in {KEY_SAMPLING}: {}",
            sampled.len()
        );
        let keys = query_keys(&many);
        assert_eq!(keys.len(), QUERY_KEYS_MAX);
        assert_eq!(keys[0], sampled[0]);
        assert!(keys.iter().all(|k| sampled.binary_search(k).is_ok()));
    }

    #[test]
    fn item_times_are_exact_milliseconds() {
        assert_eq!(items_to_ms(0), 0);
        // 1365 samples at 11025 Hz: 123.8 ms.
        assert_eq!(items_to_ms(1), 123);
        assert_eq!(items_to_ms(11_025), 1_365_000);
    }
}
