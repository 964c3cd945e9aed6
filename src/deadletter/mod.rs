//! Dead-letters: events an endpoint could not take within its budget, written one blob per
//! event at `<endpoint-name>/<yyyy>/<mm>/<dd>/<hh>/<event-id>.json` inside the container, the
//! body being the event's bytes exactly as they would have been delivered.
//!
//! - [`DeadLetterStore`]: the small contract a store implements (local folder, memory, blob).
//! - [`folder`]: a local folder standing in for the blob container.
//! - [`memory`]: an in-memory store, for tests.
//! - [`blob`]: Azure Blob Storage (or Azurite): one Put Blob per event, from a container SAS URI
//!   or with an Entra ID token; [`sas`] checks the SAS at startup.
//! - [`open`]: an endpoint's stores opened from its settings (location, spill folder, body).
//! - [`throughput`]: dead-letter writes per second, for `examples/deadletter_bench.rs`.
//! - [`writer`]: the dead-letter stage, one writer per endpoint: its own bounded queue, failing
//!   writes waiting in a retry schedule, and the ending of each event once its blob is written.

pub mod blob;
pub mod folder;
pub mod memory;
pub mod open;
pub mod sas;
pub mod throughput;
pub mod writer;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::clock::Timestamp;
use crate::event::Serialized;

/// What a dead-letter blob holds: the event as its endpoint would have been sent it ("dead-lettered
/// messages will match the schema of the original event that was intended to be delivered to
/// your original endpoint", adt-facts §3), one event, never an array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BlobBody {
    /// The structured CloudEvent: every endpoint but an `EventGridSchema` topic.
    #[default]
    CloudEvent,
    /// The event in Event Grid's schema, for a topic with `inputSchema: EventGridSchema`.
    EventGrid {
        /// The events' `topic`.
        topic: Arc<str>,
    },
}

impl BlobBody {
    /// The body of `event`'s dead-letter.
    pub fn of(&self, event: &Serialized) -> Bytes {
        match self {
            BlobBody::CloudEvent => event.json().clone(),
            BlobBody::EventGrid { topic } => {
                Bytes::from(crate::sink::http::event_grid_json(&event.event, topic))
            }
        }
    }
}

/// One dead-lettered event, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterBlob {
    /// Path inside the container: `<endpoint-name>/<yyyy>/<mm>/<dd>/<hh>/<event-id>.json`.
    pub path: String,
    /// The event's bytes, exactly as they would have been delivered ([`BlobBody`]).
    pub body: Bytes,
    /// Diagnostics kept beside the body (blob metadata), never inside it.
    pub metadata: DeadLetterMetadata,
}

/// Event Grid's dead-letter diagnostics (its names, lower-cased as blob metadata keys).
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterMetadata {
    /// `deadletterreason`: `MaxDeliveryAttemptsExceeded`, `TimeToLiveExceeded`, `NonRetriableStatus`.
    pub reason: &'static str,
    /// `deliveryattempts`.
    pub delivery_attempts: u32,
    /// `lastdeliveryoutcome`: Event Grid's outcome name (`Busy`, `TimedOut`, `BadRequest`, …).
    pub last_delivery_outcome: &'static str,
    /// `lasthttpstatuscode`, when the last attempt got a status.
    pub last_http_status_code: Option<u16>,
    /// `publishtime`: when the event was routed.
    pub publish_time: Timestamp,
    /// `lastdeliveryattempttime`.
    pub last_delivery_attempt_time: Option<Timestamp>,
}

impl DeadLetterMetadata {
    /// The metadata as `(key, value)` pairs, keys as blob metadata names them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("deadletterreason", self.reason.to_owned()),
            ("deliveryattempts", self.delivery_attempts.to_string()),
            ("lastdeliveryoutcome", self.last_delivery_outcome.to_owned()),
            ("publishtime", self.publish_time.to_string()),
        ];
        if let Some(status) = self.last_http_status_code {
            pairs.push(("lasthttpstatuscode", status.to_string()));
        }
        if let Some(time) = self.last_delivery_attempt_time {
            pairs.push(("lastdeliveryattempttime", time.to_string()));
        }
        pairs
    }
}

/// The path of a dead-letter blob inside its container: the UTC hour at which the event was
/// dead-lettered, zero-padded, and the endpoint name as given.
pub fn blob_path(endpoint: &str, dead_lettered_at: Timestamp, event_id: &str) -> String {
    let (year, month, day, hour) = dead_lettered_at.utc_hour();
    format!("{endpoint}/{year:04}/{month:02}/{day:02}/{hour:02}/{event_id}.json")
}

/// Why a store could not take a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Worth retrying: a 5xx, a timeout, a refused connection, a full disk.
    #[error("transient: {0}")]
    Transient(String),
    /// Not worth retrying: bad credentials, a missing container, a read-only folder.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A boxed future, so stores can be held as trait objects.
pub type StoreFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Where dead-letter blobs go. Writes must be idempotent: writing the same path twice leaves
/// one blob, and the second write succeeds.
pub trait DeadLetterStore: Send + Sync + fmt::Debug {
    /// Stores `blob`.
    fn put<'a>(&'a self, blob: &'a DeadLetterBlob) -> StoreFuture<'a>;

    /// Where the blobs go, for people (secrets masked).
    fn describe(&self) -> String;

    /// Whether the store does no network I/O (required under virtual time).
    fn is_local(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_path_is_zero_padded_utc_hour() {
        let at = Timestamp::parse_rfc3339("2026-03-04T05:59:59.9Z").unwrap();
        assert_eq!(
            blob_path("hub-1", at, "abc"),
            "hub-1/2026/03/04/05/abc.json"
        );
    }
}
