//! DTDL models: a tolerant reader of the DTDL v2 and v3 subset a twin generator needs, and a
//! checker of values against the schemas it reads.
//!
//! There is no DTDL parser crate; this is not a full validator either. It reads what ADT's
//! `POST /models` takes, tolerates what real ontology files contain, and refuses what would
//! leave the generator without a clear answer (a missing interface, a schema it cannot read).
//!
//! # Layout
//! - `read`: JSON documents to interfaces as written (one pass, every problem recorded).
//! - `schemas`: schema JSON to [`Schema`] trees, reusable schemas resolved once and shared.
//! - `resolve`: duplicate ids, `extends` (transitively, cycles reported), inherited contents,
//!   components and relationship targets: the [`ModelStore`].
//! - [`model`]: the resolved view the generator reads, [`Model`] and its contents.
//! - [`schema`]: [`Schema`] and its parts.
//! - `value`: [`Schema::check`], whether a JSON value fits a schema.
//! - [`error`]: [`ModelError`], every problem with its file, interface `@id` and JSON path.
//!
//! # What is read
//! - Inputs: files holding one Interface object or an array of them (as `POST /models` takes
//!   them), folders of such files (recursively, every `*.json`, in sorted path order), or JSON
//!   values already parsed (an import file's `Models` section). A UTF-8 byte-order mark is
//!   skipped.
//! - Interface: `@id` (a DTMI, checked loosely: `dtmi:` segments, an optional `;1` or v3's
//!   `;1.2`), `@type` `Interface`, `@context` (`dtmi:dtdl:context;2` or `;3`, or an array
//!   holding one beside extension contexts: the version is recorded), `displayName` (a string
//!   or a language map), `extends` (an `@id`, an inline Interface, or an array of them),
//!   `contents`, `schemas`.
//! - Contents: Property (`name`, `schema`, `writable`), Telemetry (`name`, `schema`),
//!   Relationship (`name`, `target`, `properties` — an array, or one object —,
//!   `maxMultiplicity`, `minMultiplicity`, `writable`), Component (`name`, `schema`: an
//!   Interface `@id` or an inline Interface). Commands are read for their name only. `@type`
//!   may be an array carrying semantic or extension types (`["Property", "Temperature"]`);
//!   they are kept, as is a string `unit`.
//! - Schemas: the ten primitives; Enum (`valueSchema` integer or string, `enumValues`), Object
//!   (`fields`), Map (`mapKey`, `mapValue`), Array (`elementSchema`); references by `@id` to
//!   any loaded interface's reusable `schemas`; the geospatial schemas by term (`point`) or
//!   DTMI (`dtmi:standard:schema:geospatial:point;2`, `…;3`), as GeoJSON.
//! - Unknown keys anywhere (`comment`, `description`, extension properties) are ignored.
//!
//! # What is refused
//! Every problem is reported at once ([`ModelError`]), each with the file, the interface's
//! `@id` and the JSON path: invalid JSON (line and column), a missing `@context`, `@id`, `name`
//! or `schema`, a malformed DTMI or name, a schema it cannot read (unknown name, malformed
//! Enum/Object/Map/Array, a reference cycle, an Array or geospatial schema in a DTDL v2
//! Property), two interfaces with one `@id` (`ModelAlreadyExists`), an `extends` target that
//! is not loaded, an `extends` cycle, a v2 interface extending or using as a component a v3
//! one, a Component whose schema is not a loaded Interface or has components itself, a
//! Relationship `target` that is not loaded, two contents with one name (inherited ones
//! included), `minMultiplicity` other than 0 and `maxMultiplicity` below 1 (above 500 in v2).
//! DTDL's size limits (contents per interface, name and id lengths beyond the name rule,
//! extends depth 10, schema depth 5) are not enforced, except as bounds against hostile input.

pub mod error;
pub mod model;
mod read;
mod resolve;
pub mod schema;
mod schemas;
mod value;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

pub use self::error::{ModelError, ModelProblem, ProblemKind};
pub use self::model::{
    Component, DtdlVersion, Model, ModelStore, Property, Relationship, Telemetry,
};
pub use self::schema::{
    ArraySchema, EnumLiteral, EnumSchema, EnumValue, EnumValueSchema, Field, GeoKind, MapSchema,
    ObjectSchema, Primitive, Schema,
};
pub use self::value::ValueError;

/// Folders nest at most this deep (a symbolic link loop would otherwise never end).
const MAX_FOLDER_DEPTH: usize = 32;

/// Collects model sources, then reads and resolves them all at once.
///
/// ```
/// # use twinroute::dtdl::ModelReader;
/// let mut reader = ModelReader::new();
/// reader.add_text(
///     "pump.json",
///     r#"{"@context": "dtmi:dtdl:context;3", "@id": "dtmi:com:contoso:Pump;1",
///         "@type": "Interface",
///         "contents": [{"@type": "Property", "name": "pressure", "schema": "double"}]}"#,
/// );
/// let models = reader.finish().unwrap();
/// assert!(models.get("dtmi:com:contoso:Pump;1").unwrap().property("pressure").is_some());
/// ```
#[derive(Debug, Default)]
pub struct ModelReader {
    sources: Vec<(Arc<str>, Value)>,
    problems: Vec<ModelProblem>,
    /// Every file and folder named so far, in order: problems are listed in this order.
    names: Vec<Arc<str>>,
}

