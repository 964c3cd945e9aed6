//! Service Bus topics (`endpointType: ServiceBus`) over AMQP with `azure_core_amqp` (the crate
//! under the Event Hubs client, same version). No released Rust Service Bus crate speaks AMQP, and
//! the REST send API cannot carry `cloudEvents:`-prefixed application-properties.
//!
//! One connection per sink: a session, a CBS put-token (a SAS token signed from the connection
//! string's key, or an Entra ID token), and one sender link to the topic. One attempt sends the
//! worker's batch as one AMQP batch message (format `0x80013700`, each event a data section
//! holding an encoded message, as the Azure SDKs send batches), split only if the link's maximum
//! message size requires it; a single event goes as a plain message. The token is put again
//! before it expires.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AuthenticationType, Connection};
use crate::delivery::classify::AttemptResult;
use crate::delivery::worker::Delivery;
use crate::sink::{Answer, Attempt, Sink};
use azure_core::credentials::{Secret as AzureSecret, TokenCredential};
use azure_core::http::Url;
use azure_core::time::OffsetDateTime;
use azure_core_amqp::{
    AmqpClaimsBasedSecurity, AmqpClaimsBasedSecurityApis, AmqpConnection, AmqpConnectionApis,
    AmqpConnectionOptions, AmqpError, AmqpMessage, AmqpSendOptions, AmqpSender, AmqpSenderApis,
    AmqpSession, AmqpSessionApis,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::AmqpSinkError;
use super::classify;
use super::client_thread::ClientThread;
use super::cloudevents;
use super::connection::{
    ConnectionString, JWT_TOKEN_TYPE, SAS_TOKEN_TYPE, SERVICE_BUS_SCOPE, audience, endpoint_host,
    sas_token,
};
use super::slot::{Client, Closable, Slot, unless_connection_lost};

/// The AMQP message format of a batch message (Microsoft's batching convention).
pub const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;
/// Service Bus Standard's maximum message size (256 KB), used when the link names none.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// How long a SAS token the sink signs is valid.
const SAS_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Put a fresh token this long before the current one expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

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

    /// A token for the topic's audience: (token, CBS token type, expiry).
    async fn token(&self, key: usize) -> Result<(String, &'static str, OffsetDateTime), AmqpError> {
        match self {
            ServiceBusTarget::Keys { parsed, topic } => {
                let cs = &parsed[key];
                let entity = cs.entity_path.as_deref().unwrap_or(topic);
                let expiry =
                    crate::clock::utc_now().timestamp().max(0) as u64 + SAS_LIFETIME.as_secs();
                let token = sas_token(&audience(&cs.host, entity), &cs.key_name, &cs.key, expiry);
                let expires_on = OffsetDateTime::from_unix_timestamp(expiry as i64)
                    .map_err(|_| AmqpError::with_message("token expiry out of range"))?;
                Ok((token, SAS_TOKEN_TYPE, expires_on))
            }
            ServiceBusTarget::Identity { credential, .. } => {
                let token = credential
                    .get_token(&[SERVICE_BUS_SCOPE], None)
                    .await
                    .map_err(AmqpError::from)?;
                Ok((
                    token.token.secret().to_owned(),
                    JWT_TOKEN_TYPE,
                    token.expires_on,
                ))
            }
        }
    }

    /// Connects, authorizes the topic and attaches a sender.
    async fn open(&self, key: usize) -> Result<Connected, AmqpError> {
        let (host, topic, custom_endpoint) = self.address(key);
        let audience = audience(host, topic);
        let url = Url::parse(&audience)
            .map_err(|_| AmqpError::with_message("the namespace host is not a valid URL host"))?;
        let custom_endpoint = match custom_endpoint {
            Some(endpoint) => Some(
                Url::parse(&endpoint)
                    .map_err(|_| AmqpError::with_message("invalid emulator endpoint"))?,
            ),
            None => None,
        };
        let connection = AmqpConnection::new();
        connection
            .open(
                format!("twinroute-{topic}"),
                url,
                Some(AmqpConnectionOptions {
                    custom_endpoint,
                    ..Default::default()
                }),
            )
            .await?;
        let session = AmqpSession::new();
        session.begin(&connection, None).await?;
        let cbs = AmqpClaimsBasedSecurity::new(session.clone())?;
        cbs.attach().await?;
        let client = Connected {
            connection,
            session,
            cbs,
            sender: AmqpSender::new(),
            audience,
            key,
            refresh_at: Mutex::new(Instant::now()),
            max_message_size: DEFAULT_MAX_MESSAGE_BYTES,
        };
        client.authorize(self).await?;
        client
            .sender
            .attach(
                &client.session,
                format!("twinroute-sender-{topic}"),
                topic.to_owned(),
                None,
            )
            .await?;
        let max_message_size = client
            .sender
            .max_message_size()
            .await?
            .and_then(|size| usize::try_from(size).ok())
            .filter(|&size| size > 0)
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        Ok(Connected {
            max_message_size,
            ..client
        })
    }
}

/// One open connection with its sender.
struct Connected {
    connection: AmqpConnection,
    #[allow(dead_code, reason = "kept open for the sender and CBS links")]
    session: AmqpSession,
    cbs: AmqpClaimsBasedSecurity,
    sender: AmqpSender,
    audience: String,
    key: usize,
    /// When the token must be put again.
    refresh_at: Mutex<Instant>,
    max_message_size: usize,
}

