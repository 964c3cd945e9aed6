//! Events per second through each AMQP sink to the in-repo test broker over loopback.
//!
//! `cargo run --release --example throughput -- [events] [batch] [in-flight] [twins]`
//! (defaults: 20000 events, batches of 100, 4 attempts in flight, 1000 twins).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use twinroute::config::{AuthenticationType, Connection};
use twinroute::delivery::classify::AttemptResult;
use twinroute::delivery::worker::Delivery;
use twinroute::event::Serialized;
use twinroute::generator::{
    DEFAULT_MIX, DEFAULT_START_TIME, Generator, RateShape, WorkloadSettings,
};
use twinroute::secret::Secret;
use twinroute::sink::{Attempt, Sink};
use twinroute_amqp::broker::{Broker, BrokerSettings};
use twinroute_amqp::{EventHubSink, ServiceBusSink};

// Current-thread: see the Event Hubs note in the crate docs (multi-thread stalls).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let arg = |index: usize, default: u64| {
        std::env::args()
            .nth(index)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (count, batch, in_flight, twins) = (arg(1, 20_000), arg(2, 100), arg(3, 4), arg(4, 1000));
    let settings = WorkloadSettings {
        seed: 1,
        twins: twins as u32,
        mix: DEFAULT_MIX,
        rate: RateShape::Constant {
            events_per_second: 1000.0,
        },
        count: Some(count),
        duration: None,
        start_time: None,
    };
    let events: Vec<Delivery> = Generator::new(
        &settings,
        "contoso.api.wus2.digitaltwins.azure.net",
        DEFAULT_START_TIME,
    )
    .map(|s| Delivery::new(Arc::new(Serialized::new(s.event)), 0, Duration::ZERO))
    .collect();
    println!("{count} events, batches of {batch}, {in_flight} attempts in flight, {twins} twins");
    for kind in ["EventHub", "ServiceBus"] {
        let broker = Broker::start(BrokerSettings::default()).await?;
        let connection = Connection::Amqp {
            primary: Some(Secret::new(broker.connection_string("send", "k", None))),
            secondary: None,
            endpoint_uri: None,
            entity_path: Some("adt-events".to_owned()),
        };
        let mut sink: Box<dyn Sink> = match kind {
            "EventHub" => Box::new(EventHubSink::from_connection(
                AuthenticationType::KeyBased,
                &connection,
                None,
                batch as usize,
            )?),
            _ => Box::new(ServiceBusSink::from_connection(
                AuthenticationType::KeyBased,
                &connection,
                None,
                batch as usize,
            )?),
        };
        // Connect before timing.
        run(sink.as_mut(), &events[..1]).await;
        let started = tokio::time::Instant::now();
        let mut running = JoinSet::new();
        for chunk in events[1..].chunks(batch as usize) {
            if running.len() >= in_flight as usize {
                running.join_next().await;
            }
            if let Attempt::Pending(future) = sink.attempt(chunk, Duration::ZERO) {
                running.spawn(async move {
                    let answer = future.await;
                    assert_eq!(answer.result, AttemptResult::status(200));
                });
            }
        }
        while running.join_next().await.is_some() {}
        let elapsed = started.elapsed();
        let received = broker
            .wait_for(events.len(), Duration::from_secs(10))
            .await
            .len();
        println!(
            "{kind:>10}: {:>8.0} events/s ({} events in {:.2} s, {received} received)",
            (events.len() - 1) as f64 / elapsed.as_secs_f64(),
            events.len() - 1,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

async fn run(sink: &mut dyn Sink, batch: &[Delivery]) {
    if let Attempt::Pending(future) = sink.attempt(batch, Duration::ZERO) {
        future.await;
    }
}
