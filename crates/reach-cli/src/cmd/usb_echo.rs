//! `reach usb remote open --echo BYTES`: a byte-exact check of a loopback device through the
//! session — what goes out on its first bulk OUT endpoint must come back on its first bulk IN
//! (the kernel's loopback gadget `0525:a4a0` and the fake demo device both echo 0x02 → 0x81).
//!
//! OUT transfers are all submitted at once and INs kept queued, so many are in flight, as a
//! kernel driver would have them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use reach_usb::client::UsbHandle;
use reach_usb::proto::{TransferKind, TransferRequest, TransferStatus};

/// OUT transfer size.
const OUT_SIZE: usize = 32 * 1024;
/// IN transfer size.
const IN_SIZE: u32 = 16 * 1024;
/// IN transfers kept queued.
const IN_FLIGHT: usize = 8;
/// How long one IN may wait for its data.
const IN_WAIT: Duration = Duration::from_secs(30);
/// The most `--echo` sends.
pub(crate) const MAX_ECHO: usize = 64 << 20;

/// The device's first bulk IN and bulk OUT endpoint addresses.
fn bulk_pair(handle: &UsbHandle) -> anyhow::Result<(u8, u8)> {
    let bulk: Vec<u8> = handle
        .device()
        .interfaces
        .iter()
        .flat_map(|i| i.endpoints.iter())
        .filter(|e| e.kind == "bulk")
        .map(|e| e.address)
        .collect();
    let ep_in = bulk.iter().find(|a| *a & 0x80 != 0);
    let ep_out = bulk.iter().find(|a| *a & 0x80 == 0);
    match (ep_in, ep_out) {
        (Some(i), Some(o)) => Ok((*i, *o)),
        _ => bail!("the device has no bulk IN and OUT endpoint pair to echo through"),
    }
}

fn bulk(endpoint: u8, length: u32, data: Bytes) -> TransferRequest {
    TransferRequest {
        kind: TransferKind::Bulk(endpoint),
        flags: Default::default(),
        timeout_ms: 0,
        length,
        data,
    }
}

/// Sends `bytes` through the loopback and checks they come back unchanged; returns the seconds
/// it took.
///
/// # Errors
/// A transfer failed, an IN waited too long, or the data came back different.
pub(crate) async fn echo(handle: &UsbHandle, bytes: usize) -> anyhow::Result<f64> {
    let (ep_in, ep_out) = bulk_pair(handle)?;
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let started = Instant::now();
    let mut outs = Vec::new();
    for chunk in data.chunks(OUT_SIZE) {
        let request = bulk(ep_out, chunk.len() as u32, Bytes::copy_from_slice(chunk));
        outs.push(handle.submit(request).await?);
    }
    let sent = tokio::spawn(async move {
        let mut total = 0usize;
        for p in outs {
            total += p.wait().await?.actual_length as usize;
        }
        anyhow::Ok(total)
    });
    let mut got = Vec::with_capacity(bytes);
    let mut pending = VecDeque::new();
    while got.len() < bytes {
        while pending.len() < IN_FLIGHT {
            pending.push_back(handle.submit(bulk(ep_in, IN_SIZE, Bytes::new())).await?);
        }
        let Some(p) = pending.pop_front() else { break };
        let reply = tokio::time::timeout(IN_WAIT, p.wait())
            .await
            .with_context(|| format!("no echo after {} of {bytes} bytes", got.len()))??;
        if reply.status != TransferStatus::Ok {
            bail!("IN after {} bytes ended {:?}", got.len(), reply.status);
        }
        got.extend_from_slice(&reply.data);
    }
    let seconds = started.elapsed().as_secs_f64();
    for p in pending {
        handle.cancel(p.request_id);
        let _ = p.wait().await;
    }
    let written = sent.await.context("the OUT task")??;
    got.truncate(bytes);
    if written != bytes || got != data {
        let first = got.iter().zip(&data).position(|(a, b)| a != b);
        bail!("echo differs: wrote {written} of {bytes} bytes, first difference at {first:?}");
    }
    Ok(seconds)
}
