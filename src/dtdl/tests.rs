use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// Reads `documents` (source name, JSON) as one model set.
fn read(documents: &[(&str, Value)]) -> Result<ModelStore, ModelError> {
    let mut reader = ModelReader::new();
    for (source, value) in documents {
        reader.add_value(source, value.clone());
    }
    reader.finish()
}

/// An interface of DTDL version `version` (2 or 3).
fn interface(version: u8, id: &str, contents: Value) -> Value {
    json!({
        "@context": format!("dtmi:dtdl:context;{version}"),
        "@id": id,
        "@type": "Interface",
        "contents": contents,
    })
}

/// An interface with one Property of `schema`.
fn with_property(version: u8, schema: Value) -> Value {
    interface(
        version,
        "dtmi:test:A;1",
        json!([{"@type": "Property", "name": "p", "schema": schema}]),
    )
}

/// The problems of a refused set; panics if it was accepted.
fn refused(result: Result<ModelStore, ModelError>) -> Vec<ModelProblem> {
    match result {
        Ok(store) => panic!(
            "accepted: {:?}",
            store.models().map(|m| &m.id).collect::<Vec<_>>()
        ),
        Err(error) => error.problems,
    }
}

/// The one problem of a refused set, which must be of `kind`.
fn only(result: Result<ModelStore, ModelError>, kind: ProblemKind) -> ModelProblem {
    let problems = refused(result);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, kind, "{problems:#?}");
    problems[0].clone()
}

fn accepted(result: Result<ModelStore, ModelError>) -> ModelStore {
    match result {
        Ok(store) => store,
        Err(error) => panic!("refused:\n{error}"),
    }
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(name).collect()
}

fn property_names(model: &Model) -> Vec<&str> {
    names(&model.properties, |p| &p.name)
}

// --- interfaces, contexts, ids, names ---------------------------------------------------------

#[test]
fn reads_an_interface_and_records_its_version() {
    let store = accepted(read(&[
        ("a.json", interface(2, "dtmi:test:A;1", json!([]))),
        ("b.json", interface(3, "dtmi:test:B;1", json!([]))),
    ]));
    assert_eq!(store.len(), 2);
    assert_eq!(store.get("dtmi:test:A;1").unwrap().version, DtdlVersion::V2);
    let b = store.get("dtmi:test:B;1").unwrap();
    assert_eq!(b.version, DtdlVersion::V3);
    assert_eq!(&*b.source, "b.json");
    assert!(b.properties.is_empty() && b.ancestors.is_empty());
}

#[test]
fn a_context_array_with_extensions_is_read_and_display_names_are_localized() {
    let store = accepted(read(&[(
        "a.json",
        json!({
            "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:quantitativeTypes;1",
                         {"custom": "https://example.com/ns#"}],
            "@id": "dtmi:test:A;1",
            "@type": "Interface",
            "displayName": {"de": "Pumpe", "en": "Pump"},
        }),
    )]));
    let model = store.get("dtmi:test:A;1").unwrap();
    assert_eq!(model.version, DtdlVersion::V3);
    assert_eq!(model.display_name.as_deref(), Some("Pump"));
}

#[test]
fn a_missing_or_unknown_context_is_refused() {
    let mut no_context = interface(2, "dtmi:test:A;1", json!([]));
    no_context.as_object_mut().unwrap().remove("@context");
    let problem = only(read(&[("a.json", no_context)]), ProblemKind::Interface);
    assert_eq!(problem.path, "$");
    assert!(problem.message.contains("missing @context"));

    let mut v4 = interface(2, "dtmi:test:A;1", json!([]));
    v4["@context"] = json!("dtmi:dtdl:context;4");
    let problem = only(read(&[("a.json", v4)]), ProblemKind::Interface);
    assert_eq!(problem.path, "$.@context");
    assert!(
        problem.message.contains("is not read"),
        "{}",
        problem.message
    );

    let mut other = interface(2, "dtmi:test:A;1", json!([]));
    other["@context"] = json!(["https://schema.org"]);
    only(read(&[("a.json", other)]), ProblemKind::Interface);
}

#[test]
fn an_interface_needs_its_type_and_a_dtmi() {
    let mut typed = interface(3, "dtmi:test:A;1", json!([]));
    typed["@type"] = json!("Telemetry");
    assert_eq!(
        only(read(&[("a.json", typed)]), ProblemKind::Interface).path,
        "$.@type"
    );

    let problem = only(
        read(&[("a.json", interface(3, "urn:test:A", json!([])))]),
        ProblemKind::Interface,
    );
    assert_eq!(problem.path, "$.@id");
    assert!(problem.message.contains("not a DTMI"));

    let mut no_id = interface(3, "x", json!([]));
    no_id.as_object_mut().unwrap().remove("@id");
    assert!(
        only(read(&[("a.json", no_id)]), ProblemKind::Interface)
            .message
            .contains("missing @id")
    );
}

#[test]
fn dtmis_are_checked_loosely() {
    for id in [
        "dtmi:com:example:Thermostat;1",
        "dtmi:com:example:Thermostat",
        "dtmi:com:example:Thermostat;1.2",
        "dtmi:foo_bar:baz33:qux;12",
        "dtmi:a;999999999",
    ] {
        assert_eq!(read::check_dtmi(id), Ok(()), "{id}");
    }
    for id in [
        "dtmi:",
        "dtmi:com::x;1",
        "dtmi:com:1x;1",
        "dtmi:com:x_;1",
        "dtmi:com:x;01",
        "dtmi:com:x;1.0",
        "dtmi:com:x;",
        "dtmi:com:x;1;2",
        "dtmi:com:x-y;1",
        "DTMI:com:x;1",
        "dtmi:com:_x;1",
        "dtmi:com:x;1234567890",
    ] {
        assert!(read::check_dtmi(id).is_err(), "{id}");
    }
}

#[test]
fn names_follow_dtdl_rules() {
    for name in ["a", "temp", "set_point2", "A1"] {
        assert_eq!(read::check_name(name, DtdlVersion::V2), Ok(()), "{name}");
    }
    for name in ["", "1a", "_a", "a_", "a-b", "a b", "é"] {
        assert!(read::check_name(name, DtdlVersion::V3).is_err(), "{name}");
    }
    let long = "a".repeat(65);
    assert!(read::check_name(&long, DtdlVersion::V2).is_err());
    assert_eq!(read::check_name(&long, DtdlVersion::V3), Ok(()));

    let bad = interface(
        3,
        "dtmi:test:A;1",
        json!([{"@type": "Property", "name": "my-prop", "schema": "string"}]),
    );
    assert_eq!(
        only(read(&[("a.json", bad)]), ProblemKind::Interface).path,
        "$.contents[0].name"
    );
}

