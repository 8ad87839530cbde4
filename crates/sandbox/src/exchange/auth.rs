//! Exchange's side of a token: signature, issuer, audience of the cloud, lifetime, tenant,
//! and authorization (delegated `scp` + an admin role in `wids`; app-only `roles` ∋
//! Exchange.ManageAsApp + an admin role; partner access through a delegation; users with
//! Exchange Online PowerShell disabled are refused).

use axum::http::{HeaderMap, StatusCode};
use uuid::Uuid;

use crate::cloud::{Cloud, EXCHANGE_APP_ID};
use crate::directory::UserRef;
use crate::exchange::errors::ExoError;
use crate::faults::Service;
use crate::identity::scope::ADMIN_API_SCOPE;
use crate::jwt::{self, Alg};
use crate::seed::{MANAGE_AS_APP_ROLE, Role};
use crate::state::{Core, RequestInfo};

/// An authenticated, authorized caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The organization acted on.
    pub tenant: usize,
    /// UPN or app id, for messages.
    pub principal: String,
    /// Effective roles in the organization.
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn can_write(&self) -> bool {
        self.roles.iter().any(|r| r.can_write())
    }

    pub fn can_configure_organization(&self) -> bool {
        self.roles.iter().any(|r| r.can_configure_organization())
    }

    /// A stable key for per-user limits (legacy sessions).
    pub fn key(&self) -> String {
        self.principal.to_ascii_lowercase()
    }
}

/// A 401 with the `WWW-Authenticate: Bearer …` challenge Exchange Online sends
/// (the header's parameters follow EWS's challenge; UNVERIFIED for the admin API).
pub(crate) fn unauthorized(core: &Core, cloud: Cloud, description: &str) -> ExoError {
    ExoError::new(
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        "Microsoft.Exchange.Security.Authentication.BackendRehydrationException",
        format!("Authentication failed: {description}"),
    )
    .challenge(format!(
        "Bearer client_id=\"{EXCHANGE_APP_ID}\", trusted_issuers=\"00000001-0000-0000-c000-000000000000@*\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", authorization_uri=\"{}/common/oauth2/authorize\", error=\"invalid_token\", error_description=\"{}\"",
        core.cloud_base(cloud),
        description.replace('"', "'")
    ))
}

fn forbidden(message: String) -> ExoError {
    ExoError::new(
        StatusCode::FORBIDDEN,
        "PermissionDenied",
        "Microsoft.Exchange.Security.Authorization.UnauthorizedAccessException",
        message,
    )
}

/// Validates the bearer token of a request for organization `org` (GUID or domain).
pub(crate) fn authenticate(
    core: &Core,
    info: &RequestInfo,
    org: &str,
    headers: &HeaderMap,
) -> Result<Caller, ExoError> {
    let cloud = info.cloud;
    let Some(token) = crate::http_auth::credentials(headers, "bearer") else {
        return Err(unauthorized(
            core,
            cloud,
            "The request has no bearer token.",
        ));
    };
    validate_token(core, info, org, token)
}