impl ModelReader {
    /// A reader with no sources.
    pub fn new() -> ModelReader {
        ModelReader::default()
    }

    /// Adds a DTDL file, or every `*.json` file under a folder (sorted by path). A path that
    /// cannot be read is a problem reported by [`finish`](Self::finish).
    pub fn add_path(&mut self, path: &Path) {
        let name = path.display().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            self.collect(path, 0, &mut files);
            if files.is_empty() {
                self.whole_file(&name, ProblemKind::Io, "the folder holds no *.json file");
            }
            files.sort();
            for file in files {
                self.add_file(&file);
            }
        } else {
            self.add_file(path);
        }
    }

    fn collect(&mut self, folder: &Path, depth: usize, files: &mut Vec<PathBuf>) {
        let name = folder.display().to_string();
        if depth > MAX_FOLDER_DEPTH {
            self.whole_file(
                &name,
                ProblemKind::Io,
                format!("folders nested deeper than {MAX_FOLDER_DEPTH} levels (a link loop?)"),
            );
            return;
        }
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(error) => {
                self.whole_file(
                    &name,
                    ProblemKind::Io,
                    format!("cannot read the folder: {error}"),
                );
                return;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(error) => {
                    self.whole_file(
                        &name,
                        ProblemKind::Io,
                        format!("cannot read the folder: {error}"),
                    );
                    continue;
                }
            };
            if path.is_dir() {
                self.collect(&path, depth + 1, files);
            } else if path
                .extension()
                .is_some_and(|extension| extension.eq_ignore_ascii_case("json"))
            {
                files.push(path);
            }
        }
    }

    fn add_file(&mut self, path: &Path) {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => self.add_bytes(&name, &bytes),
            Err(error) => self.whole_file(
                &name,
                ProblemKind::Io,
                format!("cannot read the file: {error}"),
            ),
        }
    }

    /// Adds a DTDL document's text; `source` names it in errors.
    pub fn add_text(&mut self, source: &str, text: &str) {
        self.add_bytes(source, text.as_bytes());
    }

    fn add_bytes(&mut self, source: &str, bytes: &[u8]) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => self.add_value(source, value),
            Err(error) => {
                let file = self.name(source);
                let (line, column) = (error.line(), error.column());
                let full = error.to_string();
                let message = full
                    .strip_suffix(&format!(" at line {line} column {column}"))
                    .unwrap_or(&full);
                self.problems.push(ModelProblem {
                    kind: ProblemKind::Json,
                    file,
                    id: None,
                    path: format!("{line}:{column}"),
                    message: format!("not valid JSON: {message}"),
                });
            }
        }
    }

    /// Adds an already parsed DTDL document (an Interface object or an array of them);
    /// `source` names it in errors, e.g. `graph.ndjson:3`.
    pub fn add_value(&mut self, source: &str, value: Value) {
        let file = self.name(source);
        self.sources.push((file, value));
    }

    /// Reads and resolves every source: the models, or every problem found, grouped by file
    /// in the order the files were added.
    pub fn finish(self) -> Result<ModelStore, ModelError> {
        let ModelReader {
            sources,
            mut problems,
            names,
        } = self;
        let mut raws = Vec::new();
        for (file, value) in &sources {
            read::read_document(file, value, &mut problems, &mut raws);
        }
        resolve::resolve(raws, problems).map_err(|mut problems| {
            let rank = |file: &Arc<str>| names.iter().position(|name| name == file);
            problems.sort_by_key(|problem| rank(&problem.file));
            ModelError { problems }
        })
    }

    /// A problem with a whole file or folder.
    fn whole_file(&mut self, name: &str, kind: ProblemKind, message: impl Into<String>) {
        let file = self.name(name);
        self.problems.push(ModelProblem {
            kind,
            file,
            id: None,
            path: String::new(),
            message: message.into(),
        });
    }

    /// Records that `name` was added.
    fn name(&mut self, name: &str) -> Arc<str> {
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        name
    }
}

/// Reads the DTDL files and folders at `paths` (see [`ModelReader::add_path`]).
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<ModelStore, ModelError> {
    let mut reader = ModelReader::new();
    for path in paths {
        reader.add_path(path.as_ref());
    }
    reader.finish()
}

/// The built-in graph's four models (`models/builtin/` in the repository), embedded: the
/// source name and the DTDL text of each.
pub const BUILTIN_MODELS: [(&str, &str); 4] = [
    (
        "models/builtin/building.json",
        include_str!("../../models/builtin/building.json"),
    ),
    (
        "models/builtin/floor.json",
        include_str!("../../models/builtin/floor.json"),
    ),
    (
        "models/builtin/room.json",
        include_str!("../../models/builtin/room.json"),
    ),
    (
        "models/builtin/sensor.json",
        include_str!("../../models/builtin/sensor.json"),
    ),
];

/// The built-in graph's models, read from [`BUILTIN_MODELS`].
pub fn builtin() -> Result<ModelStore, ModelError> {
    let mut reader = ModelReader::new();
    for (source, text) in BUILTIN_MODELS {
        reader.add_text(source, text);
    }
    reader.finish()
}
