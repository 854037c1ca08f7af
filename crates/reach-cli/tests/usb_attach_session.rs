//! `reach usb attach --session`: the remote host's device reaches this machine's vhci through a
//! live session (real server, real `reach agent --usb-backend fake` process, the technician's
//! `reach login`). This machine has no vhci-hcd, so vhci is a directory of plain files here (the
//! kernel then closes nothing and the pump ends at once) and the USB/IP side is driven by the test
//! in the pump case; scripts/qemu-usb-test.sh runs the same commands against a real kernel.

mod common;

use std::path::Path;
use std::process::Output;

use bytes::Bytes;
use common::{Host, WAIT, World, reach, run};
use reach_usb::proto::DeviceFilter;
use reach_usbip::counters::{AttachState, Counters, Throughput, write_state};
use reach_usbip::pump::{PumpEnd, pump_counted};
use reach_usbip::request::EndpointTable;
use reach_usbip::wire::{CmdSubmit, Direction, Reply, decode_reply};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A vhci directory with `attach`, `detach` and one free high-speed and super-speed port.
fn fake_vhci() -> tempfile::TempDir {
    let vhci = tempfile::tempdir().unwrap();
    std::fs::write(vhci.path().join("attach"), "").unwrap();
    std::fs::write(vhci.path().join("detach"), "").unwrap();
    let status = "hub port sta spd dev      sockfd local_busid\n\
         hs  0000 004 000 00000000 000000 0-0\n\
         ss  0001 004 000 00000000 000000 0-0\n";
    std::fs::write(vhci.path().join("status"), status).unwrap();
    vhci
}

