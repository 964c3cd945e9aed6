//! Request bodies to events: the three CloudEvents HTTP modes and Event Grid schema arrays.
//!
//! The mode is picked from the headers, in this order:
//! 1. `Content-Type: application/cloudevents-batch+json` → **batch**: a JSON array of
//!    structured CloudEvents;
//! 2. `Content-Type: application/cloudevents+json` → **structured**: one CloudEvent as JSON;
//! 3. a `ce-specversion` header → **binary**: attributes in `ce-*` headers, the body is `data`;
//! 4. `Content-Type: application/json` → **Event Grid schema**: a JSON array of EventGridEvents.
//!
//! CloudEvents are parsed by `cloudevents-sdk`; Event Grid objects are checked here. A request
//! is all-or-nothing: one bad event makes the whole request a 400, whose short text body is the
//! [`IngestError`]'s message.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use chrono::{DateTime, Datelike, Utc};
use std::borrow::Cow;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// ADT's telemetry type (all lowercase, unlike the twin and relationship types).
pub const TELEMETRY_TYPE: &str = "microsoft.iot.telemetry";
const TWIN_TYPE_PREFIX: &str = "Microsoft.DigitalTwins.Twin.";
const RELATIONSHIP_TYPE_PREFIX: &str = "Microsoft.DigitalTwins.Relationship.";

/// Separates the two halves of an event key; it cannot occur in a URI-reference `source` or an
/// ARM topic id.
const KEY_SEPARATOR: char = '\u{0}';

/// What the verifier needs of one event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arrival {
    /// The CloudEvents `type` / Event Grid `eventType`.
    pub(crate) ty: String,
    /// Identity for duplicate detection: `source` + `id` (CloudEvents), `topic` + `id`
    /// (Event Grid, which drops `source`).
    pub(crate) key: String,
    /// The twin the event is about, for the order check (see [`twin_id`]).
    pub(crate) twin: Option<String>,
    /// The event's `time` (`eventTime`); `None` when absent or a placeholder.
    pub(crate) time: Option<DateTime<Utc>>,
}

/// The events of one request, plus their NDJSON lines when recording.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) arrivals: Vec<Arrival>,
    /// One line per event, each ending in `\n`; empty when not recording.
    pub(crate) record: Vec<u8>,
}

