//! The HTTP client's own ceiling: events/s posting already-serialized structured CloudEvents, one
//! per request, with no generator, router, worker or accounting around the client.
//!
//! - `hyper`: the client twinroute's Event Grid and Webhook sinks share
//!   (`twinroute::sink::http::HttpClient`, hyper-util's pooled client), through the sinks' own
//!   send;
//! - `reqwest`: the client the dead-letter blob store keeps (`twinroute::engine::http_client`),
//!   which the sinks used before: what reqwest's own layers over hyper-util cost;
//! - `conn`: hyper's connection-level client, one connection per task and no pool (as `oha`
//!   uses hyper): what hyper-util's pool and checkout cost.
//!
//! `scripts/bench-http` prints them next to the full pipeline: the gap between the pipeline and
//! `hyper` is what twinroute costs per event.
//!
//! ```sh
//! cargo run --release --example http_client_ceiling -- hyper|reqwest|conn <url> [events] [concurrency] [threads]
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use twinroute::bench::{MAX_RATE, SIX_ROUTES, pipeline_config};
use twinroute::clock::WallTimer;
use twinroute::config::{self, Overrides};
use twinroute::event::Serialized;
use twinroute::generator::{DEFAULT_START_TIME, Generator};
use twinroute::sink::http::{HttpClient, Target};

const USAGE: &str =
    "usage: http_client_ceiling hyper|reqwest|conn <url> [events] [concurrency] [threads]";
const STRUCTURED: &str = "application/cloudevents+json; charset=utf-8";

/// One of the clients, each set up as twinroute sets it up: keep-alive, no delay.
#[derive(Clone)]
enum Client {
    Reqwest(reqwest::Client, reqwest::Url),
    Hyper(HttpClient, Arc<Target>),
    Conn(SocketAddr, hyper::Uri),
}

/// What one sending task posts through: a shared client, or a connection of its own.
enum Sender {
    Shared(Client),
    Connection {
        sender: SendRequest<Full<Bytes>>,
        path: hyper::Uri,
        host: HeaderValue,
    },
}

impl Client {
    fn new(kind: &str, url: &str) -> Client {
        match kind {
            "reqwest" => Client::Reqwest(
                twinroute::engine::http_client(),
                url.parse().expect("an http URL"),
            ),
            "hyper" => Client::Hyper(HttpClient::new(), Arc::new(Target::parse(url))),
            "conn" => {
                let uri: hyper::Uri = url.parse().expect("an http URL");
                let authority = uri.authority().expect("a host").as_str();
                Client::Conn(authority.parse().expect("an ip:port"), uri)
            }
            _ => panic!("{USAGE}"),
        }
    }

    /// A sender for one task: `conn` opens the task's own connection.
    async fn sender(&self) -> Sender {
        let Client::Conn(addr, uri) = self else {
            return Sender::Shared(self.clone());
        };
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("a connection");
        stream.set_nodelay(true).expect("no delay");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("a handshake");
        tokio::spawn(connection);
        Sender::Connection {
            sender,
            path: uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .expect("a path"),
            host: HeaderValue::from_str(uri.authority().expect("a host").as_str()).expect("a host"),
        }
    }
}

impl Sender {
    /// Posts `body`; true when the answer is 2xx and its body was read.
    async fn post(&mut self, body: Bytes) -> bool {
        match self {
            Sender::Shared(Client::Reqwest(client, url)) => {
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
            // The sinks' own send: it reads the answer's body to its end, as the others do.
            Sender::Shared(Client::Hyper(client, url)) => {
                let mut headers = HeaderMap::with_capacity(1);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(STRUCTURED));
                client.post(url, headers, body).await.received
            }
            Sender::Shared(Client::Conn(..)) => unreachable!("Client::sender opens a connection"),
            Sender::Connection { sender, path, host } => {
                if sender.ready().await.is_err() {
                    return false;
                }
                let mut request = hyper::Request::new(Full::new(body));
                *request.method_mut() = hyper::Method::POST;
                *request.uri_mut() = path.clone();
                let headers = request.headers_mut();
                headers.insert(HOST, host.clone());
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(STRUCTURED));
                match sender.send_request(request).await {
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
                    let mut sender = client.sender().await;
                    let mut delivered = 0usize;
                    while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                        delivered += usize::from(sender.post(body.clone()).await);
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
