//! `reach usb attach` / `serve` as real processes: a host served over loopback TCP with the fake
//! backend, and a vhci sysfs directory made of plain files (this machine has no vhci-hcd; the
//! real kernel path is covered by scripts/qemu-usb-test.sh).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn reach(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.env("REACH_CONFIG_DIR", dir)
        .env("REACH_USB_BACKEND", "fake")
        .env_remove("REACH_USB_PASSTHROUGH");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    reach(dir).args(args).output().expect("reach runs")
}

/// `reach usb serve` on an ephemeral loopback port; returns the child and `tcp://…`.
struct Served(Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path) -> Served {
    let mut child = reach(dir)
        .args(["usb", "serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("serve prints its address");
    let url = line
        .trim()
        .strip_prefix("serving USB on ")
        .expect(&line)
        .to_owned();
    Served(child, url)
}

/// A vhci directory with `attach` and a `status` of one high-speed and one super-speed port.
fn fake_vhci(hs_state: &str) -> tempfile::TempDir {
    let vhci = tempfile::tempdir().unwrap();
    std::fs::write(vhci.path().join("attach"), "").unwrap();
    let status = format!(
        "hub port sta spd dev      sockfd local_busid\n\
         hs  0000 {hs_state} 000 00000000 000000 0-0\n\
         ss  0001 004 000 00000000 000000 0-0\n"
    );
    std::fs::write(vhci.path().join("status"), status).unwrap();
    vhci
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn attach_without_vhci_hcd_says_to_load_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("vhci_hcd.0");
    let out = run(
        dir.path(),
        &[
            "usb",
            "attach",
            "--via",
            "tcp://127.0.0.1:9",
            "--device",
            "0525:a4a0",
            "--vhci-dir",
            missing.to_str().unwrap(),
        ],
    );
    assert!(stderr(&out).contains("modprobe vhci-hcd"));
}

#[test]
fn attach_of_a_device_the_host_acl_denies_says_who_to_ask() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["usb", "enable"]);
    let served = serve(dir.path());
    let vhci = fake_vhci("004");
    let out = run(
        dir.path(),
        &[
            "usb",
            "attach",
            "--via",
            &served.1,
            "--device",
            "0525:a4a0",
            "--vhci-dir",
            vhci.path().to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert!(err.contains("the host denied the device"), "{err}");
    assert_eq!(
        std::fs::read_to_string(vhci.path().join("attach")).unwrap(),
        ""
    );
}

#[test]
fn attach_with_every_port_of_that_speed_in_use_says_to_detach_one() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["usb", "enable"]);
    run(dir.path(), &["usb", "acl", "add", "--vendor-id", "0525"]);
    let served = serve(dir.path());
    // The fake device is high speed; the only high-speed port is in use.
    let vhci = fake_vhci("006");
    let out = run(
        dir.path(),
        &[
            "usb",
            "attach",
            "--via",
            &served.1,
            "--device",
            "0525:a4a0",
            "--vhci-dir",
            vhci.path().to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains("no free high-speed (USB 2) vhci port"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("claimed 0525:a4a0"));
}

#[test]
fn serve_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["usb", "serve", "--listen", "0.0.0.0:0"]);
    assert!(stderr(&out).contains("not a loopback address"));
}
