//! Validated settings: the only configuration types the runtime accepts.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::delivery::{DEFAULT_DEAD_LETTER_RETENTION, DeliverySettings};
use super::simulate::FaultSettings;
use crate::filter::Filter;
use crate::generator::{RateShape, WorkloadSettings};
use crate::secret::{Secret, mask_connection_string, mask_uri, mask_url_query};

/// A validated instance file.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The instance host name: `source` of twin and relationship events.
    pub host_name: Arc<str>,
    /// Endpoints, in file order.
    pub endpoints: Vec<EndpointSettings>,
    /// Routes, in file order.
    pub routes: Vec<RouteSettings>,
    /// The workload.
    pub workload: WorkloadSettings,
    /// Where the seed came from (printed at start).
    pub seed_source: SeedSource,
    /// Whether ADT's endpoint and route limits were enforced.
    pub limits_enforced: bool,
}

/// Where the run's master seed came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// `workload.seed`.
    Config,
    /// `--seed`.
    Flag,
    /// Neither: drawn from the clock at start.
    Clock,
}

impl SeedSource {
    /// How the start banner names it.
    pub fn describe(self) -> &'static str {
        match self {
            SeedSource::Config => "from workload.seed",
            SeedSource::Flag => "from --seed",
            SeedSource::Clock => "chosen at start; pass --seed to repeat this run",
        }
    }
}

/// ARM's `endpointType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointType {
    /// An Event Grid topic.
    EventGrid,
    /// An Event Hub.
    EventHub,
    /// A Service Bus topic.
    ServiceBus,
    /// A plain CloudEvents HTTP consumer (twinroute extension).
    Webhook,
}

impl EndpointType {
    /// ARM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::EventGrid => "EventGrid",
            EndpointType::EventHub => "EventHub",
            EndpointType::ServiceBus => "ServiceBus",
            EndpointType::Webhook => "Webhook",
        }
    }
}

/// ARM's `authenticationType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthenticationType {
    /// Keys and connection strings.
    KeyBased,
    /// A managed identity.
    IdentityBased,
}

impl AuthenticationType {
    /// ARM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticationType::KeyBased => "KeyBased",
            AuthenticationType::IdentityBased => "IdentityBased",
        }
    }
}

/// The Event Grid topic's input schema, which decides the body ADT posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSchema {
    /// `CloudEventSchemaV1_0`.
    CloudEvents,
    /// `EventGridSchema`.
    EventGrid,
}

impl InputSchema {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InputSchema::CloudEvents => "CloudEventSchemaV1_0",
            InputSchema::EventGrid => "EventGridSchema",
        }
    }
}

/// How a webhook takes CloudEvents (the HTTP protocol binding's three modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    /// Attributes as `ce-*` headers, `data` as the body.
    Binary,
    /// One event per request, `application/cloudevents+json`.
    Structured,
    /// A JSON array of events, `application/cloudevents-batch+json`.
    Batch,
}

impl WebhookMode {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMode::Binary => "binary",
            WebhookMode::Structured => "structured",
            WebhookMode::Batch => "batch",
        }
    }
}

/// How to reach an endpoint. Fields are optional only for simulated endpoints.
#[derive(Clone, Debug)]
pub enum Connection {
    /// An Event Grid topic.
    EventGrid {
        /// `TopicEndpoint`.
        topic_endpoint: Option<String>,
        /// `accessKey1`.
        access_key1: Option<Secret>,
        /// `accessKey2`.
        access_key2: Option<Secret>,
        /// `inputSchema`.
        input_schema: InputSchema,
        /// `topicResourceId`.
        topic_resource_id: Option<String>,
    },
    /// A CloudEvents webhook.
    Webhook {
        /// `endpointUri`.
        uri: Option<String>,
        /// `mode`.
        mode: WebhookMode,
        /// `headers`, values secret.
        headers: Vec<(String, Secret)>,
    },
    /// An Event Hub or a Service Bus topic (AMQP).
    Amqp {
        /// `connectionStringPrimaryKey` / `primaryConnectionString`.
        primary: Option<Secret>,
        /// `connectionStringSecondaryKey` / `secondaryConnectionString`.
        secondary: Option<Secret>,
        /// `endpointUri` (`sb://…`), IdentityBased.
        endpoint_uri: Option<String>,
        /// `entityPath`, IdentityBased.
        entity_path: Option<String>,
    },
}