#[test]
fn contents_of_each_kind_are_read_with_their_extension_types_and_unknown_keys() {
    let store = accepted(read(&[
        (
            "a.json",
            json!({
                "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:quantitativeTypes;1"],
                "@id": "dtmi:test:A;1",
                "@type": "Interface",
                "comment": "unknown keys are ignored",
                "x-vendor": {"anything": [1, 2]},
                "contents": [
                    {"@type": ["Property", "Temperature"], "name": "setpoint", "schema": "double",
                     "unit": "degreeCelsius", "writable": true, "description": {"en": "x"}},
                    {"@type": "Property", "name": "label", "schema": "string"},
                    {"@type": ["Telemetry", "Pressure", "Historized"], "name": "pressure",
                     "schema": "double", "unit": "kilopascal"},
                    {"@type": "Relationship", "name": "feeds", "target": "dtmi:test:B;1",
                     "maxMultiplicity": 3, "minMultiplicity": 0, "writable": true,
                     "properties": [{"@type": "Property", "name": "since", "schema": "date"},
                                    {"name": "weight", "schema": "double", "writable": true}]},
                    {"@type": "Component", "name": "plate", "schema": "dtmi:test:B;1"},
                    {"@type": "Command", "name": "reboot", "request": {"name": "delay", "schema": "duration"}},
                ],
            }),
        ),
        (
            "b.json",
            interface(
                2,
                "dtmi:test:B;1",
                json!([{"@type": "Property", "name": "maker", "schema": "string"}]),
            ),
        ),
    ]));
    let a = store.get("dtmi:test:A;1").unwrap();
    assert_eq!(property_names(a), ["setpoint", "label"]);
    let setpoint = a.property("setpoint").unwrap();
    assert!(setpoint.writable);
    assert_eq!(setpoint.semantic_types, ["Temperature"]);
    assert_eq!(setpoint.unit.as_deref(), Some("degreeCelsius"));
    assert_eq!(setpoint.schema, Schema::Primitive(Primitive::Double));
    assert_eq!(setpoint.defined_in, "dtmi:test:A;1");
    assert!(!a.property("label").unwrap().writable);
    let pressure = a.telemetry("pressure").unwrap();
    assert_eq!(pressure.semantic_types, ["Pressure", "Historized"]);
    let feeds = a.relationship("feeds").unwrap();
    assert_eq!(feeds.target.as_deref(), Some("dtmi:test:B;1"));
    assert_eq!(
        (
            feeds.max_multiplicity,
            feeds.min_multiplicity,
            feeds.writable
        ),
        (Some(3), Some(0), true)
    );
    assert_eq!(names(&feeds.properties, |p| &p.name), ["since", "weight"]);
    assert!(feeds.property("weight").unwrap().writable);
    let plate = a.component("plate").unwrap();
    assert_eq!(plate.model.id, "dtmi:test:B;1");
    assert_eq!(property_names(&plate.model), ["maker"]);
    assert!(store.is_a("dtmi:test:A;1", "dtmi:test:A;1"));
}

#[test]
fn a_content_needs_a_known_type_a_name_and_a_schema() {
    let problems = refused(read(&[(
        "a.json",
        interface(
            3,
            "dtmi:test:A;1",
            json!([
                {"@type": "Propertee", "name": "a", "schema": "string"},
                {"@type": "Property", "schema": "string"},
                {"@type": "Property", "name": "c"},
                {"@type": ["Property", "Telemetry"], "name": "d", "schema": "string"},
                "not an object",
                {"@type": "Property", "name": "f", "schema": "string", "writable": "yes"},
                {"@type": 7, "name": "g", "schema": "string"},
            ]),
        ),
    )]));
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.contents[0].@type",
            "$.contents[1]",
            "$.contents[2]",
            "$.contents[3].@type",
            "$.contents[4]",
            "$.contents[5].writable",
            "$.contents[6].@type",
        ]
    );
    assert!(
        problems
            .iter()
            .all(|p| p.id.as_deref() == Some("dtmi:test:A;1"))
    );
}

#[test]
fn a_document_is_an_interface_or_an_array_of_them() {
    let store = accepted(read(&[(
        "set.json",
        json!([
            interface(2, "dtmi:test:A;1", json!([])),
            interface(3, "dtmi:test:B;1", json!([]))
        ]),
    )]));
    assert_eq!(
        names(&store.models().cloned().collect::<Vec<_>>(), |m| &m.id),
        ["dtmi:test:A;1", "dtmi:test:B;1"]
    );

    let problem = only(read(&[("n.json", json!(42))]), ProblemKind::Interface);
    assert_eq!((problem.path.as_str(), problem.id.as_deref()), ("$", None));

    let problems = refused(read(&[(
        "set.json",
        json!([
            interface(2, "dtmi:test:B;1", json!([])),
            interface(
                3,
                "dtmi:test:A;1",
                json!([{"@type": "Property", "name": "p", "schema": "decimal"}])
            ),
        ]),
    )]));
    assert_eq!(problems[0].path, "$[1].contents[0].schema");
    assert_eq!(problems[0].id.as_deref(), Some("dtmi:test:A;1"));
}

#[test]
fn a_byte_order_mark_is_skipped_and_invalid_json_has_a_line_and_column() {
    let mut reader = ModelReader::new();
    let text = serde_json::to_string(&interface(2, "dtmi:test:A;1", json!([]))).unwrap();
    reader.add_text("bom.json", &format!("\u{feff}{text}"));
    assert_eq!(accepted(reader.finish()).len(), 1);

    let mut reader = ModelReader::new();
    reader.add_text("bad.json", "{\n  \"@id\": \"dtmi:test:A;1\",\n}");
    let error = reader.finish().unwrap_err();
    assert_eq!(error.problems[0].kind, ProblemKind::Json);
    assert_eq!(error.problems[0].path, "3:1");
    assert_eq!(
        error.to_string(),
        "bad.json:3:1: not valid JSON: trailing comma"
    );
}

#[test]
fn every_problem_is_reported_at_once_and_displayed_one_per_line() {
    let pump = interface(
        2,
        "dtmi:com:contoso:Pump;1",
        json!([
            {"@type": "Property", "name": "pressure", "schema": "double"},
            {"@type": "Component", "name": "nameplate", "schema": "dtmi:com:contoso:Nameplate;1"},
            {"@type": "Relationship", "name": "feeds", "target": "dtmi:com:contoso:Valve;1"},
            {"@type": "Property", "name": "curve", "schema": {"@type": "Array", "elementSchema": "double"}},
        ]),
    );
    let error = read(&[("models/pump.json", pump)]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "models/pump.json: dtmi:com:contoso:Pump;1: $.contents[3].schema: an Array (or a geospatial schema, which holds arrays) in a Property's schema needs DTDL v3; this interface is DTDL v2\n\
         models/pump.json: dtmi:com:contoso:Pump;1: $.contents[1].schema: component nameplate: its schema dtmi:com:contoso:Nameplate;1 is not a loaded Interface\n\
         models/pump.json: dtmi:com:contoso:Pump;1: $.contents[2].target: relationship feeds: its target dtmi:com:contoso:Valve;1 is not loaded"
    );
    assert!(error.has(ProblemKind::Schema) && error.has(ProblemKind::TargetNotLoaded));
    assert!(!error.has(ProblemKind::ExtendsCycle));
}

// --- extends ------------------------------------------------------------------------------

fn extending(version: u8, id: &str, extends: Value, contents: Value) -> Value {
    let mut value = interface(version, id, contents);
    value["extends"] = extends;
    value
}

fn prop(name: &str) -> Value {
    json!({"@type": "Property", "name": name, "schema": "string"})
}

#[test]
fn extends_is_resolved_transitively_inherited_contents_first_and_a_diamond_once() {
    let store = accepted(read(&[
        (
            "d.json",
            extending(
                3,
                "dtmi:test:D;1",
                json!(["dtmi:test:B;1", "dtmi:test:C;1"]),
                json!([prop("d")]),
            ),
        ),
        ("a.json", interface(2, "dtmi:test:A;1", json!([prop("a")]))),
        (
            "b.json",
            extending(
                2,
                "dtmi:test:B;1",
                json!("dtmi:test:A;1"),
                json!([prop("b")]),
            ),
        ),
        (
            "c.json",
            extending(
                3,
                "dtmi:test:C;1",
                json!(["dtmi:test:A;1"]),
                json!([prop("c")]),
            ),
        ),
    ]));
    let d = store.get("dtmi:test:D;1").unwrap();
    assert_eq!(d.extends, ["dtmi:test:B;1", "dtmi:test:C;1"]);
    assert_eq!(
        d.ancestors,
        ["dtmi:test:A;1", "dtmi:test:B;1", "dtmi:test:C;1"]
    );
    assert_eq!(property_names(d), ["a", "b", "c", "d"]);
    assert_eq!(d.property("a").unwrap().defined_in, "dtmi:test:A;1");
    assert!(d.is_a("dtmi:test:A;1") && !store.is_a("dtmi:test:A;1", "dtmi:test:D;1"));
    assert!(!store.is_a("dtmi:test:nope;1", "dtmi:test:A;1"));
}

