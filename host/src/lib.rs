//! `exo`: sign in to Exchange Online with any login method and run Exchange admin cmdlets.
//!
//! The host is thin: it parses the command line ([`cli`]), finds and loads the one plugin a
//! command needs ([`discovery`], [`loader`]), lends it the host's services ([`services`],
//! [`http`], [`redirect`]) on a blocking thread through [`plugin_runtime`], and hands the tokens
//! to the session core.

pub mod cli;
pub mod commands;
pub mod context;
pub mod credentials;
pub mod discovery;
pub mod hints;
pub mod http;
pub mod loader;
pub mod logging;
pub mod output;
pub mod parameters;
pub mod plugin_runtime;
pub mod redirect;
pub mod render;
pub mod select;
pub mod services;

use std::process::ExitCode;

/// Runs `exo` with the process's arguments; the whole of `main`.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    logging::init(cli::verbosity(&args));
    output::watch_interrupts();
    let parsed = match cli::parse(args) {
        Ok(parsed) => parsed,
        Err(cli::ParseError::Clap(error)) => exit_with(&error),
        Err(cli::ParseError::Plugin(error)) => return report(&error),
    };
    // One thread for all of exo's I/O: a command's pages, TLS and output are handled where they
    // arrive, without waking another thread for each piece of an answer (a listing spends less
    // CPU so). Plugins run on blocking threads of their own, and the output on its own thread.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(&anyhow::Error::new(error).context("cannot start the async runtime"));
        }
    };
    let code = match runtime.block_on(commands::run(parsed)) {
        Ok(code) => code,
        Err(error) => report(&error),
    };
    // A plugin call still running (the user pressed Ctrl-C during a renewal) was told to stop;
    // it gets a moment to return, and then the process ends without it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

/// Prints clap's message (help, version or a usage error) and exits as clap would, with
/// anything shaped like a token scrubbed: a secret pasted where it does not belong must not be
/// echoed.
pub(crate) fn exit_with(error: &clap::Error) -> ! {
    let text = http::scrub_tokens(&error.render().to_string());
    let text = text.trim_end();
    if error.use_stderr() {
        output::tell(format_args!("{text}"));
    } else if let Err(e) = output::say(format_args!("{text}"))
        && !output::is_broken_pipe(&e)
    {
        output::tell(format_args!("exo: error: {e:#}"));
        std::process::exit(1);
    }
    std::process::exit(error.exit_code())
}

/// Prints `error` with its causes on one line and fails: 130 when the user interrupted, else 1.
fn report(error: &anyhow::Error) -> ExitCode {
    if output::is_broken_pipe(error) {
        return ExitCode::SUCCESS;
    }
    // Causes may quote a server or a plugin: escaped like any untrusted text.
    let described = output::untrusted(&hints::describe(error), false);
    output::tell(format_args!("exo: error: {described}"));
    let interrupted = |e: &(dyn std::error::Error + 'static)| {
        e.is::<plugin_runtime::Interrupted>()
            || matches!(
                e.downcast_ref(),
                Some(session::renewal::SessionError::Interrupted)
            )
    };
    if error.chain().any(interrupted) {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}
