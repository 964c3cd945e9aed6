use serde_json::json;

use super::*;

const CS: &str = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=S3CRETkey=;EntityPath=hub1";

fn parse_value(value: serde_json::Value) -> Result<Settings, ConfigError> {
    parse(&value.to_string(), "twins.json", &Overrides::default())
}

fn messages(value: serde_json::Value) -> Vec<String> {
    let error = parse_value(value).expect_err("config should be refused");
    error.to_string().lines().map(str::to_owned).collect()
}

fn issue_example() -> serde_json::Value {
    json!({
      "version": 1,
      "instance": { "hostName": "contoso.api.wus2.digitaltwins.azure.net" },
      "endpoints": {
        "hub1": {
          "properties": { "endpointType": "EventHub", "authenticationType": "KeyBased", "connectionStringPrimaryKey": CS },
          "delivery": { "maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440 }
        },
        "grid1": {
          "properties": { "endpointType": "EventGrid", "TopicEndpoint": "https://contosoGrid.westus2-1.eventgrid.azure.net/api/events", "accessKey1": "K1secret" }
        },
        "bus1": {
          "properties": { "endpointType": "ServiceBus", "authenticationType": "IdentityBased", "endpointUri": "sb://mysb.servicebus.windows.net/", "entityPath": "mysbtopic",
                          "identity": { "type": "UserAssigned", "userAssignedIdentity": "/subscriptions/x/identities/y" }, "deadLetterUri": "https://acct.blob.core.windows.net/dlq" }
        }
      },
      "routes": { "r1": { "endpointName": "hub1", "filter": "type = 'Microsoft.DigitalTwins.Twin.Create'" } },
      "workload": { "seed": 42, "twins": 1000, "mix": { "Microsoft.DigitalTwins.Twin.Update": 70, "microsoft.iot.telemetry": 20 },
                    "rate": { "shape": "constant", "eventsPerSecond": 1000 }, "count": 100000 }
    })
}

#[test]
fn the_issue_example_is_valid() {
    let settings = parse_value(issue_example()).unwrap();
    assert_eq!(
        &*settings.host_name,
        "contoso.api.wus2.digitaltwins.azure.net"
    );
    assert_eq!(settings.endpoints.len(), 3);
    assert_eq!(
        settings.endpoints[2].authentication,
        AuthenticationType::IdentityBased
    );
    assert_eq!(settings.routes[0].endpoint, 0);
    assert_eq!(settings.workload.seed, 42);
    assert_eq!(settings.seed_source, SeedSource::Config);
    assert_eq!(
        settings.workload.mix[crate::event::EventType::TwinUpdate.index()],
        70
    );
    assert_eq!(settings.workload.count, Some(100_000));
}

#[test]
fn a_pasted_az_dt_endpoint_show_body_is_accepted() {
    let mut file = issue_example();
    file["endpoints"]["hub1"] = json!({
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DigitalTwins/digitalTwinsInstances/adt/endpoints/hub1",
        "name": "hub1",
        "type": "Microsoft.DigitalTwins/digitalTwinsInstances/endpoints",
        "resourceGroup": "rg",
        "systemData": { "createdAt": "2023-01-01T00:00:00Z" },
        "properties": { "endpointType": "EventHub", "authenticationType": "KeyBased", "connectionStringPrimaryKey": CS,
                        "provisioningState": "Succeeded", "createdTime": "2023-01-01T00:00:00Z", "deadLetterSecret": null }
    });
    parse_value(file).unwrap();
}

#[test]
fn every_problem_is_reported_at_once_with_file_and_path() {
    let file = json!({
      "version": 2,
      "endpoints": {
        "hub1": { "properties": { "endpointType": "EventHub", "authenticationType": "IdentityBased", "endpointUri": "https://x", "entityPath": "h" } },
        "-bad": { "properties": { "endpointType": "EventHub", "connectionStringPrimaryKey": CS } },
        "grid1": { "properties": { "endpointType": "EventGrid", "authenticationType": "IdentityBased", "TopicEndpoint": "https://t", "accessKey1": "k", "colour": "red" } }
      },
      "routes": { "r1": { "endpointName": "nope", "filter": "true" } },
      "workload": { "mix": { "Microsoft.DigitalTwins.Twin.Updated": 1 }, "rate": { "shape": "constant" } }
    });
    let lines = messages(file);
    let expected = [
        "twins.json: version: must be 1, found 2",
        "twins.json: endpoints.hub1.properties.endpointUri: must start with sb://",
        "twins.json: endpoints.-bad: must be 3 to 49",
        "twins.json: endpoints.grid1.properties.colour: unknown field",
        "twins.json: endpoints.grid1.properties.authenticationType: IdentityBased is not supported for EventGrid",
        "twins.json: routes.r1.endpointName: names no endpoint: 'nope'",
        "twins.json: workload.mix.Microsoft.DigitalTwins.Twin.Updated: is not an ADT event type",
        "twins.json: workload.mix: needs at least one type with a weight above 0",
        "twins.json: workload.rate.eventsPerSecond: is required for shape 'constant'",
    ];
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
}

#[test]
fn arm_rules_by_type_and_authentication() {
    let base = |properties: serde_json::Value| json!({ "version": 1, "endpoints": { "ep1": { "properties": properties } } });
    let cases = [
        (
            json!({ "endpointType": "EventHub" }),
            "endpoints.ep1.properties.connectionStringPrimaryKey: is required for KeyBased EventHub",
        ),
        (
            json!({ "endpointType": "ServiceBus" }),
            "endpoints.ep1.properties.primaryConnectionString: is required for KeyBased ServiceBus",
        ),
        (
            json!({ "endpointType": "EventGrid", "accessKey1": "k" }),
            "endpoints.ep1.properties.TopicEndpoint: is required",
        ),
        (
            json!({ "endpointType": "EventGrid", "TopicEndpoint": "https://t" }),
            "endpoints.ep1.properties.accessKey1: is required",
        ),
        (
            json!({ "endpointType": "ServiceBus", "authenticationType": "IdentityBased", "endpointUri": "sb://x/" }),
            "endpoints.ep1.properties.entityPath: is required",
        ),
        (
            json!({ "endpointType": "EventHub", "connectionStringPrimaryKey": CS, "deadLetterUri": "https://a/c" }),
            "endpoints.ep1.properties.deadLetterUri: is for IdentityBased",
        ),
        (
            json!({ "endpointType": "EventHub", "authenticationType": "IdentityBased", "endpointUri": "sb://x/", "entityPath": "h", "deadLetterSecret": "https://a/c?sig=x" }),
            "endpoints.ep1.properties.deadLetterSecret: is for KeyBased",
        ),
        (
            json!({ "endpointType": "EventHub", "connectionStringPrimaryKey": CS, "accessKey1": "k" }),
            "endpoints.ep1.properties.accessKey1: is not a property of EventHub",
        ),
        (
            json!({ "endpointType": "EventHub", "connectionStringPrimaryKey": "Endpoint=sb://***/;SharedAccessKeyName=***;SharedAccessKey=***;EntityPath=***" }),
            "connectionStringPrimaryKey: is masked",
        ),
        (
            json!({ "endpointType": "EventHub", "connectionStringPrimaryKey": "HostName=x" }),
            "connectionStringPrimaryKey: is not a connection string: no Endpoint",
        ),
        (
            json!({ "endpointType": "Kafka" }),
            "endpoints.ep1.properties.endpointType: must be EventGrid, EventHub, ServiceBus or (twinroute) Webhook",
        ),
    ];
    for (properties, want) in cases {
        let lines = messages(base(properties.clone()));
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "{properties}: missing {want:?} in {lines:#?}"
        );
    }
}

