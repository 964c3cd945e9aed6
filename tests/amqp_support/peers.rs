//! The AMQP test peers behind one surface, so a scenario is written once and run against each:
//! the in-repo broker ([`super::broker::Broker`], on fe2o3-amqp, the client's own AMQP library)
//! and the Qpid Proton peer ([`super::proton::ProtonPeer`], an independent implementation).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::broker::{Activity, Broker, BrokerSettings, Fault, ReceivedMessage};
use super::proton::ProtonPeer;

/// A boxed future, so [`TestPeer`] can be used as `dyn TestPeer`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a run-level test needs of an AMQP 1.0 peer standing in for Event Hubs and Service Bus.
pub trait TestPeer: Send + Sync {
    /// Which peer, for test messages.
    fn name(&self) -> &'static str;
    /// The address it listens on (127.0.0.1).
    fn addr(&self) -> SocketAddr;
    /// A connection string naming this peer with the emulator convention.
    fn connection_string(&self, key_name: &str, key: &str, entity: Option<&str>) -> String {
        emulator_connection_string(self.addr(), key_name, key, entity)
    }
    /// Switches what the next transfers get.
    fn set_fault(&self, fault: Fault);
    /// The status an accepted put-token is answered with (200 or 202).
    fn set_put_token_status(&self, status: u16);
    /// Every message recorded (and accepted) so far, batches unpacked.
    fn received(&self) -> Vec<ReceivedMessage>;
    /// Forgets what was recorded.
    fn clear(&self);
    /// `(accepted put-tokens, refused put-tokens, entity transfers seen)`.
    fn counters(&self) -> (u64, u64, u64);
    /// Cuts every open connection (the sockets close without an AMQP close).
    fn drop_connections(&self);
    /// Stops listening and cuts every connection.
    fn stop(&self);
    /// Listens again on the same port.
    fn restart(&self) -> BoxFuture<'_, io::Result<()>>;
    /// Waits until at least `count` messages are recorded, or `within` passes; returns what was
    /// recorded either way.
    fn wait_for(&self, count: usize, within: Duration) -> BoxFuture<'_, Vec<ReceivedMessage>>;
    /// Settles each accepted entity transfer `latency` after it arrives, holding up nothing else.
    fn set_latency(&self, latency: Duration);
    /// Connections, sessions, links and READs clients opened so far.
    fn activity(&self) -> Activity;
    /// How many messages are recorded (without fetching them).
    fn received_count(&self) -> u64;
}

/// Which peer to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// The in-repo broker on fe2o3-amqp's acceptor.
    InRepo,
    /// The Qpid Proton peer (`tests/amqp_peer/peer.py`).
    Proton,
}

/// Both peers, for scenarios that run against each.
pub const PEERS: [PeerKind; 2] = [PeerKind::InRepo, PeerKind::Proton];

/// Starts a peer of `kind` with `settings`.
pub async fn start(kind: PeerKind, settings: BrokerSettings) -> Arc<dyn TestPeer> {
    match kind {
        PeerKind::InRepo => Arc::new(
            Broker::start(settings)
                .await
                .expect("the in-repo broker starts"),
        ),
        PeerKind::Proton => Arc::new(
            ProtonPeer::start(settings)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    }
}

/// `Endpoint=sb://127.0.0.1:<port>;...;UseDevelopmentEmulator=true[;EntityPath=<entity>]`.
pub fn emulator_connection_string(
    addr: SocketAddr,
    key_name: &str,
    key: &str,
    entity: Option<&str>,
) -> String {
    let mut text = format!(
        "Endpoint=sb://127.0.0.1:{};SharedAccessKeyName={key_name};SharedAccessKey={key};UseDevelopmentEmulator=true",
        addr.port()
    );
    if let Some(entity) = entity {
        text.push_str(&format!(";EntityPath={entity}"));
    }
    text
}

impl TestPeer for Broker {
    fn name(&self) -> &'static str {
        "in-repo broker"
    }
    fn addr(&self) -> SocketAddr {
        Broker::addr(self)
    }
    fn set_fault(&self, fault: Fault) {
        Broker::set_fault(self, fault);
    }
    fn set_put_token_status(&self, status: u16) {
        Broker::set_put_token_status(self, status);
    }
    fn received(&self) -> Vec<ReceivedMessage> {
        Broker::received(self)
    }
    fn clear(&self) {
        Broker::clear(self);
    }
    fn counters(&self) -> (u64, u64, u64) {
        Broker::counters(self)
    }
    fn drop_connections(&self) {
        Broker::drop_connections(self);
    }
    fn stop(&self) {
        Broker::stop(self);
    }
    fn restart(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(Broker::restart(self))
    }
    fn wait_for(&self, count: usize, within: Duration) -> BoxFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(Broker::wait_for(self, count, within))
    }
    fn set_latency(&self, latency: Duration) {
        Broker::set_latency(self, latency);
    }
    fn activity(&self) -> Activity {
        Broker::activity(self)
    }
    fn received_count(&self) -> u64 {
        Broker::received_count(self) as u64
    }
}
