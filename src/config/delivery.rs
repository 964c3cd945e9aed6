//! An endpoint's `delivery` section as written (`DeliveryConfig`) and its validation into
//! [`DeliverySettings`]: retry schedule, attempt limit and time-to-live, concurrency, queue and
//! backlog bounds, batching, dead-letter retention and the attempt timeout. Every problem is
//! collected, each named by its JSON path relative to the section, so the caller can prefix it
//! (see [`Problem::under`]).
//!
//! Numbers are read wider than they are stored (`i64`, `f64`) so that a value out of range
//! reaches validation and gets a message saying the allowed range, instead of a bare serde
//! type error.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{Problem, Problems, join};
use crate::delivery::policy::{
    DEFAULT_EVENT_TIME_TO_LIVE, DEFAULT_MAX_DELIVERY_ATTEMPTS, Preset, RetryPolicy, RetrySchedule,
};

/// Default number of attempts an endpoint worker keeps in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default capacity of an endpoint's inbound queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default limit on deliveries an endpoint holds waiting (about 100 MB of bookkeeping).
pub const DEFAULT_MAX_BACKLOG: usize = 1_000_000;
/// Default attempt timeout: Event Grid waits 30 s for an answer.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long transient dead-letter write failures are retried before the event is spilled
/// (`deadLetterRetentionHours`; Event Grid's retention).
pub const DEFAULT_DEAD_LETTER_RETENTION: Duration = Duration::from_secs(4 * 3600);

/// Per-endpoint delivery settings as written in the config file. All fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryConfig {
    /// Attempts per event, first included: 1–30. Default 30, or the preset's own limit
    /// (`event-grid-namespace`: 10, `knative`: 11).
    pub max_delivery_attempts: Option<i64>,
    /// Minutes after the event was first offered after which no attempt is made: 1–1440,
    /// default 1440.
    pub event_time_to_live_in_minutes: Option<i64>,
    /// Preset name or custom schedule; default `"event-grid"`.
    pub retry_schedule: Option<RetryScheduleConfig>,
    /// Attempts in flight at once per endpoint: ≥ 1, default 64.
    pub concurrency: Option<i64>,
    /// Capacity of the endpoint's inbound queue: ≥ 1, default 10000.
    pub queue_capacity: Option<i64>,
    /// Deliveries the endpoint may hold waiting (ready, retrying, in flight) before it stops
    /// taking more from its queue: ≥ 1, default 1000000 (twinroute extension).
    pub max_backlog: Option<i64>,
    /// Events per request for batching sinks (Event Grid, batch webhooks): 1–5000, default 1
    /// (Event Grid's output batching).
    pub max_events_per_batch: Option<i64>,
    /// Preferred request size for batching sinks, 1–1024 KB, default 64.
    pub preferred_batch_size_in_kilobytes: Option<i64>,
    /// How long a dead-letter write that fails transiently is retried before the event is
    /// spilled locally, in hours (> 0, at most 168), default 4 (Event Grid's).
    pub dead_letter_retention_hours: Option<f64>,
    /// Seconds to wait for an answer before the attempt counts as a timeout: > 0, default 30.
    pub attempt_timeout_seconds: Option<f64>,
}

/// Validated per-endpoint delivery settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// Attempt limit, time-to-live and schedule.
    pub retry: RetryPolicy,
    /// Attempts in flight at once.
    pub concurrency: NonZeroUsize,
    /// Capacity of the inbound queue.
    pub queue_capacity: NonZeroUsize,
    /// Deliveries held waiting before intake stops.
    pub max_backlog: NonZeroUsize,
    /// Batching limits for sinks that batch.
    pub batch: BatchLimits,
    /// How long transient dead-letter failures are retried (`None`: the writer's, by default
    /// [`DEFAULT_DEAD_LETTER_RETENTION`]).
    pub dead_letter_retention: Option<Duration>,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            retry: RetryPolicy::default(),
            concurrency: NonZeroUsize::new(DEFAULT_CONCURRENCY).expect("non-zero constant"),
            queue_capacity: NonZeroUsize::new(DEFAULT_QUEUE_CAPACITY).expect("non-zero constant"),
            max_backlog: NonZeroUsize::new(DEFAULT_MAX_BACKLOG).expect("non-zero constant"),
            batch: BatchLimits::default(),
            dead_letter_retention: None,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
        }
    }
}

