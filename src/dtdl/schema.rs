//! Schemas: what a Property, Telemetry, Object field or Map value holds, resolved to a tree.
//!
//! References to reusable schemas (`"schema": "dtmi:…;1"`) are resolved when the models are
//! read, so a [`Schema`] never names another schema: it *is* the tree. Complex schemas sit
//! behind [`Arc`], so a reusable schema referenced from many places is one allocation.

use std::sync::Arc;

/// The data type of a Property, Telemetry, Object field, Map value or Array element.
#[derive(Clone, Debug, PartialEq)]
pub enum Schema {
    /// `boolean`, `integer`, `dateTime`, …
    Primitive(Primitive),
    /// `{"@type": "Enum", "valueSchema": …, "enumValues": […]}`.
    Enum(Arc<EnumSchema>),
    /// `{"@type": "Object", "fields": […]}`.
    Object(Arc<ObjectSchema>),
    /// `{"@type": "Map", "mapKey": …, "mapValue": …}`: a JSON object with string keys.
    Map(Arc<MapSchema>),
    /// `{"@type": "Array", "elementSchema": …}`.
    Array(Arc<ArraySchema>),
    /// A geospatial schema (`point`, `dtmi:standard:schema:geospatial:point;3`, …): a GeoJSON
    /// geometry object.
    Geo(GeoKind),
}

/// DTDL's primitive schemas (v2 and v3 have the same ten).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `true` or `false`.
    Boolean,
    /// RFC 3339 full-date, `2024-02-29`.
    Date,
    /// RFC 3339 date-time, `2024-02-29T13:45:00.1234567Z`.
    DateTime,
    /// A finite IEEE 754 double.
    Double,
    /// An ISO 8601 duration, `P1DT2H`, `PT0.5S`.
    Duration,
    /// A finite number that fits an IEEE 754 single.
    Float,
    /// A 4-byte signed integer.
    Integer,
    /// An 8-byte signed integer.
    Long,
    /// A UTF-8 string.
    String,
    /// RFC 3339 partial-time, with an optional offset: `13:45:00`, `13:45:00.5+01:00`.
    Time,
}

impl Primitive {
    /// Every primitive schema.
    pub const ALL: [Primitive; 10] = [
        Primitive::Boolean,
        Primitive::Date,
        Primitive::DateTime,
        Primitive::Double,
        Primitive::Duration,
        Primitive::Float,
        Primitive::Integer,
        Primitive::Long,
        Primitive::String,
        Primitive::Time,
    ];

    /// The name a model writes, `dateTime`.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Boolean => "boolean",
            Primitive::Date => "date",
            Primitive::DateTime => "dateTime",
            Primitive::Double => "double",
            Primitive::Duration => "duration",
            Primitive::Float => "float",
            Primitive::Integer => "integer",
            Primitive::Long => "long",
            Primitive::String => "string",
            Primitive::Time => "time",
        }
    }

    /// The primitive a model names (case-sensitive, as DTDL is).
    pub fn from_name(name: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// An Enum: named values, all integers or all strings.
#[derive(Clone, Debug, PartialEq)]
pub struct EnumSchema {
    /// The schema's `@id`, if it has one.
    pub id: Option<String>,
    /// `valueSchema`.
    pub value_schema: EnumValueSchema,
    /// `enumValues`, in model order (empty is allowed in v3).
    pub values: Vec<EnumValue>,
}

/// An Enum's `valueSchema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnumValueSchema {
    /// `integer`.
    Integer,
    /// `string`.
    String,
}

/// One of an Enum's `enumValues`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumValue {
    /// `name`: the label.
    pub name: String,
    /// `enumValue`: what goes on the wire.
    pub value: EnumLiteral,
}

/// An `enumValue`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EnumLiteral {
    /// Of an `integer` Enum.
    Integer(i32),
    /// Of a `string` Enum.
    String(String),
}

/// An Object: named fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSchema {
    /// The schema's `@id`, if it has one.
    pub id: Option<String>,
    /// `fields`, in model order (empty is allowed in v3).
    pub fields: Vec<Field>,
}

impl ObjectSchema {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// One of an Object's `fields`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// `name`: the JSON key.
    pub name: String,
    /// `schema`.
    pub schema: Schema,
}

/// A Map: string keys to values of one schema. The key and value names are metadata only.
#[derive(Clone, Debug, PartialEq)]
pub struct MapSchema {
    /// The schema's `@id`, if it has one.
    pub id: Option<String>,
    /// `mapKey.name`.
    pub key_name: String,
    /// `mapValue.name`.
    pub value_name: String,
    /// `mapValue.schema`.
    pub value: Schema,
}

/// An Array of elements of one schema.
#[derive(Clone, Debug, PartialEq)]
pub struct ArraySchema {
    /// The schema's `@id`, if it has one.
    pub id: Option<String>,
    /// `elementSchema`.
    pub element: Schema,
}

/// A geospatial schema: which GeoJSON geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeoKind {
    /// `point`: `{"type": "Point", "coordinates": [x, y]}`.
    Point,
    /// `multiPoint`.
    MultiPoint,
    /// `lineString`.
    LineString,
    /// `multiLineString`.
    MultiLineString,
    /// `polygon`.
    Polygon,
    /// `multiPolygon`.
    MultiPolygon,
}

impl GeoKind {
    /// Every geospatial schema.
    pub const ALL: [GeoKind; 6] = [
        GeoKind::Point,
        GeoKind::MultiPoint,
        GeoKind::LineString,
        GeoKind::MultiLineString,
        GeoKind::Polygon,
        GeoKind::MultiPolygon,
    ];

    /// The DTDL term, `lineString`; the DTMI is `dtmi:standard:schema:geospatial:<term>;<2|3>`.
    pub fn term(self) -> &'static str {
        match self {
            GeoKind::Point => "point",
            GeoKind::MultiPoint => "multiPoint",
            GeoKind::LineString => "lineString",
            GeoKind::MultiLineString => "multiLineString",
            GeoKind::Polygon => "polygon",
            GeoKind::MultiPolygon => "multiPolygon",
        }
    }

    /// The GeoJSON `type` of a value, `LineString`.
    pub fn geojson_type(self) -> &'static str {
        match self {
            GeoKind::Point => "Point",
            GeoKind::MultiPoint => "MultiPoint",
            GeoKind::LineString => "LineString",
            GeoKind::MultiLineString => "MultiLineString",
            GeoKind::Polygon => "Polygon",
            GeoKind::MultiPolygon => "MultiPolygon",
        }
    }

    /// How deeply positions are nested in `coordinates`: 0 for a Point's one position, 1 for
    /// a list of positions, …
    pub(super) fn position_depth(self) -> usize {
        match self {
            GeoKind::Point => 0,
            GeoKind::MultiPoint | GeoKind::LineString => 1,
            GeoKind::MultiLineString | GeoKind::Polygon => 2,
            GeoKind::MultiPolygon => 3,
        }
    }

    /// The geospatial schema a model names: the term (`point`) or the DTMI of DTDL v2 or v3
    /// (`dtmi:standard:schema:geospatial:point;2`, `…;3`), either in either version.
    pub fn from_schema_name(name: &str) -> Option<GeoKind> {
        let term = match name.strip_prefix("dtmi:standard:schema:geospatial:") {
            Some(rest) => rest
                .strip_suffix(";2")
                .or_else(|| rest.strip_suffix(";3"))?,
            None => name,
        };
        GeoKind::ALL.into_iter().find(|kind| kind.term() == term)
    }
}
