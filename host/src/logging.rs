//! Logging to stderr, by verbosity: warnings by default, `-v` info, `-vv` debug (HTTP requests
//! without bodies), `-vvv` trace (redacted bodies). Only exo's own targets get more verbose;
//! dependencies stay at warnings, so that nothing they log (headers, frames) can leak a secret.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the stderr logger for `verbosity` (the number of `-v`).
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let targets = Targets::new()
        .with_target("exo", level)
        .with_target("session", level)
        .with_target("exchange", level)
        .with_default(LevelFilter::WARN);
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time();
    // Fails only if a logger is already installed, which then keeps working.
    let _ = tracing_subscriber::registry()
        .with(format.with_filter(targets))
        .try_init();
}
