//! The receiver's settings and the parsers for their command-line forms.
//!
//! Every `parse_*` function takes one flag value and has the shape clap's `value_parser` wants
//! (`fn(&str) -> Result<T, SettingsError>`), so the main crate's CLI can use them directly.
//! [`ReceiveSettings`] derives `clap::Args`: `twinroute receive` flattens it, and
//! [`ReceiveSettings::from_args`] parses a `--flag value` list with the same definition.
//! [`ReceiveSettings::validate`] checks the combined values; `Receiver::start` calls it, so
//! hand-built settings are checked too.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Address `twinroute receive` listens on when `--listen` is not given.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));

/// Status answered by `--fail-rate` when `--fail-status` is not given.
pub const DEFAULT_FAIL_STATUS: u16 = 503;

/// Validated settings of one receiver, and `twinroute receive`'s flags: the CLI flattens this
/// struct, so each flag, its parser and its default are written once, here.
#[derive(Clone, PartialEq, clap::Args)]
pub struct ReceiveSettings {
    /// Address to listen on (`--listen`); port 0 picks a free port.
    #[arg(
        long,
        default_value_t = DEFAULT_LISTEN,
        value_parser = parse_listen,
        help = "Address to listen on (port 0 picks a free one; the address is printed)"
    )]
    pub listen: SocketAddr,
    /// Required value of the `aeg-sas-key` header (`--key`); `None` accepts any request.
    #[arg(
        long,
        value_parser = parse_key,
        help = "Require header `aeg-sas-key: K`; requests without it get 401"
    )]
    pub key: Option<String>,
    /// Probability that an otherwise accepted request is answered `fail_status` (`--fail-rate`).
    #[arg(
        long,
        default_value_t = 0.0,
        value_parser = parse_rate,
        help = "Share of requests answered with --fail-status (0 to 1)"
    )]
    pub fail_rate: f64,
    /// Status of injected failures (`--fail-status`, 400–599).
    #[arg(
        long,
        default_value_t = DEFAULT_FAIL_STATUS,
        value_parser = parse_fail_status,
        help = "The status of injected failures"
    )]
    pub fail_status: u16,
    /// Injected processing latency as `(p50, p99)`; a log-normal is fitted through them
    /// (`--latency-ms P50,P99`).
    #[arg(
        long = "latency-ms",
        value_name = "P50,P99",
        value_parser = parse_latency_ms,
        help = "Answer latency, p50,p99 in milliseconds (log-normal)"
    )]
    pub latency: Option<(Duration, Duration)>,
    /// Outage window as `(from, for)`, offsets since the receiver started (`--outage 30s+60s`).
    #[arg(
        long,
        value_name = "FROM+FOR",
        value_parser = parse_outage,
        help = "Answer 503 from FROM for FOR after start, e.g. 30s+60s"
    )]
    pub outage: Option<(Duration, Duration)>,
    /// Requests let through per 1-second window; the rest get 429 (`--throttle`).
    #[arg(
        long,
        value_parser = parse_throttle,
        help = "Requests per second above which the answer is 429 with Retry-After"
    )]
    pub throttle: Option<u32>,
    /// Probability that a request's TCP connection is closed with no answer
    /// (`--drop-connection-rate`).
    #[arg(
        long,
        default_value_t = 0.0,
        value_parser = parse_rate,
        help = "Share of requests whose connection is closed without an answer (0 to 1)"
    )]
    pub drop_connection_rate: f64,
    /// File to which every accepted event is appended as one NDJSON line (`--record`).
    #[arg(
        long,
        value_name = "FILE",
        help = "Append every accepted event to FILE as NDJSON"
    )]
    pub record: Option<PathBuf>,
    /// Seed of every random choice the receiver makes (`--seed`).
    #[arg(
        long,
        default_value_t = 0,
        value_parser = parse_seed,
        help = "Seed of the injected faults"
    )]
    pub seed: u64,
}

impl Default for ReceiveSettings {
    /// A well-behaved receiver on `127.0.0.1:8080`: no key, no faults, no recording, seed 0.
    fn default() -> Self {
        ReceiveSettings {
            listen: DEFAULT_LISTEN,
            key: None,
            fail_rate: 0.0,
            fail_status: DEFAULT_FAIL_STATUS,
            latency: None,
            outage: None,
            throttle: None,
            drop_connection_rate: 0.0,
            record: None,
            seed: 0,
        }
    }
}

