//! The token endpoint: `authorization_code` (+PKCE), `refresh_token`, device code, `password`
//! (ROPC) and `client_credentials`, on v2 (`scope`, JSON integers) and v1 (`resource`, JSON
//! strings).
//!
//! v1 differs beyond the parameter names (`docs/identity-platform.md`, "Endpoints and tenants"): every delegated grant
//! returns a refresh token (the v1 discovery document advertises
//! `microsoft_multi_refresh_token: true`), `scope` lists bare permission names, and the ID
//! token is a v1 one (`iss` = `https://sts.windows.net/{tid}/`, `ver` 1.0, `unique_name`/`upn`).
//! `appidacr` in access tokens follows how the client authenticated at this request: 0 none
//! (public client), 1 secret, 2 certificate or federated assertion — for every grant.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::cloud::{Cloud, EXCHANGE_APP_ID};
use crate::directory::{Client, TenantSegment};
use crate::faults::{FaultKind, Point, Service};
use crate::identity::Params;
use crate::identity::assertion::{self, ClientAuth};
use crate::identity::credentials;
use crate::identity::errors::{self, AadError, no_store};
use crate::identity::issue::{self, AppIdentity, TokenResponse};
use crate::identity::scope::{self, Requested, ScopeError};
use crate::identity::store::{Authentication, DeviceState, PkceMethod, RefreshToken};
use crate::jwt::b64url;
use crate::state::{Core, RequestInfo, constant_time_eq};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /{tenant}/oauth2/v2.0/token` (`V1 = false`) and `POST /{tenant}/oauth2/token`
/// (`V1 = true`).
pub(crate) async fn token<const V1: bool>(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let skew = core.mint_skew(&info);
    let request = TokenRequest {
        core: &core,
        info: &info,
        segment: &segment,
        headers: &headers,
        params: Params::parse(&body),
        v1: V1,
        skew,
    };
    match request.run() {
        Ok(tokens) => {
            let mut response = axum::Json(tokens.body(V1)).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.in_context(&info).into_response(),
    }
}

/// A delegated grant that passed its checks: what the response is minted from.
struct Grant<'a> {
    client: &'a Client,
    /// How the client authenticated at this request (`appidacr`).
    auth: ClientAuth,
    /// The user's tenant.
    tenant: usize,
    requested: Requested,
    authn: Authentication,
    nonce: Option<&'a str>,
}

struct TokenRequest<'a> {
    core: &'a Core,
    info: &'a RequestInfo,
    segment: &'a str,
    headers: &'a HeaderMap,
    params: Params,
    v1: bool,
    /// Shift of the minted tokens' timestamps (clock-skew fault).
    skew: i64,
}

impl<'a> TokenRequest<'a> {
    fn run(&self) -> Result<TokenResponse, AadError> {
        let segment = self.core.segment(self.segment)?;
        let grant = self.params.require("grant_type")?;
        if !self.v1 && self.params.get("resource").is_some() {
            return Err(errors::v1_resource_on_v2());
        }
        let now = self.core.identity_now();
        match grant {
            "authorization_code" => self.authorization_code(segment, now),
            "refresh_token" => self.refresh_token(segment, now),
            DEVICE_CODE_GRANT | "device_code" => self.device_code(segment, now),
            "password" => self.password(segment, now),
            "client_credentials" => self.client_credentials(segment, now),
            other => Err(AadError::new(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            )),
        }
    }

    fn cloud(&self) -> Cloud {
        self.info.cloud
    }

    fn client(&self, segment: TenantSegment) -> Result<&'a Client, AadError> {
        self.core.client(segment, self.params.require("client_id")?)
    }

    /// The token endpoint URLs a certificate assertion may name as `aud`.
    fn assertion_audiences(&self, segment: TenantSegment) -> Vec<String> {
        let base = self.core.cloud_base(self.cloud());
        let mut names = vec![self.segment.to_owned()];
        if let TenantSegment::Tenant(t) = segment {
            let tenant = &self.core.directory.tenants[t];
            names.push(tenant.seed.id.to_string());
            names.extend(tenant.domains.iter().cloned());
        }
        names
            .iter()
            .flat_map(|n| {
                [
                    format!("{base}/{n}/oauth2/v2.0/token"),
                    format!("{base}/{n}/oauth2/token"),
                ]
            })
            .collect()
    }

    fn authenticate(
        &self,
        segment: TenantSegment,
        client: &Client,
        now: i64,
    ) -> Result<ClientAuth, AadError> {
        assertion::authenticate(
            self.core,
            now,
            client,
            &self.params,
            self.headers,
            &self.assertion_audiences(segment),
        )
    }

    /// The requested scope (`scope` on v2, `resource` on v1); `None` when absent.
    fn requested(&self, tenant_label: &str) -> Result<Option<Requested>, AadError> {
        let parsed = if self.v1 {
            self.params
                .get("resource")
                .map(|r| scope::parse_resource(self.cloud(), r))
        } else {
            self.params
                .get("scope")
                .map(|s| scope::parse_scope(self.cloud(), s))
        };
        parsed.transpose().map_err(|e| scope_error(e, tenant_label))
    }

    fn require_requested(&self, tenant_label: &str) -> Result<Requested, AadError> {
        let name = if self.v1 { "resource" } else { "scope" };
        let requested = self
            .requested(tenant_label)?
            .ok_or_else(|| errors::missing_parameter(name))?;
        if requested.resource.is_none() {
            // UNVERIFIED deviation: the real service issues a Microsoft Graph token for
            // OIDC-only scopes; the sandbox emulates no Graph.
            return Err(errors::invalid_scope(
                self.params.get(name).unwrap_or_default(),
            ));
        }
        Ok(requested)
    }

    /// Builds the delegated response: access token, refresh token (with `offline_access`, and
    /// always on v1), ID token (with `openid`, and always on v1), `client_info` when asked.
    fn delegated(&self, grant: Grant<'_>, now: i64) -> Result<TokenResponse, AadError> {
        let Grant {
            client,
            auth,
            tenant,
            requested,
            authn,
            nonce,
        } = grant;
        let core = self.core;
        let Some((resource, _)) = requested.resource.clone() else {
            // Every caller checked that a resource was requested; answer like a missing scope.
            return Err(errors::invalid_scope(""));
        };
        let permissions = requested.delegated_permissions();
        let access = issue::user_access_token(
            core,
            now + self.skew,
            resource,
            &issue::Delegated {
                tenant,
                client,
                appidacr: auth.appidacr(),
                authn: &authn,
                permissions: &permissions,
            },
        );
        let refresh_token = (requested.offline_access || self.v1).then(|| {
            let token = issue::refresh_token(core);
            let lifetime = core.seed.lifetimes.refresh_token_seconds as i64;
            let record = RefreshToken {
                client_id: client.client_id,
                tenant,
                cloud: self.cloud(),
                requested: requested.clone(),
                authn,
                issued_at: now,
                last_used: now,
            };
            core.auth()
                .refresh_tokens
                .insert(token.clone(), record, now + lifetime, now);
            token
        });
        let id_token = if self.v1 {
            Some(issue::v1_id_token(
                core,
                self.cloud(),
                now + self.skew,
                tenant,
                &client.client_id,
                &authn,
                nonce,
            ))
        } else {
            requested.openid.then(|| {
                issue::id_token(
                    core,
                    self.cloud(),
                    now + self.skew,
                    tenant,
                    &client.client_id,
                    &authn,
                    nonce,
                )
            })
        };
        let client_info = (self.params.get("client_info") == Some("1"))
            .then(|| issue::client_info(core, authn.user));
        let scope = if self.v1 {
            requested.v1_scope()
        } else {
            requested.response_scope()
        };
        Ok(TokenResponse {
            access,
            resource,
            scope: Some(scope),
            refresh_token,
            id_token,
            client_info,
        })
    }

    /// Whether a grant issued for `tenant` in `cloud` may be redeemed at this request's URL.
    fn same_tenant(&self, segment: TenantSegment, tenant: usize, cloud: Cloud) -> bool {
        !matches!(segment, TenantSegment::Tenant(t) if t != tenant) && cloud == self.cloud()
    }

    fn authorization_code(
        &self,
        segment: TenantSegment,
        now: i64,
    ) -> Result<TokenResponse, AadError> {
        let client = self.client(segment)?;
        let code = self.params.require("code")?;
        let redirect_uri = self.params.require("redirect_uri")?;
        let auth = self.authenticate(segment, client, now)?;
        let mut store = self.core.auth();
        let record = store
            .codes
            .get_mut(code)
            .ok_or_else(errors::invalid_grant_malformed)?;
        if record.redeemed {
            return Err(AadError::new(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if record.expires_at <= now {
            return Err(errors::expired_grant());
        }
        if record.client_id != client.client_id {
            return Err(AadError::new(
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed. The authorization code was issued to another client.",
            ));
        }
        if !self.same_tenant(segment, record.tenant, record.cloud) {
            return Err(other_tenant("Authorization Code"));
        }
        if record.redirect_uri != redirect_uri {
            // UNVERIFIED code: the reference lists 50011 for reply-URL mismatches.
            return Err(AadError::new(
                "invalid_grant",
                50011,
                format!(
                    "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URI used in the authorization request."
                ),
            ));
        }
        if let Some((challenge, method)) = &record.challenge {
            let verifier = self.params.get("code_verifier").unwrap_or_default();
            let computed = match method {
                PkceMethod::Plain => verifier.to_owned(),
                PkceMethod::S256 => b64url(aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    verifier.as_bytes(),
                )),
            };
            if verifier.is_empty() || !constant_time_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(AadError::new(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
        }
        record.redeemed = true;
        let (tenant, requested, authn, nonce) = (
            record.tenant,
            record.requested.clone(),
            record.authn,
            record.nonce.clone(),
        );
        drop(store);
        self.delegated(
            Grant {
                client,
                auth,
                tenant,
                requested,
                authn,
                nonce: nonce.as_deref(),
            },
            now,
        )
    }

    fn refresh_token(&self, segment: TenantSegment, now: i64) -> Result<TokenResponse, AadError> {
        let client = self.client(segment)?;
        let token = self.params.require("refresh_token")?;
        let auth = self.authenticate(segment, client, now)?;
        let (tenant, requested_before, authn) = {
            let mut store = self.core.auth();
            let valid_from = |oid| store.tokens_valid_from.get(&oid).copied();
            let record = store
                .refresh_tokens
                .get(token)
                .ok_or_else(errors::invalid_grant_malformed)?;
            let oid = self.core.directory.user(record.authn.user).object_id;
            if let Some(from) = valid_from(oid).filter(|from| *from > record.issued_at) {
                return Err(errors::revoked_grant(record.issued_at, from));
            }
            let lifetime = self.core.seed.lifetimes.refresh_token_seconds as i64;
            if record.last_used + lifetime <= now {
                return Err(AadError::new(
                    "invalid_grant",
                    700082,
                    format!(
                        "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {lifetime} seconds.",
                        crate::clock::iso(record.issued_at)
                    ),
                ));
            }
            if record.client_id != client.client_id {
                return Err(AadError::new(
                    "invalid_grant",
                    70000,
                    "Provided grant is invalid or malformed. The refresh token was issued to another client.",
                ));
            }
            if !self.same_tenant(segment, record.tenant, record.cloud) {
                return Err(other_tenant("grant"));
            }
            let out = (record.tenant, record.requested.clone(), record.authn);
            if let Some(r) = store.refresh_tokens.get_mut(token) {
                r.last_used = now;
            }
            store.refresh_tokens.reschedule(token, now + lifetime);
            out
        };
        for fault in self
            .core
            .faults
            .fire(Point::RefreshGrant, Service::Identity, self.info.tenant)
        {
            if let FaultKind::RevokeRefreshTokens { aadsts } = fault {
                return Err(if aadsts == 70008 {
                    errors::expired_grant()
                } else {
                    errors::revoked_grant(now - 60, now)
                });
            }
        }
        let tenant_label = self.core.tenant_label(tenant);
        let mut requested = match self.requested(&tenant_label)? {
            Some(r) if r.resource.is_some() => r,
            Some(r) => Requested {
                resource: requested_before.resource.clone(),
                ..r
            },
            None => requested_before.clone(),
        };
        // Refresh tokens stay refresh tokens: the new one carries offline_access forward.
        requested.offline_access = true;
        self.delegated(
            Grant {
                client,
                auth,
                tenant,
                requested,
                authn,
                nonce: None,
            },
            now,
        )
    }

    fn device_code(&self, segment: TenantSegment, now: i64) -> Result<TokenResponse, AadError> {
        let client = self.client(segment)?;
        let code = match self
            .params
            .get("device_code")
            .or_else(|| self.params.get("code"))
        {
            Some(code) => code,
            None => return Err(errors::missing_parameter("device_code")),
        };
        let auth = self.authenticate(segment, client, now)?;
        if !self
            .core
            .faults
            .fire(Point::DevicePoll, Service::Identity, self.info.tenant)
            .is_empty()
        {
            // `slow_down` is not in Microsoft's table (RFC 8628 only): opt-in fault injection.
            // The code is the pending one; clients must act on `error`.
            return Err(AadError::new(
                "slow_down",
                70016,
                "The client is polling too frequently. Increase the polling interval by 5 seconds (sandbox fault injection).",
            ));
        }
        let mut store = self.core.auth();
        let record = store
            .device_codes
            .get_mut(code)
            .filter(|d| d.client_id == client.client_id)
            .ok_or_else(|| {
                AadError::new(
                    "bad_verification_code",
                    70018,
                    "Invalid verification code entered.",
                )
            })?;
        // Bound to where it was issued, like codes and refresh tokens: the issuing tenant (if
        // the device code request named one) and cloud now; the signed-in user's tenant once
        // approved (below). UNVERIFIED: the order of these checks in the real service.
        let issued_here = match record.segment {
            TenantSegment::Tenant(t) => self.same_tenant(segment, t, record.cloud),
            _ => record.cloud == self.cloud(),
        };
        if !issued_here {
            return Err(other_tenant("device code"));
        }
        if record.expires_at <= now {
            // UNVERIFIED: a fixture shows 70020 "…This device code has expired."; the official
            // table has 70019 CodeExpired.
            return Err(AadError::new(
                "expired_token",
                70019,
                "Verification code expired.",
            ));
        }
        let authn = match record.state {
            DeviceState::Pending => {
                return Err(AadError::new(
                    "authorization_pending",
                    70016,
                    "The provided request has not yet been authorized by the user. The user must input their code.",
                ));
            }
            // UNVERIFIED: a fixture shows 65004 (UserDeclinedConsent) for the declined case.
            DeviceState::Declined => {
                return Err(AadError::new(
                    "authorization_declined",
                    65004,
                    "User declined to consent to access the app.",
                ));
            }
            // UNVERIFIED: 90120 InvalidDeviceFlowRequest — "already authorized or declined".
            DeviceState::Redeemed => {
                return Err(AadError::new(
                    "invalid_grant",
                    90120,
                    "The device flow request is invalid: this device code was already redeemed.",
                ));
            }
            DeviceState::Approved(authn) => authn,
        };
        if !self.same_tenant(segment, authn.user.tenant, record.cloud) {
            return Err(other_tenant("device code"));
        }
        record.state = DeviceState::Redeemed;
        let requested = record.requested.clone();
        drop(store);
        self.delegated(
            Grant {
                client,
                auth,
                tenant: authn.user.tenant,
                requested,
                authn,
                nonce: None,
            },
            now,
        )
    }

    fn password(&self, segment: TenantSegment, now: i64) -> Result<TokenResponse, AadError> {
        if matches!(segment, TenantSegment::Common | TenantSegment::Consumers) {
            return Err(errors::not_on_common("password"));
        }
        let client = self.client(segment)?;
        let username = self.params.require("username")?;
        let password = self.params.require("password")?;
        let auth = self.authenticate(segment, client, now)?;
        let user = credentials::lookup_user(self.core, segment, username)?;
        let requested = self.require_requested(&self.core.tenant_label(user.tenant))?;
        credentials::check_password(self.core, user, password)?;
        if self.core.directory.user(user).totp_secret.is_some() {
            return Err(errors::mfa_required(EXCHANGE_APP_ID));
        }
        let authn = Authentication::new(user, false, now);
        self.delegated(
            Grant {
                client,
                auth,
                tenant: user.tenant,
                requested,
                authn,
                nonce: None,
            },
            now,
        )
    }

    fn client_credentials(
        &self,
        segment: TenantSegment,
        now: i64,
    ) -> Result<TokenResponse, AadError> {
        let TenantSegment::Tenant(tenant) = segment else {
            return Err(errors::no_tenant_identified());
        };
        let client = self.client(segment)?;
        if client.public {
            return Err(errors::credential_required());
        }
        let auth = self.authenticate(segment, client, now)?;
        let label = self.core.tenant_label(tenant);
        let resource = if self.v1 {
            let resource = self.params.require("resource")?;
            scope::parse_resource(self.cloud(), resource).map_err(|e| scope_error(e, &label))?
        } else {
            let scope = self.params.require("scope")?;
            let items: Vec<&str> = scope.split_whitespace().collect();
            if let Some(bad) = items.iter().find(|s| !s.ends_with("/.default")) {
                return Err(errors::invalid_scope_default(bad));
            }
            scope::parse_scope(self.cloud(), scope).map_err(|e| scope_error(e, &label))?
        };
        let Some((resource, _)) = resource.resource else {
            return Err(errors::invalid_scope_default(
                self.params.get("scope").unwrap_or_default(),
            ));
        };
        let app = AppIdentity {
            tenant,
            app_id: client.client_id,
            object_id: client.object_id,
            display_name: &client.display_name,
            app_roles: &client.app_roles,
            roles: &client.roles,
            appidacr: auth.appidacr(),
            mirid: None,
        };
        let access = issue::app_access_token(self.core, now + self.skew, resource, &app);
        Ok(TokenResponse {
            access,
            resource,
            scope: None,
            refresh_token: None,
            id_token: None,
            client_info: None,
        })
    }
}

/// AADSTS700005: the grant was issued in another tenant or cloud than this request's.
fn other_tenant(what: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        700005,
        format!("Provided {what} is intended to use against other tenant, thus rejected."),
    )
}

/// Maps a scope parsing failure to the service's error.
pub(crate) fn scope_error(error: ScopeError, tenant_label: &str) -> AadError {
    match error {
        ScopeError::UnknownResource(resource) => {
            errors::resource_not_found(&resource, tenant_label)
        }
        ScopeError::MultipleResources => errors::multiple_resources(),
        ScopeError::UnknownPermission(scope) => errors::invalid_scope(&scope),
    }
}
