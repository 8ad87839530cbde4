//! What a connection's requests go to and authenticate with: the admin API with its tokens
//! (renewed through its plugin), or remote PowerShell's legacy endpoint with Basic credentials,
//! whose password is the access token (`BasicAuthToOAuthConversion=true`) or the account's
//! password, read again from its source for each command and never cached.
//!
//! A legacy connection's shell id is kept with its cache entry, so that later commands reuse
//! the shell instead of opening one each (the server allows a user only a few).

use anyhow::Context as _;
use exchange::invoke::{Route, Shell, Target, TokenSource, app_anchor_mailbox};
use session::cache::{Entry, Store};
use session::connection::{
    AccountKind, Connection, LegacyPassword, MethodParameter, ParameterSource, Transport,
};
use zeroize::Zeroizing;

use crate::context::Context;
use crate::plugin_runtime::{ConnectionTokens, PluginRenewer};

/// The login-method parameter a Basic sign-in's password comes from (see
/// `plugin_abi::extension::BASIC_TOKEN_TYPE`).
pub const PASSWORD_PARAMETER: &str = "password";

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
            parameter: connection
                .parameters
                .iter()
                .find(|p| p.name == PASSWORD_PARAMETER)
                .cloned(),
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

/// Keeps `shell` as connection `id`'s open shell, when it changed from `before`. A failure
/// only costs a new shell next time, so it is a warning.
pub async fn keep_shell(store: &Store, id: uuid::Uuid, before: Option<&str>, shell: &Shell) {
    let now = shell.id();
    if now.as_deref() == before {
        return;
    }
    let kept = async {
        let mut locked = store.lock().await?;
        if let Some(entry) = locked.contents().get_mut(id) {
            entry.legacy_shell = now;
            locked.save()?;
        }
        Ok::<_, session::cache::CacheError>(())
    };
    if let Err(error) = kept.await {
        tracing::warn!(target: "exo::invoke", "could not keep the remote PowerShell shell's id ({error}); the next command opens another");
    }
}
