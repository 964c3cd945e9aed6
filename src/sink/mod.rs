//! Sinks: where a delivery attempt goes. Every endpoint kind implements one small contract,
//! [`Sink`]; the worker owns retries, timeouts and accounting, the sink only answers attempts.
//!
//! - [`simulated`]: in-process endpoints whose behaviour is data (`simulate` in the file).
//! - [`fault`]: the fault model a simulated endpoint answers with.
//! - [`http`]: Event Grid topics and CloudEvents webhooks over HTTP.
//! - [`amqp`]: Event Hubs and Service Bus topics over AMQP 1.0.
//! - [`build`]: every endpoint's sink built from its settings, the same way for every kind.

pub mod amqp;
pub mod build;
pub mod fault;
pub mod http;
pub mod simulated;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::delivery::classify::{AttemptResult, EndpointClass};
use crate::delivery::routed::Delivery;

/// What one attempt came back with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The result the delivering side observes.
    pub result: AttemptResult,
    /// Whether the endpoint now holds the events (a lost acknowledgement holds them without
    /// saying so; a retry then makes a duplicate).
    pub received: bool,
}

impl Answer {
    /// An answer observed over a real connection: the endpoint holds the events when it said so.
    pub fn observed(result: AttemptResult) -> Self {
        Answer {
            result,
            received: result.is_success(),
        }
    }
}

/// A started attempt.
pub enum Attempt {
    /// Answered at once (a zero-latency simulated endpoint).
    Now(Answer),
    /// Answered after a simulated latency; the worker keeps the timer, so no task or future is
    /// made per attempt and virtual time stays deterministic.
    After(Duration, Answer),
    /// Answered when the future completes (a real endpoint); the worker applies the timeout.
    Pending(Pin<Box<dyn Future<Output = Answer> + Send + 'static>>),
}

/// The contract every endpoint kind implements.
pub trait Sink: Send + Sync + 'static {
    /// Which column of the failure-code table applies.
    fn class(&self) -> EndpointClass {
        EndpointClass::AzureResource
    }

    /// Most deliveries one attempt may carry (batching sinks say more than 1).
    fn max_batch(&self) -> usize {
        1
    }

    /// Bytes a batch should stay within (an event larger than this goes alone).
    fn preferred_batch_bytes(&self) -> Option<usize> {
        None
    }

    /// Starts one attempt carrying `batch`, `now` after the run started.
    fn attempt(&mut self, batch: &[Delivery], now: Duration) -> Attempt;
}
