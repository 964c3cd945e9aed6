//! From the instance file as written to [`Settings`]: ARM's rules for endpoints (adt-facts §6),
//! ADT's for routes and limits, and the workload's own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::delivery::{DEFAULT_DEAD_LETTER_RETENTION, DeliveryConfig, DeliverySettings};
use super::raw::*;
use super::settings::*;
use super::simulate::SimulateConfig;
use super::{Overrides, Problems, join, section};
use crate::clock::{Clock, Timestamp};
use crate::deadletter::sas::{check_identity_uri, check_sas_uri};
use crate::event::EventType;
use crate::filter::Filter;
use crate::generator::{DEFAULT_MIX, DEFAULT_START_TIME, RateShape, Step, WorkloadSettings};
use crate::secret::{Secret, is_masked, mask_uri};

/// ADT's limit on endpoints per instance (not adjustable).
pub const MAX_ENDPOINTS: usize = 6;
/// ADT's default limit on routes per instance.
pub const MAX_ROUTES: usize = 6;
/// ADT's default limit on twins per instance (adt-facts §4).
pub const MAX_TWINS: u32 = 2_000_000;
/// The host name used when the file names none.
pub const DEFAULT_HOST_NAME: &str = "twinroute.api.wus2.digitaltwins.azure.net";
/// Twins in the pool when the workload names no number.
pub const DEFAULT_TWINS: u32 = 1000;
/// Events generated when the workload names neither `count` nor `durationSeconds`.
pub const DEFAULT_COUNT: u64 = 10_000;

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
        endpoints: endpoints.into_iter().flatten().collect(),
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