#[test]
fn an_inline_interface_in_extends_or_a_component_is_read_as_its_own() {
    let store = accepted(read(&[(
        "a.json",
        json!({
            "@context": "dtmi:dtdl:context;2",
            "@id": "dtmi:test:A;1",
            "@type": "Interface",
            "extends": {"@id": "dtmi:test:Base;1", "@type": "Interface", "contents": [prop("base")]},
            "contents": [{"@type": "Component", "name": "info", "schema":
                {"@id": "dtmi:test:Info;1", "@type": "Interface", "contents": [prop("maker")]}}],
        }),
    )]));
    assert_eq!(store.len(), 3);
    let a = store.get("dtmi:test:A;1").unwrap();
    assert_eq!(property_names(a), ["base"]);
    assert_eq!(a.component("info").unwrap().model.id, "dtmi:test:Info;1");
    assert_eq!(
        store.get("dtmi:test:Base;1").unwrap().version,
        DtdlVersion::V2
    );

    let anonymous = json!({
        "@context": "dtmi:dtdl:context;2", "@id": "dtmi:test:A;1", "@type": "Interface",
        "extends": {"@type": "Interface", "contents": []},
    });
    assert_eq!(
        only(read(&[("a.json", anonymous)]), ProblemKind::Interface).path,
        "$.extends"
    );
}

#[test]
fn a_missing_extends_target_is_reported_where_it_is_named() {
    let problem = only(
        read(&[
            ("a.json", interface(2, "dtmi:test:A;1", json!([]))),
            (
                "b.json",
                extending(
                    2,
                    "dtmi:test:B;1",
                    json!(["dtmi:test:A;1", "dtmi:test:Gone;1"]),
                    json!([]),
                ),
            ),
        ]),
        ProblemKind::MissingExtends,
    );
    assert_eq!(
        problem.to_string(),
        "b.json: dtmi:test:B;1: $.extends[1]: extends dtmi:test:Gone;1, which is not loaded"
    );
}

#[test]
fn an_extends_cycle_is_reported_once() {
    let problem = only(
        read(&[
            (
                "a.json",
                extending(2, "dtmi:test:A;1", json!("dtmi:test:C;1"), json!([])),
            ),
            (
                "b.json",
                extending(2, "dtmi:test:B;1", json!("dtmi:test:A;1"), json!([])),
            ),
            (
                "c.json",
                extending(2, "dtmi:test:C;1", json!("dtmi:test:B;1"), json!([])),
            ),
        ]),
        ProblemKind::ExtendsCycle,
    );
    assert_eq!(problem.path, "$.extends");
    assert!(
        problem
            .message
            .ends_with("dtmi:test:A;1 → dtmi:test:C;1 → dtmi:test:B;1 → dtmi:test:A;1"),
        "{}",
        problem.message
    );
    let own = only(
        read(&[(
            "a.json",
            extending(3, "dtmi:test:A;1", json!(["dtmi:test:A;1"]), json!([])),
        )]),
        ProblemKind::ExtendsCycle,
    );
    assert_eq!(own.path, "$.extends[0]");
}

#[test]
fn a_v2_interface_may_not_extend_or_contain_a_v3_one() {
    let problems = refused(read(&[
        ("v3.json", interface(3, "dtmi:test:New;1", json!([]))),
        (
            "v2.json",
            extending(
                2,
                "dtmi:test:Old;1",
                json!("dtmi:test:New;1"),
                json!([{"@type": "Component", "name": "c", "schema": "dtmi:test:New;1"}]),
            ),
        ),
    ]));
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems.iter().all(|p| p.kind == ProblemKind::Version));
    // The other way round is allowed.
    accepted(read(&[
        ("v2.json", interface(2, "dtmi:test:Old;1", json!([]))),
        (
            "v3.json",
            extending(
                3,
                "dtmi:test:New;1",
                json!("dtmi:test:Old;1"),
                json!([{"@type": "Component", "name": "c", "schema": "dtmi:test:Old;1"}]),
            ),
        ),
    ]));
}

#[test]
fn a_long_extends_chain_is_refused_without_exhausting_the_stack() {
    let depth = resolve::MAX_EXTENDS_DEPTH + 10;
    for reversed in [false, true] {
        let mut documents: Vec<(String, Value)> = (0..depth)
            .map(|i| {
                let id = format!("dtmi:test:I{i};1");
                let value = if i == 0 {
                    interface(3, &id, json!([]))
                } else {
                    extending(3, &id, json!(format!("dtmi:test:I{};1", i - 1)), json!([]))
                };
                (format!("{i}.json"), value)
            })
            .collect();
        if reversed {
            documents.reverse();
        }
        let mut reader = ModelReader::new();
        for (source, value) in documents {
            reader.add_value(&source, value);
        }
        let error = reader.finish().unwrap_err();
        assert!(
            error
                .problems
                .iter()
                .all(|p| p.message.contains("extends chain deeper")),
            "{error}"
        );
    }
}

// --- duplicates -----------------------------------------------------------------------------

#[test]
fn a_duplicate_id_is_model_already_exists() {
    let problem = only(
        read(&[
            ("a.json", interface(2, "dtmi:test:A;1", json!([]))),
            (
                "b.json",
                json!([
                    interface(3, "dtmi:test:B;1", json!([])),
                    interface(3, "dtmi:test:A;1", json!([]))
                ]),
            ),
        ]),
        ProblemKind::ModelAlreadyExists,
    );
    assert_eq!(
        problem.to_string(),
        "b.json: dtmi:test:A;1: $[1]: ModelAlreadyExists: dtmi:test:A;1 is already defined (a.json: $)"
    );
}

#[test]
fn content_names_are_unique_inherited_ones_included_and_reported_once() {
    let twice = interface(3, "dtmi:test:A;1", json!([prop("x"), prop("x")]));
    let problem = only(read(&[("a.json", twice)]), ProblemKind::DuplicateName);
    assert_eq!(problem.path, "$.contents[1].name");

    let problem = only(
        read(&[
            ("a.json", interface(3, "dtmi:test:A;1", json!([prop("x")]))),
            (
                "b.json",
                extending(
                    3,
                    "dtmi:test:B;1",
                    json!("dtmi:test:A;1"),
                    json!([prop("y"), {"@type": "Telemetry", "name": "x", "schema": "double"}]),
                ),
            ),
            (
                "c.json",
                extending(3, "dtmi:test:C;1", json!("dtmi:test:B;1"), json!([])),
            ),
        ]),
        ProblemKind::DuplicateName,
    );
    assert_eq!(
        (problem.id.as_deref(), problem.path.as_str()),
        (Some("dtmi:test:B;1"), "$.contents[1].name")
    );
    assert!(
        problem
            .message
            .contains("already declared by dtmi:test:A;1")
    );

    // Two parents declaring one name meet in their child: reported there, not in its children.
    let problem = only(
        read(&[
            ("a.json", interface(3, "dtmi:test:A;1", json!([prop("x")]))),
            (
                "b.json",
                interface(
                    3,
                    "dtmi:test:B;1",
                    json!([{"@type": "Relationship", "name": "x"}]),
                ),
            ),
            (
                "c.json",
                extending(
                    3,
                    "dtmi:test:C;1",
                    json!(["dtmi:test:A;1", "dtmi:test:B;1"]),
                    json!([]),
                ),
            ),
            (
                "d.json",
                extending(3, "dtmi:test:D;1", json!("dtmi:test:C;1"), json!([])),
            ),
        ]),
        ProblemKind::DuplicateName,
    );
    assert_eq!(
        (problem.id.as_deref(), problem.path.as_str()),
        (Some("dtmi:test:C;1"), "$.extends")
    );

    // A command's name counts too.
    only(
        read(&[(
            "a.json",
            interface(
                3,
                "dtmi:test:A;1",
                json!([prop("go"), {"@type": "Command", "name": "go"}]),
            ),
        )]),
        ProblemKind::DuplicateName,
    );
}

