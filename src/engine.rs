//! The pipeline of one run, built downstream-first: ledger writer, then per endpoint its
//! dead-letter writer and its worker, then the source (generator → router → per-endpoint bounded
//! queues).
//!
//! A slow or dead endpoint does not slow the others: its worker keeps taking deliveries into its
//! own retry schedule (up to `maxBacklog`); only then does its queue fill and the source wait,
//! which shows as generator lag in the report. Likewise a failing dead-letter store only holds up
//! its own endpoint's writer.
//!
//! # Stopping
//!
//! A run ends in one of two ways, and every (event, route) is accounted for in both.
//!
//! - **Its natural end.** The workload is generated; the source drops its queue senders; each
//!   worker ends every delivery it holds (delivered, handed to its dead-letter writer, dropped)
//!   and returns once its queue is closed and empty.
//! - **A stop** (`stop` cancelled: Ctrl-C, SIGTERM, `stop_after_generation`). The source stops
//!   generating and hands over what it has batched; the workers carry on as before, so pending
//!   deliveries may still be delivered or given up: this is the *drain*. The report says
//!   `stoppedEarly`.
//!
//! Either way, once every worker has returned, the dead-letter writers get the drain timeout to
//! finish their pending writes (a store that keeps failing would otherwise retry for its whole
//! retention). The run is *aborted* (the `abort` token, which only the engine cancels) when a
//! drain timeout runs out: the stop's, counted from the stop, or the writers', counted from the
//! last worker's return, whichever comes first. On the abort:
//!
//! - the source ends the batch it is still waiting to hand over `inFlight`;
//! - each worker stops its attempts, closes its queue and ends everything it holds, and what is
//!   left in its queue, `inFlight`;
//! - each dead-letter writer spills every dead-letter it still holds (never `inFlight`: those
//!   deliveries were given up already).
//!
//! Ending deliveries `inFlight` (reason `ShutdownBeforeDelivery`) is
//! [`Accounts::end_in_flight`], used by the source and the workers alike. The one other
//! `inFlight` ending is a worker that gives a delivery up while its dead-letter writer is
//! already gone (only while the run is torn down); it keeps why delivery gave up as its `cause`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::account::{self, Accounts};
use crate::clock::{Clock, WallTimer};
use crate::config::{Connection, DeadLetterLocation, InputSchema, Settings};
use crate::deadletter::blob::{BlobStore, EntraTokenSource, TokenSource, UserAssignedId};
use crate::deadletter::folder::FolderStore;
use crate::deadletter::writer::{DeadLetterWriter, EndpointStores, WriterSettings};
use crate::deadletter::{BlobBody, DeadLetterStore};
use crate::delivery::routed::Delivery;
use crate::delivery::worker::{Worker, WorkerSettings, WorkerStats};
use crate::event::Serialized;
use crate::generator::{DEFAULT_START_TIME, Generator};
use crate::report::{
    EndpointReport, GeneratorReport, Percentiles, RunReport, WallClockReport, peak_rss_bytes,
};
use crate::router::{Route, RouteTable};
use crate::seed;
use crate::sink::http::{EventGridSink, WebhookSink};
use crate::sink::simulated::SimulatedSink;
use crate::sink::{Sink, amqp};

/// Deliveries the source hands to an endpoint's queue at once.
pub const ROUTER_BATCH: usize = 256;
/// Dead-letters an endpoint's worker hands its dead-letter writer before it waits (the writer
/// itself holds up to the endpoint's `maxBacklog`).
const DEAD_LETTER_QUEUE: usize = 1024;
/// Events emitted this late or later count as behind schedule.
const LATE: Duration = Duration::from_millis(10);

/// Which clock a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// The wall clock.
    Real,
    /// tokio's paused clock, auto-advancing: a day of retries finishes in seconds.
    Virtual,
}

