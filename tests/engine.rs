//! The engine driven through `engine::run(settings, options, stop)`: determinism under virtual
//! time, and a stop in the middle of a run.

mod support;

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use twinroute::config::{self, Overrides};
use twinroute::engine::{self, ClockMode, RunOptions};

/// The demo instance, with its dead-letters in `folder` and another seed if given.
fn demo(folder: &std::path::Path, seed: Option<u64>) -> twinroute::config::Settings {
    let text =
        config::DEMO_CONFIG.replace("file://./twinroute-deadletters", folder.to_str().unwrap());
    config::parse(&text, "demo", &Overrides { seed, count: None }).unwrap()
}

struct Outcome {
    ledger: Vec<u8>,
    report: Value,
    files: Vec<(String, Vec<u8>)>,
}

fn run_demo(seed: Option<u64>) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dir.path().join("dl");
    let ledger = dir.path().join("ledger.ndjson");
    let report = support::run_virtual(
        demo(&dead_letters, seed),
        &ledger,
        &dir.path().join("spill"),
    );
    assert!(report.balanced);
    let mut report = serde_json::to_value(&report).unwrap();
    report.as_object_mut().unwrap().remove("wallClock");
    // Each run has its own temporary folder; the layout inside it is compared below.
    for endpoint in report["endpoints"].as_object_mut().unwrap().values_mut() {
        endpoint["deadLetterLocation"] = Value::Null;
    }
    Outcome {
        ledger: std::fs::read(&ledger).unwrap(),
        report,
        files: support::files(&dead_letters),
    }
}

#[test]
fn same_config_and_seed_under_virtual_time_give_identical_runs() {
    let first = run_demo(None);
    let second = run_demo(None);
    assert!(
        first.ledger.len() > 100_000,
        "the demo ledger has thousands of lines"
    );
    assert!(!first.files.is_empty(), "the demo dead-letters some events");
    assert!(first.ledger == second.ledger, "ledgers differ");
    assert_eq!(first.report, second.report);
    assert!(first.files == second.files, "dead-letter files differ");

    let other = run_demo(Some(43));
    assert!(
        other.ledger != first.ledger,
        "another seed gives another run"
    );
}

#[test]
fn a_stop_drains_then_accounts_the_rest_as_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "version": 1,
        "endpoints": {
            "healthy": { "properties": { "endpointType": "EventHub" }, "simulate": { "latencyMs": { "p50": 5, "p99": 20 } } },
            "down": { "properties": { "endpointType": "EventHub" },
                      "simulate": { "outages": [ { "startSeconds": 0, "durationSeconds": 100000 } ] } }
        },
        "routes": { "a": { "endpointName": "healthy", "filter": "true" }, "b": { "endpointName": "down", "filter": "true" } },
        "workload": { "seed": 9, "twins": 100, "rate": { "shape": "constant", "eventsPerSecond": 100 }, "count": 100000 }
    });
    let settings = support::settings(&config);
    let ledger = dir.path().join("ledger.ndjson");
    let options = RunOptions {
        clock: ClockMode::Virtual,
        ledger: Some(ledger.clone()),
        drain_timeout: Duration::from_secs(2),
        ..RunOptions::default()
    };
    let report = engine::run_blocking(settings, options, |stop| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        stop.cancel();
    })
    .unwrap();
    assert!(report.stopped_early);
    assert!(report.balanced, "{}", report.summary());
    assert!(
        (990..=1010).contains(&report.events_generated),
        "about 10 s at 100/s: {}",
        report.events_generated
    );
    assert!(
        report.duration_seconds >= 12.0 && report.duration_seconds < 13.0,
        "stop + 2 s drain: {}",
        report.duration_seconds
    );
    let (healthy, down) = (&report.endpoints["healthy"], &report.endpoints["down"]);
    assert_eq!(
        healthy.delivered, healthy.routed,
        "the healthy endpoint drains everything"
    );
    assert_eq!(
        down.in_flight, down.routed,
        "the dead endpoint's deliveries are all pending"
    );
    let lines = support::ledger(&ledger);
    let in_flight: Vec<&Value> = lines
        .iter()
        .filter(|l| l["outcome"] == "inFlight")
        .collect();
    assert_eq!(in_flight.len() as u64, down.routed);
    assert!(
        in_flight
            .iter()
            .all(|l| l["reason"] == "ShutdownBeforeDelivery")
    );
}

