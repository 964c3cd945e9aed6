//! Support for the AMQP tests and benchmark: the in-repo AMQP 1.0 test broker ([`broker`]), the
//! Qpid Proton test peer ([`proton`]), both behind [`peers::TestPeer`], events from twinroute's
//! generator, attempts with a deadline, and the documented AMQP shapes.
#![allow(dead_code)]

pub mod broker;
pub mod peers;
pub mod proton;

use std::sync::Arc;
use std::time::Duration;

use broker::ReceivedMessage;
use serde_json::Value;
use twinroute::delivery::classify::AttemptResult;
use twinroute::delivery::routed::Delivery;
use twinroute::event::{Event, EventType, Serialized};
use twinroute::sink::{Answer, Attempt, Sink};

/// No attempt in a test may take longer than this.
pub const ATTEMPT_DEADLINE: Duration = Duration::from_secs(30);

/// `count` generated events over `twins` twins.
pub fn events(seed: u64, count: u64, twins: u32) -> Vec<Arc<Serialized>> {
    twinroute::generator::sample_events(seed, twins, count)
        .into_iter()
        .map(|event| Arc::new(Serialized::new(event)))
        .collect()
}

/// Deliveries of `events`.
pub fn deliveries(events: &[Arc<Serialized>]) -> Vec<Delivery> {
    events
        .iter()
        .map(|e| Delivery::new(e.clone(), 0, Duration::ZERO))
        .collect()
}

/// Runs one attempt to its answer, failing the test (not hanging it) past the deadline.
pub async fn attempt(sink: &mut dyn Sink, batch: &[Delivery]) -> Answer {
    match sink.attempt(batch, Duration::ZERO) {
        Attempt::Now(answer) | Attempt::After(_, answer) => answer,
        Attempt::Pending(future) => tokio::time::timeout(ATTEMPT_DEADLINE, future)
            .await
            .expect("the attempt answered within the deadline"),
    }
}

/// `200`.
pub fn ok() -> AttemptResult {
    AttemptResult::status(200)
}

/// The documented example of `kind`, if there is one (`fixtures/events/*.amqp.json`).
pub fn documented(kind: EventType) -> Option<Value> {
    let name = match kind {
        EventType::TwinCreate => "twin-create",
        EventType::TwinUpdate => "twin-update",
        EventType::RelationshipUpdate => "relationship-update",
        EventType::Telemetry => "telemetry",
        _ => return None,
    };
    let path = format!(
        "{}/fixtures/events/{name}.amqp.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Some(serde_json::from_str(&text).expect("the fixture is JSON"))
}

/// Checks one received message against its event and, where there is one, the documented
/// example: the same application-property names in the same order, values from the event, the
/// data JSON as the body, `datacontenttype` as the content type.
pub fn assert_documented_shape(received: &ReceivedMessage, event: &Event) {
    let names: Vec<&str> = received
        .application_properties
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    if let Some(example) = documented(event.kind) {
        let documented: Vec<&str> = example["applicationProperties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, documented, "{:?}", event.kind);
        // The body has the documented example's top-level shape (an object).
        assert!(example["body"].is_object());
    }
    assert!(names.iter().all(|n| n.starts_with("cloudEvents:")));
    let value = |name: &str| {
        received
            .application_properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("cloudEvents:id"), Some(event.id.as_str()));
    assert_eq!(value("cloudEvents:source"), Some(&*event.source));
    assert_eq!(value("cloudEvents:specversion"), Some("1.0"));
    assert_eq!(value("cloudEvents:type"), Some(event.kind.as_str()));
    assert_eq!(
        value("cloudEvents:time"),
        event.time.as_ref().map(|t| t.as_str())
    );
    assert_eq!(value("cloudEvents:subject"), event.subject.as_deref());
    assert_eq!(value("cloudEvents:dataschema"), event.dataschema);
    assert_eq!(
        value("cloudEvents:traceparent"),
        Some(event.traceparent.as_str())
    );
    assert_eq!(
        received.content_type.as_deref(),
        Some(event.datacontenttype)
    );
    assert_eq!(received.message_id.as_deref(), Some(event.id.as_str()));
    let body: Value = serde_json::from_slice(&received.body).expect("the body is JSON");
    assert_eq!(body, serde_json::to_value(&event.data).unwrap());
}
