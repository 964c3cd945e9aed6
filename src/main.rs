//! The `twinroute` command line.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use twinroute::clock::Clock;
use twinroute::config::{self, ConfigError, Overrides, SeedSource, Settings};
use twinroute::engine::{self, ClockMode, RunError, RunOptions};
use twinroute::event::Serialized;
use twinroute::generator::{DEFAULT_START_TIME, Generator};

/// Events are made on one thread and freed on others, at a million a second: mimalloc's
/// thread-local free lists beat glibc's arenas there (measured: see README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code: the run failed (I/O, a sink that could not start).
const EXIT_FAILURE: u8 = 1;
/// Exit code: the instance file, a filter or a flag was refused.
const EXIT_CONFIG: u8 = 2;
/// Exit code: the run finished but some event is unaccounted for.
const EXIT_UNBALANCED: u8 = 3;
/// Exit code: stopped by a signal; the report accounts pending deliveries as `inFlight`.
const EXIT_STOPPED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "twinroute",
    version,
    about = "Azure Digital Twins' event routing, as a program you can run anywhere",
    long_about = "Azure Digital Twins' event-routing data plane as a program you can run anywhere: \
                  a seeded generator of twin-lifecycle CloudEvents, routes with ADT's filter language, \
                  per-endpoint delivery with retry/TTL policies, and dead-letters.",
    after_help = "Start with `twinroute demo`, then `twinroute validate my-instance.json --show`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an instance file; print every problem with its JSON path
    #[command(after_help = "Example:\n  twinroute validate instance.json --show\n\n\
                            Exit codes: 0 valid, 2 refused (every problem is listed, each with file and JSON path).")]
    Validate {
        /// The instance file (JSON)
        config: PathBuf,
        /// Print the normalized configuration (defaults filled in, secrets masked as ***)
        #[arg(long)]
        show: bool,
    },
    /// Write the workload's event stream as NDJSON to stdout, as fast as it can
    #[command(
        after_help = "Example:\n  twinroute generate instance.json --count 1000 --seed 7 > events.ndjson\n\n\
                            One structured CloudEvent per line. The same seed gives the same bytes: event times \
                            start at workload.startTime, or 2026-01-01T00:00:00Z when the file names none."
    )]
    Generate {
        /// The instance file (JSON)
        config: PathBuf,
        /// Number of events (overrides workload.count and workload.durationSeconds)
        #[arg(long)]
        count: Option<u64>,
        /// Master seed (overrides workload.seed)
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Test a route filter against events: prints true or false per NDJSON line
    #[command(
        after_help = "Example:\n  twinroute filter \"type = 'Microsoft.DigitalTwins.Twin.Create'\" --events captured.ndjson\n  \
                            twinroute generate instance.json --count 100 | twinroute filter \"STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')\"\n\n\
                            Reads structured CloudEvents, one per line (stdin without --events). A line that is not \
                            a CloudEvent (or not UTF-8) prints `error`, the reason goes to stderr as `line N: …`, the next line is read, and the exit code is 1. \
                            A filter ADT would refuse is refused here: exit 2, with the column."
    )]
    Filter {
        /// The route filter, in ADT's filter language
        expression: String,
        /// NDJSON file of events (default: stdin)
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
    },
    /// Measure this machine: serialization limit, pipeline rate, a 24 h outage, a dead endpoint
    #[command(
        after_help = "Example:\n  cargo run --release -- bench\n  twinroute bench --events 2000000 --section pipeline\n\n\
                            Build with --release: a debug build measures the debug build. Sections: serialize, \
                            pipeline, outage, dead-endpoint (default: all)."
    )]
    Bench {
        /// Events for the serialize, pipeline and dead-endpoint sections
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events in the 24 h outage section (each attempted 30 times)
        #[arg(long, default_value_t = 100_000)]
        outage_events: u64,
        /// Run only these sections
        #[arg(long, value_delimiter = ',')]
        section: Vec<String>,
    },
    /// A downstream consumer you can break on purpose: accepts CloudEvents over HTTP, counts and checks them
    #[command(
        after_help = "Example:\n  twinroute receive --listen 127.0.0.1:8080\n  \
                            twinroute receive --listen 127.0.0.1:8080 --key K --fail-rate 0.1 --fail-status 503 \\\n      \
                            --latency-ms 20,200 --outage 30s+60s --throttle 500 --record received.ndjson\n\n\
                            Accepts binary, structured and batched CloudEvents and Event Grid schema arrays on any path. \
                            GET /stats returns what arrived as JSON (counts per type, duplicates, per-twin order \
                            inversions, end-to-end latency); Ctrl-C prints a summary. Faults apply in this order: \
                            outage (503), throttle (429, Retry-After: 1), dropped connection, latency, key (401), \
                            parse (400), fail rate."
    )]
    Receive {
        #[command(flatten)]
        settings: twinroute::receive::ReceiveSettings,
        /// Runtime threads (default: one per core); 1 serves everything on one thread
        #[arg(long, value_name = "N", value_parser = parse_threads)]
        threads: Option<usize>,
    },
    /// Run the routing data plane described by an instance file
    #[command(
        after_help = "Example:\n  twinroute run instance.json --report report.json --ledger ledger.ndjson\n  \
                            twinroute run instance.json --virtual-time     # a day of retries in seconds\n\n\
                            Exit codes: 0 completed and balanced; 1 the run failed; 2 the file or a flag was \
                            refused; 3 some event is unaccounted for; 130 stopped by Ctrl-C/SIGTERM (report \
                            written, pending deliveries counted inFlight)."
    )]
    Run {
        /// The instance file (JSON)
        config: PathBuf,
        #[command(flatten)]
        run: RunFlags,
    },
    /// Run an embedded demo instance: simulated endpoints with faults, no external service
    #[command(
        after_help = "Example:\n  twinroute demo\n  twinroute demo --virtual-time --report demo-report.json\n\n\
                            Dead-letters go to ./twinroute-deadletters/. `twinroute demo --print-config` prints \
                            the instance file it runs: a starting point for your own."
    )]
    Demo {
        /// Print the embedded instance file and exit
        #[arg(long)]
        print_config: bool,
        #[command(flatten)]
        run: RunFlags,
    },
}

