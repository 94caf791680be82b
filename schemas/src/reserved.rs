//! The event types and streams that only ledgerline's own writers append:
//! the generation engine (`generation.*`, `voice.*`) and the catalog and
//! usage importers (`catalog.*`, `usage.*`).
//!
//! Royalties and lineage trust these events because the writers that own
//! them check what they record (licences, consent, the audio itself). A raw
//! append of one would let anyone who may append make up a derivative, a
//! split sheet or revenue, so every raw append path refuses them. This module
//! only names the reserved set; the CLI and the HTTP API enforce it.

/// Prefixes of the event types the engine and the importers own.
pub const RESERVED_TYPE_PREFIXES: [&str; 4] = ["generation.", "catalog.", "usage.", "voice."];

/// Prefixes of the streams the engine and the importers write: generation
/// jobs, voice model training runs, catalog entities and usage reports.
pub const RESERVED_STREAM_PREFIXES: [&str; 7] = [
    "generation-",
    "voice-",
    "party-",
    "work-",
    "recording-",
    "policy-",
    "usage-",
];

/// Whether `event_type` is one the engine and the importers own.
pub fn is_reserved_type(event_type: &str) -> bool {
    RESERVED_TYPE_PREFIXES
        .iter()
        .any(|prefix| event_type.starts_with(prefix))
}

/// Whether `stream` is one the engine and the importers write.
pub fn is_reserved_stream(stream: &str) -> bool {
    RESERVED_STREAM_PREFIXES
        .iter()
        .any(|prefix| stream.starts_with(prefix))
}

/// Why a raw append of events of `event_types` to `stream` is refused, or
/// `None` when it may be made. The events of one append are refused
/// together; the sentence names the reserved prefixes.
pub fn raw_append_refusal<'a>(
    stream: &str,
    event_types: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    if is_reserved_stream(stream) {
        return Some(format!(
            "stream {stream:?} is reserved: streams starting with {} are written only by the generation engine and the catalog and usage importers; append to another stream",
            RESERVED_STREAM_PREFIXES.join(", ")
        ));
    }
    event_types
        .into_iter()
        .find(|event_type| is_reserved_type(event_type))
        .map(|event_type| {
            format!(
                "event type {event_type:?} is reserved: types starting with {} are appended only by the generation engine and the catalog and usage importers; use another type",
                RESERVED_TYPE_PREFIXES.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        party_stream, policy_stream, recording_stream, voice_model_stream, work_stream,
    };
    use crate::generation::{generation_stream, voice_training_stream};
    use crate::{catalog, generation, usage};

    /// Every stream an owning writer names.
    fn owned_streams() -> Vec<String> {
        let job = uuid::Uuid::from_u128(1);
        vec![
            generation_stream(job),
            voice_training_stream("vm1"),
            party_stream("p1"),
            work_stream("T-034524680-1"),
            recording_stream("GBAYE0601498"),
            voice_model_stream("vm1"),
            policy_stream("v1"),
            // The usage importer's (`projections::usage_import::usage_stream`).
            "usage-0123456789abcdef".to_string(),
        ]
    }

    #[test]
    fn every_stream_an_owning_writer_names_is_reserved() {
        for stream in owned_streams() {
            assert!(is_reserved_stream(&stream), "{stream}");
        }
    }

    #[test]
    fn every_event_type_an_owning_writer_appends_is_reserved() {
        for event_type in [
            generation::GENERATION_REQUESTED,
            generation::GENERATION_STEP,
            generation::GENERATION_REJECTED,
            generation::DERIVATIVE_PUBLISHED,
            generation::GENERATION_ABANDONED,
            generation::CREDENTIALS_ISSUED,
            generation::VOICE_MODEL_TRAINED,
            catalog::PARTY_REGISTERED,
            catalog::POLICY_AMENDED,
            usage::LINE_IMPORTED,
        ] {
            assert!(is_reserved_type(event_type), "{event_type}");
        }
    }

    #[test]
    fn other_types_on_other_streams_may_be_appended() {
        assert_eq!(raw_append_refusal("notes-2026", ["note.added"]), None);
        assert_eq!(raw_append_refusal("s", ["test.tick", "t"]), None);
    }

    #[test]
    fn a_refusal_names_every_reserved_prefix() {
        let refusal = raw_append_refusal("s", ["t", "generation.derivative-published"]).unwrap();
        for prefix in RESERVED_TYPE_PREFIXES {
            assert!(refusal.contains(prefix), "{refusal}");
        }
        let refusal = raw_append_refusal("generation-1", ["note.added"]).unwrap();
        for prefix in RESERVED_STREAM_PREFIXES {
            assert!(refusal.contains(prefix), "{refusal}");
        }
    }
}
