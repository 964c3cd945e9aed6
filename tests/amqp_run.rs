//! Whole runs through `engine::run` to Event Hubs and Service Bus endpoints on each AMQP 1.0 test
//! peer: the in-repo broker (fe2o3-amqp, the client's own library) and the Qpid Proton peer (an
//! independent implementation, `tests/amqp_peer/peer.py`). Every event once in ADT's wire shape,
//! partition keys, each fault switch answered as the delivery policy says, a 200 put-token
//! answer, a restart mid-run, and a balanced report. In every scenario the peer has received
//! every event the ledger calls delivered.

mod amqp_support;
mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use amqp_support::assert_documented_shape;
use amqp_support::broker::{BrokerSettings, Fault};
use amqp_support::peers::{self, PEERS, PeerKind, TestPeer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use twinroute::config::Settings;
use twinroute::engine::{self, RunOptions};
use twinroute::event::Event;
use twinroute::generator::Generator;
use twinroute::report::{EndpointReport, RunReport};

const ENTITY: &str = "adt-events";
/// The workload's first event time, fixed so the events can be generated again to compare.
const START_TIME: &str = "2026-01-01T00:00:00Z";
/// No run in this file may take longer than this.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EventHub,
    ServiceBus,
}

const KINDS: [Kind; 2] = [Kind::EventHub, Kind::ServiceBus];
/// The AMQP message-format of a batch message.
const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;

/// Every (peer, endpoint kind) pair.
fn cases() -> impl Iterator<Item = (PeerKind, Kind)> {
    PEERS
        .into_iter()
        .flat_map(|peer| KINDS.into_iter().map(move |kind| (peer, kind)))
}

/// The endpoint's properties, as in an instance file (the connection strings name the broker).
fn endpoint(kind: Kind, primary: String, secondary: Option<String>, dead_letters: &Path) -> Value {
    let (kind, primary_key, secondary_key) = match kind {
        Kind::EventHub => (
            "EventHub",
            "connectionStringPrimaryKey",
            "connectionStringSecondaryKey",
        ),
        Kind::ServiceBus => (
            "ServiceBus",
            "primaryConnectionString",
            "secondaryConnectionString",
        ),
    };
    let mut properties = json!({
        "endpointType": kind,
        "authenticationType": "KeyBased",
        primary_key: primary,
        "deadLetterSecret": dead_letters.display().to_string(),
    });
    if let Some(secondary) = secondary {
        properties[secondary_key] = json!(secondary);
    }
    json!({ "properties": properties })
}

fn settings(endpoint: Value, delivery: Value, count: u64, events_per_second: u64) -> Settings {
    let workload = json!({ "seed": 31, "twins": 80, "count": count, "startTime": START_TIME,
                           "rate": { "shape": "constant", "eventsPerSecond": events_per_second } });
    support::settings(&support::one_endpoint(endpoint, delivery, workload))
}

/// A temporary folder, a peer, and an endpoint of `kind` on it (dead-letters in `dead/`).
async fn on_a_peer(peer: PeerKind, kind: Kind) -> (tempfile::TempDir, Arc<dyn TestPeer>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let peer = peers::start(peer, BrokerSettings::default()).await;
    // Shown with a failure's output: which case it was in.
    eprintln!("{kind:?} on the {} at {}", peer.name(), peer.addr());
    let endpoint = endpoint(
        kind,
        peer.connection_string("send", "k", Some(ENTITY)),
        None,
        &dir.path().join("dead"),
    );
    (dir, peer, endpoint)
}

