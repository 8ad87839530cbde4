//! Managed-identity endpoints, on their own plain-HTTP loopback listener (real ones are plain
//! HTTP too). One style per path:
//!
//! | Style | Request | Auth | Response |
//! |---|---|---|---|
//! | IMDS (Azure VM) | `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&client_id=…\|&object_id=…\|&msi_res_id=…]` | `Metadata: true` (else 400 `bad_request_102`) | numbers as strings, `expires_in` |
//! | App Service / Functions | `GET /MSI/token?api-version=2019-08-01&resource=…[&client_id=…\|&principal_id=…\|&object_id=…\|&mi_res_id=…]` | `X-IDENTITY-HEADER: <identity_header>` | string `expires_on`, no `expires_in`, `client_id` |
//! | Azure Arc | `GET /arc/metadata/identity/oauth2/token?api-version=2020-06-01&resource=…` | `Metadata: true`; first 401 + `WWW-Authenticate: Basic realm=<file>`, then `Authorization: Basic <file content>` | IMDS-like; system-assigned only |
//! | Cloud Shell | `POST /oauth2/token` form `resource=…` | `Metadata: true` | IMDS-like; system-assigned only |
//!
//! `identity_header` is a random secret generated per start (in `sandbox.json`, the `serve`
//! output and `Sandbox::identity_header`). Arc challenge files are written under
//! `{state_dir}/arc/tokens/` (mode 0600) and stay valid for 60 s. Without an id parameter the
//! system-assigned identity answers. Tokens are the same app-only Exchange v1 tokens as
//! client credentials (`idtyp` app, `roles`, `wids`, plus `xms_mirid`).
//!
//! UNVERIFIED: real Cloud Shell returns the signed-in *user's* token; the sandbox returns the
//! system-assigned identity's app-only token, as its brief asks.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

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
use crate::seed::ManagedIdentityKind;
use crate::state::{Core, RequestInfo, constant_time_eq, random_token};

/// How long an Arc challenge file's secret is accepted.
const ARC_CHALLENGE_SECONDS: i64 = 60;

/// Outstanding Azure Arc challenges: secret → expiry.
#[derive(Debug, Default)]
pub(crate) struct ArcChallenges(Mutex<HashMap<String, i64>>);

pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/MSI/token", get(app_service))
        .route("/arc/metadata/identity/oauth2/token", get(arc))
        .route("/oauth2/token", post(cloud_shell))
}

/// The response styles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Imds,
    AppService,
    Arc,
    CloudShell,
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
        };
        (status, axum::Json(body)).into_response()
    }

    fn respond(self, refusal: Refusal) -> Response {
        self.error(refusal.status, refusal.code, &refusal.message)
    }
}

fn metadata_header(headers: &HeaderMap) -> bool {
    headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn no_metadata(style: Style) -> Response {
    style.error(
        StatusCode::BAD_REQUEST,
        "bad_request_102",
        "Required metadata header not specified",
    )
}

/// Picks the identity an id parameter names, or the system-assigned one.
fn select<'a>(core: &'a Core, params: &Params, names: &[&str]) -> Result<&'a IdentityEntry, ()> {
    let wanted = names.iter().find_map(|n| params.get(n).map(|v| (*n, v)));
    core.directory
        .identities
        .iter()
        .find(|mi| match wanted {
            None => mi.seed.kind == ManagedIdentityKind::System,
            Some(("client_id", v)) => mi.seed.client_id.to_string().eq_ignore_ascii_case(v),
            Some(("object_id" | "principal_id", v)) => {
                mi.seed.object_id.to_string().eq_ignore_ascii_case(v)
            }
            Some((_, v)) => mi.seed.resource_id.eq_ignore_ascii_case(v),
        })
        .ok_or(())
}

/// The Exchange cloud of a `resource` (a trailing `/` or `/.default` is tolerated).
fn resource_cloud(resource: &str) -> Option<Cloud> {
    Cloud::from_exchange_resource(resource.trim().trim_end_matches("/.default"))
}

/// A refusal, rendered in the style of the endpoint.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }
}

/// A minted token with the `resource` and `client_id` values to answer.
struct Issued {
    minted: Minted,
    resource: &'static str,
    client_id: String,
}