/// Why a request body is not an event (answered 400 with this message as the body).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
    /// The SDK rejected a binary-mode request.
    #[error("not a valid CloudEvent (binary mode): {0}")]
    Binary(#[source] cloudevents::message::Error),
    /// The SDK rejected a structured-mode body.
    #[error("not a valid CloudEvent (structured mode): {0}")]
    Structured(#[source] serde_json::Error),
    /// The SDK rejected a batch body.
    #[error("not a valid CloudEvents batch (a JSON array of CloudEvents): {0}")]
    Batch(#[source] serde_json::Error),
    /// A CloudEvent with an empty required attribute (the SDK accepts those; the spec does not).
    #[error("not a valid CloudEvent: `{0}` must be a non-empty string")]
    EmptyAttribute(&'static str),
    /// An `application/json` body that is not a JSON array.
    #[error("Event Grid events must come as a JSON array")]
    EventGridNotArray,
    /// An `application/json` body that is not JSON.
    #[error("not valid JSON: {0}")]
    EventGridJson(#[source] serde_json::Error),
    /// One element of an Event Grid array is not a valid event.
    #[error("Event Grid event {index}: {reason}")]
    EventGrid {
        /// Position in the array.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A content type that is none of the four forms.
    #[error(
        "unsupported content type `{0}` without ce-specversion header: send CloudEvents \
         (binary, application/cloudevents+json, application/cloudevents-batch+json) or \
         Event Grid events (application/json array)"
    )]
    UnsupportedContentType(String),
    /// No content type and no `ce-specversion`.
    #[error("no content type and no ce-specversion header: not an event")]
    NoContentType,
}

/// The twin an event is about:
/// - `Microsoft.DigitalTwins.Twin.*`: the `subject` (the twin id);
/// - `Microsoft.DigitalTwins.Relationship.*`: the part of `subject` before `/relationships/`
///   (the source twin);
/// - `microsoft.iot.telemetry`: the last segment of `source` after `/digitaltwins/`;
/// - anything else: `None`.
pub fn twin_id<'a>(ty: &str, subject: Option<&'a str>, source: Option<&'a str>) -> Option<&'a str> {
    if ty.starts_with(TWIN_TYPE_PREFIX) {
        subject
    } else if ty.starts_with(RELATIONSHIP_TYPE_PREFIX) {
        let subject = subject?;
        Some(
            subject
                .split_once("/relationships/")
                .map_or(subject, |(twin, _)| twin),
        )
    } else if ty == TELEMETRY_TYPE {
        source?
            .rsplit_once("/digitaltwins/")
            .map(|(_, twin)| twin)
            .filter(|twin| !twin.is_empty())
    } else {
        None
    }
}

/// Parses one request. With `record`, also renders every event as one NDJSON line.
pub(crate) fn parse_request(
    headers: &HeaderMap,
    body: &[u8],
    record: bool,
) -> Result<Parsed, IngestError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()));
    let essence = content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or("").trim());
    let is = |expected: &str| essence.is_some_and(|e| e.eq_ignore_ascii_case(expected));

    let mut parsed = Parsed::default();
    if is("application/cloudevents-batch+json") {
        let events: Vec<Event> = if record {
            serde_json::from_slice(body).map_err(IngestError::Batch)?
        } else if let Some(events) = batch_in_one_pass(body) {
            events
        } else {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(IngestError::Batch)?;
            items
                .into_iter()
                .map(|item| structured_event(item.get()))
                .collect::<Result<_, _>>()
                .map_err(IngestError::Batch)?
        };
        parsed.arrivals.reserve(events.len());
        for event in events {
            add_cloud_event(&mut parsed, event, record)?;
        }
    } else if is("application/cloudevents+json") {
        let event = if record {
            serde_json::from_slice(body).map_err(IngestError::Structured)?
        } else {
            match std::str::from_utf8(body) {
                Ok(text) => structured_event(text),
                Err(_) => serde_json::from_slice(body),
            }
            .map_err(IngestError::Structured)?
        };
        add_cloud_event(&mut parsed, event, record)?;
    } else if headers.contains_key("ce-specversion") {
        let mut event = cloudevents::binding::http::to_event(headers, body.to_vec())
            .map_err(IngestError::Binary)?;
        if record {
            json_data_for_record(&mut event);
        }
        add_cloud_event(&mut parsed, event, record)?;
    } else if is("application/json") {
        add_event_grid_array(&mut parsed, body, record)?;
    } else {
        return Err(match essence {
            Some(essence) => IngestError::UnsupportedContentType(essence.to_owned()),
            None => IngestError::NoContentType,
        });
    }
    Ok(parsed)
}

/// One structured CloudEvent, without its `data` (only recording needs it).
///
/// The common case, a CloudEvents 1.0 event with JSON `data`, is read in one pass into borrowed
/// attributes and built by the SDK's own attribute builder, the path its HTTP binary binding
/// takes: it checks the required attributes and parses `time` and `dataschema`. `data` stays raw
/// JSON: the SDK's deserializer builds a tree of it (twice) that nobody reads, which was most of
/// the receiver's time. Anything else (another spec version, `data_base64`, a non-JSON
/// content type, an attribute of the wrong type, an invalid value) goes through the SDK's full
/// deserializer, so what is accepted and what is refused, with which message, stays the SDK's.
fn structured_event(json: &str) -> Result<Event, serde_json::Error> {
    match serde_json::from_str::<Attributes>(json)
        .ok()
        .and_then(Attributes::build)
    {
        Some(event) => Ok(event),
        None => serde_json::from_str(json),
    }
}

