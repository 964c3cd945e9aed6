//! The workload generator: a twin graph that lives, changes and dies in a realistic order, and
//! emits ADT's notifications for it on an open-model rate schedule.
//!
//! Order rules (ADT's own): a twin is created before any update, telemetry or relationship of it;
//! its relationships are deleted before it is (ADT refuses `RelationshipsNotDeleted`); nothing is
//! emitted for a deleted twin until it is created again. The event mix is honoured by weight:
//! each event draws a type, then picks a random twin slot; when the slot cannot take that type
//! yet (the twin does not exist), the prerequisite event is emitted instead. So the graph fills
//! up at the start and the mix converges to the weights once it has.
//!
//! Everything random comes from the `generator` stream of the master seed: the same settings and
//! seed give the same events, byte for byte.

mod graph;
pub mod models;
pub mod rate;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::clock::{Timestamp, TimestampFormatter};
use crate::event::{Event, EventType};
use crate::seed::{self, SeededRng};

pub use rate::{IdleForGood, RateShape, Schedule, Step};

/// Validated workload settings.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSettings {
    /// The run's master seed.
    pub seed: u64,
    /// Size of the twin-id pool (the most twins alive at once). Memory follows the twins that
    /// exist, not this number.
    pub twins: u32,
    /// Relative weight of each event type, indexed by [`EventType::index`].
    pub mix: [u32; 7],
    /// When events are due.
    pub rate: RateShape,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Stop once events are due this long after the start.
    pub duration: Option<Duration>,
    /// The `time` of the first event; `None` means "when the run starts" (`generate` then uses
    /// [`DEFAULT_START_TIME`] so its output is reproducible).
    pub start_time: Option<Timestamp>,
}

/// The start time `generate` stamps on events when the workload names none: fixed, so the same
/// seed gives the same bytes on every machine and every day.
pub const DEFAULT_START_TIME: Timestamp = Timestamp::from_unix_seconds(1_767_225_600); // 2026-01-01T00:00:00Z

/// The weights used when the workload has no `mix`.
pub const DEFAULT_MIX: [u32; 7] = [4, 40, 2, 6, 4, 4, 40];

/// An event and the offset from the start of the run at which it is due.
#[derive(Clone, Debug)]
pub struct Scheduled {
    /// When the event is due.
    pub due: Duration,
    /// The event.
    pub event: Event,
}

/// The event stream of a workload, in due order.
pub struct Generator {
    graph: graph::Graph,
    schedule: Schedule,
    cumulative_mix: [u32; 7],
    rng: SeededRng,
    formatter: TimestampFormatter,
    epoch: Timestamp,
    remaining: Option<u64>,
    duration: Option<Duration>,
}

impl Generator {
    /// The stream for `settings`, with `host` as the instance host name and the first event due
    /// at `epoch`.
    pub fn new(settings: &WorkloadSettings, host: &str, epoch: Timestamp) -> Self {
        let mut total = 0;
        let cumulative_mix = settings.mix.map(|weight| {
            total += weight;
            total
        });
        Generator {
            graph: graph::Graph::new(settings.twins.max(1), Arc::from(host)),
            schedule: Schedule::new(settings.rate.clone()),
            cumulative_mix,
            rng: seed::stream(settings.seed, "generator"),
            formatter: TimestampFormatter::default(),
            epoch,
            remaining: settings.count,
            duration: settings.duration,
        }
    }

    fn draw_type(&mut self) -> EventType {
        let total = self.cumulative_mix[6];
        let ticket = self.rng.random_range(0..total.max(1));
        let index = self
            .cumulative_mix
            .iter()
            .position(|&edge| ticket < edge)
            .unwrap_or(6);
        EventType::ALL[index]
    }
}

impl Iterator for Generator {
    type Item = Scheduled;

    fn next(&mut self) -> Option<Scheduled> {
        if self.remaining == Some(0) {
            return None;
        }
        let due = self.schedule.next_due()?;
        if self.duration.is_some_and(|limit| due >= limit) {
            return None;
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining -= 1;
        }
        let time = self.formatter.format(self.epoch.plus(due));
        let wanted = if self.graph.has_pending() {
            None
        } else {
            Some(self.draw_type())
        };
        let event = self.graph.next_event(wanted, time, &mut self.rng);
        Some(Scheduled { due, event })
    }
}

/// `count` events of the default mix over `twins` twins, 1000 per second from
/// [`DEFAULT_START_TIME`], from the documentation's example host: sample input for tests and
/// benchmarks.
pub fn sample_events(seed: u64, twins: u32, count: u64) -> Vec<Event> {
    let settings = WorkloadSettings {
        seed,
        twins,
        mix: DEFAULT_MIX,
        rate: RateShape::Constant {
            events_per_second: 1000.0,
        },
        count: Some(count),
        duration: None,
        start_time: None,
    };
    Generator::new(
        &settings,
        "contoso.api.wus2.digitaltwins.azure.net",
        DEFAULT_START_TIME,
    )
    .map(|scheduled| scheduled.event)
    .collect()
}

#[cfg(test)]
mod tests;
