//! The Qpid Proton test peer (`tests/amqp_peer/peer.py`), run as a child process: an AMQP 1.0
//! implementation independent of the client's, with the in-repo broker's surface plus a
//! put-token status switch, per-transfer latency and cut points.
//!
//! The peer runs on the Python of the virtual environment `scripts/test` creates (`.venv`, with
//! `tests/amqp_peer/requirements.txt` installed); `TWINROUTE_PYTHON` names another. Without it a
//! test fails, saying to run `scripts/test`. The peer listens on 127.0.0.1, port 0, and prints
//! `{"port": P}`; this side sends one JSON command per line on its standard input and reads one
//! answer per line. It is killed by PID when the [`ProtonPeer`] is dropped, and exits by itself
//! when its standard input closes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::broker::{Activity, BrokerSettings, Fault, ReceivedMessage};
use super::peers::{BoxFuture, TestPeer};

/// How long the peer may take to start (Python, Proton's import, binding).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one command may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the peer's standard error kept for error messages.
const STDERR_LINES: usize = 40;

/// Where the peer may cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutAt {
    /// A `$cbs` put-token request arrives (before it is answered).
    PutToken,
    /// A link to an entity is attached.
    Attach,
    /// An entity transfer arrives (before it is recorded or settled).
    Transfer,
}

impl CutAt {
    fn as_str(self) -> &'static str {
        match self {
            CutAt::PutToken => "put-token",
            CutAt::Attach => "attach",
            CutAt::Transfer => "transfer",
        }
    }
}

struct Control {
    stdin: ChildStdin,
    answers: Receiver<String>,
}

/// A running Proton peer.
pub struct ProtonPeer {
    child: Mutex<Child>,
    control: Mutex<Control>,
    addr: Mutex<SocketAddr>,
    /// The peer's records fetched so far (each fetch asks only for the ones after these).
    records: Mutex<Vec<Value>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// The Python that runs the peer: `TWINROUTE_PYTHON`, or the repository's `.venv`.
pub fn python() -> PathBuf {
    std::env::var_os("TWINROUTE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python")))
}

/// The peer's script.
pub fn peer_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/amqp_peer/peer.py"
    ))
}

const SETUP_HINT: &str = "the Proton test peer needs python-qpid-proton in a virtual environment: \
    run `scripts/test` (it creates .venv and installs tests/amqp_peer/requirements.txt), or set \
    TWINROUTE_PYTHON to a Python that has it";

impl ProtonPeer {
    /// Starts the peer with `settings` (partitions, maximum message size, SAS keys).
    pub async fn start(settings: BrokerSettings) -> Result<ProtonPeer, String> {
        ProtonPeer::start_with(python(), settings).await
    }

    /// Starts the peer on the Python at `python`.
    pub async fn start_with(
        python: PathBuf,
        settings: BrokerSettings,
    ) -> Result<ProtonPeer, String> {
        tokio::task::spawn_blocking(move || ProtonPeer::start_blocking(python, &settings))
            .await
            .map_err(|e| e.to_string())?
    }

