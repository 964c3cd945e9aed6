//! Retry schedule and retry/TTL policy: plain data plus pure decision functions —
//! [`RetryPolicy::decide`] after a failed attempt, [`RetryPolicy::before_attempt`] before one,
//! and [`within_timeout`] for what an attempt's answer amounts to under the attempt timeout.
//!
//! Three questions are kept apart (STYLE rule 8): *whether* an attempt may be retried is the
//! sink's classification ([`super::classify`]); *how long* to wait is decided here; *how* to wait
//! (timers, virtual time) is the worker's business. Nothing here reads a clock or global
//! randomness: time comes in as [`Duration`] offsets since the event was first offered to the
//! endpoint, and jitter comes from the caller's seeded rng.
//!
//! Attempt counting: `attempts_made` is the number of delivery attempts already made, the first
//! one included. After the first attempt fails, `attempts_made == 1` and the schedule's first
//! entry is the wait before attempt 2.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::classify::{AttemptResult, Failure};

/// Event Grid's default for `maxDeliveryAttempts` (adt-facts §5); also our default for ADT,
/// whose own policy is not published.
pub const DEFAULT_MAX_DELIVERY_ATTEMPTS: u32 = 30;

/// Event Grid's default for `eventTimeToLiveInMinutes`: 1440 minutes (24 h).
pub const DEFAULT_EVENT_TIME_TO_LIVE: Duration = Duration::from_secs(1440 * 60);

/// Jitter of the `event-grid` and `event-grid-namespace` presets: every delay is scaled by a
/// uniform factor in `[0.9, 1.1]`. Event Grid only says it adds "a small randomization to all
/// retry steps"; ±10 % keeps the documented steps recognisable (and keeps the docs' "TTL 30 min,
/// 10 attempts → at most 6 attempts" example true whatever the draw).
pub const EVENT_GRID_JITTER: f64 = 0.1;

/// Longest delay a schedule ever returns. Only an uncapped exponential schedule can reach it;
/// it exists so that `factor^n` cannot overflow [`Duration`]. Any delay this long already
/// outlives the longest allowed time-to-live (1440 minutes), so the cut changes no decision
/// except the reported `at` of a [`GiveUpReason::TimeToLiveExceeded`].
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The retry presets, named after the systems users know them from.
///
/// JSON names: `"event-grid"`, `"event-grid-namespace"`, `"knative"`, `"dapr"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Event Grid (push delivery): 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then
    /// every 12 h, with ±10 % jitter ([`EVENT_GRID_JITTER`]). The default.
    EventGrid,
    /// Event Grid namespaces (push delivery): 0 s, 10 s, 30 s, 1 min, 5 min, then every 5 min,
    /// with ±10 % jitter. Namespaces default to 10 delivery attempts, so this preset implies
    /// `maxDeliveryAttempts = 10` unless the config sets it.
    EventGridNamespace,
    /// Knative Eventing's broker default (`config-br-defaults`: `retry: 10`,
    /// `backoffPolicy: exponential`, `backoffDelay: PT0.2S`): waits `0.2 s × 2^n` for the n-th
    /// retry counted from 0 (0.2 s, 0.4 s, 0.8 s, …, as knative's dispatcher computes it), no
    /// jitter, no cap. `retry: 10` means 11 attempts, so this preset implies
    /// `maxDeliveryAttempts = 11` unless the config sets it.
    Knative,
    /// Dapr's constant resiliency policy: 5 s between attempts, no jitter. Dapr's constant
    /// policy retries without limit by default, so the Event Grid limits (30 attempts, 24 h)
    /// apply unless the config sets others.
    Dapr,
}

impl Preset {
    /// Every preset, in documentation order.
    pub const ALL: [Preset; 4] = [
        Preset::EventGrid,
        Preset::EventGridNamespace,
        Preset::Knative,
        Preset::Dapr,
    ];

