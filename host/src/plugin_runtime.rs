//! Calling plugins, and converting between the ABI and the session core.
//!
//! Everything that crosses from a plugin into the session passes here:
//! - [`call_plugin`] runs one entry point on a blocking thread with the host's services lent to
//!   it, and turns Ctrl-C into cancellation;
//! - [`login_request`] builds what a plugin receives, and [`signed_in`] / [`tokens_of`] read
//!   what it returns (refusing plugin state that looks like a secret);
//! - [`PluginRenewer`] implements the session core's `Renewer` with the connection's plugin;
//! - [`ConnectionTokens`] hands the Exchange client a token per request through the session's
//!   [`TokenMemo`].
//!
//! The commands use this module; it uses no command, so there is no cycle between them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RString, RVec};
use plugin_abi::{
    AccountInfo, AccountKind as AbiAccountKind, ErrorKind, HostRef, HostServices_TO, LoginRequest,
    PluginError, TokenGrant, capability, extension,
};
use session::cache::Store;
use session::connection::{AccountKind, Connection, Secret, SignedIn, Tokens, now};
use session::environment::Endpoints;
use session::renewal::{RenewError, Renewer, SessionError, TokenMemo};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::loader::{self, LoadedPlugin};
use crate::parameters::{self, Resolved};
use crate::services::Services;

/// The public client of the reference module ("Microsoft Exchange REST API Based Powershell"),
/// used by delegated login methods unless they are given another.
pub const DEFAULT_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

/// The largest plugin state kept with a connection.
const MAX_STATE_BYTES: usize = 16 * 1024;

/// The user pressed Ctrl-C and the plugin stopped; exo exits with 130, as a shell does for
/// SIGINT.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Interrupted;

/// Runs `call` (one plugin entry point) on a blocking thread with `services` lent to it.
///
/// The first Ctrl-C asks the plugin to stop (through `is_cancelled`, and by ending the host
/// service it is waiting in: HTTP, sleep, the redirect listener) and waits for it; a second one
/// quits at once. A command that is itself interrupted (a cmdlet) sets the same flag and gives
/// running calls a moment with [`let_plugin_calls_stop`].
pub async fn call_plugin<T: Send + 'static>(
    services: Services,
    cancelled: Arc<AtomicBool>,
    call: impl FnOnce(HostRef<'_>) -> RResult<T, PluginError> + Send + 'static,
) -> Result<T, PluginError> {
    let mut task = tokio::task::spawn_blocking(move || {
        let _in_flight = InFlight::enter();
        call(HostServices_TO::from_ptr(&services, TD_Opaque)).into_result()
    });
    let joined = tokio::select! {
        joined = &mut task => joined,
        _ = tokio::signal::ctrl_c() => {
            cancelled.store(true, Ordering::Relaxed);
            crate::output::tell(format_args!(
                "exo: cancelling… (press Ctrl-C again to quit at once)"
            ));
            tokio::select! {
                joined = task => joined,
                _ = tokio::signal::ctrl_c() => std::process::exit(130),
            }
        }
    };
    joined.unwrap_or_else(|e| {
        Err(PluginError {
            kind: ErrorKind::INTERNAL,
            code: Default::default(),
            message: format!("the plugin call did not complete: {e}").into(),
            extensions: Default::default(),
        })
    })
}

