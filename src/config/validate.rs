//! From the instance file as written to [`Settings`]: ARM's rules for endpoints (adt-facts §6),
//! ADT's for routes and limits, and the workload's own.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::delivery::{DEFAULT_DEAD_LETTER_RETENTION, DeliveryConfig, DeliverySettings};
use super::raw::*;
use super::settings::*;
use super::simulate::SimulateConfig;
use super::workload::workload;
use super::{Overrides, Problem, Problems, join, section};
use crate::clock::{Clock, Timestamp};
use crate::deadletter::sas::{check_identity_uri, check_sas_uri};
use crate::filter::Filter;
use crate::generator::{DEFAULT_START_TIME, WorkloadSettings};
use crate::secret::{Secret, is_masked, mask_uri};

/// ADT's limit on endpoints per instance (not adjustable).
pub const MAX_ENDPOINTS: usize = 6;
/// ADT's default limit on routes per instance.
pub const MAX_ROUTES: usize = 6;
/// The host name used when the file names none.
pub const DEFAULT_HOST_NAME: &str = "twinroute.api.wus2.digitaltwins.azure.net";

pub(super) fn validate(value: &Value, overrides: &Overrides) -> Result<Settings, Problems> {
    let mut problems = Problems::default();
    let Some(file) = section::<InstanceFileConfig>(value, "", &mut problems) else {
        return Err(problems);
    };
    if file.version != 1 {
        problems.push("version", format!("must be 1, found {}", file.version));
    }
    let host_name = host_name(file.instance.as_ref(), &mut problems);
    let limits = file
        .limits
        .as_ref()
        .and_then(|v| section::<LimitsConfig>(v, "limits", &mut problems));
    let limits_enforced = limits.and_then(|l| l.enforce).unwrap_or(true);

    let endpoints = endpoints(file.endpoints.as_ref(), limits_enforced, &mut problems);
    let routes = routes(
        file.routes.as_ref(),
        &endpoints,
        limits_enforced,
        &mut problems,
    );
    let workload = workload(
        file.workload.as_ref(),
        overrides,
        limits_enforced,
        &mut problems,
    );
    if let Some((workload, _)) = &workload {
        last_time(workload, overrides, &endpoints, &mut problems);
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let (workload, seed_source) = workload.ok_or_else(Problems::default)?;
    Ok(Settings {
        host_name,
        endpoints,
        routes,
        workload,
        seed_source,
        limits_enforced,
    })
}

fn host_name(instance: Option<&Value>, problems: &mut Problems) -> Arc<str> {
    let host = instance
        .and_then(|v| section::<InstanceConfig>(v, "instance", problems))
        .and_then(|i| i.host_name)
        .unwrap_or_else(|| DEFAULT_HOST_NAME.to_owned());
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with(['.', '-']);
    if !valid {
        problems.push(
            "instance.hostName",
            format!("must be a host name like contoso.api.wus2.digitaltwins.azure.net (no scheme or path), found '{host}'"),
        );
    }
    Arc::from(host)
}

/// ARM's endpoint-name pattern `^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{2,49}[a-zA-Z0-9]$` with maxLength 49.
pub fn endpoint_name_problem(name: &str) -> Option<String> {
    let rule = "must be 3 to 49 letters, digits or hyphens, not start or end with a hyphen, and not be all digits";
    let ok = (3..=49).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.chars().all(|c| c.is_ascii_digit());
    (!ok).then(|| format!("{rule} (ARM's endpoint-name pattern), found '{name}'"))
}

/// The endpoints that passed, in file order.
fn endpoints(
    value: Option<&Value>,
    enforce: bool,
    problems: &mut Problems,
) -> Vec<EndpointSettings> {
    let Some(map) =
        value.and_then(|v| section::<IndexMap<String, Value>>(v, "endpoints", problems))
    else {
        return Vec::new();
    };
    if enforce && map.len() > MAX_ENDPOINTS {
        problems.push(
            "endpoints",
            format!(
                "ADT allows at most {MAX_ENDPOINTS} endpoints per instance, found {}; set \"limits\": {{\"enforce\": false}} to lift this for load tests",
                map.len()
            ),
        );
    }
    map.iter()
        .filter_map(|(name, value)| endpoint(name, value, problems))
        .collect()
}

/// One endpoint, `None` if anything about it was refused. What every kind shares is checked
/// here (the name, the ARM envelope, the type and authentication, fields of other kinds,
/// dead-letters, `delivery` and `simulate`); each kind's own rules are one function below.
fn endpoint(name: &str, value: &Value, problems: &mut Problems) -> Option<EndpointSettings> {
    let path = join("endpoints", name);
    let before = problems.len();
    if let Some(message) = endpoint_name_problem(name) {
        problems.push(path.clone(), message);
    }
    let config = section::<EndpointConfig>(value, &path, problems)?;
    if let Some(arm_name) = &config.name
        && arm_name != name
    {
        problems.push(
            join(&path, "name"),
            format!("is '{arm_name}' but the endpoint's key is '{name}'"),
        );
    }
    let props_path = join(&path, "properties");
    let raw = section::<EndpointPropertiesConfig>(&config.properties, &props_path, problems)?;
    let endpoint_type = endpoint_type(&raw, &props_path, problems)?;
    let props = Properties {
        authentication: authentication(&raw, &props_path, problems),
        raw: &raw,
        path: props_path,
        simulated: config.simulate.is_some(),
    };
    foreign_fields(&props, endpoint_type, problems);

    let connection = match endpoint_type {
        EndpointType::EventGrid => event_grid(&props, problems),
        EndpointType::EventHub => event_hub(&props, problems),
        EndpointType::ServiceBus => service_bus(&props, problems),
        EndpointType::Webhook => webhook(&props, problems),
    };
    let dead_letter = dead_letter(&props, problems);
    let delivery = match &config.delivery {
        None => Some(DeliverySettings::default()),
        Some(value) => subsection(
            value,
            &join(&path, "delivery"),
            problems,
            DeliveryConfig::validate,
        ),
    };
    let simulate = config.simulate.as_ref().and_then(|value| {
        subsection(
            value,
            &join(&path, "simulate"),
            problems,
            SimulateConfig::validate,
        )
    });
    if problems.len() > before {
        return None;
    }
    Some(EndpointSettings {
        name: name.to_owned(),
        endpoint_type,
        authentication: props.authentication,
        connection,
        dead_letter,
        user_assigned_identity: raw
            .identity
            .as_ref()
            .and_then(|i| i.user_assigned_identity.clone()),
        delivery: delivery?,
        simulate,
        raw: (config.delivery, config.simulate),
    })
}

/// An endpoint's `properties` as written, where they are, and the two facts that decide which
/// of them are required.
struct Properties<'a> {
    /// As written.
    raw: &'a EndpointPropertiesConfig,
    /// The JSON path of `properties`.
    path: String,
    /// `authenticationType`, checked.
    authentication: AuthenticationType,
    /// A simulated endpoint needs no address and no key.
    simulated: bool,
}

