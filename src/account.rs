//! The account of every event: each (event, matching route) ends in exactly one [`Outcome`],
//! counted per endpoint and, with `--ledger`, written as one NDJSON line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::delivery::policy::GiveUpReason;

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The endpoint took it.
    Delivered,
    /// Written to the dead-letter location.
    DeadLettered,
    /// Given up without a dead-letter (no location, or the location refused it).
    Dropped,
    /// Still pending when the run was stopped early.
    InFlight,
}

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// The event's `id`.
    pub event_id: String,
    /// The route that matched.
    pub route: String,
    /// The route's endpoint.
    pub endpoint: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, unless delivered.
    pub reason: Option<&'static str>,
    /// The status of a `NonRetriableStatus` ending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For a drop: the reason delivery was given up (the drop's own reason is `reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    /// Attempts made.
    pub attempts: u32,
    /// When the first attempt was made (RFC 3339, UTC).
    pub first_attempt_at: Option<String>,
    /// When the delivery ended.
    pub final_at: String,
}

/// Live per-endpoint counters (atomics: the progress display reads them while workers write).
#[derive(Debug, Default)]
pub struct EndpointCounters {
    /// Deliveries routed to the endpoint.
    pub routed: AtomicU64,
    /// Ended `delivered`.
    pub delivered: AtomicU64,
    /// Ended `deadLettered`.
    pub dead_lettered: AtomicU64,
    /// Ended `dropped`.
    pub dropped: AtomicU64,
    /// Ended `inFlight`.
    pub in_flight: AtomicU64,
    /// Attempts made.
    pub attempts: AtomicU64,
    /// Waiting for a retry right now.
    pub retrying: AtomicU64,
    /// Handed to the dead-letter writer, not yet written.
    pub dead_letter_pending: AtomicU64,
    /// Dead-letter blobs that could not be written and went to the spill folder instead.
    pub dead_letter_spilled: AtomicU64,
    /// Reason → count, for dead-lettered deliveries.
    pub dead_letter_reasons: Mutex<BTreeMap<&'static str, u64>>,
    /// Cause → count, for dropped deliveries.
    pub drop_reasons: Mutex<BTreeMap<&'static str, u64>>,
}

impl EndpointCounters {
    /// Deliveries that have ended.
    pub fn ended(&self) -> u64 {
        self.delivered.load(Relaxed)
            + self.dead_lettered.load(Relaxed)
            + self.dropped.load(Relaxed)
            + self.in_flight.load(Relaxed)
    }
}

/// What ended, for [`Accounts::end`].
#[derive(Clone, Copy, Debug)]
pub struct Ending<'a> {
    /// The event's id.
    pub event_id: &'a str,
    /// Route index.
    pub route: usize,
    /// Endpoint index.
    pub endpoint: usize,
    /// How it ended.
    pub outcome: Outcome,
    /// Why (unless delivered).
    pub reason: Option<GiveUpReason>,
    /// For drops, what made delivery give up.
    pub cause: Option<GiveUpReason>,
    /// Attempts made.
    pub attempts: u32,
    /// First attempt, since the run started.
    pub first_attempt_at: Option<Duration>,
    /// The ending, since the run started.
    pub final_at: Duration,
}

/// The run's accounts: counters per endpoint, and the ledger if one was asked for.
#[derive(Debug)]
pub struct Accounts {
    /// Counters per endpoint, in file order.
    pub endpoints: Vec<EndpointCounters>,
    route_names: Vec<String>,
    endpoint_names: Vec<String>,
    clock: Clock,
    ledger: Option<mpsc::Sender<LedgerEntry>>,
    /// Events generated so far (the progress display reads it).
    pub generated: AtomicU64,
}

impl Accounts {
    /// Accounts for `endpoints` and `routes`, writing ledger lines to `ledger` if given.
    pub fn new(
        endpoint_names: Vec<String>,
        route_names: Vec<String>,
        clock: Clock,
        ledger: Option<mpsc::Sender<LedgerEntry>>,
    ) -> Arc<Self> {
        Arc::new(Accounts {
            endpoints: endpoint_names
                .iter()
                .map(|_| EndpointCounters::default())
                .collect(),
            route_names,
            endpoint_names,
            clock,
            ledger,
            generated: AtomicU64::new(0),
        })
    }

    /// Records one ending: counts it and writes its ledger line.
    pub async fn end(&self, ending: Ending<'_>) {
        let counters = &self.endpoints[ending.endpoint];
        let counter = match ending.outcome {
            Outcome::Delivered => &counters.delivered,
            Outcome::DeadLettered => &counters.dead_lettered,
            Outcome::Dropped => &counters.dropped,
            Outcome::InFlight => &counters.in_flight,
        };
        counter.fetch_add(1, Relaxed);
        let tally = match ending.outcome {
            Outcome::DeadLettered => ending.reason.map(|r| (&counters.dead_letter_reasons, r)),
            Outcome::Dropped => ending
                .cause
                .or(ending.reason)
                .map(|r| (&counters.drop_reasons, r)),
            _ => None,
        };
        if let Some((map, reason)) = tally {
            *map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(reason.as_str())
                .or_default() += 1;
        }
        let Some(ledger) = &self.ledger else { return };
        let status = match ending.reason {
            Some(GiveUpReason::NonRetriableStatus(status)) => Some(status),
            _ => match ending.cause {
                Some(GiveUpReason::NonRetriableStatus(status)) => Some(status),
                _ => None,
            },
        };
        let entry = LedgerEntry {
            event_id: ending.event_id.to_owned(),
            route: self.route_names[ending.route].clone(),
            endpoint: self.endpoint_names[ending.endpoint].clone(),
            outcome: ending.outcome,
            reason: ending.reason.map(|r| r.as_str()),
            status,
            cause: ending.cause.map(|r| r.as_str()),
            attempts: ending.attempts,
            first_attempt_at: ending
                .first_attempt_at
                .map(|at| self.clock.at(at).to_string()),
            final_at: self.clock.at(ending.final_at).to_string(),
        };
        // The writer only goes away when the run is over; a send error then has nothing to lose.
        let _ = ledger.send(entry).await;
    }

    /// The endpoint names, in file order.
    pub fn endpoint_names(&self) -> &[String] {
        &self.endpoint_names
    }
}

/// Writes ledger lines to `file` (created before the run starts, so an unwritable path is found
/// before any event depends on it) until every sender is gone; returns the lines written.
pub async fn write_ledger(
    file: File,
    mut lines: mpsc::Receiver<LedgerEntry>,
) -> std::io::Result<u64> {
    // Plain blocking writes into a large buffer: no spawn_blocking, so virtual time does not
    // advance while the ledger is written.
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut written = 0;
    while let Some(entry) = lines.recv().await {
        serde_json::to_writer(&mut out, &entry)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}
