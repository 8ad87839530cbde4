//! Minting tokens: v1 Exchange access tokens (delegated and app-only), v2 and v1 ID tokens,
//! refresh tokens, `client_info`, and the token response bodies (v2 integers, v1 strings).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::cloud::Cloud;
use crate::directory::{Client, UserRef};
use crate::identity::store::Authentication;
use crate::jwt::b64url;
use crate::seed::{Role, User};
use crate::state::{Core, random_token};

/// A signed access token and its time window.
#[derive(Debug)]
pub(crate) struct Minted {
    pub token: String,
    pub iat: i64,
    pub exp: i64,
    pub lifetime: i64,
}

/// Who an app-only token is for (an app registration or a managed identity).
pub(crate) struct AppIdentity<'a> {
    pub tenant: usize,
    pub app_id: Uuid,
    pub object_id: Uuid,
    pub display_name: &'a str,
    pub app_roles: &'a [String],
    pub roles: &'a [Role],
    /// `appidacr`: "1" secret, "2" certificate or federated assertion / managed identity.
    pub appidacr: &'static str,
    /// `xms_mirid` of a managed identity.
    pub mirid: Option<&'a str>,
}

fn lifetime(state: &Core) -> i64 {
    match state.seed.lifetimes.access_token_seconds {
        Some(seconds) => seconds as i64,
        None => {
            // Random in the documented 60–90 minutes, like the real service's.
            let mut b = [0u8; 2];
            crate::state::random_fill(&mut b);
            3600 + i64::from(u16::from_le_bytes(b) % 1801)
        }
    }
}

fn sign(state: &Core, header: Value, claims: &Value) -> String {
    let token = state.keys.token_signing.sign(&header, claims);
    state.issued(&token);
    token
}

fn v1_header(state: &Core) -> Value {
    let kid = &state.keys.token_signing.kid;
    json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid})
}

/// How the user signed in.
fn amr(authn: &Authentication) -> Vec<&'static str> {
    if authn.mfa {
        vec!["pwd", "mfa"]
    } else {
        vec!["pwd"]
    }
}

/// The template id real user tokens carry for every member ("User" default role).
const DEFAULT_USER_ROLE: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";
/// The template id real app-only tokens carry for every service principal.
const DEFAULT_APP_ROLE: &str = "0997a1d0-0d1d-4acb-b408-d5ca73121e90";

/// `wids`: the directory roles' template ids, then the default one real tokens always carry.
fn wids(roles: &[Role], default: &'static str) -> Vec<&'static str> {
    roles
        .iter()
        .map(|r| r.template_id())
        .chain(std::iter::once(default))
        .collect()
}

/// Who a delegated token is for: the signed-in user and the client acting for them.
pub(crate) struct Delegated<'a> {
    /// The user's tenant.
    pub tenant: usize,
    pub client: &'a Client,
    /// How the client authenticated at this request ("0", "1" or "2").
    pub appidacr: &'a str,
    pub authn: &'a Authentication,
    /// Granted permissions (`scp`).
    pub permissions: &'a [&'a str],
}

/// A delegated Exchange access token (v1 format).
pub(crate) fn user_access_token(
    state: &Core,
    now: i64,
    resource: Cloud,
    delegated: &Delegated<'_>,
) -> Minted {
    let Delegated {
        tenant,
        client,
        appidacr,
        authn,
        permissions,
    } = *delegated;
    let user = state.directory.user(authn.user);
    let tid = state.directory.tenants[tenant].seed.id;
    let lifetime = lifetime(state);
    let (iat, exp) = (now, now + lifetime);
    let claims = json!({
        "aud": resource.exchange_resource(),
        "iss": resource.v1_issuer(&tid),
        "iat": iat, "nbf": iat, "exp": exp,
        "acr": "1",
        "aio": random_token(32),
        "amr": amr(authn),
        "app_displayname": client.display_name,
        "appid": client.client_id,
        "appidacr": appidacr,
        "auth_time": authn.auth_time,
        "family_name": user.attributes.last_name.as_deref().unwrap_or_default(),
        "given_name": user.attributes.first_name.as_deref().unwrap_or_default(),
        "idtyp": "user",
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.object_id,
        "rh": random_token(24),
        "scp": permissions.join(" "),
        "sid": authn.session_id,
        "sub": pairwise_sub(&user.object_id, &client.client_id),
        "tid": tid,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": random_token(16),
        "ver": "1.0",
        "wids": wids(&user.roles, DEFAULT_USER_ROLE),
    });
    Minted {
        token: sign(state, v1_header(state), &claims),
        iat,
        exp,
        lifetime,
    }
}

