//! The blob dead-letter store against a real Azurite (the Azure Storage emulator).
//!
//! Each test makes its own container with an account SAS signed with Azurite's development key,
//! then gives the store only a container SAS, as a user would. See `support` for the environment
//! contract (`TWINROUTE_AZURITE_PORT`; fail in CI, skip elsewhere).

mod azurite_support;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use twinroute::bench::measure_writes;
use twinroute::clock::Timestamp;
use twinroute::deadletter::blob::BlobStore;
use twinroute::deadletter::sas::SasError;
use twinroute::deadletter::{
    DeadLetterBlob, DeadLetterMetadata, DeadLetterStore, StoreError, blob_path,
};

use azurite_support::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("reqwest client")
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn dead_letter(endpoint: &str, time: &str, id: &str, body: impl Into<Bytes>) -> DeadLetterBlob {
    DeadLetterBlob {
        path: blob_path(endpoint, at(time), id),
        body: body.into(),
        metadata: DeadLetterMetadata {
            reason: "MaxDeliveryAttemptsExceeded",
            delivery_attempts: 30,
            last_delivery_outcome: "Busy",
            last_http_status_code: Some(503),
            publish_time: at("2026-03-04T05:00:00.1234567Z"),
            last_delivery_attempt_time: Some(at(time)),
        },
    }
}

fn store_for(port: u16, container: &str, permissions: &str) -> BlobStore {
    let uri = container_sas_uri(port, container, permissions, FAR_EXPIRY);
    BlobStore::from_sas_uri(&uri, client(), check_time())
        .expect("a fresh container SAS passes the startup check")
        .with_request_timeout(TIMEOUT)
}

/// No message may carry the SAS signature.
fn assert_no_signature(message: &str) {
    println!("message: {message}");
    assert!(
        !message.contains("sig="),
        "message shows the SAS: {message}"
    );
}

#[tokio::test]
async fn writes_one_blob_per_dead_letter_with_exact_body_content_type_and_metadata() {
    let Some(port) = azurite_port() else { return };
    let client = client();
    let container = unique_container("write");
    create_container(&client, port, &container).await;
    let store = store_for(port, &container, "cw");

    let big_body: Vec<u8> = (0..64 * 1024).map(|i| b"{}[]\"\\ az09\n"[i % 12]).collect();
    let mut ttl_expired = dead_letter(
        "sb-topic",
        "2026-03-04T23:59:59Z",
        "ttl-1",
        &b"{\"id\":\"ttl-1\"}"[..],
    );
    ttl_expired.metadata = DeadLetterMetadata {
        reason: "TimeToLiveExceeded",
        delivery_attempts: 1,
        last_delivery_outcome: "TimedOut",
        last_http_status_code: None,
        publish_time: at("2026-03-04T23:00:00Z"),
        last_delivery_attempt_time: None,
    };
    let blobs = vec![
        dead_letter(
            "hub-1",
            "2026-03-04T05:06:07Z",
            "7f2c4b1e-0000-4000-8000-000000000001",
            "{\"specversion\":\"1.0\",\"id\":\"7f2c4b1e-0000-4000-8000-000000000001\",\"data\":{\"t\":\"°C — ünïcödé\"}}\n",
        ),
        dead_letter(
            "hub-1",
            "2026-03-04T06:00:00Z",
            "7f2c4b1e-0000-4000-8000-000000000002",
            big_body,
        ),
        // Telemetry ids are the caller's Message-Id: anything may be in them.
        dead_letter(
            "hub-1",
            "2026-03-04T06:00:00Z",
            "telemetry id with spaces+plus&amp;ünï",
            &b"{}"[..],
        ),
        ttl_expired,
    ];
    for blob in &blobs {
        store.put(blob).await.expect("write a dead-letter");
    }

    let mut expected: Vec<String> = blobs.iter().map(|blob| blob.path.clone()).collect();
    expected.sort();
    assert_eq!(list_blobs(&client, port, &container).await, expected);
    for blob in &blobs {
        let stored = get_blob(&client, port, &container, &blob.path).await;
        assert_eq!(stored.body, blob.body, "body of {}", blob.path);
        assert_eq!(stored.content_type, "application/json", "{}", blob.path);
        let metadata: BTreeMap<String, String> = blob
            .metadata
            .pairs()
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        assert_eq!(stored.metadata, metadata, "metadata of {}", blob.path);
    }
}

