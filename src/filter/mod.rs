//! ADT event route filters: parse once when the config is loaded, then match events with no
//! allocation and no I/O.
//!
//! # Layout
//! - [`ast`]: the parsed tree ([`Expr`]) and its canonical printing.
//! - `lexer`: filter text to tokens, with char columns for errors.
//! - `parser`: tokens to [`Expr`], refusing what ADT would refuse.
//! - `compile`: [`Expr`] to the tree that [`Filter::matches`] runs.
//! - [`input`]: what a filter reads ([`FilterInput`]) and a JSON event that provides it.
//! - [`error`]: why a filter was refused, [`FilterError`].
//! - [`stream`]: `twinroute filter`'s loop, one answer per NDJSON line.
//!
//! # Language
//! ADT's documented grammar: whole-filter `true`/`false`; the attributes `type`, `source`,
//! `subject`, `id`, `time`, `specversion`, `dataschema`, `datacontenttype`, `traceparent` and
//! `$body.<path>`; string (`'O''Brien'`), integer, double, `true`, `false`, `null` literals;
//! `= != < <= > >=`, `AND`, `OR`, parentheses; `STARTS_WITH`, `ENDS_WITH`, `CONTAINS`; and
//! the legacy `$eventType = '<routing source>'`. Attribute names and values are
//! case-sensitive; keywords and function names are not. See [`Filter::matches`] for what a
//! comparison means when a value is missing, null or of another type.

pub mod ast;
mod compile;
pub mod error;
pub mod input;
mod lexer;
mod parser;
pub mod stream;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use self::ast::{
    Attribute, CompareOp, EqualityOp, Expr, Literal, Operand, RoutingSource, StringFunction,
};
pub use self::error::FilterError;
pub use self::input::{BodyValue, FilterInput, JsonEvent, JsonEventError};
pub use self::parser::MAX_DEPTH;

/// A parsed and compiled route filter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// What was parsed, for printing and inspection.
    expr: Expr,
    /// What `matches` runs.
    program: compile::Node,
}

impl Filter {
    /// Parses and compiles a filter, refusing anything ADT's documented grammar does not
    /// allow, so that a filter accepted here is accepted by ADT too.
    ///
    /// Never panics, and nests at most [`MAX_DEPTH`] parentheses deep.
    pub fn parse(source: &str) -> Result<Filter, FilterError> {
        let expr = parser::parse(source)?;
        let program = compile::Node::compile(&expr);
        Ok(Filter { expr, program })
    }

    /// Whether `event` passes the filter. Pure, synchronous, allocation-free.
    ///
    /// A comparison is false when the value is missing or of another type than the literal,
    /// for every operator including `!=`. The one exception is `null`: `x = null` holds when
    /// `x` is present and null, `x != null` when it is present and not null. Numbers compare
    /// numerically (integers against doubles exactly), strings by byte order, booleans only
    /// with `=`/`!=`; arrays and objects only pass `!= null`.
    pub fn matches<E: FilterInput + ?Sized>(&self, event: &E) -> bool {
        self.program.eval(event)
    }

    /// `Some(true)` for the whole filter `true`, `Some(false)` for `false`, else `None`.
    pub fn is_always(&self) -> Option<bool> {
        match self.expr {
            Expr::Constant(b) => Some(b),
            _ => None,
        }
    }

    /// The parsed tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

/// Two filters are equal when they parsed to the same tree.
impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.expr == other.expr
    }
}

/// The canonical form, which parses back to the same tree.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

/// Same as [`Filter::parse`].
impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(source: &str) -> Result<Filter, FilterError> {
        Filter::parse(source)
    }
}
