//! The event envelope and its canonical bytes.
//!
//! The leaf of event `seq` is the RFC 8785 (JSON Canonicalization Scheme)
//! serialization of
//! `{"seq","stream","version","id","type","schema","time","prev","data"}`.
//! Those exact bytes are what the store keeps and what the Merkle tree hashes;
//! readers hash the stored bytes and never re-serialize to verify.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use time::OffsetDateTime;
use uuid::Uuid;

/// The largest canonical leaf accepted, in bytes: 65,535, because a C2SP
/// tlog-tiles entry bundle (`crate::tile`) prefixes each leaf with its
/// length as a big-endian 16-bit integer. Audio and other bulk content
/// never travels in events: events carry its content hash.
pub const LEAF_SIZE_BYTES_MAX: usize = u16::MAX as usize;
/// The longest stream name, in bytes.
pub const STREAM_NAME_BYTES_MAX: usize = 200;
/// The longest event type name, in bytes.
pub const EVENT_TYPE_BYTES_MAX: usize = 100;
/// The deepest nesting of arrays and objects in a leaf, its envelope object
/// included. Every reader decodes leaves with serde_json, which refuses a
/// document nested deeper (its recursion limit); a leaf the writer accepts
/// must stay within it, or the log would hold an event no reader can read.
pub const LEAF_DEPTH_MAX: usize = 127;
/// The deepest nesting of arrays and objects in an event's data: the leaf's
/// envelope object is one level more.
pub const DATA_DEPTH_MAX: usize = LEAF_DEPTH_MAX - 1;
/// The largest integer magnitude that survives every JSON implementation
/// (RFC 7493 I-JSON, section 2.2); RFC 8785 relies on it.
pub const SAFE_INTEGER_MAX: u64 = (1 << 53) - 1;

/// What a client asks to append: the server assigns seq, version, time and prev.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Client-chosen id for idempotent retries; the server makes one if absent.
    pub id: Option<Uuid>,
    pub event_type: String,
    /// Version of the payload's schema (see the `schemas` crate).
    pub schema: u32,
    pub data: Value,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        NewEvent {
            id: None,
            event_type: event_type.into(),
            schema: 1,
            data,
        }
    }

    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }
}

/// A decoded leaf: one event as the log holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub seq: u64,
    pub stream: String,
    pub version: u64,
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema: u32,
    /// RFC 3339 UTC time at which the sequencer accepted the event.
    pub time: String,
    /// Lowercase hex leaf hash of the previous event in this stream; `None`
    /// for version 0.
    pub prev: Option<String>,
    pub data: Value,
}

/// Every envelope field borrowed from the leaf bytes, the payload left as
/// undecoded JSON text: what a reader that needs no payload (the audit, the
/// writer's clock) reads, without building the payload or descending into it.
#[derive(Debug, Deserialize)]
pub struct LeafHeader<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub stream: Cow<'a, str>,
    pub version: u64,
    pub id: Uuid,
    #[serde(rename = "type", borrow)]
    pub event_type: Cow<'a, str>,
    pub schema: u32,
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(borrow)]
    pub prev: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("stream name {0:?} is invalid: use 1 to 200 characters from A-Z a-z 0-9 . _ : - @")]
    BadStreamName(String),
    #[error(
        "event type {0:?} is invalid: use 1 to 100 characters from A-Z a-z 0-9 . _ -, starting with a letter"
    )]
    BadEventType(String),
    #[error("event is {size_bytes} bytes once canonicalized; the limit is {LEAF_SIZE_BYTES_MAX} bytes (a tlog-tiles entry bundle gives each leaf a 16-bit length): store bulk content as an artifact and reference its hash")]
    TooLarge { size_bytes: usize },
    #[error("number {0} in the event data is outside the range JSON can carry exactly (integers up to 2^53-1, RFC 7493); send it as a string")]
    UnsafeNumber(String),
    #[error("event data must be a JSON object")]
    DataNotObject,
    #[error("event data nests arrays and objects more than {DATA_DEPTH_MAX} deep, deeper than JSON readers accept; flatten it")]
    TooDeep,
    #[error("leaf is not a valid envelope: {0}")]
    BadLeaf(String),
}

/// Checks a stream name. Names are used in URLs and file names, so the
/// alphabet is small.
pub fn validate_stream_name(stream: &str) -> Result<(), EnvelopeError> {
    let ok = !stream.is_empty()
        && stream.len() <= STREAM_NAME_BYTES_MAX
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(EnvelopeError::BadStreamName(stream.to_string()))
    }
}

