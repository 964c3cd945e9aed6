//! Real HTTP delivery: Event Grid topics and plain CloudEvents webhooks, over the run's one shared
//! [`HttpClient`] (hyper-util's pooled client: rustls, keep-alive, HTTP/2 where the server offers
//! it; [`client`] says why not reqwest). The worker applies the per-attempt timeout and
//! classifies the answer; a sink only builds and sends.

pub mod client;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::ser::SerializeStruct;

use super::{Answer, Attempt, Sink};
use crate::config::{BatchLimits, InputSchema, WebhookMode};
use crate::delivery::classify::{AttemptResult, EndpointClass};
use crate::delivery::routed::Delivery;
use crate::event::Event;
use crate::secret::Secret;

pub use client::{HttpClient, Target};

/// Event Grid refuses an event larger than this (1 MB); twinroute refuses it locally as 413.
pub const EVENT_GRID_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// `api-version` added to a `TopicEndpoint` that has none.
pub const EVENT_GRID_API_VERSION: &str = "2018-01-01";
/// Event Grid's `eventTime` for events without `time` (telemetry), as ADT's examples show.
const NO_TIME: &str = "0001-01-01T00:00:00Z";

/// A secret as a header value, marked sensitive (hyper's `Debug` then prints no value); `None`
/// when it cannot be one (a control character), so it is never sent half-way.
fn secret_header(secret: &Secret) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(secret.expose()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `[e1,e2,…]` from the events' shared bytes.
fn json_array<'a>(items: impl Iterator<Item = &'a [u8]>) -> Bytes {
    let mut body = BytesMut::with_capacity(1024);
    body.put_u8(b'[');
    for (index, item) in items.enumerate() {
        if index > 0 {
            body.put_u8(b',');
        }
        body.put_slice(item);
    }
    body.put_u8(b']');
    body.freeze()
}

/// The header an Event Grid topic takes its access key in.
const AEG_SAS_KEY: HeaderName = HeaderName::from_static("aeg-sas-key");

/// An Event Grid topic (`endpointType: EventGrid`).
pub struct EventGridSink {
    client: HttpClient,
    /// Parsed once: building a request from a string parses it (and runs IDNA) every time.
    url: Arc<Target>,
    /// `aeg-sas-key` values, made once (an attempt clones no string). A key that cannot be a
    /// header value (configuration refuses none today) is sent as an empty one, which the topic
    /// answers 401, so the other key is still tried.
    keys: Arc<[HeaderValue]>,
    /// Index in `keys` of the key that last worked.
    preferred: Arc<AtomicUsize>,
    schema: InputSchema,
    limits: BatchLimits,
    topic: Arc<str>,
}

impl EventGridSink {
    /// A sink posting to `topic_endpoint` with `keys` (`accessKey1`, then `accessKey2`).
    pub fn new(
        client: HttpClient,
        topic_endpoint: &str,
        keys: Vec<Secret>,
        schema: InputSchema,
        limits: BatchLimits,
        topic: &str,
    ) -> Self {
        let url = if topic_endpoint.contains("api-version=") {
            topic_endpoint.to_owned()
        } else if topic_endpoint.contains('?') {
            format!("{topic_endpoint}&api-version={EVENT_GRID_API_VERSION}")
        } else {
            format!("{topic_endpoint}?api-version={EVENT_GRID_API_VERSION}")
        };
        EventGridSink {
            client,
            url: Arc::new(Target::parse(&url)),
            keys: keys
                .iter()
                .map(|key| secret_header(key).unwrap_or(HeaderValue::from_static("")))
                .collect(),
            preferred: Arc::new(AtomicUsize::new(0)),
            schema,
            limits,
            topic: Arc::from(topic),
        }
    }

