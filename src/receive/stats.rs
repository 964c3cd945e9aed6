//! What the receiver verified: counts, duplicates, order inversions, end-to-end latency.
//!
//! [`Tracker`] is the live state, updated once per request under one short-held lock;
//! [`Stats`] is a snapshot of it, served as JSON by `GET /stats` and returned at shutdown.
//!
//! Counting rules:
//! - `requests`: every request but `GET /stats`, whatever its answer (a `POST` to any path is an
//!   event request; any other method is answered 405 and counted in `rejected`).
//! - Only events of requests answered 2xx are received: `eventsReceived` counts them all,
//!   duplicates included; `byType` splits that same count by `type`.
//! - `uniqueEvents`: distinct keys (`source` + `id`; `topic` + `id` for Event Grid schema);
//!   `duplicates` = `eventsReceived` − `uniqueEvents`.
//! - `orderInversions`: a first delivery whose `time` is earlier than the latest `time` already
//!   seen for the same twin. Duplicates are left out (a redelivery is not a reordering), and so
//!   are events without `time` (telemetry).
//! - `rejected`: requests answered with a non-2xx status, by status; `droppedConnections`:
//!   requests whose connection was closed with no answer.
//! - `latencyMs`: receipt time minus event `time`, for every received event that has one
//!   (duplicates included: their delay is the redelivery's). Negative values (clock skew) count
//!   as 0. `null` while there is no sample. The percentiles hold any latency, days or years
//!   (events replayed from the docs' 2021 examples), to 3 significant figures.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
use foldhash::fast::RandomState as FastHash;
use hashbrown::hash_table::{Entry, HashTable};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::ingest::Arrival;

/// Significant figures kept by the latency histogram.
const LATENCY_SIGNIFICANT_FIGURES: u8 = 3;

/// A snapshot of what the receiver saw (field names are the `/stats` JSON's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Event requests, whatever their answer.
    pub requests: u64,
    /// Events in requests answered 2xx, duplicates included.
    pub events_received: u64,
    /// Distinct events received.
    pub unique_events: u64,
    /// Received events whose key had been received before.
    pub duplicates: u64,
    /// `eventsReceived` by event `type`.
    pub by_type: BTreeMap<String, u64>,
    /// First deliveries older than an event already seen for the same twin.
    pub order_inversions: u64,
    /// Requests answered with a non-2xx status, by status (JSON keys are the status as text).
    pub rejected: BTreeMap<u16, u64>,
    /// Requests whose connection was closed without an answer.
    pub dropped_connections: u64,
    /// End-to-end latency (event `time` → receipt).
    pub latency_ms: LatencyMs,
}

/// End-to-end latency percentiles in milliseconds; `None` (JSON `null`) with no samples.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Stats {
    /// A human-readable table, printed when the receiver stops.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let rejected: u64 = self.rejected.values().sum();
        let accepted = self
            .requests
            .saturating_sub(rejected)
            .saturating_sub(self.dropped_connections);
        let mut row = |label: &str, value: String| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{label:<30}{value:>16}");
        };
        row("requests", self.requests.to_string());
        row("  accepted (2xx)", accepted.to_string());
        for (status, count) in &self.rejected {
            row(&format!("  rejected {status}"), count.to_string());
        }
        row(
            "  dropped connections",
            self.dropped_connections.to_string(),
        );
        row("events received", self.events_received.to_string());
        row("  unique", self.unique_events.to_string());
        row("  duplicates", self.duplicates.to_string());
        row("order inversions", self.order_inversions.to_string());
        row("latency ms (time → receipt)", String::new());
        row("  p50", ms(self.latency_ms.p50));
        row("  p99", ms(self.latency_ms.p99));
        row("  max", ms(self.latency_ms.max));
        if !self.by_type.is_empty() {
            let _ = writeln!(out, "by type");
            for (ty, count) in &self.by_type {
                let _ = writeln!(out, "  {ty:<44}{count:>16}");
            }
        }
        out
    }
}

/// The `source` + `id` keys seen so far, each hashed once. The table stores the hash beside the
/// key, so growing it moves entries without hashing every key again: on a million-event run,
/// rehashing the ~80-byte keys was a tenth of the receiver's time. Lookups still compare the
/// whole key, so a duplicate is exactly a key seen before.
#[derive(Default)]
struct SeenKeys {
    hasher: FastHash,
    keys: HashTable<(u64, Box<str>)>,
}

impl SeenKeys {
    /// Adds `key`; true when it was not there yet.
    fn insert(&mut self, key: String) -> bool {
        let hash = self.hasher.hash_one(key.as_str());
        self.insert_hashed(hash, key)
    }

