//! The HTTP client's own ceiling: events/s posting already-serialized structured CloudEvents, one
//! per request, with no generator, router, worker or accounting around the client.
//!
//! `hyper` is the client twinroute's Event Grid and Webhook sinks share
//! (`twinroute::sink::http::HttpClient`: hyper-util's pooled client); `reqwest` is the client the
//! dead-letter blob store keeps (`twinroute::engine::http_client`), which the sinks used before,
//! for what reqwest's own layers over hyper-util cost. `scripts/bench-http` prints both next to
//! the full pipeline: the gap between the pipeline and `hyper` is what twinroute costs per
//! event, the gap between `reqwest` and `hyper` what reqwest's layers do.
//!
//! ```sh
//! cargo run --release --example http_client_ceiling -- reqwest|hyper <url> [events] [concurrency] [threads]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use twinroute::bench::{MAX_RATE, SIX_ROUTES, pipeline_config};
use twinroute::clock::WallTimer;
use twinroute::config::{self, Overrides};
use twinroute::event::Serialized;
use twinroute::generator::{DEFAULT_START_TIME, Generator};
use twinroute::sink::http::{HttpClient, Target};

const USAGE: &str =
    "usage: http_client_ceiling reqwest|hyper <url> [events] [concurrency] [threads]";
const STRUCTURED: &str = "application/cloudevents+json; charset=utf-8";

/// One of the two clients, each set up as twinroute sets it up: keep-alive pool, no delay.
#[derive(Clone)]
enum Client {
    Reqwest(reqwest::Client, reqwest::Url),
    Hyper(HttpClient, Arc<Target>),
}

impl Client {
    fn new(kind: &str, url: &str) -> Client {
        match kind {
            "reqwest" => Client::Reqwest(
                twinroute::engine::http_client(),
                url.parse().expect("an http URL"),
            ),
            "hyper" => Client::Hyper(HttpClient::new(), Arc::new(Target::parse(url))),
            _ => panic!("{USAGE}"),
        }
    }

    /// Posts `body`; true when the answer is 2xx and its body was read.
    async fn post(&self, body: Bytes) -> bool {
        match self {
            Client::Reqwest(client, url) => {
                let sent = client
                    .post(url.clone())
                    .header(CONTENT_TYPE, STRUCTURED)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
            // The sinks' own send: it reads the answer's body to its end, as reqwest's does above.
            Client::Hyper(client, url) => {
                let mut headers = HeaderMap::with_capacity(1);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(STRUCTURED));
                client.post(url, headers, body).await.received
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().expect(USAGE);
    let url = args.next().expect(USAGE);
    let mut number = |default: usize| args.next().map_or(default, |n| n.parse().expect(USAGE));
    let events = number(100_000);
    let concurrency = number(64);
    let threads = number(1);

    let config = pipeline_config(events as u64, MAX_RATE, &SIX_ROUTES, &[]);
    let settings =
        config::parse(&config.to_string(), "ceiling", &Overrides::default()).expect("valid");
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        Generator::new(&settings.workload, &settings.host_name, DEFAULT_START_TIME)
            .map(|scheduled| Serialized::new(scheduled.event).json().clone())
            .collect(),
    );

    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    }
    .enable_all()
    .build()
    .expect("a runtime");
    let next = Arc::new(AtomicUsize::new(0));
    let timer = WallTimer::start();
    let delivered = runtime.block_on(async {
        let client = Client::new(&kind, &url);
        let senders: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, bodies, next) =
                    (client.clone(), Arc::clone(&bodies), Arc::clone(&next));
                tokio::spawn(async move {
                    let mut delivered = 0usize;
                    while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                        delivered += usize::from(client.post(body.clone()).await);
                    }
                    delivered
                })
            })
            .collect();
        let mut delivered = 0;
        for sender in senders {
            delivered += sender.await.expect("a sender task");
        }
        delivered
    });
    let seconds = timer.elapsed().as_secs_f64();
    assert_eq!(delivered, events, "every request answered 2xx");
    println!("{:.0}", events as f64 / seconds);
}
