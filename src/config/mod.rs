//! The instance file: ARM endpoint bodies, routes and the workload, read and validated into
//! [`Settings`], the only form the runtime accepts. Every validated setting lives here, sinks'
//! included ([`WebhookMode`], [`BatchLimits`], [`FaultSettings`]): sinks, the engine and the
//! dead-letter writer import their settings from `config`, and `config` imports only leaf
//! modules (clock, event, filter, generator, secret, the retry policy, the SAS checks), none of
//! which imports it back.
//!
//! Reading is lenient in one way and strict in every other: each section is deserialized on its
//! own so that one bad endpoint does not hide the problems of the next, and every problem of the
//! file is reported at once, each with the file and the JSON path it concerns. Unknown fields are
//! errors (a misspelt key would otherwise be silently ignored), and so are duplicate keys (the
//! second would silently replace the first).
//!
//! - `raw.rs`: the file as written (serde, `*Config`); `duplicates.rs`: keys written twice.
//! - `problem.rs`: [`Problem`], the one collector [`Problems`] and its value checks,
//!   [`ConfigError`].
//! - `validate.rs`: the file section by section: instance, endpoints (one function per endpoint
//!   kind), routes, and the bound ADT's year-9999 timestamps put on a run.
//! - `delivery.rs`, `simulate.rs`, `workload.rs`: an endpoint's `delivery` and `simulate`
//!   sections and the `workload`, each `*Config` in, `*Settings` out.
//! - `settings.rs`: the validated types, and `validate --show`'s normalized form.

mod delivery;
mod duplicates;
mod problem;
mod raw;
mod settings;
mod simulate;
mod validate;
mod workload;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use delivery::*;
pub use problem::{ConfigError, Problem, Problems, join};
pub use raw::*;
pub use settings::*;
pub use simulate::*;

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