/// Debug output masks the key: settings get logged, secrets must not be.
impl fmt::Debug for ReceiveSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveSettings")
            .field("listen", &self.listen)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("fail_rate", &self.fail_rate)
            .field("fail_status", &self.fail_status)
            .field("latency", &self.latency)
            .field("outage", &self.outage)
            .field("throttle", &self.throttle)
            .field("drop_connection_rate", &self.drop_connection_rate)
            .field("record", &self.record)
            .field("seed", &self.seed)
            .finish()
    }
}

impl ReceiveSettings {
    /// Parses `--flag value` / `--flag=value` arguments (without the program or subcommand
    /// name) over the defaults, with the same clap definition `twinroute receive` uses, then
    /// validates the result.
    pub fn from_args<I, S>(args: I) -> Result<Self, SettingsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        use clap::{FromArgMatches, error::ContextKind, error::ErrorKind};
        let command =
            <Self as clap::Args>::augment_args(clap::Command::new("receive").no_binary_name(true));
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let parsed = command
            .try_get_matches_from(&args)
            .and_then(|matches| Self::from_arg_matches(&matches));
        let settings = parsed.map_err(|error| {
            // The flag as written: clap's context names it with its value placeholder.
            let flag = || match error.get(ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::String(arg)) => {
                    arg.split([' ', '=']).next().unwrap_or(arg).to_owned()
                }
                _ => String::new(),
            };
            match error.kind() {
                ErrorKind::UnknownArgument => SettingsError::UnknownFlag(flag()),
                ErrorKind::InvalidValue if error.get(ContextKind::InvalidValue).is_some_and(
                    |value| matches!(value, clap::error::ContextValue::String(v) if v.is_empty()),
                ) => SettingsError::MissingValue(flag()),
                ErrorKind::ValueValidation => {
                    match std::error::Error::source(&error)
                        .and_then(|source| source.downcast_ref::<SettingsError>())
                    {
                        Some(source) => SettingsError::Flag {
                            flag: flag(),
                            source: Box::new(source.clone()),
                        },
                        None => SettingsError::Cli(error.to_string()),
                    }
                }
                _ => SettingsError::Cli(error.to_string()),
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the ranges the parsers check, for settings built by hand.
    pub fn validate(&self) -> Result<(), SettingsError> {
        check_rate(self.fail_rate)?;
        check_rate(self.drop_connection_rate)?;
        check_fail_status(self.fail_status)?;
        if let Some((p50, p99)) = self.latency {
            check_latency(p50, p99)?;
        }
        if let Some((_, length)) = self.outage
            && length.is_zero()
        {
            return Err(SettingsError::EmptyOutage);
        }
        if self.throttle == Some(0) {
            return Err(SettingsError::ZeroThrottle);
        }
        if self.key.as_deref() == Some("") {
            return Err(SettingsError::EmptyKey);
        }
        Ok(())
    }
}

/// A flag value or a combination of settings that is not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// A value that should be a number is not one.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// A probability outside `[0, 1]`.
    #[error("rate {0} is outside [0, 1]")]
    RateOutOfRange(f64),
    /// A failure status that is not an error status.
    #[error("status {0} is not an error status (400-599)")]
    FailStatus(u16),
    /// A duration without a unit.
    #[error("duration `{0}` needs a unit: ms, s or m")]
    MissingUnit(String),
    /// A duration with a unit other than `ms`, `s`, `m`.
    #[error("duration `{0}` has an unknown unit (use ms, s or m)")]
    UnknownUnit(String),
    /// A duration too large to represent.
    #[error("duration `{0}` is too large")]
    DurationTooLarge(String),
    /// An outage not of the form `FROM+FOR`.
    #[error("outage `{0}` must look like FROM+FOR, e.g. 30s+60s")]
    OutageForm(String),
    /// An outage that lasts no time.
    #[error("outage length must be positive")]
    EmptyOutage,
    /// A latency not of the form `P50,P99`.
    #[error("latency `{0}` must look like P50,P99 in milliseconds, e.g. 20,200")]
    LatencyForm(String),
    /// A latency whose p99 is below its p50, or whose p50 is zero under a positive p99.
    #[error(
        "latency p50 {p50:?} and p99 {p99:?} do not fit a distribution (need 0 < p50 <= p99, or both 0)"
    )]
    LatencyOrder {
        /// The median given.
        p50: Duration,
        /// The 99th percentile given.
        p99: Duration,
    },
    /// A throttle of zero requests per second.
    #[error("throttle must be at least 1 request per second")]
    ZeroThrottle,
    /// An empty `--key`.
    #[error("key must not be empty")]
    EmptyKey,
    /// A `--listen` value that is not `IP:PORT`.
    #[error("`{0}` is not a socket address (IP:PORT)")]
    Listen(String),
    /// A flag `from_args` does not know.
    #[error("unknown flag `{0}`")]
    UnknownFlag(String),
    /// Arguments clap refused for another reason (its message).
    #[error("{0}")]
    Cli(String),
    /// A flag given last, with no value after it.
    #[error("flag `{0}` needs a value")]
    MissingValue(String),
    /// A bad value, with the flag it was given to.
    #[error("{flag}: {source}")]
    Flag {
        /// The flag, e.g. `--outage`.
        flag: String,
        /// What is wrong with its value.
        source: Box<SettingsError>,
    },
}