async fn attach(config_dir: &Path, vhci: &Path, args: &[&str]) -> Output {
    let mut cmd = reach(config_dir);
    cmd.args(["usb", "attach", "--vhci-dir", vhci.to_str().unwrap()])
        .args(args);
    run(&mut cmd).await
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_through_a_session_claims_the_remote_device_hands_it_to_vhci_and_releases_it() {
    let world = World::start().await;
    let host = Host::start(&world, Some("0525")).await;
    let session = world.session(&host.machine_id, true).await;
    let vhci = fake_vhci();
    let args = ["--session", &session, "--device", "0525:a4a0", "--json"];
    let out = attach(world.tech_dir.path(), vhci.path(), &args).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "claimed", "{text}");
    assert_eq!(events[0]["device"]["vendor_id"], "0525", "{text}");
    assert_eq!(events[1]["event"], "attached", "{text}");
    assert_eq!(events.last().unwrap()["event"], "ended", "{text}");
    // Port 0, the socket's fd, devid, high speed (3).
    let written = std::fs::read_to_string(vhci.path().join("attach")).unwrap();
    let fields: Vec<&str> = written.split(' ').collect();
    assert_eq!((fields[0], fields[3]), ("0", "3"), "{written}");
    // The port's throughput file went with the device.
    let state = world.tech_dir.path().join("attached").join("port-0.json");
    assert!(!state.exists(), "{}", state.display());

    // The claim was released: the device opens again in the same session.
    let again = run(reach(world.tech_dir.path()).args([
        "usb",
        "remote",
        "open",
        "--session",
        &session,
        "--vendor-id",
        "0525",
    ]))
    .await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    world.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_through_a_session_refuses_clearly_without_usb_an_acl_rule_or_a_login() {
    let world = World::start().await;
    // No ACL rule on this host: every device is denied.
    let host = Host::start(&world, None).await;
    let vhci = fake_vhci();
    let device = ["--device", "0525:a4a0"];

    let without_usb = world.session(&host.machine_id, false).await;
    let out = attach(
        world.tech_dir.path(),
        vhci.path(),
        &[&["--session", &without_usb][..], &device].concat(),
    )
    .await;
    let err = failure(&out);
    assert!(err.contains("USB is not available in session"), "{err}");

    let with_usb = world.session(&host.machine_id, true).await;
    let out = attach(
        world.tech_dir.path(),
        vhci.path(),
        &[&["--session", &with_usb][..], &device].concat(),
    )
    .await;
    let err = failure(&out);
    assert!(err.contains("the host denied the device"), "{err}");
    assert!(err.contains("reach usb acl add"), "{err}");

    let stranger = tempfile::tempdir().unwrap();
    let out = attach(
        stranger.path(),
        vhci.path(),
        &[&["--session", &with_usb][..], &device].concat(),
    )
    .await;
    let err = failure(&out);
    assert!(err.contains("not logged in: run `reach login"), "{err}");
    // Nothing was handed to vhci.
    assert_eq!(
        std::fs::read_to_string(vhci.path().join("attach")).unwrap(),
        ""
    );
    world.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn attach_takes_exactly_one_of_a_session_or_a_direct_host() {
    let dir = tempfile::tempdir().unwrap();
    let vhci = fake_vhci();
    let both = [
        "--session",
        "s1",
        "--via",
        "tcp://127.0.0.1:9",
        "--device",
        "0525:a4a0",
    ];
    let err = failure(&attach(dir.path(), vhci.path(), &both).await);
    assert!(err.contains("cannot be used with"), "{err}");
    let neither = failure(&attach(dir.path(), vhci.path(), &["--device", "0525:a4a0"]).await);
    assert!(neither.contains("--session"), "{neither}");
}

/// Reads one USB/IP reply from the pump's socket (bounded).
async fn reply(sock: &mut UnixStream, buf: &mut Vec<u8>, ins: &[u32]) -> Reply {
    loop {
        if let Some((r, used)) = decode_reply(buf, |s| ins.contains(&s)).unwrap() {
            buf.drain(..used);
            return r;
        }
        let mut chunk = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(WAIT, sock.read(&mut chunk))
            .await
            .expect("a reply in time")
            .unwrap();
        assert!(n > 0, "the pump closed the socket");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn submit(seqnum: u32, ep: u8, direction: Direction, len: u32, data: &[u8]) -> Bytes {
    CmdSubmit {
        seqnum,
        devid: 1,
        direction,
        ep,
        transfer_flags: 0,
        buffer_length: len,
        interval: 0,
        setup: [0; 8],
        data: Bytes::copy_from_slice(data),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urbs_from_vhci_reach_the_remote_device_through_the_session_and_come_back_byte_exact() {
    let world = World::start().await;
    let host = Host::start(&world, Some("0525")).await;
    let session = world.session(&host.machine_id, true).await;
    let mut viewer = world.api.join(&session).await.unwrap().into_live();
    let client = viewer.usb_client().unwrap();
    let handle = client.open(DeviceFilter::default()).await.unwrap();
    let table = EndpointTable::from_device(handle.device());
    let (ours, mut vhci) = UnixStream::pair().unwrap();
    let counters = std::sync::Arc::new(Counters::default());
    let pumping = tokio::spawn(pump_counted(handle, ours, table, counters.clone()));

    // 256 KiB through the fake loopback (bulk OUT 0x02 → bulk IN 0x81), 16 KiB URBs, 8 of each
    // in flight at a time, as usb-serial or usb-storage would queue them.
    let (mut sent, mut got, mut buf) = (Vec::new(), Vec::new(), Vec::new());
    let chunk = 16 << 10;
    for round in 0..2u32 {
        let mut ins = Vec::new();
        for i in 0..8u32 {
            let seq = 1000 * (round + 1) + i;
            ins.push(seq);
            vhci.write_all(&submit(seq, 1, Direction::In, chunk, &[]))
                .await
                .unwrap();
        }
        for i in 0..8u32 {
            let data: Vec<u8> = (0..chunk).map(|b| (b * 31 + i + round) as u8).collect();
            sent.extend_from_slice(&data);
            let seq = 1000 * (round + 1) + 100 + i;
            vhci.write_all(&submit(seq, 2, Direction::Out, chunk, &data))
                .await
                .unwrap();
        }
        for _ in 0..16 {
            match reply(&mut vhci, &mut buf, &ins).await {
                Reply::Submit(r) => {
                    assert_eq!(r.status, 0, "seqnum {}", r.seqnum);
                    if ins.contains(&r.seqnum) {
                        got.extend_from_slice(&r.data);
                    }
                }
                other => panic!("expected RET_SUBMIT, got {other:?}"),
            }
        }
    }
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the echo differs");
    let counted = counters.snapshot();
    let total = sent.len() as u64;
    assert_eq!(
        (counted.bytes_out, counted.bytes_in, counted.transfers),
        (total, total, 32),
        "throughput counters"
    );

    // vhci closing its end (a detach) ends the pump as Detached.
    drop(vhci);
    let end = tokio::time::timeout(WAIT, pumping).await.unwrap().unwrap();
    assert!(matches!(end, PumpEnd::Detached), "{end:?}");
    viewer.leave().await;
    world.running.shutdown().await.unwrap();
}

/// The `usb_passthrough` records of the server's audit log with `action` (bounded wait).
async fn server_records(world: &World, action: &str, count: usize) -> Vec<Value> {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let page = world.api.get_json("/api/audit?limit=500").await.unwrap();
            let items: Vec<Value> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| {
                    r["event_type"] == "usb_passthrough" && r["details"]["action"] == action
                })
                .cloned()
                .collect();
            if items.len() >= count {
                return items;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    found
        .await
        .unwrap_or_else(|_| panic!("no {action} record on the server"))
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_detach_are_audited_on_the_host_and_the_server_with_the_technicians_host_name() {
    let world = World::start().await;
    let host = Host::start(&world, Some("0525")).await;
    let session = world.session(&host.machine_id, true).await;
    let vhci = fake_vhci();
    let args = ["--session", &session, "--device", "0525:a4a0"];
    let out = attach(world.tech_dir.path(), vhci.path(), &args).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("detached from vhci port 0"), "{text}");

    let me = this_host();
    for action in ["attached", "detached"] {
        let records = server_records(&world, action, 1).await;
        let r = &records[0];
        assert_eq!(r["details"]["technician_host"], me.as_str(), "{r}");
        assert_eq!(r["details"]["vendor_id"], "0525", "{r}");
        assert_eq!(r["details"]["session_id"], session.as_str(), "{r}");
        assert!(r["actor"].as_str().unwrap().contains("admin"), "{r}");
    }
    // The host's own chain has both, with the same host name.
    let local = std::fs::read_to_string(host.dir.path().join("usb-audit.jsonl")).unwrap();
    let local: Vec<Value> = local
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for action in ["attached", "detached"] {
        let r = local
            .iter()
            .find(|r| r["details"]["action"] == action)
            .unwrap_or_else(|| panic!("no local {action} record"));
        assert_eq!(r["details"]["technician_host"], me.as_str(), "{r}");
    }
    world.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn attached_lists_each_port_with_the_throughput_its_attach_publishes() {
    let config = tempfile::tempdir().unwrap();
    let vhci = tempfile::tempdir().unwrap();
    let status = "hub port sta spd dev      sockfd local_busid\n\
         hs  0000 006 003 00010002 000003 3-1\n\
         hs  0001 004 000 00000000 000000 0-0\n";
    std::fs::write(vhci.path().join("status"), status).unwrap();
    let state = AttachState {
        port: 0,
        pid: 42,
        device: "0525:a4a0".into(),
        throughput: Throughput {
            bytes_out: 1_048_576,
            bytes_in: 2048,
            transfers: 70,
        },
    };
    write_state(&config.path().join("attached"), &state).unwrap();
    let vhci_dir = vhci.path().to_str().unwrap();
    let out =
        run(reach(config.path()).args(["usb", "attached", "--json", "--vhci-dir", vhci_dir])).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let first = &v["attached"][0];
    assert_eq!(first["port"], 0, "{text}");
    assert_eq!(first["throughput"]["bytes_out"], 1_048_576, "{text}");
    assert_eq!(first["throughput"]["transfers"], 70, "{text}");
    assert_eq!(first["attach_pid"], 42, "{text}");
    assert_eq!(v["attached"].as_array().unwrap().len(), 1, "{text}");

    let out = run(reach(config.path()).args(["usb", "attached", "--vhci-dir", vhci_dir])).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("out 1048576 B, in 2048 B, 70 transfers"),
        "{text}"
    );
}
