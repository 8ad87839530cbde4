//! Logging to stderr, by verbosity: warnings by default, `-v` info, `-vv` debug (HTTP requests
//! without bodies), `-vvv` trace (redacted bodies). Only exo's own targets get more verbose;
//! dependencies stay at warnings, so that nothing they log (headers, frames) can leak a secret.
//!
//! `EXO_LOG_FILE=PATH` also appends everything `-vvv` would print, with timestamps, to PATH
//! (created readable by the user only), whatever the verbosity on stderr: automation keeps a
//! full log without a noisy stderr, as the reference module's `-LogDirectoryPath -LogLevel All`.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The environment variable naming the log file.
pub const LOG_FILE_VARIABLE: &str = "EXO_LOG_FILE";

/// Installs the stderr logger for `verbosity` (the number of `-v`), and the file logger when
/// [`LOG_FILE_VARIABLE`] names a file. A log file that cannot be opened is a warning, not a
/// failure: the command itself does not depend on it.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_filter(exo_targets(level));
    let (file, file_error) = match std::env::var_os(LOG_FILE_VARIABLE).filter(|p| !p.is_empty()) {
        None => (None, None),
        Some(path) => match open_log(Path::new(&path)) {
            Ok(file) => (Some(file), None),
            Err(error) => (None, Some(error)),
        },
    };
    let file = file.map(|file| {
        tracing_subscriber::fmt::layer()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_filter(exo_targets(LevelFilter::TRACE))
    });
    // Fails only if a logger is already installed, which then keeps working.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    if let Some(error) = file_error {
        tracing::warn!("cannot write the log file named by {LOG_FILE_VARIABLE}: {error}");
    }
}

/// exo's own targets at `level`, everything else at warnings.
fn exo_targets(level: LevelFilter) -> Targets {
    Targets::new()
        .with_target("exo", level)
        .with_target("session", level)
        .with_target("exchange", level)
        .with_default(LevelFilter::WARN)
}

/// Opens `path` for appending, creating it readable and writable by the user only.
fn open_log(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
