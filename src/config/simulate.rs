//! A simulated endpoint's `simulate` section as written (`SimulateConfig`) and its validation
//! into [`FaultSettings`], the data the simulated sink's fault model answers with. Every problem is collected, each
//! named by its JSON path relative to the section, so the caller can prefix it (see
//! [`Problem::under`]).
//!
//! Numbers are read wider than they are stored (`i64`, `f64`) so that a value out of range
//! reaches validation and gets a message saying the allowed range, instead of a bare serde
//! type error.

use std::time::Duration;

use serde::Deserialize;

use super::{Problem, Problems};

/// Largest latency percentile accepted, in milliseconds (1 h); anything near it is a timeout
/// in practice, the bound only keeps arithmetic finite.
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;
/// Slack when checking that probabilities sum to at most 1, so that e.g. 0.1 + 0.2 + 0.7 is not
/// rejected for binary rounding.
const PROBABILITY_SUM_SLACK: f64 = 1e-9;

/// A simulated endpoint's `simulate` block. Every field is optional; absent means no such fault
/// (and no latency).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimulateConfig {
    /// Response-time percentiles in milliseconds.
    pub latency_ms: Option<LatencyConfig>,
    /// Random failure statuses.
    #[serde(default)]
    pub failures: Vec<FailureConfig>,
    /// Outage windows.
    #[serde(default)]
    pub outages: Vec<OutageConfig>,
    /// Request-rate limit.
    pub throttle: Option<ThrottleConfig>,
    /// Probability that the endpoint never answers, in `[0, 1]`.
    pub timeout_probability: Option<f64>,
    /// Probability that the endpoint takes the event but the answer is lost, in `[0, 1]`.
    pub lost_ack_probability: Option<f64>,
}

/// `latencyMs`: `{"p50": 20, "p99": 200}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LatencyConfig {
    /// Median, milliseconds (≥ 0).
    pub p50: f64,
    /// 99th percentile, milliseconds (≥ p50); absent = p50 (constant latency).
    pub p99: Option<f64>,
}

/// One entry of `failures`: `{"status": 503, "probability": 0.05}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailureConfig {
    /// Status returned, 100–599.
    pub status: i64,
    /// Probability per attempt, in `[0, 1]`.
    pub probability: f64,
    /// `Retry-After` sent with it, seconds; absent = none.
    pub retry_after_seconds: Option<f64>,
}

/// One entry of `outages`: `{"startSeconds": 600, "durationSeconds": 7200, "status": 503}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutageConfig {
    /// Start, seconds since run start (≥ 0).
    pub start_seconds: f64,
    /// Length, seconds (≥ 0).
    pub duration_seconds: f64,
    /// Status returned during the outage, 100–599; default 503.
    pub status: Option<i64>,
    /// `Retry-After` sent with it, seconds; absent = none.
    pub retry_after_seconds: Option<f64>,
}

/// `throttle`: `{"maxPerSecond": 500, "retryAfterSeconds": 5}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThrottleConfig {
    /// Requests let through per 1-second window (≥ 1).
    pub max_per_second: i64,
    /// `Retry-After` sent with the 429, seconds; absent = none.
    pub retry_after_seconds: Option<f64>,
}

/// Validated fault settings for one simulated endpoint. The default is a perfect endpoint:
/// zero latency, no faults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultSettings {
    /// Response-time distribution; `None` = zero latency.
    pub latency: Option<LatencySettings>,
    /// Random failure statuses, each with its probability.
    pub failures: Vec<FailureSettings>,
    /// Windows during which every attempt gets a fixed status.
    pub outages: Vec<OutageSettings>,
    /// Request-rate limit.
    pub throttle: Option<ThrottleSettings>,
    /// Probability that the endpoint never answers.
    pub timeout_probability: f64,
    /// Probability that the endpoint takes the event but its answer is lost.
    pub lost_ack_probability: f64,
}

/// Latency percentiles; a log-normal is fitted through them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySettings {
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency (≥ `p50`; equal means constant latency).
    pub p99: Duration,
}

/// One random failure status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureSettings {
    /// Status returned (100–599).
    pub status: u16,
    /// Probability per attempt, in `[0, 1]`.
    pub probability: f64,
    /// `Retry-After` sent with it, if any.
    pub retry_after: Option<Duration>,
}

/// A window `[start, start + duration)` (offsets since run start) in which every attempt gets
/// `status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageSettings {
    /// Start of the window, since run start.
    pub start: Duration,
    /// Length of the window.
    pub duration: Duration,
    /// Status returned during the window.
    pub status: u16,
    /// `Retry-After` sent with it, if any.
    pub retry_after: Option<Duration>,
}

impl OutageSettings {
    /// Whether `now` falls inside the window (end excluded).
    pub fn contains(&self, now: Duration) -> bool {
        now >= self.start && now - self.start < self.duration
    }
}

/// A request-rate limit over fixed 1-second windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    /// Requests allowed through per 1-second window (≥ 1).
    pub max_per_second: u32,
    /// `Retry-After` sent with the 429, if any.
    pub retry_after: Option<Duration>,
}

