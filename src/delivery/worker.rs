//! The per-endpoint worker: takes routed deliveries from the endpoint's bounded queue, runs
//! attempts against the sink (at most `concurrency` in flight), keeps failed deliveries in a
//! deadline-ordered retry schedule, and ends each delivery exactly once.
//!
//! Layers, in the order they apply to a delivery (one place, here):
//! intake (bounded queue, `maxBacklog`) → concurrency (`concurrency` attempts in flight) →
//! time-to-live (no attempt is started after expiry) → per-attempt timeout → sink →
//! classification → retry policy (schedule, minimum delays, TTL at the next attempt) →
//! dead-letter writer or drop. The policy decides (time-to-live, timeout, retry: pure
//! functions in [`super::policy`]); the worker only keeps the timers and waits.
//!
//! One task per endpoint. Simulated latencies are timers in the worker's own schedule rather
//! than a future per attempt, so a zero-latency endpoint costs a function call per attempt and
//! virtual time stays deterministic; real sinks' attempts run as tasks.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::classify::{AttemptOutcome, AttemptResult, EndpointClass};
use super::policy::{Decision, GiveUpReason, RetryPolicy, within_timeout};
use super::routed::Delivery;
use crate::account::{Accounts, Outcome};
use crate::clock::Clock;
use crate::context::RunContext;
use crate::deadletter::writer::DeadLetterJob;
use crate::seed::{self, SeededRng};
use crate::sink::{Answer, Attempt, Sink};

/// A worker's settings.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Index of the endpoint.
    pub endpoint: usize,
    /// Attempts, time-to-live, schedule.
    pub policy: RetryPolicy,
    /// Attempts (requests, each carrying one delivery or a batch) in flight at once.
    pub concurrency: usize,
    /// Deliveries held (ready, waiting, in flight) before intake pauses.
    pub max_backlog: usize,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
}

/// How attempts came back, as counted per attempt: a copyable key, named only in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttemptResultKey {
    /// An answer with this status.
    Status(u16),
    /// No answer within the attempt timeout.
    Timeout,
    /// The connection failed.
    ConnectionError,
}

impl AttemptResultKey {
    /// The key of `result` (`Retry-After` left out).
    pub fn of(result: AttemptResult) -> Self {
        match result {
            AttemptResult::Status { status, .. } => AttemptResultKey::Status(status),
            AttemptResult::Timeout => AttemptResultKey::Timeout,
            AttemptResult::ConnectionError => AttemptResultKey::ConnectionError,
        }
    }

    /// The report's name: the status, `timeout` or `connectionError`.
    pub fn name(self) -> String {
        match self {
            AttemptResultKey::Status(status) => status.to_string(),
            AttemptResultKey::Timeout => "timeout".to_owned(),
            AttemptResultKey::ConnectionError => "connectionError".to_owned(),
        }
    }
}

/// What a worker measured, returned when it ends.
#[derive(Debug)]
pub struct WorkerStats {
    /// Routed → delivered, microseconds.
    pub delivery_latency: Histogram<u64>,
    /// One attempt, microseconds.
    pub attempt_latency: Histogram<u64>,
    /// Events the endpoint received more than once (a retry after a lost acknowledgement).
    pub duplicates: u64,
    /// Most deliveries held at once.
    pub peak_backlog: usize,
    /// What attempts came back with: a status, `timeout` or `connectionError` → attempts.
    pub attempt_results: std::collections::BTreeMap<AttemptResultKey, u64>,
}

enum TimerKind {
    /// A failed delivery is due for its next attempt.
    Retry(Delivery),
    /// The time-to-live ended the delivery at its next scheduled attempt.
    Expire(Delivery, GiveUpReason),
    /// A simulated attempt's answer arrives.
    Complete {
        batch: Vec<Delivery>,
        answer: Answer,
        started: Duration,
    },
}

