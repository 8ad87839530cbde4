//! Managed-identity endpoints. Four styles share a plain-HTTP loopback listener (real ones are
//! plain HTTP too); Service Fabric has its own HTTPS listener with a self-signed certificate
//! that clients pin by thumbprint, as on a real cluster node.
//!
//! | Style | Request | Auth | Response |
//! |---|---|---|---|
//! | IMDS (Azure VM) | `GET /metadata/identity/oauth2/token?api-version=…&resource=…[&client_id=…\|&object_id=…\|&msi_res_id=…]` | `Metadata: true` (else 400 `bad_request_102`) | numbers as strings, `expires_in` |
//! | App Service / Functions | `GET /MSI/token?api-version=2019-08-01&resource=…[&client_id=…\|&principal_id=…\|&object_id=…\|&mi_res_id=…]` | `X-IDENTITY-HEADER: <identity_header>` | string `expires_on`, no `expires_in`, `client_id` |
//! | Azure Arc | `GET /arc/metadata/identity/oauth2/token?api-version=2020-06-01\|2019-11-01&resource=…` | `Metadata: true`; first 401 + `WWW-Authenticate: Basic realm=<file>`, then `Authorization: Basic <file content>` | IMDS-like; system-assigned only |
//! | Cloud Shell | `POST /oauth2/token` form `resource=…` | `Metadata: true` | IMDS-like; system-assigned only |
//! | Service Fabric (own HTTPS listener) | `GET /metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource=…[&principal_id=…\|&client_id=…\|&mi_res_id=…]` | `Secret: <identity_header>` | `{token_type, access_token, expires_on (integer), resource}` |
//!
//! `identity_header` is a random secret generated per start (in `sandbox.json`, the `serve`
//! output and `Sandbox::identity_header`); App Service's `IDENTITY_HEADER` and Service Fabric's
//! are the same value. Without an id parameter the system-assigned identity answers. Tokens are
//! the same app-only Exchange v1 tokens as client credentials (`idtyp` app, `roles`, `wids`,
//! plus `xms_mirid`; `appidacr` 2).
//!
//! Azure Arc challenge files go to the seed's `azure_arc.token_dir` (default
//! `{state_dir}/arc/tokens`; real clients only accept `/var/opt/azcmagent/tokens/`, see
//! `seed::ArcSettings`), mode 0600 in a 0700 directory. A challenge is valid for
//! `challenge_seconds` (default 60) and for one use: its file is deleted when it is used, when
//! it expires, and at shutdown. At most `max_outstanding_challenges` (default 64) exist at
//! once; past that the endpoint answers 429 with `Retry-After` until one is used or expires
//! (UNVERIFIED: the real agent's behaviour under such load is not documented). File I/O runs
//! on the blocking pool, never on the async workers.
//!
//! UNVERIFIED: real Cloud Shell returns the signed-in *user's* token; the sandbox returns the
//! system-assigned identity's app-only token. The documented api-versions are enforced for
//! App Service, Arc and Service Fabric; IMDS accepts any non-empty value (its list of versions
//! is long and changes), but requires one, as the real endpoint does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::cloud::Cloud;
use crate::directory::IdentityEntry;
use crate::identity::Params;
use crate::identity::issue::{self, AppIdentity, Minted};
use crate::seed::{ArcSettings, ManagedIdentityKind};
use crate::state::{Core, RequestInfo, constant_time_eq, random_token};

/// The path of the token endpoint on the Service Fabric listener.
pub(crate) const SERVICE_FABRIC_PATH: &str = "/metadata/identity/oauth2/token";

/// The routes of the plain-HTTP managed-identity listener.
pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/MSI/token", get(app_service))
        .route("/arc/metadata/identity/oauth2/token", get(arc))
        .route("/oauth2/token", post(cloud_shell))
}

/// The routes of the Service Fabric HTTPS listener.
pub(crate) fn service_fabric_router() -> Router<Arc<Core>> {
    Router::new().route(SERVICE_FABRIC_PATH, get(service_fabric))
}