/// How to run, beyond the instance file.
#[derive(Debug)]
pub struct RunOptions {
    /// Real or virtual time.
    pub clock: ClockMode,
    /// Write the ledger here.
    pub ledger: Option<PathBuf>,
    /// After a stop, how long to let pending deliveries finish before they end `inFlight`.
    pub drain_timeout: Duration,
    /// Dead-letter stores to use instead of the configured ones, by endpoint name (tests).
    pub stores: HashMap<String, Arc<dyn DeadLetterStore>>,
    /// Where dead-letters go that their location refuses.
    pub spill_folder: PathBuf,
    /// The dead-letter stage's settings.
    pub writer: WriterSettings,
    /// Show a live progress display on stderr (real time on a terminal).
    pub progress: bool,
    /// The one HTTP client every HTTP sink and store shares (keep-alive pooling).
    pub http: reqwest::Client,
    /// Stop (and drain) as soon as the workload is generated, rather than waiting for every
    /// retry to end (benchmarks).
    pub stop_after_generation: bool,
}

/// How long pending deliveries (and dead-letter writes) may finish after a stop (`--drain-timeout`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Where dead-letters their location refuses are written (`--spill-folder`).
pub const DEFAULT_SPILL_FOLDER: &str = "twinroute-deadletters-spill";

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock: ClockMode::Real,
            ledger: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            stores: HashMap::new(),
            spill_folder: PathBuf::from(DEFAULT_SPILL_FOLDER),
            writer: WriterSettings::default(),
            stop_after_generation: false,
            progress: false,
            http: http_client(),
        }
    }
}

/// The shared HTTP client: rustls, keep-alive pooling, HTTP/2 where the server offers it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An endpoint cannot be set up from its settings (a missing key, a connection string that
    /// does not parse).
    #[error("endpoint '{endpoint}': {message}")]
    Unsupported {
        /// The endpoint.
        endpoint: String,
        /// What is missing.
        message: String,
    },
    /// `--virtual-time` with an endpoint or store that does real I/O.
    #[error(
        "--virtual-time needs every endpoint simulated and every dead-letter store local: endpoint '{endpoint}' {why}"
    )]
    NotVirtualizable {
        /// The endpoint.
        endpoint: String,
        /// What does real I/O.
        why: String,
    },
    /// A dead-letter location was refused at startup (a bad or expired SAS, no credential).
    #[error("endpoint '{endpoint}': dead-letter location refused: {message}")]
    DeadLetter {
        /// The endpoint.
        endpoint: String,
        /// What is wrong (secrets masked).
        message: String,
    },
    /// The ledger could not be written.
    #[error("writing the ledger {path}: {source}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

struct EndpointParts {
    sink: Box<dyn Sink>,
    stores: Option<EndpointStores>,
}