    /// The preset's JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::EventGrid => "event-grid",
            Preset::EventGridNamespace => "event-grid-namespace",
            Preset::Knative => "knative",
            Preset::Dapr => "dapr",
        }
    }

    /// Looks a preset up by its JSON name (exact, case-sensitive like every other JSON name).
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The preset's schedule.
    pub fn schedule(self) -> RetrySchedule {
        match self {
            Preset::EventGrid => RetrySchedule::Table {
                delays: [10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600]
                    .map(Duration::from_secs)
                    .to_vec(),
                then_every: Duration::from_secs(12 * 3600),
                jitter: EVENT_GRID_JITTER,
            },
            Preset::EventGridNamespace => RetrySchedule::Table {
                delays: [0, 10, 30, 60, 300].map(Duration::from_secs).to_vec(),
                then_every: Duration::from_secs(300),
                jitter: EVENT_GRID_JITTER,
            },
            Preset::Knative => RetrySchedule::Exponential {
                base: Duration::from_millis(200),
                factor: 2.0,
                cap: None,
                jitter: 0.0,
            },
            Preset::Dapr => RetrySchedule::Table {
                delays: Vec::new(),
                then_every: Duration::from_secs(5),
                jitter: 0.0,
            },
        }
    }

    /// The attempt limit the preset brings with it, used when the config does not set
    /// `maxDeliveryAttempts`; `None` means the Event Grid default (30) applies.
    pub fn implied_max_delivery_attempts(self) -> Option<u32> {
        match self {
            Preset::EventGridNamespace => Some(10),
            Preset::Knative => Some(11),
            Preset::EventGrid | Preset::Dapr => None,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When to make the next attempt: one type for table, exponential and linear schedules, so a
/// fixed table (Event Grid's) and a computed backoff are two values of the same type.
///
/// `jitter` is a fraction in `[0, 1]`: a delay `d` becomes a uniform draw from
/// `[d × (1 − jitter), d × (1 + jitter)]`, then the cap (if any) applies, so jitter never pushes
/// a delay above its cap; at the cap it can only shorten the wait.
#[derive(Debug, Clone, PartialEq)]
pub enum RetrySchedule {
    /// A fixed table: `delays[0]` is the wait after the first failed attempt, `delays[1]` after
    /// the second, …; once the table runs out, `then_every` between attempts.
    Table {
        /// Waits after attempts 1, 2, … (may be empty).
        delays: Vec<Duration>,
        /// Wait once the table runs out.
        then_every: Duration,
        /// Jitter fraction in `[0, 1]`.
        jitter: f64,
    },
    /// `base × factor^n` for the n-th retry counted from 0, at most `cap`.
    Exponential {
        /// Wait after the first failed attempt.
        base: Duration,
        /// Growth per retry (≥ 1).
        factor: f64,
        /// Longest wait; `None` = uncapped (bounded only by [`MAX_DELAY`]).
        cap: Option<Duration>,
        /// Jitter fraction in `[0, 1]`.
        jitter: f64,
    },
    /// `initial + step × n` for the n-th retry counted from 0, at most `cap`.
    Linear {
        /// Wait after the first failed attempt.
        initial: Duration,
        /// Added per retry.
        step: Duration,
        /// Longest wait; `None` = uncapped (bounded only by [`MAX_DELAY`]).
        cap: Option<Duration>,
        /// Jitter fraction in `[0, 1]`.
        jitter: f64,
    },
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Preset::EventGrid.schedule()
    }
}

impl RetrySchedule {
    /// The longest delay this schedule may return, if it has a cap.
    pub fn cap(&self) -> Option<Duration> {
        match self {
            RetrySchedule::Table { .. } => None,
            RetrySchedule::Exponential { cap, .. } | RetrySchedule::Linear { cap, .. } => *cap,
        }
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        match self {
            RetrySchedule::Table { jitter, .. }
            | RetrySchedule::Exponential { jitter, .. }
            | RetrySchedule::Linear { jitter, .. } => *jitter,
        }
    }

    /// The wait before the next attempt after `attempts_made` attempts, without jitter
    /// (capped). `attempts_made` 0 is treated as 1.
    pub fn nominal_delay(&self, attempts_made: u32) -> Duration {
        // Index of the retry about to be scheduled, counted from 0.
        let n = attempts_made.max(1) - 1;
        let raw = match self {
            RetrySchedule::Table {
                delays, then_every, ..
            } => delays.get(n as usize).copied().unwrap_or(*then_every),
            RetrySchedule::Exponential { base, factor, .. } => {
                // `powi` takes i32; beyond that every factor > 1 has long saturated anyway.
                let exponent = i32::try_from(n).unwrap_or(i32::MAX);
                scale(*base, factor.powi(exponent))
            }
            RetrySchedule::Linear { initial, step, .. } => {
                initial.saturating_add(step.saturating_mul(n))
            }
        };
        self.clamp(raw)
    }

    /// The wait before the next attempt after `attempts_made` attempts, jittered and capped.
    ///
    /// Always draws exactly one `f64` from `rng`, jitter or not, so the rng stream a run
    /// consumes does not depend on the schedule's shape.
    pub fn delay_after(&self, attempts_made: u32, rng: &mut impl Rng) -> Duration {
        let unit: f64 = rng.random();
        let nominal = self.nominal_delay(attempts_made);
        let jitter = self.jitter();
        if jitter == 0.0 {
            return nominal;
        }
        // unit ∈ [0, 1) → factor ∈ [1 − jitter, 1 + jitter).
        let factor = 1.0 + jitter * (2.0 * unit - 1.0);
        self.clamp(scale(nominal, factor))
    }

    fn clamp(&self, delay: Duration) -> Duration {
        let ceiling = self.cap().unwrap_or(MAX_DELAY).min(MAX_DELAY);
        delay.min(ceiling)
    }
}

/// `d × k`, rounded to the nanosecond and saturated at [`MAX_DELAY`]; rounding (not
/// truncation) keeps values such as `0.2 s × 2³` exact.
fn scale(d: Duration, k: f64) -> Duration {
    let nanos = d.as_nanos() as f64 * k;
    if !nanos.is_finite() || nanos >= MAX_DELAY.as_nanos() as f64 {
        MAX_DELAY
    } else if nanos <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(nanos.round() as u64)
    }
}

