//! The run report: every event accounted for, per endpoint, as JSON (`--report`) and as a table
//! for people at the end of every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use hdrhistogram::Histogram;
use indexmap::IndexMap;
use serde::Serialize;

use crate::account::{Accounts, EndpointCounters};
use crate::clock::{Clock, ClockMode, WallTimer};
use crate::delivery::worker::WorkerStats;
use crate::source::SourceStats;

/// The report of one run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// The master seed.
    pub seed: u64,
    /// `real` or `virtual`.
    pub clock: &'static str,
    /// Whether the run was stopped early (signal); pending deliveries are then `inFlight`.
    pub stopped_early: bool,
    /// Run time on the run's clock (virtual under `--virtual-time`), seconds.
    pub duration_seconds: f64,
    /// Events the generator emitted.
    pub events_generated: u64,
    /// Events no route matched.
    pub events_unmatched: u64,
    /// (event, route) pairs that matched: deliveries routed, all endpoints together.
    pub deliveries_routed: u64,
    /// How far the generator fell behind its schedule.
    pub generator: GeneratorReport,
    /// Per endpoint, in file order.
    pub endpoints: IndexMap<String, EndpointReport>,
    /// Whether every event and every delivery is accounted for exactly once.
    pub balanced: bool,
    /// Figures that depend on the machine, not the seed (left out of determinism checks).
    pub wall_clock: WallClockReport,
}

/// How well the pipeline kept up with the open-model schedule.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorReport {
    /// Largest delay between an event's due time and its emission, milliseconds.
    pub lag_max_ms: f64,
    /// Events emitted 10 ms or more after they were due (behind schedule).
    pub events_late: u64,
    /// Time from the start until the last event was emitted, on the run's clock, seconds.
    pub generation_seconds: f64,
}

/// One endpoint's account.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointReport {
    /// Deliveries routed here.
    pub routed: u64,
    /// Ended delivered.
    pub delivered: u64,
    /// Ended dead-lettered (in the store or its spill folder).
    pub dead_lettered: u64,
    /// Ended dropped.
    pub dropped: u64,
    /// Still pending when the run was stopped.
    pub in_flight: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Events the endpoint received more than once.
    pub duplicates_received: u64,
    /// Reason → count, dead-lettered deliveries.
    pub dead_letter_reasons: BTreeMap<String, u64>,
    /// Cause → count, dropped deliveries.
    pub drop_reasons: BTreeMap<String, u64>,
    /// Where dead-letters went (secrets masked), if anywhere.
    pub dead_letter_location: Option<String>,
    /// Dead-letters written to the spill folder because the location refused them.
    pub dead_letter_spilled: u64,
    /// The spill folder, if any dead-letter went there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_spill_folder: Option<String>,
    /// Routed → delivered latency.
    pub latency_ms: Percentiles,
    /// Latency of one attempt.
    pub attempt_latency_ms: Percentiles,
    /// Most deliveries held at once (ready, retrying, in flight).
    pub peak_backlog: u64,
    /// What attempts came back with: a status, `timeout` or `connectionError` → attempts
    /// (a batch is one attempt).
    pub attempt_results: BTreeMap<String, u64>,
    /// Whether routed = delivered + deadLettered + dropped + inFlight.
    pub balanced: bool,
}

/// Latency percentiles, milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |micros: u64| (micros as f64 / 1000.0 * 1000.0).round() / 1000.0;
        Percentiles {
            p50: ms(histogram.value_at_quantile(0.5)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
        }
    }
}

/// Machine-dependent figures.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WallClockReport {
    /// When the run started (wall clock, RFC 3339).
    pub started_at: String,
    /// How long the run took in real time, seconds.
    pub wall_seconds: f64,
    /// Events generated per real second.
    pub events_per_second: f64,
    /// Peak resident memory of the process, bytes (Linux; 0 where unknown).
    pub peak_rss_bytes: u64,
}

impl EndpointReport {
    /// The counters as they stand.
    pub fn from_counters(counters: &EndpointCounters) -> Self {
        let reasons = |map: &std::sync::Mutex<BTreeMap<&'static str, u64>>| {
            map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect()
        };
        let routed = counters.routed.load(Relaxed);
        let (delivered, dead_lettered, dropped, in_flight) = (
            counters.delivered.load(Relaxed),
            counters.dead_lettered.load(Relaxed),
            counters.dropped.load(Relaxed),
            counters.in_flight.load(Relaxed),
        );
        EndpointReport {
            routed,
            delivered,
            dead_lettered,
            dropped,
            in_flight,
            attempts: counters.attempts.load(Relaxed),
            duplicates_received: 0,
            dead_letter_reasons: reasons(&counters.dead_letter_reasons),
            drop_reasons: reasons(&counters.drop_reasons),
            dead_letter_location: None,
            dead_letter_spilled: counters.dead_letter_spilled.load(Relaxed),
            dead_letter_spill_folder: None,
            latency_ms: Percentiles::default(),
            attempt_latency_ms: Percentiles::default(),
            peak_backlog: 0,
            attempt_results: BTreeMap::new(),
            balanced: routed == delivered + dead_lettered + dropped + in_flight,
        }
    }
}

