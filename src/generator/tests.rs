use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;
use crate::event::Serialized;

fn settings(seed: u64, twins: u32, count: u64) -> WorkloadSettings {
    WorkloadSettings {
        seed,
        twins,
        mix: DEFAULT_MIX,
        rate: RateShape::Constant {
            events_per_second: 1000.0,
        },
        count: Some(count),
        duration: None,
        start_time: None,
    }
}

fn ndjson(settings: &WorkloadSettings) -> Vec<u8> {
    let mut out = Vec::new();
    for scheduled in Generator::new(
        settings,
        "contoso.api.wus2.digitaltwins.azure.net",
        DEFAULT_START_TIME,
    ) {
        out.extend_from_slice(Serialized::new(scheduled.event).json());
        out.push(b'\n');
    }
    out
}

#[test]
fn same_seed_gives_byte_identical_stream() {
    let a = ndjson(&settings(42, 500, 20_000));
    let b = ndjson(&settings(42, 500, 20_000));
    assert_eq!(a, b);
    assert_ne!(a, ndjson(&settings(43, 500, 20_000)));
}

/// Replays the serialized stream against ADT's rules and fails at the first violation.
#[test]
fn events_follow_adts_order_rules() {
    let mut mix = DEFAULT_MIX;
    mix[EventType::TwinDelete.index()] = 10; // plenty of delete chains
    let settings = WorkloadSettings {
        mix,
        ..settings(7, 120, 50_000)
    };
    let stream = ndjson(&settings);
    let mut live: HashSet<String> = HashSet::new();
    let mut relationships: HashMap<String, (String, String)> = HashMap::new();
    let mut seen_types = HashSet::new();
    for (line, text) in stream
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let event: Value = serde_json::from_slice(text).unwrap();
        let kind = event["type"].as_str().unwrap().to_owned();
        let data = &event["data"];
        let subject = event["subject"].as_str().unwrap_or_default();
        seen_types.insert(kind.clone());
        match kind.as_str() {
            "Microsoft.DigitalTwins.Twin.Create" => {
                assert!(
                    live.insert(subject.to_owned()),
                    "line {line}: {subject} created twice"
                );
                assert_eq!(data["$dtId"], subject);
            }
            "Microsoft.DigitalTwins.Twin.Update" => {
                assert!(
                    live.contains(subject),
                    "line {line}: update of missing twin {subject}"
                )
            }
            "Microsoft.DigitalTwins.Twin.Delete" => {
                assert!(
                    live.remove(subject),
                    "line {line}: delete of missing twin {subject}"
                );
                let related = relationships
                    .values()
                    .any(|(s, t)| s == subject || t == subject);
                assert!(
                    !related,
                    "line {line}: {subject} deleted with relationships"
                );
            }
            "Microsoft.DigitalTwins.Relationship.Create" => {
                let (source, target) = (
                    data["$sourceId"].as_str().unwrap(),
                    data["$targetId"].as_str().unwrap(),
                );
                assert!(
                    live.contains(source) && live.contains(target),
                    "line {line}: relationship to a missing twin"
                );
                let id = data["$relationshipId"].as_str().unwrap();
                assert_eq!(subject, format!("{source}/relationships/{id}"));
                let previous =
                    relationships.insert(id.to_owned(), (source.to_owned(), target.to_owned()));
                assert!(
                    previous.is_none(),
                    "line {line}: relationship {id} created twice"
                );
            }
            "Microsoft.DigitalTwins.Relationship.Update" => {
                let id = subject.split("/relationships/").nth(1).unwrap();
                assert!(
                    relationships.contains_key(id),
                    "line {line}: update of missing relationship"
                );
            }
            "Microsoft.DigitalTwins.Relationship.Delete" => {
                let id = data["$relationshipId"].as_str().unwrap();
                assert!(
                    relationships.remove(id).is_some(),
                    "line {line}: delete of missing relationship"
                );
            }
            "microsoft.iot.telemetry" => {
                let source = event["source"].as_str().unwrap();
                let twin = source.split("/digitaltwins/").nth(1).unwrap();
                assert!(
                    live.contains(twin),
                    "line {line}: telemetry from missing twin {twin}"
                );
                assert!(event.get("time").is_none() && event.get("subject").is_none());
            }
            other => panic!("unexpected type {other}"),
        }
    }
    assert_eq!(seen_types.len(), 7, "every type appears: {seen_types:?}");
}

