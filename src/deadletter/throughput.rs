//! Dead-letter write throughput: how many blobs per second a store takes at a given concurrency.
//! For `twinroute bench` and `examples/bench.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::Timestamp;
use crate::deadletter::{
    DeadLetterBlob, DeadLetterMetadata, DeadLetterStore, StoreError, blob_path,
};

/// The size of each benchmark blob's body, about a twin-update event's.
pub const BENCH_BODY_BYTES: usize = 1024;

/// Writes `n` distinct ~1 KB dead-letters under `prefix` into `store` from `concurrency` tasks and
/// returns writes per second. `prefix` must be new to the store (e.g. a run id): rewriting
/// existing paths would measure the cheap already-exists answer. Stops at the first error.
pub async fn measure_writes(
    store: Arc<dyn DeadLetterStore>,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> Result<f64, StoreError> {
    let blobs: Arc<Vec<DeadLetterBlob>> = Arc::new((0..n).map(|i| bench_blob(prefix, i)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (store, blobs, next) = (store.clone(), blobs.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(blob) = blobs.get(i) else {
                    return Ok(());
                };
                store.put(blob).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(err) => {
                return Err(StoreError::Permanent(format!(
                    "a writer task failed: {err}"
                )));
            }
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The `i`-th benchmark dead-letter: a CloudEvents-shaped body padded to [`BENCH_BODY_BYTES`].
fn bench_blob(prefix: &str, i: usize) -> DeadLetterBlob {
    let at = Timestamp::from_unix_seconds(1_767_225_600 + i as i64);
    let id = format!("00000000-0000-4000-8000-{i:012}");
    let head = format!(
        "{{\"specversion\":\"1.0\",\"id\":\"{id}\",\"type\":\"Microsoft.DigitalTwins.Twin.Update\",\"source\":\"bench.api.wus2.digitaltwins.azure.net\",\"subject\":\"twin-{i}\",\"time\":\"{at}\",\"datacontenttype\":\"application/json\",\"data\":{{\"pad\":\""
    );
    let tail = "\"}}";
    let pad = BENCH_BODY_BYTES.saturating_sub(head.len() + tail.len());
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    DeadLetterBlob {
        path: blob_path(prefix, at, &id),
        body: Bytes::from(body),
        metadata: DeadLetterMetadata {
            reason: "MaxDeliveryAttemptsExceeded",
            delivery_attempts: 30,
            last_delivery_outcome: "Busy",
            last_http_status_code: Some(503),
            publish_time: at,
            last_delivery_attempt_time: Some(at),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_blobs_are_distinct_and_about_one_kilobyte() {
        let (a, b) = (bench_blob("run", 0), bench_blob("run", 1));
        assert_ne!(a.path, b.path);
        assert_eq!(a.body.len(), BENCH_BODY_BYTES);
        assert!(a.path.starts_with("run/2026/01/01/00/"), "{}", a.path);
    }
}
