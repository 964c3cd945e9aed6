//! The HTTP client's own ceiling: events/s posting already-serialized structured CloudEvents, one
//! per request, with no generator, router, worker or accounting around the client.
//!
//! `reqwest` is twinroute's shared client (`twinroute::engine::http_client`); `hyper` is
//! hyper-util's pooled client, which reqwest is built on, for what reqwest's own layers cost.
//! `scripts/bench-http` prints both next to the full pipeline: the gap between the pipeline and
//! `reqwest` is what twinroute costs per event, the gap between `reqwest` and `hyper` what the
//! client library does.
//!
//! ```sh
//! cargo run --release --example http_client_ceiling -- reqwest|hyper <url> [events] [concurrency] [threads]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use twinroute::bench::{MAX_RATE, SIX_ROUTES, pipeline_config};
use twinroute::clock::WallTimer;
use twinroute::config::{self, Overrides};
use twinroute::event::Serialized;
use twinroute::generator::{DEFAULT_START_TIME, Generator};

const USAGE: &str =
    "usage: http_client_ceiling reqwest|hyper <url> [events] [concurrency] [threads]";
const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// One of the two clients, each set up as twinroute sets up reqwest: keep-alive pool, no delay.
#[derive(Clone)]
enum Client {
    Reqwest(reqwest::Client, reqwest::Url),
    Hyper(Box<HyperClient<HttpConnector, Full<Bytes>>>, hyper::Uri),
}

impl Client {
    fn new(kind: &str, url: &str) -> Client {
        match kind {
            "reqwest" => Client::Reqwest(
                twinroute::engine::http_client(),
                url.parse().expect("an http URL"),
            ),
            "hyper" => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                let client = HyperClient::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(256)
                    .build(connector);
                Client::Hyper(Box::new(client), url.parse().expect("an http URL"))
            }
            _ => panic!("{USAGE}"),
        }
    }

    /// Posts `body`; true when the answer is 2xx and its body was read.
    async fn post(&self, body: Bytes) -> bool {
        match self {
            Client::Reqwest(client, url) => {
                let sent = client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
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
            Client::Hyper(client, url) => {
                let request = hyper::Request::post(url.clone())
                    .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
                    .body(Full::new(body))
                    .expect("a valid request");
                match client.request(request).await {
                    Ok(response) => {
                        response.status().is_success()
                            && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                }
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