/// Why delivery to an endpoint gave up: what [`RetryPolicy::decide`] and
/// [`RetryPolicy::before_attempt`] return, and nothing else. A closed set: every (event, route)
/// that is dead-lettered or dropped was given up for exactly one of these. Endings that are not
/// the policy's (no dead-letter location, a stopped run) are [`crate::account::Outcome`]s.
///
/// Serialized as the variant name (`"MaxDeliveryAttemptsExceeded"`, …), except
/// `NonRetriableStatus`, which is `{"NonRetriableStatus": 400}`; [`GiveUpReason::as_str`] gives
/// the bare name for dead-letter metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GiveUpReason {
    /// The attempt limit (`maxDeliveryAttempts`) was reached.
    MaxDeliveryAttemptsExceeded,
    /// The next attempt would have fallen after the time-to-live expired.
    TimeToLiveExceeded,
    /// The endpoint answered with a status that is never retried (e.g. 400, 403, 413).
    NonRetriableStatus(u16),
}

impl GiveUpReason {
    /// The reason's name, as written in dead-letter metadata and ledgers.
    pub fn as_str(&self) -> &'static str {
        match self {
            GiveUpReason::MaxDeliveryAttemptsExceeded => "MaxDeliveryAttemptsExceeded",
            GiveUpReason::TimeToLiveExceeded => "TimeToLiveExceeded",
            GiveUpReason::NonRetriableStatus(_) => "NonRetriableStatus",
        }
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUpReason::NonRetriableStatus(status) => write!(f, "NonRetriableStatus({status})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Make the next attempt this long after the failed one ended.
    RetryAfter(Duration),
    /// Stop trying. `at` is the offset (since the event was first offered) at which the
    /// delivery ends: now for attempt limits and non-retriable statuses, the would-be attempt's
    /// time for [`GiveUpReason::TimeToLiveExceeded`].
    GiveUp {
        /// Why delivery ended.
        reason: GiveUpReason,
        /// When it ends, as an offset since the event was first offered.
        at: Duration,
    },
}

/// Per-endpoint retry policy (validated): attempt limit, time-to-live and schedule.
///
/// Build it with `DeliveryConfig::validate`; the fields are public so tests and presets can
/// state values directly, and [`RetryPolicy::decide`] stays total for any values.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Most attempts per event, first attempt included (1–30).
    pub max_delivery_attempts: u32,
    /// Time after the event was first offered after which no attempt is made.
    pub event_time_to_live: Duration,
    /// When to make the next attempt.
    pub schedule: RetrySchedule,
}

