//! JSON documents to interfaces as written: one pass over each document, every problem
//! recorded, nothing resolved yet (schemas stay JSON until every document has been read, since
//! a reusable schema may be declared in a file read later).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{Loc, ModelProblem, ProblemKind, key_step};
use super::model::DtdlVersion;

/// An interface as written, its schemas not yet resolved.
pub(super) struct RawInterface<'v> {
    pub id: String,
    /// The interface object: file, `@id`, path.
    pub loc: Loc,
    pub version: DtdlVersion,
    pub display_name: Option<String>,
    pub extends: Vec<Reference>,
    pub contents: Vec<RawContent<'v>>,
    /// The interface's reusable `schemas`.
    pub schemas: Vec<RawSchemaDef<'v>>,
}

/// A reference to an interface by `@id`, and where it is written.
pub(super) struct Reference {
    pub id: String,
    pub loc: Loc,
}

/// One of `contents`.
pub(super) struct RawContent<'v> {
    pub name: String,
    /// The content object.
    pub loc: Loc,
    pub kind: RawKind<'v>,
}

pub(super) enum RawKind<'v> {
    Property(RawProperty<'v>),
    Telemetry(RawTelemetry<'v>),
    Relationship(RawRelationship<'v>),
    Component(Reference),
    /// Read for its name only: ADT ignores commands, and so does twinroute.
    Command,
}

pub(super) struct RawProperty<'v> {
    pub name: String,
    pub schema: RawSchema<'v>,
    pub writable: bool,
    pub semantic_types: Vec<String>,
    pub unit: Option<String>,
}

pub(super) struct RawTelemetry<'v> {
    pub schema: RawSchema<'v>,
    pub semantic_types: Vec<String>,
    pub unit: Option<String>,
}

pub(super) struct RawRelationship<'v> {
    pub target: Option<Reference>,
    pub properties: Vec<RawProperty<'v>>,
    pub max_multiplicity: Option<u32>,
    pub min_multiplicity: Option<u32>,
    pub writable: bool,
}

/// A `schema` value and where it is written.
pub(super) struct RawSchema<'v> {
    pub value: &'v Value,
    pub loc: Loc,
}

/// One of an interface's reusable `schemas`.
pub(super) struct RawSchemaDef<'v> {
    pub id: String,
    pub schema: RawSchema<'v>,
    pub version: DtdlVersion,
}

/// Reads one document: an Interface object or an array of them.
pub(super) fn read_document<'v>(
    file: &Arc<str>,
    value: &'v Value,
    problems: &mut Vec<ModelProblem>,
    out: &mut Vec<RawInterface<'v>>,
) {
    let root = Loc {
        file: file.clone(),
        id: None,
        path: "$".to_owned(),
    };
    let mut reader = DocReader { problems, out };
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                reader.top_level(item, root.at(&format!("[{index}]")));
            }
        }
        Value::Object(_) => reader.top_level(value, root),
        _ => reader.problem(
            &root,
            ProblemKind::Interface,
            "expected an Interface object or an array of Interfaces",
        ),
    }
}

struct DocReader<'v, 'p> {
    problems: &'p mut Vec<ModelProblem>,
    out: &'p mut Vec<RawInterface<'v>>,
}