#[test]
fn a_store_that_refuses_every_write_spills_every_dead_letter() {
    use std::sync::Arc;
    use twinroute::deadletter::StoreError;
    use twinroute::deadletter::memory::MemoryStore;

    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "version": 1,
        "endpoints": { "hub-1": { "properties": { "endpointType": "EventHub", "deadLetterSecret": "unused" },
                                  "simulate": { "failures": [ { "status": 400, "probability": 1.0 } ] } } },
        "routes": { "all": { "endpointName": "hub-1", "filter": "true" } },
        "workload": { "seed": 12, "twins": 30, "count": 200 }
    });
    let store = Arc::new(MemoryStore::new());
    store.fail_with(Some(StoreError::Permanent(
        "container missing (test)".into(),
    )));
    let spill = dir.path().join("spill");
    let options = RunOptions {
        clock: ClockMode::Virtual,
        spill_folder: spill.clone(),
        stores: [(
            "hub-1".to_owned(),
            store.clone() as Arc<dyn twinroute::deadletter::DeadLetterStore>,
        )]
        .into(),
        ..RunOptions::default()
    };
    let report = support::run_paused(support::settings(&config), options);
    assert!(report.balanced, "{}", report.summary());
    let hub = &report.endpoints["hub-1"];
    assert_eq!(
        (hub.dead_lettered, hub.dead_letter_spilled, hub.dropped),
        (200, 200, 0),
        "{}",
        report.summary()
    );
    assert!(store.blobs().is_empty());
    let spilled = support::walk(&spill);
    assert_eq!(spilled.len(), 200);
    assert!(
        spilled
            .iter()
            .all(|p| p.starts_with("hub-1/2026/01/01/00/")),
        "{spilled:?}"
    );
}

#[test]
fn no_attempt_is_stamped_before_its_events_time() {
    use twinroute::clock::Timestamp;
    use twinroute::generator::Generator;

    let dir = tempfile::tempdir().unwrap();
    let settings = support::settings(&support::one_endpoint(
        serde_json::json!({ "properties": { "endpointType": "EventHub" }, "simulate": {} }),
        serde_json::json!({}),
        serde_json::json!({ "seed": 5, "twins": 100, "count": 3000,
                            "startTime": "2026-02-03T04:05:06Z",
                            "rate": { "shape": "constant", "eventsPerSecond": 1000 } }),
    ));
    let start = settings.workload.start_time.unwrap();
    let times: std::collections::HashMap<String, Timestamp> =
        Generator::new(&settings.workload, &settings.host_name, start)
            // Telemetry carries no `time` (ADT's telemetry events have none).
            .filter_map(|s| {
                let time = Timestamp::parse_rfc3339(s.event.time.as_deref()?).unwrap();
                Some((s.event.id.to_string(), time))
            })
            .collect();
    let ledger = dir.path().join("ledger.ndjson");
    let report = support::run_virtual(settings, &ledger, &dir.path().join("spill"));
    assert!(report.balanced);
    let lines = support::ledger(&ledger);
    assert_eq!(lines.len(), 3000);
    assert!(times.len() > 1000, "most events carry a time");
    let early: Vec<String> = lines
        .iter()
        .filter_map(|line| {
            let id = line["eventId"].as_str().unwrap();
            let time = times.get(id)?;
            let attempt = line["firstAttemptAt"].as_str().unwrap();
            (Timestamp::parse_rfc3339(attempt).unwrap() < *time)
                .then(|| format!("{id}: time {time}, first attempt {attempt}"))
        })
        .collect();
    assert!(
        early.is_empty(),
        "{} attempts before their event's time, e.g. {:?}",
        early.len(),
        early.first()
    );
}