/// Plugin calls running now, on blocking threads.
static CALLS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one plugin call while it runs.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        CALLS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        CALLS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// After the user pressed Ctrl-C (and the cancellation flag is set), gives running plugin calls
/// up to `patience` to notice and return while the runtime still serves them, so that exo
/// ends cleanly; a plugin stuck elsewhere is left behind when the process exits.
pub async fn let_plugin_calls_stop(patience: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + patience;
    while CALLS_IN_FLIGHT.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The request a plugin receives for `endpoints`.
pub fn login_request(
    endpoints: &Endpoints,
    parameters: &Resolved,
    interactive: bool,
) -> LoginRequest {
    let mut host_capabilities = RVec::new();
    if interactive {
        host_capabilities.push(capability::HOST_PROMPT.into());
        host_capabilities.push(capability::HOST_BROWSER.into());
    }
    LoginRequest {
        parameters: parameters.values.clone().into_iter().collect(),
        environment: endpoints.environment.as_str().into(),
        authority: endpoints.authority.as_str().into(),
        resource: endpoints.resource.as_str().into(),
        scopes: RVec::from(vec![RString::from(endpoints.scope())]),
        client_id: DEFAULT_CLIENT_ID.into(),
        interactive,
        host_capabilities,
        extensions: request_extensions(endpoints).into(),
    }
}

/// The request's `extensions` (see `crates/plugin-abi/EVOLUTION.md`): the legacy endpoint.
fn request_extensions(endpoints: &Endpoints) -> String {
    let legacy = endpoints.legacy_or_default();
    serde_json::json!({
        extension::LEGACY_ENDPOINT: {
            "url": legacy.request_url().as_str(),
            "delegated_organization": legacy.delegated_organization,
            "basic_auth_to_oauth_conversion": legacy.basic_auth_to_oauth_conversion,
            "exchange_online": legacy.exchange_online,
        }
    })
    .to_string()
}

/// A plugin error for people: the code (e.g. AADSTS50126) first when there is one.
/// Its text comes from the plugin (and often from a server): it is made safe for a terminal.
pub fn describe_plugin_error(error: &PluginError) -> String {
    let text = if error.code.is_empty() || error.message.starts_with(error.code.as_str()) {
        error.message.to_string()
    } else {
        format!("{}: {}", error.code, error.message)
    };
    crate::output::untrusted(&text, false)
}

/// Whom a grant signed in.
pub fn signed_in(grant: &TokenGrant) -> SignedIn {
    let account = &grant.account;
    let text = |s: &ROption<RString>| s.as_ref().map(|s| s.to_string()).into_option();
    SignedIn {
        account_kind: Some(if account.kind == AbiAccountKind::APPLICATION {
            AccountKind::Application
        } else {
            AccountKind::User
        }),
        user_principal_name: text(&account.username),
        app_id: text(&account.app_id),
        object_id: text(&account.object_id),
        tenant_id: grant.tenant_id.to_string(),
    }
}

/// Why a plugin's grant cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The plugin's state is not a small JSON object free of secrets, or its grant is not
    /// what its token type says.
    #[error("the {method} plugin returned a grant that exo refuses to keep: {reason}")]
    State {
        /// The plugin.
        method: String,
        /// Why.
        reason: &'static str,
    },
    /// The grant's expiry is not a time exo can hold.
    #[error(
        "the {method} plugin returned an expiry exo cannot use ({expires_on}): it must be after \
         1970 and before the year 10000"
    )]
    Expiry {
        /// The plugin.
        method: String,
        /// The expiry it gave, in seconds since the Unix epoch.
        expires_on: i64,
    },
}

/// The latest expiry exo accepts: the last second of the year 9999, the end of what a
/// timestamp can be printed as.
const LATEST_EXPIRY: i64 = 253_402_300_799;

/// The tokens of a fresh grant of `method`'s plugin; its state is checked first: a JSON object
/// of at most 16 KiB with nothing shaped like a token in it.
pub fn tokens_of(method: &str, grant: &TokenGrant) -> Result<Tokens, GrantError> {
    let state = grant.state.as_str();
    let refuse = |reason| GrantError::State {
        method: method.to_owned(),
        reason,
    };
    if !state.is_empty() {
        if state.len() > MAX_STATE_BYTES {
            return Err(refuse("its state is larger than 16 KiB"));
        }
        let parsed: serde_json::Value =
            serde_json::from_str(state).map_err(|_| refuse("its state is not a JSON object"))?;
        if !parsed.is_object() {
            return Err(refuse("its state is not a JSON object"));
        }
        if holds_secret_shape(&parsed) {
            return Err(refuse(
                "its state holds something shaped like a token or a private key",
            ));
        }
    }
    // A Basic sign-in has no token, so nothing expires; a token there would end up in the
    // cache as if it were one, and a plugin must not hand the password over that way.
    let basic = grant.token_type.as_str() == extension::BASIC_TOKEN_TYPE;
    if basic
        && (!grant.access_token.is_empty()
            || grant.refresh_token.is_some()
            || grant.id_token.is_some()
            || !state.is_empty())
    {
        return Err(refuse("a Basic sign-in carries a token or state"));
    }
    let expires_on = if basic {
        LATEST_EXPIRY
    } else {
        grant.expires_on
    };
    if !(1..=LATEST_EXPIRY).contains(&expires_on) {
        return Err(GrantError::Expiry {
            method: method.to_owned(),
            expires_on: grant.expires_on,
        });
    }
    let secret = |s: &ROption<RString>| s.as_ref().map(|s| Secret::new(s.as_str())).into_option();
    Ok(Tokens {
        access_token: Secret::new(grant.access_token.as_str()),
        token_type: grant.token_type.to_string(),
        expires_on,
        obtained_at: now(),
        refresh_token: secret(&grant.refresh_token),
        id_token: secret(&grant.id_token),
        scopes: grant.scopes.iter().map(|s| s.to_string()).collect(),
        authority: grant.authority.to_string(),
        plugin_state: state.to_owned(),
    })
}

