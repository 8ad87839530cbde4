//! The clouds exo can talk to, and how a connection's URLs and token scope are derived.
//!
//! The table follows `Connect-ExchangeOnline -ExchangeEnvironmentName` (see
//! `docs/exchange-online.md`, "Environments"). `--connection-uri` and `--authority-uri` override
//! the hosts of any environment; the token scope always comes from the environment. The
//! `sandbox` environment reads the running sandbox's discovery file (`sandbox.json`) and trusts
//! only the sandbox's CA.
//!
//! A `--connection-uri` naming a cloud's Exchange host picks that cloud when no `--environment`
//! is given. One naming remote PowerShell's legacy endpoint (`…/PowerShell-LiveID/`) may carry
//! the query old scripts used (`?DelegatedOrg=…&BasicAuthToOAuthConversion=true&email=…`); it
//! becomes a [`LegacyEndpoint`] (see `docs/exchange-online.md`, "Legacy paths").

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

/// A named environment (`-ExchangeEnvironmentName`), plus the local sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvironmentName {
    /// Worldwide and GCC.
    O365Default,
    /// US Government GCC High.
    O365USGovGCCHigh,
    /// US Government DoD.
    O365USGovDoD,
    /// China, operated by 21Vianet.
    O365China,
    /// Microsoft Cloud Germany (closed since 2021; kept for old scripts).
    O365GermanyCloud,
    /// The local sandbox tenant (`exo-sandbox serve`).
    #[serde(rename = "sandbox")]
    Sandbox,
}

impl EnvironmentName {
    /// Every environment, in the order `--help` lists them.
    pub const ALL: [Self; 6] = [
        Self::O365Default,
        Self::O365USGovGCCHigh,
        Self::O365USGovDoD,
        Self::O365China,
        Self::O365GermanyCloud,
        Self::Sandbox,
    ];

    /// The name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::O365Default => "O365Default",
            Self::O365USGovGCCHigh => "O365USGovGCCHigh",
            Self::O365USGovDoD => "O365USGovDoD",
            Self::O365China => "O365China",
            Self::O365GermanyCloud => "O365GermanyCloud",
            Self::Sandbox => "sandbox",
        }
    }

    fn cloud(self) -> Cloud {
        match self {
            Self::O365Default | Self::Sandbox => Cloud {
                exchange: "https://outlook.office365.com",
                authority_host: "https://login.microsoftonline.com",
                resource: "https://outlook.office365.com",
            },
            Self::O365USGovGCCHigh => Cloud {
                exchange: "https://outlook.office365.us",
                authority_host: "https://login.microsoftonline.us",
                resource: "https://outlook.office365.us",
            },
            Self::O365USGovDoD => Cloud {
                exchange: "https://outlook-dod.office365.us",
                authority_host: "https://login.microsoftonline.us",
                resource: "https://outlook-dod.office365.us",
            },
            // The admin API host is documented; the token resource for 21Vianet is not
            // (UNVERIFIED): we use the admin API host, as for the other clouds.
            Self::O365China => Cloud {
                exchange: "https://outlook.office365.cn",
                authority_host: "https://login.chinacloudapi.cn",
                resource: "https://outlook.office365.cn",
            },
            // Closed in October 2021; the resource is UNVERIFIED.
            Self::O365GermanyCloud => Cloud {
                exchange: "https://outlook.office.de",
                authority_host: "https://login.microsoftonline.de",
                resource: "https://outlook.office.de",
            },
        }
    }
}

impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvironmentName {
    type Err = EnvironmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| EnvironmentError::UnknownEnvironment(s.to_owned()))
    }
}

struct Cloud {
    exchange: &'static str,
    authority_host: &'static str,
    resource: &'static str,
}

/// What the user asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct EndpointOptions {
    /// `--environment`; `None` means `O365Default`.
    pub environment: Option<EnvironmentName>,
    /// `--connection-uri`: the Exchange host (a legacy `…/powershell-liveid/` path is dropped).
    pub connection_uri: Option<String>,
    /// `--authority-uri`: the authority, with or without a tenant segment.
    pub authority_uri: Option<String>,
    /// `--organization`: the tenant to sign in to (domain or GUID).
    pub organization: Option<String>,
    /// `--ca-file`: an extra CA to trust (for TLS-inspecting proxies or a sandbox).
    pub ca_file: Option<PathBuf>,
    /// Where the sandbox's discovery file lives (`EXO_SANDBOX_DIR`, or the default data dir).
    pub sandbox_dir: Option<PathBuf>,
}