// --- components and relationships -----------------------------------------------------------

#[test]
fn a_component_must_be_a_loaded_interface_without_components() {
    let component = |schema: Value| {
        interface(
            3,
            "dtmi:test:A;1",
            json!([{"@type": "Component", "name": "c", "schema": schema}]),
        )
    };
    let problem = only(
        read(&[("a.json", component(json!("dtmi:test:Gone;1")))]),
        ProblemKind::ComponentNotInterface,
    );
    assert_eq!(problem.path, "$.contents[0].schema");
    only(
        read(&[("a.json", component(json!("string")))]),
        ProblemKind::ComponentNotInterface,
    );
    only(
        read(&[("a.json", component(json!(["dtmi:test:B;1"])))]),
        ProblemKind::ComponentNotInterface,
    );

    let problem = only(
        read(&[
            ("a.json", component(json!("dtmi:test:B;1"))),
            (
                "b.json",
                extending(3, "dtmi:test:B;1", json!("dtmi:test:C;1"), json!([])),
            ),
            (
                "c.json",
                interface(
                    3,
                    "dtmi:test:C;1",
                    json!([{"@type": "Component", "name": "inner", "schema": "dtmi:test:D;1"}]),
                ),
            ),
            ("d.json", interface(3, "dtmi:test:D;1", json!([]))),
        ]),
        ProblemKind::NestedComponent,
    );
    assert_eq!(problem.id.as_deref(), Some("dtmi:test:A;1"));
    // An interface that is its own component nests too, and does not loop.
    only(
        read(&[(
            "a.json",
            interface(
                3,
                "dtmi:test:A;1",
                json!([{"@type": "Component", "name": "c", "schema": "dtmi:test:A;1"}]),
            ),
        )]),
        ProblemKind::NestedComponent,
    );
}

#[test]
fn components_and_relationships_are_inherited_and_checked_where_declared() {
    let store = accepted(read(&[
        (
            "plate.json",
            interface(2, "dtmi:test:Plate;1", json!([prop("maker")])),
        ),
        (
            "asset.json",
            interface(
                2,
                "dtmi:test:Asset;1",
                json!([
                    {"@type": "Component", "name": "plate", "schema": "dtmi:test:Plate;1"},
                    {"@type": "Relationship", "name": "locatedIn", "target": "dtmi:test:Asset;1", "maxMultiplicity": 1},
                ]),
            ),
        ),
        (
            "pump.json",
            extending(3, "dtmi:test:Pump;1", json!("dtmi:test:Asset;1"), json!([])),
        ),
    ]));
    let pump = store.get("dtmi:test:Pump;1").unwrap();
    assert_eq!(
        pump.component("plate").unwrap().defined_in,
        "dtmi:test:Asset;1"
    );
    assert_eq!(
        pump.relationship("locatedIn").unwrap().max_multiplicity,
        Some(1)
    );

    let problems = refused(read(&[
        (
            "asset.json",
            interface(
                2,
                "dtmi:test:Asset;1",
                json!([{"@type": "Relationship", "name": "r", "target": "dtmi:test:Gone;1"}]),
            ),
        ),
        (
            "pump.json",
            extending(3, "dtmi:test:Pump;1", json!("dtmi:test:Asset;1"), json!([])),
        ),
    ]));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, ProblemKind::TargetNotLoaded);
    assert_eq!(problems[0].path, "$.contents[0].target");
}

#[test]
fn relationship_properties_may_be_one_object_and_multiplicities_are_checked() {
    let relationship = |extra: Value| {
        let mut r = json!({"@type": "Relationship", "name": "r"});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        interface(2, "dtmi:test:A;1", json!([r]))
    };
    let store = accepted(read(&[(
        "a.json",
        relationship(
            json!({"properties": {"@type": "Property", "name": "since", "schema": "dateTime"}}),
        ),
    )]));
    let r = store
        .get("dtmi:test:A;1")
        .unwrap()
        .relationship("r")
        .unwrap()
        .clone();
    assert_eq!(names(&r.properties, |p| &p.name), ["since"]);
    assert_eq!((r.target, r.max_multiplicity), (None, None));

    for (extra, path) in [
        (
            json!({"maxMultiplicity": 0}),
            "$.contents[0].maxMultiplicity",
        ),
        (
            json!({"maxMultiplicity": 501}),
            "$.contents[0].maxMultiplicity",
        ),
        (
            json!({"maxMultiplicity": -1}),
            "$.contents[0].maxMultiplicity",
        ),
        (
            json!({"minMultiplicity": 1}),
            "$.contents[0].minMultiplicity",
        ),
        (json!({"target": 5}), "$.contents[0].target"),
        (json!({"target": "Room"}), "$.contents[0].target"),
        (json!({"properties": "since"}), "$.contents[0].properties"),
        (
            json!({"properties": [{"@type": "Telemetry", "name": "t", "schema": "double"}]}),
            "$.contents[0].properties[0].@type",
        ),
        (
            json!({"properties": [prop("a"), prop("a")]}),
            "$.contents[0].properties[1].name",
        ),
    ] {
        let problems = refused(read(&[("a.json", relationship(extra.clone()))]));
        assert_eq!(problems[0].path, path, "{extra}: {problems:#?}");
    }
    // v3 lifts the 500 bound.
    let mut v3 = relationship(json!({"maxMultiplicity": 100000}));
    v3["@context"] = json!("dtmi:dtdl:context;3");
    accepted(read(&[("a.json", v3)]));
}

// --- schemas ------------------------------------------------------------------------------

fn schema_of(version: u8, schema: Value) -> Schema {
    let store = accepted(read(&[("a.json", with_property(version, schema))]));
    store
        .get("dtmi:test:A;1")
        .unwrap()
        .property("p")
        .unwrap()
        .schema
        .clone()
}

fn schema_problem(version: u8, schema: Value) -> ModelProblem {
    let problems = refused(read(&[("a.json", with_property(version, schema))]));
    problems[0].clone()
}

#[test]
fn every_primitive_is_read_and_case_matters() {
    for primitive in Primitive::ALL {
        assert_eq!(
            schema_of(2, json!(primitive.name())),
            Schema::Primitive(primitive)
        );
    }
    let problem = schema_problem(3, json!("Double"));
    assert_eq!(
        (problem.kind, problem.path.as_str()),
        (ProblemKind::Schema, "$.contents[0].schema")
    );
    assert!(problem.message.starts_with("unknown schema Double"));
    assert_eq!(schema_problem(3, json!(5)).kind, ProblemKind::Schema);
}

