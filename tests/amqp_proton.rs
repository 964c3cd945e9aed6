//! The Qpid Proton test peer's own switches, driven by a plain AMQP client (fe2o3-amqp's, not
//! twinroute's sinks): SASL ANONYMOUS and PLAIN, put-token answers (200, 202, 401 on a bad SAS
//! signature), batch messages unpacked with their message-format, hold, each cut point, and the
//! process ending with its input, on SIGTERM, and with a clear message when its Python
//! environment is missing. On both peers (this one and the in-repo broker): per-transfer latency
//! that holds up no other link, a request without `reply-to` answered, and the counters of
//! connections, sessions, links and READs that `benches/amqp_figures.rs` counts liveness checks
//! with.

mod amqp_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use amqp_support::broker::{Activity, BrokerSettings, Fault};
use amqp_support::peers::{self, PEERS, TestPeer};
use amqp_support::proton::{self, CutAt, ProtonPeer};
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::delivery::Sendable;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::messaging::message::__private::Serializable;
use fe2o3_amqp::types::messaging::{
    AmqpValue, ApplicationProperties, Batch, Body, Data, Message, MessageAnnotations, MessageId,
    Outcome, Properties,
};
use fe2o3_amqp::types::primitives::{Binary, SimpleValue, Value};
use fe2o3_amqp::{Connection, Delivery, Receiver, Sender, Session};
use serde_json::json;
use tokio::time::{Instant, timeout};
use twinroute::sink::amqp::connection::{SAS_TOKEN_TYPE, sas_token};

const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;
/// No single step of a test here waits longer than this.
const STEP: Duration = Duration::from_secs(10);
const AUDIENCE: &str = "amqp://127.0.0.1/adt-events";

