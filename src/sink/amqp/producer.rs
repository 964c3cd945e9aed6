//! One AMQP connection to an Event Hub or a Service Bus topic, as both sinks use it: a session,
//! a CBS put-token for the entity (put again before it expires), and a pool of sender links so
//! that `concurrency` N means N transfers in flight.
//!
//! Why a pool of links on one connection, and not the SDK's `ProducerClient`: `azure_core_amqp`'s
//! sender (under `ProducerClient` too) holds a lock on its link from a transfer until the broker
//! settles it, so one link carries one transfer per round trip, and `ProducerClient` keeps one
//! link per hub. With a broker 20 ms away that is 50 transfers/s, whatever `concurrency` says.
//! Links are cheap (one attach each, on the connection's one session): the pool attaches them
//! as attempts need them, up to the endpoint's `concurrency`, and a link whose send failed with
//! an error (not an outcome) is dropped, not reused.
//!
//! Order: one twin's transfers wait for each other ([`TwinOrder`]): an attempt holds its twins'
//! turns, in the order attempts reached the sink, from before it takes a link until its
//! transfers are settled. Twins that differ go in parallel on different links.
//!
//! Every wait on the connection (session begin, CBS attach and put-token, link attach,
//! settlement) goes through the connection's [`Watch`]: a cut is noticed within a second and
//! ends every wait at once (`src/sink/amqp/liveness.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::classify::AttemptResult;
use azure_core::credentials::{Secret as AzureSecret, TokenCredential};
use azure_core::http::Url;
use azure_core::time::OffsetDateTime;
use azure_core_amqp::{
    AmqpClaimsBasedSecurity, AmqpClaimsBasedSecurityApis, AmqpConnection, AmqpConnectionApis,
    AmqpConnectionOptions, AmqpError, AmqpMessage, AmqpSendOptions, AmqpSender, AmqpSenderApis,
    AmqpSession, AmqpSessionApis,
};
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};
use tokio::time::Instant;

use super::classify;
use super::connection::{JWT_TOKEN_TYPE, SAS_TOKEN_TYPE, sas_token};
use super::liveness::Watch;
use super::slot::Closable;