    fn start_blocking(python: PathBuf, settings: &BrokerSettings) -> Result<ProtonPeer, String> {
        if !python.exists() {
            return Err(format!("{} does not exist: {SETUP_HINT}", python.display()));
        }
        let mut command = Command::new(&python);
        command
            .arg(peer_script())
            .arg("--partitions")
            .arg(settings.partitions.to_string())
            .arg("--max-message-size")
            .arg(settings.max_message_size.to_string());
        for (name, key) in &settings.keys {
            command.arg("--keys").arg(format!("{name}:{key}"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}; {SETUP_HINT}", python.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (lines, answers) = channel();
        std::thread::Builder::new()
            .name("proton-peer-stdout".to_owned())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        {
            let stderr = stderr.clone();
            std::thread::Builder::new()
                .name("proton-peer-stderr".to_owned())
                .spawn(move || {
                    for line in BufReader::new(stderr_pipe).lines() {
                        let Ok(line) = line else { break };
                        let mut kept = stderr.lock().unwrap_or_else(|e| e.into_inner());
                        if kept.len() == STDERR_LINES {
                            kept.pop_front();
                        }
                        kept.push_back(line);
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        let peer = ProtonPeer {
            child: Mutex::new(child),
            control: Mutex::new(Control { stdin, answers }),
            addr: Mutex::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            records: Mutex::new(Vec::new()),
            stderr,
        };
        let first = peer.read_answer(START_TIMEOUT).map_err(|e| {
            let hint = if e.contains("No module named") {
                SETUP_HINT
            } else {
                ""
            };
            format!("the Proton peer did not start: {e} {hint}")
        })?;
        let port = first["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("the Proton peer's first line is not a port: {first}"))?;
        *peer.addr.lock().unwrap_or_else(|e| e.into_inner()) =
            SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Ok(peer)
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id()
    }

    /// The last lines the peer wrote to its standard error.
    pub fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn read_answer(&self, within: Duration) -> Result<Value, String> {
        let control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        self.answer_from(&control, within)
    }

    fn answer_from(&self, control: &Control, within: Duration) -> Result<Value, String> {
        match control.answers.recv_timeout(within) {
            Ok(line) => serde_json::from_str(&line)
                .map_err(|e| format!("the Proton peer answered {line:?}: {e}")),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "no answer from the Proton peer within {within:?}; its stderr:\n{}",
                self.stderr_tail()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                // Give the stderr reader a moment to take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                Err(format!(
                    "the Proton peer exited; its stderr:\n{}",
                    self.stderr_tail()
                ))
            }
        }
    }

    /// Sends one command and returns its answer; panics (failing the test) if the peer refuses
    /// it, dies, or does not answer within [`COMMAND_TIMEOUT`].
    pub fn command(&self, command: Value) -> Value {
        let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let line = format!("{command}\n");
        if let Err(e) = control
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| control.stdin.flush())
        {
            panic!(
                "cannot send {command} to the Proton peer: {e}; its stderr:\n{}",
                self.stderr_tail()
            );
        }
        let answer = self
            .answer_from(&control, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        assert_eq!(
            answer["ok"],
            json!(true),
            "the Proton peer refused {command}: {answer}"
        );
        answer
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        *self.addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Settles each entity transfer `latency` after it arrives (without holding up others).
    pub fn set_latency(&self, latency: Duration) {
        self.command(json!({ "cmd": "latency", "ms": latency.as_millis() as u64 }));
    }

    /// Cuts the connection the next `times` times `at` is reached (0: every time).
    pub fn cut_at(&self, at: CutAt, times: u32) {
        self.command(json!({ "cmd": "cut", "at": at.as_str(), "times": times }));
    }

    /// Switches every cut point off.
    pub fn clear_cuts(&self) {
        self.command(json!({ "cmd": "cut", "at": null }));
    }

    /// Every switch back to its default (fault none, put-token 202, no latency, no cut).
    pub fn reset(&self) {
        self.command(json!({ "cmd": "reset" }));
    }

    /// The peer's counters: `tokens_put`, `tokens_refused`, `transfers`, `reads`,
    /// `connections`, `open_connections`, `sessions`, `bare_sessions`, `links`, `sasl`
    /// (mechanism → count), `received`, `held`.
    pub fn counters_json(&self) -> Value {
        self.command(json!({ "cmd": "counters" }))["counters"].clone()
    }

    /// Every record so far as the peer wrote it (message-format, all annotations, properties
    /// and application properties, the batch envelope's annotations).
    pub fn records(&self) -> Vec<Value> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let answer = self.command(json!({ "cmd": "received", "from": records.len() }));
        if let Some(new) = answer["received"].as_array() {
            records.extend(new.iter().cloned());
        }
        records.clone()
    }
}

/// A record → the in-repo broker's shape.
fn received_message(record: &Value) -> ReceivedMessage {
    let text = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let properties = &record["properties"];
    ReceivedMessage {
        address: record["address"].as_str().unwrap_or_default().to_owned(),
        message_format: record["message_format"]
            .as_u64()
            .and_then(|f| u32::try_from(f).ok())
            .unwrap_or(0),
        batched: record["batched"].as_bool().unwrap_or(false),
        message_id: text(&properties["message_id"]),
        content_type: text(&properties["content_type"]),
        partition_key: record["message_annotations"]["x-opt-partition-key"]
            .as_str()
            .map(str::to_owned),
        application_properties: record["application_properties"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        body: BASE64
            .decode(record["body_b64"].as_str().unwrap_or_default())
            .expect("the peer writes base64 bodies"),
    }
}

fn fault_name(fault: Fault) -> &'static str {
    match fault {
        Fault::None => "none",
        Fault::ServerBusy => "server-busy",
        Fault::ServiceTimeout => "timeout",
        Fault::Unauthorized => "unauthorized",
        Fault::NotFound => "not-found",
        Fault::MessageSizeExceeded => "message-size-exceeded",
        Fault::CloseConnection => "close-connection",
        Fault::Hold => "hold",
        Fault::Released => "released",
    }
}

impl TestPeer for ProtonPeer {
    fn name(&self) -> &'static str {
        "Proton peer"
    }
    fn addr(&self) -> SocketAddr {
        ProtonPeer::addr(self)
    }
    fn set_fault(&self, fault: Fault) {
        self.command(json!({ "cmd": "fault", "fault": fault_name(fault) }));
    }
    fn set_put_token_status(&self, status: u16) {
        self.command(json!({ "cmd": "put-token-status", "status": status }));
    }
    fn received(&self) -> Vec<ReceivedMessage> {
        self.records().iter().map(received_message).collect()
    }
    fn clear(&self) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        self.command(json!({ "cmd": "clear" }));
        records.clear();
    }
    fn counters(&self) -> (u64, u64, u64) {
        let counters = self.counters_json();
        let count = |name: &str| counters[name].as_u64().unwrap_or(0);
        (
            count("tokens_put"),
            count("tokens_refused"),
            count("transfers"),
        )
    }
    fn drop_connections(&self) {
        self.command(json!({ "cmd": "cut-now" }));
    }
    fn stop(&self) {
        self.command(json!({ "cmd": "stop" }));
    }
    fn restart(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            let answer = self.command(json!({ "cmd": "restart" }));
            let port = answer["port"].as_u64().unwrap_or(0);
            if port == u64::from(self.addr().port()) {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "the Proton peer listens again on {port}, not {}",
                    self.addr().port()
                )))
            }
        })
    }
    fn set_latency(&self, latency: Duration) {
        ProtonPeer::set_latency(self, latency);
    }
    fn activity(&self) -> Activity {
        let counters = self.counters_json();
        let count = |name: &str| counters[name].as_u64().unwrap_or(0);
        Activity {
            connections: count("connections"),
            sessions: count("sessions"),
            bare_sessions: count("bare_sessions"),
            links: count("links"),
            reads: count("reads"),
        }
    }
    fn received_count(&self) -> u64 {
        self.counters_json()["received"].as_u64().unwrap_or(0)
    }
    fn wait_for(&self, count: usize, within: Duration) -> BoxFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let deadline = Instant::now() + within;
            loop {
                let recorded = self.counters_json()["received"].as_u64().unwrap_or(0);
                if recorded as usize >= count || Instant::now() >= deadline {
                    return TestPeer::received(self);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

impl Drop for ProtonPeer {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        // By PID (std's Child::kill sends SIGKILL to this child only), then reaped.
        let _ = child.kill();
        let _ = child.wait();
    }
}
