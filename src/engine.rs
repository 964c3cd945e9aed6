//! A run, wired: [`run`] builds the pipeline downstream-first — ledger writer, then per endpoint
//! its dead-letter writer and its worker, then the source (generator → router → per-endpoint
//! bounded queues) — and runs it to its end; [`run_blocking`] does so on the runtime its clock
//! calls for. What each stage does is in its own module: [`crate::source`],
//! [`crate::delivery::worker`], [`crate::deadletter::writer`], [`crate::account`]; endpoints are
//! built by [`crate::sink::build`] and [`crate::deadletter::open`], the report by
//! [`RunReport::assemble`].
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
//! drain timeout runs out: the stop's, counted from the stop (`abort_after_drain`), or the
//! writers', counted from the last worker's return (`drain_writers`), whichever comes first. On
//! the abort:
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
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::account::{Accounts, Ledger};
use crate::clock::{Clock, WallTimer};
use crate::config::{EndpointSettings, Settings};
use crate::deadletter::DeadLetterStore;
use crate::deadletter::folder::FolderStore;
use crate::deadletter::open::{self, OpenError};
use crate::deadletter::writer::{DeadLetterWriter, EndpointStores, WriterSettings};
use crate::delivery::worker::{Worker, WorkerSettings};
use crate::generator::{DEFAULT_START_TIME, Generator};
use crate::report::{RunFacts, RunReport};
use crate::router::RouteTable;
use crate::sink::Sink;
use crate::sink::build::{self, BuildError};
use crate::source::{ROUTER_BATCH, Source};

pub use crate::clock::ClockMode;
pub use crate::context::RunContext;

/// Dead-letters an endpoint's worker hands its dead-letter writer before it waits (the writer
/// itself holds up to the endpoint's `maxBacklog`).
const DEAD_LETTER_QUEUE: usize = 1024;

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
    /// The HTTP client dead-letter blob stores and Entra tokens share (reqwest, which
    /// azure_identity needs).
    pub http: reqwest::Client,
    /// The one HTTP client every Event Grid and Webhook sink shares (keep-alive pooling).
    pub sink_http: crate::sink::http::HttpClient,
    /// Stop (and drain) as soon as the workload is generated, rather than waiting for every
    /// retry to end (benchmarks).
    pub stop_after_generation: bool,
    /// Runtime threads for a real-time run ([`runtime`]): one per core when `None`; 0 or 1 runs
    /// everything on one thread. A virtual-time run always runs on one.
    pub threads: Option<usize>,
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
            sink_http: crate::sink::http::HttpClient::new(),
            threads: None,
        }
    }
}

/// The reqwest client of dead-letter blob stores and Entra tokens: rustls, keep-alive pooling,
/// HTTP/2 where the server offers it.
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
    /// The runtime could not be started.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The ledger could not be written.
    #[error("writing the ledger {path}: {source}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Runs the instance described by `settings` until the workload is generated and every delivery
