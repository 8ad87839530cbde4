//! What a connection's requests go to and authenticate with: the admin API with its tokens
//! (renewed through its plugin), or remote PowerShell's legacy endpoint with Basic credentials,
//! whose password is the access token (`BasicAuthToOAuthConversion=true`) or the account's
//! password, read again from its source for each command and never cached.
//!
//! A legacy connection's shell id is kept with its cache entry, so that later commands reuse
//! the shell instead of opening one each (the server allows a user only a few); while a
//! connection has none, one process at a time opens it, and one that opened a shell another
//! process had already stored closes its own. A password the server refused is not sent again
//! by later commands until its file changes or the user connects again: each try counts
//! towards locking the account.

use std::fs::File;
use std::time::Duration;

use anyhow::Context as _;
use exchange::invoke::{
    InvokeError, Route, Shell, Summary, Target, TokenSource, app_anchor_mailbox,
};
use session::cache::{Entry, FileStamp, RefusedPassword, Store};
use session::connection::{
    AccountKind, Connection, LegacyPassword, MethodParameter, ParameterSource, Transport, now,
};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::plugin_runtime::{ConnectionTokens, PluginRenewer};

/// The login-method parameter a Basic sign-in's password comes from (see
/// `plugin_abi::extension::BASIC_TOKEN_TYPE`).
const PASSWORD_PARAMETER: &str = "password";

/// Where and as whom `entry`'s cmdlets run; pages are at most `max_page_bytes`.
pub fn target(entry: &Entry, max_page_bytes: u64) -> Target {
    let connection = &entry.connection;
    let anchor_mailbox = match (connection.account_kind, &connection.user_principal_name) {
        (AccountKind::User, Some(upn)) => format!("UPN:{upn}"),
        _ => app_anchor_mailbox(&connection.tenant_id),
    };
    let route = match &connection.transport {
        Transport::InvokeCommand => Route::InvokeCommand {
            tenant: connection.target_tenant().to_owned(),
        },
        Transport::Legacy { .. } => Route::Legacy {
            url: connection.endpoints.legacy_or_default().request_url(),
            user: connection.who().to_owned(),
            shell: Shell::new(entry.legacy_shell.clone()),
        },
    };
    Target {
        exchange: connection.endpoints.exchange.clone(),
        route,
        connection_id: connection.id,
        anchor_mailbox,
        page_size: connection.page_size,
        max_page_bytes,
        client_application: concat!("exo/", env!("CARGO_PKG_VERSION")).to_owned(),
    }
}

/// What a connection's requests authenticate with.
pub enum Credentials<'r, 'c> {
    /// Its access token.
    Tokens(ConnectionTokens<'r, 'c>),
    /// The account's password, from its source.
    Password(PasswordSource),
}

impl<'r, 'c> Credentials<'r, 'c> {
    /// The credentials of `entry`.
    pub fn of(context: &'c Context, renewer: &'r PluginRenewer<'c>, entry: &Entry) -> Self {
        match entry.connection.transport {
            Transport::Legacy {
                password: LegacyPassword::Password,
            } => Self::Password(PasswordSource::of(&entry.connection)),
            _ => Self::Tokens(ConnectionTokens::new(
                context,
                renewer,
                entry.connection.id,
                entry.tokens.clone(),
            )),
        }
    }
}

impl TokenSource for Credentials<'_, '_> {
    async fn token(&self, rejected: Option<&str>) -> Result<Zeroizing<String>, String> {
        match self {
            Self::Tokens(tokens) => tokens.token(rejected).await,
            Self::Password(password) => password.read().map_err(|e| format!("{e:#}")),
        }
    }
}

/// A legacy Basic connection's password, read from where it came from at connect.
pub struct PasswordSource {
    name: String,
    parameter: Option<MethodParameter>,
}

impl PasswordSource {
    /// The password source of `connection`.
    pub fn of(connection: &Connection) -> Self {
        Self {
            name: connection.name(),
            parameter: password_parameter(connection).cloned(),
        }
    }

