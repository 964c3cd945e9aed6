//! The command line, as a user runs it.

mod support;

use support::walk;

use std::path::PathBuf;
use std::process::{Command, Output};

fn twinroute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .args(args)
        .output()
        .expect("runs")
}

/// Runs twinroute in `dir`, where the instance files are.
fn twinroute_in(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .current_dir(dir.path())
        .args(args)
        .output()
        .expect("runs")
}

/// The run report a test wrote to `report.json` in `dir`.
fn report(dir: &tempfile::TempDir) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const SECRET_CONFIG: &str = r#"{
  "version": 1,
  "endpoints": {
    "hub1": { "properties": { "endpointType": "EventHub",
      "connectionStringPrimaryKey": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=TOPSECRET=;EntityPath=hub1",
      "deadLetterSecret": "https://acct.blob.core.windows.net/dlq?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=SIGSECRET" } }
  },
  "routes": { "r1": { "endpointName": "hub1", "filter": "true" } },
  "workload": { "seed": 9, "twins": 50, "count": 200 }
}"#;

/// Runs the binary in `dir` with `args`, sends it `signal` (`-INT`, `-TERM`) after `after`, and
/// returns its output (stderr captured).
fn signalled_after(
    dir: &tempfile::TempDir,
    args: &[&str],
    after: std::time::Duration,
    signal: &str,
) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .current_dir(dir.path())
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let signalled = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    child.wait_with_output().unwrap()
}

#[test]
fn validate_refuses_bad_files_with_exit_2_and_json_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.json",
        r#"{"version": 1, "endpoints": {"hub1": {"properties": {"endpointType": "EventHub", "authenticationType": "IdentityBased", "endpointUri": "amqp://x", "entityPath": "h"}}}, "routes": {"r1": {"endpointName": "hub2", "filter": "true"}}}"#,
    );
    let out = twinroute(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json: endpoints.hub1.properties.endpointUri: must start with sb://"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.json: routes.r1.endpointName: names no endpoint"),
        "{stderr}"
    );
}

#[test]
fn validate_show_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ok.json", SECRET_CONFIG);
    let out = twinroute(&["validate", path.to_str().unwrap(), "--show"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("TOPSECRET") && !all.contains("SIGSECRET") && !all.contains("sp=cw"),
        "{all}"
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["endpoints"]["hub1"]["properties"]["deadLetterSecret"],
        "https://acct.blob.core.windows.net/dlq?***"
    );
}

#[test]
fn generate_is_reproducible_and_prints_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ok.json", SECRET_CONFIG);
    let path = path.to_str().unwrap();
    let first = twinroute(&["generate", path, "--count", "500", "--seed", "77"]);
    let second = twinroute(&["generate", path, "--count", "500", "--seed", "77"]);
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(first.stdout, second.stdout);
    assert!(String::from_utf8_lossy(&first.stderr).contains("seed 77 (from --seed)"));
    let lines: Vec<&[u8]> = first
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 500);
    for line in lines {
        let event: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(event["specversion"], "1.0");
    }
    let from_file = twinroute(&["generate", path]);
    assert!(String::from_utf8_lossy(&from_file.stderr).contains("seed 9 (from workload.seed)"));
    assert_ne!(from_file.stdout, first.stdout);
}

#[test]
fn every_command_explains_itself_with_an_example() {
    for command in ["validate", "generate", "filter", "run", "demo", "bench"] {
        let out = twinroute(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{command} --help"
        );
    }
}

#[test]
fn a_bad_filter_refuses_the_whole_config_naming_route_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "f.json",
        r#"{"version": 1, "endpoints": {"hub1": {"properties": {"endpointType": "EventHub"}, "simulate": {}}},
            "routes": {"r1": {"endpointName": "hub1", "filter": "type = )"},
                       "r2": {"endpointName": "hub1", "filter": "NOT type = 'x'"}}}"#,
    );
    let out = twinroute(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("f.json: routes.r1.filter:8: expected a string literal after '=', found ')'"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "f.json: routes.r2.filter:1: found 'NOT': ADT route filters have no NOT operator"
        ),
        "{stderr}"
    );
}

