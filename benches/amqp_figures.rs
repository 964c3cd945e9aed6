//! Issue 15's AMQP figures, each beside its reference, in one run, on both AMQP test peers (the
//! in-repo broker on fe2o3-amqp and the Qpid Proton peer). Every figure is a whole run of the
//! real engine (`engine::run` with settings parsed from an instance file, as `twinroute run`
//! does), so the endpoint worker's own concurrency and batching apply and the sinks are measured
//! as they are, whatever they do.
//!
//! - **A. 20 ms broker.** The peer settles each transfer 20 ms after it arrives (a timer per
//!   transfer: nothing else waits). Single events, `concurrency` 64, Event Hubs and Service Bus:
//!   messages/s and its ratio to 64 / 20 ms = 3200/s (goal ≥ 0.7); the liveness checks the peer
//!   saw (`$management` READs, and sessions begun and ended with no link on them) beside the
//!   bound `connections × run seconds`; the attempts' p99 latency from the run's report.
//! - **B. Zero-latency broker on loopback.** Events/s single (`maxEventsPerBatch` 1) and batched
//!   (100), beside the official Python producer (`azure-eventhub`, `benches/eventhub_producer.py`)
//!   sending the same events to the same peer in the same run: goal ≥ 3× its rate. The batched
//!   workload has one twin, so each attempt of 100 events is one 100-event batch message (Event
//!   Hubs sends one batch per partition key); the peer's transfer count shows it.
//!
//! Each run is bounded: A sends at most [`LATENCY_EVENTS`] events and stops after
//! [`RUN_CAP`]; B's runs are bounded the same way, and the Python producer stops sending after
//! [`RUN_CAP`] and is killed by PID if it has not exited [`PYTHON_GRACE`] later. Every peer is
//! started fresh for one run, listens on 127.0.0.1 only, and is killed by PID when dropped.
//!
//! `cargo bench --bench amqp_figures` (the Proton peer and the Python producer need `.venv` with
//! `tests/amqp_peer/requirements.txt` and `benches/requirements.txt`: `scripts/bench-amqp` sets it
//! up, then runs this). Under `cargo test` (no `--bench` argument) it does nothing.

#[path = "../tests/amqp_support/mod.rs"]
mod amqp_support;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use amqp_support::broker::{Activity, BrokerSettings};
use amqp_support::peers::{PEERS, PeerKind, TestPeer};
use amqp_support::proton;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use twinroute::config::{self, Overrides, Settings};
use twinroute::engine::{self, ClockMode, RunOptions};
use twinroute::generator::Generator;
use twinroute::report::{EndpointReport, RunReport};
use twinroute::sink::amqp::cloudevents;

// The binary's allocator, so the sinks run as they do under `twinroute run`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The entity every endpoint sends to.
const ENTITY: &str = "adt-events";
/// The workload's first event time, fixed so the Python producer gets the very same events.
const START_TIME: &str = "2026-01-01T00:00:00Z";
/// Figure A's broker latency.
const LATENCY: Duration = Duration::from_millis(20);
/// Figure A's `concurrency` (the default).
const CONCURRENCY: u32 = 64;
/// Figure A's goal: messages/s ÷ (concurrency / latency).
const LATENCY_GOAL: f64 = 0.7;
/// Figure B's goal: twinroute's events/s ÷ the Python producer's.
const PYTHON_GOAL: f64 = 3.0;
/// Events offered in figure A.
const LATENCY_EVENTS: u64 = 24_000;
/// Events offered in figure B, one per attempt.
const SINGLE_EVENTS: u64 = 4_000;
/// Events offered in figure B, 100 per attempt.
const BATCHED_EVENTS: u64 = 40_000;
/// Events per batch in figure B.
const BATCH: u64 = 100;
/// The longest a run sends before it is stopped.
const RUN_CAP: Duration = Duration::from_secs(10);
/// How long the Python producer may take past [`RUN_CAP`] (starting, connecting, closing).
const PYTHON_GRACE: Duration = Duration::from_secs(30);
/// No run may take longer than this, stop and shutdown included.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EventHub,
    ServiceBus,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::EventHub => "Event Hubs",
            Kind::ServiceBus => "Service Bus",
        }
    }
}