/// Runs `settings` to its end (or, with `drain`, stops after generation and drains that long).
async fn run(settings: Settings, drain: Option<Duration>, ledger: &Path) -> RunReport {
    let options = RunOptions {
        spill_folder: ledger.with_extension("spill"),
        ledger: Some(ledger.to_owned()),
        stop_after_generation: drain.is_some(),
        drain_timeout: drain.unwrap_or(Duration::from_secs(60)),
        ..RunOptions::default()
    };
    tokio::time::timeout(
        RUN_DEADLINE,
        engine::run(settings, options, CancellationToken::new()),
    )
    .await
    .expect("the run ends")
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The events the run generated, by id, with their place in the stream: the workload is seeded
/// and starts at a fixed time, so generating it again gives the same events.
fn generated(settings: &Settings) -> HashMap<String, (usize, Event)> {
    let start = settings
        .workload
        .start_time
        .expect("the tests fix startTime");
    Generator::new(&settings.workload, &settings.host_name, start)
        .enumerate()
        .map(|(index, scheduled)| (scheduled.event.id.to_string(), (index, scheduled.event)))
        .collect()
}

fn endpoint_report(report: &RunReport) -> &EndpointReport {
    let ep = &report.endpoints["ep-1"];
    assert!(report.balanced && ep.balanced, "{}", report.summary());
    ep
}

fn results(ep: &EndpointReport, key: &str) -> u64 {
    ep.attempt_results.get(key).copied().unwrap_or(0)
}

fn unique_ids(peer: &dyn TestPeer) -> HashSet<String> {
    peer.received()
        .into_iter()
        .filter_map(|r| r.message_id)
        .collect()
}

/// The invariant of every scenario: the peer received (and accepted) every event the ledger
/// calls delivered. An event counted as delivered that never reached the peer fails here, however
/// the report balances.
fn assert_received_covers_delivered(peer: &dyn TestPeer, ledger: &Path, context: &str) {
    let received = unique_ids(peer);
    let delivered: Vec<String> = support::ledger(ledger)
        .into_iter()
        .filter(|entry| entry["outcome"] == "delivered")
        .map(|entry| entry["eventId"].as_str().expect("an event id").to_owned())
        .collect();
    let missing: Vec<&String> = delivered
        .iter()
        .filter(|id| !received.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{context}: {} of the {} events the ledger calls delivered never reached the {} \
         (first: {:?})",
        missing.len(),
        delivered.len(),
        peer.name(),
        &missing[..missing.len().min(5)]
    );
}

/// Dead-letter files under `folder` (any depth).
fn dead_letter_files(folder: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                dead_letter_files(&path)
            } else {
                usize::from(path.extension().is_some_and(|e| e == "json"))
            }
        })
        .sum()
}

