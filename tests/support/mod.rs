//! Helpers shared by the integration tests.
#![allow(dead_code)]

use twinroute::event::{Event, EventType};

/// The instance host the tests' events come from.
pub const HOST: &str = "contoso.api.wus2.digitaltwins.azure.net";

/// `count` events of the default mix with `seed`, over a pool of 300 twins.
pub fn events(seed: u64, count: u64) -> Vec<Event> {
    twinroute::generator::sample_events(seed, 300, count)
}

/// The first event of each type in `events`; panics if a type is missing.
pub fn one_of_each(events: &[Event]) -> Vec<&Event> {
    EventType::ALL
        .iter()
        .map(|kind| {
            events
                .iter()
                .find(|e| e.kind == *kind)
                .unwrap_or_else(|| panic!("no {kind} generated"))
        })
        .collect()
}

use std::path::Path;

use twinroute::config::{self, Overrides, Settings};
use twinroute::engine::{self, ClockMode, RunOptions};
use twinroute::report::RunReport;

/// An instance file with one endpoint `ep-1` (`endpoint`, given `delivery`), one route that takes
/// every event to it, and `workload`.
pub fn one_endpoint(
    mut endpoint: serde_json::Value,
    delivery: serde_json::Value,
    workload: serde_json::Value,
) -> serde_json::Value {
    endpoint["delivery"] = delivery;
    serde_json::json!({
        "version": 1,
        "endpoints": { "ep-1": endpoint },
        "routes": { "all": { "endpointName": "ep-1", "filter": "true" } },
        "workload": workload
    })
}

/// Validates an instance file given as JSON.
pub fn settings(config: &serde_json::Value) -> Settings {
    config::parse(&config.to_string(), "scenario", &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `settings` under virtual time (a paused current-thread runtime), writing the ledger to
/// `ledger`.
pub fn run_virtual(settings: Settings, ledger: &Path, spill: &Path) -> RunReport {
    let options = RunOptions {
        clock: ClockMode::Virtual,
        ledger: Some(ledger.to_owned()),
        spill_folder: spill.to_owned(),
        ..RunOptions::default()
    };
    run_paused(settings, options)
}

/// Runs `settings` with `options` (virtual time) to its end on the paused current-thread runtime
/// `engine::run_blocking` picks for it, never stopped.
pub fn run_paused(settings: Settings, options: RunOptions) -> RunReport {
    engine::run_blocking(settings, options, engine::no_stop).unwrap_or_else(|e| panic!("{e}"))
}

/// The ledger's lines.
pub fn ledger(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file under `root`, as (relative path, bytes), sorted.
pub fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Paths of every file under `dir`, relative to it.
pub fn walk(dir: &Path) -> Vec<String> {
    files(dir).into_iter().map(|(path, _)| path).collect()
}
