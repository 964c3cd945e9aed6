//! Filters from ADT's documentation against realistic ADT events, the semantics at the edges,
//! and every refusal with its column and message.

use serde_json::{Value, json};

use super::{
    Attribute, BodyValue, CompareOp, EqualityOp, Expr, Filter, FilterError, FilterInput, JsonEvent,
    JsonEventError, Literal, MAX_DEPTH, Operand, RoutingSource, StringFunction,
};

const HOST: &str = "contoso-adt.api.wus2.digitaltwins.azure.net";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A notification as ADT sends it (CloudEvents, structured).
fn notification(id: &str, event_type: &str, subject: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "type": event_type,
        "source": HOST,
        "subject": subject,
        "time": "2021-12-09T20:28:52.6745538Z",
        "datacontenttype": "application/json",
        "traceparent": TRACEPARENT,
        "data": data,
    })
}

/// Realistic events, by name: twins, relationships and telemetry.
fn adt_events() -> Vec<(&'static str, JsonEvent)> {
    let floor_create = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a01",
        "Microsoft.DigitalTwins.Twin.Create",
        "floor1",
        json!({
            "$dtId": "floor1",
            "$etag": "W/\"ecf81d6c-1ea7-4d1b-9b8c-b1f0b0c3a6d2\"",
            "name": "O'Brien's floor",
            "temperature": 21.5,
            "errorCode": 404,
            "poweredOn": true,
            "prop": "set",
            "$metadata": {
                "$model": "dtmi:example:com:floor;1",
                "temperature": {"lastUpdateTime": "2021-12-09T20:28:52.6651216Z"}
            }
        }),
    );
    let room_create = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a02",
        "Microsoft.DigitalTwins.Twin.Create",
        "room1",
        json!({
            "$dtId": "room1",
            "$etag": "W/\"a1b2\"",
            "temperature": 5.5,
            "poweredOn": false,
            "prop": null,
            "$metadata": {"$model": "dtmi:example:com:room;1"}
        }),
    );
    let floor_update = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a03",
        "Microsoft.DigitalTwins.Twin.Update",
        "floor1",
        json!({
            "modelId": "dtmi:example:com:floor;1",
            "patch": [
                {"value": 22.5, "path": "/temperature", "op": "replace"},
                {"value": 1, "path": "/comp1/prop1", "op": "add"}
            ]
        }),
    );
    let floor_delete = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a04",
        "Microsoft.DigitalTwins.Twin.Delete",
        "floor2",
        json!({
            "$dtId": "floor2",
            "$etag": "W/\"c3d4\"",
            "$metadata": {"$model": "dtmi:example:com:floor4;2"}
        }),
    );
    let relationship = json!({
        "$relationshipId": "rel1",
        "$etag": "W/\"e5f6\"",
        "$relationshipName": "contains",
        "$sourceId": "floor1",
        "$targetId": "room1"
    });
    let rel_create = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a05",
        "Microsoft.DigitalTwins.Relationship.Create",
        "floor1/relationships/rel1",
        relationship.clone(),
    );
    let rel_update = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a06",
        "Microsoft.DigitalTwins.Relationship.Update",
        "floor1/relationships/rel1",
        json!({
            "modelId": "dtmi:example:com:floor;1",
            "patch": [{"value": "wifi", "path": "/connectionType", "op": "replace"}]
        }),
    );
    let rel_delete = notification(
        "1b3e0c7d-5f1a-4c36-9a4e-0c2f3b2d1a07",
        "Microsoft.DigitalTwins.Relationship.Delete",
        "floor1/relationships/rel1",
        relationship,
    );
    // Telemetry: id is the caller's Message-Id, no time, subject only from a component.
    let telemetry = json!({
        "specversion": "1.0",
        "id": "msg-0001",
        "type": "microsoft.iot.telemetry",
        "source": format!("{HOST}/digitaltwins/thermostat1"),
        "dataschema": "dtmi:example:com:thermostat;1",
        "datacontenttype": "application/json",
        "traceparent": TRACEPARENT,
        "data": {"temperature": 4.5, "errorCode": 201, "poweredOn": false}
    });
    let component_telemetry = json!({
        "specversion": "1.0",
        "id": "msg-0002",
        "type": "microsoft.iot.telemetry",
        "source": format!("{HOST}/digitaltwins/thermostat1"),
        "subject": "comp1.comp2",
        "dataschema": "dtmi:example:com:thermostatComponent;1",
        "datacontenttype": "application/json-patch+json; charset=utf-8",
        "traceparent": TRACEPARENT,
        "data": {"temperature": 30, "poweredOn": true}
    });
    [
        ("twin.create", floor_create),
        ("twin.create.room", room_create),
        ("twin.update", floor_update),
        ("twin.delete", floor_delete),
        ("rel.create", rel_create),
        ("rel.update", rel_update),
        ("rel.delete", rel_delete),
        ("telemetry", telemetry),
        ("telemetry.component", component_telemetry),
    ]
    .into_iter()
    .map(|(name, value)| (name, JsonEvent::from_value(value).expect("valid event")))
    .collect()
}

