//! The `data` payloads of ADT's notifications (adt-facts §1.3), serialized field by field in the
//! order ADT's examples show.

use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use crate::clock::AdtTime;

/// A twin or relationship property value, or a telemetry field.
#[derive(Clone, Debug, PartialEq)]
pub enum PropValue {
    /// A JSON string.
    Str(Arc<str>),
    /// A JSON integer.
    Int(i64),
    /// A JSON double.
    Float(f64),
    /// A JSON boolean.
    Bool(bool),
}

impl Serialize for PropValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PropValue::Str(text) => serializer.serialize_str(text),
            PropValue::Int(value) => serializer.serialize_i64(*value),
            PropValue::Float(value) => serializer.serialize_f64(*value),
            PropValue::Bool(value) => serializer.serialize_bool(*value),
        }
    }
}

/// One property of a twin with the time it was last set (ADT's `$metadata.<prop>.lastUpdateTime`).
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    /// Property name as the model declares it.
    pub name: &'static str,
    /// Current value.
    pub value: PropValue,
    /// When the value was last set.
    pub last_update: AdtTime,
}

/// A twin as `GET /digitaltwins/{id}` returns it: the payload of Twin.Create and Twin.Delete.
#[derive(Clone, Debug, PartialEq)]
pub struct TwinData {
    /// `$dtId`.
    pub dt_id: Arc<str>,
    /// `$etag`: `W/"<uuid>"`.
    pub etag: Arc<str>,
    /// `$metadata.$model`.
    pub model: &'static str,
    /// The twin's properties, in model order.
    pub properties: Vec<Property>,
}

/// A relationship as `GET .../relationships/{id}` returns it: the payload of Relationship.Create
/// and Relationship.Delete.
#[derive(Clone, Debug, PartialEq)]
pub struct RelationshipData {
    /// `$relationshipId`.
    pub id: Arc<str>,
    /// `$etag`.
    pub etag: Arc<str>,
    /// `$relationshipName`.
    pub name: &'static str,
    /// `$sourceId`.
    pub source_id: Arc<str>,
    /// `$targetId`.
    pub target_id: Arc<str>,
    /// The relationship's own properties.
    pub properties: Vec<(&'static str, PropValue)>,
}

/// The JSON Patch operation kinds ADT reports in Update events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `remove`
    Remove,
}

impl PatchOpKind {
    /// The `op` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Remove => "remove",
        }
    }
}

/// One JSON Patch operation.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOp {
    /// `op`.
    pub op: PatchOpKind,
    /// `path`, e.g. `/Temperature` or `/comp1/prop1`.
    pub path: &'static str,
    /// `value`; absent for `remove`.
    pub value: Option<PropValue>,
}

impl Serialize for PatchOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("PatchOp", 3)?;
        if let Some(value) = &self.value {
            state.serialize_field("value", value)?;
        }
        state.serialize_field("path", self.path)?;
        state.serialize_field("op", self.op.as_str())?;
        state.end()
    }
}

/// The payload of Twin.Update and Relationship.Update: `{"modelId": ..., "patch": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchData {
    /// `modelId`: the twin's model (for relationships, the source twin's model).
    #[serde(rename = "modelId")]
    pub model_id: &'static str,
    /// `patch`.
    pub patch: Vec<PatchOp>,
}

/// The `data` of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventData {
    /// Twin.Create / Twin.Delete.
    Twin(TwinData),
    /// Relationship.Create / Relationship.Delete.
    Relationship(RelationshipData),
    /// Twin.Update / Relationship.Update.
    Patch(PatchData),
    /// Telemetry: the sender's JSON object, unmodified.
    Telemetry(Vec<(&'static str, PropValue)>),
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EventData::Twin(twin) => twin.serialize(serializer),
            EventData::Relationship(relationship) => relationship.serialize(serializer),
            EventData::Patch(patch) => patch.serialize(serializer),
            EventData::Telemetry(fields) => serialize_fields(serializer, fields, |_| Ok(())),
        }
    }
}

fn serialize_fields<S: Serializer>(
    serializer: S,
    fields: &[(&'static str, PropValue)],
    before: impl FnOnce(&mut S::SerializeMap) -> Result<(), S::Error>,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    before(&mut map)?;
    for (name, value) in fields {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

impl Serialize for TwinData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.properties.len() + 3))?;
        map.serialize_entry("$dtId", &*self.dt_id)?;
        map.serialize_entry("$etag", &*self.etag)?;
        for property in &self.properties {
            map.serialize_entry(property.name, &property.value)?;
        }
        map.serialize_entry("$metadata", &TwinMetadata(self))?;
        map.end()
    }
}