/// The response styles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Imds,
    AppService,
    Arc,
    CloudShell,
    ServiceFabric,
}

/// Why a token could not be issued, rendered in the style of the endpoint.
#[derive(Debug)]
enum Refusal {
    /// No `resource`.
    MissingResource,
    /// No identity matches the id parameter.
    IdentityNotFound,
    /// A resource the sandbox doesn't know, with the identity's tenant id.
    UnknownResource { resource: String, tenant: String },
}

impl Style {
    /// An error in this style's shape.
    fn error(self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = match self {
            Style::Imds | Style::Arc => json!({"error": code, "error_description": message}),
            Style::AppService => {
                json!({"statusCode": status.as_u16(), "message": message, "correlationId": crate::state::new_guid()})
            }
            Style::CloudShell => json!({"error": {"code": code, "message": message}}),
            Style::ServiceFabric => {
                json!({"error": {"code": code, "message": message, "correlationId": crate::state::new_guid()}})
            }
        };
        (status, axum::Json(body)).into_response()
    }

    fn refuse(self, refusal: Refusal) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        match (self, refusal) {
            (Style::ServiceFabric, Refusal::MissingResource) => self.error(
                bad,
                "ArgumentNullOrEmpty",
                "The parameter 'resource' cannot be null or empty.",
            ),
            (_, Refusal::MissingResource) => self.error(
                bad,
                "invalid_request",
                "Required audience parameter not specified",
            ),
            (Style::ServiceFabric, Refusal::IdentityNotFound) => self.error(
                StatusCode::NOT_FOUND,
                "ManagedIdentityNotFound",
                "No managed identity matches the requested identity.",
            ),
            (_, Refusal::IdentityNotFound) => {
                self.error(bad, "invalid_request", "Identity not found")
            }
            // The real App Service endpoint answers bad resources with this vague 500.
            (Style::AppService, Refusal::UnknownResource { .. }) => self.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "",
                "An unexpected error occured while fetching the AAD Token.",
            ),
            (_, Refusal::UnknownResource { resource, tenant }) => {
                let message = format!(
                    "AADSTS500011: The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
                );
                // UNVERIFIED: the code Service Fabric uses for an unknown resource.
                let code = if self == Style::ServiceFabric {
                    "InvalidResource"
                } else {
                    "invalid_resource"
                };
                self.error(bad, code, &message)
            }
        }
    }

    /// The documented `api-version` values (`None`: any non-empty value).
    fn api_versions(self) -> Option<&'static [&'static str]> {
        match self {
            Style::Imds => None,
            Style::AppService => Some(&["2019-08-01"]),
            Style::Arc => Some(&["2020-06-01", "2019-11-01"]),
            Style::ServiceFabric => Some(&["2019-07-01-preview"]),
            Style::CloudShell => None,
        }
    }

    /// Checks `api-version`; the error response if it is missing or not supported.
    fn check_api_version(self, params: &Params) -> Option<Response> {
        let given = params.get("api-version");
        let supported = match (given, self.api_versions()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(list)) => list.contains(&v),
        };
        if supported {
            return None;
        }
        let message = match (given, self.api_versions()) {
            (None, _) => "Required query variable 'api-version' is missing".to_owned(),
            (Some(v), list) => format!(
                "The api-version '{v}' is not supported; use {}.",
                list.unwrap_or_default().join(" or ")
            ),
        };
        let code = match (self, given) {
            (Style::ServiceFabric, None) => "ArgumentNullOrEmpty",
            // UNVERIFIED: Service Fabric's code for an unsupported version.
            (Style::ServiceFabric, Some(_)) => "ApiVersionNotSupported",
            _ => "invalid_request",
        };
        Some(self.error(StatusCode::BAD_REQUEST, code, &message))
    }
}

