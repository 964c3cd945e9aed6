//! The first stage of a run: emits the generator's events when they are due, routes each
//! through the route table, and hands every endpoint its deliveries in batches over its bounded
//! queue (waiting while it is full: backpressure, which shows as generator lag).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::context::RunContext;
use crate::delivery::routed::Delivery;
use crate::event::Serialized;
use crate::generator::Generator;
use crate::router::RouteTable;

/// Deliveries the source hands to an endpoint's queue at once.
pub const ROUTER_BATCH: usize = 256;
/// Events emitted this late or later count as behind schedule.
pub const LATE: Duration = Duration::from_millis(10);

/// What the source counted, for the report.
#[derive(Clone, Debug, Default)]
pub struct SourceStats {
    /// Events generated.
    pub generated: u64,
    /// Events no route matched.
    pub unmatched: u64,
    /// Deliveries routed, all endpoints together.
    pub deliveries: u64,
    /// Largest delay between an event's due time and its emission.
    pub lag_max: Duration,
    /// Events emitted [`LATE`] or later.
    pub late: u64,
    /// When the last event was emitted, since the run started.
    pub generation: Duration,
}

/// The first stage: emits events when they are due, routes them, and hands each endpoint its
/// deliveries in batches.
pub struct Source {
    table: RouteTable,
    senders: Vec<mpsc::Sender<Vec<Delivery>>>,
    context: RunContext,
    stop: CancellationToken,
}

impl Source {
    /// The source routing through `table` to the endpoints' queues `senders` (in endpoint
    /// order); it stops generating when `stop` is cancelled.
    pub fn new(
        table: RouteTable,
        senders: Vec<mpsc::Sender<Vec<Delivery>>>,
        context: RunContext,
        stop: CancellationToken,
    ) -> Self {
        Source {
            table,
            senders,
            context,
            stop,
        }
    }

    /// Emits `generator`'s events until it ends or the run is stopped; the queues close when
    /// it returns (their senders are dropped).
    pub async fn run(self, generator: Generator) -> SourceStats {
        let mut stats = SourceStats::default();
        let mut pending: Vec<Vec<Delivery>> = self
            .senders
            .iter()
            .map(|_| Vec::with_capacity(ROUTER_BATCH))
            .collect();
        let start = self.context.clock.start_instant();
        let mut warned_lag = Duration::from_secs(1);
        for scheduled in generator {
            if self.stop.is_cancelled() {
                break;
            }
            let mut now = self.context.clock.elapsed();
            // An event is never emitted before it is due, so nothing done with it (routing, an
            // attempt) is stamped earlier than its `time`. tokio's timers round up to the next
            // millisecond: one wake-up emits every event due by then.
            if scheduled.due > now {
                self.flush_all(&mut pending, &mut stats).await;
                while scheduled.due > now {
                    tokio::select! {
                        () = tokio::time::sleep_until(start + scheduled.due) => {}
                        () = self.stop.cancelled() => break,
                    }
                    now = self.context.clock.elapsed();
                }
                if self.stop.is_cancelled() {
                    break;
                }
            } else if now > scheduled.due {
                let lag = now - scheduled.due;
                stats.lag_max = stats.lag_max.max(lag);
                if lag >= LATE {
                    stats.late += 1;
                }
                if lag > warned_lag {
                    tracing::warn!(
                        lag_ms = lag.as_millis() as u64,
                        "the pipeline cannot keep up: events are behind schedule"
                    );
                    warned_lag = lag * 2;
                }
            }
            let event = Arc::new(Serialized::new(scheduled.event));
            stats.generated += 1;
            if stats.generated % 1024 == 0 {
                self.context
                    .accounts
                    .generated
                    .store(stats.generated, Relaxed);
            }
            let matched = self.table.route(&event.event, |route, endpoint| {
                pending[endpoint].push(Delivery::new(event.clone(), route, now));
            });
            if matched == 0 {
                stats.unmatched += 1;
            }
            for endpoint in 0..pending.len() {
                if pending[endpoint].len() >= ROUTER_BATCH {
                    self.flush(endpoint, &mut pending, &mut stats).await;
                }
            }
        }
        self.flush_all(&mut pending, &mut stats).await;
        self.context
            .accounts
            .generated
            .store(stats.generated, Relaxed);
        stats.generation = self.context.clock.elapsed();
        stats
    }

    async fn flush_all(&self, pending: &mut [Vec<Delivery>], stats: &mut SourceStats) {
        for endpoint in 0..pending.len() {
            if !pending[endpoint].is_empty() {
                self.flush(endpoint, pending, stats).await;
            }
        }
    }

    /// Hands an endpoint its pending deliveries; waits while its queue is full (backpressure),
    /// unless the run is aborted, in which case they end `inFlight` here.
    async fn flush(&self, endpoint: usize, pending: &mut [Vec<Delivery>], stats: &mut SourceStats) {
        let batch = std::mem::replace(&mut pending[endpoint], Vec::with_capacity(ROUTER_BATCH));
        let count = batch.len() as u64;
        stats.deliveries += count;
        self.context.accounts.endpoints[endpoint]
            .routed
            .fetch_add(count, Relaxed);
        // Reserve a slot first, so a stop while waiting leaves the batch here to be accounted.
        let leftover = tokio::select! {
            permit = self.senders[endpoint].reserve() => match permit {
                Ok(permit) => {
                    permit.send(batch);
                    return;
                }
                // The worker closed its queue: it only does when the run is aborted.
                Err(_) => batch,
            },
            () = self.context.abort.cancelled() => batch,
        };
        self.context
            .accounts
            .end_in_flight(endpoint, leftover, self.context.clock.elapsed())
            .await;
    }
}
