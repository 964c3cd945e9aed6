//! The AMQP protocol binding of CloudEvents in binary mode, as ADT sends to Event Hubs and
//! Service Bus (adt-facts §1.4, `fixtures/events/*.amqp.json`): the attributes are AMQP
//! application-properties prefixed `cloudEvents:`, the event's `data` JSON is the body (one data
//! section), and `datacontenttype` is the AMQP `content-type` property. The AMQP `message-id` is
//! the CloudEvents `id`, so a receiver can spot a retried duplicate.

use crate::event::{Event, SPEC_VERSION};
use azure_core_amqp::message::{AmqpApplicationProperties, AmqpMessageProperties};
use azure_core_amqp::{AmqpMessage, AmqpSymbol};

/// The prefix of every CloudEvents attribute in AMQP application-properties.
pub const PREFIX: &str = "cloudEvents:";

/// The `cloudEvents:`-prefixed application-properties of `event`, in the documented order:
/// `id`, `source`, `specversion`, `type`, then `time`, `subject` when set, `dataschema`
/// (telemetry), `traceparent`.
pub fn application_properties(event: &Event) -> Vec<(&'static str, String)> {
    let mut properties = vec![
        ("cloudEvents:id", event.id.as_str().to_owned()),
        ("cloudEvents:source", event.source.to_string()),
        ("cloudEvents:specversion", SPEC_VERSION.to_owned()),
        ("cloudEvents:type", event.kind.as_str().to_owned()),
    ];
    if let Some(time) = &event.time {
        properties.push(("cloudEvents:time", time.as_str().to_owned()));
    }
    if let Some(subject) = &event.subject {
        properties.push(("cloudEvents:subject", subject.to_string()));
    }
    if let Some(schema) = event.dataschema {
        properties.push(("cloudEvents:dataschema", schema.to_owned()));
    }
    properties.push((
        "cloudEvents:traceparent",
        event.traceparent.as_str().to_owned(),
    ));
    properties
}

/// The body: the event's `data` as JSON.
pub fn body(event: &Event) -> Vec<u8> {
    serde_json::to_vec(&event.data).unwrap_or_default()
}

/// `event` as an AMQP message. (Not Event Hubs' `EventData`: its properties are a `HashMap`,
/// which would lose the documented order of the application-properties.)
pub fn amqp_message(event: &Event) -> AmqpMessage {
    let mut properties = AmqpApplicationProperties::new();
    for (name, value) in application_properties(event) {
        properties.insert(name.to_owned(), value);
    }
    AmqpMessage::builder()
        .with_body(body(event))
        .with_application_properties(properties)
        .with_properties(AmqpMessageProperties {
            message_id: Some(event.id.as_str().to_owned().into()),
            content_type: Some(AmqpSymbol::from(event.datacontenttype)),
            ..Default::default()
        })
        .build()
}
