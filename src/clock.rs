//! The one clock. Every wall-clock value twinroute prints or stamps on an event comes from here:
//! an epoch taken once, plus time elapsed on tokio's clock. Under virtual time (a paused tokio
//! runtime) the elapsed part is virtual too, so timestamps, TTLs and dead-letter folders all move
//! with the simulation. This is the only module allowed to read the system clock.

use std::fmt;
use std::time::Duration;

use arrayvec::ArrayString;
use tokio::time::Instant;

/// Ticks of 100 ns per second: the resolution of ADT's timestamps (7 fractional digits).
const TICKS_PER_SECOND: i64 = 10_000_000;

/// A UTC instant with ADT's resolution (100 ns ticks since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The last instant ADT's text form can hold, 9999-12-31T23:59:59.9999999Z: a later year
    /// would not fit its four digits.
    pub const MAX: Timestamp = Timestamp(253_402_300_799 * TICKS_PER_SECOND + TICKS_PER_SECOND - 1);

    /// The instant `ticks` × 100 ns after 1970-01-01T00:00:00Z.
    pub const fn from_ticks(ticks: i64) -> Self {
        Timestamp(ticks)
    }

    /// Whole seconds since the Unix epoch.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds * TICKS_PER_SECOND)
    }

    /// Ticks of 100 ns since the Unix epoch.
    pub const fn ticks(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp (`2025-01-01T00:00:00Z`, any offset, any precision).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        let seconds = parsed.timestamp();
        let ticks = seconds
            .checked_mul(TICKS_PER_SECOND)?
            .checked_add(i64::from(parsed.timestamp_subsec_nanos() / 100))?;
        Some(Timestamp(ticks))
    }

    /// This instant plus `offset`, saturating at [`Timestamp::MAX`]. Validation refuses a
    /// start time from which a run could get there (`workload.startTime`); should a run still be
    /// held back that long, its times stay at the end of the range rather than wrap.
    pub fn plus(self, offset: Duration) -> Self {
        let ticks = i64::try_from(offset.as_nanos() / 100).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ticks).min(Self::MAX.0))
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(TICKS_PER_SECOND)
    }

    /// The UTC calendar date and hour: `(year, month, day, hour)`, for dead-letter folders.
    pub fn utc_hour(self) -> (i32, u32, u32, u32) {
        use chrono::{Datelike, Timelike};
        let time = self.to_chrono();
        (time.year(), time.month(), time.day(), time.hour())
    }

    fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        let seconds = self.0.div_euclid(TICKS_PER_SECOND);
        let nanos = (self.0.rem_euclid(TICKS_PER_SECOND) * 100) as u32;
        chrono::DateTime::from_timestamp(seconds, nanos).unwrap_or_default()
    }

    /// ADT's text form: UTC, seven fractional digits, `Z` (`2021-12-09T20:28:52.6745538Z`).
    pub fn to_adt_string(self) -> AdtTime {
        TimestampFormatter::default().format(self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_adt_string())
    }
}

/// A formatted ADT timestamp, held inline (28 bytes, no allocation).
pub type AdtTime = ArrayString<28>;

/// Formats timestamps in ADT's form, reusing the calendar part while the second stays the same:
/// at a million events per second, almost every event falls in the same second as the one before.
#[derive(Default)]
pub struct TimestampFormatter {
    cached_second: Option<i64>,
    prefix: ArrayString<19>,
}

impl TimestampFormatter {
    /// `2021-12-09T20:28:52.6745538Z` for `timestamp`.
    pub fn format(&mut self, timestamp: Timestamp) -> AdtTime {
        // Past year 9999 the calendar part would not fit: hold at the last instant that does.
        let timestamp = timestamp.min(Timestamp::MAX);
        let second = timestamp.0.div_euclid(TICKS_PER_SECOND);
        if self.cached_second != Some(second) {
            let time = Timestamp(second * TICKS_PER_SECOND).to_chrono();
            self.prefix.clear();
            // Years 0..=9999 fit the 19 bytes (later ones are held at `MAX` above).
            let _ = fmt::write(
                &mut self.prefix,
                format_args!("{}", time.format("%Y-%m-%dT%H:%M:%S")),
            );
            self.cached_second = Some(second);
        }
        let mut text = AdtTime::new();
        text.push_str(&self.prefix);
        text.push('.');
        let fraction = timestamp.0.rem_euclid(TICKS_PER_SECOND) as u32;
        let mut digits = [b'0'; 7];
        let mut rest = fraction;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        for digit in digits {
            text.push(digit as char);
        }
        text.push('Z');
        text
    }
}

