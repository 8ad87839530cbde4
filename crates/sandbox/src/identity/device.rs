//! Device authorization: `POST /{tenant}/oauth2/v2.0/devicecode` (and v1), and the device-login
//! page (`/devicelogin`, the `verification_uri`) where the user enters the code, signs in and
//! approves or declines.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::directory::TenantSegment;
use crate::identity::errors::{self, AadError, no_store};
use crate::identity::pages::{self, FLOW_SECONDS};
use crate::identity::store::{
    DeviceCode, DeviceState, Flow, FlowPurpose, Step, normalize_user_code,
};
use crate::identity::{Params, html_escape, scope, token};
use crate::state::{Core, RequestInfo, random_token};

/// Alphabet of user codes (no 0/O/1/I look-alikes).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// `POST /{tenant}/oauth2/v2.0/devicecode` (`V1 = false`) and `POST /{tenant}/oauth2/devicecode`
/// (`V1 = true`).
pub(crate) async fn devicecode<const V1: bool>(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    match issue(&core, &info, &tenant, &Params::parse(&body), V1) {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.in_context(&info).into_response(),
    }
}

fn user_code() -> String {
    let mut bytes = [0u8; 9];
    crate::state::random_fill(&mut bytes);
    bytes
        .iter()
        .map(|b| USER_CODE_ALPHABET[*b as usize % USER_CODE_ALPHABET.len()] as char)
        .collect()
}

fn issue(
    core: &Core,
    info: &RequestInfo,
    segment_text: &str,
    params: &Params,
    v1: bool,
) -> Result<serde_json::Value, AadError> {
    let segment = core.segment(segment_text)?;
    let client_id = params.require("client_id")?;
    let client = core.client(segment, client_id)?;
    let label = match segment {
        TenantSegment::Tenant(t) => core.tenant_label(t),
        _ => segment_text.to_owned(),
    };
    let (name, requested) = if v1 {
        (
            "resource",
            params
                .require("resource")
                .map(|r| scope::parse_resource(info.cloud, r))?,
        )
    } else {
        if params.get("resource").is_some() {
            return Err(errors::v1_resource_on_v2());
        }
        (
            "scope",
            params
                .require("scope")
                .map(|s| scope::parse_scope(info.cloud, s))?,
        )
    };
    let requested = requested.map_err(|e| token::scope_error(e, &label))?;
    if requested.resource.is_none() {
        return Err(errors::invalid_scope(params.get(name).unwrap_or_default()));
    }
    let now = core.identity_now();
    let lifetimes = &core.seed.lifetimes;
    let device_code = format!("DAQABAAEAAA{}", random_token(96));
    core.issued(&device_code);
    let code = user_code();
    let record = DeviceCode {
        client_id: client.client_id,
        segment,
        cloud: info.cloud,
        requested,
        user_code: code.clone(),
        expires_at: now + lifetimes.device_code_seconds as i64,
        state: DeviceState::Pending,
    };
    core.auth()
        .insert_device_code(device_code.clone(), record, now);
    let uri = format!("{}/devicelogin", core.cloud_base(info.cloud));
    let message = format!(
        "To sign in, use a web browser to open the page {uri} and enter the code {code} to authenticate."
    );
    let (expires, interval) = (
        lifetimes.device_code_seconds,
        lifetimes.device_code_interval_seconds,
    );
    Ok(if v1 {
        json!({"user_code": code, "device_code": device_code, "verification_url": uri,
               "expires_in": expires.to_string(), "interval": interval.to_string(), "message": message})
    } else {
        json!({"user_code": code, "device_code": device_code, "verification_uri": uri,
               "expires_in": expires, "interval": interval, "message": message})
    })
}

fn code_page(core: &Core, info: &RequestInfo, error: Option<&str>) -> String {
    let action = format!("{}/devicelogin", core.cloud_base(info.cloud));
    let error = error.map_or_else(String::new, |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>\n",
            html_escape(e)
        )
    });
    pages::page(
        "Enter code",
        &format!(
            "<p>Enter the code displayed on your app or device.</p>\n{error}<form method=\"post\" action=\"{}\">\n<label for=\"otc\">Code</label>\n<input id=\"otc\" name=\"otc\" type=\"text\" autocomplete=\"off\" autocapitalize=\"characters\" required>\n<button type=\"submit\">Next</button>\n</form>\n",
            html_escape(&action)
        ),
    )
}

/// `GET /devicelogin`.
pub(crate) async fn page(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
) -> Response {
    Html(code_page(&core, &info, None)).into_response()
}

/// `POST /devicelogin`: checks the user code and starts the sign-in flow.
pub(crate) async fn enter_code(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let now = core.identity_now();
    let typed = normalize_user_code(params.get("otc").unwrap_or_default());
    let store = core.auth();
    let found = store
        .user_codes
        .get(&typed)
        .and_then(|dc| store.device_codes.get(dc).map(|d| (dc.clone(), d)))
        .filter(|(_, d)| {
            d.state == DeviceState::Pending && d.expires_at > now && d.cloud == info.cloud
        })
        .map(|(dc, d)| (dc, d.segment));
    let Some((device_code, segment)) = found else {
        drop(store);
        // AADSTS90119 InvalidUserCode.
        let page = code_page(
            &core,
            &info,
            Some(
                "That code didn't work. Check the code and try again. (AADSTS90119: The user code is invalid or has expired.)",
            ),
        );
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    };
    let segment_text = match segment {
        TenantSegment::Tenant(t) => core.directory.tenants[t].seed.id.to_string(),
        TenantSegment::Organizations => "organizations".to_owned(),
        TenantSegment::Common | TenantSegment::Consumers => "common".to_owned(),
    };
    let id = random_token(24);
    let flow = Flow {
        purpose: FlowPurpose::Device { device_code },
        cloud: info.cloud,
        segment,
        segment_text,
        login_hint: None,
        step: Step::Username,
        expires_at: now + FLOW_SECONDS,
    };
    drop(store);
    let response = pages::render_step(&core, &id, &flow, None);
    let expires_at = flow.expires_at;
    core.auth().flows.insert(id, flow, expires_at, now);
    response
}
