//! AADSTS error bodies (`docs/identity-platform.md`, "Error bodies") and the catalogue of the errors the sandbox
//! returns.
//!
//! Body: `error`, `error_description` = `AADSTSnnnnn: text\r\nTrace ID: …\r\nCorrelation ID:
//! …\r\nTimestamp: YYYY-MM-DD hh:mm:ssZ`, `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id`, `error_uri`, and `suberror` where it applies. Status 400, except 401 for
//! `invalid_client` (observed for 7000215/7000222; assumed for the other credential errors).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::clock;
use crate::cloud::Cloud;
use crate::state::{RequestInfo, new_guid};

/// An identity-platform error.
#[derive(Debug, Clone)]
pub(crate) struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub suberror: Option<&'static str>,
    pub correlation_id: Option<String>,
    /// The cloud answering (its authority host is in `error_uri`).
    pub cloud: Cloud,
}

impl AadError {
    pub fn new(error: &'static str, code: u32, message: impl Into<String>) -> AadError {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        AadError {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
            correlation_id: None,
            cloud: Cloud::Global,
        }
    }

    pub fn suberror(mut self, suberror: &'static str) -> AadError {
        self.suberror = Some(suberror);
        self
    }

    pub fn status(mut self, status: StatusCode) -> AadError {
        self.status = status;
        self
    }

    /// Places the error in its request: the caller's `client-request-id` becomes the
    /// correlation id (like the real service) and `error_uri` names the request's cloud.
    pub fn in_context(mut self, info: &RequestInfo) -> AadError {
        if self.correlation_id.is_none() {
            self.correlation_id = info.client_request_id.clone();
        }
        self.cloud = info.cloud;
        self
    }

    /// `AADSTSnnnnn: message` (what pages show).
    pub fn headline(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.message)
    }

    pub fn body(&self) -> Value {
        let trace_id = new_guid().to_string();
        let correlation_id = self
            .correlation_id
            .clone()
            .unwrap_or_else(|| new_guid().to_string());
        let timestamp = clock::aad_timestamp(clock::unix_now());
        let mut body = json!({
            "error": self.error,
            "error_description": format!(
                "{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.headline()
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            // UNVERIFIED for the national clouds: their authority host in the same URL shape.
            "error_uri": format!("https://{}/error?code={}", self.cloud.authority_host(), self.code),
        });
        if let Some(suberror) = self.suberror {
            body["suberror"] = json!(suberror);
        }
        body
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        no_store(&mut response);
        response
    }
}

/// `Cache-Control: no-store, no-cache` + `Pragma: no-cache`, as on every token response.
pub(crate) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

// The catalogue. Texts follow captured responses where the reference has them; the rest are
// the documented meanings of the codes, worded like the service words them.

pub(crate) fn missing_parameter(name: &str) -> AadError {
    AadError::new(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

pub(crate) fn tenant_not_found(segment: &str) -> AadError {
    AadError::new(
        "invalid_request",
        90002,
        format!(
            "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

pub(crate) fn tenant_invalid(segment: &str) -> AadError {
    AadError::new(
        "invalid_request",
        900023,
        format!(
            "Specified tenant identifier '{segment}' is neither a valid DNS name, nor a valid external domain."
        ),
    )
}

pub(crate) fn unknown_client(client_id: &str, directory: &str) -> AadError {
    AadError::new(
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    )
}

/// An app-only request to `/common` or `/organizations`: those name no tenant, and app-only
/// tokens are always for one tenant. The real service answers AADSTS50059 when it cannot infer
/// a tenant (observed in public reports); it never tells the caller to use `/organizations`.
pub(crate) fn no_tenant_identified() -> AadError {
    AadError::new(
        "invalid_request",
        50059,
        "No tenant-identifying information found in either the request or implied by any provided credentials.",
    )
}

/// The password grant over `/common` or `/consumers` (documented for ROPC).
pub(crate) fn not_on_common(grant: &str) -> AadError {
    AadError::new(
        "invalid_request",
        9001023,
        format!(
            "The grant type '{grant}' isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."
        ),
    )
}

pub(crate) fn invalid_scope_default(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        1002012,
        format!(
            "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
        ),
    )
}

pub(crate) fn invalid_scope(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        70011,
        format!(
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    )
}

pub(crate) fn resource_not_found(resource: &str, tenant: &str) -> AadError {
    AadError::new(
        "invalid_resource",
        500011,
        format!(
            "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        ),
    )
}

pub(crate) fn multiple_resources() -> AadError {
    AadError::new(
        "invalid_scope",
        700022,
        "The provided value for the input parameter scope isn't valid because it contains more than one resource.",
    )
}

pub(crate) fn v1_resource_on_v2() -> AadError {
    AadError::new(
        "invalid_request",
        901002,
        "The 'resource' request parameter isn't supported.",
    )
}

pub(crate) fn invalid_grant_malformed() -> AadError {
    // Observed for garbage refresh tokens; the reference also lists 70000 for this case.
    AadError::new(
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid.",
    )
}

pub(crate) fn expired_grant() -> AadError {
    AadError::new(
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    )
}

pub(crate) fn revoked_grant(issued: i64, valid_from: i64) -> AadError {
    AadError::new(
        "invalid_grant",
        50173,
        format!(
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
            clock::iso(issued),
            clock::iso(valid_from)
        ),
    )
}

pub(crate) fn mfa_required(resource_app_id: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        50076,
        format!(
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{resource_app_id}'."
        ),
    )
    .suberror("basic_action")
}

pub(crate) fn public_client_credential() -> AadError {
    AadError::new(
        "invalid_client",
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    )
}

pub(crate) fn credential_required() -> AadError {
    AadError::new(
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

pub(crate) fn bad_secret(client_id: &str) -> AadError {
    AadError::new(
        "invalid_client",
        7000215,
        format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
    )
}

pub(crate) fn assertion_signature(reason: &str, thumbprint: &str, client_id: &str) -> AadError {
    AadError::new(
        "invalid_client",
        700027,
        format!(
            "Client assertion failed signature validation. [Reason - {reason}, Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
        ),
    )
}

pub(crate) fn assertion_time_range(now: i64, nbf: Option<i64>, exp: Option<i64>) -> AadError {
    let show = |t: Option<i64>| t.map_or_else(|| "(none)".to_owned(), clock::aad_timestamp);
    AadError::new(
        "invalid_client",
        700024,
        format!(
            "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            clock::aad_timestamp(now),
            show(nbf),
            show(exp)
        ),
    )
}

pub(crate) fn assertion_malformed(reason: &str) -> AadError {
    // The service answers malformed assertions with 50027 (JWT invalid or malformed).
    AadError::new(
        "invalid_client",
        50027,
        format!("JWT token is invalid or malformed. [Reason - {reason}]"),
    )
}

pub(crate) fn assertion_client_mismatch() -> AadError {
    AadError::new(
        "invalid_client",
        700021,
        "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )
}

pub(crate) fn no_federated_match(issuer: &str, subject: &str) -> AadError {
    // `error` is `invalid_request` per one fixture (UNVERIFIED). Newer service versions split
    // this into 700211/700212/700213 (issuer/audience/subject); the reference documents 70021.
    AadError::new(
        "invalid_request",
        70021,
        format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'."
        ),
    )
}
