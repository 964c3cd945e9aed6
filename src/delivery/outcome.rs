//! How a delivery ended: the closed set of terminal outcomes ([`Outcome`], each with exactly
//! the facts it needs) and one ending ([`Ending`]), made by [`Delivery::ending`](super::routed::Delivery::ending) and recorded by
//! [`crate::account::Accounts::end`]. A leaf beside [`super::routed`], so the delivery and the
//! accounts that record its ending do not import each other.

use std::time::Duration;

use super::policy::GiveUpReason;

/// How a delivery ended: a closed set, each ending with exactly the facts it needs, so an
/// ending that cannot happen ("delivered, with a reason") cannot be written either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The endpoint took it.
    Delivered,
    /// Written to the dead-letter location (or its spill folder) after delivery gave up.
    DeadLettered {
        /// Why delivery gave up.
        reason: GiveUpReason,
    },
    /// Given up without a dead-letter (no location, or the location refused it): reason
    /// `NoDeadLetterLocation`.
    Dropped {
        /// Why delivery gave up.
        cause: GiveUpReason,
    },
    /// Still pending when the run was aborted (see [`crate::engine`], "Stopping"): reason
    /// `ShutdownBeforeDelivery`.
    InFlight {
        /// Why delivery had given up, when it had and the dead-letter stage was already gone.
        cause: Option<GiveUpReason>,
    },
}

/// The ledger's reason for a drop: the endpoint has no dead-letter location that took it.
const NO_DEAD_LETTER_LOCATION: &str = "NoDeadLetterLocation";
/// The ledger's reason for an `inFlight` ending: the run was aborted first.
const SHUTDOWN_BEFORE_DELIVERY: &str = "ShutdownBeforeDelivery";

impl Outcome {
    /// The ledger's name: `delivered`, `deadLettered`, `dropped` or `inFlight`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::DeadLettered { .. } => "deadLettered",
            Outcome::Dropped { .. } => "dropped",
            Outcome::InFlight { .. } => "inFlight",
        }
    }

    /// The ledger's `reason`: none for a delivery, why delivery gave up for a dead-letter,
    /// `NoDeadLetterLocation` for a drop, `ShutdownBeforeDelivery` for an `inFlight` ending.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Outcome::Delivered => None,
            Outcome::DeadLettered { reason } => Some(reason.as_str()),
            Outcome::Dropped { .. } => Some(NO_DEAD_LETTER_LOCATION),
            Outcome::InFlight { .. } => Some(SHUTDOWN_BEFORE_DELIVERY),
        }
    }

    /// The ledger's `cause`: why delivery gave up, for an ending whose `reason` says something
    /// else.
    pub fn cause(&self) -> Option<GiveUpReason> {
        match *self {
            Outcome::Dropped { cause } => Some(cause),
            Outcome::InFlight { cause } => cause,
            Outcome::Delivered | Outcome::DeadLettered { .. } => None,
        }
    }

    /// The status that ended delivery, for a `NonRetriableStatus` reason or cause.
    pub fn status(&self) -> Option<u16> {
        let gave_up = match *self {
            Outcome::DeadLettered { reason } => Some(reason),
            other => other.cause(),
        };
        match gave_up {
            Some(GiveUpReason::NonRetriableStatus(status)) => Some(status),
            _ => None,
        }
    }
}

/// What ended, for [`crate::account::Accounts::end`]; made by [`Delivery::ending`](super::routed::Delivery::ending) alone.
#[derive(Clone, Copy, Debug)]
pub struct Ending<'a> {
    /// The event's id.
    pub event_id: &'a str,
    /// Route index.
    pub route: usize,
    /// Endpoint index.
    pub endpoint: usize,
    /// How it ended, and why.
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// First attempt, since the run started.
    pub first_attempt_at: Option<Duration>,
    /// The ending, since the run started.
    pub final_at: Duration,
}
