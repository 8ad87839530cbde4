//! The seed document: tenants, users, apps, managed identities, partner relationships,
//! mailboxes, token lifetimes and standing fault rules.
//!
//! A seed is TOML or JSON (`Seed::from_file` picks by extension, `.json` = JSON, anything else
//! = TOML). `Seed::default()` is the built-in `contoso` seed (`default_seed.toml`, printed by
//! `exo-sandbox seed`). Its passwords and TOTP secrets are well-known sandbox test credentials.
//!
//! Every tenant implicitly has the ExchangeOnlineManagement module's public client
//! ([`EXO_MODULE_CLIENT_ID`]) registered and consented. App certificates marked
//! `certificate = true` are generated at first start; their PEM paths are filled in
//! (`certificate_file`, `key_file`) in the seed the running sandbox exposes.
//!
//! Validation is strict: unknown fields anywhere (a typo like `exo_module_enable`) are
//! refused, as are duplicate tenant names or ids, domains claimed twice (across tenants),
//! duplicate client ids within a tenant (the module's client id included), redirect URIs that
//! aren't absolute URLs or use `http` for anything but `localhost` / `127.0.0.1`, public clients
//! with credentials, and zero limits.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::faults::FaultRule;

/// The first-party public client of the ExchangeOnlineManagement module, "Microsoft Exchange
/// REST API Based Powershell".
pub const EXO_MODULE_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";
/// Redirect URIs registered for [`EXO_MODULE_CLIENT_ID`]: both loopback forms (the module's
/// MSAL uses `http://localhost`; `127.0.0.1` is what current guidance recommends, and the two
/// are different registrations) and the native-client page.
pub const EXO_MODULE_REDIRECT_URIS: [&str; 3] = [
    "http://localhost",
    "http://127.0.0.1",
    "https://login.microsoftonline.com/common/oauth2/nativeclient",
];
/// The Exchange app role app-only callers need.
pub const MANAGE_AS_APP_ROLE: &str = "Exchange.ManageAsApp";
/// The default audience of federated (workload identity) assertions.
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
/// In a federated credential, this issuer stands for the sandbox's own test OIDC issuer.
pub const SANDBOX_ISSUER: &str = "sandbox";

const DEFAULT_SEED: &str = include_str!("default_seed.toml");

/// Why a seed could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    Read {
        /// The seed file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or schema error.
    #[error("seed {path} is not valid TOML for the seed schema: {message}")]
    Toml {
        /// The seed file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// JSON syntax or schema error.
    #[error("seed {path} is not valid JSON for the seed schema: {source}")]
    Json {
        /// The seed file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The document parsed but is inconsistent.
    #[error("invalid seed: {0}")]
    Invalid(String),
}

/// The whole seed document.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Token and code lifetimes.
    #[serde(default)]
    pub lifetimes: Lifetimes,
    /// Legacy remote PowerShell (`/PowerShell-LiveID`) session limits.
    #[serde(default)]
    pub legacy: LegacySettings,
    /// Memory bounds of the running sandbox.
    #[serde(default)]
    pub limits: Limits,
    /// The emulated Azure Arc agent (managed identity challenge files).
    #[serde(default)]
    pub azure_arc: ArcSettings,
    /// The tenants; the first is the default one (`--mailboxes` adds to it).
    pub tenants: Vec<Tenant>,
    /// Partner (GDAP-like) relationships.
    #[serde(default)]
    pub delegations: Vec<Delegation>,
    /// Managed identities served on the managed-identity listener.
    #[serde(default)]
    pub managed_identities: Vec<ManagedIdentity>,
    /// Fault rules active from the start.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
}

