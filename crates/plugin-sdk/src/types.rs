//! Safe Rust views of the ABI payloads: requests, grants, errors and descriptions.

use std::fmt;

use abi_stable::std_types::{ROption, RString, RVec};
use plugin_abi as abi;
use zeroize::Zeroizing;

/// What the host asks for, as a read-only view over the ABI request.
pub struct Request<'a> {
    raw: &'a abi::LoginRequest,
}

impl<'a> Request<'a> {
    /// A view over `raw` (plugins receive one; tests can build one).
    pub fn new(raw: &'a abi::LoginRequest) -> Self {
        Self { raw }
    }

    /// The value of text parameter `name`, if it was given. The host sends every kind but
    /// [`ParameterKind::Bytes`] as UTF-8; a value that is not is treated as absent.
    pub fn parameter(&self, name: &str) -> Option<&'a str> {
        self.bytes(name)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// The raw value of parameter `name` (for [`ParameterKind::Bytes`]), if it was given.
    pub fn bytes(&self, name: &str) -> Option<&'a [u8]> {
        let raw = self.raw;
        raw.parameters
            .iter()
            .find(|parameter| parameter.name.as_str() == name)
            .map(|parameter| parameter.value.as_slice())
    }

    /// The value of integer parameter `name`, if it was given (the host has checked that it
    /// is one).
    pub fn integer(&self, name: &str) -> Result<Option<u64>, Error> {
        self.parameter(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| Error::invalid_input(format!("--{name} must be a whole number")))
            })
            .transpose()
    }

    /// The value of parameter `name`, or an [`ErrorKind::InvalidInput`] error naming it.
    pub fn required(&self, name: &str) -> Result<&'a str, Error> {
        self.parameter(name)
            .ok_or_else(|| Error::invalid_input(format!("missing parameter --{name}")))
    }

    /// Whether switch `name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.parameter(name) == Some("true")
    }

    /// The environment name, e.g. `O365Default`.
    pub fn environment(&self) -> &'a str {
        self.raw.environment.as_str()
    }

    /// The authority including the tenant segment.
    pub fn authority(&self) -> &'a str {
        self.raw.authority.as_str()
    }

    /// The resource the token is for.
    pub fn resource(&self) -> &'a str {
        self.raw.resource.as_str()
    }

    /// The scopes to request.
    pub fn scopes(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.raw.scopes.iter().map(RString::as_str)
    }

    /// The default public client id for delegated flows.
    pub fn client_id(&self) -> &'a str {
        self.raw.client_id.as_str()
    }

    /// Whether the plugin may interact with the user.
    pub fn is_interactive(&self) -> bool {
        self.raw.interactive
    }

    /// Whether the host announced `capability` (see [`abi::capability`]).
    pub fn host_has(&self, capability: &str) -> bool {
        self.raw
            .host_capabilities
            .iter()
            .any(|c| c.as_str() == capability)
    }

    /// Remote PowerShell's legacy endpoint: the one `--connection-uri` named, else the
    /// environment's own (the request extension `legacy_endpoint`, see `EVOLUTION.md`); `None`
    /// from a host that does not send it.
    pub fn legacy_endpoint(&self) -> Option<LegacyEndpoint> {
        let extensions: serde_json::Value =
            serde_json::from_str(self.raw.extensions.as_str()).ok()?;
        serde_json::from_value(extensions.get(abi::extension::LEGACY_ENDPOINT)?.clone()).ok()
    }
}

/// Remote PowerShell's legacy endpoint (`…/PowerShell-LiveID/`), as a login request carries it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegacyEndpoint {
    /// Where requests go, with the query that says how to read them
    /// (`?DelegatedOrg=…&BasicAuthToOAuthConversion=true`).
    pub url: String,
    /// `DelegatedOrg`: the customer organization a partner acts for.
    pub delegated_organization: Option<String>,
    /// `BasicAuthToOAuthConversion=true`: the Basic password is an access token.
    pub basic_auth_to_oauth_conversion: bool,
    /// Whether it is the environment's own Exchange Online host (not an on-premises server):
    /// only then may a password it refuses go to the environment's sign-in service instead.
    #[serde(default)]
    pub exchange_online: bool,
}

/// The tokens a login produced. Tokens are zeroized when dropped.
#[derive(Clone, Default)]
pub struct Grant {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// Usually `Bearer`.
    pub token_type: String,
    /// Expiry, seconds since the Unix epoch (UTC).
    pub expires_on: i64,
    /// The refresh token, for delegated flows.
    pub refresh_token: Option<Zeroizing<String>>,
    /// The id token, when one was issued.
    pub id_token: Option<Zeroizing<String>>,
    /// Who signed in.
    pub account: Account,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Tenant id (GUID).
    pub tenant_id: String,
    /// The authority that issued the tokens.
    pub authority: String,
    /// Non-secret state to find again in `previous` when renewing (see
    /// [`abi::TokenGrant::state`]). Never put a secret here.
    pub state: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for Grant {
    /// Shows everything but the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("token_type", &self.token_type)
            .field("expires_on", &self.expires_on)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("account", &self.account)
            .field("scopes", &self.scopes)
            .field("tenant_id", &self.tenant_id)
            .field("authority", &self.authority)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The signed-in user or application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// User or application.
    pub kind: AccountKind,
    /// User principal name, for users.
    pub username: Option<String>,
    /// Application (client) id.
    pub app_id: Option<String>,
    /// Directory object id.
    pub object_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// Whether a token acts for a user or an application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccountKind {
    /// A person (delegated permissions).
    #[default]
    User,
    /// An application or managed identity.
    Application,
}

/// An error of a login method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The identity provider's code, e.g. `AADSTS50126`.
    pub code: Option<String>,
    /// What went wrong and what to do. Never put a secret here.
    pub message: String,
}

