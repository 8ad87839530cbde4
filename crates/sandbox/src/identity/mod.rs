//! The Microsoft identity platform emulation: OAuth 2.0 / OpenID Connect endpoints (v2 and v1),
//! discovery, the sign-in and device-login pages.
//!
//! Paths (after the cloud prefix, see `cloud.rs`):
//!
//! | Path | |
//! |---|---|
//! | `GET /{tenant}/oauth2/v2.0/authorize`, `GET /{tenant}/oauth2/authorize` | sign-in page → redirect with a code |
//! | `POST /{tenant}/login` | the sign-in pages' form target |
//! | `POST /{tenant}/oauth2/v2.0/token`, `POST /{tenant}/oauth2/token` | token endpoint (v2 / v1) |
//! | `POST /{tenant}/oauth2/v2.0/devicecode`, `POST /{tenant}/oauth2/devicecode` | device authorization |
//! | `GET/POST /devicelogin` | device-login page (the `verification_uri`) |
//! | `GET /{tenant}/v2.0/.well-known/openid-configuration`, `GET /{tenant}/.well-known/openid-configuration` | discovery |
//! | `GET /{tenant}/discovery/v2.0/keys`, `GET /{tenant}/discovery/keys` | JWKS |
//! | `GET /common/discovery/instance` | instance discovery |
//! | `GET /common/userrealm/{username}` | user realm discovery |
//! | `GET /{tenant}/oauth2/v2.0/logout` | sign-out page |
//!
//! `{tenant}` is `common`, `organizations`, `consumers`, a tenant id or any of its domains.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::directory::{Client, TenantLookupError, TenantSegment};
use crate::faults::Service;
use crate::state::{Core, RequestInfo};

pub(crate) mod assertion;
mod authorize;
pub(crate) mod credentials;
mod device;
mod discovery;
pub(crate) mod errors;
pub(crate) mod issue;
mod pages;
pub(crate) mod scope;
pub(crate) mod store;
mod token;

use errors::AadError;

/// The `V1` argument of the handlers shared by both endpoint versions: resource-based v1.
const V1: bool = true;
/// … and scope-based v2.
const V2: bool = false;

/// The identity routes.
pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize_get::<V2>).post(authorize::authorize_post),
        )
        .route(
            "/{tenant}/oauth2/authorize",
            get(authorize::authorize_get::<V1>),
        )
        .route("/{tenant}/login", post(pages::login))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token::<V2>))
        .route("/{tenant}/oauth2/token", post(token::token::<V1>))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(device::devicecode::<V2>),
        )
        .route(
            "/{tenant}/oauth2/devicecode",
            post(device::devicecode::<V1>),
        )
        .route("/devicelogin", get(device::page).post(device::enter_code))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
        .route("/{tenant}/discovery/{what}", get(discovery::discovery_v1))
        .route("/{tenant}/userrealm/{username}", get(discovery::user_realm))
        .route("/{tenant}/oauth2/v2.0/logout", get(pages::logout))
        .route("/{tenant}/oauth2/logout", get(pages::logout))
}

/// Form or query parameters (first occurrence wins, like the service).
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes; anything unparsable is just absent.
    pub fn parse(bytes: &[u8]) -> Params {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(bytes) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Params(map)
    }

    /// A non-empty parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter (AADSTS900144 when missing).
    pub fn require(&self, name: &str) -> Result<&str, AadError> {
        self.get(name)
            .ok_or_else(|| errors::missing_parameter(name))
    }
}

impl Core {
    /// Resolves a `{tenant}` segment or returns the real error.
    pub(crate) fn segment(&self, segment: &str) -> Result<TenantSegment, AadError> {
        self.directory.segment(segment).map_err(|e| match e {
            TenantLookupError::NotFound => errors::tenant_not_found(segment),
            TenantLookupError::Invalid => errors::tenant_invalid(segment),
        })
    }

    /// The identity service's clock.
    pub(crate) fn identity_now(&self) -> i64 {
        crate::clock::unix_now()
    }

    /// The shift of token timestamps for this request (clock-skew faults; counted once per
    /// call, so call it once per token request).
    pub(crate) fn mint_skew(&self, info: &RequestInfo) -> i64 {
        self.faults.clock_skew(Service::Identity, info.tenant)
    }

    /// The client `client_id` as seen from `segment`: in that tenant, or — for `common` and
    /// `organizations` — in any tenant (multi-tenant apps). AADSTS700016 otherwise.
    pub(crate) fn client(
        &self,
        segment: TenantSegment,
        client_id: &str,
    ) -> Result<&Client, AadError> {
        let found = match segment {
            TenantSegment::Tenant(t) => self.directory.tenants[t].client(client_id),
            TenantSegment::Common | TenantSegment::Organizations => self
                .directory
                .tenants
                .iter()
                .find_map(|t| t.client(client_id)),
            TenantSegment::Consumers => None,
        };
        found.ok_or_else(|| {
            let directory = match segment {
                TenantSegment::Tenant(t) => self.tenant_label(t),
                // UNVERIFIED: the directory named for /consumers.
                _ => crate::directory::CONSUMERS_TENANT_ID.to_owned(),
            };
            errors::unknown_client(client_id, &directory)
        })
    }

    /// A tenant's name for error messages.
    pub(crate) fn tenant_label(&self, tenant: usize) -> String {
        self.directory.tenants[tenant].seed.id.to_string()
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
