//! Renewing tokens with the connection's own login method, and handing tokens to the
//! Exchange client.
//!
//! [`PluginRenewer`] implements the session core's `Renewer`: it loads the connection's plugin
//! (once per process), reads the method's parameters again from where they came from (a
//! rotated secret file is picked up), and calls the plugin's `renew` on a blocking thread
//! without interaction. [`ConnectionTokens`] gives the Exchange client a token per request
//! from memory while it is fresh, and from the session core otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi_stable::std_types::{ROption, RString};
use plugin_abi::{AccountInfo, AccountKind as AbiAccountKind, ErrorKind, LoginRequest, TokenGrant};
use session::connection::{AccountKind, Connection, Secret, Tokens, now};
use session::renewal::{self, Need, RenewError, Renewer};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::commands::call_plugin;
use crate::commands::connect::{describe_plugin_error, login_request};
use crate::context::Context;
use crate::loader::{self, LoadedPlugin};
use crate::parameters;
use crate::services::Services;

/// Renews with the connection's plugin.
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
                message: e.to_string(),
            })?;
        plugins.insert(method.to_owned(), plugin.clone());
        Ok(plugin)
    }
}

impl Renewer for PluginRenewer<'_> {
    async fn renew(&self, connection: &Connection, tokens: &Tokens) -> Result<Tokens, RenewError> {
        let plugin = self.plugin(&connection.method)?;
        let failed = |message: String| RenewError {
            interaction_required: false,
            message,
        };
        let http = self
            .context
            .clients
            .get(&connection.endpoints.trust)
            .map_err(|e| failed(format!("{e:#}")))?;
        let parameters = parameters::reread(&connection.parameters);
        let request = login_request(&connection.endpoints, &parameters, false);
        let previous = grant_of(connection, tokens);
        let services = Services::new(
            http,
            tokio::runtime::Handle::current(),
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
            message: describe_plugin_error(&e),
        })?;
        let mut renewed = tokens_of(&grant);
        wipe_grant(grant);
        // A flow that does not rotate its refresh token keeps the one it had.
        if renewed.refresh_token.is_none() {
            renewed.refresh_token = tokens.refresh_token.clone();
        }
        Ok(renewed)
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
    for parameter in request.parameters {
        wipe(parameter.value);
    }
}

fn wipe(secret: RString) {
    use zeroize::Zeroize as _;
    secret.into_string().zeroize();
}

/// The tokens of a fresh grant.
pub fn tokens_of(grant: &TokenGrant) -> Tokens {
    let secret = |s: &ROption<RString>| s.as_ref().map(|s| Secret::new(s.as_str())).into_option();
    Tokens {
        access_token: Secret::new(grant.access_token.as_str()),
        token_type: grant.token_type.to_string(),
        expires_on: grant.expires_on,
        obtained_at: now(),
        refresh_token: secret(&grant.refresh_token),
        id_token: secret(&grant.id_token),
        scopes: grant.scopes.iter().map(|s| s.to_string()).collect(),
        authority: grant.authority.to_string(),
    }
}

/// The grant a plugin handed out, rebuilt from the cache for its `renew`.
fn grant_of(connection: &Connection, tokens: &Tokens) -> TokenGrant {
    let text = |s: &Option<String>| s.as_deref().map(RString::from).into();
    TokenGrant {
        access_token: tokens.access_token.expose().into(),
        token_type: tokens.token_type.as_str().into(),
        expires_on: tokens.expires_on,
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|s| RString::from(s.expose()))
            .into(),
        id_token: tokens
            .id_token
            .as_ref()
            .map(|s| RString::from(s.expose()))
            .into(),
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
        extensions: RString::new(),
    }
}

/// A connection's tokens for the Exchange client.
pub struct ConnectionTokens<'r, 'c> {
    context: &'c Context,
    renewer: &'r PluginRenewer<'c>,
    id: Uuid,
    current: Mutex<Current>,
}

/// The token in use, and until when not to retry a renewal that failed ahead of expiry.
struct Current {
    tokens: Tokens,
    retry_renewal_after: Option<Instant>,
}

/// How long a failed early renewal is not retried (the token still works meanwhile).
const RENEWAL_RETRY_DELAY: Duration = Duration::from_secs(60);

impl<'r, 'c> ConnectionTokens<'r, 'c> {
    /// Tokens of connection `id`, starting from `tokens`.
    pub fn new(
        context: &'c Context,
        renewer: &'r PluginRenewer<'c>,
        id: Uuid,
        tokens: Tokens,
    ) -> Self {
        Self {
            context,
            renewer,
            id,
            current: Mutex::new(Current {
                tokens,
                retry_renewal_after: None,
            }),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl exchange::invoke::TokenSource for ConnectionTokens<'_, '_> {
    async fn token(&self, rejected: Option<&str>) -> Result<Zeroizing<String>, String> {
        if rejected.is_none() {
            let current = self.current();
            let tokens = &current.tokens;
            let waiting = current
                .retry_renewal_after
                .is_some_and(|after| Instant::now() < after);
            if tokens.is_fresh(now()) || (waiting && !tokens.is_expired(now())) {
                return Ok(Zeroizing::new(tokens.access_token.expose().to_owned()));
            }
        }
        let need = rejected.map_or(Need::Fresh, Need::Replacing);
        let entry = renewal::valid_tokens(&self.context.store, self.id, need, self.renewer)
            .await
            .map_err(|e| e.to_string())?;
        let token = Zeroizing::new(entry.tokens.access_token.expose().to_owned());
        let mut current = self.current();
        // Still not fresh: renewing ahead of expiry failed; do not try again on every page.
        current.retry_renewal_after =
            (!entry.tokens.is_fresh(now())).then(|| Instant::now() + RENEWAL_RETRY_DELAY);
        current.tokens = entry.tokens;
        Ok(token)
    }
}
