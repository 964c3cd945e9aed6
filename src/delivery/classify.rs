//! Response classification: what an attempt's result means for the event, in one table-like
//! function ([`classify`]), following Event Grid's 2026 failure-code table (adt-facts §5).
//!
//! Classification decides *whether* to retry and the *minimum* wait the response demands; the
//! actual wait comes from the schedule in [`super::policy`].

use std::time::Duration;

/// What came back from one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptResult {
    /// The endpoint answered with an HTTP-like status.
    Status {
        /// The status code.
        status: u16,
        /// The `Retry-After` the endpoint asked for, if any (only honoured on 429 and 503).
        retry_after: Option<Duration>,
    },
    /// No answer within the attempt timeout (also how a lost acknowledgement looks).
    Timeout,
    /// The connection could not be made or broke before an answer.
    ConnectionError,
}

impl AttemptResult {
    /// A status answer without `Retry-After`.
    pub fn status(status: u16) -> Self {
        AttemptResult::Status {
            status,
            retry_after: None,
        }
    }

    /// Whether the endpoint took the events: a status from 200 to 204 (Event Grid's table), the
    /// one definition of success every sink and the classification share.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            AttemptResult::Status {
                status: 200..=204,
                ..
            }
        )
    }

    /// Shorthand for [`classify`]`(self, class)`.
    pub fn classify(&self, class: EndpointClass) -> AttemptOutcome {
        classify(self, class)
    }

    /// Event Grid's `lastDeliveryOutcome` name for this result, for dead-letter metadata.
    ///
    /// Statuses Event Grid's list names are mapped to that name; success is `"Delivered"` and
    /// any other status `"Aborted"`: Event Grid documents no name for those, so both are our
    /// choice.
    pub fn outcome_name(&self) -> &'static str {
        match *self {
            AttemptResult::Timeout => "TimedOut",
            AttemptResult::ConnectionError => "SocketError",
            AttemptResult::Status { .. } if self.is_success() => "Delivered",
            AttemptResult::Status { status, .. } => match status {
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                408 => "TimedOut",
                413 => "PayloadTooLarge",
                429 | 503 => "Busy",
                _ => "Aborted",
            },
        }
    }
}

/// Which column of Event Grid's table applies to an endpoint. ADT's endpoints (Event Hubs,
/// Service Bus, Event Grid topics) are all Azure resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EndpointClass {
    /// An Azure resource (Event Hubs, Service Bus, Event Grid topic, …).
    #[default]
    AzureResource,
    /// A plain webhook (HTTP endpoint).
    Webhook,
}

/// What an attempt's result means for the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The endpoint took the event ([`AttemptResult::is_success`]: 200–204).
    Delivered,
    /// The attempt failed.
    Failed(Failure),
}

/// A failed attempt, as far as the retry policy needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Try again, but not sooner than `min_delay` after this attempt ended.
    Retriable {
        /// Lower bound on the wait (status table, `Retry-After`); the schedule may wait longer.
        min_delay: Duration,
    },
    /// Never retried: the event goes straight to dead-letter (or is dropped without one).
    NonRetriable {
        /// The status that ended delivery.
        status: u16,
    },
}

/// The minimum wait Event Grid applies to statuses its table does not name.
pub const DEFAULT_MIN_DELAY: Duration = Duration::from_secs(10);

/// Classifies one attempt's result, row by row as in Event Grid's table:
///
/// | result | Azure resource | Webhook |
/// |---|---|---|
/// | 200–204 | delivered | delivered |
/// | 400, 413 | never retried (straight to dead-letter) | same |
/// | 403 | never retried | same |
/// | 401 | retry, ≥ 5 min | never retried |
/// | 404 | retry, ≥ 5 min | retry, ≥ 10 s (the table's 5 min is "for Azure Resources endpoints") |
/// | 408 | retry, ≥ 2 min | same |
/// | 429 | retry, ≥ max(10 s, `Retry-After`) | same |
/// | 503 | retry, ≥ max(30 s, `Retry-After`) | same |
/// | any other status | retry, ≥ 10 s | same |
/// | timeout, connection error | retry, no minimum beyond the schedule | same |
///
/// Timeouts and connection errors carry no status, so the table's status rows do not apply;
/// the schedule alone spaces them (Event Grid queues a timed-out message "for retry" without a
/// stated minimum).
pub fn classify(result: &AttemptResult, class: EndpointClass) -> AttemptOutcome {
    if result.is_success() {
        return AttemptOutcome::Delivered;
    }
    let (status, retry_after) = match *result {
        AttemptResult::Timeout | AttemptResult::ConnectionError => {
            return retry_no_sooner_than(Duration::ZERO);
        }
        AttemptResult::Status {
            status,
            retry_after,
        } => (status, retry_after),
    };
    let asked = retry_after.unwrap_or(Duration::ZERO);
    match (status, class) {
        (400 | 403 | 413, _) | (401, EndpointClass::Webhook) => {
            AttemptOutcome::Failed(Failure::NonRetriable { status })
        }
        (401 | 404, EndpointClass::AzureResource) => {
            retry_no_sooner_than(Duration::from_secs(5 * 60))
        }
        (408, _) => retry_no_sooner_than(Duration::from_secs(2 * 60)),
        (429, _) => retry_no_sooner_than(DEFAULT_MIN_DELAY.max(asked)),
        (503, _) => retry_no_sooner_than(Duration::from_secs(30).max(asked)),
        _ => retry_no_sooner_than(DEFAULT_MIN_DELAY),
    }
}