const ALL: &[&str] = &[
    "twin.create",
    "twin.create.room",
    "twin.update",
    "twin.delete",
    "rel.create",
    "rel.update",
    "rel.delete",
    "telemetry",
    "telemetry.component",
];
const NOTIFICATIONS: &[&str] = &[
    "twin.create",
    "twin.create.room",
    "twin.update",
    "twin.delete",
    "rel.create",
    "rel.update",
    "rel.delete",
];

/// Asserts that `filter` matches exactly the events named in `expected` among `adt_events`.
fn assert_matches_exactly(filter: &str, expected: &[&str]) {
    let parsed = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    for (name, event) in adt_events() {
        assert_eq!(
            parsed.matches(&event),
            expected.contains(&name),
            "filter {filter:?} on event {name}"
        );
    }
}

#[test]
fn documented_examples_match_the_right_events() {
    let table: &[(&str, &[&str])] = &[
        // CR: the true/false row.
        ("true", ALL),
        ("false", &[]),
        // DP EventRoute examples.
        (
            "type = 'Microsoft.DigitalTwins.Twin.Create'",
            &["twin.create", "twin.create.room"],
        ),
        (
            "type = 'Microsoft.DigitalTwins.Twin.Create' OR type = 'microsoft.iot.telemetry'",
            &[
                "twin.create",
                "twin.create.room",
                "telemetry",
                "telemetry.component",
            ],
        ),
        // CR filter table, one row each.
        (
            "source = 'contoso-adt.api.wus2.digitaltwins.azure.net'",
            NOTIFICATIONS,
        ),
        (
            "source = 'contoso-adt.api.wus2.digitaltwins.azure.net/digitaltwins/thermostat1'",
            &["telemetry", "telemetry.component"],
        ),
        ("subject = 'floor1'", &["twin.create", "twin.update"]),
        (
            "subject = 'floor1/relationships/rel1'",
            &["rel.create", "rel.update", "rel.delete"],
        ),
        ("subject = 'comp1.comp2'", &["telemetry.component"]),
        (
            "dataschema = 'dtmi:example:com:thermostat;1'",
            &["telemetry"],
        ),
        (
            "datacontenttype = 'application/json'",
            &[
                "twin.create",
                "twin.create.room",
                "twin.update",
                "twin.delete",
                "rel.create",
                "rel.update",
                "rel.delete",
                "telemetry",
            ],
        ),
        ("specversion = '1.0'", ALL),
        (
            "$body.modelId = 'dtmi:example:com:floor;1'",
            &["twin.update", "rel.update"],
        ),
        // CR data types table.
        (
            "STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')",
            &["twin.create", "twin.delete"],
        ),
        (
            "CONTAINS(subject, 'floor1')",
            &[
                "twin.create",
                "twin.update",
                "rel.create",
                "rel.update",
                "rel.delete",
            ],
        ),
        ("$body.errorCode > 200", &["twin.create", "telemetry"]),
        (
            "$body.temperature <= 5.5",
            &["twin.create.room", "telemetry"],
        ),
        (
            "$body.poweredOn = true",
            &["twin.create", "telemetry.component"],
        ),
        ("$body.prop != null", &["twin.create"]),
        // CR functions table.
        (
            "ENDS_WITH($body.$metadata.$model, 'floor;1')",
            &["twin.create"],
        ),
        // CR operators table.
        (
            "(type != 'microsoft.iot.telemetry' OR datacontenttype = 'application/json') OR (specversion != '1.0')",
            &[
                "twin.create",
                "twin.create.room",
                "twin.update",
                "twin.delete",
                "rel.create",
                "rel.update",
                "rel.delete",
                "telemetry",
            ],
        ),
        // The legacy form from ADT's C# sample and the Java SDK tests, lower-case `or` included.
        (
            "$eventType = 'DigitalTwinTelemetryMessages' or $eventType = 'DigitalTwinLifecycleNotification'",
            &[
                "twin.create",
                "twin.create.room",
                "twin.delete",
                "telemetry",
                "telemetry.component",
            ],
        ),
        (
            "$eventType = 'DigitalTwinChangeNotification'",
            &["twin.update"],
        ),
        (
            "$eventType = 'DigitalTwinRelationshipChangeNotification'",
            &["rel.create", "rel.update", "rel.delete"],
        ),
        (
            "$eventType != 'DigitalTwinTelemetryMessages'",
            NOTIFICATIONS,
        ),
    ];
    for (filter, expected) in table {
        assert_matches_exactly(filter, expected);
    }
}

