//! The tree [`Filter::matches`](super::Filter::matches) runs: built once from an [`Expr`], read
//! without allocating for every event.
//!
//! Compared with walking the parsed tree it: folds tests that can never hold (`type = null`:
//! attributes are never null) into constants; turns `$eventType` into the set of `type`
//! values it stands for; and orders the children of `AND`/`OR` so that cheap attribute tests
//! run before `$body` lookups (evaluation is pure, so the order does not change the result).

use std::cmp::Ordering;

use super::ast::{Attribute, CompareOp, EqualityOp, Expr, Literal, Operand, StringFunction};
use super::input::{BodyValue, FilterInput};

/// A compiled filter node.
#[derive(Debug, Clone)]
pub(super) enum Node {
    /// Always this result.
    Constant(bool),
    /// A test on a context attribute.
    Attribute { attribute: Attribute, test: StrTest },
    /// `type` is (or, `negated`, is present and is not) one of `types`.
    TypeIn {
        types: &'static [&'static str],
        negated: bool,
    },
    /// A test on a value inside `data`.
    Body {
        path: Box<[Box<str>]>,
        test: ValueTest,
    },
    /// Every child holds.
    All(Box<[Node]>),
    /// Some child holds.
    Any(Box<[Node]>),
}

/// A test on a context attribute, which is a string when present.
#[derive(Debug, Clone)]
pub(super) enum StrTest {
    /// `!= null`: the attribute is present.
    Present,
    /// A comparison with a string.
    Compare(CompareOp, Box<str>),
    /// A string function.
    Function(StringFunction, Box<str>),
}

/// A test on a value inside `data`.
#[derive(Debug, Clone)]
pub(super) enum ValueTest {
    /// `= null`: present and null.
    IsNull,
    /// `!= null`: present and not null.
    NotNull,
    /// A comparison with a string (ordinal).
    Str(CompareOp, Box<str>),
    /// A comparison with an integer.
    Int(CompareOp, i64),
    /// A comparison with a double.
    Float(CompareOp, f64),
    /// `= b` (`equal`) or `!= b`, on booleans only.
    Bool { value: bool, equal: bool },
    /// A string function.
    Function(StringFunction, Box<str>),
}

impl Node {
    /// Compiles a parsed tree.
    pub(super) fn compile(expr: &Expr) -> Node {
        match expr {
            Expr::Constant(b) => Node::Constant(*b),
            Expr::Compare { operand, op, value } => compare(operand, *op, value),
            Expr::Function {
                function,
                operand,
                pattern,
            } => match operand {
                Operand::Attribute(attribute) => Node::Attribute {
                    attribute: *attribute,
                    test: StrTest::Function(*function, pattern.clone()),
                },
                Operand::Body(path) => Node::Body {
                    path: path.clone(),
                    test: ValueTest::Function(*function, pattern.clone()),
                },
            },
            Expr::EventType { op, source } => Node::TypeIn {
                types: source.event_types(),
                negated: *op == EqualityOp::Ne,
            },
            Expr::And(children) => group(children, true),
            Expr::Or(children) => group(children, false),
        }
    }

    /// Whether the event passes.
    pub(super) fn eval<E: FilterInput + ?Sized>(&self, event: &E) -> bool {
        match self {
            Node::Constant(b) => *b,
            Node::Attribute { attribute, test } => match event.attribute(*attribute) {
                None => false,
                Some(value) => test.eval(value),
            },
            Node::TypeIn { types, negated } => match event.attribute(Attribute::Type) {
                None => false,
                Some(value) => types.contains(&value) != *negated,
            },
            Node::Body { path, test } => match event.body(path) {
                None => false,
                Some(value) => test.eval(value),
            },
            Node::All(children) => children.iter().all(|child| child.eval(event)),
            Node::Any(children) => children.iter().any(|child| child.eval(event)),
        }
    }

    /// A rough relative cost, used to run cheap children first.
    fn cost(&self) -> u8 {
        match self {
            Node::Constant(_) => 0,
            Node::Attribute { .. } | Node::TypeIn { .. } => 1,
            Node::Body { .. } => 2,
            Node::All(_) | Node::Any(_) => 3,
        }
    }
}