fn retry_no_sooner_than(min_delay: Duration) -> AttemptOutcome {
    AttemptOutcome::Failed(Failure::Retriable { min_delay })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AZ: EndpointClass = EndpointClass::AzureResource;
    const WH: EndpointClass = EndpointClass::Webhook;

    fn min(secs: u64) -> AttemptOutcome {
        retry_no_sooner_than(Duration::from_secs(secs))
    }

    fn never(status: u16) -> AttemptOutcome {
        AttemptOutcome::Failed(Failure::NonRetriable { status })
    }

    fn status(s: u16) -> AttemptResult {
        AttemptResult::status(s)
    }

    fn with_retry_after(s: u16, secs: u64) -> AttemptResult {
        AttemptResult::Status {
            status: s,
            retry_after: Some(Duration::from_secs(secs)),
        }
    }

    #[test]
    fn success_is_exactly_200_to_204() {
        for s in 200..=204 {
            assert_eq!(classify(&status(s), AZ), AttemptOutcome::Delivered, "{s}");
            assert_eq!(classify(&status(s), WH), AttemptOutcome::Delivered, "{s}");
        }
        for s in [100, 199, 205, 206, 226, 301, 304] {
            assert_eq!(classify(&status(s), AZ), min(10), "{s}");
        }
    }

    #[test]
    fn status_table_for_azure_resources() {
        let rows = [
            (400, never(400)),
            (401, min(300)),
            (403, never(403)),
            (404, min(300)),
            (408, min(120)),
            (413, never(413)),
            (429, min(10)),
            (500, min(10)),
            (502, min(10)),
            (503, min(30)),
            (504, min(10)),
            (409, min(10)),
        ];
        for (s, expected) in rows {
            assert_eq!(classify(&status(s), AZ), expected, "{s}");
        }
    }

    #[test]
    fn status_table_for_webhooks() {
        let rows = [
            (400, never(400)),
            (401, never(401)),
            (403, never(403)),
            (404, min(10)),
            (408, min(120)),
            (413, never(413)),
            (429, min(10)),
            (503, min(30)),
            (500, min(10)),
        ];
        for (s, expected) in rows {
            assert_eq!(classify(&status(s), WH), expected, "{s}");
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        assert_eq!(classify(&with_retry_after(429, 60), AZ), min(60));
        assert_eq!(classify(&with_retry_after(503, 90), AZ), min(90));
        // Shorter than the table's minimum: the table wins.
        assert_eq!(classify(&with_retry_after(429, 2), AZ), min(10));
        assert_eq!(classify(&with_retry_after(503, 5), AZ), min(30));
        // Other statuses ignore it.
        assert_eq!(classify(&with_retry_after(500, 600), AZ), min(10));
        assert_eq!(classify(&with_retry_after(400, 600), AZ), never(400));
    }

    #[test]
    fn timeouts_and_connection_errors_are_retried_on_schedule() {
        for r in [AttemptResult::Timeout, AttemptResult::ConnectionError] {
            assert_eq!(r.classify(AZ), min(0));
            assert_eq!(r.classify(WH), min(0));
        }
    }

    #[test]
    fn outcome_names_follow_event_grid() {
        let rows = [
            (status(200), "Delivered"),
            (status(204), "Delivered"),
            (status(400), "BadRequest"),
            (status(401), "Unauthorized"),
            (status(403), "Forbidden"),
            (status(404), "NotFound"),
            (status(408), "TimedOut"),
            (status(413), "PayloadTooLarge"),
            (status(429), "Busy"),
            (with_retry_after(503, 1), "Busy"),
            (status(500), "Aborted"),
            (AttemptResult::Timeout, "TimedOut"),
            (AttemptResult::ConnectionError, "SocketError"),
        ];
        for (r, name) in rows {
            assert_eq!(r.outcome_name(), name, "{r:?}");
        }
    }
}