/// Lifetimes in seconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifetimes {
    /// Access token lifetime; unset = a random 3600–3899 s per token, like the real service.
    pub access_token_seconds: Option<u64>,
    /// ID token lifetime.
    pub id_token_seconds: u64,
    /// Refresh token inactivity lifetime (real default: 90 days).
    pub refresh_token_seconds: u64,
    /// Authorization code lifetime (real: about 10 minutes).
    pub authorization_code_seconds: u64,
    /// Device code lifetime (real: 900 s).
    pub device_code_seconds: u64,
    /// Device code polling interval (real: 5 s).
    pub device_code_interval_seconds: u64,
    /// Clock skew Exchange tolerates on `exp`/`nbf`. Real validators allow about 5 minutes;
    /// the sandbox defaults to 0 so that expiry is testable with short lifetimes.
    pub exchange_clock_skew_seconds: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token_seconds: None,
            id_token_seconds: 3600,
            refresh_token_seconds: 90 * 24 * 3600,
            authorization_code_seconds: 600,
            device_code_seconds: 900,
            device_code_interval_seconds: 5,
            exchange_clock_skew_seconds: 0,
        }
    }
}

/// Legacy endpoint session settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LegacySettings {
    /// Concurrent sessions ("shells") per user (documented: 5 since 2020-11).
    pub max_sessions_per_user: usize,
    /// Idle time after which a session expires (remote PowerShell's default: 15 minutes).
    pub session_idle_seconds: u64,
}

impl Default for LegacySettings {
    fn default() -> Self {
        LegacySettings {
            max_sessions_per_user: 5,
            session_idle_seconds: 900,
        }
    }
}

/// How much the sandbox keeps in memory; the oldest entries go first when a cap is reached.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Refresh tokens kept (expired ones are evicted first, then the oldest issued).
    pub max_refresh_tokens: usize,
    /// Each of: authorization codes, device codes and sign-in page flows in progress.
    pub max_pending_authorizations: usize,
    /// Issued secrets kept for `Sandbox::issued_secrets` (only with `record_secrets`).
    pub max_issued_secrets: usize,
    /// Request log records kept.
    pub max_request_log: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_refresh_tokens: 100_000,
            max_pending_authorizations: 10_000,
            max_issued_secrets: 100_000,
            max_request_log: 100_000,
        }
    }
}

/// Azure Arc managed identity settings.
///
/// The Arc endpoint answers a first request with 401 and `WWW-Authenticate: Basic
/// realm=<file>`; the client reads the secret from that file. Real clients check where the
/// file is: MSAL and azure-identity accept only `/var/opt/azcmagent/tokens/*.key` on Linux
/// (`%ProgramData%\AzureConnectedMachineAgent\Tokens` on Windows) and files of at most 4 KB.
/// A realistic setup therefore sets `token_dir = "/var/opt/azcmagent/tokens"` (a directory the
/// sandbox's user can write and the client's user can read); the default, under the state
/// directory, is enough for clients that don't check the path.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArcSettings {
    /// Where challenge files are written; default `{state_dir}/arc/tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_dir: Option<PathBuf>,
    /// How long a challenge secret is accepted; its file is deleted after that, or as soon as
    /// it has been used.
    pub challenge_seconds: u64,
    /// Challenges outstanding at once; past that, requests are refused (429) until some are
    /// used or expire.
    pub max_outstanding_challenges: usize,
}

impl Default for ArcSettings {
    fn default() -> Self {
        ArcSettings {
            token_dir: None,
            challenge_seconds: 60,
            max_outstanding_challenges: 64,
        }
    }
}

/// One Entra tenant with its Exchange organization.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Short name; the initial domain is `{name}.onmicrosoft.com`.
    pub name: String,
    /// Tenant id.
    pub id: Uuid,
    /// Organization display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Extra accepted (verified) domains besides the initial domain.
    #[serde(default)]
    pub accepted_domains: Vec<String>,
    /// Domains whose users sign in at their organization's own federation service (AD FS):
    /// user realm discovery answers `Federated` for them, so password sign-in (ROPC) cannot work.
    #[serde(default)]
    pub federated_domains: Vec<String>,
    /// Whether legacy Basic authentication is allowed on `/PowerShell-LiveID` (off by default,
    /// as in the real service since 2022-10-01).
    #[serde(default)]
    pub basic_auth_enabled: bool,
    /// Users (each gets a user mailbox unless `mailbox = false`).
    #[serde(default)]
    pub users: Vec<User>,
    /// App registrations (service principals) in this tenant.
    #[serde(default)]
    pub apps: Vec<App>,
    /// Mailboxes without a sign-in account (shared, room, equipment, unlicensed users).
    #[serde(default)]
    pub mailboxes: Vec<MailboxSeed>,
    /// Initial `Get-OrganizationConfig` values overriding the defaults.
    #[serde(default)]
    pub organization_config: serde_json::Map<String, serde_json::Value>,
}