#[test]
fn filter_prints_true_or_false_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, "ok.json", SECRET_CONFIG);
    let events = twinroute(&["generate", config.to_str().unwrap(), "--count", "300"]).stdout;
    let events_file = dir.path().join("events.ndjson");
    std::fs::write(&events_file, &events).unwrap();
    let out = twinroute(&[
        "filter",
        "type = 'microsoft.iot.telemetry'",
        "--events",
        events_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let answers: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    let types: Vec<String> = events
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(answers.len(), 300);
    for (answer, kind) in answers.iter().zip(&types) {
        assert_eq!(
            *answer == "true",
            kind == "microsoft.iot.telemetry",
            "{kind}: {answer}"
        );
    }
    assert!(answers.contains(&"true") && answers.contains(&"false"));

    let bad = twinroute(&["filter", "$body.patch[0].path = '/x'"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("filter:12: found '[': ADT cannot filter on fields inside arrays")
    );
}

#[test]
fn run_under_virtual_time_writes_report_and_ledger() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "run.json",
        r#"{"version": 1,
            "endpoints": {"hub1": {"properties": {"endpointType": "EventHub", "deadLetterSecret": "dl"},
                                   "delivery": {"eventTimeToLiveInMinutes": 60},
                                   "simulate": {"outages": [{"startSeconds": 0, "durationSeconds": 7200}]}}},
            "routes": {"r1": {"endpointName": "hub1", "filter": "true"}},
            "workload": {"seed": 3, "twins": 20, "count": 50}}"#,
    );
    let out = twinroute_in(
        &dir,
        &[
            "run",
            "run.json",
            "--virtual-time",
            "--report",
            "report.json",
            "--ledger",
            "ledger.ndjson",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("seed 3 (from workload.seed)") && stderr.contains("balanced"),
        "{stderr}"
    );
    let report = report(&dir);
    for field in [
        "seed",
        "clock",
        "eventsGenerated",
        "eventsUnmatched",
        "balanced",
    ] {
        assert!(report.get(field).is_some(), "report has {field}");
    }
    assert_eq!(report["clock"], "virtual");
    let hub = &report["endpoints"]["hub1"];
    for field in [
        "routed",
        "delivered",
        "deadLettered",
        "dropped",
        "inFlight",
        "attempts",
        "duplicatesReceived",
        "deadLetterReasons",
        "latencyMs",
    ] {
        assert!(hub.get(field).is_some(), "endpoint report has {field}");
    }
    assert_eq!(hub["deadLettered"], 50);
    assert_eq!(hub["deadLetterReasons"]["TimeToLiveExceeded"], 50);
    let ledger = std::fs::read_to_string(dir.path().join("ledger.ndjson")).unwrap();
    assert_eq!(ledger.lines().count(), 50);
    let line: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    for field in [
        "eventId",
        "route",
        "endpoint",
        "outcome",
        "reason",
        "attempts",
        "firstAttemptAt",
        "finalAt",
    ] {
        assert!(line.get(field).is_some(), "ledger line has {field}");
    }
    let files = walk(&dir.path().join("dl"));
    assert_eq!(files.len(), 50);
    assert!(
        files.iter().all(|f| f.starts_with("hub1/2026/01/01/")),
        "{files:?}"
    );
}

