//! Simulated-endpoint fault model: an endpoint's misbehaviour as data (latency distribution,
//! failure probabilities, outage windows, throttling: [`FaultSettings`], validated from the
//! endpoint's `simulate` section by `config`), turned into one answer per attempt.
//!
//! [`FaultModel::attempt`] checks, in this order:
//! 1. **outage window**: `now` inside `[start, start + duration)` of an outage → its status,
//!    answered at the median latency (the front door fails fast, it does no work);
//! 2. **throttle**: fixed 1-second windows over `now`; once `maxPerSecond` requests have passed
//!    in the current window → 429 (with the configured `Retry-After`), at the median latency;
//! 3. one uniform draw `u` in `[0, 1)` against the cumulative probabilities, laid out as
//!    **timeout**, then **lost ack**, then each **failure** status in list order; `u` beyond
//!    them all → **accepted**.
//!
//! Outages come first because a down endpoint neither counts requests nor rolls dice; throttling
//! comes before the random faults because a throttled request never reaches the code that could
//! time out or fail.
//!
//! Every call draws the same values from the rng in the same order (one uniform, one normal for
//! the latency), whatever the outcome, so one changed fault does not shift every later draw.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::config::FaultSettings;
use crate::delivery::classify::AttemptResult;

/// The standard normal's 99th percentile, used to fit the log-normal's σ to p50/p99.
const Z_99: f64 = 2.326_347_874_040_841;

/// Latencies are cut at this multiple of p99, so a heavy tail stays plausible.
pub const LATENCY_CLAMP_FACTOR: f64 = 10.0;

/// What the simulated endpoint did with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimResult {
    /// The endpoint took the event and said so.
    Accepted,
    /// The endpoint took the event but the answer was lost: the caller sees a timeout and
    /// retries, while the endpoint counts the event as received (a duplicate follows).
    LostAck,
    /// The endpoint never answers; the caller's attempt timeout ends the attempt.
    Timeout,
    /// The endpoint answered with a status.
    Status {
        /// The status code.
        status: u16,
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
    },
}

impl SimResult {
    /// What the delivering side observes, for classification: `Accepted` is a 200, `LostAck`
    /// and `Timeout` are timeouts.
    pub fn attempt_result(&self) -> AttemptResult {
        match *self {
            SimResult::Accepted => AttemptResult::status(200),
            SimResult::LostAck | SimResult::Timeout => AttemptResult::Timeout,
            SimResult::Status {
                status,
                retry_after,
            } => AttemptResult::Status {
                status,
                retry_after,
            },
        }
    }

    /// Whether the endpoint now holds the event (it counts as received): `Accepted` and
    /// `LostAck`.
    pub fn endpoint_received(&self) -> bool {
        matches!(self, SimResult::Accepted | SimResult::LostAck)
    }
}

/// One simulated attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SimulatedAttempt {
    /// How long after the request the endpoint acts: answers, or for `LostAck` receives the
    /// event. For `Timeout` there is no answer and the caller's attempt timeout applies; the
    /// caller should likewise treat any latency at or above its attempt timeout as a timeout.
    pub latency: Duration,
    /// What happened.
    pub result: SimResult,
}

/// Injected latency, fitted once: constant, or a log-normal through p50 and p99 cut at
/// [`LATENCY_CLAMP_FACTOR`] × p99. Simulated endpoints and `twinroute receive` share it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyModel {
    /// Every answer takes this long.
    Constant(Duration),
    /// e^(μ + σz) milliseconds for a standard-normal z, at most `max_ms`.
    LogNormal {
        /// μ: the log of the median in milliseconds.
        mu: f64,
        /// σ: fitted so that the 99th percentile is p99.
        sigma: f64,
        /// The median (p50).
        median: Duration,
        /// The cut, in milliseconds.
        max_ms: f64,
    },
}

impl LatencyModel {
    /// The model through `(p50, p99)`; `None`, `p99 <= p50` or a zero median give a constant.
    pub fn fit(percentiles: Option<(Duration, Duration)>) -> Self {
        let Some((p50, p99)) = percentiles else {
            return LatencyModel::Constant(Duration::ZERO);
        };
        if p99 <= p50 || p50.is_zero() {
            // p99 = p50 is a constant; a zero median cannot carry a log-normal (validation
            // rejects p50 = 0 < p99), so it degrades to constant zero as well.
            return LatencyModel::Constant(p50);
        }
        let (p50_ms, p99_ms) = (millis(p50), millis(p99));
        // Median of a log-normal is e^μ; its p99 is e^(μ + z₉₉ σ).
        LatencyModel::LogNormal {
            mu: p50_ms.ln(),
            sigma: (p99_ms / p50_ms).ln() / Z_99,
            median: p50,
            max_ms: LATENCY_CLAMP_FACTOR * p99_ms,
        }
    }