impl Tenant {
    /// `{name}.onmicrosoft.com`.
    pub fn initial_domain(&self) -> String {
        format!("{}.onmicrosoft.com", self.name)
    }

    /// The initial domain followed by the accepted domains.
    pub fn domains(&self) -> Vec<String> {
        std::iter::once(self.initial_domain())
            .chain(self.accepted_domains.iter().cloned())
            .collect()
    }
}

/// Directory roles (role template ids as they appear in `wids`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Global Administrator.
    GlobalAdministrator,
    /// Exchange Administrator.
    ExchangeAdministrator,
    /// Exchange Recipient Administrator.
    ExchangeRecipientAdministrator,
    /// Global Reader.
    GlobalReader,
    /// Security Reader.
    SecurityReader,
    /// Compliance Administrator.
    ComplianceAdministrator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::GlobalAdministrator,
        Role::ExchangeAdministrator,
        Role::ExchangeRecipientAdministrator,
        Role::GlobalReader,
        Role::SecurityReader,
        Role::ComplianceAdministrator,
    ];

    /// The role template id.
    pub fn template_id(self) -> &'static str {
        match self {
            Role::GlobalAdministrator => "62e90394-69f5-4237-9190-012177145e10",
            Role::ExchangeAdministrator => "29232cdf-9323-42fd-ade2-1d097af3e4de",
            Role::ExchangeRecipientAdministrator => "31392ffb-586c-42d1-9346-e59415a2cc4e",
            Role::GlobalReader => "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
            Role::SecurityReader => "5d6b6bb7-de71-4623-b4af-96380a352509",
            Role::ComplianceAdministrator => "17315797-102d-40b4-93e0-432062caca18",
        }
    }

    /// The role with this template id.
    pub fn from_template_id(id: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.template_id().eq_ignore_ascii_case(id))
    }

    /// Whether the role may run Exchange cmdlets that change data.
    pub fn can_write(self) -> bool {
        matches!(
            self,
            Role::GlobalAdministrator
                | Role::ExchangeAdministrator
                | Role::ExchangeRecipientAdministrator
        )
    }

    /// Whether the role may change organization-wide settings.
    pub fn can_configure_organization(self) -> bool {
        matches!(
            self,
            Role::GlobalAdministrator | Role::ExchangeAdministrator
        )
    }
}

/// A user account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// User principal name.
    pub upn: String,
    /// Object id.
    pub object_id: Uuid,
    /// Display name.
    pub display_name: String,
    /// Password (sandbox test credential).
    pub password: String,
    /// Base32 TOTP secret; set = the account must do MFA with an authenticator code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// Directory roles.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// `EXOModuleEnabled` (Set-User); false = Exchange Online PowerShell access disabled.
    #[serde(default = "yes")]
    pub exo_module_enabled: bool,
    /// Account disabled (AADSTS50057).
    #[serde(default)]
    pub disabled: bool,
    /// Account locked (AADSTS50053).
    #[serde(default)]
    pub locked: bool,
    /// Password expired (AADSTS50055).
    #[serde(default)]
    pub password_expired: bool,
    /// Whether the user has a mailbox.
    #[serde(default = "yes")]
    pub mailbox: bool,
    /// Mailbox/user attributes.
    #[serde(default, flatten)]
    pub attributes: Attributes,
}

fn yes() -> bool {
    true
}

/// Optional person attributes shared by users and mailboxes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Attributes {
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Country or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A mailbox without a sign-in account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSeed {
    /// Alias (also the Name).
    pub alias: String,
    /// Display name.
    pub display_name: String,
    /// `UserMailbox`, `SharedMailbox`, `RoomMailbox` or `EquipmentMailbox`.
    #[serde(default = "user_mailbox")]
    pub recipient_type_details: String,
    /// Primary SMTP address; default `{alias}@{first accepted domain or initial domain}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_smtp_address: Option<String>,
    /// Attributes.
    #[serde(default, flatten)]
    pub attributes: Attributes,
}