impl Connected {
    /// Puts a fresh token for the topic if the current one is close to expiring.
    async fn authorize(&self, target: &ServiceBusTarget) -> Result<(), AmqpError> {
        let mut refresh_at = self.refresh_at.lock().await;
        if Instant::now() < *refresh_at {
            return Ok(());
        }
        let (token, token_type, expires_on) = target.token(self.key).await?;
        self.cbs
            .authorize_path(
                self.audience.clone(),
                Some(token_type.to_owned()),
                &AzureSecret::new(token),
                expires_on,
            )
            .await?;
        let lifetime =
            (expires_on.unix_timestamp() - crate::clock::utc_now().timestamp()).max(0) as u64;
        *refresh_at = Instant::now() + Duration::from_secs(lifetime).saturating_sub(REFRESH_MARGIN);
        Ok(())
    }

    /// Whether the connection still stands: a session can begin on it (and is ended again).
    async fn alive(&self) -> bool {
        let probe = AmqpSession::new();
        if probe.begin(&self.connection, None).await.is_err() {
            return false;
        }
        let _ = probe.end().await;
        true
    }

    /// Sends `messages` in as few transfers as the link's maximum message size allows.
    async fn send(&self, messages: &[AmqpMessage]) -> AttemptResult {
        let mut sizes = Vec::with_capacity(messages.len());
        for message in messages {
            match AmqpMessage::serialize(message) {
                Ok(bytes) if bytes.len() > self.max_message_size => {
                    return AttemptResult::status(413);
                }
                Ok(bytes) => sizes.push(bytes),
                Err(_) => return AttemptResult::status(400),
            }
        }
        // Chunks of encoded messages, each within the maximum (with room for the envelope).
        let budget = self.max_message_size.saturating_sub(512);
        let mut chunks: Vec<(Vec<usize>, usize)> = Vec::new();
        for (index, encoded) in sizes.iter().enumerate() {
            let cost = encoded.len() + 8;
            match chunks.last_mut() {
                Some((chunk, used)) if *used + cost <= budget => {
                    chunk.push(index);
                    *used += cost;
                }
                _ => chunks.push((vec![index], cost)),
            }
        }
        let mut encoded: Vec<Option<Vec<u8>>> = sizes.into_iter().map(Some).collect();
        for (chunk, _) in chunks {
            let outcome = if let [only] = chunk[..] {
                self.sender.send_ref(&messages[only], None).await
            } else {
                let body: Vec<Vec<u8>> = chunk.iter().filter_map(|&i| encoded[i].take()).collect();
                // The envelope carries the first message's id, as the Azure SDKs' batches do.
                let envelope = AmqpMessage::builder()
                    .with_properties(messages[chunk[0]].properties.clone().unwrap_or_default())
                    .with_body(body)
                    .build();
                self.sender
                    .send(
                        envelope,
                        Some(AmqpSendOptions {
                            message_format: Some(BATCH_MESSAGE_FORMAT),
                            ..Default::default()
                        }),
                    )
                    .await
            };
            let result = match outcome {
                Ok(outcome) => classify::outcome(&outcome),
                Err(error) => classify::amqp_error(&error).into(),
            };
            if !matches!(result, AttemptResult::Status { status: 200, .. }) {
                return result;
            }
        }
        AttemptResult::status(200)
    }
}

struct Shared {
    target: ServiceBusTarget,
    slot: Slot<Connected>,
}

/// A Service Bus topic endpoint. Its connection, session and links live on the sink's client
/// thread (started on the first attempt, ended when the sink is dropped); see
/// `src/client_thread.rs`.
pub struct ServiceBusSink {
    shared: Arc<Shared>,
    thread: Option<ClientThread<Vec<AmqpMessage>>>,
    max_batch: usize,
}

impl ServiceBusSink {
    /// A sink for `target`, carrying up to `max_batch` events per attempt. Connects on the first
    /// attempt.
    pub fn new(target: ServiceBusTarget, max_batch: usize) -> Self {
        ServiceBusSink {
            shared: Arc::new(Shared {
                slot: Slot::new(target.key_count()),
                target,
            }),
            thread: None,
            max_batch: max_batch.max(1),
        }
    }

    /// The sink for an endpoint's [`Connection::Amqp`] (`primaryConnectionString`, then
    /// `secondaryConnectionString`; or `endpointUri` + `entityPath` with `credential`, the
    /// system-assigned managed identity when `None`).
    pub fn from_connection(
        authentication: AuthenticationType,
        connection: &Connection,
        credential: Option<Arc<dyn TokenCredential>>,
        max_batch: usize,
    ) -> Result<Self, AmqpSinkError> {
        Ok(Self::new(
            ServiceBusTarget::from_connection(authentication, connection, credential)?,
            max_batch,
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
            Some(thread) => thread.attempt(messages),
            None => Attempt::Now(Answer::observed(AttemptResult::ConnectionError)),
        }
    }
}

impl Shared {
    async fn send(&self, messages: Vec<AmqpMessage>) -> AttemptResult {
        let open = |key| async move {
            self.target
                .open(key)
                .await
                .map_err(|error| classify::amqp_error(&error).result())
        };
        let messages = &messages;
        let send = |client: Arc<Client<Connected>>| async move {
            match client.authorize(&self.target).await {
                Ok(()) => unless_connection_lost(client.send(messages), || client.alive()).await,
                Err(error) => classify::amqp_error(&error).into(),
            }
        };
        self.slot.attempt(open, send).await
    }
}

impl Closable for Connected {
    fn close(self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = self.connection.close().await;
        })
    }
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
            ServiceBusSink::from_connection(AuthenticationType::KeyBased, &connection, None, 1)
                .unwrap();
        let (host, topic, custom) = sink.target().address(0);
        assert_eq!(
            (host, topic, custom),
            ("ns.servicebus.windows.net", "t9", None)
        );
    }
}
