//! What is wrong with an instance file: each [`Problem`] at the JSON path it concerns, all of
//! them gathered in one collector, [`Problems`], and refused together as a [`ConfigError`].
//!
//! Validation never stops at the first problem. A check reports what it found to the collector
//! and returns the converted value, or `None` after reporting; the caller combines the `Option`s
//! and builds settings only when nothing was reported.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::delivery::policy::MAX_DELAY;

/// One thing wrong with the instance file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// JSON path of the offending value, e.g. `endpoints.hub1.properties.endpointUri`.
    pub path: String,
    /// What is wrong, lowercase, e.g. `must start with sb://`.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same problem seen from an enclosing object: `parent` is prefixed to the path.
    pub fn under(mut self, parent: &str) -> Self {
        self.path = join(parent, &self.path);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The instance file was refused; every problem found is listed.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file, as the user named it.
    pub file: String,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            // A filter problem's path ends in `:<column>`, a syntax error's is `<line>:<column>`.
            if problem.path.is_empty() {
                write!(f, "{}: {}", self.file, problem.message)?;
            } else if problem.path.starts_with(|c: char| c.is_ascii_digit()) {
                write!(f, "{}:{}: {}", self.file, problem.path, problem.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file, problem.path, problem.message)?;
            }
        }
        Ok(())
    }
}

/// Joins a JSON path and a field: `join("endpoints.hub1", "properties")`.
pub fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_owned(),
        (_, true) => parent.to_owned(),
        _ if child.starts_with('[') => format!("{parent}{child}"),
        _ => format!("{parent}.{child}"),
    }
}

/// The one problem collector: every check of the instance file reports here.
///
/// The checks below are the value rules more than one section shares; each reports at `path`
/// and returns the converted value, or `None` after reporting.
#[derive(Default, Debug)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// Records the problems a section found at paths relative to it, under `parent`.
    pub fn nest(&mut self, parent: &str, found: Vec<Problem>) {
        self.0
            .extend(found.into_iter().map(|problem| problem.under(parent)));
    }

    /// How many problems were recorded: compare before and after a check to know whether it
    /// found any.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems recorded.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// An integer in `[lo, hi]`.
    pub fn int_between(&mut self, path: &str, v: i64, lo: i64, hi: i64) -> Option<i64> {
        if (lo..=hi).contains(&v) {
            Some(v)
        } else {
            self.push(path, format!("must be between {lo} and {hi}, found {v}"));
            None
        }
    }

    /// A count of at least 1.
    pub fn count(&mut self, path: &str, v: i64) -> Option<NonZeroUsize> {
        match usize::try_from(v).ok().and_then(NonZeroUsize::new) {
            Some(n) => Some(n),
            None => {
                self.push(path, format!("must be at least 1, found {v}"));
                None
            }
        }
    }

    /// An HTTP status, 100–599.
    pub fn status(&mut self, path: &str, v: i64) -> Option<u16> {
        self.int_between(path, v, 100, 599).map(|s| s as u16)
    }

    /// A probability (or a fraction), in `[0, 1]`.
    pub fn probability(&mut self, path: &str, p: f64) -> Option<f64> {
        if (0.0..=1.0).contains(&p) {
            Some(p)
        } else {
            self.push(path, format!("must be between 0 and 1, found {p}"));
            None
        }
    }

    /// Seconds in `[0, MAX_DELAY]`.
    pub fn seconds(&mut self, path: &str, s: f64) -> Option<Duration> {
        let max = MAX_DELAY.as_secs();
        if (0.0..=max as f64).contains(&s) {
            Some(secs_to_duration(s))
        } else {
            self.push(path, format!("must be between 0 and {max}, found {s}"));
            None
        }
    }

    /// Optional seconds in `[0, MAX_DELAY]`: absent is valid, `Some(None)`.
    pub fn optional_seconds(&mut self, path: &str, s: Option<f64>) -> Option<Option<Duration>> {
        match s {
            None => Some(None),
            Some(s) => self.seconds(path, s).map(Some),
        }
    }

    /// Seconds in `(0, MAX_DELAY]`.
    pub fn positive_seconds(&mut self, path: &str, s: f64) -> Option<Duration> {
        let max = MAX_DELAY.as_secs();
        if s > 0.0 && s <= max as f64 {
            Some(secs_to_duration(s))
        } else {
            self.push(
                path,
                format!("must be greater than 0 and at most {max}, found {s}"),
            );
            None
        }
    }
}

/// Seconds to a [`Duration`], rounded to the nanosecond so that `0.2` is exactly 200 ms.
fn secs_to_duration(s: f64) -> Duration {
    Duration::from_nanos((s * 1e9).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_nest_under_a_parent_path() {
        let pr = Problem::new(
            "failures[1].probability",
            "must be between 0 and 1, found 2",
        );
        assert_eq!(
            pr.clone().under("endpoints[0].simulate").path,
            "endpoints[0].simulate.failures[1].probability"
        );
        assert_eq!(Problem::new("[2]", "x").under("outages").path, "outages[2]");
        assert_eq!(Problem::new("", "x").under("simulate").path, "simulate");
        assert_eq!(
            pr.to_string(),
            "failures[1].probability: must be between 0 and 1, found 2"
        );
    }
}