/// An app-only Exchange access token (v1 format).
pub(crate) fn app_access_token(
    state: &Core,
    now: i64,
    resource: Cloud,
    app: &AppIdentity<'_>,
) -> Minted {
    let tid = state.directory.tenants[app.tenant].seed.id;
    let lifetime = lifetime(state);
    let (iat, exp) = (now, now + lifetime);
    let mut claims = json!({
        "aud": resource.exchange_resource(),
        "iss": resource.v1_issuer(&tid),
        "iat": iat, "nbf": iat, "exp": exp,
        "aio": random_token(32),
        "app_displayname": app.display_name,
        "appid": app.app_id,
        "appidacr": app.appidacr,
        "idp": resource.v1_issuer(&tid),
        "idtyp": "app",
        "oid": app.object_id,
        "rh": random_token(24),
        "sub": app.object_id,
        "tid": tid,
        "uti": random_token(16),
        "ver": "1.0",
        "wids": wids(app.roles, DEFAULT_APP_ROLE),
    });
    // Like the real service, no `roles` claim at all when no app role is granted.
    if !app.app_roles.is_empty() {
        claims["roles"] = json!(app.app_roles);
    }
    if let Some(mirid) = app.mirid {
        claims["xms_mirid"] = json!(mirid);
    }
    Minted {
        token: sign(state, v1_header(state), &claims),
        iat,
        exp,
        lifetime,
    }
}

/// A v2 ID token; `iss` equals the v2 discovery document's issuer.
pub(crate) fn id_token(
    state: &Core,
    authority: Cloud,
    now: i64,
    tenant: usize,
    client_id: &Uuid,
    authn: &Authentication,
    nonce: Option<&str>,
) -> String {
    let user = state.directory.user(authn.user);
    let tid = state.directory.tenants[tenant].seed.id;
    let mut claims = json!({
        "aud": client_id,
        "iss": format!("{}/{tid}/v2.0", state.cloud_base(authority)),
        "iat": now, "nbf": now, "exp": now + state.seed.lifetimes.id_token_seconds as i64,
        "auth_time": authn.auth_time,
        "name": user.display_name,
        "oid": user.object_id,
        "preferred_username": user.upn,
        "rh": random_token(24),
        "sid": authn.session_id,
        "sub": pairwise_sub(&user.object_id, client_id),
        "tid": tid,
        "uti": random_token(16),
        "ver": "2.0",
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    sign(
        state,
        json!({"typ": "JWT", "alg": "RS256", "kid": state.keys.token_signing.kid}),
        &claims,
    )
}

/// A v1 ID token (the v1 token endpoint's): `iss` equals the v1 discovery document's issuer
/// (`https://sts.windows.net/{tid}/` globally), `ver` 1.0, the v1 claim set (`unique_name`,
/// `upn`, `oid`, `tid`, `amr`, names, `ipaddr`).
///
/// UNVERIFIED: captures of the v1 token endpoint show unsigned ID tokens (`alg: none`); the
/// sandbox signs them like every token (clients don't verify ID tokens from the token
/// endpoint, and a signed one verifies against the published keys).
pub(crate) fn v1_id_token(
    state: &Core,
    authority: Cloud,
    now: i64,
    tenant: usize,
    client_id: &Uuid,
    authn: &Authentication,
    nonce: Option<&str>,
) -> String {
    let user = state.directory.user(authn.user);
    let tid = state.directory.tenants[tenant].seed.id;
    let mut claims = json!({
        "aud": client_id,
        "iss": authority.v1_issuer(&tid),
        "iat": now, "nbf": now, "exp": now + state.seed.lifetimes.id_token_seconds as i64,
        "amr": amr(authn),
        "family_name": user.attributes.last_name.as_deref().unwrap_or_default(),
        "given_name": user.attributes.first_name.as_deref().unwrap_or_default(),
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.object_id,
        "rh": random_token(24),
        "sub": pairwise_sub(&user.object_id, client_id),
        "tid": tid,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": random_token(16),
        "ver": "1.0",
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    sign(state, v1_header(state), &claims)
}

/// A pairwise subject: stable per (user, app), different across apps.
fn pairwise_sub(oid: &Uuid, client_id: &Uuid) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{oid}:{client_id}").as_bytes(),
    );
    b64url(&digest.as_ref()[..32])
}

/// `client_info`: base64url JSON `{"uid","utid"}`.
pub(crate) fn client_info(state: &Core, user: UserRef) -> String {
    let u: &User = state.directory.user(user);
    let tid = state.directory.tenants[user.tenant].seed.id;
    b64url(json!({"uid": u.object_id, "utid": tid}).to_string())
}

/// A new opaque refresh token (recorded as issued; the caller stores it).
pub(crate) fn refresh_token(state: &Core) -> String {
    let token = format!("1.AX{}", random_token(96));
    state.issued(&token);
    token
}

/// A token endpoint success response.
pub(crate) struct TokenResponse {
    pub access: Minted,
    pub resource: Cloud,
    /// `scope` (delegated only).
    pub scope: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub client_info: Option<String>,
}

impl TokenResponse {
    /// The JSON body: integers for v2, strings for v1 (`docs/identity-platform.md`, "Endpoints and tenants").
    pub fn body(&self, v1: bool) -> Value {
        let lifetime = self.access.lifetime;
        let mut body = if v1 {
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime.to_string(),
                "ext_expires_in": lifetime.to_string(),
                "expires_on": self.access.exp.to_string(),
                "not_before": self.access.iat.to_string(),
                "resource": self.resource.exchange_resource(),
                "access_token": self.access.token,
            })
        } else {
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": self.access.token,
            })
        };
        let extra = [
            ("scope", &self.scope),
            ("refresh_token", &self.refresh_token),
            ("id_token", &self.id_token),
            ("client_info", &self.client_info),
        ];
        for (name, value) in extra {
            if let Some(value) = value {
                body[name] = json!(value);
            }
        }
        body
    }
}