#[test]
fn event_grid_schema_dead_letters_hold_the_event_grid_event_as_it_would_have_been_sent() {
    use std::sync::Arc;
    use twinroute::config::{BatchLimits, InputSchema};
    use twinroute::delivery::routed::Delivery;
    use twinroute::event::Serialized;
    use twinroute::generator::Generator;
    use twinroute::secret::Secret;
    use twinroute::sink::http::EventGridSink;

    let dir = tempfile::tempdir().unwrap();
    let topic = "/subscriptions/s/resourceGroups/g/providers/Microsoft.EventGrid/topics/grid";
    let topic_endpoint = "https://grid.westus2-1.eventgrid.azure.net/api/events";
    let settings = support::settings(&support::one_endpoint(
        serde_json::json!({
            "properties": { "endpointType": "EventGrid", "TopicEndpoint": topic_endpoint,
                            "accessKey1": "k", "inputSchema": "EventGridSchema",
                            "topicResourceId": topic,
                            "deadLetterSecret": dir.path().join("dl").to_str().unwrap() },
            "simulate": { "failures": [ { "status": 400, "probability": 1.0 } ] }
        }),
        serde_json::json!({}),
        serde_json::json!({ "seed": 8, "twins": 60, "count": 200 }),
    ));
    let sink = EventGridSink::new(
        twinroute::sink::http::HttpClient::new(),
        topic_endpoint,
        vec![Secret::new("k".to_owned())],
        InputSchema::EventGrid,
        BatchLimits::default(),
        topic,
    );
    let start = twinroute::generator::DEFAULT_START_TIME;
    let sent: std::collections::HashMap<String, Vec<u8>> =
        Generator::new(&settings.workload, &settings.host_name, start)
            .map(|s| {
                let delivery = Delivery::new(Arc::new(Serialized::new(s.event)), 0, Duration::ZERO);
                let (body, _) = sink.body(std::slice::from_ref(&delivery));
                // One event per request: the array's only element.
                let one = body[1..body.len() - 1].to_vec();
                (delivery.event.event.id.to_string(), one)
            })
            .collect();
    let report = support::run_virtual(
        settings,
        &dir.path().join("ledger.ndjson"),
        &dir.path().join("spill"),
    );
    assert_eq!(report.endpoints["ep-1"].dead_lettered, 200);
    let files = support::files(&dir.path().join("dl"));
    assert_eq!(files.len(), 200);
    for (path, bytes) in &files {
        let id = path.rsplit('/').next().unwrap().trim_end_matches(".json");
        assert_eq!(
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&sent[id]),
            "{path}"
        );
        let event: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert!(event.get("eventType").is_some() && event.get("specversion").is_none());
        assert_eq!(event["topic"], topic);
    }
}

/// adt-facts §3 / issue 13: a dead-letter store that keeps failing transiently (a SAS URI to a
/// closed port, retried for an hour) beside an endpoint whose dead-letters go to a folder.
#[test]
fn a_failing_dead_letter_store_holds_up_no_other_endpoint_and_a_stop_spills_its_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sas = format!(
        "http://127.0.0.1:{closed}/devstoreaccount1/deadletters?sv=2024-11-04&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=c2ln"
    );
    let healthy_folder = dir.path().join("dl");
    let refusing = serde_json::json!({ "failures": [ { "status": 400, "probability": 1.0 } ] });
    let config = serde_json::json!({
        "version": 1,
        "endpoints": {
            "failing": { "properties": { "endpointType": "EventHub", "deadLetterSecret": sas },
                         "delivery": { "deadLetterRetentionHours": 1 }, "simulate": refusing },
            "healthy": { "properties": { "endpointType": "EventHub",
                                         "deadLetterSecret": healthy_folder.to_str().unwrap() },
                         "simulate": refusing }
        },
        "routes": { "a": { "endpointName": "failing", "filter": "true" },
                    "b": { "endpointName": "healthy", "filter": "true" } },
        "workload": { "seed": 13, "twins": 40, "count": 200,
                      "rate": { "shape": "constant", "eventsPerSecond": 2000 } }
    });
    let spill = dir.path().join("spill");
    let options = RunOptions {
        spill_folder: spill.clone(),
        drain_timeout: Duration::from_secs(1),
        ..RunOptions::default()
    };
    let runtime = engine::runtime(ClockMode::Real, Some(1)).unwrap();
    let (written_in_time, report) = runtime.block_on(async {
        let stop = CancellationToken::new();
        let run = tokio::spawn(engine::run(
            support::settings(&config),
            options,
            stop.clone(),
        ));
        // Generation takes 0.1 s; the healthy endpoint's 200 dead-letters follow at once. Ten
        // seconds is far beyond that and far below the failing store's hour of retries.
        let mut written_in_time = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if support::walk(&healthy_folder).len() == 200 {
                written_in_time = true;
                break;
            }
        }
        let written = support::walk(&healthy_folder).len();
        stop.cancel();
        let report = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("a stop ends the run after its drain")
            .unwrap()
            .unwrap();
        ((written_in_time, written), report)
    });
    assert!(
        written_in_time.0,
        "the healthy endpoint's dead-letters are written within seconds: {} of 200\n{}",
        written_in_time.1,
        report.summary()
    );
    assert!(report.balanced, "{}", report.summary());
    let (failing, healthy) = (&report.endpoints["failing"], &report.endpoints["healthy"]);
    assert_eq!(
        (
            healthy.dead_lettered,
            healthy.dead_letter_spilled,
            healthy.in_flight
        ),
        (200, 0, 0),
        "{}",
        report.summary()
    );
    assert_eq!(
        (
            failing.dead_lettered,
            failing.dead_letter_spilled,
            failing.in_flight
        ),
        (200, 200, 0),
        "on stop, every pending dead-letter is spilled, none left inFlight\n{}",
        report.summary()
    );
    let spilled = support::walk(&spill);
    assert_eq!(spilled.len(), 200);
    assert!(
        spilled.iter().all(|p| p.starts_with("failing/")),
        "{spilled:?}"
    );
}

