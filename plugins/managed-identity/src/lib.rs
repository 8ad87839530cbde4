//! The `managed-identity` login method: app-only sign-in as the Azure resource exo runs on, like
//! `Connect-ExchangeOnline -ManagedIdentity [-ManagedIdentityAccountId]`.
//!
//! The source is found from the environment the way the Azure SDKs find it (see
//! `docs/identity-platform.md`, "Managed identity"):
//! - Service Fabric: `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` and `IDENTITY_SERVER_THUMBPRINT`
//!   (HTTPS with a self-signed certificate, pinned by that thumbprint);
//! - Azure Arc: `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT` (a challenge file the agent writes under
//!   its token folder proves the caller may read it);
//! - App Service and Functions: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`;
//! - Cloud Shell: `MSI_ENDPOINT`;
//! - otherwise the VM's instance metadata service (IMDS), probed with a short timeout.
//!
//! `--managed-identity-account-id` picks a user-assigned identity by client id, object id or
//! resource id; a GUID is tried as a client id, then as an object id, and the plugin says which
//! matched. Renewal asks the environment's source again, silently; the source that answered is
//! recorded in the connection's plugin state. The endpoints can be overridden
//! (`EXO_IMDS_ENDPOINT`, `EXO_ARC_TOKEN_DIR`) for tests and unusual hosts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plugin_sdk::{
    AccountKind, Description, Error, ErrorKind, Grant, Host, HttpOptions, LoginMethod, Parameter,
    ParameterKind, Renewal, Request, claims,
};
use serde_json::Value;

const ACCOUNT_ID: &str = "managed-identity-account-id";
const IMDS_ENDPOINT: &str = "imds-endpoint";
const ARC_TOKEN_DIR: &str = "arc-token-dir";

/// The instance metadata service of an Azure VM.
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Where the Azure Arc agent writes its challenge files.
const ARC_TOKENS: &str = "/var/opt/azcmagent/tokens";
/// The largest challenge file the Arc agent writes.
const MAX_CHALLENGE_BYTES: u64 = 4096;
/// IMDS answers in milliseconds when it is there; a machine without it must not wait long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a throttled or failing managed-identity endpoint is asked again.
const RETRIES: u32 = 3;
/// The latest expiry exo believes, in seconds from now.
const TEN_YEARS: i64 = 10 * 365 * 24 * 3600;

/// The login method.
#[derive(Default)]
pub struct ManagedIdentity;

impl LoginMethod for ManagedIdentity {
    const RENEWAL: Renewal = Renewal::SignInAgain;

    fn describe(&self) -> Description {
        Description::new(
            "managed-identity",
            "Managed identity",
            env!("CARGO_PKG_VERSION"),
        )
        .summary(
            "Signs in as the managed identity of the Azure resource exo runs on (a VM, App \
                 Service, Functions, Azure Arc, Cloud Shell, Service Fabric), found from the \
                 environment: no secret at all (Connect-ExchangeOnline -ManagedIdentity). The \
                 identity needs the Exchange.ManageAsApp permission and an Exchange role.",
        )
        .parameter(Parameter::new(
            ACCOUNT_ID,
            ParameterKind::String,
            "A user-assigned identity: its client id, object id or resource id \
                 (-ManagedIdentityAccountId)",
        ))
        .parameter(
            Parameter::new(
                IMDS_ENDPOINT,
                ParameterKind::Url,
                "Another instance metadata endpoint",
            )
            .env("EXO_IMDS_ENDPOINT"),
        )
        .parameter(
            Parameter::new(
                ARC_TOKEN_DIR,
                ParameterKind::Path,
                "Another Azure Arc token folder",
            )
            .env("EXO_ARC_TOKEN_DIR"),
        )
        .capability(plugin_sdk::abi::capability::APP_ONLY)
        .capability(plugin_sdk::abi::capability::SILENT_RENEW)
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        sign_in(request, host)
    }
}

/// Where a managed identity's token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Imds {
        endpoint: String,
    },
    AppService {
        endpoint: String,
        header: String,
    },
    ServiceFabric {
        endpoint: String,
        header: String,
        thumbprint: String,
    },
    Arc {
        endpoint: String,
    },
    CloudShell {
        endpoint: String,
    },
}