/// The resolved endpoints of one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The environment.
    pub environment: EnvironmentName,
    /// The Exchange base URL, always ending in `/` so that API paths join onto it, e.g.
    /// `https://outlook.office365.com/`.
    pub exchange: Url,
    /// The authority including the tenant segment.
    pub authority: Url,
    /// The token resource, e.g. `https://outlook.office365.com`.
    pub resource: String,
    /// Trust: `None` for the platform's roots; a CA file for the sandbox or `--ca-file`.
    pub trust: Trust,
    /// Remote PowerShell's legacy endpoint, when `--connection-uri` named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyEndpoint>,
}

/// Remote PowerShell's legacy endpoint, as a `--connection-uri` such as
/// `https://outlook.office365.com/PowerShell-LiveID/?DelegatedOrg=…&BasicAuthToOAuthConversion=true`
/// names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyEndpoint {
    /// The endpoint without its query, e.g. `https://outlook.office365.com/PowerShell-LiveID/`.
    pub url: Url,
    /// `DelegatedOrg`: the customer organization a partner acts for.
    pub delegated_organization: Option<String>,
    /// `BasicAuthToOAuthConversion=true`: the Basic password is an OAuth access token.
    pub basic_auth_to_oauth_conversion: bool,
    /// Whether it is the environment's own Exchange Online host (not an on-premises server):
    /// where such an endpoint refuses Basic, signing in with the environment's authority reaches
    /// the same service, so a password may go there instead.
    #[serde(default)]
    pub exchange_online: bool,
}

impl LegacyEndpoint {
    /// The URL requests go to: the endpoint with the query that says how to read them.
    pub fn request_url(&self) -> Url {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(organization) = &self.delegated_organization {
                query.append_pair("DelegatedOrg", organization);
            }
            if self.basic_auth_to_oauth_conversion {
                query.append_pair("BasicAuthToOAuthConversion", "true");
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }
}

/// Which certificate authorities a connection trusts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// The operating system's roots.
    Platform,
    /// The operating system's roots plus this CA file.
    PlatformAnd(PathBuf),
    /// Only this CA file (the sandbox); proxies are bypassed because it is on loopback.
    Only(PathBuf),
}

impl Endpoints {
    /// The `.default` scope of the resource.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.resource.trim_end_matches('/'))
    }

    /// The legacy endpoint `--connection-uri` named, else the environment's own
    /// (`{exchange}PowerShell-LiveID/`), as remote PowerShell's default `-ConnectionUri` was.
    pub fn legacy_or_default(&self) -> LegacyEndpoint {
        self.legacy.clone().unwrap_or_else(|| LegacyEndpoint {
            url: self
                .exchange
                .join("PowerShell-LiveID/")
                .unwrap_or_else(|_| self.exchange.clone()),
            delegated_organization: None,
            basic_auth_to_oauth_conversion: false,
            exchange_online: true,
        })
    }
}

/// Why endpoints could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// Not one of the names in [`EnvironmentName::ALL`].
    #[error(
        "unknown environment '{0}'; use one of O365Default, O365USGovGCCHigh, O365USGovDoD, \
         O365China, O365GermanyCloud, sandbox"
    )]
    UnknownEnvironment(String),
    /// A URL that does not parse or is not https.
    #[error("invalid {option} '{value}': {reason}")]
    InvalidUri {
        /// The option.
        option: &'static str,
        /// What was given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// `--organization` that is neither a GUID nor a domain name.
    #[error(
        "--organization {shown} is neither a tenant GUID nor a domain name \
         (contoso.onmicrosoft.com)",
        shown = .0.escape_debug()
    )]
    BadOrganization(String),
    /// `--ca-file` with the sandbox, which is trusted through its own CA only.
    #[error(
        "--ca-file does not apply to --environment sandbox: exo trusts only the sandbox's own CA \
         there (and no proxy stands between them on loopback)"
    )]
    CaFileWithSandbox,
    /// A legacy endpoint's query that exo cannot honour.
    #[error("invalid --connection-uri query: {0}")]
    LegacyQuery(String),
    /// The sandbox discovery file is missing or unreadable.
    #[error("no running sandbox found at {path}: {reason}")]
    SandboxNotRunning {
        /// The discovery file looked for.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
}

