//! The `workload` section: seed, twin pool, event mix, rate shape and how long the run lasts,
//! validated into [`WorkloadSettings`] (the generator's own settings type).

use std::time::Duration;

use serde_json::Value;

use super::raw::{RateConfig, WorkloadConfig};
use super::settings::SeedSource;
use super::{Overrides, Problems, join, section};
use crate::clock::Timestamp;
use crate::event::EventType;
use crate::generator::{DEFAULT_MIX, RateShape, Step, WorkloadSettings};

/// ADT's default limit on twins per instance (adt-facts §4).
pub const MAX_TWINS: u32 = 2_000_000;
/// Twins in the pool when the workload names no number.
pub const DEFAULT_TWINS: u32 = 1000;
/// Events generated when the workload names neither `count` nor `durationSeconds`.
pub const DEFAULT_COUNT: u64 = 10_000;

/// The workload and where its seed came from; `None` if it cannot be built.
pub(super) fn workload(
    value: Option<&Value>,
    overrides: &Overrides,
    limits_enforced: bool,
    problems: &mut Problems,
) -> Option<(WorkloadSettings, SeedSource)> {
    let config = match value {
        Some(v) => section::<WorkloadConfig>(v, "workload", problems)?,
        None => WorkloadConfig {
            seed: None,
            twins: None,
            mix: None,
            rate: None,
            count: None,
            duration_seconds: None,
            start_time: None,
        },
    };
    let (seed, seed_source) = match (overrides.seed, config.seed) {
        (Some(seed), _) => (seed, SeedSource::Flag),
        (None, Some(seed)) => (seed, SeedSource::Config),
        (None, None) => (0, SeedSource::Clock),
    };
    let twins = twins(config.twins, limits_enforced, problems);
    let mix = match &config.mix {
        Some(weights) => mix(weights, problems),
        None => DEFAULT_MIX,
    };
    let rate = match &config.rate {
        Some(rate) => rate_shape(rate, problems),
        None => Some(RateShape::Constant {
            events_per_second: 1000.0,
        }),
    };
    let duration = config
        .duration_seconds
        .and_then(|s| seconds(s, "workload.durationSeconds", problems));
    let count = match (config.count, duration, overrides.count) {
        (_, _, Some(count)) => Some(count),
        (None, None, None) => Some(DEFAULT_COUNT),
        (count, _, None) => count,
    };
    // `--count` lifts `durationSeconds` (the run and `generate` drop it).
    let bounded_by_duration = duration.is_some() && overrides.count.is_none();
    if let (Some(rate), Some(count), false) = (&rate, count, bounded_by_duration) {
        unreachable_count(rate, count, problems);
    }
    let start_time = config
        .start_time
        .as_ref()
        .and_then(|text| start_time(text, problems));
    Some((
        WorkloadSettings {
            seed,
            twins,
            mix,
            rate: rate?,
            count,
            duration,
            start_time,
        },
        seed_source,
    ))
}

/// `twins`: at least 1, and within ADT's limit unless limits are lifted.
fn twins(twins: Option<u32>, limits_enforced: bool, problems: &mut Problems) -> u32 {
    let twins = twins.unwrap_or(DEFAULT_TWINS);
    if twins == 0 {
        problems.push("workload.twins", "must be at least 1");
    }
    if limits_enforced && twins > MAX_TWINS {
        problems.push(
            "workload.twins",
            format!(
                "ADT allows {MAX_TWINS} twins per instance by default, found {twins}; set \"limits\": {{\"enforce\": false}} to lift this for load tests"
            ),
        );
    }
    twins
}

