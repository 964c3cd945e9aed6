//! The chaos knobs as one decision per request.
//!
//! [`Chaos::decide`] applies the knobs in this order:
//! 1. **outage**: `since_start` inside `[from, from + for)` → 503. Checked first because a down
//!    endpoint neither counts requests against its rate limit nor rolls dice.
//! 2. **throttle**: fixed 1-second windows since the receiver started; once `throttle` requests
//!    have passed in the current window → 429 with `Retry-After: 1`. Throttled requests do not
//!    count toward the window.
//! 3. **drop connection**: with probability `drop_connection_rate` the connection is closed
//!    with no answer.
//! 4. **latency**: a log-normal fitted to p50/p99 (cut at 10 × p99) delays the answer: the
//!    simulated endpoints' [`LatencyModel`], as their throttle is [`ThrottleWindow`].
//! 5. **fail rate**: with probability `fail_rate` the request is answered `fail_status`. The
//!    handler applies it last, after the key and body checks, so only requests that would have
//!    been accepted are failed.
//!
//! Every request that gets past the throttle draws the same three numbers from the seeded
//! stream, in the same order, whatever the knobs say: a sequential client sees the same fault
//! sequence for the same seed, and turning one knob does not shift the others' draws.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::settings::ReceiveSettings;
use crate::sink::fault::{LatencyModel, ThrottleWindow};

/// Name of the receiver's random stream of the master seed.
const RNG_STREAM: &str = "receive:chaos";

/// What the chaos knobs decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Inside the outage window: answer 503.
    Outage,
    /// Over the rate limit: answer 429 with `Retry-After: 1`.
    Throttled,
    /// Close the TCP connection without answering.
    DropConnection,
    /// Handle the request after `latency`; `fail` = answer `fail_status` if it would be
    /// accepted.
    Serve {
        /// Injected processing time.
        latency: Duration,
        /// Whether the fail-rate draw hit.
        fail: bool,
    },
}

/// The chaos knobs, fitted once, plus the state they need (rng, throttle window).
pub(crate) struct Chaos {
    outage: Option<(Duration, Duration)>,
    throttle: Option<u32>,
    drop_rate: f64,
    fail_rate: f64,
    latency: LatencyModel,
    state: Mutex<ChaosState>,
}

struct ChaosState {
    rng: ChaCha8Rng,
    throttle: ThrottleWindow,
}

impl Chaos {
    /// The knobs of `settings`, with the rng seeded from `settings.seed`.
    pub(crate) fn new(settings: &ReceiveSettings) -> Self {
        Chaos {
            outage: settings.outage,
            throttle: settings.throttle,
            drop_rate: settings.drop_connection_rate,
            fail_rate: settings.fail_rate,
            latency: LatencyModel::fit(settings.latency),
            state: Mutex::new(ChaosState {
                rng: rng_stream(settings.seed, RNG_STREAM),
                throttle: ThrottleWindow::default(),
            }),
        }
    }

    /// The verdict for a request arriving `since_start` after the receiver started.
    pub(crate) fn decide(&self, since_start: Duration) -> Verdict {
        if let Some((from, length)) = self.outage
            && since_start >= from
            && since_start - from < length
        {
            return Verdict::Outage;
        }
        let (drop_draw, normal_draw, fail_draw) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(limit) = self.throttle
                && !state.throttle.pass(since_start, limit)
            {
                return Verdict::Throttled;
            }
            let rng = &mut state.rng;
            let drop_draw: f64 = rng.random();
            let normal_draw: f64 = rng.sample(StandardNormal);
            let fail_draw: f64 = rng.random();
            (drop_draw, normal_draw, fail_draw)
        };
        // `random()` is in [0, 1): a rate of 1.0 always hits, 0.0 never does.
        if drop_draw < self.drop_rate {
            return Verdict::DropConnection;
        }
        Verdict::Serve {
            latency: self.latency.at(normal_draw),
            fail: fail_draw < self.fail_rate,
        }
    }
}