#[test]
fn endpoint_name_pattern_follows_arm() {
    for good in ["abc", "hub-1", "a1b", &"x".repeat(49)] {
        assert_eq!(validate::endpoint_name_problem(good), None, "{good}");
    }
    for bad in ["ab", "-abc", "abc-", "123", "a_b", &"x".repeat(50)] {
        assert!(validate::endpoint_name_problem(bad).is_some(), "{bad}");
    }
}

#[test]
fn limits_apply_unless_lifted() {
    let endpoints: serde_json::Map<_, _> = (0..7)
        .map(|i| {
            (
                format!("ep{i}a"),
                json!({ "properties": { "endpointType": "EventHub" }, "simulate": {} }),
            )
        })
        .collect();
    let mut file = json!({ "version": 1, "endpoints": endpoints });
    let lines = messages(file.clone());
    assert!(lines[0].contains("at most 6 endpoints"), "{lines:?}");
    file["limits"] = json!({ "enforce": false });
    assert_eq!(parse_value(file).unwrap().endpoints.len(), 7);
}

#[test]
fn a_twin_pool_beyond_adts_limit_is_refused_unless_lifted() {
    let mut file = issue_example();
    file["workload"]["twins"] = json!(2_000_000);
    assert_eq!(parse_value(file.clone()).unwrap().workload.twins, 2_000_000);
    file["workload"]["twins"] = json!(1_000_000_000u32);
    let lines = messages(file.clone());
    assert_eq!(
        lines,
        [
            "twins.json: workload.twins: ADT allows 2000000 twins per instance by default, found 1000000000; set \"limits\": {\"enforce\": false} to lift this for load tests"
        ]
    );
    file["limits"] = json!({ "enforce": false });
    assert_eq!(parse_value(file).unwrap().workload.twins, 1_000_000_000);
}

