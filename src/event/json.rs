//! The structured CloudEvents JSON of an [`Event`], written straight into bytes.
//!
//! This is the one serialization every delivery and dead-letter uses, so it is on the hot path of
//! every run. serde_json escapes every string, keys included, a byte at a time; here the keys are
//! literals and a value string is copied whole once a word-at-a-time scan finds nothing to escape
//! (the case for every attribute twinroute makes). A string that does need escaping, and every
//! number, goes through serde_json itself, so the output is byte for byte what the `Serialize`
//! impls produce: a test holds the two equal on every event type.

use super::{Event, EventData, PropValue, SPEC_VERSION};

/// Appends `event`'s JSON to `out`.
pub(super) fn write_event(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"specversion":"#);
    string(out, SPEC_VERSION);
    out.extend_from_slice(br#","id":"#);
    string(out, &event.id);
    out.extend_from_slice(br#","type":"#);
    string(out, event.kind.as_str());
    out.extend_from_slice(br#","source":"#);
    string(out, &event.source);
    out.extend_from_slice(br#","data":"#);
    data(out, &event.data);
    if let Some(subject) = &event.subject {
        out.extend_from_slice(br#","subject":"#);
        string(out, subject);
    }
    if let Some(time) = &event.time {
        out.extend_from_slice(br#","time":"#);
        string(out, time.as_str());
    }
    out.extend_from_slice(br#","datacontenttype":"#);
    string(out, event.datacontenttype);
    if let Some(schema) = event.dataschema {
        out.extend_from_slice(br#","dataschema":"#);
        string(out, schema);
    }
    out.extend_from_slice(br#","traceparent":"#);
    string(out, &event.traceparent);
    out.push(b'}');
}

fn data(out: &mut Vec<u8>, data: &EventData) {
    match data {
        EventData::Twin(twin) => {
            out.extend_from_slice(br#"{"$dtId":"#);
            string(out, &twin.dt_id);
            out.extend_from_slice(br#","$etag":"#);
            string(out, &twin.etag);
            for property in &twin.properties {
                out.push(b',');
                entry(out, property.name, &property.value);
            }
            out.extend_from_slice(br#","$metadata":{"$model":"#);
            string(out, twin.model);
            for property in &twin.properties {
                out.push(b',');
                key(out, property.name);
                out.extend_from_slice(br#"{"lastUpdateTime":"#);
                string(out, property.last_update.as_str());
                out.push(b'}');
            }
            out.extend_from_slice(b"}}");
        }
        EventData::Relationship(relationship) => {
            out.extend_from_slice(br#"{"$relationshipId":"#);
            string(out, &relationship.id);
            out.extend_from_slice(br#","$etag":"#);
            string(out, &relationship.etag);
            out.extend_from_slice(br#","$relationshipName":"#);
            string(out, relationship.name);
            out.extend_from_slice(br#","$sourceId":"#);
            string(out, &relationship.source_id);
            out.extend_from_slice(br#","$targetId":"#);
            string(out, &relationship.target_id);
            for (name, value) in &relationship.properties {
                out.push(b',');
                entry(out, name, value);
            }
            out.push(b'}');
        }
        EventData::Patch(patch) => {
            out.extend_from_slice(br#"{"modelId":"#);
            string(out, patch.model_id);
            out.extend_from_slice(br#","patch":["#);
            for (i, op) in patch.patch.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'{');
                if let Some(value) = &op.value {
                    entry(out, "value", value);
                    out.push(b',');
                }
                out.extend_from_slice(br#""path":"#);
                string(out, op.path);
                out.extend_from_slice(br#","op":"#);
                string(out, op.op.as_str());
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        }
        EventData::Telemetry(fields) => {
            out.push(b'{');
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                entry(out, name, value);
            }
            out.push(b'}');
        }
    }
}

/// `"name":value`.
fn entry(out: &mut Vec<u8>, name: &str, value: &PropValue) {
    key(out, name);
    match value {
        PropValue::Str(text) => string(out, text),
        PropValue::Int(value) => serde(out, value),
        PropValue::Float(value) => serde(out, value),
        PropValue::Bool(value) => serde(out, value),
    }
}

/// `"name":`.
fn key(out: &mut Vec<u8>, name: &str) {
    string(out, name);
    out.push(b':');
}

/// A JSON string: copied whole when nothing in it needs escaping, else escaped by serde_json.
fn string(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        serde(out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Whether serde_json would escape any byte: a control character, `"` or `\`. Eight bytes per
/// step, with the classic has-zero-byte and has-byte-less-than tests (exact for these values:
/// the bytes of multi-byte UTF-8 characters have the high bit set and never match).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte_in = |v: u64| v.wrapping_sub(ONES) & !v;
    let matches = |word: u64| {
        let below_space = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = zero_byte_in(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_byte_in(word ^ (ONES * u64::from(b'\\')));
        (below_space | quote | backslash) & HIGHS != 0
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut found = false;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        found |= matches(u64::from_ne_bytes(word));
    }
    found
        || chunks
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn serde<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing strings and numbers into a Vec cannot fail (a non-finite float becomes null).
    serde_json::to_writer(out, value).expect("serializing a value into a Vec is infallible");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{EventType, PatchData, PatchOp, PatchOpKind, TwinData};
    use crate::generator::sample_events;

    fn written(event: &Event) -> String {
        let mut out = Vec::new();
        write_event(event, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_generated_event_is_written_as_serde_writes_it() {
        let mut seen = std::collections::BTreeSet::new();
        for event in sample_events(11, 300, 20_000) {
            seen.insert(event.kind);
            assert_eq!(
                written(&event),
                serde_json::to_string(&event).unwrap(),
                "{event:?}"
            );
        }
        assert_eq!(
            seen.len(),
            EventType::ALL.len(),
            "all seven types: {seen:?}"
        );
    }

    #[test]
    fn strings_that_need_escaping_are_escaped_as_serde_escapes_them() {
        let mut event = sample_events(5, 10, 1).remove(0);
        let awkward = "tab\there \"quoted\" back\\slash \u{1} nul\u{0} é ☃ \u{7f} /";
        event.subject = Some(Arc::from(awkward));
        event.source = Arc::from("line\nbreak");
        event.data = EventData::Twin(TwinData {
            dt_id: Arc::from(awkward),
            etag: Arc::from("W/\"etag\""),
            model: "dtmi:x;1",
            properties: vec![crate::event::Property {
                name: "na\"me",
                value: PropValue::Str(Arc::from(awkward)),
                last_update: event.time.unwrap(),
            }],
        });
        assert_eq!(written(&event), serde_json::to_string(&event).unwrap());
        event.data = EventData::Patch(PatchData {
            model_id: "dtmi:x;1",
            patch: vec![
                PatchOp {
                    op: PatchOpKind::Replace,
                    path: "/a\\b",
                    value: Some(PropValue::Float(f64::NAN)),
                },
                PatchOp {
                    op: PatchOpKind::Remove,
                    path: "/c",
                    value: None,
                },
                PatchOp {
                    op: PatchOpKind::Add,
                    path: "/d",
                    value: Some(PropValue::Int(i64::MIN)),
                },
            ],
        });
        assert_eq!(written(&event), serde_json::to_string(&event).unwrap());
        event.data = EventData::Telemetry(vec![
            ("t", PropValue::Float(-0.0)),
            ("big", PropValue::Float(1e300)),
            ("on", PropValue::Bool(true)),
        ]);
        event.subject = None;
        event.time = None;
        assert_eq!(written(&event), serde_json::to_string(&event).unwrap());
    }

    #[test]
    fn the_escape_scan_finds_each_byte_serde_escapes_and_no_other() {
        // Every ASCII byte at every position of a word and of the tail, between neighbours that
        // could confuse a word-at-a-time test (0x7f, bytes next to the ones searched for,
        // multi-byte characters).
        let neighbours = [
            "abcdefghijklmnop",
            "\u{7f}!#[]^_`\u{7f}!#[]",
            "ééééééé",
            "☃☃☃☃☃",
        ];
        for byte in 0u8..=127 {
            for neighbour in neighbours {
                for at in (0..=neighbour.len()).filter(|&at| neighbour.is_char_boundary(at)) {
                    let (before, after) = neighbour.split_at(at);
                    let text = format!("{before}{}{after}", char::from(byte));
                    let serde_escapes =
                        serde_json::to_string(&text).unwrap().len() != text.len() + 2;
                    assert_eq!(needs_escape(text.as_bytes()), serde_escapes, "{text:?}");
                }
            }
        }
        assert!(!needs_escape("é ☃ 𝄞 \u{7f}\u{80}\u{ff}".as_bytes()));
        assert!(!needs_escape(b""));
    }
}