const KINDS: [Kind; 2] = [Kind::EventHub, Kind::ServiceBus];

fn peer_name(kind: PeerKind) -> &'static str {
    match kind {
        PeerKind::InRepo => "in-repo",
        PeerKind::Proton => "Proton",
    }
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do there.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("amqp_figures: a benchmark; run `cargo bench --bench amqp_figures`");
        return;
    }
    let runtime = engine::runtime(ClockMode::Real, None).expect("a runtime");
    let failures = runtime.block_on(figures());
    if failures > 0 {
        eprintln!("amqp_figures: {failures} figure(s) could not be measured (see above)");
        std::process::exit(1);
    }
}

/// Measures and prints every figure; returns how many could not be measured.
async fn figures() -> usize {
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "AMQP figures (issue 15), {cores} cores, peers on 127.0.0.1, Python {}",
        proton::python().display()
    );
    let mut failures = 0;

    println!(
        "\nA. Peer settling each transfer {} ms after it arrives; single events; `concurrency` {CONCURRENCY}; \
         at most {LATENCY_EVENTS} events or {} s",
        LATENCY.as_millis(),
        RUN_CAP.as_secs()
    );
    let ceiling = f64::from(CONCURRENCY) / LATENCY.as_secs_f64();
    println!(
        "   messages/s ÷ {ceiling:.0} (= {CONCURRENCY} / {} ms): goal ≥ {LATENCY_GOAL}; \
         liveness checks (READs + probe sessions) ≤ connections × run seconds",
        LATENCY.as_millis()
    );
    let mut table = Table::new(&[
        "peer",
        "endpoint",
        "delivered",
        "seconds",
        "msgs/s",
        "÷ceiling",
        "goal",
        "READs",
        "probes",
        "checks",
        "bound",
        "conns",
        "sessions",
        "links",
        "p99 ms",
    ]);
    for peer_kind in PEERS {
        for kind in KINDS {
            match latency_figure(peer_kind, kind, scratch.path()).await {
                Ok(figure) => {
                    let ratio = figure.rate() / ceiling;
                    let checks = figure.activity.reads + figure.activity.bare_sessions;
                    let bound = figure.activity.connections as f64 * figure.seconds;
                    table.row(vec![
                        peer_name(peer_kind).to_owned(),
                        kind.name().to_owned(),
                        figure.delivered.to_string(),
                        format!("{:.2}", figure.seconds),
                        format!("{:.1}", figure.rate()),
                        format!("{ratio:.3}"),
                        verdict(ratio >= LATENCY_GOAL).to_owned(),
                        figure.activity.reads.to_string(),
                        figure.activity.bare_sessions.to_string(),
                        format!("{checks} {}", verdict(checks as f64 <= bound)),
                        format!("{bound:.1}"),
                        figure.activity.connections.to_string(),
                        figure.activity.sessions.to_string(),
                        figure.activity.links.to_string(),
                        format!("{:.0}", figure.attempt_p99_ms),
                    ]);
                }
                Err(error) => {
                    failures += 1;
                    table.note(format!("{} {}: {error}", peer_name(peer_kind), kind.name()));
                }
            }
        }
    }
    print!("{}", table.render());

    println!(
        "\nB. Zero-latency peer; events/s, one event per attempt ({SINGLE_EVENTS} events) and \
         {BATCH} per attempt ({BATCHED_EVENTS} events, one twin), at most {} s each; \
         goal ≥ {PYTHON_GOAL}× the Python producer (azure-eventhub) on the same peer",
        RUN_CAP.as_secs()
    );
    let mut table = Table::new(&[
        "peer", "sender", "batch", "events", "messages", "seconds", "events/s", "×Python", "goal",
    ]);
    for peer_kind in PEERS {
        for batch in [1, BATCH] {
            let python = python_figure(peer_kind, batch, scratch.path()).await;
            let python_rate = python.as_ref().ok().map(Throughput::rate);
            for kind in KINDS {
                match throughput_figure(peer_kind, kind, batch, scratch.path()).await {
                    Ok(figure) => {
                        // The Python reference is an Event Hubs producer: the ratio is for
                        // Event Hubs; Service Bus is shown for what it is.
                        let ratio = python_rate
                            .filter(|_| kind == Kind::EventHub)
                            .map(|python| {
                                let ratio = figure.rate() / python;
                                (
                                    format!("{ratio:.2}"),
                                    verdict(ratio >= PYTHON_GOAL).to_owned(),
                                )
                            });
                        let (ratio, goal) = ratio.unwrap_or(("—".to_owned(), "—".to_owned()));
                        table.row(vec![
                            peer_name(peer_kind).to_owned(),
                            format!("twinroute {}", kind.name()),
                            batch.to_string(),
                            figure.events.to_string(),
                            figure.messages.to_string(),
                            format!("{:.2}", figure.seconds),
                            format!("{:.0}", figure.rate()),
                            ratio,
                            goal,
                        ]);
                    }
                    Err(error) => {
                        failures += 1;
                        table.note(format!(
                            "{} twinroute {} batch {batch}: {error}",
                            peer_name(peer_kind),
                            kind.name()
                        ));
                    }
                }
            }
            match python {
                Ok(figure) => table.row(vec![
                    peer_name(peer_kind).to_owned(),
                    "azure-eventhub (Python)".to_owned(),
                    batch.to_string(),
                    figure.events.to_string(),
                    figure.messages.to_string(),
                    format!("{:.2}", figure.seconds),
                    format!("{:.0}", figure.rate()),
                    "1".to_owned(),
                    String::new(),
                ]),
                Err(error) => {
                    failures += 1;
                    table.note(format!(
                        "{} azure-eventhub (Python) batch {batch}: {error}",
                        peer_name(peer_kind)
                    ));
                }
            }
        }
    }
    print!("{}", table.render());
    failures
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

