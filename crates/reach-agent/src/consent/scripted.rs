//! Scripted answers for in-process tests: the test sees each question and answers it.

use super::{ConsentAnswer, ConsentPrompt, ConsentQuestion};
use std::sync::Mutex;
use std::sync::mpsc;

/// A prompt whose answers come from a [`ScriptedPromptControl`].
#[derive(Debug)]
pub struct ScriptedPrompt {
    questions: mpsc::Sender<ConsentQuestion>,
    answers: Mutex<mpsc::Receiver<ConsentAnswer>>,
}

/// The test's side: receive questions, send answers.
#[derive(Debug)]
pub struct ScriptedPromptControl {
    questions: Mutex<mpsc::Receiver<ConsentQuestion>>,
    answers: mpsc::Sender<ConsentAnswer>,
}

impl ScriptedPrompt {
    /// A prompt and its control.
    pub fn new() -> (Self, ScriptedPromptControl) {
        let (qt, qr) = mpsc::channel();
        let (at, ar) = mpsc::channel();
        (
            Self {
                questions: qt,
                answers: Mutex::new(ar),
            },
            ScriptedPromptControl {
                questions: Mutex::new(qr),
                answers: at,
            },
        )
    }
}

impl ScriptedPromptControl {
    /// Queues an answer for the next question (may be called before it is asked).
    pub fn answer(&self, answer: ConsentAnswer) {
        let _ = self.answers.send(answer);
    }

    /// Waits up to `timeout` for the next question (blocking; use from `spawn_blocking`
    /// or a plain thread).
    pub fn next_question(&self, timeout: std::time::Duration) -> Option<ConsentQuestion> {
        self.questions.lock().ok()?.recv_timeout(timeout).ok()
    }
}

impl ConsentPrompt for ScriptedPrompt {
    fn ask(&self, question: &ConsentQuestion) -> ConsentAnswer {
        let _ = self.questions.send(question.clone());
        let Ok(answers) = self.answers.lock() else {
            return ConsentAnswer::Unavailable;
        };
        answers
            .recv_timeout(reach_proto::limits::CONSENT_TIMEOUT)
            .unwrap_or(ConsentAnswer::Unavailable)
    }

    fn name(&self) -> &'static str {
        "scripted"
    }
}