impl Default for RetryPolicy {
    /// Event Grid's defaults: 30 attempts, 24 h, the `event-grid` schedule.
    fn default() -> Self {
        RetryPolicy {
            max_delivery_attempts: DEFAULT_MAX_DELIVERY_ATTEMPTS,
            event_time_to_live: DEFAULT_EVENT_TIME_TO_LIVE,
            schedule: RetrySchedule::default(),
        }
    }
}

impl RetryPolicy {
    /// Decides what follows a failed attempt. Pure: same inputs and rng state, same answer.
    ///
    /// - `attempts_made`: attempts made so far, the failed one included (≥ 1).
    /// - `elapsed`: time since the event was first offered to the endpoint, at the moment the
    ///   failed attempt ended (so attempt durations and timeouts count against the TTL).
    /// - `failure`: the attempt's classification, with any minimum delay (status table,
    ///   `Retry-After`).
    ///
    /// Rules, in order:
    /// 1. a non-retriable failure ends at once: `NonRetriableStatus(status)` at `elapsed`;
    /// 2. with `attempts_made ≥ max_delivery_attempts`: `MaxDeliveryAttemptsExceeded` at
    ///    `elapsed`;
    /// 3. the wait is `max(schedule delay, failure's minimum delay)`; as in Event Grid the TTL
    ///    is checked only at the next scheduled attempt: if `elapsed + wait` falls after the TTL,
    ///    `TimeToLiveExceeded` at `elapsed + wait` (an attempt exactly at expiry is still made);
    /// 4. otherwise `RetryAfter(wait)`.
    ///
    /// Draws exactly one value from `rng` on every call (see [`RetrySchedule::delay_after`]),
    /// so the rng stream does not depend on the outcome.
    pub fn decide(
        &self,
        attempts_made: u32,
        elapsed: Duration,
        failure: Failure,
        rng: &mut impl Rng,
    ) -> Decision {
        debug_assert!(attempts_made >= 1, "decide is called after an attempt");
        let scheduled = self.schedule.delay_after(attempts_made, rng);
        let min_delay = match failure {
            Failure::NonRetriable { status } => {
                return Decision::GiveUp {
                    reason: GiveUpReason::NonRetriableStatus(status),
                    at: elapsed,
                };
            }
            Failure::Retriable { min_delay } => min_delay,
        };
        if attempts_made >= self.max_delivery_attempts {
            return Decision::GiveUp {
                reason: GiveUpReason::MaxDeliveryAttemptsExceeded,
                at: elapsed,
            };
        }
        let wait = scheduled.max(min_delay);
        let next_attempt = elapsed.saturating_add(wait);
        if next_attempt > self.event_time_to_live {
            return Decision::GiveUp {
                reason: GiveUpReason::TimeToLiveExceeded,
                at: next_attempt,
            };
        }
        Decision::RetryAfter(wait)
    }

    /// Whether an attempt may start `elapsed` after the event was first offered: `None` to make
    /// it, or why the delivery ends instead. No attempt is ever started after the time-to-live
    /// (a delivery may expire while it waits for a free attempt slot); as in
    /// [`RetryPolicy::decide`], an attempt exactly at expiry is still made.
    pub fn before_attempt(&self, elapsed: Duration) -> Option<GiveUpReason> {
        (elapsed > self.event_time_to_live).then_some(GiveUpReason::TimeToLiveExceeded)
    }
}