/// The discovery file a running sandbox writes into its state directory.
#[derive(Debug, Deserialize)]
struct SandboxDiscovery {
    base_url: Url,
    ca_file: PathBuf,
}

/// The name of the sandbox discovery file inside its state directory.
pub const SANDBOX_DISCOVERY_FILE: &str = "sandbox.json";

/// Resolves the endpoints for `options`.
pub fn resolve(options: &EndpointOptions) -> Result<Endpoints, EnvironmentError> {
    let connection = options
        .connection_uri
        .as_deref()
        .map(connection_uri)
        .transpose()?;
    let environment = options
        .environment
        .or_else(|| {
            let host = connection.as_ref()?.0.host_str()?;
            environment_of_host(host)
        })
        .unwrap_or(EnvironmentName::O365Default);
    let cloud = environment.cloud();
    let (mut exchange, mut authority_base, mut trust) = match environment {
        EnvironmentName::Sandbox => {
            let dir = options.sandbox_dir.as_deref().unwrap_or(Path::new("."));
            let discovery = read_sandbox_discovery(dir)?;
            if options.ca_file.is_some() {
                return Err(EnvironmentError::CaFileWithSandbox);
            }
            let base = discovery.base_url;
            (base.clone(), base, Trust::Only(discovery.ca_file))
        }
        _ => (
            parse_static(cloud.exchange),
            parse_static(cloud.authority_host),
            Trust::Platform,
        ),
    };
    let own_exchange = exchange.clone();
    let legacy = connection.and_then(|(url, legacy)| {
        exchange = url;
        strip_legacy_path(&mut exchange);
        legacy.map(|legacy| LegacyEndpoint {
            exchange_online: exchange.origin() == own_exchange.origin(),
            ..legacy
        })
    });
    let tenant = options.organization.as_deref().unwrap_or("organizations");
    if !crate::connection::is_tenant_name(tenant) {
        return Err(EnvironmentError::BadOrganization(tenant.to_owned()));
    }
    let authority = match &options.authority_uri {
        Some(uri) => {
            let mut url = https_url("--authority-uri", uri, false)?;
            if url.path_segments().is_none_or(|mut s| s.all(str::is_empty)) {
                url.set_path(tenant);
            }
            url
        }
        None => {
            authority_base.set_path(&format!(
                "{}/{tenant}",
                authority_base.path().trim_end_matches('/')
            ));
            authority_base
        }
    };
    if let Some(ca) = &options.ca_file
        && trust == Trust::Platform
    {
        trust = Trust::PlatformAnd(ca.clone());
    }
    ensure_trailing_slash(&mut exchange);
    Ok(Endpoints {
        environment,
        exchange,
        authority,
        resource: cloud.resource.to_owned(),
        trust,
        legacy,
    })
}

/// The named cloud whose Exchange host is `host`, if any.
fn environment_of_host(host: &str) -> Option<EnvironmentName> {
    EnvironmentName::ALL
        .into_iter()
        .filter(|name| *name != EnvironmentName::Sandbox)
        .find(|name| {
            Url::parse(name.cloud().exchange)
                .is_ok_and(|url| url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host)))
        })
}