/// A batch read in one pass, when every event in it takes [`structured_event`]'s fast path (the
/// body is read once, not split into elements and read again). `None` otherwise: the caller then
/// reads each element on its own, so an unusual event goes to the SDK and an error names the SDK's
/// reason, exactly as before.
fn batch_in_one_pass(body: &[u8]) -> Option<Vec<Event>> {
    serde_json::from_slice::<Vec<Attributes>>(body)
        .ok()?
        .into_iter()
        .map(Attributes::build)
        .collect()
}

/// The attributes of a structured CloudEvent, borrowed from the body where they need no
/// unescaping.
#[derive(Default)]
struct Attributes<'a> {
    specversion: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    ty: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    datacontenttype: Option<Cow<'a, str>>,
    dataschema: Option<Cow<'a, str>>,
    subject: Option<Cow<'a, str>>,
    time: Option<Cow<'a, str>>,
    extensions: Vec<(Cow<'a, str>, ExtensionValue)>,
    data: Option<&'a RawValue>,
    /// `data_base64`: left to the SDK.
    data_base64: bool,
}

impl Attributes<'_> {
    /// The event, if this is the common case and the SDK's builder accepts it.
    fn build(self) -> Option<Event> {
        // Non-JSON `data` must be a string for the SDK; the SDK's own rule says what is JSON.
        let json_content = self
            .datacontenttype
            .as_deref()
            .is_none_or(sdk_reads_as_json);
        let data_ok = self
            .data
            .is_none_or(|data| json_content || data.get().starts_with('"'));
        if self.data_base64 || self.specversion.as_deref() != Some("1.0") || !data_ok {
            return None;
        }
        let (Some(id), Some(ty), Some(source)) = (self.id, self.ty, self.source) else {
            return None;
        };
        let mut builder = EventBuilderV10::new().id(id).ty(ty).source(source);
        if let Some(subject) = self.subject {
            builder = builder.subject(subject);
        }
        if let Some(time) = &self.time {
            builder = builder.time(&**time);
        }
        for (name, value) in self.extensions {
            builder = builder.extension(&name, value);
        }
        let mut event = builder.build().ok()?;
        if let Some(dataschema) = self.dataschema {
            event.set_dataschema(Some(url::Url::parse(&dataschema).ok()?));
        }
        event.set_datacontenttype(self.datacontenttype);
        Some(event)
    }
}

/// Whether the SDK reads `data` of this content type as JSON (its private
/// `is_json_content_type`, case-sensitive): the fast path must not accept what the SDK refuses.
fn sdk_reads_as_json(content_type: &str) -> bool {
    content_type.starts_with("application/json")
        || content_type.starts_with("text/json")
        || content_type.ends_with("+json")
}

impl<'de: 'a, 'a> Deserialize<'de> for Attributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AttributesVisitor(std::marker::PhantomData))
    }
}

/// A JSON string, borrowed from the body unless it has escapes (`Cow`'s own `Deserialize`
/// always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                text: &'de str,
            ) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

struct AttributesVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for AttributesVisitor<'a> {
    type Value = Attributes<'a>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a CloudEvent")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Attributes<'a>, M::Error> {
        let mut attributes = Attributes::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let slot = match &*key {
                "specversion" => &mut attributes.specversion,
                "id" => &mut attributes.id,
                "type" => &mut attributes.ty,
                "source" => &mut attributes.source,
                "datacontenttype" => &mut attributes.datacontenttype,
                "dataschema" => &mut attributes.dataschema,
                "subject" => &mut attributes.subject,
                "time" => &mut attributes.time,
                "data" => {
                    attributes.data = Some(map.next_value()?);
                    continue;
                }
                "data_base64" => {
                    attributes.data_base64 = true;
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
                _ => {
                    // A null extension is an absent one, as in the SDK.
                    if let Some(value) = map.next_value::<Option<ExtensionValue>>()? {
                        attributes.extensions.push((key, value));
                    }
                    continue;
                }
            };
            // A null attribute is an absent one, as in the SDK.
            *slot = map
                .next_value::<Option<Text<'de>>>()?
                .map(|Text(text)| text);
        }
        Ok(attributes)
    }
}