/// When, and as what, an attempt's answer is observed under the per-attempt `timeout`, for an
/// endpoint that answers `result` after `latency`: no answer (a timeout, a lost acknowledgement)
/// and an answer that comes at or after the timeout are a [`AttemptResult::Timeout`] observed
/// when the timeout expires; any other answer as it comes.
pub fn within_timeout(
    timeout: Duration,
    latency: Duration,
    result: AttemptResult,
) -> (Duration, AttemptResult) {
    if result == AttemptResult::Timeout || latency >= timeout {
        (timeout, AttemptResult::Timeout)
    } else {
        (latency, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn retriable() -> Failure {
        Failure::Retriable {
            min_delay: Duration::ZERO,
        }
    }

    fn without_jitter(schedule: RetrySchedule) -> RetrySchedule {
        match schedule {
            RetrySchedule::Table {
                delays, then_every, ..
            } => RetrySchedule::Table {
                delays,
                then_every,
                jitter: 0.0,
            },
            RetrySchedule::Exponential {
                base, factor, cap, ..
            } => RetrySchedule::Exponential {
                base,
                factor,
                cap,
                jitter: 0.0,
            },
            RetrySchedule::Linear {
                initial, step, cap, ..
            } => RetrySchedule::Linear {
                initial,
                step,
                cap,
                jitter: 0.0,
            },
        }
    }

    fn first_delays(schedule: &RetrySchedule, n: u32) -> Vec<Duration> {
        (1..=n).map(|a| schedule.nominal_delay(a)).collect()
    }

    /// Runs one event against a policy whose every attempt fails with `failure` and takes
    /// `attempt_time`; returns (attempt offsets, final decision).
    fn run_to_end(
        policy: &RetryPolicy,
        failure: Failure,
        attempt_time: Duration,
        rng: &mut impl Rng,
    ) -> (Vec<Duration>, Decision) {
        let mut starts = vec![Duration::ZERO];
        let mut now = attempt_time;
        loop {
            let made = starts.len() as u32;
            match policy.decide(made, now, failure, rng) {
                Decision::RetryAfter(wait) => {
                    let start = now + wait;
                    starts.push(start);
                    now = start + attempt_time;
                }
                end @ Decision::GiveUp { .. } => return (starts, end),
            }
        }
    }

    #[test]
    fn event_grid_preset_follows_the_documented_table() {
        let s = Preset::EventGrid.schedule();
        let expected = [
            10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 43200, 43200,
        ];
        assert_eq!(first_delays(&s, 12), expected.map(secs).to_vec());
        assert_eq!(s.jitter(), 0.1);
    }

    #[test]
    fn event_grid_namespace_preset_follows_its_table() {
        let s = Preset::EventGridNamespace.schedule();
        let expected = [0, 10, 30, 60, 300, 300, 300];
        assert_eq!(first_delays(&s, 7), expected.map(secs).to_vec());
        assert_eq!(
            Preset::EventGridNamespace.implied_max_delivery_attempts(),
            Some(10)
        );
    }

    #[test]
    fn knative_preset_doubles_from_200ms_without_jitter() {
        let s = Preset::Knative.schedule();
        let expected = [200, 400, 800, 1600, 3200, 6400].map(Duration::from_millis);
        assert_eq!(first_delays(&s, 6), expected.to_vec());
        assert_eq!(s.jitter(), 0.0);
        assert_eq!(s.cap(), None);
        assert_eq!(Preset::Knative.implied_max_delivery_attempts(), Some(11));
        // No jitter: the drawn delay is the nominal one.
        assert_eq!(s.delay_after(3, &mut rng(1)), Duration::from_millis(800));
    }

    #[test]
    fn dapr_preset_is_constant_five_seconds() {
        let s = Preset::Dapr.schedule();
        assert_eq!(first_delays(&s, 5), vec![secs(5); 5]);
        assert_eq!(Preset::Dapr.implied_max_delivery_attempts(), None);
    }

    #[test]
    fn preset_names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
        assert_eq!(Preset::from_name("Event-Grid"), None);
    }

    #[test]
    fn exponential_and_linear_are_capped() {
        let e = RetrySchedule::Exponential {
            base: secs(1),
            factor: 2.0,
            cap: Some(secs(300)),
            jitter: 0.0,
        };
        let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300];
        assert_eq!(first_delays(&e, 11), expected.map(secs).to_vec());
        let l = RetrySchedule::Linear {
            initial: secs(1),
            step: secs(5),
            cap: Some(secs(20)),
            jitter: 0.0,
        };
        assert_eq!(
            first_delays(&l, 6),
            [1, 6, 11, 16, 20, 20].map(secs).to_vec()
        );
    }

    #[test]
    fn uncapped_exponential_saturates_instead_of_overflowing() {
        let s = Preset::Knative.schedule();
        assert_eq!(s.nominal_delay(200), MAX_DELAY);
        assert_eq!(s.nominal_delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let s = Preset::EventGrid.schedule();
        let mut r = rng(7);
        let mut seen_below = false;
        let mut seen_above = false;
        for _ in 0..1000 {
            let d = s.delay_after(4, &mut r).as_secs_f64();
            assert!((270.0..=330.0).contains(&d), "{d}");
            seen_below |= d < 295.0;
            seen_above |= d > 305.0;
        }
        assert!(
            seen_below && seen_above,
            "jitter is actually applied both ways"
        );
    }

    #[test]
    fn max_attempts_ends_delivery_after_the_last_attempt() {
        let policy = RetryPolicy {
            max_delivery_attempts: 3,
            ..RetryPolicy::default()
        };
        let (starts, end) = run_to_end(&policy, retriable(), Duration::ZERO, &mut rng(1));
        assert_eq!(starts.len(), 3);
        let last = *starts.last().unwrap();
        assert_eq!(
            end,
            Decision::GiveUp {
                reason: GiveUpReason::MaxDeliveryAttemptsExceeded,
                at: last
            }
        );
    }

    #[test]
    fn one_attempt_policy_never_retries() {
        let policy = RetryPolicy {
            max_delivery_attempts: 1,
            ..RetryPolicy::default()
        };
        let d = policy.decide(1, secs(2), retriable(), &mut rng(0));
        assert_eq!(
            d,
            Decision::GiveUp {
                reason: GiveUpReason::MaxDeliveryAttemptsExceeded,
                at: secs(2)
            }
        );
    }

    #[test]
    fn non_retriable_status_ends_at_once() {
        let policy = RetryPolicy::default();
        let d = policy.decide(
            1,
            secs(3),
            Failure::NonRetriable { status: 400 },
            &mut rng(0),
        );
        assert_eq!(
            d,
            Decision::GiveUp {
                reason: GiveUpReason::NonRetriableStatus(400),
                at: secs(3)
            }
        );
    }

    /// Event Grid's docs: TTL 30 min and 10 max attempts → at most 6 attempts, the TTL wins,
    /// and the event ends when the 7th attempt would have been (46 min 40 s), not at 30 min.
    #[test]
    fn ttl_is_checked_at_the_next_attempt_without_jitter() {
        let policy = RetryPolicy {
            max_delivery_attempts: 10,
            event_time_to_live: secs(30 * 60),
            schedule: without_jitter(Preset::EventGrid.schedule()),
        };
        let (starts, end) = run_to_end(&policy, retriable(), Duration::ZERO, &mut rng(0));
        assert_eq!(starts, [0, 10, 40, 100, 400, 1000].map(secs).to_vec());
        assert_eq!(
            end,
            Decision::GiveUp {
                reason: GiveUpReason::TimeToLiveExceeded,
                at: secs(2800)
            }
        );
    }

    #[test]
    fn ttl_is_checked_at_the_next_attempt_with_jitter() {
        let policy = RetryPolicy {
            max_delivery_attempts: 10,
            event_time_to_live: secs(30 * 60),
            schedule: Preset::EventGrid.schedule(),
        };
        for seed in 0..200 {
            let (starts, end) = run_to_end(&policy, retriable(), Duration::ZERO, &mut rng(seed));
            assert_eq!(starts.len(), 6, "seed {seed}");
            let Decision::GiveUp { reason, at } = end else {
                panic!("seed {seed}: ends with a give-up")
            };
            assert_eq!(reason, GiveUpReason::TimeToLiveExceeded);
            // 7th attempt nominally at 2800 s; each step moves ±10 %.
            assert!(
                at > secs(30 * 60) && at >= secs(2520) && at <= secs(3080),
                "{at:?}"
            );
        }
    }

    #[test]
    fn attempt_exactly_at_expiry_is_still_made() {
        let policy = RetryPolicy {
            max_delivery_attempts: 30,
            event_time_to_live: secs(10),
            schedule: Preset::Dapr.schedule(),
        };
        assert_eq!(
            policy.decide(1, secs(5), retriable(), &mut rng(0)),
            Decision::RetryAfter(secs(5))
        );
        assert_eq!(
            policy.decide(2, secs(6), retriable(), &mut rng(0)),
            Decision::GiveUp {
                reason: GiveUpReason::TimeToLiveExceeded,
                at: secs(11)
            }
        );
    }

    #[test]
    fn minimum_delay_from_the_outcome_wins_over_a_shorter_schedule() {
        let policy = RetryPolicy {
            schedule: Preset::Dapr.schedule(),
            ..RetryPolicy::default()
        };
        let failure = Failure::Retriable {
            min_delay: secs(300),
        };
        assert_eq!(
            policy.decide(1, secs(1), failure, &mut rng(0)),
            Decision::RetryAfter(secs(300))
        );
        // And a longer schedule step wins over a shorter minimum.
        let failure = Failure::Retriable { min_delay: secs(2) };
        assert_eq!(
            policy.decide(1, secs(1), failure, &mut rng(0)),
            Decision::RetryAfter(secs(5))
        );
    }

    #[test]
    fn a_long_minimum_delay_can_end_by_ttl() {
        let policy = RetryPolicy {
            event_time_to_live: secs(60),
            ..RetryPolicy::default()
        };
        let failure = Failure::Retriable {
            min_delay: secs(120),
        };
        assert_eq!(
            policy.decide(1, secs(1), failure, &mut rng(0)),
            Decision::GiveUp {
                reason: GiveUpReason::TimeToLiveExceeded,
                at: secs(121)
            }
        );
    }

    #[test]
    fn no_attempt_starts_after_the_ttl_but_one_exactly_at_expiry_does() {
        let policy = RetryPolicy {
            event_time_to_live: secs(60),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.before_attempt(Duration::ZERO), None);
        assert_eq!(policy.before_attempt(secs(60)), None);
        assert_eq!(
            policy.before_attempt(secs(60) + Duration::from_nanos(1)),
            Some(GiveUpReason::TimeToLiveExceeded)
        );
    }

    #[test]
    fn an_answer_at_or_after_the_timeout_or_none_is_a_timeout_when_it_expires() {
        let timeout = secs(30);
        let ok = AttemptResult::status(200);
        assert_eq!(within_timeout(timeout, secs(1), ok), (secs(1), ok));
        let busy = AttemptResult::status(503);
        assert_eq!(within_timeout(timeout, secs(29), busy), (secs(29), busy));
        for (latency, result) in [
            (secs(30), ok),
            (secs(31), busy),
            (secs(1), AttemptResult::Timeout),
            (Duration::ZERO, AttemptResult::Timeout),
        ] {
            assert_eq!(
                within_timeout(timeout, latency, result),
                (timeout, AttemptResult::Timeout),
                "{latency:?} {result:?}"
            );
        }
        let error = AttemptResult::ConnectionError;
        assert_eq!(within_timeout(timeout, secs(2), error), (secs(2), error));
    }

    #[test]
    fn reasons_serialize_by_name() {
        let json = |r: GiveUpReason| serde_json::to_string(&r).unwrap();
        assert_eq!(
            json(GiveUpReason::MaxDeliveryAttemptsExceeded),
            r#""MaxDeliveryAttemptsExceeded""#
        );
        assert_eq!(
            json(GiveUpReason::TimeToLiveExceeded),
            r#""TimeToLiveExceeded""#
        );
        assert_eq!(
            json(GiveUpReason::NonRetriableStatus(413)),
            r#"{"NonRetriableStatus":413}"#
        );
        assert_eq!(
            GiveUpReason::NonRetriableStatus(403).as_str(),
            "NonRetriableStatus"
        );
        assert_eq!(
            GiveUpReason::NonRetriableStatus(403).to_string(),
            "NonRetriableStatus(403)"
        );
    }

    fn arb_duration(max_ms: u64) -> impl Strategy<Value = Duration> {
        (0..=max_ms).prop_map(Duration::from_millis)
    }

    fn arb_jitter() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64]
    }

    fn arb_capped_schedule() -> impl Strategy<Value = RetrySchedule> {
        prop_oneof![
            (
                arb_duration(60_000),
                1.0..10.0f64,
                arb_duration(3_600_000),
                arb_jitter()
            )
                .prop_map(|(base, factor, cap, jitter)| RetrySchedule::Exponential {
                    base,
                    factor,
                    cap: Some(cap),
                    jitter,
                }),
            (
                arb_duration(60_000),
                arb_duration(60_000),
                arb_duration(3_600_000),
                arb_jitter()
            )
                .prop_map(|(initial, step, cap, jitter)| RetrySchedule::Linear {
                    initial,
                    step,
                    cap: Some(cap),
                    jitter,
                }),
        ]
    }

    fn arb_schedule() -> impl Strategy<Value = RetrySchedule> {
        prop_oneof![
            arb_capped_schedule(),
            proptest::sample::select(Preset::ALL.to_vec()).prop_map(Preset::schedule),
            (
                proptest::collection::vec(arb_duration(86_400_000), 0..8),
                arb_duration(86_400_000),
                arb_jitter()
            )
                .prop_map(|(delays, then_every, jitter)| RetrySchedule::Table {
                    delays,
                    then_every,
                    jitter
                }),
        ]
    }

    fn arb_failure() -> impl Strategy<Value = Failure> {
        prop_oneof![
            4 => arb_duration(600_000).prop_map(|min_delay| Failure::Retriable { min_delay }),
            1 => (100u16..600).prop_map(|status| Failure::NonRetriable { status }),
        ]
    }

    fn arb_policy() -> impl Strategy<Value = RetryPolicy> {
        (1u32..=30, 1u64..=1440, arb_schedule()).prop_map(|(max, ttl_min, schedule)| RetryPolicy {
            max_delivery_attempts: max,
            event_time_to_live: secs(ttl_min * 60),
            schedule,
        })
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_cap(
            schedule in arb_capped_schedule(),
            attempts in 1u32..200,
            seed in any::<u64>(),
        ) {
            let cap = schedule.cap().unwrap();
            let d = schedule.delay_after(attempts, &mut rng(seed));
            prop_assert!(d <= cap, "{d:?} > {cap:?}");
            prop_assert!(schedule.nominal_delay(attempts) <= cap);
        }

        #[test]
        fn no_attempt_after_ttl_and_never_more_than_max(
            policy in arb_policy(),
            failure in arb_failure(),
            attempt_time in arb_duration(60_000),
            seed in any::<u64>(),
        ) {
            let (starts, end) = run_to_end(&policy, failure, attempt_time, &mut rng(seed));
            prop_assert!(starts.len() as u32 <= policy.max_delivery_attempts);
            for s in &starts {
                prop_assert!(*s <= policy.event_time_to_live, "attempt at {s:?}");
            }
            let Decision::GiveUp { reason, at } = end else { unreachable!() };
            let last_end = *starts.last().unwrap() + attempt_time;
            match reason {
                GiveUpReason::TimeToLiveExceeded => prop_assert!(at > policy.event_time_to_live),
                GiveUpReason::MaxDeliveryAttemptsExceeded => {
                    prop_assert_eq!(starts.len() as u32, policy.max_delivery_attempts);
                    prop_assert_eq!(at, last_end);
                }
                GiveUpReason::NonRetriableStatus(_) => {
                    prop_assert_eq!(starts.len(), 1);
                    prop_assert_eq!(at, last_end);
                }
            }
        }

        #[test]
        fn every_retry_decide_schedules_may_start(
            policy in arb_policy(),
            failure in arb_failure(),
            attempts in 1u32..30,
            elapsed in arb_duration(90_000_000),
            seed in any::<u64>(),
        ) {
            if let Decision::RetryAfter(wait) = policy.decide(attempts, elapsed, failure, &mut rng(seed)) {
                prop_assert_eq!(policy.before_attempt(elapsed + wait), None);
            }
        }

        #[test]
        fn same_seed_same_decisions(
            policy in arb_policy(),
            failure in arb_failure(),
            attempt_time in arb_duration(60_000),
            seed in any::<u64>(),
        ) {
            let a = run_to_end(&policy, failure, attempt_time, &mut rng(seed));
            let b = run_to_end(&policy, failure, attempt_time, &mut rng(seed));
            prop_assert_eq!(a, b);
        }
    }
}