/// has ended, or until `stop` is cancelled (then pending deliveries get `drain_timeout` to finish
/// and the rest ends `inFlight`). Either way, dead-letter writes still pending once every
/// delivery has ended get `drain_timeout` too, and what is left is spilled ("Stopping", above).
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
    let endpoints = open_endpoints(&settings, &options)?;
    let dead_letter_locations: Vec<Option<String>> = endpoints
        .iter()
        .map(|e| e.stores.as_ref().map(|s| s.store.describe()))
        .collect();
    let ledger_error = |path: &PathBuf, source| RunError::Ledger {
        path: path.clone(),
        source,
    };
    let (ledger, ledger_lines) = match &options.ledger {
        Some(path) => {
            let (ledger, lines) = Ledger::spawn(path).map_err(|e| ledger_error(path, e))?;
            (Some(ledger), Some(lines))
        }
        None => (None, None),
    };
    let context = RunContext {
        accounts: Accounts::new(
            settings.endpoints.iter().map(|e| e.name.clone()).collect(),
            settings.routes.iter().map(|r| r.id.clone()).collect(),
            clock,
            ledger_lines,
        ),
        clock,
        abort: CancellationToken::new(),
        seed: settings.workload.seed,
    };

    let mut senders = Vec::new();
    let mut workers = Vec::new();
    let mut writers = Vec::new();
    for (index, (endpoint, parts)) in settings.endpoints.iter().zip(endpoints).enumerate() {
        // Each endpoint has its own dead-letter writer, as it has its own worker: a failing
        // store holds up no other endpoint's dead-letters.
        let dead_letters = parts.stores.map(|stores| {
            let (tx, rx) = mpsc::channel(DEAD_LETTER_QUEUE);
            let max_pending = endpoint.delivery.max_backlog.get();
            let writer = DeadLetterWriter::new(
                options.writer.clone(),
                index,
                stores,
                rx,
                max_pending,
                &context,
            );
            writers.push(tokio::spawn(writer.run()));
            tx
        });
        let (tx, rx) = mpsc::channel(queue_batches(endpoint));
        senders.push(tx);
        let settings = worker_settings(index, endpoint);
        let worker = Worker::new(settings, parts.sink, rx, dead_letters, &context);
        workers.push(tokio::spawn(worker.run()));
    }
    let drain = tokio::spawn(abort_after_drain(
        stop.clone(),
        context.abort.clone(),
        options.drain_timeout,
    ));
    let progress = options
        .progress
        .then(|| crate::progress::spawn(context.accounts.clone(), clock));

    let generator = Generator::new(&settings.workload, &settings.host_name, clock.epoch());
    let table = RouteTable::from(&settings.routes[..]);
    let source = Source::new(table, senders, context.clone(), stop.clone());
    let source_stats = source.run(generator).await;
    if options.stop_after_generation {
        stop.cancel();
    }

    let mut worker_stats = Vec::new();
    for worker in workers {
        worker_stats.push(worker.await.ok());
    }
    drain_writers(writers, options.drain_timeout, &context.abort).await;
    drain.abort();
    if let Some(progress) = progress {
        progress.finish().await;
    }

    let report = RunReport::assemble(RunFacts {
        seed: settings.workload.seed,
        mode: options.clock,
        clock,
        wall,
        stopped_early: stop.is_cancelled(),
        source: &source_stats,
        accounts: &context.accounts,
        workers: &worker_stats,
        dead_letter_locations: &dead_letter_locations,
        spill_folder: &options.spill_folder,
    });
    // The accounts hold the ledger's sender: once they are gone, the ledger can be finished.
    drop(context);
    if let (Some(ledger), Some(path)) = (ledger, &options.ledger) {
        ledger.finish().await.map_err(|e| ledger_error(path, e))?;
    }
    Ok(report)
}

/// The runtime a run on `clock` needs.
///
/// - Virtual time: one thread, tokio's clock paused; it advances whenever nothing is runnable.
///   The I/O driver is what delivers Ctrl-C and SIGTERM to the run; under virtual time it
///   carries nothing else (every endpoint is simulated and every store local).
/// - Real time: `threads` worker threads, one per core when `None`; with 0 or 1 a
///   current-thread runtime, so nothing is handed between threads.
pub fn runtime(
    clock: ClockMode,
    threads: Option<usize>,
) -> std::io::Result<tokio::runtime::Runtime> {
    use tokio::runtime::Builder;
    match (clock, threads) {
        (ClockMode::Virtual, _) => Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .start_paused(true)
            .build(),
        (ClockMode::Real, Some(0 | 1)) => Builder::new_current_thread().enable_all().build(),
        (ClockMode::Real, Some(threads)) => Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
        (ClockMode::Real, None) => Builder::new_multi_thread().enable_all().build(),
    }
}

/// Runs [`run`] to its end on the runtime its clock calls for ([`runtime`], with
/// `options.threads`). `stopper` is called on that runtime with the run's `stop` token, before
/// the run starts, and the future it returns is spawned beside the run: a signal handler, a
/// timer in a test; [`no_stop`] for a run that ends on its own.
pub fn run_blocking<F>(
    settings: Settings,
    options: RunOptions,
    stopper: impl FnOnce(CancellationToken) -> F,
) -> Result<RunReport, RunError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = runtime(options.clock, options.threads).map_err(RunError::Runtime)?;
    let stop = CancellationToken::new();
    runtime.block_on(async {
        tokio::spawn(stopper(stop.clone()));
        run(settings, options, stop).await
    })
}

