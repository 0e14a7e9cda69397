//! Writing a verb's report to stdout.
//!
//! `print!` panics when stdout is a closed pipe (`hyperscale ring simulate |
//! head`); a report cut short by its reader is not an error, so every
//! reporting verb writes through [`emit`], which ends quietly instead.

use std::io::Write;

/// Prints `text` to stdout; a closed pipe ends output quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints `value` as pretty JSON and a newline (every verb's `--json`).
pub fn emit_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    emit(&(serde_json::to_string_pretty(value)? + "\n"))
}
