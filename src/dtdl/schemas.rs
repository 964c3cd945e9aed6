//! Schema JSON to [`Schema`] trees: primitives, geospatial schemas, inline complex schemas,
//! and references to reusable schemas (any loaded interface's `schemas`, each resolved once
//! and shared, its problems reported where it is declared).

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::error::{Loc, ModelProblem, ProblemKind};
use super::model::DtdlVersion;
use super::read::{RawInterface, RawSchema, RawSchemaDef, check_name};
use super::schema::{
    ArraySchema, EnumLiteral, EnumSchema, EnumValue, EnumValueSchema, Field, GeoKind, MapSchema,
    ObjectSchema, Primitive, Schema,
};

/// Complex schemas nest at most this deep, references included (DTDL allows 5; this bound
/// keeps hostile input from exhausting the stack).
pub(super) const MAX_DEPTH: usize = 32;

/// A schema read, and what the rules of its context need to know about it.
#[derive(Clone)]
pub(super) struct Resolved {
    pub schema: Schema,
    /// Whether an Array (or a geospatial schema, which is arrays) is somewhere in the tree:
    /// refused in a DTDL v2 Property.
    pub has_array: bool,
    /// Complex schemas nested, 0 for a primitive.
    pub height: usize,
}

enum Memo {
    InProgress,
    Done(Option<Resolved>),
}

/// Reads schemas, resolving references to the reusable schemas of every loaded interface.
pub(super) struct SchemaResolver<'v, 'p> {
    registry: IndexMap<&'v str, &'v RawSchemaDef<'v>>,
    memo: HashMap<&'v str, Memo>,
    problems: &'p mut Vec<ModelProblem>,
}

impl<'v, 'p> SchemaResolver<'v, 'p> {
    /// A resolver over the reusable schemas of `interfaces`; a second schema with one `@id`
    /// is reported and ignored.
    pub fn new(
        interfaces: impl IntoIterator<Item = &'v RawInterface<'v>>,
        problems: &'p mut Vec<ModelProblem>,
    ) -> Self {
        let mut registry: IndexMap<&'v str, &'v RawSchemaDef<'v>> = IndexMap::new();
        for interface in interfaces {
            for def in &interface.schemas {
                if let Some(first) = registry.get(def.id.as_str()) {
                    problems.push(def.schema.loc.problem(
                        ProblemKind::ModelAlreadyExists,
                        format!(
                            "a schema with @id {} is already declared ({}: {})",
                            def.id, first.schema.loc.file, first.schema.loc.path
                        ),
                    ));
                    continue;
                }
                registry.insert(&def.id, def);
            }
        }
        SchemaResolver {
            registry,
            memo: HashMap::new(),
            problems,
        }
    }

    /// Resolves every reusable schema, referenced or not, so that each one's problems are
    /// reported once, in declaration order.
    pub fn resolve_reusable(&mut self) {
        let ids: Vec<&'v str> = self.registry.keys().copied().collect();
        for id in ids {
            if !self.memo.contains_key(id) {
                let def = self.registry[id];
                self.memo.insert(id, Memo::InProgress);
                let resolved =
                    self.complex_value(def.schema.value, &def.schema.loc, def.version, 0);
                self.memo.insert(id, Memo::Done(resolved));
            }
        }
    }

    /// Reads a `schema` written in an interface of `version`.
    pub fn resolve(&mut self, raw: &RawSchema<'v>, version: DtdlVersion) -> Option<Resolved> {
        self.value(raw.value, &raw.loc, version, 0)
    }

    /// Records a problem found beside schema reading (by the caller's rules).
    pub fn report(&mut self, problem: ModelProblem) {
        self.problems.push(problem);
    }

    fn problem(&mut self, loc: &Loc, message: impl Into<String>) {
        self.problems
            .push(loc.problem(ProblemKind::Schema, message));
    }

    fn value(
        &mut self,
        value: &'v Value,
        loc: &Loc,
        version: DtdlVersion,
        depth: usize,
    ) -> Option<Resolved> {
        match value {
            Value::String(name) => self.named(name, loc, depth),
            Value::Object(_) => self.complex_value(value, loc, version, depth),
            _ => {
                self.problem(
                    loc,
                    "a schema must be a schema name, an @id or a complex schema object",
                );
                None
            }
        }
    }