/// What a run knows once every stage has ended, for [`RunReport::assemble`].
#[derive(Debug)]
pub struct RunFacts<'a> {
    /// The master seed.
    pub seed: u64,
    /// Real or virtual time.
    pub mode: ClockMode,
    /// The run's clock (its duration and start are read from it).
    pub clock: Clock,
    /// Started when the run did: how long it took in real time.
    pub wall: WallTimer,
    /// Whether the run was stopped early.
    pub stopped_early: bool,
    /// What the source counted.
    pub source: &'a SourceStats,
    /// The run's counters.
    pub accounts: &'a Accounts,
    /// What each endpoint's worker measured, in endpoint order (`None`: the worker panicked).
    pub workers: &'a [Option<WorkerStats>],
    /// Where each endpoint's dead-letters go (secrets masked), in endpoint order.
    pub dead_letter_locations: &'a [Option<String>],
    /// Where refused dead-letters were spilled.
    pub spill_folder: &'a Path,
}

impl RunReport {
    /// The report of a run that has ended: every endpoint's counters with what its worker
    /// measured, the source's figures, whether it all balances, and the wall clock.
    pub fn assemble(facts: RunFacts<'_>) -> RunReport {
        let source = facts.source;
        let mut endpoints = IndexMap::new();
        let mut routed_total = 0;
        for (index, name) in facts.accounts.endpoint_names().iter().enumerate() {
            let mut report = EndpointReport::from_counters(&facts.accounts.endpoints[index]);
            routed_total += report.routed;
            report.dead_letter_location = facts.dead_letter_locations[index].clone();
            if report.dead_letter_spilled > 0 {
                report.dead_letter_spill_folder = Some(facts.spill_folder.display().to_string());
            }
            if let Some(Some(worker)) = facts.workers.get(index) {
                report.latency_ms = Percentiles::of(&worker.delivery_latency);
                report.attempt_latency_ms = Percentiles::of(&worker.attempt_latency);
                report.duplicates_received = worker.duplicates;
                report.peak_backlog = worker.peak_backlog as u64;
                report.attempt_results = worker
                    .attempt_results
                    .iter()
                    .map(|(key, n)| (key.name(), *n))
                    .collect();
            }
            endpoints.insert(name.clone(), report);
        }
        let balanced = endpoints.values().all(|e| e.balanced)
            && routed_total == source.deliveries
            && source.generated >= source.unmatched
            && facts.workers.iter().all(Option::is_some);
        let wall_seconds = facts.wall.elapsed().as_secs_f64();
        RunReport {
            seed: facts.seed,
            clock: facts.mode.name(),
            stopped_early: facts.stopped_early,
            duration_seconds: facts.clock.elapsed().as_secs_f64(),
            events_generated: source.generated,
            events_unmatched: source.unmatched,
            deliveries_routed: source.deliveries,
            generator: GeneratorReport {
                lag_max_ms: source.lag_max.as_secs_f64() * 1000.0,
                events_late: source.late,
                generation_seconds: source.generation.as_secs_f64(),
            },
            endpoints,
            balanced,
            wall_clock: WallClockReport {
                started_at: facts.clock.epoch().to_string(),
                wall_seconds,
                events_per_second: if wall_seconds > 0.0 {
                    source.generated as f64 / wall_seconds
                } else {
                    0.0
                },
                peak_rss_bytes: peak_rss_bytes(),
            },
        }
    }

    /// The summary table printed at the end of every run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "twinroute: seed {}, {} clock, {:.1} s{}: {} events generated, {} unmatched, {} deliveries routed",
            self.seed,
            self.clock,
            self.duration_seconds,
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            },
            self.events_generated,
            self.events_unmatched,
            self.deliveries_routed,
        );
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>10} {:>10} {:>8} {:>9} {:>10} {:>6} {:>9} {:>9}",
            "endpoint",
            "routed",
            "delivered",
            "deadLetter",
            "dropped",
            "inFlight",
            "attempts",
            "dups",
            "p50 ms",
            "p99 ms"
        );
        for (name, e) in &self.endpoints {
            let _ = writeln!(
                out,
                "{:<24} {:>10} {:>10} {:>10} {:>8} {:>9} {:>10} {:>6} {:>9.1} {:>9.1}",
                truncate(name, 24),
                e.routed,
                e.delivered,
                e.dead_lettered,
                e.dropped,
                e.in_flight,
                e.attempts,
                e.duplicates_received,
                e.latency_ms.p50,
                e.latency_ms.p99
            );
            let reasons: Vec<String> = e
                .dead_letter_reasons
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .chain(
                    e.drop_reasons
                        .iter()
                        .map(|(r, n)| format!("dropped after {r} {n}")),
                )
                .collect();
            if !reasons.is_empty() {
                let _ = writeln!(out, "{:<24} {}", "", reasons.join(", "));
            }
            if let (Some(location), true) = (&e.dead_letter_location, e.dead_lettered > 0) {
                let _ = writeln!(out, "{:<24} dead-letters in {location}", "");
            }
            if let Some(spill) = &e.dead_letter_spill_folder {
                let _ = writeln!(
                    out,
                    "{:<24} {} dead-letters spilled to {spill}",
                    "", e.dead_letter_spilled
                );
            }
        }
        if self.generator.events_late > 0 {
            let _ = writeln!(
                out,
                "generator fell behind schedule: {} events late, up to {:.0} ms",
                self.generator.events_late, self.generator.lag_max_ms
            );
        }
        let _ = write!(
            out,
            "{}",
            if self.balanced {
                "balanced: every event is accounted for"
            } else {
                "NOT BALANCED: some events are unaccounted for"
            }
        );
        out
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        text.chars().take(width - 1).chain(['…']).collect()
    }
}

/// Peak resident set size of this process (`VmHWM`), in bytes; 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}