/// `$metadata`: the model id and each property's `lastUpdateTime`.
struct TwinMetadata<'a>(&'a TwinData);

impl Serialize for TwinMetadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.properties.len() + 1))?;
        map.serialize_entry("$model", self.0.model)?;
        for property in &self.0.properties {
            map.serialize_entry(property.name, &LastUpdate(&property.last_update))?;
        }
        map.end()
    }
}

struct LastUpdate<'a>(&'a AdtTime);

impl Serialize for LastUpdate<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("LastUpdate", 1)?;
        state.serialize_field("lastUpdateTime", self.0.as_str())?;
        state.end()
    }
}

impl Serialize for RelationshipData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fields(serializer, &self.properties, |map| {
            map.serialize_entry("$relationshipId", &*self.id)?;
            map.serialize_entry("$etag", &*self.etag)?;
            map.serialize_entry("$relationshipName", self.name)?;
            map.serialize_entry("$sourceId", &*self.source_id)?;
            map.serialize_entry("$targetId", &*self.target_id)
        })
    }
}

use crate::filter::BodyValue;

impl PropValue {
    fn as_body(&self) -> BodyValue<'_> {
        match self {
            PropValue::Str(text) => BodyValue::Str(text),
            PropValue::Int(value) => BodyValue::Int(*value),
            PropValue::Float(value) => BodyValue::Float(*value),
            PropValue::Bool(value) => BodyValue::Bool(*value),
        }
    }
}

/// A scalar found at the last segment of a path; anything longer reaches inside a scalar.
fn leaf<'a>(rest: &[Box<str>], value: BodyValue<'a>) -> Option<BodyValue<'a>> {
    rest.is_empty().then_some(value)
}

fn field<'a>(
    fields: &'a [(&'static str, PropValue)],
    name: &str,
    rest: &[Box<str>],
) -> Option<BodyValue<'a>> {
    let (_, value) = fields.iter().find(|(field, _)| *field == name)?;
    leaf(rest, value.as_body())
}

impl EventData {
    /// The value at `path` inside `data`, read from the typed payload (no JSON is built), with
    /// the same answers a parsed copy of the serialized event would give.
    pub fn lookup(&self, path: &[Box<str>]) -> Option<BodyValue<'_>> {
        let (first, rest) = path.split_first()?;
        match self {
            EventData::Twin(twin) => match &**first {
                "$dtId" => leaf(rest, BodyValue::Str(&twin.dt_id)),
                "$etag" => leaf(rest, BodyValue::Str(&twin.etag)),
                "$metadata" => match rest {
                    [] => Some(BodyValue::Object),
                    [model] if &**model == "$model" => Some(BodyValue::Str(twin.model)),
                    [name, more @ ..] => {
                        let property = twin.properties.iter().find(|p| p.name == &**name)?;
                        match more {
                            [] => Some(BodyValue::Object),
                            [last] if &**last == "lastUpdateTime" => {
                                Some(BodyValue::Str(&property.last_update))
                            }
                            _ => None,
                        }
                    }
                },
                name => {
                    let property = twin.properties.iter().find(|p| p.name == name)?;
                    leaf(rest, property.value.as_body())
                }
            },
            EventData::Relationship(relationship) => match &**first {
                "$relationshipId" => leaf(rest, BodyValue::Str(&relationship.id)),
                "$etag" => leaf(rest, BodyValue::Str(&relationship.etag)),
                "$relationshipName" => leaf(rest, BodyValue::Str(relationship.name)),
                "$sourceId" => leaf(rest, BodyValue::Str(&relationship.source_id)),
                "$targetId" => leaf(rest, BodyValue::Str(&relationship.target_id)),
                name => field(&relationship.properties, name, rest),
            },
            EventData::Patch(patch) => match &**first {
                "modelId" => leaf(rest, BodyValue::Str(patch.model_id)),
                // ADT cannot filter inside arrays; the parser refuses indexing, and a path
                // through the array finds nothing.
                "patch" => leaf(rest, BodyValue::Array),
                _ => None,
            },
            EventData::Telemetry(fields) => field(fields, first, rest),
        }
    }
}
