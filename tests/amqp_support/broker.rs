//! An AMQP 1.0 test broker, standing in for Event Hubs and Service Bus where neither can run.
//! Test support only: it binds 127.0.0.1 (port 0, or the port it had when restarted).
//!
//! What it speaks, on `fe2o3-amqp`'s acceptor:
//! - SASL ANONYMOUS (what `azure_core_amqp` offers).
//! - `$cbs` put-token: 202 (or 200: [`Broker::set_put_token_status`]) with the request's
//!   message-id as correlation-id; when the broker is given keys, a SAS token whose signature
//!   does not match its `skn` key gets 401.
//! - `$management` READ of `com.microsoft:eventhub`: name, created_at, partition_count,
//!   partition_ids.
//! - A `$cbs` or `$management` request is answered on the client's link whose target is its
//!   `reply-to`; one without `reply-to` (the Python SDK's pyAMQP sends none) on the client's
//!   receiving link from the same node.
//! - Any other target: a receiving link whose messages are recorded (batch messages, format
//!   `0x80013700`, unpacked into their events) and accepted, unless a [`Fault`] is switched on;
//!   with a latency ([`Broker::set_latency`]) each accepted transfer is recorded and settled that
//!   long after it arrived, on a timer of its own (other transfers, links and connections go on
//!   meanwhile).
//! - Counters of connections, sessions, links and `$management` READs ([`Broker::activity`]),
//!   to count a sink's liveness checks.
//!
//! Robustness: every connection is a task whose socket the broker can cut
//! ([`Broker::drop_connections`]); every wait inside has a timeout; [`Broker::wait_for`] never
//! waits past its deadline; dropping the broker stops everything.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fe2o3_amqp::Delivery;
use fe2o3_amqp::acceptor::{
    ConnectionAcceptor, LinkAcceptor, LinkEndpoint, SaslAnonymousMechanism, SessionAcceptor,
    SupportedReceiverSettleModes,
};
use fe2o3_amqp::link::{Receiver, Sender};
use fe2o3_amqp::types::definitions::{
    self, AmqpError, ErrorCondition, LinkError, ReceiverSettleMode,
};
use fe2o3_amqp::types::messaging::message::__private::Deserializable;
use fe2o3_amqp::types::messaging::{
    AmqpValue, ApplicationProperties, Body, Message, MessageId, Properties,
};
use fe2o3_amqp::types::primitives::{OrderedMap, SimpleValue, Symbol, Timestamp, Value};
use percent_encoding::percent_decode_str;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout};

use twinroute::sink::amqp::connection::sign;

/// The AMQP message format of a batch message.
const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;
/// No single protocol step of the broker waits longer than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the broker does with the next transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Record and accept.
    None,
    /// Reject with `com.microsoft:server-busy`.
    ServerBusy,
    /// Reject with `com.microsoft:timeout`.
    ServiceTimeout,
    /// Reject with `amqp:unauthorized-access`.
    Unauthorized,
    /// Reject with `amqp:not-found`.
    NotFound,
    /// Reject with `amqp:link:message-size-exceeded`.
    MessageSizeExceeded,
    /// Cut every connection when a transfer arrives (nothing is recorded or settled).
    CloseConnection,
    /// Never settle (the sender waits until its own timeout).
    Hold,
    /// Settle as released (not stored, not recorded).
    Released,
}

/// The broker's shape.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// Partitions the hub reports (`$management` READ).
    pub partitions: u32,
    /// The maximum message size its receiving links announce.
    pub max_message_size: u64,
    /// `(key name, key)` pairs a SAS token must be signed with; empty: any token is accepted.
    pub keys: Vec<(String, String)>,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            partitions: 4,
            max_message_size: 1024 * 1024,
            keys: Vec::new(),
        }
    }
}

/// One event as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The target address of the link it came on.
    pub address: String,
    /// The message-format of the transfer that carried it (`0x80013700` for a batch).
    pub message_format: u32,
    /// Whether it came inside a batch message.
    pub batched: bool,
    /// `message-id`, as a string.
    pub message_id: Option<String>,
    /// `content-type`.
    pub content_type: Option<String>,
    /// The `x-opt-partition-key` message annotation.
    pub partition_key: Option<String>,
    /// Application-properties whose values are strings, in order.
    pub application_properties: Vec<(String, String)>,
    /// The data sections, concatenated.
    pub body: Vec<u8>,
}

