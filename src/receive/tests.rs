//! The receiver over real HTTP on 127.0.0.1: every body form, every rejection, every knob.
//! Each test starts its own receiver on port 0 and bounds every request with a timeout.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

use super::*;

/// Upper bound on any one request or socket read in these tests.
const DEADLINE: Duration = Duration::from_secs(10);

const STRUCTURED: &str = "application/cloudevents+json; charset=utf-8";
const BATCH: &str = "application/cloudevents-batch+json; charset=utf-8";
const JSON: &str = "application/json";

async fn start(settings: ReceiveSettings) -> RunningReceiver {
    Receiver::start(ReceiveSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..settings
    })
    .await
    .unwrap()
}

fn client() -> Client {
    Client::builder().timeout(DEADLINE).build().unwrap()
}

fn url(receiver: &RunningReceiver, path: &str) -> String {
    format!("http://{}{path}", receiver.addr())
}

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

async fn post(receiver: &RunningReceiver, content_type: &str, body: String) -> reqwest::Response {
    client()
        .post(url(receiver, "/api/events"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A Twin.Update CloudEvent for `twin` at `time` (RFC 3339), as structured JSON.
fn twin_update(id: &str, twin: &str, time: &str) -> String {
    json!({
        "specversion": "1.0",
        "id": id,
        "type": "Microsoft.DigitalTwins.Twin.Update",
        "source": "adt.api.wus2.digitaltwins.azure.net",
        "subject": twin,
        "time": time,
        "datacontenttype": "application/json",
        "data": {"modelId": "dtmi:example:Room;1", "patch": []}
    })
    .to_string()
}

async fn get_stats_json(receiver: &RunningReceiver) -> Value {
    let response = client().get(url(receiver, "/stats")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn all_four_body_forms_are_accepted_and_counted_by_type() {
    let receiver = start(ReceiveSettings::default()).await;

    let structured = post(
        &receiver,
        STRUCTURED,
        fixture("twin-create.cloudevent.json"),
    )
    .await;
    assert_eq!(structured.status(), StatusCode::OK);

    // Binary mode: the attributes of the Twin.Update example as ce-* headers, data as body.
    let update = fixture_json("twin-update.cloudevent.json");
    let mut binary = client()
        .post(url(&receiver, "/"))
        .header("content-type", JSON)
        .body(update["data"].to_string());
    for attribute in [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "traceparent",
    ] {
        binary = binary.header(
            format!("ce-{attribute}"),
            update[attribute].as_str().unwrap(),
        );
    }
    assert_eq!(binary.send().await.unwrap().status(), StatusCode::OK);

    let batch = format!(
        "[{},{}]",
        fixture("relationship-update.cloudevent.json"),
        fixture("telemetry.cloudevent.json")
    );
    assert_eq!(post(&receiver, BATCH, batch).await.status(), StatusCode::OK);

    let event_grid = format!(
        "[{},{},{},{}]",
        fixture("twin-create.eventgrid.json"),
        fixture("twin-update.eventgrid.json"),
        fixture("relationship-update.eventgrid.json"),
        fixture("telemetry.eventgrid.json")
    );
    assert_eq!(
        post(&receiver, JSON, event_grid).await.status(),
        StatusCode::OK
    );

    let stats = receiver.shutdown().await;
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.events_received, 8);
    // Event Grid events are keyed by topic + id, CloudEvents by source + id: no overlap.
    assert_eq!(stats.unique_events, 8);
    assert_eq!(stats.duplicates, 0);
    let by_type: Vec<(&str, u64)> = stats
        .by_type
        .iter()
        .map(|(ty, count)| (ty.as_str(), *count))
        .collect();
    assert_eq!(
        by_type,
        [
            ("Microsoft.DigitalTwins.Relationship.Update", 2),
            ("Microsoft.DigitalTwins.Twin.Create", 2),
            ("Microsoft.DigitalTwins.Twin.Update", 2),
            ("microsoft.iot.telemetry", 2),
        ]
    );
    // All about twin example-twin1: the Event Grid copies of Twin.Create (…52.67) and
    // Twin.Update (…52.98) arrive after the CloudEvents Relationship.Update (…53.20).
    assert_eq!(stats.order_inversions, 2);
    assert!(stats.rejected.is_empty());
    // The docs' examples are from 2021: years of end-to-end latency, max kept exactly.
    assert!(stats.latency_ms.max.unwrap() > 1e10);
}

#[tokio::test]
async fn invalid_events_get_400_with_a_reason_and_are_not_received() {
    let receiver = start(ReceiveSettings::default()).await;
    let missing_id = json!({"specversion": "1.0", "source": "s", "type": "t"}).to_string();
    let response = post(&receiver, STRUCTURED, missing_id).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let reason = response.text().await.unwrap();
    assert!(reason.contains("not a valid CloudEvent"), "{reason}");
    assert!(reason.contains("id"), "{reason}");

    let response = post(&receiver, STRUCTURED, "{not json".to_owned()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let bad_version = client()
        .post(url(&receiver, "/"))
        .header("ce-specversion", "2.0")
        .header("ce-id", "1")
        .header("ce-source", "s")
        .header("ce-type", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_version.status(), StatusCode::BAD_REQUEST);
    assert!(bad_version.text().await.unwrap().contains("binary mode"));

    let plain = post(&receiver, "text/plain", "hello".to_owned()).await;
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    assert!(
        plain
            .text()
            .await
            .unwrap()
            .contains("unsupported content type")
    );

    // One bad event in an Event Grid array rejects the whole request.
    let mut no_type = fixture_json("twin-update.eventgrid.json");
    no_type.as_object_mut().unwrap().remove("eventType");
    let array = format!("[{},{no_type}]", fixture("twin-create.eventgrid.json"));
    let response = post(&receiver, JSON, array).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.text().await.unwrap(),
        "Event Grid event 1: missing `eventType`"
    );

    let stats = receiver.shutdown().await;
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.events_received, 0);
    assert_eq!(stats.rejected.get(&400), Some(&5));
}

#[tokio::test]
async fn key_is_required_when_set() {
    let receiver = start(ReceiveSettings {
        key: Some("K".to_owned()),
        ..ReceiveSettings::default()
    })
    .await;
    let event = fixture("twin-create.cloudevent.json");
    let send = |key: Option<&'static str>| {
        let mut request = client()
            .post(url(&receiver, "/api/events"))
            .header("content-type", STRUCTURED)
            .body(event.clone());
        if let Some(key) = key {
            request = request.header(KEY_HEADER, key);
        }
        request.send()
    };
    assert_eq!(send(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(Some("wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send(Some("K")).await.unwrap().status(), StatusCode::OK);
    let stats = receiver.shutdown().await;
    assert_eq!(stats.rejected.get(&401), Some(&2));
    assert_eq!(stats.events_received, 1);
}

#[tokio::test]
async fn duplicates_are_counted_by_source_and_id() {
    let receiver = start(ReceiveSettings::default()).await;
    let event = fixture("twin-create.cloudevent.json");
    for _ in 0..3 {
        assert_eq!(
            post(&receiver, STRUCTURED, event.clone()).await.status(),
            StatusCode::OK
        );
    }
    // Same id, other source: a different event.
    let mut other_source = fixture_json("twin-create.cloudevent.json");
    other_source["source"] = json!("other-adt.api.wus2.digitaltwins.azure.net");
    assert_eq!(
        post(&receiver, STRUCTURED, other_source.to_string())
            .await
            .status(),
        StatusCode::OK
    );
    let stats = receiver.shutdown().await;
    assert_eq!(stats.events_received, 4);
    assert_eq!(stats.unique_events, 2);
    assert_eq!(stats.duplicates, 2);
    assert_eq!(stats.by_type["Microsoft.DigitalTwins.Twin.Create"], 4);
    assert_eq!(stats.order_inversions, 0);
}

#[tokio::test]
async fn order_inversions_are_counted_per_twin() {
    let receiver = start(ReceiveSettings::default()).await;
    let relationship = json!({
        "specversion": "1.0",
        "id": "rel-1",
        "type": "Microsoft.DigitalTwins.Relationship.Create",
        "source": "adt.api.wus2.digitaltwins.azure.net",
        "subject": "room1/relationships/contains-1",
        "time": "2024-01-01T00:00:00.5Z",
        "data": {}
    });
    let telemetry = json!({
        "specversion": "1.0",
        "id": "tel-1",
        "type": "microsoft.iot.telemetry",
        "source": "adt.api.wus2.digitaltwins.azure.net/digitaltwins/room1",
        "data": {"Temperature": 21}
    });
    let batch = format!(
        "[{},{},{relationship},{},{telemetry},{}]",
        twin_update("u2", "room1", "2024-01-01T00:00:02Z"),
        twin_update("u1", "room1", "2024-01-01T00:00:01Z"), // older than u2: inversion
        // relationship of room1 at 00:00.5, older than u2: inversion
        twin_update("v1", "room2", "2024-01-01T00:00:00Z"), // other twin: in order
        // telemetry has no time: not checked
        twin_update("u3", "room1", "2024-01-01T00:00:03Z"), // newer: in order
    );
    assert_eq!(post(&receiver, BATCH, batch).await.status(), StatusCode::OK);
    // A redelivery of u1 is a duplicate, not another inversion.
    let again = twin_update("u1", "room1", "2024-01-01T00:00:01Z");
    assert_eq!(
        post(&receiver, STRUCTURED, again).await.status(),
        StatusCode::OK
    );
    let stats = receiver.shutdown().await;
    assert_eq!(stats.events_received, 7);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.order_inversions, 2);
}

#[tokio::test]
async fn outage_answers_503_then_recovers() {
    let outage = Duration::from_millis(300);
    let receiver = start(ReceiveSettings {
        outage: Some((Duration::ZERO, outage)),
        ..ReceiveSettings::default()
    })
    .await;
    let started = Instant::now();
    let event = fixture("twin-create.cloudevent.json");
    let during = post(&receiver, STRUCTURED, event.clone()).await;
    assert!(started.elapsed() < outage, "first request came too late");
    assert_eq!(during.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep_until(started + outage + Duration::from_millis(50)).await;
    assert_eq!(
        post(&receiver, STRUCTURED, event).await.status(),
        StatusCode::OK
    );
    let stats = receiver.shutdown().await;
    assert_eq!(stats.rejected.get(&503), Some(&1));
    assert_eq!(stats.events_received, 1);
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after() {
    let receiver = start(ReceiveSettings {
        throttle: Some(2),
        ..ReceiveSettings::default()
    })
    .await;
    let event = fixture("twin-create.cloudevent.json");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = post(&receiver, STRUCTURED, event.clone()).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status());
    }
    // Five requests take far less than the 1-second window.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let stats = receiver.shutdown().await;
    assert_eq!(stats.rejected.get(&429), Some(&3));
    assert_eq!(stats.events_received, 2);
}

#[tokio::test]
async fn dropped_connection_is_a_connection_error_not_a_status() {
    let receiver = start(ReceiveSettings {
        drop_connection_rate: 1.0,
        ..ReceiveSettings::default()
    })
    .await;
    let error = client()
        .post(url(&receiver, "/api/events"))
        .header("content-type", STRUCTURED)
        .body(fixture("twin-create.cloudevent.json"))
        .send()
        .await
        .expect_err("a dropped connection must not produce a response");
    assert_eq!(error.status(), None);
    assert!(!error.is_timeout(), "{error:?}");

    // On the wire: the request goes out whole, and not one byte comes back before EOF/reset.
    let body = fixture("twin-create.cloudevent.json");
    let mut socket = tokio::net::TcpStream::connect(receiver.addr())
        .await
        .unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: {STRUCTURED}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = timeout(DEADLINE, socket.read_to_end(&mut answer))
        .await
        .expect("the server must close the connection");
    assert!(
        answer.is_empty(),
        "got bytes: {:?}",
        String::from_utf8_lossy(&answer)
    );
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    }

    let stats = receiver.shutdown().await;
    assert_eq!(stats.dropped_connections, 2);
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.events_received, 0);
    assert!(stats.rejected.is_empty());
}

#[tokio::test]
async fn fail_rate_one_answers_fail_status_after_validation() {
    let receiver = start(ReceiveSettings {
        fail_rate: 1.0,
        fail_status: 503,
        ..ReceiveSettings::default()
    })
    .await;
    let response = post(
        &receiver,
        STRUCTURED,
        fixture("twin-create.cloudevent.json"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // An invalid event is a 400 before the fail rate is applied.
    let invalid = post(&receiver, STRUCTURED, "{}".to_owned()).await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let stats = receiver.shutdown().await;
    assert_eq!(stats.rejected.get(&503), Some(&1));
    assert_eq!(stats.rejected.get(&400), Some(&1));
    assert_eq!(stats.events_received, 0);
}

#[tokio::test]
async fn latency_knob_delays_answers() {
    let receiver = start(ReceiveSettings {
        latency: Some((Duration::from_millis(40), Duration::from_millis(40))),
        ..ReceiveSettings::default()
    })
    .await;
    let sent = Instant::now();
    let response = post(
        &receiver,
        STRUCTURED,
        fixture("twin-create.cloudevent.json"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(sent.elapsed() >= Duration::from_millis(40));
    receiver.shutdown().await;
}

#[tokio::test]
async fn stats_json_has_exactly_the_documented_fields() {
    let receiver = start(ReceiveSettings::default()).await;
    let two_seconds_ago = wall_clock_now() - chrono::TimeDelta::seconds(2);
    let recent = twin_update("e1", "room1", &two_seconds_ago.to_rfc3339());
    assert_eq!(
        post(&receiver, STRUCTURED, recent).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&receiver, STRUCTURED, "{}".to_owned()).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Not an event request: answered 405, and counted like every other non-2xx answer.
    let get_root = client().get(url(&receiver, "/")).send().await.unwrap();
    assert_eq!(get_root.status(), StatusCode::METHOD_NOT_ALLOWED);

    let json = get_stats_json(&receiver).await;
    let keys: BTreeSet<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "requests",
        "eventsReceived",
        "uniqueEvents",
        "duplicates",
        "byType",
        "orderInversions",
        "rejected",
        "droppedConnections",
        "latencyMs",
    ]
    .into();
    assert_eq!(keys, expected);
    let latency_keys: BTreeSet<&str> = json["latencyMs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(latency_keys, ["max", "p50", "p99"].into());
    assert_eq!(json["requests"], 3);
    assert_eq!(json["rejected"], json!({"400": 1, "405": 1}));
    assert_eq!(
        json["byType"],
        json!({"Microsoft.DigitalTwins.Twin.Update": 1})
    );
    let p50 = json["latencyMs"]["p50"].as_f64().unwrap();
    assert!((2_000.0..7_000.0).contains(&p50), "p50 {p50}");

    let parsed: Stats = serde_json::from_value(json).unwrap();
    let stats = receiver.shutdown().await;
    assert_eq!(parsed, stats);
    assert!(stats.summary().contains("rejected 400"));
}

/// Issue 13: a 405 (wrong method) was answered but not counted in `rejected` or `requests`.
#[tokio::test]
async fn a_wrong_method_is_answered_405_and_counted_wherever_it_is_sent() {
    let receiver = start(ReceiveSettings::default()).await;
    let client = client();
    for (method, path) in [
        (reqwest::Method::GET, "/"),
        (reqwest::Method::PUT, "/api/events"),
        (reqwest::Method::DELETE, "/stats"),
        (reqwest::Method::PATCH, "/stats"),
    ] {
        let response = client
            .request(method.clone(), url(&receiver, path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], "POST", "{method} {path}");
    }
    // A POST to /stats is an event request like a POST to any other path.
    let post_stats = client
        .post(url(&receiver, "/stats"))
        .header("content-type", "application/cloudevents+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(post_stats.status(), StatusCode::BAD_REQUEST);
    // GET /stats itself is not counted.
    let json = get_stats_json(&receiver).await;
    assert_eq!(json["requests"], 5);
    assert_eq!(json["rejected"], json!({"400": 1, "405": 4}));
    let stats = receiver.shutdown().await;
    assert_eq!(stats.rejected.get(&405), Some(&4));
    assert!(stats.summary().contains("rejected 405"));
    // Nothing was accepted: the summary's `requests − rejected` no longer miscounts a 405.
    let summary = stats.summary();
    let accepted = summary
        .lines()
        .find(|line| line.trim_start().starts_with("accepted (2xx)"))
        .and_then(|line| line.split_whitespace().last());
    assert_eq!(accepted, Some("0"), "{summary}");
}

#[tokio::test]
async fn record_appends_accepted_events_as_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let receiver = start(ReceiveSettings {
        record: Some(path.clone()),
        ..ReceiveSettings::default()
    })
    .await;
    let ok = StatusCode::OK;
    assert_eq!(
        post(
            &receiver,
            STRUCTURED,
            fixture("twin-create.cloudevent.json")
        )
        .await
        .status(),
        ok
    );
    let binary = client()
        .post(url(&receiver, "/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "b1")
        .header("ce-source", "adt.example")
        .header("ce-type", "Microsoft.DigitalTwins.Twin.Delete")
        .header("ce-subject", "room9")
        .header("content-type", JSON)
        .body(r#"{"$dtId":"room9"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status(), ok);
    let event_grid = format!(
        "[{},{}]",
        fixture("twin-update.eventgrid.json"),
        fixture("telemetry.eventgrid.json")
    );
    assert_eq!(post(&receiver, JSON, event_grid).await.status(), ok);
    // Rejected: not recorded.
    assert_eq!(
        post(&receiver, STRUCTURED, "{}".to_owned()).await.status(),
        StatusCode::BAD_REQUEST
    );
    let stats = receiver.shutdown().await;
    assert_eq!(stats.events_received, 4);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], "6ccdb1cd-0dc3-450f-8730-ceccda8439be");
    assert_eq!(lines[0]["specversion"], "1.0");
    assert_eq!(lines[1]["data"], json!({"$dtId": "room9"}));
    assert_eq!(lines[2], fixture_json("twin-update.eventgrid.json"));
    assert_eq!(lines[3]["eventTime"], "0001-01-01T00:00:00Z");
}

#[tokio::test]
async fn serve_returns_final_stats_and_reports_bind_errors() {
    let stats = serve(
        ReceiveSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ReceiveSettings::default()
        },
        async {},
    )
    .await
    .unwrap();
    assert_eq!(stats.requests, 0);

    let taken = start(ReceiveSettings::default()).await;
    let error = serve(
        ReceiveSettings {
            listen: taken.addr(),
            ..ReceiveSettings::default()
        },
        async {},
    )
    .await
    .unwrap_err();
    assert!(matches!(error, ReceiveError::Bind { .. }), "{error}");

    let invalid = Receiver::start(ReceiveSettings {
        throttle: Some(0),
        ..ReceiveSettings::default()
    })
    .await;
    assert!(matches!(
        invalid,
        Err(ReceiveError::Settings(SettingsError::ZeroThrottle))
    ));
    taken.shutdown().await;
}
