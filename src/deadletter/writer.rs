//! The dead-letter stage: one writer per endpoint, as delivery has one worker per endpoint, so a
//! failing store holds up no other endpoint's dead-letters.
//!
//! A writer takes given-up deliveries from its endpoint's bounded queue and keeps at most
//! `concurrency` writes in flight. A write that fails transiently waits for its retry in a
//! deadline-ordered schedule (first backoff doubling to a minute, for up to the retention time),
//! holding no write slot while it waits; what the store cannot take in the end is spilled to a
//! local folder (same layout); only if that fails too is the event dropped, counted and logged.
//! When the run is aborted (a stop whose drain timeout ran out, or the drain timeout after every
//! delivery has ended), every dead-letter still pending — queued, waiting for a retry or being
//! written — is spilled, never left `inFlight`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

use super::{BlobBody, DeadLetterBlob, DeadLetterMetadata, DeadLetterStore, StoreError, blob_path};
use crate::account::{Accounts, Outcome};
use crate::clock::Clock;
use crate::config::DEFAULT_DEAD_LETTER_RETENTION;
use crate::context::RunContext;
use crate::delivery::classify::AttemptResult;
use crate::delivery::policy::{GiveUpReason, RetrySchedule};
use crate::delivery::routed::Delivery;

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

/// The longest wait between two tries of a failing write.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The writers' settings (each endpoint's writer has its own slots and schedule).
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Writes in flight at once, per endpoint.
    pub concurrency: usize,
    /// How long a transient failure is retried when the endpoint does not say (Event Grid: 4 hours).
    pub retention: Duration,
    /// First backoff after a transient failure (doubles, at most a minute: [`Self::backoff`]).
    pub first_backoff: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            concurrency: 32,
            retention: DEFAULT_DEAD_LETTER_RETENTION,
            first_backoff: Duration::from_secs(1),
        }
    }
}

impl WriterSettings {
    /// The schedule of a failing write's tries: `first_backoff`, doubling, at most a minute, no
    /// jitter (a value of the delivery policy's schedule type, so it is computed, and tested,
    /// the same way).
    pub fn backoff(&self) -> RetrySchedule {
        RetrySchedule::Exponential {
            base: self.first_backoff,
            factor: 2.0,
            cap: Some(MAX_BACKOFF),
            jitter: 0.0,
        }
    }

    /// How long to wait before trying a write again after its `failures`-th transient failure,
    /// `waited` having been spent waiting already; `None` once the wait would pass `retention`
    /// (the blob is then spilled).
    pub fn retry_wait(
        &self,
        failures: u32,
        waited: Duration,
        retention: Duration,
    ) -> Option<Duration> {
        retry_wait(&self.backoff(), failures, waited, retention)
    }
}

/// [`WriterSettings::retry_wait`] on a schedule built once.
fn retry_wait(
    backoff: &RetrySchedule,
    failures: u32,
    waited: Duration,
    retention: Duration,
) -> Option<Duration> {
    let wait = backoff.nominal_delay(failures);
    (waited + wait <= retention).then_some(wait)
}

/// Where a write goes.
#[derive(Debug)]
enum Target {
    /// The endpoint's location.
    Store,
    /// The spill folder, after the location refused (why).
    Spill(StoreError),
}

/// A dead-letter the writer holds until it ends.
struct Pending {
    job: DeadLetterJob,
    blob: Arc<DeadLetterBlob>,
    /// Transient failures so far.
    failures: u32,
    /// Time spent waiting for retries so far.
    waited: Duration,
}

/// A pending write waiting for its retry.
struct Retry {
    due: Duration,
    /// Tie-break for equal deadlines: first scheduled, first retried (deterministic).
    seq: u64,
    pending: Pending,
}