fn metadata_header(headers: &HeaderMap) -> bool {
    headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The IMDS answer to a missing `Metadata: true` (Arc and Cloud Shell use their own shape).
fn no_metadata(style: Style) -> Response {
    let code = match style {
        Style::CloudShell => "BadRequest",
        _ => "bad_request_102",
    };
    style.error(
        StatusCode::BAD_REQUEST,
        code,
        "Required metadata header not specified",
    )
}

/// Whether the request presents `secret` in header `name` (compared in constant time).
fn presents_secret(headers: &HeaderMap, name: &str, secret: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| constant_time_eq(v.as_bytes(), secret.as_bytes()))
}

/// The identity an id parameter (the first of `names` present) names, or the system-assigned
/// one when there is none.
fn select<'a>(core: &'a Core, params: &Params, names: &[&str]) -> Option<&'a IdentityEntry> {
    let wanted = names.iter().find_map(|n| params.get(n).map(|v| (*n, v)));
    core.directory.identities.iter().find(|mi| match wanted {
        None => mi.seed.kind == ManagedIdentityKind::System,
        Some(("client_id", v)) => mi.seed.client_id.to_string().eq_ignore_ascii_case(v),
        Some(("object_id" | "principal_id", v)) => {
            mi.seed.object_id.to_string().eq_ignore_ascii_case(v)
        }
        Some((_, v)) => mi.seed.resource_id.eq_ignore_ascii_case(v),
    })
}

/// The Exchange cloud of a `resource` (a trailing `/` or `/.default` is tolerated).
fn resource_cloud(resource: &str) -> Option<Cloud> {
    Cloud::from_exchange_resource(resource.trim().trim_end_matches("/.default"))
}

/// A minted token with the `resource` and `client_id` values to answer.
struct Issued {
    minted: Minted,
    resource: &'static str,
    client_id: String,
}

/// Validates `resource`, selects the identity (by the first of `id_names` present) and mints
/// its token.
fn mint(
    core: &Core,
    info: &RequestInfo,
    params: &Params,
    id_names: &[&str],
) -> Result<Issued, Refusal> {
    let resource = params.get("resource").ok_or(Refusal::MissingResource)?;
    let identity = select(core, params, id_names).ok_or(Refusal::IdentityNotFound)?;
    let cloud = resource_cloud(resource).ok_or_else(|| Refusal::UnknownResource {
        resource: resource.to_owned(),
        tenant: core.directory.tenants[identity.tenant].seed.id.to_string(),
    })?;
    let mi = &identity.seed;
    let app = AppIdentity {
        tenant: identity.tenant,
        app_id: mi.client_id,
        object_id: mi.object_id,
        display_name: &mi.name,
        app_roles: &mi.app_roles,
        roles: &mi.roles,
        appidacr: "2",
        mirid: Some(&mi.resource_id),
    };
    let now = crate::clock::unix_now()
        + core
            .faults
            .clock_skew(crate::faults::Service::ManagedIdentity, info.tenant);
    let minted = issue::app_access_token(core, now, cloud, &app);
    Ok(Issued {
        minted,
        resource: cloud.exchange_resource(),
        client_id: mi.client_id.to_string(),
    })
}

/// The IMDS-like body: every number a string.
fn imds_body(issued: &Issued) -> Value {
    let Issued {
        minted,
        resource,
        client_id,
    } = issued;
    json!({
        "access_token": minted.token,
        "refresh_token": "",
        "expires_in": minted.lifetime.to_string(),
        "expires_on": minted.exp.to_string(),
        "ext_expires_in": minted.lifetime.to_string(),
        "not_before": minted.iat.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id,
    })
}

/// Mints for `style` and answers with `body` or the style's refusal.
fn answer(
    core: &Core,
    info: &RequestInfo,
    style: Style,
    params: &Params,
    id_names: &[&str],
    body: fn(&Issued) -> Value,
) -> Response {
    match mint(core, info, params, id_names) {
        Ok(issued) => axum::Json(body(&issued)).into_response(),
        Err(refusal) => style.refuse(refusal),
    }
}