#[test]
fn mix_converges_to_the_weights_once_the_graph_is_full() {
    let mut mix = [0; 7];
    mix[EventType::TwinUpdate.index()] = 70;
    mix[EventType::Telemetry.index()] = 30;
    let settings = WorkloadSettings {
        mix,
        ..settings(1, 200, 40_000)
    };
    let events: Vec<Event> = Generator::new(&settings, "h", DEFAULT_START_TIME)
        .map(|s| s.event)
        .collect();
    let creates = events
        .iter()
        .filter(|e| e.kind == EventType::TwinCreate)
        .count();
    assert_eq!(
        creates, 200,
        "every slot is created exactly once, nothing deletes"
    );
    let tail = &events[10_000..];
    let telemetry = tail
        .iter()
        .filter(|e| e.kind == EventType::Telemetry)
        .count() as f64
        / tail.len() as f64;
    assert!(
        (0.28..0.32).contains(&telemetry),
        "telemetry share {telemetry}"
    );
}

#[test]
fn stops_at_count_or_duration() {
    let by_count = Generator::new(&settings(1, 10, 123), "h", DEFAULT_START_TIME).count();
    assert_eq!(by_count, 123);
    let timed = WorkloadSettings {
        count: None,
        duration: Some(Duration::from_secs(2)),
        ..settings(1, 10, 0)
    };
    let events: Vec<Scheduled> = Generator::new(&timed, "h", DEFAULT_START_TIME).collect();
    assert_eq!(events.len(), 2000);
    assert!(events.iter().all(|s| s.due < Duration::from_secs(2)));
}

#[test]
fn event_time_is_the_due_time() {
    let events: Vec<Scheduled> =
        Generator::new(&settings(1, 10, 3), "h", DEFAULT_START_TIME).collect();
    let times: Vec<&str> = events
        .iter()
        .map(|s| s.event.time.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(
        times,
        [
            "2026-01-01T00:00:00.0000000Z",
            "2026-01-01T00:00:00.0010000Z",
            "2026-01-01T00:00:00.0020000Z"
        ]
    );
}

/// The stream's SHA-256 for a few workloads, fixed when twin state became lazy: the same seed
/// gives the same bytes as the pool-sized state did (deletes and re-creates included).
#[test]
fn the_stream_is_the_one_the_pool_sized_graph_gave() {
    use sha2::{Digest, Sha256};
    let mut deletes = DEFAULT_MIX;
    deletes[EventType::TwinDelete.index()] = 10;
    let cases = [
        (
            settings(42, 500, 20_000),
            "04b198bf6b3f19943c972190fbff22c9c83c54aaf7697dd45baa70962b8e3399",
        ),
        (
            WorkloadSettings {
                mix: deletes,
                ..settings(7, 120, 50_000)
            },
            "ea3d4d1512b99f9566b2d94f328ec4a871d030df1c613639d6fced2a1d5d0f37",
        ),
        (
            settings(1, 3, 2_000),
            "2b093b109f6b6e2b4f803f641663879092920f82f71d6f1d9b78a6421741b2ba",
        ),
        (
            settings(5, 1_000_000, 5_000),
            "d7e993ac4d8e9694d3a470ac69347319f25294b0250968dcd042929bdad65a4e",
        ),
        (
            WorkloadSettings {
                mix: deletes,
                ..settings(9, 57, 30_000)
            },
            "09f8796bd21cb6a2f5e215affd4c784ebc4d08b78d8e0844c3004f8cb87179cf",
        ),
    ];
    let mut found = Vec::new();
    for (settings, _) in &cases {
        let digest = Sha256::digest(ndjson(settings));
        found.push(
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
    }
    let expected: Vec<&str> = cases.iter().map(|(_, hash)| *hash).collect();
    assert_eq!(found, expected);
}