#[tokio::test]
async fn a_second_write_of_the_same_path_is_ok_and_leaves_the_first_blob() {
    let Some(port) = azurite_port() else { return };
    let client = client();
    let container = unique_container("dup");
    create_container(&client, port, &container).await;
    let store = store_for(port, &container, "cw");

    let first = dead_letter(
        "hub-1",
        "2026-03-04T05:06:07Z",
        "same-id",
        &b"{\"n\":1}"[..],
    );
    let mut again = first.clone();
    again.body = Bytes::from_static(b"{\"n\":2}");
    store.put(&first).await.expect("first write");
    store
        .put(&again)
        .await
        .expect("a repeated write is written already");

    assert_eq!(
        list_blobs(&client, port, &container).await,
        vec![first.path.clone()]
    );
    let stored = get_blob(&client, port, &container, &first.path).await;
    assert_eq!(
        stored.body, first.body,
        "If-None-Match: * keeps the first write"
    );
}

#[tokio::test]
async fn the_startup_check_refuses_a_read_only_and_an_expired_sas() {
    let Some(port) = azurite_port() else { return };
    let container = unique_container("check");

    let read_only = container_sas_uri(port, &container, "rl", FAR_EXPIRY);
    let err = BlobStore::from_sas_uri(&read_only, client(), check_time()).unwrap_err();
    assert!(matches!(err, SasError::NoWritePermission { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("sp=rl include neither write (w) nor create (c)"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{}/{container}?***", account_url(port))),
        "{message}"
    );
    assert_no_signature(&message);

    let expired = container_sas_uri(port, &container, "cw", PAST_EXPIRY);
    let err = BlobStore::from_sas_uri(&expired, client(), check_time()).unwrap_err();
    assert!(matches!(err, SasError::Expired { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("expired at 2020-01-01T00:00:00Z (se)"),
        "{message}"
    );
    assert_no_signature(&message);
}

#[tokio::test]
async fn a_missing_container_is_a_permanent_404() {
    let Some(port) = azurite_port() else { return };
    let container = unique_container("missing");
    let store = store_for(port, &container, "w");

    let blob = dead_letter("hub-1", "2026-03-04T05:06:07Z", "e1", &b"{}"[..]);
    let err = store.put(&blob).await.unwrap_err();
    let StoreError::Permanent(message) = &err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(
        message.contains(&format!(
            "container '{container}' does not exist (404 ContainerNotFound)"
        )),
        "{message}"
    );
    assert!(message.contains(&blob.path), "{message}");
    assert_no_signature(message);
}

#[tokio::test]
async fn a_sas_signed_with_the_wrong_key_is_refused_permanently() {
    let Some(port) = azurite_port() else { return };
    let client = client();
    let container = unique_container("badkey");
    create_container(&client, port, &container).await;
    let wrong_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let uri = format!(
        "{}/{container}?{}",
        account_url(port),
        container_sas_with_key(&container, "cw", FAR_EXPIRY, wrong_key)
    );
    let store = BlobStore::from_sas_uri(&uri, client, check_time())
        .unwrap()
        .with_request_timeout(TIMEOUT);

    let err = store
        .put(&dead_letter(
            "hub-1",
            "2026-03-04T05:06:07Z",
            "e1",
            &b"{}"[..],
        ))
        .await
        .unwrap_err();
    let StoreError::Permanent(message) = &err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(message.contains("the SAS was refused (403 "), "{message}");
    assert_no_signature(message);
}

/// The building block of "Azurite stopped in the middle of a run": while it is down a write is a
/// transient error; once it is back on the same port, writes succeed (the main crate's writer
/// retries or spills in between).
#[tokio::test]
async fn azurite_stopped_is_transient_and_writes_resume_when_it_is_back() {
    let Some(_) = azurite_port() else { return };
    let mut azurite = OwnAzurite::start().await;
    let port = azurite.port();
    let client = client();
    let container = unique_container("restart");
    create_container(&client, port, &container).await;
    let store = store_for(port, &container, "cw");

    let before = dead_letter("hub-1", "2026-03-04T05:06:07Z", "before", &b"{}"[..]);
    store.put(&before).await.expect("write while Azurite runs");

    azurite.stop();
    // The first write may go out on the pooled connection Azurite had open ("connection closed
    // before message completed"); the next one finds nobody listening ("Connection refused").
    let down = dead_letter("hub-1", "2026-03-04T05:06:08Z", "down", &b"{}"[..]);
    for attempt in ["first", "second"] {
        let err = tokio::time::timeout(TIMEOUT * 2, store.put(&down))
            .await
            .expect("a write to a stopped Azurite fails within the request timeout")
            .unwrap_err();
        let StoreError::Transient(message) = &err else {
            panic!("{attempt} write: expected a transient error, got {err:?}");
        };
        assert_no_signature(message);
        if attempt == "second" {
            assert!(
                message.contains("cannot connect") && message.contains("refused"),
                "{message}"
            );
        }
    }

    azurite.restart().await;
    assert_eq!(azurite.port(), port, "restarted on the same port");
    // A killed Azurite may not have saved the container yet; a user's container would be there.
    create_container(&client, port, &container).await;
    store.put(&down).await.expect("the retried write succeeds");
    let after = dead_letter("hub-1", "2026-03-04T05:06:09Z", "after", &b"{}"[..]);
    store.put(&after).await.expect("later writes succeed");
    let names = list_blobs(&client, port, &container).await;
    assert!(
        names.contains(&down.path) && names.contains(&after.path),
        "{names:?}"
    );
}

/// A short throughput run, to keep `measure_writes` working; `examples/bench.rs` is the benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_writes_reports_a_rate() {
    let Some(port) = azurite_port() else { return };
    let client = client();
    let container = unique_container("rate");
    create_container(&client, port, &container).await;
    let store: Arc<dyn DeadLetterStore> = Arc::new(store_for(port, &container, "cw"));

    let rate = measure_writes(store, "bench", 100, 8)
        .await
        .expect("writes");
    assert!(rate > 0.0, "{rate}");
    assert_eq!(list_blobs(&client, port, &container).await.len(), 100);
}

// --- Whole runs, through the engine -----------------------------------------------------------

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;
use twinroute::config::{self, Overrides, Settings};
use twinroute::deadletter::writer::WriterSettings;
use twinroute::engine::{self, RunOptions};
use twinroute::generator::Generator;

/// An endpoint that answers 400 to everything, dead-lettering into `dead_letter_secret`.
fn refusing_endpoint(dead_letter_secret: &str, count: u64, rate: f64) -> Settings {
    refusing_endpoint_retaining(dead_letter_secret, count, rate, 4.0)
}

/// The same, retrying transient dead-letter failures for `retention_hours`.
fn refusing_endpoint_retaining(
    dead_letter_secret: &str,
    count: u64,
    rate: f64,
    retention_hours: f64,
) -> Settings {
    let config = serde_json::json!({
        "version": 1,
        "endpoints": { "hub-dl": {
            "properties": { "endpointType": "EventHub", "deadLetterSecret": dead_letter_secret },
            "delivery": { "deadLetterRetentionHours": retention_hours },
            "simulate": { "failures": [ { "status": 400, "probability": 1.0 } ] }
        } },
        "routes": { "all": { "endpointName": "hub-dl", "filter": "true" } },
        "workload": { "seed": 11, "twins": 50, "count": count, "startTime": "2026-05-05T05:59:59Z",
                      "rate": { "shape": "constant", "eventsPerSecond": rate } }
    });
    config::parse(&config.to_string(), "azurite-run", &Overrides::default()).unwrap()
}

/// The bytes of every event the settings generate, by id.
fn event_bytes(settings: &Settings) -> HashMap<String, Vec<u8>> {
    event_bytes_first(settings, usize::MAX)
}

/// The bytes of the first `count` events the settings generate, by id.
fn event_bytes_first(settings: &Settings, count: usize) -> HashMap<String, Vec<u8>> {
    let start = settings.workload.start_time.unwrap();
    Generator::new(&settings.workload, &settings.host_name, start)
        .take(count)
        .map(|s| {
            let event = twinroute::event::Serialized::new(s.event);
            (event.event.id.to_string(), event.json().to_vec())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_dead_letters_every_event_into_azurite() {
    let Some(port) = azurite_port() else { return };
    let client = client();
    let container = unique_container("run");
    create_container(&client, port, &container).await;
    let settings = refusing_endpoint(
        &container_sas_uri(port, &container, "cw", FAR_EXPIRY),
        120,
        400.0,
    );
    let expected = event_bytes(&settings);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.ndjson");
    let options = RunOptions {
        ledger: Some(ledger.clone()),
        spill_folder: dir.path().join("spill"),
        ..RunOptions::default()
    };
    let report = engine::run(settings, options, CancellationToken::new())
        .await
        .unwrap();
    assert!(report.balanced);
    let endpoint = &report.endpoints["hub-dl"];
    assert_eq!(
        (endpoint.dead_lettered, endpoint.dead_letter_spilled),
        (120, 0)
    );
    let location = endpoint.dead_letter_location.as_deref().unwrap();
    assert!(
        location.ends_with("?***"),
        "the SAS is masked in the report: {location}"
    );

    let mut names = list_blobs(&client, port, &container).await;
    names.sort();
    assert_eq!(names.len(), 120);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for line in &lines {
        let id = line["eventId"].as_str().unwrap();
        let final_at =
            chrono::DateTime::parse_from_rfc3339(line["finalAt"].as_str().unwrap()).unwrap();
        let path = format!("hub-dl/{}/{id}.json", final_at.format("%Y/%m/%d/%H"));
        assert!(names.binary_search(&path).is_ok(), "no blob {path}");
        let blob = get_blob(&client, port, &container, &path).await;
        assert_eq!(blob.content_type, "application/json");
        assert_eq!(
            &blob.body[..],
            &expected[id][..],
            "{path}: the body is the event's bytes"
        );
        assert_eq!(blob.metadata["deadletterreason"], "NonRetriableStatus");
        assert_eq!(blob.metadata["deliveryattempts"], "1");
        assert_eq!(blob.metadata["lastdeliveryoutcome"], "BadRequest");
        assert_eq!(blob.metadata["lasthttpstatuscode"], "400");
        assert!(
            blob.metadata.contains_key("publishtime")
                && blob.metadata.contains_key("lastdeliveryattempttime")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_stopped_mid_run_loses_nothing() {
    if azurite_port().is_none() {
        return;
    }
    let mut azurite = OwnAzurite::start().await;
    let port = azurite.port();
    let client = client();
    let container = unique_container("outage");
    create_container(&client, port, &container).await;
    // deadLetterRetentionHours of about a second, so the test sees both outcomes: writes failing
    // for longer are spilled, the rest are written once Azurite is back.
    let uri = container_sas_uri(port, &container, "cw", FAR_EXPIRY);
    let settings = refusing_endpoint_retaining(&uri, 1_000_000, 200.0, 1.0 / 3600.0);
    let expected = event_bytes_first(&settings, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let options = RunOptions {
        spill_folder: spill.clone(),
        drain_timeout: Duration::from_secs(30),
        writer: WriterSettings {
            first_backoff: Duration::from_millis(100),
            ..WriterSettings::default()
        },
        ..RunOptions::default()
    };
    // Events keep coming while Azurite stops (however long its shutdown takes), stays down for
    // 1.5 s and comes back; then generation stops and the pending writes drain.
    let stop = CancellationToken::new();
    let run = tokio::spawn(engine::run(settings, options, stop.clone()));
    tokio::time::sleep(Duration::from_millis(800)).await;
    tokio::task::block_in_place(|| azurite.stop_gracefully());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    azurite.restart().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.cancel();
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();

    assert!(report.balanced, "{}", report.summary());
    let endpoint = &report.endpoints["hub-dl"];
    let routed = endpoint.routed;
    assert_eq!(
        (endpoint.dead_lettered, endpoint.in_flight),
        (routed, 0),
        "{}",
        report.summary()
    );
    let stored = list_blobs(&client, port, &container).await;
    let spilled: Vec<String> = support::walk(&spill);
    assert_eq!(spilled.len() as u64, endpoint.dead_letter_spilled);
    assert!(
        !stored.is_empty() && !spilled.is_empty(),
        "stored {}, spilled {}",
        stored.len(),
        spilled.len()
    );
    let mut ids: Vec<String> = stored
        .iter()
        .chain(&spilled)
        .map(|p| {
            p.rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len() as u64,
        routed,
        "each event once, in the container or the spill folder"
    );
    for path in &spilled {
        let id = path.rsplit('/').next().unwrap().trim_end_matches(".json");
        assert_eq!(
            std::fs::read(spill.join(path)).unwrap(),
            expected[id],
            "{path}"
        );
        assert!(
            path.starts_with("hub-dl/2026/05/0"),
            "same layout in the spill folder: {path}"
        );
    }
}

#[tokio::test]
async fn a_sas_without_write_or_expired_is_refused_naming_the_endpoint() {
    let Some(port) = azurite_port() else { return };
    let container = unique_container("refuse");
    for (permissions, expiry, why) in [("rl", FAR_EXPIRY, "write"), ("cw", PAST_EXPIRY, "expired")]
    {
        let uri = container_sas_uri(port, &container, permissions, expiry);
        // The instance file is refused (as `validate` refuses it), before any run.
        let config = serde_json::json!({
            "version": 1,
            "endpoints": { "hub-dl": {
                "properties": { "endpointType": "EventHub", "deadLetterSecret": uri },
                "simulate": {}
            } },
            "routes": { "all": { "endpointName": "hub-dl", "filter": "true" } },
        });
        let error =
            config::parse(&config.to_string(), "azurite-run", &Overrides::default()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("azurite-run: endpoints.hub-dl.properties.deadLetterSecret: ")
                && message.contains(why),
            "{message}"
        );
        assert_no_signature(&message);
    }
}
