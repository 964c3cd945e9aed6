//! Turns filter text into tokens, one at a time, on demand.
//!
//! The parser pulls tokens as it goes rather than tokenizing everything first, so that the
//! error it reports is always the leftmost one: `body.x` is an unknown attribute `body`, not a
//! stray `.`.
//!
//! Every position is advanced one `char` at a time, so slices always fall on char boundaries,
//! and columns are counted in chars for the error messages.

use super::ast::CompareOp;
use super::error::FilterError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// A comparison operator.
    Op(CompareOp),
    /// A string literal, with `''` already turned into `'`.
    Str(Box<str>),
    /// An integer literal.
    Int(i64),
    /// A number with a fractional part.
    Float(f64),
    /// A word: keyword, attribute or function name (the parser decides which).
    Ident,
    /// `$body.<path>`, already split into its segments.
    BodyPath(Box<[Box<str>]>),
    /// The legacy `$eventType` pseudo-attribute.
    EventType,
    /// The end of the filter.
    End,
}

/// A token with its place in the source.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'s> {
    /// What it is.
    pub(super) kind: TokenKind,
    /// Its source text, for error messages and for words.
    pub(super) text: &'s str,
    /// 1-based column of its first char.
    pub(super) column: usize,
}

impl Token<'_> {
    /// Whether this is the word `keyword`, in any case.
    pub(super) fn is_keyword(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Ident && self.text.eq_ignore_ascii_case(keyword)
    }

    /// How an error message names this token, e.g. `')'`, `string 'abc'`, `end of filter`.
    pub(super) fn describe(&self) -> String {
        // Long literals and paths would drown the message, so keep the start only.
        const MAX_CHARS: usize = 40;
        let mut shown: String = self.text.chars().take(MAX_CHARS).collect();
        if self.text.chars().nth(MAX_CHARS).is_some() {
            shown.push('…');
        }
        match self.kind {
            TokenKind::End => "end of filter".to_owned(),
            TokenKind::Str(_) => format!("string {shown}"),
            _ => format!("'{shown}'"),
        }
    }
}

/// The lexer's state: the source and how far it has read.
pub(super) struct Lexer<'s> {
    source: &'s str,
    /// Byte offset of the next char; always on a char boundary.
    position: usize,
    /// 1-based column of the next char.
    column: usize,
}

impl<'s> Lexer<'s> {
    /// A lexer at the start of `source`.
    pub(super) fn new(source: &'s str) -> Lexer<'s> {
        Lexer {
            source,
            position: 0,
            column: 1,
        }
    }

    fn rest(&self) -> &'s str {
        self.source.get(self.position..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position += c.len_utf8();
        self.column += 1;
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    fn text_from(&self, start: usize) -> &'s str {
        self.source.get(start..self.position).unwrap_or("")
    }

    /// The next token, or the error that stops lexing.
    pub(super) fn next_token(&mut self) -> Result<Token<'s>, FilterError> {
        // Only ASCII whitespace separates tokens: ADT's grammar is ASCII, and a stray
        // non-breaking space is better reported than silently accepted.
        self.bump_while(|c| c.is_ascii_whitespace());
        let start = self.position;
        let column = self.column;
        let Some(c) = self.bump() else {
            return Ok(Token {
                kind: TokenKind::End,
                text: "",
                column,
            });
        };
        let kind = match c {
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            ',' => TokenKind::Comma,
            '=' => {
                if self.peek() == Some('=') {
                    return Err(FilterError::new(
                        column,
                        "found '==': use '=' to compare for equality",
                    ));
                }
                TokenKind::Op(CompareOp::Eq)
            }
            '!' => {
                if self.peek() != Some('=') {
                    return Err(FilterError::new(
                        column,
                        "found '!': ADT route filters have no NOT operator; did you mean '!='?",
                    ));
                }
                self.bump();
                TokenKind::Op(CompareOp::Ne)
            }
            '<' => match self.peek() {
                Some('=') => {
                    self.bump();
                    TokenKind::Op(CompareOp::Le)
                }
                Some('>') => {
                    return Err(FilterError::new(
                        column,
                        "found '<>': use '!=' to compare for inequality",
                    ));
                }
                _ => TokenKind::Op(CompareOp::Lt),
            },
            '>' => {
                if self.peek() == Some('=') {
                    self.bump();
                    TokenKind::Op(CompareOp::Ge)
                } else {
                    TokenKind::Op(CompareOp::Gt)
                }
            }
            '\'' => TokenKind::Str(self.string(column)?),
            '-' | '0'..='9' => self.number(c, start, column)?,
            '$' => self.dollar(start, column)?,
            // Words take any letters, so that `fööd` is reported as one unknown name rather
            // than as a stray `ö`.
            c if c.is_alphabetic() || c == '_' => {
                self.bump_while(|c| c.is_alphanumeric() || c == '_');
                TokenKind::Ident
            }
            other => return Err(unexpected_char(other, column)),
        };
        Ok(Token {
            kind,
            text: self.text_from(start),
            column,
        })
    }

