//! `reach usb attach`: claim a device through Reach, hand vhci one end of a socket pair, pump
//! until the port is detached (or the claim ends), then release the claim.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reach_usb::UsbError;
use reach_usb::client::{UsbClient, UsbHandle};
use reach_usb::proto::{DeviceFilter, DeviceInfo};
use thiserror::Error;

use crate::counters::{AttachState, Counters, remove_state, write_state};
use crate::pump::{PumpEnd, pump_counted};
use crate::request::EndpointTable;
use crate::vhci::{PortStatus, Vhci, VhciError, device_nodes, free_port, speed_of};

/// Transfers through vhci have no client-side deadline of their own (the kernel unlinks what it
/// gives up on); this only bounds a transfer the host never answers.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long to look for the attached device's nodes in sysfs.
pub const NODE_WAIT: Duration = Duration::from_secs(15);
/// How long releasing the claim may take at the end before attach exits anyway.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A connection to the host carrying a Reach USB client: TCP ([`Via::connect`]) or a live
/// session (the technician client joins it; see `reach usb attach --session`).
pub struct Connection {
    /// The USB client on this connection.
    pub client: UsbClient,
    /// Resolves, with the reason, when the connection is gone for good (the session ended, the
    /// viewer socket closed, the host's agent went offline). It owns whatever keeps the
    /// connection open, so that lives exactly as long as the attach.
    pub lost: Pin<Box<dyn Future<Output = String> + Send>>,
}

impl Connection {
    /// A connection whose end the client notices by itself (a TCP stream).
    pub fn direct(client: UsbClient) -> Self {
        Self {
            client,
            lost: Box::pin(std::future::pending()),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// How to reach the host directly (tests and same-machine use; a session is the other way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A host serving Reach USB over TCP (`reach usb serve`).
    Tcp(String),
}

impl Via {
    /// Parses `tcp://HOST:PORT`.
    ///
    /// # Errors
    /// A message naming the accepted form.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.strip_prefix("tcp://") {
            Some(addr) if addr.contains(':') => Ok(Self::Tcp(addr.to_owned())),
            _ => Err(format!("{text:?}: expected tcp://HOST:PORT")),
        }
    }

    /// Connects and starts a Reach USB client.
    ///
    /// # Errors
    /// [`AttachError::Connect`].
    pub async fn connect(&self) -> Result<Connection, AttachError> {
        match self {
            Self::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| AttachError::Connect(addr.clone(), e))?;
                Ok(Connection::direct(UsbClient::connect(stream)))
            }
        }
    }
}

/// Parses `VID:PID[:SERIAL]` (hex ids) into a filter.
///
/// # Errors
/// A message naming the accepted form.
pub fn parse_device(text: &str) -> Result<DeviceFilter, String> {
    let mut parts = text.splitn(3, ':');
    let hex = |p: Option<&str>| {
        p.filter(|v| !v.is_empty() && v.len() <= 4)
            .and_then(|v| u16::from_str_radix(v, 16).ok())
    };
    match (hex(parts.next()), hex(parts.next()), parts.next()) {
        (Some(v), Some(p), serial) => Ok(DeviceFilter {
            vendor_id: Some(v),
            product_id: Some(p),
            serial: serial.filter(|s| !s.is_empty()).map(str::to_owned),
            bus_id: None,
        }),
        _ => Err(format!(
            "{text:?}: expected VID:PID[:SERIAL] with hex ids, e.g. 1d6b:0104"
        )),
    }
}

/// Why attaching failed; each message says how to fix it.
#[derive(Debug, Error)]
pub enum AttachError {
    /// vhci-hcd missing, no access, no free port, or the kernel refused.
    #[error(transparent)]
    Vhci(#[from] VhciError),
    /// The host could not be reached.
    #[error("cannot connect to the Reach host at {0}: {1}")]
    Connect(String, std::io::Error),
    /// The host's ACL or operator refused the device.
    #[error(
        "the host denied the device ({0}): ask the host's operator to allow it (`reach usb acl add …` on the host)"
    )]
    Denied(String),
    /// Opening failed otherwise.
    #[error("cannot claim the device: {0}")]
    Open(UsbError),
    /// The connection to the host ended before the device was claimed.
    #[error("the connection to the host ended: {0}")]
    Lost(String),
    /// The socket pair could not be created.
    #[error("cannot create the socket pair for vhci: {0}")]
    Socket(std::io::Error),
}

