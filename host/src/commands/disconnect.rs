//! `exo disconnect`: remove connections and their tokens for good.

use std::process::ExitCode;

use anyhow::bail;
use session::cache::CacheError;

use crate::cli::DisconnectArgs;
use crate::context::Context;
use crate::select;
use crate::services;

/// Runs `exo disconnect`.
pub async fn run(context: &Context, args: &DisconnectArgs) -> anyhow::Result<ExitCode> {
    let everything = args.all
        || (args.selection.connection_ids.is_empty() && args.selection.prefixes.is_empty());
    let contents = match context.store.read().await {
        Ok(contents) => contents,
        Err(error) if everything && error.is_unreadable() => {
            return reset(context, args, &error).await;
        }
        Err(error) => return Err(error.into()),
    };
    let chosen = select::matching(&contents.entries, &args.selection)?;
    if chosen.is_empty() {
        crate::output::say(format_args!("No connections to disconnect."))?;
        return Ok(ExitCode::SUCCESS);
    }
    let names: Vec<String> = chosen
        .iter()
        .map(|e| format!("{} ({})", e.connection.name(), e.connection.who()))
        .collect();
    if !args.yes
        && !confirm(&format!(
            "Disconnect {} and delete their tokens?",
            names.join(", ")
        ))?
    {
        bail!("nothing was disconnected");
    }
    let ids: Vec<_> = chosen.iter().map(|e| e.connection.id).collect();
    let mut locked = context.store.lock().await?;
    locked
        .contents()
        .entries
        .retain(|e| !ids.contains(&e.connection.id));
    locked.save()?;
    for name in names {
        crate::output::say(format_args!("Disconnected {name}."))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `disconnect --all` on a cache that cannot be read: move it aside, after asking.
async fn reset(
    context: &Context,
    args: &DisconnectArgs,
    error: &CacheError,
) -> anyhow::Result<ExitCode> {
    crate::output::tell(format_args!("exo: {error}"));
    if !args.yes && !confirm("Move the unreadable token cache aside and start a new one?")? {
        bail!("the token cache was left as it is");
    }
    match context.store.move_damaged_aside().await? {
        Some(aside) => crate::output::say(format_args!(
            "Moved the unreadable token cache to {}; every connection is gone.",
            aside.display()
        ))?,
        None => crate::output::say(format_args!("No connections to disconnect."))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on the terminal; without one, there is no one to ask and the answer is yes
/// (scripts say what they want with the selection).
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !services::terminal_available() {
        return Ok(true);
    }
    let answer = services::ask(&format!("{question} [y/N] "))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
