//! The account of every event: each (event, matching route) ends in exactly one [`Outcome`],
//! counted per endpoint and, with `--ledger`, written as one NDJSON line by the [`Ledger`] task.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::delivery::routed::Delivery;

pub use crate::delivery::outcome::{Ending, Outcome};

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
    /// How it ended ([`Outcome::name`]).
    pub outcome: &'static str,
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
        let (counter, tally) = match ending.outcome {
            Outcome::Delivered => (&counters.delivered, None),
            Outcome::DeadLettered { reason } => (
                &counters.dead_lettered,
                Some((&counters.dead_letter_reasons, reason)),
            ),
            Outcome::Dropped { cause } => {
                (&counters.dropped, Some((&counters.drop_reasons, cause)))
            }
            Outcome::InFlight { .. } => (&counters.in_flight, None),
        };
        counter.fetch_add(1, Relaxed);
        if let Some((map, reason)) = tally {
            *map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(reason.as_str())
                .or_default() += 1;
        }
        let Some(ledger) = &self.ledger else { return };
        let entry = LedgerEntry {
            event_id: ending.event_id.to_owned(),
            route: self.route_names[ending.route].clone(),
            endpoint: self.endpoint_names[ending.endpoint].clone(),
            outcome: ending.outcome.name(),
            reason: ending.outcome.reason(),
            status: ending.outcome.status(),
            cause: ending.outcome.cause().map(|r| r.as_str()),
            attempts: ending.attempts,
            first_attempt_at: ending
                .first_attempt_at
                .map(|at| self.clock.at(at).to_string()),
            final_at: self.clock.at(ending.final_at).to_string(),
        };
        // The writer only goes away when the run is over; a send error then has nothing to lose.
        let _ = ledger.send(entry).await;
    }

    /// Ends every delivery in `held` `inFlight` at `at`, in order: the last step of a stop,
    /// when the drain timeout has run out (the protocol is described once, in
    /// [`crate::engine`], "Stopping"). Every stage that holds deliveries (the source's pending
    /// batches, each endpoint's worker) hands them here when the run is aborted.
    pub async fn end_in_flight(
        &self,
        endpoint: usize,
        held: impl IntoIterator<Item = Delivery>,
        at: Duration,
    ) {
        for delivery in held {
            let outcome = Outcome::InFlight { cause: None };
            self.end(delivery.ending(endpoint, outcome, at)).await;
        }
    }

    /// The endpoint names, in file order.
    pub fn endpoint_names(&self) -> &[String] {
        &self.endpoint_names
    }
}

/// Ledger lines waiting for the writer.
const LEDGER_QUEUE: usize = 8192;

/// The ledger (`--ledger FILE`): a task writing one NDJSON line per ending.
#[derive(Debug)]
pub struct Ledger {
    task: tokio::task::JoinHandle<std::io::Result<u64>>,
}

impl Ledger {
    /// Creates `path` now, before the run starts (so an unwritable path is found before any
    /// event depends on it), and spawns the task that writes every line sent to the returned
    /// sender (give it to [`Accounts::new`]) until every sender is gone.
    pub fn spawn(path: &Path) -> std::io::Result<(Ledger, mpsc::Sender<LedgerEntry>)> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::channel(LEDGER_QUEUE);
        let task = tokio::spawn(write_ledger(file, rx));
        Ok((Ledger { task }, tx))
    }

    /// Waits until every line is written (once every sender is gone, with the accounts);
    /// returns how many.
    pub async fn finish(self) -> std::io::Result<u64> {
        self.task
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
    }
}

