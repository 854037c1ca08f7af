//! Runs inside the QEMU guest of `shared/qemu-usb` (see `scripts/qemu-usb-test.sh`): the usbfs
//! backend through the full protocol stack against dummy_hcd gadgets. Prints `PASS <name>` or
//! `FAIL <name>: why` per check and exits non-zero on any failure.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reach_usb::UsbError;
use reach_usb::backend::UsbBackend;
use reach_usb::backend::usbfs::UsbfsBackend;
use reach_usb::client::{UsbClient, UsbHandle};
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{AllowAll, HostRunner, memory_pair};
use reach_usb::proto::{DeviceFilter, Setup, TransferKind, TransferRequest};

fn client() -> UsbClient {
    let (host_end, client_end) = memory_pair();
    let backend: Arc<dyn UsbBackend> = Arc::new(UsbfsBackend::new());
    let runner = HostRunner::new(
        HostSession::new(HostConfig::enabled(), Instant::now()),
        backend,
        Arc::new(AllowAll),
        "qemu",
    );
    tokio::spawn(runner.serve(host_end));
    UsbClient::connect(client_end).with_timeout(Duration::from_secs(180))
}

fn ids(vendor: u16, product: u16) -> DeviceFilter {
    DeviceFilter {
        vendor_id: Some(vendor),
        product_id: Some(product),
        ..Default::default()
    }
}

fn bulk_endpoints(h: &UsbHandle) -> (u8, u8) {
    let eps: Vec<_> = h
        .device()
        .interfaces
        .iter()
        .flat_map(|i| i.endpoints.iter())
        .filter(|e| e.kind == "bulk")
        .collect();
    let ep_in = eps
        .iter()
        .find(|e| e.address & 0x80 != 0)
        .map_or(0x81, |e| e.address);
    let ep_out = eps
        .iter()
        .find(|e| e.address & 0x80 == 0)
        .map_or(0x01, |e| e.address);
    (ep_in, ep_out)
}

/// IN transfer size for the echo.
const IN_SIZE: u32 = 16 * 1024;
/// IN transfers kept queued during the echo.
const IN_FLIGHT: usize = 8;

async fn descriptor_and_echo(c: &UsbClient) -> Result<String, String> {
    let h = c
        .open(ids(0x0525, 0xa4a0))
        .await
        .map_err(|e| e.to_string())?;
    let result = echo(&h).await;
    h.close().await;
    result
}

async fn echo(h: &UsbHandle) -> Result<String, String> {
    let started = Instant::now();
    let desc = h
        .control_in(Setup::get_device_descriptor())
        .await
        .map_err(|e| e.to_string())?;
    if desc.len() != 18 || desc[8..12] != [0x25, 0x05, 0xa0, 0xa4] {
        return Err(format!("descriptor {desc:02x?}"));
    }
    let (ep_in, ep_out) = bulk_endpoints(h);
    eprintln!("descriptor ok; endpoints in {ep_in:#04x} out {ep_out:#04x}");
    let small = h
        .bulk_out(ep_out, Bytes::from_static(b"hello-reach"))
        .await
        .map_err(|e| format!("small OUT: {e}"))?;
    let back = h
        .bulk_in(ep_in, 512)
        .await
        .map_err(|e| format!("small IN: {e}"))?;
    eprintln!(
        "small echo: wrote {small}, read {:?}",
        String::from_utf8_lossy(&back)
    );
    let data: Vec<u8> = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    // The 1 MiB goes out as 32 pipelined 32 KiB OUT transfers (many in flight at once).
    let mut outs = Vec::new();
    for chunk in data.chunks(32 * 1024) {
        let req = TransferRequest {
            kind: TransferKind::Bulk(ep_out),
            flags: Default::default(),
            timeout_ms: 0,
            length: chunk.len() as u32,
            data: Bytes::copy_from_slice(chunk),
        };
        outs.push(h.submit(req).await.map_err(|e| e.to_string())?);
    }
    let out_count = outs.len();
    let out = tokio::spawn(async move {
        let mut total = 0u32;
        for p in outs {
            total += p.wait().await?.actual_length;
        }
        Ok::<_, UsbError>(reach_usb::proto::TransferReply {
            status: reach_usb::proto::TransferStatus::Ok,
            actual_length: total,
            data: Bytes::new(),
        })
    });
    let mut got = Vec::with_capacity(data.len());
    let mut pending = std::collections::VecDeque::new();
    let mut max_in_flight = 0;
    while got.len() < data.len() {
        while pending.len() < IN_FLIGHT {
            let req = TransferRequest {
                kind: TransferKind::Bulk(ep_in),
                flags: Default::default(),
                timeout_ms: 0,
                length: IN_SIZE,
                data: Bytes::new(),
            };
            pending.push_back(h.submit(req).await.map_err(|e| e.to_string())?);
        }
        max_in_flight = max_in_flight.max(pending.len() + out_count);
        let Some(p) = pending.pop_front() else { break };
        let reply = tokio::time::timeout(Duration::from_secs(30), p.wait())
            .await
            .map_err(|_| {
                format!(
                    "IN stuck after {} bytes (big OUT finished: {})",
                    got.len(),
                    out.is_finished()
                )
            })?
            .map_err(|e| format!("IN after {} bytes: {e}", got.len()))?;
        if reply.status != reach_usb::proto::TransferStatus::Ok {
            return Err(format!(
                "IN after {} bytes ended {:?} with {} bytes",
                got.len(),
                reply.status,
                reply.actual_length
            ));
        }
        got.extend_from_slice(&reply.data);
    }
    let written = out
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("big OUT: {e}"))?;
    for p in pending {
        h.cancel(p.request_id);
        let _ = p.wait().await;
    }
    got.truncate(data.len());
    if got != data || written.actual_length as usize != data.len() {
        return Err(format!(
            "echo mismatch: wrote {}, read {} bytes",
            written.actual_length,
            got.len()
        ));
    }
    // Then: a full-packet OUT only ends the gadget's request with a zero-length packet after it.
    let zlp = TransferRequest {
        kind: TransferKind::Bulk(ep_out),
        flags: reach_usb::proto::TransferFlags(reach_usb::proto::TransferFlags::ZERO_PACKET),
        timeout_ms: 0,
        length: 512,
        data: Bytes::from(vec![7u8; 512]),
    };
    h.submit(zlp)
        .await
        .map_err(|e| e.to_string())?
        .wait()
        .await
        .map_err(|e| format!("ZLP OUT: {e}"))?;
    let zlp_back = tokio::time::timeout(Duration::from_secs(10), h.bulk_in(ep_in, 4096))
        .await
        .map_err(|_| "no data after a ZLP-terminated OUT".to_owned())?
        .map_err(|e| format!("ZLP IN: {e}"))?;
    if zlp_back.len() != 512 {
        return Err(format!("ZLP echo returned {} bytes", zlp_back.len()));
    }

    if got != data || written.actual_length as usize != data.len() {
        return Err(format!(
            "echo mismatch: wrote {}, read {} bytes",
            written.actual_length,
            got.len()
        ));
    }
    Ok(format!(
        "descriptor ok, 1 MiB echo byte-exact in {:.1} s ({out_count} OUT transfers submitted at once, up to {max_in_flight} in flight)",
        started.elapsed().as_secs_f64()
    ))
}