impl SimulateConfig {
    /// Checks every field and builds the fault settings, or returns every problem found.
    pub fn validate(&self) -> Result<FaultSettings, Vec<Problem>> {
        let mut c = Problems::default();

        let latency = self.latency_ms.as_ref().map(|l| {
            let p50 = latency_ms(&mut c, "latencyMs.p50", l.p50);
            let p99 = match l.p99 {
                None => p50,
                Some(v) => latency_ms(&mut c, "latencyMs.p99", v),
            };
            if let (Some(p50), Some(p99)) = (p50, p99) {
                if p99 < p50 {
                    c.push(
                        "latencyMs.p99",
                        format!(
                            "must be at least p50 ({}), found {}",
                            l.p50,
                            l.p99.unwrap_or(l.p50)
                        ),
                    );
                } else if p50.is_zero() && p99 > p50 {
                    c.push(
                        "latencyMs.p50",
                        "must be greater than 0 when p99 is greater than p50",
                    );
                }
            }
            Some(LatencySettings {
                p50: p50?,
                p99: p99?,
            })
        });

        let failures: Vec<Option<FailureSettings>> = self
            .failures
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let at = |field: &str| format!("failures[{i}].{field}");
                let status = c.status(&at("status"), f.status);
                let probability = c.probability(&at("probability"), f.probability);
                let retry_after =
                    c.optional_seconds(&at("retryAfterSeconds"), f.retry_after_seconds);
                Some(FailureSettings {
                    status: status?,
                    probability: probability?,
                    retry_after: retry_after?,
                })
            })
            .collect();

        let outages: Vec<Option<OutageSettings>> = self
            .outages
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let at = |field: &str| format!("outages[{i}].{field}");
                let start = c.seconds(&at("startSeconds"), o.start_seconds);
                let duration = c.seconds(&at("durationSeconds"), o.duration_seconds);
                let status = c.status(&at("status"), o.status.unwrap_or(503));
                let retry_after =
                    c.optional_seconds(&at("retryAfterSeconds"), o.retry_after_seconds);
                Some(OutageSettings {
                    start: start?,
                    duration: duration?,
                    status: status?,
                    retry_after: retry_after?,
                })
            })
            .collect();

        let throttle = self.throttle.as_ref().map(|t| {
            let max = if (1..=i64::from(u32::MAX)).contains(&t.max_per_second) {
                Some(t.max_per_second as u32)
            } else {
                c.push(
                    "throttle.maxPerSecond",
                    format!(
                        "must be between 1 and {}, found {}",
                        u32::MAX,
                        t.max_per_second
                    ),
                );
                None
            };
            let retry_after =
                c.optional_seconds("throttle.retryAfterSeconds", t.retry_after_seconds);
            Some(ThrottleSettings {
                max_per_second: max?,
                retry_after: retry_after?,
            })
        });

        let timeout_probability = match self.timeout_probability {
            None => Some(0.0),
            Some(p) => c.probability("timeoutProbability", p),
        };
        let lost_ack_probability = match self.lost_ack_probability {
            None => Some(0.0),
            Some(p) => c.probability("lostAckProbability", p),
        };

        // The sum only means something once each probability is valid on its own.
        let mut probabilities = vec![timeout_probability, lost_ack_probability];
        probabilities.extend(failures.iter().map(|f| f.map(|f| f.probability)));
        if let Some(all) = probabilities.into_iter().collect::<Option<Vec<f64>>>() {
            let sum: f64 = all.iter().sum();
            if sum > 1.0 + PROBABILITY_SUM_SLACK {
                c.push(
                    "",
                    format!(
                        "timeoutProbability, lostAckProbability and failures[*].probability \
                         must sum to at most 1, found {sum}"
                    ),
                );
            }
        }

        if !c.is_empty() {
            return Err(c.into_vec());
        }
        // No problems were reported, so every piece above is `Some`.
        let settings = (|| {
            Some(FaultSettings {
                latency: present(latency)?,
                failures: failures.into_iter().collect::<Option<_>>()?,
                outages: outages.into_iter().collect::<Option<_>>()?,
                throttle: present(throttle)?,
                timeout_probability: timeout_probability?,
                lost_ack_probability: lost_ack_probability?,
            })
        })();
        settings.ok_or(c.into_vec())
    }
}

/// For an optional block: `None` (absent) is valid and becomes `Some(None)`; `Some(None)`
/// (present but invalid) becomes `None`; `Some(Some(v))` stays as it is.
fn present<T>(checked: Option<Option<T>>) -> Option<Option<T>> {
    checked.map_or(Some(None), |valid| valid.map(Some))
}