/// Writes ledger lines to `file` until every sender is gone; returns the lines written.
async fn write_ledger(file: File, mut lines: mpsc::Receiver<LedgerEntry>) -> std::io::Result<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::policy::GiveUpReason;
    use crate::event::Serialized;
    use crate::generator::{DEFAULT_START_TIME, sample_events};

    /// The ledger line of each kind of ending, byte for byte: the reasons that are not the
    /// policy's (`NoDeadLetterLocation`, `ShutdownBeforeDelivery`) come from the outcome.
    #[tokio::test]
    async fn each_outcome_writes_its_ledger_line() {
        let clock = Clock::starting_at(DEFAULT_START_TIME);
        let (tx, mut rx) = mpsc::channel(16);
        let accounts = Accounts::new(vec!["ep".into()], vec!["all".into()], clock, Some(tx));
        let event = sample_events(1, 10, 1).remove(0);
        let mut delivery = Delivery::new(Arc::new(Serialized::new(event)), 0, Duration::ZERO);
        let id = delivery.event.event.id;
        let secs = Duration::from_secs;
        let outcomes = [
            (
                Outcome::Delivered,
                r#""outcome":"delivered","reason":null,"#,
            ),
            (
                Outcome::DeadLettered {
                    reason: GiveUpReason::TimeToLiveExceeded,
                },
                r#""outcome":"deadLettered","reason":"TimeToLiveExceeded","#,
            ),
            (
                Outcome::DeadLettered {
                    reason: GiveUpReason::NonRetriableStatus(400),
                },
                r#""outcome":"deadLettered","reason":"NonRetriableStatus","status":400,"#,
            ),
            (
                Outcome::Dropped {
                    cause: GiveUpReason::NonRetriableStatus(403),
                },
                r#""outcome":"dropped","reason":"NoDeadLetterLocation","status":403,"cause":"NonRetriableStatus","#,
            ),
            (
                Outcome::Dropped {
                    cause: GiveUpReason::MaxDeliveryAttemptsExceeded,
                },
                r#""outcome":"dropped","reason":"NoDeadLetterLocation","cause":"MaxDeliveryAttemptsExceeded","#,
            ),
            (
                Outcome::InFlight { cause: None },
                r#""outcome":"inFlight","reason":"ShutdownBeforeDelivery","#,
            ),
            (
                Outcome::InFlight {
                    cause: Some(GiveUpReason::MaxDeliveryAttemptsExceeded),
                },
                r#""outcome":"inFlight","reason":"ShutdownBeforeDelivery","cause":"MaxDeliveryAttemptsExceeded","#,
            ),
        ];
        delivery.attempts = 2;
        delivery.first_attempt_at = Some(secs(1));
        for (outcome, middle) in outcomes {
            accounts.end(delivery.ending(0, outcome, secs(3))).await;
            let line = serde_json::to_string(&rx.recv().await.unwrap()).unwrap();
            assert_eq!(
                line,
                format!(
                    r#"{{"eventId":"{id}","route":"all","endpoint":"ep",{middle}"attempts":2,"firstAttemptAt":"2026-01-01T00:00:01.0000000Z","finalAt":"2026-01-01T00:00:03.0000000Z"}}"#
                )
            );
        }
        let counters = &accounts.endpoints[0];
        let counts = [
            &counters.delivered,
            &counters.dead_lettered,
            &counters.dropped,
            &counters.in_flight,
        ]
        .map(|c| c.load(Relaxed));
        assert_eq!(counts, [1, 2, 2, 2]);
        let tally = |map: &Mutex<BTreeMap<&'static str, u64>>| map.lock().unwrap().clone();
        assert_eq!(
            tally(&counters.dead_letter_reasons),
            BTreeMap::from([("NonRetriableStatus", 1), ("TimeToLiveExceeded", 1)])
        );
        assert_eq!(
            tally(&counters.drop_reasons),
            BTreeMap::from([
                ("MaxDeliveryAttemptsExceeded", 1),
                ("NonRetriableStatus", 1)
            ])
        );
    }

    #[tokio::test]
    async fn end_in_flight_ends_every_held_delivery_in_order() {
        let clock = Clock::starting_at(DEFAULT_START_TIME);
        let (tx, mut rx) = mpsc::channel(16);
        let accounts = Accounts::new(vec!["ep".into()], vec!["all".into()], clock, Some(tx));
        let held: Vec<Delivery> = sample_events(2, 10, 3)
            .into_iter()
            .map(|e| Delivery::new(Arc::new(Serialized::new(e)), 0, Duration::ZERO))
            .collect();
        let ids: Vec<String> = held.iter().map(|d| d.event.event.id.to_string()).collect();
        accounts
            .end_in_flight(0, held, Duration::from_secs(5))
            .await;
        drop(accounts);
        let mut lines = Vec::new();
        while let Some(entry) = rx.recv().await {
            lines.push(entry);
        }
        assert_eq!(
            lines.iter().map(|l| l.event_id.clone()).collect::<Vec<_>>(),
            ids
        );
        assert!(lines.iter().all(|l| l.outcome == "inFlight"
            && l.reason == Some("ShutdownBeforeDelivery")
            && l.cause.is_none()
            && l.first_attempt_at.is_none()));
    }
}