/// Validates a raw access token (also used by the legacy endpoint's BasicAuthToOAuthConversion).
pub(crate) fn validate_token(
    core: &Core,
    info: &RequestInfo,
    org: &str,
    token: &str,
) -> Result<Caller, ExoError> {
    let cloud = info.cloud;
    let fail = |why: &str| unauthorized(core, cloud, why);
    let decoded = jwt::decode(token).map_err(|_| fail("The token is malformed."))?;
    let key = &core.keys.token_signing;
    let signed = decoded.alg() == Some(Alg::Rs256)
        && decoded.header_str("kid") == Some(key.kid.as_str())
        && decoded.verify(
            Alg::Rs256,
            aws_lc_rs::signature::KeyPair::public_key(&key.key).as_ref(),
        );
    if !signed {
        return Err(fail("The token signature is invalid."));
    }
    let claims = &decoded;
    let tid: Uuid = claims
        .claim_str("tid")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| fail("The token has no valid tid claim."))?;
    let home = core
        .directory
        .tenant(&tid.to_string())
        .ok_or_else(|| fail("The token's tenant is unknown."))?;
    let aud = claims
        .claim_str("aud")
        .unwrap_or_default()
        .trim_end_matches('/');
    if !aud.eq_ignore_ascii_case(cloud.exchange_resource()) {
        return Err(fail(&format!(
            "The audience claim value '{aud}' is invalid for this endpoint ('{}').",
            cloud.exchange_resource()
        )));
    }
    if claims.claim_str("iss") != Some(cloud.v1_issuer(&tid).as_str()) {
        return Err(fail("The token issuer is invalid."));
    }
    let now = crate::clock::unix_now() + core.faults.clock_skew(Service::Exchange, info.tenant);
    let leeway = core.seed.lifetimes.exchange_clock_skew_seconds as i64;
    let (exp, nbf) = (claims.claim_time("exp"), claims.claim_time("nbf"));
    if exp.is_none_or(|exp| exp + leeway <= now) {
        return Err(fail("The token has expired."));
    }
    if nbf.is_some_and(|nbf| nbf - leeway > now) {
        return Err(fail("The token is not valid yet (nbf)."));
    }
    let org_index = resolve_org(core, org)?;
    let wids: Vec<Role> = claims
        .claims
        .get("wids")
        .and_then(|w| w.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str())
                .filter_map(Role::from_template_id)
                .collect()
        })
        .unwrap_or_default();
    match claims.claim_str("scp") {
        Some(scp) => {
            if !scp
                .split(' ')
                .any(|s| s.eq_ignore_ascii_case(ADMIN_API_SCOPE))
            {
                return Err(forbidden(format!(
                    "The token's scopes '{scp}' don't include {ADMIN_API_SCOPE}."
                )));
            }
            let oid: Uuid = claims
                .claim_str("oid")
                .and_then(|o| o.parse().ok())
                .ok_or_else(|| fail("The token has no valid oid claim."))?;
            let user = core
                .directory
                .user_by_oid(&oid)
                .filter(|u| u.tenant == home)
                .ok_or_else(|| fail("The token's user is unknown."))?;
            authorize(core, home, org_index, org, Principal::User(user), wids)
        }
        None => {
            let appid = claims.claim_str("appid").unwrap_or_default().to_owned();
            let roles = claims.claims.get("roles").and_then(|r| r.as_array());
            if !roles.is_some_and(|r| r.iter().any(|v| v.as_str() == Some(MANAGE_AS_APP_ROLE))) {
                return Err(forbidden(format!(
                    "The application '{appid}' doesn't have the {MANAGE_AS_APP_ROLE} app role (API permission on Office 365 Exchange Online, granted with admin consent)."
                )));
            }
            if wids.is_empty() {
                // Observed module error text for app-only connections without a directory role.
                return Err(forbidden(format!(
                    "UnAuthorized. The role assigned to application {appid} isn't supported in this scenario. Please check online documentation for assigning correct Directory Roles to Azure AD Application for EXO App-Only Authentication."
                )));
            }
            authorize(core, home, org_index, org, Principal::App(appid), wids)
        }
    }
}

/// The organization a URL (or `DelegatedOrg=`) names.
pub(crate) fn resolve_org(core: &Core, org: &str) -> Result<usize, ExoError> {
    core.directory.tenant(org).ok_or_else(|| {
        ExoError::new(
            StatusCode::NOT_FOUND,
            "NotSpecified",
            "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            format!("The organization '{org}' couldn't be found."),
        )
    })
}

/// Who is calling.
pub(crate) enum Principal {
    User(UserRef),
    App(String),
}

/// Authorizes an authenticated principal of tenant `home` on organization `org_index`:
/// PowerShell access, partner delegation, and at least one Exchange management role.
pub(crate) fn authorize(
    core: &Core,
    home: usize,
    org_index: usize,
    org: &str,
    principal: Principal,
    home_roles: Vec<Role>,
) -> Result<Caller, ExoError> {
    let name = match principal {
        Principal::User(user) => {
            let account = core.directory.user(user);
            if !account.exo_module_enabled {
                // UNVERIFIED wording: the real refusal text for EXOModuleEnabled=$false over REST.
                return Err(forbidden(format!(
                    "User '{}' isn't allowed to use Exchange Online PowerShell: EXOModuleEnabled is False. An administrator can allow it with 'Set-User -Identity {} -EXOModuleEnabled $true'.",
                    account.upn, account.upn
                )));
            }
            account.upn.clone()
        }
        Principal::App(appid) => appid,
    };
    let roles = if org_index == home {
        home_roles
    } else {
        match core.directory.delegation(home, org_index) {
            Some(d) if !home_roles.is_empty() => d.roles.clone(),
            _ => {
                return Err(forbidden(format!(
                    "'{name}' from organization '{}' has no delegated (partner) access to organization '{org}'.",
                    core.directory.tenants[home].initial_domain()
                )));
            }
        }
    };
    if roles.is_empty() {
        return Err(forbidden(format!(
            "'{name}' has no Exchange management role in organization '{org}'."
        )));
    }
    Ok(Caller {
        tenant: org_index,
        principal: name,
        roles,
    })
}