impl PartialEq for Retry {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Retry {}
impl PartialOrd for Retry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Retry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// How a dead-letter ended.
enum Written {
    Stored,
    Spilled,
    Failed(StoreError),
}

/// One endpoint's dead-letter stage.
pub struct DeadLetterWriter {
    settings: WriterSettings,
    /// `settings.backoff()`, built once.
    backoff: RetrySchedule,
    endpoint: usize,
    stores: EndpointStores,
    inbox: mpsc::Receiver<DeadLetterJob>,
    accounts: Arc<Accounts>,
    clock: Clock,
    abort: CancellationToken,
    /// Dead-letters held (ready, waiting, being written) before intake pauses.
    max_pending: usize,
    /// Ready for a write slot, in order.
    ready: VecDeque<(Pending, Target)>,
    /// Waiting for a retry, by deadline.
    waiting: BinaryHeap<Reverse<Retry>>,
    seq: u64,
    running: JoinSet<Result<(), StoreError>>,
    writing: HashMap<task::Id, (u64, Pending, Target)>,
    reported: bool,
}

impl DeadLetterWriter {
    /// The writer of endpoint `endpoint`'s dead-letters into `stores`, holding at most
    /// `max_pending` of them at once (then its queue fills and the endpoint's worker waits).
    pub fn new(
        settings: WriterSettings,
        endpoint: usize,
        stores: EndpointStores,
        inbox: mpsc::Receiver<DeadLetterJob>,
        max_pending: usize,
        context: &RunContext,
    ) -> Self {
        DeadLetterWriter {
            backoff: settings.backoff(),
            settings,
            endpoint,
            stores,
            inbox,
            accounts: context.accounts.clone(),
            clock: context.clock,
            abort: context.abort.clone(),
            max_pending: max_pending.max(1),
            ready: VecDeque::new(),
            waiting: BinaryHeap::new(),
            seq: 0,
            running: JoinSet::new(),
            writing: HashMap::new(),
            reported: false,
        }
    }