/// The kind of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A parameter is missing or malformed.
    InvalidInput,
    /// The identity provider refused the credentials.
    AuthenticationFailed,
    /// Only an interactive sign-in can continue.
    InteractionRequired,
    /// The network or a server failed.
    Network,
    /// The user cancelled.
    Cancelled,
    /// Not supported.
    Unsupported,
    /// A bug or unexpected state.
    Internal,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
        }
    }

    /// A parameter is missing or malformed.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The identity provider refused, with its code (e.g. `AADSTS50126`).
    pub fn authentication_failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            ..Self::new(ErrorKind::AuthenticationFailed, message)
        }
    }

    /// Only an interactive sign-in can continue.
    pub fn interaction_required(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InteractionRequired, message)
    }

    /// The network or a server failed.
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, message)
    }

    /// The user cancelled.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }

    /// Not supported.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// A bug or unexpected state.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) if !self.message.starts_with(code.as_str()) => {
                write!(f, "{code}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// A plugin's description of itself; build it with [`Description::new`] and the setters.
#[derive(Clone, Debug)]
pub struct Description {
    method_id: String,
    name: String,
    version: String,
    summary: String,
    parameters: Vec<Parameter>,
    environments: Vec<String>,
    capabilities: Vec<String>,
}

impl Description {
    /// A description with a method id (`--method <id>`), a name and a version.
    pub fn new(method_id: &str, name: &str, version: &str) -> Self {
        Self {
            method_id: method_id.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            summary: String::new(),
            parameters: Vec::new(),
            environments: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// One paragraph for `--help`.
    pub fn summary(mut self, summary: &str) -> Self {
        summary.clone_into(&mut self.summary);
        self
    }

    /// Adds a parameter.
    pub fn parameter(mut self, parameter: Parameter) -> Self {
        self.parameters.push(parameter);
        self
    }

    /// Restricts the plugin to these environments (default: all).
    pub fn environments(mut self, environments: &[&str]) -> Self {
        self.environments = environments.iter().map(|e| (*e).to_owned()).collect();
        self
    }

    /// Announces a capability (see [`abi::capability`]).
    pub fn capability(mut self, capability: &str) -> Self {
        self.capabilities.push(capability.to_owned());
        self
    }
}

/// What kind of value a [`Parameter`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParameterKind {
    /// Free text.
    String,
    /// A path.
    Path,
    /// A flag.
    Switch,
    /// A non-negative integer.
    Integer,
    /// An absolute URL.
    Url,
    /// Bytes that need not be text (a PFX file); for secrets.
    Bytes,
}

/// One parameter of a login method.
#[derive(Clone, Debug)]
pub struct Parameter {
    name: String,
    kind: ParameterKind,
    required: bool,
    secret: bool,
    env_var: Option<String>,
    aliases: Vec<String>,
    help: String,
}

impl Parameter {
    /// A parameter named `name` (kebab-case; the host exposes `--name`).
    pub fn new(name: &str, kind: ParameterKind, help: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            required: false,
            secret: false,
            env_var: None,
            aliases: Vec::new(),
            help: help.to_owned(),
        }
    }

    /// Another name the host accepts for it (`--upn` for `--user-principal-name`).
    pub fn alias(mut self, alias: &str) -> Self {
        self.aliases.push(alias.to_owned());
        self
    }

    /// The login fails without it.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// A secret: never taken from the command line (see [`abi::ParameterSpec::secret`]).
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Read from environment variable `var` when not given.
    pub fn env(mut self, var: &str) -> Self {
        self.env_var = Some(var.to_owned());
        self
    }
}

// Conversions to and from the ABI payloads.

impl From<Description> for abi::PluginDescription {
    fn from(d: Description) -> Self {
        Self {
            method_id: d.method_id.into(),
            name: d.name.into(),
            version: d.version.into(),
            summary: d.summary.into(),
            parameters: d.parameters.into_iter().map(Into::into).collect(),
            environments: d.environments.into_iter().map(Into::into).collect(),
            capabilities: d.capabilities.into_iter().map(Into::into).collect(),
            extensions: RString::new(),
        }
    }
}

impl From<Parameter> for abi::ParameterSpec {
    fn from(p: Parameter) -> Self {
        Self {
            name: p.name.into(),
            kind: match p.kind {
                ParameterKind::String => abi::ParameterKind::STRING,
                ParameterKind::Path => abi::ParameterKind::PATH,
                ParameterKind::Switch => abi::ParameterKind::SWITCH,
                ParameterKind::Integer => abi::ParameterKind::INTEGER,
                ParameterKind::Url => abi::ParameterKind::URL,
                ParameterKind::Bytes => abi::ParameterKind::BYTES,
            },
            required: p.required,
            secret: p.secret,
            env_var: p.env_var.map(Into::into).into(),
            aliases: p.aliases.into_iter().map(Into::into).collect(),
            help: p.help.into(),
        }
    }
}

impl From<Error> for abi::PluginError {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            ErrorKind::InvalidInput => abi::ErrorKind::INVALID_INPUT,
            ErrorKind::AuthenticationFailed => abi::ErrorKind::AUTHENTICATION_FAILED,
            ErrorKind::InteractionRequired => abi::ErrorKind::INTERACTION_REQUIRED,
            ErrorKind::Network => abi::ErrorKind::NETWORK,
            ErrorKind::Cancelled => abi::ErrorKind::CANCELLED,
            ErrorKind::Unsupported => abi::ErrorKind::UNSUPPORTED,
            ErrorKind::Internal => abi::ErrorKind::INTERNAL,
        };
        Self {
            kind,
            code: e.code.unwrap_or_default().into(),
            message: e.message.into(),
            extensions: RString::new(),
        }
    }
}