#[test]
fn every_documented_type_string_selects_only_its_events() {
    let types = [
        (
            "Microsoft.DigitalTwins.Twin.Create",
            &["twin.create", "twin.create.room"][..],
        ),
        ("Microsoft.DigitalTwins.Twin.Update", &["twin.update"]),
        ("Microsoft.DigitalTwins.Twin.Delete", &["twin.delete"]),
        (
            "Microsoft.DigitalTwins.Relationship.Create",
            &["rel.create"],
        ),
        (
            "Microsoft.DigitalTwins.Relationship.Update",
            &["rel.update"],
        ),
        (
            "Microsoft.DigitalTwins.Relationship.Delete",
            &["rel.delete"],
        ),
        (
            "microsoft.iot.telemetry",
            &["telemetry", "telemetry.component"],
        ),
    ];
    for (event_type, expected) in types {
        assert_matches_exactly(&format!("type = '{event_type}'"), expected);
    }
    // Values are case-sensitive: ADT's own casing differs between telemetry and the rest.
    assert_matches_exactly("type = 'Microsoft.IoT.Telemetry'", &[]);
    assert_matches_exactly("type = 'microsoft.digitaltwins.twin.create'", &[]);
}

#[test]
fn arrays_are_never_looked_into() {
    // `patch` is an array: a dotted path through it finds nothing, for any operator.
    assert_matches_exactly("$body.patch.path = '/temperature'", &[]);
    assert_matches_exactly("$body.patch.path != '/temperature'", &[]);
    // The array itself is present and not null, and that is all a filter can say about it.
    assert_matches_exactly("$body.patch != null", &["twin.update", "rel.update"]);
    assert_matches_exactly("$body.patch = 'x'", &[]);
    assert_matches_exactly("$body.patch != 'x'", &[]);
}

/// A small JSON event with a `data` payload, for the edge cases.
fn event_with(event_type: &str, subject: Option<&str>, data: Value) -> JsonEvent {
    let mut value = json!({
        "specversion": "1.0", "id": "e1", "source": HOST, "type": event_type, "data": data,
    });
    if let (Some(subject), Some(fields)) = (subject, value.as_object_mut()) {
        fields.insert("subject".into(), subject.into());
    }
    JsonEvent::from_value(value).expect("valid event")
}

fn matches(filter: &str, event: &JsonEvent) -> bool {
    Filter::parse(filter)
        .unwrap_or_else(|e| panic!("{filter:?}: {e}"))
        .matches(event)
}

#[test]
fn and_binds_tighter_than_or() {
    let filter = Filter::parse("type = 'A' OR type = 'B' AND subject = 'x'").unwrap();
    let leaf = |attribute, text: &str| Expr::Compare {
        operand: Operand::Attribute(attribute),
        op: CompareOp::Eq,
        value: Literal::Str(text.into()),
    };
    assert_eq!(
        filter.expr(),
        &Expr::Or(vec![
            leaf(Attribute::Type, "A"),
            Expr::And(vec![
                leaf(Attribute::Type, "B"),
                leaf(Attribute::Subject, "x")
            ]),
        ])
    );
    // Were OR tighter, type A with subject y would fail `(A OR B) AND subject = 'x'`.
    assert!(filter.matches(&event_with("A", Some("y"), json!({}))));
    assert!(filter.matches(&event_with("B", Some("x"), json!({}))));
    assert!(!filter.matches(&event_with("B", Some("y"), json!({}))));
    // Parentheses override it.
    let grouped = Filter::parse("(type = 'A' OR type = 'B') AND subject = 'x'").unwrap();
    assert!(!grouped.matches(&event_with("A", Some("y"), json!({}))));
    assert!(grouped.matches(&event_with("A", Some("x"), json!({}))));
}

#[test]
fn nesting_is_kept_and_evaluated() {
    let filter =
        Filter::parse("((type = 'A' AND (subject = 'x' OR subject = 'y')) OR (type = 'B'))")
            .unwrap();
    assert!(filter.matches(&event_with("A", Some("y"), json!({}))));
    assert!(!filter.matches(&event_with("A", Some("z"), json!({}))));
    assert!(filter.matches(&event_with("B", None, json!({}))));
    assert_eq!(
        filter.to_string(),
        "type = 'A' AND (subject = 'x' OR subject = 'y') OR type = 'B'"
    );
    // Grouping the same operator is kept, so the printed form parses to the same tree.
    let grouped = Filter::parse("(type = 'A' OR type = 'B') OR type = 'C'").unwrap();
    assert_eq!(
        grouped.to_string(),
        "(type = 'A' OR type = 'B') OR type = 'C'"
    );
    assert_eq!(Filter::parse(&grouped.to_string()).unwrap(), grouped);
}

