//! Recursive-descent parser from tokens to [`Expr`].
//!
//! ```text
//! filter     := 'true' | 'false' | or
//! or         := and ('OR' and)*
//! and        := primary ('AND' primary)*
//! primary    := '(' or ')' | comparison | function | event_type
//! comparison := attribute op (string | 'null')
//!             | $body.<path> op (string | integer | double | 'true' | 'false' | 'null')
//! function   := ('STARTS_WITH' | 'ENDS_WITH' | 'CONTAINS') '(' (attribute | $body.<path>) ',' string ')'
//! event_type := '$eventType' ('=' | '!=') string
//! ```
//! Keywords and function names ignore case; attribute names do not. `null` and booleans only
//! take `=` and `!=`, since ADT gives no order to them and such a filter could never match.
//!
//! Only parentheses recurse, and [`MAX_DEPTH`] caps them, so no input can overflow the stack;
//! chains of `AND`/`OR` are read in a loop into one n-ary node.

use super::ast::{
    Attribute, CompareOp, EqualityOp, Expr, Literal, Operand, RoutingSource, StringFunction,
};
use super::error::FilterError;
use super::lexer::{Lexer, Token, TokenKind, unknown_attribute};

/// The deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 64;

/// Parses a whole filter.
pub(super) fn parse(source: &str) -> Result<Expr, FilterError> {
    if source.trim_ascii().is_empty() {
        return Err(FilterError::new(
            1,
            "empty filter; write true to route every event or false to disable the route",
        ));
    }
    let mut parser = Parser {
        lexer: Lexer::new(source),
        peeked: None,
        depth: 0,
    };
    // `true`/`false` alone are the whole filter; anywhere else they are only values compared
    // with (`primary` refuses them as conditions).
    let first = parser.peek()?.clone();
    for (keyword, value) in [("true", true), ("false", false)] {
        if first.is_keyword(keyword) {
            parser.next()?;
            let after = parser.next()?;
            if after.kind != TokenKind::End {
                return Err(unexpected(
                    &after,
                    "end of filter after a whole-filter true or false",
                ));
            }
            return Ok(Expr::Constant(value));
        }
    }
    let expr = parser.or()?;
    let end = parser.next()?;
    if end.kind != TokenKind::End {
        return Err(unexpected(&end, "AND, OR or end of filter"));
    }
    Ok(expr)
}