    /// The password, read now.
    pub fn read(&self) -> anyhow::Result<Zeroizing<String>> {
        let parameter = self
            .parameter
            .as_ref()
            .with_context(|| format!("{} has no password parameter to sign in with", self.name))?;
        let bytes = crate::parameters::read_again(parameter).with_context(|| {
            let advice = match parameter.source {
                ParameterSource::Prompt | ParameterSource::Stdin => {
                    "; connect again with --remember-password to keep it in the OS keyring, or \
                     give it as --password-file or EXO_PASSWORD"
                }
                _ => "",
            };
            format!("cannot read the password of {} again{advice}", self.name)
        })?;
        let text = std::str::from_utf8(&bytes).context("the password is not UTF-8 text")?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

/// How long a command waits for another one that is opening the connection's shell before it
/// opens one of its own.
const SHELL_WAIT: Duration = Duration::from_secs(30);

/// For a legacy connection that has no shell yet: waits while another process opens one.
/// Returns the shell that process stored, if any, or else the lock, held until this command's
/// shell is kept ([`keep_shell`]).
pub async fn shell_turn(store: &Store, entry: &Entry) -> (Option<File>, Option<String>) {
    let legacy = matches!(entry.connection.transport, Transport::Legacy { .. });
    if !legacy || entry.legacy_shell.is_some() {
        return (None, entry.legacy_shell.clone());
    }
    let id = entry.connection.id;
    let lock = match store.lock_shell(id, SHELL_WAIT).await {
        Ok(lock) => Some(lock),
        Err(error) => {
            tracing::debug!(target: "exo::invoke", "opening a shell of its own ({error})");
            None
        }
    };
    let stored = store
        .get(id)
        .await
        .ok()
        .flatten()
        .and_then(|entry| entry.legacy_shell);
    match stored {
        Some(shell) => (None, Some(shell)),
        None => (lock, None),
    }
}

/// Keeps `shell` as connection `id`'s open shell, when it changed from `before`. Returns a
/// shell of this command's that is not kept, because another process stored its own meanwhile:
/// the caller closes it. A failure to keep it only costs a new shell next time: a warning.
pub async fn keep_shell(
    store: &Store,
    id: Uuid,
    before: Option<&str>,
    shell: &Shell,
) -> Option<String> {
    let ours = shell.id();
    if ours.as_deref() == before {
        return None;
    }
    let kept = store.update(id, |entry| {
        if entry.legacy_shell.is_some() && entry.legacy_shell.as_deref() != before {
            // Another process stored its own meanwhile: that one stays.
            return;
        }
        entry.legacy_shell = ours.clone();
    });
    match kept.await {
        Ok(Some(entry)) if entry.legacy_shell == ours => None,
        Ok(_) => ours,
        Err(error) => {
            tracing::warn!(target: "exo::invoke", "could not keep the remote PowerShell shell's id ({error}); the next command opens another");
            None
        }
    }
}

/// Closes a shell this command opened but another process's shell is kept instead (best
/// effort: it expires anyway).
pub async fn close_extra_shell(
    http: &reqwest::Client,
    target: &Target,
    credentials: &Credentials<'_, '_>,
    id: &str,
) {
    let closed = async {
        let secret = credentials.token(None).await?;
        exchange::invoke::close_shell(http, target, &secret, id)
            .await
            .map_err(|e| e.to_string())
    };
    if let Err(error) = closed.await {
        tracing::debug!(target: "exo::invoke", "could not close an extra shell: {error}");
    }
}

/// The login-method parameter `connection`'s Basic password comes from.
pub fn password_parameter(connection: &Connection) -> Option<&MethodParameter> {
    connection
        .parameters
        .iter()
        .find(|p| p.name == PASSWORD_PARAMETER)
}

/// What the password file looks like now, when the password comes from a file that is there.
fn password_file_stamp(connection: &Connection) -> Option<FileStamp> {
    match &password_parameter(connection)?.source {
        ParameterSource::File(path) => std::fs::metadata(path).ok().map(|m| FileStamp::of(&m)),
        _ => None,
    }
}

/// Why a connection that sends its password must not send it now: the server refused this
/// very password before (its file has not changed since, or it comes from a source that
/// cannot change without connecting again).
pub fn still_refused(entry: &Entry) -> Option<String> {
    let refused = entry.refused_password.as_ref()?;
    let connection = &entry.connection;
    let advice = match &refused.file {
        Some(stamp) => {
            if password_file_stamp(connection).is_some_and(|now| now != *stamp) {
                return None;
            }
            "put the right one in its password file (it is read again), or connect again".to_owned()
        }
        _ => format!(
            "connect again: {}",
            crate::hints::reconnect_command(&connection.reconnect)
        ),
    };
    Some(format!(
        "the server refused the password of {} {}; exo does not send it again, since each try \
         counts towards locking the account: {advice}",
        connection.name(),
        crate::output::describe_expiry(refused.at)
    ))
}

/// Records whether the server refused a password connection's password (a 401), or clears an
/// earlier refusal once it accepts one.
pub async fn note_password_outcome(
    store: &Store,
    entry: &Entry,
    result: &Result<Summary, InvokeError>,
) {
    if !entry.connection.transport.sends_password() {
        return;
    }
    let refused = matches!(result, Err(InvokeError::Exchange { status: 401, .. }));
    if !refused && entry.refused_password.is_none() {
        return;
    }
    let file = password_file_stamp(&entry.connection);
    let noted = store.update(entry.connection.id, |saved| {
        saved.refused_password = refused.then_some(RefusedPassword { at: now(), file });
    });
    if let Err(error) = noted.await {
        tracing::warn!(target: "exo::invoke", "could not note the password's refusal: {error}");
    }
}