/// Batching limits, as Event Grid's output batching has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// `maxEventsPerBatch` (1–5000).
    pub max_events: usize,
    /// `preferredBatchSizeInKilobytes` (1–1024), in bytes: a batch stops before it would pass
    /// this; an event larger than it goes alone.
    pub preferred_bytes: usize,
}

impl Default for BatchLimits {
    /// One event per request (Event Grid's default), 64 KB preferred.
    fn default() -> Self {
        BatchLimits {
            max_events: 1,
            preferred_bytes: 64 * 1024,
        }
    }
}

impl DeliveryConfig {
    /// Checks every field and builds the settings, or returns every problem found.
    pub fn validate(&self) -> Result<DeliverySettings, Vec<Problem>> {
        let mut c = Problems::default();
        let defaults = DeliverySettings::default();

        let (schedule, implied_attempts) = match &self.retry_schedule {
            None => (Some(RetrySchedule::default()), None),
            Some(s) => match s.validate(&mut c, "retrySchedule") {
                Some((schedule, preset)) => (
                    Some(schedule),
                    preset.and_then(Preset::implied_max_delivery_attempts),
                ),
                None => (None, None),
            },
        };
        let max_delivery_attempts = match self.max_delivery_attempts {
            None => Some(implied_attempts.unwrap_or(DEFAULT_MAX_DELIVERY_ATTEMPTS)),
            Some(v) => c
                .int_between("maxDeliveryAttempts", v, 1, 30)
                .map(|v| v as u32),
        };
        let event_time_to_live = match self.event_time_to_live_in_minutes {
            None => Some(DEFAULT_EVENT_TIME_TO_LIVE),
            Some(v) => c
                .int_between("eventTimeToLiveInMinutes", v, 1, 1440)
                .map(|m| Duration::from_secs(m as u64 * 60)),
        };
        let concurrency = match self.concurrency {
            None => Some(defaults.concurrency),
            Some(v) => c.count("concurrency", v),
        };
        let queue_capacity = match self.queue_capacity {
            None => Some(defaults.queue_capacity),
            Some(v) => c.count("queueCapacity", v),
        };
        let max_backlog = match self.max_backlog {
            None => Some(defaults.max_backlog),
            Some(v) => c.count("maxBacklog", v),
        };
        let max_events = match self.max_events_per_batch {
            None => Some(defaults.batch.max_events),
            Some(v) => c
                .int_between("maxEventsPerBatch", v, 1, 5000)
                .map(|v| v as usize),
        };
        let preferred_bytes = match self.preferred_batch_size_in_kilobytes {
            None => Some(defaults.batch.preferred_bytes),
            Some(v) => c
                .int_between("preferredBatchSizeInKilobytes", v, 1, 1024)
                .map(|v| v as usize * 1024),
        };
        let dead_letter_retention = match self.dead_letter_retention_hours {
            None => None,
            Some(hours) if hours.is_finite() && hours > 0.0 && hours <= 168.0 => {
                Some(Duration::from_secs_f64(hours * 3600.0))
            }
            Some(hours) => {
                c.push(
                    "deadLetterRetentionHours",
                    format!("must be above 0 and at most 168 hours, found {hours}"),
                );
                None
            }
        };
        let attempt_timeout = match self.attempt_timeout_seconds {
            None => Some(defaults.attempt_timeout),
            Some(v) => c.positive_seconds("attemptTimeoutSeconds", v),
        };

        match (
            schedule,
            max_delivery_attempts,
            event_time_to_live,
            concurrency,
            queue_capacity,
            attempt_timeout,
            max_backlog,
        ) {
            (
                Some(schedule),
                Some(max),
                Some(ttl),
                Some(conc),
                Some(cap),
                Some(timeout),
                Some(backlog),
            ) if c.is_empty() => Ok(DeliverySettings {
                retry: RetryPolicy {
                    max_delivery_attempts: max,
                    event_time_to_live: ttl,
                    schedule,
                },
                concurrency: conc,
                queue_capacity: cap,
                max_backlog: backlog,
                batch: BatchLimits {
                    max_events: max_events.unwrap_or(1),
                    preferred_bytes: preferred_bytes.unwrap_or(64 * 1024),
                },
                dead_letter_retention,
                attempt_timeout: timeout,
            }),
            _ => Err(c.into_vec()),
        }
    }
}