impl Properties<'_> {
    /// The JSON path of one property.
    fn at(&self, field: &str) -> String {
        join(&self.path, field)
    }

    /// A key or connection string: refused when masked (as ARM returns secrets on read) or empty.
    fn secret(
        &self,
        field: &str,
        value: &Option<String>,
        problems: &mut Problems,
    ) -> Option<Secret> {
        let value = value.as_ref()?;
        if is_masked(value) {
            problems.push(
                self.at(field),
                "is masked, as ARM returns secrets on read; paste the real value",
            );
        } else if value.trim().is_empty() {
            problems.push(self.at(field), "is empty");
        }
        Some(Secret::new(value.clone()))
    }
}

/// `endpointType`; `None` when missing or unknown, since nothing else can be checked then.
fn endpoint_type(
    raw: &EndpointPropertiesConfig,
    path: &str,
    problems: &mut Problems,
) -> Option<EndpointType> {
    match raw.endpoint_type.as_deref() {
        Some("EventGrid") => Some(EndpointType::EventGrid),
        Some("EventHub") => Some(EndpointType::EventHub),
        Some("ServiceBus") => Some(EndpointType::ServiceBus),
        Some("Webhook") => Some(EndpointType::Webhook),
        Some(other) => {
            problems.push(
                join(path, "endpointType"),
                format!("must be EventGrid, EventHub, ServiceBus or (twinroute) Webhook, found '{other}'"),
            );
            None
        }
        None => {
            problems.push(
                join(path, "endpointType"),
                "is required (EventGrid, EventHub, ServiceBus or Webhook)",
            );
            None
        }
    }
}

