//! Consent prompts: how the agent asks the person at the machine.
//!
//! Providers implement [`ConsentPrompt`]. The agent calls [`ConsentPrompt::ask`] on a
//! blocking thread and denies on its own when the answer does not come in time, so a
//! provider may simply block. Only an explicit yes grants; every failure denies.

mod desktop;
mod file;
mod scripted;
mod terminal;

pub use desktop::DesktopPrompt;
pub use file::FilePrompt;
pub use scripted::{ScriptedPrompt, ScriptedPromptControl};
pub use terminal::TerminalPrompt;

use reach_proto::v1::AccessMode;

/// What the person is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentQuestion {
    /// Session the answer is for.
    pub session_id: String,
    /// Display name of the technician asking.
    pub technician: String,
    /// Access requested.
    pub access: AccessMode,
    /// USB devices requested as well.
    pub usb: bool,
    /// Set when the question is about opening one USB device (an ACL rule with
    /// `prompt_on_open`): its description, e.g. `0525:a4a0 (Gadget Zero, serial 1234)`.
    pub usb_device: Option<String>,
}

impl ConsentQuestion {
    /// One sentence for any prompt: who asks for what.
    pub fn sentence(&self) -> String {
        let who = if self.technician.is_empty() {
            "A technician"
        } else {
            &self.technician
        };
        if let Some(device) = &self.usb_device {
            return format!("{who} asks to use the USB device {device} of this computer.");
        }
        let what = match self.access {
            AccessMode::Control => "see and control this computer",
            _ => "see this computer's screen",
        };
        let usb = if self.usb {
            " and use its USB devices"
        } else {
            ""
        };
        format!("{who} asks to {what}{usb}.")
    }
}

/// The answer. Anything but [`ConsentAnswer::Yes`] or [`ConsentAnswer::YesRemember`] denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAnswer {
    /// Explicit yes.
    Yes,
    /// Explicit yes, remembered: for a `prompt_on_open` USB device, a signed allow rule for it
    /// is written to the host's ACL (no question next time). For a session: the same as yes.
    YesRemember,
    /// Explicit no.
    No,
    /// The prompt could not be shown or was closed.
    Unavailable,
}

/// A way to ask the person at the machine.
pub trait ConsentPrompt: Send + Sync + 'static {
    /// Asks and blocks until answered. Called on a blocking thread.
    fn ask(&self, question: &ConsentQuestion) -> ConsentAnswer;

    /// Name for logs (`terminal`, `desktop`, `file`, `scripted`, `deny`).
    fn name(&self) -> &'static str;
}

/// Used when no provider can ask anyone: every request is denied.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

impl ConsentPrompt for DenyAll {
    fn ask(&self, _question: &ConsentQuestion) -> ConsentAnswer {
        ConsentAnswer::Unavailable
    }

    fn name(&self) -> &'static str {
        "deny"
    }
}

/// Reads a typed or written answer: only `y`/`yes`/`allow` (any case) is a yes, and
/// `a`/`always`/`remember` a remembered yes.
pub(crate) fn parse_answer(text: &str) -> ConsentAnswer {
    match text.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "allow" => ConsentAnswer::Yes,
        "a" | "always" | "remember" => ConsentAnswer::YesRemember,
        _ => ConsentAnswer::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_is_a_yes() {
        for yes in ["y", "YES", " allow\n"] {
            assert_eq!(parse_answer(yes), ConsentAnswer::Yes);
        }
        for no in ["", "n", "no", "sure", "yes please", "1"] {
            assert_eq!(parse_answer(no), ConsentAnswer::No);
        }
    }

    #[test]
    fn always_or_remember_is_a_remembered_yes() {
        for always in ["a", "Always", " remember\n"] {
            assert_eq!(parse_answer(always), ConsentAnswer::YesRemember);
        }
        assert_eq!(parse_answer("always not"), ConsentAnswer::No);
    }

    #[test]
    fn the_question_names_the_technician_and_the_access() {
        let q = ConsentQuestion {
            session_id: "s".into(),
            technician: "Ada".into(),
            access: AccessMode::Control,
            usb: true,
            usb_device: None,
        };
        assert_eq!(
            q.sentence(),
            "Ada asks to see and control this computer and use its USB devices."
        );
        let device = ConsentQuestion {
            usb_device: Some("0525:a4a0 (Gadget Zero)".into()),
            ..q
        };
        assert_eq!(
            device.sentence(),
            "Ada asks to use the USB device 0525:a4a0 (Gadget Zero) of this computer."
        );
    }

    #[test]
    fn deny_all_never_grants() {
        let q = ConsentQuestion {
            session_id: "s".into(),
            technician: String::new(),
            access: AccessMode::ViewOnly,
            usb: false,
            usb_device: None,
        };
        assert_eq!(DenyAll.ask(&q), ConsentAnswer::Unavailable);
    }
}
