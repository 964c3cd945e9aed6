//! The `twinroute` command line.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use twinroute::clock::Clock;
use twinroute::config::{self, ConfigError, Overrides, SeedSource, Settings};
use twinroute::event::Serialized;
use twinroute::generator::{DEFAULT_START_TIME, Generator};

/// Exit code: the instance file, a filter or a flag was refused.
const EXIT_CONFIG: u8 = 2;
/// Exit code: the run failed (I/O, a sink that could not start).
const EXIT_FAILURE: u8 = 1;

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
    /// Run the routing data plane described by an instance file
    #[command(
        after_help = "Example:\n  twinroute run instance.json --report report.json --ledger ledger.ndjson"
    )]
    Run {
        /// The instance file (JSON)
        config: PathBuf,
        /// Master seed (overrides workload.seed)
        #[arg(long)]
        seed: Option<u64>,
        /// Number of events (overrides workload.count and workload.durationSeconds)
        #[arg(long)]
        count: Option<u64>,
    },
    /// Run an embedded demo instance: simulated endpoints with faults, no external service
    #[command(after_help = "Example:\n  twinroute demo")]
    Demo,
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
        Command::Run {
            config,
            seed,
            count,
        } => match load(&config, &Overrides { seed, count }) {
            Ok(_settings) => not_yet("run"),
            Err(code) => code,
        },
        Command::Demo => not_yet("demo"),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("TWINROUTE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .init();
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
            .write_all(&event.json)
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

fn not_yet(command: &str) -> ExitCode {
    eprintln!("twinroute: `{command}` needs the delivery engine, which has not landed yet");
    ExitCode::from(EXIT_FAILURE)
}
