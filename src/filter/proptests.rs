//! Property tests: printing round-trips, parsing never panics, and the compiled matcher agrees
//! with a plain reading of the tree.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::{
    Attribute, BodyValue, CompareOp, EqualityOp, Expr, Filter, FilterInput, JsonEvent, Literal,
    Operand, RoutingSource, StringFunction,
};

/// Where a generated tree takes its leaves from: anything (round-trips) or small pools that
/// make matches likely (semantics).
#[derive(Clone)]
struct Leaves {
    segment: BoxedStrategy<Box<str>>,
    string: BoxedStrategy<Box<str>>,
    int: BoxedStrategy<i64>,
    float: BoxedStrategy<f64>,
}

fn wide() -> Leaves {
    Leaves {
        segment: "\\$?[A-Za-z0-9_]{1,8}".prop_map(Box::from).boxed(),
        string: any::<String>().prop_map(Box::from).boxed(),
        int: any::<i64>().boxed(),
        float: any::<f64>()
            .prop_filter("literals are finite", |x| x.is_finite())
            .boxed(),
    }
}

const SEGMENTS: [&str; 3] = ["a", "b", "$m"];
const STRINGS: [&str; 5] = ["", "x", "y", "xy", "Microsoft.DigitalTwins.Twin.Create"];
const FLOATS: [f64; 5] = [-1.5, 0.0, 2.0, 2.5, 1e15];

fn narrow() -> Leaves {
    Leaves {
        segment: select(&SEGMENTS[..]).prop_map(Box::from).boxed(),
        string: select(&STRINGS[..]).prop_map(Box::from).boxed(),
        int: (-3_i64..=3).boxed(),
        float: select(&FLOATS[..]).boxed(),
    }
}

fn attribute() -> impl Strategy<Value = Attribute> {
    select(&Attribute::ALL[..])
}

fn any_op() -> impl Strategy<Value = CompareOp> {
    select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ])
}

fn equality_op() -> impl Strategy<Value = CompareOp> {
    select(vec![CompareOp::Eq, CompareOp::Ne])
}

/// One leaf of the shapes the parser produces.
fn leaf(leaves: Leaves) -> BoxedStrategy<Expr> {
    let path = prop::collection::vec(leaves.segment.clone(), 1..4)
        .prop_map(|segments| segments.into_boxed_slice());
    let operand = prop_oneof![
        attribute().prop_map(Operand::Attribute),
        path.clone().prop_map(Operand::Body),
    ];
    let ordered_literal = prop_oneof![
        leaves.string.clone().prop_map(Literal::Str),
        leaves.int.clone().prop_map(Literal::Int),
        leaves.float.clone().prop_map(Literal::Float),
    ];
    let equality_literal = prop_oneof![any::<bool>().prop_map(Literal::Bool), Just(Literal::Null)];
    let compare = |operand, op, value| Expr::Compare { operand, op, value };
    prop_oneof![
        (attribute(), any_op(), leaves.string.clone()).prop_map(move |(a, op, s)| compare(
            Operand::Attribute(a),
            op,
            Literal::Str(s)
        )),
        (attribute(), equality_op()).prop_map(move |(a, op)| compare(
            Operand::Attribute(a),
            op,
            Literal::Null
        )),
        (path.clone(), any_op(), ordered_literal).prop_map(move |(p, op, v)| compare(
            Operand::Body(p),
            op,
            v
        )),
        (path, equality_op(), equality_literal).prop_map(move |(p, op, v)| compare(
            Operand::Body(p),
            op,
            v
        )),
        (select(&StringFunction::ALL[..]), operand, leaves.string).prop_map(
            |(function, operand, pattern)| Expr::Function {
                function,
                operand,
                pattern,
            }
        ),
        (
            select(vec![EqualityOp::Eq, EqualityOp::Ne]),
            select(&RoutingSource::ALL[..])
        )
            .prop_map(|(op, source)| Expr::EventType { op, source }),
    ]
    .boxed()
}

/// A whole filter: a constant, or a tree of AND/OR (each with at least two children).
fn filter_tree(leaves: Leaves) -> impl Strategy<Value = Expr> {
    let tree = leaf(leaves).prop_recursive(4, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
            prop::collection::vec(inner, 2..5).prop_map(Expr::Or),
        ]
    });
    prop_oneof![1 => any::<bool>().prop_map(Expr::Constant), 9 => tree]
}