/// `None` per endpoint that was refused, so routes can still tell "exists but broken" from "missing".
fn endpoints(
    value: Option<&Value>,
    enforce: bool,
    problems: &mut Problems,
) -> Vec<Option<EndpointSettings>> {
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
        .map(|(name, value)| endpoint(name, value, problems))
        .collect()
}

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
    let props = section::<EndpointPropertiesConfig>(&config.properties, &props_path, problems)?;
    let simulated = config.simulate.is_some();
    let at = |field: &str| join(&props_path, field);

    let endpoint_type = match props.endpoint_type.as_deref() {
        Some("EventGrid") => EndpointType::EventGrid,
        Some("EventHub") => EndpointType::EventHub,
        Some("ServiceBus") => EndpointType::ServiceBus,
        Some("Webhook") => EndpointType::Webhook,
        Some(other) => {
            problems.push(
                at("endpointType"),
                format!("must be EventGrid, EventHub, ServiceBus or (twinroute) Webhook, found '{other}'"),
            );
            return None;
        }
        None => {
            problems.push(
                at("endpointType"),
                "is required (EventGrid, EventHub, ServiceBus or Webhook)",
            );
            return None;
        }
    };
    let authentication = match props.authentication_type.as_deref() {
        None | Some("KeyBased") => AuthenticationType::KeyBased,
        Some("IdentityBased") => AuthenticationType::IdentityBased,
        Some(other) => {
            problems.push(
                at("authenticationType"),
                format!("must be KeyBased or IdentityBased, found '{other}'"),
            );
            AuthenticationType::KeyBased
        }
    };
    let key_based = authentication == AuthenticationType::KeyBased;

    // Fields that belong to another endpoint type are refused, as ARM's discriminated schema does.
    {
        use EndpointType::{EventGrid as G, EventHub as H, ServiceBus as B, Webhook as W};
        let fields: [(&str, bool, &[EndpointType]); 16] = [
            (
                "connectionStringPrimaryKey",
                props.connection_string_primary_key.is_some(),
                &[H],
            ),
            (
                "connectionStringSecondaryKey",
                props.connection_string_secondary_key.is_some(),
                &[H],
            ),
            (
                "primaryConnectionString",
                props.primary_connection_string.is_some(),
                &[B],
            ),
            (
                "secondaryConnectionString",
                props.secondary_connection_string.is_some(),
                &[B],
            ),
            ("endpointUri", props.endpoint_uri.is_some(), &[H, B, W]),
            ("entityPath", props.entity_path.is_some(), &[H, B]),
            ("TopicEndpoint", props.topic_endpoint.is_some(), &[G]),
            ("accessKey1", props.access_key1.is_some(), &[G]),
            ("accessKey2", props.access_key2.is_some(), &[G]),
            ("inputSchema", props.input_schema.is_some(), &[G]),
            ("topicResourceId", props.topic_resource_id.is_some(), &[G]),
            ("mode", props.mode.is_some(), &[W]),
            ("headers", props.headers.is_some(), &[W]),
            ("identity", props.identity.is_some(), &[H, B]),
            ("deadLetterUri", props.dead_letter_uri.is_some(), &[G, H, B]),
            (
                "deadLetterSecret",
                props.dead_letter_secret.is_some(),
                &[G, H, B, W],
            ),
        ];
        for (field, present, allowed) in fields {
            if present && !allowed.contains(&endpoint_type) {
                problems.push(
                    at(field),
                    format!("is not a property of {} endpoints", endpoint_type.as_str()),
                );
            }
        }
    }

    let mut secret = |field: &str, value: &Option<String>| -> Option<Secret> {
        let value = value.as_ref()?;
        if is_masked(value) {
            problems.push(
                at(field),
                "is masked, as ARM returns secrets on read; paste the real value",
            );
        } else if value.trim().is_empty() {
            problems.push(at(field), "is empty");
        }
        Some(Secret::new(value.clone()))
    };

    let connection = match endpoint_type {
        EndpointType::EventGrid => {
            let access_key1 = secret("accessKey1", &props.access_key1);
            let access_key2 = secret("accessKey2", &props.access_key2);
            Connection::EventGrid {
                topic_endpoint: props.topic_endpoint.clone(),
                access_key1,
                access_key2,
                input_schema: InputSchema::CloudEvents,
                topic_resource_id: props.topic_resource_id.clone(),
            }
        }
        EndpointType::EventHub => Connection::Amqp {
            primary: secret(
                "connectionStringPrimaryKey",
                &props.connection_string_primary_key,
            ),
            secondary: secret(
                "connectionStringSecondaryKey",
                &props.connection_string_secondary_key,
            ),
            endpoint_uri: props.endpoint_uri.clone(),
            entity_path: props.entity_path.clone(),
        },
        EndpointType::Webhook => Connection::Webhook {
            uri: props.endpoint_uri.clone(),
            mode: WebhookMode::Binary,
            headers: props
                .headers
                .iter()
                .flatten()
                .map(|(name, value)| (name.clone(), Secret::new(value.clone())))
                .collect(),
        },
        EndpointType::ServiceBus => Connection::Amqp {
            primary: secret("primaryConnectionString", &props.primary_connection_string),
            secondary: secret(
                "secondaryConnectionString",
                &props.secondary_connection_string,
            ),
            endpoint_uri: props.endpoint_uri.clone(),
            entity_path: props.entity_path.clone(),
        },
    };
    let connection = match connection {
        Connection::Webhook { uri, headers, .. } => {
            let mode = match props.mode.as_deref() {
                None | Some("binary") => WebhookMode::Binary,
                Some("structured") => WebhookMode::Structured,
                Some("batch") => WebhookMode::Batch,
                Some(other) => {
                    problems.push(
                        at("mode"),
                        format!("must be binary, structured or batch, found '{other}'"),
                    );
                    WebhookMode::Binary
                }
            };
            if authentication == AuthenticationType::IdentityBased {
                problems.push(
                    at("authenticationType"),
                    "IdentityBased is not supported for Webhook endpoints",
                );
            }
            match &uri {
                Some(uri) if !(uri.starts_with("http://") || uri.starts_with("https://")) => {
                    problems.push(
                        at("endpointUri"),
                        "must be an http:// or https:// URL for Webhook endpoints",
                    )
                }
                None if !simulated => {
                    problems.push(at("endpointUri"), "is required for Webhook endpoints")
                }
                _ => {}
            }
            for (name, _) in &headers {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    problems.push(
                        join(&at("headers"), name),
                        "is not a valid HTTP header name",
                    );
                }
            }
            Connection::Webhook { uri, mode, headers }
        }
        Connection::EventGrid {
            topic_endpoint,
            access_key1,
            access_key2,
            topic_resource_id,
            ..
        } => {
            let input_schema = match props.input_schema.as_deref() {
                None | Some("CloudEventSchemaV1_0") => InputSchema::CloudEvents,
                Some("EventGridSchema") => InputSchema::EventGrid,
                Some(other) => {
                    problems.push(
                        at("inputSchema"),
                        format!("must be CloudEventSchemaV1_0 or EventGridSchema, found '{other}'"),
                    );
                    InputSchema::CloudEvents
                }
            };
            if authentication == AuthenticationType::IdentityBased {
                problems.push(
                    at("authenticationType"),
                    "IdentityBased is not supported for EventGrid endpoints (ADT supports identity only for EventHub and ServiceBus)",
                );
            }
            if let Some(url) = &topic_endpoint
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                problems.push(
                    at("TopicEndpoint"),
                    format!("must be an http(s) URL, found '{}'", mask_uri(url)),
                );
            }
            if !simulated {
                if topic_endpoint.is_none() {
                    problems.push(at("TopicEndpoint"), "is required for EventGrid endpoints");
                }
                if access_key1.is_none() {
                    problems.push(at("accessKey1"), "is required for EventGrid endpoints");
                }
            }
            Connection::EventGrid {
                topic_endpoint,
                access_key1,
                access_key2,
                input_schema,
                topic_resource_id,
            }
        }
        Connection::Amqp {
            primary,
            secondary,
            endpoint_uri,
            entity_path,
        } => {
            let (primary_field, secondary_field) = match endpoint_type {
                EndpointType::ServiceBus => {
                    ("primaryConnectionString", "secondaryConnectionString")
                }
                _ => ("connectionStringPrimaryKey", "connectionStringSecondaryKey"),
            };
            for (field, value) in [(primary_field, &primary), (secondary_field, &secondary)] {
                if let Some(value) = value
                    && !is_masked(value.expose())
                    && let Some(message) = connection_string_problem(value.expose())
                {
                    problems.push(at(field), message);
                }
            }
            if let Some(uri) = &endpoint_uri
                && !uri.starts_with("sb://")
            {
                problems.push(at("endpointUri"), "must start with sb://");
            }
            if key_based {
                if primary.is_none() && !simulated {
                    problems.push(
                        at(primary_field),
                        format!(
                            "is required for KeyBased {} endpoints",
                            endpoint_type.as_str()
                        ),
                    );
                }
            } else {
                for (field, value) in [
                    (primary_field, primary.is_some()),
                    (secondary_field, secondary.is_some()),
                ] {
                    if value {
                        problems.push(at(field), "is for KeyBased endpoints; IdentityBased endpoints use endpointUri and entityPath");
                    }
                }
                if !simulated {
                    if endpoint_uri.is_none() {
                        problems.push(
                            at("endpointUri"),
                            "is required for IdentityBased endpoints (sb://<namespace>/)",
                        );
                    }
                    if entity_path.is_none() {
                        problems.push(at("entityPath"), "is required for IdentityBased endpoints");
                    }
                }
            }
            Connection::Amqp {
                primary,
                secondary,
                endpoint_uri,
                entity_path,
            }
        }
    };

    let dead_letter = match (
        &props.dead_letter_secret,
        &props.dead_letter_uri,
        authentication,
    ) {
        (Some(_), _, AuthenticationType::IdentityBased) => {
            problems.push(
                at("deadLetterSecret"),
                "is for KeyBased endpoints; IdentityBased endpoints use deadLetterUri",
            );
            None
        }
        (_, Some(_), AuthenticationType::KeyBased) => {
            problems.push(at("deadLetterUri"), "is for IdentityBased endpoints; KeyBased endpoints use deadLetterSecret (a container SAS URI)");
            None
        }
        (Some(secret), _, _) => dead_letter_secret(secret, &at("deadLetterSecret"), problems),
        (_, Some(uri), _) => {
            if !uri.starts_with("https://") && !uri.starts_with("http://") {
                problems.push(at("deadLetterUri"), "must be a blob container URL (https://<account>.blob.core.windows.net/<container>)");
            } else if let Err(error) = check_identity_uri(uri) {
                problems.push(at("deadLetterUri"), error.to_string());
            }
            Some(DeadLetterLocation::BlobIdentity(uri.clone()))
        }
        (None, None, _) => None,
    };

    let delivery = match &config.delivery {
        None => Some(DeliverySettings::default()),
        Some(value) => section::<DeliveryConfig>(value, &join(&path, "delivery"), problems)
            .and_then(|d| {
                d.validate()
                    .map_err(|found| problems.nest(&join(&path, "delivery"), found))
                    .ok()
            }),
    };
    let simulate = match &config.simulate {
        None => None,
        Some(value) => section::<SimulateConfig>(value, &join(&path, "simulate"), problems)
            .and_then(|s| {
                s.validate()
                    .map_err(|found| problems.nest(&join(&path, "simulate"), found))
                    .ok()
            }),
    };
    if problems.len() > before {
        return None;
    }
    Some(EndpointSettings {
        name: name.to_owned(),
        endpoint_type,
        authentication,
        connection,
        dead_letter,
        user_assigned_identity: props
            .identity
            .as_ref()
            .and_then(|i| i.user_assigned_identity.clone()),
        delivery: delivery?,
        simulate,
        raw: (config.delivery, config.simulate),
    })
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