    /// The request body and its content type for `batch`.
    pub fn body(&self, batch: &[Delivery]) -> (Bytes, &'static str) {
        match self.schema {
            InputSchema::CloudEvents => (
                json_array(batch.iter().map(|d| &d.event.json()[..])),
                "application/cloudevents-batch+json; charset=utf-8",
            ),
            InputSchema::EventGrid => {
                let events: Vec<Vec<u8>> = batch
                    .iter()
                    .map(|d| event_grid_json(&d.event.event, &self.topic))
                    .collect();
                (
                    json_array(events.iter().map(Vec::as_slice)),
                    "application/json",
                )
            }
        }
    }
}

impl Sink for EventGridSink {
    fn max_batch(&self) -> usize {
        self.limits.max_events
    }

    fn preferred_batch_bytes(&self) -> Option<usize> {
        Some(self.limits.preferred_bytes)
    }

    fn attempt(&mut self, batch: &[Delivery], _now: Duration) -> Attempt {
        if let [only] = batch
            && only.event.json().len() > EVENT_GRID_MAX_EVENT_BYTES
        {
            return Attempt::Now(Answer {
                result: AttemptResult::status(413),
                received: false,
            });
        }
        let (body, content_type) = self.body(batch);
        let (client, url, keys, preferred) = (
            self.client.clone(),
            self.url.clone(),
            self.keys.clone(),
            self.preferred.clone(),
        );
        Attempt::Pending(Box::pin(async move {
            let first = preferred.load(Relaxed).min(keys.len().saturating_sub(1));
            let mut answer = Answer::observed(AttemptResult::status(401));
            // The preferred key first; on 401 the other key, as ADT uses accessKey2.
            for index in (first..keys.len()).chain(0..first) {
                let mut headers = HeaderMap::with_capacity(2);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                headers.insert(AEG_SAS_KEY, keys[index].clone());
                answer = client.post(&url, headers, body.clone()).await;
                if !matches!(answer.result, AttemptResult::Status { status: 401, .. }) {
                    preferred.store(index, Relaxed);
                    break;
                }
            }
            answer
        }))
    }
}

/// `event` in Event Grid's schema, as a topic with `inputSchema: EventGridSchema` is sent it (one
/// element of the request's array) and as its dead-letter holds it.
pub fn event_grid_json(event: &Event, topic: &str) -> Vec<u8> {
    serde_json::to_vec(&EventGridEvent { event, topic }).unwrap_or_default()
}

/// An event in Event Grid's schema (adt-facts §1.4): `type` → `eventType`, `time` →
/// `eventTime`, `source` dropped, `data` wrapped with its content type and trace context.
struct EventGridEvent<'a> {
    event: &'a Event,
    topic: &'a str,
}

impl Serialize for EventGridEvent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event;
        let mut state = serializer.serialize_struct("EventGridEvent", 8)?;
        state.serialize_field("id", event.id.as_str())?;
        // Event Grid requires a subject; ADT's telemetry example carries the twin id there.
        state.serialize_field(
            "subject",
            event.subject.as_deref().unwrap_or(&event.twin_id),
        )?;
        state.serialize_field("data", &EventGridData(event))?;
        state.serialize_field("eventType", event.kind.as_str())?;
        state.serialize_field("dataVersion", "1.0")?;
        state.serialize_field("metadataVersion", "1")?;
        state.serialize_field("eventTime", event.time.as_deref().unwrap_or(NO_TIME))?;
        state.serialize_field("topic", self.topic)?;
        state.end()
    }
}

struct EventGridData<'a>(&'a Event);

impl Serialize for EventGridData<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut state = serializer.serialize_struct("EventGridData", 4)?;
        state.serialize_field("data", &event.data)?;
        if let Some(schema) = event.dataschema {
            state.serialize_field("dataschema", schema)?;
        }
        state.serialize_field("contenttype", event.datacontenttype)?;
        state.serialize_field("traceparent", event.traceparent.as_str())?;
        state.end()
    }
}

/// A plain HTTP consumer of CloudEvents (`endpointType: Webhook`, a twinroute extension).
pub struct WebhookSink {
    client: HttpClient,
    url: Arc<Target>,
    mode: WebhookMode,
    headers: HeaderMap,
    limits: BatchLimits,
}

