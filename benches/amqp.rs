//! Events per second through the Event Hubs and Service Bus sinks to the in-repo AMQP 1.0 test
//! broker over loopback (issue 7's figure): one event per attempt (`maxEventsPerBatch` 1, the
//! default) and batches of 100, with 8 attempts in flight, as the engine's worker would send
//! them. The broker decodes and records every message, on its own thread: the figure is
//! twinroute's sender and the broker together on this machine's cores.
//!
//! `cargo bench --bench amqp` (criterion prints `thrpt` in events/s).

#[path = "../tests/amqp_support/mod.rs"]
mod amqp_support;

use std::sync::Arc;
use std::time::Duration;

use amqp_support::broker::{Broker, BrokerSettings};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::task::JoinSet;
use tokio::time::Instant;
use twinroute::config::{AuthenticationType, Connection};
use twinroute::delivery::classify::AttemptResult;
use twinroute::delivery::routed::Delivery;
use twinroute::secret::Secret;
use twinroute::sink::amqp::{EventHubSink, ServiceBusSink};
use twinroute::sink::{Attempt, Sink};

/// Attempts in flight at once.
const IN_FLIGHT: usize = 8;

fn sink(kind: &str, broker: &Broker, batch: usize) -> Box<dyn Sink> {
    let connection = Connection::Amqp {
        primary: Some(Secret::new(broker.connection_string("send", "k", None))),
        secondary: None,
        endpoint_uri: None,
        entity_path: Some("adt-events".to_owned()),
    };
    let key = AuthenticationType::KeyBased;
    match kind {
        "eventhubs" => Box::new(
            EventHubSink::from_connection(key, &connection, None, batch, IN_FLIGHT).unwrap(),
        ),
        _ => Box::new(
            ServiceBusSink::from_connection(key, &connection, None, batch, IN_FLIGHT).unwrap(),
        ),
    }
}

/// Sends `attempts` attempts of `batch` events, at most [`IN_FLIGHT`] at once; every attempt
/// must be accepted.
async fn send(sink: &mut dyn Sink, deliveries: &[Delivery], batch: usize, attempts: u64) {
    let mut running = JoinSet::new();
    for chunk in deliveries.chunks(batch).cycle().take(attempts as usize) {
        if running.len() >= IN_FLIGHT {
            running.join_next().await;
        }
        let Attempt::Pending(future) = sink.attempt(chunk, Duration::ZERO) else {
            panic!("a real sink answers later");
        };
        running.spawn(async move {
            let answer = future.await;
            assert_eq!(
                answer.result,
                AttemptResult::status(200),
                "an attempt failed"
            );
        });
    }
    while let Some(joined) = running.join_next().await {
        joined.expect("the attempt task ran");
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let events = amqp_support::events(1, 20_000, 1000);
    let deliveries = amqp_support::deliveries(&events);
    let mut group = c.benchmark_group("amqp");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for kind in ["eventhubs", "servicebus"] {
        for batch in [1usize, 100] {
            let broker = Arc::new(
                runtime
                    .block_on(Broker::start(BrokerSettings::default()))
                    .unwrap(),
            );
            let mut sink = sink(kind, &broker, batch);
            // Connect (and authorize) before timing.
            runtime.block_on(send(sink.as_mut(), &deliveries, 1, 1));
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{kind}/batch-{batch}"), |b| {
                b.iter_custom(|attempts| {
                    broker.clear();
                    runtime.block_on(async {
                        let started = Instant::now();
                        send(sink.as_mut(), &deliveries, batch, attempts).await;
                        started.elapsed()
                    })
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