/// `retrySchedule` as written: a preset name (`"event-grid"`, `"event-grid-namespace"`,
/// `"knative"`, `"dapr"`) or an object with a `kind` (see [`CustomScheduleConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RetryScheduleConfig {
    /// A preset name; checked by validation so an unknown name is reported with the others.
    Preset(String),
    /// A custom schedule.
    Custom(CustomScheduleConfig),
}

impl<'de> Deserialize<'de> for RetryScheduleConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written rather than `#[serde(untagged)]`: untagged would swallow the custom
        // object's real error (unknown field, missing field) into "did not match any variant".
        struct ScheduleVisitor;

        impl<'de> Visitor<'de> for ScheduleVisitor {
            type Value = RetryScheduleConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a retry schedule preset name or an object with a \"kind\"")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(RetryScheduleConfig::Preset(name.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                CustomScheduleConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RetryScheduleConfig::Custom)
            }
        }

        deserializer.deserialize_any(ScheduleVisitor)
    }
}

/// A custom retry schedule, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CustomScheduleConfig {
    /// `{"kind":"exponential","baseSeconds":1,"factor":2,"capSeconds":300,"jitter":0.1}`
    Exponential(ExponentialScheduleConfig),
    /// `{"kind":"linear","initialSeconds":1,"stepSeconds":5,"capSeconds":60}`
    Linear(LinearScheduleConfig),
    /// `{"kind":"fixed","delaysSeconds":[1,5,30],"thenEverySeconds":60}`
    Fixed(FixedScheduleConfig),
}

/// `base × factor^n` for the n-th retry counted from 0.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExponentialScheduleConfig {
    /// Wait after the first failed attempt, seconds (≥ 0).
    pub base_seconds: f64,
    /// Growth per retry (≥ 1); default 2.
    pub factor: Option<f64>,
    /// Longest wait, seconds (≥ `baseSeconds`); absent = uncapped.
    pub cap_seconds: Option<f64>,
    /// Jitter fraction in `[0, 1]`; default 0.
    pub jitter: Option<f64>,
}

/// `initial + step × n` for the n-th retry counted from 0.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinearScheduleConfig {
    /// Wait after the first failed attempt, seconds (≥ 0).
    pub initial_seconds: f64,
    /// Added per retry, seconds (≥ 0).
    pub step_seconds: f64,
    /// Longest wait, seconds (≥ `initialSeconds`); absent = uncapped.
    pub cap_seconds: Option<f64>,
    /// Jitter fraction in `[0, 1]`; default 0.
    pub jitter: Option<f64>,
}

/// A custom table of waits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixedScheduleConfig {
    /// Waits after attempts 1, 2, …, seconds.
    #[serde(default)]
    pub delays_seconds: Vec<f64>,
    /// Wait once the table runs out, seconds; absent = the table's last wait repeats.
    pub then_every_seconds: Option<f64>,
    /// Jitter fraction in `[0, 1]`; default 0.
    pub jitter: Option<f64>,
}

