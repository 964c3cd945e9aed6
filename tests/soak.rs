//! Soak runs: long, so not in the default test run (`scripts/test --soak` runs them in release).

mod support;

use std::time::Duration;

use serde_json::json;

/// A simulated day at 20 events/s with every kind of fault, under virtual time: 1.7 M events,
/// every one accounted for, twice the same.
#[test]
#[ignore = "soak: minutes in release; run with scripts/test --soak"]
fn a_day_of_faults_under_virtual_time_balances_and_repeats() {
    let config = json!({
        "version": 1,
        "limits": { "enforce": false },
        "endpoints": {
            "flaky": { "properties": { "endpointType": "EventHub", "deadLetterSecret": "{dl}" },
                       "simulate": { "latencyMs": { "p50": 5, "p99": 200 }, "failures": [ { "status": 503, "probability": 0.05 }, { "status": 400, "probability": 0.001 } ],
                                     "timeoutProbability": 0.001, "lostAckProbability": 0.001 } },
            "outage": { "properties": { "endpointType": "EventGrid", "deadLetterSecret": "{dl}" },
                        "simulate": { "outages": [ { "startSeconds": 3600, "durationSeconds": 30000, "status": 503 } ] } },
            "throttled": { "properties": { "endpointType": "ServiceBus" },
                           "simulate": { "throttle": { "maxPerSecond": 5, "retryAfterSeconds": 20 } } }
        },
        "routes": {
            "all": { "endpointName": "flaky", "filter": "true" },
            "lifecycle": { "endpointName": "outage", "filter": "type != 'microsoft.iot.telemetry'" },
            "telemetry": { "endpointName": "throttled", "filter": "type = 'microsoft.iot.telemetry'" }
        },
        "workload": { "seed": 99, "twins": 5000, "durationSeconds": 86400,
                      "rate": { "shape": "sine", "meanEventsPerSecond": 20, "amplitudeEventsPerSecond": 15, "periodSeconds": 21600 } }
    });
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let text = config
            .to_string()
            .replace("{dl}", dir.path().join("dl").to_str().unwrap());
        let settings = support::settings(&serde_json::from_str(&text).unwrap());
        let ledger = dir.path().join("ledger.ndjson");
        let report = support::run_virtual(settings, &ledger, &dir.path().join("spill"));
        assert!(report.balanced, "{}", report.summary());
        (std::fs::read(&ledger).unwrap(), report.events_generated)
    };
    let (first, generated) = run();
    assert!(generated > 1_500_000, "{generated}");
    assert!(first == run().0, "the same seed gives the same day");
}

/// A minute of real time at 5 000 events/s with a dead endpoint, in a process of its own (peak
/// RSS is per process): balanced, the generator keeps up, and memory stays within what the dead
/// endpoint's backlog explains.
#[test]
#[ignore = "soak: a minute of real time; run with scripts/test --soak"]
fn a_real_minute_with_a_dead_endpoint_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "version": 1,
        "endpoints": {
            "healthy": { "properties": { "endpointType": "EventHub" }, "simulate": { "latencyMs": { "p50": 2, "p99": 20 } } },
            "dead": { "properties": { "endpointType": "EventHub" },
                      "simulate": { "outages": [ { "startSeconds": 0, "durationSeconds": 100000 } ] } }
        },
        "routes": { "a": { "endpointName": "healthy", "filter": "true" }, "b": { "endpointName": "dead", "filter": "true" } },
        "workload": { "seed": 3, "twins": 5000, "durationSeconds": 60, "rate": { "shape": "constant", "eventsPerSecond": 5000 } }
    });
    std::fs::write(dir.path().join("minute.json"), config.to_string()).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .current_dir(dir.path())
        .args([
            "run",
            "minute.json",
            "--report",
            "report.json",
            "--drain-timeout",
            "2",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Generation ends after 60 s; the dead endpoint's deliveries would wait a day: stop them.
    std::thread::sleep(Duration::from_secs(62));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["balanced"], true);
    let generated = report["eventsGenerated"].as_u64().unwrap();
    assert_eq!(generated, 300_000);
    // Kept up: no sustained lag (a backlog container doubling in size can pause a few ms).
    let (lag_ms, late) = (
        report["generator"]["lagMaxMs"].as_f64().unwrap(),
        report["generator"]["eventsLate"].as_u64().unwrap(),
    );
    assert!(
        lag_ms < 1000.0 && late < generated / 100,
        "the pipeline kept up: {}",
        report["generator"]
    );
    assert_eq!(report["endpoints"]["healthy"]["delivered"], generated);
    let dead = &report["endpoints"]["dead"];
    assert_eq!(dead["inFlight"], generated);
    assert_eq!(
        dead["peakBacklog"], generated,
        "the dead endpoint holds everything routed to it"
    );
    let peak = report["wallClock"]["peakRssBytes"].as_f64().unwrap();
    let per_held = peak / generated as f64;
    assert!(
        per_held < 4096.0,
        "{per_held:.0} bytes of peak RSS per held delivery"
    );
}