#[test]
fn numbers_compare_numerically_across_int_and_double() {
    let five = event_with("t", None, json!({"n": 5, "x": 5.0, "neg": -4.5}));
    assert!(matches("$body.n = 5", &five));
    assert!(matches("$body.n = 5.0", &five));
    assert!(matches("$body.x = 5", &five));
    assert!(matches("$body.n > 4.5", &five));
    assert!(matches("$body.n < 5.5", &five));
    assert!(!matches("$body.n > 5.0", &five));
    assert!(matches("$body.n >= 5.0", &five));
    assert!(matches("$body.x <= 5", &five));
    assert!(matches("$body.neg > -5", &five));
    assert!(matches("$body.neg < -4", &five));
    assert!(!matches("$body.neg != -4.5", &five));
    // Above 2^53 a cast to f64 would round 2^53 + 1 down to 2^53 and call them equal.
    let big = event_with("t", None, json!({"n": 9_007_199_254_740_993_i64}));
    assert!(!matches("$body.n = 9007199254740992.0", &big));
    assert!(matches("$body.n != 9007199254740992.0", &big));
    assert!(matches("$body.n > 9007199254740992.0", &big));
    assert!(matches("$body.n = 9007199254740993", &big));
    let extremes = event_with("t", None, json!({"max": i64::MAX, "min": i64::MIN}));
    assert!(matches("$body.max < 9223372036854775808.0", &extremes));
    assert!(matches("$body.min = -9223372036854775808.0", &extremes));
    assert!(matches("$body.min = -9223372036854775808", &extremes));
}

#[test]
fn strings_compare_by_byte_order_and_case() {
    let event = event_with("t", Some("b"), json!({"s": "a", "upper": "B", "e": "é"}));
    assert!(matches("$body.s < 'b'", &event));
    assert!(matches("$body.upper < 'a'", &event)); // 'B' (0x42) sorts before 'a' (0x61)
    assert!(matches("$body.e > 'z'", &event)); // UTF-8 bytes, not locale order
    assert!(matches("subject >= 'b'", &event));
    assert!(!matches("subject > 'b'", &event));
    assert!(!matches("$body.upper = 'b'", &event));
}

#[test]
fn missing_values_fail_every_operator() {
    let telemetry = event_with("microsoft.iot.telemetry", None, json!({"a": {"b": 1}}));
    for filter in [
        "$body.missing = 5",
        "$body.missing != 5",
        "$body.missing < 5",
        "$body.missing = null",
        "$body.missing != null",
        "$body.a.missing != 'x'",
        "$body.a.b.c != 1", // steps through a number
        "subject = 'x'",
        "subject != 'x'",
        "subject != null",
        "time < '2030'",
        "STARTS_WITH(subject, '')",
        "ENDS_WITH($body.missing, '')",
    ] {
        assert!(!matches(filter, &telemetry), "{filter}");
    }
    let with_subject = event_with("t", Some("comp1"), json!({}));
    assert!(matches("subject != null", &with_subject));
    assert!(matches("subject != 'x'", &with_subject));
    // Attributes are never null, so `= null` cannot hold.
    assert!(!matches("subject = null", &with_subject));
    // No data at all: every $body test fails.
    let no_data = JsonEvent::from_value(
        json!({"specversion": "1.0", "id": "e", "source": HOST, "type": "t"}),
    )
    .unwrap();
    assert!(!matches("$body.x != null", &no_data));
    assert!(matches("type = 't'", &no_data));
}

#[test]
fn null_is_only_equal_to_null() {
    let event = event_with("t", None, json!({"p": null, "q": 0, "r": ""}));
    assert!(matches("$body.p = null", &event));
    assert!(!matches("$body.p != null", &event));
    // null against any other literal is a type mismatch: false, `!=` included.
    assert!(!matches("$body.p != 'x'", &event));
    assert!(!matches("$body.p != 0", &event));
    assert!(!matches("$body.p != false", &event));
    assert!(!matches("$body.q = null", &event));
    assert!(matches("$body.q != null", &event));
    assert!(matches("$body.r != null", &event));
}

#[test]
fn different_types_never_compare() {
    let event = event_with(
        "t",
        None,
        json!({"n": 21, "s": "21", "b": true, "o": {"k": 1}, "arr": [1]}),
    );
    for filter in [
        "$body.n = '21'",
        "$body.n != '21'",
        "$body.s = 21",
        "$body.s != 21",
        "$body.s > 1",
        "$body.b = 1",
        "$body.b != 1",
        "$body.b != 'true'",
        "$body.n != true",
        "$body.o = 'x'",
        "$body.o != 'x'",
        "$body.o != 1",
        "$body.arr != 1",
        "STARTS_WITH($body.n, '2')",
        "CONTAINS($body.o, 'k')",
    ] {
        assert!(!matches(filter, &event), "{filter}");
    }
    assert!(matches("$body.o != null", &event));
    assert!(matches("$body.b != false", &event));
    assert!(matches("$body.b = true", &event));
}

