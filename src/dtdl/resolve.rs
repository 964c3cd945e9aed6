//! Interfaces as written to the resolved [`ModelStore`]: duplicate ids, schemas, `extends`
//! (transitively, cycles reported), inherited contents and their names, components and
//! relationship targets.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};

use super::error::{Loc, ModelProblem, ProblemKind};
use super::model::{Component, DtdlVersion, Model, ModelStore, Property, Relationship, Telemetry};
use super::read::{RawInterface, RawKind, RawProperty, Reference};
use super::schemas::SchemaResolver;

/// `extends` chains longer than this are refused (DTDL allows 10; this bound keeps hostile
/// input from exhausting the stack).
pub(super) const MAX_EXTENDS_DEPTH: usize = 64;

/// An interface with its own contents read, schemas resolved.
struct Own {
    id: String,
    loc: Loc,
    version: DtdlVersion,
    display_name: Option<String>,
    extends: Vec<Reference>,
    contents: Vec<OwnContent>,
}

struct OwnContent {
    name: String,
    loc: Loc,
    kind: OwnKind,
    /// The interface that declares it.
    defined_in: String,
}

enum OwnKind {
    Property(Property),
    Telemetry(Telemetry),
    /// With where its `target` is written.
    Relationship(Relationship, Option<Loc>),
    Component(Reference),
    Command,
}

/// Resolves `raws` (every interface read, in source order). `problems` holds the reading
/// problems so far; the store is built only if there are none at the end.
pub(super) fn resolve(
    raws: Vec<RawInterface<'_>>,
    mut problems: Vec<ModelProblem>,
) -> Result<ModelStore, Vec<ModelProblem>> {
    let mut unique: IndexMap<String, RawInterface<'_>> = IndexMap::with_capacity(raws.len());
    for raw in raws {
        if let Some(first) = unique.get(&raw.id) {
            problems.push(raw.loc.problem(
                ProblemKind::ModelAlreadyExists,
                format!(
                    "ModelAlreadyExists: {} is already defined ({}: {})",
                    raw.id, first.loc.file, first.loc.path
                ),
            ));
            continue;
        }
        unique.insert(raw.id.clone(), raw);
    }
    let owns = own_contents(&unique, &mut problems);
    let graph = Graph::new(&owns, &mut problems);
    let flattened = graph.flatten(&owns, &mut problems);
    check_references(&owns, &graph, &flattened, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(build(&owns, &graph, flattened))
}

/// Reads every interface's own contents, resolving their schemas.
fn own_contents(
    unique: &IndexMap<String, RawInterface<'_>>,
    problems: &mut Vec<ModelProblem>,
) -> Vec<Own> {
    let mut resolver = SchemaResolver::new(unique.values(), problems);
    resolver.resolve_reusable();
    unique
        .values()
        .map(|raw| Own {
            id: raw.id.clone(),
            loc: raw.loc.clone(),
            version: raw.version,
            display_name: raw.display_name.clone(),
            extends: raw
                .extends
                .iter()
                .map(|reference| Reference {
                    id: reference.id.clone(),
                    loc: reference.loc.clone(),
                })
                .collect(),
            contents: raw
                .contents
                .iter()
                .filter_map(|content| {
                    let kind = match &content.kind {
                        RawKind::Property(property) => {
                            OwnKind::Property(read_property(&mut resolver, property, raw)?)
                        }
                        RawKind::Telemetry(telemetry) => OwnKind::Telemetry(Telemetry {
                            name: content.name.clone(),
                            schema: resolver.resolve(&telemetry.schema, raw.version)?.schema,
                            semantic_types: telemetry.semantic_types.clone(),
                            unit: telemetry.unit.clone(),
                            defined_in: raw.id.clone(),
                        }),
                        RawKind::Relationship(relationship) => {
                            let properties: Vec<Option<Property>> = relationship
                                .properties
                                .iter()
                                .map(|property| read_property(&mut resolver, property, raw))
                                .collect();
                            OwnKind::Relationship(
                                Relationship {
                                    name: content.name.clone(),
                                    target: relationship.target.as_ref().map(|t| t.id.clone()),
                                    properties: properties.into_iter().collect::<Option<_>>()?,
                                    max_multiplicity: relationship.max_multiplicity,
                                    min_multiplicity: relationship.min_multiplicity,
                                    writable: relationship.writable,
                                    defined_in: raw.id.clone(),
                                },
                                relationship.target.as_ref().map(|t| t.loc.clone()),
                            )
                        }
                        RawKind::Component(reference) => OwnKind::Component(Reference {
                            id: reference.id.clone(),
                            loc: reference.loc.clone(),
                        }),
                        RawKind::Command => OwnKind::Command,
                    };
                    Some(OwnContent {
                        name: content.name.clone(),
                        loc: content.loc.clone(),
                        kind,
                        defined_in: raw.id.clone(),
                    })
                })
                .collect(),
        })
        .collect()
}

/// A Property (of an interface or a relationship); in DTDL v2 its schema may hold no Array.
fn read_property<'v>(
    resolver: &mut SchemaResolver<'v, '_>,
    property: &RawProperty<'v>,
    interface: &RawInterface<'v>,
) -> Option<Property> {
    let resolved = resolver.resolve(&property.schema, interface.version)?;
    if resolved.has_array && interface.version == DtdlVersion::V2 {
        resolver.report(property.schema.loc.problem(
            ProblemKind::Schema,
            "an Array (or a geospatial schema, which holds arrays) in a Property's schema needs DTDL v3; this interface is DTDL v2",
        ));
        return None;
    }
    Some(Property {
        name: property.name.clone(),
        schema: resolved.schema,
        writable: property.writable,
        semantic_types: property.semantic_types.clone(),
        unit: property.unit.clone(),
        defined_in: interface.id.clone(),
    })
}

