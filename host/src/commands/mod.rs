//! The commands, one module each, and what they share: running a plugin call.

pub mod connect;
mod connections;
mod disconnect;
mod invoke;
mod plugins;
mod token;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RResult;
use plugin_abi::{HostRef, HostServices_TO, PluginError};

use crate::cli::{Command, Parsed};
use crate::context::Context;
use crate::services::Services;

/// Runs the parsed command.
pub async fn run(parsed: Parsed) -> anyhow::Result<ExitCode> {
    let Parsed { cli, connect } = parsed;
    let context = Context::new(&cli.global)?;
    match cli.command {
        Command::Connect(args) => {
            let (plugin, given) = connect.ok_or_else(|| anyhow::anyhow!("--method is required"))?;
            connect::run(&context, &args, plugin, given).await
        }
        Command::Connections(args) => connections::run(&context, &args).await,
        Command::Disconnect(args) => disconnect::run(&context, &args).await,
        Command::Token(args) => token::run(&context, &args).await,
        Command::Invoke(args) => invoke::run(&context, args.words).await,
        Command::Cmdlet(words) => invoke::run(&context, words).await,
        Command::Plugins(command) => plugins::run(&context, &command),
    }
}

/// Runs `call` (one plugin entry point) on a blocking thread with `services` lent to it.
///
/// The first Ctrl-C asks the plugin to stop (through `is_cancelled`) and waits for it; a
/// second one quits at once.
pub async fn call_plugin<T: Send + 'static>(
    services: Services,
    cancelled: Arc<AtomicBool>,
    call: impl FnOnce(HostRef<'_>) -> RResult<T, PluginError> + Send + 'static,
) -> Result<T, PluginError> {
    let mut task = tokio::task::spawn_blocking(move || {
        call(HostServices_TO::from_ptr(&services, TD_Opaque)).into_result()
    });
    let joined = tokio::select! {
        joined = &mut task => joined,
        _ = tokio::signal::ctrl_c() => {
            cancelled.store(true, Ordering::Relaxed);
            eprintln!("exo: cancelling… (press Ctrl-C again to quit at once)");
            tokio::select! {
                joined = task => joined,
                _ = tokio::signal::ctrl_c() => std::process::exit(130),
            }
        }
    };
    joined.unwrap_or_else(|e| {
        Err(PluginError {
            kind: plugin_abi::ErrorKind::INTERNAL,
            code: Default::default(),
            message: format!("the plugin call did not complete: {e}").into(),
            extensions: Default::default(),
        })
    })
}