#[test]
fn show_masks_every_secret() {
    let mut file = issue_example();
    file["endpoints"]["grid1"]["properties"]["deadLetterSecret"] = json!(
        "https://acct.blob.core.windows.net/dlq?sv=2022&sr=c&sp=cw&se=2099-01-01&sig=SIGNATURE123"
    );
    file["endpoints"]["hook1"] = json!({
        "properties": { "endpointType": "Webhook", "endpointUri": "https://consumer.example/events",
                        "headers": { "Authorization": "Bearer HOOKTOKEN" } }
    });
    let shown = parse_value(file).unwrap().normalized().to_string();
    assert!(shown.contains(r#""Authorization":"***""#), "{shown}");
    for secret in [
        "S3CRETkey",
        "K1secret",
        "SIGNATURE123",
        "sp=cw",
        "HOOKTOKEN",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert!(
        shown.contains(
            "Endpoint=sb://***/;SharedAccessKeyName=***;SharedAccessKey=***;EntityPath=***"
        )
    );
    assert!(shown.contains("https://acct.blob.core.windows.net/dlq?***"));
}

#[test]
fn syntax_errors_name_line_and_column() {
    let error = parse(
        "{\n  \"version\": 1,\n  oops\n}",
        "bad.json",
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("bad.json:3:3: not valid JSON"),
        "{error}"
    );
}

#[test]
fn demo_config_is_valid() {
    let settings = parse(DEMO_CONFIG, "demo", &Overrides::default()).unwrap();
    assert!(settings.endpoints.iter().all(|e| e.simulate.is_some()));
}

#[test]
fn a_rate_that_can_never_reach_count_is_refused_unless_a_duration_bounds_it() {
    let with = |rate: serde_json::Value, count: u64, duration: Option<f64>| {
        let mut config = issue_example();
        config["workload"]["rate"] = rate;
        config["workload"]["count"] = json!(count);
        if let Some(duration) = duration {
            config["workload"]["durationSeconds"] = json!(duration);
        }
        config
    };
    let steps = json!({ "shape": "steps", "steps": [
        { "eventsPerSecond": 100, "durationSeconds": 1 }, { "eventsPerSecond": 0, "durationSeconds": 1 } ] });
    let spike = json!({ "shape": "spike", "baseEventsPerSecond": 0, "spikeEventsPerSecond": 10,
                        "atSeconds": 1, "durationSeconds": 1 });
    let ramp = json!({ "shape": "ramp", "fromEventsPerSecond": 10, "toEventsPerSecond": 0, "overSeconds": 4 });
    for (rate, count) in [(&steps, 101), (&spike, 50), (&ramp, 21)] {
        let found = messages(with(rate.clone(), count, None));
        assert!(
            found.iter().any(
                |m| m.starts_with("twins.json: workload.rate: the rate is 0 from ")
                    && m.contains(&format!("so count {count} is never reached"))
            ),
            "{rate}: {found:?}"
        );
        // Bounded by a duration, the run ends there: nothing to refuse.
        parse_value(with(rate.clone(), count, Some(60.0))).unwrap();
    }
    for (rate, count) in [(&steps, 100), (&spike, 10), (&ramp, 20)] {
        parse_value(with(rate.clone(), count, None)).unwrap();
    }
    // --count lifts durationSeconds, so the duration no longer bounds the run.
    let overrides = Overrides {
        seed: None,
        count: Some(50),
    };
    let error = parse(
        &with(spike, 5, Some(60.0)).to_string(),
        "twins.json",
        &overrides,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("count 50 is never reached"),
        "{error}"
    );
}

/// Issue 13: a run from 9999-12-31 wrote `"finalAt":".0560000Z"`. A start time from which the
/// run could write a time past 9999-12-31T23:59:59Z is refused, naming the latest that is not.
#[test]
fn a_start_time_a_run_could_carry_past_year_9999_is_refused() {
    let with_start = |start: &str| {
        let mut config = issue_example();
        config["workload"]["startTime"] = json!(start);
        config
    };
    // 100 000 events at 1000/s: 100 s; then bus1 (dead-letters, 4 h default retention) keeps a
    // delivery up to 1440 min + 30 s + 4 h.
    let found = messages(with_start("9999-12-31T00:00:00Z"));
    assert_eq!(found.len(), 1, "{found:?}");
    let message = &found[0];
    assert!(
        message.starts_with(
            "twins.json: workload.startTime: a run from 9999-12-31T00:00:00.0000000Z can write times up to 28.0 h after it (events due over 100 s, then up to 28.0 h at endpoints.bus1 (eventTimeToLiveInMinutes + attemptTimeoutSeconds + deadLetterRetentionHours)), past 9999-12-31T23:59:59Z, where ADT's timestamps end; start at 9999-12-30T19:57:49.0000000Z or earlier"
        ),
        "{message}"
    );
    // The start it names is accepted, and so is any earlier one; one minute later is not.
    parse_value(with_start("9999-12-30T19:57:49Z")).unwrap();
    parse_value(with_start("2026-06-01T00:00:00Z")).unwrap();
    assert!(parse_value(with_start("9999-12-30T19:58:49Z")).is_err());

    // durationSeconds bounds the schedule; with no dead-letters the tail is TTL + timeout only.
    let mut config = issue_example();
    config["endpoints"] = json!({ "hub1": { "properties": { "endpointType": "EventHub" }, "simulate": {},
                                            "delivery": { "eventTimeToLiveInMinutes": 60 } } });
    config["workload"]["count"] = json!(null);
    config["workload"]["durationSeconds"] = json!(3600);
    config["workload"]["startTime"] = json!("9999-12-31T21:59:00Z");
    parse_value(config.clone()).unwrap();
    config["workload"]["startTime"] = json!("9999-12-31T22:00:00Z");
    let found = messages(config);
    assert!(
        found[0].contains("(events due over 1.0 h, then up to 1.0 h at endpoints.hub1 (eventTimeToLiveInMinutes + attemptTimeoutSeconds))"),
        "{found:?}"
    );

    // A workload that spans millennia is refused whatever the start, or with none.
    let mut config = issue_example();
    config["workload"]["rate"] = json!({ "shape": "constant", "eventsPerSecond": 0.01 });
    config["workload"]["count"] = json!(10_000_000_000u64);
    let found = messages(config.clone());
    assert!(
        found[0].starts_with(
            "twins.json: workload: a run can write times up to 31689 years after its start"
        ),
        "{found:?}"
    );
    config["workload"]["startTime"] = json!("2026-01-01T00:00:00Z");
    let found = messages(config);
    assert!(
        found[0].contains("whatever the start; lower count or raise the rate"),
        "{found:?}"
    );
}