#[test]
fn functions_are_case_sensitive_on_values() {
    let event = event_with("t", Some("Floor1/relationships/r"), json!({}));
    assert!(matches("STARTS_WITH(subject, 'Floor1')", &event));
    assert!(!matches("STARTS_WITH(subject, 'floor1')", &event));
    assert!(matches("ENDS_WITH(subject, '/r')", &event));
    assert!(matches("CONTAINS(subject, 'relationships')", &event));
    assert!(!matches("CONTAINS(subject, 'Relationships')", &event));
    assert!(matches("CONTAINS(subject, '')", &event));
}

#[test]
fn quotes_are_escaped_by_doubling() {
    let event = event_with(
        "t",
        None,
        json!({"name": "O'Brien", "path": "C:\\temp", "q": "''"}),
    );
    assert!(matches("$body.name = 'O''Brien'", &event));
    assert!(matches("$body.q = ''''''", &event));
    // A backslash is an ordinary character, not an escape.
    assert!(matches("$body.path = 'C:\\temp'", &event));
    let filter = Filter::parse("$body.name = 'O''Brien'").unwrap();
    assert_eq!(
        filter.expr(),
        &Expr::Compare {
            operand: Operand::Body(vec![Box::from("name")].into_boxed_slice()),
            op: CompareOp::Eq,
            value: Literal::Str("O'Brien".into()),
        }
    );
    assert_eq!(filter.to_string(), "$body.name = 'O''Brien'");
    // Non-ASCII text passes through untouched.
    let unicode = Filter::parse("CONTAINS(subject, 'étage ☃')").unwrap();
    assert!(unicode.matches(&event_with("t", Some("2e étage ☃"), json!({}))));
}

#[test]
fn keywords_and_function_names_ignore_case_but_attributes_do_not() {
    let event = event_with("A", Some("floor1"), json!({"on": true, "p": null}));
    for filter in [
        "type = 'A' or type = 'B'",
        "type = 'A' Or type = 'B'",
        "type = 'A' and subject = 'floor1'",
        "starts_with(subject, 'floor')",
        "Ends_With(subject, '1')",
        "contains(subject, 'oor')",
        "$body.on = TRUE",
        "$body.p = NULL",
        "TRUE",
    ] {
        assert!(matches(filter, &event), "{filter}");
    }
    assert_eq!(Filter::parse("FALSE").unwrap().is_always(), Some(false));
    assert_eq!(
        Filter::parse("starts_with(subject, 'x') or $body.on = TRUE")
            .unwrap()
            .to_string(),
        "STARTS_WITH(subject, 'x') OR $body.on = true"
    );
    let error = Filter::parse("TYPE = 'A'").unwrap_err();
    assert_eq!(
        error.message,
        "unknown attribute 'TYPE' (names are case-sensitive): did you mean 'type'?"
    );
    assert!(Filter::parse("$Body.x = 1").is_err());
}

#[test]
fn legacy_event_type_maps_to_type_sets() {
    let expected = [
        (
            "DigitalTwinTelemetryMessages",
            vec!["microsoft.iot.telemetry"],
        ),
        (
            "DigitalTwinLifecycleNotification",
            vec![
                "Microsoft.DigitalTwins.Twin.Create",
                "Microsoft.DigitalTwins.Twin.Delete",
            ],
        ),
        (
            "DigitalTwinChangeNotification",
            vec!["Microsoft.DigitalTwins.Twin.Update"],
        ),
        (
            "DigitalTwinRelationshipChangeNotification",
            vec![
                "Microsoft.DigitalTwins.Relationship.Create",
                "Microsoft.DigitalTwins.Relationship.Update",
                "Microsoft.DigitalTwins.Relationship.Delete",
            ],
        ),
    ];
    let all_types: Vec<&str> = expected.iter().flat_map(|(_, t)| t.clone()).collect();
    for (source, types) in &expected {
        let equal = Filter::parse(&format!("$eventType = '{source}'")).unwrap();
        let not_equal = Filter::parse(&format!("$eventType != '{source}'")).unwrap();
        assert_eq!(
            equal.expr(),
            &Expr::EventType {
                op: EqualityOp::Eq,
                source: RoutingSource::from_name(source).unwrap(),
            }
        );
        for event_type in &all_types {
            let event = event_with(event_type, None, json!({}));
            assert_eq!(
                equal.matches(&event),
                types.contains(event_type),
                "{source} {event_type}"
            );
            assert_eq!(
                not_equal.matches(&event),
                !types.contains(event_type),
                "{source} {event_type}"
            );
        }
        assert_eq!(equal.to_string(), format!("$eventType = '{source}'"));
    }
}

