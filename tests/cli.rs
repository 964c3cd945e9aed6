//! The command line, as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn twinroute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinroute"))
        .args(args)
        .output()
        .expect("runs")
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
      "deadLetterSecret": "https://acct.blob.core.windows.net/dl?sv=2022-11-02&sp=cw&sig=SIGSECRET" } }
  },
  "routes": { "r1": { "endpointName": "hub1", "filter": "true" } },
  "workload": { "seed": 9, "twins": 50, "count": 200 }
}"#;

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
        "https://acct.blob.core.windows.net/dl?***"
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
    for command in ["validate", "generate", "run", "demo"] {
        let out = twinroute(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{command} --help"
        );
    }
}
