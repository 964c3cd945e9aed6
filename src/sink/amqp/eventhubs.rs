//! Event Hubs (`endpointType: EventHub`) over `azure_messaging_eventhubs`' `ProducerClient`.
//!
//! One attempt sends the worker's batch: the deliveries are grouped by twin id, each group goes
//! as one `EventDataBatch` with the twin id as its partition key (so one twin's events keep their
//! order within a partition; ADT itself promises no order), sized by the link's maximum message
//! size. All batches are built before any is sent, so an event over the hub's maximum size fails
//! the attempt as 413 with nothing sent. The client's own retries are off: the worker owns
//! retries, so one attempt is one send of each batch.
//!
//! If a later group's send fails after an earlier one succeeded, the attempt fails as a whole and
//! the retry sends the earlier group again (a duplicate the receiver can spot by message-id, which
//! is the CloudEvents id). With `maxEventsPerBatch` 1 (the default) this cannot happen.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AuthenticationType, Connection};
use crate::delivery::classify::AttemptResult;
use crate::delivery::worker::Delivery;
use crate::event::Serialized;
use crate::secret::Secret;
use crate::sink::{Answer, Attempt, Sink};
use azure_core::credentials::TokenCredential;
use azure_messaging_eventhubs::{
    EventDataBatch, EventDataBatchOptions, EventHubsError, ProducerClient, RetryOptions,
};

use super::AmqpSinkError;
use super::classify;
use super::client_thread::ClientThread;
use super::cloudevents;
use super::connection::{ConnectionString, endpoint_host};
use super::slot::{Client, Closable, Slot, unless_connection_lost};

/// Event Hubs' maximum event size on the Basic and Standard tiers (1 MB); the link says the
/// real maximum, this only tells the worker when to send an event alone.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// How the sink reaches its hub.
#[derive(Clone)]
pub enum EventHubTarget {
    /// KeyBased: connection strings, primary first.
    Keys {
        /// The connection strings as given (the client parses them itself).
        connection_strings: Vec<Secret>,
        /// Each parsed, for `UseDevelopmentEmulator` and the hub name.
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
                    .clone()
                    .ok_or(AmqpSinkError::MissingConnectionString)?;
                let connection_strings: Vec<Secret> =
                    std::iter::once(primary).chain(secondary.clone()).collect();
                let parsed = connection_strings
                    .iter()
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
                Ok(EventHubTarget::Keys {
                    connection_strings,
                    parsed,
                    hub,
                })
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
            EventHubTarget::Keys {
                connection_strings, ..
            } => connection_strings.len(),
            EventHubTarget::Identity { .. } => 1,
        }
    }

    /// Opens a producer with key `key`.
    async fn open(&self, key: usize) -> Result<ProducerClient, EventHubsError> {
        let builder = ProducerClient::builder()
            .with_application_id("twinroute".to_owned())
            .with_retry_options(no_retries());
        match self {
            EventHubTarget::Keys {
                connection_strings,
                parsed,
                hub,
            } => {
                let builder = match parsed[key].custom_endpoint() {
                    Some(endpoint) => builder.with_custom_endpoint(endpoint),
                    None => builder,
                };
                // The client insists the hub it is given agree with EntityPath, if any.
                let hub = parsed[key].entity_path.is_none().then_some(hub.as_str());
                builder
                    .open_with_connection_string(connection_strings[key].expose(), hub)
                    .await
            }
            EventHubTarget::Identity {
                namespace,
                hub,
                credential,
            } => builder.open(namespace, hub, credential.clone()).await,
        }
    }
}

/// One try per call: the worker owns retries and their schedule.
fn no_retries() -> RetryOptions {
    RetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(10),
        max_delay: azure_core::time::Duration::milliseconds(10),
        max_total_elapsed: azure_core::time::Duration::seconds(30),
        max_retries: 0,
    }
}

struct Shared {
    target: EventHubTarget,
    slot: Slot<ProducerClient>,
}

/// One attempt's events, grouped by twin.
type Groups = Vec<(Arc<str>, Vec<Arc<Serialized>>)>;

/// An Event Hub endpoint. Its `ProducerClient` lives on the sink's client thread (started on the
/// first attempt, ended when the sink is dropped); see `src/client_thread.rs`.
pub struct EventHubSink {
    shared: Arc<Shared>,
    thread: Option<ClientThread<Groups>>,
    max_batch: usize,
}

impl EventHubSink {
    /// A sink for `target`, carrying up to `max_batch` events per attempt. Connects on the first
    /// attempt.
    pub fn new(target: EventHubTarget, max_batch: usize) -> Self {
        EventHubSink {
            shared: Arc::new(Shared {
                slot: Slot::new(target.key_count()),
                target,
            }),
            thread: None,
            max_batch: max_batch.max(1),
        }
    }