#[test]
fn enums_are_read_with_their_values() {
    let Schema::Enum(e) = schema_of(
        2,
        json!({"@type": "Enum", "valueSchema": "integer", "enumValues": [
            {"name": "off", "enumValue": 0, "displayName": "Off"}, {"name": "on", "enumValue": 1}]}),
    ) else {
        panic!("not an enum");
    };
    assert_eq!(e.value_schema, EnumValueSchema::Integer);
    assert_eq!(
        e.values[1],
        EnumValue {
            name: "on".into(),
            value: EnumLiteral::Integer(1)
        }
    );
    let Schema::Enum(e) = schema_of(3, json!({"@type": "Enum", "valueSchema": "string"})) else {
        panic!("not an enum");
    };
    assert!(e.values.is_empty());

    for (schema, path) in [
        (
            json!({"@type": "Enum", "valueSchema": "double", "enumValues": []}),
            "$.contents[0].schema.valueSchema",
        ),
        (
            json!({"@type": "Enum", "valueSchema": "integer", "enumValues": [{"name": "a", "enumValue": "a"}]}),
            "$.contents[0].schema.enumValues[0].enumValue",
        ),
        (
            json!({"@type": "Enum", "valueSchema": "integer", "enumValues": [{"name": "a", "enumValue": 3000000000_u64}]}),
            "$.contents[0].schema.enumValues[0].enumValue",
        ),
        (
            json!({"@type": "Enum", "valueSchema": "string", "enumValues": [{"enumValue": "a"}]}),
            "$.contents[0].schema.enumValues[0]",
        ),
        (
            json!({"@type": "Enum", "valueSchema": "string", "enumValues": [{"name": "a", "enumValue": "x"}, {"name": "b", "enumValue": "x"}]}),
            "$.contents[0].schema.enumValues[1]",
        ),
        (
            json!({"@type": "Enum", "valueSchema": "string", "enumValues": {"name": "a"}}),
            "$.contents[0].schema.enumValues",
        ),
    ] {
        assert_eq!(schema_problem(3, schema.clone()).path, path, "{schema}");
    }
}

#[test]
fn objects_maps_and_arrays_are_read_recursively() {
    let Schema::Object(object) = schema_of(
        2,
        json!({"@type": "Object", "@id": "dtmi:test:address;1", "fields": [
            {"name": "street", "schema": "string"},
            {"name": "geo", "schema": {"@type": "Object", "fields": [{"name": "lat", "schema": "double"}]}},
        ]}),
    ) else {
        panic!("not an object");
    };
    assert_eq!(object.id.as_deref(), Some("dtmi:test:address;1"));
    assert_eq!(names(&object.fields, |f| &f.name), ["street", "geo"]);
    assert!(
        matches!(&object.field("geo").unwrap().schema, Schema::Object(inner) if inner.fields[0].name == "lat")
    );

    let Schema::Map(map) = schema_of(
        2,
        json!({"@type": "Map", "mapKey": {"name": "module", "schema": "string"},
               "mapValue": {"name": "state", "schema": {"@type": "Enum", "valueSchema": "string", "enumValues": []}}}),
    ) else {
        panic!("not a map");
    };
    assert_eq!(
        (map.key_name.as_str(), map.value_name.as_str()),
        ("module", "state")
    );
    assert!(matches!(map.value, Schema::Enum(_)));

    let Schema::Array(array) = schema_of(
        3,
        json!({"@type": "Array", "elementSchema": {"@type": "Array", "elementSchema": "long"}}),
    ) else {
        panic!("not an array");
    };
    assert!(
        matches!(&array.element, Schema::Array(inner) if inner.element == Schema::Primitive(Primitive::Long))
    );

    for (schema, kind, path) in [
        (
            json!({"@type": "Object", "fields": [{"name": "a", "schema": "string"}, {"name": "a", "schema": "long"}]}),
            ProblemKind::DuplicateName,
            "$.contents[0].schema.fields[1].name",
        ),
        (
            json!({"@type": "Object", "fields": [{"name": "a"}]}),
            ProblemKind::Schema,
            "$.contents[0].schema.fields[0]",
        ),
        (
            json!({"@type": "Object", "fields": [{"name": "a", "schema": "strin"}]}),
            ProblemKind::Schema,
            "$.contents[0].schema.fields[0].schema",
        ),
        (
            json!({"@type": "Object", "fields": "a"}),
            ProblemKind::Schema,
            "$.contents[0].schema.fields",
        ),
        (
            json!({"@type": "Map", "mapKey": {"name": "k", "schema": "integer"}, "mapValue": {"name": "v", "schema": "string"}}),
            ProblemKind::Schema,
            "$.contents[0].schema.mapKey.schema",
        ),
        (
            json!({"@type": "Map", "mapKey": {"name": "k", "schema": "string"}}),
            ProblemKind::Schema,
            "$.contents[0].schema",
        ),
        (
            json!({"@type": "Array"}),
            ProblemKind::Schema,
            "$.contents[0].schema",
        ),
        (
            json!({"@type": "Struct"}),
            ProblemKind::Schema,
            "$.contents[0].schema.@type",
        ),
        (
            json!({"fields": []}),
            ProblemKind::Schema,
            "$.contents[0].schema.@type",
        ),
    ] {
        let problem = schema_problem(3, schema.clone());
        assert_eq!(
            (problem.kind, problem.path.as_str()),
            (kind, path),
            "{schema}"
        );
    }
}

#[test]
fn arrays_in_properties_need_v3_but_are_fine_in_v2_telemetry() {
    let array = json!({"@type": "Array", "elementSchema": "double"});
    let nested = json!({"@type": "Object", "fields": [{"name": "xs", "schema": array}]});
    for schema in [
        array.clone(),
        nested.clone(),
        json!("point"),
        json!("dtmi:standard:schema:geospatial:polygon;2"),
    ] {
        let problem = schema_problem(2, schema.clone());
        assert_eq!(
            (problem.kind, problem.path.as_str()),
            (ProblemKind::Schema, "$.contents[0].schema"),
            "{schema}"
        );
        assert!(problem.message.contains("needs DTDL v3"));
        schema_of(3, schema);
    }
    // A relationship's properties follow the same rule.
    let relationship = interface(
        2,
        "dtmi:test:A;1",
        json!([{"@type": "Relationship", "name": "r",
        "properties": [{"@type": "Property", "name": "xs", "schema": array}]}]),
    );
    assert_eq!(
        only(read(&[("a.json", relationship)]), ProblemKind::Schema).path,
        "$.contents[0].properties[0].schema"
    );
    let telemetry = interface(
        2,
        "dtmi:test:A;1",
        json!([
            {"@type": "Telemetry", "name": "xs", "schema": array},
            {"@type": "Telemetry", "name": "where", "schema": "dtmi:standard:schema:geospatial:point;2"},
        ]),
    );
    accepted(read(&[("a.json", telemetry)]));
}

#[test]
fn geospatial_schemas_are_read_by_term_or_dtmi() {
    for kind in GeoKind::ALL {
        for name in [
            kind.term().to_owned(),
            format!("dtmi:standard:schema:geospatial:{};2", kind.term()),
            format!("dtmi:standard:schema:geospatial:{};3", kind.term()),
        ] {
            assert_eq!(schema_of(3, json!(name)), Schema::Geo(kind), "{name}");
        }
    }
    assert_eq!(
        schema_problem(3, json!("dtmi:standard:schema:geospatial:point;4")).kind,
        ProblemKind::Schema
    );
}

#[test]
fn reusable_schemas_are_resolved_by_id_and_shared() {
    let mut a = interface(
        3,
        "dtmi:test:A;1",
        json!([
            {"@type": "Property", "name": "mode", "schema": "dtmi:test:mode;1"},
            {"@type": "Telemetry", "name": "modeChanged", "schema": "dtmi:test:mode;1"},
            {"@type": "Property", "name": "history", "schema": {"@type": "Array", "elementSchema": "dtmi:test:mode;1"}},
        ]),
    );
    a["schemas"] = json!([{"@id": "dtmi:test:mode;1", "@type": "Enum", "valueSchema": "integer",
                           "enumValues": [{"name": "off", "enumValue": 0}]}]);
    // Another interface may use it too (DTDL scopes it to its interface; twinroute tolerates).
    let b = interface(
        3,
        "dtmi:test:B;1",
        json!([{"@type": "Property", "name": "mode", "schema": "dtmi:test:mode;1"}]),
    );
    let store = accepted(read(&[("a.json", a), ("b.json", b)]));
    let a = store.get("dtmi:test:A;1").unwrap();
    let (Schema::Enum(first), Schema::Enum(second)) = (
        &a.property("mode").unwrap().schema,
        &a.telemetry("modeChanged").unwrap().schema,
    ) else {
        panic!("not enums");
    };
    assert!(std::sync::Arc::ptr_eq(first, second));
    assert_eq!(first.id.as_deref(), Some("dtmi:test:mode;1"));
    assert!(matches!(
        &store
            .get("dtmi:test:B;1")
            .unwrap()
            .property("mode")
            .unwrap()
            .schema,
        Schema::Enum(_)
    ));
}