struct Timer {
    due: Duration,
    /// Tie-break for equal deadlines: first scheduled, first fired (deterministic).
    seq: u64,
    kind: TimerKind,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The per-endpoint worker.
pub struct Worker {
    settings: WorkerSettings,
    class: EndpointClass,
    max_batch: usize,
    preferred_bytes: Option<usize>,
    sink: Box<dyn Sink>,
    inbox: mpsc::Receiver<Vec<Delivery>>,
    dead_letters: Option<mpsc::Sender<DeadLetterJob>>,
    accounts: Arc<Accounts>,
    clock: Clock,
    rng: SeededRng,
    abort: CancellationToken,
    ready: VecDeque<Delivery>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    running: JoinSet<(u64, Answer)>,
    running_batches: HashMap<u64, (Vec<Delivery>, Duration)>,
    /// Attempts (requests) in flight; `concurrency` bounds it.
    in_flight: usize,
    backlog: usize,
    stats: WorkerStats,
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to a day, 1 % precision (~100 KB). Longer values saturate.
    Histogram::new_with_bounds(1, 86_400_000_000, 2).expect("valid histogram bounds")
}

impl Worker {
    /// A worker for one endpoint, sending attempts to `sink`, taking deliveries from `inbox`
    /// and handing given-up ones to `dead_letters` (`None` when the endpoint has no dead-letter
    /// location: they are then dropped, counted, in the ledger). Its retry jitter comes from the
    /// run's stream `endpoint:<name>:retry`.
    pub fn new(
        settings: WorkerSettings,
        sink: Box<dyn Sink>,
        inbox: mpsc::Receiver<Vec<Delivery>>,
        dead_letters: Option<mpsc::Sender<DeadLetterJob>>,
        context: &RunContext,
    ) -> Self {
        let name = &context.accounts.endpoint_names()[settings.endpoint];
        let rng = seed::stream(context.seed, &format!("endpoint:{name}:retry"));
        Worker {
            class: sink.class(),
            max_batch: sink.max_batch().max(1),
            preferred_bytes: sink.preferred_batch_bytes(),
            settings,
            sink,
            inbox,
            dead_letters,
            accounts: context.accounts.clone(),
            clock: context.clock,
            rng,
            abort: context.abort.clone(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            running: JoinSet::new(),
            running_batches: HashMap::new(),
            in_flight: 0,
            backlog: 0,
            stats: WorkerStats {
                delivery_latency: histogram(),
                attempt_latency: histogram(),
                duplicates: 0,
                peak_backlog: 0,
                attempt_results: Default::default(),
            },
        }
    }

    /// Runs until the queue is closed and every delivery has ended, or until aborted (the rest
    /// then ends `inFlight`; the protocol: [`crate::engine`], "Stopping").
    pub async fn run(mut self) -> WorkerStats {
        let mut inbox_open = true;
        let start = self.clock.start_instant();
        loop {
            self.start_attempts().await;
            if !inbox_open && self.backlog == 0 {
                break;
            }
            let next_timer = self.timers.peek().map(|Reverse(timer)| start + timer.due);
            let intake = inbox_open && self.backlog < self.settings.max_backlog;
            tokio::select! {
                biased;
                () = self.abort.cancelled() => {
                    self.abort_all().await;
                    break;
                }
                Some(joined) = self.running.join_next(), if !self.running.is_empty() => {
                    if let Ok((id, answer)) = joined
                        && let Some((batch, started)) = self.running_batches.remove(&id)
                    {
                        self.in_flight -= 1;
                        self.complete(batch, answer, started).await;
                    }
                }
                () = tokio::time::sleep_until(next_timer.unwrap_or(start)), if next_timer.is_some() => {
                    self.fire_due_timers().await;
                }
                received = self.inbox.recv(), if intake => match received {
                    Some(batch) => {
                        self.backlog += batch.len();
                        self.stats.peak_backlog = self.stats.peak_backlog.max(self.backlog);
                        self.ready.extend(batch);
                    }
                    None => inbox_open = false,
                },
            }
        }
        self.stats
    }

    fn counters(&self) -> &crate::account::EndpointCounters {
        &self.accounts.endpoints[self.settings.endpoint]
    }

    fn schedule(&mut self, due: Duration, kind: TimerKind) {
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            due,
            seq: self.seq,
            kind,
        }));
    }

    /// Starts attempts while slots are free and deliveries are ready.
    async fn start_attempts(&mut self) {
        while self.in_flight < self.settings.concurrency && !self.ready.is_empty() {
            let now = self.clock.elapsed();
            let room = self.max_batch;
            let mut batch = Vec::with_capacity(room.min(self.ready.len()));
            let mut batch_bytes = 0;
            while batch.len() < room {
                // A batch stays within the preferred size; an event larger than it goes alone.
                if let (Some(limit), Some(next)) = (self.preferred_bytes, self.ready.front())
                    && !batch.is_empty()
                    && batch_bytes + next.event.json().len() > limit
                {
                    break;
                }
                let Some(delivery) = self.ready.pop_front() else {
                    break;
                };
                let elapsed = now.saturating_sub(delivery.routed_at);
                if let Some(reason) = self.settings.policy.before_attempt(elapsed) {
                    self.give_up(delivery, reason, now).await;
                    continue;
                }
                if self.preferred_bytes.is_some() {
                    batch_bytes += delivery.event.json().len();
                }
                batch.push(delivery);
            }
            if batch.is_empty() {
                continue;
            }
            for delivery in &mut batch {
                delivery.attempts += 1;
                delivery.first_attempt_at.get_or_insert(now);
                delivery.last_attempt_at = Some(now);
            }
            self.counters()
                .attempts
                .fetch_add(batch.len() as u64, Relaxed);
            match self.sink.attempt(&batch, now) {
                Attempt::Now(answer) => self.complete(batch, answer, now).await,
                Attempt::After(latency, answer) => {
                    let (after, result) =
                        within_timeout(self.settings.attempt_timeout, latency, answer.result);
                    let answer = Answer { result, ..answer };
                    self.in_flight += 1;
                    self.schedule(
                        now + after,
                        TimerKind::Complete {
                            batch,
                            answer,
                            started: now,
                        },
                    );
                }
                Attempt::Pending(attempt) => {
                    self.in_flight += 1;
                    self.seq += 1;
                    let (id, timeout) = (self.seq, self.settings.attempt_timeout);
                    self.running_batches.insert(id, (batch, now));
                    self.running.spawn(async move {
                        let answer =
                            tokio::time::timeout(timeout, attempt)
                                .await
                                .unwrap_or(Answer {
                                    result: AttemptResult::Timeout,
                                    received: false,
                                });
                        (id, answer)
                    });
                }
            }
        }
    }

    async fn fire_due_timers(&mut self) {
        let now = self.clock.elapsed();
        while self
            .timers
            .peek()
            .is_some_and(|Reverse(timer)| timer.due <= now)
        {
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            match timer.kind {
                TimerKind::Retry(delivery) => {
                    self.counters().retrying.fetch_sub(1, Relaxed);
                    self.ready.push_back(delivery);
                }
                TimerKind::Expire(delivery, reason) => {
                    self.counters().retrying.fetch_sub(1, Relaxed);
                    self.give_up(delivery, reason, timer.due).await;
                }
                TimerKind::Complete {
                    batch,
                    answer,
                    started,
                } => {
                    self.in_flight -= 1;
                    self.complete(batch, answer, started).await;
                }
            }
        }
    }

    /// An attempt's answer, applied to each delivery it carried.
    async fn complete(&mut self, batch: Vec<Delivery>, answer: Answer, started: Duration) {
        let now = self.clock.elapsed();
        self.stats
            .attempt_latency
            .saturating_record(micros(now.saturating_sub(started)));
        *self
            .stats
            .attempt_results
            .entry(AttemptResultKey::of(answer.result))
            .or_default() += 1;
        let outcome = answer.result.classify(self.class);
        for mut delivery in batch {
            if answer.received {
                if delivery.received {
                    self.stats.duplicates += 1;
                }
                delivery.received = true;
            }
            delivery.last_result = Some(answer.result);
            let failure = match outcome {
                AttemptOutcome::Delivered => {
                    self.stats
                        .delivery_latency
                        .saturating_record(micros(now.saturating_sub(delivery.routed_at)));
                    self.end(&delivery, Outcome::Delivered, now).await;
                    continue;
                }
                AttemptOutcome::Failed(failure) => failure,
            };
            let elapsed = now.saturating_sub(delivery.routed_at);
            match self
                .settings
                .policy
                .decide(delivery.attempts, elapsed, failure, &mut self.rng)
            {
                Decision::RetryAfter(wait) => {
                    self.counters().retrying.fetch_add(1, Relaxed);
                    self.schedule(now + wait, TimerKind::Retry(delivery));
                }
                Decision::GiveUp { reason, at } => {
                    let at = delivery.routed_at + at;
                    if at > now {
                        self.counters().retrying.fetch_add(1, Relaxed);
                        self.schedule(at, TimerKind::Expire(delivery, reason));
                    } else {
                        self.give_up(delivery, reason, now).await;
                    }
                }
            }
        }
    }

    /// Dead-letters `delivery` (the writer records its ending) or, without a location, drops it.
    async fn give_up(&mut self, delivery: Delivery, reason: GiveUpReason, now: Duration) {
        let Some(writer) = &self.dead_letters else {
            self.end(&delivery, Outcome::Dropped { cause: reason }, now)
                .await;
            return;
        };
        self.backlog -= 1;
        self.counters().dead_letter_pending.fetch_add(1, Relaxed);
        let job = DeadLetterJob {
            endpoint: self.settings.endpoint,
            delivery,
            reason,
            at: now,
        };
        if let Err(mpsc::error::SendError(job)) = writer.send(job).await {
            // The writer is gone only when the run is being torn down.
            self.counters().dead_letter_pending.fetch_sub(1, Relaxed);
            let outcome = Outcome::InFlight {
                cause: Some(reason),
            };
            let ending = job.delivery.ending(self.settings.endpoint, outcome, now);
            self.accounts.end(ending).await;
        }
    }

    /// Ends `delivery`, which no longer counts against the backlog.
    async fn end(&mut self, delivery: &Delivery, outcome: Outcome, now: Duration) {
        self.backlog -= 1;
        let ending = delivery.ending(self.settings.endpoint, outcome, now);
        self.accounts.end(ending).await;
    }

    /// The run was aborted: everything still held (ready, waiting for a retry, being attempted,
    /// still in the queue) ends `inFlight`, in that order.
    async fn abort_all(&mut self) {
        self.running.abort_all();
        let now = self.clock.elapsed();
        let mut held: Vec<Delivery> = self.ready.drain(..).collect();
        for Reverse(timer) in std::mem::take(&mut self.timers)
            .into_sorted_vec()
            .into_iter()
            .rev()
        {
            match timer.kind {
                TimerKind::Retry(delivery) | TimerKind::Expire(delivery, _) => {
                    self.counters().retrying.fetch_sub(1, Relaxed);
                    held.push(delivery);
                }
                TimerKind::Complete { batch, .. } => held.extend(batch),
            }
        }
        let mut running: Vec<(u64, (Vec<Delivery>, Duration))> =
            self.running_batches.drain().collect();
        running.sort_by_key(|(id, _)| *id);
        held.extend(running.into_iter().flat_map(|(_, (batch, _))| batch));
        // Deliveries still in the queue were routed but never reached the worker; closing first
        // means none can arrive after this (a late sender gets its batch back and accounts it).
        self.inbox.close();
        while let Ok(batch) = self.inbox.try_recv() {
            held.extend(batch);
        }
        self.in_flight = 0;
        self.backlog = 0;
        self.accounts
            .end_in_flight(self.settings.endpoint, held, now)
            .await;
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
