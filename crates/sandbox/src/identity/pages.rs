//! The web pages people use: sign-in (username → password → authenticator code) for
//! `/authorize` and the device-login page, plus error and sign-out pages.
//!
//! Plain HTML forms with labels and no script, usable from a real browser and from a test HTTP
//! client. Every form carries the flow id in a hidden `flow` field: it is random and
//! single-purpose, which is the CSRF protection (no cookies are used). Field names follow the
//! real pages: `login`, `passwd`, `otc`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::identity::errors::AadError;
use crate::identity::store::{Authentication, DeviceState, Flow, FlowPurpose, Step};
use crate::identity::{Params, authorize, credentials, html_escape};
use crate::state::{Core, RequestInfo};
use crate::totp;

/// How long a sign-in flow may take.
pub(crate) const FLOW_SECONDS: i64 = 900;

/// A complete page.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}label,input,button{{display:block;font-size:1rem;margin:.4rem 0}}input{{width:100%;padding:.4rem}}button{{padding:.4rem 1.2rem;margin-right:.5rem;display:inline-block}}.error{{color:#a80000}}.note{{color:#555;font-size:.9rem}}</style>\n</head>\n<body>\n<main>\n<p class=\"note\">exo sandbox &mdash; not a Microsoft service</p>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        title = html_escape(title)
    )
}

fn error_paragraph(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>\n",
            html_escape(e)
        )
    })
}

fn form(action: &str, flow: &str, fields: &str, buttons: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"flow\" value=\"{}\">\n{fields}{buttons}</form>\n",
        html_escape(action),
        html_escape(flow)
    )
}

/// The page for the flow's current step, with an optional error message.
pub(crate) fn render_step(core: &Core, id: &str, flow: &Flow, error: Option<&str>) -> Response {
    let action = format!(
        "{}/{}/login",
        core.cloud_base(flow.cloud),
        flow.segment_text
    );
    let err = error_paragraph(error);
    let (title, body) = match flow.step {
        Step::Username => {
            let hint = flow.login_hint.as_deref().unwrap_or_default();
            let fields = format!(
                "<label for=\"login\">Email address</label>\n<input id=\"login\" name=\"login\" type=\"email\" autocomplete=\"username\" required value=\"{}\">\n",
                html_escape(hint)
            );
            (
                "Sign in",
                err + &form(
                    &action,
                    id,
                    &fields,
                    "<button type=\"submit\">Next</button>\n",
                ),
            )
        }
        Step::Password(user) => {
            let upn = &core.directory.user(user).upn;
            let fields = "<label for=\"passwd\">Password</label>\n<input id=\"passwd\" name=\"passwd\" type=\"password\" autocomplete=\"current-password\" required>\n";
            let body = format!(
                "<p id=\"account\">{}</p>\n{err}{}",
                html_escape(upn),
                form(
                    &action,
                    id,
                    fields,
                    "<button type=\"submit\">Sign in</button>\n"
                )
            );
            ("Enter password", body)
        }
        Step::Mfa(_) => {
            let fields = "<label for=\"otc\">Code from your authenticator app</label>\n<input id=\"otc\" name=\"otc\" type=\"text\" inputmode=\"numeric\" pattern=\"[0-9]{6}\" autocomplete=\"one-time-code\" required>\n";
            let body = format!(
                "<p>Enter the 6-digit code displayed in the authenticator app on your mobile device.</p>\n{err}{}",
                form(
                    &action,
                    id,
                    fields,
                    "<button type=\"submit\">Verify</button>\n"
                )
            );
            ("Enter code", body)
        }
        Step::Approve(authn) => {
            let app = match &flow.purpose {
                FlowPurpose::Device { device_code } => core
                    .auth()
                    .device_codes
                    .get(device_code)
                    .and_then(|d| {
                        core.directory
                            .tenants
                            .iter()
                            .find_map(|t| t.client(&d.client_id.to_string()))
                    })
                    .map_or_else(|| "the application".to_owned(), |c| c.display_name.clone()),
                FlowPurpose::Authorize(_) => "the application".to_owned(),
            };
            let upn = &core.directory.user(authn.user).upn;
            let body = format!(
                "<p>Are you trying to sign in to <strong>{}</strong> as <strong>{}</strong>?</p>\n<p>Only continue if you downloaded the app from a store or website that you trust.</p>\n{err}{}",
                html_escape(&app),
                html_escape(upn),
                form(
                    &action,
                    id,
                    "",
                    "<button type=\"submit\" name=\"decision\" value=\"approve\">Continue</button>\n<button type=\"submit\" name=\"decision\" value=\"decline\">Cancel</button>\n"
                )
            );
            ("Are you trying to sign in?", body)
        }
        Step::Done => (
            "Signed in",
            "<p>You can close this window.</p>\n".to_owned(),
        ),
        Step::Declined => (
            "Sign-in declined",
            "<p>You declined to sign in to the application on your device. You can close this \
             window.</p>\n"
                .to_owned(),
        ),
    };
    Html(page(title, &body)).into_response()
}