// ---------------------------------------------------------------------------------------------
// Figure A

/// One run against a peer settling each transfer after [`LATENCY`].
struct LatencyFigure {
    delivered: u64,
    seconds: f64,
    /// What clients opened on the peer during the run.
    activity: Activity,
    attempt_p99_ms: f64,
}

impl LatencyFigure {
    fn rate(&self) -> f64 {
        rate(self.delivered, self.seconds)
    }
}

async fn latency_figure(
    peer_kind: PeerKind,
    kind: Kind,
    scratch: &Path,
) -> Result<LatencyFigure, String> {
    let peer = start_peer(peer_kind).await?;
    peer.set_latency(LATENCY);
    let workload = workload(LATENCY_EVENTS, 1000);
    let delivery = json!({ "maxEventsPerBatch": 1, "concurrency": CONCURRENCY });
    let settings = settings(&*peer, kind, delivery, workload, scratch)?;
    let before = peer.activity();
    let (report, seconds) = run(settings, scratch).await?;
    let after = peer.activity();
    let endpoint = endpoint(&report)?;
    Ok(LatencyFigure {
        delivered: endpoint.delivered,
        seconds,
        activity: Activity {
            connections: after.connections - before.connections,
            sessions: after.sessions - before.sessions,
            bare_sessions: after.bare_sessions - before.bare_sessions,
            links: after.links - before.links,
            reads: after.reads - before.reads,
        },
        attempt_p99_ms: endpoint.attempt_latency_ms.p99,
    })
}

// ---------------------------------------------------------------------------------------------
// Figure B

/// Events sent and how long it took.
struct Throughput {
    events: u64,
    /// Transfers the peer saw (a batch message is one).
    messages: u64,
    seconds: f64,
}

