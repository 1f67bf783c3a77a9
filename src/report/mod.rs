//! `hoist status` and `hoist check`: gather facts from the files, Docker and the database, and
//! present them as human lines or JSON Lines. Gathering knows nothing of the terminal; the
//! binary only prints what `Output` renders.
pub mod backup;
pub mod check;
pub mod history;
pub mod status;
pub mod swarm;
pub mod versions;

use serde_json::Value;

/// What a command produced: human text, the JSON Lines events, and the exit code.
#[derive(Debug, Default)]
pub struct Output {
    pub exit_code: u8,
    /// Human report for stdout.
    pub text: String,
    /// Error sentences for stderr (in both modes: human words never go to stdout under --json).
    pub errors: String,
    /// JSON Lines; the last one is the summary (`"type": "summary"`).
    pub events: Vec<Value>,
}

/// Text for each stream.
pub struct Rendered {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn human(&self) -> Rendered {
        Rendered {
            stdout: self.text.clone(),
            stderr: self.errors.clone(),
        }
    }

    pub fn json_lines(&self) -> Rendered {
        let mut stdout = String::new();
        for event in &self.events {
            stdout.push_str(&event.to_string());
            stdout.push('\n');
        }
        Rendered {
            stdout,
            stderr: self.errors.clone(),
        }
    }

    /// A command that could not run at all: one sentence, and a summary saying so.
    pub fn failed(command: &str, exit_code: u8, sentence: String) -> Output {
        Output {
            exit_code,
            text: String::new(),
            errors: format!("hoist: {sentence}\n"),
            events: vec![serde_json::json!({
                "type": "summary",
                "command": command,
                "outcome": "error",
                "exit_code": exit_code,
                "error": sentence,
            })],
        }
    }
}