impl RetryScheduleConfig {
    /// The schedule, plus the preset it came from (for the preset's implied attempt limit).
    fn validate(&self, c: &mut Problems, path: &str) -> Option<(RetrySchedule, Option<Preset>)> {
        let at = |field: &str| join(path, field);
        match self {
            RetryScheduleConfig::Preset(name) => match Preset::from_name(name) {
                Some(preset) => Some((preset.schedule(), Some(preset))),
                None => {
                    let known: Vec<_> = Preset::ALL.iter().map(|p| p.name()).collect();
                    c.push(
                        path,
                        format!(
                            "unknown preset \"{name}\", expected one of {}",
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
            RetryScheduleConfig::Custom(CustomScheduleConfig::Exponential(e)) => {
                let base = c.seconds(&at("baseSeconds"), e.base_seconds);
                let factor = match e.factor {
                    None => Some(2.0),
                    Some(f) if f.is_finite() && f >= 1.0 => Some(f),
                    Some(f) => {
                        c.push(at("factor"), format!("must be at least 1, found {f}"));
                        None
                    }
                };
                let cap = cap(c, &at("capSeconds"), e.cap_seconds, base, "baseSeconds");
                let jitter = jitter(c, &at("jitter"), e.jitter);
                Some((
                    RetrySchedule::Exponential {
                        base: base?,
                        factor: factor?,
                        cap: cap?,
                        jitter: jitter?,
                    },
                    None,
                ))
            }
            RetryScheduleConfig::Custom(CustomScheduleConfig::Linear(l)) => {
                let initial = c.seconds(&at("initialSeconds"), l.initial_seconds);
                let step = c.seconds(&at("stepSeconds"), l.step_seconds);
                let cap = cap(
                    c,
                    &at("capSeconds"),
                    l.cap_seconds,
                    initial,
                    "initialSeconds",
                );
                let jitter = jitter(c, &at("jitter"), l.jitter);
                Some((
                    RetrySchedule::Linear {
                        initial: initial?,
                        step: step?,
                        cap: cap?,
                        jitter: jitter?,
                    },
                    None,
                ))
            }
            RetryScheduleConfig::Custom(CustomScheduleConfig::Fixed(f)) => {
                let delays: Vec<Option<Duration>> = f
                    .delays_seconds
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| c.seconds(&at(&format!("delaysSeconds[{i}]")), s))
                    .collect();
                let then_every = match f.then_every_seconds {
                    Some(s) => c.seconds(&at("thenEverySeconds"), s),
                    None if delays.is_empty() => {
                        c.push(
                            at("delaysSeconds"),
                            "must not be empty when thenEverySeconds is absent",
                        );
                        None
                    }
                    // The table's last wait repeats.
                    None => *delays.last().expect("checked non-empty"),
                };
                let jitter = jitter(c, &at("jitter"), f.jitter);
                let delays: Option<Vec<Duration>> = delays.into_iter().collect();
                Some((
                    RetrySchedule::Table {
                        delays: delays?,
                        then_every: then_every?,
                        jitter: jitter?,
                    },
                    None,
                ))
            }
        }
    }
}

/// A jitter fraction in `[0, 1]`; absent is 0.
fn jitter(c: &mut Problems, path: &str, j: Option<f64>) -> Option<f64> {
    match j {
        None => Some(0.0),
        Some(j) => c.probability(path, j),
    }
}

/// An optional cap, which must not be below the schedule's first wait.
fn cap(
    c: &mut Problems,
    path: &str,
    cap: Option<f64>,
    first: Option<Duration>,
    first_name: &str,
) -> Option<Option<Duration>> {
    let Some(raw) = cap else {
        return Some(None);
    };
    let cap = c.seconds(path, raw)?;
    match first {
        Some(first) if cap < first => {
            c.push(
                path,
                format!(
                    "must be at least {first_name} ({}), found {raw}",
                    first.as_secs_f64()
                ),
            );
            None
        }
        _ => Some(Some(cap)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(json: &str) -> DeliveryConfig {
        serde_json::from_str(json).unwrap()
    }

    fn problems(result: Result<impl fmt::Debug, Vec<Problem>>) -> Vec<(String, String)> {
        result
            .unwrap_err()
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    fn p(path: &str, message: &str) -> (String, String) {
        (path.to_owned(), message.to_owned())
    }

    #[test]
    fn empty_delivery_config_gives_event_grid_defaults() {
        let s = delivery("{}").validate().unwrap();
        assert_eq!(s, DeliverySettings::default());
        assert_eq!(s.retry.max_delivery_attempts, 30);
        assert_eq!(s.retry.event_time_to_live, Duration::from_secs(86_400));
        assert_eq!(s.retry.schedule, Preset::EventGrid.schedule());
        assert_eq!(s.concurrency.get(), 64);
        assert_eq!(s.queue_capacity.get(), 10_000);
        assert_eq!(s.attempt_timeout, Duration::from_secs(30));
    }

    #[test]
    fn full_delivery_config_is_read() {
        let s = delivery(
            r#"{"maxDeliveryAttempts":10,"eventTimeToLiveInMinutes":30,"retrySchedule":"dapr",
                "concurrency":4,"queueCapacity":100,"attemptTimeoutSeconds":2.5}"#,
        )
        .validate()
        .unwrap();
        assert_eq!(s.retry.max_delivery_attempts, 10);
        assert_eq!(s.retry.event_time_to_live, Duration::from_secs(1800));
        assert_eq!(s.retry.schedule, Preset::Dapr.schedule());
        assert_eq!(s.concurrency.get(), 4);
        assert_eq!(s.queue_capacity.get(), 100);
        assert_eq!(s.attempt_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn every_preset_name_is_accepted() {
        for preset in Preset::ALL {
            let json = format!(r#"{{"retrySchedule":"{}"}}"#, preset.name());
            let s = delivery(&json).validate().unwrap();
            assert_eq!(s.retry.schedule, preset.schedule());
        }
    }

    #[test]
    fn presets_imply_their_attempt_limit_unless_set() {
        let attempts = |json: &str| {
            delivery(json)
                .validate()
                .unwrap()
                .retry
                .max_delivery_attempts
        };
        assert_eq!(attempts(r#"{"retrySchedule":"event-grid-namespace"}"#), 10);
        assert_eq!(attempts(r#"{"retrySchedule":"knative"}"#), 11);
        assert_eq!(attempts(r#"{"retrySchedule":"dapr"}"#), 30);
        assert_eq!(
            attempts(r#"{"retrySchedule":"event-grid-namespace","maxDeliveryAttempts":25}"#),
            25
        );
    }

    #[test]
    fn custom_schedules_are_read() {
        let schedule = |json: &str| {
            delivery(&format!(r#"{{"retrySchedule":{json}}}"#))
                .validate()
                .unwrap()
                .retry
                .schedule
        };
        assert_eq!(
            schedule(
                r#"{"kind":"exponential","baseSeconds":1,"factor":2,"capSeconds":300,"jitter":0.1}"#
            ),
            RetrySchedule::Exponential {
                base: Duration::from_secs(1),
                factor: 2.0,
                cap: Some(Duration::from_secs(300)),
                jitter: 0.1
            }
        );
        assert_eq!(
            schedule(r#"{"kind":"exponential","baseSeconds":0.2}"#),
            Preset::Knative.schedule()
        );
        assert_eq!(
            schedule(r#"{"kind":"linear","initialSeconds":1,"stepSeconds":5,"capSeconds":60}"#),
            RetrySchedule::Linear {
                initial: Duration::from_secs(1),
                step: Duration::from_secs(5),
                cap: Some(Duration::from_secs(60)),
                jitter: 0.0
            }
        );
        assert_eq!(
            schedule(r#"{"kind":"fixed","delaysSeconds":[1,5,30],"thenEverySeconds":60}"#),
            RetrySchedule::Table {
                delays: [1, 5, 30].map(Duration::from_secs).to_vec(),
                then_every: Duration::from_secs(60),
                jitter: 0.0
            }
        );
        // Without thenEverySeconds the last wait repeats.
        assert_eq!(
            schedule(r#"{"kind":"fixed","delaysSeconds":[1,5]}"#),
            RetrySchedule::Table {
                delays: [1, 5].map(Duration::from_secs).to_vec(),
                then_every: Duration::from_secs(5),
                jitter: 0.0
            }
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        for json in [
            r#"{"maxAttempts":3}"#,
            r#"{"retrySchedule":{"kind":"exponential","baseSeconds":1,"bogus":1}}"#,
            r#"{"retrySchedule":{"kind":"linear","initialSeconds":1,"stepSeconds":1,"factor":2}}"#,
            r#"{"retrySchedule":{"kind":"fixed","delaysSeconds":[1],"every":2}}"#,
            r#"{"retrySchedule":{"kind":"spiral"}}"#,
            r#"{"retrySchedule":{"baseSeconds":1}}"#,
            r#"{"retrySchedule":5}"#,
        ] {
            let err = serde_json::from_str::<DeliveryConfig>(json);
            assert!(err.is_err(), "{json} should not parse");
        }
        let err = serde_json::from_str::<DeliveryConfig>(
            r#"{"retrySchedule":{"kind":"exponential","baseSeconds":1,"bogus":1}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `bogus`"), "{err}");
    }

    #[test]
    fn all_delivery_problems_are_collected_with_ranges() {
        let got = problems(
            delivery(
                r#"{"maxDeliveryAttempts":45,"eventTimeToLiveInMinutes":0,"concurrency":0,
                    "queueCapacity":-5,"attemptTimeoutSeconds":0,"retrySchedule":"kafka"}"#,
            )
            .validate(),
        );
        assert_eq!(
            got,
            vec![
                p(
                    "retrySchedule",
                    "unknown preset \"kafka\", expected one of event-grid, event-grid-namespace, knative, dapr"
                ),
                p("maxDeliveryAttempts", "must be between 1 and 30, found 45"),
                p(
                    "eventTimeToLiveInMinutes",
                    "must be between 1 and 1440, found 0"
                ),
                p("concurrency", "must be at least 1, found 0"),
                p("queueCapacity", "must be at least 1, found -5"),
                p(
                    "attemptTimeoutSeconds",
                    "must be greater than 0 and at most 31536000, found 0"
                ),
            ]
        );
    }

    #[test]
    fn custom_schedule_problems_name_their_fields() {
        let got = problems(
            delivery(
                r#"{"retrySchedule":{"kind":"exponential","baseSeconds":10,"factor":0.5,
                    "capSeconds":5,"jitter":1.5}}"#,
            )
            .validate(),
        );
        assert_eq!(
            got,
            vec![
                p("retrySchedule.factor", "must be at least 1, found 0.5"),
                p(
                    "retrySchedule.capSeconds",
                    "must be at least baseSeconds (10), found 5"
                ),
                p("retrySchedule.jitter", "must be between 0 and 1, found 1.5"),
            ]
        );
        let got = problems(
            delivery(r#"{"retrySchedule":{"kind":"fixed","delaysSeconds":[1,-2]}}"#).validate(),
        );
        assert_eq!(
            got,
            vec![p(
                "retrySchedule.delaysSeconds[1]",
                "must be between 0 and 31536000, found -2"
            )]
        );
        let got = problems(delivery(r#"{"retrySchedule":{"kind":"fixed"}}"#).validate());
        assert_eq!(
            got,
            vec![p(
                "retrySchedule.delaysSeconds",
                "must not be empty when thenEverySeconds is absent"
            )]
        );
        let got = problems(
            delivery(r#"{"retrySchedule":{"kind":"linear","initialSeconds":-1,"stepSeconds":-1}}"#)
                .validate(),
        );
        assert_eq!(
            got,
            vec![
                p(
                    "retrySchedule.initialSeconds",
                    "must be between 0 and 31536000, found -1"
                ),
                p(
                    "retrySchedule.stepSeconds",
                    "must be between 0 and 31536000, found -1"
                ),
            ]
        );
    }
}
