//! The small set of DTDL-like models the generated twin graph uses.
//!
//! Model ids follow the `dtmi:example:com:*` pattern of ADT's documentation, so the documented
//! example filters (`STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')`) select
//! generated events as they would real ones.

use std::ops::Range;

/// How values of a property or telemetry field are drawn.
#[derive(Clone, Copy, Debug)]
pub enum ValueKind {
    /// One of a fixed vocabulary.
    Text(&'static [&'static str]),
    /// A serial-like text: the prefix and a random number.
    Serial(&'static str),
    /// An integer in `min..=max`.
    Int {
        /// The smallest value drawn.
        min: i64,
        /// The largest value drawn.
        max: i64,
    },
    /// A double in `min..max`, rounded to two decimals.
    Float {
        /// The smallest value drawn.
        min: f64,
        /// The bound values stay below.
        max: f64,
    },
    /// A boolean.
    Bool,
}

/// A property (or telemetry field) of a model.
#[derive(Debug)]
pub struct PropertyDef {
    /// Name, as in the payload.
    pub name: &'static str,
    /// JSON Patch path of the property: `/` + name.
    pub path: &'static str,
    /// How values are drawn.
    pub kind: ValueKind,
}

/// A relationship a model's twins have to twins of another model.
#[derive(Debug)]
pub struct RelationshipDef {
    /// `$relationshipName`.
    pub name: &'static str,
    /// The target model.
    pub target: ModelKind,
    /// The relationship's properties.
    pub properties: &'static [PropertyDef],
}

/// The models of the generated graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `dtmi:example:com:building;1`
    Building,
    /// `dtmi:example:com:floor;1`
    Floor,
    /// `dtmi:example:com:room;1`
    Room,
    /// `dtmi:example:com:sensor;1`: the twins that send telemetry.
    Sensor,
}

/// A model: id, twin-id prefix, properties, telemetry and outgoing relationship.
#[derive(Debug)]
pub struct Model {
    /// DTMI.
    pub id: &'static str,
    /// Twin ids are `<prefix>-<slot>`.
    pub prefix: &'static str,
    /// Properties every twin of the model has.
    pub properties: &'static [PropertyDef],
    /// Telemetry fields (empty: the model sends none).
    pub telemetry: &'static [PropertyDef],
    /// The relationship from twins of this model, if any.
    pub relationship: Option<RelationshipDef>,
}

/// Slot models repeat with this period (see [`ModelKind::for_slot`]).
pub const SLOT_PATTERN: u32 = 50;

const NAMES: &[&str] = &[
    "north", "south", "east", "west", "atrium", "annex", "lab", "lobby",
];

static BUILDING: Model = Model {
    id: "dtmi:example:com:building;1",
    prefix: "building",
    properties: &[
        PropertyDef {
            name: "name",
            path: "/name",
            kind: ValueKind::Text(NAMES),
        },
        PropertyDef {
            name: "yearBuilt",
            path: "/yearBuilt",
            kind: ValueKind::Int {
                min: 1950,
                max: 2026,
            },
        },
    ],
    telemetry: &[],
    relationship: Some(RelationshipDef {
        name: "contains",
        target: ModelKind::Floor,
        properties: &[PropertyDef {
            name: "order",
            path: "/order",
            kind: ValueKind::Int { min: 0, max: 60 },
        }],
    }),
};

static FLOOR: Model = Model {
    id: "dtmi:example:com:floor;1",
    prefix: "floor",
    properties: &[
        PropertyDef {
            name: "name",
            path: "/name",
            kind: ValueKind::Text(NAMES),
        },
        PropertyDef {
            name: "level",
            path: "/level",
            kind: ValueKind::Int { min: -2, max: 60 },
        },
    ],
    telemetry: &[],
    relationship: Some(RelationshipDef {
        name: "contains",
        target: ModelKind::Room,
        properties: &[PropertyDef {
            name: "order",
            path: "/order",
            kind: ValueKind::Int { min: 0, max: 200 },
        }],
    }),
};