struct Parser<'s> {
    lexer: Lexer<'s>,
    peeked: Option<Token<'s>>,
    /// Parentheses currently open.
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&mut self) -> Result<&Token<'s>, FilterError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        // Just filled above; the `else` arm cannot run but keeps this free of panics.
        match &self.peeked {
            Some(token) => Ok(token),
            None => Err(FilterError::new(1, "internal parser error")),
        }
    }

    fn next(&mut self) -> Result<Token<'s>, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut children = vec![self.and()?];
        while self.peek()?.is_keyword("OR") {
            self.next()?;
            children.push(self.and()?);
        }
        Ok(single_or(children, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut children = vec![self.primary()?];
        while self.peek()?.is_keyword("AND") {
            self.next()?;
            children.push(self.primary()?);
        }
        Ok(single_or(children, Expr::And))
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let token = self.next()?;
        match &token.kind {
            TokenKind::LParen => {
                if self.depth >= MAX_DEPTH {
                    return Err(FilterError::new(
                        token.column,
                        format!("too deeply nested: at most {MAX_DEPTH} levels of parentheses"),
                    ));
                }
                self.depth += 1;
                let inner = self.or()?;
                self.depth -= 1;
                let close = self.next()?;
                if close.kind != TokenKind::RParen {
                    let expected = format!("')' to close the '(' at column {}", token.column);
                    return Err(unexpected(&close, &expected));
                }
                Ok(inner)
            }
            TokenKind::BodyPath(path) => {
                let operand = Operand::Body(path.clone());
                self.comparison(operand, &token)
            }
            TokenKind::EventType => self.event_type(),
            TokenKind::Ident => {
                for keyword in ["true", "false"] {
                    if token.is_keyword(keyword) {
                        return Err(FilterError::new(
                            token.column,
                            format!(
                                "found '{}': true and false stand alone as the whole filter, or as the value in a comparison such as $body.poweredOn = true",
                                token.text
                            ),
                        ));
                    }
                }
                if is_reserved(&token) || token.is_keyword("null") {
                    return Err(unexpected(&token, CONDITION));
                }
                if let Some(attribute) = Attribute::from_name(token.text) {
                    return self.comparison(Operand::Attribute(attribute), &token);
                }
                // Not an attribute: a function if `(` follows, else an unknown attribute. A
                // lexer error after the word is left for later so that the word, leftmost, is
                // what gets reported.
                match self.peek() {
                    Ok(next) if next.kind == TokenKind::LParen => self.function(&token),
                    Ok(next) if StringFunction::from_name(token.text).is_some() => {
                        let expected = format!("'(' after {}", token.text);
                        Err(unexpected(next, &expected))
                    }
                    _ => Err(unknown_attribute(token.text, token.column)),
                }
            }
            _ => Err(unexpected(&token, CONDITION)),
        }
    }

    /// The rest of `operand op literal`, after the operand.
    fn comparison(&mut self, operand: Operand, operand_token: &Token) -> Result<Expr, FilterError> {
        let op_token = self.next()?;
        let TokenKind::Op(op) = op_token.kind else {
            let expected = format!(
                "a comparison operator (=, !=, <, <=, >, >=) after '{}'",
                operand_token.text
            );
            return Err(unexpected(&op_token, &expected));
        };
        let value_token = self.next()?;
        let value = match (&value_token.kind, &operand) {
            (TokenKind::Str(text), _) => Literal::Str(text.clone()),
            (TokenKind::Ident, _) if value_token.is_keyword("null") => Literal::Null,
            // Context attributes are strings, so anything else could never match.
            (_, Operand::Attribute(_)) => {
                let expected = format!("a string literal after '{op}'");
                return Err(unexpected(&value_token, &expected));
            }
            (TokenKind::Int(n), _) => Literal::Int(*n),
            (TokenKind::Float(x), _) => Literal::Float(*x),
            (TokenKind::Ident, _) if value_token.is_keyword("true") => Literal::Bool(true),
            (TokenKind::Ident, _) if value_token.is_keyword("false") => Literal::Bool(false),
            _ => {
                let expected =
                    format!("a value (string, number, true, false or null) after '{op}'");
                return Err(unexpected(&value_token, &expected));
            }
        };
        if matches!(value, Literal::Null | Literal::Bool(_))
            && !matches!(op, CompareOp::Eq | CompareOp::Ne)
        {
            return Err(FilterError::new(
                op_token.column,
                format!(
                    "'{op}' cannot compare with {}: only '=' and '!=' can",
                    value_token.text
                ),
            ));
        }
        Ok(Expr::Compare { operand, op, value })
    }

    /// `NAME(operand, 'pattern')`, after the name; the next token is `(`.
    fn function(&mut self, name: &Token) -> Result<Expr, FilterError> {
        let Some(function) = StringFunction::from_name(name.text) else {
            let hint = if ["IS_DEFINED", "IS_NULL"]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name.text))
            {
                "; test a property with $body.<path> != null or = null instead"
            } else {
                ""
            };
            return Err(FilterError::new(
                name.column,
                format!(
                    "unknown function '{}'; expected STARTS_WITH, ENDS_WITH or CONTAINS{hint}",
                    name.text
                ),
            ));
        };
        self.next()?; // the `(` seen by the caller
        let argument = self.next()?;
        let operand = match &argument.kind {
            TokenKind::BodyPath(path) => Operand::Body(path.clone()),
            TokenKind::Ident if !is_reserved(&argument) && !is_literal_keyword(&argument) => {
                match Attribute::from_name(argument.text) {
                    Some(attribute) => Operand::Attribute(attribute),
                    None => return Err(unknown_attribute(argument.text, argument.column)),
                }
            }
            TokenKind::EventType => {
                return Err(FilterError::new(
                    argument.column,
                    "$eventType can only be compared with '=' or '!='",
                ));
            }
            _ => {
                let expected =
                    format!("an attribute or $body.<path> as the first argument of {function}");
                return Err(unexpected(&argument, &expected));
            }
        };
        let comma = self.next()?;
        if comma.kind != TokenKind::Comma {
            let expected = format!("',' after the first argument of {function}");
            return Err(unexpected(&comma, &expected));
        }
        let pattern_token = self.next()?;
        let TokenKind::Str(pattern) = pattern_token.kind.clone() else {
            let expected = format!("a string literal as the second argument of {function}");
            return Err(unexpected(&pattern_token, &expected));
        };
        let close = self.next()?;
        if close.kind != TokenKind::RParen {
            let expected = format!("')' after the second argument of {function}");
            return Err(unexpected(&close, &expected));
        }
        Ok(Expr::Function {
            function,
            operand,
            pattern,
        })
    }

    /// `$eventType = 'RoutingSourceName'`, after `$eventType`.
    fn event_type(&mut self) -> Result<Expr, FilterError> {
        let op_token = self.next()?;
        let op = match op_token.kind {
            TokenKind::Op(CompareOp::Eq) => EqualityOp::Eq,
            TokenKind::Op(CompareOp::Ne) => EqualityOp::Ne,
            TokenKind::Op(_) => {
                return Err(FilterError::new(
                    op_token.column,
                    "$eventType can only be compared with '=' or '!='",
                ));
            }
            _ => return Err(unexpected(&op_token, "'=' or '!=' after '$eventType'")),
        };
        let value = self.next()?;
        let TokenKind::Str(name) = &value.kind else {
            let expected = format!("a routing source name in quotes after '{op}'");
            return Err(unexpected(&value, &expected));
        };
        let Some(source) = RoutingSource::from_name(name) else {
            let names: Vec<&str> = RoutingSource::ALL.iter().map(|s| s.name()).collect();
            return Err(FilterError::new(
                value.column,
                format!(
                    "unknown routing source '{name}' for $eventType; expected one of {}",
                    names.join(", ")
                ),
            ));
        };
        Ok(Expr::EventType { op, source })
    }
}

