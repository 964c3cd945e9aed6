//! Event Hubs (`endpointType: EventHub`) over AMQP, on the connection and link pool both AMQP
//! sinks share (`src/sink/amqp/producer.rs`, which says why not the SDK's `ProducerClient`).
//!
//! One attempt sends the worker's batch: the deliveries are grouped by twin id, each group goes
//! as batch messages (format `0x80013700`, as the Azure SDKs send an `EventDataBatch`) with the
//! twin id as the partition key (`x-opt-partition-key`) on each event and on the envelope (so one
//! twin's events keep their order within a partition; ADT itself promises no order), sized by
//! the link's maximum message size. All batches are built before any is sent, so an event over
//! the hub's maximum size fails the attempt as 413 with nothing sent. One attempt is one send of
//! each batch: the worker owns retries.
//!
//! If a later group's send fails after an earlier one succeeded, the attempt fails as a whole and
//! the retry sends the earlier group again (a duplicate the receiver can spot by message-id, which
//! is the CloudEvents id). With `maxEventsPerBatch` 1 (the default) this cannot happen.

use std::sync::Arc;

use crate::config::{AuthenticationType, Connection};
use crate::delivery::classify::AttemptResult;
use crate::event::Serialized;
use azure_core::credentials::TokenCredential;
use azure_core_amqp::{AmqpMessage, AmqpSymbol};

use super::AmqpSinkError;
use super::cloudevents;
use super::connection::{ConnectionString, EVENT_HUBS_SCOPE, audience, endpoint_host};
use super::producer::{Credential, Entity, Transfer, pack};
use super::sink::{AmqpSink, Kind};

/// Event Hubs' maximum event size on the Basic and Standard tiers (1 MB); the link says the
/// real maximum, this only tells the worker when to send an event alone.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The message annotation that carries an event's partition key.
pub const PARTITION_KEY_ANNOTATION: &str = "x-opt-partition-key";

/// How the sink reaches its hub.
#[derive(Clone)]
pub enum EventHubTarget {
    /// KeyBased: connection strings, primary first.
    Keys {
        /// The parsed connection strings.
        parsed: Vec<ConnectionString>,
        /// The hub, when no connection string names one (`EntityPath`).
        hub: String,
    },
    /// IdentityBased: `endpointUri`'s host and `entityPath`, with an Entra ID credential.
    Identity {
        /// `<namespace>.servicebus.windows.net`.
        namespace: String,
        /// The hub.
        hub: String,
        /// The credential.
        credential: Arc<dyn TokenCredential>,
    },
}

impl std::fmt::Debug for EventHubTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventHubTarget::Keys { parsed, hub, .. } => f
                .debug_struct("Keys")
                .field("parsed", parsed)
                .field("hub", hub)
                .finish(),
            EventHubTarget::Identity { namespace, hub, .. } => f
                .debug_struct("Identity")
                .field("namespace", namespace)
                .field("hub", hub)
                .finish(),
        }
    }
}