/// Issue 13: at a natural end (no signal), a dead-letter store that keeps failing transiently
/// kept its writes retrying for the whole `deadLetterRetentionHours` after the last delivery had
/// ended. Now they get `--drain-timeout`, as on a stop, and are then spilled; the run is not
/// `stoppedEarly`. Virtual time: the hour of retries it used to wait would show as duration.
#[test]
fn at_a_natural_end_pending_dead_letters_get_the_drain_timeout_then_are_spilled() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use twinroute::deadletter::memory::MemoryStore;
    use twinroute::deadletter::{DeadLetterStore, StoreError};

    let dir = tempfile::tempdir().unwrap();
    let healthy_folder = dir.path().join("dl");
    let refusing = serde_json::json!({ "failures": [ { "status": 400, "probability": 1.0 } ] });
    let config = serde_json::json!({
        "version": 1,
        "endpoints": {
            "failing": { "properties": { "endpointType": "EventHub",
                                         "deadLetterSecret": dir.path().join("unused").to_str().unwrap() },
                         "delivery": { "deadLetterRetentionHours": 1 }, "simulate": refusing },
            "healthy": { "properties": { "endpointType": "EventHub",
                                         "deadLetterSecret": healthy_folder.to_str().unwrap() },
                         "simulate": refusing }
        },
        "routes": { "a": { "endpointName": "failing", "filter": "true" },
                    "b": { "endpointName": "healthy", "filter": "true" } },
        "workload": { "seed": 13, "twins": 40, "count": 200,
                      "rate": { "shape": "constant", "eventsPerSecond": 2000 } }
    });
    // The failing endpoint's store answers every write with a transient error (a container that
    // is unreachable), for ever.
    let failing = Arc::new(MemoryStore::new());
    failing.fail_with(Some(StoreError::Transient("unreachable (test)".into())));
    let stores: HashMap<String, Arc<dyn DeadLetterStore>> = [(
        "failing".to_owned(),
        failing.clone() as Arc<dyn DeadLetterStore>,
    )]
    .into();
    let spill = dir.path().join("spill");
    let ledger = dir.path().join("ledger.ndjson");
    let options = RunOptions {
        clock: ClockMode::Virtual,
        ledger: Some(ledger.clone()),
        spill_folder: spill.clone(),
        drain_timeout: Duration::from_secs(30),
        stores,
        ..RunOptions::default()
    };
    let report = support::run_paused(support::settings(&config), options);

    assert!(!report.stopped_early, "a natural end, not a stop");
    assert!(report.balanced, "{}", report.summary());
    // Generation takes 0.1 s, the 400s end every delivery at once; then the 30 s drain. Before,
    // the run lasted the failing store's hour of retries.
    assert!(
        (30.0..60.0).contains(&report.duration_seconds),
        "the run ended {} virtual seconds in\n{}",
        report.duration_seconds,
        report.summary()
    );
    let (failing_report, healthy) = (&report.endpoints["failing"], &report.endpoints["healthy"]);
    assert_eq!(
        (
            healthy.dead_lettered,
            healthy.dead_letter_spilled,
            healthy.in_flight
        ),
        (200, 0, 0),
        "{}",
        report.summary()
    );
    assert_eq!(
        (
            failing_report.dead_lettered,
            failing_report.dead_letter_spilled,
            failing_report.in_flight
        ),
        (200, 200, 0),
        "every pending dead-letter is spilled, none left inFlight\n{}",
        report.summary()
    );
    assert!(failing.blobs().is_empty());
    assert_eq!(support::walk(&healthy_folder).len(), 200);
    let spilled = support::walk(&spill);
    assert_eq!(spilled.len(), 200);
    assert!(
        spilled.iter().all(|p| p.starts_with("failing/")),
        "{spilled:?}"
    );
    let lines = support::ledger(&ledger);
    assert_eq!(lines.len(), 400);
    assert!(
        lines.iter().all(|line| line["outcome"] == "deadLettered"),
        "{:?}",
        lines.iter().find(|line| line["outcome"] != "deadLettered")
    );
}
