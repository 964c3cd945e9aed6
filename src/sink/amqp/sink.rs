//! The one [`Sink`] both AMQP endpoint kinds are: [`AmqpSink`], generic over the kind's target
//! (where each key sends) and holding the kind's two differences as data ([`Kind`]): how a key
//! becomes an [`Entity`], and how an attempt's events become transfers.
//!
//! The endpoint's connection lives on the sink's client thread, started on the first attempt and
//! ended when the sink is dropped (`src/sink/amqp/client_thread.rs`); the [`Slot`] on it holds
//! the current [`Producer`], with key fallback and one reconnect per failure.

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::classify::AttemptResult;
use crate::delivery::routed::Delivery;
use crate::event::Serialized;
use crate::sink::{Answer, Attempt, Sink};

use super::client_thread::ClientThread;
use super::producer::{Entity, Producer, Transfer};
use super::slot::{Client, Slot};

/// What one AMQP endpoint kind does its own way.
pub(crate) struct Kind<T> {
    /// The client thread's name.
    pub thread: &'static str,
    /// The batch size the worker aims at (the entity's usual maximum message size).
    pub preferred_batch_bytes: usize,
    /// How many keys the target has (primary, secondary; 1 for an identity).
    pub keys: fn(&T) -> usize,
    /// Where key `key` sends.
    pub entity: fn(&T, usize) -> Entity,
    /// One attempt's events as transfers within the link's maximum message size.
    pub transfers: Pack,
}

/// Turns one attempt's events into transfers within a maximum message size.
pub(crate) type Pack = fn(&[Arc<Serialized>], usize) -> Result<Vec<Transfer>, AttemptResult>;

struct Shared<T: 'static> {
    target: T,
    kind: &'static Kind<T>,
    slot: Slot<Producer>,
    links: usize,
}

/// An Event Hubs or Service Bus endpoint ([`super::EventHubSink`], [`super::ServiceBusSink`]).
pub struct AmqpSink<T: 'static> {
    shared: Arc<Shared<T>>,
    thread: Option<ClientThread<Vec<Arc<Serialized>>>>,
    max_batch: usize,
}

impl<T: Send + Sync + 'static> AmqpSink<T> {
    /// A sink for `target`, carrying up to `max_batch` events per attempt with up to
    /// `concurrency` transfers in flight. Connects on the first attempt.
    pub(crate) fn with(
        kind: &'static Kind<T>,
        target: T,
        max_batch: usize,
        concurrency: usize,
    ) -> Self {
        AmqpSink {
            shared: Arc::new(Shared {
                slot: Slot::new((kind.keys)(&target)),
                kind,
                target,
                links: concurrency.max(1),
            }),
            thread: None,
            max_batch: max_batch.max(1),
        }
    }

    /// Where the sink sends.
    pub fn target(&self) -> &T {
        &self.shared.target
    }
}

impl<T: Send + Sync + 'static> Sink for AmqpSink<T> {
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn preferred_batch_bytes(&self) -> Option<usize> {
        Some(self.shared.kind.preferred_batch_bytes)
    }

    fn attempt(&mut self, batch: &[Delivery], _now: Duration) -> Attempt {
        let events: Vec<Arc<Serialized>> = batch.iter().map(|d| d.event.clone()).collect();
        if self.thread.is_none() {
            let shared = self.shared.clone();
            match ClientThread::spawn(self.shared.kind.thread, move |events| {
                let shared = shared.clone();
                async move { shared.send(events).await }
            }) {
                Ok(thread) => self.thread = Some(thread),
                Err(error) => {
                    tracing::error!(%error, thread = self.shared.kind.thread, "cannot start the AMQP client thread");
                    return Attempt::Now(Answer::observed(AttemptResult::ConnectionError));
                }
            }
        }
        match &self.thread {
            Some(thread) => thread.attempt(events),
            None => Attempt::Now(Answer::observed(AttemptResult::ConnectionError)),
        }
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    async fn send(&self, events: Vec<Arc<Serialized>>) -> AttemptResult {
        let mut twins: Vec<Arc<str>> = events.iter().map(|e| e.event.twin_id.clone()).collect();
        twins.sort();
        twins.dedup();
        let open = |key| Producer::open((self.kind.entity)(&self.target, key), self.links);
        let (events, twins) = (&events, &twins);
        let send = |producer: Arc<Client<Producer>>| async move {
            let result = match (self.kind.transfers)(events, producer.max_message_size()) {
                Ok(transfers) => producer.send(twins, &transfers).await,
                Err(result) => result,
            };
            if !result.is_success() {
                tracing::debug!(?result, thread = self.kind.thread, "AMQP send failed");
            }
            result
        };
        self.slot.attempt(open, send).await
    }
}
