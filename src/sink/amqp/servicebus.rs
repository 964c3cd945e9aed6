//! Service Bus topics (`endpointType: ServiceBus`) over AMQP with `azure_core_amqp` (the crate
//! under the Azure Event Hubs client). No released Rust Service Bus crate speaks AMQP, and the
//! REST send API cannot carry `cloudEvents:`-prefixed application-properties.
//!
//! One connection per sink, shared with the Event Hubs sink's design (`src/sink/amqp/producer.rs`):
//! a session, a CBS put-token (a SAS token signed from the connection string's key, or an Entra
//! ID token, put again before it expires), and up to `concurrency` sender links to the topic. One
//! attempt sends the worker's batch as one AMQP batch message (format `0x80013700`, each event a
//! data section holding an encoded message, as the Azure SDKs send batches), split only if the
//! link's maximum message size requires it; a single event goes as a plain message.

use std::sync::Arc;

use crate::config::{AuthenticationType, Connection};
use crate::delivery::classify::AttemptResult;
use crate::event::Serialized;
use azure_core::credentials::TokenCredential;
use azure_core_amqp::AmqpMessage;

use super::AmqpSinkError;
use super::cloudevents;
use super::connection::{ConnectionString, SERVICE_BUS_SCOPE, audience, endpoint_host};
pub use super::producer::BATCH_MESSAGE_FORMAT;
use super::producer::{Credential, Entity, Transfer, pack};
use super::sink::{AmqpSink, Kind};

/// Service Bus Standard's maximum message size (256 KB), used when the link names none.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// How the sink reaches its topic.
#[derive(Clone)]
pub enum ServiceBusTarget {
    /// KeyBased: connection strings, primary first.
    Keys {
        /// The parsed connection strings.
        parsed: Vec<ConnectionString>,
        /// The topic, when no connection string names one (`EntityPath`).
        topic: String,
    },
    /// IdentityBased: `endpointUri`'s host and `entityPath`, with an Entra ID credential.
    Identity {
        /// `<namespace>.servicebus.windows.net`.
        namespace: String,
        /// The topic.
        topic: String,
        /// The credential.
        credential: Arc<dyn TokenCredential>,
    },
}

impl std::fmt::Debug for ServiceBusTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceBusTarget::Keys { parsed, topic } => f
                .debug_struct("Keys")
                .field("parsed", parsed)
                .field("topic", topic)
                .finish(),
            ServiceBusTarget::Identity {
                namespace, topic, ..
            } => f
                .debug_struct("Identity")
                .field("namespace", namespace)
                .field("topic", topic)
                .finish(),
        }
    }
}

impl ServiceBusTarget {
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
            return Err(AmqpSinkError::NotAmqp("ServiceBus".to_owned()));
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
                let topic = parsed[0]
                    .entity(entity_path.as_deref())
                    .ok_or_else(|| {
                        AmqpSinkError::Invalid(
                            "the connection string names no topic (EntityPath) and no entityPath is given"
                                .to_owned(),
                        )
                    })?
                    .to_owned();
                Ok(ServiceBusTarget::Keys { parsed, topic })
            }
            AuthenticationType::IdentityBased => {
                let (Some(uri), Some(topic)) = (endpoint_uri, entity_path) else {
                    return Err(AmqpSinkError::MissingIdentityTarget);
                };
                let credential = match credential {
                    Some(credential) => credential,
                    None => super::managed_identity(None)?,
                };
                Ok(ServiceBusTarget::Identity {
                    namespace: endpoint_host(uri)?,
                    topic: topic.clone(),
                    credential,
                })
            }
        }
    }

    fn key_count(&self) -> usize {
        match self {
            ServiceBusTarget::Keys { parsed, .. } => parsed.len(),
            ServiceBusTarget::Identity { .. } => 1,
        }
    }

    /// Host, topic and socket address override for key `key`.
    fn address(&self, key: usize) -> (&str, &str, Option<String>) {
        match self {
            ServiceBusTarget::Keys { parsed, topic } => {
                let cs = &parsed[key];
                (
                    &cs.host,
                    cs.entity_path.as_deref().unwrap_or(topic),
                    cs.custom_endpoint(),
                )
            }
            ServiceBusTarget::Identity {
                namespace, topic, ..
            } => (namespace, topic, None),
        }
    }

    /// Where key `key` sends, and what signs its token.
    fn entity(&self, key: usize) -> Entity {
        let (host, topic, custom_endpoint) = self.address(key);
        let credential = match self {
            ServiceBusTarget::Keys { parsed, .. } => Credential::Sas {
                key_name: parsed[key].key_name.clone(),
                key: parsed[key].key.clone(),
            },
            ServiceBusTarget::Identity { credential, .. } => Credential::Entra {
                credential: credential.clone(),
                scope: SERVICE_BUS_SCOPE,
            },
        };
        Entity {
            audience: audience(host, topic),
            address: topic.to_owned(),
            custom_endpoint,
            name: format!("twinroute-{topic}"),
            default_max_message_size: DEFAULT_MAX_MESSAGE_BYTES,
            credential,
        }
    }
}

