//! `twinroute bench`: the figures that say how fast twinroute is on this machine, in one run.
//!
//! - serialize-only: generation + serialization on one thread, the limit for the pipeline;
//! - pipeline: the same events through 6 routes to 6 simulated zero-latency endpoints, on the
//!   multi-thread runtime, and its ratio to the limit;
//! - outage: a 24 h outage under virtual time, 100 000 events × 30 attempts, real seconds taken;
//! - dead endpoint: the healthy endpoints' delivery rate with one endpoint dead, against all
//!   healthy, and the peak memory.

use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::WallTimer;
use crate::config::{self, Overrides, Settings};
use crate::engine::{self, ClockMode, RunOptions};
use crate::event::Serialized;
use crate::generator::{DEFAULT_START_TIME, Generator};
use crate::report::RunReport;

pub use crate::deadletter::throughput::measure_writes;

/// Six routes as a user might write them; the pipeline figure routes every event through them.
pub const SIX_ROUTES: [&str; 6] = [
    "type = 'microsoft.iot.telemetry'",
    "type = 'Microsoft.DigitalTwins.Twin.Create' OR type = 'Microsoft.DigitalTwins.Twin.Delete'",
    "type = 'Microsoft.DigitalTwins.Twin.Update' AND STARTS_WITH($body.modelId, 'dtmi:example:com:room')",
    "STARTS_WITH(type, 'Microsoft.DigitalTwins.Relationship.')",
    "STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')",
    "$body.temperature > 25.5 OR $body.humidity >= 70",
];

/// An instance file of simulated endpoints, one route each (`filters`), events offered at
/// `rate` per second (a rate above what the pipeline takes measures its maximum).
pub fn pipeline_config(events: u64, rate: f64, filters: &[&str], simulate: &[Value]) -> Value {
    let endpoints: serde_json::Map<String, Value> = (0..filters.len())
        .map(|i| {
            let simulate = simulate.get(i).cloned().unwrap_or(json!({}));
            (
                format!("endpoint-{i}"),
                json!({ "properties": { "endpointType": "EventHub" }, "simulate": simulate }),
            )
        })
        .collect();
    let routes: serde_json::Map<String, Value> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                format!("route-{i}"),
                json!({ "endpointName": format!("endpoint-{i}"), "filter": f }),
            )
        })
        .collect();
    json!({
        "version": 1,
        "endpoints": endpoints,
        "routes": routes,
        "workload": { "seed": 42, "twins": 10000, "count": events,
                      "rate": { "shape": "constant", "eventsPerSecond": rate } }
    })
}

fn settings(config: &Value) -> Settings {
    config::parse(&config.to_string(), "bench", &Overrides::default())
        .expect("the bench's own config is valid")
}

/// An offered rate no pipeline reaches: events are generated as fast as they are taken.
pub const MAX_RATE: f64 = 1.0e9;

/// Events per second of generation + serialization on one thread.
pub fn serialize_only(events: u64) -> f64 {
    let config = pipeline_config(events, MAX_RATE, &SIX_ROUTES, &[]);
    let settings = settings(&config);
    let timer = WallTimer::start();
    let mut bytes = 0usize;
    for scheduled in Generator::new(&settings.workload, &settings.host_name, DEFAULT_START_TIME) {
        bytes += Serialized::new(scheduled.event).json().len();
    }
    std::hint::black_box(bytes);
    events as f64 / timer.elapsed().as_secs_f64()
}

/// Runs `settings` on the real clock, multi-threaded, stopping once generation ends and giving
/// pending deliveries `drain` to finish. Returns the report and the real seconds taken.
pub fn run_real(settings: Settings, drain: Duration) -> RunReport {
    let options = RunOptions {
        drain_timeout: drain,
        stop_after_generation: true,
        ..RunOptions::default()
    };
    engine::run_blocking(settings, options, engine::no_stop).expect("the bench runs")
}

/// Runs `settings` under virtual time.
pub fn run_virtual(settings: Settings) -> RunReport {
    let options = RunOptions {
        clock: ClockMode::Virtual,
        ..RunOptions::default()
    };
    engine::run_blocking(settings, options, engine::no_stop).expect("the bench runs")
}

/// A 24 h outage: `events` events, each attempted `attempts` times (one every 24 h / attempts),
/// then dropped. Returns the report (its wall clock says how long it took).
pub fn outage(events: u64, attempts: u32) -> RunReport {
    let spacing = (86_400 / attempts.max(1)).saturating_sub(60).max(1);
    let config = json!({
        "version": 1,
        "endpoints": { "down": {
            "properties": { "endpointType": "EventHub" },
            "delivery": { "maxDeliveryAttempts": attempts, "retrySchedule": { "kind": "fixed", "delaysSeconds": [spacing] } },
            "simulate": { "outages": [ { "startSeconds": 0, "durationSeconds": 86400, "status": 503 } ] }
        } },
        "routes": { "all": { "endpointName": "down", "filter": "true" } },
        "workload": { "seed": 42, "twins": 10000, "count": events, "rate": { "shape": "constant", "eventsPerSecond": 10000 } }
    });
    run_virtual(settings(&config))
}

/// Resets the peak-RSS mark (Linux), so the next section's peak is its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
