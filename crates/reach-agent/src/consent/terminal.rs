//! Terminal prompt, used when stdin is a TTY.

use super::{ConsentAnswer, ConsentPrompt, ConsentQuestion, parse_answer};
use std::io::{BufRead, IsTerminal, Write};

/// Asks on stderr and reads one line from stdin. End of input denies.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalPrompt;

impl TerminalPrompt {
    /// Whether stdin is a terminal a person can type into.
    pub fn available() -> bool {
        std::io::stdin().is_terminal()
    }
}

impl ConsentPrompt for TerminalPrompt {
    fn ask(&self, question: &ConsentQuestion) -> ConsentAnswer {
        let mut err = std::io::stderr().lock();
        let ask = if question.usb_device.is_some() {
            "Allow? Type yes to allow once, always to allow and remember this device, anything else denies: "
        } else {
            "Allow? Type yes to allow, anything else denies: "
        };
        let shown = writeln!(err, "\n{}", question.sentence())
            .and_then(|()| write!(err, "{ask}"))
            .and_then(|()| err.flush());
        if shown.is_err() {
            return ConsentAnswer::Unavailable;
        }
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => ConsentAnswer::Unavailable,
            Ok(_) => parse_answer(&line),
        }
    }

    fn name(&self) -> &'static str {
        "terminal"
    }
}