impl EventHubTarget {
    /// The target of an endpoint's [`Connection::Amqp`].
    pub fn from_connection(
        authentication: AuthenticationType,
        connection: &Connection,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, AmqpSinkError> {
        let Connection::Amqp {
            primary,
            secondary,
            endpoint_uri,
            entity_path,
        } = connection
        else {
            return Err(AmqpSinkError::NotAmqp("EventHub".to_owned()));
        };
        match authentication {
            AuthenticationType::KeyBased => {
                let primary = primary
                    .as_ref()
                    .ok_or(AmqpSinkError::MissingConnectionString)?;
                let parsed = std::iter::once(primary)
                    .chain(secondary.as_ref())
                    .map(|s| ConnectionString::parse(s.expose()))
                    .collect::<Result<Vec<_>, _>>()?;
                let hub = parsed[0]
                    .entity(entity_path.as_deref())
                    .ok_or_else(|| {
                        AmqpSinkError::Invalid(
                            "the connection string names no hub (EntityPath) and no entityPath is given"
                                .to_owned(),
                        )
                    })?
                    .to_owned();
                Ok(EventHubTarget::Keys { parsed, hub })
            }
            AuthenticationType::IdentityBased => {
                let (Some(uri), Some(hub)) = (endpoint_uri, entity_path) else {
                    return Err(AmqpSinkError::MissingIdentityTarget);
                };
                let credential = match credential {
                    Some(credential) => credential,
                    None => super::managed_identity(None)?,
                };
                Ok(EventHubTarget::Identity {
                    namespace: endpoint_host(uri)?,
                    hub: hub.clone(),
                    credential,
                })
            }
        }
    }

    fn key_count(&self) -> usize {
        match self {
            EventHubTarget::Keys { parsed, .. } => parsed.len(),
            EventHubTarget::Identity { .. } => 1,
        }
    }

    /// Where key `key` sends, and what signs its token.
    fn entity(&self, key: usize) -> Entity {
        match self {
            EventHubTarget::Keys { parsed, hub, .. } => {
                let cs = &parsed[key];
                let hub = cs.entity_path.as_deref().unwrap_or(hub);
                let audience = audience(&cs.host, hub);
                Entity {
                    address: audience.clone(),
                    audience,
                    custom_endpoint: cs.custom_endpoint(),
                    name: format!("twinroute-{hub}"),
                    default_max_message_size: DEFAULT_MAX_MESSAGE_BYTES,
                    credential: Credential::Sas {
                        key_name: cs.key_name.clone(),
                        key: cs.key.clone(),
                    },
                }
            }
            EventHubTarget::Identity {
                namespace,
                hub,
                credential,
            } => {
                let audience = audience(namespace, hub);
                Entity {
                    address: audience.clone(),
                    audience,
                    custom_endpoint: None,
                    name: format!("twinroute-{hub}"),
                    default_max_message_size: DEFAULT_MAX_MESSAGE_BYTES,
                    credential: Credential::Entra {
                        credential: credential.clone(),
                        scope: EVENT_HUBS_SCOPE,
                    },
                }
            }
        }
    }
}

/// An Event Hub endpoint.
pub type EventHubSink = AmqpSink<EventHubTarget>;

static EVENT_HUBS: Kind<EventHubTarget> = Kind {
    thread: "twinroute-eventhubs",
    preferred_batch_bytes: DEFAULT_MAX_MESSAGE_BYTES,
    keys: EventHubTarget::key_count,
    entity: EventHubTarget::entity,
    transfers,
};

impl AmqpSink<EventHubTarget> {
    /// A sink for `target`, carrying up to `max_batch` events per attempt with up to
    /// `concurrency` transfers in flight. Connects on the first attempt.
    pub fn new(target: EventHubTarget, max_batch: usize, concurrency: usize) -> Self {
        AmqpSink::with(&EVENT_HUBS, target, max_batch, concurrency)
    }

