//! Writing for people: exo's own lines on stdout and stderr, aligned columns, expiry times, and
//! untrusted text made safe for a terminal.
//!
//! Every write is an error path: a full disk or a closed stdout fails the command with exit
//! code 1 (quietly when a reader went away), and a stderr that cannot be written is skipped,
//! never a panic.

use std::io::{self, Write};

pub mod background;

/// Set by the Ctrl-C handler [`watch_interrupts`] installs.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes Ctrl-C (SIGINT) as it happens, next to the runtime's own handling of it, so that a
/// thread blocked outside the runtime (a write to a reader that is not reading) can stop too.
pub fn watch_interrupts() {
    #[cfg(unix)]
    // SAFETY: the action only stores to an atomic, which is async-signal-safe.
    let _ = unsafe {
        signal_hook_registry::register(libc::SIGINT, || {
            INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
}

/// Whether the user pressed Ctrl-C.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes one line to stdout; its failure is the command's (`cannot write the output: …`).
pub fn say(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut out = io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("cannot write the output")
}

/// Writes one line to stderr. When stderr itself cannot be written there is nowhere left to
/// say so, and the line is dropped.
pub fn tell(line: std::fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(line).and_then(|()| err.write_all(b"\n"));
}

/// Whether `error` is only a reader that went away (`exo … | head`): that reader's choice,
/// not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Writes `rows` under `header` as aligned columns separated by two spaces. The last column
/// is not padded; a header of empty cells is not printed.
pub fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let header = header.iter().any(|h| !h.is_empty()).then_some(&header);
    for row in header.into_iter().chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `at 2026-11-22 14:05:09 UTC (in 59 min)` for a Unix time.
pub fn describe_expiry(unix_seconds: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    let at = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("Unix time {unix_seconds}"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let minutes = (unix_seconds - now) / 60;
    let relative = match minutes {
        m if m < 0 => format!("{} min ago", -m),
        m if m < 120 => format!("in {m} min"),
        m => format!("in {} h", m / 60),
    };
    format!("at {at} ({relative})")
}

#[cfg(test)]
mod tests;

/// `text` from outside exo (a plugin's message, a server's error) made safe for a terminal:
/// control characters (ESC, OSC, BEL, …) and bidirectional overrides are shown as `\u{..}`
/// escapes instead of acting on the terminal. Line breaks are kept when `keep_lines`.
pub fn untrusted(text: &str, keep_lines: bool) -> String {
    let acts_on_terminal = |c: char| {
        (c.is_control() && !(keep_lines && c == '\n'))
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(acts_on_terminal) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if acts_on_terminal(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