/// Validates `resource`, selects the identity and mints its token.
fn mint(
    core: &Core,
    info: &RequestInfo,
    style: Style,
    params: &Params,
    id_names: &[&str],
) -> Result<Issued, Refusal> {
    let Some(resource) = params.get("resource") else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required audience parameter not specified",
        ));
    };
    let identity = select(core, params, id_names).map_err(|()| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        )
    })?;
    let Some(cloud) = resource_cloud(resource) else {
        if style == Style::AppService {
            // The real App Service endpoint answers bad resources with this vague 500.
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "",
                "An unexpected error occured while fetching the AAD Token.",
            ));
        }
        let message = format!(
            "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
            core.directory.tenants[identity.tenant].seed.id
        );
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            message,
        ));
    };
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

fn ok(body: Value) -> Response {
    axum::Json(body).into_response()
}

async fn imds(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !metadata_header(&headers) {
        return no_metadata(Style::Imds);
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if params.get("api-version").is_none() {
        return Style::Imds.error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let style = Style::Imds;
    match mint(
        &core,
        &info,
        style,
        &params,
        &["client_id", "object_id", "msi_res_id"],
    ) {
        Ok(issued) => ok(imds_body(&issued)),
        Err(refusal) => style.respond(refusal),
    }
}

async fn app_service(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let style = Style::AppService;
    let presented = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), core.identity_header.as_bytes()) {
        return style.error(
            StatusCode::UNAUTHORIZED,
            "",
            "The X-IDENTITY-HEADER header is missing or doesn't match IDENTITY_HEADER.",
        );
    }
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if params.get("api-version") != Some("2019-08-01") {
        return style.error(
            StatusCode::BAD_REQUEST,
            "",
            "The api-version is missing or not supported; use 2019-08-01.",
        );
    }
    match mint(
        &core,
        &info,
        style,
        &params,
        &["client_id", "principal_id", "object_id", "mi_res_id"],
    ) {
        Ok(issued) => ok(json!({
            "access_token": issued.minted.token,
            "expires_on": issued.minted.exp.to_string(),
            "resource": issued.resource,
            "token_type": "Bearer",
            "client_id": issued.client_id,
        })),
        Err(refusal) => style.respond(refusal),
    }
}

fn system_assigned_only(style: Style, params: &Params) -> Option<Response> {
    ["client_id", "object_id", "msi_res_id", "mi_res_id", "principal_id"].iter().any(|n| params.get(n).is_some()).then(|| {
        style.error(StatusCode::BAD_REQUEST, "invalid_request", "User-assigned managed identities are not supported by this endpoint; only the system-assigned identity is available.")
    })
}

impl ArcChallenges {
    /// Writes a new challenge file and returns its path.
    fn issue(&self, core: &Core, now: i64) -> std::io::Result<std::path::PathBuf> {
        let dir = core.state_dir.join("arc").join("tokens");
        std::fs::create_dir_all(&dir)?;
        let secret = random_token(32);
        let path = dir.join(format!("{}.key", random_token(12)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(secret.as_bytes())?;
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, expiry| *expiry > now);
        map.insert(secret, now + ARC_CHALLENGE_SECONDS);
        Ok(path)
    }

    fn accepts(&self, presented: &str, now: i64) -> bool {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().any(|(secret, expiry)| {
            *expiry > now && constant_time_eq(secret.as_bytes(), presented.as_bytes())
        })
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
    if let Some(refusal) = system_assigned_only(style, &params) {
        return refusal;
    }
    let now = crate::clock::unix_now();
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, secret)| secret.trim().to_owned());
    match presented {
        None => {
            match core.arc.issue(&core, now) {
                Ok(path) => {
                    let mut response = style.error(StatusCode::UNAUTHORIZED, "unauthorized", "The request needs the secret of the challenge file named in WWW-Authenticate.");
                    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm={}", path.display()))
                    {
                        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                    response
                }
                Err(e) => style.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    &format!("cannot write the challenge file: {e}"),
                ),
            }
        }
        Some(secret) if core.arc.accepts(&secret, now) => {
            match mint(&core, &info, style, &params, &[]) {
                Ok(issued) => ok(imds_body(&issued)),
                Err(refusal) => style.respond(refusal),
            }
        }
        Some(_) => style.error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The challenge secret is invalid or expired; request a new challenge.",
        ),
    }
}

async fn cloud_shell(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let style = Style::CloudShell;
    if !metadata_header(&headers) {
        return style.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Required metadata header not specified",
        );
    }
    let params = Params::parse(&body);
    if let Some(refusal) = system_assigned_only(style, &params) {
        return refusal;
    }
    match mint(&core, &info, style, &params, &[]) {
        Ok(issued) => ok(imds_body(&issued)),
        Err(refusal) => style.respond(refusal),
    }
}
