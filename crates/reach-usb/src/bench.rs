//! Throughput and latency of the whole stack (client → protocol → host session → fake device),
//! for `reach bench usb`. Figures only; nothing here asserts timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::backend::UsbBackend;
use crate::backend::fake::{FakeBackend, FakeDevice};
use crate::client::{UsbClient, UsbHandle};
use crate::host::{HostConfig, HostSession};
use crate::net::{AllowAll, HostRunner, MessageChannel, delayed, memory_pair, tcp_channel};
use crate::proto::{DeviceFilter, Setup, TransferKind, TransferRequest};

/// Which transport carries the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchTransport {
    /// In-process channels.
    Memory,
    /// A loopback TCP connection.
    Tcp,
    /// In-process channels with this round-trip time added (half each way).
    Delayed(#[serde(with = "millis")] Duration),
}

mod millis {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

impl std::fmt::Display for BenchTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Tcp => f.write_str("tcp loopback"),
            Self::Delayed(rtt) => write!(f, "memory + {} ms RTT", rtt.as_millis()),
        }
    }
}

async fn channels(transport: BenchTransport) -> std::io::Result<(MessageChannel, MessageChannel)> {
    match transport {
        BenchTransport::Memory => Ok(memory_pair()),
        BenchTransport::Delayed(rtt) => {
            let (host, client) = memory_pair();
            Ok((host, delayed(client, rtt / 2)))
        }
        BenchTransport::Tcp => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (client, accepted) =
                tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            Ok((tcp_channel(accepted?.0), tcp_channel(client?)))
        }
    }
}