#[test]
fn a_bad_reusable_schema_is_reported_once_where_declared() {
    let mut a = interface(
        3,
        "dtmi:test:A;1",
        json!([
            {"@type": "Property", "name": "p", "schema": "dtmi:test:s;1"},
            {"@type": "Property", "name": "q", "schema": "dtmi:test:s;1"},
        ]),
    );
    a["schemas"] = json!([
        {"@id": "dtmi:test:s;1", "@type": "Object", "fields": [{"name": "x", "schema": "nope"}]},
        {"@id": "dtmi:test:unused;1", "@type": "Map"},
        {"@type": "Object", "fields": []},
        {"@id": "dtmi:test:s;1", "@type": "Object", "fields": []},
    ]);
    let problems = refused(read(&[("a.json", a)]));
    let found: Vec<(ProblemKind, &str)> =
        problems.iter().map(|p| (p.kind, p.path.as_str())).collect();
    assert_eq!(
        found,
        [
            (ProblemKind::Schema, "$.schemas[2]"),
            (ProblemKind::ModelAlreadyExists, "$.schemas[3]"),
            (ProblemKind::Schema, "$.schemas[0].fields[0].schema"),
            // A Map without its mapKey, and without its mapValue.
            (ProblemKind::Schema, "$.schemas[1]"),
            (ProblemKind::Schema, "$.schemas[1]"),
        ]
    );
}

#[test]
fn a_reusable_schema_cycle_is_refused() {
    let mut a = interface(
        3,
        "dtmi:test:A;1",
        json!([{"@type": "Property", "name": "p", "schema": "dtmi:test:node;1"}]),
    );
    a["schemas"] = json!([
        {"@id": "dtmi:test:node;1", "@type": "Object", "fields": [{"name": "next", "schema": "dtmi:test:link;1"}]},
        {"@id": "dtmi:test:link;1", "@type": "Array", "elementSchema": "dtmi:test:node;1"},
    ]);
    let problem = only(read(&[("a.json", a)]), ProblemKind::Schema);
    assert_eq!(problem.path, "$.schemas[1].elementSchema");
    assert_eq!(problem.message, "schema dtmi:test:node;1 contains itself");
}

#[test]
fn deep_schemas_are_refused_without_exhausting_the_stack() {
    let mut deep = json!("double");
    for _ in 0..schemas::MAX_DEPTH + 1 {
        deep = json!({"@type": "Array", "elementSchema": deep});
    }
    assert!(schema_problem(3, deep).message.contains("nested deeper"));

    let count = schemas::MAX_DEPTH + 5;
    let chain: Vec<Value> = (0..count)
        .map(|i| {
            let element = if i + 1 == count {
                json!("double")
            } else {
                json!(format!("dtmi:test:s{};1", i + 1))
            };
            json!({"@id": format!("dtmi:test:s{i};1"), "@type": "Array", "elementSchema": element})
        })
        .collect();
    let mut a = with_property(3, json!("dtmi:test:s0;1"));
    a["schemas"] = Value::Array(chain);
    let problems = refused(read(&[("a.json", a)]));
    assert!(
        problems.iter().all(|p| p.message.contains("nested deeper")),
        "{problems:#?}"
    );
}

// --- files and folders ------------------------------------------------------------------------

fn write(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

#[test]
fn folders_are_read_recursively_in_path_order_and_other_files_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("b/z.json"),
        &interface(2, "dtmi:test:Z;1", json!([])),
    );
    write(
        &root.join("a folder/y.JSON"),
        &interface(2, "dtmi:test:Y;1", json!([])),
    );
    write(
        &root.join("a folder/x.json"),
        &interface(2, "dtmi:test:X;1", json!([])),
    );
    std::fs::write(root.join("README.md"), "not a model").unwrap();
    let single = root.join("single.json");
    write(&single, &interface(3, "dtmi:test:S;1", json!([])));
    std::fs::rename(&single, root.join("b/single.dtdl")).unwrap();
    let store = accepted(load(&[root]));
    let ids: Vec<&str> = store.models().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["dtmi:test:X;1", "dtmi:test:Y;1", "dtmi:test:Z;1"]);
    assert!(
        store
            .get("dtmi:test:X;1")
            .unwrap()
            .source
            .ends_with("a folder/x.json")
    );

    // A file given by name is read whatever its extension.
    let store = accepted(load(&[root.join("b/single.dtdl"), root.join("b")]));
    assert_eq!(store.len(), 2);
}

#[test]
fn missing_paths_and_empty_folders_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let error = load(&[dir.path().join("empty"), dir.path().join("gone.json")]).unwrap_err();
    let kinds: Vec<ProblemKind> = error.problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [ProblemKind::Io, ProblemKind::Io]);
    assert!(error.problems[0].message.contains("no *.json"));
    assert!(
        error.problems[1]
            .message
            .starts_with("cannot read the file")
    );
}

// --- the fixture model set ----------------------------------------------------------------

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

const C: &str = "dtmi:com:contoso:";

fn fixture() -> ModelStore {
    accepted(load(&[repository("fixtures/models")]))
}

#[test]
fn the_fixture_set_loads_whole() {
    let store = fixture();
    assert_eq!(store.len(), 28);
    let v2 = store
        .models()
        .filter(|m| m.version == DtdlVersion::V2)
        .count();
    assert_eq!((v2, store.len() - v2), (15, 13));
    // One file holds six interfaces; the folder with spaces and the file with a BOM are read.
    let spaces = store
        .models()
        .filter(|m| m.source.ends_with("spaces.json"))
        .count();
    assert_eq!(spaces, 6);
    assert!(
        store
            .get(&format!("{C}point:Alarm;1"))
            .unwrap()
            .source
            .contains("Points and Capabilities")
    );
    assert!(store.get(&format!("{C}asset:Pump;1")).is_some());
    assert_eq!(
        store
            .get(&format!("{C}space:Building;1"))
            .unwrap()
            .display_name
            .as_deref(),
        Some("Building")
    );
}

