//! The commands, one module each.

mod connect;
mod connections;
mod disconnect;
mod invoke;
mod plugins;
mod token;

use std::process::ExitCode;

use crate::cli::{Command, Parsed};
use crate::context::Context;

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
