//! `reach usb …` run as a real process against a temporary config directory.

use std::path::Path;
use std::process::{Command, Output};

fn reach(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reach"))
        .args(args)
        .env("REACH_CONFIG_DIR", dir)
        .env_remove("REACH_USB_PASSTHROUGH")
        .env_remove("REACH_USB_BACKEND")
        .output()
        .expect("reach runs")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn list_on_a_machine_without_usb_bus_says_so_without_error() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(&reach(dir.path(), &["usb", "list", "--json"]));
    assert_eq!(v["devices"], serde_json::json!([]));
    if !Path::new("/sys/bus/usb/devices").exists() {
        assert_eq!(v["usb_bus"], false);
        let text = reach(dir.path(), &["usb", "list"]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("No USB bus"));
    }
}

#[test]
fn passthrough_is_off_by_default_and_enable_persists() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        json(&reach(dir.path(), &["usb", "status", "--json"]))["enabled"],
        false
    );
    assert_eq!(
        json(&reach(dir.path(), &["usb", "enable", "--json"]))["source"],
        "config"
    );
    assert_eq!(
        json(&reach(dir.path(), &["usb", "status", "--json"]))["enabled"],
        true
    );
    json(&reach(dir.path(), &["usb", "disable", "--json"]));
    assert_eq!(
        json(&reach(dir.path(), &["usb", "status", "--json"]))["enabled"],
        false
    );
}

#[test]
fn acl_edits_are_signed_and_tampering_fails_closed_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(&reach(
        dir.path(),
        &[
            "usb",
            "acl",
            "add",
            "--vendor-id",
            "0525",
            "--product-id",
            "a4a0",
            "--json",
        ],
    ));
    assert_eq!(
        (v["integrity_ok"].clone(), v["signed"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(v["rules"][0]["vendor_id"], "0525");
    let listed = json(&reach(
        dir.path(),
        &["usb", "--backend", "fake", "list", "--json"],
    ));
    assert_eq!(listed["devices"][0]["verdict"], "allow");

    let acl = dir.path().join("usb-acl.json");
    let text = std::fs::read_to_string(&acl)
        .unwrap()
        .replace("a4a0", "a4a1");
    std::fs::write(&acl, text).unwrap();
    let v = json(&reach(dir.path(), &["usb", "acl", "list", "--json"]));
    assert_eq!(v["integrity_ok"], false);
    let listed = json(&reach(
        dir.path(),
        &["usb", "--backend", "fake", "list", "--json"],
    ));
    assert_eq!(
        (
            listed["acl_integrity_ok"].clone(),
            listed["devices"][0]["verdict"].clone()
        ),
        (false.into(), "deny".into())
    );
    let refused = reach(dir.path(), &["usb", "acl", "add", "--vendor-id", "1234"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("integrity"));
}

#[test]
fn acl_export_and_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    json(&reach(
        dir.path(),
        &["usb", "acl", "default", "allow", "--json"],
    ));
    let export = dir.path().join("exported.json");
    assert!(
        reach(
            dir.path(),
            &["usb", "acl", "export", export.to_str().unwrap()]
        )
        .status
        .success()
    );
    let other = tempfile::tempdir().unwrap();
    let v = json(&reach(
        other.path(),
        &["usb", "acl", "import", export.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        (v["default"].clone(), v["signed"].clone()),
        ("allow".into(), true.into())
    );
    std::fs::write(&export, "{\"version\":9,\"default\":\"allow\"}").unwrap();
    assert!(
        !reach(
            other.path(),
            &["usb", "acl", "import", export.to_str().unwrap()]
        )
        .status
        .success()
    );
}

#[test]
fn loopback_open_reads_the_descriptor_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    json(&reach(dir.path(), &["usb", "enable", "--json"]));
    let denied = reach(
        dir.path(),
        &["usb", "--backend", "fake", "loopback", "open", "--json"],
    );
    assert!(!denied.status.success(), "default deny");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("denied by ACL policy"));
    json(&reach(
        dir.path(),
        &["usb", "acl", "add", "--vendor-id", "0525", "--json"],
    ));
    let listed = json(&reach(
        dir.path(),
        &["usb", "--backend", "fake", "loopback", "list", "--json"],
    ));
    assert_eq!(listed["devices"][0]["product_id"], "a4a0");
    let v = json(&reach(
        dir.path(),
        &[
            "usb",
            "--backend",
            "fake",
            "loopback",
            "open",
            "--vendor-id",
            "0525",
            "--json",
        ],
    ));
    assert_eq!(v["descriptor_ids"], "0525:a4a0");
    assert_eq!(v["device_descriptor"].as_str().unwrap().len(), 36);
    let audit = json(&reach(dir.path(), &["usb", "audit", "verify", "--json"]));
    assert_eq!(audit["ok"], true);

    let log = dir.path().join("usb-audit.jsonl");
    let edited = std::fs::read_to_string(&log)
        .unwrap()
        .replacen("\"open\"", "\"opne\"", 1);
    std::fs::write(&log, edited).unwrap();
    let broken = reach(dir.path(), &["usb", "audit", "verify", "--json"]);
    assert!(!broken.status.success());
    let v: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["broken_at_id"].clone()),
        (false.into(), 1.into())
    );
}

#[test]
fn loopback_is_refused_while_passthrough_is_off_and_the_refusal_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    json(&reach(
        dir.path(),
        &["usb", "acl", "add", "--vendor-id", "0525", "--json"],
    ));
    for args in [
        &["usb", "--backend", "fake", "loopback", "open", "--json"][..],
        &["usb", "--backend", "fake", "loopback", "list", "--json"][..],
    ] {
        let refused = reach(dir.path(), args);
        assert!(!refused.status.success(), "{args:?} must fail while off");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("usb passthrough is disabled on this host (reach usb enable)"),
            "{stderr}"
        );
    }
    let audit = std::fs::read_to_string(dir.path().join("usb-audit.jsonl")).unwrap();
    assert_eq!(audit.matches("usb passthrough is disabled").count(), 2);
    assert!(!audit.contains("\"opened\""));

    json(&reach(dir.path(), &["usb", "enable", "--json"]));
    let v = json(&reach(
        dir.path(),
        &["usb", "--backend", "fake", "loopback", "open", "--json"],
    ));
    assert_eq!(v["descriptor_ids"], "0525:a4a0");
    json(&reach(dir.path(), &["usb", "disable", "--json"]));
    assert!(
        !reach(
            dir.path(),
            &["usb", "--backend", "fake", "loopback", "open", "--json"]
        )
        .status
        .success()
    );
}
