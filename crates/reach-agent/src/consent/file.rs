//! File-driven answers for scripts and tests (`--consent-file PATH`).
//!
//! When asked, the prompt waits for `PATH` to exist and contain `yes` or `no`
//! (checked every 100 ms), then deletes it so the next request waits for a new answer.
//! The agent's own 60-second timeout still applies.

use super::{ConsentAnswer, ConsentPrompt, ConsentQuestion, parse_answer};
use std::path::PathBuf;
use std::time::Duration;

/// Reads the answer from a file.
#[derive(Debug, Clone)]
pub struct FilePrompt {
    path: PathBuf,
    poll: Duration,
    give_up_after: Duration,
}

impl FilePrompt {
    /// Answers from `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            poll: Duration::from_millis(100),
            give_up_after: reach_proto::limits::CONSENT_TIMEOUT,
        }
    }
}

impl ConsentPrompt for FilePrompt {
    fn ask(&self, question: &ConsentQuestion) -> ConsentAnswer {
        tracing::info!(session = %question.session_id, file = %self.path.display(),
            "consent requested; waiting for the consent file");
        let tries = (self.give_up_after.as_millis() / self.poll.as_millis().max(1)).max(1);
        for _ in 0..tries {
            if let Ok(text) = std::fs::read_to_string(&self.path)
                && !text.trim().is_empty()
            {
                let _ = std::fs::remove_file(&self.path);
                return parse_answer(&text);
            }
            std::thread::sleep(self.poll);
        }
        ConsentAnswer::Unavailable
    }

    fn name(&self) -> &'static str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reach_proto::v1::AccessMode;

    fn question() -> ConsentQuestion {
        ConsentQuestion {
            session_id: "s".into(),
            technician: "t".into(),
            tenant: String::new(),
            access: AccessMode::Control,
            usb: false,
            usb_device: None,
        }
    }

    #[test]
    fn a_file_saying_yes_grants_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answer");
        std::fs::write(&path, "yes\n").unwrap();
        let p = FilePrompt::new(path.clone());
        assert_eq!(p.ask(&question()), ConsentAnswer::Yes);
        assert!(!path.exists());
    }

    #[test]
    fn a_file_saying_anything_else_denies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answer");
        std::fs::write(&path, "maybe").unwrap();
        assert_eq!(FilePrompt::new(path).ask(&question()), ConsentAnswer::No);
    }

    #[test]
    fn no_file_in_time_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = FilePrompt::new(dir.path().join("never"));
        p.give_up_after = Duration::from_millis(1);
        p.poll = Duration::from_millis(1);
        assert_eq!(p.ask(&question()), ConsentAnswer::Unavailable);
    }
}