impl<'v> DocReader<'v, '_> {
    fn problem(&mut self, loc: &Loc, kind: ProblemKind, message: impl Into<String>) {
        self.problems.push(loc.problem(kind, message));
    }

    /// A document's interface: it must carry its `@context`.
    fn top_level(&mut self, value: &'v Value, loc: Loc) {
        let Some(object) = value.as_object() else {
            self.problem(&loc, ProblemKind::Interface, "expected an Interface object");
            return;
        };
        let loc = Loc {
            id: object.get("@id").and_then(Value::as_str).map(str::to_owned),
            ..loc
        };
        self.interface(object, loc, None);
    }

    /// An interface object, top-level (`enclosing` is `None`: it needs a `@context`) or inline
    /// (in `extends` or a Component's `schema`, where it inherits the enclosing version unless
    /// it has its own `@context`). Returns its `@id`.
    fn interface(
        &mut self,
        object: &'v Map<String, Value>,
        loc: Loc,
        enclosing: Option<DtdlVersion>,
    ) -> Option<String> {
        // After a `@context` problem, read on as v3 (the more permissive) to find the others.
        let version = match (object.get("@context").map(read_context), enclosing) {
            (None, Some(version)) => version,
            (None, None) => {
                self.problem(
                    &loc,
                    ProblemKind::Interface,
                    "missing @context (dtmi:dtdl:context;2 or dtmi:dtdl:context;3)",
                );
                DtdlVersion::V3
            }
            (Some(Ok(version)), _) => version,
            (Some(Err(message)), enclosing) => {
                self.problem(&loc.at(".@context"), ProblemKind::Interface, message);
                enclosing.unwrap_or(DtdlVersion::V3)
            }
        };
        if !type_names(object.get("@type")).any(|name| name == "Interface") {
            self.problem(
                &loc.at(".@type"),
                ProblemKind::Interface,
                "@type must be Interface",
            );
        }
        let id = match object.get("@id") {
            None => {
                self.problem(&loc, ProblemKind::Interface, "missing @id");
                return None;
            }
            Some(Value::String(id)) => id.clone(),
            Some(_) => {
                self.problem(
                    &loc.at(".@id"),
                    ProblemKind::Interface,
                    "@id must be a string",
                );
                return None;
            }
        };
        let loc = Loc {
            id: Some(id.clone()),
            ..loc
        };
        if let Err(message) = check_dtmi(&id) {
            self.problem(&loc.at(".@id"), ProblemKind::Interface, message);
        }
        let display_name = object.get("displayName").and_then(localized);
        let extends = self.extends(object.get("extends"), &loc, version);
        let contents = match object.get("contents") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    self.content(item, loc.at(&format!(".contents[{index}]")), version)
                })
                .collect(),
            Some(_) => {
                self.problem(
                    &loc.at(".contents"),
                    ProblemKind::Interface,
                    "contents must be an array",
                );
                Vec::new()
            }
        };
        let schemas = self.schemas(object.get("schemas"), &loc, version);
        self.out.push(RawInterface {
            id: id.clone(),
            loc,
            version,
            display_name,
            extends,
            contents,
            schemas,
        });
        Some(id)
    }

    /// `extends`: an `@id`, an inline interface, or an array of them.
    fn extends(
        &mut self,
        value: Option<&'v Value>,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Vec<Reference> {
        let loc = loc.at(".extends");
        match value {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    self.interface_reference(item, loc.at(&format!("[{index}]")), version)
                })
                .collect(),
            Some(item) => self
                .interface_reference(item, loc, version)
                .into_iter()
                .collect(),
        }
    }

    /// An interface named by `@id` (checked later) or written inline (read now).
    fn interface_reference(
        &mut self,
        value: &'v Value,
        loc: Loc,
        version: DtdlVersion,
    ) -> Option<Reference> {
        match value {
            Value::String(id) => {
                if let Err(message) = check_dtmi(id) {
                    self.problem(&loc, ProblemKind::Interface, message);
                }
                Some(Reference {
                    id: id.clone(),
                    loc,
                })
            }
            Value::Object(object) => {
                let inline = Loc {
                    id: object.get("@id").and_then(Value::as_str).map(str::to_owned),
                    ..loc.clone()
                };
                let id = self.interface(object, inline, Some(version))?;
                Some(Reference { id, loc })
            }
            _ => {
                self.problem(
                    &loc,
                    ProblemKind::Interface,
                    "expected an interface @id or an inline Interface",
                );
                None
            }
        }
    }

    /// One of `contents`.
    fn content(
        &mut self,
        value: &'v Value,
        loc: Loc,
        version: DtdlVersion,
    ) -> Option<RawContent<'v>> {
        let Some(object) = value.as_object() else {
            self.problem(&loc, ProblemKind::Interface, "a content must be an object");
            return None;
        };
        let (class, semantic_types) = match content_class(object.get("@type")) {
            Ok(found) => found,
            Err(message) => {
                self.problem(&loc.at(".@type"), ProblemKind::Interface, message);
                return None;
            }
        };
        let name = self.name(object, &loc, version)?;
        let kind = match class {
            Class::Property => {
                RawKind::Property(self.property_body(object, &loc, name.clone(), semantic_types)?)
            }
            Class::Telemetry => RawKind::Telemetry(RawTelemetry {
                schema: self.schema_of(object, &loc)?,
                semantic_types,
                unit: unit(object),
            }),
            Class::Relationship => RawKind::Relationship(self.relationship(object, &loc, version)),
            Class::Component => RawKind::Component(self.component_schema(object, &loc, version)?),
            Class::Command => RawKind::Command,
        };
        Some(RawContent { name, loc, kind })
    }

    /// `name`: required, an identifier DTDL accepts.
    fn name(
        &mut self,
        object: &Map<String, Value>,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Option<String> {
        match object.get("name") {
            None => {
                self.problem(loc, ProblemKind::Interface, "missing name");
                None
            }
            Some(Value::String(name)) => {
                if let Err(message) = check_name(name, version) {
                    self.problem(&loc.at(".name"), ProblemKind::Interface, message);
                }
                Some(name.clone())
            }
            Some(_) => {
                self.problem(
                    &loc.at(".name"),
                    ProblemKind::Interface,
                    "name must be a string",
                );
                None
            }
        }
    }

    /// `schema`: required; read later.
    fn schema_of(&mut self, object: &'v Map<String, Value>, loc: &Loc) -> Option<RawSchema<'v>> {
        match object.get("schema") {
            Some(value) => Some(RawSchema {
                value,
                loc: loc.at(".schema"),
            }),
            None => {
                self.problem(loc, ProblemKind::Schema, "missing schema");
                None
            }
        }
    }

    fn property_body(
        &mut self,
        object: &'v Map<String, Value>,
        loc: &Loc,
        name: String,
        semantic_types: Vec<String>,
    ) -> Option<RawProperty<'v>> {
        let writable = self.boolean(object, "writable", loc);
        Some(RawProperty {
            name,
            schema: self.schema_of(object, loc)?,
            writable,
            semantic_types,
            unit: unit(object),
        })
    }

    /// An optional boolean key, false when absent.
    fn boolean(&mut self, object: &Map<String, Value>, key: &str, loc: &Loc) -> bool {
        match object.get(key) {
            None => false,
            Some(Value::Bool(value)) => *value,
            Some(_) => {
                self.problem(
                    &loc.at(&key_step(key)),
                    ProblemKind::Interface,
                    format!("{key} must be true or false"),
                );
                false
            }
        }
    }

    fn relationship(
        &mut self,
        object: &'v Map<String, Value>,
        loc: &Loc,
        version: DtdlVersion,
    ) -> RawRelationship<'v> {
        let target = match object.get("target") {
            None => None,
            Some(Value::String(id)) => {
                let at = loc.at(".target");
                if let Err(message) = check_dtmi(id) {
                    self.problem(&at, ProblemKind::Interface, message);
                }
                Some(Reference {
                    id: id.clone(),
                    loc: at,
                })
            }
            Some(_) => {
                self.problem(
                    &loc.at(".target"),
                    ProblemKind::Interface,
                    "target must be an interface @id",
                );
                None
            }
        };
        let max_multiplicity = self.multiplicity(object, "maxMultiplicity", loc, version);
        let min_multiplicity = self.multiplicity(object, "minMultiplicity", loc, version);
        let writable = self.boolean(object, "writable", loc);
        // `properties`: an array, or one object as some ontology files write it.
        let at = loc.at(".properties");
        let listed: Vec<(&'v Value, Loc)> = match object.get("properties") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| (item, at.at(&format!("[{index}]"))))
                .collect(),
            Some(item @ Value::Object(_)) => vec![(item, at)],
            Some(_) => {
                self.problem(
                    &at,
                    ProblemKind::Interface,
                    "properties must be an array of Properties",
                );
                Vec::new()
            }
        };
        let mut properties: Vec<RawProperty<'v>> = Vec::new();
        for (value, at) in listed {
            let Some(property) = self.relationship_property(value, &at, version) else {
                continue;
            };
            if properties.iter().any(|p| p.name == property.name) {
                self.problem(
                    &at.at(".name"),
                    ProblemKind::DuplicateName,
                    format!("duplicate relationship property name {}", property.name),
                );
                continue;
            }
            properties.push(property);
        }
        RawRelationship {
            target,
            properties,
            max_multiplicity,
            min_multiplicity,
            writable,
        }
    }

    /// A Relationship's Property (`@type` may be left out).
    fn relationship_property(
        &mut self,
        value: &'v Value,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Option<RawProperty<'v>> {
        let Some(object) = value.as_object() else {
            self.problem(
                loc,
                ProblemKind::Interface,
                "a relationship property must be an object",
            );
            return None;
        };
        let semantic_types = match object.get("@type") {
            None => Vec::new(),
            Some(_) => match content_class(object.get("@type")) {
                Ok((Class::Property, types)) => types,
                _ => {
                    self.problem(
                        &loc.at(".@type"),
                        ProblemKind::Interface,
                        "a relationship property's @type must be Property",
                    );
                    return None;
                }
            },
        };
        let name = self.name(object, loc, version)?;
        self.property_body(object, loc, name, semantic_types)
    }

    /// `maxMultiplicity` (≥ 1; ≤ 500 in v2) or `minMultiplicity` (0).
    fn multiplicity(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Option<u32> {
        let value = object.get(key)?;
        let at = loc.at(&key_step(key));
        let Some(number) = value.as_u64().and_then(|n| u32::try_from(n).ok()) else {
            self.problem(
                &at,
                ProblemKind::Interface,
                format!("{key} must be a non-negative integer"),
            );
            return None;
        };
        let refused = match key {
            "minMultiplicity" => (number != 0).then_some("minMultiplicity must be 0"),
            _ if number == 0 => Some("maxMultiplicity must be at least 1"),
            _ if version == DtdlVersion::V2 && number > 500 => {
                Some("maxMultiplicity must be at most 500 in DTDL v2")
            }
            _ => None,
        };
        if let Some(message) = refused {
            self.problem(&at, ProblemKind::Interface, message);
        }
        Some(number)
    }

    /// A Component's `schema`: an interface `@id`, or an inline Interface.
    fn component_schema(
        &mut self,
        object: &'v Map<String, Value>,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Option<Reference> {
        let Some(value) = object.get("schema") else {
            self.problem(loc, ProblemKind::Interface, "missing schema");
            return None;
        };
        let at = loc.at(".schema");
        match value {
            Value::String(id) if check_dtmi(id).is_err() => {
                self.problem(
                    &at,
                    ProblemKind::ComponentNotInterface,
                    format!("a component's schema must be an Interface, and {id} is not an interface @id"),
                );
                None
            }
            Value::String(_) | Value::Object(_) => self.interface_reference(value, at, version),
            _ => {
                self.problem(
                    &at,
                    ProblemKind::ComponentNotInterface,
                    "a component's schema must be an Interface @id or an inline Interface",
                );
                None
            }
        }
    }

    /// The interface's reusable `schemas`, each with an `@id`.
    fn schemas(
        &mut self,
        value: Option<&'v Value>,
        loc: &Loc,
        version: DtdlVersion,
    ) -> Vec<RawSchemaDef<'v>> {
        let at = loc.at(".schemas");
        let items = match value {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.problem(&at, ProblemKind::Schema, "schemas must be an array");
                return Vec::new();
            }
        };
        let mut schemas = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let loc = at.at(&format!("[{index}]"));
            match item.get("@id") {
                Some(Value::String(id)) => {
                    if let Err(message) = check_dtmi(id) {
                        self.problem(&loc.at(".@id"), ProblemKind::Schema, message);
                    }
                    schemas.push(RawSchemaDef {
                        id: id.clone(),
                        schema: RawSchema { value: item, loc },
                        version,
                    });
                }
                _ => self.problem(
                    &loc,
                    ProblemKind::Schema,
                    "a reusable schema needs an @id (a string)",
                ),
            }
        }
        schemas
    }
}

