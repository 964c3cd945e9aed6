//! Property tests: the reader and the value checker never panic, whatever the JSON, and every
//! problem names its file and a path.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::{ModelReader, ProblemKind, Schema, load};

/// Keys and strings DTDL uses, so that generated documents reach deep into the reader
/// instead of failing at the first key.
const KEYS: &[&str] = &[
    "@context",
    "@id",
    "@type",
    "contents",
    "extends",
    "schemas",
    "name",
    "schema",
    "writable",
    "target",
    "properties",
    "maxMultiplicity",
    "minMultiplicity",
    "fields",
    "mapKey",
    "mapValue",
    "elementSchema",
    "valueSchema",
    "enumValues",
    "enumValue",
    "unit",
    "displayName",
];

const STRINGS: &[&str] = &[
    "dtmi:dtdl:context;2",
    "dtmi:dtdl:context;3",
    "dtmi:dtdl:context;4",
    "Interface",
    "Property",
    "Telemetry",
    "Relationship",
    "Component",
    "Command",
    "Object",
    "Map",
    "Array",
    "Enum",
    "integer",
    "string",
    "double",
    "dateTime",
    "duration",
    "point",
    "dtmi:standard:schema:geospatial:polygon;3",
    "dtmi:test:A;1",
    "dtmi:test:B;1",
    "dtmi:test:s;1",
    "a",
    "b",
    "Temperature",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3_i64..600).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(STRINGS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

/// JSON values biased towards DTDL's shape.
fn dtdl_like() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![4 => select(KEYS).prop_map(str::to_owned), 1 => ".{0,6}"],
                    inner
                ),
                0..8
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const IDS: &[&str] = &["dtmi:test:A;1", "dtmi:test:B;1", "dtmi:test:C;1"];
const SCHEMA_IDS: &[&str] = &["dtmi:test:s;1", "dtmi:test:t;1"];

/// Schemas, mostly well-formed, sometimes not, sometimes referring to reusable ones.
fn schema_like() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        select(STRINGS).prop_map(Value::from),
        select(SCHEMA_IDS).prop_map(Value::from),
        Just(Value::from("long")),
        Just(Value::from("dtmi:standard:schema:geospatial:point;2")),
    ];
    prop_oneof![4 => names, 1 => dtdl_like()].prop_recursive(4, 32, 4, |inner| {
        let named = (select(&["a", "b", "c"][..]), inner.clone())
            .prop_map(|(name, schema)| json!({"name": name, "schema": schema}));
        prop_oneof![
            inner
                .clone()
                .prop_map(|element| json!({"@type": "Array", "elementSchema": element})),
            prop::collection::vec(named.clone(), 0..4)
                .prop_map(|fields| json!({"@type": "Object", "fields": fields})),
            (inner, any::<bool>()).prop_map(|(value, key_ok)| json!({"@type": "Map",
                "mapKey": {"name": "k", "schema": if key_ok { "string" } else { "integer" }},
                "mapValue": {"name": "v", "schema": value}})),
            (
                any::<bool>(),
                prop::collection::vec((select(&["a", "b"][..]), leaf()), 0..4)
            )
                .prop_map(|(integer, values)| json!({"@type": "Enum",
                    "valueSchema": if integer { "integer" } else { "string" },
                    "enumValues": values.into_iter()
                        .map(|(name, value)| json!({"name": name, "enumValue": value}))
                        .collect::<Vec<_>>()})),
        ]
    })
}