static ROOM: Model = Model {
    id: "dtmi:example:com:room;1",
    prefix: "room",
    properties: &[
        PropertyDef {
            name: "name",
            path: "/name",
            kind: ValueKind::Text(NAMES),
        },
        PropertyDef {
            name: "capacity",
            path: "/capacity",
            kind: ValueKind::Int { min: 1, max: 400 },
        },
        PropertyDef {
            name: "occupied",
            path: "/occupied",
            kind: ValueKind::Bool,
        },
        PropertyDef {
            name: "targetTemperature",
            path: "/targetTemperature",
            kind: ValueKind::Float {
                min: 17.0,
                max: 25.0,
            },
        },
    ],
    telemetry: &[],
    relationship: Some(RelationshipDef {
        name: "hasSensor",
        target: ModelKind::Sensor,
        properties: &[
            PropertyDef {
                name: "mount",
                path: "/mount",
                kind: ValueKind::Text(&["ceiling", "wall", "desk", "duct"]),
            },
            PropertyDef {
                name: "calibrated",
                path: "/calibrated",
                kind: ValueKind::Bool,
            },
        ],
    }),
};

static SENSOR: Model = Model {
    id: "dtmi:example:com:sensor;1",
    prefix: "sensor",
    properties: &[
        PropertyDef {
            name: "serialNumber",
            path: "/serialNumber",
            kind: ValueKind::Serial("SN-"),
        },
        PropertyDef {
            name: "firmware",
            path: "/firmware",
            kind: ValueKind::Text(&["1.0.3", "1.1.0", "2.0.1"]),
        },
        PropertyDef {
            name: "battery",
            path: "/battery",
            kind: ValueKind::Float {
                min: 0.0,
                max: 100.0,
            },
        },
    ],
    telemetry: &[
        PropertyDef {
            name: "temperature",
            path: "/temperature",
            kind: ValueKind::Float {
                min: 15.0,
                max: 32.0,
            },
        },
        PropertyDef {
            name: "humidity",
            path: "/humidity",
            kind: ValueKind::Float {
                min: 20.0,
                max: 80.0,
            },
        },
    ],
    relationship: None,
};

impl ModelKind {
    /// Every model.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Building,
        ModelKind::Floor,
        ModelKind::Room,
        ModelKind::Sensor,
    ];

    /// The model's definition.
    pub fn model(self) -> &'static Model {
        match self {
            ModelKind::Building => &BUILDING,
            ModelKind::Floor => &FLOOR,
            ModelKind::Room => &ROOM,
            ModelKind::Sensor => &SENSOR,
        }
    }

    /// The positions, within each run of [`SLOT_PATTERN`] slots, of the twins of this model.
    pub fn slot_residues(self) -> Range<u32> {
        match self {
            ModelKind::Building => 0..1,
            ModelKind::Floor => 1..5,
            ModelKind::Room => 5..20,
            ModelKind::Sensor => 20..SLOT_PATTERN,
        }
    }

    /// The model of twin slot `slot`: in every 50 slots, 1 building, 4 floors, 15 rooms and 30
    /// sensors, which gives each container a handful of children.
    pub fn for_slot(slot: u32) -> ModelKind {
        let residue = slot % SLOT_PATTERN;
        ModelKind::ALL
            .into_iter()
            .find(|kind| kind.slot_residues().contains(&residue))
            .unwrap_or(ModelKind::Sensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_residues_tile_the_pattern_in_model_order() {
        let mut next = 0;
        for kind in ModelKind::ALL {
            let residues = kind.slot_residues();
            assert_eq!(residues.start, next, "{kind:?}");
            next = residues.end;
        }
        assert_eq!(next, SLOT_PATTERN);
        let counts =
            ModelKind::ALL.map(|kind| (0..100).filter(|s| ModelKind::for_slot(*s) == kind).count());
        assert_eq!(counts, [2, 8, 30, 60]);
    }
}
