//! The dead-letter stage: its own bounded queue and concurrency, between the endpoint workers
//! and the stores. A transient store failure is retried with backoff for up to the retention
//! time while delivery goes on; what cannot be written in the end is spilled to a local folder
//! (same layout); only if that fails too is the event dropped, counted and logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{BlobBody, DeadLetterBlob, DeadLetterMetadata, DeadLetterStore, StoreError, blob_path};
use crate::account::{Accounts, Ending, Outcome};
use crate::clock::Clock;
use crate::delivery::classify::AttemptResult;
use crate::delivery::policy::GiveUpReason;
use crate::delivery::worker::Delivery;

/// A delivery given up by its endpoint, to be dead-lettered.
#[derive(Debug)]
pub struct DeadLetterJob {
    /// Endpoint index.
    pub endpoint: usize,
    /// The delivery, as it ended.
    pub delivery: Delivery,
    /// Why it was given up.
    pub reason: GiveUpReason,
    /// When, since the run started.
    pub at: Duration,
}

/// Where one endpoint's dead-letters go.
#[derive(Debug, Clone)]
pub struct EndpointStores {
    /// The configured location.
    pub store: Arc<dyn DeadLetterStore>,
    /// Where blobs go that the store cannot take.
    pub spill: Option<Arc<dyn DeadLetterStore>>,
    /// How long transient failures are retried (`deadLetterRetentionHours`); `None`: the
    /// writer's default.
    pub retention: Option<Duration>,
    /// What a blob holds: the event in the schema the endpoint takes.
    pub body: BlobBody,
}

/// The writer's settings.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Writes in flight at once.
    pub concurrency: usize,
    /// How long a transient failure is retried when the endpoint does not say (Event Grid: 4 hours).
    pub retention: Duration,
    /// First backoff after a transient failure (doubles, at most a minute).
    pub first_backoff: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            concurrency: 32,
            retention: Duration::from_secs(4 * 3600),
            first_backoff: Duration::from_secs(1),
        }
    }
}

enum Written {
    Stored,
    Spilled,
    Failed(StoreError),
    Aborted,
}

/// The dead-letter stage.
pub struct DeadLetterWriter {
    settings: WriterSettings,
    inbox: mpsc::Receiver<DeadLetterJob>,
    stores: Vec<Option<EndpointStores>>,
    accounts: Arc<Accounts>,
    clock: Clock,
    abort: CancellationToken,
    reported: Vec<AtomicBool>,
}

impl DeadLetterWriter {
    /// A writer for `stores` (one per endpoint, `None` where the endpoint has no location).
    pub fn new(
        settings: WriterSettings,
        inbox: mpsc::Receiver<DeadLetterJob>,
        stores: Vec<Option<EndpointStores>>,
        accounts: Arc<Accounts>,
        clock: Clock,
        abort: CancellationToken,
    ) -> Self {
        let reported = stores.iter().map(|_| AtomicBool::new(false)).collect();
        DeadLetterWriter {
            settings,
            inbox,
            stores,
            accounts,
            clock,
            abort,
            reported,
        }
    }

    /// The blob for `job`.
    pub fn blob(&self, job: &DeadLetterJob, body: &BlobBody) -> DeadLetterBlob {
        let delivery = &job.delivery;
        let name = &self.accounts.endpoint_names()[job.endpoint];
        let status = match delivery.last_result {
            Some(AttemptResult::Status { status, .. }) => Some(status),
            _ => None,
        };
        DeadLetterBlob {
            path: blob_path(name, self.clock.at(job.at), &delivery.event.event.id),
            body: body.of(&delivery.event),
            metadata: DeadLetterMetadata {
                reason: job.reason.as_str(),
                delivery_attempts: delivery.attempts,
                last_delivery_outcome: delivery
                    .last_result
                    .map_or("Canceled", |r| r.outcome_name()),
                last_http_status_code: status,
                publish_time: self.clock.at(delivery.routed_at),
                last_delivery_attempt_time: delivery.last_attempt_at.map(|at| self.clock.at(at)),
            },
        }
    }

