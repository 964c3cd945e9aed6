//! The twin graph's state machine: which twins and relationships exist, and the next event.
//!
//! Memory follows the twins that exist, not the pool: a twin's state is made when it is created
//! and dropped when it is deleted (a re-created twin gets the same id and telemetry source, and
//! fresh properties and etag, exactly as before). The slots of a model and the dead slots are
//! computed, not listed (see `slots`), so `workload.twins` of a billion costs nothing up front.

use std::collections::VecDeque;
use std::sync::Arc;

use foldhash::fast::RandomState as FastHash;
use indexmap::IndexMap;
use rand::Rng;

use super::models::{ModelKind, PropertyDef, ValueKind};
use super::slots::{DeadSlots, SlotSet};
use crate::clock::AdtTime;
use crate::event::{
    Event, EventData, EventId, EventType, PatchData, PatchOp, PatchOpKind, PropValue, Property,
    RelationshipData, TraceParent, TwinData,
};
use crate::seed::SeededRng;

/// A twin that exists.
struct Twin {
    id: Arc<str>,
    model: ModelKind,
    etag: Arc<str>,
    properties: Vec<Property>,
    /// Keys of the relationships this twin is the source or the target of.
    relationships: Vec<u64>,
    /// `<host>/digitaltwins/<id>`, made the first time the twin sends telemetry.
    telemetry_source: Option<Arc<str>>,
}

struct Relationship {
    data: RelationshipData,
    subject: Arc<str>,
    source: u32,
    target: u32,
}

/// Events forced by an earlier one: a twin delete first deletes the twin's relationships.
enum Pending {
    DeleteRelationship(u64),
    DeleteTwin(u32),
}

pub(super) struct Graph {
    host: Arc<str>,
    /// Slots in the pool: `0..pool`.
    pool: u32,
    /// The twins that exist, by slot, in the order of an `IndexSet` of their slots (random
    /// picks index into it). foldhash: this is looked up on every event, and the order does not
    /// depend on the hasher.
    live: IndexMap<u32, Twin, FastHash>,
    /// Slots whose twin does not exist.
    dead: DeadSlots,
    slots_by_model: [SlotSet; 4],
    /// Slots whose model has a relationship to a model that has slots.
    sources: SlotSet,
    relationships: IndexMap<u64, Relationship>,
    pending: VecDeque<Pending>,
}