fn add_cloud_event(parsed: &mut Parsed, event: Event, record: bool) -> Result<(), IngestError> {
    for (name, value) in [
        ("id", event.id()),
        ("source", event.source().as_str()),
        ("type", event.ty()),
    ] {
        if value.is_empty() {
            return Err(IngestError::EmptyAttribute(name));
        }
    }
    if record {
        // Serializing an `Event` to a Vec cannot fail: its keys are strings, its values JSON.
        let _ = serde_json::to_writer(&mut parsed.record, &event);
        parsed.record.push(b'\n');
    }
    let ty = event.ty();
    parsed.arrivals.push(Arrival {
        ty: ty.to_owned(),
        key: event_key(event.source(), event.id()),
        twin: twin_id(ty, event.subject(), Some(event.source())).map(str::to_owned),
        time: event.time().copied(),
    });
    Ok(())
}

/// In binary mode the SDK keeps the body as bytes (recorded as `data_base64`); a JSON body is
/// turned back into JSON so the record reads like the structured form.
fn json_data_for_record(event: &mut Event) {
    let json_type = event.datacontenttype().is_some_and(|ct| {
        let ct = ct.split(';').next().unwrap_or("").trim();
        ct.eq_ignore_ascii_case("application/json")
            || ct.eq_ignore_ascii_case("text/json")
            || ct.to_ascii_lowercase().ends_with("+json")
    });
    if !json_type {
        return;
    }
    let value = match event.data() {
        Some(Data::Binary(bytes)) => serde_json::from_slice::<Value>(bytes).ok(),
        _ => None,
    };
    if let Some(value) = value {
        event.set_data_unchecked(Data::Json(value));
    }
}

/// Required Event Grid fields (Event Grid's own input schema requires these four).
const EVENT_GRID_REQUIRED: [&str; 4] = ["id", "eventType", "subject", "eventTime"];
/// Fields that must be strings when present.
const EVENT_GRID_OPTIONAL: [&str; 3] = ["topic", "dataVersion", "metadataVersion"];

fn add_event_grid_array(parsed: &mut Parsed, body: &[u8], record: bool) -> Result<(), IngestError> {
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Err(IngestError::EventGridNotArray);
    }
    let events: Vec<Value> = serde_json::from_slice(body).map_err(IngestError::EventGridJson)?;
    parsed.arrivals.reserve(events.len());
    for (index, event) in events.iter().enumerate() {
        let invalid = |reason: String| IngestError::EventGrid { index, reason };
        let Value::Object(object) = event else {
            return Err(invalid("not a JSON object".to_owned()));
        };
        parsed
            .arrivals
            .push(event_grid_arrival(object).map_err(invalid)?);
        if record {
            let _ = serde_json::to_writer(&mut parsed.record, event);
            parsed.record.push(b'\n');
        }
    }
    Ok(())
}

fn event_grid_arrival(object: &Map<String, Value>) -> Result<Arrival, String> {
    if object.contains_key("specversion") && !object.contains_key("eventType") {
        return Err(
            "looks like a CloudEvent: send it as application/cloudevents-batch+json".to_owned(),
        );
    }
    let mut required = [""; 4];
    for (slot, field) in required.iter_mut().zip(EVENT_GRID_REQUIRED) {
        *slot = match object.get(field) {
            Some(Value::String(text)) if !text.is_empty() => text,
            Some(_) => return Err(format!("`{field}` must be a non-empty string")),
            None => return Err(format!("missing `{field}`")),
        };
    }
    let [id, ty, subject, time] = required;
    for field in EVENT_GRID_OPTIONAL {
        if object.get(field).is_some_and(|value| !value.is_string()) {
            return Err(format!("`{field}` must be a string"));
        }
    }
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|error| format!("`eventTime` is not an RFC 3339 time: {error}"))?
        .with_timezone(&Utc);
    // ADT's Event Grid telemetry carries `0001-01-01T00:00:00Z`: a placeholder, not a time.
    let time = (time.year() > 1).then_some(time);
    let topic = object.get("topic").and_then(Value::as_str).unwrap_or("");
    Ok(Arrival {
        ty: ty.to_owned(),
        key: event_key(topic, id),
        twin: twin_id(ty, Some(subject), None).map(str::to_owned),
        time,
    })
}