async fn peer(settings: BrokerSettings) -> ProtonPeer {
    ProtonPeer::start(settings)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(
    peer: &dyn TestPeer,
    profile: SaslProfile,
) -> Result<(ConnectionHandle<()>, SessionHandle<()>), String> {
    let url = format!("amqp://127.0.0.1:{}", peer.addr().port());
    let mut connection = timeout(
        STEP,
        Connection::builder()
            .container_id("amqp-proton-test")
            .sasl_profile(profile)
            .open(url.as_str()),
    )
    .await
    .map_err(|_| "no connection within the step".to_owned())?
    .map_err(|e| e.to_string())?;
    let session = timeout(STEP, Session::begin(&mut connection))
        .await
        .map_err(|_| "no session within the step".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok((connection, session))
}

fn event(id: &str, partition_key: &str) -> Message<Body<Value>> {
    Message::builder()
        .properties(
            Properties::builder()
                .message_id(MessageId::String(id.to_owned()))
                .content_type("application/json")
                .build(),
        )
        .message_annotations(
            MessageAnnotations::builder()
                .insert("x-opt-partition-key", partition_key)
                .build(),
        )
        .application_properties(
            ApplicationProperties::builder()
                .insert("cloudEvents:id", id)
                .build(),
        )
        .body(Body::Data(Batch::new(vec![Data(Binary::from(
            format!("{{\"id\":\"{id}\"}}").into_bytes(),
        ))])))
        .build()
}

fn put_token_request(token: &str, reply_to: &str) -> Message<Body<Value>> {
    Message::builder()
        .properties(
            Properties::builder()
                .message_id(MessageId::String("request-1".to_owned()))
                .reply_to(reply_to)
                .build(),
        )
        .application_properties(
            ApplicationProperties::builder()
                .insert("operation", "put-token")
                .insert("type", SAS_TOKEN_TYPE)
                .insert("name", AUDIENCE)
                .build(),
        )
        .body(Body::Value(AmqpValue(Value::String(token.to_owned()))))
        .build()
}

fn token(key: &str) -> String {
    // 2100-01-01: not expired (the peer refuses an expired token).
    let expiry = 4_102_444_800;
    let resource = AUDIENCE;
    sas_token(resource, "send", key, expiry)
}

/// Puts `token` on `$cbs`; returns the answer's status code and correlation-id.
async fn put_token(session: &mut SessionHandle<()>, token: &str) -> (i32, Option<MessageId>) {
    ask(session, "$cbs", put_token_request(token, "cbs-reply"), true).await
}

/// A `$management` READ of the hub `hub`; returns the answer's status code and correlation-id.
async fn management_read(session: &mut SessionHandle<()>, hub: &str) -> (i32, Option<MessageId>) {
    let request = Message::builder()
        .properties(
            Properties::builder()
                .message_id(MessageId::String("request-1".to_owned()))
                .reply_to("management-reply")
                .build(),
        )
        .application_properties(
            ApplicationProperties::builder()
                .insert("operation", "READ")
                .insert("type", "com.microsoft:eventhub")
                .insert("name", hub)
                .build(),
        )
        .body(Body::Value(AmqpValue(Value::Null)))
        .build();
    // Left attached: the in-repo broker does not answer the detach of a reply link.
    ask(session, "$management", request, false).await
}

/// Sends `request` to the node `node` (`$cbs`, `$management`) with its reply link attached
/// (the request's `reply-to` is `<node without $>-reply`); returns the answer's status code
/// and correlation-id. With `close_links`, both links are closed before it returns; otherwise
/// they are dropped (no later attach on the session may follow then).
async fn ask(
    session: &mut SessionHandle<()>,
    node: &str,
    request: Message<Body<Value>>,
    close_links: bool,
) -> (i32, Option<MessageId>) {
    let name = node.trim_start_matches('$');
    let mut sender = timeout(
        STEP,
        Sender::attach(session, format!("{name}-sender"), node),
    )
    .await
    .unwrap()
    .unwrap();
    let mut receiver = timeout(
        STEP,
        Receiver::builder()
            .name(format!("{name}-receiver"))
            .source(node)
            .target(format!("{name}-reply"))
            .attach(session),
    )
    .await
    .unwrap()
    .unwrap();
    let outcome = timeout(STEP, sender.send(request)).await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    let delivery: Delivery<Body<Value>> = timeout(STEP, receiver.recv())
        .await
        .expect("an answer within the step")
        .unwrap();
    receiver.accept(&delivery).await.unwrap();
    // Closed, not dropped: fe2o3-amqp fails a link attached after dropping others when the
    // peer's detach answers arrive after that attach (Proton sends detaches after attaches in
    // one write; the protocol allows it).
    if close_links {
        timeout(STEP, sender.close()).await.unwrap().unwrap();
        timeout(STEP, receiver.close()).await.unwrap().unwrap();
    }
    let message = delivery.into_message();
    let status = match message
        .application_properties
        .as_ref()
        .and_then(|p| p.0.get("status-code"))
    {
        Some(SimpleValue::Int(status)) => *status,
        other => panic!("status-code {other:?}"),
    };
    (status, message.properties.and_then(|p| p.correlation_id))
}

#[tokio::test]
async fn sasl_anonymous_and_plain_with_a_configured_key_are_accepted_a_wrong_key_refused() {
    let peer = peer(BrokerSettings {
        keys: vec![("send".to_owned(), "right".to_owned())],
        ..Default::default()
    })
    .await;
    connect(&peer, SaslProfile::Anonymous)
        .await
        .expect("ANONYMOUS");
    let plain = |password: &str| SaslProfile::Plain {
        username: "send".to_owned(),
        password: password.to_owned(),
    };
    connect(&peer, plain("right"))
        .await
        .expect("PLAIN, right key");
    assert!(connect(&peer, plain("wrong")).await.is_err());
    assert_eq!(
        peer.counters_json()["sasl"],
        json!({ "ANONYMOUS": 1, "PLAIN": 1, "PLAIN refused": 1 })
    );
}

#[tokio::test]
async fn put_token_answers_202_or_200_and_401_for_a_bad_signature() {
    let peer = peer(BrokerSettings {
        keys: vec![("send".to_owned(), "right".to_owned())],
        ..Default::default()
    })
    .await;
    for (status_switch, key, expected) in [
        (None, "right", 202),
        (Some(200), "right", 200),
        (Some(202), "wrong", 401),
    ] {
        if let Some(status) = status_switch {
            peer.set_put_token_status(status);
        }
        let (_connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
        let (status, correlation) = put_token(&mut session, &token(key)).await;
        assert_eq!(status, expected, "key {key}, switch {status_switch:?}");
        assert_eq!(
            correlation,
            Some(MessageId::String("request-1".to_owned())),
            "the correlation-id is the request's message-id"
        );
    }
    assert_eq!(peer.counters(), (2, 1, 0));
}

#[tokio::test]
async fn a_batch_message_is_unpacked_and_recorded_with_its_format() {
    let peer = peer(BrokerSettings::default()).await;
    let (_connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
    let mut sender = Sender::attach(&mut session, "s", "adt-events/Partitions/1")
        .await
        .unwrap();
    let inner: Vec<Data> = [("e-1", "twin-a"), ("e-2", "twin-a")]
        .iter()
        .map(|(id, key)| {
            Data(Binary::from(
                serde_amqp::to_vec(&Serializable(event(id, key))).unwrap(),
            ))
        })
        .collect();
    let envelope: Message<Body<Value>> = Message::builder()
        .message_annotations(
            MessageAnnotations::builder()
                .insert("x-opt-partition-key", "twin-a")
                .build(),
        )
        .body(Body::Data(Batch::new(inner)))
        .build();
    let sendable = Sendable::builder()
        .message(envelope)
        .message_format(BATCH_MESSAGE_FORMAT)
        .build();
    let outcome = timeout(STEP, sender.send(sendable)).await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    // And a plain message after it, on the same link.
    let outcome = timeout(STEP, sender.send(event("e-3", "twin-b")))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");

    let records = peer.records();
    assert_eq!(records.len(), 3, "{records:#?}");
    for (record, id) in records[..2].iter().zip(["e-1", "e-2"]) {
        assert_eq!(record["message_format"], json!(BATCH_MESSAGE_FORMAT));
        assert_eq!(record["batched"], json!(true));
        assert_eq!(record["address"], json!("adt-events/Partitions/1"));
        assert_eq!(record["properties"]["message_id"], json!(id));
        assert_eq!(
            record["properties"]["content_type"],
            json!("application/json")
        );
        assert_eq!(
            record["message_annotations"]["x-opt-partition-key"],
            json!("twin-a")
        );
        assert_eq!(
            record["envelope_annotations"]["x-opt-partition-key"],
            json!("twin-a")
        );
        assert_eq!(
            record["application_properties"],
            json!({ "cloudEvents:id": id })
        );
    }
    assert_eq!(records[2]["message_format"], json!(0));
    assert_eq!(records[2]["batched"], json!(false));
    let received = TestPeer::received(&peer);
    assert_eq!(received[2].body, br#"{"id":"e-3"}"#);
    assert_eq!(received[2].partition_key.as_deref(), Some("twin-b"));
}

#[tokio::test]
async fn held_transfers_are_never_settled_and_server_busy_is_a_rejection() {
    let peer = peer(BrokerSettings::default()).await;
    let (_connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
    let mut sender = Sender::attach(&mut session, "s", "hub").await.unwrap();
    peer.set_fault(Fault::ServerBusy);
    let outcome = timeout(STEP, sender.send(event("e-1", "t")))
        .await
        .unwrap()
        .unwrap();
    match outcome {
        Outcome::Rejected(rejected) => assert_eq!(
            format!("{:?}", rejected.error.expect("an error").condition),
            format!(
                "{:?}",
                fe2o3_amqp::types::definitions::ErrorCondition::Custom(
                    fe2o3_amqp::types::primitives::Symbol::from("com.microsoft:server-busy")
                )
            )
        ),
        other => panic!("{other:?}"),
    }
    peer.set_fault(Fault::Hold);
    let held = timeout(Duration::from_secs(1), sender.send(event("e-2", "t"))).await;
    assert!(held.is_err(), "a held transfer is not settled: {held:?}");
    assert_eq!(peer.counters_json()["held"], json!(1));
    assert!(TestPeer::received(&peer).is_empty());
}

#[tokio::test]
async fn latency_delays_each_settlement_without_holding_up_other_links() {
    for kind in PEERS {
        let peer = peers::start(kind, BrokerSettings::default()).await;
        latency_on(&*peer).await;
    }
}

async fn latency_on(peer: &dyn TestPeer) {
    let latency = Duration::from_millis(400);
    peer.set_latency(latency);
    let (_connection, mut session) = connect(peer, SaslProfile::Anonymous).await.unwrap();
    let (_other_connection, mut other_session) =
        connect(peer, SaslProfile::Anonymous).await.unwrap();
    let mut senders = [
        Sender::attach(&mut session, "a", "hub").await.unwrap(),
        Sender::attach(&mut session, "b", "hub").await.unwrap(),
        Sender::attach(&mut other_session, "c", "hub")
            .await
            .unwrap(),
    ];
    let start = Instant::now();
    let mut sends = Vec::new();
    for (index, sender) in senders.iter_mut().enumerate() {
        sends.push(async move {
            let outcome = timeout(STEP, sender.send(event(&format!("e-{index}"), "t")))
                .await
                .unwrap()
                .unwrap();
            assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
            start.elapsed()
        });
    }
    let took = futures_join_all(sends).await;
    let name = peer.name();
    for elapsed in &took {
        assert!(*elapsed >= latency, "{name}: settled after {elapsed:?}");
    }
    let slowest = took.iter().max().unwrap();
    assert!(
        *slowest < latency * 2,
        "{name}: three transfers settled at once, not one after another: {took:?}"
    );
    assert_eq!(peer.received().len(), 3, "{name}");
}

/// A request without `reply-to` (the Python Event Hubs SDK's pyAMQP sends none, and Event Hubs
/// answers it) is answered on the client's receiving link from the same node, on both peers.
#[tokio::test]
async fn a_request_without_reply_to_is_answered_on_the_link_from_its_node() {
    for kind in PEERS {
        let peer = peers::start(kind, BrokerSettings::default()).await;
        let (_connection, mut session) = connect(&*peer, SaslProfile::Anonymous).await.unwrap();
        let mut request = put_token_request(&token("k"), "unused");
        if let Some(properties) = request.properties.as_mut() {
            properties.reply_to = None;
        }
        let (status, correlation) = ask(&mut session, "$cbs", request, false).await;
        assert_eq!(status, 202, "{}", peer.name());
        assert_eq!(
            correlation,
            Some(MessageId::String("request-1".to_owned())),
            "{}",
            peer.name()
        );
    }
}

/// What the figures bench counts liveness checks with (a sink checks its connection with a
/// `$management` READ or by beginning and ending a session with no link on it): connections,
/// sessions begun, sessions ended with no link, entity links (not `$cbs` or `$management`) and
/// READs, on both peers.
#[tokio::test]
async fn connections_sessions_links_and_reads_are_counted() {
    for kind in PEERS {
        let peer = peers::start(kind, BrokerSettings::default()).await;
        let name = peer.name();
        let (mut connection, mut session) = connect(&*peer, SaslProfile::Anonymous).await.unwrap();
        let mut sender = timeout(STEP, Sender::attach(&mut session, "s", "hub"))
            .await
            .unwrap()
            .unwrap();
        let outcome = timeout(STEP, sender.send(event("e-1", "t")))
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Accepted(_)),
            "{name}: {outcome:?}"
        );
        // A second session on the same connection, begun and ended with no link on it.
        let mut probe = timeout(STEP, Session::begin(&mut connection))
            .await
            .unwrap()
            .unwrap();
        timeout(STEP, probe.end()).await.unwrap().unwrap();
        // Last on this connection: its links are dropped, not closed (see `ask`).
        assert_eq!(management_read(&mut session, "hub").await.0, 200, "{name}");
        // And a second connection with one session and one entity link.
        let (_other, mut other_session) = connect(&*peer, SaslProfile::Anonymous).await.unwrap();
        let _other_sender = timeout(STEP, Sender::attach(&mut other_session, "s2", "hub"))
            .await
            .unwrap()
            .unwrap();

        // The peer counts as it goes; the in-repo broker's tasks may be a moment behind.
        let expected = Activity {
            connections: 2,
            sessions: 3,
            bare_sessions: 1,
            links: 2,
            reads: 1,
        };
        let deadline = Instant::now() + STEP;
        let mut activity = peer.activity();
        while activity != expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            activity = peer.activity();
        }
        assert_eq!(activity, expected, "{name}");
    }
}

/// Runs `futures` at once (three here), returning their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Whether the client's connection ends within the step (the socket closed under it).
async fn ends(connection: &mut ConnectionHandle<()>) -> bool {
    timeout(STEP, connection.on_close()).await.is_ok()
}

/// Each cut point closes the socket. What is checked is the client's connection ending, not the
/// send or attach that was waiting: fe2o3-amqp's `send` does not always return when its connection
/// dies (issue 15, section 2), so each of those waits is bounded and its result left aside.
#[tokio::test]
async fn each_cut_point_closes_the_connection_once_and_the_next_one_works() {
    let peer = peer(BrokerSettings::default()).await;
    let brief = Duration::from_secs(1);

    peer.cut_at(CutAt::PutToken, 1);
    let (mut connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
    let mut sender = Sender::attach(&mut session, "cbs-sender", "$cbs")
        .await
        .unwrap();
    let _receiver = Receiver::builder()
        .name("cbs-receiver")
        .source("$cbs")
        .target("cbs-reply")
        .attach(&mut session)
        .await
        .unwrap();
    let sent = timeout(
        brief,
        sender.send(put_token_request(&token("k"), "cbs-reply")),
    )
    .await;
    assert!(!matches!(sent, Ok(Ok(_))), "not settled: {sent:?}");
    assert!(ends(&mut connection).await, "cut on the put-token request");
    assert_eq!(peer.counters(), (0, 0, 0), "the token was never answered");

    peer.cut_at(CutAt::Attach, 1);
    let (mut connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
    let attached = timeout(brief, Sender::attach(&mut session, "s", "hub")).await;
    assert!(!matches!(attached, Ok(Ok(_))), "not attached");
    assert!(ends(&mut connection).await, "cut on the attach");

    peer.cut_at(CutAt::Transfer, 1);
    let (mut connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
    let mut sender = Sender::attach(&mut session, "s", "hub").await.unwrap();
    let sent = timeout(brief, sender.send(event("e-1", "t"))).await;
    assert!(!matches!(sent, Ok(Ok(_))), "not settled: {sent:?}");
    assert!(ends(&mut connection).await, "cut on the transfer");
    assert!(TestPeer::received(&peer).is_empty());
    assert_eq!(peer.counters_json()["open_connections"], json!(0));

    // Each cut was for once: a new connection puts a token and sends.
    let (_connection, mut session) = connect(&peer, SaslProfile::Anonymous).await.unwrap();
    assert_eq!(put_token(&mut session, &token("k")).await.0, 202);
    let mut sender = Sender::attach(&mut session, "s", "hub").await.unwrap();
    let outcome = timeout(STEP, sender.send(event("e-2", "t")))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    assert_eq!(peer.counters_json()["open_connections"], json!(1));
}

/// Waits (bounded) for `child` to exit.
async fn exits_within(child: &mut std::process::Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn the_peer_exits_when_its_input_closes_and_on_sigterm() {
    for signal in [false, true] {
        let mut child = Command::new(proton::python())
            .arg(proton::peer_script())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run scripts/test first: it creates .venv");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.starts_with("{\"port\":"), "{line}");
        let _stdin = if signal {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            child.stdin.take()
        } else {
            drop(child.stdin.take());
            None
        };
        let exited = exits_within(&mut child, Duration::from_secs(5)).await;
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(exited, "signal {signal}: the peer exits");
    }
}

#[tokio::test]
async fn without_its_python_environment_the_peer_says_to_run_scripts_test() {
    let error = ProtonPeer::start_with(
        "/nonexistent/.venv/bin/python".into(),
        BrokerSettings::default(),
    )
    .await
    .err()
    .expect("no peer without Python");
    assert!(error.contains("scripts/test"), "{error}");
}