fn user_mailbox() -> String {
    "UserMailbox".to_owned()
}

/// An app registration and its service principal in the tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Application (client) id.
    pub client_id: Uuid,
    /// Service principal object id.
    pub object_id: Uuid,
    /// Display name.
    pub display_name: String,
    /// A public client ("Allow public client flows"): no credentials; it may use the sign-in
    /// pages with loopback redirects, the device code flow and ROPC without a secret, and is
    /// refused (AADSTS700025) if it sends one.
    #[serde(default)]
    pub public_client: bool,
    /// Registered redirect URIs (`http://localhost`, `http://127.0.0.1` with any port, or
    /// exact `https://…` / custom-scheme URIs) for the authorization code flow.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Generate a self-signed certificate credential at first start.
    #[serde(default)]
    pub certificate: bool,
    /// PEM certificate credential (filled in for generated certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// PEM PKCS#8 private key of the certificate (filled in for generated certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Client secrets (sandbox test credentials).
    #[serde(default)]
    pub client_secrets: Vec<String>,
    /// Exchange app roles granted with admin consent (`Exchange.ManageAsApp`).
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Directory roles of the service principal.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Federated identity credentials (workload identity federation).
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A federated identity credential: which external tokens the app accepts as assertions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    /// Issuer URL, or `sandbox` for the sandbox's own test issuer (`/_sandbox/federation`).
    pub issuer: String,
    /// Expected `sub`.
    pub subject: String,
    /// Accepted audiences.
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
}

fn default_audiences() -> Vec<String> {
    vec![FEDERATION_AUDIENCE.to_owned()]
}

/// A partner relationship: the partner tenant's admins and apps may manage the customer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// Partner tenant name.
    pub partner: String,
    /// Customer tenant name.
    pub customer: String,
    /// Roles the partner holds in the customer tenant.
    pub roles: Vec<Role>,
}

/// System- or user-assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedIdentityKind {
    /// The host's own identity (no id parameter selects it).
    System,
    /// A user-assigned identity (selected by client id, object id or resource id).
    User,
}

/// A managed identity attached to the emulated Azure host.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentity {
    /// Label.
    pub name: String,
    /// Tenant name.
    pub tenant: String,
    /// System- or user-assigned.
    pub kind: ManagedIdentityKind,
    /// Client (application) id.
    pub client_id: Uuid,
    /// Service principal object (principal) id.
    pub object_id: Uuid,
    /// Azure resource id.
    pub resource_id: String,
    /// Exchange app roles granted.
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Directory roles.
    #[serde(default)]
    pub roles: Vec<Role>,
}

impl Default for Seed {
    fn default() -> Self {
        // `the_built_in_seed_is_valid_and_has_what_the_brief_lists` parses this very text.
        Seed::from_toml(DEFAULT_SEED).expect("the built-in seed is valid (checked by a unit test)")
    }
}

