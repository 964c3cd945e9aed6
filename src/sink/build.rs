//! Every endpoint's sink, built from its settings the same way whatever its kind: a simulated
//! endpoint (any type, `simulate` in the file), an Event Grid topic or a webhook over HTTP, an
//! Event Hub or a Service Bus topic over AMQP. The engine calls [`sink`] once per endpoint.

use crate::clock::ClockMode;
use crate::config::{Connection, EndpointSettings};
use crate::sink::http::{EventGridSink, HttpClient, WebhookSink};
use crate::sink::simulated::SimulatedSink;
use crate::sink::{Sink, amqp};

/// Why an endpoint's sink cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The settings lack what the sink needs (a key, a URI) or hold one that does not parse.
    #[error("{0}")]
    Unsupported(String),
    /// Virtual time with a real endpoint: its requests would be real.
    #[error("is a real {0} endpoint (it would send real requests)")]
    Real(&'static str),
}

/// The sink of `endpoint`. `seed` is the run's master seed (a simulated endpoint draws its faults
/// from a stream of it); `http` is the one client every Event Grid and Webhook sink shares. Under virtual time only
/// simulated endpoints can be built.
pub fn sink(
    endpoint: &EndpointSettings,
    seed: u64,
    http: &HttpClient,
    clock: ClockMode,
) -> Result<Box<dyn Sink>, BuildError> {
    if let Some(faults) = &endpoint.simulate {
        return Ok(Box::new(SimulatedSink::new(
            &endpoint.name,
            faults.clone(),
            seed,
        )));
    }
    if clock == ClockMode::Virtual {
        return Err(BuildError::Real(endpoint.endpoint_type.as_str()));
    }
    let unsupported = |message: &str| BuildError::Unsupported(message.to_owned());
    match &endpoint.connection {
        Connection::EventGrid {
            topic_endpoint,
            access_key1,
            access_key2,
            input_schema,
            ..
        } => {
            let (Some(url), Some(key1)) = (topic_endpoint, access_key1) else {
                return Err(unsupported(
                    "an EventGrid endpoint needs TopicEndpoint and accessKey1",
                ));
            };
            let keys = std::iter::once(key1.clone())
                .chain(access_key2.clone())
                .collect();
            Ok(Box::new(EventGridSink::new(
                http.clone(),
                url,
                keys,
                *input_schema,
                endpoint.delivery.batch,
                &event_grid_topic(endpoint),
            )))
        }
        Connection::Webhook {
            uri: Some(uri),
            mode,
            headers,
        } => Ok(Box::new(WebhookSink::new(
            http.clone(),
            uri,
            *mode,
            headers,
            endpoint.delivery.batch,
        ))),
        Connection::Webhook { uri: None, .. } => {
            Err(unsupported("a Webhook endpoint needs endpointUri"))
        }
        Connection::Amqp { .. } => amqp::sink_for(endpoint, None)
            .map_err(|error| BuildError::Unsupported(error.to_string())),
    }
}

/// The `topic` of an endpoint's Event Grid schema events (its events and its dead-letters): its
/// `topicResourceId`, else an ARM id named after its `TopicEndpoint`'s host (a simulated topic
/// may have none: then after its name). Any other endpoint: after its name.
pub fn event_grid_topic(endpoint: &EndpointSettings) -> String {
    let (resource_id, topic_endpoint) = match &endpoint.connection {
        Connection::EventGrid {
            topic_resource_id,
            topic_endpoint,
            ..
        } => (topic_resource_id.as_deref(), topic_endpoint.as_deref()),
        _ => (None, None),
    };
    match resource_id {
        Some(id) => id.to_owned(),
        None => default_topic_id(topic_endpoint.unwrap_or(&endpoint.name)),
    }
}

/// The `topic` of Event Grid schema events when the endpoint names no `topicResourceId`: an ARM id
/// with the topic's name (the first label of its host) and placeholder subscription and group.
/// The host is read past any userinfo, which must not become part of an event.
fn default_topic_id(topic_endpoint: &str) -> String {
    let after_scheme = topic_endpoint
        .split_once("://")
        .map_or(topic_endpoint, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let name = host
        .split(['.', ':'])
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("topic");
    format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/twinroute/providers/Microsoft.EventGrid/topics/{name}"
    )
}

#[cfg(test)]
mod tests {
    use super::default_topic_id;

    #[test]
    fn the_default_topic_is_named_by_the_host_never_by_userinfo() {
        for (endpoint, name) in [
            (
                "https://mytopic.westus2-1.eventgrid.azure.net/api/events",
                "mytopic",
            ),
            ("http://user:pw@127.0.0.1:8080/api/events?code=k", "127"),
            ("https://user:pw@t1.eventgrid.azure.net", "t1"),
            ("https:///x", "topic"),
        ] {
            let id = default_topic_id(endpoint);
            assert!(id.ends_with(&format!("/topics/{name}")), "{endpoint}: {id}");
            assert!(!id.contains("user") && !id.contains("pw"), "{id}");
        }
    }
}