/// `authenticationType`, `KeyBased` when absent (and, after a problem, so that the rest is
/// still checked).
fn authentication(
    raw: &EndpointPropertiesConfig,
    path: &str,
    problems: &mut Problems,
) -> AuthenticationType {
    match raw.authentication_type.as_deref() {
        None | Some("KeyBased") => AuthenticationType::KeyBased,
        Some("IdentityBased") => AuthenticationType::IdentityBased,
        Some(other) => {
            problems.push(
                join(path, "authenticationType"),
                format!("must be KeyBased or IdentityBased, found '{other}'"),
            );
            AuthenticationType::KeyBased
        }
    }
}

/// Fields that belong to another endpoint type are refused, as ARM's discriminated schema does.
fn foreign_fields(props: &Properties, endpoint_type: EndpointType, problems: &mut Problems) {
    use EndpointType::{EventGrid as G, EventHub as H, ServiceBus as B, Webhook as W};
    let raw = props.raw;
    let fields: [(&str, bool, &[EndpointType]); 16] = [
        (
            "connectionStringPrimaryKey",
            raw.connection_string_primary_key.is_some(),
            &[H],
        ),
        (
            "connectionStringSecondaryKey",
            raw.connection_string_secondary_key.is_some(),
            &[H],
        ),
        (
            "primaryConnectionString",
            raw.primary_connection_string.is_some(),
            &[B],
        ),
        (
            "secondaryConnectionString",
            raw.secondary_connection_string.is_some(),
            &[B],
        ),
        ("endpointUri", raw.endpoint_uri.is_some(), &[H, B, W]),
        ("entityPath", raw.entity_path.is_some(), &[H, B]),
        ("TopicEndpoint", raw.topic_endpoint.is_some(), &[G]),
        ("accessKey1", raw.access_key1.is_some(), &[G]),
        ("accessKey2", raw.access_key2.is_some(), &[G]),
        ("inputSchema", raw.input_schema.is_some(), &[G]),
        ("topicResourceId", raw.topic_resource_id.is_some(), &[G]),
        ("mode", raw.mode.is_some(), &[W]),
        ("headers", raw.headers.is_some(), &[W]),
        ("identity", raw.identity.is_some(), &[H, B]),
        ("deadLetterUri", raw.dead_letter_uri.is_some(), &[G, H, B]),
        (
            "deadLetterSecret",
            raw.dead_letter_secret.is_some(),
            &[G, H, B, W],
        ),
    ];
    for (field, present, allowed) in fields {
        if present && !allowed.contains(&endpoint_type) {
            problems.push(
                props.at(field),
                format!("is not a property of {} endpoints", endpoint_type.as_str()),
            );
        }
    }
}

/// `EventGrid`: `TopicEndpoint` and `accessKey1` (`accessKey2` optional), the topic's input
/// schema; KeyBased only.
fn event_grid(props: &Properties, problems: &mut Problems) -> Connection {
    let raw = props.raw;
    let access_key1 = props.secret("accessKey1", &raw.access_key1, problems);
    let access_key2 = props.secret("accessKey2", &raw.access_key2, problems);
    let input_schema = match raw.input_schema.as_deref() {
        None | Some("CloudEventSchemaV1_0") => InputSchema::CloudEvents,
        Some("EventGridSchema") => InputSchema::EventGrid,
        Some(other) => {
            problems.push(
                props.at("inputSchema"),
                format!("must be CloudEventSchemaV1_0 or EventGridSchema, found '{other}'"),
            );
            InputSchema::CloudEvents
        }
    };
    if props.authentication == AuthenticationType::IdentityBased {
        problems.push(
            props.at("authenticationType"),
            "IdentityBased is not supported for EventGrid endpoints (ADT supports identity only for EventHub and ServiceBus)",
        );
    }
    if let Some(url) = &raw.topic_endpoint
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(
            props.at("TopicEndpoint"),
            format!("must be an http(s) URL, found '{}'", mask_uri(url)),
        );
    }
    if !props.simulated {
        if raw.topic_endpoint.is_none() {
            problems.push(
                props.at("TopicEndpoint"),
                "is required for EventGrid endpoints",
            );
        }
        if access_key1.is_none() {
            problems.push(
                props.at("accessKey1"),
                "is required for EventGrid endpoints",
            );
        }
    }
    Connection::EventGrid {
        topic_endpoint: raw.topic_endpoint.clone(),
        access_key1,
        access_key2,
        input_schema,
        topic_resource_id: raw.topic_resource_id.clone(),
    }
}