/// `--listen`: `IP:PORT`, e.g. `127.0.0.1:8080` or `[::1]:0`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, SettingsError> {
    text.trim()
        .parse()
        .map_err(|_| SettingsError::Listen(text.to_owned()))
}

/// `--key`: any non-empty string, compared byte for byte with the `aeg-sas-key` header.
pub fn parse_key(text: &str) -> Result<String, SettingsError> {
    if text.is_empty() {
        return Err(SettingsError::EmptyKey);
    }
    Ok(text.to_owned())
}

/// `--fail-rate` and `--drop-connection-rate`: a probability in `[0, 1]`, e.g. `0.05`.
pub fn parse_rate(text: &str) -> Result<f64, SettingsError> {
    let rate = parse_number(text)?;
    check_rate(rate)?;
    Ok(rate)
}

/// `--fail-status`: an error status, 400–599.
pub fn parse_fail_status(text: &str) -> Result<u16, SettingsError> {
    let status = text
        .trim()
        .parse::<u16>()
        .map_err(|_| SettingsError::NotANumber(text.to_owned()))?;
    check_fail_status(status)?;
    Ok(status)
}

/// `--latency-ms`: `P50,P99` in milliseconds (decimals allowed), e.g. `20,200`. A single value
/// means a constant latency.
pub fn parse_latency_ms(text: &str) -> Result<(Duration, Duration), SettingsError> {
    let form = || SettingsError::LatencyForm(text.to_owned());
    let (p50, p99) = match text.split_once(',') {
        Some((p50, p99)) => (p50, p99),
        None => (text, text),
    };
    let millis = |part: &str| -> Result<Duration, SettingsError> {
        let value = parse_number(part).map_err(|_| form())?;
        if value < 0.0 {
            return Err(form());
        }
        Duration::try_from_secs_f64(value / 1000.0).map_err(|_| form())
    };
    let (p50, p99) = (millis(p50)?, millis(p99)?);
    check_latency(p50, p99)?;
    Ok((p50, p99))
}

/// `--outage`: `FROM+FOR`, two durations, e.g. `30s+60s` (down from 30 s after start, for
/// 60 s). See [`parse_duration`] for the units.
pub fn parse_outage(text: &str) -> Result<(Duration, Duration), SettingsError> {
    let (from, length) = text
        .split_once('+')
        .ok_or_else(|| SettingsError::OutageForm(text.to_owned()))?;
    if from.trim().is_empty() || length.trim().is_empty() {
        return Err(SettingsError::OutageForm(text.to_owned()));
    }
    let (from, length) = (parse_duration(from)?, parse_duration(length)?);
    if length.is_zero() {
        return Err(SettingsError::EmptyOutage);
    }
    Ok((from, length))
}

