//! The kernel's vhci-hcd sysfs interface: `status` (ports), `attach`, `detach`.
//!
//! `status` lines look like `hs  0000 004 000 00000000 000000 0-0` (hub, port, state, speed,
//! devid, sockfd, local bus id). State 4 is a free port, 6 a port in use. High-speed ports
//! (`hs`) take low/full/high-speed devices, super-speed ports (`ss`) super-speed ones.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// Where vhci-hcd's first controller lives in sysfs.
pub const DEFAULT_VHCI_DIR: &str = "/sys/devices/platform/vhci_hcd.0";

const VDEV_ST_NULL: u32 = 4;
const VDEV_ST_USED: u32 = 6;

/// Linux `enum usb_device_speed` values vhci's `attach` takes.
pub const USB_SPEED_LOW: u32 = 1;
/// Full speed.
pub const USB_SPEED_FULL: u32 = 2;
/// High speed.
pub const USB_SPEED_HIGH: u32 = 3;
/// Super speed.
pub const USB_SPEED_SUPER: u32 = 5;

/// Which root hub of the controller a port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hub {
    /// USB 2 root hub (low, full and high speed).
    Hs,
    /// USB 3 root hub (super speed).
    Ss,
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    /// Root hub.
    pub hub: Hub,
    /// Port number to write to `attach` / `detach`.
    pub port: u32,
    /// 0-based port index on its root hub (the device appears as `<bus>-<rhport + 1>`).
    pub rhport: u32,
    /// vhci device state (4 free, 6 in use).
    pub state: u32,
    /// Linux speed value of the attached device.
    pub speed: u32,
    /// devid given at attach.
    pub devid: u32,
    /// The local USB device name (e.g. `3-1`), `0-0` when free.
    pub local_busid: String,
}

impl PortStatus {
    /// Whether the port is free for an attach.
    pub fn is_free(&self) -> bool {
        self.state == VDEV_ST_NULL
    }

    /// Whether a device is attached.
    pub fn is_used(&self) -> bool {
        self.state == VDEV_ST_USED
    }
}

/// Parses the `status` file; lines that are not port lines (the header) are skipped.
pub fn parse_status(text: &str) -> Vec<PortStatus> {
    let (mut hs, mut ss) = (0, 0);
    let mut ports = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hub = match f.first() {
            Some(&"hs") => Hub::Hs,
            Some(&"ss") => Hub::Ss,
            _ => continue,
        };
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
        let (Some(port), Some(state), Some(speed)) = (num(1), num(2), num(3)) else {
            continue;
        };
        let devid = f
            .get(4)
            .and_then(|v| u32::from_str_radix(v, 16).ok())
            .unwrap_or(0);
        let counter = if hub == Hub::Hs { &mut hs } else { &mut ss };
        let rhport = *counter;
        *counter += 1;
        ports.push(PortStatus {
            hub,
            port,
            rhport,
            state,
            speed,
            devid,
            local_busid: f.get(6).map_or("0-0", |v| v).to_owned(),
        });
    }
    ports
}

/// The Linux speed value and root hub for a Reach device speed name.
pub fn speed_of(name: &str) -> (u32, Hub) {
    match name {
        "low" => (USB_SPEED_LOW, Hub::Hs),
        "full" => (USB_SPEED_FULL, Hub::Hs),
        "super" | "super_plus" => (USB_SPEED_SUPER, Hub::Ss),
        _ => (USB_SPEED_HIGH, Hub::Hs),
    }
}

/// The first free port on `hub`.
pub fn free_port(ports: &[PortStatus], hub: Hub) -> Option<&PortStatus> {
    ports.iter().find(|p| p.hub == hub && p.is_free())
}

/// Why a vhci operation failed; each message says how to fix it.
#[derive(Debug, Error)]
pub enum VhciError {
    /// The module is not loaded.
    #[error("vhci-hcd is not loaded ({0} is missing): run `modprobe vhci-hcd` as root")]
    NotLoaded(PathBuf),
    /// Not allowed to write sysfs.
    #[error("no access to {0}: run as root (vhci-hcd's sysfs files are root-only)")]
    NoAccess(PathBuf),
    /// No free port of the needed speed.
    #[error("no free {0} vhci port: detach a device (`reach usb detach PORT`) first")]
    NoFreePort(&'static str),
    /// The kernel refused the write.
    #[error("vhci-hcd refused `{what}` on {path}: {source}")]
    Refused {
        /// What was written.
        what: String,
        /// The sysfs file.
        path: PathBuf,
        /// The kernel's error.
        source: io::Error,
    },
}

/// vhci-hcd's sysfs directory.
#[derive(Debug, Clone)]
pub struct Vhci {
    dir: PathBuf,
}

impl Default for Vhci {
    fn default() -> Self {
        Self::new(DEFAULT_VHCI_DIR)
    }
}

impl Vhci {
    /// A controller directory (tests point this at a temporary directory).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The controller directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads and parses `status`.
    ///
    /// # Errors
    /// [`VhciError::NotLoaded`] when the file does not exist.
    pub fn status(&self) -> Result<Vec<PortStatus>, VhciError> {
        let path = self.dir.join("status");
        let text = std::fs::read_to_string(&path).map_err(|e| self.classify(e, &path, "read"))?;
        Ok(parse_status(&text))
    }

    /// Checks that `attach` exists and can be opened for writing (nothing is written).
    ///
    /// # Errors
    /// [`VhciError::NotLoaded`], [`VhciError::NoAccess`].
    pub fn check_writable(&self) -> Result<(), VhciError> {
        let path = self.dir.join("attach");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map(drop)
            .map_err(|e| self.classify(e, &path, "open"))
    }

