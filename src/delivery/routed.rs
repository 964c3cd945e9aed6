//! A routed event on its way to one endpoint: what every sink, the worker and the dead-letter
//! writer pass around, and the one place its ending is made ([`Delivery::ending`]). A leaf: it
//! imports only the event, the attempt result and the ending's types ([`super::outcome`]), so
//! the modules that use it never import one another through it.

use std::sync::Arc;
use std::time::Duration;

use super::classify::AttemptResult;
use super::outcome::{Ending, Outcome};
use crate::event::Serialized;

/// One routed event on its way to one endpoint.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The event, shared by every route that matched it.
    pub event: Arc<Serialized>,
    /// Index of the route that matched.
    pub route: usize,
    /// When the event was routed, since the run started: the time-to-live counts from here.
    pub routed_at: Duration,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first attempt started.
    pub first_attempt_at: Option<Duration>,
    /// When the last attempt started.
    pub last_attempt_at: Option<Duration>,
    /// What the last attempt came back with.
    pub last_result: Option<AttemptResult>,
    /// Whether the endpoint holds the event already (a later receipt is a duplicate).
    pub received: bool,
}

impl Delivery {
    /// A delivery of `event` for route `route`, routed at `routed_at`.
    pub fn new(event: Arc<Serialized>, route: usize, routed_at: Duration) -> Self {
        Delivery {
            event,
            route,
            routed_at,
            attempts: 0,
            first_attempt_at: None,
            last_attempt_at: None,
            last_result: None,
            received: false,
        }
    }

    /// How this delivery ended at endpoint `endpoint`, at `at` (since the run started), for
    /// [`crate::account::Accounts::end`]: the one place an [`Ending`] is made.
    pub fn ending(&self, endpoint: usize, outcome: Outcome, at: Duration) -> Ending<'_> {
        Ending {
            event_id: &self.event.event.id,
            route: self.route,
            endpoint,
            outcome,
            attempts: self.attempts,
            first_attempt_at: self.first_attempt_at,
            final_at: at,
        }
    }
}
