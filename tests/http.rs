//! Real HTTP delivery over loopback: twinroute → `twinroute receive`, in every body form, with
//! receiver faults, and with wrong keys. The receiver parses every request with the official
//! `cloudevents-sdk` and answers 400 to anything that is not a valid CloudEvent.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use twinroute::config::Settings;
use twinroute::engine::{self, RunOptions};
use twinroute::receive::{ReceiveSettings, Receiver, Stats};
use twinroute::report::RunReport;

fn receiver_settings() -> ReceiveSettings {
    ReceiveSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ReceiveSettings::default()
    }
}

fn settings(endpoint: Value, delivery: Value, count: u64) -> Settings {
    let workload = json!({ "seed": 21, "twins": 60, "count": count,
                           "rate": { "shape": "constant", "eventsPerSecond": 2000 } });
    support::settings(&support::one_endpoint(endpoint, delivery, workload))
}

/// Runs `settings` against a receiver with `receiver` settings; stops generation-then-drain after
/// `drain` if given, else waits for every delivery to end.
async fn run(
    settings: Settings,
    receiver: ReceiveSettings,
    drain: Option<Duration>,
    dir: &std::path::Path,
) -> (RunReport, Stats) {
    let running = Receiver::start(receiver).await.unwrap();
    let settings = retarget(settings, running.addr());
    let options = RunOptions {
        spill_folder: dir.join("spill"),
        stop_after_generation: drain.is_some(),
        drain_timeout: drain.unwrap_or(Duration::from_secs(30)),
        ..RunOptions::default()
    };
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        engine::run(settings, options, CancellationToken::new()),
    )
    .await
    .expect("the run ends")
    .unwrap();
    (report, running.shutdown().await)
}

/// Points the endpoint at the receiver's address (`RECEIVER` in the URL).
fn retarget(mut settings: Settings, addr: std::net::SocketAddr) -> Settings {
    use twinroute::config::Connection;
    for endpoint in &mut settings.endpoints {
        match &mut endpoint.connection {
            Connection::EventGrid {
                topic_endpoint: Some(url),
                ..
            }
            | Connection::Webhook { uri: Some(url), .. } => {
                *url = url.replace("RECEIVER", &addr.to_string());
            }
            _ => {}
        }
    }
    settings
}

fn event_grid(schema: &str, batch: u32) -> (Value, Value) {
    (
        json!({ "properties": { "endpointType": "EventGrid", "TopicEndpoint": "http://RECEIVER/api/events",
                                "accessKey1": "key-one", "inputSchema": schema } }),
        json!({ "maxEventsPerBatch": batch, "preferredBatchSizeInKilobytes": 64 }),
    )
}

