//! Why a model set was refused: every problem, each with its file, interface and JSON path.

use std::fmt;
use std::sync::Arc;

/// What kind of problem: for tests and callers that react by kind, never by message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A file or folder could not be read, or a folder holds no `*.json` file.
    Io,
    /// Not valid JSON; the path is `<line>:<column>`.
    Json,
    /// Not an Interface DTDL describes: a missing or malformed `@context`, `@id`, `@type`,
    /// `name`, or a key of the wrong type.
    Interface,
    /// A schema that cannot be read: unknown name, malformed complex schema, a reference
    /// cycle, or an Array in a DTDL v2 Property.
    Schema,
    /// Two interfaces with one `@id` (ADT's `ModelAlreadyExists`), or two reusable schemas.
    ModelAlreadyExists,
    /// An `extends` names an interface that is not loaded.
    MissingExtends,
    /// Interfaces extend each other in a cycle.
    ExtendsCycle,
    /// A Component's `schema` is not a loaded Interface.
    ComponentNotInterface,
    /// A Component's Interface has components itself (DTDL forbids nesting).
    NestedComponent,
    /// A Relationship's `target` is not a loaded interface.
    TargetNotLoaded,
    /// Two contents with one `name` in an interface, inherited ones included.
    DuplicateName,
    /// A DTDL v2 interface extends, or uses as a component, a DTDL v3 interface.
    Version,
}

/// One problem in a model set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelProblem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The file (or source name) as the user gave it.
    pub file: Arc<str>,
    /// The interface's `@id`, when the problem is inside one that has an id.
    pub id: Option<String>,
    /// JSON path inside the file, `$.contents[3].schema` (`$[1]…` in an array of
    /// interfaces); `<line>:<column>` for invalid JSON; empty when it concerns the whole file.
    pub path: String,
    /// Lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for ModelProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ProblemKind::Json {
            return write!(f, "{}:{}: {}", self.file, self.path, self.message);
        }
        write!(f, "{}: ", self.file)?;
        if let Some(id) = &self.id {
            write!(f, "{id}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The model set was refused; every problem found is listed, grouped by file in the order the
/// files were added; within a file, problems of reading come before those between interfaces.
/// An interface refused as a duplicate (`ModelAlreadyExists`) is not checked further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ModelError {
    /// Every problem (never empty).
    pub problems: Vec<ModelProblem>,
}

impl ModelError {
    /// Whether some problem is of `kind`.
    pub fn has(&self, kind: ProblemKind) -> bool {
        self.problems.iter().any(|problem| problem.kind == kind)
    }
}

/// One problem per line, `file: id: path: message`: what the CLI prints before exiting 2.
impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Where in a source a problem is: the file, the interface and the JSON path.
#[derive(Clone, Debug)]
pub(super) struct Loc {
    pub file: Arc<str>,
    pub id: Option<String>,
    pub path: String,
}

impl Loc {
    /// The same interface, at `path` + `child` (`.name` or `[3]`).
    pub fn at(&self, child: &str) -> Loc {
        Loc {
            file: self.file.clone(),
            id: self.id.clone(),
            path: format!("{}{child}", self.path),
        }
    }

    /// A problem here.
    pub fn problem(&self, kind: ProblemKind, message: impl Into<String>) -> ModelProblem {
        ModelProblem {
            kind,
            file: self.file.clone(),
            id: self.id.clone(),
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

/// Appends a JSON-path step for object key `key`: `.key`, or `["odd key"]`.
pub(super) fn key_step(key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$' || c == '@')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '@');
    if plain {
        format!(".{key}")
    } else {
        format!("[{}]", serde_json::Value::from(key))
    }
}
