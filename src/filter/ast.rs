//! The parsed filter tree and its canonical printing.
//!
//! The tree keeps what the user wrote (down to `(a OR b) OR c` versus `a OR b OR c`) so that
//! printing it and parsing the result gives the same tree back. Matching does not walk this
//! tree: the private `compile` module turns it into a form built for speed.

use std::fmt;

/// A CloudEvents context attribute a filter can read.
///
/// `id`, `time` and `traceparent` are not in ADT's filter table but every ADT event carries
/// them, so the simulator accepts them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// `type`, e.g. `Microsoft.DigitalTwins.Twin.Create` or `microsoft.iot.telemetry`.
    Type,
    /// `source`, the instance host name (plus `/digitaltwins/<twin-id>` for telemetry).
    Source,
    /// `subject`, the twin id, `<twin-id>/relationships/<id>`, or a telemetry component path.
    Subject,
    /// `id`, unique per event together with `source`.
    Id,
    /// `time`, the RFC 3339 time of the operation (absent on telemetry).
    Time,
    /// `specversion`, always `1.0`.
    SpecVersion,
    /// `dataschema`, the model id of a telemetry message.
    DataSchema,
    /// `datacontenttype`, e.g. `application/json`.
    DataContentType,
    /// `traceparent`, the W3C trace context extension attribute.
    TraceParent,
}

impl Attribute {
    /// Every attribute, in the order error messages list them.
    pub const ALL: [Attribute; 9] = [
        Attribute::Type,
        Attribute::Source,
        Attribute::Subject,
        Attribute::Id,
        Attribute::Time,
        Attribute::SpecVersion,
        Attribute::DataSchema,
        Attribute::DataContentType,
        Attribute::TraceParent,
    ];

    /// The attribute's name as written in a filter and in a structured CloudEvent.
    pub const fn name(self) -> &'static str {
        match self {
            Attribute::Type => "type",
            Attribute::Source => "source",
            Attribute::Subject => "subject",
            Attribute::Id => "id",
            Attribute::Time => "time",
            Attribute::SpecVersion => "specversion",
            Attribute::DataSchema => "dataschema",
            Attribute::DataContentType => "datacontenttype",
            Attribute::TraceParent => "traceparent",
        }
    }

    /// The attribute with exactly this name (names are case-sensitive, as in ADT).
    pub fn from_name(name: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The left-hand side of a comparison or the first argument of a function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A context attribute such as `type`.
    Attribute(Attribute),
    /// `$body.<path>`: the dotted path into the event's `data`, one element per segment
    /// (`$body.$metadata.$model` is `["$metadata", "$model"]`). Never empty.
    Body(Box<[Box<str>]>),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Attribute(attribute) => attribute.fmt(f),
            Operand::Body(path) => {
                f.write_str("$body")?;
                for segment in path {
                    write!(f, ".{segment}")?;
                }
                Ok(())
            }
        }
    }
}

/// A literal on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `'text'`, with `''` standing for one quote inside.
    Str(Box<str>),
    /// An integer such as `200` or `-5`.
    Int(i64),
    /// A number with a fractional part such as `5.5`. Always finite.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(text) => write_string(f, text),
            Literal::Int(n) => write!(f, "{n}"),
            Literal::Float(x) => {
                // `{}` prints the shortest digits that read back to the same f64 and never uses
                // an exponent, but drops the fraction of whole numbers: `1.0` prints as `1`,
                // which would read back as an integer.
                let text = x.to_string();
                f.write_str(&text)?;
                if !text.contains('.') {
                    f.write_str(".0")?;
                }
                Ok(())
            }
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// Prints `text` as a single-quoted literal, doubling the quotes inside it.
fn write_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("'")?;
    let mut rest = text;
    while let Some(at) = rest.find('\'') {
        let (before, after) = rest.split_at(at);
        f.write_str(before)?;
        f.write_str("''")?;
        rest = after.get(1..).unwrap_or("");
    }
    f.write_str(rest)?;
    f.write_str("'")
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as written in a filter.
    pub const fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Whether `left op right` holds, given how `left` orders against `right`.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CompareOp::Eq => ordering == Equal,
            CompareOp::Ne => ordering != Equal,
            CompareOp::Lt => ordering == Less,
            CompareOp::Le => ordering != Greater,
            CompareOp::Gt => ordering == Greater,
            CompareOp::Ge => ordering != Less,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// One of the three string functions ADT documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringFunction {
    /// `STARTS_WITH(x, 'y')`
    StartsWith,
    /// `ENDS_WITH(x, 'y')`
    EndsWith,
    /// `CONTAINS(x, 'y')`
    Contains,
}

impl StringFunction {
    /// Every function, in the order error messages list them.
    pub const ALL: [StringFunction; 3] = [
        StringFunction::StartsWith,
        StringFunction::EndsWith,
        StringFunction::Contains,
    ];

    /// The canonical (upper-case) name; parsing ignores case.
    pub const fn name(self) -> &'static str {
        match self {
            StringFunction::StartsWith => "STARTS_WITH",
            StringFunction::EndsWith => "ENDS_WITH",
            StringFunction::Contains => "CONTAINS",
        }
    }

    /// The function with this name, in any case.
    pub fn from_name(name: &str) -> Option<StringFunction> {
        StringFunction::ALL
            .into_iter()
            .find(|function| function.name().eq_ignore_ascii_case(name))
    }

    /// Applies the function to a string value.
    pub fn apply(self, value: &str, pattern: &str) -> bool {
        match self {
            StringFunction::StartsWith => value.starts_with(pattern),
            StringFunction::EndsWith => value.ends_with(pattern),
            StringFunction::Contains => value.contains(pattern),
        }
    }
}