fn webhook(mode: &str) -> (Value, Value) {
    (
        json!({ "properties": { "endpointType": "Webhook", "endpointUri": "http://RECEIVER/hook", "mode": mode,
                                "headers": { "aeg-sas-key": "key-one" } } }),
        json!({ "maxEventsPerBatch": 32 }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_arrives_whole_and_the_accounts_agree() {
    let forms = [
        (
            "event grid, cloudevents, single",
            event_grid("CloudEventSchemaV1_0", 1),
        ),
        (
            "event grid, cloudevents, batches of 10",
            event_grid("CloudEventSchemaV1_0", 10),
        ),
        (
            "event grid, event grid schema, batches of 5",
            event_grid("EventGridSchema", 5),
        ),
        ("webhook, binary", webhook("binary")),
        ("webhook, structured", webhook("structured")),
        ("webhook, batch", webhook("batch")),
    ];
    for (name, (endpoint, delivery)) in forms {
        let dir = tempfile::tempdir().unwrap();
        let receiver = ReceiveSettings {
            key: Some("key-one".into()),
            ..receiver_settings()
        };
        let (report, stats) = run(
            settings(endpoint, delivery, 400),
            receiver,
            None,
            dir.path(),
        )
        .await;
        let ep = &report.endpoints["ep-1"];
        assert!(report.balanced, "{name}: {}", report.summary());
        assert_eq!(
            (ep.routed, ep.delivered),
            (400, 400),
            "{name}: {}",
            report.summary()
        );
        assert!(
            stats.rejected.is_empty(),
            "{name}: the receiver refused something: {:?}",
            stats.rejected
        );
        assert_eq!(
            stats.unique_events, ep.delivered,
            "{name}: delivered = received unique ids"
        );
        assert_eq!(stats.duplicates, 0, "{name}");
        assert_eq!(stats.by_type.values().sum::<u64>(), 400, "{name}");
        assert_eq!(
            stats.by_type.len(),
            7,
            "{name}: every type arrives: {:?}",
            stats.by_type
        );
        let requests: u64 = ep.attempt_results.values().sum();
        assert_eq!(stats.requests, requests, "{name}: one request per attempt");
        if name.contains("batches of 10") {
            // Batches are best effort, as Event Grid's: made from what is waiting, never held back.
            assert!(
                (40..400).contains(&requests),
                "{name}: batched: {requests} requests for 400 events"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_faults_are_retried_and_still_balance() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, _) = webhook("structured");
    // Dropped connections and throttling (Retry-After: 1, at least 10 s by the status table),
    // 500s (at least 10 s), latency; a quick schedule so what has no minimum is retried fast.
    let delivery = json!({ "retrySchedule": { "kind": "exponential", "baseSeconds": 0.1, "factor": 2, "capSeconds": 1 },
                           "attemptTimeoutSeconds": 5 });
    let receiver = ReceiveSettings {
        key: Some("key-one".into()),
        drop_connection_rate: 0.1,
        fail_rate: 0.05,
        fail_status: 500,
        throttle: Some(600),
        latency: Some((Duration::from_millis(1), Duration::from_millis(20))),
        seed: 3,
        ..receiver_settings()
    };
    let (report, stats) = run(
        settings(endpoint, delivery, 800),
        receiver,
        None,
        dir.path(),
    )
    .await;
    let ep = &report.endpoints["ep-1"];
    assert!(report.balanced, "{}", report.summary());
    assert_eq!(ep.delivered, 800, "{}", report.summary());
    assert!(
        ep.attempts > 800,
        "retries are visible in the report: {} attempts",
        ep.attempts
    );
    for result in ["connectionError", "500", "429"] {
        assert!(
            ep.attempt_results.get(result).is_some_and(|n| *n > 0),
            "{result} in {:?}",
            ep.attempt_results
        );
    }
    assert!(
        stats.dropped_connections > 0
            && stats.rejected.contains_key(&500)
            && stats.rejected.contains_key(&429)
    );
    assert_eq!(stats.unique_events, 800);
    // Duplicates only where an attempt timed out after the receiver took the event.
    let timeouts = ep.attempt_results.get("timeout").copied().unwrap_or(0);
    assert!(
        stats.duplicates <= timeouts,
        "duplicates {} > timeouts {timeouts}",
        stats.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_times_out_after_the_receiver_took_it_makes_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, _) = webhook("structured");
    let delivery = json!({ "retrySchedule": { "kind": "fixed", "delaysSeconds": [0.2] }, "attemptTimeoutSeconds": 0.15 });
    // Half the answers take ~1 ms, a few take up to a second: those time out on our side.
    let receiver = ReceiveSettings {
        key: Some("key-one".into()),
        latency: Some((Duration::from_millis(2), Duration::from_millis(400))),
        seed: 5,
        ..receiver_settings()
    };
    let (report, stats) = run(
        settings(endpoint, delivery, 300),
        receiver,
        None,
        dir.path(),
    )
    .await;
    let ep = &report.endpoints["ep-1"];
    assert!(report.balanced, "{}", report.summary());
    let timeouts = ep.attempt_results.get("timeout").copied().unwrap_or(0);
    assert!(
        timeouts > 0,
        "some attempts time out: {:?}",
        ep.attempt_results
    );
    assert!(
        stats.duplicates > 0 && stats.duplicates <= timeouts,
        "duplicates {} vs timeouts {timeouts}",
        stats.duplicates
    );
    assert_eq!(
        stats.unique_events, 300,
        "each event once, whatever the retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_grid_tries_the_second_key_on_401() {
    let dir = tempfile::tempdir().unwrap();
    // Key 1 is wrong, key 2 right: everything is delivered; after the first 401 key 2 is used.
    let endpoint = json!({ "properties": { "endpointType": "EventGrid", "TopicEndpoint": "http://RECEIVER/api/events",
                                           "accessKey1": "wrong", "accessKey2": "key-two" } });
    let receiver = ReceiveSettings {
        key: Some("key-two".into()),
        ..receiver_settings()
    };
    let (report, stats) = run(
        settings(endpoint, json!({ "concurrency": 1 }), 100),
        receiver,
        None,
        dir.path(),
    )
    .await;
    let ep = &report.endpoints["ep-1"];
    assert_eq!(ep.delivered, 100, "{}", report.summary());
    assert_eq!(
        ep.attempts, 100,
        "the second key is part of the same attempt"
    );
    assert_eq!(
        stats.rejected.get(&401),
        Some(&1),
        "only the first request used the wrong key"
    );

    // Both keys wrong: each attempt tries both, then waits at least 5 min (status table).
    let endpoint = json!({ "properties": { "endpointType": "EventGrid", "TopicEndpoint": "http://RECEIVER/api/events",
                                           "accessKey1": "wrong", "accessKey2": "also-wrong" } });
    let receiver = ReceiveSettings {
        key: Some("key-two".into()),
        ..receiver_settings()
    };
    let (report, stats) = run(
        settings(endpoint, json!({}), 50),
        receiver,
        Some(Duration::from_secs(2)),
        dir.path(),
    )
    .await;
    let ep = &report.endpoints["ep-1"];
    assert!(report.balanced);
    assert_eq!(
        (ep.attempts, ep.in_flight, ep.delivered),
        (50, 50, 0),
        "{}",
        report.summary()
    );
    assert_eq!(
        stats.rejected.get(&401),
        Some(&100),
        "both keys tried once per event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_401_is_never_retried_and_dead_lettered_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let dead_letters = dir.path().join("dl");
    let endpoint = json!({ "properties": { "endpointType": "Webhook", "endpointUri": "http://RECEIVER/hook",
                                           "deadLetterSecret": dead_letters.to_str().unwrap() } });
    let receiver = ReceiveSettings {
        key: Some("key-one".into()),
        ..receiver_settings()
    };
    let (report, stats) = run(
        settings(endpoint, json!({}), 40),
        receiver,
        None,
        dir.path(),
    )
    .await;
    let ep = &report.endpoints["ep-1"];
    assert_eq!(
        (ep.attempts, ep.dead_lettered),
        (40, 40),
        "{}",
        report.summary()
    );
    assert_eq!(ep.dead_letter_reasons.get("NonRetriableStatus"), Some(&40));
    assert_eq!(stats.rejected.get(&401), Some(&40));
}
