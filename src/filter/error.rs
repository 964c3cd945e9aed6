//! Why a filter was refused.

/// Why a filter was refused: where, and what to do about it.
///
/// `Display` prints only the message; the config layer adds the location, as in
/// `routes.<id>.filter:<column>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// 1-based column of the offending token, counted in chars (not bytes).
    pub column: usize,
    /// Lower-case, without a trailing period, e.g.
    /// `expected a string literal after '=', found ')'`.
    pub message: String,
}

impl FilterError {
    /// An error at `column` (1-based, in chars).
    pub(super) fn new(column: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            column,
            message: message.into(),
        }
    }
}