/// `--connection-uri`: an https URL, and the legacy endpoint it names, if it does. Only the
/// legacy endpoint takes a query, and only the parameters remote PowerShell understood.
fn connection_uri(value: &str) -> Result<(Url, Option<LegacyEndpoint>), EnvironmentError> {
    let option = "--connection-uri";
    let mut url = https_url(option, value, true)?;
    let path = url.path().trim_end_matches('/').to_ascii_lowercase();
    let is_legacy = path.ends_with("/powershell-liveid") || path == "/powershell";
    if !is_legacy {
        if url.query().is_some() {
            return Err(EnvironmentError::InvalidUri {
                option,
                value: without_userinfo(value),
                reason: "a query is only allowed on remote PowerShell's endpoint \
                         (…/PowerShell-LiveID/?DelegatedOrg=…)"
                    .into(),
            });
        }
        return Ok((url, None));
    }
    let mut legacy = LegacyEndpoint {
        url: url.clone(),
        delegated_organization: None,
        basic_auth_to_oauth_conversion: false,
        exchange_online: false,
    };
    legacy.url.set_query(None);
    for (name, value) in url.query_pairs() {
        match name.to_ascii_lowercase().as_str() {
            "delegatedorg" if crate::connection::is_tenant_name(&value) => {
                legacy.delegated_organization = Some(value.into_owned());
            }
            "delegatedorg" => {
                return Err(EnvironmentError::LegacyQuery(format!(
                    "DelegatedOrg {} is neither a tenant GUID nor a domain name",
                    value.escape_debug()
                )));
            }
            "basicauthtooauthconversion" => {
                legacy.basic_auth_to_oauth_conversion = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(EnvironmentError::LegacyQuery(format!(
                            "BasicAuthToOAuthConversion must be true or false, not {}",
                            value.escape_debug()
                        )));
                    }
                };
            }
            // What old clients said about themselves, and the system mailbox they named to
            // anchor the session: exo anchors as the admin API does.
            "email" | "psversion" | "proxymethod" | "serializationlevel" | "exchclientver"
            | "clientapplication" => {}
            _ => {
                return Err(EnvironmentError::LegacyQuery(format!(
                    "remote PowerShell's endpoint takes DelegatedOrg, BasicAuthToOAuthConversion \
                     (and what old clients said of themselves: email, PSVersion, proxymethod, \
                     SerializationLevel, ExchClientVer, clientApplication), not {}",
                    name.escape_debug()
                )));
            }
        }
    }
    url.set_query(None);
    Ok((url, Some(legacy)))
}

fn read_sandbox_discovery(dir: &Path) -> Result<SandboxDiscovery, EnvironmentError> {
    let path = dir.join(SANDBOX_DISCOVERY_FILE);
    let not_running = |reason: String| EnvironmentError::SandboxNotRunning {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| not_running(e.to_string()))?;
    let discovery: SandboxDiscovery = serde_json::from_str(&text)
        .map_err(|e| not_running(format!("unreadable discovery file ({e})")))?;
    // The sandbox only ever runs on this machine: a discovery file that names anything else
    // would send tokens elsewhere.
    let base = &discovery.base_url;
    let loopback = match base.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if base.scheme() != "https" || !loopback {
        return Err(not_running(format!(
            "its base_url {} is not https on this machine (127.0.0.1, ::1 or localhost)",
            base.origin().ascii_serialization()
        )));
    }
    Ok(discovery)
}

fn parse_static(url: &'static str) -> Url {
    Url::parse(url).expect("the environment table holds valid URLs")
}

/// `text` with any `user:password@` in its authority removed, parsed or not: what an error
/// may show of a URL someone typed.
pub fn without_userinfo(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    match text[start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &text[..start], &text[start + at + 1..]),
        None => text.to_owned(),
    }
}

fn https_url(
    option: &'static str,
    value: &str,
    query_allowed: bool,
) -> Result<Url, EnvironmentError> {
    // Every error shows the URL without credentials, whatever else is wrong with it.
    let invalid = |reason: String| EnvironmentError::InvalidUri {
        option,
        value: without_userinfo(value),
        reason,
    };
    let url = Url::parse(value).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(invalid("only https URLs are accepted".into()));
    }
    if (url.query().is_some() && !query_allowed) || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed here".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "a user name or password in the URL is not allowed (exo signs in with --method)".into(),
        ));
    }
    Ok(url)
}

/// `https://outlook.office365.com/powershell-liveid/` → `https://outlook.office365.com`.
fn strip_legacy_path(url: &mut Url) {
    let path = url.path().trim_end_matches('/');
    if path.to_ascii_lowercase().ends_with("/powershell-liveid")
        || path.eq_ignore_ascii_case("/powershell")
    {
        let kept = path[..path.rfind('/').unwrap_or(0)].to_owned();
        url.set_path(&kept);
    }
}

fn ensure_trailing_slash(url: &mut Url) {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
}

#[cfg(test)]
mod tests;