/// Whether any string in `value` (keys included, after JSON unescaping) looks like a JWT or a
/// PEM private key. A heuristic: plugin state must never hold a secret, and these are the
/// secrets a login method handles that have a recognisable shape.
fn holds_secret_shape(value: &serde_json::Value) -> bool {
    let secret_text =
        |text: &str| crate::http::looks_like_secret(text) || text.contains("-----BEGIN");
    match value {
        serde_json::Value::String(text) => secret_text(text),
        serde_json::Value::Array(items) => items.iter().any(holds_secret_shape),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| secret_text(key) || holds_secret_shape(value)),
        _ => false,
    }
}

/// What differs, if a renewal signed in someone else: the tenant, the app, or the account.
fn other_identity(connection: &Connection, renewed: &SignedIn) -> Option<&'static str> {
    let differs = |old: &Option<String>, new: &Option<String>| matches!((old, new), (Some(old), Some(new)) if !old.eq_ignore_ascii_case(new));
    if !renewed.tenant_id.is_empty()
        && !renewed
            .tenant_id
            .eq_ignore_ascii_case(&connection.tenant_id)
    {
        Some("tenant")
    } else if differs(&connection.app_id, &renewed.app_id) {
        Some("app")
    } else if differs(&connection.object_id, &renewed.object_id) {
        Some("account")
    } else {
        None
    }
}

/// The grant a plugin handed out, rebuilt from the cache for its `renew`.
fn grant_of(connection: &Connection, tokens: &Tokens) -> TokenGrant {
    let text = |s: &Option<String>| s.as_deref().map(RString::from).into();
    let secret = |s: &Option<Secret>| s.as_ref().map(|s| RString::from(s.expose())).into();
    TokenGrant {
        access_token: tokens.access_token.expose().into(),
        token_type: tokens.token_type.as_str().into(),
        expires_on: tokens.expires_on,
        refresh_token: secret(&tokens.refresh_token),
        id_token: secret(&tokens.id_token),
        account: AccountInfo {
            kind: match connection.account_kind {
                AccountKind::User => AbiAccountKind::USER,
                AccountKind::Application => AbiAccountKind::APPLICATION,
            },
            username: text(&connection.user_principal_name),
            app_id: text(&connection.app_id),
            object_id: text(&connection.object_id),
            display_name: ROption::RNone,
        },
        scopes: tokens
            .scopes
            .iter()
            .map(|s| RString::from(s.as_str()))
            .collect(),
        tenant_id: connection.tenant_id.as_str().into(),
        authority: tokens.authority.as_str().into(),
        state: tokens.plugin_state.as_str().into(),
        extensions: RString::new(),
    }
}

/// Wipes the secrets of a grant a plugin handed over, once they are copied where they belong.
pub fn wipe_grant(mut grant: TokenGrant) {
    wipe(std::mem::take(&mut grant.access_token));
    for token in [&mut grant.refresh_token, &mut grant.id_token] {
        if let ROption::RSome(secret) = std::mem::replace(token, ROption::RNone) {
            wipe(secret);
        }
    }
}

/// Wipes the parameter values of a login request (secrets among them) after the plugin call.
pub fn wipe_request(request: LoginRequest) {
    use zeroize::Zeroize as _;
    for parameter in request.parameters {
        parameter.value.into_vec().zeroize();
    }
}

fn wipe(secret: RString) {
    use zeroize::Zeroize as _;
    secret.into_string().zeroize();
}