/// The system's current UTC time, for figures about real time (end-to-end latency measured by
/// `twinroute receive` against the events' `time`).
#[allow(clippy::disallowed_methods)] // the one place the system clock is read
pub fn utc_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
}

/// Which clock a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// The wall clock.
    Real,
    /// tokio's paused clock, auto-advancing: a day of retries finishes in seconds.
    Virtual,
}

impl ClockMode {
    /// The report's name: `real` or `virtual`.
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Virtual => "virtual",
        }
    }
}

/// The run's clock: a wall-clock epoch plus tokio's elapsed time since the run started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Timestamp,
    started: Instant,
}

impl Clock {
    /// A clock whose epoch is the system's current time.
    pub fn real() -> Self {
        let now = utc_now();
        let ticks =
            now.timestamp() * TICKS_PER_SECOND + i64::from(now.timestamp_subsec_nanos() / 100);
        Self::starting_at(Timestamp::from_ticks(ticks))
    }

    /// A clock whose epoch is `epoch`: deterministic runs and virtual time.
    pub fn starting_at(epoch: Timestamp) -> Self {
        Clock {
            epoch,
            started: Instant::now(),
        }
    }

    /// The wall-clock time at which the run started.
    pub fn epoch(&self) -> Timestamp {
        self.epoch
    }

    /// Time elapsed since the run started, on tokio's (possibly virtual) clock.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The tokio instant at which the run started; schedules are offsets from it.
    pub fn start_instant(&self) -> Instant {
        self.started
    }

    /// The current wall-clock time: epoch plus elapsed.
    pub fn now(&self) -> Timestamp {
        self.epoch.plus(self.elapsed())
    }

    /// The wall-clock time `offset` after the run started.
    pub fn at(&self, offset: Duration) -> Timestamp {
        self.epoch.plus(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_seven_fractional_digits_in_utc() {
        let t = Timestamp::parse_rfc3339("2021-12-09T20:28:52.6745538Z").unwrap();
        assert_eq!(t.to_adt_string().as_str(), "2021-12-09T20:28:52.6745538Z");
        let t = Timestamp::parse_rfc3339("2021-12-09T21:28:52.5+01:00").unwrap();
        assert_eq!(t.to_adt_string().as_str(), "2021-12-09T20:28:52.5000000Z");
    }

    #[test]
    fn cached_formatter_tracks_second_changes() {
        let mut formatter = TimestampFormatter::default();
        let base = Timestamp::parse_rfc3339("1999-12-31T23:59:59.9999999Z").unwrap();
        assert_eq!(
            formatter.format(base).as_str(),
            "1999-12-31T23:59:59.9999999Z"
        );
        let next = Timestamp::from_ticks(base.ticks() + 1);
        assert_eq!(
            formatter.format(next).as_str(),
            "2000-01-01T00:00:00.0000000Z"
        );
        assert_eq!(next.utc_hour(), (2000, 1, 1, 0));
    }

    /// Issue 13: a run from 9999-12-31 wrote `"finalAt":".0560000Z"` (the calendar part of a
    /// year-10000 time does not fit). Times now hold at the last instant of year 9999.
    #[test]
    fn times_past_year_9999_hold_at_its_last_instant() {
        let start = Timestamp::parse_rfc3339("9999-12-31T23:00:00Z").unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(start.plus(day), Timestamp::MAX);
        assert_eq!(
            start.plus(day).to_adt_string().as_str(),
            "9999-12-31T23:59:59.9999999Z"
        );
        let mut formatter = TimestampFormatter::default();
        let beyond = Timestamp::from_ticks(Timestamp::MAX.ticks() + 5_600_000);
        assert_eq!(
            formatter.format(beyond).as_str(),
            "9999-12-31T23:59:59.9999999Z"
        );
        assert_eq!(
            Timestamp::MAX.plus(Duration::ZERO).to_adt_string().as_str(),
            "9999-12-31T23:59:59.9999999Z"
        );
        assert_eq!(Timestamp::MAX.unix_seconds(), 253_402_300_799);
    }
}

/// Real elapsed time, whatever the runtime's clock: for wall-clock figures in reports and
/// benchmarks (under virtual time the run's own clock does not measure how long it took).
#[derive(Clone, Copy, Debug)]
#[allow(clippy::disallowed_types)] // the one place real elapsed time is measured
pub struct WallTimer(std::time::Instant);

impl WallTimer {
    /// Starts timing.
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
    pub fn start() -> Self {
        WallTimer(std::time::Instant::now())
    }

    /// Real time since [`WallTimer::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