impl WebhookSink {
    /// A sink posting to `url` in `mode`, with static `headers` (values may be secrets).
    pub fn new(
        client: HttpClient,
        url: &str,
        mode: WebhookMode,
        headers: &[(String, Secret)],
        limits: BatchLimits,
    ) -> Self {
        let headers = headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    secret_header(value)?,
                ))
            })
            .collect();
        WebhookSink {
            client,
            url: Arc::new(Target::parse(url)),
            mode,
            headers,
            limits,
        }
    }

    /// The request for `batch`: headers and body.
    pub fn request(&self, batch: &[Delivery]) -> (HeaderMap, Bytes) {
        let mut headers = self.headers.clone();
        let value =
            |text: &str| HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""));
        match self.mode {
            WebhookMode::Batch => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/cloudevents-batch+json; charset=utf-8"),
                );
                (
                    headers,
                    json_array(batch.iter().map(|d| &d.event.json()[..])),
                )
            }
            WebhookMode::Structured => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/cloudevents+json; charset=utf-8"),
                );
                (
                    headers,
                    batch
                        .first()
                        .map(|d| d.event.json().clone())
                        .unwrap_or_default(),
                )
            }
            WebhookMode::Binary => {
                let Some(delivery) = batch.first() else {
                    return (headers, Bytes::new());
                };
                let event = &delivery.event.event;
                headers.insert(CONTENT_TYPE, value(event.datacontenttype));
                headers.insert(
                    "ce-specversion",
                    HeaderValue::from_static(crate::event::SPEC_VERSION),
                );
                headers.insert("ce-id", value(&event.id));
                headers.insert("ce-type", value(event.kind.as_str()));
                headers.insert("ce-source", value(&event.source));
                if let Some(subject) = &event.subject {
                    headers.insert("ce-subject", value(subject));
                }
                if let Some(time) = &event.time {
                    headers.insert("ce-time", value(time));
                }
                if let Some(schema) = event.dataschema {
                    headers.insert("ce-dataschema", value(schema));
                }
                // The extension as a CloudEvents header, and as the W3C header tracing reads.
                headers.insert("ce-traceparent", value(&event.traceparent));
                headers.insert("traceparent", value(&event.traceparent));
                (
                    headers,
                    Bytes::from(serde_json::to_vec(&event.data).unwrap_or_default()),
                )
            }
        }
    }
}

impl Sink for WebhookSink {
    fn class(&self) -> EndpointClass {
        EndpointClass::Webhook
    }

    fn max_batch(&self) -> usize {
        match self.mode {
            WebhookMode::Batch => self.limits.max_events,
            WebhookMode::Binary | WebhookMode::Structured => 1,
        }
    }

    fn preferred_batch_bytes(&self) -> Option<usize> {
        (self.mode == WebhookMode::Batch).then_some(self.limits.preferred_bytes)
    }