impl Source {
    /// The source the environment names.
    fn detect(request: &Request<'_>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) => match var("IDENTITY_SERVER_THUMBPRINT") {
                Some(thumbprint) => Self::ServiceFabric {
                    endpoint,
                    header,
                    thumbprint,
                },
                None => Self::AppService { endpoint, header },
            },
            (Some(endpoint), None) if var("IMDS_ENDPOINT").is_some() => Self::Arc { endpoint },
            _ => match var("MSI_ENDPOINT") {
                Some(endpoint) => Self::CloudShell { endpoint },
                None => Self::Imds {
                    endpoint: request.parameter(IMDS_ENDPOINT).unwrap_or(IMDS).to_owned(),
                },
            },
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Imds { .. } => "the instance metadata service (IMDS)",
            Self::AppService { .. } => "App Service",
            Self::ServiceFabric { .. } => "Service Fabric",
            Self::Arc { .. } => "Azure Arc",
            Self::CloudShell { .. } => "Cloud Shell",
        }
    }

    /// The query parameter that names a user-assigned identity, by the kind of id.
    fn id_parameter(&self, kind: IdKind) -> Option<&'static str> {
        match (self, kind) {
            (Self::Imds { .. }, IdKind::Client) => Some("client_id"),
            (Self::Imds { .. }, IdKind::Object) => Some("object_id"),
            (Self::Imds { .. }, IdKind::Resource) => Some("msi_res_id"),
            (Self::AppService { .. }, IdKind::Client) => Some("client_id"),
            (Self::AppService { .. }, IdKind::Object) => Some("principal_id"),
            (Self::AppService { .. }, IdKind::Resource) => Some("mi_res_id"),
            // Service Fabric gives the identity the application is configured with; Arc and
            // Cloud Shell have a system-assigned identity only. None lets a request choose.
            (Self::ServiceFabric { .. } | Self::Arc { .. } | Self::CloudShell { .. }, _) => None,
        }
    }
}

/// What kind of id `--managed-identity-account-id` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdKind {
    Client,
    Object,
    Resource,
}

impl IdKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Client => "client id",
            Self::Object => "object id",
            Self::Resource => "resource id",
        }
    }
}

fn sign_in(request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
    let source = Source::detect(request);
    let resource = request.resource();
    let kinds: &[IdKind] = match request.parameter(ACCOUNT_ID) {
        None => &[],
        Some(id) if id.starts_with('/') => &[IdKind::Resource],
        Some(_) => &[IdKind::Client, IdKind::Object],
    };
    let account = request.parameter(ACCOUNT_ID);
    if account.is_some() && source.id_parameter(IdKind::Client).is_none() {
        return Err(Error::invalid_input(format!(
            "{} does not let a request choose the identity: leave out --{ACCOUNT_ID}",
            source.name()
        )));
    }
    log::info!("asking {} for a managed identity token", source.name());
    let (body, chosen) = if kinds.is_empty() {
        (token(host, request, &source, resource, None)?, None)
    } else {
        let id = account.unwrap_or_default();
        let mut last = None;
        let mut found = None;
        for kind in kinds {
            match token(host, request, &source, resource, Some((*kind, id))) {
                Ok(body) => {
                    log::info!("{id} is the identity's {}", kind.describe());
                    found = Some((body, Some((*kind, id))));
                    break;
                }
                Err(error) if error.kind == ErrorKind::InvalidInput => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        found.ok_or_else(|| {
            last.unwrap_or_else(|| Error::invalid_input(format!("no managed identity {id}")))
        })?
    };
    grant(&body, &source, chosen)
}

/// Refuses a token for another identity than the one asked for: a claim that names the
/// identity (`appid`/`azp`, `oid`, `xms_mirid`) and differs means the endpoint answered for
/// someone else.
fn verify_identity(claims: &claims::Claims, chosen: (IdKind, &str)) -> Result<(), Error> {
    let (kind, id) = chosen;
    let found = match kind {
        IdKind::Client => claims.string("appid").or_else(|| claims.string("azp")),
        IdKind::Object => claims.string("oid"),
        IdKind::Resource => claims.string("xms_mirid"),
    };
    // A token that does not say whose it is cannot be shown to be the one asked for.
    let found = found.unwrap_or("an identity it does not name");
    if found.eq_ignore_ascii_case(id) {
        return Ok(());
    }
    Err(Error::authentication_failed(
        "another identity",
        format!(
            "asked for the managed identity with {} {id}, but the token is for {}",
            kind.describe(),
            found
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        ),
    ))
}

/// One token request to `source`, retried when throttled or failing; the JSON answer.
fn token(
    host: &Host<'_>,
    request: &Request<'_>,
    source: &Source,
    resource: &str,
    id: Option<(IdKind, &str)>,
) -> Result<serde_json::Map<String, Value>, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = send(host, request, source, resource, id)?;
        let status = response.status().as_u16();
        if status == 200 {
            return match serde_json::from_slice(response.body()) {
                Ok(Value::Object(body)) => Ok(body),
                _ => Err(Error::network(format!(
                    "{} answered 200 without a token",
                    source.name()
                ))),
            };
        }
        let retry = matches!(status, 404 | 410 | 429 | 500..=599) && attempt <= RETRIES;
        if !retry {
            return Err(refusal(source, status, response.body(), id));
        }
        let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
        log::info!(
            "{} answered {status}; asking again in {} ms",
            source.name(),
            wait.as_millis()
        );
        host.sleep(wait)?;
    }
}

