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
//! | a status below 400 inside an error (a CBS or management answer the client refused) | 500 | retry, ≥ 10 s |
//! | connection/session/link closed or detached, I/O, idle timeout | `ConnectionError` | retry |
//!
//! **Only an accepted transfer is a delivery.** [`outcome`] is the one function that can answer
//! 200, and only for [`AmqpSendOutcome::Accepted`]; every error classifies to a [`Failed`], a
//! type that cannot hold a success. A status the client put inside an error (a put-token answer
//! of 200 that `fe2o3-amqp-cbs` 0.16 refused for not being 202, say) says nothing about the
//! transfer, which never happened: it counts as 500.
//!
//! Throttling is 503, not 429: Event Hubs and Service Bus report `ServerBusy` over HTTP as 503,
//! and the 30 s minimum is close to the services' own advice (Service Bus: wait 10 s, Event
//! Hubs: the throttled throughput unit frees each second but a busy namespace stays busy).

use std::error::Error as StdError;

use crate::delivery::classify::AttemptResult;
use azure_core_amqp::error::{AmqpErrorCondition, AmqpErrorKind};
use azure_core_amqp::{AmqpDescribedError, AmqpError, AmqpSendOutcome};

/// The row of an attempt that failed: an [`AttemptResult`] that is never a delivery (no status
/// below 400), so an error can never be counted as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed(AttemptResult);

impl Failed {
    /// The connection, session or link is gone.
    pub const CONNECTION: Failed = Failed(AttemptResult::ConnectionError);

    /// A failure status. A status below 400 (a success or a redirect the client refused, or no
    /// HTTP status at all) is not a failure code, so it counts as 500.
    pub fn status(status: u16) -> Failed {
        Failed(AttemptResult::status(if status >= 400 {
            status
        } else {
            500
        }))
    }

    /// The row, for the delivery policy.
    pub fn result(self) -> AttemptResult {
        self.0
    }
}

impl From<Failed> for AttemptResult {
    fn from(failed: Failed) -> AttemptResult {
        failed.0
    }
}

/// The row an AMQP error condition belongs to.
pub fn condition(condition: &AmqpErrorCondition) -> Failed {
    use AmqpErrorCondition as C;
    match condition {
        C::ServerBusyError | C::TimeoutError | C::ResourceLimitExceeded => Failed::status(503),
        C::UnauthorizedAccess | C::PublisherRevokedError => Failed::status(401),
        C::NotFound | C::EntityDisabledError | C::ResourceDeleted => Failed::status(404),
        C::LinkPayloadSizeExceeded => Failed::status(413),
        C::DecodeError
        | C::InvalidField
        | C::NotAllowed
        | C::NotImplemented
        | C::ArgumentError
        | C::ArgumentOutOfRangeError => Failed::status(400),
        C::LinkDetachForced
        | C::ConnectionForced
        | C::ConnectionFramingError
        | C::ProtonIo
        | C::LinkStolen => Failed::CONNECTION,
        _ => Failed::status(500),
    }
}

/// The row of a settled send: the only way to 200.
pub fn outcome(outcome: &AmqpSendOutcome) -> AttemptResult {
    match outcome {
        AmqpSendOutcome::Accepted => AttemptResult::status(200),
        AmqpSendOutcome::Rejected(Some(described)) => condition(&described.condition).into(),
        // Neither released nor modified means the service stored the message.
        AmqpSendOutcome::Rejected(None)
        | AmqpSendOutcome::Released
        | AmqpSendOutcome::Modified(_) => AttemptResult::status(500),
    }
}

/// The row of an `azure_core_amqp` error.
pub fn amqp_error(error: &AmqpError) -> Failed {
    match error.kind() {
        AmqpErrorKind::AmqpDescribedError(described) => described_error(described),
        AmqpErrorKind::ManagementStatusCode(status, _) => Failed::status(u16::from(*status)),
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
            nested(error).unwrap_or(Failed::CONNECTION)
        }
        AmqpErrorKind::SendRejected => Failed::status(500),
        AmqpErrorKind::AzureCore(core) => nested(core).unwrap_or(Failed::CONNECTION),
        _ => nested(error).unwrap_or(Failed::CONNECTION),
    }
}

fn described_error(described: &AmqpDescribedError) -> Failed {
    condition(&described.condition)
}