#[test]
fn the_fixture_pump_inherits_four_levels_and_has_components() {
    let store = fixture();
    let pump = store.get(&format!("{C}asset:Pump;1")).unwrap();
    let ancestors: Vec<String> = [
        "Entity;1",
        "asset:Asset;1",
        "asset:Equipment;1",
        "asset:HvacEquipment;1",
    ]
    .iter()
    .map(|id| format!("{C}{id}"))
    .collect();
    assert_eq!(pump.ancestors, ancestors);
    assert_eq!(
        property_names(pump),
        [
            "name",
            "externalIds",
            "tags", // Entity
            "serialNumber",
            "commissionedOn",
            "warrantyPeriod", // Asset
            "operatingMode",
            "runHours", // Equipment
            "refrigerant",
            "nominalCapacity", // HvacEquipment
            "speedSetpoint",
            "curve",
            "impeller", // Pump
        ]
    );
    assert_eq!(
        names(&pump.telemetry, |t| &t.name),
        ["status", "pressure", "flowRate"]
    );
    assert_eq!(
        names(&pump.relationships, |r| &r.name),
        ["locatedIn", "feeds", "hasPoint"]
    );
    let pressure = pump.telemetry("pressure").unwrap();
    assert_eq!(
        (pressure.semantic_types.as_slice(), pressure.unit.as_deref()),
        (&["Pressure".to_owned()][..], Some("kilopascal"))
    );

    // Components come from Asset, resolved to their interfaces.
    assert_eq!(
        names(&pump.components, |c| &c.name),
        ["nameplate", "maintenance"]
    );
    let maintenance = &pump.component("maintenance").unwrap().model;
    assert_eq!(maintenance.id, format!("{C}asset:MaintenanceRecord;1"));
    let Schema::Enum(status) = &maintenance.property("status").unwrap().schema else {
        panic!("status is an enum");
    };
    assert_eq!(
        status.values[3].value,
        EnumLiteral::String("in-service".into())
    );

    // The reusable Enum of Equipment, and the reusable Object inside Pump's v3 Array.
    let Schema::Enum(mode) = &pump.property("operatingMode").unwrap().schema else {
        panic!("operatingMode is an enum");
    };
    assert_eq!(mode.value_schema, EnumValueSchema::Integer);
    assert_eq!(
        names(&mode.values, |v| &v.name),
        ["off", "auto", "manual", "fault"]
    );
    let Schema::Array(curve) = &pump.property("curve").unwrap().schema else {
        panic!("curve is an array");
    };
    assert!(
        matches!(&curve.element, Schema::Object(point) if point.id.as_deref() == Some("dtmi:com:contoso:asset:Pump:curvePoint;1"))
    );

    // A relationship to an equipment fits any subtype.
    let feeds = pump.relationship("feeds").unwrap();
    assert!(store.is_a(&pump.id, feeds.target.as_deref().unwrap()));
    assert!(!store.is_a(
        &format!("{C}space:Room;1"),
        feeds.target.as_deref().unwrap()
    ));
}

#[test]
fn the_fixture_set_has_maps_geospatial_arrays_and_one_object_relationship_properties() {
    let store = fixture();
    let meter = store.get(&format!("{C}asset:ElectricityMeter;1")).unwrap();
    let Schema::Map(tariffs) = &meter.property("tariffs").unwrap().schema else {
        panic!("tariffs is a map");
    };
    assert!(matches!(&tariffs.value, Schema::Object(tariff) if tariff.field("rate").is_some()));

    let building = store.get(&format!("{C}space:Building;1")).unwrap();
    assert_eq!(
        building.property("location").unwrap().schema,
        Schema::Geo(GeoKind::Point)
    );
    assert!(matches!(
        &building.property("certifications").unwrap().schema,
        Schema::Array(_)
    ));
    let has_level = building.relationship("hasLevel").unwrap();
    assert_eq!(
        (has_level.max_multiplicity, has_level.target.as_deref()),
        (Some(200), Some("dtmi:com:contoso:space:Level;1"))
    );

    let space = store.get(&format!("{C}Space;1")).unwrap();
    let capability = space.relationship("hasCapability").unwrap();
    assert_eq!(names(&capability.properties, |p| &p.name), ["since"]);
    let room = store.get(&format!("{C}space:Room;1")).unwrap();
    let setpoint = room.property("temperatureSetpoint").unwrap();
    assert_eq!(
        (setpoint.semantic_types.as_slice(), setpoint.unit.as_deref()),
        (&["Temperature".to_owned()][..], Some("degreeCelsius"))
    );

    // The diamond: SmartMeter extends ElectricityMeter and Sensor, both Equipment.
    let smart = store.get(&format!("{C}asset:SmartMeter;1")).unwrap();
    let ancestors: Vec<&str> = smart
        .ancestors
        .iter()
        .map(|a| a.trim_start_matches(C))
        .collect();
    assert_eq!(
        ancestors,
        [
            "Entity;1",
            "asset:Asset;1",
            "asset:Equipment;1",
            "asset:Meter;1",
            "asset:ElectricityMeter;1",
            "asset:Sensor;1"
        ]
    );
    assert_eq!(
        smart
            .properties
            .iter()
            .filter(|p| p.name == "operatingMode")
            .count(),
        1
    );
    assert!(smart.relationship("observes").is_some() && smart.relationship("measures").is_some());

    let company = store.get(&format!("{C}Company;1")).unwrap();
    assert_eq!(company.relationship("partners").unwrap().target, None);
}

#[test]
fn the_bad_fixtures_report_every_problem() {
    let error = load(&[repository("fixtures/models-bad")]).unwrap_err();
    let root = repository("fixtures/models-bad").display().to_string();
    let text = error.to_string().replace(&root, "models-bad");
    let expected = include_str!("../../fixtures/models-bad/expected-errors.txt");
    assert_eq!(text, expected.trim_end(), "\n{text}");
}

// --- the built-in graph's models ------------------------------------------------------------

#[test]
fn the_builtin_models_are_the_generators_models() {
    use crate::generator::models::{ModelKind, ValueKind};

    let store = accepted(builtin());
    assert_eq!(store.len(), ModelKind::ALL.len());
    // The repository's files are the embedded ones.
    let on_disk = accepted(load(&[repository("models/builtin")]));
    assert_eq!(on_disk.len(), store.len());

    let fits = |kind: &ValueKind, schema: &Schema| match (kind, schema) {
        (ValueKind::Text(words), Schema::Enum(e)) => words.iter().all(|w| {
            e.values
                .iter()
                .any(|v| v.value == EnumLiteral::String((*w).to_owned()))
        }),
        (ValueKind::Text(_) | ValueKind::Serial(_), Schema::Primitive(Primitive::String)) => true,
        (ValueKind::Int { .. }, Schema::Primitive(Primitive::Integer)) => true,
        (ValueKind::Float { .. }, Schema::Primitive(Primitive::Double)) => true,
        (ValueKind::Bool, Schema::Primitive(Primitive::Boolean)) => true,
        _ => false,
    };
    for kind in ModelKind::ALL {
        let expected = kind.model();
        let model = store
            .get(expected.id)
            .unwrap_or_else(|| panic!("{} missing", expected.id));
        assert_eq!(
            property_names(model),
            names(expected.properties, |p| p.name),
            "{}",
            expected.id
        );
        assert!(
            model.properties.iter().all(|p| p.writable),
            "the generator patches every property"
        );
        for (property, definition) in model.properties.iter().zip(expected.properties) {
            assert!(
                fits(&definition.kind, &property.schema),
                "{}.{}",
                expected.id,
                property.name
            );
        }
        assert_eq!(
            names(&model.telemetry, |t| &t.name),
            names(expected.telemetry, |p| p.name)
        );
        for (telemetry, definition) in model.telemetry.iter().zip(expected.telemetry) {
            assert!(
                fits(&definition.kind, &telemetry.schema),
                "{}.{}",
                expected.id,
                telemetry.name
            );
        }
        match &expected.relationship {
            None => assert!(model.relationships.is_empty()),
            Some(relationship) => {
                assert_eq!(model.relationships.len(), 1);
                let declared = &model.relationships[0];
                assert_eq!(declared.name, relationship.name);
                assert_eq!(
                    declared.target.as_deref(),
                    Some(relationship.target.model().id)
                );
                assert_eq!(
                    names(&declared.properties, |p| &p.name),
                    names(relationship.properties, |p| p.name)
                );
                for (property, definition) in
                    declared.properties.iter().zip(relationship.properties)
                {
                    assert!(
                        fits(&definition.kind, &property.schema),
                        "{}.{}",
                        declared.name,
                        property.name
                    );
                }
            }
        }
    }
}

// --- values -------------------------------------------------------------------------------

fn primitive(p: Primitive) -> Schema {
    Schema::Primitive(p)
}

