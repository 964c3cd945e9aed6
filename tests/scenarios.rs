//! Chaos scenarios as data (`tests/scenarios/*.json`: a config and the expected counts or
//! ranges), one test each, under virtual time. `{deadletters}` in a config is replaced by a
//! temporary folder.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;
use twinroute::event::EventType;
use twinroute::generator::{DEFAULT_START_TIME, Generator};

/// `expected` is a number (exact) or `[min, max]` (inclusive).
fn check_count(what: &str, actual: u64, expected: &Value) {
    match expected {
        Value::Number(n) => assert_eq!(actual, n.as_u64().unwrap(), "{what}"),
        Value::Array(range) => {
            let (min, max) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
            assert!(
                (min..=max).contains(&actual),
                "{what}: {actual} not in [{min}, {max}]"
            );
        }
        other => panic!("{what}: bad expectation {other}"),
    }
}

fn seconds_between(from: &str, to: &str) -> f64 {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    (parse(to) - parse(from)).num_milliseconds() as f64 / 1000.0
}

fn scenario(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(format!("{name}.json"));
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dir.path().join("deadletters");
    let config_text = scenario["config"]
        .to_string()
        .replace("{deadletters}", dead_letters.to_str().unwrap());
    let config: Value = serde_json::from_str(&config_text).unwrap();
    let settings = support::settings(&config);
    let workload = settings.workload.clone();
    let host = settings.host_name.clone();
    let ledger_path = dir.path().join("ledger.ndjson");
    let report = support::run_virtual(settings, &ledger_path, &dir.path().join("spill"));
    let expect = &scenario["expect"];
    let report_json = serde_json::to_value(&report).unwrap();

    assert!(
        report.balanced,
        "{name}: not balanced: {}",
        report.summary()
    );
    assert!(!report.stopped_early);
    if let Some(generated) = expect.get("eventsGenerated") {
        check_count("eventsGenerated", report.events_generated, generated);
    }
    for (endpoint, fields) in expect["endpoints"].as_object().unwrap() {
        let actual = &report_json["endpoints"][endpoint];
        for (field, expected) in fields.as_object().unwrap() {
            let what = format!("{name}: {endpoint}.{field}");
            match expected {
                Value::Object(reasons) => {
                    for (reason, count) in reasons {
                        check_count(
                            &format!("{what}.{reason}"),
                            actual[field][reason].as_u64().unwrap_or(0),
                            count,
                        );
                    }
                    let extra: Vec<&String> = actual[field]
                        .as_object()
                        .unwrap()
                        .keys()
                        .filter(|k| !reasons.contains_key(*k))
                        .collect();
                    assert!(extra.is_empty(), "{what}: unexpected {extra:?}");
                }
                _ => check_count(&what, actual[field].as_u64().unwrap(), expected),
            }
        }
    }

    // The ledger: one line per ending, agreeing with the report.
    let ledger = support::ledger(&ledger_path);
    let routed: u64 = report.endpoints.values().map(|e| e.routed).sum();
    assert_eq!(
        ledger.len() as u64,
        routed,
        "{name}: one ledger line per routed delivery"
    );
    let mut endings = HashSet::new();
    for line in &ledger {
        let key = (
            line["eventId"].as_str().unwrap().to_owned(),
            line["route"].as_str().unwrap().to_owned(),
        );
        assert!(
            endings.insert(key),
            "{name}: two endings for one (event, route): {line}"
        );
    }

    // Every dead-lettered delivery is a file at the hour of its ending, holding the event.
    let files = support::files(&dead_letters);
    if let Some(count) = expect.get("deadLetterFiles") {
        check_count(
            &format!("{name}: dead-letter files"),
            files.len() as u64,
            count,
        );
    }
    let by_path: HashMap<&str, &Vec<u8>> = files.iter().map(|(p, b)| (p.as_str(), b)).collect();
    for line in ledger.iter().filter(|l| l["outcome"] == "deadLettered") {
        let final_at =
            chrono::DateTime::parse_from_rfc3339(line["finalAt"].as_str().unwrap()).unwrap();
        let id = line["eventId"].as_str().unwrap();
        let expected_path = format!(
            "{}/{}/{id}.json",
            line["endpoint"].as_str().unwrap(),
            final_at.format("%Y/%m/%d/%H")
        );
        let body = by_path
            .get(expected_path.as_str())
            .unwrap_or_else(|| panic!("{name}: no {expected_path}"));
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            event["id"], id,
            "{name}: {expected_path} holds another event"
        );
    }

    let checks = &expect["ledger"];
    if let Some(every) = checks.get("everyEnding") {
        for line in &ledger {
            for (field, value) in every.as_object().unwrap() {
                assert_eq!(&line[field], value, "{name}: {line}");
            }
        }
    }
    if let Some(wait) = checks
        .get("retriedWaitsAtLeastSeconds")
        .and_then(Value::as_f64)
    {
        let retried: Vec<&Value> = ledger
            .iter()
            .filter(|l| l["attempts"].as_u64().unwrap() > 1)
            .collect();
        assert!(!retried.is_empty(), "{name}: nothing was retried");
        for line in retried {
            let span = seconds_between(
                line["firstAttemptAt"].as_str().unwrap(),
                line["finalAt"].as_str().unwrap(),
            );
            let waits = line["attempts"].as_u64().unwrap() - 1;
            assert!(
                span >= wait * waits as f64,
                "{name}: {waits} retries within {span} s: {line}"
            );
        }
    }
    if let Some(seconds) = checks
        .get("finalAtLeastSecondsAfterFirstAttempt")
        .and_then(Value::as_f64)
    {
        for line in &ledger {
            let span = seconds_between(
                line["firstAttemptAt"].as_str().unwrap(),
                line["finalAt"].as_str().unwrap(),
            );
            assert!(span > seconds, "{name}: ended after {span} s: {line}");
        }
    }
    if let Some(reason) = checks.get("droppedReason") {
        let dropped: Vec<&Value> = ledger
            .iter()
            .filter(|l| l["outcome"] == "dropped")
            .collect();
        assert!(!dropped.is_empty());
        for line in dropped {
            assert_eq!(&line["reason"], reason, "{name}: {line}");
            assert!(
                line["cause"].is_string(),
                "{name}: a drop says what made delivery give up: {line}"
            );
        }
    }
    if expect.get("routedIsTwinEventsPlusCreates").is_some() {
        let events: Vec<_> = Generator::new(&workload, &host, DEFAULT_START_TIME)
            .map(|s| s.event)
            .collect();
        let twin_events = events
            .iter()
            .filter(|e| e.kind.as_str().starts_with("Microsoft.DigitalTwins.Twin."))
            .count() as u64;
        let creates = events
            .iter()
            .filter(|e| e.kind == EventType::TwinCreate)
            .count() as u64;
        assert!(creates > 0 && twin_events > creates);
        assert_eq!(report.deliveries_routed, twin_events + creates);
        assert_eq!(report.events_unmatched, events.len() as u64 - twin_events);
        assert_eq!(report.endpoints["hub-5"].delivered, twin_events + creates);
    }
}

macro_rules! scenarios {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $test() { scenario($file); })*

        /// Every file in tests/scenarios has its test.
        #[test]
        fn every_scenario_file_has_a_test() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
            let mut files: Vec<String> = std::fs::read_dir(dir).unwrap()
                .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
                .collect();
            files.sort();
            let mut listed = vec![$($file.to_owned()),*];
            listed.sort();
            assert_eq!(files, listed);
        }
    };
}

scenarios! {
    endpoint_down_for_two_hours_then_back => "outage-2h-recovers",
    endpoint_down_past_the_ttl => "outage-past-ttl",
    bad_requests_are_dead_lettered_after_one_attempt => "bad-request-400",
    throttling_honours_retry_after => "throttle-retry-after",
    lost_acks_make_counted_duplicates => "lost-acks",
    no_dead_letter_location_drops_and_counts => "no-dead-letter-location",
    two_matching_routes_give_two_deliveries => "two-routes-one-endpoint",
}