/// `EventHub`: `connectionStringPrimaryKey` (and `…SecondaryKey`) when KeyBased.
fn event_hub(props: &Properties, problems: &mut Problems) -> Connection {
    let raw = props.raw;
    amqp(
        props,
        EndpointType::EventHub,
        (
            "connectionStringPrimaryKey",
            &raw.connection_string_primary_key,
        ),
        (
            "connectionStringSecondaryKey",
            &raw.connection_string_secondary_key,
        ),
        problems,
    )
}

/// `ServiceBus`: `primaryConnectionString` (and `secondaryConnectionString`) when KeyBased.
fn service_bus(props: &Properties, problems: &mut Problems) -> Connection {
    let raw = props.raw;
    amqp(
        props,
        EndpointType::ServiceBus,
        ("primaryConnectionString", &raw.primary_connection_string),
        (
            "secondaryConnectionString",
            &raw.secondary_connection_string,
        ),
        problems,
    )
}

/// What Event Hubs and Service Bus share: two connection strings (named by the kind) when
/// KeyBased, `endpointUri` (`sb://…`) and `entityPath` when IdentityBased.
fn amqp(
    props: &Properties,
    endpoint_type: EndpointType,
    (primary_field, primary): (&str, &Option<String>),
    (secondary_field, secondary): (&str, &Option<String>),
    problems: &mut Problems,
) -> Connection {
    let raw = props.raw;
    let primary = props.secret(primary_field, primary, problems);
    let secondary = props.secret(secondary_field, secondary, problems);
    for (field, value) in [(primary_field, &primary), (secondary_field, &secondary)] {
        if let Some(value) = value
            && !is_masked(value.expose())
            && let Some(message) = connection_string_problem(value.expose())
        {
            problems.push(props.at(field), message);
        }
    }
    if let Some(uri) = &raw.endpoint_uri
        && !uri.starts_with("sb://")
    {
        problems.push(props.at("endpointUri"), "must start with sb://");
    }
    match props.authentication {
        AuthenticationType::KeyBased => {
            if primary.is_none() && !props.simulated {
                problems.push(
                    props.at(primary_field),
                    format!(
                        "is required for KeyBased {} endpoints",
                        endpoint_type.as_str()
                    ),
                );
            }
        }
        AuthenticationType::IdentityBased => {
            for (field, value) in [
                (primary_field, primary.is_some()),
                (secondary_field, secondary.is_some()),
            ] {
                if value {
                    problems.push(props.at(field), "is for KeyBased endpoints; IdentityBased endpoints use endpointUri and entityPath");
                }
            }
            if !props.simulated {
                if raw.endpoint_uri.is_none() {
                    problems.push(
                        props.at("endpointUri"),
                        "is required for IdentityBased endpoints (sb://<namespace>/)",
                    );
                }
                if raw.entity_path.is_none() {
                    problems.push(
                        props.at("entityPath"),
                        "is required for IdentityBased endpoints",
                    );
                }
            }
        }
    }
    Connection::Amqp {
        primary,
        secondary,
        endpoint_uri: raw.endpoint_uri.clone(),
        entity_path: raw.entity_path.clone(),
    }
}

