//! Secrets never get out: a distinctive value is planted in every secret-bearing field (keys,
//! connection strings, SAS signatures, webhook and topic URI credentials and query values,
//! webhook `headers`), and every output of `validate`, `validate --show`, a virtual-time run and a
//! real-time run against unreachable endpoints with `TWINROUTE_LOG=trace` is searched for them:
//! stdout, stderr, the report, the ledger and every file written (dead-letters, spills).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::walk;

/// Every planted value contains this; no output may.
const MARK: &str = "PLANTED";

/// A loopback port nothing listens on: connections to it are refused at once.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An instance file with one endpoint of each kind, every secret field planted. `simulate`:
/// every endpoint simulated (with failures, so events are retried, dead-lettered and dropped)
/// and the SAS dead-letter stores replaced by folders, as virtual time requires.
fn instance(port: u16, simulate: bool) -> serde_json::Value {
    let sas = |n: u32| {
        format!(
            "http://127.0.0.1:{port}/devstoreaccount1/dl{n}?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=PLANTEDSASSIG{n}"
        )
    };
    let amqp = |key: &str| {
        format!(
            "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=PLANTEDKEYNAME;SharedAccessKey={key}=;EntityPath=hub;UseDevelopmentEmulator=true"
        )
    };
    let delivery = serde_json::json!({
        "maxDeliveryAttempts": 2,
        "retrySchedule": { "kind": "fixed", "delaysSeconds": [0.1], "thenEverySeconds": 0.1 },
        "attemptTimeoutSeconds": 1,
        "deadLetterRetentionHours": 0.0003,
    });
    let faults = serde_json::json!({
        "failures": [ { "status": 503, "probability": 0.5 }, { "status": 400, "probability": 0.2 } ]
    });
    let mut endpoints = serde_json::json!({
        "eg-1": { "properties": {
            "endpointType": "EventGrid",
            "TopicEndpoint": format!("http://PLANTEDEGUSER:PLANTEDEGPASS@127.0.0.1:{port}/api/events?code=PLANTEDEGCODE"),
            "accessKey1": "PLANTEDEGKEY1",
            "accessKey2": "PLANTEDEGKEY2",
            "deadLetterSecret": if simulate { "dl-eg".to_owned() } else { sas(1) },
        } },
        "hook-1": { "properties": {
            "endpointType": "Webhook",
            "endpointUri": format!("http://PLANTEDWHUSER:PLANTEDWHPASS@127.0.0.1:{port}/api/hook?code=PLANTEDWHCODE&clientId=PLANTEDWHCLIENT"),
            "headers": { "x-functions-key": "PLANTEDHEADER", "authorization": "Bearer PLANTEDBEARER" },
            "mode": "structured",
            "deadLetterSecret": "dl-hook",
        } },
        "hub-1": { "properties": {
            "endpointType": "EventHub",
            "connectionStringPrimaryKey": amqp("PLANTEDEHKEY1"),
            "connectionStringSecondaryKey": amqp("PLANTEDEHKEY2"),
            "deadLetterSecret": if simulate { "dl-hub".to_owned() } else { sas(2) },
        } },
        "sb-1": { "properties": {
            "endpointType": "ServiceBus",
            "primaryConnectionString": amqp("PLANTEDSBKEY1"),
            "secondaryConnectionString": amqp("PLANTEDSBKEY2"),
        } },
    });
    for (_, endpoint) in endpoints.as_object_mut().unwrap() {
        endpoint["delivery"] = delivery.clone();
        if simulate {
            endpoint["simulate"] = faults.clone();
        }
    }
    let routes: serde_json::Map<String, serde_json::Value> = ["eg-1", "hook-1", "hub-1", "sb-1"]
        .iter()
        .map(|name| {
            (
                format!("to-{name}"),
                serde_json::json!({ "endpointName": name, "filter": "true" }),
            )
        })
        .collect();
    serde_json::json!({
        "version": 1,
        "endpoints": endpoints,
        "routes": routes,
        "workload": { "seed": 5, "twins": 10, "count": if simulate { 200 } else { 4 },
                      "rate": { "shape": "constant", "eventsPerSecond": 1000 } },
    })
}

fn twinroute(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .current_dir(dir)
        .env("TWINROUTE_LOG", "trace")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runs")
}

/// Panics naming the output and the line if `text` holds a planted value.
fn assert_clean(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    if let Some(line) = text.lines().find(|line| line.contains(MARK)) {
        panic!("{what} shows a secret: {line}");
    }
}

#[test]
fn no_output_of_any_command_shows_a_planted_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let real = dir.path().join("real.json");
    let simulated = dir.path().join("simulated.json");
    std::fs::write(&real, instance(port, false).to_string()).unwrap();
    std::fs::write(&simulated, instance(port, true).to_string()).unwrap();

    let runs: [(&str, &[&str], Option<i32>); 6] = [
        ("validate", &["validate", "real.json"], Some(0)),
        (
            "validate --show",
            &["validate", "real.json", "--show"],
            Some(0),
        ),
        (
            "validate --show (simulated)",
            &["validate", "simulated.json", "--show"],
            Some(0),
        ),
        (
            "a virtual-time run of real endpoints (refused)",
            &["run", "real.json", "--virtual-time"],
            Some(2),
        ),
        (
            "a virtual-time run",
            &[
                "run",
                "simulated.json",
                "--virtual-time",
                "--report",
                "virtual-report.json",
                "--ledger",
                "virtual-ledger.ndjson",
            ],
            Some(0),
        ),
        (
            "a real-time run against unreachable endpoints",
            &[
                "run",
                "real.json",
                "--report",
                "real-report.json",
                "--ledger",
                "real-ledger.ndjson",
                "--spill-folder",
                "spill",
                "--drain-timeout",
                "5",
            ],
            Some(0),
        ),
    ];
    for (what, args, code) in runs {
        let out = twinroute(dir.path(), args);
        assert_eq!(
            out.status.code(),
            code,
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&format!("{what}: stdout"), &out.stdout);
        assert_clean(&format!("{what}: stderr"), &out.stderr);
        if what == "validate --show" {
            let shown = String::from_utf8_lossy(&out.stdout);
            for masked in [
                "http://***@127.0.0.1",
                "/api/hook?code=***&clientId=***",
                "/api/events?code=***",
                "\"x-functions-key\": \"***\"",
            ] {
                assert!(shown.contains(masked), "{masked} in {shown}");
            }
        }
    }

    // Every file the runs wrote: reports, ledgers, dead-letters, spills.
    let files: Vec<String> = walk(dir.path())
        .into_iter()
        .filter(|file| !file.ends_with("real.json") && !file.ends_with("simulated.json"))
        .collect();
    for file in &files {
        assert_clean(file, &std::fs::read(dir.path().join(file)).unwrap());
    }
    // The runs did what makes secrets likely to leak: attempts against every endpoint, dead-letters
    // to folders, and SAS stores that failed and spilled.
    for report in ["virtual-report.json", "real-report.json"] {
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(report)).unwrap()).unwrap();
        for endpoint in ["eg-1", "hook-1", "hub-1", "sb-1"] {
            assert!(
                report["endpoints"][endpoint]["attempts"].as_u64() > Some(0),
                "{endpoint}: {report:#}"
            );
        }
        assert_eq!(report["balanced"], true);
    }
    assert!(files.iter().any(|f| f.starts_with("spill/")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("dl-hook/")), "{files:?}");
}
