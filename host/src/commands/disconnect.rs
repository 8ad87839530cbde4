//! `exo disconnect`: remove connections and their tokens for good, close the remote PowerShell
//! shells of legacy connections, and remove the secrets they kept in the OS keyring.

use std::process::ExitCode;

use anyhow::bail;
use session::cache::{CacheError, Entry};
use session::connection::{Connection, LegacyPassword, ParameterSource, Transport, now};
use zeroize::Zeroizing;

use crate::cli::DisconnectArgs;
use crate::context::Context;
use crate::credentials::{self, PasswordSource};
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
    if everything && !contents.damaged.is_empty() {
        for damaged in &contents.damaged {
            crate::output::tell(format_args!("exo: {}", damaged.reason));
        }
        return reset_damaged(context, args, &contents).await;
    }
    // A connection whose file cannot be read can still be named, and its file removed.
    let (unreadable, readable): (Vec<uuid::Uuid>, Vec<uuid::Uuid>) = args
        .selection
        .connection_ids
        .iter()
        .partition(|id| contents.damaged.iter().any(|d| d.id == **id));
    if !unreadable.is_empty() {
        if !readable.is_empty() || !args.selection.prefixes.is_empty() {
            bail!(
                "name an unreadable connection on its own: `exo disconnect --connection-id <ID>`"
            );
        }
        if !args.yes && !confirm("Remove the unreadable connection file(s)?")? {
            bail!("nothing was disconnected");
        }
        context.store.remove(&unreadable).await?;
        for id in unreadable {
            crate::output::say(format_args!("Removed the unreadable connection {id}."))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
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
    remove(context, &ids).await?;
    Ok(ExitCode::SUCCESS)
}

/// Removes connections `ids`, closes their shells, forgets the secrets they kept, and says so.
async fn remove(context: &Context, ids: &[uuid::Uuid]) -> anyhow::Result<()> {
    for entry in &context.store.remove(ids).await? {
        close_shell(context, entry).await;
        forget_kept_secrets(&entry.connection);
        crate::output::say(format_args!(
            "Disconnected {} ({}).",
            entry.connection.name(),
            entry.connection.who()
        ))?;
    }
    Ok(())
}

/// `disconnect --all` when some connection files cannot be read: the readable connections are
/// disconnected, and the unreadable files moved aside, after asking.
async fn reset_damaged(
    context: &Context,
    args: &DisconnectArgs,
    contents: &session::cache::Contents,
) -> anyhow::Result<ExitCode> {
    if !args.yes
        && !confirm(&format!(
            "Disconnect every connection and move {} unreadable connection file(s) aside?",
            contents.damaged.len()
        ))?
    {
        bail!("nothing was disconnected");
    }
    let ids: Vec<_> = contents.entries.iter().map(|e| e.connection.id).collect();
    remove(context, &ids).await?;
    if let Some(aside) = context.store.move_damaged_aside().await? {
        crate::output::say(format_args!(
            "Moved the unreadable connection files to {}.",
            aside.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How long closing a shell may take before exo leaves it to expire.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Closes a legacy connection's open shell, so that it does not count against the user's few
/// until it expires; a failure is a warning, since the shell expires anyway.
async fn close_shell(context: &Context, entry: &Entry) {
    let connection = &entry.connection;
    let (Some(shell), Transport::Legacy { password }) =
        (&entry.legacy_shell, &connection.transport)
    else {
        return;
    };
    let closed = async {
        let secret = match password {
            LegacyPassword::Password => PasswordSource::of(connection).read()?,
            LegacyPassword::AccessToken if !entry.tokens.is_expired(now()) => {
                Zeroizing::new(entry.tokens.access_token.expose().to_owned())
            }
            LegacyPassword::AccessToken => anyhow::bail!("its token has expired"),
        };
        let http = context.clients.get(&connection.endpoints.trust)?;
        let target = credentials::target(entry, 0);
        tokio::time::timeout(
            CLOSE_TIMEOUT,
            exchange::invoke::close_shell(&http, &target, &secret, shell),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", CLOSE_TIMEOUT.as_secs()))??;
        Ok(())
    };
    if let Err(error) = closed.await {
        let error = crate::output::untrusted(&format!("{error:#}"), false);
        crate::output::tell(format_args!(
            "WARNING: could not close the remote PowerShell shell of {} ({error}); the server \
             closes it after it has been idle for a while",
            connection.name()
        ));
    }
}

/// Removes the secrets `exo connect --remember-password` kept for `connection`.
pub fn forget_kept_secrets(connection: &Connection) {
    for parameter in &connection.parameters {
        if let ParameterSource::Keyring(account) = &parameter.source
            && let Err(error) = session::keys::forget(account)
        {
            crate::output::tell(format_args!(
                "WARNING: could not remove the kept --{} of {} from the OS keyring: {error}",
                parameter.name,
                connection.name()
            ));
        }
    }
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
            "Moved the unreadable token cache to {}; the connections in it are gone.",
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