/// `Webhook` (twinroute): an http(s) `endpointUri`, the CloudEvents `mode`, static `headers`;
/// KeyBased only.
fn webhook(props: &Properties, problems: &mut Problems) -> Connection {
    let raw = props.raw;
    let mode = match raw.mode.as_deref() {
        None | Some("binary") => WebhookMode::Binary,
        Some("structured") => WebhookMode::Structured,
        Some("batch") => WebhookMode::Batch,
        Some(other) => {
            problems.push(
                props.at("mode"),
                format!("must be binary, structured or batch, found '{other}'"),
            );
            WebhookMode::Binary
        }
    };
    if props.authentication == AuthenticationType::IdentityBased {
        problems.push(
            props.at("authenticationType"),
            "IdentityBased is not supported for Webhook endpoints",
        );
    }
    match &raw.endpoint_uri {
        Some(uri) if !(uri.starts_with("http://") || uri.starts_with("https://")) => problems.push(
            props.at("endpointUri"),
            "must be an http:// or https:// URL for Webhook endpoints",
        ),
        None if !props.simulated => {
            problems.push(props.at("endpointUri"), "is required for Webhook endpoints")
        }
        _ => {}
    }
    let headers: Vec<(String, Secret)> = raw
        .headers
        .iter()
        .flatten()
        .map(|(name, value)| (name.clone(), Secret::new(value.clone())))
        .collect();
    for (name, _) in &headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(
                join(&props.at("headers"), name),
                "is not a valid HTTP header name",
            );
        }
    }
    Connection::Webhook {
        uri: raw.endpoint_uri.clone(),
        mode,
        headers,
    }
}

/// `deadLetterSecret` (KeyBased: a container SAS URI or a folder) or `deadLetterUri`
/// (IdentityBased: a container URL).
fn dead_letter(props: &Properties, problems: &mut Problems) -> Option<DeadLetterLocation> {
    let raw = props.raw;
    match (
        &raw.dead_letter_secret,
        &raw.dead_letter_uri,
        props.authentication,
    ) {
        (Some(_), _, AuthenticationType::IdentityBased) => {
            problems.push(
                props.at("deadLetterSecret"),
                "is for KeyBased endpoints; IdentityBased endpoints use deadLetterUri",
            );
            None
        }
        (_, Some(_), AuthenticationType::KeyBased) => {
            problems.push(props.at("deadLetterUri"), "is for IdentityBased endpoints; KeyBased endpoints use deadLetterSecret (a container SAS URI)");
            None
        }
        (Some(secret), _, _) => dead_letter_secret(secret, &props.at("deadLetterSecret"), problems),
        (_, Some(uri), _) => {
            if !uri.starts_with("https://") && !uri.starts_with("http://") {
                problems.push(props.at("deadLetterUri"), "must be a blob container URL (https://<account>.blob.core.windows.net/<container>)");
            } else if let Err(error) = check_identity_uri(uri) {
                problems.push(props.at("deadLetterUri"), error.to_string());
            }
            Some(DeadLetterLocation::BlobIdentity(uri.clone()))
        }
        (None, None, _) => None,
    }
}

/// A nested section (`delivery`, `simulate`) read at `path` and checked by its own `validate`,
/// its problems nested under `path`.
fn subsection<C: DeserializeOwned, S>(
    value: &Value,
    path: &str,
    problems: &mut Problems,
    validate: impl FnOnce(&C) -> Result<S, Vec<Problem>>,
) -> Option<S> {
    let config = section::<C>(value, path, problems)?;
    validate(&config)
        .map_err(|found| problems.nest(path, found))
        .ok()
}