/// The `extends` graph over the interfaces, by index, linearized.
struct Graph {
    index: HashMap<String, usize>,
    /// Each interface's loaded `extends` targets, in order.
    parents: Vec<Vec<usize>>,
    /// Each interface's ancestors, each once, root-most first.
    linear: Vec<IndexSet<usize>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    Active,
    Done,
}

impl Graph {
    fn new(owns: &[Own], problems: &mut Vec<ModelProblem>) -> Graph {
        let index: HashMap<String, usize> = owns
            .iter()
            .enumerate()
            .map(|(i, own)| (own.id.clone(), i))
            .collect();
        let mut parents = vec![Vec::new(); owns.len()];
        for (i, own) in owns.iter().enumerate() {
            for reference in &own.extends {
                let Some(&parent) = index.get(&reference.id) else {
                    problems.push(reference.loc.problem(
                        ProblemKind::MissingExtends,
                        format!("extends {}, which is not loaded", reference.id),
                    ));
                    continue;
                };
                if own.version == DtdlVersion::V2 && owns[parent].version == DtdlVersion::V3 {
                    problems.push(reference.loc.problem(
                        ProblemKind::Version,
                        format!(
                            "a DTDL v2 interface cannot extend {}, a DTDL v3 interface",
                            reference.id
                        ),
                    ));
                }
                parents[i].push(parent);
            }
        }
        let mut walk = Walk {
            owns,
            parents: &parents,
            marks: vec![Mark::New; owns.len()],
            linear: vec![IndexSet::new(); owns.len()],
            height: vec![0; owns.len()],
            stack: Vec::new(),
            problems,
        };
        for i in 0..owns.len() {
            walk.visit(i);
        }
        let linear = walk.linear;
        Graph {
            index,
            parents,
            linear,
        }
    }

