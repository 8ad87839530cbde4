//! The sandbox's own admin endpoints (HTTPS listener, loopback only, never faulted):
//!
//! | Request | |
//! |---|---|
//! | `GET /_sandbox/faults` | the fault rules with their counters |
//! | `POST /_sandbox/faults` | add a rule (JSON, see `faults.rs`); answers `{"id":N}` |
//! | `DELETE /_sandbox/faults` | remove every rule |
//! | `DELETE /_sandbox/faults/{id}` | remove one rule |
//! | `GET /_sandbox/requests` | the request log (redacted) |
//! | `DELETE /_sandbox/requests` | clear the request log |
//! | `POST /_sandbox/users/{upn}/revoke` | revoke the user's refresh tokens (like a password reset: AADSTS50173 afterwards) |
//! | `POST /_sandbox/federated-token` | mint an external OIDC token from the test issuer: JSON or form `subject`, optional `audience` (default `api://AzureADTokenExchange`), `lifetime_seconds` (default 3600) → `{"token":…}` |
//! | `GET /_sandbox/federation/.well-known/openid-configuration`, `GET /_sandbox/federation/keys` | the test issuer's discovery document and JWKS |
//! | `GET /_sandbox/info` | the discovery information (`sandbox.json`'s content) |
//!
//! These endpoints are unauthenticated: anyone who can reach the loopback port — any local
//! user of the machine — can add faults, read the (redacted) request log, revoke sessions,
//! mint federated test tokens and read `identity_header` from `/_sandbox/info`. That is fine
//! for a test tenant on a developer's or CI machine, not on a shared one.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use crate::faults::FaultRule;
use crate::identity::Params;
use crate::identity::assertion::sandbox_issuer;
use crate::seed::FEDERATION_AUDIENCE;
use crate::state::{Core, random_token};

pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route(
            "/_sandbox/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sandbox/faults/{id}", delete(remove_fault))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/users/{upn}/revoke", post(revoke))
        .route("/_sandbox/federated-token", post(federated_token))
        .route(
            "/_sandbox/federation/.well-known/openid-configuration",
            get(federation_discovery),
        )
        .route("/_sandbox/federation/keys", get(federation_keys))
        .route("/_sandbox/info", get(info))
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

async fn list_faults(State(core): State<Arc<Core>>) -> Response {
    axum::Json(core.faults.list()).into_response()
}

async fn add_fault(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let rule: FaultRule = match serde_json::from_slice(&body) {
        Ok(rule) => rule,
        Err(e) => return bad_request(format!("invalid fault rule: {e}")),
    };
    match core.faults.add(rule) {
        Ok(id) => (StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn clear_faults(State(core): State<Arc<Core>>) -> Response {
    core.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(core): State<Arc<Core>>, Path(id): Path<String>) -> Response {
    match id.parse() {
        Ok(id) if core.faults.remove(id) => StatusCode::NO_CONTENT.into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no fault rule {id}")})),
        )
            .into_response(),
    }
}

async fn requests(State(core): State<Arc<Core>>) -> Response {
    axum::Json(core.log.snapshot()).into_response()
}

async fn clear_requests(State(core): State<Arc<Core>>) -> Response {
    core.log.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn revoke(State(core): State<Arc<Core>>, Path(upn): Path<String>) -> Response {
    match core.revoke_user_sessions(&upn) {
        true => StatusCode::NO_CONTENT.into_response(),
        false => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no user {upn}")})),
        )
            .into_response(),
    }
}

impl Core {
    /// Sets the user's TokensValidFrom to now: their refresh tokens stop working (AADSTS50173).
    pub(crate) fn revoke_user_sessions(&self, upn: &str) -> bool {
        let Some(user) = self.directory.user_by_upn(upn) else {
            return false;
        };
        let oid = self.directory.user(user).object_id;
        // Refresh tokens issued in this very second are revoked too.
        self.auth()
            .tokens_valid_from
            .insert(oid, crate::clock::unix_now() + 1);
        true
    }

    /// Mints a token of the test OIDC issuer (workload identity federation tests).
    pub(crate) fn federated_token(&self, subject: &str, audience: &str, lifetime: i64) -> String {
        let key = &self.keys.federation_signing;
        let now = crate::clock::unix_now();
        let claims = json!({
            "iss": sandbox_issuer(self), "sub": subject, "aud": audience,
            "iat": now, "nbf": now, "exp": now + lifetime, "jti": random_token(16),
        });
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
        let token = key.sign(&header, &claims);
        self.issued(&token);
        token
    }
}

async fn federated_token(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let (subject, audience, lifetime) = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => (
            v.get("subject").and_then(|s| s.as_str()).map(str::to_owned),
            v.get("audience")
                .and_then(|s| s.as_str())
                .map(str::to_owned),
            v.get("lifetime_seconds")
                .and_then(serde_json::Value::as_i64),
        ),
        Err(_) => {
            let p = Params::parse(&body);
            (
                p.get("subject").map(str::to_owned),
                p.get("audience").map(str::to_owned),
                p.get("lifetime_seconds").and_then(|l| l.parse().ok()),
            )
        }
    };
    let Some(subject) = subject else {
        return bad_request("'subject' is required".into());
    };
    let token = core.federated_token(
        &subject,
        audience.as_deref().unwrap_or(FEDERATION_AUDIENCE),
        lifetime.unwrap_or(3600),
    );
    axum::Json(json!({"token": token})).into_response()
}

async fn federation_discovery(State(core): State<Arc<Core>>) -> Response {
    let issuer = sandbox_issuer(&core);
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/keys"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn federation_keys(State(core): State<Arc<Core>>) -> Response {
    axum::Json(json!({"keys": [core.keys.federation_signing.jwk]})).into_response()
}

async fn info(State(core): State<Arc<Core>>) -> Response {
    axum::Json(core.discovery_info()).into_response()
}