#[test]
fn is_always_only_for_the_whole_filter_constants() {
    assert_eq!(Filter::parse("true").unwrap().is_always(), Some(true));
    assert_eq!(Filter::parse("  false\n").unwrap().is_always(), Some(false));
    assert_eq!(Filter::parse("type = 'x'").unwrap().is_always(), None);
    let event = event_with("t", None, json!({}));
    assert!(Filter::parse("true").unwrap().matches(&event));
    assert!(!Filter::parse("false").unwrap().matches(&event));
}

#[test]
fn filter_reads_through_from_str_and_trait_objects() {
    let filter: Filter = "type = 't'".parse().unwrap();
    let event = event_with("t", None, json!({}));
    let dynamic: &dyn FilterInput = &event;
    assert!(filter.matches(dynamic));
}

/// Asserts the exact error for `filter`.
fn assert_refused(filter: &str, column: usize, message: &str) {
    match Filter::parse(filter) {
        Ok(parsed) => panic!("{filter:?} was accepted as {parsed}"),
        Err(error) => assert_eq!(
            error,
            FilterError {
                column,
                message: message.to_owned()
            },
            "filter {filter:?}"
        ),
    }
}

const ATTRIBUTES: &str =
    "type, source, subject, id, time, specversion, dataschema, datacontenttype, traceparent";