struct Inner {
    settings: BrokerSettings,
    fault: Mutex<Fault>,
    put_token_status: AtomicI32,
    received: Mutex<Vec<ReceivedMessage>>,
    arrived: Notify,
    /// Tasks of open connections (socket bridges and AMQP handlers).
    connections: Mutex<Vec<AbortHandle>>,
    tokens_put: AtomicU64,
    tokens_refused: AtomicU64,
    transfers: AtomicU64,
    /// How long after its arrival an accepted transfer is settled, in microseconds.
    latency_micros: AtomicU64,
    activity: ActivityCounters,
}

/// Connections, sessions, links and READs so far (see [`Activity`]).
#[derive(Default)]
struct ActivityCounters {
    connections: AtomicU64,
    sessions: AtomicU64,
    bare_sessions: AtomicU64,
    links: AtomicU64,
    reads: AtomicU64,
}

/// What clients opened on the broker, totals since it started: how a sink's liveness checks
/// are counted (a `$management` READ, or a session begun and ended with no link on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Connections accepted (after SASL and open).
    pub connections: u64,
    /// Sessions begun by clients.
    pub sessions: u64,
    /// Sessions ended with no link ever attached on them (liveness probes).
    pub bare_sessions: u64,
    /// Links attached to an entity (the clients' sending links; not `$cbs`, `$management`).
    pub links: u64,
    /// `$management` READs answered.
    pub reads: u64,
}