    /// The median: what a fast answer (outage, throttle) takes.
    pub fn median(&self) -> Duration {
        match *self {
            LatencyModel::Constant(d) => d,
            LatencyModel::LogNormal { median, .. } => median,
        }
    }

    /// The latency for a standard-normal draw `z`.
    pub fn at(&self, z: f64) -> Duration {
        match *self {
            LatencyModel::Constant(d) => d,
            LatencyModel::LogNormal {
                mu, sigma, max_ms, ..
            } => {
                let ms = (mu + sigma * z).exp().min(max_ms);
                Duration::from_nanos((ms * 1e6).round() as u64)
            }
        }
    }

    /// Draws one latency. Always one standard-normal draw, constant or not, so the rng stream
    /// does not depend on whether latency is configured.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        self.at(StandardNormal.sample(rng))
    }
}

/// A request-rate limit's state: fixed 1-second windows, window `k` being `[k s, k+1 s)` since
/// the start. Simulated endpoints and `twinroute receive` share it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleWindow {
    /// Index of the current window (whole seconds since the start).
    window: u64,
    /// Requests let through in `window`.
    passed: u32,
}

impl ThrottleWindow {
    /// Whether a request at `now` passes a limit of `max_per_second`; a passing request counts
    /// toward its window, a throttled one does not. A request from an earlier window
    /// (out-of-order caller) is counted against the current one, which can only throttle more,
    /// never let more through.
    pub fn pass(&mut self, now: Duration, max_per_second: u32) -> bool {
        let window = now.as_secs();
        if window > self.window {
            self.window = window;
            self.passed = 0;
        }
        if self.passed >= max_per_second {
            return false;
        }
        self.passed += 1;
        true
    }
}

fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// A simulated endpoint's behaviour, built from [`FaultSettings`], holding the throttle's state.
/// One model per endpoint; feed it attempts in (roughly) time order.
#[derive(Debug, Clone)]
pub struct FaultModel {
    settings: FaultSettings,
    latency: LatencyModel,
    throttle: ThrottleWindow,
}

impl FaultModel {
    /// Builds the model (fits the latency distribution once).
    pub fn new(settings: FaultSettings) -> Self {
        FaultModel {
            latency: LatencyModel::fit(settings.latency.map(|l| (l.p50, l.p99))),
            settings,
            throttle: ThrottleWindow::default(),
        }
    }

    /// The settings the model was built from.
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// Simulates one attempt made at `now` (offset since run start). See the module docs for
    /// the order of checks.
    pub fn attempt(&mut self, now: Duration, rng: &mut impl Rng) -> SimulatedAttempt {
        // Draw first, always, in a fixed order: the stream stays aligned whatever happens.
        let unit: f64 = rng.random();
        let latency = self.latency.sample(rng);

        if let Some(outage) = self.settings.outages.iter().find(|o| o.contains(now)) {
            return self.fast_answer(outage.status, outage.retry_after);
        }
        if let Some(throttle) = self.settings.throttle
            && !self.throttle.pass(now, throttle.max_per_second)
        {
            return self.fast_answer(429, throttle.retry_after);
        }
        SimulatedAttempt {
            latency,
            result: self.pick(unit),
        }
    }

    fn fast_answer(&self, status: u16, retry_after: Option<Duration>) -> SimulatedAttempt {
        SimulatedAttempt {
            latency: self.latency.median(),
            result: SimResult::Status {
                status,
                retry_after,
            },
        }
    }