/// Checks an event type name (`catalog.recording-registered`, ...).
pub fn validate_event_type(event_type: &str) -> Result<(), EnvelopeError> {
    let ok = event_type.len() <= EVENT_TYPE_BYTES_MAX
        && event_type.starts_with(|c: char| c.is_ascii_alphabetic())
        && event_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(EnvelopeError::BadEventType(event_type.to_string()))
    }
}

/// Checks a payload before it is sequenced: an object, nested no deeper
/// than [`DATA_DEPTH_MAX`], whose numbers every JSON reader gets back
/// exactly. The limits are the readers', so that every event the writer
/// accepts can be read back.
pub fn validate_data(data: &Value) -> Result<(), EnvelopeError> {
    if !data.is_object() {
        return Err(EnvelopeError::DataNotObject);
    }
    check_value(data, 0)
}

/// Checks `value`, found inside `depth` arrays and objects. The walk never
/// goes deeper than the limit, so a payload of any depth is refused without
/// exhausting the stack.
fn check_value(value: &Value, depth: usize) -> Result<(), EnvelopeError> {
    let inner = || {
        if depth < DATA_DEPTH_MAX {
            Ok(depth + 1)
        } else {
            Err(EnvelopeError::TooDeep)
        }
    };
    match value {
        Value::Number(n) => {
            let safe = if let Some(u) = n.as_u64() {
                u <= SAFE_INTEGER_MAX
            } else if let Some(i) = n.as_i64() {
                i.unsigned_abs() <= SAFE_INTEGER_MAX
            } else {
                // A float: finite by construction in serde_json; RFC 8785
                // serializes it the way ECMAScript does.
                n.as_f64().is_some_and(f64::is_finite)
            };
            if safe {
                Ok(())
            } else {
                Err(EnvelopeError::UnsafeNumber(n.to_string()))
            }
        }
        Value::Array(items) => {
            let depth = inner()?;
            items.iter().try_for_each(|item| check_value(item, depth))
        }
        Value::Object(map) => {
            let depth = inner()?;
            map.values().try_for_each(|item| check_value(item, depth))
        }
        _ => Ok(()),
    }
}

impl Envelope {
    /// The canonical leaf bytes (RFC 8785), size-checked.
    pub fn to_leaf(&self) -> Result<Vec<u8>, EnvelopeError> {
        let value =
            serde_json::to_value(self).map_err(|e| EnvelopeError::BadLeaf(e.to_string()))?;
        let leaf = serde_json_canonicalizer::to_vec(&value)
            .map_err(|e| EnvelopeError::BadLeaf(e.to_string()))?;
        if leaf.len() > LEAF_SIZE_BYTES_MAX {
            return Err(EnvelopeError::TooLarge {
                size_bytes: leaf.len(),
            });
        }
        Ok(leaf)
    }

    /// Decodes stored leaf bytes. The payload is decoded on its own, so a
    /// leaf whose payload alone is within the reader's nesting limit reads
    /// back even when the envelope around it takes the leaf one level past
    /// [`LEAF_DEPTH_MAX`] (events that writers without that limit accepted).
    pub fn from_leaf(leaf: &[u8]) -> Result<Envelope, EnvelopeError> {
        let header = LeafHeader::from_leaf(leaf)?;
        let data = serde_json::from_str(header.data.get())
            .map_err(|e| EnvelopeError::BadLeaf(format!("data: {e}")))?;
        Ok(Envelope {
            seq: header.seq,
            stream: header.stream.into_owned(),
            version: header.version,
            id: header.id,
            event_type: header.event_type.into_owned(),
            schema: header.schema,
            time: header.time.into_owned(),
            prev: header.prev.map(Cow::into_owned),
            data,
        })
    }
}