    /// Every interface's contents, inherited ones first, each name once; conflicts reported
    /// at the interface where they first meet.
    fn flatten<'o>(
        &self,
        owns: &'o [Own],
        problems: &mut Vec<ModelProblem>,
    ) -> Vec<Vec<&'o OwnContent>> {
        let mut flattened = Vec::with_capacity(owns.len());
        for (i, own) in owns.iter().enumerate() {
            let mut by_name: HashMap<&str, usize> = HashMap::new();
            let mut contents = Vec::new();
            for definer in self.linear[i].iter().copied().chain([i]) {
                for content in &owns[definer].contents {
                    match by_name.get(content.name.as_str()) {
                        None => {
                            by_name.insert(&content.name, definer);
                            contents.push(content);
                        }
                        Some(&first) if definer == i => {
                            let message = if first == i {
                                format!("duplicate name {}: declared twice", content.name)
                            } else {
                                format!(
                                    "duplicate name {}: already declared by {}, which it extends",
                                    content.name, owns[first].id
                                )
                            };
                            problems.push(
                                content
                                    .loc
                                    .at(".name")
                                    .problem(ProblemKind::DuplicateName, message),
                            );
                        }
                        Some(&first) if first != definer && self.meet_here(i, first, definer) => {
                            problems.push(own.loc.at(".extends").problem(
                                ProblemKind::DuplicateName,
                                format!(
                                    "duplicate name {}: inherited from both {} and {}",
                                    content.name, owns[first].id, owns[definer].id
                                ),
                            ));
                        }
                        // Reported where the two first met (or inside `definer`).
                        Some(_) => {}
                    }
                }
            }
            flattened.push(contents);
        }
        flattened
    }

    /// Whether ancestors `a` and `b` of `i` first meet in `i`: no parent of `i` has both.
    fn meet_here(&self, i: usize, a: usize, b: usize) -> bool {
        let has = |p: usize, x: usize| p == x || self.linear[p].contains(&x);
        !self.parents[i].iter().any(|&p| has(p, a) && has(p, b))
    }
}

/// Depth-first walk of `extends`, marking cycles.
struct Walk<'a> {
    owns: &'a [Own],
    parents: &'a [Vec<usize>],
    marks: Vec<Mark>,
    linear: Vec<IndexSet<usize>>,
    height: Vec<usize>,
    stack: Vec<usize>,
    problems: &'a mut Vec<ModelProblem>,
}

impl Walk<'_> {
    fn visit(&mut self, i: usize) {
        if self.marks[i] != Mark::New {
            return;
        }
        if self.stack.len() >= MAX_EXTENDS_DEPTH {
            // The chain is too long wherever it is entered; `height` catches the chains
            // entered from their root end, this the others.
            self.problems.push(self.owns[i].loc.at(".extends").problem(
                ProblemKind::Interface,
                format!(
                    "extends chain deeper than {MAX_EXTENDS_DEPTH} interfaces (DTDL allows 10)"
                ),
            ));
            self.marks[i] = Mark::Done;
            return;
        }
        self.marks[i] = Mark::Active;
        self.stack.push(i);
        let mut linear = IndexSet::new();
        let mut height = 0;
        for &parent in &self.parents[i] {
            if self.marks[parent] == Mark::Active {
                let start = self
                    .stack
                    .iter()
                    .position(|&s| s == parent)
                    .unwrap_or_default();
                let cycle: Vec<&str> = self.stack[start..]
                    .iter()
                    .chain([&parent])
                    .map(|&s| self.owns[s].id.as_str())
                    .collect();
                let loc = self.owns[i]
                    .extends
                    .iter()
                    .filter(|r| r.id == self.owns[parent].id)
                    .map(|r| r.loc.clone())
                    .next()
                    .unwrap_or_else(|| self.owns[i].loc.at(".extends"));
                self.problems.push(loc.problem(
                    ProblemKind::ExtendsCycle,
                    format!("extends cycle: {}", cycle.join(" → ")),
                ));
                continue;
            }
            self.visit(parent);
            for &ancestor in &self.linear[parent] {
                linear.insert(ancestor);
            }
            linear.insert(parent);
            height = height.max(self.height[parent] + 1);
        }
        self.stack.pop();
        if height > MAX_EXTENDS_DEPTH
            && self.parents[i]
                .iter()
                .all(|&p| self.height[p] <= MAX_EXTENDS_DEPTH)
        {
            self.problems.push(self.owns[i].loc.at(".extends").problem(
                ProblemKind::Interface,
                format!(
                    "extends chain deeper than {MAX_EXTENDS_DEPTH} interfaces (DTDL allows 10)"
                ),
            ));
        }
        self.marks[i] = Mark::Done;
        self.linear[i] = linear;
        self.height[i] = height;
    }
}

