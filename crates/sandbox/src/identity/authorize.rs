//! `/authorize`: validates the request, starts a sign-in page flow, and — once the user has
//! signed in — answers the client with a code (query, fragment or form_post).
//!
//! Errors about the client or the redirect URI are shown as a page (the service never redirects
//! to an unverified URI); all others are sent to the redirect URI as `error` +
//! `error_description`.
//!
//! Loopback redirect URIs (`reply-url.md`, "Localhost exceptions"): a registered
//! `http://localhost[/path]` or `http://127.0.0.1[/path]` matches the same host on any port with
//! the same path (and query); the host is compared literally, so `localhost` and `127.0.0.1`
//! are separate registrations; `[::1]` never matches; a path-less URI gets a trailing `/`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use url::Url;

use crate::directory::TenantSegment;
use crate::identity::errors::{self, AadError};
use crate::identity::issue;
use crate::identity::pages;
use crate::identity::scope::{self, Requested};
use crate::identity::store::{
    AuthCode, Authentication, AuthorizeRequest, Flow, FlowPurpose, PkceMethod, ResponseMode, Step,
};
use crate::identity::{Params, html_escape, token};
use crate::state::{Core, RequestInfo, random_token};

/// `GET /{tenant}/oauth2/v2.0/authorize` (`V1 = false`) and `GET /{tenant}/oauth2/authorize`
/// (`V1 = true`).
pub(crate) async fn authorize_get<const V1: bool>(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    authorize(&core, &info, &tenant, &params, V1)
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the same parameters as a form.
pub(crate) async fn authorize_post(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    authorize(&core, &info, &tenant, &Params::parse(&body), false)
}

/// Whether `given` is allowed by the registered redirect URI `registered`.
pub(crate) fn redirect_matches(registered: &str, given: &str) -> bool {
    let (Ok(r), Ok(g)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    // `http` is only for these two names ([::1] is documented as unsupported).
    let loopback =
        |u: &Url| u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1"));
    if loopback(&r) {
        // The port is ignored; host, path and query must match. UNVERIFIED: whether the real
        // service treats `localhost` and `127.0.0.1` as one host; the documentation lists them
        // as separate registrations (and recommends 127.0.0.1), so the sandbox doesn't.
        return loopback(&g)
            && r.host_str() == g.host_str()
            && r.path() == g.path()
            && r.query() == g.query()
            && g.fragment().is_none()
            && g.username().is_empty()
            && g.password().is_none();
    }
    r == g
}

fn authorize(
    core: &Core,
    info: &RequestInfo,
    segment_text: &str,
    params: &Params,
    v1: bool,
) -> Response {
    let segment = match core.segment(segment_text) {
        Ok(s) => s,
        Err(e) => return pages::error_page(core, info, &e),
    };
    let client = match params
        .require("client_id")
        .and_then(|id| core.client(segment, id))
    {
        Ok(c) => c,
        Err(e) => return pages::error_page(core, info, &e),
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return pages::error_page(core, info, &errors::missing_parameter("redirect_uri"));
    };
    let allowed = Url::parse(redirect_uri).is_ok()
        && client
            .redirect_uris
            .iter()
            .any(|r| redirect_matches(r, redirect_uri));
    if !allowed {
        let e = AadError::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                client.client_id
            ),
        );
        return pages::error_page(core, info, &e);
    }
    let state = params.get("state").map(str::to_owned);
    let response_type = params.get("response_type").unwrap_or_default();
    let with_id_token = match response_type {
        "code" => false,
        "code id_token" | "id_token code" if !v1 => true,
        _ => {
            let e = AadError::new(
                "unsupported_response_type",
                70005,
                format!("response_type '{response_type}' is not enabled for the application."),
            );
            return redirect_error(
                redirect_uri,
                ResponseMode::Query,
                state.as_deref(),
                &e,
                info,
            );
        }
    };
    let default_mode = if with_id_token {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    };
    let mode = match params.get("response_mode") {
        None => default_mode,
        Some("query") if !with_id_token => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            let e = AadError::new(
                "invalid_request",
                90015,
                format!("The response_mode '{other}' is not supported for this request."),
            );
            return redirect_error(redirect_uri, default_mode, state.as_deref(), &e, info);
        }
    };
    match validate(core, info, segment, params, v1, with_id_token) {
        Ok((requested, challenge)) => {
            let request = AuthorizeRequest {
                client_id: client.client_id,
                redirect_uri: redirect_uri.to_owned(),
                response_mode: mode,
                requested,
                state,
                nonce: params.get("nonce").map(str::to_owned),
                challenge,
                id_token_in_response: with_id_token,
            };
            start_flow(
                core,
                info,
                segment,
                segment_text,
                request,
                params.get("login_hint"),
            )
        }
        Err(e) => redirect_error(redirect_uri, mode, state.as_deref(), &e, info),
    }
}