/// `Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]`, or a local emulator's.
fn connection_string_problem(value: &str) -> Option<String> {
    let mut endpoint = None;
    let (mut key_name, mut key, mut emulator) = (false, false, false);
    for part in value.split(';').filter(|p| !p.trim().is_empty()) {
        let Some((name, v)) = part.split_once('=') else {
            return Some(
                "is not a connection string (expected Key=Value pairs separated by ';')".to_owned(),
            );
        };
        match name.trim() {
            n if n.eq_ignore_ascii_case("Endpoint") => endpoint = Some(v.trim().to_owned()),
            n if n.eq_ignore_ascii_case("SharedAccessKeyName") => key_name = true,
            n if n.eq_ignore_ascii_case("SharedAccessKey") => key = true,
            n if n.eq_ignore_ascii_case("UseDevelopmentEmulator") => {
                emulator = v.trim().eq_ignore_ascii_case("true")
            }
            _ => {}
        }
    }
    match endpoint {
        None => Some("is not a connection string: no Endpoint=sb://…".to_owned()),
        Some(e) if !e.starts_with("sb://") => Some("Endpoint must start with sb://".to_owned()),
        _ if !(emulator || key_name && key) => Some(
            "needs SharedAccessKeyName and SharedAccessKey (or UseDevelopmentEmulator=true)"
                .to_owned(),
        ),
        _ => None,
    }
}

/// `deadLetterSecret`: a container SAS URI, or (twinroute) a local folder as `file://` or a path.
///
/// It is a secret whatever it parses as: a value that looks like a URL but is not one (a query, a
/// `sig=`, a scheme other than `https://`, `http://` or `file://`) is refused rather than taken
/// for a folder whose name would then be shown, and the message never repeats the value.
fn dead_letter_secret(
    value: &str,
    path: &str,
    problems: &mut Problems,
) -> Option<DeadLetterLocation> {
    if is_masked(value) {
        problems.push(
            path,
            "is masked, as ARM returns secrets on read; paste the real value",
        );
        return None;
    }
    match DeadLetterSecretKind::of(value) {
        // Every check that needs no network, as `run` makes them (against the wall clock).
        DeadLetterSecretKind::Http => match check_sas_uri(value, Clock::real().now()) {
            Ok(_) => Some(DeadLetterLocation::BlobSas(Secret::new(value))),
            Err(error) => {
                problems.push(path, error.to_string());
                None
            }
        },
        DeadLetterSecretKind::Folder("") => {
            problems.push(
                path,
                "is empty; give a container SAS URI, a file:// URI or a folder",
            );
            None
        }
        DeadLetterSecretKind::Folder(folder) => {
            Some(DeadLetterLocation::Folder(PathBuf::from(folder)))
        }
        DeadLetterSecretKind::BrokenUrl(why) => {
            problems.push(
                path,
                format!(
                    "looks like a URL but is not one: {why}; give https://<account>.blob.core.windows.net/<container>?<SAS>, a file:// URI or a folder path (the value is not shown: it may hold a signature)"
                ),
            );
            None
        }
    }
}

/// What a `deadLetterSecret` is, judged from its text alone.
#[derive(Debug, PartialEq, Eq)]
enum DeadLetterSecretKind<'a> {
    /// `http://` or `https://` (any case): a container SAS URI, checked as one.
    Http,
    /// A `file://` URI or a plain path: the folder.
    Folder(&'a str),
    /// Looks like a URL but is not one; why, without repeating the value.
    BrokenUrl(&'static str),
}

impl<'a> DeadLetterSecretKind<'a> {
    fn of(value: &'a str) -> Self {
        let text = value.trim();
        let has_query = text.contains('?');
        let has_signature = text.to_ascii_lowercase().contains("sig=");
        if let Some((scheme, rest)) = scheme_like(text) {
            let after_slashes = rest.strip_prefix("//");
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") {
                return match after_slashes {
                    Some(_) => DeadLetterSecretKind::Http,
                    None => DeadLetterSecretKind::BrokenUrl(
                        "its scheme is not followed by '//' (a slash is missing)",
                    ),
                };
            }
            if scheme.eq_ignore_ascii_case("file") {
                return match after_slashes {
                    None => DeadLetterSecretKind::BrokenUrl(
                        "'file:' is not followed by '//' (a slash is missing)",
                    ),
                    Some(_) if has_query || has_signature => DeadLetterSecretKind::BrokenUrl(
                        "a file:// URI names a folder and has no query (?…) or signature (sig=)",
                    ),
                    Some(folder) => DeadLetterSecretKind::Folder(folder),
                };
            }
            return DeadLetterSecretKind::BrokenUrl(
                "it starts with a scheme that is not https://, http:// or file://",
            );
        }
        if has_query {
            DeadLetterSecretKind::BrokenUrl("it has a query (?…) but no https:// scheme")
        } else if has_signature {
            DeadLetterSecretKind::BrokenUrl("it holds a signature (sig=) but no https:// scheme")
        } else {
            DeadLetterSecretKind::Folder(value)
        }
    }
}