/// Renews with the connection's plugin: loads it (once per process), reads the method's
/// parameters again from where they came from (a rotated secret file is picked up), and calls
/// its `renew` on a blocking thread without interaction. Several renewals may run in one plugin
/// at once (the ABI allows it).
pub struct PluginRenewer<'c> {
    context: &'c Context,
    plugins: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
}

impl<'c> PluginRenewer<'c> {
    /// A renewer using `context`'s plugins and HTTP clients.
    pub fn new(context: &'c Context) -> Self {
        Self {
            context,
            plugins: Mutex::new(HashMap::new()),
        }
    }

    fn plugin(&self, method: &str) -> Result<Arc<LoadedPlugin>, RenewError> {
        let mut plugins = self
            .plugins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(plugin) = plugins.get(method) {
            return Ok(plugin.clone());
        }
        let plugin = loader::load_method(&self.context.plugin_dirs, method)
            .map(Arc::new)
            .map_err(|e| RenewError {
                interaction_required: false,
                interrupted: false,
                message: e.to_string(),
            })?;
        plugins.insert(method.to_owned(), plugin.clone());
        Ok(plugin)
    }
}

impl Renewer for PluginRenewer<'_> {
    async fn renew(&self, connection: &Connection, tokens: &Tokens) -> Result<Tokens, RenewError> {
        let plugin = self.plugin(&connection.method)?;
        let parameters = parameters::reread(&connection.parameters);
        let request = login_request(&connection.endpoints, &parameters, false);
        let previous = grant_of(connection, tokens);
        let services = Services::new(
            self.context.clients.clone(),
            connection.endpoints.trust.clone(),
            &connection.method,
            false,
            self.context.cancelled.clone(),
        );
        let grant = call_plugin(services, self.context.cancelled.clone(), move |host| {
            let renewed = plugin.flow.renew(&request, &previous, host);
            wipe_request(request);
            wipe_grant(previous);
            renewed
        })
        .await
        .map_err(|e| RenewError {
            interaction_required: matches!(
                e.kind,
                ErrorKind::INTERACTION_REQUIRED | ErrorKind::AUTHENTICATION_FAILED
            ),
            // Whatever the plugin made of it, a Ctrl-C is the user's choice, not its failure.
            interrupted: self.context.cancelled.load(Ordering::Relaxed),
            message: describe_plugin_error(&e),
        })?;
        let renewed = tokens_of(&connection.method, &grant);
        let switched = other_identity(connection, &signed_in(&grant));
        wipe_grant(grant);
        if let Some(what) = switched {
            // The plugin read its parameters again (a variable, a file) and they now name
            // someone else: the connection must not quietly become another identity.
            return Err(RenewError {
                interaction_required: true,
                interrupted: false,
                message: format!(
                    "the renewed token is for another {what} than this connection's; sign in again \
                     for that identity, as its own connection"
                ),
            });
        }
        let mut renewed = renewed.map_err(|e| RenewError {
            interaction_required: false,
            interrupted: false,
            message: e.to_string(),
        })?;
        // A flow that does not rotate its refresh token keeps the one it had, and a plugin
        // that returns no state keeps the state it had.
        if renewed.refresh_token.is_none() {
            renewed.refresh_token = tokens.refresh_token.clone();
        }
        if renewed.plugin_state.is_empty() {
            renewed.plugin_state = tokens.plugin_state.clone();
        }
        Ok(renewed)
    }
}

/// A connection's tokens for the Exchange client.
pub struct ConnectionTokens<'r, 'c> {
    store: &'c Store,
    renewer: &'r PluginRenewer<'c>,
    memo: TokenMemo,
}

impl<'r, 'c> ConnectionTokens<'r, 'c> {
    /// Tokens of connection `id`, starting from `tokens`.
    pub fn new(
        context: &'c Context,
        renewer: &'r PluginRenewer<'c>,
        id: Uuid,
        tokens: Tokens,
    ) -> Self {
        Self {
            store: &context.store,
            renewer,
            memo: TokenMemo::new(id, tokens),
        }
    }
}

impl exchange::invoke::TokenSource for ConnectionTokens<'_, '_> {
    async fn token(&self, rejected: Option<&str>) -> Result<Zeroizing<String>, String> {
        self.memo
            .token(self.store, rejected, self.renewer)
            .await
            .map_err(|e: SessionError| crate::hints::with_hint(&e))
    }
}