#[derive(clap::Args, Clone)]
struct RunFlags {
    /// Master seed (overrides workload.seed)
    #[arg(long)]
    seed: Option<u64>,
    /// Number of events (overrides workload.count and workload.durationSeconds)
    #[arg(long)]
    count: Option<u64>,
    /// Run on tokio's paused clock, auto-advancing: retries and TTLs take no real time
    /// (every endpoint must be simulated and every dead-letter store local)
    #[arg(long)]
    virtual_time: bool,
    /// Write one NDJSON line per ending (event, route) to FILE
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,
    /// Write the run report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// After Ctrl-C/SIGTERM, how long pending deliveries may finish, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = engine::DEFAULT_DRAIN_TIMEOUT.as_secs_f64())]
    drain_timeout: f64,
    /// Folder for dead-letters that their location refuses
    #[arg(long, value_name = "DIR", default_value = engine::DEFAULT_SPILL_FOLDER)]
    spill_folder: PathBuf,
    /// Runtime threads (default: one per core); 1 runs everything on one thread
    /// (virtual time always runs on one)
    #[arg(long, value_name = "N", value_parser = parse_threads, conflicts_with = "virtual_time")]
    threads: Option<usize>,
}

/// `--threads`: 1 to 1024.
fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(threads @ 1..=1024) => Ok(threads),
        _ => Err(format!("'{text}' is not a thread count from 1 to 1024")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Validate { config, show } => validate(&config, show),
        Command::Generate {
            config,
            count,
            seed,
        } => generate(&config, Overrides { seed, count }),
        Command::Bench {
            events,
            outage_events,
            section,
        } => bench(events, outage_events, &section),
        Command::Receive { settings, threads } => receive(settings, threads),
        Command::Filter { expression, events } => filter(&expression, events.as_deref()),
        Command::Run { config, run } => match load(
            &config,
            &Overrides {
                seed: run.seed,
                count: run.count,
            },
        ) {
            Ok(settings) => run_instance(settings, &run),
            Err(code) => code,
        },
        Command::Demo { print_config, run } => {
            if print_config {
                print!("{}", config::DEMO_CONFIG);
                return ExitCode::SUCCESS;
            }
            match config::parse(
                config::DEMO_CONFIG,
                "demo",
                &Overrides {
                    seed: run.seed,
                    count: run.count,
                },
            ) {
                Ok(settings) => {
                    eprintln!(
                        "twinroute: demo instance (`twinroute demo --print-config` shows it); dead-letters go to ./twinroute-deadletters/"
                    );
                    run_instance(settings, &run)
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("TWINROUTE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = log_colour(
        std::io::IsTerminal::is_terminal(&io::stderr()),
        std::env::var_os("NO_COLOR"),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
}

/// Log lines are coloured only on a terminal, and not when `NO_COLOR` is set to anything but
/// the empty string (no-color.org): a file, a pipe or CI gets plain text.
fn log_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Loads the instance file; on refusal prints every problem and returns exit code 2.
fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ExitCode> {
    config::load(path, overrides).map_err(|error: ConfigError| {
        eprintln!("{error}");
        eprintln!(
            "twinroute: {} refused ({} problem{})",
            error.file,
            error.problems.len(),
            plural(error.problems.len())
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn validate(path: &Path, show: bool) -> ExitCode {
    let settings = match load(path, &Overrides::default()) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if show {
        let text = serde_json::to_string_pretty(&settings.normalized()).unwrap_or_default();
        println!("{text}");
    }
    eprintln!(
        "twinroute: {} is valid: {} endpoint{}, {} route{}",
        path.display(),
        settings.endpoints.len(),
        plural(settings.endpoints.len()),
        settings.routes.len(),
        plural(settings.routes.len()),
    );
    ExitCode::SUCCESS
}

/// Fills in the seed when neither the file nor `--seed` gave one, and prints it.
fn announce_seed(settings: &mut Settings) {
    if settings.seed_source == SeedSource::Clock {
        settings.workload.seed = Clock::real().epoch().ticks() as u64;
    }
    eprintln!(
        "twinroute: seed {} ({})",
        settings.workload.seed,
        settings.seed_source.describe()
    );
}

fn generate(path: &Path, overrides: Overrides) -> ExitCode {
    let mut settings = match load(path, &overrides) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if overrides.count.is_some() {
        settings.workload.duration = None;
    }
    announce_seed(&mut settings);
    let epoch = settings.workload.start_time.unwrap_or(DEFAULT_START_TIME);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut written = 0u64;
    for scheduled in Generator::new(&settings.workload, &settings.host_name, epoch) {
        let event = Serialized::new(scheduled.event);
        let result = out
            .write_all(event.json())
            .and_then(|()| out.write_all(b"\n"));
        if let Err(error) = result {
            return write_error(error, written);
        }
        written += 1;
    }
    if let Err(error) = out.flush() {
        return write_error(error, written);
    }
    eprintln!("twinroute: generated {written} events");
    if ended_short(promised_count(&settings), written) {
        return ExitCode::from(EXIT_FAILURE);
    }
    ExitCode::SUCCESS
}

/// A closed pipe (`| head`) ends the stream quietly; anything else is an error.
fn write_error(error: io::Error, written: u64) -> ExitCode {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("twinroute: writing events to stdout failed after {written} events: {error}");
    ExitCode::from(EXIT_FAILURE)
}

fn receive(settings: twinroute::receive::ReceiveSettings, threads: Option<usize>) -> ExitCode {
    let runtime = match engine::runtime(ClockMode::Real, threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("twinroute: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(async {
        let receiver = match twinroute::receive::Receiver::start(settings).await {
            Ok(receiver) => receiver,
            Err(error) => {
                eprintln!("twinroute: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        eprintln!(
            "twinroute: receiving on http://{} (GET /stats for counts; Ctrl-C to stop)",
            receiver.addr()
        );
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        stop.cancelled().await;
        let stats = receiver.shutdown().await;
        eprintln!("{}", stats.summary());
        ExitCode::SUCCESS
    })
}

fn filter(expression: &str, events: Option<&Path>) -> ExitCode {
    use std::io::BufRead;
    use twinroute::filter::stream::{self, StreamError};
    let filter = match twinroute::filter::Filter::parse(expression) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("filter:{}: {}", error.column, error.message);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (name, input): (String, Box<dyn BufRead>) = match events {
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => (
                path.display().to_string(),
                Box::new(io::BufReader::new(file)),
            ),
            Err(error) => {
                eprintln!("twinroute: cannot read {}: {error}", path.display());
                return ExitCode::from(EXIT_FAILURE);
            }
        },
        None => ("stdin".to_owned(), Box::new(io::stdin().lock())),
    };
    let out = BufWriter::new(io::stdout().lock());
    match stream::answer_lines(&filter, &name, input, out, io::stderr()) {
        Ok(counts) if counts.bad > 0 => ExitCode::from(EXIT_FAILURE),
        Ok(_) => ExitCode::SUCCESS,
        Err(StreamError::Write { written, source }) => write_error(source, written),
        Err(error @ StreamError::Read { .. }) => {
            eprintln!("twinroute: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn bench(events: u64, outage_events: u64, sections: &[String]) -> ExitCode {
    use twinroute::bench::{self, Plan, Section};
    let sections = match sections.iter().map(|s| s.parse::<Section>()).collect() {
        Ok(sections) => sections,
        Err(error) => {
            eprintln!("twinroute: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "twinroute: this is a debug build; build with --release for figures worth reading"
        );
    }
    let plan = Plan {
        events,
        outage_events,
        sections,
    };
    match bench::run(&plan, &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("twinroute: writing the figures to stdout failed: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run_instance(mut settings: Settings, flags: &RunFlags) -> ExitCode {
    if flags.count.is_some() {
        settings.workload.duration = None;
    }
    if !(flags.drain_timeout.is_finite() && flags.drain_timeout >= 0.0) {
        eprintln!("twinroute: --drain-timeout must be a number of seconds ≥ 0");
        return ExitCode::from(EXIT_CONFIG);
    }
    // The report and the ledger hold the run's accounting: a path that cannot be written is
    // found now, not after the run.
    let mut report_file = None;
    for (flag, path) in [("--report", &flags.report), ("--ledger", &flags.ledger)] {
        if let Some(path) = path {
            match std::fs::File::create(path) {
                Ok(file) if flag == "--report" => report_file = Some(file),
                Ok(_) => {}
                Err(error) => {
                    eprintln!(
                        "twinroute: {flag} {}: cannot create: {error}",
                        path.display()
                    );
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
    }
    announce_seed(&mut settings);
    let promised = promised_count(&settings);
    let options = RunOptions {
        clock: if flags.virtual_time {
            ClockMode::Virtual
        } else {
            ClockMode::Real
        },
        ledger: flags.ledger.clone(),
        drain_timeout: Duration::from_secs_f64(flags.drain_timeout),
        spill_folder: flags.spill_folder.clone(),
        // Live progress only where a person watches: real time, stderr a terminal.
        progress: !flags.virtual_time && std::io::IsTerminal::is_terminal(&io::stderr()),
        threads: flags.threads,
        ..RunOptions::default()
    };
    let result = engine::run_blocking(settings, options, stop_on_signal);
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("twinroute: {error}");
            let code = if matches!(error, RunError::Ledger { .. } | RunError::Runtime(_)) {
                EXIT_FAILURE
            } else {
                EXIT_CONFIG
            };
            return ExitCode::from(code);
        }
    };
    eprintln!("{}", report.summary());
    if let (Some(path), Some(mut file)) = (&flags.report, report_file) {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(io::Error::other)
            .and_then(|json| file.write_all(&json));
        if let Err(error) = written {
            eprintln!("twinroute: writing the report {}: {error}", path.display());
            return ExitCode::from(EXIT_FAILURE);
        }
        eprintln!("twinroute: report written to {}", path.display());
    }
    if let Some(path) = &flags.ledger {
        eprintln!("twinroute: ledger written to {}", path.display());
    }
    let short = !report.stopped_early && ended_short(promised, report.events_generated);
    if !report.balanced {
        ExitCode::from(EXIT_UNBALANCED)
    } else if report.stopped_early {
        ExitCode::from(EXIT_STOPPED)
    } else if short {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The events a run or `generate` must produce: `count`, unless `durationSeconds` may end it first.
fn promised_count(settings: &Settings) -> Option<u64> {
    match settings.workload.duration {
        Some(_) => None,
        None => settings.workload.count,
    }
}

/// Says so when the rate shape stopped producing before `count` (validation refuses the shapes
/// it can tell will; rounding at the very end of a shape can still cost an event).
fn ended_short(promised: Option<u64>, generated: u64) -> bool {
    match promised {
        Some(count) if generated < count => {
            eprintln!(
                "twinroute: ended after {generated} of {count} events (workload.count): the rate shape (workload.rate) fell to 0 for good before count was reached"
            );
            true
        }
        _ => false,
    }
}

/// Ctrl-C or SIGTERM: stop generating and drain, in real and in virtual time alike. The handlers
/// are installed when this is called (inside the runtime), before the run starts: from then on a
/// signal stops the run instead of killing the process.
fn stop_on_signal(stop: CancellationToken) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::log_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())));
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None));
    }
}
