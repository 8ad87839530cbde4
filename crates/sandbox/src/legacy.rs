//! The legacy remote PowerShell endpoint `/PowerShell-LiveID` (path case-insensitive, trailing
//! slash optional), speaking the same `CmdletInput` JSON as InvokeCommand instead of
//! WS-Management.
//!
//! Authentication is `Authorization: Basic base64(user:password)`:
//! - plain Basic: refused with 401 unless the user's tenant has `basic_auth_enabled` (off by
//!   default, as in the real service since 2022-10-01); accounts that must do MFA can't use it;
//! - `?BasicAuthToOAuthConversion=true`: the password is an access token, validated exactly
//!   like InvokeCommand's bearer token;
//! - `?DelegatedOrg=customer.onmicrosoft.com` acts on a customer organization (partner access);
//!   `email=` (the anchor mailbox) is accepted and ignored.
//!
//! Sessions ("shells"): a request without `X-PowerShell-ShellId` opens a session and the
//! response carries its id in `X-PowerShell-ShellId`; later requests send it back to run in
//! that session; `DELETE /PowerShell-LiveID` with the header closes it. A session expires after
//! `legacy.session_idle_seconds` without requests (default 900). At most
//! `legacy.max_sessions_per_user` (default 5) open sessions per user; past that the request is
//! refused with the WinRM quota error (status 400 here; real WinRM returned it as a SOAP fault,
//! UNVERIFIED status).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::exchange::auth::{self, Caller, Principal};
use crate::exchange::errors::ExoError;
use crate::exchange::invoke;
use crate::identity::credentials;
use crate::seed::Role;
use crate::state::{Core, RequestInfo, new_guid};

/// The canonical path the front service rewrites every spelling to.
pub(crate) const PATH: &str = "/PowerShell-LiveID";
/// The session header.
pub(crate) const SHELL_HEADER: &str = "x-powershell-shellid";

/// Open legacy sessions.
#[derive(Debug, Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

#[derive(Debug)]
struct Session {
    user: String,
    last_used: i64,
}

pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new().route(PATH, post(run).delete(close))
}

fn denied(message: &str) -> ExoError {
    ExoError::new(
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        "System.UnauthorizedAccessException",
        format!("Access is denied. {message}"),
    )
    .challenge("Basic realm=\"PowerShell-LiveID\"".into())
}

fn query_param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// Authenticates and authorizes a legacy request.
fn authenticate(
    core: &Core,
    info: &RequestInfo,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Caller, ExoError> {
    let crate::http_auth::Basic { user, password } = crate::http_auth::basic(headers)
        .ok_or_else(|| denied("The request needs Basic authentication."))?;
    let delegated_org = query_param(query, "DelegatedOrg");
    let conversion = query_param(query, "BasicAuthToOAuthConversion")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if conversion {
        // The token's own tenant unless DelegatedOrg names another one.
        let org = match &delegated_org {
            Some(org) => org.clone(),
            None => crate::jwt::decode(&password)
                .ok()
                .and_then(|d| d.claim_str("tid").map(str::to_owned))
                .ok_or_else(|| {
                    auth::unauthorized(core, info.cloud, "The password is not an access token.")
                })?,
        };
        return auth::validate_token(core, info, &org, &password);
    }
    let account = core
        .directory
        .user_by_upn(&user)
        .ok_or_else(|| denied("The user name or password is incorrect."))?;
    let tenant = &core.directory.tenants[account.tenant];
    if !tenant.seed.basic_auth_enabled {
        return Err(denied(&format!(
            "Basic authentication is disabled for organization '{}' (retired in Exchange Online since 2022-10-01). Use modern authentication, or ?BasicAuthToOAuthConversion=true with an access token as the password.",
            tenant.initial_domain()
        )));
    }
    credentials::check_password(core, account, &password).map_err(|e| {
        denied(&format!(
            "{} The user name or password is incorrect.",
            e.headline()
        ))
    })?;
    let seed_user = core.directory.user(account);
    if seed_user.totp_secret.is_some() {
        return Err(denied(
            "This account requires multi-factor authentication, which Basic authentication can't do.",
        ));
    }
    let org = delegated_org.unwrap_or_else(|| tenant.initial_domain().to_owned());
    let org_index = auth::resolve_org(core, &org)?;
    let roles: Vec<Role> = seed_user.roles.clone();
    auth::authorize(
        core,
        account.tenant,
        org_index,
        &org,
        Principal::User(account),
        roles,
    )
}

fn quota_exceeded(max: usize) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "QuotaExceeded",
        "System.Management.Automation.Remoting.PSRemotingTransportException",
        format!(
            "The WS-Management service cannot process the request. This user is allowed a maximum number of {max} concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user."
        ),
    )
}

fn shell_not_found(id: &str) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "InvalidOperation",
        "System.Management.Automation.Remoting.PSRemotingTransportException",
        format!(
            "The request for the Windows Remote Shell with ShellId {id} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server."
        ),
    )
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens or resumes the session of a request; returns its id.
    fn enter(
        &self,
        core: &Core,
        user: &str,
        requested: Option<&str>,
        now: i64,
    ) -> Result<String, ExoError> {
        let settings = &core.seed.legacy;
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.last_used + settings.session_idle_seconds as i64 > now);
        if let Some(id) = requested {
            return match sessions.get_mut(id).filter(|s| s.user == user) {
                Some(session) => {
                    session.last_used = now;
                    Ok(id.to_owned())
                }
                None => Err(shell_not_found(id)),
            };
        }
        if sessions.values().filter(|s| s.user == user).count() >= settings.max_sessions_per_user {
            return Err(quota_exceeded(settings.max_sessions_per_user));
        }
        let id = new_guid().to_string().to_ascii_uppercase();
        sessions.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                last_used: now,
            },
        );
        Ok(id)
    }

    /// Closes a session of `user`; false if there is none.
    fn close(&self, user: &str, id: &str) -> bool {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.user == user => sessions.remove(id).is_some(),
            _ => false,
        }
    }
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn run(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_query(query.as_deref());
    let caller = match authenticate(&core, &info, &headers, &params) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let requested = headers
        .get(SHELL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let shell = match core
        .legacy
        .enter(&core, &caller.key(), requested, crate::clock::unix_now())
    {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let base = core.cloud_base(info.cloud);
    let tid = core.directory.tenants[caller.tenant].seed.id;
    let context =
        format!("{base}/adminapi/beta/{tid}/$metadata#Collection(Exchange.GenericHashTable)");
    let mut response = invoke::execute(
        &core,
        &caller,
        &headers,
        query.as_deref(),
        &body,
        &format!("{base}{PATH}"),
        &context,
    )
    .await;
    if let Ok(v) = HeaderValue::from_str(&shell) {
        response.headers_mut().insert(SHELL_HEADER, v);
    }
    response
}

async fn close(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = parse_query(query.as_deref());
    let caller = match authenticate(&core, &info, &headers, &params) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Some(id) = headers
        .get(SHELL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return shell_not_found("(none)").into_response();
    };
    if core.legacy.close(&caller.key(), id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        shell_not_found(id).into_response()
    }
}