/// `scheme:rest` when `text` starts with something shaped like a URL scheme (RFC 3986: a letter,
/// then letters, digits, `+`, `-`, `.`). A single letter before `:` is a Windows drive.
fn scheme_like(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let shaped = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (shaped && scheme.len() > 1).then_some((scheme, rest))
}

/// The routes that passed, in file order.
fn routes(
    value: Option<&Value>,
    endpoints: &[EndpointSettings],
    enforce: bool,
    problems: &mut Problems,
) -> Vec<RouteSettings> {
    let Some(map) = value.and_then(|v| section::<IndexMap<String, Value>>(v, "routes", problems))
    else {
        return Vec::new();
    };
    if enforce && map.len() > MAX_ROUTES {
        problems.push(
            "routes",
            format!(
                "ADT allows {MAX_ROUTES} routes per instance by default, found {}; set \"limits\": {{\"enforce\": false}} to lift this for load tests",
                map.len()
            ),
        );
    }
    map.iter()
        .filter_map(|(id, value)| route(id, value, endpoints, problems))
        .collect()
}

/// One route, `None` if refused. Its endpoint is found among the endpoints that passed, so
/// its index points into [`Settings::endpoints`].
fn route(
    id: &str,
    value: &Value,
    endpoints: &[EndpointSettings],
    problems: &mut Problems,
) -> Option<RouteSettings> {
    let path = join("routes", id);
    if id.is_empty() || id.chars().any(|c| c.is_control() || c == '/') {
        problems.push(
            path.clone(),
            "route id must be non-empty, without '/' or control characters",
        );
    }
    let route = section::<RouteConfig>(value, &path, problems)?;
    if let Some(body_id) = &route.id
        && body_id != id
    {
        problems.push(
            join(&path, "id"),
            format!("is '{body_id}' but the route's key is '{id}'"),
        );
    }
    let Some(endpoint_name) = route.endpoint_name else {
        problems.push(join(&path, "endpointName"), "is required");
        return None;
    };
    let Some(filter) = route.filter else {
        problems.push(
            join(&path, "filter"),
            "is required (use 'true' to route every event)",
        );
        return None;
    };
    let filter = match Filter::parse(&filter) {
        Ok(filter) => Some(filter),
        Err(error) => {
            problems.push(
                format!("{}:{}", join(&path, "filter"), error.column),
                error.message,
            );
            None
        }
    };
    let Some(endpoint) = endpoints.iter().position(|e| e.name == endpoint_name) else {
        problems.push(
            join(&path, "endpointName"),
            format!("names no endpoint: '{endpoint_name}' is not in endpoints (ADT: EventRouteEndpointInvalid)"),
        );
        return None;
    };
    Some(RouteSettings {
        id: id.to_owned(),
        endpoint_name,
        endpoint,
        filter: filter?,
    })
}

