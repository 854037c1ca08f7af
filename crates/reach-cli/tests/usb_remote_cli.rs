//! The technician's `reach login` and `reach usb remote …` against a real server, with the real
//! `reach agent --usb-backend fake` process sharing the demo device: the whole path as a user
//! runs it.

mod common;

use std::process::Output;

use common::{Host, World, reach, run};
use serde_json::Value;

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_logs_in_then_lists_and_opens_a_remote_device_from_the_command_line() {
    let world = World::start().await;
    let tech_dir = &world.tech_dir;
    let stored = tech_dir.path().join("login.json");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let host = Host::start(&world, Some("0525")).await;
    let session_id = &world.session(&host.machine_id, true).await;

    let list = json_of(
        &run(reach(tech_dir.path()).args([
            "usb",
            "remote",
            "list",
            "--session",
            session_id,
            "--json",
        ]))
        .await,
    );
    assert_eq!(list["devices"][0]["vendor_id"], "0525", "{list}");
    let open = json_of(
        &run(reach(tech_dir.path()).args([
            "usb",
            "remote",
            "open",
            "--session",
            session_id,
            "--vendor-id",
            "0525",
            "--echo",
            "1048576",
            "--json",
        ]))
        .await,
    );
    assert_eq!(open["echo_bytes"], 1048576, "{open}");
    assert_eq!(
        open["device_descriptor"].as_str().unwrap().len(),
        36,
        "{open}"
    );

    let anonymous = run(reach(tempfile::tempdir().unwrap().path()).args([
        "usb",
        "remote",
        "list",
        "--session",
        session_id,
    ]))
    .await;
    assert!(!anonymous.status.success());
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("reach login"));
    world.running.shutdown().await.unwrap();
}