/// The error for a token that is not what the grammar wants here.
///
/// `NOT` and `IN` get their own messages wherever they turn up, since users bring them from
/// ADT's query language, which has them.
fn unexpected(token: &Token, expected: &str) -> FilterError {
    let message = if token.is_keyword("NOT") {
        format!(
            "found '{}': ADT route filters have no NOT operator",
            token.text
        )
    } else if token.is_keyword("IN") {
        format!(
            "found '{}': ADT route filters have no IN operator; combine '=' comparisons with OR",
            token.text
        )
    } else {
        format!("expected {expected}, found {}", token.describe())
    };
    FilterError::new(token.column, message)
}

/// What `primary` expects, for its error message.
const CONDITION: &str = "a condition (a comparison, STARTS_WITH, ENDS_WITH or CONTAINS)";

/// Words that are never attribute or function names.
fn is_reserved(token: &Token) -> bool {
    ["AND", "OR", "NOT", "IN"]
        .iter()
        .any(|keyword| token.is_keyword(keyword))
}

fn is_literal_keyword(token: &Token) -> bool {
    ["true", "false", "null"]
        .iter()
        .any(|keyword| token.is_keyword(keyword))
}

/// The one child itself, or an n-ary node of several.
fn single_or(children: Vec<Expr>, group: fn(Vec<Expr>) -> Expr) -> Expr {
    match <[Expr; 1]>::try_from(children) {
        Ok([only]) => only,
        Err(children) => group(children),
    }
}
