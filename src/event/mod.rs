//! ADT's event notifications as typed values, and their one serialization.
//!
//! An [`Event`] holds the CloudEvents attributes ADT sets and a typed [`EventData`] payload. It is
//! serialized once, into a [`Serialized`] that every route and endpoint then shares: the bytes a
//! sink sends and a dead-letter blob holds are those bytes, exactly. The typed `Serialize` impls
//! define the JSON (rather than `cloudevents::Event`, measured slower: `benches/generate.rs`);
//! `json` writes the same bytes without serde's per-byte escaping of every key and value, and a
//! test holds the two equal. `tests/conformance.rs` proves the official SDK reads every event back.

mod data;
mod json;

use std::fmt;
use std::sync::Arc;

use arrayvec::ArrayString;
use bytes::Bytes;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::clock::AdtTime;

pub use data::{
    EventData, PatchData, PatchOp, PatchOpKind, PropValue, Property, RelationshipData, TwinData,
};

/// The seven notification types ADT emits (adt-facts §1.1). Values are case-sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `Microsoft.DigitalTwins.Twin.Create`
    TwinCreate,
    /// `Microsoft.DigitalTwins.Twin.Update`
    TwinUpdate,
    /// `Microsoft.DigitalTwins.Twin.Delete`
    TwinDelete,
    /// `Microsoft.DigitalTwins.Relationship.Create`
    RelationshipCreate,
    /// `Microsoft.DigitalTwins.Relationship.Update`
    RelationshipUpdate,
    /// `Microsoft.DigitalTwins.Relationship.Delete`
    RelationshipDelete,
    /// `microsoft.iot.telemetry` (all lowercase, as ADT sends it)
    Telemetry,
}

impl EventType {
    /// Every type, in a fixed order (reports and mixes list them in this order).
    pub const ALL: [EventType; 7] = [
        EventType::TwinCreate,
        EventType::TwinUpdate,
        EventType::TwinDelete,
        EventType::RelationshipCreate,
        EventType::RelationshipUpdate,
        EventType::RelationshipDelete,
        EventType::Telemetry,
    ];

    /// The exact `type` attribute.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::TwinCreate => "Microsoft.DigitalTwins.Twin.Create",
            EventType::TwinUpdate => "Microsoft.DigitalTwins.Twin.Update",
            EventType::TwinDelete => "Microsoft.DigitalTwins.Twin.Delete",
            EventType::RelationshipCreate => "Microsoft.DigitalTwins.Relationship.Create",
            EventType::RelationshipUpdate => "Microsoft.DigitalTwins.Relationship.Update",
            EventType::RelationshipDelete => "Microsoft.DigitalTwins.Relationship.Delete",
            EventType::Telemetry => "microsoft.iot.telemetry",
        }
    }

    /// The type whose `type` attribute is exactly `text`.
    pub fn from_type_str(text: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// Position in [`EventType::ALL`], for per-type counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CloudEvent `id` as ADT makes it: a lowercase hyphenated UUID, held inline.
pub type EventId = ArrayString<36>;

/// A W3C `traceparent`: `00-<32 hex>-<16 hex>-01`, held inline.
pub type TraceParent = ArrayString<55>;

/// One ADT event notification: CloudEvents 1.0 attributes plus a typed payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `id`: unique with `source` for each distinct event.
    pub id: EventId,
    /// `type`.
    pub kind: EventType,
    /// `source`: the instance host, or `<host>/digitaltwins/<twin-id>` for telemetry.
    pub source: Arc<str>,
    /// `subject`: the twin id, `<source-twin>/relationships/<relationship-id>`, or a component.
    pub subject: Option<Arc<str>>,
    /// `time`: set on twin and relationship events, absent on telemetry.
    pub time: Option<AdtTime>,
    /// `datacontenttype`.
    pub datacontenttype: &'static str,
    /// `dataschema`: the model id, telemetry only.
    pub dataschema: Option<&'static str>,
    /// `traceparent` (distributed-tracing extension).
    pub traceparent: TraceParent,
    /// The twin the event concerns (for relationships, the source twin). Not serialized: sinks
    /// use it as a partition key and receivers to check per-twin order.
    pub twin_id: Arc<str>,
    /// `data`.
    pub data: EventData,
}

/// CloudEvents `specversion` of every ADT event.
pub const SPEC_VERSION: &str = "1.0";

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Field order follows ADT's documented examples.
        let mut state = serializer.serialize_struct("Event", 10)?;
        state.serialize_field("specversion", SPEC_VERSION)?;
        state.serialize_field("id", self.id.as_str())?;
        state.serialize_field("type", self.kind.as_str())?;
        state.serialize_field("source", &*self.source)?;
        state.serialize_field("data", &self.data)?;
        if let Some(subject) = &self.subject {
            state.serialize_field("subject", &**subject)?;
        }
        if let Some(time) = &self.time {
            state.serialize_field("time", time.as_str())?;
        }
        state.serialize_field("datacontenttype", self.datacontenttype)?;
        if let Some(schema) = self.dataschema {
            state.serialize_field("dataschema", schema)?;
        }
        state.serialize_field("traceparent", self.traceparent.as_str())?;
        state.end()
    }
}

/// An event and its structured-JSON bytes, made once and shared by every route and endpoint.
///
/// The bytes are made by whoever needs them first (the first sink that sends the event, or the
/// dead-letter writer), not by the generator: on a multi-core run that moves serialization off
/// the generator's thread onto the delivery workers', and it still happens exactly once.
#[derive(Debug)]
pub struct Serialized {
    /// The typed event (attributes for routing, binary-mode headers, partition keys).
    pub event: Event,
    json: std::sync::OnceLock<Bytes>,
}

impl Serialized {
    /// Wraps `event`; its JSON is made on first use.
    pub fn new(event: Event) -> Self {
        Serialized {
            event,
            json: std::sync::OnceLock::new(),
        }
    }

    /// The structured CloudEvents JSON, exactly as delivered and dead-lettered.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| self.event.to_json())
    }
}

impl Event {
    /// The structured CloudEvents JSON of this event.
    /// Byte for byte what the `Serialize` impl gives, written directly (see `json`).
    pub fn to_json(&self) -> Bytes {
        let mut buffer = Vec::with_capacity(640);
        json::write_event(self, &mut buffer);
        Bytes::from(buffer)
    }
}

impl crate::filter::FilterInput for Event {
    fn attribute(&self, attribute: crate::filter::Attribute) -> Option<&str> {
        use crate::filter::Attribute as A;
        match attribute {
            A::Type => Some(self.kind.as_str()),
            A::Source => Some(&self.source),
            A::Subject => self.subject.as_deref(),
            A::Id => Some(&self.id),
            A::Time => self.time.as_deref(),
            A::SpecVersion => Some(SPEC_VERSION),
            A::DataSchema => self.dataschema,
            A::DataContentType => Some(self.datacontenttype),
            A::TraceParent => Some(&self.traceparent),
        }
    }

    fn body(&self, path: &[Box<str>]) -> Option<crate::filter::BodyValue<'_>> {
        self.data.lookup(path)
    }
}
