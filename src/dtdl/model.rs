//! The resolved view: each interface with everything it inherits, its components resolved to
//! their interfaces, and every schema a tree. This is what the generator and a server read.

use std::sync::Arc;

use indexmap::IndexMap;

use super::schema::Schema;

/// The DTDL version of an interface, from its `@context`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DtdlVersion {
    /// `dtmi:dtdl:context;2`.
    V2,
    /// `dtmi:dtdl:context;3`.
    V3,
}

impl DtdlVersion {
    /// The `@context` that selects this version.
    pub fn context(self) -> &'static str {
        match self {
            DtdlVersion::V2 => "dtmi:dtdl:context;2",
            DtdlVersion::V3 => "dtmi:dtdl:context;3",
        }
    }
}

/// A read and resolved model set: every interface by `@id`, in the order read.
#[derive(Clone, Debug, Default)]
pub struct ModelStore {
    pub(super) models: IndexMap<String, Arc<Model>>,
}

impl ModelStore {
    /// The model with `@id` `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Model>> {
        self.models.get(id)
    }

    /// Every model, in the order read (files sorted by path, interfaces in file order).
    pub fn models(&self) -> impl ExactSizeIterator<Item = &Arc<Model>> {
        self.models.values()
    }

    /// How many interfaces.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether no interface was read.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Whether a twin of model `id` fits a Relationship `target` (or a twin filter) of
    /// `ancestor`: it is that model or extends it, transitively.
    pub fn is_a(&self, id: &str, ancestor: &str) -> bool {
        self.get(id).is_some_and(|model| model.is_a(ancestor))
    }
}

/// One interface, resolved: own and inherited contents, components with their interfaces.
#[derive(Clone, Debug)]
pub struct Model {
    /// `@id`.
    pub id: String,
    /// From `@context`.
    pub version: DtdlVersion,
    /// `displayName` (the `en` entry of a language map, else its first).
    pub display_name: Option<String>,
    /// Where it was read from, as the user named it.
    pub source: Arc<str>,
    /// The interfaces named in `extends`, in order.
    pub extends: Vec<String>,
    /// Every interface it extends, transitively, each once, the root-most first: the order
    /// in which their contents come before its own.
    pub ancestors: Vec<String>,
    /// Properties, inherited ones first.
    pub properties: Vec<Property>,
    /// Telemetry, inherited first.
    pub telemetry: Vec<Telemetry>,
    /// Relationships, inherited first.
    pub relationships: Vec<Relationship>,
    /// Components, inherited first.
    pub components: Vec<Component>,
}

impl Model {
    /// Whether this is model `id` or extends it, transitively.
    pub fn is_a(&self, id: &str) -> bool {
        self.id == id || self.ancestors.iter().any(|ancestor| ancestor == id)
    }

    /// The Property called `name`, own or inherited.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The Telemetry called `name`.
    pub fn telemetry(&self, name: &str) -> Option<&Telemetry> {
        self.telemetry.iter().find(|t| t.name == name)
    }

    /// The Relationship called `name`.
    pub fn relationship(&self, name: &str) -> Option<&Relationship> {
        self.relationships.iter().find(|r| r.name == name)
    }

    /// The Component called `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// A Property of an interface (or of a Relationship).
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    /// `name`: the twin's JSON key.
    pub name: String,
    /// `schema`.
    pub schema: Schema,
    /// `writable` (default false).
    pub writable: bool,
    /// `@type` entries besides `Property`: semantic or extension types, `Temperature`.
    pub semantic_types: Vec<String>,
    /// `unit`, when a string.
    pub unit: Option<String>,
    /// The interface that declares it.
    pub defined_in: String,
}

/// A Telemetry of an interface.
#[derive(Clone, Debug, PartialEq)]
pub struct Telemetry {
    /// `name`: the key in a telemetry message.
    pub name: String,
    /// `schema`.
    pub schema: Schema,
    /// `@type` entries besides `Telemetry`.
    pub semantic_types: Vec<String>,
    /// `unit`, when a string.
    pub unit: Option<String>,
    /// The interface that declares it.
    pub defined_in: String,
}

/// A Relationship of an interface.
#[derive(Clone, Debug, PartialEq)]
pub struct Relationship {
    /// `name`: `$relationshipName`.
    pub name: String,
    /// `target`: the interface a target twin must be (or extend); `None`: any.
    pub target: Option<String>,
    /// `properties` (an array, or one object as some ontology files write it).
    pub properties: Vec<Property>,
    /// `maxMultiplicity`: at most this many relationships of this name per source twin.
    pub max_multiplicity: Option<u32>,
    /// `minMultiplicity` (DTDL allows only 0).
    pub min_multiplicity: Option<u32>,
    /// `writable` (default false).
    pub writable: bool,
    /// The interface that declares it.
    pub defined_in: String,
}

impl Relationship {
    /// The relationship Property called `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// A Component: an interface included by value under `name`.
#[derive(Clone, Debug)]
pub struct Component {
    /// `name`: the twin's JSON key holding the component.
    pub name: String,
    /// The component's interface, resolved (it has no components of its own).
    pub model: Arc<Model>,
    /// The interface that declares the component.
    pub defined_in: String,
}