    /// Runs until every job is written and the queue is closed, or until aborted.
    pub async fn run(mut self) {
        let mut running: JoinSet<(u64, Written)> = JoinSet::new();
        let mut jobs: HashMap<u64, DeadLetterJob> = HashMap::new();
        let mut next_id = 0u64;
        let mut open = true;
        loop {
            if !open && running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = self.abort.cancelled() => {
                    running.abort_all();
                    self.inbox.close();
                    let mut left: Vec<(u64, DeadLetterJob)> = jobs.drain().collect();
                    left.sort_by_key(|(id, _)| *id);
                    let mut left: Vec<DeadLetterJob> = left.into_iter().map(|(_, job)| job).collect();
                    while let Ok(job) = self.inbox.try_recv() {
                        left.push(job);
                    }
                    for job in left {
                        self.end(&job, Outcome::InFlight, Some(GiveUpReason::ShutdownBeforeDelivery), Some(job.reason)).await;
                    }
                    break;
                }
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let Ok((id, written)) = done else { continue };
                    let Some(job) = jobs.remove(&id) else { continue };
                    self.finish(job, written).await;
                }
                job = self.inbox.recv(), if open && running.len() < self.settings.concurrency => {
                    let Some(job) = job else {
                        open = false;
                        continue;
                    };
                    let Some(stores) = self.stores.get(job.endpoint).cloned().flatten() else {
                        self.finish(job, Written::Failed(StoreError::Permanent("no dead-letter location".into()))).await;
                        continue;
                    };
                    next_id += 1;
                    let blob = self.blob(&job, &stores.body);
                    jobs.insert(next_id, job);
                    let (settings, abort, id) = (self.settings.clone(), self.abort.clone(), next_id);
                    running.spawn(async move { (id, write(&stores, &blob, &settings, &abort).await) });
                }
            }
        }
    }

    async fn finish(&self, job: DeadLetterJob, written: Written) {
        let counters = &self.accounts.endpoints[job.endpoint];
        counters.dead_letter_pending.fetch_sub(1, Relaxed);
        match written {
            Written::Stored => {
                self.end(&job, Outcome::DeadLettered, Some(job.reason), None)
                    .await
            }
            Written::Spilled => {
                counters.dead_letter_spilled.fetch_add(1, Relaxed);
                self.end(&job, Outcome::DeadLettered, Some(job.reason), None)
                    .await;
            }
            Written::Failed(error) => {
                if !self.reported[job.endpoint].swap(true, Relaxed) {
                    tracing::error!(
                        endpoint = %self.accounts.endpoint_names()[job.endpoint],
                        %error,
                        "dead-letters cannot be written; they are counted as dropped (reason NoDeadLetterLocation)"
                    );
                }
                self.end(
                    &job,
                    Outcome::Dropped,
                    Some(GiveUpReason::NoDeadLetterLocation),
                    Some(job.reason),
                )
                .await;
            }
            Written::Aborted => {
                self.end(
                    &job,
                    Outcome::InFlight,
                    Some(GiveUpReason::ShutdownBeforeDelivery),
                    Some(job.reason),
                )
                .await
            }
        }
    }

    async fn end(
        &self,
        job: &DeadLetterJob,
        outcome: Outcome,
        reason: Option<GiveUpReason>,
        cause: Option<GiveUpReason>,
    ) {
        self.accounts
            .end(Ending {
                event_id: &job.delivery.event.event.id,
                route: job.delivery.route,
                endpoint: job.endpoint,
                outcome,
                reason,
                cause,
                attempts: job.delivery.attempts,
                first_attempt_at: job.delivery.first_attempt_at,
                final_at: job.at,
            })
            .await;
    }
}

/// Writes `blob`, retrying transient failures with backoff within the retention time, then
/// spills it if the store never took it.
async fn write(
    stores: &EndpointStores,
    blob: &DeadLetterBlob,
    settings: &WriterSettings,
    abort: &CancellationToken,
) -> Written {
    let mut backoff = settings.first_backoff;
    let mut waited = Duration::ZERO;
    let error = loop {
        match stores.store.put(blob).await {
            Ok(()) => return Written::Stored,
            Err(error @ StoreError::Permanent(_)) => break error,
            Err(error @ StoreError::Transient(_)) => {
                if waited + backoff > stores.retention.unwrap_or(settings.retention) {
                    break error;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = abort.cancelled() => return Written::Aborted,
                }
                waited += backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    };
    match &stores.spill {
        Some(spill) => match spill.put(blob).await {
            Ok(()) => Written::Spilled,
            Err(spill_error) => Written::Failed(StoreError::Permanent(format!(
                "{error}; spill folder: {spill_error}"
            ))),
        },
        None => Written::Failed(error),
    }
}
