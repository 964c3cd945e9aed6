//! Dead-letter writes per second into Azurite at concurrency 1, 16 and 64 (~1 KB blobs).
//!
//! ```sh
//! eval "$(scripts/azurite start)"
//! cargo run --release --example deadletter_bench [-- <writes per run, default 2000> <concurrency>...]
//! scripts/azurite stop
//! ```

#[path = "../tests/azurite_support/mod.rs"]
mod support;

use std::sync::Arc;

use twinroute::bench::measure_writes;
use twinroute::deadletter::DeadLetterStore;
use twinroute::deadletter::blob::BlobStore;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(port) = support::azurite_port() else {
        std::process::exit(2);
    };
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|n| n.parse().expect("writes per run: a number"))
        .unwrap_or(2000);
    let mut concurrencies: Vec<usize> = args
        .map(|c| c.parse().expect("concurrency: a number"))
        .collect();
    if concurrencies.is_empty() {
        concurrencies = vec![1, 16, 64];
    }

    let client = reqwest::Client::new();
    println!("dead-letter writes into Azurite on port {port}, {n} blobs of ~1 KB per run");
    for concurrency in concurrencies {
        let container = support::unique_container(&format!("bench-c{concurrency}"));
        support::create_container(&client, port, &container).await;
        let uri = support::container_sas_uri(port, &container, "cw", support::FAR_EXPIRY);
        let store: Arc<dyn DeadLetterStore> = Arc::new(
            BlobStore::from_sas_uri(&uri, client.clone(), support::check_time())
                .expect("container SAS"),
        );
        match measure_writes(store, "bench", n, concurrency).await {
            Ok(rate) => println!("concurrency {concurrency:>3}: {rate:>6.0} writes/s"),
            Err(err) => println!("concurrency {concurrency:>3}: failed: {err}"),
        }
    }
}
