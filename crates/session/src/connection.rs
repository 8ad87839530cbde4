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
    /// A secret typed at a prompt or read from stdin, and kept in the OS keyring under this
    /// account name because the user asked (`exo connect --remember-password`).
    Keyring(String),
}

/// One login-method parameter of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodParameter {
    /// The parameter's name.
    pub name: String,
    /// Where its value came from.
    pub source: ParameterSource,
    /// What kind of value it is, so that a value read again for a renewal is checked as it
    /// was at connect.
    #[serde(default)]
    pub kind: ValueKind,
}

/// The kind of a login-method parameter's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Free text (and switches).
    #[default]
    Text,
    /// A path, kept absolute.
    Path,
    /// A whole number.
    Integer,
    /// An absolute http(s) URL.
    Url,
    /// Bytes that need not be text (a PFX file); base64 in an environment variable.
    Bytes,
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
    /// Whether the login method signs in with a certificate (`CertificateAuthentication`),
    /// as its plugin announced.
    #[serde(default)]
    pub certificate_authentication: bool,
    /// How its cmdlets reach Exchange.
    #[serde(default)]
    pub transport: Transport,
}

/// How a connection's cmdlets reach Exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Transport {
    /// The admin REST API with the bearer token: `POST adminapi/beta/{tenant}/InvokeCommand`.
    #[default]
    InvokeCommand,
    /// Remote PowerShell's legacy endpoint (`Endpoints::legacy`), with HTTP Basic credentials,
    /// in a shell session that later commands reuse.
    Legacy {
        /// What the Basic password is.
        password: LegacyPassword,
    },
}

impl Transport {
    /// Whether each request sends the account's password (a Basic sign-in without a token).
    pub fn sends_password(&self) -> bool {
        *self
            == Self::Legacy {
                password: LegacyPassword::Password,
            }
    }
}

/// What a legacy connection sends as its Basic password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyPassword {
    /// The account's password, read again from its source for each command (it is never
    /// cached).
    Password,
    /// The connection's access token (`BasicAuthToOAuthConversion=true`).
    AccessToken,
}

/// Whom a login method signed in, as it reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedIn {
    /// User or application.
    pub account_kind: Option<AccountKind>,
    /// The user principal name, for users.
    pub user_principal_name: Option<String>,
    /// The application (client) id.
    pub app_id: Option<String>,
    /// The directory object id.
    pub object_id: Option<String>,
    /// The tenant the token was issued by; empty when the token names none.
    pub tenant_id: String,
}

/// Everything about a new connection that does not come from the sign-in.
#[derive(Clone, Debug)]
pub struct NewConnection {
    /// The login method (plugin) id.
    pub method: String,
    /// Its parameters, as sources.
    pub parameters: Vec<MethodParameter>,
    /// Where it connects.
    pub endpoints: Endpoints,
    /// `Organization`, as given.
    pub organization: Option<String>,
    /// `DelegatedOrganization`.
    pub delegated_organization: Option<String>,
    /// `ModulePrefix`.
    pub prefix: Option<String>,
    /// `PageSize`.
    pub page_size: u32,
    /// The arguments that make it again.
    pub reconnect: Vec<String>,
    /// Whether the method signs in with a certificate.
    pub certificate_authentication: bool,
    /// How its cmdlets reach Exchange.
    pub transport: Transport,
}

/// Why a sign-in cannot become a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The token names no tenant and none was given.
    #[error("the token names no tenant (no tid claim) and no organization was given")]
    NoTenant,
    /// A tenant that is neither a GUID nor a domain name: it would end up in request paths.
    #[error("the {what} {shown} is neither a tenant GUID nor a domain name", shown = .value.escape_debug())]
    BadTenant {
        /// Where it came from: "token's tenant (tid)", "organization", "delegated organization".
        what: &'static str,
        /// What was given.
        value: String,
    },
}

/// Whether `text` can name a tenant in a URL path: a GUID, or a DNS name of letters, digits
/// and hyphens in dot-separated labels (`contoso.onmicrosoft.com`).
pub fn is_tenant_name(text: &str) -> bool {
    if Uuid::try_parse(text).is_ok() {
        return true;
    }
    text.len() <= 253
        && text.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl NewConnection {
    /// The connection made by `signed_in`: its tenant is the token's, else the organization
    /// given. It gets its number when it is added to the cache.
    pub fn signed_in(self, signed_in: SignedIn) -> Result<Connection, ConnectionError> {
        let tenant_id = if signed_in.tenant_id.is_empty() {
            self.organization.clone().ok_or(ConnectionError::NoTenant)?
        } else {
            signed_in.tenant_id
        };
        for (what, value) in [
            ("token's tenant (tid)", Some(&tenant_id)),
            ("organization", self.organization.as_ref()),
            (
                "delegated organization",
                self.delegated_organization.as_ref(),
            ),
        ] {
            if let Some(value) = value.filter(|value| !is_tenant_name(value)) {
                return Err(ConnectionError::BadTenant {
                    what,
                    value: value.clone(),
                });
            }
        }
        Ok(Connection {
            id: Uuid::new_v4(),
            number: 0,
            method: self.method,
            parameters: self.parameters,
            endpoints: self.endpoints,
            account_kind: signed_in.account_kind.unwrap_or(AccountKind::User),
            user_principal_name: signed_in.user_principal_name,
            app_id: signed_in.app_id,
            object_id: signed_in.object_id,
            tenant_id,
            organization: self.organization,
            delegated_organization: self.delegated_organization,
            prefix: self.prefix,
            page_size: self.page_size,
            created_at: now(),
            reconnect: self.reconnect,
            certificate_authentication: self.certificate_authentication,
            transport: self.transport,
        })
    }
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
    /// The login method's non-secret state for its next renewal (a JSON object, or empty).
    #[serde(default)]
    pub plugin_state: String,
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

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