fn compare(operand: &Operand, op: CompareOp, value: &Literal) -> Node {
    match operand {
        Operand::Attribute(attribute) => {
            let test = match (value, op) {
                (Literal::Str(text), _) => StrTest::Compare(op, text.clone()),
                (Literal::Null, CompareOp::Ne) => StrTest::Present,
                // Attributes are strings or absent: `= null`, and any test against another
                // type (which the parser refuses anyway), is false for every event.
                _ => return Node::Constant(false),
            };
            Node::Attribute {
                attribute: *attribute,
                test,
            }
        }
        Operand::Body(path) => {
            let test = match (value, op) {
                (Literal::Null, CompareOp::Eq) => ValueTest::IsNull,
                (Literal::Null, CompareOp::Ne) => ValueTest::NotNull,
                (Literal::Bool(b), CompareOp::Eq | CompareOp::Ne) => ValueTest::Bool {
                    value: *b,
                    equal: op == CompareOp::Eq,
                },
                (Literal::Null | Literal::Bool(_), _) => return Node::Constant(false),
                (Literal::Str(text), _) => ValueTest::Str(op, text.clone()),
                (Literal::Int(n), _) => ValueTest::Int(op, *n),
                (Literal::Float(x), _) => ValueTest::Float(op, *x),
            };
            Node::Body {
                path: path.clone(),
                test,
            }
        }
    }
}

/// Compiles the children of an `AND` (`all`) or `OR`, folding constants.
fn group(children: &[Expr], all: bool) -> Node {
    let mut nodes = Vec::with_capacity(children.len());
    for child in children {
        match Node::compile(child) {
            // `false` decides an AND, `true` decides an OR.
            Node::Constant(b) if b != all => return Node::Constant(b),
            Node::Constant(_) => {}
            node => nodes.push(node),
        }
    }
    nodes.sort_by_key(Node::cost);
    match <[Node; 1]>::try_from(nodes) {
        Ok([only]) => only,
        // An empty AND holds; an empty OR does not.
        Err(nodes) if nodes.is_empty() => Node::Constant(all),
        Err(nodes) if all => Node::All(nodes.into_boxed_slice()),
        Err(nodes) => Node::Any(nodes.into_boxed_slice()),
    }
}

impl StrTest {
    fn eval(&self, value: &str) -> bool {
        match self {
            StrTest::Present => true,
            StrTest::Compare(op, literal) => op.holds(value.cmp(literal)),
            StrTest::Function(function, pattern) => function.apply(value, pattern),
        }
    }
}

impl ValueTest {
    /// Whether a present value passes. Different types never compare: the test is false
    /// whatever the operator, `!=` included; only `!= null` holds for any non-null value.
    fn eval(&self, value: BodyValue<'_>) -> bool {
        match (self, value) {
            (ValueTest::IsNull, value) => value == BodyValue::Null,
            (ValueTest::NotNull, value) => value != BodyValue::Null,
            (ValueTest::Str(op, literal), BodyValue::Str(s)) => op.holds(s.cmp(literal)),
            (ValueTest::Int(op, literal), BodyValue::Int(n)) => op.holds(n.cmp(literal)),
            (ValueTest::Int(op, literal), BodyValue::Float(x)) => {
                cmp_int_float(*literal, x).is_some_and(|o| op.holds(o.reverse()))
            }
            (ValueTest::Float(op, literal), BodyValue::Int(n)) => {
                cmp_int_float(n, *literal).is_some_and(|o| op.holds(o))
            }
            (ValueTest::Float(op, literal), BodyValue::Float(x)) => {
                x.partial_cmp(literal).is_some_and(|o| op.holds(o))
            }
            (ValueTest::Bool { value, equal }, BodyValue::Bool(b)) => (b == *value) == *equal,
            (ValueTest::Function(function, pattern), BodyValue::Str(s)) => {
                function.apply(s, pattern)
            }
            _ => false,
        }
    }
}

/// Orders an integer against a double exactly, `None` for NaN.
///
/// Casting the integer to f64 would round above 2^53 and call `2^53 + 1` equal to `2^53`; so
/// split the double into its integer part (exact in i64 once the range is checked) and its
/// fraction instead.
pub(super) fn cmp_int_float(n: i64, x: f64) -> Option<Ordering> {
    // 2^63 is exact in f64; i64 covers [-2^63, 2^63).
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() {
        return None;
    }
    if x >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if x < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = x.trunc();
    // In range and integral, so the cast is exact.
    let whole_int = whole as i64;
    Some(n.cmp(&whole_int).then_with(|| {
        // Same integer part: the fraction (exact, |fraction| < 1) decides.
        let fraction = x - whole;
        0.0_f64.partial_cmp(&fraction).unwrap_or(Ordering::Equal)
    }))
}
