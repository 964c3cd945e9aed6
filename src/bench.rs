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

/// One part of `twinroute bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Generation + serialization on one thread: the limit.
    Serialize,
    /// Six routes to six simulated zero-latency endpoints, and its ratio to the limit.
    Pipeline,
    /// A 24 h outage under virtual time.
    Outage,
    /// The healthy endpoints' rate with one endpoint dead.
    DeadEndpoint,
}

impl Section {
    /// Every section, in the order they run.
    pub const ALL: [Section; 4] = [
        Section::Serialize,
        Section::Pipeline,
        Section::Outage,
        Section::DeadEndpoint,
    ];

    /// The section's name on the command line (`--section`).
    pub fn name(self) -> &'static str {
        match self {
            Section::Serialize => "serialize",
            Section::Pipeline => "pipeline",
            Section::Outage => "outage",
            Section::DeadEndpoint => "dead-endpoint",
        }
    }
}

/// A `--section` name that is not one of [`Section::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bench section '{0}'; expected serialize, pipeline, outage, dead-endpoint")]
pub struct UnknownSection(pub String);

impl std::str::FromStr for Section {
    type Err = UnknownSection;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Section::ALL
            .into_iter()
            .find(|section| section.name() == name)
            .ok_or_else(|| UnknownSection(name.to_owned()))
    }
}

/// What `twinroute bench` runs: `events` for the serialize, pipeline and dead-endpoint
/// sections, `outage_events` for the outage; `sections` empty means all.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Events of the serialize, pipeline and dead-endpoint sections.
    pub events: u64,
    /// Events of the outage section (each attempted 30 times).
    pub outage_events: u64,
    /// The sections to run; empty: all.
    pub sections: Vec<Section>,
}

impl Plan {
    fn wants(&self, section: Section) -> bool {
        self.sections.is_empty() || self.sections.contains(&section)
    }
}

/// Runs `plan` and prints each figure beside its reference on `out` as it is measured.
pub fn run(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    writeln!(out, "twinroute bench: {cores} cores")?;
    let events = plan.events;
    let mut limit = None;
    if plan.wants(Section::Serialize) || plan.wants(Section::Pipeline) {
        let rate = serialize_only(events);
        writeln!(
            out,
            "serialize-only   generate + serialize, 1 thread: {rate:>12.0} events/s  (the limit)"
        )?;
        limit = Some(rate);
    }
    let parse = |events: u64, rate: f64, simulate: &[Value]| {
        settings(&pipeline_config(events, rate, &SIX_ROUTES, simulate))
    };
    let mut max_rate = None;
    if plan.wants(Section::Pipeline) {
        let report = run_real(parse(events, MAX_RATE, &[]), Duration::from_secs(30));
        let seconds = report.wall_clock.wall_seconds;
        let rate = report.events_generated as f64 / seconds;
        max_rate = Some(rate);
        writeln!(
            out,
            "pipeline         6 routes → 6 simulated zero-latency endpoints: {:>12.0} events/s, {:.0} deliveries/s, balanced {}",
            rate,
            report.deliveries_routed as f64 / seconds,
            report.balanced
        )?;
        if let Some(limit) = limit {
            writeln!(
                out,
                "ratio            pipeline / serialize-only: {:.2}  (goal ≥ 0.5)",
                rate / limit
            )?;
        }
    }
    if plan.wants(Section::Outage) {
        let report = outage(plan.outage_events, 30);
        let attempts: u64 = report.endpoints.values().map(|e| e.attempts).sum();
        writeln!(
            out,
            "outage           24 h outage, {} events × 30 attempts, virtual time: {} attempts in {:.2} s wall  (goal ≤ 10 s), balanced {}",
            report.events_generated, attempts, report.wall_clock.wall_seconds, report.balanced
        )?;
    }
    if plan.wants(Section::DeadEndpoint) {
        dead_endpoint(events, max_rate, parse, out)?;
    }
    Ok(())
}