/// The first `AmqpError` among `error`'s sources, classified.
fn nested(error: &(dyn StdError + 'static)) -> Option<Failed> {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(amqp) = inner.downcast_ref::<AmqpError>() {
            return Some(amqp_error(amqp));
        }
        source = inner.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::classify::{AttemptOutcome, EndpointClass};
    use azure_core_amqp::AmqpOrderedMap;
    use proptest::prelude::*;

    /// Every condition `azure_core_amqp` names, and one it does not.
    const CONDITIONS: &[&str] = &[
        "amqp:decode-error",
        "amqp:frame-size-too-small",
        "amqp:illegal-state",
        "amqp:internal-error",
        "amqp:invalid-field",
        "amqp:not-allowed",
        "amqp:not-found",
        "amqp:not-implemented",
        "amqp:precondition-failed",
        "amqp:resource-deleted",
        "amqp:resource-limit-exceeded",
        "amqp:resource-locked",
        "amqp:unauthorized-access",
        "amqp:link:stolen",
        "amqp:link:message-size-exceeded",
        "amqp:link:detach-forced",
        "amqp:connection:forced",
        "com.microsoft:dead-letter",
        "com.microsoft:server-busy",
        "com.microsoft:argument-error",
        "com.microsoft:argument-out-of-range",
        "com.microsoft:entity-disabled",
        "com.microsoft:partition-not-owned",
        "com.microsoft:store-lock-lost",
        "com.microsoft:publisher-revoked",
        "com.microsoft:timeout",
        "com.microsoft:tracking-id",
        "proton:io",
        "amqp:connection:framing-error",
        "com.microsoft:operation-cancelled",
        "com.microsoft:message-lock-lost",
        "com.microsoft:session-lock-lost",
        "com.microsoft:session-cannot-be-locked",
        "com.microsoft:entity-updated",
        "com.microsoft:message-not-found",
        "com.microsoft:session-not-found",
        "com.microsoft:entity-already-exists",
        "amqp:connection:redirect",
        "amqp:link:redirect",
        "amqp:link:transfer-limit-exceeded",
        "amqp:session:window-violation",
        "amqp:session:errant-link",
        "amqp:session:handle-in-use",
        "amqp:session:unattached-handle",
        "vendor:something-else",
    ];

    fn condition_named(name: &str) -> AmqpErrorCondition {
        name.parse().expect("parsing a condition is infallible")
    }

    fn described(name: &str) -> AmqpDescribedError {
        AmqpDescribedError::new(condition_named(name), None, AmqpOrderedMap::new())
    }

    /// Every `AmqpErrorKind` the client can return, built around `status` and `name` where the
    /// kind carries one, and each of them nested the ways the clients nest them.
    fn amqp_errors(status: u16, name: &str) -> Vec<AmqpError> {
        let boxed = || -> Box<dyn StdError + Send + Sync> {
            Box::new(AmqpError::from(AmqpErrorKind::AmqpDescribedError(
                described(name),
            )))
        };
        let kinds = vec![
            AmqpErrorKind::SimpleMessage("x".into()),
            AmqpErrorKind::AmqpDescribedError(described(name)),
            AmqpErrorKind::ManagementStatusCode(status.into(), Some("answer".to_owned())),
            AmqpErrorKind::LinkClosedByRemote(boxed()),
            AmqpErrorKind::SessionClosedByRemote(boxed()),
            AmqpErrorKind::ConnectionClosedByRemote(boxed()),
            AmqpErrorKind::LinkDetachedByRemote(boxed()),
            AmqpErrorKind::SessionDetachedByRemote(boxed()),
            AmqpErrorKind::ConnectionDetachedByRemote(boxed()),
            AmqpErrorKind::NonTerminalDeliveryState,
            AmqpErrorKind::IllegalDeliveryState,
            AmqpErrorKind::ConnectionDropped(boxed()),
            AmqpErrorKind::LinkStateError(boxed()),
            AmqpErrorKind::FramingError(boxed()),
            AmqpErrorKind::IdleTimeoutElapsed(boxed()),
            AmqpErrorKind::TransferLimitExceeded(boxed()),
            AmqpErrorKind::DetachError(boxed()),
            AmqpErrorKind::TransportImplementationError(boxed()),
            AmqpErrorKind::SendRejected,
            AmqpErrorKind::AzureCore(azure_core::Error::from(AmqpError::from(
                AmqpErrorKind::ManagementStatusCode(status.into(), None),
            ))),
        ];
        kinds.into_iter().map(AmqpError::from).collect()
    }

    fn never_delivered(failed: Failed) {
        for class in [EndpointClass::AzureResource, EndpointClass::Webhook] {
            assert_ne!(
                failed.result().classify(class),
                AttemptOutcome::Delivered,
                "{failed:?}"
            );
        }
    }

    proptest! {
        /// No error, whatever status or condition it carries, is ever a delivery.
        #[test]
        fn no_error_is_ever_delivered(status in 0u16..=u16::MAX, which in 0..CONDITIONS.len()) {
            let name = CONDITIONS[which];
            never_delivered(condition(&condition_named(name)));
            for error in amqp_errors(status, name) {
                never_delivered(amqp_error(&error));
            }
        }
    }

    #[test]
    fn every_success_status_inside_an_error_is_a_500() {
        // The defect: fe2o3-amqp-cbs turned a put-token answer of 200 into an error holding
        // 200, and the classifier read that 200 as a delivery.
        for status in 100..400 {
            let error = AmqpError::from(AmqpErrorKind::ManagementStatusCode(status.into(), None));
            assert_eq!(amqp_error(&error), Failed::status(500), "{status}");
        }
        let refused = AmqpError::from(AmqpErrorKind::ManagementStatusCode(401.into(), None));
        assert_eq!(amqp_error(&refused).result(), AttemptResult::status(401));
    }

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
            assert_eq!(condition(&c).result(), expected, "{c:?}");
        }
    }

    #[test]
    fn only_an_accepted_outcome_is_delivered() {
        assert_eq!(
            outcome(&AmqpSendOutcome::Accepted),
            AttemptResult::status(200)
        );
        let others = [
            AmqpSendOutcome::Released,
            AmqpSendOutcome::Rejected(None),
            AmqpSendOutcome::Rejected(Some(described("com.microsoft:server-busy"))),
        ];
        for (index, other) in others.iter().enumerate() {
            assert_ne!(
                outcome(other).classify(EndpointClass::AzureResource),
                AttemptOutcome::Delivered,
                "outcome {index}"
            );
        }
    }
}