    /// The blob for `job`.
    pub fn blob(&self, job: &DeadLetterJob) -> DeadLetterBlob {
        let delivery = &job.delivery;
        let name = &self.accounts.endpoint_names()[job.endpoint];
        let status = match delivery.last_result {
            Some(AttemptResult::Status { status, .. }) => Some(status),
            _ => None,
        };
        DeadLetterBlob {
            path: blob_path(name, self.clock.at(job.at), &delivery.event.event.id),
            body: self.stores.body.of(&delivery.event),
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

    fn held(&self) -> usize {
        self.ready.len() + self.waiting.len() + self.writing.len()
    }

    /// Runs until the queue is closed and every dead-letter has ended, or until aborted (then
    /// every one still pending is spilled; the protocol: [`crate::engine`], "Stopping").
    pub async fn run(mut self) {
        let start = self.clock.start_instant();
        let mut open = true;
        loop {
            self.start_writes();
            if !open && self.held() == 0 {
                break;
            }
            let next_retry = self.waiting.peek().map(|Reverse(retry)| start + retry.due);
            let intake = open && self.held() < self.max_pending;
            tokio::select! {
                biased;
                () = self.abort.cancelled() => {
                    self.spill_everything().await;
                    break;
                }
                Some(done) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    let (id, result) = match done {
                        Ok((id, result)) => (id, result),
                        // A store that panicked: its write failed, for good.
                        Err(error) => (error.id(), Err(StoreError::Permanent(error.to_string()))),
                    };
                    if let Some((_, pending, target)) = self.writing.remove(&id) {
                        self.written(pending, target, result).await;
                    }
                }
                () = tokio::time::sleep_until(next_retry.unwrap_or(start)), if next_retry.is_some() => {
                    let now = self.clock.elapsed();
                    while let Some(Reverse(retry)) = self.waiting.peek()
                        && retry.due <= now
                    {
                        let Some(Reverse(retry)) = self.waiting.pop() else { break };
                        self.ready.push_back((retry.pending, Target::Store));
                    }
                }
                job = self.inbox.recv(), if intake => match job {
                    Some(job) => {
                        let blob = Arc::new(self.blob(&job));
                        let pending = Pending { job, blob, failures: 0, waited: Duration::ZERO };
                        self.ready.push_back((pending, Target::Store));
                    }
                    None => open = false,
                },
            }
        }
    }

    /// Starts writes while slots are free and dead-letters are ready.
    fn start_writes(&mut self) {
        while self.writing.len() < self.settings.concurrency {
            let Some((pending, target)) = self.ready.pop_front() else {
                break;
            };
            // A spill is queued only when there is a spill folder (`spill_later`).
            let store = match (&target, &self.stores.spill) {
                (Target::Spill(_), Some(spill)) => spill.clone(),
                _ => self.stores.store.clone(),
            };
            let blob = pending.blob.clone();
            let handle = self.running.spawn(async move { store.put(&blob).await });
            self.seq += 1;
            self.writing
                .insert(handle.id(), (self.seq, pending, target));
        }
    }

    /// A write came back.
    async fn written(
        &mut self,
        mut pending: Pending,
        target: Target,
        result: Result<(), StoreError>,
    ) {
        match (target, result) {
            (Target::Store, Ok(())) => self.finish(pending, Written::Stored).await,
            (Target::Spill(_), Ok(())) => self.finish(pending, Written::Spilled).await,
            (Target::Spill(error), Err(spill_error)) => {
                let error = StoreError::Permanent(format!("{error}; spill folder: {spill_error}"));
                self.finish(pending, Written::Failed(error)).await;
            }
            (Target::Store, Err(error @ StoreError::Permanent(_))) => {
                self.spill_later(pending, error).await;
            }
            (Target::Store, Err(error @ StoreError::Transient(_))) => {
                pending.failures += 1;
                let retention = self.stores.retention.unwrap_or(self.settings.retention);
                match retry_wait(&self.backoff, pending.failures, pending.waited, retention) {
                    Some(wait) => {
                        pending.waited += wait;
                        self.seq += 1;
                        self.waiting.push(Reverse(Retry {
                            due: self.clock.elapsed() + wait,
                            seq: self.seq,
                            pending,
                        }));
                    }
                    None => self.spill_later(pending, error).await,
                }
            }
        }
    }

    /// Queues `pending` for the spill folder, or ends it as failed when there is none.
    async fn spill_later(&mut self, pending: Pending, error: StoreError) {
        if self.stores.spill.is_some() {
            self.ready.push_back((pending, Target::Spill(error)));
        } else {
            self.finish(pending, Written::Failed(error)).await;
        }
    }

    /// The run was aborted: everything still pending is spilled now, in the order it came.
    async fn spill_everything(&mut self) {
        self.running.abort_all();
        self.inbox.close();
        let mut writing: Vec<(u64, Pending)> = self
            .writing
            .drain()
            .map(|(_, (seq, pending, _))| (seq, pending))
            .collect();
        writing.sort_by_key(|(seq, _)| *seq);
        let mut left: Vec<Pending> = writing.into_iter().map(|(_, pending)| pending).collect();
        left.extend(self.ready.drain(..).map(|(pending, _)| pending));
        left.extend(
            std::mem::take(&mut self.waiting)
                .into_sorted_vec()
                .into_iter()
                .rev()
                .map(|Reverse(retry)| retry.pending),
        );
        while let Ok(job) = self.inbox.try_recv() {
            let blob = Arc::new(self.blob(&job));
            left.push(Pending {
                job,
                blob,
                failures: 0,
                waited: Duration::ZERO,
            });
        }
        let stopped = || StoreError::Transient("the run stopped before it was written".into());
        for pending in left {
            let written = match &self.stores.spill {
                Some(spill) => match spill.put(&pending.blob).await {
                    Ok(()) => Written::Spilled,
                    Err(error) => Written::Failed(StoreError::Permanent(format!(
                        "{}; spill folder: {error}",
                        stopped()
                    ))),
                },
                None => Written::Failed(stopped()),
            };
            self.finish(pending, written).await;
        }
    }

    async fn finish(&mut self, pending: Pending, written: Written) {
        let job = &pending.job;
        let counters = &self.accounts.endpoints[self.endpoint];
        counters.dead_letter_pending.fetch_sub(1, Relaxed);
        let outcome = match written {
            Written::Stored => Outcome::DeadLettered { reason: job.reason },
            Written::Spilled => {
                counters.dead_letter_spilled.fetch_add(1, Relaxed);
                Outcome::DeadLettered { reason: job.reason }
            }
            Written::Failed(error) => {
                if !self.reported {
                    self.reported = true;
                    tracing::error!(
                        endpoint = %self.accounts.endpoint_names()[self.endpoint],
                        %error,
                        "dead-letters cannot be written; they are counted as dropped (reason NoDeadLetterLocation)"
                    );
                }
                Outcome::Dropped { cause: job.reason }
            }
        };
        let ending = job.delivery.ending(job.endpoint, outcome, job.at);
        self.accounts.end(ending).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::folder::FolderStore;
    use crate::deadletter::memory::MemoryStore;
    use crate::event::Serialized;
    use crate::generator::sample_events;

    #[test]
    fn retry_waits_double_to_a_minute_and_end_with_the_retention() {
        let settings = WriterSettings::default();
        let hour = Duration::from_secs(3600);
        let waits: Vec<u64> = (1..=8)
            .map(|n| {
                settings
                    .retry_wait(n, Duration::ZERO, hour)
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            settings.retry_wait(1_000, Duration::ZERO, hour),
            Some(MAX_BACKOFF)
        );
        assert_eq!(
            settings.retry_wait(7, hour - Duration::from_secs(59), hour),
            None
        );
        assert_eq!(
            settings.retry_wait(7, hour - Duration::from_secs(60), hour),
            Some(MAX_BACKOFF)
        );
    }

    struct Run {
        clock: Clock,
        accounts: Arc<Accounts>,
        store: Arc<MemoryStore>,
        spill: tempfile::TempDir,
    }

    /// `count` dead-letters through one writer whose store fails transiently until `recovers`
    /// (never: `None`); the run is aborted at `abort_at`.
    async fn write(count: u64, recovers: Option<Duration>, abort_at: Duration) -> Run {
        let clock = Clock::starting_at(crate::generator::DEFAULT_START_TIME);
        let accounts = Accounts::new(vec!["ep".into()], vec!["all".into()], clock, None);
        let store = Arc::new(MemoryStore::new());
        store.fail_with(Some(StoreError::Transient("busy (test)".into())));
        let spill = tempfile::tempdir().unwrap();
        let stores = EndpointStores {
            store: store.clone(),
            spill: Some(Arc::new(FolderStore::new(spill.path()))),
            retention: None,
            body: BlobBody::CloudEvent,
        };
        let abort = CancellationToken::new();
        let (tx, rx) = mpsc::channel(16);
        let settings = WriterSettings {
            concurrency: 2,
            ..WriterSettings::default()
        };
        let context = RunContext {
            accounts: accounts.clone(),
            clock,
            abort: abort.clone(),
            seed: 0,
        };
        let writer = DeadLetterWriter::new(settings, 0, stores, rx, 1000, &context);
        let task = tokio::spawn(writer.run());
        if let Some(after) = recovers {
            let store = store.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                store.fail_with(None);
            });
        }
        tokio::spawn(async move {
            tokio::time::sleep(abort_at).await;
            abort.cancel();
        });
        for event in sample_events(3, 50, count) {
            accounts.endpoints[0]
                .dead_letter_pending
                .fetch_add(1, Relaxed);
            let job = DeadLetterJob {
                endpoint: 0,
                delivery: Delivery::new(Arc::new(Serialized::new(event)), 0, Duration::ZERO),
                reason: GiveUpReason::NonRetriableStatus(400),
                at: Duration::ZERO,
            };
            tx.send(job).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();
        Run {
            clock,
            accounts,
            store,
            spill,
        }
    }

    fn counts(run: &Run) -> (u64, u64, u64, u64) {
        let c = &run.accounts.endpoints[0];
        (
            c.dead_lettered.load(Relaxed),
            c.dead_letter_spilled.load(Relaxed),
            c.in_flight.load(Relaxed),
            c.dead_letter_pending.load(Relaxed),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn failing_writes_wait_in_the_schedule_and_all_land_when_the_store_is_back() {
        let run = write(
            100,
            Some(Duration::from_secs(600)),
            Duration::from_secs(7200),
        )
        .await;
        assert_eq!(counts(&run), (100, 0, 0, 0));
        assert_eq!(run.store.blobs().len(), 100);
        // Every write waited in the schedule at once (two slots): the last lands within a
        // minute of the store's return, not a retention per two writes.
        let took = run.clock.elapsed();
        assert!(took < Duration::from_secs(700), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_spills_every_pending_dead_letter() {
        let run = write(100, None, Duration::from_secs(90)).await;
        assert_eq!(counts(&run), (100, 100, 0, 0));
        assert!(run.store.blobs().is_empty());
        let spilled = std::fs::read_dir(run.spill.path().join("ep/2026/01/01/00"))
            .unwrap()
            .count();
        assert_eq!(spilled, 100);
    }
}
