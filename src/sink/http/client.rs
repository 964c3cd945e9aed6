//! The one HTTP client every Event Grid and Webhook sink shares: hyper-util's pooled client,
//! built once per run and cloned into each sink (a clone shares the pool).
//!
//! # Why hyper's own client, not reqwest
//! Per request, reqwest's own layers cost more than twinroute's whole pipeline (its redirect
//! policy alone parses the URL again on every request and cannot be turned off): one event per
//! request reached ~0.6× of `wrk` through it. A sink needs none of those layers: it posts to one
//! URL parsed once, follows no redirect (a 3xx is an answer the failure-code table classifies,
//! as Event Grid does), and the worker owns timeouts. What reqwest set up around hyper is set up
//! here the same way:
//! - TLS is rustls through `hyper-rustls`, with reqwest's crypto provider (aws-lc-rs, unless the
//!   process installed another) and its certificate verifier, `rustls-platform-verifier` (on
//!   Linux: webpki with the system's roots);
//! - ALPN offers `h2` then `http/1.1`: HTTP/2 where the server offers it, HTTP/1.1 with
//!   keep-alive otherwise (plain `http://` is HTTP/1.1, as with reqwest);
//! - the pool keeps up to [`MAX_IDLE_PER_HOST`] idle connections per host for 90 s, with
//!   `TCP_NODELAY`;
//! - credentials in the URL (`https://user:pass@host/…`) become a Basic `Authorization` header,
//!   percent-decoded, and leave the URL.
//!
//! Nothing of a failed request is kept but its class (connection error): hyper's errors can
//! name the host, and the URL may carry a secret in its query.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::delivery::classify::AttemptResult;
use crate::sink::Answer;

/// Idle keep-alive connections the pool keeps per host: enough for any endpoint's
/// `concurrency` up to it to find a warm connection.
pub const MAX_IDLE_PER_HOST: usize = 256;
/// How long an idle pooled connection is kept (reqwest's and hyper-util's default).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The shared client: cheap to clone, every clone uses the same connection pool.
#[derive(Clone)]
pub struct HttpClient {
    /// In an `Arc`: an attempt clones one pointer, not the client's dozen shared parts.
    inner: Arc<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with its own pool. Needs no runtime to build; its connections run as tasks on
    /// the runtime that sends the first request over them.
    pub fn new() -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // The TLS connector wraps it and takes https:// itself.
        http.enforce_http(false);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(
                tls()
                    .https_or_http()
                    .enable_all_versions()
                    .wrap_connector(http),
            );
        HttpClient {
            inner: Arc::new(client),
        }
    }

    /// Posts `body` with `headers` to `target` and turns what comes back into an [`Answer`].
    pub async fn post(&self, target: &Target, mut headers: HeaderMap, body: Bytes) -> Answer {
        if let Some(authorization) = &target.authorization {
            // A header the endpoint's settings name wins over the URL's credentials.
            headers
                .entry(AUTHORIZATION)
                .or_insert_with(|| authorization.clone());
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = target.uri.clone();
        *request.headers_mut() = headers;
        match self.inner.request(request).await {
            Ok(response) => {
                let retry_after = retry_after(response.headers());
                let status = response.status().as_u16();
                // Read the body to its end so the connection goes back to the pool; a body
                // that breaks off does not change the answer the status gave.
                let mut body = response.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                Answer::observed(AttemptResult::Status {
                    status,
                    retry_after,
                })
            }
            Err(_) => Answer::observed(AttemptResult::ConnectionError),
        }
    }
}

/// The TLS half of the connector: rustls with reqwest's crypto provider and verifier.
fn tls() -> HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    match HttpsConnectorBuilder::new().with_provider_and_platform_verifier(Arc::clone(&provider)) {
        Ok(builder) => builder,
        Err(error) => {
            // No system roots (a bare container): plain http:// still works, and every https://
            // attempt fails its handshake and is a connection error, rather than the run
            // refusing to start for endpoints that may not need TLS.
            tracing::warn!(%error, "no TLS certificate verifier; https endpoints will fail");
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .or_else(|_| {
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::aws_lc_rs::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                })
                .expect("aws-lc-rs supports TLS 1.2 and 1.3");
            let config = builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(config)
        }
    }
}

/// An endpoint's URL, parsed once: the URI requests go to and the Basic credentials its
/// user-info carried.
#[derive(Clone)]
pub struct Target {
    uri: Uri,
    authorization: Option<HeaderValue>,
}

impl Target {
    /// Parses `url` as a browser would (IDNA, percent-encoding, as reqwest did). Configuration
    /// has checked the scheme; an unparsable URL becomes one that fails every attempt with a
    /// connection error.
    pub fn parse(url: &str) -> Target {
        Target::try_parse(url).unwrap_or_else(|| Target {
            uri: Uri::from_static("http://invalid.invalid/"),
            authorization: None,
        })
    }

    fn try_parse(url: &str) -> Option<Target> {
        let mut url = url::Url::parse(url).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let authorization = (!url.username().is_empty() || url.password().is_some())
            .then(|| basic_auth(url.username(), url.password()));
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
        url.set_fragment(None);
        let uri = Uri::try_from(url.as_str()).ok()?;
        Some(Target { uri, authorization })
    }
}

/// The URI without credentials (they never reach a log: the URL's query may hold secrets too,
/// so this is for tests and local checks only).
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uri, f)
    }
}