#[test]
fn refusals_name_the_column_and_the_fix() {
    let empty = "empty filter; write true to route every event or false to disable the route";
    assert_refused("", 1, empty);
    assert_refused(" \t\n", 1, empty);
    assert_refused(
        "NOT type = 'x'",
        1,
        "found 'NOT': ADT route filters have no NOT operator",
    );
    assert_refused(
        "type = 'a' AND not subject = 'b'",
        16,
        "found 'not': ADT route filters have no NOT operator",
    );
    assert_refused(
        "type NOT IN ('a')",
        6,
        "found 'NOT': ADT route filters have no NOT operator",
    );
    assert_refused(
        "type IN ('a', 'b')",
        6,
        "found 'IN': ADT route filters have no IN operator; combine '=' comparisons with OR",
    );
    assert_refused(
        "type != 'x' AND !(subject = 'y')",
        17,
        "found '!': ADT route filters have no NOT operator; did you mean '!='?",
    );
    assert_refused(
        "$body.patch[0].path = '/temperature'",
        12,
        "found '[': ADT cannot filter on fields inside arrays (such as the patch of a Twin.Update)",
    );
    assert_refused(
        "foo = 'x'",
        1,
        &format!("unknown attribute 'foo'; expected one of {ATTRIBUTES}, or $body.<path>"),
    );
    assert_refused(
        "type = 'x' OR $foo = 1",
        15,
        &format!("unknown attribute '$foo'; expected one of {ATTRIBUTES}, or $body.<path>"),
    );
    assert_refused(
        "body.x = 1",
        1,
        "unknown attribute 'body' (names are case-sensitive): did you mean '$body.<path>'?",
    );
    assert_refused(
        "$eventtype = 'DigitalTwinChangeNotification'",
        1,
        "unknown attribute '$eventtype' (names are case-sensitive): did you mean '$eventType'?",
    );
    assert_refused(
        "LOWER(type) = 'x'",
        1,
        "unknown function 'LOWER'; expected STARTS_WITH, ENDS_WITH or CONTAINS",
    );
    assert_refused(
        "IS_DEFINED($body.x)",
        1,
        "unknown function 'IS_DEFINED'; expected STARTS_WITH, ENDS_WITH or CONTAINS; test a property with $body.<path> != null or = null instead",
    );
    assert_refused(
        "contains subject, 'x'",
        10,
        "expected '(' after contains, found 'subject'",
    );
    assert_refused(
        "type = 'x' garbage",
        12,
        "expected AND, OR or end of filter, found 'garbage'",
    );
    assert_refused(
        "type = 'x')",
        11,
        "expected AND, OR or end of filter, found ')'",
    );
    assert_refused(
        "type = 'x' 'y'",
        12,
        "expected AND, OR or end of filter, found string 'y'",
    );
    assert_refused(
        "type = 'abc",
        8,
        "unterminated string literal: missing closing quote (write '' for a quote inside a string)",
    );
    assert_refused(
        "$body",
        1,
        "'$body' alone is not a value; name a property inside the event data, e.g. $body.temperature",
    );
    assert_refused(
        "type = 'x' OR $body != null",
        15,
        "'$body' alone is not a value; name a property inside the event data, e.g. $body.temperature",
    );
    assert_refused("$body. = 5", 7, "expected a property name after '$body.'");
    assert_refused(
        "$body.a.$ = 5",
        9,
        "expected a property name after '$body.a.'",
    );
    assert_refused(
        "type = )",
        8,
        "expected a string literal after '=', found ')'",
    );
    assert_refused(
        "type = 5",
        8,
        "expected a string literal after '=', found '5'",
    );
    assert_refused(
        "type = true",
        8,
        "expected a string literal after '=', found 'true'",
    );
    assert_refused(
        "$body.x >= ",
        12,
        "expected a value (string, number, true, false or null) after '>=', found end of filter",
    );
    assert_refused(
        "$body.x = subject",
        11,
        "expected a value (string, number, true, false or null) after '=', found 'subject'",
    );
    assert_refused(
        "type 'x'",
        6,
        "expected a comparison operator (=, !=, <, <=, >, >=) after 'type', found string 'x'",
    );
    assert_refused(
        "$body.x < null",
        9,
        "'<' cannot compare with null: only '=' and '!=' can",
    );
    assert_refused(
        "$body.on >= TRUE",
        10,
        "'>=' cannot compare with TRUE: only '=' and '!=' can",
    );
    assert_refused(
        "(type = 'x'",
        12,
        "expected ')' to close the '(' at column 1, found end of filter",
    );
    assert_refused(
        "type = 'x' AND ()",
        17,
        "expected a condition (a comparison, STARTS_WITH, ENDS_WITH or CONTAINS), found ')'",
    );
    assert_refused(
        "type = 'x' AND",
        15,
        "expected a condition (a comparison, STARTS_WITH, ENDS_WITH or CONTAINS), found end of filter",
    );
    assert_refused(
        "'x' = type",
        1,
        "expected a condition (a comparison, STARTS_WITH, ENDS_WITH or CONTAINS), found string 'x'",
    );
    assert_refused(
        "STARTS_WITH(type, subject)",
        19,
        "expected a string literal as the second argument of STARTS_WITH, found 'subject'",
    );
    assert_refused(
        "ends_with('x', 'y')",
        11,
        "expected an attribute or $body.<path> as the first argument of ENDS_WITH, found string 'x'",
    );
    assert_refused(
        "CONTAINS(subject 'y')",
        18,
        "expected ',' after the first argument of CONTAINS, found string 'y'",
    );
    assert_refused(
        "CONTAINS(subject, 'y'",
        22,
        "expected ')' after the second argument of CONTAINS, found end of filter",
    );
    assert_refused(
        "CONTAINS($eventType, 'y')",
        10,
        "$eventType can only be compared with '=' or '!='",
    );
    assert_refused(
        "$eventType = 'DigitalTwinModelNotification'",
        14,
        "unknown routing source 'DigitalTwinModelNotification' for $eventType; expected one of DigitalTwinTelemetryMessages, DigitalTwinLifecycleNotification, DigitalTwinChangeNotification, DigitalTwinRelationshipChangeNotification",
    );
    assert_refused(
        "$eventType = 'digitaltwintelemetrymessages'",
        14,
        "unknown routing source 'digitaltwintelemetrymessages' for $eventType; expected one of DigitalTwinTelemetryMessages, DigitalTwinLifecycleNotification, DigitalTwinChangeNotification, DigitalTwinRelationshipChangeNotification",
    );
    assert_refused(
        "$eventType > 'DigitalTwinTelemetryMessages'",
        12,
        "$eventType can only be compared with '=' or '!='",
    );
    assert_refused(
        "$eventType = DigitalTwinTelemetryMessages",
        14,
        "expected a routing source name in quotes after '=', found 'DigitalTwinTelemetryMessages'",
    );
    assert_refused(
        "type == 'x'",
        6,
        "found '==': use '=' to compare for equality",
    );
    assert_refused(
        "type <> 'x'",
        6,
        "found '<>': use '!=' to compare for inequality",
    );
    assert_refused(
        "type = \"x\"",
        8,
        "unexpected character '\"'; string literals use single quotes",
    );
    assert_refused(
        "type = 'x' && subject = 'y'",
        12,
        "unexpected character '&'; use AND to combine conditions",
    );
    assert_refused(
        "true AND type = 'x'",
        6,
        "expected end of filter after a whole-filter true or false, found 'AND'",
    );
    assert_refused(
        "type = 'x' OR true",
        15,
        "found 'true': true and false stand alone as the whole filter, or as the value in a comparison such as $body.poweredOn = true",
    );
    assert_refused(
        "$body.x = 1e5",
        11,
        "invalid number '1e5'; numbers are written like 200, -5 or 5.5",
    );
    assert_refused(
        "$body.x = 5.",
        11,
        "invalid number '5.'; numbers are written like 200, -5 or 5.5",
    );
    assert_refused(
        "$body.x = 9223372036854775808",
        11,
        "integer '9223372036854775808' is out of range for a 64-bit integer",
    );
    assert_refused(
        "$body.x = - 5",
        11,
        "unexpected character '-'; a negative number is written like -5 or -2.5",
    );
    let huge = format!("$body.x = {}.0", "9".repeat(400));
    assert_refused(
        &huge,
        11,
        &format!("number '{}.0' is out of range", "9".repeat(400)),
    );
}