    /// The rest of a string literal whose opening quote was at `column`.
    ///
    /// Only SQL-style doubling escapes a quote (`'O''Brien'`); a backslash is an ordinary
    /// character, so `'C:\temp'` is the seven chars it shows.
    fn string(&mut self, column: usize) -> Result<Box<str>, FilterError> {
        let mut value = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(FilterError::new(
                        column,
                        "unterminated string literal: missing closing quote (write '' for a quote inside a string)",
                    ));
                }
                Some('\'') if self.peek() == Some('\'') => {
                    self.bump();
                    value.push('\'');
                }
                Some('\'') => return Ok(value.into_boxed_str()),
                Some(c) => value.push(c),
            }
        }
    }

    /// The rest of a number literal whose first char `first` was at `start`/`column`.
    ///
    /// Accepted forms are `-?digits` (an i64) and `-?digits.digits` (a finite f64); no
    /// exponent, leading `.` or trailing `.`, which ADT's documentation never shows.
    fn number(
        &mut self,
        first: char,
        start: usize,
        column: usize,
    ) -> Result<TokenKind, FilterError> {
        if first == '-' && !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(FilterError::new(
                column,
                "unexpected character '-'; a negative number is written like -5 or -2.5",
            ));
        }
        self.bump_while(|c| c.is_ascii_digit());
        let mut is_float = false;
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.bump();
            self.bump_while(|c| c.is_ascii_digit());
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
        {
            self.bump_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'));
            return Err(FilterError::new(
                column,
                format!(
                    "invalid number '{}'; numbers are written like 200, -5 or 5.5",
                    self.text_from(start)
                ),
            ));
        }
        let text = self.text_from(start);
        if is_float {
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(TokenKind::Float(x)),
                _ => Err(FilterError::new(
                    column,
                    format!("number '{text}' is out of range"),
                )),
            }
        } else {
            text.parse::<i64>().map(TokenKind::Int).map_err(|_| {
                FilterError::new(
                    column,
                    format!("integer '{text}' is out of range for a 64-bit integer"),
                )
            })
        }
    }

    /// The rest of a `$` word: `$body.<path>` or `$eventType`.
    fn dollar(&mut self, start: usize, column: usize) -> Result<TokenKind, FilterError> {
        self.bump_while(|c| c.is_ascii_alphanumeric() || c == '_');
        let word = self.text_from(start);
        match word {
            "$eventType" => return Ok(TokenKind::EventType),
            "$body" => {}
            _ => return Err(unknown_attribute(word, column)),
        }
        if self.peek() != Some('.') {
            return Err(FilterError::new(
                column,
                "'$body' alone is not a value; name a property inside the event data, e.g. $body.temperature",
            ));
        }
        let mut segments = Vec::new();
        while self.peek() == Some('.') {
            self.bump();
            let segment_start = self.position;
            let segment_column = self.column;
            if self.peek() == Some('$') {
                self.bump();
            }
            self.bump_while(|c| c.is_ascii_alphanumeric() || c == '_');
            let segment = self.text_from(segment_start);
            if segment.is_empty() || segment == "$" {
                return Err(FilterError::new(
                    segment_column,
                    format!(
                        "expected a property name after '{}.'",
                        self.source
                            .get(start..segment_start.saturating_sub(1))
                            .unwrap_or("$body")
                    ),
                ));
            }
            segments.push(Box::from(segment));
        }
        if self.peek() == Some('[') {
            return Err(FilterError::new(
                self.column,
                "found '[': ADT cannot filter on fields inside arrays (such as the patch of a Twin.Update)",
            ));
        }
        Ok(TokenKind::BodyPath(segments.into_boxed_slice()))
    }
}

/// The message for a `$` word that is neither `$body` nor `$eventType`.
pub(super) fn unknown_attribute(word: &str, column: usize) -> FilterError {
    let allowed: Vec<&str> = super::ast::Attribute::ALL
        .iter()
        .map(|a| a.name())
        .collect();
    let mut message = format!(
        "unknown attribute '{word}'; expected one of {}, or $body.<path>",
        allowed.join(", ")
    );
    // The usual slips are a wrong case (ADT names are case-sensitive) and a missing `$`.
    let suggestion = allowed
        .iter()
        .copied()
        .chain(["$body", "$eventType"])
        .find(|name| {
            name.eq_ignore_ascii_case(word)
                || name.strip_prefix('$') == Some(word)
                || word.strip_prefix('$') == Some(name)
        });
    if let Some(name) = suggestion {
        let name = if name == "$body" {
            "$body.<path>"
        } else {
            name
        };
        message = format!(
            "unknown attribute '{word}' (names are case-sensitive): did you mean '{name}'?"
        );
    }
    FilterError::new(column, message)
}

fn unexpected_char(c: char, column: usize) -> FilterError {
    let hint = match c {
        '"' => "; string literals use single quotes",
        '&' => "; use AND to combine conditions",
        '|' => "; use OR to combine conditions",
        '[' | ']' => "; ADT cannot filter on fields inside arrays",
        _ => "",
    };
    // Invisible chars are shown escaped, so the message says which one it is.
    let shown = if c.is_control() || c.is_whitespace() {
        c.escape_debug().to_string()
    } else {
        c.to_string()
    };
    FilterError::new(column, format!("unexpected character '{shown}'{hint}"))
}