/// A latency percentile in milliseconds, in `[0, MAX_LATENCY_MS]`.
fn latency_ms(c: &mut Problems, path: &str, ms: f64) -> Option<Duration> {
    if (0.0..=MAX_LATENCY_MS).contains(&ms) {
        Some(Duration::from_nanos((ms * 1e6).round() as u64))
    } else {
        c.push(
            path,
            format!("must be between 0 and {MAX_LATENCY_MS}, found {ms}"),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    fn simulate(json: &str) -> SimulateConfig {
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
    fn unknown_fields_are_errors() {
        for json in [
            r#"{"latencyMs":{"p50":1,"p90":2}}"#,
            r#"{"failures":[{"status":503,"probability":0.1,"code":1}]}"#,
            r#"{"outages":[{"startSeconds":1,"durationSeconds":1,"end":3}]}"#,
            r#"{"throttle":{"maxPerSecond":1,"burst":2}}"#,
            r#"{"chaos":true}"#,
        ] {
            assert!(
                serde_json::from_str::<SimulateConfig>(json).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn the_documented_simulate_block_validates() {
        let s = simulate(
            r#"{
              "latencyMs": { "p50": 20, "p99": 200 },
              "failures": [ { "status": 503, "probability": 0.05 }, { "status": 400, "probability": 0.001 } ],
              "outages": [ { "startSeconds": 600, "durationSeconds": 7200, "status": 503 } ],
              "throttle": { "maxPerSecond": 500, "retryAfterSeconds": 5 },
              "timeoutProbability": 0.001,
              "lostAckProbability": 0.001
            }"#,
        )
        .validate()
        .unwrap();
        assert_eq!(
            s.latency,
            Some(LatencySettings {
                p50: Duration::from_millis(20),
                p99: Duration::from_millis(200)
            })
        );
        assert_eq!(s.failures.len(), 2);
        assert_eq!(s.failures[1].status, 400);
        assert_eq!(s.failures[1].probability, 0.001);
        assert_eq!(
            s.outages,
            vec![OutageSettings {
                start: Duration::from_secs(600),
                duration: Duration::from_secs(7200),
                status: 503,
                retry_after: None
            }]
        );
        assert_eq!(
            s.throttle,
            Some(ThrottleSettings {
                max_per_second: 500,
                retry_after: Some(Duration::from_secs(5))
            })
        );
        assert_eq!(s.timeout_probability, 0.001);
        assert_eq!(s.lost_ack_probability, 0.001);
    }

    #[test]
    fn empty_simulate_block_is_a_perfect_endpoint() {
        assert_eq!(simulate("{}").validate().unwrap(), FaultSettings::default());
        let s = simulate(
            r#"{"latencyMs":{"p50":15},"outages":[{"startSeconds":0,"durationSeconds":1}]}"#,
        )
        .validate()
        .unwrap();
        assert_eq!(s.latency.unwrap().p99, Duration::from_millis(15));
        assert_eq!(s.outages[0].status, 503);
    }

    #[test]
    fn all_simulate_problems_are_collected() {
        let got = problems(
            simulate(
                r#"{
                  "latencyMs": { "p50": 50, "p99": 10 },
                  "failures": [ { "status": 503, "probability": 0.5 }, { "status": 700, "probability": 1.5 } ],
                  "outages": [ { "startSeconds": -1, "durationSeconds": 10, "status": 99 } ],
                  "throttle": { "maxPerSecond": 0 },
                  "timeoutProbability": -0.1
                }"#,
            )
            .validate(),
        );
        assert_eq!(
            got,
            vec![
                p("latencyMs.p99", "must be at least p50 (50), found 10"),
                p(
                    "failures[1].status",
                    "must be between 100 and 599, found 700"
                ),
                p(
                    "failures[1].probability",
                    "must be between 0 and 1, found 1.5"
                ),
                p(
                    "outages[0].startSeconds",
                    "must be between 0 and 31536000, found -1"
                ),
                p("outages[0].status", "must be between 100 and 599, found 99"),
                p(
                    "throttle.maxPerSecond",
                    "must be between 1 and 4294967295, found 0"
                ),
                p("timeoutProbability", "must be between 0 and 1, found -0.1"),
            ]
        );
    }

    #[test]
    fn probabilities_must_sum_to_at_most_one() {
        let got = problems(
            simulate(
                r#"{"failures":[{"status":503,"probability":0.6}],"timeoutProbability":0.3,
                    "lostAckProbability":0.2}"#,
            )
            .validate(),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "");
        assert!(got[0].1.starts_with("timeoutProbability, lostAckProbability and failures[*].probability must sum to at most 1, found 1.1"), "{}", got[0].1);
        // Binary rounding (0.1 + 0.2 + 0.7 > 1 in f64) is not a problem.
        simulate(
            r#"{"failures":[{"status":503,"probability":0.7}],"timeoutProbability":0.1,
                "lostAckProbability":0.2}"#,
        )
        .validate()
        .unwrap();
    }

    #[test]
    fn zero_median_with_a_tail_is_rejected() {
        let got = problems(simulate(r#"{"latencyMs":{"p50":0,"p99":100}}"#).validate());
        assert_eq!(
            got,
            vec![p(
                "latencyMs.p50",
                "must be greater than 0 when p99 is greater than p50"
            )]
        );
        simulate(r#"{"latencyMs":{"p50":0,"p99":0}}"#)
            .validate()
            .unwrap();
    }
}