    /// The sink for an endpoint's [`Connection::Amqp`] (`connectionStringPrimaryKey`, then
    /// `connectionStringSecondaryKey`; or `endpointUri` + `entityPath` with `credential`, the
    /// system-assigned managed identity when `None`).
    pub fn from_connection(
        authentication: AuthenticationType,
        connection: &Connection,
        credential: Option<Arc<dyn TokenCredential>>,
        max_batch: usize,
    ) -> Result<Self, AmqpSinkError> {
        Ok(Self::new(
            EventHubTarget::from_connection(authentication, connection, credential)?,
            max_batch,
        ))
    }

    /// Where the sink sends.
    pub fn target(&self) -> &EventHubTarget {
        &self.shared.target
    }
}

impl Sink for EventHubSink {
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn preferred_batch_bytes(&self) -> Option<usize> {
        Some(DEFAULT_MAX_MESSAGE_BYTES)
    }

    fn attempt(&mut self, batch: &[Delivery], _now: Duration) -> Attempt {
        let groups = group_by_twin(batch);
        if self.thread.is_none() {
            let shared = self.shared.clone();
            match ClientThread::spawn("twinroute-eventhubs", move |groups: Groups| {
                let shared = shared.clone();
                async move { shared.send(&groups).await }
            }) {
                Ok(thread) => self.thread = Some(thread),
                Err(error) => {
                    tracing::error!(%error, "cannot start the event hubs client thread");
                    return Attempt::Now(Answer::observed(AttemptResult::ConnectionError));
                }
            }
        }
        match &self.thread {
            Some(thread) => thread.attempt(groups),
            None => Attempt::Now(Answer::observed(AttemptResult::ConnectionError)),
        }
    }
}

/// The batch's events grouped by twin id, groups in order of first appearance, events in order.
fn group_by_twin(batch: &[Delivery]) -> Groups {
    let mut groups: Groups = Vec::new();
    for delivery in batch {
        let twin = &delivery.event.event.twin_id;
        match groups.iter_mut().find(|(t, _)| t == twin) {
            Some((_, events)) => events.push(delivery.event.clone()),
            None => groups.push((twin.clone(), vec![delivery.event.clone()])),
        }
    }
    groups
}

impl Shared {
    async fn send(&self, groups: &[(Arc<str>, Vec<Arc<Serialized>>)]) -> AttemptResult {
        let open = |key| async move {
            self.target
                .open(key)
                .await
                .map_err(|error| classify::event_hubs_error(&error).result())
        };
        let send = |client: Arc<Client<ProducerClient>>| async move {
            let result = unless_connection_lost(send_groups(&client, groups), || async {
                // A management read goes over the same connection.
                match client.get_eventhub_properties().await {
                    Ok(_) => true,
                    Err(error) => {
                        classify::event_hubs_error(&error) != classify::Failed::CONNECTION
                    }
                }
            })
            .await;
            if result != AttemptResult::status(200) {
                tracing::debug!(?result, "event hubs send failed");
            }
            result
        };
        self.slot.attempt(open, send).await
    }
}

impl Closable for ProducerClient {
    fn close(self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = ProducerClient::close(self).await;
        })
    }
}

/// Builds every batch, then sends them in order; stops at the first failure.
async fn send_groups(
    client: &ProducerClient,
    groups: &[(Arc<str>, Vec<Arc<Serialized>>)],
) -> AttemptResult {
    let mut batches: Vec<EventDataBatch<'_>> = Vec::new();
    for (twin, events) in groups {
        let mut pending = events.iter().peekable();
        while pending.peek().is_some() {
            let options = EventDataBatchOptions {
                partition_key: Some(twin.to_string()),
                ..Default::default()
            };
            let batch = match client.create_batch(Some(options)).await {
                Ok(batch) => batch,
                Err(error) => return classify::event_hubs_error(&error).into(),
            };
            while let Some(event) = pending.peek() {
                match batch.try_add_amqp_message(cloudevents::amqp_message(&event.event), None) {
                    Ok(true) => {
                        pending.next();
                    }
                    Ok(false) => break,
                    Err(error) => return classify::event_hubs_error(&error).into(),
                }
            }
            if batch.is_empty() {
                // One event larger than the hub's maximum message size.
                return AttemptResult::status(413);
            }
            batches.push(batch);
        }
    }
    for batch in batches {
        if let Err(error) = client.send_batch(batch, None).await {
            return classify::event_hubs_error(&error).into();
        }
    }
    AttemptResult::status(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_based_needs_endpoint_uri_and_entity_path_and_builds_without_network() {
        let connection = Connection::Amqp {
            primary: None,
            secondary: None,
            endpoint_uri: Some("sb://ns.servicebus.windows.net/".to_owned()),
            entity_path: Some("hub1".to_owned()),
        };
        let sink =
            EventHubSink::from_connection(AuthenticationType::IdentityBased, &connection, None, 10)
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
            EventHubSink::from_connection(AuthenticationType::IdentityBased, &missing, None, 1),
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
            EventHubSink::from_connection(AuthenticationType::KeyBased, &connection, None, 1)
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
            EventHubSink::from_connection(AuthenticationType::KeyBased, &no_hub, None, 1).is_err()
        );
    }
}