/// An error page (for errors that can't go back to the client).
pub(crate) fn error_page(_core: &Core, info: &RequestInfo, e: &AadError) -> Response {
    let e = e.clone().in_context(info);
    let body = e.body();
    let details = format!(
        "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>\n<p class=\"note\">Correlation ID: {}<br>Timestamp: {}</p>\n",
        html_escape(&e.headline()),
        html_escape(body["correlation_id"].as_str().unwrap_or_default()),
        html_escape(body["timestamp"].as_str().unwrap_or_default())
    );
    (
        e.status,
        Html(page(
            "Sorry, but we're having trouble signing you in.",
            &details,
        )),
    )
        .into_response()
}

/// `POST /{tenant}/login`: advances a flow by one step.
pub(crate) async fn login(
    State(core): State<Arc<Core>>,
    Path(_tenant): Path<String>,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let now = core.identity_now();
    let Some(id) = params.get("flow").map(str::to_owned) else {
        return expired_flow();
    };
    let Some(mut flow) = core.auth().flows.remove(&id).filter(|f| f.expires_at > now) else {
        return expired_flow();
    };
    let message = match advance(&core, &mut flow, &params, now) {
        Outcome::Finished(authn) => {
            if let FlowPurpose::Authorize(request) = &flow.purpose {
                return authorize::complete(&core, request, flow.cloud, authn, now);
            }
            None
        }
        Outcome::Next => None,
        Outcome::Stay(message) => Some(message),
    };
    let response = render_step(&core, &id, &flow, message.as_deref());
    if !matches!(flow.step, Step::Done | Step::Declined) {
        let expires_at = flow.expires_at;
        core.auth().flows.insert(id, flow, expires_at, now);
    }
    response
}

/// What one form submission did.
enum Outcome {
    /// Same step again, with this error message.
    Stay(String),
    /// Moved to the next step.
    Next,
    /// An authorization flow finished; the client gets its code.
    Finished(Authentication),
}

/// Applies one form submission.
fn advance(core: &Core, flow: &mut Flow, params: &Params, now: i64) -> Outcome {
    match flow.step {
        Step::Username => {
            let Some(login) = params.get("login") else {
                return Outcome::Stay("Enter a valid email address.".into());
            };
            flow.login_hint = Some(login.to_owned());
            match credentials::lookup_user(core, flow.segment, login) {
                Ok(user) => {
                    flow.step = Step::Password(user);
                    Outcome::Next
                }
                Err(e) => Outcome::Stay(format!(
                    "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin. ({})",
                    e.headline()
                )),
            }
        }
        Step::Password(user) => {
            let password = params.get("passwd").unwrap_or_default();
            if let Err(e) = credentials::check_password(core, user, password) {
                let friendly = if e.code == 50126 {
                    "Your account or password is incorrect. "
                } else {
                    ""
                };
                return Outcome::Stay(format!("{friendly}{}", e.headline()));
            }
            if core.directory.user(user).totp_secret.is_some() {
                flow.step = Step::Mfa(user);
                return Outcome::Next;
            }
            finish(flow, Authentication::new(user, false, now))
        }
        Step::Mfa(user) => {
            let secret = core
                .directory
                .user(user)
                .totp_secret
                .clone()
                .unwrap_or_default();
            let code = params.get("otc").unwrap_or_default();
            if !totp::verify(&secret, code, crate::clock::unix_now().max(0) as u64) {
                return Outcome::Stay(
                    "You didn't enter the expected verification code. Please try again.".into(),
                );
            }
            finish(flow, Authentication::new(user, true, now))
        }
        Step::Approve(authn) => {
            let FlowPurpose::Device { device_code } = &flow.purpose else {
                return Outcome::Next;
            };
            let decision = match params.get("decision") {
                Some("approve") => DeviceState::Approved(authn),
                Some("decline") => DeviceState::Declined,
                _ => return Outcome::Stay("Choose Continue or Cancel.".into()),
            };
            let mut store = core.auth();
            match store.device_codes.get_mut(device_code) {
                Some(record) if record.state == DeviceState::Pending && record.expires_at > now => {
                    flow.step = if decision == DeviceState::Declined {
                        Step::Declined
                    } else {
                        Step::Done
                    };
                    record.state = decision;
                    Outcome::Next
                }
                _ => Outcome::Stay(
                    "This code has expired or was already used. Start again on your device.".into(),
                ),
            }
        }
        Step::Done | Step::Declined => Outcome::Next,
    }
}

/// Credentials are done: authorization flows finish, device flows ask for approval.
fn finish(flow: &mut Flow, authn: Authentication) -> Outcome {
    match flow.purpose {
        FlowPurpose::Authorize(_) => {
            flow.step = Step::Done;
            Outcome::Finished(authn)
        }
        FlowPurpose::Device { .. } => {
            flow.step = Step::Approve(authn);
            Outcome::Next
        }
    }
}

fn expired_flow() -> Response {
    let body = "<p class=\"error\" role=\"alert\" id=\"error\">Your sign-in session has expired or is unknown. Go back to the application and sign in again.</p>\n";
    (
        StatusCode::BAD_REQUEST,
        Html(page("Sign-in session expired", body)),
    )
        .into_response()
}

/// `GET /{tenant}/oauth2/v2.0/logout`.
pub(crate) async fn logout() -> Response {
    Html(page(
        "You signed out of your account",
        "<p>It's a good idea to close all browser windows.</p>\n",
    ))
    .into_response()
}