/// Fragments of filter text, so that random soups get past the lexer into the parser.
fn soup() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        select(vec![
            "(",
            ")",
            ",",
            "AND",
            "or",
            "NOT",
            "IN",
            "true",
            "FALSE",
            "null",
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "==",
            "<>",
            "!",
            "type",
            "subject",
            "Type",
            "$body",
            "$body.",
            "$body.a",
            "$body.$metadata.$model",
            "$body.a[0]",
            "$eventType",
            "$foo",
            "STARTS_WITH",
            "contains",
            "ENDS_WITH(",
            "'x'",
            "'O''B'",
            "'",
            "''",
            "5",
            "-5",
            "2.5",
            "1e5",
            "-",
            "9223372036854775808",
            "'DigitalTwinTelemetryMessages'",
            "é",
            "\u{a0}",
            "\"",
            "&&",
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
    ];
    (
        prop::collection::vec(fragment, 0..24),
        prop::collection::vec(select(vec!["", " ", "  "]), 24),
    )
        .prop_map(|(fragments, gaps)| {
            let mut text = String::new();
            for (fragment, gap) in fragments.iter().zip(gaps.iter().cycle()) {
                text.push_str(fragment);
                text.push_str(gap);
            }
            text
        })
}

/// A valid filter with one edit: a char deleted, or a fragment inserted, somewhere. Most
/// such texts are refused, close to where the parser's decisions are made.
fn mutated_filter() -> impl Strategy<Value = String> {
    let insert = prop_oneof![
        select(vec![
            "(", ")", "'", "''", " AND", "OR ", "NOT ", "[0]", ".", "$", "-", "é"
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
    ];
    (
        filter_tree(wide()),
        any::<prop::sample::Index>(),
        prop::option::of(insert),
    )
        .prop_map(|(expr, at, insert)| {
            let mut chars: Vec<char> = expr.to_string().chars().collect();
            let at = at.index(chars.len() + 1);
            match insert {
                Some(fragment) => {
                    for (i, c) in fragment.chars().enumerate() {
                        chars.insert(at + i, c);
                    }
                }
                None if at < chars.len() => {
                    chars.remove(at);
                }
                None => {}
            }
            chars.into_iter().collect()
        })
}

/// What the tree means, read straight off the AST, independently of `compile`.
fn reference(expr: &Expr, event: &JsonEvent) -> bool {
    match expr {
        Expr::Constant(b) => *b,
        Expr::And(children) => children.iter().all(|c| reference(c, event)),
        Expr::Or(children) => children.iter().any(|c| reference(c, event)),
        Expr::EventType { op, source } => match event.attribute(Attribute::Type) {
            None => false,
            Some(t) => source.event_types().contains(&t) == (*op == EqualityOp::Eq),
        },
        Expr::Function {
            function,
            operand,
            pattern,
        } => match read(operand, event) {
            Some(BodyValue::Str(s)) => match function {
                StringFunction::StartsWith => s.starts_with(&**pattern),
                StringFunction::EndsWith => s.ends_with(&**pattern),
                StringFunction::Contains => s.contains(&**pattern),
            },
            _ => false,
        },
        Expr::Compare { operand, op, value } => {
            let Some(actual) = read(operand, event) else {
                return false;
            };
            match (actual, value) {
                (actual, Literal::Null) => match op {
                    CompareOp::Eq => actual == BodyValue::Null,
                    CompareOp::Ne => actual != BodyValue::Null,
                    _ => false,
                },
                (BodyValue::Str(a), Literal::Str(b)) => holds(a, *op, &**b),
                (BodyValue::Int(a), Literal::Int(b)) => holds(&a, *op, b),
                // The generated numbers stay far below 2^53, where f64 holds integers exactly.
                (BodyValue::Int(a), Literal::Float(b)) => holds(&(a as f64), *op, b),
                (BodyValue::Float(a), Literal::Int(b)) => holds(&a, *op, &(*b as f64)),
                (BodyValue::Float(a), Literal::Float(b)) => holds(&a, *op, b),
                (BodyValue::Bool(a), Literal::Bool(b)) => match op {
                    CompareOp::Eq => a == *b,
                    CompareOp::Ne => a != *b,
                    _ => false,
                },
                _ => false,
            }
        }
    }
}

fn read<'a>(operand: &Operand, event: &'a JsonEvent) -> Option<BodyValue<'a>> {
    match operand {
        Operand::Attribute(a) => event.attribute(*a).map(BodyValue::Str),
        Operand::Body(path) => event.body(path),
    }
}