fn rng_stream(seed: u64, name: &str) -> ChaCha8Rng {
    crate::seed::stream(seed, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(settings: ReceiveSettings) -> Chaos {
        Chaos::new(&settings)
    }

    #[test]
    fn outage_window_excludes_its_end() {
        let chaos = chaos(ReceiveSettings {
            outage: Some((Duration::from_secs(30), Duration::from_secs(60))),
            ..ReceiveSettings::default()
        });
        let serve = Verdict::Serve {
            latency: Duration::ZERO,
            fail: false,
        };
        assert_eq!(chaos.decide(Duration::from_millis(29_999)), serve);
        assert_eq!(chaos.decide(Duration::from_secs(30)), Verdict::Outage);
        assert_eq!(chaos.decide(Duration::from_millis(89_999)), Verdict::Outage);
        assert_eq!(chaos.decide(Duration::from_secs(90)), serve);
    }

    #[test]
    fn throttle_counts_per_one_second_window() {
        let chaos = chaos(ReceiveSettings {
            throttle: Some(2),
            ..ReceiveSettings::default()
        });
        let at = |ms| chaos.decide(Duration::from_millis(ms));
        assert!(matches!(at(0), Verdict::Serve { .. }));
        assert!(matches!(at(500), Verdict::Serve { .. }));
        assert_eq!(at(999), Verdict::Throttled);
        assert_eq!(at(999), Verdict::Throttled);
        assert!(matches!(at(1_000), Verdict::Serve { .. }));
    }

    #[test]
    fn outage_wins_over_throttle_and_does_not_count() {
        let chaos = chaos(ReceiveSettings {
            throttle: Some(1),
            outage: Some((Duration::ZERO, Duration::from_millis(100))),
            ..ReceiveSettings::default()
        });
        assert_eq!(chaos.decide(Duration::from_millis(50)), Verdict::Outage);
        assert!(matches!(
            chaos.decide(Duration::from_millis(150)),
            Verdict::Serve { .. }
        ));
        assert_eq!(chaos.decide(Duration::from_millis(200)), Verdict::Throttled);
    }

    #[test]
    fn rates_of_one_always_hit_and_drop_comes_before_fail() {
        let always_fail = chaos(ReceiveSettings {
            fail_rate: 1.0,
            ..ReceiveSettings::default()
        });
        let always_drop = chaos(ReceiveSettings {
            fail_rate: 1.0,
            drop_connection_rate: 1.0,
            ..ReceiveSettings::default()
        });
        for _ in 0..100 {
            assert!(matches!(
                always_fail.decide(Duration::ZERO),
                Verdict::Serve { fail: true, .. }
            ));
            assert_eq!(always_drop.decide(Duration::ZERO), Verdict::DropConnection);
        }
    }

    #[test]
    fn same_seed_same_faults_other_seed_other_faults() {
        let run = |seed| {
            let chaos = chaos(ReceiveSettings {
                fail_rate: 0.5,
                drop_connection_rate: 0.2,
                latency: Some((Duration::from_millis(10), Duration::from_millis(100))),
                seed,
                ..ReceiveSettings::default()
            });
            (0..200)
                .map(|_| chaos.decide(Duration::ZERO))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let faults = run(1);
        let drops = faults
            .iter()
            .filter(|v| **v == Verdict::DropConnection)
            .count();
        let fails = faults
            .iter()
            .filter(|v| matches!(v, Verdict::Serve { fail: true, .. }))
            .count();
        assert!((20..=60).contains(&drops), "drops {drops}");
        assert!((50..=110).contains(&fails), "fails {fails}");
    }

    #[test]
    fn log_normal_fits_p50_and_p99() {
        let chaos = chaos(ReceiveSettings {
            latency: Some((Duration::from_millis(20), Duration::from_millis(200))),
            seed: 42,
            ..ReceiveSettings::default()
        });
        let mut samples: Vec<f64> = (0..20_000)
            .filter_map(|_| match chaos.decide(Duration::ZERO) {
                Verdict::Serve { latency, .. } => Some(latency.as_secs_f64() * 1000.0),
                _ => None,
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let p50 = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((18.0..22.0).contains(&p50), "p50 {p50}");
        assert!((170.0..235.0).contains(&p99), "p99 {p99}");
        assert!(samples.iter().all(|ms| *ms <= 2_000.0));
    }

    #[test]
    fn equal_percentiles_mean_constant_latency() {
        let model = LatencyModel::fit(Some((Duration::from_millis(5), Duration::from_millis(5))));
        assert_eq!(model.at(3.0), Duration::from_millis(5));
        assert_eq!(LatencyModel::fit(None).at(3.0), Duration::ZERO);
    }
}