/// Every event arrives once, in ADT's AMQP shape, with its twin id as the partition key, and the
/// report balances; with `concurrency: 1`, one twin's events also arrive in the order they were
/// generated. (With more attempts in flight, two attempts may carry events of one twin and
/// overtake each other, and a retry reorders too: ADT itself promises no order.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_in_adts_shape_and_the_report_balances() {
    for (peer, kind) in cases() {
        for concurrency in [64, 1] {
            let (dir, broker, endpoint) = on_a_peer(peer, kind).await;
            let delivery = json!({ "maxEventsPerBatch": 16, "concurrency": concurrency });
            let settings = settings(endpoint, delivery, 600, 3000);
            let events = generated(&settings);
            assert_eq!(events.len(), 600);
            let ledger = dir.path().join("ledger.ndjson");
            let report = run(settings, None, &ledger).await;
            let ep = endpoint_report(&report);
            let context = format!(
                "{kind:?} on the {}, concurrency {concurrency}",
                broker.name()
            );
            assert_received_covers_delivered(&*broker, &ledger, &context);
            assert_eq!(ep.routed, 600, "{context}");
            assert_eq!(ep.delivered, 600, "{context}: {}", report.summary());
            assert_eq!(ep.attempts, 600, "{context}: one attempt per event");
            assert_eq!(
                ep.attempt_results.keys().collect::<Vec<_>>(),
                ["200"],
                "{context}: no failed attempt"
            );

            let received = broker.wait_for(600, Duration::from_secs(10)).await;
            assert_eq!(received.len(), 600, "{context}: every event, once");
            let mut seen = HashSet::new();
            for message in &received {
                let id = message.message_id.as_deref().expect("a message id");
                assert!(seen.insert(id), "{context}: {id} arrived twice");
                let (_, event) = &events[id];
                assert_documented_shape(message, event);
                // A lone event goes as a plain message; several go as one batch message, each
                // event a data section holding an encoded message (the Azure SDKs' convention).
                assert!(
                    [0, BATCH_MESSAGE_FORMAT].contains(&message.message_format),
                    "{context}: message-format {:#x}",
                    message.message_format
                );
                assert_eq!(
                    message.batched,
                    message.message_format == BATCH_MESSAGE_FORMAT,
                    "{context}"
                );
                match kind {
                    Kind::EventHub => assert_eq!(
                        message.partition_key.as_deref(),
                        Some(&*event.twin_id),
                        "{context}: the partition key is the twin id"
                    ),
                    Kind::ServiceBus => assert_eq!(message.address, ENTITY),
                }
            }
            assert!(
                received.iter().any(|m| m.batched),
                "{context}: batches of 16 events went as batch messages"
            );
            if concurrency == 1 {
                let mut last: HashMap<&str, usize> = HashMap::new();
                for message in &received {
                    let (index, event) = &events[message.message_id.as_deref().unwrap()];
                    if let Some(previous) = last.insert(&event.twin_id, *index) {
                        assert!(
                            previous < *index,
                            "{context}: twin {} out of order",
                            event.twin_id
                        );
                    }
                }
            }
        }
    }
}

/// `com.microsoft:server-busy` and `com.microsoft:timeout` are the 503 row: retried no sooner
/// than 30 s, then delivered. The four runs (two kinds, two faults) go at once, so the test takes
/// one 30-second wait, not four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_broker_is_retried_then_delivered() {
    let mut runs = tokio::task::JoinSet::new();
    for (peer, kind) in cases() {
        for fault in [Fault::ServerBusy, Fault::ServiceTimeout] {
            runs.spawn(busy_then_healthy(peer, kind, fault));
        }
    }
    while let Some(run) = runs.join_next().await {
        run.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
    }
}

async fn busy_then_healthy(peer: PeerKind, kind: Kind, fault: Fault) {
    let (dir, broker, endpoint) = on_a_peer(peer, kind).await;
    broker.set_fault(fault);
    // Busy for the first three transfers, then healthy again.
    let healer = {
        let broker = broker.clone();
        tokio::spawn(async move {
            while broker.counters().2 < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            broker.set_fault(Fault::None);
        })
    };
    let ledger = dir.path().join("ledger.ndjson");
    let report = run(
        settings(endpoint, json!({ "maxEventsPerBatch": 8 }), 120, 2000),
        None,
        &ledger,
    )
    .await;
    healer.await.unwrap();
    let context = format!("{kind:?} {fault:?} on the {}", broker.name());
    assert_received_covers_delivered(&*broker, &ledger, &context);
    let ep = endpoint_report(&report);
    assert_eq!(ep.delivered, 120, "{context}: {}", report.summary());
    assert!(
        results(ep, "503") >= 3,
        "{context}: {:?}",
        ep.attempt_results
    );
    assert_eq!(ep.dead_lettered, 0, "{context}");
    assert_eq!(unique_ids(&*broker).len(), 120, "{context}");
    // Each retried delivery waited at least the 503 row's 30 s.
    let mut retried = 0;
    for line in std::fs::read_to_string(&ledger).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        if entry["attempts"].as_u64() > Some(1) {
            retried += 1;
            let time = |field: &str| {
                chrono::DateTime::parse_from_rfc3339(entry[field].as_str().unwrap()).unwrap()
            };
            let waited = time("finalAt") - time("firstAttemptAt");
            assert!(
                waited.num_seconds() >= 30,
                "{context}: retried after {waited}"
            );
        }
    }
    assert!(retried >= 3, "{context}: {retried} retried deliveries");
}