/// `Basic base64(user:password)` from a URL's percent-encoded user-info, marked sensitive.
fn basic_auth(username: &str, password: Option<&str>) -> HeaderValue {
    use base64::Engine;
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = format!(
        "{}:{}",
        decode(username),
        password.map(decode).unwrap_or_default()
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// `Retry-After` in seconds (the form Event Grid and Azure services send).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A loopback HTTP/1.1 server answering every request with `answers[i]` (the last one again
    /// when they run out). It sends each request's head (lower-cased) and the connection's
    /// number on `seen`.
    async fn server(
        answers: Vec<&'static str>,
    ) -> (String, mpsc::UnboundedReceiver<(usize, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen, heads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for connection in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, answers, answered) = (seen.clone(), answers.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            head.push_str(&line.to_ascii_lowercase());
                        }
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |n| n.trim().parse().unwrap());
                        let mut body = vec![0; length];
                        stream.read_exact(&mut body).await.unwrap();
                        let _ = seen.send((connection, head));
                        let n = answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let answer = answers[n.min(answers.len() - 1)];
                        stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (url, heads)
    }

    async fn post(client: &HttpClient, url: &str, headers: HeaderMap) -> Answer {
        tokio::time::timeout(
            Duration::from_secs(10),
            client.post(&Target::parse(url), headers, Bytes::from_static(b"[]")),
        )
        .await
        .expect("an answer within 10 s")
    }

    #[tokio::test]
    async fn answers_are_statuses_with_retry_after_and_connections_are_reused() {
        let (url, mut heads) = server(vec![
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 5\r\n\r\nbusy!",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ])
        .await;
        let client = HttpClient::new();
        let answer = post(
            &client,
            &format!("{url}/api/events?code=c"),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(
            answer.result,
            AttemptResult::Status {
                status: 503,
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(!answer.received);
        let answer = post(
            &client,
            &format!("{url}/api/events?code=c"),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(answer.result, AttemptResult::status(200));
        assert!(answer.received);
        let (first, head) = heads.recv().await.unwrap();
        assert!(
            head.starts_with("post /api/events?code=c http/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("content-length: 2\r\n"), "{head}");
        let (second, _) = heads.recv().await.unwrap();
        assert_eq!(
            first, second,
            "the body was read, so the connection went back to the pool"
        );
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_followed() {
        let (url, mut heads) = server(vec![
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let answer = post(&HttpClient::new(), &format!("{url}/hook"), HeaderMap::new()).await;
        assert_eq!(answer.result, AttemptResult::status(307));
        assert_eq!(
            heads.recv().await.unwrap().1.lines().next(),
            Some("post /hook http/1.1")
        );
    }

    #[tokio::test]
    async fn url_credentials_are_sent_as_basic_authorization_unless_a_header_says_otherwise() {
        let (url, mut heads) = server(vec!["HTTP/1.1 204 No Content\r\n\r\n"]).await;
        let with_credentials = url.replace("http://", "http://user:pa%20ss@");
        let client = HttpClient::new();
        post(&client, &with_credentials, HeaderMap::new()).await;
        let (_, head) = heads.recv().await.unwrap();
        assert!(
            head.contains("authorization: basic dxnlcjpwysbzcw==\r\n"),
            "{head}"
        );
        assert!(
            !head.contains("user"),
            "the credentials left the URL: {head}"
        );
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer configured"));
        post(&client, &with_credentials, headers).await;
        let (_, head) = heads.recv().await.unwrap();
        assert!(
            head.contains("authorization: bearer configured\r\n"),
            "{head}"
        );
        assert_eq!(head.matches("authorization").count(), 1, "{head}");
    }

    #[tokio::test]
    async fn no_listener_is_a_connection_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let answer = post(
            &HttpClient::new(),
            &format!("http://127.0.0.1:{port}/"),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(answer.result, AttemptResult::ConnectionError);
        assert!(!answer.received);
    }

    #[test]
    fn a_url_is_parsed_once_as_a_browser_would() {
        let target = Target::parse("https://Grid.WestUS2-1.eventgrid.azure.net/api/events?a=b c");
        assert_eq!(
            target.to_string(),
            "https://grid.westus2-1.eventgrid.azure.net/api/events?a=b%20c"
        );
        assert!(target.authorization.is_none());
        let idna = Target::parse("http://bücher.example/hook");
        assert_eq!(idna.to_string(), "http://xn--bcher-kva.example/hook");
        for broken in ["not a url", "ftp://host/x", "http://"] {
            assert_eq!(
                Target::parse(broken).to_string(),
                "http://invalid.invalid/",
                "{broken}"
            );
        }
    }

    #[test]
    fn credentials_in_the_url_become_basic_authorization_and_leave_the_url() {
        let target = Target::parse("http://us%20er:p%40ss@127.0.0.1:9/hook?code=c");
        assert_eq!(target.to_string(), "http://127.0.0.1:9/hook?code=c");
        let authorization = target.authorization.unwrap();
        assert!(authorization.is_sensitive());
        // base64("us er:p@ss")
        assert_eq!(authorization, "Basic dXMgZXI6cEBzcw==");
        let user_only = Target::parse("http://user@127.0.0.1:9/")
            .authorization
            .unwrap();
        assert_eq!(user_only, "Basic dXNlcjo="); // base64("user:")
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 2.5 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(2500)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&headers), None);
    }
}