/// The DTDL version a `@context` selects; arrays may carry extension contexts after it.
pub(super) fn read_context(value: &Value) -> Result<DtdlVersion, String> {
    let dtdl = |text: &str| -> Option<Result<DtdlVersion, String>> {
        let version = text.strip_prefix("dtmi:dtdl:context;")?;
        Some(match version {
            "2" => Ok(DtdlVersion::V2),
            "3" => Ok(DtdlVersion::V3),
            _ => Err(format!(
                "{text} is not read: twinroute reads DTDL v2 (dtmi:dtdl:context;2) and v3 (dtmi:dtdl:context;3)"
            )),
        })
    };
    let found = match value {
        Value::String(text) => dtdl(text),
        Value::Array(items) => items.iter().filter_map(Value::as_str).find_map(dtdl),
        _ => None,
    };
    found.unwrap_or_else(|| {
        Err("@context must be dtmi:dtdl:context;2 or dtmi:dtdl:context;3 (or an array starting with one)".to_owned())
    })
}

/// The strings of a `@type`: one string or an array of them.
fn type_names(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match value {
        Some(Value::String(name)) => (Some(name.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Property,
    Telemetry,
    Relationship,
    Component,
    Command,
}

/// A content's class from its `@type`, and the other (semantic, extension) types beside it.
fn content_class(value: Option<&Value>) -> Result<(Class, Vec<String>), String> {
    let class_of = |name: &str| match name {
        "Property" => Some(Class::Property),
        "Telemetry" => Some(Class::Telemetry),
        "Relationship" => Some(Class::Relationship),
        "Component" => Some(Class::Component),
        "Command" => Some(Class::Command),
        _ => None,
    };
    if !matches!(value, Some(Value::String(_) | Value::Array(_))) {
        return Err("@type must be a string or an array of strings".to_owned());
    }
    let mut class = None;
    let mut others = Vec::new();
    for name in type_names(value) {
        match (class_of(name), class) {
            (Some(found), None) => class = Some(found),
            (Some(_), Some(_)) => return Err("@type names two content kinds".to_owned()),
            (None, _) => others.push(name.to_owned()),
        }
    }
    match class {
        Some(class) => Ok((class, others)),
        None => Err(
            "@type must include Property, Telemetry, Relationship, Component or Command".to_owned(),
        ),
    }
}

/// `unit`, when it is a string (other shapes are tolerated and ignored).
fn unit(object: &Map<String, Value>) -> Option<String> {
    object
        .get("unit")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A localizable string: a string, or a language map (`en` preferred, else the first).
fn localized(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(map) => map
            .get("en")
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(Value::as_str))
            .map(str::to_owned),
        _ => None,
    }
}

/// A DTMI, checked loosely: `dtmi:` then `:`-separated segments of letters, digits and `_`
/// (starting with a letter, not ending with `_`), then optionally `;<version>` with
/// `<version>` an integer or `<major>.<minor>` (v3's form) without leading zeros.
pub(super) fn check_dtmi(id: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("{id} is not a DTMI: {why}"));
    let Some(rest) = id.strip_prefix("dtmi:") else {
        return refuse("it must start with dtmi:");
    };
    let (path, version) = match rest.split_once(';') {
        Some((path, version)) => (path, Some(version)),
        None => (rest, None),
    };
    for segment in path.split(':') {
        let valid = segment
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && !segment.ends_with('_')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return refuse(
                "each segment is letters, digits and _, starting with a letter and not ending with _",
            );
        }
    }
    if let Some(version) = version {
        let number = |part: &str| {
            !part.is_empty()
                && !part.starts_with('0')
                && part.len() <= 9
                && part.chars().all(|c| c.is_ascii_digit())
        };
        let valid = match version.split_once('.') {
            Some((major, minor)) => number(major) && number(minor),
            None => number(version),
        };
        if !valid {
            return refuse("the version after ; must be a positive integer or <major>.<minor>");
        }
    }
    Ok(())
}

/// A content, field or enum value name: letters, digits and `_`, starting with a letter,
/// ending with a letter or digit; at most 64 characters in v2, 512 in v3.
pub(super) fn check_name(name: &str, version: DtdlVersion) -> Result<(), String> {
    let limit = match version {
        DtdlVersion::V2 => 64,
        DtdlVersion::V3 => 512,
    };
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "name {name:?} must be letters, digits and _, starting with a letter and ending with a letter or digit"
        ));
    }
    if name.len() > limit {
        return Err(format!("name {name:?} is longer than {limit} characters"));
    }
    Ok(())
}