/// `amqp:link:message-size-exceeded` is the 413 row: dead-lettered at once, never retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_is_dead_lettered_at_once() {
    for (peer, kind) in cases() {
        let (dir, broker, endpoint) = on_a_peer(peer, kind).await;
        broker.set_fault(Fault::MessageSizeExceeded);
        let dead = dir.path().join("dead");
        let ledger = dir.path().join("ledger.ndjson");
        let report = run(
            settings(endpoint, json!({ "maxEventsPerBatch": 1 }), 40, 2000),
            None,
            &ledger,
        )
        .await;
        let context = format!("{kind:?} on the {}", broker.name());
        assert_received_covers_delivered(&*broker, &ledger, &context);
        let ep = endpoint_report(&report);
        assert_eq!(ep.dead_lettered, 40, "{context}: {}", report.summary());
        assert_eq!(ep.attempts, 40, "{context}: one attempt each, no retry");
        assert_eq!(results(ep, "413"), 40, "{context}");
        assert_eq!(ep.dead_letter_reasons.get("NonRetriableStatus"), Some(&40));
        assert_eq!(
            dead_letter_files(&dead),
            40,
            "{context}: one file per event"
        );
        assert!(broker.received().is_empty(), "{context}");
    }
}

/// `amqp:unauthorized-access` and `amqp:not-found` are the 401 and 404 rows for an Azure
/// resource: retried, but no sooner than 5 minutes, so within a short drain each event has had
/// exactly one attempt and is neither delivered nor dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_access_and_a_missing_entity_wait_five_minutes() {
    for (peer, kind) in cases() {
        for (fault, status) in [(Fault::Unauthorized, "401"), (Fault::NotFound, "404")] {
            let (dir, broker, endpoint) = on_a_peer(peer, kind).await;
            broker.set_fault(fault);
            let ledger = dir.path().join("ledger.ndjson");
            let report = run(
                settings(endpoint, json!({ "maxEventsPerBatch": 1 }), 20, 2000),
                Some(Duration::from_secs(2)),
                &ledger,
            )
            .await;
            let context = format!("{kind:?} {fault:?} on the {}", broker.name());
            assert_received_covers_delivered(&*broker, &ledger, &context);
            let ep = endpoint_report(&report);
            assert_eq!(ep.attempts, 20, "{context}: {:?}", ep.attempt_results);
            assert_eq!(
                results(ep, status),
                20,
                "{context}: {:?}",
                ep.attempt_results
            );
            assert_eq!(ep.in_flight, 20, "{context}: waiting to retry");
            assert_eq!(ep.dead_lettered + ep.delivered, 0, "{context}");
        }
    }
}

/// A wrong primary key: the secondary connection string is tried, and everything is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_primary_key_falls_back_to_the_secondary() {
    for (peer, kind) in cases() {
        let dir = tempfile::tempdir().unwrap();
        let broker = peers::start(
            peer,
            BrokerSettings {
                keys: vec![("send".to_owned(), "right".to_owned())],
                ..Default::default()
            },
        )
        .await;
        let endpoint = endpoint(
            kind,
            broker.connection_string("send", "wrong", Some(ENTITY)),
            Some(broker.connection_string("send", "right", Some(ENTITY))),
            &dir.path().join("dead"),
        );
        let ledger = dir.path().join("ledger.ndjson");
        let report = run(
            settings(endpoint, json!({ "maxEventsPerBatch": 8 }), 100, 2000),
            Some(Duration::from_secs(10)),
            &ledger,
        )
        .await;
        let context = format!("{kind:?} on the {}", broker.name());
        assert_received_covers_delivered(&*broker, &ledger, &context);
        let ep = endpoint_report(&report);
        assert_eq!(ep.delivered, 100, "{context}: {}", report.summary());
        assert_eq!(unique_ids(&*broker).len(), 100, "{context}");
        let (_, refused, _) = broker.counters();
        assert!(
            refused >= 1,
            "{context}: the primary key was tried and refused"
        );
    }
}