impl Seed {
    /// The built-in seed as TOML text.
    pub fn default_toml() -> &'static str {
        DEFAULT_SEED
    }

    /// Parses a TOML seed.
    pub fn from_toml(text: &str) -> Result<Seed, SeedError> {
        let seed: Seed = toml::from_str(text).map_err(|e| SeedError::Toml {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        seed.validate()?;
        Ok(seed)
    }

    /// Loads a seed file: `.json` as JSON, anything else as TOML.
    pub fn from_file(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_owned(),
            source,
        })?;
        let seed: Seed = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            serde_json::from_str(&text).map_err(|source| SeedError::Json {
                path: path.to_owned(),
                source,
            })?
        } else {
            toml::from_str(&text).map_err(|e| SeedError::Toml {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        seed.validate()?;
        Ok(seed)
    }

    /// The tenant called `name`.
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// Checks cross references and uniqueness.
    fn validate(&self) -> Result<(), SeedError> {
        let invalid = |m: String| Err(SeedError::Invalid(m));
        if self.tenants.is_empty() {
            return invalid("at least one tenant is required".into());
        }
        let limits = &self.limits;
        if [
            limits.max_refresh_tokens,
            limits.max_pending_authorizations,
            limits.max_issued_secrets,
            limits.max_request_log,
            self.azure_arc.max_outstanding_challenges,
        ]
        .contains(&0)
            || self.azure_arc.challenge_seconds == 0
        {
            return invalid("limits and azure_arc settings must be at least 1".into());
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        let mut domains = HashSet::new();
        let mut upns = HashSet::new();
        for tenant in &self.tenants {
            if tenant.name.is_empty()
                || !tenant
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return invalid(format!(
                    "tenant name '{}' must be letters, digits and '-'",
                    tenant.name
                ));
            }
            if !names.insert(tenant.name.to_ascii_lowercase()) {
                return invalid(format!("duplicate tenant '{}'", tenant.name));
            }
            if !ids.insert(tenant.id) {
                return invalid(format!("duplicate tenant id {}", tenant.id));
            }
            let tenant_domains = tenant.domains();
            for domain in &tenant_domains {
                if !domains.insert(domain.to_ascii_lowercase()) {
                    return invalid(format!(
                        "domain '{domain}' of tenant '{}' is already another tenant's domain (or listed twice)",
                        tenant.name
                    ));
                }
            }
            for user in &tenant.users {
                let domain = user
                    .upn
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase());
                if !domain
                    .is_some_and(|d| tenant_domains.iter().any(|x| x.eq_ignore_ascii_case(&d)))
                {
                    return invalid(format!(
                        "user '{}' is not in a domain of tenant '{}'",
                        user.upn, tenant.name
                    ));
                }
                if !upns.insert(user.upn.to_ascii_lowercase()) {
                    return invalid(format!("duplicate user '{}'", user.upn));
                }
                if let Some(secret) = &user.totp_secret
                    && crate::totp::decode_base32(secret).is_none_or(|k| k.len() < 10)
                {
                    return invalid(format!(
                        "user '{}': totp_secret must be base32 of at least 10 bytes",
                        user.upn
                    ));
                }
            }
            let mut clients = HashSet::from([EXO_MODULE_CLIENT_ID.to_owned()]);
            for app in &tenant.apps {
                if !clients.insert(app.client_id.to_string()) {
                    return invalid(format!(
                        "tenant '{}' registers client id {} twice (the module's client {EXO_MODULE_CLIENT_ID} is always registered)",
                        tenant.name, app.client_id
                    ));
                }
                app.validate().map_err(SeedError::Invalid)?;
            }
        }
        for d in &self.delegations {
            for name in [&d.partner, &d.customer] {
                if self.tenant(name).is_none() {
                    return invalid(format!("delegation names unknown tenant '{name}'"));
                }
            }
        }
        for mi in &self.managed_identities {
            if self.tenant(&mi.tenant).is_none() {
                return invalid(format!(
                    "managed identity '{}' names unknown tenant '{}'",
                    mi.name, mi.tenant
                ));
            }
        }
        Ok(())
    }
}

impl App {
    /// Checks the app's redirect URIs and credentials.
    fn validate(&self) -> Result<(), String> {
        let has_credentials = !self.client_secrets.is_empty()
            || self.certificate
            || self.certificate_file.is_some()
            || !self.federated_credentials.is_empty();
        if self.public_client && has_credentials {
            return Err(format!(
                "app {} ({}) is a public client: it can't have client secrets, a certificate or federated credentials",
                self.client_id, self.display_name
            ));
        }
        for uri in &self.redirect_uris {
            let parsed = url::Url::parse(uri).map_err(|e| {
                format!(
                    "app {}: redirect URI '{uri}' is not a URL: {e}",
                    self.client_id
                )
            })?;
            let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1"));
            if parsed.scheme() == "http" && !loopback {
                return Err(format!(
                    "app {}: redirect URI '{uri}' uses http, which only localhost and 127.0.0.1 may use",
                    self.client_id
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