impl<'a> LeafHeader<'a> {
    /// Decodes the envelope fields of stored leaf bytes; the payload is
    /// only scanned for its end, at any depth.
    pub fn from_leaf(leaf: &'a [u8]) -> Result<LeafHeader<'a>, EnvelopeError> {
        serde_json::from_slice(leaf).map_err(|e| EnvelopeError::BadLeaf(e.to_string()))
    }
}

/// RFC 3339 UTC with microseconds, the form every event time takes.
pub fn format_time(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("a UTC time always formats")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Envelope {
        Envelope {
            seq: 7,
            stream: "recording-GBAYE0601498".into(),
            version: 0,
            id: Uuid::nil(),
            event_type: "catalog.recording-registered".into(),
            schema: 1,
            time: "2026-11-26T09:00:00.000000Z".into(),
            prev: None,
            data: json!({"title": "Ünïcode", "isrc": "GBAYE0601498", "b": 1, "a": [2.5, 1e21]}),
        }
    }

    #[test]
    fn leaf_is_rfc8785_canonical() {
        let leaf = sample().to_leaf().unwrap();
        let text = String::from_utf8(leaf).unwrap();
        // Keys sorted by UTF-16 code units, no white space, ECMAScript numbers.
        assert_eq!(
            text,
            r#"{"data":{"a":[2.5,1e+21],"b":1,"isrc":"GBAYE0601498","title":"Ünïcode"},"id":"00000000-0000-0000-0000-000000000000","prev":null,"schema":1,"seq":7,"stream":"recording-GBAYE0601498","time":"2026-11-26T09:00:00.000000Z","type":"catalog.recording-registered","version":0}"#
        );
    }

    #[test]
    fn leaf_round_trips_and_header_borrows() {
        let env = sample();
        let leaf = env.to_leaf().unwrap();
        assert_eq!(Envelope::from_leaf(&leaf).unwrap(), env);
        let header = LeafHeader::from_leaf(&leaf).unwrap();
        assert_eq!((header.seq, header.version), (7, 0));
        assert_eq!(header.stream, "recording-GBAYE0601498");
        assert!(header.prev.is_none());
    }

    #[test]
    fn oversized_leaf_is_rejected() {
        let mut env = sample();
        env.data = json!({"blob": "x".repeat(LEAF_SIZE_BYTES_MAX)});
        assert!(matches!(env.to_leaf(), Err(EnvelopeError::TooLarge { .. })));
    }

    /// Data of `depth` nested objects: `{"a":{"a":{}}}` is 3 deep.
    fn nested(depth: usize) -> Value {
        (1..depth).fold(json!({}), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn data_nested_past_the_readers_limit_is_refused() {
        assert_eq!(validate_data(&nested(DATA_DEPTH_MAX)), Ok(()));
        assert_eq!(
            validate_data(&nested(DATA_DEPTH_MAX + 1)),
            Err(EnvelopeError::TooDeep)
        );
        assert_eq!(
            validate_data(&json!({"list": [nested(DATA_DEPTH_MAX - 1)]})),
            Err(EnvelopeError::TooDeep)
        );
    }

    /// The limit is serde_json's own: a leaf at the limit is read back by a
    /// plain `from_slice`, and one level more is refused by it.
    #[test]
    fn the_deepest_leaf_accepted_is_read_by_a_plain_json_reader() {
        let mut env = sample();
        env.data = nested(DATA_DEPTH_MAX);
        let leaf = env.to_leaf().unwrap();
        assert!(serde_json::from_slice::<Value>(&leaf).is_ok());
        assert_eq!(Envelope::from_leaf(&leaf).unwrap(), env);
        let deeper = [b"[".as_slice(), &leaf, b"]"].concat();
        let error = serde_json::from_slice::<Value>(&deeper).unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
    }

    /// A leaf one level past the limit (accepted by writers that did not
    /// check depth) still decodes, and so does its header.
    #[test]
    fn a_leaf_one_level_too_deep_still_decodes() {
        let mut env = sample();
        env.data = nested(DATA_DEPTH_MAX + 1);
        let leaf = env.to_leaf().unwrap();
        assert!(serde_json::from_slice::<Value>(&leaf).is_err());
        assert_eq!(Envelope::from_leaf(&leaf).unwrap(), env);
        let header = LeafHeader::from_leaf(&leaf).unwrap();
        assert_eq!((header.seq, header.time.as_ref()), (7, env.time.as_str()));
    }

    #[test]
    fn names_and_data_are_validated() {
        assert!(validate_stream_name("generation-0f1e").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name("a b").is_err());
        assert!(validate_stream_name(&"s".repeat(201)).is_err());
        assert!(validate_event_type("usage.line-imported").is_ok());
        assert!(validate_event_type("1abc").is_err());
        assert!(validate_event_type("a/b").is_err());
        assert!(validate_data(&json!({"n": 9007199254740991u64})).is_ok());
        assert_eq!(
            validate_data(&json!({"n": [9007199254740992u64]})),
            Err(EnvelopeError::UnsafeNumber("9007199254740992".into()))
        );
        assert_eq!(
            validate_data(&json!([1])),
            Err(EnvelopeError::DataNotObject)
        );
    }

    #[test]
    fn time_is_rfc3339_utc_micros() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap();
        assert_eq!(format_time(t), "2025-11-24T16:00:00.123456Z");
    }
}