#[test]
fn numbers_fit_by_kind_and_range() {
    let ok = |p: Primitive, v: Value| assert_eq!(primitive(p).check(&v), Ok(()), "{p:?} {v}");
    let bad = |p: Primitive, v: Value| assert!(primitive(p).check(&v).is_err(), "{p:?} {v}");
    ok(Primitive::Integer, json!(-2147483648_i64));
    ok(Primitive::Integer, json!(2147483647));
    bad(Primitive::Integer, json!(2147483648_i64));
    bad(Primitive::Integer, json!(5.0));
    bad(Primitive::Integer, json!("5"));
    ok(Primitive::Long, json!(i64::MAX));
    bad(Primitive::Long, json!(u64::MAX));
    bad(Primitive::Long, json!(1.5));
    ok(Primitive::Double, json!(1e300));
    ok(Primitive::Double, json!(7));
    bad(Primitive::Double, json!(null));
    ok(Primitive::Float, json!(3.4e38));
    bad(Primitive::Float, json!(3.5e38));
    ok(Primitive::Boolean, json!(false));
    bad(Primitive::Boolean, json!(0));
    ok(Primitive::String, json!(""));
    bad(Primitive::String, json!(["a"]));
}

#[test]
fn temporal_strings_are_checked_for_form_and_reality() {
    let check = |p: Primitive, text: &str| primitive(p).check(&json!(text)).is_ok();
    for text in ["2024-02-29", "0001-01-01"] {
        assert!(check(Primitive::Date, text), "{text}");
    }
    for text in [
        "2023-02-29",
        "2024-2-29",
        "2024-02-29T00:00:00Z",
        "24-02-29",
        "2024/02/29",
    ] {
        assert!(!check(Primitive::Date, text), "{text}");
    }
    for text in [
        "2024-02-29T13:45:00Z",
        "2024-02-29T13:45:00.1234567Z",
        "2024-02-29T13:45:00+01:00",
        "2024-02-29t13:45:00z",
    ] {
        assert!(check(Primitive::DateTime, text), "{text}");
    }
    for text in [
        "2024-02-29T13:45:00",
        "2024-02-29 13:45:00Z",
        "2024-02-30T13:45:00Z",
        "2024-02-29T24:00:00Z",
        "yesterday",
    ] {
        assert!(!check(Primitive::DateTime, text), "{text}");
    }
    for text in [
        "13:45:00",
        "13:45:00.5",
        "00:00:00Z",
        "13:45:00+01:00",
        "13:45:00.123-05:30",
    ] {
        assert!(check(Primitive::Time, text), "{text}");
    }
    for text in [
        "25:00:00",
        "13:45",
        "13:45:00.",
        "13:45:00+1:00",
        "13:45:00+24:00",
        "1:45:00",
        "13:45:00 ",
        "13:45:0é",
    ] {
        assert!(!check(Primitive::Time, text), "{text}");
    }
    for text in [
        "P1Y2M3DT4H5M6.5S",
        "PT0.5S",
        "P1W",
        "-P1D",
        "PT36H",
        "P0D",
        "P1DT12H",
        "PT1,5S",
    ] {
        assert!(check(Primitive::Duration, text), "{text}");
    }
    for text in [
        "P", "PT", "P1H", "1D", "P1.5DT1H", "PT1S2M", "P1D2Y", "P1DT", "PT.5S", "P-1D", "p1d",
        "P1Dé",
    ] {
        assert!(!check(Primitive::Duration, text), "{text}");
    }
}

#[test]
fn complex_values_fit_recursively_and_failures_have_a_path() {
    let store = fixture();
    let building = store.get(&format!("{C}space:Building;1")).unwrap();
    let address = &building.property("address").unwrap().schema;
    assert_eq!(
        address.check(&json!({"street": "1 Main St", "city": "Oslo"})),
        Ok(())
    );
    let error = address
        .check(&json!({"street": "1 Main St", "town": "Oslo"}))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "$.town: not a field of the object's schema"
    );
    assert_eq!(
        address.check(&json!({"city": 7})).unwrap_err().path,
        "$.city"
    );
    assert!(address.check(&json!("1 Main St")).is_err());

    let meter = store.get(&format!("{C}asset:ElectricityMeter;1")).unwrap();
    let tariffs = &meter.property("tariffs").unwrap().schema;
    assert_eq!(
        tariffs.check(&json!({"peak hours": {"rate": 0.31, "currency": "EUR"}, "night": {}})),
        Ok(())
    );
    let error = tariffs
        .check(&json!({"peak hours": {"rate": "high"}}))
        .unwrap_err();
    assert_eq!(error.path, r#"$["peak hours"].rate"#);
    assert_eq!(error.message, r#"expected a number, found "high""#);

    let pump = store.get(&format!("{C}asset:Pump;1")).unwrap();
    let curve = &pump.property("curve").unwrap().schema;
    assert_eq!(
        curve.check(&json!([{"flow": 0, "head": 32.5}, {"flow": 10, "head": 30}])),
        Ok(())
    );
    assert_eq!(
        curve
            .check(&json!([{"flow": 0}, {"flow": 1}, {"flow": "x"}]))
            .unwrap_err()
            .path,
        "$[2].flow"
    );
    let mode = &pump.property("operatingMode").unwrap().schema;
    assert_eq!(mode.check(&json!(3)), Ok(()));
    assert_eq!(
        mode.check(&json!(4)).unwrap_err().message,
        "4 is not one of the enum's values (0, 1, 2, 3)"
    );
    assert!(mode.check(&json!("fault")).is_err());
    let status = &pump
        .component("maintenance")
        .unwrap()
        .model
        .property("status")
        .unwrap()
        .schema;
    assert_eq!(status.check(&json!("in-service")), Ok(()));
    assert!(status.check(&json!("inService")).is_err());
}

#[test]
fn geospatial_values_are_geojson_geometries() {
    let point = Schema::Geo(GeoKind::Point);
    assert_eq!(
        point.check(&json!({"type": "Point", "coordinates": [47.64, -122.13]})),
        Ok(())
    );
    assert_eq!(
        point.check(&json!({"type": "Point", "coordinates": [1, 2, 3], "bbox": [0, 0, 1, 1]})),
        Ok(())
    );
    assert_eq!(
        point
            .check(&json!({"type": "Polygon", "coordinates": [1, 2]}))
            .unwrap_err()
            .path,
        "$.type"
    );
    assert_eq!(
        point
            .check(&json!({"type": "Point", "coordinates": [1]}))
            .unwrap_err()
            .path,
        "$.coordinates"
    );
    assert_eq!(
        point.check(&json!({"type": "Point"})).unwrap_err().path,
        "$"
    );
    assert_eq!(
        point
            .check(&json!({"type": "Point", "coordinates": [1, 2], "crs": 1}))
            .unwrap_err()
            .path,
        "$.crs"
    );
    let polygon = Schema::Geo(GeoKind::Polygon);
    let ring = json!([[0, 0], [1, 0], [1, 1], [0, 0]]);
    assert_eq!(
        polygon.check(&json!({"type": "Polygon", "coordinates": [ring]})),
        Ok(())
    );
    assert_eq!(
        polygon
            .check(&json!({"type": "Polygon", "coordinates": ring}))
            .unwrap_err()
            .path,
        "$.coordinates[0][0]"
    );
    let multi = Schema::Geo(GeoKind::MultiPolygon);
    assert_eq!(
        multi.check(&json!({"type": "MultiPolygon", "coordinates": [[ring]]})),
        Ok(())
    );
    assert_eq!(
        multi
            .check(&json!({"type": "MultiPolygon", "coordinates": [[[[0, "x"]]]]}))
            .unwrap_err()
            .path,
        "$.coordinates[0][0][0]"
    );
}