    /// A primitive, a geospatial schema, or a reusable schema's `@id`.
    fn named(&mut self, name: &'v str, loc: &Loc, depth: usize) -> Option<Resolved> {
        if let Some(primitive) = Primitive::from_name(name) {
            return Some(Resolved {
                schema: Schema::Primitive(primitive),
                has_array: false,
                height: 0,
            });
        }
        if let Some(kind) = GeoKind::from_schema_name(name) {
            return Some(Resolved {
                schema: Schema::Geo(kind),
                has_array: true,
                height: 0,
            });
        }
        let Some(def) = self.registry.get(name).copied() else {
            self.problem(
                loc,
                format!(
                    "unknown schema {name}: not a primitive, a geospatial schema or a loaded reusable schema's @id"
                ),
            );
            return None;
        };
        let resolved = match self.memo.get(name) {
            Some(Memo::InProgress) => {
                self.problem(loc, format!("schema {name} contains itself"));
                return None;
            }
            Some(Memo::Done(resolved)) => resolved.clone()?,
            None => {
                self.memo.insert(name, Memo::InProgress);
                let resolved =
                    self.complex_value(def.schema.value, &def.schema.loc, def.version, depth);
                self.memo.insert(name, Memo::Done(resolved.clone()));
                resolved?
            }
        };
        if depth + resolved.height > MAX_DEPTH {
            self.problem(
                loc,
                format!("schemas nested deeper than {MAX_DEPTH} levels (DTDL allows 5)"),
            );
            return None;
        }
        Some(resolved)
    }

    /// An Array, Enum, Map or Object object.
    fn complex_value(
        &mut self,
        value: &'v Value,
        loc: &Loc,
        version: DtdlVersion,
        depth: usize,
    ) -> Option<Resolved> {
        let Some(object) = value.as_object() else {
            self.problem(
                loc,
                "a reusable schema must be an Array, Enum, Map or Object object",
            );
            return None;
        };
        if depth >= MAX_DEPTH {
            self.problem(
                loc,
                format!("schemas nested deeper than {MAX_DEPTH} levels (DTDL allows 5)"),
            );
            return None;
        }
        let id = object.get("@id").and_then(Value::as_str).map(str::to_owned);
        let kind = match object.get("@type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|k| matches!(*k, "Array" | "Enum" | "Map" | "Object"))
                .unwrap_or(""),
            _ => "",
        };
        match kind {
            "Array" => self.array(object, id, loc, version, depth),
            "Enum" => self.enumeration(object, id, loc, version),
            "Map" => self.map(object, id, loc, version, depth),
            "Object" => self.object(object, id, loc, version, depth),
            _ => {
                self.problem(
                    &loc.at(".@type"),
                    "a complex schema's @type must be Array, Enum, Map or Object",
                );
                None
            }
        }
    }

    fn array(
        &mut self,
        object: &'v Map<String, Value>,
        id: Option<String>,
        loc: &Loc,
        version: DtdlVersion,
        depth: usize,
    ) -> Option<Resolved> {
        let Some(element) = object.get("elementSchema") else {
            self.problem(loc, "an Array needs an elementSchema");
            return None;
        };
        let element = self.value(element, &loc.at(".elementSchema"), version, depth + 1)?;
        Some(Resolved {
            height: element.height + 1,
            has_array: true,
            schema: Schema::Array(Arc::new(ArraySchema {
                id,
                element: element.schema,
            })),
        })
    }

