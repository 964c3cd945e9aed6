//! AMQP outcomes and errors onto the delivery policy's rows, in one table-like function
//! ([`condition`]) plus the walk that finds the AMQP error inside a client error ([`error`]).
//!
//! | AMQP | [`AttemptResult`] | policy row (Azure resource) |
//! |---|---|---|
//! | accepted | 200 | delivered |
//! | `com.microsoft:server-busy` (throttling) | 503 | retry, ≥ 30 s |
//! | `com.microsoft:timeout` (the service timed out) | 503 | retry, ≥ 30 s |
//! | `amqp:resource-limit-exceeded` (quota) | 503 | retry, ≥ 30 s |
//! | `amqp:unauthorized-access`, CBS 401 | 401 | retry, ≥ 5 min |
//! | `amqp:not-found`, `com.microsoft:entity-disabled`, CBS 404 | 404 | retry, ≥ 5 min |
//! | `amqp:link:message-size-exceeded` | 413 | dead-letter at once |
//! | `amqp:decode-error`, `invalid-field`, `not-allowed`, argument errors | 400 | dead-letter at once |
//! | released, modified, other conditions | 500 | retry, ≥ 10 s |
//! | connection/session/link closed or detached, I/O, idle timeout | `ConnectionError` | retry |
//!
//! Throttling is 503, not 429: Event Hubs and Service Bus report `ServerBusy` over HTTP as 503,
//! and the 30 s minimum is close to the services' own advice (Service Bus: wait 10 s, Event
//! Hubs: the throttled throughput unit frees each second but a busy namespace stays busy).

use std::error::Error as StdError;

use crate::delivery::classify::AttemptResult;
use azure_core_amqp::error::{AmqpErrorCondition, AmqpErrorKind};
use azure_core_amqp::{AmqpDescribedError, AmqpError, AmqpSendOutcome};
use azure_messaging_eventhubs::EventHubsError;
use azure_messaging_eventhubs::error::ErrorKind as EventHubsErrorKind;

/// The row an AMQP error condition belongs to.
pub fn condition(condition: &AmqpErrorCondition) -> AttemptResult {
    use AmqpErrorCondition as C;
    match condition {
        C::ServerBusyError | C::TimeoutError | C::ResourceLimitExceeded => {
            AttemptResult::status(503)
        }
        C::UnauthorizedAccess | C::PublisherRevokedError => AttemptResult::status(401),
        C::NotFound | C::EntityDisabledError | C::ResourceDeleted => AttemptResult::status(404),
        C::LinkPayloadSizeExceeded => AttemptResult::status(413),
        C::DecodeError
        | C::InvalidField
        | C::NotAllowed
        | C::NotImplemented
        | C::ArgumentError
        | C::ArgumentOutOfRangeError => AttemptResult::status(400),
        C::LinkDetachForced
        | C::ConnectionForced
        | C::ConnectionFramingError
        | C::ProtonIo
        | C::LinkStolen => AttemptResult::ConnectionError,
        _ => AttemptResult::status(500),
    }
}

/// The row of a settled send.
pub fn outcome(outcome: &AmqpSendOutcome) -> AttemptResult {
    match outcome {
        AmqpSendOutcome::Accepted => AttemptResult::status(200),
        AmqpSendOutcome::Rejected(Some(described)) => condition(&described.condition),
        // Neither released nor modified means the service stored the message.
        AmqpSendOutcome::Rejected(None)
        | AmqpSendOutcome::Released
        | AmqpSendOutcome::Modified(_) => AttemptResult::status(500),
    }
}

/// The row of an `azure_core_amqp` error.
pub fn amqp_error(error: &AmqpError) -> AttemptResult {
    match error.kind() {
        AmqpErrorKind::AmqpDescribedError(described) => described_error(described),
        AmqpErrorKind::ManagementStatusCode(status, _) => AttemptResult::status(u16::from(*status)),
        AmqpErrorKind::LinkClosedByRemote(_)
        | AmqpErrorKind::SessionClosedByRemote(_)
        | AmqpErrorKind::ConnectionClosedByRemote(_)
        | AmqpErrorKind::LinkDetachedByRemote(_)
        | AmqpErrorKind::SessionDetachedByRemote(_)
        | AmqpErrorKind::ConnectionDetachedByRemote(_)
        | AmqpErrorKind::ConnectionDropped(_)
        | AmqpErrorKind::LinkStateError(_)
        | AmqpErrorKind::FramingError(_)
        | AmqpErrorKind::IdleTimeoutElapsed(_)
        | AmqpErrorKind::DetachError(_)
        | AmqpErrorKind::TransportImplementationError(_) => {
            // A described error inside (a detach with a condition) decides; else the
            // connection is gone.
            nested(error).unwrap_or(AttemptResult::ConnectionError)
        }
        AmqpErrorKind::SendRejected => AttemptResult::status(500),
        AmqpErrorKind::AzureCore(core) => nested(core).unwrap_or(AttemptResult::ConnectionError),
        _ => nested(error).unwrap_or(AttemptResult::ConnectionError),
    }
}

fn described_error(described: &AmqpDescribedError) -> AttemptResult {
    condition(&described.condition)
}

/// The row of an `azure_messaging_eventhubs` error.
pub fn event_hubs_error(error: &EventHubsError) -> AttemptResult {
    match &error.kind {
        EventHubsErrorKind::AmqpError(amqp) => amqp_error(amqp),
        EventHubsErrorKind::SendRejected(Some(described)) => described_error(described),
        EventHubsErrorKind::SendRejected(None) | EventHubsErrorKind::SendNotAccepted(_) => {
            AttemptResult::status(500)
        }
        EventHubsErrorKind::AzureCore(core) => {
            nested(core).unwrap_or(AttemptResult::ConnectionError)
        }
        _ => nested(error).unwrap_or(AttemptResult::ConnectionError),
    }
}

/// The first `AmqpError` or `EventHubsError` among `error`'s sources, classified.
fn nested(error: &(dyn StdError + 'static)) -> Option<AttemptResult> {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(amqp) = inner.downcast_ref::<AmqpError>() {
            return Some(amqp_error(amqp));
        }
        if let Some(hubs) = inner.downcast_ref::<EventHubsError>() {
            return Some(event_hubs_error(hubs));
        }
        source = inner.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_land_on_the_documented_rows() {
        use AmqpErrorCondition as C;
        let rows = [
            (C::ServerBusyError, AttemptResult::status(503)),
            (C::TimeoutError, AttemptResult::status(503)),
            (C::UnauthorizedAccess, AttemptResult::status(401)),
            (C::NotFound, AttemptResult::status(404)),
            (C::LinkPayloadSizeExceeded, AttemptResult::status(413)),
            (C::DecodeError, AttemptResult::status(400)),
            (C::InternalError, AttemptResult::status(500)),
            (C::ConnectionForced, AttemptResult::ConnectionError),
        ];
        for (c, expected) in rows {
            assert_eq!(condition(&c), expected, "{c:?}");
        }
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            outcome(&AmqpSendOutcome::Accepted),
            AttemptResult::status(200)
        );
        assert_eq!(
            outcome(&AmqpSendOutcome::Released),
            AttemptResult::status(500)
        );
    }
}