fn routes(
    value: Option<&Value>,
    endpoints: &[Option<EndpointSettings>],
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
    let mut settings = Vec::new();
    for (id, value) in &map {
        let path = join("routes", id);
        if id.is_empty() || id.chars().any(|c| c.is_control() || c == '/') {
            problems.push(
                path.clone(),
                "route id must be non-empty, without '/' or control characters",
            );
        }
        let Some(route) = section::<RouteConfig>(value, &path, problems) else {
            continue;
        };
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
            continue;
        };
        let Some(filter) = route.filter else {
            problems.push(
                join(&path, "filter"),
                "is required (use 'true' to route every event)",
            );
            continue;
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
        let position = endpoints
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.name == endpoint_name));
        match position {
            Some(endpoint) => {
                if let Some(filter) = filter {
                    settings.push(RouteSettings { id: id.clone(), endpoint_name, endpoint, filter })
                }
            }
            None => problems.push(
                join(&path, "endpointName"),
                format!("names no endpoint: '{endpoint_name}' is not in endpoints (ADT: EventRouteEndpointInvalid)"),
            ),
        }
    }
    // Route endpoint indexes must point into the endpoints that survived validation.
    let kept: Vec<usize> = endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_some())
        .map(|(i, _)| i)
        .collect();
    for route in &mut settings {
        route.endpoint = kept
            .iter()
            .position(|i| *i == route.endpoint)
            .unwrap_or(route.endpoint);
    }
    settings
}

