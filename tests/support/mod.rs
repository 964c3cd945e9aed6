//! Helpers shared by the integration tests.
#![allow(dead_code)]

use twinroute::event::{Event, EventType};
use twinroute::generator::{
    DEFAULT_MIX, DEFAULT_START_TIME, Generator, RateShape, WorkloadSettings,
};

/// The instance host the tests' events come from.
pub const HOST: &str = "contoso.api.wus2.digitaltwins.azure.net";

/// `count` events of the default mix with `seed`, over a pool of 300 twins.
pub fn events(seed: u64, count: u64) -> Vec<Event> {
    let settings = WorkloadSettings {
        seed,
        twins: 300,
        mix: DEFAULT_MIX,
        rate: RateShape::Constant {
            events_per_second: 1000.0,
        },
        count: Some(count),
        duration: None,
        start_time: None,
    };
    Generator::new(&settings, HOST, DEFAULT_START_TIME)
        .map(|s| s.event)
        .collect()
}

/// The first event of each type in `events`; panics if a type is missing.
pub fn one_of_each(events: &[Event]) -> Vec<&Event> {
    EventType::ALL
        .iter()
        .map(|kind| {
            events
                .iter()
                .find(|e| e.kind == *kind)
                .unwrap_or_else(|| panic!("no {kind} generated"))
        })
        .collect()
}