    /// The sink for an endpoint's [`Connection::Amqp`] (`connectionStringPrimaryKey`, then
    /// `connectionStringSecondaryKey`; or `endpointUri` + `entityPath` with `credential`, the
    /// system-assigned managed identity when `None`), with up to `concurrency` transfers in
    /// flight.
    pub fn from_connection(
        authentication: AuthenticationType,
        connection: &Connection,
        credential: Option<Arc<dyn TokenCredential>>,
        max_batch: usize,
        concurrency: usize,
    ) -> Result<Self, AmqpSinkError> {
        Ok(Self::new(
            EventHubTarget::from_connection(authentication, connection, credential)?,
            max_batch,
            concurrency,
        ))
    }
}

/// One attempt's events grouped by twin id, groups in order of first appearance, events in order.
fn group_by_twin(events: &[Arc<Serialized>]) -> Vec<(&Arc<str>, Vec<&Arc<Serialized>>)> {
    let mut groups: Vec<(&Arc<str>, Vec<&Arc<Serialized>>)> = Vec::new();
    for event in events {
        let twin = &event.event.twin_id;
        match groups.iter_mut().find(|(t, _)| *t == twin) {
            Some((_, group)) => group.push(event),
            None => groups.push((twin, vec![event])),
        }
    }
    groups
}

/// A batch envelope as the Azure SDKs build it: the first message's header, properties,
/// application properties and annotations (the partition key among them), no body.
fn envelope(first: &AmqpMessage) -> AmqpMessage {
    let mut builder = AmqpMessage::builder();
    if let Some(header) = &first.header {
        builder = builder.with_header(header.clone());
    }
    if let Some(properties) = &first.properties {
        builder = builder.with_properties(properties.clone());
    }
    if let Some(application_properties) = &first.application_properties {
        builder = builder.with_application_properties(application_properties.clone());
    }
    if let Some(annotations) = &first.message_annotations {
        builder = builder.with_message_annotations(annotations.clone());
    }
    builder.build()
}

/// Every group's batch messages, built before any is sent: one twin's events per batch message,
/// its id as the partition key on each event and on the envelope.
fn transfers(
    events: &[Arc<Serialized>],
    max_message_size: usize,
) -> Result<Vec<Transfer>, AttemptResult> {
    let mut transfers = Vec::new();
    for (twin, events) in group_by_twin(events) {
        let messages: Vec<AmqpMessage> = events
            .iter()
            .map(|event| {
                let mut message = cloudevents::amqp_message(&event.event);
                message.add_message_annotation(
                    AmqpSymbol::from(PARTITION_KEY_ANNOTATION),
                    twin.to_string(),
                );
                message
            })
            .collect();
        transfers.extend(pack(&messages, max_message_size, true, envelope)?);
    }
    Ok(transfers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn identity_based_needs_endpoint_uri_and_entity_path_and_builds_without_network() {
        let connection = Connection::Amqp {
            primary: None,
            secondary: None,
            endpoint_uri: Some("sb://ns.servicebus.windows.net/".to_owned()),
            entity_path: Some("hub1".to_owned()),
        };
        let sink = EventHubSink::from_connection(
            AuthenticationType::IdentityBased,
            &connection,
            None,
            10,
            1,
        )
        .unwrap();
        match sink.target() {
            EventHubTarget::Identity { namespace, hub, .. } => {
                assert_eq!(namespace, "ns.servicebus.windows.net");
                assert_eq!(hub, "hub1");
            }
            other => panic!("{other:?}"),
        }
        let missing = Connection::Amqp {
            primary: None,
            secondary: None,
            endpoint_uri: None,
            entity_path: Some("hub1".to_owned()),
        };
        assert!(matches!(
            EventHubSink::from_connection(AuthenticationType::IdentityBased, &missing, None, 1, 1),
            Err(AmqpSinkError::MissingIdentityTarget)
        ));
    }

    #[test]
    fn key_based_takes_the_hub_from_entity_path_or_the_endpoint() {
        let connection = Connection::Amqp {
            primary: Some(Secret::new(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b",
            )),
            secondary: Some(Secret::new(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a2;SharedAccessKey=c",
            )),
            endpoint_uri: None,
            entity_path: Some("hub2".to_owned()),
        };
        let sink =
            EventHubSink::from_connection(AuthenticationType::KeyBased, &connection, None, 1, 1)
                .unwrap();
        match sink.target() {
            EventHubTarget::Keys { hub, parsed, .. } => {
                assert_eq!(hub, "hub2");
                assert_eq!(parsed.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let no_hub = Connection::Amqp {
            primary: Some(Secret::new(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b",
            )),
            secondary: None,
            endpoint_uri: None,
            entity_path: None,
        };
        assert!(
            EventHubSink::from_connection(AuthenticationType::KeyBased, &no_hub, None, 1, 1)
                .is_err()
        );
    }
}