/// Sends the request `source` expects (with Azure Arc's challenge when it asks for one).
fn send(
    host: &Host<'_>,
    request: &Request<'_>,
    source: &Source,
    resource: &str,
    id: Option<(IdKind, &str)>,
) -> Result<http::Response<Vec<u8>>, Error> {
    let mut query = vec![("resource", resource.to_owned())];
    if let Some((kind, value)) = id
        && let Some(name) = source.id_parameter(kind)
    {
        query.push((name, value.to_owned()));
    }
    let with_query = |endpoint: &str, version: &str| -> Result<String, Error> {
        let mut url = url::Url::parse(endpoint).map_err(|e| {
            Error::invalid_input(format!(
                "the managed identity endpoint {endpoint} is not a URL: {e}"
            ))
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", version)
            .extend_pairs(&query);
        Ok(url.into())
    };
    let options = |pinned: Option<&str>| HttpOptions {
        timeout: Some(PROBE_TIMEOUT),
        no_proxy: true,
        pinned_thumbprint: pinned.map(str::to_owned),
    };
    let unreachable = |error: Error| {
        if error.kind == ErrorKind::Network {
            Error::network(format!(
                "no managed identity is reachable here: {} did not answer ({}); on a machine \
                 without one, use --method certificate or workload-identity",
                source.name(),
                error.message
            ))
        } else {
            error
        }
    };
    let get = |url: String, header: (&str, &str)| {
        http::Request::get(url)
            .header(header.0, header.1)
            .body(Vec::new())
            .map_err(|e| Error::invalid_input(e.to_string()))
    };
    match source {
        Source::Imds { endpoint } => host
            .send(
                get(with_query(endpoint, "2018-02-01")?, ("Metadata", "true"))?,
                &options(None),
            )
            .map_err(unreachable),
        Source::AppService { endpoint, header } => host
            .send(
                get(
                    with_query(endpoint, "2019-08-01")?,
                    ("X-IDENTITY-HEADER", header),
                )?,
                &options(None),
            )
            .map_err(unreachable),
        Source::ServiceFabric {
            endpoint,
            header,
            thumbprint,
        } => host
            .send(
                get(
                    with_query(endpoint, "2019-07-01-preview")?,
                    ("Secret", header),
                )?,
                &options(Some(thumbprint)),
            )
            .map_err(unreachable),
        Source::CloudShell { endpoint } => {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query)
                .finish();
            let post = http::Request::post(endpoint.as_str())
                .header("Metadata", "true")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.into_bytes())
                .map_err(|e| Error::invalid_input(e.to_string()))?;
            host.send(post, &options(None)).map_err(unreachable)
        }
        Source::Arc { endpoint } => {
            let url = with_query(endpoint, "2020-06-01")?;
            let first = host
                .send(get(url.clone(), ("Metadata", "true"))?, &options(None))
                .map_err(unreachable)?;
            if first.status() != 401 {
                return Ok(first);
            }
            let challenge = first
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic realm="))
                .ok_or_else(|| Error::network("Azure Arc answered 401 without a challenge"))?;
            let folder = request
                .parameter(ARC_TOKEN_DIR)
                .map_or_else(|| PathBuf::from(ARC_TOKENS), PathBuf::from);
            let secret = read_challenge(Path::new(challenge), &folder)?;
            let mut second = http::Request::get(url)
                .header("Metadata", "true")
                .body(Vec::new())
                .map_err(|e| Error::invalid_input(e.to_string()))?;
            second.headers_mut().insert(
                "authorization",
                format!("Basic {}", secret.as_str())
                    .parse()
                    .map_err(|_| Error::network("the Azure Arc challenge file is not text"))?,
            );
            host.send(second, &options(None)).map_err(unreachable)
        }
    }
}