    fn insert_hashed(&mut self, hash: u64, key: String) -> bool {
        match self.keys.entry(
            hash,
            |(stored_hash, stored)| *stored_hash == hash && **stored == *key,
            |(stored_hash, _)| *stored_hash,
        ) {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                vacant.insert((hash, key.into_boxed_str()));
                true
            }
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The live counters behind [`Stats`].
pub(crate) struct Tracker {
    requests: u64,
    events_received: u64,
    // foldhash, not SipHash: these take several lookups per received event, and SipHash was a
    // tenth of the receiver's time on batches. Its seed is random per process.
    seen: SeenKeys,
    by_type: HashMap<String, u64, FastHash>,
    latest_by_twin: HashMap<String, DateTime<Utc>, FastHash>,
    order_inversions: u64,
    rejected: BTreeMap<u16, u64>,
    dropped_connections: u64,
    latency_us: Histogram<u64>,
    latency_max_us: Option<u64>,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Tracker {
            requests: 0,
            events_received: 0,
            seen: SeenKeys::default(),
            by_type: HashMap::default(),
            latest_by_twin: HashMap::default(),
            order_inversions: 0,
            rejected: BTreeMap::new(),
            dropped_connections: 0,
            // Auto-resizing: it grows to the largest sample, so there is no ceiling to saturate
            // at (a day's bound made every older event count as one day). Even the largest
            // latency chrono can measure (i64::MAX µs) needs under half a megabyte of buckets.
            latency_us: Histogram::new(LATENCY_SIGNIFICANT_FIGURES)
                .expect("3 significant figures are valid"),
            latency_max_us: None,
        }
    }

    /// A request answered 2xx with `arrivals`, received at `now`.
    pub(crate) fn accepted(&mut self, arrivals: Vec<Arrival>, now: DateTime<Utc>) {
        self.requests += 1;
        for arrival in arrivals {
            self.events_received += 1;
            match self.by_type.get_mut(arrival.ty.as_str()) {
                Some(count) => *count += 1,
                None => {
                    self.by_type.insert(arrival.ty, 1);
                }
            }
            if let Some(time) = arrival.time {
                let micros = (now - time).num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
                // `record` grows the histogram to fit (`saturating_record` would clamp to its
                // current top instead); it can only fail past what any resize can hold.
                if self.latency_us.record(micros).is_err() {
                    self.latency_us.saturating_record(micros);
                }
                self.latency_max_us = self.latency_max_us.max(Some(micros));
            }
            let first_delivery = self.seen.insert(arrival.key);
            if let (true, Some(twin), Some(time)) = (first_delivery, arrival.twin, arrival.time) {
                match self.latest_by_twin.get_mut(twin.as_str()) {
                    Some(latest) if time < *latest => self.order_inversions += 1,
                    Some(latest) => *latest = time,
                    None => {
                        self.latest_by_twin.insert(twin, time);
                    }
                }
            }
        }
    }

    /// A request answered with the non-2xx `status`.
    pub(crate) fn rejected(&mut self, status: u16) {
        self.requests += 1;
        *self.rejected.entry(status).or_default() += 1;
    }

    /// A request whose connection was closed without an answer.
    pub(crate) fn dropped(&mut self) {
        self.requests += 1;
        self.dropped_connections += 1;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let unique_events = self.seen.len() as u64;
        let quantile = |q: f64| {
            (!self.latency_us.is_empty()).then(|| self.latency_us.value_at_quantile(q) as f64 / 1e3)
        };
        Stats {
            requests: self.requests,
            events_received: self.events_received,
            unique_events,
            duplicates: self.events_received - unique_events,
            by_type: self
                .by_type
                .iter()
                .map(|(ty, count)| (ty.clone(), *count))
                .collect(),
            order_inversions: self.order_inversions,
            rejected: self.rejected.clone(),
            dropped_connections: self.dropped_connections,
            latency_ms: LatencyMs {
                p50: quantile(0.5),
                p99: quantile(0.99),
                max: self.latency_max_us.map(|us| us as f64 / 1e3),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(key: &str, twin: Option<&str>, time: Option<&str>) -> Arrival {
        Arrival {
            ty: "Microsoft.DigitalTwins.Twin.Update".to_owned(),
            key: key.to_owned(),
            twin: twin.map(str::to_owned),
            time: time.map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:10Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn duplicates_do_not_count_as_inversions() {
        let mut tracker = Tracker::new();
        let t1 = "2024-01-01T00:00:01Z";
        let t2 = "2024-01-01T00:00:02Z";
        tracker.accepted(vec![arrival("a", Some("room1"), Some(t2))], now());
        tracker.accepted(vec![arrival("b", Some("room1"), Some(t1))], now()); // inversion
        tracker.accepted(vec![arrival("a", Some("room1"), Some(t2))], now()); // duplicate
        tracker.accepted(vec![arrival("b", Some("room1"), Some(t1))], now()); // duplicate
        tracker.accepted(vec![arrival("c", Some("room2"), Some(t1))], now()); // other twin
        tracker.accepted(vec![arrival("d", None, None)], now()); // telemetry-like
        tracker.rejected(503);
        tracker.dropped();
        let stats = tracker.snapshot();
        assert_eq!(stats.requests, 8);
        assert_eq!(stats.events_received, 6);
        assert_eq!(stats.unique_events, 4);
        assert_eq!(stats.duplicates, 2);
        assert_eq!(stats.order_inversions, 1);
        assert_eq!(stats.by_type["Microsoft.DigitalTwins.Twin.Update"], 6);
        assert_eq!(stats.rejected[&503], 1);
        assert_eq!(stats.dropped_connections, 1);
        let p50 = stats.latency_ms.p50.unwrap();
        assert!((8_000.0..=9_010.0).contains(&p50), "p50 {p50}");
        assert!(stats.summary().contains("order inversions"));
    }

    /// Issue 13: the percentiles saturated at about 24 h. Latencies of days and years (events
    /// from the docs' 2021 examples) are resolved to 3 significant figures.
    #[test]
    fn percentiles_hold_latencies_of_days_and_years() {
        let mut tracker = Tracker::new();
        let now = now(); // 2024-01-01T00:00:10Z
        let three_days_ago = "2023-12-29T00:00:10Z";
        let in_2021 = "2021-12-09T20:28:52Z"; // the docs' example time
        for i in 0..60 {
            tracker.accepted(
                vec![arrival(&format!("a{i}"), None, Some(three_days_ago))],
                now,
            );
        }
        for i in 0..40 {
            tracker.accepted(vec![arrival(&format!("b{i}"), None, Some(in_2021))], now);
        }
        let stats = tracker.snapshot();
        let close = |found: Option<f64>, expected_ms: f64| {
            let found = found.unwrap();
            (found - expected_ms).abs() <= expected_ms * 1e-3
        };
        let three_days_ms = 3.0 * 86_400_000.0;
        let since_2021_ms = (now
            - DateTime::parse_from_rfc3339(in_2021)
                .unwrap()
                .with_timezone(&Utc))
        .num_milliseconds() as f64;
        assert!(
            close(stats.latency_ms.p50, three_days_ms),
            "{:?}",
            stats.latency_ms
        );
        assert!(
            close(stats.latency_ms.p99, since_2021_ms),
            "{:?}",
            stats.latency_ms
        );
        assert_eq!(stats.latency_ms.max, Some(since_2021_ms));
        // A time so old chrono cannot count its microseconds still counts, at the largest value.
        tracker.accepted(vec![arrival("c", None, Some("0001-01-01T00:00:00Z"))], now);
        assert!(tracker.snapshot().latency_ms.max.unwrap() > since_2021_ms);
        // The largest value chrono can give still fits, in under half a megabyte of counts.
        tracker.latency_us.record(i64::MAX as u64).unwrap();
        let bytes = tracker.latency_us.distinct_values() * std::mem::size_of::<u64>();
        assert!(bytes < 512 * 1024, "{bytes}");
    }

    #[test]
    fn no_samples_means_null_latency() {
        let stats = Tracker::new().snapshot();
        assert_eq!(stats.latency_ms, LatencyMs::default());
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["latencyMs"]["p50"], serde_json::Value::Null);
    }

    #[test]
    fn seen_keys_compare_whole_keys_through_growth() {
        let mut seen = SeenKeys::default();
        for i in 0..50_000 {
            assert!(seen.insert(format!("source\u{1f}id-{i}")), "{i} is new");
        }
        for i in (0..50_000).step_by(7) {
            assert!(!seen.insert(format!("source\u{1f}id-{i}")), "{i} was seen");
        }
        assert_eq!(seen.len(), 50_000);
        // Two keys under one hash stay two keys: equality is the whole key.
        let mut keys = SeenKeys::default();
        assert!(keys.insert_hashed(7, "a".into()));
        assert!(keys.insert_hashed(7, "b".into()));
        assert!(!keys.insert_hashed(7, "a".into()));
        assert_eq!(keys.len(), 2);
    }
}
