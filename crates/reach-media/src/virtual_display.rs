//! [`VirtualDisplay`]: a private Xvfb X server, for the demo, benchmarks and tests.
//!
//! Xvfb picks a free display number itself (`-displayfd`) and reports it once it accepts
//! clients, so callers never race on display numbers or poll for a socket.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use crate::error::MediaError;

/// A private X server (Xvfb), stopped on drop.
#[derive(Debug)]
pub struct VirtualDisplay {
    child: Child,
    name: String,
}

impl VirtualDisplay {
    /// Starts Xvfb with one `width`×`height` 24-bit screen, no TCP listener, and no reset when
    /// the last client leaves.
    ///
    /// # Errors
    /// [`MediaError::Connect`] when Xvfb is missing or exits before reporting a display.
    pub fn start(width: u32, height: u32) -> Result<Self, MediaError> {
        let failed = |reason: String| MediaError::Connect {
            display: "(private Xvfb)".into(),
            reason,
        };
        let screen = format!("{width}x{height}x24");
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                failed(format!(
                    "cannot start Xvfb: {e}; install it (scripts/setup.sh, Debian package xvfb)"
                ))
            })?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let number = line.trim();
        if number.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed("Xvfb exited without reporting a display".into()));
        }
        Ok(Self {
            name: format!(":{number}"),
            child,
        })
    }

    /// The display name, e.g. `:3`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