/// What happened, for the terminal.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The device is claimed through Reach (the claim id on the connection).
    Claimed(DeviceInfo, u16),
    /// vhci accepted the device on this port.
    Attached(PortStatus),
    /// The kernel enumerated it: its sysfs directory and the device nodes found below it.
    Enumerated {
        /// `/sys/…/usbN/N-P`.
        sysfs: PathBuf,
        /// `/dev/ttyACM0`, `/dev/sdb`, …
        nodes: Vec<PathBuf>,
    },
    /// The connection to the host dropped (the reason); the claim is being resumed on a new one
    /// while vhci keeps the port attached.
    Resuming(String),
    /// The claim moved onto a new connection; pending transfers complete there.
    Resumed,
    /// The port was detached (the device left this kernel); the claim is released next.
    Detached(PortStatus),
    /// The pump stopped.
    Ended(String),
}

/// Everything `reach usb attach` needs besides the connection.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// Which device.
    pub filter: DeviceFilter,
    /// vhci-hcd's sysfs directory.
    pub vhci: Vhci,
    /// Where to publish the port's throughput for `reach usb attached` (none: not published).
    pub state_dir: Option<PathBuf>,
}

/// Checks vhci, claims the device on `conn`, attaches and pumps until the port is detached,
/// the claim ends, the connection is lost, or `stop` resolves (then the port is detached first).
/// The claim is released at the end (bounded by [`CLOSE_WAIT`]).
///
/// # Errors
/// [`AttachError`] before the device is attached; after that the end is reported through
/// [`Progress::Ended`].
pub async fn attach(
    req: AttachRequest,
    conn: Connection,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    stop: impl Future<Output = ()>,
) -> Result<PumpEnd, AttachError> {
    req.vhci.check_writable()?;
    let Connection { client, mut lost } = conn;
    let client = client.with_timeout(TRANSFER_TIMEOUT);
    let handle = tokio::select! {
        opened = client.open(req.filter.clone()) => opened.map_err(|e| match e {
            UsbError::Denied(m) => AttachError::Denied(m),
            other => AttachError::Open(other),
        })?,
        why = &mut lost => return Err(AttachError::Lost(why)),
    };
    progress(Progress::Claimed(
        handle.device().clone(),
        handle.claim_id(),
    ));
    // `lost` owns the connection (a session's viewer): it must outlive the claim's release.
    let result = attach_claimed(&req, &handle, progress.clone(), stop, &mut lost).await;
    // With the connection lost there is nobody left to release the claim to (the host
    // releases it by itself).
    if !matches!(result, Ok(PumpEnd::ConnectionLost(_))) {
        let _ = tokio::time::timeout(CLOSE_WAIT, handle.close()).await;
    }
    let end = result?;
    progress(Progress::Ended(end.to_string()));
    Ok(end)
}

async fn attach_claimed(
    req: &AttachRequest,
    handle: &UsbHandle,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    stop: impl Future<Output = ()>,
    lost: impl Future<Output = String>,
) -> Result<PumpEnd, AttachError> {
    let vhci = &req.vhci;
    let device = handle.device().clone();
    let (speed, hub) = speed_of(&device.speed);
    let ports = vhci.status()?;
    let port = free_port(&ports, hub)
        .cloned()
        .ok_or(VhciError::NoFreePort(match hub {
            crate::vhci::Hub::Hs => "high-speed (USB 2)",
            crate::vhci::Hub::Ss => "super-speed (USB 3)",
        }))?;
    let (ours, theirs) = StdUnixStream::pair().map_err(AttachError::Socket)?;
    vhci.attach(port.port, theirs.as_raw_fd(), devid(&device, handle), speed)?;
    // vhci holds its own reference to the socket now.
    drop(theirs);
    progress(Progress::Attached(port.clone()));
    ours.set_nonblocking(true).map_err(AttachError::Socket)?;
    let ours = tokio::net::UnixStream::from_std(ours).map_err(AttachError::Socket)?;
    let finished = Arc::new(AtomicBool::new(false));
    tokio::task::spawn_blocking({
        let (vhci, port, progress) = (vhci.clone(), port.clone(), progress.clone());
        let finished = finished.clone();
        move || find_nodes(&vhci, &port, &*progress, &finished)
    });
    let table = EndpointTable::from_device(&device);
    let counters = Arc::new(Counters::default());
    let _published = req
        .state_dir
        .as_ref()
        .map(|dir| Publisher::start(dir.clone(), port.port, &device, counters.clone()));
    let pumping = pump_counted(handle.clone(), ours, table, counters);
    tokio::pin!(pumping);
    let detach_then = |why: &str| {
        // Detaching makes vhci close its end; the pump then ends as Detached.
        if let Err(e) = vhci.detach(port.port) {
            tracing::warn!(error = %e, why, "detach");
        }
    };
    let end = tokio::select! {
        end = &mut pumping => end,
        () = stop => {
            detach_then("stop");
            pumping.await
        }
        why = lost => {
            detach_then("connection lost");
            let _ = tokio::time::timeout(CLOSE_WAIT, pumping).await;
            PumpEnd::ConnectionLost(why)
        }
    };
    if !matches!(end, PumpEnd::Detached) {
        // The claim or the stream ended first: unplug the device from this kernel too.
        let _ = vhci.detach(port.port);
    }
    finished.store(true, Ordering::Relaxed);
    progress(Progress::Detached(port));
    Ok(end)
}