fn drivers(bus_id: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/bus/usb/devices") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(&format!("{bus_id}:")) {
            let driver = std::fs::read_link(e.path().join("driver"))
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().to_string()));
            out.push((name, driver));
        }
    }
    out.sort();
    out
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn detach_and_reattach(c: &UsbClient) -> Result<String, String> {
    let bus_id = c
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|d| d.vendor_id == 0x1d6b && d.product_id == 0x0104)
        .ok_or("composite gadget not listed")?
        .bus_id;
    let before = drivers(&bus_id);
    let h = c
        .open(ids(0x1d6b, 0x0104))
        .await
        .map_err(|e| e.to_string())?;
    let during = drivers(&bus_id);
    h.close().await;
    if during
        .iter()
        .any(|(_, d)| d.as_deref().is_some_and(|d| d != "usbfs"))
    {
        return Err(format!(
            "kernel drivers still bound while claimed: {during:?}"
        ));
    }
    let back = wait_until(|| drivers(&bus_id) == before).await;
    if !back {
        return Err(format!(
            "drivers not restored after close: before {before:?}, after {:?}",
            drivers(&bus_id)
        ));
    }
    Ok(format!(
        "before {before:?}; during claim {during:?}; restored after close"
    ))
}

async fn hot_unplug(c: &UsbClient, udc_file: &Path) -> Result<String, String> {
    let h = c
        .open(ids(0x0525, 0xa4a0))
        .await
        .map_err(|e| e.to_string())?;
    let (ep_in, _) = bulk_endpoints(&h);
    let req = TransferRequest {
        kind: TransferKind::Bulk(ep_in),
        flags: Default::default(),
        timeout_ms: 0,
        length: 512,
        data: Bytes::new(),
    };
    let pending = h.submit(req).await.map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(udc_file, "\n").map_err(|e| format!("unbind UDC: {e}"))?;
    let result = tokio::time::timeout(Duration::from_secs(10), pending.wait())
        .await
        .map_err(|_| "pending transfer never completed".to_owned())?;
    let no_device = matches!(
        result,
        Err(UsbError::NoDevice(_)) | Err(UsbError::Closed(_))
    ) || matches!(result, Ok(ref r) if r.status == reach_usb::proto::TransferStatus::NoDevice);
    if !no_device {
        return Err(format!("pending transfer ended with {result:?}"));
    }
    let after = h.bulk_in(ep_in, 512).await;
    if !matches!(after, Err(UsbError::Closed(_))) {
        return Err(format!("claim not closed after unplug: {after:?}"));
    }
    std::fs::write(udc_file, "dummy_udc.1\n").map_err(|e| format!("rebind UDC: {e}"))?;
    let c2 = c.clone();
    let reopened = async {
        for _ in 0..50 {
            if let Ok(h) = c2.open(ids(0x0525, 0xa4a0)).await {
                return Some(h);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
    .await
    .ok_or("device not reopenable after re-plug")?;
    reopened.close().await;
    Ok(format!(
        "pending transfer -> {result:?}; claim closed; re-plugged device opens again"
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let c = client();
    let mut failed = false;
    let mut report = |name: &str, r: Result<String, String>| match r {
        Ok(text) => println!("PASS {name}: {text}"),
        Err(why) => {
            failed = true;
            println!("FAIL {name}: {why}");
        }
    };
    let listed = UsbfsBackend::new().list().await.map_err(|e| e.to_string());
    report(
        "list",
        listed.map(|d| {
            d.iter()
                .map(|d| format!("{} {:04x}:{:04x}", d.bus_id, d.vendor_id, d.product_id))
                .collect::<Vec<_>>()
                .join(", ")
        }),
    );
    report("loopback_gadget", descriptor_and_echo(&c).await);
    report("driver_detach_reattach", detach_and_reattach(&c).await);
    let udc = Path::new("/sys/kernel/config/usb_gadget/g2/UDC");
    report("hot_unplug", hot_unplug(&c, udc).await);
    std::process::exit(i32::from(failed));
}