    /// Maps the uniform draw onto timeout, lost ack, the failures, or acceptance.
    fn pick(&self, unit: f64) -> SimResult {
        let s = &self.settings;
        let mut edge = s.timeout_probability;
        if unit < edge {
            return SimResult::Timeout;
        }
        edge += s.lost_ack_probability;
        if unit < edge {
            return SimResult::LostAck;
        }
        for failure in &s.failures {
            edge += failure.probability;
            if unit < edge {
                return SimResult::Status {
                    status: failure.status,
                    retry_after: failure.retry_after,
                };
            }
        }
        SimResult::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LatencySettings;
    use crate::config::{FailureSettings, OutageSettings, ThrottleSettings};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    fn failure(status: u16, probability: f64) -> FailureSettings {
        FailureSettings {
            status,
            probability,
            retry_after: None,
        }
    }

    #[test]
    fn a_perfect_endpoint_accepts_everything_instantly() {
        let mut m = FaultModel::new(FaultSettings::default());
        let mut r = rng(1);
        for i in 0..1000 {
            let a = m.attempt(ms(i), &mut r);
            assert_eq!(a.result, SimResult::Accepted);
            assert_eq!(a.latency, Duration::ZERO);
        }
    }

    #[test]
    fn observed_fault_frequencies_match_the_probabilities() {
        let settings = FaultSettings {
            failures: vec![failure(503, 0.05), failure(400, 0.01)],
            timeout_probability: 0.02,
            lost_ack_probability: 0.03,
            ..FaultSettings::default()
        };
        let mut m = FaultModel::new(settings);
        let mut r = rng(42);
        let n = 100_000;
        let mut counts: HashMap<SimResult, u32> = HashMap::new();
        for i in 0..n {
            *counts.entry(m.attempt(ms(i), &mut r).result).or_default() += 1;
        }
        let freq = |res: SimResult| f64::from(counts.get(&res).copied().unwrap_or(0)) / n as f64;
        let status = |s| SimResult::Status {
            status: s,
            retry_after: None,
        };
        // ±0.4 percentage points is over 5 standard deviations at these rates.
        for (res, p) in [
            (status(503), 0.05),
            (status(400), 0.01),
            (SimResult::Timeout, 0.02),
            (SimResult::LostAck, 0.03),
            (SimResult::Accepted, 0.89),
        ] {
            assert!(
                (freq(res) - p).abs() < 0.004,
                "{res:?}: {} vs {p}",
                freq(res)
            );
        }
    }

    #[test]
    fn outage_window_is_start_inclusive_end_exclusive() {
        let settings = FaultSettings {
            outages: vec![OutageSettings {
                start: secs(600),
                duration: secs(7200),
                status: 503,
                retry_after: Some(secs(7)),
            }],
            latency: Some(LatencySettings {
                p50: ms(20),
                p99: ms(200),
            }),
            ..FaultSettings::default()
        };
        let mut m = FaultModel::new(settings);
        let mut r = rng(3);
        let in_outage = SimResult::Status {
            status: 503,
            retry_after: Some(secs(7)),
        };
        let just_before = secs(600) - Duration::from_nanos(1);
        let last_inside = secs(7800) - Duration::from_nanos(1);
        assert_eq!(m.attempt(just_before, &mut r).result, SimResult::Accepted);
        for t in [secs(600), secs(601), secs(4000), last_inside] {
            let a = m.attempt(t, &mut r);
            assert_eq!(a.result, in_outage, "{t:?}");
            assert_eq!(a.latency, ms(20), "outage answers at the median");
        }
        assert_eq!(m.attempt(secs(7800), &mut r).result, SimResult::Accepted);
    }

    #[test]
    fn outage_beats_every_other_fault() {
        let settings = FaultSettings {
            outages: vec![OutageSettings {
                start: Duration::ZERO,
                duration: secs(10),
                status: 500,
                retry_after: None,
            }],
            timeout_probability: 1.0,
            throttle: Some(ThrottleSettings {
                max_per_second: 1,
                retry_after: None,
            }),
            ..FaultSettings::default()
        };
        let mut m = FaultModel::new(settings);
        let mut r = rng(0);
        for i in 0..100 {
            let res = m.attempt(ms(i * 10), &mut r).result;
            assert_eq!(
                res,
                SimResult::Status {
                    status: 500,
                    retry_after: None
                }
            );
        }
        // After the outage the timeout fault shows (and the throttle counts again).
        assert_eq!(m.attempt(secs(10), &mut r).result, SimResult::Timeout);
    }

    #[test]
    fn throttle_caps_requests_per_one_second_window() {
        let settings = FaultSettings {
            throttle: Some(ThrottleSettings {
                max_per_second: 500,
                retry_after: Some(secs(5)),
            }),
            ..FaultSettings::default()
        };
        let mut m = FaultModel::new(settings);
        let mut r = rng(9);
        let mut accepted_per_second = [0u32; 5];
        let mut throttled = 0;
        // 2,000 requests per second for 5 seconds, evenly spread.
        for i in 0..10_000u64 {
            let now = Duration::from_micros(i * 500);
            match m.attempt(now, &mut r).result {
                SimResult::Accepted => accepted_per_second[now.as_secs() as usize] += 1,
                SimResult::Status {
                    status: 429,
                    retry_after,
                } => {
                    assert_eq!(retry_after, Some(secs(5)));
                    throttled += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(accepted_per_second, [500; 5]);
        assert_eq!(throttled, 10_000 - 2_500);
    }

    #[test]
    fn latency_quantiles_follow_p50_and_p99() {
        let settings = FaultSettings {
            latency: Some(LatencySettings {
                p50: ms(20),
                p99: ms(200),
            }),
            ..FaultSettings::default()
        };
        let mut m = FaultModel::new(settings);
        let mut r = rng(5);
        let n = 100_000;
        let mut samples: Vec<Duration> = (0..n).map(|_| m.attempt(ms(0), &mut r).latency).collect();
        samples.sort();
        let q = |p: f64| millis(samples[(p * n as f64) as usize]);
        assert!((q(0.50) - 20.0).abs() < 1.0, "p50 {}", q(0.50));
        assert!((q(0.99) - 200.0).abs() < 20.0, "p99 {}", q(0.99));
        assert!(*samples.last().unwrap() <= ms(2000), "clamped at 10 × p99");
        assert!(*samples.first().unwrap() > Duration::ZERO);
    }

    #[test]
    fn equal_percentiles_give_constant_latency() {
        let settings = FaultSettings {
            latency: Some(LatencySettings {
                p50: ms(35),
                p99: ms(35),
            }),
            ..FaultSettings::default()
        };
        let mut m = FaultModel::new(settings);
        let mut r = rng(5);
        for _ in 0..100 {
            assert_eq!(m.attempt(ms(0), &mut r).latency, ms(35));
        }
    }

    #[test]
    fn rng_consumption_does_not_depend_on_outcomes() {
        let latency = Some(LatencySettings {
            p50: ms(20),
            p99: ms(200),
        });
        let quiet = FaultSettings {
            latency,
            ..FaultSettings::default()
        };
        let noisy = FaultSettings {
            latency,
            failures: vec![failure(503, 0.3)],
            outages: vec![OutageSettings {
                start: secs(1),
                duration: secs(1),
                status: 503,
                retry_after: None,
            }],
            throttle: Some(ThrottleSettings {
                max_per_second: 100,
                retry_after: None,
            }),
            timeout_probability: 0.1,
            lost_ack_probability: 0.1,
        };
        let (mut a, mut b) = (FaultModel::new(quiet), FaultModel::new(noisy));
        let (mut ra, mut rb) = (rng(11), rng(11));
        for i in 0..5_000u64 {
            let now = Duration::from_millis(i);
            a.attempt(now, &mut ra);
            b.attempt(now, &mut rb);
        }
        assert_eq!(ra.get_word_pos(), rb.get_word_pos());
    }

    #[test]
    fn same_seed_same_attempts() {
        let settings = FaultSettings {
            latency: Some(LatencySettings {
                p50: ms(20),
                p99: ms(200),
            }),
            failures: vec![failure(503, 0.2)],
            timeout_probability: 0.1,
            ..FaultSettings::default()
        };
        let run = |seed| {
            let mut m = FaultModel::new(settings.clone());
            let mut r = rng(seed);
            (0..1000u64)
                .map(|i| m.attempt(ms(i), &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(8), run(8));
        assert_ne!(run(8), run(9));
    }

    #[test]
    fn sim_results_map_to_what_the_caller_sees() {
        assert_eq!(
            SimResult::Accepted.attempt_result(),
            AttemptResult::status(200)
        );
        assert_eq!(SimResult::LostAck.attempt_result(), AttemptResult::Timeout);
        assert_eq!(SimResult::Timeout.attempt_result(), AttemptResult::Timeout);
        assert!(SimResult::LostAck.endpoint_received());
        assert!(SimResult::Accepted.endpoint_received());
        assert!(!SimResult::Timeout.endpoint_received());
        let s = SimResult::Status {
            status: 429,
            retry_after: Some(secs(5)),
        };
        assert!(!s.endpoint_received());
        assert_eq!(
            s.attempt_result(),
            AttemptResult::Status {
                status: 429,
                retry_after: Some(secs(5))
            }
        );
    }
}