/// The broker is stopped mid-run and started again on the same port: the sink reconnects,
/// retries what failed, and nothing is lost. (A transfer the broker recorded just before the
/// cut may arrive twice: no more such duplicates than failed attempts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_the_broker_restarts() {
    for (peer, kind) in cases() {
        let (dir, broker, endpoint) = on_a_peer(peer, kind).await;
        let delivery = json!({
            "maxEventsPerBatch": 4,
            "attemptTimeoutSeconds": 2,
            "retrySchedule": { "kind": "exponential", "baseSeconds": 0.1, "factor": 2, "capSeconds": 1 }
        });
        let restarter = {
            let broker = broker.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let before = broker.counters().0;
                broker.stop();
                tokio::time::sleep(Duration::from_millis(500)).await;
                broker.restart().await.expect("the broker listens again");
                before
            })
        };
        let ledger = dir.path().join("ledger.ndjson");
        let report = run(settings(endpoint, delivery, 2000, 1000), None, &ledger).await;
        let accepted_before_stop = restarter.await.unwrap();
        let context = format!("{kind:?} on the {}", broker.name());
        assert_received_covers_delivered(&*broker, &ledger, &context);
        let ep = endpoint_report(&report);
        assert!(accepted_before_stop > 0, "{context}: the stop came mid-run");
        assert_eq!(ep.delivered, 2000, "{context}: {}", report.summary());
        let failed = results(ep, "connectionError") + results(ep, "timeout");
        assert!(
            failed > 0,
            "{context}: the outage was seen: {:?}",
            ep.attempt_results
        );
        let received = broker.received();
        let unique = unique_ids(&*broker);
        assert_eq!(unique.len(), 2000, "{context}: nothing lost");
        let duplicates = (received.len() - unique.len()) as u64;
        assert!(
            duplicates <= failed * 4,
            "{context}: {duplicates} duplicates from {failed} failed attempts"
        );
    }
}

/// A put-token answered with 200 (which the CBS specification and Azure's .NET, Java and
/// JavaScript SDKs accept, beside 202): the token is taken, every event is sent, and the ledger
/// calls delivered only what the peer received. (Issue 15, section 1: the client under
/// twinroute accepted only 202 and counted the 200 it refused as delivered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_token_answered_with_200_is_accepted_and_every_event_arrives() {
    // The four cases run at once, and each failure is reported, not only the first.
    let mut runs = tokio::task::JoinSet::new();
    for (peer, kind) in cases() {
        runs.spawn(put_token_200(peer, kind));
    }
    let mut failures = Vec::new();
    while let Some(run) = runs.join_next().await {
        if let Err(error) = run {
            let panic = error.into_panic();
            failures.push(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

async fn put_token_200(peer: PeerKind, kind: Kind) {
    let (dir, broker, endpoint) = on_a_peer(peer, kind).await;
    broker.set_put_token_status(200);
    let ledger = dir.path().join("ledger.ndjson");
    let report = run(
        settings(endpoint, json!({ "maxEventsPerBatch": 8 }), 100, 2000),
        Some(Duration::from_secs(10)),
        &ledger,
    )
    .await;
    let context = format!("{kind:?} on the {}, put-token 200", broker.name());
    assert_received_covers_delivered(&*broker, &ledger, &context);
    let ep = endpoint_report(&report);
    assert_eq!(ep.delivered, 100, "{context}: {}", report.summary());
    assert_eq!(unique_ids(&*broker).len(), 100, "{context}");
    let (accepted, refused, _) = broker.counters();
    assert!(accepted >= 1, "{context}: a token was put");
    assert_eq!(refused, 0, "{context}");
}
