//! The instance file: ARM endpoint bodies, routes and the workload, read and validated into
//! [`Settings`], the only form the runtime accepts.
//!
//! Reading is lenient in one way and strict in every other: each section is deserialized on its
//! own so that one bad endpoint does not hide the problems of the next, and every problem of the
//! file is reported at once, each with the file and the JSON path it concerns. Unknown fields are
//! errors (a misspelt key would otherwise be silently ignored), and so are duplicate keys (the
//! second would silently replace the first).

mod duplicates;
mod raw;
mod settings;
mod validate;

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use raw::*;
pub use settings::*;

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

/// Collects problems while validating.
#[derive(Default, Debug)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems recorded.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
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

/// Deserializes the value at `path` as `T`, recording its type errors and every unknown field.
pub fn section<T: DeserializeOwned>(
    value: &Value,
    path: &str,
    problems: &mut Problems,
) -> Option<T> {
    let mut unknown = Vec::new();
    let mut record = |ignored: serde_ignored::Path<'_>| unknown.push(ignored_path(&ignored));
    let deserializer = serde_ignored::Deserializer::new(value, &mut record);
    let result: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    for field in unknown {
        problems.push(join(path, &field), "unknown field");
    }
    match result {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let inner = error.path().to_string();
            let at = if inner == "." {
                path.to_owned()
            } else {
                join(path, &inner)
            };
            problems.push(at, error.into_inner().to_string());
            None
        }
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => join(&ignored_path(parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// Options from the command line that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--count`.
    pub count: Option<u64>,
}

/// Reads and validates the instance file at `path`.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        file: file.clone(),
        problems: vec![Problem {
            path: String::new(),
            message: format!("cannot read the file: {error}"),
        }],
    })?;
    parse(&text, &file, overrides)
}

/// Validates instance-file `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str, overrides: &Overrides) -> Result<Settings, ConfigError> {
    let refuse = |problems: Vec<Problem>| ConfigError {
        file: file.to_owned(),
        problems,
    };
    let value: Value = serde_json::from_str(text).map_err(|error| {
        refuse(vec![Problem {
            path: format!("{}:{}", error.line(), error.column()),
            message: format!("not valid JSON: {error}"),
        }])
    })?;
    let duplicates = duplicates::duplicate_keys(text);
    if !duplicates.is_empty() {
        return Err(refuse(duplicates));
    }
    validate::validate(&value, overrides).map_err(|problems| refuse(problems.into_vec()))
}

/// The instance file `twinroute demo` runs: embedded, so the demo needs nothing on disk.
pub const DEMO_CONFIG: &str = include_str!("demo.json");

#[cfg(test)]
mod tests;