/// A run writes no time later than: its last event's due time (`durationSeconds`, else when the
/// rate shape reaches `count`), plus the longest an endpoint keeps a delivery (the TTL, plus an
/// attempt started just before it: `attemptTimeoutSeconds`), plus, for an endpoint that
/// dead-letters, `deadLetterRetentionHours` (a dead-letter store that keeps failing holds its
/// endpoint's worker back, and with it the delivery times, for up to that long). ADT's
/// timestamps end with year 9999: a start time from which that sum passes it is refused. (A run
/// held back even longer has its times held at 9999-12-31T23:59:59.9999999Z; see
/// `Timestamp::plus`.)
fn last_time(
    workload: &WorkloadSettings,
    overrides: &Overrides,
    endpoints: &[EndpointSettings],
    problems: &mut Problems,
) {
    // A count the shape never reaches is refused at workload.rate already.
    let Some(schedule) = last_due(workload, overrides) else {
        return;
    };
    let hold = longest_hold(endpoints);
    let span = schedule + hold.as_ref().map_or(0.0, |hold| hold.seconds);
    let start = workload.start_time.unwrap_or(DEFAULT_START_TIME);
    let end = Timestamp::MAX.unix_seconds() as f64 + 1.0;
    if start.unix_seconds() as f64 + span < end {
        return;
    }
    let mut why = format!("events due over {}", human(schedule));
    if let Some(Hold {
        seconds,
        endpoint,
        dead_letters,
    }) = hold
    {
        let fields = if dead_letters {
            "eventTimeToLiveInMinutes + attemptTimeoutSeconds + deadLetterRetentionHours"
        } else {
            "eventTimeToLiveInMinutes + attemptTimeoutSeconds"
        };
        why.push_str(&format!(
            ", then up to {} at endpoints.{endpoint} ({fields})",
            human(seconds)
        ));
    }
    let limit = "past 9999-12-31T23:59:59Z, where ADT's timestamps end";
    let earliest_year_1 = -62_135_596_800.0; // 0001-01-01T00:00:00Z
    let latest = end - span;
    match workload.start_time {
        Some(start) if latest >= earliest_year_1 => problems.push(
            "workload.startTime",
            format!(
                "a run from {start} can write times up to {} after it ({why}), {limit}; start at {} or earlier",
                human(span),
                Timestamp::from_unix_seconds(latest.floor() as i64 - 1)
            ),
        ),
        Some(start) => problems.push(
            "workload.startTime",
            format!(
                "a run from {start} can write times up to {} after it ({why}), {limit}, whatever the start; lower count or raise the rate",
                human(span)
            ),
        ),
        None => problems.push(
            "workload",
            format!(
                "a run can write times up to {} after its start ({why}), {limit}; lower count or raise the rate",
                human(span)
            ),
        ),
    }
}

/// When the last event is due, in seconds after the start: at `durationSeconds` (unless
/// `--count` lifts it) or when the rate shape reaches `count`, whichever comes first.
fn last_due(workload: &WorkloadSettings, overrides: &Overrides) -> Option<f64> {
    let by_duration = workload
        .duration
        .filter(|_| overrides.count.is_none())
        .map(|d| d.as_secs_f64());
    let by_count = workload
        .count
        .and_then(|count| workload.rate.time_to_reach(count));
    match (by_duration, by_count) {
        (Some(duration), Some(count)) => Some(duration.min(count)),
        (duration, count) => duration.or(count),
    }
}

/// How long an endpoint may keep a delivery after it is due.
struct Hold<'a> {
    /// Seconds: the TTL, plus the attempt timeout, plus the dead-letter retention if it
    /// dead-letters.
    seconds: f64,
    /// The endpoint's name.
    endpoint: &'a str,
    /// Whether the retention counts.
    dead_letters: bool,
}

/// The endpoint that may keep a delivery longest (the last of equals).
fn longest_hold(endpoints: &[EndpointSettings]) -> Option<Hold<'_>> {
    endpoints
        .iter()
        .map(|endpoint| {
            let delivery = &endpoint.delivery;
            let retention = endpoint.dead_letter.as_ref().map(|_| {
                delivery
                    .dead_letter_retention
                    .unwrap_or(DEFAULT_DEAD_LETTER_RETENTION)
            });
            let seconds = (delivery.retry.event_time_to_live + delivery.attempt_timeout)
                .as_secs_f64()
                + retention.map_or(0.0, |r| r.as_secs_f64());
            Hold {
                seconds,
                endpoint: endpoint.name.as_str(),
                dead_letters: retention.is_some(),
            }
        })
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
}

/// A span of seconds for a message: `50 ms`, `40 s`, `28.5 h`, `3.2 days`, `7980 years`.
fn human(seconds: f64) -> String {
    const DAY: f64 = 86_400.0;
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * DAY {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds < 730.0 * DAY {
        format!("{:.1} days", seconds / DAY)
    } else {
        format!("{:.0} years", seconds / (365.2425 * DAY))
    }
}