impl From<abi::PluginError> for Error {
    fn from(e: abi::PluginError) -> Self {
        let kind = match e.kind {
            abi::ErrorKind::INVALID_INPUT => ErrorKind::InvalidInput,
            abi::ErrorKind::AUTHENTICATION_FAILED => ErrorKind::AuthenticationFailed,
            abi::ErrorKind::INTERACTION_REQUIRED => ErrorKind::InteractionRequired,
            abi::ErrorKind::NETWORK => ErrorKind::Network,
            abi::ErrorKind::CANCELLED => ErrorKind::Cancelled,
            abi::ErrorKind::UNSUPPORTED => ErrorKind::Unsupported,
            _ => ErrorKind::Internal,
        };
        let code = (!e.code.is_empty()).then(|| e.code.into_string());
        Self {
            kind,
            code,
            message: e.message.into_string(),
        }
    }
}

impl From<&Grant> for abi::TokenGrant {
    fn from(g: &Grant) -> Self {
        Self {
            access_token: g.access_token.as_str().into(),
            token_type: g.token_type.as_str().into(),
            expires_on: g.expires_on,
            refresh_token: optional(g.refresh_token.as_ref().map(|t| t.as_str())),
            id_token: optional(g.id_token.as_ref().map(|t| t.as_str())),
            account: abi::AccountInfo {
                kind: match g.account.kind {
                    AccountKind::User => abi::AccountKind::USER,
                    AccountKind::Application => abi::AccountKind::APPLICATION,
                },
                username: optional(g.account.username.as_deref()),
                app_id: optional(g.account.app_id.as_deref()),
                object_id: optional(g.account.object_id.as_deref()),
                display_name: optional(g.account.display_name.as_deref()),
            },
            scopes: g
                .scopes
                .iter()
                .map(|s| RString::from(s.as_str()))
                .collect::<RVec<_>>(),
            tenant_id: g.tenant_id.as_str().into(),
            authority: g.authority.as_str().into(),
            state: if g.state.is_empty() {
                RString::new()
            } else {
                serde_json::Value::Object(g.state.clone())
                    .to_string()
                    .into()
            },
            extensions: RString::new(),
        }
    }
}

impl From<&abi::TokenGrant> for Grant {
    fn from(g: &abi::TokenGrant) -> Self {
        let text = |s: &ROption<RString>| s.as_ref().map(|s| s.to_string()).into_option();
        Self {
            access_token: Zeroizing::new(g.access_token.to_string()),
            token_type: g.token_type.to_string(),
            expires_on: g.expires_on,
            refresh_token: text(&g.refresh_token).map(Zeroizing::new),
            id_token: text(&g.id_token).map(Zeroizing::new),
            account: Account {
                kind: if g.account.kind == abi::AccountKind::APPLICATION {
                    AccountKind::Application
                } else {
                    AccountKind::User
                },
                username: text(&g.account.username),
                app_id: text(&g.account.app_id),
                object_id: text(&g.account.object_id),
                display_name: text(&g.account.display_name),
            },
            scopes: g.scopes.iter().map(|s| s.to_string()).collect(),
            tenant_id: g.tenant_id.to_string(),
            authority: g.authority.to_string(),
            state: match serde_json::from_str(&g.state) {
                Ok(serde_json::Value::Object(state)) => state,
                _ => serde_json::Map::new(),
            },
        }
    }
}

fn optional(value: Option<&str>) -> ROption<RString> {
    value.map(RString::from).into()
}
