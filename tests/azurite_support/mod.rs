//! Test support for the Azurite tests: where Azurite is, SAS signing with Azurite's well-known
//! development key, and the reads a user would do with their own tools (create a container, list
//! it, get a blob) under an account SAS of their own.
//!
//! # Environment
//!
//! - `TWINROUTE_AZURITE_PORT`: the port of a running Azurite Blob service (`scripts/azurite
//!   start` prints it). Unset: the tests fail when `CI` is set (CI must run them) and are skipped
//!   otherwise, with one line on stderr saying so.
//! - `TWINROUTE_AZURITE_BIN`: the `azurite-blob` executable, for the test that stops and restarts
//!   its own instance (default: `node_modules/.bin/azurite-blob` in the crate root).

#![allow(dead_code)] // each test binary uses part of this

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use twinroute::clock::Timestamp;

/// Azurite's account (path-style URLs: the first path segment).
pub const ACCOUNT: &str = "devstoreaccount1";

/// Azurite's well-known development key: published in Microsoft's Azurite docs ("well-known
/// storage account and key") and in Azurite's source (`EMULATOR_ACCOUNT_KEY`). Not a secret.
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The signed version (`sv`) of the SAS tokens made here.
pub const SAS_VERSION: &str = "2024-11-04";

/// An expiry far enough away for any test run (Azurite checks it against its own clock).
pub const FAR_EXPIRY: &str = "2099-01-01T00:00:00Z";

/// An expiry long past.
pub const PAST_EXPIRY: &str = "2020-01-01T00:00:00Z";

/// The `now` given to the startup check: fixed, so the tests read no clock. Any real run's `now`
/// lies between it and [`FAR_EXPIRY`].
pub fn check_time() -> Timestamp {
    Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
}

