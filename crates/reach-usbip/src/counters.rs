//! Throughput of one attached device, kept by the pump and published by `reach usb attach` in a
//! small state file per vhci port that `reach usb attached` reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::translator::Completion;

/// Counts completed transfers and their bytes each way.
#[derive(Debug, Default)]
pub struct Counters {
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    transfers: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    /// Bytes written to the device (OUT, control OUT data).
    pub bytes_out: u64,
    /// Bytes read from the device (IN, control IN data).
    pub bytes_in: u64,
    /// Transfers completed (any status).
    pub transfers: u64,
}

impl Counters {
    /// Counts one completion: IN data as received, an OUT as the bytes the device took.
    pub fn record(&self, c: &Completion) {
        self.transfers.fetch_add(1, Ordering::Relaxed);
        if c.data.is_empty() {
            let out = u64::from(c.actual_length);
            self.bytes_out.fetch_add(out, Ordering::Relaxed);
        } else {
            self.bytes_in
                .fetch_add(c.data.len() as u64, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> Throughput {
        Throughput {
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            transfers: self.transfers.load(Ordering::Relaxed),
        }
    }
}

/// What `reach usb attach` publishes about its port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachState {
    /// vhci port.
    pub port: u32,
    /// The attach process.
    pub pid: u32,
    /// `vid:pid` of the remote device.
    pub device: String,
    /// Counts so far.
    pub throughput: Throughput,
}

/// The state file of `port` under `dir`.
pub fn state_path(dir: &Path, port: u32) -> PathBuf {
    dir.join(format!("port-{port}.json"))
}

/// Writes `state` atomically (a reader never sees half a file).
///
/// # Errors
/// The directory or file could not be written.
pub fn write_state(dir: &Path, state: &AttachState) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = state_path(dir, state.port);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(state).unwrap_or_default())?;
    std::fs::rename(tmp, path)
}

/// The state of `port`, if its file exists and reads.
pub fn read_state(dir: &Path, port: u32) -> Option<AttachState> {
    let bytes = std::fs::read(state_path(dir, port)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes `port`'s state file (at detach).
pub fn remove_state(dir: &Path, port: u32) {
    let _ = std::fs::remove_file(state_path(dir, port));
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use reach_usb::proto::TransferStatus;

    use super::*;

    #[test]
    fn completions_count_each_way_and_the_state_file_round_trips() {
        let c = Counters::default();
        c.record(&Completion {
            status: TransferStatus::Ok,
            actual_length: 512,
            data: Bytes::new(),
        });
        c.record(&Completion {
            status: TransferStatus::Ok,
            actual_length: 3,
            data: Bytes::from_static(b"abc"),
        });
        let t = c.snapshot();
        assert_eq!((t.bytes_out, t.bytes_in, t.transfers), (512, 3, 2));

        let dir = tempfile::tempdir().unwrap();
        let state = AttachState {
            port: 8,
            pid: 1,
            device: "0525:a4a0".into(),
            throughput: t,
        };
        write_state(dir.path(), &state).unwrap();
        assert_eq!(read_state(dir.path(), 8), Some(state));
        remove_state(dir.path(), 8);
        assert_eq!(read_state(dir.path(), 8), None);
    }
}