/// A duration with a unit: `250ms`, `30s`, `1.5s`, `2m`. The unit is required.
pub fn parse_duration(text: &str) -> Result<Duration, SettingsError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "" => return Err(SettingsError::MissingUnit(text.to_owned())),
        _ => return Err(SettingsError::UnknownUnit(text.to_owned())),
    };
    let too_large = || SettingsError::DurationTooLarge(text.to_owned());
    // Whole numbers take the exact integer path; decimals go through f64.
    if let Ok(whole) = number.parse::<u64>() {
        let millis = whole.checked_mul(millis_per_unit).ok_or_else(too_large)?;
        return Ok(Duration::from_millis(millis));
    }
    let value = parse_number(number).map_err(|_| SettingsError::NotANumber(text.to_owned()))?;
    if value < 0.0 {
        return Err(SettingsError::NotANumber(text.to_owned()));
    }
    Duration::try_from_secs_f64(value * millis_per_unit as f64 / 1000.0).map_err(|_| too_large())
}

/// `--throttle`: requests per second let through, at least 1.
pub fn parse_throttle(text: &str) -> Result<u32, SettingsError> {
    let limit = text
        .trim()
        .parse::<u32>()
        .map_err(|_| SettingsError::NotANumber(text.to_owned()))?;
    if limit == 0 {
        return Err(SettingsError::ZeroThrottle);
    }
    Ok(limit)
}

/// `--seed`: an unsigned 64-bit integer.
pub fn parse_seed(text: &str) -> Result<u64, SettingsError> {
    text.trim()
        .parse()
        .map_err(|_| SettingsError::NotANumber(text.to_owned()))
}

/// A finite decimal number.
fn parse_number(text: &str) -> Result<f64, SettingsError> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(SettingsError::NotANumber(text.to_owned())),
    }
}

fn check_rate(rate: f64) -> Result<(), SettingsError> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(SettingsError::RateOutOfRange(rate))
    }
}

fn check_fail_status(status: u16) -> Result<(), SettingsError> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(SettingsError::FailStatus(status))
    }
}