/// A client with one claimed zero-latency fake device.
///
/// # Errors
/// When the transport or the open fails.
pub async fn setup(transport: BenchTransport) -> Result<(UsbClient, UsbHandle), String> {
    let backend = FakeBackend::new();
    backend.add(FakeDevice::loopback());
    let (host_end, client_end) = channels(transport).await.map_err(|e| e.to_string())?;
    let backend: Arc<dyn UsbBackend> = Arc::new(backend);
    let runner = HostRunner::new(
        HostSession::new(HostConfig::enabled(), Instant::now()),
        backend,
        Arc::new(AllowAll),
        "bench",
    );
    tokio::spawn(runner.serve(host_end));
    let client = UsbClient::connect(client_end).with_timeout(Duration::from_secs(60));
    let handle = client
        .open(DeviceFilter::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok((client, handle))
}

/// One bulk result.
#[derive(Debug, Clone, Serialize)]
pub struct BulkFigure {
    /// Transport.
    pub transport: BenchTransport,
    /// `in` or `out`.
    pub direction: &'static str,
    /// Bytes per transfer.
    pub transfer_size: u32,
    /// Transfers kept in flight.
    pub in_flight: usize,
    /// Megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Transfers completed.
    pub transfers: u64,
}

/// Runs bulk transfers for `duration` with `in_flight` concurrent submitters.
///
/// # Errors
/// When setup or a transfer fails.
pub async fn bulk(
    transport: BenchTransport,
    out: bool,
    size: u32,
    in_flight: usize,
    duration: Duration,
) -> Result<BulkFigure, String> {
    let (_client, handle) = setup(transport).await?;
    let payload = Bytes::from(vec![0x5a; size as usize]);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (handle, payload, done) = (handle.clone(), payload.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                // bulk_out to the 0x04 sink, bulk_in from the 0x83 source; each waits for its reply.
                let moved = if out {
                    handle.bulk_out(0x04, payload.clone()).await?
                } else {
                    handle.bulk_in(0x03, size).await?.len()
                };
                if moved != size as usize {
                    return Err(crate::UsbError::Protocol(format!("short transfer {moved}")));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), crate::UsbError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let transfers = done.load(Ordering::Relaxed);
    let mb_per_s = transfers as f64 * f64::from(size) / elapsed / 1e6;
    Ok(BulkFigure {
        transport,
        direction: if out { "out" } else { "in" },
        transfer_size: size,
        in_flight,
        mb_per_s,
        transfers,
    })
}

/// Control round-trip latency.
#[derive(Debug, Clone, Serialize)]
pub struct ControlFigure {
    /// Transport.
    pub transport: BenchTransport,
    /// Samples.
    pub samples: usize,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Median of the same call made on the device directly, microseconds.
    pub direct_p50_us: f64,
}

/// GET_DESCRIPTOR round trips, one at a time.
///
/// # Errors
/// When setup or a transfer fails.
pub async fn control(transport: BenchTransport, samples: usize) -> Result<ControlFigure, String> {
    let (_client, handle) = setup(transport).await?;
    for _ in 0..100 {
        handle
            .control_in(Setup::get_device_descriptor())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        handle
            .control_in(Setup::get_device_descriptor())
            .await
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    let direct = direct_control(samples).await?;
    let (p50, p99) = percentiles(&mut times);
    Ok(ControlFigure {
        transport,
        samples,
        p50_us: p50,
        p99_us: p99,
        direct_p50_us: direct,
    })
}

async fn direct_control(samples: usize) -> Result<f64, String> {
    let backend = FakeBackend::new();
    backend.add(FakeDevice::loopback());
    let dev = backend.open("fake-1").await.map_err(|e| e.to_string())?;
    let req = TransferRequest {
        kind: TransferKind::Control(Setup::get_device_descriptor()),
        flags: Default::default(),
        timeout_ms: 0,
        length: 18,
        data: Bytes::new(),
    };
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        dev.clone().transfer(req.clone()).await;
        times.push(t.elapsed());
    }
    Ok(percentiles(&mut times).0)
}

/// Options of the full benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Per bulk case over memory and TCP.
    pub seconds: Duration,
    /// Per case with the injected round trip.
    pub delayed_seconds: Duration,
    /// Injected round trip.
    pub rtt: Duration,
    /// Control samples.
    pub control_samples: usize,
    /// JSON lines instead of Markdown tables.
    pub json: bool,
    /// Only the small-transfer cases (16 KiB, one in flight, memory and TCP) and the control
    /// round trips.
    pub focus: bool,
}

fn bulk_line(fig: &BulkFigure, json: bool) -> String {
    if json {
        return serde_json::to_string(fig).unwrap_or_default();
    }
    let size = if fig.transfer_size >= 1 << 20 {
        format!("{} MiB", fig.transfer_size >> 20)
    } else {
        format!("{} KiB", fig.transfer_size >> 10)
    };
    format!(
        "| {} | bulk {} | {size} | {} | {:.1} MB/s |",
        fig.transport, fig.direction, fig.in_flight, fig.mb_per_s
    )
}

/// Runs every case of `reach bench usb`, printing each line through `print` as it finishes.
///
/// # Errors
/// The first case that fails.
pub async fn run_all(opts: &BenchOptions, mut print: impl FnMut(String)) -> Result<(), String> {
    if !opts.json {
        print(
            "| transport | transfer | size | in flight | throughput |\n|---|---|---|---|---|"
                .into(),
        );
    }
    for transport in [BenchTransport::Memory, BenchTransport::Tcp] {
        for out in [false, true] {
            for size in [16 * 1024, 1024 * 1024] {
                for in_flight in [1, 8, 32] {
                    if opts.focus && (size, in_flight) != (16 * 1024, 1) {
                        continue;
                    }
                    print(bulk_line(
                        &bulk(transport, out, size, in_flight, opts.seconds).await?,
                        opts.json,
                    ));
                }
            }
        }
    }
    if !opts.focus {
        run_delayed(opts, &mut print).await?;
    }
    if !opts.json {
        print("\n| transport | control round trip p50 | p99 | device call alone p50 |\n|---|---|---|---|".into());
    }
    for transport in [BenchTransport::Memory, BenchTransport::Tcp] {
        let c = control(transport, opts.control_samples).await?;
        print(if opts.json {
            serde_json::to_string(&c).unwrap_or_default()
        } else {
            format!(
                "| {} | {:.1} µs | {:.1} µs | {:.2} µs |",
                c.transport, c.p50_us, c.p99_us, c.direct_p50_us
            )
        });
    }
    Ok(())
}

async fn run_delayed(opts: &BenchOptions, print: &mut impl FnMut(String)) -> Result<(), String> {
    let delayed = BenchTransport::Delayed(opts.rtt);
    for out in [false, true] {
        for (size, in_flight) in [
            (16 * 1024, 1),
            (16 * 1024, 64),
            (16 * 1024, 256),
            (1024 * 1024, 1),
            (1024 * 1024, 16),
        ] {
            print(bulk_line(
                &bulk(delayed, out, size, in_flight, opts.delayed_seconds).await?,
                opts.json,
            ));
        }
    }
    Ok(())
}

fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort_unstable();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.5), at(0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_bench_case_runs_over_every_transport() {
        for transport in [
            BenchTransport::Memory,
            BenchTransport::Tcp,
            BenchTransport::Delayed(Duration::from_millis(2)),
        ] {
            for out in [false, true] {
                let fig = bulk(transport, out, 16 * 1024, 4, Duration::from_millis(30))
                    .await
                    .unwrap();
                assert!(fig.transfers > 0, "{fig:?}");
            }
            assert_eq!(control(transport, 10).await.unwrap().samples, 10);
        }
    }
}