/// Entra ID tokens for an IdentityBased endpoint's dead-letters: the endpoint's user-assigned
/// managed identity when it names one (`identity.userAssignedIdentity`); otherwise a service
/// principal from the environment (`AZURE_CLIENT_SECRET` or `AZURE_FEDERATED_TOKEN_FILE`), else
/// the Azure CLI's login.
fn identity_tokens(
    user_assigned: Option<&str>,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenSource>, String> {
    let from_environment = ["AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let source = match user_assigned {
        Some(id) => EntraTokenSource::managed_identity(
            Some(UserAssignedId::ResourceId(id.to_owned())),
            http.clone(),
        ),
        None if from_environment => EntraTokenSource::environment(http.clone()),
        None => EntraTokenSource::azure_cli(),
    };
    source
        .map(|s| Arc::new(s) as Arc<dyn TokenSource>)
        .map_err(|e| e.to_string())
}

fn build_endpoints(
    settings: &Settings,
    options: &RunOptions,
) -> Result<Vec<EndpointParts>, RunError> {
    let http = &options.http;
    let spill: Arc<dyn DeadLetterStore> = Arc::new(FolderStore::new(&options.spill_folder));
    settings
        .endpoints
        .iter()
        .map(|endpoint| {
            let unsupported = |message: String| RunError::Unsupported {
                endpoint: endpoint.name.clone(),
                message,
            };
            if options.clock == ClockMode::Virtual && endpoint.simulate.is_none() {
                return Err(RunError::NotVirtualizable {
                    endpoint: endpoint.name.clone(),
                    why: format!(
                        "is a real {} endpoint (it would send real requests)",
                        endpoint.endpoint_type.as_str()
                    ),
                });
            }
            let sink: Box<dyn Sink> = match (&endpoint.simulate, &endpoint.connection) {
                (Some(faults), _) => Box::new(SimulatedSink::new(
                    &endpoint.name,
                    faults.clone(),
                    settings.workload.seed,
                )),
                (
                    None,
                    Connection::EventGrid {
                        topic_endpoint,
                        access_key1,
                        access_key2,
                        input_schema,
                        topic_resource_id,
                    },
                ) => {
                    let (Some(url), Some(key1)) = (topic_endpoint, access_key1) else {
                        return Err(unsupported(
                            "an EventGrid endpoint needs TopicEndpoint and accessKey1".to_owned(),
                        ));
                    };
                    let keys = std::iter::once(key1.clone())
                        .chain(access_key2.clone())
                        .collect();
                    let topic =
                        event_grid_topic(topic_resource_id.as_deref(), Some(url), &endpoint.name);
                    Box::new(EventGridSink::new(
                        http.clone(),
                        url,
                        keys,
                        *input_schema,
                        endpoint.delivery.batch,
                        &topic,
                    ))
                }
                (
                    None,
                    Connection::Webhook {
                        uri: Some(uri),
                        mode,
                        headers,
                    },
                ) => Box::new(WebhookSink::new(
                    http.clone(),
                    uri,
                    *mode,
                    headers,
                    endpoint.delivery.batch,
                )),
                (None, Connection::Webhook { uri: None, .. }) => {
                    return Err(unsupported(
                        "a Webhook endpoint needs endpointUri".to_owned(),
                    ));
                }
                (None, Connection::Amqp { .. }) => amqp::sink_for(endpoint, None)
                    .map_err(|error| unsupported(error.to_string()))?,
            };
            let store: Option<Arc<dyn DeadLetterStore>> =
                match (options.stores.get(&endpoint.name), &endpoint.dead_letter) {
                    (Some(store), _) => Some(store.clone()),
                    (None, None) => None,
                    (None, Some(DeadLetterLocation::Folder(path))) => {
                        Some(Arc::new(FolderStore::new(path)))
                    }
                    (None, Some(DeadLetterLocation::BlobSas(uri))) => {
                        // The SAS is checked against the wall clock, whatever clock the run uses.
                        let store = BlobStore::from_sas_uri(
                            uri.expose(),
                            http.clone(),
                            Clock::real().now(),
                        )
                        .map_err(|error| RunError::DeadLetter {
                            endpoint: endpoint.name.clone(),
                            message: error.to_string(),
                        })?;
                        Some(Arc::new(store))
                    }
                    (None, Some(DeadLetterLocation::BlobIdentity(uri))) => {
                        let tokens =
                            identity_tokens(endpoint.user_assigned_identity.as_deref(), http)
                                .map_err(|message| RunError::DeadLetter {
                                    endpoint: endpoint.name.clone(),
                                    message,
                                })?;
                        let store = BlobStore::with_identity(uri, http.clone(), tokens).map_err(
                            |error| RunError::DeadLetter {
                                endpoint: endpoint.name.clone(),
                                message: error.to_string(),
                            },
                        )?;
                        Some(Arc::new(store))
                    }
                };
            if options.clock == ClockMode::Virtual
                && let Some(store) = &store
                && !store.is_local()
            {
                return Err(RunError::NotVirtualizable {
                    endpoint: endpoint.name.clone(),
                    why: format!("dead-letters to {}", store.describe()),
                });
            }
            let retention = endpoint.delivery.dead_letter_retention;
            let body = match &endpoint.connection {
                Connection::EventGrid {
                    input_schema: InputSchema::EventGrid,
                    topic_endpoint,
                    topic_resource_id,
                    ..
                } => BlobBody::EventGrid {
                    topic: Arc::from(event_grid_topic(
                        topic_resource_id.as_deref(),
                        topic_endpoint.as_deref(),
                        &endpoint.name,
                    )),
                },
                _ => BlobBody::CloudEvent,
            };
            let stores = store.map(|store| EndpointStores {
                store,
                spill: Some(spill.clone()),
                retention,
                body,
            });
            Ok(EndpointParts { sink, stores })
        })
        .collect()
}

/// The `topic` of an endpoint's Event Grid schema events: its `topicResourceId`, else an ARM id
/// named after its `TopicEndpoint`'s host (a simulated topic may have none: then its name).
fn event_grid_topic(
    resource_id: Option<&str>,
    topic_endpoint: Option<&str>,
    endpoint: &str,
) -> String {
    match resource_id {
        Some(id) => id.to_owned(),
        None => default_topic_id(topic_endpoint.unwrap_or(endpoint)),
    }
}

/// The `topic` of Event Grid schema events when the endpoint names no `topicResourceId`: an ARM id
/// with the topic's name (the first label of its host) and placeholder subscription and group.
/// The host is read past any userinfo, which must not become part of an event.
fn default_topic_id(topic_endpoint: &str) -> String {
    let after_scheme = topic_endpoint
        .split_once("://")
        .map_or(topic_endpoint, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let name = host
        .split(['.', ':'])
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("topic");
    format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/twinroute/providers/Microsoft.EventGrid/topics/{name}"
    )
}

/// Runs the instance described by `settings` until the workload is generated and every delivery
/// has ended, or until `stop` is cancelled (then pending deliveries get `drain_timeout` to finish
/// and the rest ends `inFlight`). Either way, dead-letter writes still pending once every
/// delivery has ended get `drain_timeout` too, and what is left is spilled.
pub async fn run(
    settings: Settings,
    options: RunOptions,
    stop: CancellationToken,
) -> Result<RunReport, RunError> {
    let wall = WallTimer::start();
    let clock = match (options.clock, settings.workload.start_time) {
        (ClockMode::Real, None) => Clock::real(),
        (_, Some(start)) => Clock::starting_at(start),
        (ClockMode::Virtual, None) => Clock::starting_at(DEFAULT_START_TIME),
    };
    let parts = build_endpoints(&settings, &options)?;
    let abort = CancellationToken::new();

    let (ledger_tx, ledger_task) = match &options.ledger {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|source| RunError::Ledger {
                path: path.clone(),
                source,
            })?;
            let (tx, rx) = mpsc::channel(8192);
            (
                Some(tx),
                Some((
                    path.clone(),
                    tokio::spawn(async move { account::write_ledger(file, rx).await }),
                )),
            )
        }
        None => (None, None),
    };
    let endpoint_names: Vec<String> = settings.endpoints.iter().map(|e| e.name.clone()).collect();
    let route_names: Vec<String> = settings.routes.iter().map(|r| r.id.clone()).collect();
    let accounts = Accounts::new(endpoint_names.clone(), route_names, clock, ledger_tx);

    let locations: Vec<Option<String>> = parts
        .iter()
        .map(|p| p.stores.as_ref().map(|s| s.store.describe()))
        .collect();

    let mut senders = Vec::new();
    let mut workers = Vec::new();
    let mut writers = Vec::new();
    for (index, (endpoint, part)) in settings.endpoints.iter().zip(parts).enumerate() {
        // Each endpoint has its own dead-letter writer, as it has its own worker: a failing
        // store holds up no other endpoint's dead-letters.
        let dead_letter_tx = part.stores.map(|stores| {
            let (tx, rx) = mpsc::channel(DEAD_LETTER_QUEUE);
            let writer = DeadLetterWriter::new(
                options.writer.clone(),
                index,
                stores,
                rx,
                endpoint.delivery.max_backlog.get(),
                accounts.clone(),
                clock,
                abort.clone(),
            );
            writers.push(tokio::spawn(writer.run()));
            tx
        });
        let capacity = endpoint
            .delivery
            .queue_capacity
            .get()
            .div_ceil(ROUTER_BATCH)
            .max(1);
        let (tx, rx) = mpsc::channel(capacity);
        senders.push(tx);
        let worker = Worker::new(
            WorkerSettings {
                endpoint: index,
                policy: endpoint.delivery.retry.clone(),
                concurrency: endpoint.delivery.concurrency.get(),
                max_backlog: endpoint.delivery.max_backlog.get(),
                attempt_timeout: endpoint.delivery.attempt_timeout,
            },
            part.sink,
            rx,
            dead_letter_tx,
            accounts.clone(),
            clock,
            seed::stream(
                settings.workload.seed,
                &format!("endpoint:{}:retry", endpoint.name),
            ),
            abort.clone(),
        );
        workers.push(tokio::spawn(worker.run()));
    }

    let drain = {
        let (stop, abort, timeout) = (stop.clone(), abort.clone(), options.drain_timeout);
        tokio::spawn(async move {
            stop.cancelled().await;
            tracing::info!(
                timeout_seconds = timeout.as_secs_f64(),
                "stopping: no more events; draining pending deliveries"
            );
            tokio::time::sleep(timeout).await;
            abort.cancel();
        })
    };

    let progress = options
        .progress
        .then(|| crate::progress::spawn(accounts.clone(), clock));

    let table = RouteTable::new(
        settings
            .routes
            .iter()
            .map(|r| Route {
                id: r.id.clone(),
                endpoint: r.endpoint,
                filter: r.filter.clone(),
            })
            .collect(),
    );
    let epoch = clock.epoch();
    let generator = Generator::new(&settings.workload, &settings.host_name, epoch);
    let source = Source {
        table,
        senders,
        accounts: accounts.clone(),
        clock,
        stop: stop.clone(),
        abort: abort.clone(),
    };
    let source_stats = source.run(generator).await;
    let generation_seconds = clock.elapsed().as_secs_f64();
    if options.stop_after_generation {
        stop.cancel();
    }

    let mut stats: Vec<Option<WorkerStats>> = Vec::new();
    for worker in workers {
        stats.push(worker.await.ok());
    }
    // Every delivery has ended. Dead-letter writes still pending (a store that keeps failing
    // would retry for its whole retention) get the drain timeout, as on a stop; then the abort
    // spills what is left. This is the run's natural end, not a stop: not `stoppedEarly`.
    let mut writers = std::pin::pin!(async move {
        for writer in writers {
            let _ = writer.await;
        }
    });
    if tokio::time::timeout(options.drain_timeout, &mut writers)
        .await
        .is_err()
    {
        tracing::info!(
            timeout_seconds = options.drain_timeout.as_secs_f64(),
            "every delivery has ended; spilling the dead-letters still pending after the drain timeout"
        );
        abort.cancel();
        writers.await;
    }
    drain.abort();
    if let Some(progress) = progress {
        progress.finish().await;
    }
    let stopped_early = stop.is_cancelled();

    let mut endpoints = indexmap::IndexMap::new();
    let mut routed_total = 0;
    for (index, name) in endpoint_names.iter().enumerate() {
        let mut report = EndpointReport::from_counters(&accounts.endpoints[index]);
        routed_total += report.routed;
        report.dead_letter_location = locations[index].clone();
        if report.dead_letter_spilled > 0 {
            report.dead_letter_spill_folder = Some(options.spill_folder.display().to_string());
        }
        if let Some(Some(worker)) = stats.get(index) {
            report.latency_ms = Percentiles::of(&worker.delivery_latency);
            report.attempt_latency_ms = Percentiles::of(&worker.attempt_latency);
            report.duplicates_received = worker.duplicates;
            report.peak_backlog = worker.peak_backlog as u64;
            report.attempt_results = worker
                .attempt_results
                .iter()
                .map(|(key, n)| (key.name(), *n))
                .collect();
        }
        endpoints.insert(name.clone(), report);
    }
    let balanced = endpoints.values().all(|e| e.balanced)
        && routed_total == source_stats.deliveries
        && source_stats.generated >= source_stats.unmatched
        && stats.iter().all(Option::is_some);
    let wall_seconds = wall.elapsed().as_secs_f64();
    let report = RunReport {
        seed: settings.workload.seed,
        clock: match options.clock {
            ClockMode::Real => "real",
            ClockMode::Virtual => "virtual",
        },
        stopped_early,
        duration_seconds: clock.elapsed().as_secs_f64(),
        events_generated: source_stats.generated,
        events_unmatched: source_stats.unmatched,
        deliveries_routed: source_stats.deliveries,
        generator: GeneratorReport {
            lag_max_ms: source_stats.lag_max.as_secs_f64() * 1000.0,
            events_late: source_stats.late,
            generation_seconds,
        },
        endpoints,
        balanced,
        wall_clock: WallClockReport {
            started_at: epoch.to_string(),
            wall_seconds,
            events_per_second: if wall_seconds > 0.0 {
                source_stats.generated as f64 / wall_seconds
            } else {
                0.0
            },
            peak_rss_bytes: peak_rss_bytes(),
        },
    };
    drop(accounts);
    if let Some((path, task)) = ledger_task {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => return Err(RunError::Ledger { path, source }),
            Err(join) => {
                return Err(RunError::Ledger {
                    path,
                    source: std::io::Error::other(join.to_string()),
                });
            }
        }
    }
    Ok(report)
}