fn check_latency(p50: Duration, p99: Duration) -> Result<(), SettingsError> {
    // A log-normal needs a positive median; 0,0 is "no latency".
    let fits = p50 <= p99 && (!p50.is_zero() || p99.is_zero());
    if fits {
        Ok(())
    } else {
        Err(SettingsError::LatencyOrder { p50, p99 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_takes_from_plus_for_with_units() {
        assert_eq!(
            parse_outage("30s+60s"),
            Ok((Duration::from_secs(30), Duration::from_secs(60)))
        );
        assert_eq!(
            parse_outage("500ms+2m"),
            Ok((Duration::from_millis(500), Duration::from_secs(120)))
        );
        assert_eq!(
            parse_outage("0s+1.5s"),
            Ok((Duration::ZERO, Duration::from_millis(1500)))
        );
        assert_eq!(
            parse_outage(" 1m + 10ms "),
            Ok((Duration::from_secs(60), Duration::from_millis(10)))
        );
    }

    #[test]
    fn outage_errors_name_the_problem() {
        assert_eq!(
            parse_outage("30s"),
            Err(SettingsError::OutageForm("30s".into()))
        );
        assert_eq!(
            parse_outage("+60s"),
            Err(SettingsError::OutageForm("+60s".into()))
        );
        assert_eq!(
            parse_outage("30s+"),
            Err(SettingsError::OutageForm("30s+".into()))
        );
        assert_eq!(
            parse_outage("30+60s"),
            Err(SettingsError::MissingUnit("30".into()))
        );
        assert_eq!(
            parse_outage("30s+60h"),
            Err(SettingsError::UnknownUnit("60h".into()))
        );
        assert_eq!(
            parse_outage("1.2.3s+60s"),
            Err(SettingsError::NotANumber("1.2.3s".into()))
        );
        assert_eq!(parse_outage("30s+0s"), Err(SettingsError::EmptyOutage));
        assert_eq!(
            parse_outage("-1s+5s"),
            Err(SettingsError::NotANumber("-1s".into()))
        );
        assert!(matches!(
            parse_duration("99999999999999999999m"),
            Err(SettingsError::NotANumber(_) | SettingsError::DurationTooLarge(_))
        ));
        assert_eq!(
            parse_duration("18446744073709551615m"),
            Err(SettingsError::DurationTooLarge(
                "18446744073709551615m".into()
            ))
        );
    }

    #[test]
    fn latency_is_p50_comma_p99_in_ms() {
        assert_eq!(
            parse_latency_ms("20,200"),
            Ok((Duration::from_millis(20), Duration::from_millis(200)))
        );
        assert_eq!(
            parse_latency_ms("5"),
            Ok((Duration::from_millis(5), Duration::from_millis(5)))
        );
        assert_eq!(
            parse_latency_ms("0.5,2"),
            Ok((Duration::from_micros(500), Duration::from_millis(2)))
        );
        assert!(matches!(
            parse_latency_ms("200,20"),
            Err(SettingsError::LatencyOrder { .. })
        ));
        assert!(matches!(
            parse_latency_ms("0,20"),
            Err(SettingsError::LatencyOrder { .. })
        ));
        assert_eq!(
            parse_latency_ms("20;200"),
            Err(SettingsError::LatencyForm("20;200".into()))
        );
        assert_eq!(
            parse_latency_ms("-1,2"),
            Err(SettingsError::LatencyForm("-1,2".into()))
        );
    }

    #[test]
    fn rates_statuses_and_throttle_are_range_checked() {
        assert_eq!(parse_rate("0.1"), Ok(0.1));
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert_eq!(parse_rate("1.5"), Err(SettingsError::RateOutOfRange(1.5)));
        assert_eq!(
            parse_rate("NaN"),
            Err(SettingsError::NotANumber("NaN".into()))
        );
        assert_eq!(parse_fail_status("503"), Ok(503));
        assert_eq!(
            parse_fail_status("200"),
            Err(SettingsError::FailStatus(200))
        );
        assert_eq!(parse_throttle("500"), Ok(500));
        assert_eq!(parse_throttle("0"), Err(SettingsError::ZeroThrottle));
        assert_eq!(
            parse_throttle("-3"),
            Err(SettingsError::NotANumber("-3".into()))
        );
    }

    #[test]
    fn from_args_reads_every_flag() {
        let settings = ReceiveSettings::from_args([
            "--listen",
            "127.0.0.1:0",
            "--key",
            "K",
            "--fail-rate",
            "0.1",
            "--fail-status=500",
            "--latency-ms",
            "20,200",
            "--outage",
            "30s+60s",
            "--throttle",
            "500",
            "--drop-connection-rate",
            "0.05",
            "--record",
            "events.ndjson",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(
            settings,
            ReceiveSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                key: Some("K".into()),
                fail_rate: 0.1,
                fail_status: 500,
                latency: Some((Duration::from_millis(20), Duration::from_millis(200))),
                outage: Some((Duration::from_secs(30), Duration::from_secs(60))),
                throttle: Some(500),
                drop_connection_rate: 0.05,
                record: Some(PathBuf::from("events.ndjson")),
                seed: 7,
            }
        );
        assert!(!format!("{settings:?}").contains("\"K\""));
    }

    #[test]
    fn from_args_names_the_flag_in_errors() {
        let error = ReceiveSettings::from_args(["--outage", "30s"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--outage: outage `30s` must look like FROM+FOR, e.g. 30s+60s"
        );
        assert_eq!(
            ReceiveSettings::from_args(["--throttle"]),
            Err(SettingsError::MissingValue("--throttle".into()))
        );
        assert_eq!(
            ReceiveSettings::from_args(["--nope", "1"]),
            Err(SettingsError::UnknownFlag("--nope".into()))
        );
    }

    #[test]
    fn validate_catches_hand_built_settings() {
        let bad_rate = ReceiveSettings {
            fail_rate: 2.0,
            ..ReceiveSettings::default()
        };
        assert_eq!(bad_rate.validate(), Err(SettingsError::RateOutOfRange(2.0)));
        let bad_outage = ReceiveSettings {
            outage: Some((Duration::from_secs(1), Duration::ZERO)),
            ..ReceiveSettings::default()
        };
        assert_eq!(bad_outage.validate(), Err(SettingsError::EmptyOutage));
        assert_eq!(ReceiveSettings::default().validate(), Ok(()));
    }
}