    fn object(
        &mut self,
        object: &'v Map<String, Value>,
        id: Option<String>,
        loc: &Loc,
        version: DtdlVersion,
        depth: usize,
    ) -> Option<Resolved> {
        let items: &'v [Value] = match object.get("fields") {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.problem(&loc.at(".fields"), "fields must be an array");
                return None;
            }
        };
        let mut failed = false;
        let mut fields: Vec<Field> = Vec::with_capacity(items.len());
        let (mut has_array, mut height) = (false, 0);
        for (index, item) in items.iter().enumerate() {
            let at = loc.at(&format!(".fields[{index}]"));
            let Some((name, schema)) = self.named_schema(item, &at, version, depth, true) else {
                failed = true;
                continue;
            };
            if fields.iter().any(|field| field.name == name) {
                self.problems.push(at.at(".name").problem(
                    ProblemKind::DuplicateName,
                    format!("duplicate field name {name}"),
                ));
                failed = true;
                continue;
            }
            has_array |= schema.has_array;
            height = height.max(schema.height);
            fields.push(Field {
                name,
                schema: schema.schema,
            });
        }
        (!failed).then(|| Resolved {
            schema: Schema::Object(Arc::new(ObjectSchema { id, fields })),
            has_array,
            height: height + 1,
        })
    }

    /// A Field or a MapValue: `{"name", "schema"}`. A MapValue's name may be left out.
    fn named_schema(
        &mut self,
        item: &'v Value,
        loc: &Loc,
        version: DtdlVersion,
        depth: usize,
        name_required: bool,
    ) -> Option<(String, Resolved)> {
        let Some(object) = item.as_object() else {
            self.problem(loc, "expected an object with a name and a schema");
            return None;
        };
        let name = match object.get("name") {
            Some(Value::String(name)) => {
                if let Err(message) = check_name(name, version) {
                    self.problem(&loc.at(".name"), message);
                }
                Some(name.clone())
            }
            None if !name_required => Some(String::new()),
            _ => {
                self.problem(loc, "needs a name (a string)");
                None
            }
        };
        let Some(schema) = object.get("schema") else {
            self.problem(loc, "missing schema");
            return None;
        };
        let schema = self.value(schema, &loc.at(".schema"), version, depth + 1);
        Some((name?, schema?))
    }

    fn map(
        &mut self,
        object: &'v Map<String, Value>,
        id: Option<String>,
        loc: &Loc,
        version: DtdlVersion,
        depth: usize,
    ) -> Option<Resolved> {
        let key_name = match object.get("mapKey") {
            Some(Value::Object(key)) => {
                let at = loc.at(".mapKey");
                if key
                    .get("schema")
                    .is_some_and(|schema| schema.as_str() != Some("string"))
                {
                    self.problem(&at.at(".schema"), "a Map's key schema must be string");
                }
                key.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            }
            _ => {
                self.problem(loc, "a Map needs a mapKey object");
                String::new()
            }
        };
        let Some(value) = object.get("mapValue") else {
            self.problem(loc, "a Map needs a mapValue");
            return None;
        };
        let (value_name, value) =
            self.named_schema(value, &loc.at(".mapValue"), version, depth, false)?;
        Some(Resolved {
            has_array: value.has_array,
            height: value.height + 1,
            schema: Schema::Map(Arc::new(MapSchema {
                id,
                key_name,
                value_name,
                value: value.schema,
            })),
        })
    }

    fn enumeration(
        &mut self,
        object: &'v Map<String, Value>,
        id: Option<String>,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Option<Resolved> {
        let value_schema = match object.get("valueSchema").and_then(Value::as_str) {
            Some("integer") => EnumValueSchema::Integer,
            Some("string") => EnumValueSchema::String,
            _ => {
                self.problem(
                    &loc.at(".valueSchema"),
                    "an Enum's valueSchema must be integer or string",
                );
                return None;
            }
        };
        let items: &'v [Value] = match object.get("enumValues") {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.problem(&loc.at(".enumValues"), "enumValues must be an array");
                return None;
            }
        };
        let mut failed = false;
        let mut values: Vec<EnumValue> = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for (index, item) in items.iter().enumerate() {
            let at = loc.at(&format!(".enumValues[{index}]"));
            let name = match item.get("name") {
                Some(Value::String(name)) => {
                    if let Err(message) = check_name(name, version) {
                        self.problem(&at.at(".name"), message);
                    }
                    name.clone()
                }
                _ => {
                    self.problem(&at, "an enum value needs a name (a string)");
                    failed = true;
                    continue;
                }
            };
            let value = match (value_schema, item.get("enumValue")) {
                (EnumValueSchema::Integer, Some(Value::Number(number))) => number
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .map(EnumLiteral::Integer),
                (EnumValueSchema::String, Some(Value::String(text))) => {
                    Some(EnumLiteral::String(text.clone()))
                }
                _ => None,
            };
            let Some(value) = value else {
                let expected = match value_schema {
                    EnumValueSchema::Integer => "an integer (4 bytes)",
                    EnumValueSchema::String => "a string",
                };
                self.problem(
                    &at.at(".enumValue"),
                    format!("enumValue must be {expected}, as the valueSchema says"),
                );
                failed = true;
                continue;
            };
            if values.iter().any(|v| v.name == name) || !seen.insert(value.clone()) {
                self.problems.push(at.problem(
                    ProblemKind::DuplicateName,
                    format!("duplicate enum value name or enumValue ({name})"),
                ));
                failed = true;
                continue;
            }
            values.push(EnumValue { name, value });
        }
        (!failed).then(|| Resolved {
            schema: Schema::Enum(Arc::new(EnumSchema {
                id,
                value_schema,
                values,
            })),
            has_array: false,
            height: 1,
        })
    }
}