fn model_index(kind: ModelKind) -> usize {
    ModelKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

fn relationship_key(source: u32, target: u32) -> u64 {
    (u64::from(source) << 32) | u64::from(target)
}

impl Graph {
    pub(super) fn new(pool: u32, host: Arc<str>) -> Self {
        let slots_by_model =
            ModelKind::ALL.map(|kind| SlotSet::new(pool, vec![kind.slot_residues()]));
        let sources = SlotSet::new(
            pool,
            ModelKind::ALL
                .into_iter()
                .filter(|kind| {
                    kind.model()
                        .relationship
                        .as_ref()
                        .is_some_and(|relationship| {
                            slots_by_model[model_index(relationship.target)].len() > 0
                        })
                })
                .map(ModelKind::slot_residues)
                .collect(),
        );
        Graph {
            host,
            pool,
            live: IndexMap::default(),
            dead: DeadSlots::new(pool),
            slots_by_model,
            sources,
            relationships: IndexMap::new(),
            pending: VecDeque::new(),
        }
    }

    fn alive(&self, slot: u32) -> bool {
        self.live.contains_key(&slot)
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next event: a pending one if any, else one of type `wanted` (or its prerequisite).
    pub(super) fn next_event(
        &mut self,
        wanted: Option<EventType>,
        time: AdtTime,
        rng: &mut SeededRng,
    ) -> Event {
        if let Some(pending) = self.pending.pop_front() {
            return match pending {
                Pending::DeleteRelationship(key) => self.delete_relationship(key, time, rng),
                Pending::DeleteTwin(slot) => self.delete_twin(slot, time, rng),
            };
        }
        let n = self.pool;
        match wanted.unwrap_or(EventType::TwinUpdate) {
            EventType::TwinCreate => match pick_index(self.dead.len() as usize, rng) {
                Some(index) => {
                    let slot = self.dead.get(index as u32);
                    self.create_twin(slot, time, rng)
                }
                None => {
                    let slot = rng.random_range(0..n);
                    self.update_twin(slot, time, rng)
                }
            },
            EventType::TwinUpdate => {
                let slot = rng.random_range(0..n);
                self.update_or_create(slot, time, rng)
            }
            EventType::TwinDelete => match pick_index(self.live.len(), rng) {
                Some(index) => {
                    let Some((&slot, twin)) = self.live.get_index(index) else {
                        return self.update_or_create(index as u32, time, rng);
                    };
                    for &key in &twin.relationships {
                        self.pending.push_back(Pending::DeleteRelationship(key));
                    }
                    self.pending.push_back(Pending::DeleteTwin(slot));
                    self.next_event(None, time, rng)
                }
                None => {
                    let slot = rng.random_range(0..n);
                    self.create_twin(slot, time, rng)
                }
            },
            EventType::RelationshipCreate => self.relate(time, rng),
            EventType::RelationshipUpdate | EventType::RelationshipDelete => {
                match pick_index(self.relationships.len(), rng) {
                    Some(index) => {
                        let key = *self
                            .relationships
                            .get_index(index)
                            .map(|(key, _)| key)
                            .unwrap_or(&0);
                        if wanted == Some(EventType::RelationshipDelete) {
                            self.delete_relationship(key, time, rng)
                        } else {
                            self.update_relationship(key, time, rng)
                        }
                    }
                    None => self.relate(time, rng),
                }
            }
            EventType::Telemetry => {
                let sensors = &self.slots_by_model[model_index(ModelKind::Sensor)];
                match pick_index(sensors.len() as usize, rng) {
                    Some(index) => {
                        let slot = sensors.get(index as u32);
                        match self.telemetry(slot, rng) {
                            Some(event) => event,
                            None => self.create_twin(slot, time, rng),
                        }
                    }
                    None => {
                        let slot = rng.random_range(0..n);
                        self.update_or_create(slot, time, rng)
                    }
                }
            }
        }
    }

    fn update_or_create(&mut self, slot: u32, time: AdtTime, rng: &mut SeededRng) -> Event {
        if self.alive(slot) {
            self.update_twin(slot, time, rng)
        } else {
            self.create_twin(slot, time, rng)
        }
    }

    /// A Relationship.Create between a random source and target, creating either twin first if
    /// it does not exist, or an update if the two are related already.
    fn relate(&mut self, time: AdtTime, rng: &mut SeededRng) -> Event {
        let Some(index) = pick_index(self.sources.len() as usize, rng) else {
            let slot = rng.random_range(0..self.pool);
            return self.update_or_create(slot, time, rng);
        };
        let source = self.sources.get(index as u32);
        let Some(source_twin) = self.live.get(&source) else {
            return self.create_twin(source, time, rng);
        };
        let Some(definition) = source_twin.model.model().relationship.as_ref() else {
            return self.update_twin(source, time, rng);
        };
        let source_id = source_twin.id.clone();
        let targets = &self.slots_by_model[model_index(definition.target)];
        let target = targets.get(rng.random_range(0..targets.len() as usize) as u32);
        let Some(target_id) = self.live.get(&target).map(|twin| twin.id.clone()) else {
            return self.create_twin(target, time, rng);
        };
        let key = relationship_key(source, target);
        if self.relationships.contains_key(&key) {
            return self.update_relationship(key, time, rng);
        }
        let id: Arc<str> = Arc::from(format!("{source_id}-{}-{target_id}", definition.name));
        let subject: Arc<str> = Arc::from(format!("{source_id}/relationships/{id}"));
        let data = RelationshipData {
            id,
            etag: etag(rng),
            name: definition.name,
            source_id: source_id.clone(),
            target_id,
            properties: definition
                .properties
                .iter()
                .map(|p| (p.name, draw_value(p, rng)))
                .collect(),
        };
        let event = self.twin_event(
            EventType::RelationshipCreate,
            source_id,
            Some(subject.clone()),
            time,
            rng,
            EventData::Relationship(data.clone()),
        );
        self.relationships.insert(
            key,
            Relationship {
                data,
                subject,
                source,
                target,
            },
        );
        for slot in [source, target] {
            if let Some(twin) = self.live.get_mut(&slot) {
                twin.relationships.push(key);
            }
        }
        event
    }

    fn update_relationship(&mut self, key: u64, time: AdtTime, rng: &mut SeededRng) -> Event {
        let new_etag = etag(rng);
        let Some(relationship) = self.relationships.get_mut(&key) else {
            return self.relate(time, rng);
        };
        let source_model = ModelKind::for_slot(relationship.source).model();
        let definition = source_model
            .relationship
            .as_ref()
            .map(|r| r.properties)
            .unwrap_or(&[]);
        let mut patch = Vec::with_capacity(1);
        if let Some(index) = pick_index(definition.len(), rng) {
            let property = &definition[index];
            let value = draw_value(property, rng);
            if let Some(slot) = relationship
                .data
                .properties
                .iter_mut()
                .find(|(name, _)| *name == property.name)
            {
                slot.1 = value.clone();
            }
            patch.push(PatchOp {
                op: PatchOpKind::Replace,
                path: property.path,
                value: Some(value),
            });
        }
        relationship.data.etag = new_etag;
        let subject = relationship.subject.clone();
        let twin_id = relationship.data.source_id.clone();
        let data = EventData::Patch(PatchData {
            model_id: source_model.id,
            patch,
        });
        self.twin_event(
            EventType::RelationshipUpdate,
            twin_id,
            Some(subject),
            time,
            rng,
            data,
        )
    }

    fn delete_relationship(&mut self, key: u64, time: AdtTime, rng: &mut SeededRng) -> Event {
        let Some(relationship) = self.relationships.swap_remove(&key) else {
            return self.relate(time, rng);
        };
        for slot in [relationship.source, relationship.target] {
            if let Some(twin) = self.live.get_mut(&slot) {
                twin.relationships.retain(|k| *k != key);
            }
        }
        let twin_id = relationship.data.source_id.clone();
        let data = EventData::Relationship(relationship.data);
        self.twin_event(
            EventType::RelationshipDelete,
            twin_id,
            Some(relationship.subject),
            time,
            rng,
            data,
        )
    }

    fn create_twin(&mut self, slot: u32, time: AdtTime, rng: &mut SeededRng) -> Event {
        let new_etag = etag(rng);
        let model = ModelKind::for_slot(slot);
        let id: Arc<str> = Arc::from(format!("{}-{slot}", model.model().prefix));
        let properties = model
            .model()
            .properties
            .iter()
            .map(|p| Property {
                name: p.name,
                value: draw_value(p, rng),
                last_update: time,
            })
            .collect();
        let twin = Twin {
            id: id.clone(),
            model,
            etag: new_etag,
            properties,
            relationships: Vec::new(),
            telemetry_source: None,
        };
        let data = EventData::Twin(twin_data(&twin));
        self.dead.swap_remove(slot);
        self.live.insert(slot, twin);
        self.twin_event(EventType::TwinCreate, id.clone(), Some(id), time, rng, data)
    }

    fn update_twin(&mut self, slot: u32, time: AdtTime, rng: &mut SeededRng) -> Event {
        if !self.alive(slot) {
            return self.create_twin(slot, time, rng);
        }
        let new_etag = etag(rng);
        let Some(twin) = self.live.get_mut(&slot) else {
            return self.create_twin(slot, time, rng);
        };
        let definitions = twin.model.model().properties;
        let changes = if definitions.len() > 1 && rng.random_bool(0.25) {
            2
        } else {
            1
        };
        let first = rng.random_range(0..definitions.len());
        let mut patch = Vec::with_capacity(changes);
        for offset in 0..changes {
            let index = (first + offset) % definitions.len();
            let value = draw_value(&definitions[index], rng);
            if let Some(property) = twin.properties.get_mut(index) {
                property.value = value.clone();
                property.last_update = time;
            }
            patch.push(PatchOp {
                op: PatchOpKind::Replace,
                path: definitions[index].path,
                value: Some(value),
            });
        }
        twin.etag = new_etag;
        let data = EventData::Patch(PatchData {
            model_id: twin.model.model().id,
            patch,
        });
        let id = twin.id.clone();
        self.twin_event(EventType::TwinUpdate, id.clone(), Some(id), time, rng, data)
    }

    fn delete_twin(&mut self, slot: u32, time: AdtTime, rng: &mut SeededRng) -> Event {
        let Some(twin) = self.live.swap_remove(&slot) else {
            return self.create_twin(slot, time, rng);
        };
        let data = EventData::Twin(twin_data(&twin));
        let id = twin.id.clone();
        self.dead.push(slot);
        self.twin_event(EventType::TwinDelete, id.clone(), Some(id), time, rng, data)
    }

    /// Telemetry from the twin at `slot`; `None` (and nothing drawn) if it does not exist.
    fn telemetry(&mut self, slot: u32, rng: &mut SeededRng) -> Option<Event> {
        let host = &self.host;
        let twin = self.live.get_mut(&slot)?;
        let model = twin.model.model();
        let source = twin
            .telemetry_source
            .get_or_insert_with(|| Arc::from(format!("{host}/digitaltwins/{}", twin.id)))
            .clone();
        let fields = model
            .telemetry
            .iter()
            .map(|p| (p.name, draw_value(p, rng)))
            .collect();
        Some(Event {
            id: event_id(rng),
            kind: EventType::Telemetry,
            source,
            subject: None,
            time: None,
            datacontenttype: "application/json",
            dataschema: Some(model.id),
            traceparent: traceparent(rng),
            twin_id: twin.id.clone(),
            data: EventData::Telemetry(fields),
        })
    }

    /// A twin or relationship event: `source` is the instance host and `time` is set.
    fn twin_event(
        &self,
        kind: EventType,
        twin_id: Arc<str>,
        subject: Option<Arc<str>>,
        time: AdtTime,
        rng: &mut SeededRng,
        data: EventData,
    ) -> Event {
        Event {
            id: event_id(rng),
            kind,
            source: self.host.clone(),
            subject,
            time: Some(time),
            datacontenttype: "application/json",
            dataschema: None,
            traceparent: traceparent(rng),
            twin_id,
            data,
        }
    }
}

fn twin_data(twin: &Twin) -> TwinData {
    TwinData {
        dt_id: twin.id.clone(),
        etag: twin.etag.clone(),
        model: twin.model.model().id,
        properties: twin.properties.clone(),
    }
}

fn pick_index(len: usize, rng: &mut SeededRng) -> Option<usize> {
    (len > 0).then(|| rng.random_range(0..len))
}

fn draw_value(property: &PropertyDef, rng: &mut SeededRng) -> PropValue {
    match property.kind {
        ValueKind::Text(words) => {
            PropValue::Str(Arc::from(words[rng.random_range(0..words.len())]))
        }
        ValueKind::Serial(prefix) => PropValue::Str(Arc::from(format!(
            "{prefix}{:08}",
            rng.random_range(0..100_000_000u32)
        ))),
        ValueKind::Int { min, max } => PropValue::Int(rng.random_range(min..=max)),
        ValueKind::Float { min, max } => {
            PropValue::Float((rng.random_range(min..max) * 100.0).round() / 100.0)
        }
        ValueKind::Bool => PropValue::Bool(rng.random_bool(0.5)),
    }
}

fn uuid(rng: &mut SeededRng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

fn event_id(rng: &mut SeededRng) -> EventId {
    let mut buffer = [0u8; 36];
    let text = uuid(rng).hyphenated().encode_lower(&mut buffer);
    EventId::from(text).unwrap_or_default()
}

/// `W/"<uuid>"`, as ADT's weak etags look; built on the stack, one allocation for the `Arc`.
fn etag(rng: &mut SeededRng) -> Arc<str> {
    let mut buffer = *b"W/\"00000000-0000-0000-0000-000000000000\"";
    uuid(rng).hyphenated().encode_lower(&mut buffer[3..39]);
    Arc::from(std::str::from_utf8(&buffer).unwrap_or_default())
}

fn traceparent(rng: &mut SeededRng) -> TraceParent {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let trace: [u8; 16] = rng.random();
    let span: [u8; 8] = rng.random();
    let mut text = TraceParent::new();
    text.push_str("00-");
    for byte in trace {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 15)] as char);
    }
    text.push('-');
    for byte in span {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 15)] as char);
    }
    text.push_str("-01");
    text
}
