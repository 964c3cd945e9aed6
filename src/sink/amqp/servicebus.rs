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
use std::time::Duration;

use crate::config::{AuthenticationType, Connection};
use crate::delivery::classify::AttemptResult;
use crate::delivery::worker::Delivery;
use crate::sink::{Answer, Attempt, Sink};
use azure_core::credentials::TokenCredential;
use azure_core_amqp::AmqpMessage;

use super::AmqpSinkError;
use super::client_thread::ClientThread;
use super::cloudevents;
use super::connection::{ConnectionString, SERVICE_BUS_SCOPE, audience, endpoint_host};
pub use super::producer::BATCH_MESSAGE_FORMAT;
use super::producer::{Credential, Entity, Producer, pack};
use super::slot::{Client, Slot};

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

/// One attempt's twins (sorted, once each) and messages.
type Request = (Vec<Arc<str>>, Vec<AmqpMessage>);

struct Shared {
    target: ServiceBusTarget,
    slot: Slot<Producer>,
    links: usize,
}

/// A Service Bus topic endpoint. Its connection, session and links live on the sink's client
/// thread (started on the first attempt, ended when the sink is dropped); see
/// `src/client_thread.rs`.
pub struct ServiceBusSink {
    shared: Arc<Shared>,
    thread: Option<ClientThread<Request>>,
    max_batch: usize,
}

impl ServiceBusSink {
    /// A sink for `target`, carrying up to `max_batch` events per attempt with up to
    /// `concurrency` transfers in flight. Connects on the first attempt.
    pub fn new(target: ServiceBusTarget, max_batch: usize, concurrency: usize) -> Self {
        ServiceBusSink {
            shared: Arc::new(Shared {
                slot: Slot::new(target.key_count()),
                target,
                links: concurrency.max(1),
            }),
            thread: None,
            max_batch: max_batch.max(1),
        }
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

    /// Where the sink sends.
    pub fn target(&self) -> &ServiceBusTarget {
        &self.shared.target
    }
}

impl Sink for ServiceBusSink {
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn preferred_batch_bytes(&self) -> Option<usize> {
        Some(DEFAULT_MAX_MESSAGE_BYTES)
    }

    fn attempt(&mut self, batch: &[Delivery], _now: Duration) -> Attempt {
        let messages: Vec<AmqpMessage> = batch
            .iter()
            .map(|d| cloudevents::amqp_message(&d.event.event))
            .collect();
        let mut twins: Vec<Arc<str>> = batch
            .iter()
            .map(|d| d.event.event.twin_id.clone())
            .collect();
        twins.sort();
        twins.dedup();
        if self.thread.is_none() {
            let shared = self.shared.clone();
            match ClientThread::spawn("twinroute-servicebus", move |messages| {
                let shared = shared.clone();
                async move { shared.send(messages).await }
            }) {
                Ok(thread) => self.thread = Some(thread),
                Err(error) => {
                    tracing::error!(%error, "cannot start the service bus client thread");
                    return Attempt::Now(Answer::observed(AttemptResult::ConnectionError));
                }
            }
        }
        match &self.thread {
            Some(thread) => thread.attempt((twins, messages)),
            None => Attempt::Now(Answer::observed(AttemptResult::ConnectionError)),
        }
    }
}

impl Shared {
    async fn send(&self, (twins, messages): Request) -> AttemptResult {
        let open = |key| Producer::open(self.target.entity(key), self.links);
        let messages = &messages;
        let twins = &twins;
        let send = |producer: Arc<Client<Producer>>| async move {
            match pack(messages, producer.max_message_size(), false, envelope) {
                Ok(transfers) => producer.send(twins, &transfers).await,
                Err(result) => result,
            }
        };
        self.slot.attempt(open, send).await
    }
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