fn holds<T: PartialOrd + ?Sized>(a: &T, op: CompareOp, b: &T) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

/// A JSON value from the small pools, nested up to three levels.
fn pool_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3_i64..=3).prop_map(Value::from),
        select(&FLOATS[..]).prop_map(Value::from),
        select(&STRINGS[..]).prop_map(Value::from),
        Just(json!([1, "x"])),
    ];
    scalar.prop_recursive(3, 16, 3, |inner| {
        prop::collection::btree_map(select(&SEGMENTS[..]).prop_map(str::to_owned), inner, 0..3)
            .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>()))
    })
}

fn pool_event() -> impl Strategy<Value = JsonEvent> {
    let types = vec![
        "Microsoft.DigitalTwins.Twin.Create",
        "Microsoft.DigitalTwins.Twin.Update",
        "Microsoft.DigitalTwins.Relationship.Delete",
        "microsoft.iot.telemetry",
        "x",
    ];
    let optional = prop::option::of(select(&STRINGS[..]));
    (
        select(types),
        prop::collection::vec(optional, 5),
        pool_value(),
    )
        .prop_map(|(event_type, optional, data)| {
            let mut fields = Map::new();
            fields.insert("specversion".into(), "1.0".into());
            fields.insert("id".into(), "x".into());
            fields.insert("source".into(), "y".into());
            fields.insert("type".into(), event_type.into());
            let names = [
                "subject",
                "time",
                "dataschema",
                "datacontenttype",
                "traceparent",
            ];
            for (name, value) in names.into_iter().zip(optional) {
                if let Some(value) = value {
                    fields.insert(name.into(), value.into());
                }
            }
            fields.insert("data".into(), data);
            JsonEvent::from_value(Value::Object(fields)).expect("generated events are valid")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn printing_then_parsing_gives_the_same_tree(expr in filter_tree(wide())) {
        let text = expr.to_string();
        let parsed = Filter::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?} failed at {}: {e}", e.column)))?;
        prop_assert_eq!(parsed.expr(), &expr, "printed as {:?}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
        check_parse_outcome(&text)?;
    }

    #[test]
    fn parsing_token_soup_never_panics(text in soup()) {
        check_parse_outcome(&text)?;
    }

    #[test]
    fn parsing_mutated_filters_never_panics(text in mutated_filter()) {
        check_parse_outcome(&text)?;
    }

    #[test]
    fn compiled_matching_agrees_with_the_tree(
        expr in filter_tree(narrow()),
        events in prop::collection::vec(pool_event(), 8),
    ) {
        let filter = Filter::parse(&expr.to_string()).expect("printed trees parse");
        for event in &events {
            prop_assert_eq!(
                filter.matches(event),
                reference(&expr, event),
                "filter {} on {:?}", filter, event
            );
        }
    }
}

/// Whatever `text` is: an accepted filter prints to text that parses back to the same tree;
/// a refusal points inside the text (or just past it) with a message in house style.
fn check_parse_outcome(text: &str) -> Result<(), TestCaseError> {
    match Filter::parse(text) {
        Ok(filter) => {
            let printed = filter.to_string();
            let again = Filter::parse(&printed)
                .map_err(|e| TestCaseError::fail(format!("{printed:?} from {text:?}: {e}")))?;
            prop_assert_eq!(again, filter);
        }
        Err(error) => {
            prop_assert!(error.column >= 1);
            prop_assert!(error.column <= text.chars().count() + 1);
            let first = error.message.chars().next();
            prop_assert!(
                first.is_some_and(|c| !c.is_uppercase()),
                "{}",
                error.message
            );
            prop_assert!(!error.message.ends_with('.'), "{}", error.message);
        }
    }
    Ok(())
}