fn event_key(scope: &str, id: &str) -> String {
    let mut key = String::with_capacity(scope.len() + 1 + id.len());
    key.push_str(scope);
    key.push(KEY_SEPARATOR);
    key.push_str(id);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn structured() -> HeaderMap {
        headers(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )])
    }

    #[test]
    fn twin_ids_per_type() {
        let host = "x.api.wus2.digitaltwins.azure.net";
        assert_eq!(
            twin_id(
                "Microsoft.DigitalTwins.Twin.Update",
                Some("room1"),
                Some(host)
            ),
            Some("room1")
        );
        assert_eq!(
            twin_id(
                "Microsoft.DigitalTwins.Relationship.Delete",
                Some("room1/relationships/r9"),
                Some(host)
            ),
            Some("room1")
        );
        assert_eq!(
            twin_id(
                TELEMETRY_TYPE,
                Some("component1"),
                Some("x.api.wus2.digitaltwins.azure.net/digitaltwins/thermo7")
            ),
            Some("thermo7")
        );
        assert_eq!(twin_id(TELEMETRY_TYPE, Some("c"), Some(host)), None);
        assert_eq!(twin_id("com.example.other", Some("s"), Some(host)), None);
    }

    #[test]
    fn structured_fixtures_parse_with_key_twin_and_time() {
        let parsed = parse_request(
            &structured(),
            &fixture("relationship-update.cloudevent.json"),
            false,
        )
        .unwrap();
        let arrival = &parsed.arrivals[0];
        assert_eq!(arrival.ty, "Microsoft.DigitalTwins.Relationship.Update");
        assert_eq!(
            arrival.key,
            "my-example-digital-twin.api.sea.digitaltwins.azure.net\u{0}4d850574-0a28-4667-a59e-3b382ff0e74e"
        );
        assert_eq!(arrival.twin.as_deref(), Some("example-twin1"));
        assert_eq!(
            arrival.time.map(|t| t.to_rfc3339()),
            Some("2021-12-09T20:28:53.201639500+00:00".to_owned())
        );
        let telemetry =
            parse_request(&structured(), &fixture("telemetry.cloudevent.json"), false).unwrap();
        assert_eq!(telemetry.arrivals[0].time, None);
        assert!(parsed.record.is_empty());
    }

    #[test]
    fn event_grid_fixtures_parse_and_placeholder_time_is_dropped() {
        let mut body = b"[".to_vec();
        for (i, name) in [
            "twin-create.eventgrid.json",
            "twin-update.eventgrid.json",
            "relationship-update.eventgrid.json",
            "telemetry.eventgrid.json",
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                body.push(b',');
            }
            body.extend(fixture(name));
        }
        body.push(b']');
        let json = headers(&[("content-type", "application/json")]);
        let parsed = parse_request(&json, &body, true).unwrap();
        let types: Vec<&str> = parsed.arrivals.iter().map(|a| a.ty.as_str()).collect();
        assert_eq!(
            types,
            [
                "Microsoft.DigitalTwins.Twin.Create",
                "Microsoft.DigitalTwins.Twin.Update",
                "Microsoft.DigitalTwins.Relationship.Update",
                TELEMETRY_TYPE
            ]
        );
        assert!(parsed.arrivals[0].key.starts_with("/subscriptions/"));
        assert!(parsed.arrivals[2].time.is_some());
        assert_eq!(parsed.arrivals[3].time, None);
        // Recorded as received: one compact line per event, key order kept.
        let lines: Vec<&[u8]> = parsed.record.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with(br#"{"id":"6ccdb1cd-"#));
    }

    #[test]
    fn event_grid_errors_name_the_event_and_field() {
        let json = headers(&[("content-type", "application/json")]);
        let error = |body: &str| parse_request(&json, body.as_bytes(), false).unwrap_err();
        assert!(matches!(error("{}"), IngestError::EventGridNotArray));
        assert_eq!(
            error(r#"[{"id":"1","subject":"s","eventTime":"2024-01-01T00:00:00Z"}]"#).to_string(),
            "Event Grid event 0: missing `eventType`"
        );
        assert!(
            error(r#"[{"id":"1","eventType":"t","subject":"s","eventTime":"yesterday"}]"#)
                .to_string()
                .starts_with("Event Grid event 0: `eventTime` is not an RFC 3339 time: ")
        );
        assert_eq!(
            error(r#"[{"id":"1","eventType":"t","subject":"s","eventTime":"2024-01-01T00:00:00Z","topic":7}]"#)
                .to_string(),
            "Event Grid event 0: `topic` must be a string"
        );
        assert_eq!(
            error(r#"[1]"#).to_string(),
            "Event Grid event 0: not a JSON object"
        );
        assert!(
            error(r#"[{"specversion":"1.0","id":"1","source":"s","type":"t"}]"#)
                .to_string()
                .contains("looks like a CloudEvent")
        );
    }

    #[test]
    fn binary_mode_reads_headers_and_records_json_data() {
        let binary = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "e1"),
            ("ce-source", "adt.example"),
            ("ce-type", "Microsoft.DigitalTwins.Twin.Update"),
            ("ce-subject", "room1"),
            ("ce-time", "2024-05-01T10:00:00.1234567Z"),
            (
                "ce-traceparent",
                "00-2aa957558db348f387ef704b37631a1d-96f834571bf4fe45-01",
            ),
            ("content-type", "application/json"),
        ]);
        let parsed = parse_request(&binary, br#"{"modelId":"dtmi:x;1","patch":[]}"#, true).unwrap();
        assert_eq!(parsed.arrivals[0].twin.as_deref(), Some("room1"));
        let line: Value = serde_json::from_slice(parsed.record.trim_ascii_end()).unwrap();
        assert_eq!(line["data"]["modelId"], "dtmi:x;1");
        assert_eq!(line["traceparent"].as_str().map(|s| s.len()), Some(55));
    }

    /// The fast path builds the same event as the SDK's deserializer, but for `data`.
    #[test]
    fn the_fast_path_agrees_with_the_sdk_on_every_generated_event() {
        let mut kinds = std::collections::HashSet::new();
        for event in crate::generator::sample_events(5, 200, 2000) {
            let json = String::from_utf8(event.to_json().to_vec()).unwrap();
            let fast = structured_event(&json).unwrap();
            let mut full: Event = serde_json::from_str(&json).unwrap();
            // Taking `data` takes `datacontenttype` and `dataschema` with it; the fast path
            // keeps both attributes.
            let content_type = full.datacontenttype().map(str::to_owned);
            let schema = full.dataschema().cloned();
            full.take_data();
            full.set_datacontenttype(content_type);
            full.set_dataschema(schema);
            assert_eq!(fast, full, "{json}");
            assert!(fast.extension("traceparent").is_some());
            kinds.insert(event.kind);
        }
        assert_eq!(kinds.len(), 7, "every event type was compared");
    }

    /// What the fast path does not take goes to the SDK: accepted or refused as the SDK says.
    #[test]
    fn unusual_events_are_left_to_the_sdk() {
        let base = r#""specversion":"1.0","id":"1","source":"s","type":"t""#;
        let parse = |rest: &str| structured_event(&format!("{{{base}{rest}}}"));
        // data_base64: the SDK decodes it.
        let event = parse(r#","data_base64":"eyJhIjoxfQ==""#).unwrap();
        assert!(event.data().is_some());
        // Another spec version.
        let v03 = structured_event(r#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#);
        assert!(v03.is_ok());
        // Refusals carry the SDK's message.
        for (rest, message) in [
            (r#","time":"yesterday""#, "premature end of input"),
            (
                r#","dataschema":"not a url""#,
                "relative URL without a base",
            ),
            (
                r#","datacontenttype":"text/plain","data":{"a":1}"#,
                "invalid type: map",
            ),
            (
                r#","data":1,"data_base64":"AA==""#,
                "Cannot have both data and data_base64",
            ),
            (r#","ext":{"nested":true}"#, "did not match any variant"),
        ] {
            let error = parse(rest).unwrap_err().to_string();
            assert!(error.contains(message), "{rest}: {error}");
        }
        let error = structured_event(r#"{"specversion":"1.0","id":7,"source":"s","type":"t"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid type: integer"), "{error}");
        let error = structured_event(r#"{"specversion":"1.0","source":"s","type":"t"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `id`"), "{error}");
        // Escaped strings are read correctly (not borrowed).
        let event =
            structured_event(r#"{"specversion":"1.0","id":"a\"b","source":"s","type":"t"}"#)
                .unwrap();
        assert_eq!(event.id(), "a\"b");
    }

    /// A batch reads as its elements read one by one: in one pass when all are common, element
    /// by element when one is not (that one through the SDK), and an error is the SDK's.
    #[test]
    fn a_batch_reads_as_its_elements_do() {
        let batch = headers(&[("content-type", "application/cloudevents-batch+json")]);
        let ids = |body: &str| -> Vec<String> {
            parse_request(&batch, body.as_bytes(), false)
                .unwrap()
                .arrivals
                .into_iter()
                .map(|arrival| arrival.key)
                .collect()
        };
        let common = |id: u32| {
            format!(
                r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"t","data":{{"a":[1,{{"b":"]"}}]}}}}"#
            )
        };
        let all_common = format!("[{},{}]", common(1), common(2));
        assert!(batch_in_one_pass(all_common.as_bytes()).is_some());
        let base64 = r#"{"specversion":"1.0","id":"3","source":"s","type":"t","data_base64":"eyJhIjoxfQ=="}"#;
        let mixed = format!("[{},{base64},{}]", common(1), common(2));
        assert!(batch_in_one_pass(mixed.as_bytes()).is_none());
        assert_eq!(ids(&all_common), [event_key("s", "1"), event_key("s", "2")]);
        assert_eq!(
            ids(&mixed),
            [
                event_key("s", "1"),
                event_key("s", "3"),
                event_key("s", "2")
            ]
        );
        let bad_time =
            r#"{"specversion":"1.0","id":"4","source":"s","type":"t","time":"yesterday"}"#;
        let refused = parse_request(
            &batch,
            format!("[{},{bad_time}]", common(1)).as_bytes(),
            false,
        );
        match refused {
            Err(IngestError::Batch(error)) => {
                assert!(
                    error.to_string().contains("premature end of input"),
                    "{error}"
                )
            }
            other => panic!("{:?}", other.map(|parsed| parsed.arrivals.len())),
        }
    }

    #[test]
    fn invalid_cloud_events_are_rejected() {
        let missing_id = br#"{"specversion":"1.0","source":"s","type":"t"}"#;
        assert!(matches!(
            parse_request(&structured(), missing_id, false),
            Err(IngestError::Structured(_))
        ));
        let empty_id = br#"{"specversion":"1.0","id":"","source":"s","type":"t"}"#;
        assert!(matches!(
            parse_request(&structured(), empty_id, false),
            Err(IngestError::EmptyAttribute("id"))
        ));
        let bad_version = headers(&[
            ("ce-specversion", "9.9"),
            ("ce-id", "1"),
            ("ce-source", "s"),
            ("ce-type", "t"),
        ]);
        assert!(matches!(
            parse_request(&bad_version, b"", false),
            Err(IngestError::Binary(_))
        ));
        let batch = headers(&[("content-type", "application/cloudevents-batch+json")]);
        assert!(matches!(
            parse_request(&batch, br#"{"specversion":"1.0"}"#, false),
            Err(IngestError::Batch(_))
        ));
        let text = headers(&[("content-type", "text/plain")]);
        assert!(matches!(
            parse_request(&text, b"hi", false),
            Err(IngestError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            parse_request(&HeaderMap::new(), b"hi", false),
            Err(IngestError::NoContentType)
        ));
    }
}