impl Throughput {
    fn rate(&self) -> f64 {
        rate(self.events, self.seconds)
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Figure B's workload: `count` events; one twin when batched, so a batch is one message.
fn throughput_workload(batch: u64) -> Value {
    if batch == 1 {
        workload(SINGLE_EVENTS, 1000)
    } else {
        workload(BATCHED_EVENTS, 1)
    }
}

async fn throughput_figure(
    peer_kind: PeerKind,
    kind: Kind,
    batch: u64,
    scratch: &Path,
) -> Result<Throughput, String> {
    let peer = start_peer(peer_kind).await?;
    let delivery = json!({ "maxEventsPerBatch": batch });
    let settings = settings(&*peer, kind, delivery, throughput_workload(batch), scratch)?;
    let (report, seconds) = run(settings, scratch).await?;
    let endpoint = endpoint(&report)?;
    Ok(Throughput {
        events: endpoint.delivered,
        messages: peer.counters().2,
        seconds,
    })
}

/// The Python producer sending figure B's events to a fresh peer of `peer_kind`.
async fn python_figure(
    peer_kind: PeerKind,
    batch: u64,
    scratch: &Path,
) -> Result<Throughput, String> {
    let peer = start_peer(peer_kind).await?;
    // The same events twinroute sends (the same settings give the same events).
    let settings = settings(
        &*peer,
        Kind::EventHub,
        json!({ "maxEventsPerBatch": batch }),
        throughput_workload(batch),
        scratch,
    )?;
    let events = scratch.join(format!("events-{batch}.ndjson"));
    write_events(&settings, &events)?;
    let connection_string = peer.connection_string("send", "k", Some(ENTITY));
    let answer = tokio::task::spawn_blocking(move || {
        run_python(&connection_string, &events, batch, RUN_CAP + PYTHON_GRACE)
    })
    .await
    .map_err(|e| e.to_string())??;
    let field = |name: &str| {
        answer[name]
            .as_f64()
            .ok_or_else(|| format!("the producer's answer has no {name}: {answer}"))
    };
    let (events, seconds) = (field("events")? as u64, field("seconds")?);
    let received = peer.received_count();
    if received < events {
        return Err(format!(
            "the producer says it sent {events} events; the peer recorded {received}"
        ));
    }
    Ok(Throughput {
        events,
        messages: peer.counters().2,
        seconds,
    })
}

/// Every event of `settings`' workload as the producer reads it: what twinroute puts on the
/// wire (CloudEvents AMQP binding), with the twin id as the partition key.
fn write_events(settings: &Settings, path: &Path) -> Result<(), String> {
    let start = settings
        .workload
        .start_time
        .ok_or("the workload has a start time")?;
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for scheduled in Generator::new(&settings.workload, &settings.host_name, start) {
        let event = scheduled.event;
        let properties: serde_json::Map<String, Value> =
            cloudevents::application_properties(&event)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), Value::String(value)))
                .collect();
        let line = json!({
            "id": event.id.as_str(),
            "partitionKey": &*event.twin_id,
            "contentType": event.datacontenttype,
            "properties": properties,
            "body": String::from_utf8_lossy(&cloudevents::body(&event)),
        });
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// Runs `benches/eventhub_producer.py`, killing it by PID if it outlives `within`; returns its
/// JSON answer.
fn run_python(
    connection_string: &str,
    events: &Path,
    batch: u64,
    within: Duration,
) -> Result<Value, String> {
    let python = proton::python();
    let mut child = Command::new(&python)
        .arg(producer_script())
        .arg("--connection-string")
        .arg(connection_string)
        .arg("--events")
        .arg(events)
        .arg("--batch")
        .arg(batch.to_string())
        .arg("--max-seconds")
        .arg(RUN_CAP.as_secs_f64().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {e}; run scripts/bench-amqp",
                python.display()
            )
        })?;
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                text = line;
            }
        }
        text
    });
    let errors = std::thread::spawn(move || {
        let mut tail = Vec::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        tail.join("\n")
    });
    // Polled, so the wait is bounded; past the bound the producer is killed by its PID.
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(50);
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break Some(status),
            None if waited >= within => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => {
                std::thread::sleep(step);
                waited += step;
            }
        }
    };
    let last_line = reader.join().unwrap_or_default();
    let stderr = errors.join().unwrap_or_default();
    match status {
        None => Err(format!(
            "the producer (pid {pid}) did not finish within {within:?} and was killed; its stderr:\n{stderr}"
        )),
        Some(status) if !status.success() => Err(format!(
            "the producer (pid {pid}) exited with {status}; its stderr:\n{stderr}"
        )),
        Some(_) => serde_json::from_str(&last_line)
            .map_err(|e| format!("the producer printed {last_line:?}: {e}; its stderr:\n{stderr}")),
    }
}