/// A Service Bus topic endpoint.
pub type ServiceBusSink = AmqpSink<ServiceBusTarget>;

static SERVICE_BUS: Kind<ServiceBusTarget> = Kind {
    thread: "twinroute-servicebus",
    preferred_batch_bytes: DEFAULT_MAX_MESSAGE_BYTES,
    keys: ServiceBusTarget::key_count,
    entity: ServiceBusTarget::entity,
    transfers,
};

impl AmqpSink<ServiceBusTarget> {
    /// A sink for `target`, carrying up to `max_batch` events per attempt with up to
    /// `concurrency` transfers in flight. Connects on the first attempt.
    pub fn new(target: ServiceBusTarget, max_batch: usize, concurrency: usize) -> Self {
        AmqpSink::with(&SERVICE_BUS, target, max_batch, concurrency)
    }

    /// The sink for an endpoint's [`Connection::Amqp`] (`primaryConnectionString`, then
    /// `secondaryConnectionString`; or `endpointUri` + `entityPath` with `credential`, the
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
            ServiceBusTarget::from_connection(authentication, connection, credential)?,
            max_batch,
            concurrency,
        ))
    }
}

/// One attempt's events as one batch message (split where the maximum size requires), or one
/// plain message for a single event.
fn transfers(
    events: &[Arc<Serialized>],
    max_message_size: usize,
) -> Result<Vec<Transfer>, AttemptResult> {
    let messages: Vec<AmqpMessage> = events
        .iter()
        .map(|event| cloudevents::amqp_message(&event.event))
        .collect();
    pack(&messages, max_message_size, false, envelope)
}

/// A batch envelope: the first message's properties (its message-id among them), no body.
fn envelope(first: &AmqpMessage) -> AmqpMessage {
    AmqpMessage::builder()
        .with_properties(first.properties.clone().unwrap_or_default())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn identity_based_builds_without_network() {
        let connection = Connection::Amqp {
            primary: None,
            secondary: None,
            endpoint_uri: Some("sb://ns.servicebus.windows.net/".to_owned()),
            entity_path: Some("topic1".to_owned()),
        };
        let sink = ServiceBusSink::from_connection(
            AuthenticationType::IdentityBased,
            &connection,
            None,
            1,
            1,
        )
        .unwrap();
        match sink.target() {
            ServiceBusTarget::Identity {
                namespace, topic, ..
            } => {
                assert_eq!(namespace, "ns.servicebus.windows.net");
                assert_eq!(topic, "topic1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn key_based_prefers_entity_path_of_the_connection_string() {
        let connection = Connection::Amqp {
            primary: Some(Secret::new(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=t9",
            )),
            secondary: None,
            endpoint_uri: None,
            entity_path: None,
        };
        let sink =
            ServiceBusSink::from_connection(AuthenticationType::KeyBased, &connection, None, 1, 1)
                .unwrap();
        let (host, topic, custom) = sink.target().address(0);
        assert_eq!(
            (host, topic, custom),
            ("ns.servicebus.windows.net", "t9", None)
        );
    }
}
