//! Desktop dialog through `zenity`, when a graphical session and zenity are present.

use super::{ConsentAnswer, ConsentPrompt, ConsentQuestion};
use std::process::{Command, Stdio};

/// Shows a yes/no dialog; only the "Allow" button grants, closing the dialog denies.
#[derive(Debug, Default, Clone, Copy)]
pub struct DesktopPrompt;

impl DesktopPrompt {
    /// Whether a desktop session and `zenity` are available.
    pub fn available() -> bool {
        let display =
            std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
        display
            && Command::new("zenity")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }
}

impl ConsentPrompt for DesktopPrompt {
    fn ask(&self, question: &ConsentQuestion) -> ConsentAnswer {
        let status = Command::new("zenity")
            .args([
                "--question",
                "--title=Reach remote support",
                "--ok-label=Allow",
                "--cancel-label=Deny",
                "--timeout=60",
            ])
            .arg(format!("--text={}", question.sentence()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => ConsentAnswer::Yes,
            Ok(_) => ConsentAnswer::No,
            Err(_) => ConsentAnswer::Unavailable,
        }
    }

    fn name(&self) -> &'static str {
        "desktop"
    }
}