/// Where an endpoint's dead-letters go.
#[derive(Clone, Debug, PartialEq)]
pub enum DeadLetterLocation {
    /// A local folder standing in for the blob container (`file://` URI or a path).
    Folder(PathBuf),
    /// A blob container SAS URI (`deadLetterSecret`, KeyBased).
    BlobSas(Secret),
    /// A blob container URI reached with a managed identity (`deadLetterUri`, IdentityBased).
    BlobIdentity(String),
}

/// A validated endpoint.
#[derive(Clone, Debug)]
pub struct EndpointSettings {
    /// The endpoint's name (the key in `endpoints`).
    pub name: String,
    /// `endpointType`.
    pub endpoint_type: EndpointType,
    /// `authenticationType`.
    pub authentication: AuthenticationType,
    /// How to reach it.
    pub connection: Connection,
    /// Dead-letter location, if any.
    pub dead_letter: Option<DeadLetterLocation>,
    /// `identity`: the managed identity of an IdentityBased endpoint (`None`: system-assigned,
    /// or no identity given).
    pub user_assigned_identity: Option<String>,
    /// `delivery`, validated, defaults filled in.
    pub delivery: DeliverySettings,
    /// `simulate`: present, the endpoint is simulated in-process with these faults.
    pub simulate: Option<FaultSettings>,
    /// `delivery` and `simulate` as written, for `validate --show`.
    pub(crate) raw: (Option<Value>, Option<Value>),
}

/// A validated route.
#[derive(Clone, Debug)]
pub struct RouteSettings {
    /// The route id (the key in `routes`).
    pub id: String,
    /// The endpoint's name.
    pub endpoint_name: String,
    /// The endpoint's index in [`Settings::endpoints`].
    pub endpoint: usize,
    /// The filter, compiled.
    pub filter: Filter,
}

impl Settings {
    /// The configuration with defaults filled in and every secret masked (`validate --show`):
    /// keys and header values as `***`, connection strings' values, and every URI's userinfo and
    /// query values ([`mask_uri`]; a dead-letter SAS's whole query).
    pub fn normalized(&self) -> Value {
        let endpoints: Map<String, Value> = self
            .endpoints
            .iter()
            .map(|endpoint| (endpoint.name.clone(), endpoint.normalized()))
            .collect();
        let routes: Map<String, Value> = self
            .routes
            .iter()
            .map(|route| {
                (
                    route.id.clone(),
                    json!({ "endpointName": route.endpoint_name, "filter": route.filter.to_string() }),
                )
            })
            .collect();
        let workload = &self.workload;
        let mix: Map<String, Value> = crate::event::EventType::ALL
            .iter()
            .map(|kind| (kind.as_str().to_owned(), json!(workload.mix[kind.index()])))
            .collect();
        let mut workload_json = json!({
            "seed": workload.seed,
            "twins": workload.twins,
            "mix": mix,
            "rate": rate_json(&workload.rate),
        });
        if let Some(count) = workload.count {
            workload_json["count"] = json!(count);
        }
        if let Some(duration) = workload.duration {
            workload_json["durationSeconds"] = json!(duration.as_secs_f64());
        }
        if let Some(start) = workload.start_time {
            workload_json["startTime"] = json!(start.to_string());
        }
        json!({
            "version": 1,
            "instance": { "hostName": &*self.host_name },
            "endpoints": endpoints,
            "routes": routes,
            "workload": workload_json,
            "limits": { "enforce": self.limits_enforced },
        })
    }
}

