//! `twinroute receive`: a downstream HTTP consumer of ADT events, for tests, demos and chaos
//! drills. It stands where an Event Grid subscriber (a webhook) would, takes events in every
//! form ADT and Event Grid send them, misbehaves on request, and verifies what arrived.
//!
//! # Layout
//!
//! - `settings`: [`ReceiveSettings`] and the parsers of its CLI forms (`parse_outage`, …).
//! - `ingest`: request bodies to events: CloudEvents binary, structured and batch modes (via
//!   `cloudevents-sdk`) and Event Grid schema arrays; [`twin_id`].
//! - `chaos`: the fault knobs as one seeded decision per request (outage → throttle → drop
//!   connection → latency → fail rate).
//! - `stats`: counts, duplicates, per-twin order inversions, end-to-end latency; [`Stats`].
//! - `record`: `--record FILE`, accepted events appended as NDJSON by one writer task.
//! - `server`: accept loop, connections (and how one is dropped), routes and the handler;
//!   [`Receiver`], [`RunningReceiver`], [`serve`].
//!
//! # Endpoints
//!
//! - `POST` to any path (Event Grid topic endpoints look like `/api/events`): events. 200 on
//!   acceptance, otherwise 400/401/413/429/500/503 or the configured failure status, each with
//!   a short text body saying why.
//! - `GET /stats`: [`Stats`] as JSON. Not subject to the key or the chaos knobs.
//!
//! # Time
//!
//! Elapsed time (outage and throttle windows, injected latency) is tokio's. The one read of the
//! wall clock is `wall_clock_now()`, used for end-to-end latency against the events' `time`.

mod chaos;
mod ingest;
mod record;
mod server;
mod settings;
mod stats;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

pub use self::ingest::{TELEMETRY_TYPE, twin_id};
pub use self::server::{KEY_HEADER, MAX_BODY_BYTES, Receiver, RunningReceiver, serve};
pub use self::settings::{
    DEFAULT_FAIL_STATUS, DEFAULT_LISTEN, ReceiveSettings, SettingsError, parse_duration,
    parse_fail_status, parse_key, parse_latency_ms, parse_listen, parse_outage, parse_rate,
    parse_seed, parse_throttle,
};
pub use self::stats::{LatencyMs, Stats};

/// Why a receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The settings are out of range.
    #[error("invalid receive settings: {0}")]
    Settings(#[from] SettingsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `--record` file could not be opened for appending.
    #[error("cannot open record file {}: {source}", path.display())]
    RecordOpen {
        /// The file asked for.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The current wall-clock time, from the crate's one clock module.
pub(crate) fn wall_clock_now() -> DateTime<Utc> {
    crate::clock::utc_now()
}