impl fmt::Display for StringFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The operators the legacy `$eventType` form accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EqualityOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
}

impl fmt::Display for EqualityOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EqualityOp::Eq => "=",
            EqualityOp::Ne => "!=",
        })
    }
}

/// A routing-source name of the legacy `$eventType = '…'` form, which ADT still accepts (its
/// own C# sample and the Java SDK tests use it) and which stands for a set of `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingSource {
    /// `DigitalTwinTelemetryMessages`: `microsoft.iot.telemetry`.
    TelemetryMessages,
    /// `DigitalTwinLifecycleNotification`: twin create and delete.
    LifecycleNotification,
    /// `DigitalTwinChangeNotification`: twin update.
    ChangeNotification,
    /// `DigitalTwinRelationshipChangeNotification`: relationship create, update and delete.
    RelationshipChangeNotification,
}

impl RoutingSource {
    /// Every routing source, in the order error messages list them.
    pub const ALL: [RoutingSource; 4] = [
        RoutingSource::TelemetryMessages,
        RoutingSource::LifecycleNotification,
        RoutingSource::ChangeNotification,
        RoutingSource::RelationshipChangeNotification,
    ];

    /// The name as written between the quotes (case-sensitive).
    pub const fn name(self) -> &'static str {
        match self {
            RoutingSource::TelemetryMessages => "DigitalTwinTelemetryMessages",
            RoutingSource::LifecycleNotification => "DigitalTwinLifecycleNotification",
            RoutingSource::ChangeNotification => "DigitalTwinChangeNotification",
            RoutingSource::RelationshipChangeNotification => {
                "DigitalTwinRelationshipChangeNotification"
            }
        }
    }

    /// The routing source with exactly this name.
    pub fn from_name(name: &str) -> Option<RoutingSource> {
        RoutingSource::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The `type` values this routing source stands for.
    pub const fn event_types(self) -> &'static [&'static str] {
        match self {
            RoutingSource::TelemetryMessages => &["microsoft.iot.telemetry"],
            RoutingSource::LifecycleNotification => &[
                "Microsoft.DigitalTwins.Twin.Create",
                "Microsoft.DigitalTwins.Twin.Delete",
            ],
            RoutingSource::ChangeNotification => &["Microsoft.DigitalTwins.Twin.Update"],
            RoutingSource::RelationshipChangeNotification => &[
                "Microsoft.DigitalTwins.Relationship.Create",
                "Microsoft.DigitalTwins.Relationship.Update",
                "Microsoft.DigitalTwins.Relationship.Delete",
            ],
        }
    }
}

/// A parsed filter.
///
/// The parser only produces trees with these shapes: [`Expr::Constant`] only as the whole
/// filter; `And`/`Or` with at least two children; attribute comparisons against a string or
/// `null`; `null` and booleans only with `=`/`!=`. A tree built by hand outside these rules
/// still prints, but may not parse back.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The whole filter `true` (every event) or `false` (route disabled).
    Constant(bool),
    /// `operand op value`, e.g. `$body.temperature <= 5.5`.
    Compare {
        /// What is read from the event.
        operand: Operand,
        /// The operator.
        op: CompareOp,
        /// The literal it is compared with.
        value: Literal,
    },
    /// `FUNCTION(operand, 'pattern')`.
    Function {
        /// Which function.
        function: StringFunction,
        /// What is read from the event.
        operand: Operand,
        /// The string literal second argument.
        pattern: Box<str>,
    },
    /// The legacy `$eventType = 'RoutingSourceName'` form.
    EventType {
        /// `=` or `!=`.
        op: EqualityOp,
        /// The routing source named.
        source: RoutingSource,
    },
    /// Every child holds (`a AND b AND …`).
    And(Vec<Expr>),
    /// Some child holds (`a OR b OR …`).
    Or(Vec<Expr>),
}

impl fmt::Display for Expr {
    /// Prints the canonical form: single spaces, upper-case `AND`/`OR` and function names,
    /// lower-case `true`/`false`/`null`, and parentheses only where the tree needs them
    /// (an `Or` inside an `And`, and a nested group of the same operator).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Constant(b) => write!(f, "{b}"),
            Expr::Compare { operand, op, value } => write!(f, "{operand} {op} {value}"),
            Expr::Function {
                function,
                operand,
                pattern,
            } => {
                write!(f, "{function}({operand}, ")?;
                write_string(f, pattern)?;
                f.write_str(")")
            }
            Expr::EventType { op, source } => {
                write!(f, "$eventType {op} ")?;
                write_string(f, source.name())
            }
            Expr::And(children) => write_joined(f, children, " AND ", |child| {
                matches!(child, Expr::And(_) | Expr::Or(_))
            }),
            Expr::Or(children) => {
                write_joined(f, children, " OR ", |child| matches!(child, Expr::Or(_)))
            }
        }
    }
}

/// Writes `children` separated by `separator`, in parentheses where `needs_parens` says so.
fn write_joined(
    f: &mut fmt::Formatter<'_>,
    children: &[Expr],
    separator: &str,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        if needs_parens(child) {
            write!(f, "({child})")?;
        } else {
            write!(f, "{child}")?;
        }
    }
    Ok(())
}