#[test]
fn virtual_time_refuses_endpoints_that_are_not_simulated() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "real.json", SECRET_CONFIG);
    let out = twinroute(&["run", path.to_str().unwrap(), "--virtual-time"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("endpoint 'hub1'"), "{stderr}");
    assert!(
        !stderr.contains("TOPSECRET") && !stderr.contains("SIGSECRET"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_drains_and_writes_the_report_with_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "long.json",
        r#"{"version": 1,
            "endpoints": {"up-1": {"properties": {"endpointType": "EventHub"}, "simulate": {}},
                          "down-1": {"properties": {"endpointType": "EventHub"},
                                     "simulate": {"outages": [{"startSeconds": 0, "durationSeconds": 100000}]}}},
            "routes": {"a": {"endpointName": "up-1", "filter": "true"}, "b": {"endpointName": "down-1", "filter": "true"}},
            "workload": {"seed": 4, "twins": 50, "count": 1000000, "rate": {"shape": "constant", "eventsPerSecond": 500}}}"#,
    );
    let out = signalled_after(
        &dir,
        &[
            "run",
            "long.json",
            "--report",
            "report.json",
            "--ledger",
            "ledger.ndjson",
            "--drain-timeout",
            "1",
        ],
        std::time::Duration::from_millis(1500),
        "-INT",
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report(&dir);
    assert_eq!(report["stoppedEarly"], true);
    assert_eq!(report["balanced"], true);
    let generated = report["eventsGenerated"].as_u64().unwrap();
    assert!(
        (200..5000).contains(&generated),
        "stopped after about 1.5 s at 500/s: {generated}"
    );
    assert_eq!(report["endpoints"]["up-1"]["delivered"], generated);
    assert_eq!(report["endpoints"]["down-1"]["inFlight"], generated);
    let ledger = std::fs::read_to_string(dir.path().join("ledger.ndjson")).unwrap();
    assert_eq!(ledger.lines().count() as u64, 2 * generated);
}

#[test]
fn one_thread_each_receive_and_run_deliver_every_event() {
    use std::io::{BufRead, BufReader};
    let mut receiver = Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .args(["receive", "--listen", "127.0.0.1:0", "--threads", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(receiver.stderr.take().unwrap());
    // Logs may come first; the address is on the line that says where it is receiving.
    let url = loop {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).unwrap(),
            0,
            "no address printed"
        );
        if line.contains("receiving on") {
            break line
                .split_whitespace()
                .find(|word| word.starts_with("http://"))
                .unwrap_or_else(|| panic!("no address in {line:?}"))
                .to_owned();
        }
    };

    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "webhook.json",
        &format!(
            r#"{{"version": 1,
                "endpoints": {{"hook": {{"properties": {{"endpointType": "Webhook", "endpointUri": "{url}/", "mode": "structured"}},
                                        "delivery": {{"concurrency": 8}}}}}},
                "routes": {{"all": {{"endpointName": "hook", "filter": "true"}}}},
                "workload": {{"seed": 3, "twins": 20, "count": 300, "rate": {{"shape": "constant", "eventsPerSecond": 100000}}}}}}"#
        ),
    );
    let run = twinroute_in(
        &dir,
        &[
            "run",
            "webhook.json",
            "--threads",
            "1",
            "--report",
            "report.json",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = report(&dir);
    assert_eq!(report["endpoints"]["hook"]["delivered"], 300, "{report:#}");

    let signalled = Command::new("kill")
        .args(["-INT", &receiver.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut summary).unwrap();
    assert!(receiver.wait().unwrap().success(), "{summary}");
    let unique: u64 = summary
        .lines()
        .find_map(|line| line.trim().strip_prefix("unique"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no unique count in {summary}"));
    assert_eq!(unique, 300, "{summary}");
}

#[test]
fn a_thread_count_out_of_range_is_refused_naming_the_flag() {
    for args in [
        &["receive", "--threads", "0"][..],
        &["run", "missing.json", "--threads", "zero"][..],
    ] {
        let out = twinroute(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--threads") && stderr.contains("1 to 1024"),
            "{args:?}: {stderr}"
        );
    }
    let out = twinroute(&["demo", "--virtual-time", "--threads", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--threads") && stderr.contains("--virtual-time"),
        "{stderr}"
    );
}

#[test]
fn sigterm_under_virtual_time_stops_drains_and_writes_report_and_ledger_with_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "long.json",
        r#"{"version": 1,
            "endpoints": {"up-1": {"properties": {"endpointType": "EventHub"}, "simulate": {}},
                          "down-1": {"properties": {"endpointType": "EventHub"},
                                     "simulate": {"outages": [{"startSeconds": 0, "durationSeconds": 100000}]}}},
            "routes": {"a": {"endpointName": "up-1", "filter": "true"}, "b": {"endpointName": "down-1", "filter": "true"}},
            "workload": {"seed": 4, "twins": 50, "rate": {"shape": "constant", "eventsPerSecond": 500}}}"#,
    );
    let out = signalled_after(
        &dir,
        &[
            "run",
            "long.json",
            "--virtual-time",
            "--count",
            "5000000",
            "--report",
            "report.json",
            "--ledger",
            "ledger.ndjson",
        ],
        std::time::Duration::from_secs(2),
        "-TERM",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let report = report(&dir);
    assert_eq!(report["clock"], "virtual");
    assert_eq!(report["stoppedEarly"], true);
    assert_eq!(report["balanced"], true, "{report:#}");
    let generated = report["eventsGenerated"].as_u64().unwrap();
    assert!(
        generated > 0 && generated < 5_000_000,
        "generation stopped early: {generated}"
    );
    assert_eq!(report["endpoints"]["up-1"]["delivered"], generated);
    assert_eq!(report["endpoints"]["down-1"]["inFlight"], generated);
    let ledger = std::fs::read_to_string(dir.path().join("ledger.ndjson")).unwrap();
    assert!(ledger.ends_with('\n'), "the last ledger line is whole");
    let mut lines = 0u64;
    for line in ledger.lines() {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("ledger line {}: {e}: {line}", lines + 1));
        assert!(parsed["outcome"] == "delivered" || parsed["outcome"] == "inFlight");
        lines += 1;
    }
    assert_eq!(lines, 2 * generated);
}

#[test]
fn a_dead_letter_secret_that_looks_like_a_url_but_is_not_one_is_refused_unshown() {
    let dir = tempfile::tempdir().unwrap();
    let sas = "acct.blob.core.windows.net/dlq?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=PLANTEDSIG";
    for secret in [
        format!("https:/{sas}"),
        sas.to_owned(),
        format!("htps://{sas}"),
        format!("HTTPS:{sas}"),
        "folder/dl?sig=PLANTEDSIG".to_owned(),
        "folder/dl&sig=PLANTEDSIG".to_owned(),
        "file:///tmp/dl?PLANTEDSIG".to_owned(),
        "az:PLANTEDSIG".to_owned(),
    ] {
        let config = SECRET_CONFIG.replace(
            "https://acct.blob.core.windows.net/dlq?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=SIGSECRET",
            &secret,
        );
        let path = write(&dir, "typo.json", &config);
        for args in [
            &["validate", path.to_str().unwrap()][..],
            &["validate", path.to_str().unwrap(), "--show"][..],
            &["run", path.to_str().unwrap(), "--count", "1"][..],
        ] {
            let out = twinroute_in(&dir, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{secret} {args:?}: {stderr}");
            assert!(
                stderr.contains(
                    "typo.json: endpoints.hub1.properties.deadLetterSecret: looks like a URL but is not one: "
                ),
                "{secret}: {stderr}"
            );
            let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
            assert!(!all.contains("PLANTED"), "{secret} {args:?}: {all}");
        }
    }
    // A plain path, relative or absolute, stays a folder; so does a Windows drive path.
    for folder in [
        "dead-letters",
        "/tmp/dead letters",
        "C:\\dead-letters",
        "file:///tmp/dl",
    ] {
        let config = SECRET_CONFIG.replace(
            "https://acct.blob.core.windows.net/dlq?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=SIGSECRET",
            &folder.replace('\\', "\\\\"),
        );
        let path = write(&dir, "folder.json", &config);
        let out = twinroute(&["validate", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{folder}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn validate_refuses_the_sas_uris_run_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let sas = "https://acct.blob.core.windows.net/dlq?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00:00:00Z&sig=SIGSECRET";
    for (bad, expected) in [
        (sas.replace("&sig=SIGSECRET", ""), "has no signature (sig)"),
        (
            sas.replace("se=2099", "se=2020"),
            "expired at 2020-01-01T00:00:00Z (se)",
        ),
        (
            sas.replace("sp=cw", "sp=rl"),
            "include neither write (w) nor create (c)",
        ),
        (sas.replace("/dlq?", "/?"), "does not name a container"),
    ] {
        let path = write(&dir, "sas.json", &SECRET_CONFIG.replace(sas, &bad));
        let out = twinroute(&["validate", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("sas.json: endpoints.hub1.properties.deadLetterSecret: ")
                && stderr.contains(expected),
            "{bad}: {stderr}"
        );
        assert!(!stderr.contains("SIGSECRET"), "{stderr}");
    }
}

#[test]
fn an_unwritable_ledger_or_report_is_refused_before_the_run_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "ok.json",
        r#"{"version": 1,
            "endpoints": {"hub1": {"properties": {"endpointType": "EventHub"}, "simulate": {}}},
            "routes": {"r1": {"endpointName": "hub1", "filter": "true"}},
            "workload": {"seed": 3, "twins": 20, "count": 50}}"#,
    );
    for (flag, other) in [("--ledger", "--report"), ("--report", "--ledger")] {
        let out = twinroute_in(
            &dir,
            &[
                "run",
                "ok.json",
                "--virtual-time",
                flag,
                "no-such-folder/file.json",
                other,
                "other.json",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "twinroute: {flag} no-such-folder/file.json: cannot create"
            )),
            "{flag}: {stderr}"
        );
        assert!(!stderr.contains("balanced"), "nothing ran: {stderr}");
    }
}

#[test]
fn duplicate_keys_are_refused_naming_the_file_both_lines_and_the_path_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Two "hub-a" endpoints (the second would replace the first) and, inside the first, two
    // "delivery" objects.
    write(
        &dir,
        "dup.json",
        r#"{"version": 1,
  "endpoints": {
    "hub-a": {"properties": {"endpointType": "EventHub"}, "simulate": {},
              "delivery": {"concurrency": 1},
              "delivery": {"maxDeliveryAttempts": 3}},
    "hub-a": {"properties": {"endpointType": "EventHub"}, "simulate": {}}
  },
  "routes": {"r1": {"endpointName": "hub-a", "filter": "true"}},
  "workload": {"seed": 3, "twins": 20, "count": 50}}"#,
    );
    for args in [
        &["validate", "dup.json"][..],
        &["validate", "dup.json", "--show"],
        &["run", "dup.json", "--virtual-time"],
    ] {
        let out = twinroute_in(&dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "dup.json: endpoints.hub-a.delivery: duplicate key at line 5 (first endpoints.hub-a.delivery at line 4)"
            ),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(
                "dup.json: endpoints.hub-a: duplicate key at line 6 (first endpoints.hub-a at line 3)"
            ),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("balanced"), "nothing ran: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn filter_reports_a_line_of_invalid_utf8_by_number_and_goes_on() {
    use std::io::Write;
    let event =
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2026-01-01T00:00:00Z"}"#;
    let mut input = Vec::new();
    input.extend_from_slice(format!("{event}\n").as_bytes());
    input.extend_from_slice(b"{\"id\":\"\xff\xfe\"}\n");
    input.extend_from_slice(b"not json\n");
    input.extend_from_slice(format!("{event}\n").as_bytes());
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .args(["filter", "type = 't'"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "true\nerror\nerror\ntrue\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("stdin: line 2: not valid UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stdin: line 3: not a structured CloudEvent"),
        "{stderr}"
    );
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write(
        &dir,
        "hook.json",
        &format!(
            r#"{{"version": 1,
                "endpoints": {{"hook": {{"properties": {{"endpointType": "Webhook", "endpointUri": "http://127.0.0.1:{port}/"}},
                                        "delivery": {{"maxDeliveryAttempts": 1}}}}}},
                "routes": {{"all": {{"endpointName": "hook", "filter": "true"}}}},
                "workload": {{"seed": 3, "twins": 5, "count": 2}}}}"#
        ),
    );
    for no_color in [None, Some("1")] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_twinroute"));
        command
            .current_dir(dir.path())
            .env("TWINROUTE_LOG", "debug")
            .env_remove("NO_COLOR")
            .args(["run", "hook.json"]);
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DEBUG"), "a log line was written: {stderr}");
        assert!(!stderr.contains('\x1b'), "{no_color:?}: {stderr:?}");
    }
}