async fn imds(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let style = Style::Imds;
    if !metadata_header(&headers) {
        return no_metadata(style);
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if let Some(refusal) = style.check_api_version(&params) {
        return refusal;
    }
    let ids = ["client_id", "object_id", "msi_res_id"];
    answer(&core, &info, style, &params, &ids, imds_body)
}

async fn app_service(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let style = Style::AppService;
    if !presents_secret(&headers, "x-identity-header", &core.identity_header) {
        return style.error(
            StatusCode::UNAUTHORIZED,
            "",
            "The X-IDENTITY-HEADER header is missing or doesn't match IDENTITY_HEADER.",
        );
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if let Some(refusal) = style.check_api_version(&params) {
        return refusal;
    }
    let ids = ["client_id", "principal_id", "object_id", "mi_res_id"];
    answer(&core, &info, style, &params, &ids, |issued| {
        json!({
            "access_token": issued.minted.token,
            "expires_on": issued.minted.exp.to_string(),
            "resource": issued.resource,
            "token_type": "Bearer",
            "client_id": issued.client_id,
        })
    })
}

async fn service_fabric(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let style = Style::ServiceFabric;
    // UNVERIFIED: the status and code for a secret that is present but wrong.
    if !presents_secret(&headers, "secret", &core.identity_header) {
        return style.error(
            StatusCode::UNAUTHORIZED,
            "SecretHeaderNotFound",
            "Secret is not found in the request headers or doesn't match IDENTITY_HEADER.",
        );
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if let Some(refusal) = style.check_api_version(&params) {
        return refusal;
    }
    // UNVERIFIED: which id parameters Service Fabric accepts for user-assigned identities.
    let ids = ["principal_id", "client_id", "mi_res_id"];
    answer(&core, &info, style, &params, &ids, |issued| {
        json!({
            "token_type": "Bearer",
            "access_token": issued.minted.token,
            "expires_on": issued.minted.exp,
            "resource": issued.resource,
        })
    })
}

fn system_assigned_only(style: Style, params: &Params) -> Option<Response> {
    ["client_id", "object_id", "msi_res_id", "mi_res_id", "principal_id"].iter().any(|n| params.get(n).is_some()).then(|| {
        style.error(StatusCode::BAD_REQUEST, "invalid_request", "User-assigned managed identities are not supported by this endpoint; only the system-assigned identity is available.")
    })
}

/// One outstanding Arc challenge.
#[derive(Debug)]
struct Challenge {
    secret: String,
    path: PathBuf,
    expires_at: i64,
}

/// Why a challenge could not be issued.
#[derive(Debug, thiserror::Error)]
enum ChallengeError {
    #[error("too many outstanding challenges ({0})")]
    Full(usize),
    #[error("cannot write the challenge file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the challenge file writer failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Outstanding Azure Arc challenges, keyed by an internal id.
#[derive(Debug)]
pub(crate) struct ArcChallenges {
    dir: PathBuf,
    lifetime: i64,
    max: usize,
    outstanding: Mutex<HashMap<u64, Challenge>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Deletes challenge files on the blocking pool (a missing file is fine: that's the goal).
async fn delete_files(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let deleted = tokio::task::spawn_blocking(move || {
        for path in paths {
            let _ = std::fs::remove_file(path);
        }
    })
    .await;
    if let Err(e) = deleted {
        tracing::warn!("deleting Arc challenge files failed: {e}");
    }
}

impl ArcChallenges {
    pub fn new(settings: &ArcSettings, state_dir: &std::path::Path) -> ArcChallenges {
        ArcChallenges {
            dir: settings
                .token_dir
                .clone()
                .unwrap_or_else(|| state_dir.join("arc").join("tokens")),
            lifetime: settings.challenge_seconds as i64,
            max: settings.max_outstanding_challenges,
            outstanding: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Challenge>> {
        // Inserts and removes keep the map consistent even if a holder panicked.
        self.outstanding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes expired challenges from the map; returns their files.
    fn take_expired(map: &mut HashMap<u64, Challenge>, now: i64) -> Vec<PathBuf> {
        let expired: Vec<u64> = map
            .iter()
            .filter(|(_, c)| c.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| map.remove(&id))
            .map(|c| c.path)
            .collect()
    }

    /// Writes a new challenge file and returns its path; its deletion at expiry is scheduled.
    async fn issue(self: &Arc<Self>, now: i64) -> Result<PathBuf, ChallengeError> {
        let secret = random_token(32);
        let path = self.dir.join(format!("{}.key", random_token(12)));
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (expired, reserved) = {
            let mut map = self.lock();
            let expired = Self::take_expired(&mut map, now);
            let reserved = map.len() < self.max;
            if reserved {
                // Reserved before the file exists, so concurrent requests respect the cap.
                map.insert(
                    id,
                    Challenge {
                        secret: secret.clone(),
                        path: path.clone(),
                        expires_at: now + self.lifetime,
                    },
                );
            }
            (expired, reserved)
        };
        delete_files(expired).await;
        if !reserved {
            return Err(ChallengeError::Full(self.max));
        }
        let (dir, file) = (self.dir.clone(), path.clone());
        let written = tokio::task::spawn_blocking(move || {
            crate::fsutil::create_private_dir(&dir)?;
            crate::fsutil::create_private_file(&file, secret.as_bytes())
        })
        .await
        .map_err(ChallengeError::from)
        .and_then(|r| r.map_err(ChallengeError::from));
        if let Err(e) = written {
            self.lock().remove(&id);
            return Err(e);
        }
        let this = Arc::clone(self);
        let lifetime = Duration::from_secs(self.lifetime.unsigned_abs());
        tokio::spawn(async move {
            tokio::time::sleep(lifetime).await;
            let path = this.lock().remove(&id).map(|c| c.path);
            delete_files(path.into_iter().collect()).await;
        });
        Ok(path)
    }

    /// Accepts a presented secret once: its challenge is removed and its file deleted.
    async fn redeem(&self, presented: &str, now: i64) -> bool {
        let used = {
            let mut map = self.lock();
            let id = map
                .iter()
                .find(|(_, c)| {
                    c.expires_at > now
                        && constant_time_eq(c.secret.as_bytes(), presented.as_bytes())
                })
                .map(|(id, _)| *id);
            id.and_then(|id| map.remove(&id))
        };
        match used {
            Some(challenge) => {
                delete_files(vec![challenge.path]).await;
                true
            }
            None => false,
        }
    }

    /// Deletes every outstanding challenge file (shutdown).
    pub async fn clear(&self) {
        let paths: Vec<PathBuf> = self.lock().drain().map(|(_, c)| c.path).collect();
        delete_files(paths).await;
    }

    /// Challenges outstanding now.
    #[cfg(test)]
    pub fn outstanding(&self) -> usize {
        self.lock().len()
    }
}

async fn arc(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let style = Style::Arc;
    if !metadata_header(&headers) {
        return no_metadata(style);
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if let Some(refusal) = style
        .check_api_version(&params)
        .or_else(|| system_assigned_only(style, &params))
    {
        return refusal;
    }
    let now = crate::clock::unix_now();
    let Some(presented) = crate::http_auth::credentials(&headers, "basic") else {
        return match core.arc.issue(now).await {
            Ok(path) => {
                let mut response = style.error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "The request needs the secret of the challenge file named in WWW-Authenticate.",
                );
                if let Ok(v) = HeaderValue::from_str(&format!("Basic realm={}", path.display())) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                response
            }
            Err(ChallengeError::Full(max)) => {
                let mut response = style.error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    &format!(
                        "Too many outstanding challenges ({max}); use or let one expire and retry."
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(core.arc.lifetime));
                response
            }
            Err(e) => style.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &e.to_string(),
            ),
        };
    };
    if !core.arc.redeem(presented, now).await {
        return style.error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The challenge secret is invalid, expired or already used; request a new challenge.",
        );
    }
    answer(&core, &info, style, &params, &[], imds_body)
}

async fn cloud_shell(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let style = Style::CloudShell;
    if !metadata_header(&headers) {
        return no_metadata(style);
    }
    let params = Params::parse(&body);
    if let Some(refusal) = system_assigned_only(style, &params) {
        return refusal;
    }
    answer(&core, &info, style, &params, &[], imds_body)
}

#[cfg(test)]
mod tests;