#[derive(Debug, Default)]
struct SourceStats {
    generated: u64,
    unmatched: u64,
    deliveries: u64,
    lag_max: Duration,
    late: u64,
}

/// The first stage: emits events when they are due, routes them, and hands each endpoint its
/// deliveries in batches.
struct Source {
    table: RouteTable,
    senders: Vec<mpsc::Sender<Vec<Delivery>>>,
    accounts: Arc<Accounts>,
    clock: Clock,
    stop: CancellationToken,
    abort: CancellationToken,
}

impl Source {
    async fn run(self, generator: Generator) -> SourceStats {
        let mut stats = SourceStats::default();
        let mut pending: Vec<Vec<Delivery>> = self
            .senders
            .iter()
            .map(|_| Vec::with_capacity(ROUTER_BATCH))
            .collect();
        let start = self.clock.start_instant();
        let mut warned_lag = Duration::from_secs(1);
        for scheduled in generator {
            if self.stop.is_cancelled() {
                break;
            }
            let mut now = self.clock.elapsed();
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
                    now = self.clock.elapsed();
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
                self.accounts.generated.store(stats.generated, Relaxed);
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
        self.accounts.generated.store(stats.generated, Relaxed);
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
        self.accounts.endpoints[endpoint]
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
            () = self.abort.cancelled() => batch,
        };
        self.accounts
            .end_in_flight(endpoint, leftover, self.clock.elapsed())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::default_topic_id;

    #[test]
    fn the_default_topic_is_named_by_the_host_never_by_userinfo() {
        for (endpoint, name) in [
            (
                "https://mytopic.westus2-1.eventgrid.azure.net/api/events",
                "mytopic",
            ),
            ("http://user:pw@127.0.0.1:8080/api/events?code=k", "127"),
            ("https://user:pw@t1.eventgrid.azure.net", "t1"),
            ("https:///x", "topic"),
        ] {
            let id = default_topic_id(endpoint);
            assert!(id.ends_with(&format!("/topics/{name}")), "{endpoint}: {id}");
            assert!(!id.contains("user") && !id.contains("pw"), "{id}");
        }
    }
}