/// `mix`: a weight per ADT event type (types left out weigh 0), not all 0.
fn mix(weights: &indexmap::IndexMap<String, u32>, problems: &mut Problems) -> [u32; 7] {
    let mut mix = [0; 7];
    for (name, weight) in weights {
        match EventType::from_type_str(name) {
            Some(kind) => mix[kind.index()] = *weight,
            None => problems.push(
                join("workload.mix", name),
                format!(
                    "is not an ADT event type; expected one of {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            ),
        }
    }
    if mix.iter().map(|w| u64::from(*w)).sum::<u64>() == 0 {
        problems.push(
            "workload.mix",
            "needs at least one type with a weight above 0",
        );
    }
    if mix.iter().map(|w| u64::from(*w)).sum::<u64>() > u64::from(u32::MAX) {
        problems.push("workload.mix", "weights add up to more than 4294967295");
    }
    mix
}

/// `startTime`, RFC 3339.
fn start_time(text: &str, problems: &mut Problems) -> Option<Timestamp> {
    let parsed = Timestamp::parse_rfc3339(text);
    if parsed.is_none() {
        problems.push(
            "workload.startTime",
            format!("must be an RFC 3339 time like 2026-01-01T00:00:00Z, found '{text}'"),
        );
    }
    parsed
}

/// A shape whose rate is 0 from some point on can never reach a `count` larger than what it
/// yields before: the run would wait for events that never come.
fn unreachable_count(rate: &RateShape, count: u64, problems: &mut Problems) {
    let Some(idle) = rate.idle_for_good() else {
        return;
    };
    // The schedule places events by the midpoint rate: allow for rounding of the area.
    let reachable = (idle.events_before + 0.5).floor() as u64;
    if count > reachable {
        problems.push(
            RATE,
            format!(
                "the rate is 0 from {}s on, after about {reachable} events, so count {count} is never reached; end on a rate above 0, lower count, or bound the run with workload.durationSeconds",
                idle.from
            ),
        );
    }
}

/// Seconds ≥ 0 that a [`Duration`] can hold.
fn seconds(value: f64, path: &str, problems: &mut Problems) -> Option<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) => Some(duration),
        Err(_) => {
            problems.push(
                path,
                format!("must be a number of seconds ≥ 0, found {value}"),
            );
            None
        }
    }
}

/// The JSON path of the rate shape.
const RATE: &str = "workload.rate";