/// Contents of every kind, mostly well-formed.
fn content_like() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        select(
            &[
                "Property",
                "Telemetry",
                "Relationship",
                "Component",
                "Command"
            ][..]
        )
        .prop_map(Value::from),
        Just(json!(["Property", "Temperature"])),
    ];
    (
        kind,
        select(&["a", "b", "c", "1x"][..]),
        schema_like(),
        prop::option::of(select(IDS)),
        prop::option::of(prop_oneof![
            schema_like().prop_map(|s| json!({"@type": "Property", "name": "p", "schema": s})),
            prop::collection::vec(content_like_property(), 0..3).prop_map(Value::from),
        ]),
        prop::option::of(-1_i64..3),
    )
        .prop_map(|(kind, name, schema, target, properties, multiplicity)| {
            let schema = match (&kind, target) {
                (Value::String(k), Some(target)) if k == "Component" => Value::from(target),
                _ => schema,
            };
            let mut content = json!({"@type": kind, "name": name, "schema": schema});
            if let Some(target) = target {
                content["target"] = target.into();
            }
            if let Some(properties) = properties {
                content["properties"] = properties;
            }
            if let Some(multiplicity) = multiplicity {
                content["maxMultiplicity"] = multiplicity.into();
            }
            content
        })
}

fn content_like_property() -> impl Strategy<Value = Value> {
    (
        select(&["p", "q"][..]),
        select(&["string", "double", "point", "nope"][..]),
    )
        .prop_map(|(name, schema)| json!({"@type": "Property", "name": name, "schema": schema}))
}

/// An interface around generated contents and schemas: past the interface checks.
fn interface_like() -> impl Strategy<Value = Value> {
    (
        select(&["dtmi:dtdl:context;2", "dtmi:dtdl:context;3"][..]),
        select(IDS),
        prop::collection::vec(prop_oneof![4 => content_like(), 1 => dtdl_like()], 0..5),
        prop::collection::vec((select(SCHEMA_IDS), schema_like()), 0..3),
        prop::option::of(prop_oneof![
            select(IDS).prop_map(Value::from),
            prop::collection::vec(select(IDS), 0..3).prop_map(Value::from),
            dtdl_like(),
        ]),
    )
        .prop_map(|(context, id, contents, schemas, extends)| {
            let schemas: Vec<Value> = schemas
                .into_iter()
                .map(|(id, mut schema)| {
                    if let Value::Object(object) = &mut schema {
                        object.insert("@id".to_owned(), id.into());
                    }
                    schema
                })
                .collect();
            let mut value = json!({
                "@context": context, "@id": id, "@type": "Interface",
                "contents": contents, "schemas": schemas,
            });
            if let Some(extends) = extends {
                value["extends"] = extends;
            }
            value
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_reader_never_panics_on_any_json(documents in prop::collection::vec(
        prop_oneof![dtdl_like(), interface_like()], 1..4)
    ) {
        let mut reader = ModelReader::new();
        for (index, document) in documents.into_iter().enumerate() {
            reader.add_value(&format!("{index}.json"), document);
        }
        if let Err(error) = reader.finish() {
            prop_assert!(!error.problems.is_empty());
            for problem in &error.problems {
                prop_assert!(problem.file.ends_with(".json"));
                if problem.kind != ProblemKind::Io {
                    prop_assert!(problem.path.starts_with('$'), "{problem}");
                }
                prop_assert!(!problem.message.is_empty());
            }
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn the_reader_never_panics_on_any_text(text in ".{0,200}") {
        let mut reader = ModelReader::new();
        reader.add_text("text.json", &text);
        let _ = reader.finish();
    }

    #[test]
    fn the_value_checker_never_panics(value in dtdl_like(), index in 0_usize..1000) {
        let store = fixture();
        let schemas: Vec<&Schema> = store
            .models()
            .flat_map(|model| {
                model.properties.iter().map(|p| &p.schema)
                    .chain(model.telemetry.iter().map(|t| &t.schema))
            })
            .collect();
        let schema = schemas[index % schemas.len()];
        if let Err(error) = schema.check(&value) {
            prop_assert!(error.path.starts_with('$'));
        }
    }
}

/// The fixture set, read once for every case.
fn fixture() -> &'static super::ModelStore {
    static STORE: std::sync::OnceLock<super::ModelStore> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models");
        load(&[root]).unwrap_or_else(|error| panic!("{error}"))
    })
}