impl Inner {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drop_connections(&self) {
        let tasks =
            std::mem::take(&mut *self.connections.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    fn track(&self, task: AbortHandle) {
        let mut tasks = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

/// A running test broker. It runs on its own thread and single-threaded runtime, whatever
/// runtime the test uses, so its behaviour does not depend on the test's scheduler.
pub struct Broker {
    inner: Arc<Inner>,
    addr: SocketAddr,
    listener: Mutex<Option<AbortHandle>>,
    runtime: tokio::runtime::Handle,
    /// Dropped with the broker: its runtime then stops, ending every task.
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Broker {
    /// Starts a broker on 127.0.0.1, on a port the system picks.
    pub async fn start(settings: BrokerSettings) -> io::Result<Broker> {
        let (runtime, shutdown) = broker_runtime()?;
        let listener = runtime
            .spawn(TcpListener::bind("127.0.0.1:0"))
            .await
            .map_err(io::Error::other)??;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            settings,
            fault: Mutex::new(Fault::None),
            put_token_status: AtomicI32::new(202),
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            connections: Mutex::new(Vec::new()),
            tokens_put: AtomicU64::new(0),
            tokens_refused: AtomicU64::new(0),
            transfers: AtomicU64::new(0),
            latency_micros: AtomicU64::new(0),
            activity: ActivityCounters::default(),
        });
        let task = runtime.spawn(listen(listener, inner.clone()));
        Ok(Broker {
            inner,
            addr,
            listener: Mutex::new(Some(task.abort_handle())),
            runtime,
            _shutdown: shutdown,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection string naming this broker with the emulator convention.
    pub fn connection_string(&self, key_name: &str, key: &str, entity: Option<&str>) -> String {
        super::peers::emulator_connection_string(self.addr, key_name, key, entity)
    }

    /// Switches what the next transfers get.
    pub fn set_fault(&self, fault: Fault) {
        *self.inner.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// The status an accepted put-token is answered with: 202 (the default) or 200, both of
    /// which the CBS specification and Azure's SDKs take as success.
    pub fn set_put_token_status(&self, status: u16) {
        self.inner
            .put_token_status
            .store(i32::from(status), Relaxed);
    }

    /// Records and settles each accepted transfer `latency` after it arrives (zero, the default:
    /// at once), without holding up other transfers, links or connections. Rejections (a
    /// [`Fault`]) are still answered at once.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner.latency_micros.store(micros, Relaxed);
    }

    /// Connections, sessions, links and READs so far.
    pub fn activity(&self) -> Activity {
        let counters = &self.inner.activity;
        Activity {
            connections: counters.connections.load(Relaxed),
            sessions: counters.sessions.load(Relaxed),
            bare_sessions: counters.bare_sessions.load(Relaxed),
            links: counters.links.load(Relaxed),
            reads: counters.reads.load(Relaxed),
        }
    }

    /// Everything recorded so far.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.inner
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many messages are recorded.
    pub fn received_count(&self) -> usize {
        self.inner
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.inner
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Waits until at least `count` messages are recorded, or `within` passes; returns what was
    /// recorded either way.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<ReceivedMessage> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.inner.arrived.notified();
            let received = self.received();
            if received.len() >= count || Instant::now() >= deadline {
                return received;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// `(accepted put-tokens, refused put-tokens, transfers seen)`.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.inner.tokens_put.load(Relaxed),
            self.inner.tokens_refused.load(Relaxed),
            self.inner.transfers.load(Relaxed),
        )
    }

    /// Cuts every open connection (the sockets close without an AMQP close).
    pub fn drop_connections(&self) {
        self.inner.drop_connections();
    }

    /// Stops listening and cuts every connection; [`Broker::restart`] listens again.
    pub fn stop(&self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        self.inner.drop_connections();
    }

    /// Listens again on the same port (retrying briefly while the old socket is released).
    pub async fn restart(&self) -> io::Result<()> {
        self.stop();
        let mut last = None;
        for _ in 0..50 {
            let bound = self
                .runtime
                .spawn(TcpListener::bind(self.addr))
                .await
                .map_err(io::Error::other)?;
            match bound {
                Ok(listener) => {
                    let task = self.runtime.spawn(listen(listener, self.inner.clone()));
                    *self.listener.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(task.abort_handle());
                    return Ok(());
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| io::Error::other("cannot bind")))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A single-threaded runtime on its own thread, running until the sender is dropped.
fn broker_runtime() -> io::Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("test-broker".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
    Ok((handle, shutdown))
}

async fn listen(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // The AMQP side talks to one end of an in-memory pipe; a bridge task copies between the
        // pipe and the socket, so cutting the bridge closes the socket at once.
        let (broker_end, bridge_end) = tokio::io::duplex(256 * 1024);
        let bridge = tokio::spawn(bridge(tcp, bridge_end));
        inner.track(bridge.abort_handle());
        let handler = tokio::spawn(serve_connection(broker_end, inner.clone()));
        inner.track(handler.abort_handle());
    }
}

async fn bridge(mut tcp: TcpStream, mut pipe: tokio::io::DuplexStream) {
    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut pipe).await;
}

/// Reply links of one connection, by their target address (the requester's `reply-to`).
#[derive(Default)]
struct Replies {
    links: Mutex<HashMap<String, mpsc::Sender<Message<Body<Value>>>>>,
    added: Notify,
    /// `$cbs` / `$management` → the target address of the client's receiving link from it,
    /// where a request without `reply-to` is answered (the Python SDK's pyAMQP sends none).
    node_reply_to: Mutex<HashMap<String, String>>,
}

impl Replies {
    async fn send(&self, reply_to: &str, message: Message<Body<Value>>) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let added = self.added.notified();
            let link = self
                .links
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(reply_to)
                .cloned();
            if let Some(link) = link {
                let _ = timeout(STEP_TIMEOUT, link.send(message)).await;
                return;
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                return;
            }
        }
    }
}

async fn serve_connection(io: tokio::io::DuplexStream, inner: Arc<Inner>) {
    let acceptor = ConnectionAcceptor::builder()
        .container_id("twinroute-test-broker")
        .max_frame_size(65536u32)
        .sasl_acceptor(SaslAnonymousMechanism::new())
        .build();
    let Ok(Ok(mut connection)) = timeout(STEP_TIMEOUT, acceptor.accept(io)).await else {
        return;
    };
    inner.activity.connections.fetch_add(1, Relaxed);
    let replies = Arc::new(Replies::default());
    // fe2o3-amqp's receiving session never widens its incoming-window again on its own: the
    // window goes to the client only inside link flows, which a receiver sends when it renews a
    // link's credit (after half its 200 credits are settled). With 64 links each carrying one
    // transfer at a time, the client's 2 048-transfer window (the default) ran out after 32
    // transfers per link, long before any link renewed its credit, and every link stalled. A
    // window this broker cannot exhaust in any test keeps flow control to the link credit.
    let session_acceptor = SessionAcceptor::builder().incoming_window(u32::MAX).build();
    while let Ok(session) = session_acceptor.accept(&mut connection).await {
        inner.activity.sessions.fetch_add(1, Relaxed);
        let task = tokio::spawn(serve_session(session, inner.clone(), replies.clone()));
        inner.track(task.abort_handle());
    }
}

async fn serve_session(
    mut session: fe2o3_amqp::acceptor::ListenerSessionHandle,
    inner: Arc<Inner>,
    replies: Arc<Replies>,
) {
    // Receiver settle mode `first` whatever the client asks: the Python SDK's pyAMQP asks for
    // `second` but handles only settled dispositions (twinroute's clients ask for `first`).
    let link_acceptor = LinkAcceptor::builder()
        .max_message_size(inner.settings.max_message_size)
        .supported_receiver_settle_modes(SupportedReceiverSettleModes::First)
        .fallback_receiver_settle_mode(ReceiverSettleMode::First)
        .build();
    let mut links = 0u64;
    // The loop ends when the client ends the session (or the connection goes).
    while let Ok(link) = link_acceptor.accept(&mut session).await {
        links += 1;
        let task = match link {
            LinkEndpoint::Receiver(receiver) => {
                let address = receiver
                    .target()
                    .as_ref()
                    .and_then(|t| t.address.clone())
                    .unwrap_or_default();
                if address == "$cbs" || address == "$management" {
                    tokio::spawn(serve_requests(receiver, inner.clone(), replies.clone()))
                } else {
                    inner.activity.links.fetch_add(1, Relaxed);
                    tokio::spawn(serve_entity(receiver, address, inner.clone()))
                }
            }
            LinkEndpoint::Sender(sender) => {
                let address = sender
                    .target()
                    .as_ref()
                    .and_then(|t| t.address.clone())
                    .unwrap_or_default();
                let (tx, rx) = mpsc::channel(64);
                let source = sender
                    .source()
                    .as_ref()
                    .and_then(|s| s.address.clone())
                    .unwrap_or_default();
                if source == "$cbs" || source == "$management" {
                    replies
                        .node_reply_to
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(source, address.clone());
                }
                replies
                    .links
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(address, tx);
                replies.added.notify_waiters();
                tokio::spawn(serve_replies(sender, rx))
            }
        };
        inner.track(task.abort_handle());
    }
    if links == 0 {
        inner.activity.bare_sessions.fetch_add(1, Relaxed);
    }
}

async fn serve_replies(mut sender: Sender, mut replies: mpsc::Receiver<Message<Body<Value>>>) {
    // Each reply is sent without waiting for the client to settle it (the Python SDK's pyAMQP
    // never settles its CBS answers), as the Proton peer does.
    while let Some(message) = replies.recv().await {
        match timeout(STEP_TIMEOUT, sender.send_batchable(message)).await {
            Ok(Ok(_settlement)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let _ = timeout(STEP_TIMEOUT, sender.close()).await;
}

fn string_property(message: &Message<Body<Value>>, name: &str) -> Option<String> {
    match message.application_properties.as_ref()?.0.get(name)? {
        SimpleValue::String(value) => Some(value.clone()),
        SimpleValue::Symbol(value) => Some(value.0.clone()),
        _ => None,
    }
}

async fn serve_requests(mut receiver: Receiver, inner: Arc<Inner>, replies: Arc<Replies>) {
    let node = receiver
        .target()
        .as_ref()
        .and_then(|t| t.address.clone())
        .unwrap_or_default();
    loop {
        let delivery: Delivery<Body<Value>> = match receiver.recv().await {
            Ok(delivery) => delivery,
            Err(_) => break,
        };
        let _ = timeout(STEP_TIMEOUT, receiver.accept(&delivery)).await;
        let request = delivery.into_message();
        let properties = request.properties.clone().unwrap_or_default();
        let reply_to = properties.reply_to.clone().or_else(|| {
            replies
                .node_reply_to
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&node)
                .cloned()
        });
        let Some(reply_to) = reply_to else {
            continue;
        };
        let operation = string_property(&request, "operation").unwrap_or_default();
        let (status, body) = match operation.as_str() {
            "put-token" => {
                let token = match &request.body {
                    Body::Value(AmqpValue(Value::String(token))) => token.clone(),
                    _ => String::new(),
                };
                let token_type = string_property(&request, "type").unwrap_or_default();
                if token_accepted(&inner.settings.keys, &token_type, &token) {
                    inner.tokens_put.fetch_add(1, Relaxed);
                    (inner.put_token_status.load(Relaxed), Value::Null)
                } else {
                    inner.tokens_refused.fetch_add(1, Relaxed);
                    (401, Value::Null)
                }
            }
            "READ" => {
                inner.activity.reads.fetch_add(1, Relaxed);
                let name = string_property(&request, "name").unwrap_or_default();
                let ids: Vec<Value> = (0..inner.settings.partitions)
                    .map(|p| Value::String(p.to_string()))
                    .collect();
                let mut map = OrderedMap::new();
                map.insert(Value::String("name".into()), Value::String(name));
                map.insert(
                    Value::String("created_at".into()),
                    Value::Timestamp(Timestamp::from_milliseconds(1_700_000_000_000)),
                );
                map.insert(
                    Value::String("partition_count".into()),
                    Value::Int(inner.settings.partitions as i32),
                );
                map.insert(
                    Value::String("partition_ids".into()),
                    Value::Array(ids.into()),
                );
                (200, Value::Map(map))
            }
            _ => (501, Value::Null),
        };
        let mut application_properties = OrderedMap::new();
        application_properties.insert("status-code".to_owned(), SimpleValue::Int(status));
        application_properties.insert(
            "status-description".to_owned(),
            SimpleValue::String(if status < 300 { "OK" } else { "refused" }.to_owned()),
        );
        let response = Message {
            header: None,
            delivery_annotations: None,
            message_annotations: None,
            properties: Some(Properties {
                correlation_id: properties.message_id.clone(),
                ..Default::default()
            }),
            application_properties: Some(ApplicationProperties(application_properties)),
            body: Body::Value(AmqpValue(body)),
            footer: None,
        };
        replies.send(&reply_to, response).await;
    }
}

/// Whether a put-token is accepted: any token when the broker has no keys; otherwise a SAS token
/// signed with the key its `skn` names (an Entra ID token cannot be checked here and is refused).
pub fn token_accepted(keys: &[(String, String)], token_type: &str, token: &str) -> bool {
    if keys.is_empty() {
        return true;
    }
    if token_type != twinroute::sink::amqp::connection::SAS_TOKEN_TYPE {
        return false;
    }
    let Some(fields) = token.strip_prefix("SharedAccessSignature ") else {
        return false;
    };
    let field = |name: &str| {
        fields
            .split('&')
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(resource), Some(signature), Some(expiry), Some(key_name)) =
        (field("sr"), field("sig"), field("se"), field("skn"))
    else {
        return false;
    };
    let Ok(expiry) = expiry.parse::<u64>() else {
        return false;
    };
    let signature = percent_decode_str(signature).decode_utf8_lossy();
    keys.iter()
        .any(|(name, key)| name == key_name && sign(resource, expiry, key) == signature)
}

fn refusal(condition: ErrorCondition) -> definitions::Error {
    definitions::Error::new(
        condition,
        Some("refused by the test broker".to_owned()),
        None,
    )
}

async fn serve_entity(mut receiver: Receiver, address: String, inner: Arc<Inner>) {
    let mut held = Vec::new();
    loop {
        let delivery: Delivery<Body<Value>> = match receiver.recv().await {
            Ok(delivery) => delivery,
            Err(_) => break,
        };
        inner.transfers.fetch_add(1, Relaxed);
        let condition = match inner.fault() {
            Fault::None => None,
            Fault::ServerBusy => Some(ErrorCondition::Custom(Symbol::from(
                "com.microsoft:server-busy",
            ))),
            Fault::ServiceTimeout => Some(ErrorCondition::Custom(Symbol::from(
                "com.microsoft:timeout",
            ))),
            Fault::Unauthorized => Some(ErrorCondition::AmqpError(AmqpError::UnauthorizedAccess)),
            Fault::NotFound => Some(ErrorCondition::AmqpError(AmqpError::NotFound)),
            Fault::MessageSizeExceeded => {
                Some(ErrorCondition::LinkError(LinkError::MessageSizeExceeded))
            }
            Fault::CloseConnection => {
                inner.drop_connections();
                return;
            }
            Fault::Hold => {
                held.push(delivery);
                continue;
            }
            Fault::Released => {
                let _ = timeout(STEP_TIMEOUT, receiver.release(&delivery)).await;
                continue;
            }
        };
        match condition {
            None => {
                let latency = Duration::from_micros(inner.latency_micros.load(Relaxed));
                if latency.is_zero() {
                    record_received(&inner, &delivery, &address);
                    let _ = timeout(STEP_TIMEOUT, receiver.accept(&delivery)).await;
                } else {
                    // A timer of its own: the link goes on receiving meanwhile.
                    let (disposer, inner_, address) =
                        (receiver.disposer(), inner.clone(), address.clone());
                    let settle = tokio::spawn(async move {
                        tokio::time::sleep(latency).await;
                        record_received(&inner_, &delivery, &address);
                        let _ = timeout(STEP_TIMEOUT, disposer.accept(&delivery)).await;
                    });
                    inner.track(settle.abort_handle());
                }
            }
            Some(condition) => {
                let _ = timeout(STEP_TIMEOUT, receiver.reject(&delivery, refusal(condition))).await;
            }
        }
    }
}

/// Records the events `delivery` carries and wakes whoever waits for them.
fn record_received(inner: &Inner, delivery: &Delivery<Body<Value>>, address: &str) {
    let messages = unpack(delivery, address);
    inner
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(messages);
    inner.arrived.notify_waiters();
}

/// The events a transfer carries: the batch's inner messages, or the message itself.
fn unpack(delivery: &Delivery<Body<Value>>, address: &str) -> Vec<ReceivedMessage> {
    let message = delivery.message();
    let format = delivery.message_format().unwrap_or(0);
    if format == BATCH_MESSAGE_FORMAT
        && let Body::Data(sections) = &message.body
    {
        return sections
            .iter()
            .filter_map(|section| {
                let Deserializable(inner): Deserializable<Message<Body<Value>>> =
                    serde_amqp::from_slice(&section.0).ok()?;
                Some(record(&inner, address, format, true))
            })
            .collect();
    }
    vec![record(message, address, format, false)]
}

fn record(
    message: &Message<Body<Value>>,
    address: &str,
    message_format: u32,
    batched: bool,
) -> ReceivedMessage {
    let properties = message.properties.as_ref();
    let message_id = properties
        .and_then(|p| p.message_id.as_ref())
        .map(|id| match id {
            MessageId::String(s) => s.clone(),
            MessageId::Ulong(n) => n.to_string(),
            MessageId::Uuid(u) => format!("{u:?}"),
            MessageId::Binary(b) => format!("{b:?}"),
        });
    let content_type = properties
        .and_then(|p| p.content_type.as_ref())
        .map(|s| s.0.clone());
    let partition_key = message.message_annotations.as_ref().and_then(|a| {
        a.0.iter().find_map(|(k, v)| {
            let key = format!("{k:?}");
            match v {
                Value::String(s) if key.contains("x-opt-partition-key") => Some(s.clone()),
                _ => None,
            }
        })
    });
    let application_properties = message
        .application_properties
        .as_ref()
        .map(|ap| {
            ap.0.iter()
                .filter_map(|(k, v)| match v {
                    SimpleValue::String(s) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let body = match &message.body {
        Body::Data(sections) => sections.iter().flat_map(|d| d.0.to_vec()).collect(),
        Body::Value(AmqpValue(Value::Binary(b))) => b.to_vec(),
        Body::Value(AmqpValue(Value::String(s))) => s.clone().into_bytes(),
        _ => Vec::new(),
    };
    ReceivedMessage {
        address: address.to_owned(),
        message_format,
        batched,
        message_id,
        content_type,
        partition_key,
        application_properties,
        body,
    }
}