fn producer_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/eventhub_producer.py"
    ))
}

// ---------------------------------------------------------------------------------------------
// Runs

async fn start_peer(kind: PeerKind) -> Result<Arc<dyn TestPeer>, String> {
    Ok(match kind {
        PeerKind::InRepo => Arc::new(
            amqp_support::broker::Broker::start(BrokerSettings::default())
                .await
                .map_err(|e| e.to_string())?,
        ),
        PeerKind::Proton => Arc::new(proton::ProtonPeer::start(BrokerSettings::default()).await?),
    })
}

fn workload(count: u64, twins: u32) -> Value {
    // Offered faster than any sink takes it: the endpoint's queue holds the rest.
    json!({ "seed": 15, "twins": twins, "count": count, "startTime": START_TIME,
            "rate": { "shape": "constant", "eventsPerSecond": 100_000 } })
}

/// An instance file with one endpoint of `kind` on `peer` and one route taking every event, as
/// a user writes it.
fn settings(
    peer: &dyn TestPeer,
    kind: Kind,
    delivery: Value,
    workload: Value,
    scratch: &Path,
) -> Result<Settings, String> {
    let connection_string = peer.connection_string("send", "k", Some(ENTITY));
    let (endpoint_type, key) = match kind {
        Kind::EventHub => ("EventHub", "connectionStringPrimaryKey"),
        Kind::ServiceBus => ("ServiceBus", "primaryConnectionString"),
    };
    let instance = json!({
        "version": 1,
        "endpoints": { "ep-1": {
            "properties": {
                "endpointType": endpoint_type,
                "authenticationType": "KeyBased",
                key: connection_string,
                "deadLetterSecret": scratch.join("dead").display().to_string(),
            },
            "delivery": delivery,
        } },
        "routes": { "all": { "endpointName": "ep-1", "filter": "true" } },
        "workload": workload,
    });
    config::parse(&instance.to_string(), "amqp_figures", &Overrides::default())
        .map_err(|e| e.to_string())
}

/// Runs `settings` until every event is delivered or [`RUN_CAP`] passes (then stops at once:
/// what is still pending ends `inFlight`). Returns the report and the seconds the run sent for.
async fn run(settings: Settings, scratch: &Path) -> Result<(RunReport, f64), String> {
    let options = RunOptions {
        spill_folder: scratch.join("spill"),
        drain_timeout: Duration::ZERO,
        ..RunOptions::default()
    };
    let stop = CancellationToken::new();
    let started = Instant::now();
    let capped = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RUN_CAP).await;
            stop.cancel();
            Instant::now()
        })
    };
    let report = tokio::time::timeout(RUN_DEADLINE, engine::run(settings, options, stop))
        .await
        .map_err(|_| format!("the run did not end within {RUN_DEADLINE:?}"))?
        .map_err(|e| e.to_string())?;
    let ended = if capped.is_finished() {
        capped.await.map_err(|e| e.to_string())?
    } else {
        capped.abort();
        Instant::now()
    };
    Ok((report, (ended - started).as_secs_f64()))
}

fn endpoint(report: &RunReport) -> Result<&EndpointReport, String> {
    let endpoint = report
        .endpoints
        .get("ep-1")
        .ok_or("the report has no endpoint ep-1")?;
    let failed: u64 = endpoint
        .attempt_results
        .iter()
        .filter(|(result, _)| *result != "200")
        .map(|(_, count)| count)
        .sum();
    if failed > 0 {
        eprintln!(
            "amqp_figures: attempts that failed: {:?}",
            endpoint.attempt_results
        );
    }
    Ok(endpoint)
}

// ---------------------------------------------------------------------------------------------
// Output

/// A plain text table: columns padded to their widest cell, notes under it.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn note(&mut self, note: String) {
        eprintln!("amqp_figures: {note}");
        self.notes.push(note);
    }

    fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .filter_map(|row| row.get(i))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from("   ");
            for (cell, width) in row.iter().zip(&widths) {
                let _ = write!(line, "{cell:<width$}  ");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for note in &self.notes {
            let _ = writeln!(out, "   could not measure: {note}");
        }
        out
    }
}
