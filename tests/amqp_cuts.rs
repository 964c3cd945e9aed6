//! Both AMQP sinks against the Qpid Proton peer (issue 15, sections 2 and 3): a connection cut
//! at each wait (the put-token answer, a link attach, a settlement) is noticed at once, answered
//! `ConnectionError` by every attempt waiting on it, and costs one reconnect; `concurrency` N
//! puts N transfers in flight, while one twin's attempts still wait for each other.

mod amqp_support;

use std::sync::Arc;
use std::time::Duration;

use amqp_support::broker::{BrokerSettings, Fault};
use amqp_support::peers::TestPeer;
use amqp_support::proton::{CutAt, ProtonPeer};
use amqp_support::{deliveries, events, ok};
use twinroute::config::{AuthenticationType, Connection};
use twinroute::delivery::classify::AttemptResult;
use twinroute::delivery::routed::Delivery;
use twinroute::event::Serialized;
use twinroute::secret::Secret;
use twinroute::sink::amqp::{EventHubSink, ServiceBusSink};
use twinroute::sink::{Answer, Attempt, Sink};

#[derive(Clone, Copy, Debug)]
enum Kind {
    EventHub,
    ServiceBus,
}

const KINDS: [Kind; 2] = [Kind::EventHub, Kind::ServiceBus];
const ENTITY: &str = "adt-events";
/// Well below the worker's default attempt timeout (30 s): an attempt still waiting this long
/// after a cut was not told its connection is gone.
const NOTICED_WITHIN: Duration = Duration::from_secs(10);

fn sink(kind: Kind, peer: &ProtonPeer, concurrency: usize) -> Box<dyn Sink> {
    let connection = Connection::Amqp {
        primary: Some(Secret::new(peer.connection_string(
            "send",
            "k",
            Some(ENTITY),
        ))),
        secondary: None,
        endpoint_uri: None,
        entity_path: None,
    };
    let key = AuthenticationType::KeyBased;
    match kind {
        Kind::EventHub => {
            Box::new(EventHubSink::from_connection(key, &connection, None, 1, concurrency).unwrap())
        }
        Kind::ServiceBus => Box::new(
            ServiceBusSink::from_connection(key, &connection, None, 1, concurrency).unwrap(),
        ),
    }
}

async fn peer() -> ProtonPeer {
    ProtonPeer::start(BrokerSettings::default())
        .await
        .unwrap_or_else(|e| panic!("the Proton peer starts: {e}"))
}

/// Starts one attempt per delivery at once; each answers within `within` or is reported `None`.
async fn all_at_once(
    sink: &mut dyn Sink,
    deliveries: &[Delivery],
    within: Duration,
) -> Vec<Option<Answer>> {
    let mut set = tokio::task::JoinSet::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        let Attempt::Pending(future) = sink.attempt(std::slice::from_ref(delivery), Duration::ZERO)
        else {
            panic!("a real sink answers later");
        };
        set.spawn(async move { (index, tokio::time::timeout(within, future).await.ok()) });
    }
    let mut answers: Vec<Option<Answer>> = Vec::new();
    answers.resize_with(deliveries.len(), || None);
    while let Some(joined) = set.join_next().await {
        let (index, answer) = joined.expect("no attempt panics");
        answers[index] = answer;
    }
    answers
}

fn connections(peer: &ProtonPeer) -> u64 {
    peer.counters_json()["connections"].as_u64().unwrap_or(0)
}

fn held(peer: &ProtonPeer) -> u64 {
    peer.counters_json()["held"].as_u64().unwrap_or(0)
}

/// One event per twin, `count` twins.
fn one_per_twin(count: usize) -> Vec<Arc<Serialized>> {
    let mut seen = std::collections::HashSet::new();
    let picked: Vec<_> = events(41, 4000, count as u32)
        .into_iter()
        .filter(|e| seen.insert(e.event.twin_id.clone()))
        .take(count)
        .collect();
    assert_eq!(picked.len(), count);
    picked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_at_each_wait_ends_every_waiting_attempt_and_costs_one_reconnect() {
    for kind in KINDS {
        for point in [CutAt::PutToken, CutAt::Attach, CutAt::Transfer] {
            let peer = peer().await;
            let context = format!("{kind:?}, cut at {point:?}");
            let mut sink = sink(kind, &peer, 8);
            let events = one_per_twin(8);
            let deliveries = deliveries(&events);
            peer.cut_at(point, 1);
            let answers = all_at_once(sink.as_mut(), &deliveries, NOTICED_WITHIN).await;
            for answer in &answers {
                let answer = answer.as_ref().unwrap_or_else(|| {
                    panic!("{context}: an attempt still waited {NOTICED_WITHIN:?} after the cut")
                });
                assert_eq!(answer.result, AttemptResult::ConnectionError, "{context}");
            }
            assert_eq!(connections(&peer), 1, "{context}: one connection so far");
            // The next round reconnects once, and everything goes.
            let answers = all_at_once(sink.as_mut(), &deliveries, NOTICED_WITHIN).await;
            for answer in &answers {
                let answer = answer.as_ref().expect("answered");
                assert_eq!(answer.result, ok(), "{context}: after the reconnect");
            }
            assert_eq!(connections(&peer), 2, "{context}: one reconnect");
            let received = peer.wait_for(8, Duration::from_secs(5)).await;
            assert_eq!(received.len(), 8, "{context}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_n_puts_n_transfers_in_flight_and_one_twins_attempts_take_turns() {
    for kind in KINDS {
        let peer = peer().await;
        let context = format!("{kind:?}");
        let mut sink = sink(kind, &peer, 16);
        // Open the connection first, so the held transfers below are all there is.
        let warm = one_per_twin(1);
        let answers = all_at_once(sink.as_mut(), &deliveries(&warm), NOTICED_WITHIN).await;
        assert_eq!(
            answers[0].as_ref().map(|a| a.result),
            Some(ok()),
            "{context}"
        );
        peer.set_fault(Fault::Hold);
        // 16 twins, one event each: 16 transfers in flight at once.
        let events = one_per_twin(16);
        let deliveries = deliveries(&events);
        let pending: Vec<_> = deliveries
            .iter()
            .map(|d| sink.attempt(std::slice::from_ref(d), Duration::ZERO))
            .collect();
        let deadline = tokio::time::Instant::now() + NOTICED_WITHIN;
        while held(&peer) < 16 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            held(&peer),
            16,
            "{context}: every attempt's transfer in flight"
        );
        drop(pending);
        drop(sink);
        // One twin's four attempts: one transfer in flight, the rest wait their turn.
        let peer = self::peer().await;
        let mut sink = self::sink(kind, &peer, 16);
        let answers = all_at_once(sink.as_mut(), &deliveries[..1], NOTICED_WITHIN).await;
        assert_eq!(
            answers[0].as_ref().map(|a| a.result),
            Some(ok()),
            "{context}"
        );
        peer.set_fault(Fault::Hold);
        let twin = &deliveries[1];
        let same_twin = [twin.clone(), twin.clone(), twin.clone(), twin.clone()];
        let pending: Vec<_> = same_twin
            .iter()
            .map(|d| sink.attempt(std::slice::from_ref(d), Duration::ZERO))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while held(&peer) < 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give the others every chance to overtake; none may.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            held(&peer),
            1,
            "{context}: one twin, one transfer at a time"
        );
        drop(pending);
    }
}