#[test]
fn columns_count_chars_not_bytes() {
    // 'é' and '☃' are two and three bytes; columns must still count one each.
    assert_refused(
        "subject = 'café ☃' AND fööd = 1",
        24,
        &format!("unknown attribute 'fööd'; expected one of {ATTRIBUTES}, or $body.<path>"),
    );
    assert_refused("subject = 'é' AND ☃", 19, "unexpected character '☃'");
    // Only ASCII whitespace separates tokens: a non-breaking space is reported, not skipped.
    assert_refused("subject\u{a0}= 'x'", 8, "unexpected character '\\u{a0}'");
}

#[test]
fn long_tokens_are_shortened_in_messages() {
    let long = "x".repeat(100);
    let error = Filter::parse(&format!("type = 'a' '{long}'")).unwrap_err();
    assert_eq!(error.column, 12);
    assert_eq!(
        error.message,
        format!(
            "expected AND, OR or end of filter, found string '{}…",
            "x".repeat(39)
        )
    );
}

#[test]
fn nesting_is_capped_without_overflowing_the_stack() {
    let ok = format!(
        "{}type = 'x'{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    let filter = Filter::parse(&ok).unwrap();
    assert!(filter.matches(&event_with("x", None, json!({}))));
    let too_deep = format!(
        "{}type = 'x'{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_refused(
        &too_deep,
        MAX_DEPTH + 1,
        "too deeply nested: at most 64 levels of parentheses",
    );
    // Far deeper than any stack would take: still an error, not a crash.
    let error = Filter::parse(&"(".repeat(1_000_000)).unwrap_err();
    assert_eq!(error.column, MAX_DEPTH + 1);
}

#[test]
fn long_chains_are_flat() {
    // 10,000 ORs recurse no deeper than one, in parsing, matching, printing and dropping.
    let chain = (0..10_000)
        .map(|i| format!("subject = 's{i}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let filter = Filter::parse(&chain).unwrap();
    assert!(filter.matches(&event_with("t", Some("s9999"), json!({}))));
    assert!(!filter.matches(&event_with("t", Some("s10000"), json!({}))));
    assert_eq!(filter.to_string(), chain);
}

#[test]
fn json_events_are_checked() {
    assert!(matches!(
        JsonEvent::from_json("not json"),
        Err(JsonEventError::Json(_))
    ));
    assert!(matches!(
        JsonEvent::from_value(json!([1])),
        Err(JsonEventError::NotAnObject)
    ));
    assert!(matches!(
        JsonEvent::from_value(json!({"specversion": "1.0", "id": "1", "source": "s"})),
        Err(JsonEventError::MissingAttribute("type"))
    ));
    assert!(matches!(
        JsonEvent::from_value(
            json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "subject": 5})
        ),
        Err(JsonEventError::NotAString("subject"))
    ));
    let event = JsonEvent::from_json(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","subject":null,"data":{"a":{"b":[1]},"big":18446744073709551615}}"#,
    )
    .unwrap();
    assert_eq!(event.attribute(Attribute::Subject), None);
    assert_eq!(event.attribute(Attribute::Type), Some("t"));
    let path =
        |segments: &[&str]| -> Vec<Box<str>> { segments.iter().map(|s| Box::from(*s)).collect() };
    assert_eq!(event.body(&path(&["a"])), Some(BodyValue::Object));
    assert_eq!(event.body(&path(&["a", "b"])), Some(BodyValue::Array));
    assert_eq!(event.body(&path(&["a", "c"])), None);
    assert_eq!(
        event.body(&path(&["big"])),
        Some(BodyValue::Float(18_446_744_073_709_551_615.0))
    );
    assert_eq!(
        JsonEvent::from_value(json!({"x": 1}))
            .unwrap_err()
            .to_string(),
        "missing required attribute 'id'"
    );
}

#[test]
fn parsed_trees_have_the_documented_shape() {
    let filter =
        Filter::parse("STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')").unwrap();
    assert_eq!(
        filter.expr(),
        &Expr::Function {
            function: StringFunction::StartsWith,
            operand: Operand::Body(
                vec![Box::from("$metadata"), Box::from("$model")].into_boxed_slice()
            ),
            pattern: "dtmi:example:com:floor".into(),
        }
    );
    let numbers = Filter::parse("$body.a = -7 AND $body.b = 1.0 AND $body.c != 0.25").unwrap();
    assert_eq!(
        numbers.to_string(),
        "$body.a = -7 AND $body.b = 1.0 AND $body.c != 0.25"
    );
    let Expr::And(children) = numbers.expr() else {
        panic!("expected AND")
    };
    assert!(matches!(
        &children[..],
        [
            Expr::Compare { value: Literal::Int(-7), .. },
            Expr::Compare { value: Literal::Float(b), .. },
            Expr::Compare { value: Literal::Float(c), .. },
        ] if *b == 1.0 && *c == 0.25
    ));
}
