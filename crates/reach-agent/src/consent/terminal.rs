//! Terminal prompt, used when stdin is a TTY: a framed question (who, which organisation,
//! what access, USB or not), a countdown while it waits, and a line saying what happened.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reach_proto::limits::CONSENT_TIMEOUT;

use super::{ConsentAnswer, ConsentPrompt, ConsentQuestion, parse_answer};

/// Asks on stderr and reads one line from stdin. End of input denies.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalPrompt;

impl TerminalPrompt {
    /// Whether stdin is a terminal a person can type into.
    pub fn available() -> bool {
        std::io::stdin().is_terminal()
    }
}

/// The framed question, the countdown line and the prompt line.
fn banner(question: &ConsentQuestion, countdown: bool) -> String {
    let ask = if question.usb_device.is_some() {
        "Type yes to allow once, always to allow and remember this device, anything else denies: "
    } else {
        "Type yes to allow, anything else denies: "
    };
    let rule = "─".repeat(64);
    let mut text = format!(
        "\n{rule}\n  Reach remote support request\n  {}\n",
        question.sentence()
    );
    if question.usb_device.is_none() {
        let access = match question.access {
            reach_proto::v1::AccessMode::Control => {
                "see your screen and use your mouse and keyboard"
            }
            _ => "see your screen only (no mouse or keyboard)",
        };
        let usb = if question.usb { "yes" } else { "no" };
        text.push_str(&format!("  Access: {access}. USB devices: {usb}.\n"));
    }
    text.push_str(&format!("{rule}\n"));
    if countdown {
        text.push_str(&time_left(CONSENT_TIMEOUT.as_secs()));
        text.push('\n');
    }
    text.push_str(ask);
    text
}

fn time_left(secs: u64) -> String {
    format!("  {secs} s left to answer; no answer means no.")
}

/// Rewrites the countdown line (the line above the prompt) once a second until `answered`,
/// keeping what the person is typing where it is. At zero, says that nothing was shared.
fn count_down(answered: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for left in (0..CONSENT_TIMEOUT.as_secs()).rev() {
            std::thread::sleep(Duration::from_secs(1));
            if answered.load(Ordering::Acquire) {
                return;
            }
            let mut err = std::io::stderr().lock();
            let _ = if left == 0 {
                write!(err, "\n  No answer in time: nothing was shared.\n")
            } else {
                // Save the cursor, go up one line, rewrite it, come back.
                write!(err, "\x1b7\x1b[1A\r\x1b[2K{}\x1b8", time_left(left))
            };
            let _ = err.flush();
        }
    });
}

impl ConsentPrompt for TerminalPrompt {
    fn ask(&self, question: &ConsentQuestion) -> ConsentAnswer {
        let countdown = std::io::stderr().is_terminal();
        {
            let mut err = std::io::stderr().lock();
            if write!(err, "{}", banner(question, countdown))
                .and_then(|()| err.flush())
                .is_err()
            {
                return ConsentAnswer::Unavailable;
            }
        }
        let answered = Arc::new(AtomicBool::new(false));
        if countdown {
            count_down(Arc::clone(&answered));
        }
        let mut line = String::new();
        let answer = match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => ConsentAnswer::Unavailable,
            Ok(_) => parse_answer(&line),
        };
        answered.store(true, Ordering::Release);
        let said = match answer {
            ConsentAnswer::Yes | ConsentAnswer::YesRemember => "  Allowed.",
            _ => "  Denied: nothing is shared.",
        };
        let _ = writeln!(std::io::stderr(), "{said}");
        answer
    }

    fn name(&self) -> &'static str {
        "terminal"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reach_proto::v1::AccessMode;

    #[test]
    fn the_banner_names_who_which_organisation_what_access_and_usb() {
        let q = ConsentQuestion {
            session_id: "s".into(),
            technician: "alice".into(),
            tenant: "Acme IT".into(),
            access: AccessMode::ViewOnly,
            usb: true,
            usb_device: None,
        };
        let text = banner(&q, true);
        assert!(
            text.contains(
                "alice (Acme IT) asks to see this computer's screen and use its USB devices."
            ),
            "{text}"
        );
        assert!(text.contains("see your screen only"), "{text}");
        assert!(text.contains("USB devices: yes"), "{text}");
        assert!(text.contains("60 s left to answer"), "{text}");
        assert!(text.ends_with("anything else denies: "));
        assert!(
            !banner(&q, false).contains("left to answer"),
            "no countdown off a terminal"
        );
    }
}