    /// Attaches a device: `port sockfd devid speed`.
    ///
    /// # Errors
    /// [`VhciError`] with the kernel's refusal.
    pub fn attach(&self, port: u32, sockfd: i32, devid: u32, speed: u32) -> Result<(), VhciError> {
        self.write("attach", &format!("{port} {sockfd} {devid} {speed}"))
    }

    /// Detaches the device on `port`.
    ///
    /// # Errors
    /// [`VhciError`] with the kernel's refusal (e.g. nothing attached there).
    pub fn detach(&self, port: u32) -> Result<(), VhciError> {
        self.write("detach", &port.to_string())
    }

    fn write(&self, file: &str, what: &str) -> Result<(), VhciError> {
        let path = self.dir.join(file);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| self.classify(e, &path, what))?;
        f.write_all(what.as_bytes())
            .map_err(|e| self.classify(e, &path, what))
    }

    fn classify(&self, e: io::Error, path: &Path, what: &str) -> VhciError {
        match e.kind() {
            io::ErrorKind::NotFound if !self.dir.exists() => VhciError::NotLoaded(self.dir.clone()),
            io::ErrorKind::NotFound => VhciError::NotLoaded(path.to_owned()),
            io::ErrorKind::PermissionDenied => VhciError::NoAccess(path.to_owned()),
            _ => VhciError::Refused {
                what: what.to_owned(),
                path: path.to_owned(),
                source: e,
            },
        }
    }

    /// The sysfs directory of the device on a port, once the kernel has enumerated it
    /// (`<vhci>/usbN/N-<rhport+1>`, on the root hub of the port's speed).
    pub fn device_dir(&self, port: &PortStatus) -> Option<PathBuf> {
        let want_speed = match port.hub {
            Hub::Hs => "480",
            Hub::Ss => "5000",
        };
        let entries = std::fs::read_dir(&self.dir).ok()?;
        for bus in entries.flatten() {
            let name = bus.file_name().to_string_lossy().into_owned();
            let Some(busnum) = name.strip_prefix("usb") else {
                continue;
            };
            let speed = std::fs::read_to_string(bus.path().join("speed")).unwrap_or_default();
            if speed.trim() != want_speed {
                continue;
            }
            let dev = bus.path().join(format!("{busnum}-{}", port.rhport + 1));
            if dev.join("idVendor").exists() {
                return Some(dev);
            }
        }
        None
    }
}

/// A device attached to vhci, as `reach usb attached` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedDevice {
    /// The port line from `status`.
    #[serde(flatten)]
    pub port: PortStatus,
    /// idVendor:idProduct read from the local device, when enumerated.
    pub ids: Option<String>,
    /// Product string of the local device.
    pub product: Option<String>,
    /// Its device nodes.
    pub nodes: Vec<PathBuf>,
}

impl Vhci {
    /// The ports in use, with what the local kernel made of each device.
    ///
    /// # Errors
    /// [`VhciError::NotLoaded`], [`VhciError::NoAccess`].
    pub fn attached(&self) -> Result<Vec<AttachedDevice>, VhciError> {
        let ports = self.status()?;
        Ok(ports
            .into_iter()
            .filter(PortStatus::is_used)
            .map(|port| {
                let dir = self.device_dir(&port);
                let read = |f: &str| {
                    dir.as_ref()
                        .and_then(|d| std::fs::read_to_string(d.join(f)).ok())
                        .map(|v| v.trim().to_owned())
                };
                let ids = read("idVendor")
                    .zip(read("idProduct"))
                    .map(|(v, p)| format!("{v}:{p}"));
                AttachedDevice {
                    ids,
                    product: read("product"),
                    nodes: dir.as_deref().map(device_nodes).unwrap_or_default(),
                    port,
                }
            })
            .collect())
    }
}

/// Device nodes (`/dev/ttyACM0`, `/dev/sdb`, `/dev/hidraw1`, `/dev/usb/lp0`, …) of a USB
/// device's interfaces, found through sysfs class directories below it.
pub fn device_nodes(device_dir: &Path) -> Vec<PathBuf> {
    let mut nodes = Vec::new();
    collect_nodes(device_dir, 0, &mut nodes);
    nodes.sort();
    nodes.dedup();
    nodes
}

fn collect_nodes(dir: &Path, depth: usize, nodes: &mut Vec<PathBuf>) {
    const CLASSES: [&str; 4] = ["tty", "block", "hidraw", "usbmisc"];
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Only real directories: sysfs links (subsystem, driver, port) lead out of the device.
        let Ok(kind) = e.file_type() else { continue };
        if !kind.is_dir() {
            continue;
        }
        if CLASSES.contains(&name.as_str()) {
            for node in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                nodes.push(Path::new("/dev").join(dev_name(&node.path())));
            }
        } else {
            collect_nodes(&e.path(), depth + 1, nodes);
        }
    }
}

/// The node's name below `/dev`: `DEVNAME` of its `uevent` (`usb/lp0` for a printer), else the
/// class device's own name.
fn dev_name(class_device: &Path) -> PathBuf {
    let uevent = std::fs::read_to_string(class_device.join("uevent")).unwrap_or_default();
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .filter(|n| !n.is_empty() && !n.split('/').any(|part| part == ".."))
        .map_or_else(
            || {
                class_device
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_default()
            },
            PathBuf::from,
        )
}

#[cfg(test)]
#[path = "vhci_tests.rs"]
mod tests;