/// `rate`: its `shape`, the fields that shape takes and no others, and at least one rate
/// above 0.
fn rate_shape(rate: &RateConfig, problems: &mut Problems) -> Option<RateShape> {
    let allowed = shape_fields(rate.shape.as_deref(), problems)?;
    let shape = rate.shape.as_deref().unwrap_or_default();
    for (field, present) in rate_fields(rate) {
        if present && !allowed.contains(&field) {
            problems.push(
                join(RATE, field),
                format!(
                    "does not apply to shape '{shape}' (it takes {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    let shape = match shape {
        "constant" => RateShape::Constant {
            events_per_second: required(rate, "eventsPerSecond", rate.events_per_second, problems)?,
        },
        "ramp" => ramp(rate, problems)?,
        "steps" => steps(rate, problems)?,
        "spike" => spike(rate, problems)?,
        _ => sine(rate, problems)?,
    };
    if shape.peak() <= 0.0 {
        problems.push(RATE, "never produces an event: every rate is 0");
        return None;
    }
    Some(shape)
}

/// The fields `shape` takes; `None` after a problem when the shape is missing or unknown.
fn shape_fields(shape: Option<&str>, problems: &mut Problems) -> Option<&'static [&'static str]> {
    match shape {
        Some("constant") => Some(&["eventsPerSecond"]),
        Some("ramp") => Some(&["fromEventsPerSecond", "toEventsPerSecond", "overSeconds"]),
        Some("steps") => Some(&["steps"]),
        Some("spike") => Some(&[
            "baseEventsPerSecond",
            "spikeEventsPerSecond",
            "atSeconds",
            "durationSeconds",
        ]),
        Some("sine") => Some(&[
            "meanEventsPerSecond",
            "amplitudeEventsPerSecond",
            "periodSeconds",
        ]),
        Some(other) => {
            problems.push(
                join(RATE, "shape"),
                format!("must be constant, ramp, steps, spike or sine, found '{other}'"),
            );
            None
        }
        None => {
            problems.push(
                join(RATE, "shape"),
                "is required (constant, ramp, steps, spike or sine)",
            );
            None
        }
    }
}

/// Every shape field of `rate`, and whether it is written.
fn rate_fields(rate: &RateConfig) -> [(&'static str, bool); 12] {
    [
        ("eventsPerSecond", rate.events_per_second.is_some()),
        ("fromEventsPerSecond", rate.from_events_per_second.is_some()),
        ("toEventsPerSecond", rate.to_events_per_second.is_some()),
        ("overSeconds", rate.over_seconds.is_some()),
        ("steps", rate.steps.is_some()),
        ("baseEventsPerSecond", rate.base_events_per_second.is_some()),
        (
            "spikeEventsPerSecond",
            rate.spike_events_per_second.is_some(),
        ),
        ("atSeconds", rate.at_seconds.is_some()),
        ("durationSeconds", rate.duration_seconds.is_some()),
        ("meanEventsPerSecond", rate.mean_events_per_second.is_some()),
        (
            "amplitudeEventsPerSecond",
            rate.amplitude_events_per_second.is_some(),
        ),
        ("periodSeconds", rate.period_seconds.is_some()),
    ]
}

/// A field the shape needs: a finite number ≥ 0.
fn required(
    rate: &RateConfig,
    field: &str,
    value: Option<f64>,
    problems: &mut Problems,
) -> Option<f64> {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => Some(v),
        Some(v) => {
            problems.push(
                join(RATE, field),
                format!("must be a finite number ≥ 0, found {v}"),
            );
            None
        }
        None => {
            problems.push(
                join(RATE, field),
                format!(
                    "is required for shape '{}'",
                    rate.shape.as_deref().unwrap_or_default()
                ),
            );
            None
        }
    }
}

/// `ramp`: from one rate to another over a time.
fn ramp(rate: &RateConfig, problems: &mut Problems) -> Option<RateShape> {
    let from = required(
        rate,
        "fromEventsPerSecond",
        rate.from_events_per_second,
        problems,
    );
    let to = required(
        rate,
        "toEventsPerSecond",
        rate.to_events_per_second,
        problems,
    );
    let over = required(rate, "overSeconds", rate.over_seconds, problems);
    Some(RateShape::Ramp {
        from: from?,
        to: to?,
        over: Duration::from_secs_f64(over?),
    })
}

/// `steps`: a list of rates, each held for a time.
fn steps(rate: &RateConfig, problems: &mut Problems) -> Option<RateShape> {
    let Some(steps) = &rate.steps else {
        problems.push(join(RATE, "steps"), "is required for shape 'steps'");
        return None;
    };
    if steps.is_empty() {
        problems.push(join(RATE, "steps"), "needs at least one step");
    }
    let mut out = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let step_path = format!("{RATE}.steps[{index}]");
        if !(step.events_per_second.is_finite() && step.events_per_second >= 0.0) {
            problems.push(
                join(&step_path, "eventsPerSecond"),
                "must be a finite number ≥ 0",
            );
        } else if !(step.duration_seconds.is_finite() && step.duration_seconds >= 0.0) {
            problems.push(
                join(&step_path, "durationSeconds"),
                "must be a finite number ≥ 0",
            );
        } else {
            out.push(Step {
                events_per_second: step.events_per_second,
                duration: Duration::from_secs_f64(step.duration_seconds),
            });
        }
    }
    Some(RateShape::Steps(out))
}

/// `spike`: a base rate with one spike of another rate.
fn spike(rate: &RateConfig, problems: &mut Problems) -> Option<RateShape> {
    let base = required(
        rate,
        "baseEventsPerSecond",
        rate.base_events_per_second,
        problems,
    );
    let spike = required(
        rate,
        "spikeEventsPerSecond",
        rate.spike_events_per_second,
        problems,
    );
    let at = required(rate, "atSeconds", rate.at_seconds, problems);
    let duration = required(rate, "durationSeconds", rate.duration_seconds, problems);
    Some(RateShape::Spike {
        base: base?,
        spike: spike?,
        at: Duration::from_secs_f64(at?),
        duration: Duration::from_secs_f64(duration?),
    })
}

/// `sine`: a mean rate swinging by an amplitude over a period above 0.
fn sine(rate: &RateConfig, problems: &mut Problems) -> Option<RateShape> {
    let mean = required(
        rate,
        "meanEventsPerSecond",
        rate.mean_events_per_second,
        problems,
    );
    let amplitude = required(
        rate,
        "amplitudeEventsPerSecond",
        rate.amplitude_events_per_second,
        problems,
    );
    let period = required(rate, "periodSeconds", rate.period_seconds, problems);
    if period == Some(0.0) {
        problems.push(join(RATE, "periodSeconds"), "must be above 0");
        return None;
    }
    Some(RateShape::Sine {
        mean: mean?,
        amplitude: amplitude?,
        period: Duration::from_secs_f64(period?),
    })
}
