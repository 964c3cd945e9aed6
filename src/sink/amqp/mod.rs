//! Event Hubs and Service Bus endpoints over AMQP 1.0, as ADT sends to them. Tested against an
//! in-repo AMQP 1.0 test broker (`tests/amqp_support/broker.rs`) and a Qpid Proton peer
//! (`tests/amqp_peer/peer.py`), since neither service can run here.
//!
//! # Layout
//!
//! - [`cloudevents`]: the AMQP binding of CloudEvents in binary mode (what goes on the wire).
//! - [`connection`]: connection strings, the emulator convention, SAS tokens.
//! - [`classify`]: AMQP outcomes and errors → the delivery policy's [`AttemptResult`] rows.
//! - `producer`: one connection per endpoint (session, CBS put-token, a pool of up to
//!   `concurrency` sender links, one twin's attempts in turn), over `azure_core_amqp`; packing
//!   messages into batch messages.
//! - `liveness`: every wait on a connection watched; a cut noticed within a second.
//! - `slot`: the endpoint's current client, key fallback, one reconnect per failure.
//! - [`sink`]: [`AmqpSink`], the one `Sink` both kinds are, on its own client thread
//!   (`client_thread`), generic over the kind's target.
//! - [`eventhubs`]: [`EventHubSink`]: targets, partition keys, one twin per batch message.
//! - [`servicebus`]: [`ServiceBusSink`]: targets, one batch message per attempt.
//!
//! # Known limits
//!
//! - **Each sink's AMQP client runs on its own thread.** On a multi-thread tokio runtime the
//!   `fe2o3-amqp` sender under both sinks intermittently never saw the settlement of a transfer
//!   the broker did receive and settle (after ~100–150 transfers; never on a current-thread
//!   runtime; the cause inside `fe2o3-amqp` is not diagnosed). So each sink runs its connection,
//!   session, links and sends on a dedicated OS thread with a
//!   current-thread runtime, started on the first attempt and ended when the sink is dropped;
//!   attempts are handed to it over a channel (`src/client_thread.rs`). Tested from a
//!   multi-thread runtime: `*_many_sends_from_a_multi_thread_runtime_all_arrive_once`.
//! - A wait whose connection dies would wait forever (`fe2o3-amqp` keeps the settlement, the
//!   attach and the CBS answer in the link): `liveness` checks the connection while something
//!   waits and ends every wait on it with `ConnectionError`.
//! - Event Hubs partition keys are per twin, so a batch of many twins is one transfer per twin.
//! - IdentityBased endpoints are built (unit-tested) but cannot be exercised here.
//!
//! [`AttemptResult`]: crate::delivery::classify::AttemptResult

pub mod classify;
mod client_thread;
pub mod cloudevents;
pub mod connection;
pub mod eventhubs;
mod liveness;
mod producer;
pub mod servicebus;
pub mod sink;
mod slot;

pub use eventhubs::EventHubSink;
pub use servicebus::ServiceBusSink;
pub use sink::AmqpSink;

use std::sync::Arc;

use crate::config::{AuthenticationType, Connection, EndpointSettings, EndpointType};
use crate::sink::Sink;
use azure_core::credentials::TokenCredential;

/// Why an AMQP endpoint's sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AmqpSinkError {
    /// The endpoint is not an Event Hub or Service Bus endpoint with an AMQP connection.
    #[error("endpoint {0} is not an EventHub or ServiceBus endpoint")]
    NotAmqp(String),
    /// A KeyBased endpoint without a primary connection string.
    #[error("a KeyBased endpoint needs a primary connection string")]
    MissingConnectionString,
    /// An IdentityBased endpoint without `endpointUri` or `entityPath`.
    #[error("an IdentityBased endpoint needs endpointUri (sb://…) and entityPath")]
    MissingIdentityTarget,
    /// A connection string or `endpointUri` that does not parse.
    #[error("invalid connection: {0}")]
    Invalid(String),
    /// The managed identity credential could not be set up.
    #[error("cannot set up the managed identity credential: {0}")]
    Credential(String),
}

/// The sink for a real (not simulated) `EventHub` or `ServiceBus` endpoint, as [`crate::sink::build`]
/// builds it from [`Connection::Amqp`]. `credential` is used for IdentityBased endpoints; `None`
/// means the endpoint's managed identity (`identity.userAssignedIdentity`, else system-assigned).
pub fn sink_for(
    endpoint: &EndpointSettings,
    credential: Option<Arc<dyn TokenCredential>>,
) -> Result<Box<dyn Sink>, AmqpSinkError> {
    if !matches!(endpoint.connection, Connection::Amqp { .. }) {
        return Err(AmqpSinkError::NotAmqp(endpoint.name.clone()));
    }
    let credential = match (endpoint.authentication, credential) {
        (AuthenticationType::IdentityBased, None) => Some(managed_identity(
            endpoint.user_assigned_identity.as_deref(),
        )?),
        (_, credential) => credential,
    };
    match endpoint.endpoint_type {
        EndpointType::EventHub => Ok(Box::new(EventHubSink::from_connection(
            endpoint.authentication,
            &endpoint.connection,
            credential,
            endpoint.delivery.batch.max_events,
            endpoint.delivery.concurrency.get(),
        )?)),
        EndpointType::ServiceBus => Ok(Box::new(ServiceBusSink::from_connection(
            endpoint.authentication,
            &endpoint.connection,
            credential,
            endpoint.delivery.batch.max_events,
            endpoint.delivery.concurrency.get(),
        )?)),
        EndpointType::EventGrid | EndpointType::Webhook => {
            Err(AmqpSinkError::NotAmqp(endpoint.name.clone()))
        }
    }
}

/// The endpoint's managed identity credential (no token is fetched until the first send).
pub fn managed_identity(
    user_assigned: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, AmqpSinkError> {
    let options = azure_identity::ManagedIdentityCredentialOptions {
        user_assigned_id: user_assigned
            .map(|id| azure_identity::UserAssignedId::ResourceId(id.to_owned())),
        ..Default::default()
    };
    let credential = azure_identity::ManagedIdentityCredential::new(Some(options))
        .map_err(|error| AmqpSinkError::Credential(error.to_string()))?;
    Ok(credential)
}