/// The dead-endpoint section: at half the pipeline's maximum, then as fast as possible.
fn dead_endpoint(
    events: u64,
    max_rate: Option<f64>,
    parse: impl Fn(u64, f64, &[Value]) -> Settings,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let dead =
        json!({ "outages": [ { "startSeconds": 0, "durationSeconds": 1.0e7, "status": 503 } ] });
    let healthy_rate = |report: &RunReport| {
        let delivered: u64 = report.endpoints.values().skip(1).map(|e| e.delivered).sum();
        // Over the generation time: the dead run then waits out its drain, the healthy one does not.
        delivered as f64 / report.generator.generation_seconds
    };
    // Offered at half the pipeline's maximum: isolation shows as the healthy endpoints
    // keeping the offered rate; at saturation the dead endpoint's retries share the CPU.
    let offered = (max_rate.unwrap_or(400_000.0) / 2.0).round();
    for (offered_rate, rate, count) in [(true, offered, events / 2), (false, MAX_RATE, events)] {
        reset_peak_rss();
        let baseline = run_real(parse(count, rate, &[]), Duration::from_secs(30));
        reset_peak_rss();
        let with_dead = run_real(
            parse(count, rate, std::slice::from_ref(&dead)),
            Duration::from_millis(500),
        );
        let (rate_text, goal) = if offered_rate {
            (format!("{rate:.0} events/s offered"), "  (goal ≥ 90 %)")
        } else {
            ("as fast as possible".to_owned(), "")
        };
        writeln!(
            out,
            "dead endpoint    {rate_text}: healthy endpoints deliver {:.0}/s with one dead vs {:.0}/s all healthy = {:.0} %{goal}",
            healthy_rate(&with_dead),
            healthy_rate(&baseline),
            100.0 * healthy_rate(&with_dead) / healthy_rate(&baseline),
        )?;
        writeln!(
            out,
            "                 peak RSS {:.0} MB with one dead ({:.0} MB all healthy); the dead endpoint held up to {} deliveries",
            with_dead.wall_clock.peak_rss_bytes as f64 / 1e6,
            baseline.wall_clock.peak_rss_bytes as f64 / 1e6,
            with_dead
                .endpoints
                .values()
                .next()
                .map_or(0, |e| e.peak_backlog),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_by_their_command_line_names_and_nothing_else() {
        for section in Section::ALL {
            assert_eq!(section.name().parse::<Section>(), Ok(section));
        }
        assert_eq!(
            "graph!".parse::<Section>().unwrap_err().to_string(),
            "unknown bench section 'graph!'; expected serialize, pipeline, outage, dead-endpoint"
        );
    }

    fn figures(sections: Vec<Section>) -> String {
        let plan = Plan {
            events: 2_000,
            outage_events: 50,
            sections,
        };
        let mut out = Vec::new();
        run(&plan, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The number after `label` in `text`, as printed (thousands not grouped).
    fn number_after(text: &str, label: &str) -> f64 {
        let rest = &text[text
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {text}"))
            + label.len()..];
        rest.split_whitespace()
            .next()
            .and_then(|word| word.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("a number after {label} in {text}"))
    }

    #[test]
    fn the_outage_section_alone_prints_its_line_with_every_attempt_made() {
        let text = figures(vec![Section::Outage]);
        assert!(!text.contains("serialize-only"), "{text}");
        assert!(!text.contains("pipeline "), "{text}");
        // 50 events × 30 attempts, each one made, and the run balanced.
        assert_eq!(number_after(&text, "virtual time:"), 1_500.0, "{text}");
        assert!(text.contains("balanced true"), "{text}");
    }

    #[test]
    fn the_pipeline_prints_its_rate_beside_the_limit_and_their_ratio() {
        let text = figures(vec![Section::Pipeline]);
        let limit = number_after(&text, "1 thread:");
        let rate = number_after(&text, "endpoints:");
        let ratio = number_after(&text, "serialize-only:");
        assert!(limit > 0.0 && rate > 0.0, "{text}");
        assert!((ratio - rate / limit).abs() < 0.01, "{text}");
        assert!(text.contains("balanced true"), "{text}");
        assert!(!text.contains("outage "), "{text}");
    }
}