/// Checks scope, PKCE, nonce and prompt; errors here go back to the client.
fn validate(
    core: &Core,
    info: &RequestInfo,
    segment: TenantSegment,
    params: &Params,
    v1: bool,
    with_id_token: bool,
) -> Result<(Requested, Option<(String, PkceMethod)>), AadError> {
    let label = match segment {
        TenantSegment::Tenant(t) => core.tenant_label(t),
        _ => "common".to_owned(),
    };
    let requested = if v1 {
        scope::parse_resource(info.cloud, params.require("resource")?)
    } else {
        scope::parse_scope(info.cloud, params.require("scope")?)
    }
    .map_err(|e| token::scope_error(e, &label))?;
    if requested.resource.is_none() {
        return Err(errors::invalid_scope(
            params.get("scope").unwrap_or_default(),
        ));
    }
    let challenge = match params.get("code_challenge") {
        None => None,
        Some(challenge) => {
            let method = match params.get("code_challenge_method") {
                None | Some("plain") => PkceMethod::Plain,
                Some("S256") => PkceMethod::S256,
                Some(other) => {
                    return Err(AadError::new(
                        "invalid_request",
                        501492,
                        format!("Invalid code_challenge_method '{other}': use S256 or plain."),
                    ));
                }
            };
            if !(43..=128).contains(&challenge.len()) {
                return Err(AadError::new(
                    "invalid_request",
                    501491,
                    "Invalid size of Code_Challenge parameter.",
                ));
            }
            Some((challenge.to_owned(), method))
        }
    };
    if with_id_token && params.get("nonce").is_none() {
        return Err(AadError::new(
            "invalid_request",
            90014,
            "The required field 'nonce' is missing.",
        ));
    }
    if params.get("prompt") == Some("none") {
        // The sandbox keeps no browser session, so a silent request always needs a sign-in.
        return Err(AadError::new(
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        ));
    }
    Ok((requested, challenge))
}

fn start_flow(
    core: &Core,
    info: &RequestInfo,
    segment: TenantSegment,
    segment_text: &str,
    request: AuthorizeRequest,
    login_hint: Option<&str>,
) -> Response {
    let now = core.identity_now();
    let id = random_token(24);
    let flow = Flow {
        purpose: FlowPurpose::Authorize(Box::new(request)),
        cloud: info.cloud,
        segment,
        segment_text: segment_text.to_owned(),
        login_hint: login_hint.map(str::to_owned),
        step: Step::Username,
        expires_at: now + pages::FLOW_SECONDS,
    };
    let page = pages::render_step(core, &id, &flow, None);
    let expires_at = flow.expires_at;
    core.auth().flows.insert(id, flow, expires_at, now);
    page
}

/// Sends `params` to the client's redirect URI the way `mode` says.
fn to_client(redirect_uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        // `authorize` only accepts redirect URIs that parse; answer like a mismatch anyway.
        return AadError::new(
            "invalid_request",
            50011,
            format!("The redirect URI '{redirect_uri}' is not a valid URL."),
        )
        .into_response();
    };
    match mode {
        ResponseMode::Query => {
            url.query_pairs_mut().extend_pairs(params);
        }
        ResponseMode::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            url.set_fragment(Some(&fragment));
        }
        ResponseMode::FormPost => {
            let inputs: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let body = format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Working...</title></head>\n<body onload=\"document.forms[0].submit()\">\n<form method=\"post\" action=\"{}\">\n{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p></noscript>\n<button type=\"submit\">Submit</button>\n</form>\n</body></html>\n",
                html_escape(url.as_str())
            );
            return Html(body).into_response();
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn redirect_error(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    e: &AadError,
    info: &RequestInfo,
) -> Response {
    let e = e.clone().in_context(info);
    let body = e.body();
    let description = body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut params = vec![
        ("error", e.error),
        ("error_description", description.as_str()),
    ];
    if let Some(state) = state {
        params.push(("state", state));
    }
    to_client(redirect_uri, mode, &params)
}

/// Finishes an authorization flow: stores a code and answers the client.
pub(crate) fn complete(
    core: &Core,
    request: &AuthorizeRequest,
    cloud: crate::cloud::Cloud,
    authn: Authentication,
    now: i64,
) -> Response {
    let code = format!("1.AX{}", random_token(160));
    core.issued(&code);
    let tenant = authn.user.tenant;
    let id_token = request.id_token_in_response.then(|| {
        issue::id_token(
            core,
            cloud,
            now,
            tenant,
            &request.client_id,
            &authn,
            request.nonce.as_deref(),
        )
    });
    let record = AuthCode {
        client_id: request.client_id,
        tenant,
        cloud,
        redirect_uri: request.redirect_uri.clone(),
        requested: request.requested.clone(),
        nonce: request.nonce.clone(),
        challenge: request.challenge.clone(),
        authn,
        expires_at: now + core.seed.lifetimes.authorization_code_seconds as i64,
        redeemed: false,
    };
    let expires_at = record.expires_at;
    core.auth()
        .codes
        .insert(code.clone(), record, expires_at, now);
    let session_state = crate::state::new_guid().to_string();
    let mut params = vec![("code", code.as_str())];
    if let Some(id_token) = &id_token {
        params.push(("id_token", id_token.as_str()));
    }
    if let Some(state) = &request.state {
        params.push(("state", state.as_str()));
    }
    params.push(("session_state", session_state.as_str()));
    to_client(&request.redirect_uri, request.response_mode, &params)
}

#[cfg(test)]
mod tests;
