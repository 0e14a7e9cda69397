//! Writing a verb's report to stdout, and notes to stderr.
//!
//! `print!` panics when stdout is a closed pipe (`hyperscale id next --count
//! 100000 | head -1`); a report cut short by its reader is not an error, so
//! every verb writes its report through [`emit`], which ends quietly
//! instead, and progress or startup notes through [`note`]. Tables come from
//! [`crate::table`].

use std::io::Write;

/// Prints `text` to stdout; a closed pipe ends output quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints `value` as pretty JSON and a newline (every verb's `--json`).
pub fn emit_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    emit(&(serde_json::to_string_pretty(value)? + "\n"))
}

/// Prints `text` to stderr (progress, notes, the final error line). Nothing
/// is left to tell if stderr itself is gone, so failures are ignored.
pub fn note(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
}
