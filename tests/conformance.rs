//! The official CloudEvents SDK reads every generated event back with the same attributes and data.

mod support;

use cloudevents::event::SpecVersion;
use cloudevents::{AttributesReader, Data, Event as CloudEvent};
use serde_json::Value;
use twinroute::event::{EventType, Serialized};

#[test]
fn cloudevents_sdk_parses_every_event_of_every_type() {
    let events = support::events(11, 20_000);
    support::one_of_each(&events); // every type is in the sample
    for event in events {
        let serialized = Serialized::new(event);
        let event = &serialized.event;
        let parsed: CloudEvent = serde_json::from_slice(serialized.json()).unwrap_or_else(|e| {
            panic!(
                "sdk refused {}: {e}",
                String::from_utf8_lossy(serialized.json())
            )
        });
        assert_eq!(parsed.specversion(), SpecVersion::V10);
        assert_eq!(parsed.id(), event.id.as_str());
        assert_eq!(parsed.ty(), event.kind.as_str());
        assert_eq!(parsed.source().as_str(), &*event.source);
        assert_eq!(parsed.subject(), event.subject.as_deref());
        assert_eq!(parsed.datacontenttype(), Some(event.datacontenttype));
        assert_eq!(parsed.dataschema().map(|u| u.as_str()), event.dataschema);
        let time = event
            .time
            .as_ref()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
        assert_eq!(parsed.time().copied(), time.map(|t| t.to_utc()));
        assert_eq!(
            parsed.extension("traceparent").map(|v| v.to_string()),
            Some(event.traceparent.to_string())
        );
        let expected: Value = serde_json::to_value(&event.data).unwrap();
        match parsed.data() {
            Some(Data::Json(data)) => assert_eq!(data, &expected),
            other => panic!("{}: data is not JSON: {other:?}", event.kind),
        }
        // ADT's attribute rules per type (adt-facts §1.2).
        let telemetry = event.kind == EventType::Telemetry;
        assert_eq!(parsed.time().is_none(), telemetry);
        assert_eq!(parsed.dataschema().is_some(), telemetry);
        if telemetry {
            assert_eq!(
                parsed.source().as_str(),
                format!("{}/digitaltwins/{}", support::HOST, event.twin_id)
            );
        } else {
            assert_eq!(parsed.source().as_str(), support::HOST);
        }
    }
}

#[test]
fn traceparent_and_time_have_adts_formats() {
    for event in support::events(3, 2_000) {
        let tp = event.traceparent.as_str();
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert!(parts[1].len() == 32 && parts[2].len() == 16, "{tp}");
        assert!(
            tp.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{tp}"
        );
        if let Some(time) = &event.time {
            // 2021-12-09T20:28:52.6745538Z: seven fractional digits, UTC, Z.
            assert_eq!(time.len(), 28, "{time}");
            assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
        }
        assert!(uuid::Uuid::parse_str(&event.id).is_ok(), "{}", event.id);
    }
}