fn workload(
    value: Option<&Value>,
    overrides: &Overrides,
    limits_enforced: bool,
    problems: &mut Problems,
) -> Option<(WorkloadSettings, SeedSource)> {
    let config = match value {
        Some(v) => section::<WorkloadConfig>(v, "workload", problems)?,
        None => WorkloadConfig {
            seed: None,
            twins: None,
            mix: None,
            rate: None,
            count: None,
            duration_seconds: None,
            start_time: None,
        },
    };
    let (seed, seed_source) = match (overrides.seed, config.seed) {
        (Some(seed), _) => (seed, SeedSource::Flag),
        (None, Some(seed)) => (seed, SeedSource::Config),
        (None, None) => (0, SeedSource::Clock),
    };
    let twins = config.twins.unwrap_or(DEFAULT_TWINS);
    if twins == 0 {
        problems.push("workload.twins", "must be at least 1");
    }
    if limits_enforced && twins > MAX_TWINS {
        problems.push(
            "workload.twins",
            format!(
                "ADT allows {MAX_TWINS} twins per instance by default, found {twins}; set \"limits\": {{\"enforce\": false}} to lift this for load tests"
            ),
        );
    }
    let mut mix = DEFAULT_MIX;
    if let Some(weights) = &config.mix {
        mix = [0; 7];
        for (name, weight) in weights {
            match EventType::from_type_str(name) {
                Some(kind) => mix[kind.index()] = *weight,
                None => problems.push(
                    join("workload.mix", name),
                    format!(
                        "is not an ADT event type; expected one of {}",
                        EventType::ALL.map(EventType::as_str).join(", ")
                    ),
                ),
            }
        }
        if mix.iter().map(|w| u64::from(*w)).sum::<u64>() == 0 {
            problems.push(
                "workload.mix",
                "needs at least one type with a weight above 0",
            );
        }
        if mix.iter().map(|w| u64::from(*w)).sum::<u64>() > u64::from(u32::MAX) {
            problems.push("workload.mix", "weights add up to more than 4294967295");
        }
    }
    let rate = match &config.rate {
        Some(rate) => rate_shape(rate, problems),
        None => Some(RateShape::Constant {
            events_per_second: 1000.0,
        }),
    };
    let duration = config
        .duration_seconds
        .and_then(|s| seconds(s, "workload.durationSeconds", problems));
    let count = match (config.count, duration, overrides.count) {
        (_, _, Some(count)) => Some(count),
        (None, None, None) => Some(DEFAULT_COUNT),
        (count, _, None) => count,
    };
    // `--count` lifts `durationSeconds` (the run and `generate` drop it).
    let bounded_by_duration = duration.is_some() && overrides.count.is_none();
    if let (Some(rate), Some(count), false) = (&rate, count, bounded_by_duration) {
        unreachable_count(rate, count, problems);
    }
    let start_time = config.start_time.as_ref().and_then(|text| {
        let parsed = Timestamp::parse_rfc3339(text);
        if parsed.is_none() {
            problems.push(
                "workload.startTime",
                format!("must be an RFC 3339 time like 2026-01-01T00:00:00Z, found '{text}'"),
            );
        }
        parsed
    });
    Some((
        WorkloadSettings {
            seed,
            twins,
            mix,
            rate: rate?,
            count,
            duration,
            start_time,
        },
        seed_source,
    ))
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
    endpoints: &[Option<EndpointSettings>],
    problems: &mut Problems,
) {
    // `--count` lifts `durationSeconds`.
    let by_duration = workload
        .duration
        .filter(|_| overrides.count.is_none())
        .map(|d| d.as_secs_f64());
    let by_count = workload
        .count
        .and_then(|count| workload.rate.time_to_reach(count));
    let schedule = match (by_duration, by_count) {
        (Some(duration), Some(count)) => duration.min(count),
        (Some(duration), None) => duration,
        (None, Some(count)) => count,
        // A count the shape never reaches is refused at workload.rate already.
        (None, None) => return,
    };
    let tail = endpoints
        .iter()
        .flatten()
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
            (seconds, endpoint.name.as_str(), retention.is_some())
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let span = schedule + tail.map_or(0.0, |(seconds, _, _)| seconds);
    let start = workload.start_time.unwrap_or(DEFAULT_START_TIME);
    let end = Timestamp::MAX.unix_seconds() as f64 + 1.0;
    if start.unix_seconds() as f64 + span < end {
        return;
    }
    let mut why = format!("events due over {}", human(schedule));
    if let Some((seconds, name, dead_letters)) = tail {
        let fields = if dead_letters {
            "eventTimeToLiveInMinutes + attemptTimeoutSeconds + deadLetterRetentionHours"
        } else {
            "eventTimeToLiveInMinutes + attemptTimeoutSeconds"
        };
        why.push_str(&format!(
            ", then up to {} at endpoints.{name} ({fields})",
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

/// A shape whose rate is 0 from some point on can never reach a `count` larger than what it
/// yields before: the run would wait for events that never come.
fn unreachable_count(rate: &RateShape, count: u64, problems: &mut Problems) {
    let Some(idle) = rate.idle_for_good() else {
        return;
    };
    // The schedule places events by the midpoint rate: allow for rounding of the area.
    let reachable = (idle.events_before + 0.5).floor() as u64;
    if count > reachable {
        problems.push(
            "workload.rate",
            format!(
                "the rate is 0 from {}s on, after about {reachable} events, so count {count} is never reached; end on a rate above 0, lower count, or bound the run with workload.durationSeconds",
                idle.from
            ),
        );
    }
}

fn seconds(value: f64, path: &str, problems: &mut Problems) -> Option<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) => Some(duration),
        Err(_) => {
            problems.push(
                path,
                format!("must be a number of seconds ≥ 0, found {value}"),
            );
            None
        }
    }
}

fn rate_shape(rate: &RateConfig, problems: &mut Problems) -> Option<RateShape> {
    let path = "workload.rate";
    let at = |field: &str| join(path, field);
    let required = |field: &str, value: Option<f64>, problems: &mut Problems| -> Option<f64> {
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v),
            Some(v) => {
                problems.push(at(field), format!("must be a finite number ≥ 0, found {v}"));
                None
            }
            None => {
                problems.push(
                    at(field),
                    format!(
                        "is required for shape '{}'",
                        rate.shape.as_deref().unwrap_or_default()
                    ),
                );
                None
            }
        }
    };
    let fields: [(&str, bool); 12] = [
        ("eventsPerSecond", rate.events_per_second.is_some()),
        ("fromEventsPerSecond", rate.from_events_per_second.is_some()),
        ("toEventsPerSecond", rate.to_events_per_second.is_some()),
        ("overSeconds", rate.over_seconds.is_some()),
        ("steps", rate.steps.is_some()),
        ("baseEventsPerSecond", rate.base_events_per_second.is_some()),
        (
            "spikeEventsPerSecond",
            rate.spike_events_per_second.is_some(),
        ),
        ("atSeconds", rate.at_seconds.is_some()),
        ("durationSeconds", rate.duration_seconds.is_some()),
        ("meanEventsPerSecond", rate.mean_events_per_second.is_some()),
        (
            "amplitudeEventsPerSecond",
            rate.amplitude_events_per_second.is_some(),
        ),
        ("periodSeconds", rate.period_seconds.is_some()),
    ];
    let allowed: &[&str] = match rate.shape.as_deref() {
        Some("constant") => &["eventsPerSecond"],
        Some("ramp") => &["fromEventsPerSecond", "toEventsPerSecond", "overSeconds"],
        Some("steps") => &["steps"],
        Some("spike") => &[
            "baseEventsPerSecond",
            "spikeEventsPerSecond",
            "atSeconds",
            "durationSeconds",
        ],
        Some("sine") => &[
            "meanEventsPerSecond",
            "amplitudeEventsPerSecond",
            "periodSeconds",
        ],
        Some(other) => {
            problems.push(
                at("shape"),
                format!("must be constant, ramp, steps, spike or sine, found '{other}'"),
            );
            return None;
        }
        None => {
            problems.push(
                at("shape"),
                "is required (constant, ramp, steps, spike or sine)",
            );
            return None;
        }
    };
    let shape = rate.shape.as_deref().unwrap_or_default();
    for (field, present) in fields {
        if present && !allowed.contains(&field) {
            problems.push(
                at(field),
                format!(
                    "does not apply to shape '{shape}' (it takes {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    let secs = |v: f64| Duration::from_secs_f64(v);
    let shape = match shape {
        "constant" => RateShape::Constant {
            events_per_second: required("eventsPerSecond", rate.events_per_second, problems)?,
        },
        "ramp" => {
            let from = required("fromEventsPerSecond", rate.from_events_per_second, problems);
            let to = required("toEventsPerSecond", rate.to_events_per_second, problems);
            let over = required("overSeconds", rate.over_seconds, problems);
            RateShape::Ramp {
                from: from?,
                to: to?,
                over: secs(over?),
            }
        }
        "steps" => {
            let Some(steps) = &rate.steps else {
                problems.push(at("steps"), "is required for shape 'steps'");
                return None;
            };
            if steps.is_empty() {
                problems.push(at("steps"), "needs at least one step");
            }
            let mut out = Vec::new();
            for (index, step) in steps.iter().enumerate() {
                let step_path = format!("{path}.steps[{index}]");
                if !(step.events_per_second.is_finite() && step.events_per_second >= 0.0) {
                    problems.push(
                        join(&step_path, "eventsPerSecond"),
                        "must be a finite number ≥ 0",
                    );
                } else if !(step.duration_seconds.is_finite() && step.duration_seconds >= 0.0) {
                    problems.push(
                        join(&step_path, "durationSeconds"),
                        "must be a finite number ≥ 0",
                    );
                } else {
                    out.push(Step {
                        events_per_second: step.events_per_second,
                        duration: secs(step.duration_seconds),
                    });
                }
            }
            RateShape::Steps(out)
        }
        "spike" => {
            let base = required("baseEventsPerSecond", rate.base_events_per_second, problems);
            let spike = required(
                "spikeEventsPerSecond",
                rate.spike_events_per_second,
                problems,
            );
            let at_s = required("atSeconds", rate.at_seconds, problems);
            let duration = required("durationSeconds", rate.duration_seconds, problems);
            RateShape::Spike {
                base: base?,
                spike: spike?,
                at: secs(at_s?),
                duration: secs(duration?),
            }
        }
        _ => {
            let mean = required("meanEventsPerSecond", rate.mean_events_per_second, problems);
            let amplitude = required(
                "amplitudeEventsPerSecond",
                rate.amplitude_events_per_second,
                problems,
            );
            let period = required("periodSeconds", rate.period_seconds, problems);
            if period == Some(0.0) {
                problems.push(at("periodSeconds"), "must be above 0");
                return None;
            }
            RateShape::Sine {
                mean: mean?,
                amplitude: amplitude?,
                period: secs(period?),
            }
        }
    };
    if shape.peak() <= 0.0 {
        problems.push(path, "never produces an event: every rate is 0");
        return None;
    }
    Some(shape)
}
