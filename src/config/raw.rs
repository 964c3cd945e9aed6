//! The instance file as written: serde structs, camelCase as ARM and ADT spell them.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

/// The top level of the instance file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceFileConfig {
    /// Format version; must be 1.
    pub version: Value,
    /// The simulated ADT instance.
    #[serde(default)]
    pub instance: Option<Value>,
    /// Endpoints by name: ARM bodies plus `delivery` and `simulate`.
    #[serde(default)]
    pub endpoints: Option<Value>,
    /// Routes by id.
    #[serde(default)]
    pub routes: Option<Value>,
    /// The generated workload.
    #[serde(default)]
    pub workload: Option<Value>,
    /// ADT's limits.
    #[serde(default)]
    pub limits: Option<Value>,
}

/// `instance`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceConfig {
    /// The instance host name, e.g. `contoso.api.wus2.digitaltwins.azure.net`: the `source` of events.
    pub host_name: Option<String>,
}

/// `limits`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsConfig {
    /// Whether ADT's limits of 6 endpoints and 6 routes apply (default true).
    pub enforce: Option<bool>,
}

/// `endpoints.<name>`: an ARM endpoint resource (as `az dt endpoint show` prints it) plus
/// twinroute's `delivery` and `simulate` sections.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfig {
    /// ARM `properties`.
    pub properties: Value,
    /// Delivery policy (see the delivery engine).
    #[serde(default)]
    pub delivery: Option<Value>,
    /// Present: an in-process simulated endpoint.
    #[serde(default)]
    pub simulate: Option<Value>,
    /// ARM envelope, accepted so a whole `az dt endpoint show` body can be pasted.
    #[serde(default)]
    pub id: Option<String>,
    /// ARM envelope: must equal the key if present.
    #[serde(default)]
    pub name: Option<String>,
    /// ARM envelope: `Microsoft.DigitalTwins/digitalTwinsInstances/endpoints`.
    #[serde(default, rename = "type")]
    pub resource_type: Option<String>,
    /// ARM envelope (az CLI output).
    #[serde(default)]
    pub resource_group: Option<String>,
    /// ARM envelope.
    #[serde(default)]
    pub system_data: Option<Value>,
}

/// `endpoints.<name>.properties`: exactly ARM's `DigitalTwinsEndpointResourceProperties`
/// (api-version 2023-01-31) for the three endpoint types, plus twinroute's `inputSchema`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPropertiesConfig {
    /// `EventHub`, `EventGrid` or `ServiceBus`.
    pub endpoint_type: Option<String>,
    /// `KeyBased` (default) or `IdentityBased`.
    pub authentication_type: Option<String>,
    /// Dead-letter container SAS URI (KeyBased); twinroute also takes a local folder.
    pub dead_letter_secret: Option<String>,
    /// Dead-letter container URI (IdentityBased).
    pub dead_letter_uri: Option<String>,
    /// Managed identity (IdentityBased).
    pub identity: Option<IdentityConfig>,
    /// Read-only in ARM; accepted and ignored.
    pub provisioning_state: Option<String>,
    /// Read-only in ARM; accepted and ignored.
    pub created_time: Option<String>,
    /// EventHub, KeyBased.
    pub connection_string_primary_key: Option<String>,
    /// EventHub, KeyBased.
    pub connection_string_secondary_key: Option<String>,
    /// EventHub/ServiceBus, IdentityBased: `sb://<namespace>/`.
    pub endpoint_uri: Option<String>,
    /// EventHub/ServiceBus, IdentityBased: hub or topic name.
    pub entity_path: Option<String>,
    /// ServiceBus, KeyBased.
    pub primary_connection_string: Option<String>,
    /// ServiceBus, KeyBased.
    pub secondary_connection_string: Option<String>,
    /// EventGrid: the topic's endpoint (capital T, as ARM spells it).
    #[serde(rename = "TopicEndpoint")]
    pub topic_endpoint: Option<String>,
    /// EventGrid: primary access key.
    pub access_key1: Option<String>,
    /// EventGrid: secondary access key.
    pub access_key2: Option<String>,
    /// EventGrid (twinroute setting): `CloudEventSchemaV1_0` (default) or `EventGridSchema`.
    pub input_schema: Option<String>,
    /// EventGrid (twinroute setting): the topic's ARM id, the `topic` of Event Grid schema events.
    pub topic_resource_id: Option<String>,
    /// Webhook (twinroute): `binary` (default), `structured` or `batch`.
    pub mode: Option<String>,
    /// Webhook (twinroute): static headers sent with every request (values are masked in output).
    pub headers: Option<IndexMap<String, String>>,
}

/// `properties.identity`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityConfig {
    /// `SystemAssigned` or `UserAssigned`.
    #[serde(rename = "type")]
    pub identity_type: Option<String>,
    /// ARM id of the user-assigned identity.
    pub user_assigned_identity: Option<String>,
}

/// `routes.<id>`: ADT's event route body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    /// The endpoint the route sends to.
    pub endpoint_name: Option<String>,
    /// The route filter.
    pub filter: Option<String>,
    /// Read-only in ADT (the id is the key); accepted so a `GET /eventroutes/{id}` body can be pasted.
    pub id: Option<String>,
}

/// `workload`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadConfig {
    /// Master seed.
    pub seed: Option<u64>,
    /// Size of the twin-id pool.
    pub twins: Option<u32>,
    /// Weight per event type (exact `type` strings).
    pub mix: Option<IndexMap<String, u32>>,
    /// Rate shape.
    pub rate: Option<RateConfig>,
    /// Total events.
    pub count: Option<u64>,
    /// Total time.
    pub duration_seconds: Option<f64>,
    /// `time` of the first event (RFC 3339); default: when the run starts.
    pub start_time: Option<String>,
}

/// `workload.rate`: `shape` decides which of the other fields apply.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateConfig {
    /// `constant`, `ramp`, `steps`, `spike` or `sine`.
    pub shape: Option<String>,
    /// constant.
    pub events_per_second: Option<f64>,
    /// ramp.
    pub from_events_per_second: Option<f64>,
    /// ramp.
    pub to_events_per_second: Option<f64>,
    /// ramp.
    pub over_seconds: Option<f64>,
    /// steps.
    pub steps: Option<Vec<StepConfig>>,
    /// spike.
    pub base_events_per_second: Option<f64>,
    /// spike.
    pub spike_events_per_second: Option<f64>,
    /// spike.
    pub at_seconds: Option<f64>,
    /// spike.
    pub duration_seconds: Option<f64>,
    /// sine.
    pub mean_events_per_second: Option<f64>,
    /// sine.
    pub amplitude_events_per_second: Option<f64>,
    /// sine.
    pub period_seconds: Option<f64>,
}

/// One of `workload.rate.steps`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepConfig {
    /// Rate during the step.
    pub events_per_second: f64,
    /// Length of the step.
    pub duration_seconds: f64,
}
