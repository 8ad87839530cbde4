//! A connection: who is signed in where, with which login method, and its tokens.
//!
//! Everything here is persisted in the token cache ([`crate::cache`]). Secrets are kept in
//! [`Secret`], which never prints its value and is zeroized when dropped. A login method's
//! parameters are kept as [`ParameterSource`]s: a non-secret value, or where a secret came from
//! (a file, an environment variable), never the secret itself.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroize as _;

use crate::environment::Endpoints;

/// A secret string: redacted in `Debug`, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Whether a connection acts for a user or an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Delegated: a person signed in.
    User,
    /// App-only: an application or managed identity.
    Application,
}

/// Where a login method's parameter came from, so that a silent renewal can get it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "at")]
pub enum ParameterSource {
    /// A non-secret value given on the command line; the value itself is kept.
    Value(String),
    /// A secret read from this file.
    File(std::path::PathBuf),
    /// A secret read from standard input (cannot be read again).
    Stdin,
    /// A secret read from this environment variable.
    Env(String),
    /// A secret typed at a prompt (cannot be typed again without a terminal).
    Prompt,
}

/// One login-method parameter of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodParameter {
    /// The parameter's name.
    pub name: String,
    /// Where its value came from.
    pub source: ParameterSource,
}

/// Everything about a connection but its tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// `ConnectionId`.
    pub id: Uuid,
    /// `Id`: 1, 2, … in the order connections were made.
    pub number: u32,
    /// The login method (plugin) id.
    pub method: String,
    /// Its parameters, as sources.
    pub parameters: Vec<MethodParameter>,
    /// Where it connects.
    pub endpoints: Endpoints,
    /// User or application.
    pub account_kind: AccountKind,
    /// `UserPrincipalName`, for users.
    pub user_principal_name: Option<String>,
    /// `AppId`: the application (client) id.
    pub app_id: Option<String>,
    /// The directory object id of the user or service principal.
    pub object_id: Option<String>,
    /// `TenantID` (GUID) of the signed-in account.
    pub tenant_id: String,
    /// `Organization`, as given to `exo connect`.
    pub organization: Option<String>,
    /// `DelegatedOrganization`: the customer tenant all cmdlets target.
    pub delegated_organization: Option<String>,
    /// `ModulePrefix`.
    pub prefix: Option<String>,
    /// `PageSize` (1–1000).
    pub page_size: u32,
    /// When it was made, seconds since the Unix epoch.
    pub created_at: i64,
    /// The `exo connect` arguments that make it again (no secrets: secret parameters appear as
    /// their `--<name>-file` path).
    pub reconnect: Vec<String>,
}

impl Connection {
    /// `Name`: `ExchangeOnline_<Id>`, as the reference module names its connections.
    pub fn name(&self) -> String {
        format!("ExchangeOnline_{}", self.number)
    }

    /// Who it is: the user principal name, or the application id.
    pub fn who(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .or(self.app_id.as_deref())
            .unwrap_or("an unnamed account")
    }

    /// The tenant in Exchange URLs: the delegated organization when there is one, else the
    /// signed-in tenant (its GUID), else the organization given.
    pub fn target_tenant(&self) -> &str {
        self.delegated_organization
            .as_deref()
            .or((!self.tenant_id.is_empty()).then_some(self.tenant_id.as_str()))
            .or(self.organization.as_deref())
            .unwrap_or("organizations")
    }

    /// The `exo connect` command line that makes this connection again, shell-quoted.
    pub fn reconnect_command(&self) -> String {
        std::iter::once("exo connect".to_owned())
            .chain(self.reconnect.iter().map(|arg| shell_quote(arg)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether certificate-based app-only authentication was used (`CertificateAuthentication`).
    pub fn certificate_authentication(&self) -> bool {
        self.method == "certificate"
    }
}

/// A connection's tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token for the Exchange resource.
    pub access_token: Secret,
    /// Usually `Bearer`.
    pub token_type: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_on: i64,
    /// When it was obtained, seconds since the Unix epoch.
    pub obtained_at: i64,
    /// The refresh token, for delegated flows.
    pub refresh_token: Option<Secret>,
    /// The id token, when there is one.
    pub id_token: Option<Secret>,
    /// Granted scopes or roles.
    pub scopes: Vec<String>,
    /// The authority that issued them.
    pub authority: String,
}

/// Renew when less than this many seconds remain (less for short-lived tokens, see
/// [`Tokens::is_fresh`]).
pub const RENEW_AHEAD_SECONDS: i64 = 300;

impl Tokens {
    /// Whether the access token can still be used at `now` without renewing: more than
    /// five minutes left, or, for tokens that live less than ten minutes, more than half of
    /// their lifetime.
    pub fn is_fresh(&self, now: i64) -> bool {
        let lifetime = (self.expires_on - self.obtained_at).max(0);
        let ahead = RENEW_AHEAD_SECONDS.min(lifetime / 2);
        self.expires_on - now > ahead
    }

    /// Whether the access token has expired at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_on <= now
    }
}

/// `arg` as a POSIX shell word.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