impl EndpointSettings {
    fn normalized(&self) -> Value {
        let mut properties = Map::new();
        properties.insert("endpointType".into(), json!(self.endpoint_type.as_str()));
        properties.insert(
            "authenticationType".into(),
            json!(self.authentication.as_str()),
        );
        let mut headers_json = None;
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                properties.insert(key.into(), Value::String(value));
            }
        };
        match &self.connection {
            Connection::EventGrid {
                topic_endpoint,
                access_key1,
                access_key2,
                input_schema,
                topic_resource_id,
            } => {
                put("TopicEndpoint", topic_endpoint.as_deref().map(mask_uri));
                put("accessKey1", access_key1.as_ref().map(Secret::to_string));
                put("accessKey2", access_key2.as_ref().map(Secret::to_string));
                put("inputSchema", Some(input_schema.as_str().to_owned()));
                put("topicResourceId", topic_resource_id.clone());
            }
            Connection::Webhook { uri, mode, headers } => {
                put("endpointUri", uri.as_deref().map(mask_uri));
                put("mode", Some(mode.as_str().to_owned()));
                if !headers.is_empty() {
                    let masked: Map<String, Value> = headers
                        .iter()
                        .map(|(name, value)| (name.clone(), json!(value.to_string())))
                        .collect();
                    headers_json = Some(Value::Object(masked));
                }
            }
            Connection::Amqp {
                primary,
                secondary,
                endpoint_uri,
                entity_path,
            } => {
                let (first, second) = match self.endpoint_type {
                    EndpointType::ServiceBus => {
                        ("primaryConnectionString", "secondaryConnectionString")
                    }
                    _ => ("connectionStringPrimaryKey", "connectionStringSecondaryKey"),
                };
                put(
                    first,
                    primary.as_ref().map(|s| mask_connection_string(s.expose())),
                );
                put(
                    second,
                    secondary
                        .as_ref()
                        .map(|s| mask_connection_string(s.expose())),
                );
                put("endpointUri", endpoint_uri.as_deref().map(mask_uri));
                put("entityPath", entity_path.clone());
            }
        }
        match &self.dead_letter {
            Some(DeadLetterLocation::Folder(path)) => {
                put("deadLetterSecret", Some(path.display().to_string()))
            }
            Some(DeadLetterLocation::BlobSas(uri)) => {
                put("deadLetterSecret", Some(mask_url_query(uri.expose())))
            }
            Some(DeadLetterLocation::BlobIdentity(uri)) => {
                put("deadLetterUri", Some(mask_uri(uri)))
            }
            None => {}
        }
        if let Some(headers) = headers_json {
            properties.insert("headers".into(), headers);
        }
        let delivery = &self.delivery;
        let written = self.raw.0.as_ref();
        let retry_schedule = written
            .and_then(|d| d.get("retrySchedule"))
            .cloned()
            .unwrap_or(json!("event-grid"));
        let mut endpoint = json!({
            "properties": properties,
            "delivery": {
                "maxDeliveryAttempts": delivery.retry.max_delivery_attempts,
                "eventTimeToLiveInMinutes": delivery.retry.event_time_to_live.as_secs() / 60,
                "retrySchedule": retry_schedule,
                "concurrency": delivery.concurrency.get(),
                "queueCapacity": delivery.queue_capacity.get(),
                "maxBacklog": delivery.max_backlog.get(),
                "attemptTimeoutSeconds": delivery.attempt_timeout.as_secs_f64(),
                "maxEventsPerBatch": delivery.batch.max_events,
                "preferredBatchSizeInKilobytes": delivery.batch.preferred_bytes / 1024,
                "deadLetterRetentionHours": delivery.dead_letter_retention.unwrap_or(DEFAULT_DEAD_LETTER_RETENTION).as_secs_f64() / 3600.0,
            },
        });
        if let Some(simulate) = &self.raw.1 {
            endpoint["simulate"] = simulate.clone();
        }
        endpoint
    }
}

fn rate_json(rate: &RateShape) -> Value {
    match rate {
        RateShape::Constant { events_per_second } => {
            json!({ "shape": "constant", "eventsPerSecond": events_per_second })
        }
        RateShape::Ramp { from, to, over } => json!({
            "shape": "ramp", "fromEventsPerSecond": from, "toEventsPerSecond": to, "overSeconds": over.as_secs_f64()
        }),
        RateShape::Steps(steps) => json!({
            "shape": "steps",
            "steps": steps.iter().map(|s| json!({
                "eventsPerSecond": s.events_per_second, "durationSeconds": s.duration.as_secs_f64()
            })).collect::<Vec<_>>(),
        }),
        RateShape::Spike {
            base,
            spike,
            at,
            duration,
        } => json!({
            "shape": "spike", "baseEventsPerSecond": base, "spikeEventsPerSecond": spike,
            "atSeconds": at.as_secs_f64(), "durationSeconds": duration.as_secs_f64()
        }),
        RateShape::Sine {
            mean,
            amplitude,
            period,
        } => json!({
            "shape": "sine", "meanEventsPerSecond": mean, "amplitudeEventsPerSecond": amplitude,
            "periodSeconds": period.as_secs_f64()
        }),
    }
}