/// Components must be loaded, component-free interfaces; relationship targets loaded.
/// Checked where declared, so an inherited one is reported once.
fn check_references(
    owns: &[Own],
    graph: &Graph,
    flattened: &[Vec<&OwnContent>],
    problems: &mut Vec<ModelProblem>,
) {
    for own in owns {
        for content in &own.contents {
            match &content.kind {
                OwnKind::Component(reference) => {
                    let Some(&target) = graph.index.get(&reference.id) else {
                        problems.push(reference.loc.problem(
                            ProblemKind::ComponentNotInterface,
                            format!(
                                "component {}: its schema {} is not a loaded Interface",
                                content.name, reference.id
                            ),
                        ));
                        continue;
                    };
                    if flattened[target]
                        .iter()
                        .any(|c| matches!(c.kind, OwnKind::Component(_)))
                    {
                        problems.push(reference.loc.problem(
                            ProblemKind::NestedComponent,
                            format!(
                                "component {}: {} has components of its own, and components do not nest",
                                content.name, reference.id
                            ),
                        ));
                    }
                    if own.version == DtdlVersion::V2 && owns[target].version == DtdlVersion::V3 {
                        problems.push(reference.loc.problem(
                            ProblemKind::Version,
                            format!(
                                "a DTDL v2 interface cannot use {}, a DTDL v3 interface, as a component",
                                reference.id
                            ),
                        ));
                    }
                }
                OwnKind::Relationship(relationship, Some(loc)) => {
                    let target = relationship.target.as_deref().unwrap_or_default();
                    if !graph.index.contains_key(target) {
                        problems.push(loc.problem(
                            ProblemKind::TargetNotLoaded,
                            format!(
                                "relationship {}: its target {target} is not loaded",
                                relationship.name
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The store: component interfaces first (they hold no components), then the others.
fn build(owns: &[Own], graph: &Graph, flattened: Vec<Vec<&OwnContent>>) -> ModelStore {
    let mut built: Vec<Option<Arc<Model>>> = vec![None; owns.len()];
    for pass in [false, true] {
        for (i, own) in owns.iter().enumerate() {
            let has_components = flattened[i]
                .iter()
                .any(|c| matches!(c.kind, OwnKind::Component(_)));
            if has_components != pass {
                continue;
            }
            let mut model = Model {
                id: own.id.clone(),
                version: own.version,
                display_name: own.display_name.clone(),
                source: own.loc.file.clone(),
                extends: own.extends.iter().map(|r| r.id.clone()).collect(),
                ancestors: graph.linear[i]
                    .iter()
                    .map(|&a| owns[a].id.clone())
                    .collect(),
                properties: Vec::new(),
                telemetry: Vec::new(),
                relationships: Vec::new(),
                components: Vec::new(),
            };
            for content in &flattened[i] {
                match &content.kind {
                    OwnKind::Property(property) => model.properties.push(property.clone()),
                    OwnKind::Telemetry(telemetry) => model.telemetry.push(telemetry.clone()),
                    OwnKind::Relationship(relationship, _) => {
                        model.relationships.push(relationship.clone())
                    }
                    OwnKind::Component(reference) => {
                        let interface = graph
                            .index
                            .get(&reference.id)
                            .and_then(|&target| built[target].clone());
                        if let Some(interface) = interface {
                            model.components.push(Component {
                                name: content.name.clone(),
                                model: interface,
                                defined_in: content.defined_in.clone(),
                            });
                        }
                    }
                    OwnKind::Command => {}
                }
            }
            built[i] = Some(Arc::new(model));
        }
    }
    let models = built
        .into_iter()
        .flatten()
        .map(|model| (model.id.clone(), model))
        .collect();
    ModelStore { models }
}