/// The stopper of a run that is never stopped, for [`run_blocking`].
pub async fn no_stop(_stop: CancellationToken) {}

/// One endpoint's parts, built before the run starts.
struct EndpointParts {
    sink: Box<dyn Sink>,
    stores: Option<EndpointStores>,
}

/// Every endpoint's sink ([`build::sink`]) and dead-letter stores ([`open::open`]), in file
/// order: the first that cannot be built or opened is the run's error, before any event flows.
fn open_endpoints(
    settings: &Settings,
    options: &RunOptions,
) -> Result<Vec<EndpointParts>, RunError> {
    let spill: Arc<dyn DeadLetterStore> = Arc::new(FolderStore::new(&options.spill_folder));
    let (seed, http, clock) = (settings.workload.seed, &options.http, options.clock);
    settings
        .endpoints
        .iter()
        .map(|endpoint| {
            let name = || endpoint.name.clone();
            let sink =
                build::sink(endpoint, seed, &options.sink_http, clock).map_err(
                    |error| match error {
                        BuildError::Unsupported(message) => RunError::Unsupported {
                            endpoint: name(),
                            message,
                        },
                        BuildError::Real(_) => RunError::NotVirtualizable {
                            endpoint: name(),
                            why: error.to_string(),
                        },
                    },
                )?;
            let given = options.stores.get(&endpoint.name);
            let stores =
                open::open(endpoint, given, &spill, http, clock).map_err(|error| match error {
                    OpenError::Refused(message) => RunError::DeadLetter {
                        endpoint: name(),
                        message,
                    },
                    OpenError::NotLocal(_) => RunError::NotVirtualizable {
                        endpoint: name(),
                        why: error.to_string(),
                    },
                })?;
            Ok(EndpointParts { sink, stores })
        })
        .collect()
}

/// An endpoint's worker settings, from its `delivery` section.
fn worker_settings(index: usize, endpoint: &EndpointSettings) -> WorkerSettings {
    WorkerSettings {
        endpoint: index,
        policy: endpoint.delivery.retry.clone(),
        concurrency: endpoint.delivery.concurrency.get(),
        max_backlog: endpoint.delivery.max_backlog.get(),
        attempt_timeout: endpoint.delivery.attempt_timeout,
    }
}

/// An endpoint's queue capacity in the source's batches (`queueCapacity` is in deliveries).
fn queue_batches(endpoint: &EndpointSettings) -> usize {
    endpoint
        .delivery
        .queue_capacity
        .get()
        .div_ceil(ROUTER_BATCH)
        .max(1)
}

/// The stop's drain ("Stopping"): once `stop` is cancelled, pending deliveries get `timeout`;
/// then the run is aborted.
async fn abort_after_drain(stop: CancellationToken, abort: CancellationToken, timeout: Duration) {
    stop.cancelled().await;
    tracing::info!(
        timeout_seconds = timeout.as_secs_f64(),
        "stopping: no more events; draining pending deliveries"
    );
    tokio::time::sleep(timeout).await;
    abort.cancel();
}

/// The dead-letter writers' drain ("Stopping"), once every delivery has ended: pending writes
/// (a store that keeps failing would retry for its whole retention) get `timeout`, as on a
/// stop; then the abort spills what is left. This is the run's natural end, not a stop: not
/// `stoppedEarly`.
async fn drain_writers(writers: Vec<JoinHandle<()>>, timeout: Duration, abort: &CancellationToken) {
    let mut all = std::pin::pin!(async move {
        for writer in writers {
            let _ = writer.await;
        }
    });
    if tokio::time::timeout(timeout, &mut all).await.is_err() {
        tracing::info!(
            timeout_seconds = timeout.as_secs_f64(),
            "every delivery has ended; spilling the dead-letters still pending after the drain timeout"
        );
        abort.cancel();
        all.await;
    }
}
