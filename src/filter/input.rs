//! What a filter reads from an event, and an event read from JSON.

use serde_json::{Map, Value};

use super::ast::Attribute;

/// A value read out of an event's `data` for a comparison.
///
/// Arrays and objects carry no content: no filter can look inside them with a comparison
/// (ADT cannot filter on fields inside arrays), only test that they are not null.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyValue<'a> {
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number that fits an i64.
    Int(i64),
    /// Any other number (a fraction, or an integer outside the i64 range).
    Float(f64),
    /// A string.
    Str(&'a str),
    /// An array.
    Array,
    /// An object.
    Object,
}

impl<'a> BodyValue<'a> {
    /// The value `value` holds at its top level.
    pub fn of(value: &'a Value) -> BodyValue<'a> {
        match value {
            Value::Null => BodyValue::Null,
            Value::Bool(b) => BodyValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => BodyValue::Int(i),
                // u64 above i64::MAX lands here too, rounded: comparisons that far out are
                // approximate, and the filter grammar cannot even write such an integer.
                None => BodyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => BodyValue::Str(s),
            Value::Array(_) => BodyValue::Array,
            Value::Object(_) => BodyValue::Object,
        }
    }

    /// The value at `path` inside `data`, `None` when a segment is missing or steps through
    /// something other than an object. For typed events that keep their payload as JSON.
    pub fn at(data: &'a Value, path: &[Box<str>]) -> Option<BodyValue<'a>> {
        let mut current = data;
        for segment in path {
            current = current.as_object()?.get(&**segment)?;
        }
        Some(BodyValue::of(current))
    }
}

/// What a filter reads from an event. Implemented by the main crate's typed event and, here,
/// by a parsed JSON event.
pub trait FilterInput {
    /// The attribute's value, `None` when the event does not have it. All context attributes
    /// are strings.
    fn attribute(&self, attribute: Attribute) -> Option<&str>;

    /// The value at `path` inside `data` (each element one dotted segment, e.g.
    /// `["$metadata", "$model"]`), `None` when absent.
    fn body(&self, path: &[Box<str>]) -> Option<BodyValue<'_>>;
}

/// Why a JSON value is not a structured CloudEvent.
#[derive(Debug, thiserror::Error)]
pub enum JsonEventError {
    /// The text is not JSON.
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not an object.
    #[error("an event must be a json object")]
    NotAnObject,
    /// A required CloudEvents attribute (`id`, `source`, `specversion`, `type`) is missing or
    /// null.
    #[error("missing required attribute '{0}'")]
    MissingAttribute(&'static str),
    /// A context attribute is present but not a string.
    #[error("attribute '{0}' must be a string")]
    NotAString(&'static str),
}

/// A structured CloudEvent parsed from JSON (what `twinroute filter` reads from NDJSON).
///
/// Context attributes are the top-level string members named as in [`Attribute::name`];
/// `$body` paths read the `data` member. A `null` attribute counts as absent.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonEvent {
    fields: Map<String, Value>,
}

impl JsonEvent {
    /// Attributes every CloudEvent must carry (CloudEvents 1.0, "REQUIRED Attributes").
    const REQUIRED: [Attribute; 4] = [
        Attribute::Id,
        Attribute::Source,
        Attribute::SpecVersion,
        Attribute::Type,
    ];

    /// Checks that `value` is a CloudEvent object: required attributes present, and every
    /// context attribute a string.
    pub fn from_value(value: Value) -> Result<JsonEvent, JsonEventError> {
        let Value::Object(fields) = value else {
            return Err(JsonEventError::NotAnObject);
        };
        for attribute in JsonEvent::REQUIRED {
            if fields.get(attribute.name()).is_none_or(Value::is_null) {
                return Err(JsonEventError::MissingAttribute(attribute.name()));
            }
        }
        for attribute in Attribute::ALL {
            if let Some(value) = fields.get(attribute.name())
                && !(value.is_string() || value.is_null())
            {
                return Err(JsonEventError::NotAString(attribute.name()));
            }
        }
        Ok(JsonEvent { fields })
    }

    /// Parses one line of NDJSON.
    pub fn from_json(text: &str) -> Result<JsonEvent, JsonEventError> {
        JsonEvent::from_value(serde_json::from_str(text)?)
    }

    /// The event's members.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The event as a JSON value again, e.g. to print the events that matched.
    pub fn into_value(self) -> Value {
        Value::Object(self.fields)
    }
}

impl FilterInput for JsonEvent {
    fn attribute(&self, attribute: Attribute) -> Option<&str> {
        self.fields.get(attribute.name())?.as_str()
    }

    fn body(&self, path: &[Box<str>]) -> Option<BodyValue<'_>> {
        BodyValue::at(self.fields.get("data")?, path)
    }
}