/// The Arc agent's challenge file: only a `.key` file directly in its token folder, at most
/// 4 KiB — the server names the path, so a hostile one must not make exo read anything else.
fn read_challenge(path: &Path, folder: &Path) -> Result<zeroize::Zeroizing<String>, Error> {
    use std::io::Read as _;
    let refuse = |why: &str| {
        Error::network(format!(
            "Azure Arc named the challenge file {}, which exo refuses: {why}",
            path.display()
        ))
    };
    let canonical_folder = folder
        .canonicalize()
        .map_err(|_| refuse("its folder does not exist"))?;
    let canonical = path
        .canonicalize()
        .map_err(|_| refuse("it does not exist"))?;
    if canonical.parent() != Some(canonical_folder.as_path())
        || canonical.extension().and_then(|e| e.to_str()) != Some("key")
    {
        return Err(refuse(&format!(
            "it is not a .key file in {}",
            folder.display()
        )));
    }
    let metadata = std::fs::metadata(&canonical).map_err(|_| refuse("it cannot be read"))?;
    if !metadata.is_file() || metadata.len() > MAX_CHALLENGE_BYTES {
        return Err(refuse("it is not a regular file of at most 4 KiB"));
    }
    let file = std::fs::File::open(&canonical).map_err(|_| refuse("it cannot be read"))?;
    let mut text = zeroize::Zeroizing::new(String::new());
    file.take(MAX_CHALLENGE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| refuse("it is not text"))?;
    if text.len() as u64 > MAX_CHALLENGE_BYTES {
        return Err(refuse("it is larger than 4 KiB"));
    }
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

/// The error for a refusal, with the source's own message.
fn refusal(source: &Source, status: u16, body: &[u8], id: Option<(IdKind, &str)>) -> Error {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = parsed
        .get("error_description")
        .or_else(|| parsed.pointer("/error/message"))
        .or_else(|| parsed.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no explanation")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect::<String>();
    let kind = if status == 400 || status == 404 {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::AuthenticationFailed
    };
    let subject = match id {
        Some((kind, value)) => format!("the managed identity with {} {value}", kind.describe()),
        None => "the system-assigned managed identity".to_owned(),
    };
    Error {
        kind,
        code: Some(format!("HTTP {status}")),
        message: format!("{} refused a token for {subject}: {message}", source.name()),
    }
}

/// The grant of a managed identity's token answer (numbers as numbers or strings).
fn grant(
    body: &serde_json::Map<String, Value>,
    source: &Source,
    chosen: Option<(IdKind, &str)>,
) -> Result<Grant, Error> {
    let number = |name: &str| match body.get(name) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::network(format!(
                "{} answered without an access token",
                source.name()
            ))
        })?;
    let now = plugin_sdk::sign_in::now();
    let claims = claims::decode_unverified(access_token)?;
    if let Some(chosen) = chosen {
        verify_identity(&claims, chosen)?;
    }
    // An expiry within ten years, and never later than the token's own `exp`.
    let latest = now.saturating_add(TEN_YEARS);
    let expires_on = number("expires_on")
        .or_else(|| number("expires_in").and_then(|seconds| now.checked_add(seconds)))
        .map(|expiry| claims.expires_on().map_or(expiry, |exp| expiry.min(exp)))
        .filter(|expiry| *expiry > now && *expiry <= latest)
        .ok_or_else(|| {
            Error::network(format!("{} answered without a valid expiry", source.name()))
        })?;
    let roles = claims.strings("roles");
    if !roles
        .iter()
        .any(|r| r == plugin_sdk::sign_in::EXCHANGE_APP_ROLE)
    {
        return Err(Error::authentication_failed(
            "no Exchange role",
            format!(
                "the managed identity signed in, but its token has no {} permission: grant it \
                 to the identity's service principal and assign it an Exchange role",
                plugin_sdk::sign_in::EXCHANGE_APP_ROLE
            ),
        ));
    }
    let mut account = claims.account();
    account.kind = AccountKind::Application;
    let mut state = serde_json::Map::new();
    state.insert("source".into(), source.name().into());
    Ok(Grant {
        access_token: access_token.to_owned().into(),
        token_type: "Bearer".into(),
        expires_on,
        account,
        tenant_id: claims.tenant_id().unwrap_or_default().to_owned(),
        scopes: roles,
        state,
        ..Grant::default()
    })
}

plugin_sdk::export_plugin!(ManagedIdentity);