    fn attempt(&mut self, batch: &[Delivery], _now: Duration) -> Attempt {
        let (headers, body) = self.request(batch);
        let (client, url) = (self.client.clone(), Arc::clone(&self.url));
        Attempt::Pending(Box::pin(
            async move { client.post(&url, headers, body).await },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::event::{EventType, Serialized};
    use crate::generator::{
        DEFAULT_MIX, DEFAULT_START_TIME, Generator, RateShape, WorkloadSettings,
    };

    fn events() -> Vec<Event> {
        let settings = WorkloadSettings {
            seed: 8,
            twins: 100,
            mix: DEFAULT_MIX,
            rate: RateShape::Constant {
                events_per_second: 100.0,
            },
            count: Some(3000),
            duration: None,
            start_time: None,
        };
        Generator::new(
            &settings,
            "contoso.api.wus2.digitaltwins.azure.net",
            DEFAULT_START_TIME,
        )
        .map(|s| s.event)
        .collect()
    }

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/events")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Member names in order, and each value's JSON type, recursively (the data's own members,
    /// which depend on the model, are left out).
    fn skeleton(value: &Value, depth: usize) -> Value {
        match value {
            Value::Object(map) if depth < 2 => Value::Array(
                map.iter()
                    .map(|(k, v)| {
                        Value::String(format!(
                            "{k}:{}",
                            if k == "data" && depth == 1 {
                                "object".into()
                            } else {
                                skeleton(v, depth + 1).to_string()
                            }
                        ))
                    })
                    .collect(),
            ),
            Value::Object(_) => "object".into(),
            Value::String(_) => "string".into(),
            Value::Number(_) => "number".into(),
            Value::Bool(_) => "bool".into(),
            Value::Array(_) => "array".into(),
            Value::Null => "null".into(),
        }
    }

    #[test]
    fn event_grid_schema_matches_adts_documented_examples() {
        let events = events();
        let topic = "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.EventGrid/topics/<topic-name>";
        for (kind, name) in [
            (EventType::TwinCreate, "twin-create.eventgrid.json"),
            (EventType::TwinUpdate, "twin-update.eventgrid.json"),
            (
                EventType::RelationshipUpdate,
                "relationship-update.eventgrid.json",
            ),
            (EventType::Telemetry, "telemetry.eventgrid.json"),
        ] {
            let event = events.iter().find(|e| e.kind == kind).unwrap();
            let ours: Value = serde_json::to_value(EventGridEvent { event, topic }).unwrap();
            let documented = fixture(name);
            assert_eq!(skeleton(&ours, 0), skeleton(&documented, 0), "{name}");
            assert_eq!(
                ours["data"]["data"],
                serde_json::to_value(&event.data).unwrap()
            );
            assert_eq!(ours["eventType"], kind.as_str());
            assert_eq!(ours["topic"], topic);
            assert!(ours.get("source").is_none(), "source is dropped");
        }
        let telemetry = events
            .iter()
            .find(|e| e.kind == EventType::Telemetry)
            .unwrap();
        let ours = serde_json::to_value(EventGridEvent {
            event: telemetry,
            topic,
        })
        .unwrap();
        assert_eq!(ours["eventTime"], "0001-01-01T00:00:00Z");
        assert_eq!(ours["subject"], &*telemetry.twin_id);
    }

    #[test]
    fn an_event_over_one_megabyte_is_refused_locally_as_413() {
        let mut event = events()
            .into_iter()
            .find(|e| e.kind == EventType::Telemetry)
            .unwrap();
        let big = "x".repeat(EVENT_GRID_MAX_EVENT_BYTES);
        event.data = crate::event::EventData::Telemetry(vec![(
            "blob",
            crate::event::PropValue::Str(Arc::from(big)),
        )]);
        let delivery = Delivery::new(Arc::new(Serialized::new(event)), 0, Duration::ZERO);
        let mut sink = EventGridSink::new(
            HttpClient::new(),
            "http://127.0.0.1:9/api/events",
            vec![Secret::new("k")],
            InputSchema::CloudEvents,
            BatchLimits::default(),
            "t",
        );
        match sink.attempt(&[delivery], Duration::ZERO) {
            Attempt::Now(answer) => assert_eq!(answer.result, AttemptResult::status(413)),
            _ => panic!("an oversized event is refused without a request"),
        }
    }

    #[test]
    fn topic_endpoint_gets_the_api_version_when_it_has_none() {
        let sink = |url: &str| {
            EventGridSink::new(
                HttpClient::new(),
                url,
                vec![],
                InputSchema::CloudEvents,
                BatchLimits::default(),
                "t",
            )
            .url
            .to_string()
        };
        assert_eq!(
            sink("https://t.westus2-1.eventgrid.azure.net/api/events"),
            "https://t.westus2-1.eventgrid.azure.net/api/events?api-version=2018-01-01"
        );
        assert_eq!(
            sink("https://t/api/events?api-version=2020-06-01"),
            "https://t/api/events?api-version=2020-06-01"
        );
    }
}