/// How often the state file is rewritten.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Rewrites the port's state file while the device is attached; removes it when dropped.
struct Publisher {
    dir: PathBuf,
    port: u32,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn start(dir: PathBuf, port: u32, device: &DeviceInfo, counters: Arc<Counters>) -> Self {
        let mut state = AttachState {
            port,
            pid: std::process::id(),
            device: format!("{:04x}:{:04x}", device.vendor_id, device.product_id),
            throughput: counters.snapshot(),
        };
        let task = tokio::spawn({
            let dir = dir.clone();
            async move {
                let mut tick = tokio::time::interval(PUBLISH_EVERY);
                loop {
                    tick.tick().await;
                    state.throughput = counters.snapshot();
                    if let Err(e) = write_state(&dir, &state) {
                        tracing::warn!(error = %e, "attach state not written");
                    }
                }
            }
        });
        Self { dir, port, task }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
        remove_state(&self.dir, self.port);
    }
}

/// The devid vhci reports for the device: `busnum << 16 | claim id` (the remote bus number
/// when the bus id starts with one).
fn devid(device: &DeviceInfo, handle: &UsbHandle) -> u32 {
    let bus: u32 = device
        .bus_id
        .split('-')
        .next()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    (bus & 0xffff) << 16 | u32::from(handle.claim_id())
}

/// Waits (bounded) for the kernel to enumerate the device and its interface drivers to create
/// device nodes; reports what it found once the set stops changing.
fn find_nodes(
    vhci: &Vhci,
    port: &PortStatus,
    progress: &(dyn Fn(Progress) + Send + Sync),
    finished: &AtomicBool,
) {
    let start = Instant::now();
    let step = Duration::from_millis(100);
    let mut last: Option<(PathBuf, Vec<PathBuf>, Instant)> = None;
    while start.elapsed() < NODE_WAIT && !finished.load(Ordering::Relaxed) {
        if let Some(dir) = vhci.device_dir(port) {
            let nodes = device_nodes(&dir);
            match &last {
                Some((_, prev, since)) if *prev == nodes => {
                    if !nodes.is_empty() && since.elapsed() >= Duration::from_secs(1) {
                        break;
                    }
                }
                _ => last = Some((dir, nodes, Instant::now())),
            }
        }
        std::thread::sleep(step);
    }
    if let Some((sysfs, nodes, _)) = last {
        progress(Progress::Enumerated { sysfs, nodes });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_argument_takes_hex_ids_and_an_optional_serial() {
        let f = parse_device("1d6b:0104").unwrap();
        assert_eq!(
            (f.vendor_id, f.product_id, f.serial),
            (Some(0x1d6b), Some(0x0104), None)
        );
        let f = parse_device("0525:A4A0:LB:0001").unwrap();
        assert_eq!(f.serial.as_deref(), Some("LB:0001"));
        for bad in ["", "1d6b", "xyz:0104", "12345:1", ":0104"] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn via_takes_tcp_host_and_port() {
        assert_eq!(
            Via::parse("tcp://127.0.0.1:7300"),
            Ok(Via::Tcp("127.0.0.1:7300".into()))
        );
        assert!(Via::parse("127.0.0.1:7300").is_err());
        assert!(Via::parse("tcp://host").is_err());
    }
}