/// The Azurite port from `TWINROUTE_AZURITE_PORT`, or `None` (skip) when it is unset outside CI.
pub fn azurite_port() -> Option<u16> {
    static SKIP_NOTICE: Once = Once::new();
    match std::env::var("TWINROUTE_AZURITE_PORT") {
        Ok(port) => Some(
            port.trim()
                .parse()
                .unwrap_or_else(|_| panic!("TWINROUTE_AZURITE_PORT={port:?} is not a port number")),
        ),
        Err(_) if in_ci() => panic!(
            "TWINROUTE_AZURITE_PORT is not set, and CI must run the Azurite tests: start Azurite \
             first (eval \"$(scripts/azurite start)\"; scripts/test does this)"
        ),
        Err(_) => {
            SKIP_NOTICE.call_once(|| {
                // Straight to stderr: libtest captures eprintln! of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping the Azurite tests: TWINROUTE_AZURITE_PORT is not set \
                     (eval \"$(scripts/azurite start)\" to run them)"
                );
            });
            None
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// `http://127.0.0.1:<port>/devstoreaccount1`.
pub fn account_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/{ACCOUNT}")
}

/// A container name no other test (or earlier run against the same Azurite) uses.
pub fn unique_container(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

fn sign(string_to_sign: &str, key: &str) -> String {
    let key = BASE64.decode(key).expect("the account key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        query.append_pair(key, value);
    }
    query.finish()
}

/// An account SAS query for the Blob service (`ss=b`), as a storage account owner makes one.
/// String to sign for `sv` ≥ 2020-12-06: account, sp, ss, srt, st, se, sip, spr, sv, ses, "".
pub fn account_sas(permissions: &str, resource_types: &str, expiry: &str) -> String {
    let to_sign = [
        ACCOUNT,
        permissions,
        "b",
        resource_types,
        "",
        expiry,
        "",
        "",
        SAS_VERSION,
        "",
        "",
    ]
    .join("\n");
    query(&[
        ("sv", SAS_VERSION),
        ("ss", "b"),
        ("srt", resource_types),
        ("sp", permissions),
        ("se", expiry),
        ("sig", &sign(&to_sign, ACCOUNT_KEY)),
    ])
}

/// A service SAS query for one container (`sr=c`), signed with `key`. String to sign for `sv` ≥
/// 2020-12-06: sp, st, se, /blob/<account>/<container>, si, sip, spr, sv, sr, snapshot time, ses,
/// rscc, rscd, rsce, rscl, rsct.
pub fn container_sas_with_key(
    container: &str,
    permissions: &str,
    expiry: &str,
    key: &str,
) -> String {
    let resource = format!("/blob/{ACCOUNT}/{container}");
    let to_sign = [
        permissions,
        "",
        expiry,
        &resource,
        "",
        "",
        "",
        SAS_VERSION,
        "c",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    query(&[
        ("sv", SAS_VERSION),
        ("sr", "c"),
        ("sp", permissions),
        ("se", expiry),
        ("sig", &sign(&to_sign, key)),
    ])
}

/// [`container_sas_with_key`] with Azurite's key.
pub fn container_sas(container: &str, permissions: &str, expiry: &str) -> String {
    container_sas_with_key(container, permissions, expiry, ACCOUNT_KEY)
}

/// The container SAS URI a user would give as `deadLetterSecret`.
pub fn container_sas_uri(port: u16, container: &str, permissions: &str, expiry: &str) -> String {
    format!(
        "{}/{container}?{}",
        account_url(port),
        container_sas(container, permissions, expiry)
    )
}

/// Creates `container` (already there is fine), under an account SAS for containers.
pub async fn create_container(client: &reqwest::Client, port: u16, container: &str) {
    let url = format!(
        "{}/{container}?restype=container&{}",
        account_url(port),
        account_sas("c", "c", FAR_EXPIRY)
    );
    let response = client.put(url).send().await.expect("create container");
    let status = response.status().as_u16();
    assert!(
        status == 201 || status == 409,
        "create container {container}: {status} {:?}",
        response.headers().get("x-ms-error-code")
    );
}

/// The names of the blobs in `container` (one page, up to 5,000), under a read/list account SAS.
pub async fn list_blobs(client: &reqwest::Client, port: u16, container: &str) -> Vec<String> {
    let url = format!(
        "{}/{container}?restype=container&comp=list&{}",
        account_url(port),
        account_sas("rl", "co", FAR_EXPIRY)
    );
    let response = client.get(url).send().await.expect("list blobs");
    assert_eq!(response.status().as_u16(), 200, "list blobs in {container}");
    let xml = response.text().await.expect("list blobs body");
    let mut names: Vec<String> = xml
        .split("<Name>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Name>"))
        .map(|(name, _)| unescape_xml(name))
        .collect();
    names.sort();
    names
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A blob as read back.
#[derive(Debug)]
pub struct StoredBlob {
    /// `Content-Type`.
    pub content_type: String,
    /// `x-ms-meta-*` headers, prefix removed.
    pub metadata: BTreeMap<String, String>,
    /// The bytes.
    pub body: Bytes,
}

/// Reads the blob at `path` in `container`, under a read account SAS.
pub async fn get_blob(
    client: &reqwest::Client,
    port: u16,
    container: &str,
    path: &str,
) -> StoredBlob {
    let mut url = url::Url::parse(&format!("{}/{container}", account_url(port))).unwrap();
    url.path_segments_mut().unwrap().extend(path.split('/'));
    url.set_query(Some(&account_sas("r", "o", FAR_EXPIRY)));
    let response = client.get(url).send().await.expect("get blob");
    assert_eq!(response.status().as_u16(), 200, "get blob {path}");
    let headers = response.headers();
    let content_type = headers
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let metadata = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("x-ms-meta-")?;
            Some((key.to_owned(), value.to_str().unwrap().to_owned()))
        })
        .collect();
    let body = response.bytes().await.expect("blob body");
    StoredBlob {
        content_type,
        metadata,
        body,
    }
}

/// An Azurite instance of a test's own, to stop and start again on the same port without
/// disturbing the shared one. Killed and its data removed on drop.
pub struct OwnAzurite {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// How long Azurite may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

impl OwnAzurite {
    /// Starts one on a port the kernel picks.
    pub async fn start() -> OwnAzurite {
        let dir = tempfile::Builder::new()
            .prefix("twinroute-azurite-test.")
            .tempdir()
            .expect("temp dir");
        let mut azurite = OwnAzurite {
            child: None,
            port: 0,
            dir,
        };
        azurite.spawn().await;
        azurite
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (as a crash would) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it as an operator would (SIGTERM: Azurite saves its metadata and exits), and waits
    /// until it is gone. A kill (`stop`) can lose containers Azurite had not saved yet.
    pub fn stop_gracefully(&mut self) {
        if let Some(mut child) = self.child.take() {
            let terminated = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if terminated.is_ok_and(|s| s.success()) {
                for _ in 0..100 {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data directory.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let bin = std::env::var_os("TWINROUTE_AZURITE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/azurite-blob")
            });
        let log_path = self.dir.path().join(format!("azurite-{}.log", self.port));
        let log = std::fs::File::create(&log_path).expect("azurite log");
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .arg("--location")
            .arg(self.dir.path())
            .args(["--silent", "--disableTelemetry"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("azurite log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        self.child = Some(child);

        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            let port = output
                .split("successfully listens on http://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|port| port.parse::<u16>().ok());
            if let Some(port) = port
                && tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            {
                self.port = port;
                return;
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|child| child.try_wait().ok().flatten().is_some());
            assert!(!exited, "Azurite exited before listening:\n{output}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "Azurite did not listen within {START_TIMEOUT:?}:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OwnAzurite {
    fn drop(&mut self) {
        self.stop();
    }
}