/// How long a SAS token the sink signs is valid.
const SAS_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Put a fresh token this long before the current one expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The AMQP message format of a batch message (Microsoft's batching convention).
pub const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;

/// Where one key of an endpoint sends.
#[derive(Clone)]
pub(crate) struct Entity {
    /// `amqps://<namespace host>/<entity>`: the CBS audience and SAS resource.
    pub audience: String,
    /// The sender links' target address.
    pub address: String,
    /// The socket address when it is not the namespace host over TLS (the emulator convention).
    pub custom_endpoint: Option<String>,
    /// The AMQP container id and link name stem.
    pub name: String,
    /// The maximum message size when the link names none.
    pub default_max_message_size: usize,
    /// How the entity is authorized.
    pub credential: Credential,
}

/// What signs the put-token.
#[derive(Clone)]
pub(crate) enum Credential {
    /// A SAS token signed here from a connection string's key.
    Sas { key_name: String, key: String },
    /// An Entra ID token for `scope`.
    Entra {
        credential: Arc<dyn TokenCredential>,
        scope: &'static str,
    },
}

impl Entity {
    /// A token for the audience: (token, CBS token type, expiry).
    async fn token(&self) -> Result<(String, &'static str, OffsetDateTime), AmqpError> {
        match &self.credential {
            Credential::Sas { key_name, key } => {
                let expiry =
                    crate::clock::utc_now().timestamp().max(0) as u64 + SAS_LIFETIME.as_secs();
                let token = sas_token(&self.audience, key_name, key, expiry);
                let expires_on = OffsetDateTime::from_unix_timestamp(expiry as i64)
                    .map_err(|_| AmqpError::with_message("token expiry out of range"))?;
                Ok((token, SAS_TOKEN_TYPE, expires_on))
            }
            Credential::Entra { credential, scope } => {
                let token = credential
                    .get_token(&[scope], None)
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
}

/// An error's row, or `ConnectionError` for a connection found dead.
fn failed<T>(
    waited: Result<Result<T, AmqpError>, super::liveness::Dead>,
) -> Result<T, AttemptResult> {
    match waited {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify::amqp_error(&error).result()),
        Err(super::liveness::Dead) => Err(AttemptResult::ConnectionError),
    }
}

/// One transfer: a message and, for a batch message, its format.
pub(crate) struct Transfer {
    pub message: AmqpMessage,
    pub batch: bool,
}

/// An open connection with its session, CBS link and sender links.
pub(crate) struct Producer {
    connection: Arc<AmqpConnection>,
    #[allow(dead_code, reason = "kept open for the sender and CBS links")]
    session: AmqpSession,
    cbs: AmqpClaimsBasedSecurity,
    entity: Entity,
    /// When the token must be put again.
    refresh_at: Mutex<Instant>,
    links: LinkPool,
    order: TwinOrder,
    max_message_size: usize,
    watch: Arc<Watch>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Producer {
    /// Connects, authorizes the entity and attaches the first sender link (which tells the
    /// maximum message size). Links beyond the first, up to `links`, are attached when needed.
    pub(crate) async fn open(entity: Entity, links: usize) -> Result<Producer, AttemptResult> {
        let url = Url::parse(&entity.audience).map_err(|_| AttemptResult::status(400))?;
        let custom_endpoint = match &entity.custom_endpoint {
            Some(endpoint) => Some(Url::parse(endpoint).map_err(|_| AttemptResult::status(400))?),
            None => None,
        };
        let connection = Arc::new(AmqpConnection::new());
        connection
            .open(
                entity.name.clone(),
                url,
                Some(AmqpConnectionOptions {
                    custom_endpoint,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|error| classify::amqp_error(&error).result())?;
        let watch = Arc::new(Watch::new());
        let watcher = tokio::spawn(watch.clone().run({
            let connection = connection.clone();
            move || {
                let connection = connection.clone();
                async move {
                    let probe = AmqpSession::new();
                    if probe.begin(&connection, None).await.is_err() {
                        return false;
                    }
                    let _ = probe.end().await;
                    true
                }
            }
        }));
        // From here the watcher lives as long as the producer; if opening fails it is aborted
        // with it.
        let session = AmqpSession::new();
        let begun = watch.wait(session.begin(&connection, None)).await;
        if let Err(result) = failed(begun) {
            watcher.abort();
            return Err(result);
        }
        let cbs = match AmqpClaimsBasedSecurity::new(session.clone()) {
            Ok(cbs) => cbs,
            Err(error) => {
                watcher.abort();
                return Err(classify::amqp_error(&error).result());
            }
        };
        let mut producer = Producer {
            connection,
            session,
            cbs,
            refresh_at: Mutex::new(Instant::now()),
            links: LinkPool::new(links),
            order: TwinOrder::default(),
            max_message_size: entity.default_max_message_size,
            entity,
            watch,
            watcher,
        };
        failed(producer.watch.wait(producer.cbs.attach()).await)?;
        producer.authorize().await?;
        let first = producer.attach_link().await?;
        let size = producer.watch.wait(first.max_message_size()).await;
        if let Some(size) = failed(size)?
            .and_then(|size| usize::try_from(size).ok())
            .filter(|&size| size > 0)
        {
            producer.max_message_size = size;
        }
        producer.links.put_back(first);
        Ok(producer)
    }

    /// The largest message the entity takes.
    pub(crate) fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Puts a fresh token for the entity if the current one is close to expiring.
    async fn authorize(&self) -> Result<(), AttemptResult> {
        let mut refresh_at = self.refresh_at.lock().await;
        if Instant::now() < *refresh_at {
            return Ok(());
        }
        let (token, token_type, expires_on) = self
            .entity
            .token()
            .await
            .map_err(|error| classify::amqp_error(&error).result())?;
        let token = AzureSecret::new(token);
        let put = self.cbs.authorize_path(
            self.entity.audience.clone(),
            Some(token_type.to_owned()),
            &token,
            expires_on,
        );
        failed(self.watch.wait(put).await)?;
        let lifetime =
            (expires_on.unix_timestamp() - crate::clock::utc_now().timestamp()).max(0) as u64;
        *refresh_at = Instant::now() + Duration::from_secs(lifetime).saturating_sub(REFRESH_MARGIN);
        Ok(())
    }

    /// Attaches one more sender link to the entity.
    async fn attach_link(&self) -> Result<AmqpSender, AttemptResult> {
        let sender = AmqpSender::new();
        let name = format!("{}-sender-{}", self.entity.name, self.links.next_name());
        let attach = sender.attach(&self.session, name, self.entity.address.clone(), None);
        failed(self.watch.wait(attach).await)?;
        Ok(sender)
    }

    /// Sends `transfers` in order on one link, once every earlier attempt for `twins` has
    /// ended; stops at the first that is not accepted.
    pub(crate) async fn send(&self, twins: &[Arc<str>], transfers: &[Transfer]) -> AttemptResult {
        if self.watch.is_dead() {
            return AttemptResult::ConnectionError;
        }
        let _turns = self.order.turns(twins).await;
        if let Err(result) = self.authorize().await {
            return result;
        }
        let Ok(_permit) = self.links.permits.acquire().await else {
            return AttemptResult::ConnectionError;
        };
        let link = match self.links.take() {
            Some(link) => link,
            None => match self.attach_link().await {
                Ok(link) => link,
                Err(result) => return result,
            },
        };
        for transfer in transfers {
            let options = transfer.batch.then(|| AmqpSendOptions {
                message_format: Some(BATCH_MESSAGE_FORMAT),
                ..Default::default()
            });
            let sent = self
                .watch
                .wait(link.send_ref(&transfer.message, options))
                .await;
            let result = match sent {
                Ok(Ok(outcome)) => classify::outcome(&outcome),
                // The link failed (or the connection did): it is not used again.
                Ok(Err(error)) => return classify::amqp_error(&error).into(),
                Err(super::liveness::Dead) => return AttemptResult::ConnectionError,
            };
            if !result.is_success() {
                self.links.put_back(link);
                return result;
            }
        }
        self.links.put_back(link);
        AttemptResult::status(200)
    }
}

impl Closable for Producer {
    fn close(self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            self.watcher.abort();
            let _ = self.connection.close().await;
        })
    }
}

/// The sender links not in use, and how many may be in use at once.
struct LinkPool {
    permits: Semaphore,
    idle: std::sync::Mutex<Vec<AmqpSender>>,
    names: std::sync::atomic::AtomicUsize,
}

impl LinkPool {
    fn new(links: usize) -> Self {
        LinkPool {
            permits: Semaphore::new(links.max(1)),
            idle: std::sync::Mutex::new(Vec::new()),
            names: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn next_name(&self) -> usize {
        self.names
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn take(&self) -> Option<AmqpSender> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_back(&self, link: AmqpSender) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(link);
    }
}

/// Each twin's turn: attempts for one twin go one after another, in the order they asked.
#[derive(Default)]
pub(crate) struct TwinOrder {
    turns: std::sync::Mutex<HashMap<Arc<str>, Arc<Mutex<()>>>>,
}

/// The turns an attempt holds; given back (and forgotten when nobody waits) when dropped.
pub(crate) struct Turns<'a> {
    order: &'a TwinOrder,
    held: Vec<(Arc<str>, OwnedMutexGuard<()>)>,
}

impl TwinOrder {
    /// Waits for the turn of every twin in `twins` (taken in sorted order, so two attempts
    /// that share twins never wait for each other in a circle).
    pub(crate) async fn turns(&self, twins: &[Arc<str>]) -> Turns<'_> {
        let mut sorted: Vec<&Arc<str>> = twins.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut held = Vec::with_capacity(sorted.len());
        for twin in sorted {
            let turn = self
                .turns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(twin.clone())
                .or_default()
                .clone();
            held.push((twin.clone(), turn.lock_owned().await));
        }
        Turns { order: self, held }
    }

    /// How many twins have a turn held or waited for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.turns.lock().unwrap().len()
    }
}

impl Drop for Turns<'_> {
    fn drop(&mut self) {
        let mut turns = self.order.turns.lock().unwrap_or_else(|e| e.into_inner());
        for (twin, guard) in self.held.drain(..) {
            drop(guard);
            // Only the map holds it: nobody holds or waits for this twin's turn.
            if turns.get(&twin).is_some_and(|t| Arc::strong_count(t) == 1) {
                turns.remove(&twin);
            }
        }
    }
}

/// Packs `messages` into transfers within `max_message_size`: a chunk of one message goes as
/// that message unless `always_batch`, a longer chunk as a batch message whose envelope is
/// `envelope(first message)` and whose body holds each message encoded, one data section each.
/// A message that alone exceeds the maximum fails the attempt as 413 with nothing sent.
pub(crate) fn pack(
    messages: &[AmqpMessage],
    max_message_size: usize,
    always_batch: bool,
    envelope: impl Fn(&AmqpMessage) -> AmqpMessage,
) -> Result<Vec<Transfer>, AttemptResult> {
    let mut encoded = Vec::with_capacity(messages.len());
    for message in messages {
        match AmqpMessage::serialize(message) {
            Ok(bytes) if bytes.len() > max_message_size => {
                return Err(AttemptResult::status(413));
            }
            Ok(bytes) => encoded.push(bytes),
            Err(_) => return Err(AttemptResult::status(400)),
        }
    }
    // Chunks of encoded messages, each within the maximum with room for the envelope.
    let budget = max_message_size.saturating_sub(512);
    let mut chunks: Vec<(Vec<usize>, usize)> = Vec::new();
    for (index, bytes) in encoded.iter().enumerate() {
        let cost = bytes.len() + 8;
        match chunks.last_mut() {
            Some((chunk, used)) if *used + cost <= budget => {
                chunk.push(index);
                *used += cost;
            }
            _ => chunks.push((vec![index], cost)),
        }
    }
    let mut encoded: Vec<Option<Vec<u8>>> = encoded.into_iter().map(Some).collect();
    let mut transfers = Vec::with_capacity(chunks.len());
    for (chunk, _) in chunks {
        if let ([only], false) = (&chunk[..], always_batch) {
            transfers.push(Transfer {
                message: messages[*only].clone(),
                batch: false,
            });
            continue;
        }
        let mut batch = envelope(&messages[chunk[0]]);
        let body: Vec<Vec<u8>> = chunk.iter().filter_map(|&i| encoded[i].take()).collect();
        batch.set_message_body(body);
        transfers.push(Transfer {
            message: batch,
            batch: true,
        });
    }
    Ok(transfers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(size: usize) -> AmqpMessage {
        AmqpMessage::builder().with_body(vec![b'x'; size]).build()
    }

    #[test]
    fn small_messages_share_a_batch_and_large_ones_split_it() {
        let plain = |m: &AmqpMessage| {
            AmqpMessage::builder()
                .with_properties(m.properties.clone().unwrap_or_default())
                .build()
        };
        let transfers = pack(
            &(0..10).map(|_| message(100)).collect::<Vec<_>>(),
            4096,
            false,
            plain,
        )
        .unwrap();
        assert_eq!(transfers.len(), 1);
        assert!(transfers[0].batch);
        let transfers = pack(
            &(0..10).map(|_| message(1000)).collect::<Vec<_>>(),
            4096,
            false,
            plain,
        )
        .unwrap();
        assert!(transfers.len() >= 3, "{}", transfers.len());
        assert!(
            transfers
                .iter()
                .all(|t| { AmqpMessage::serialize(&t.message).unwrap().len() <= 4096 })
        );
        let single = pack(&[message(10)], 4096, false, plain).unwrap();
        assert!(!single[0].batch, "one message goes as itself");
        let single = pack(&[message(10)], 4096, true, plain).unwrap();
        assert!(single[0].batch, "unless every transfer is a batch");
        assert_eq!(
            pack(&[message(10), message(5000)], 4096, false, plain).err(),
            Some(AttemptResult::status(413))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_twins_attempts_wait_for_each_other_and_others_do_not() {
        let order = Arc::new(TwinOrder::default());
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let first = order.turns(&[a.clone(), b.clone()]).await;
        // Another attempt for b waits; one for c does not.
        let waiting = {
            let order = order.clone();
            let b = b.clone();
            tokio::spawn(async move {
                let _turn = order.turns(&[b]).await;
            })
        };
        tokio::time::timeout(Duration::from_millis(10), order.turns(&[Arc::from("c")]))
            .await
            .expect("a twin nobody holds goes at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !waiting.is_finished(),
            "b's next attempt waits for the first"
        );
        drop(first);
        waiting.await.unwrap();
        assert_eq!(order.len(), 0, "turns nobody holds are forgotten");
    }
}
