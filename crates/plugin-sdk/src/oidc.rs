//! Delegated sign-in with OAuth 2.0 and OpenID Connect, for login methods where a person signs
//! in: the browser (authorization code + PKCE), a device code, and a password (ROPC), plus the
//! silent refresh-token renewal they share.
//!
//! [`Provider::discover`] reads the authority's discovery document: Entra's
//! `{authority}/v2.0/.well-known/openid-configuration` first, then the standard
//! `{authority}/.well-known/openid-configuration` of any OIDC provider, whose `issuer` must belong
//! to the authority; only when neither answers does it assume Entra's path layout (see
//! `docs/identity-platform.md`, "Endpoints and tenants"). Token responses are read leniently
//! (numbers as JSON numbers or strings, as v1 endpoints send them), error bodies through
//! [`crate::idp`], and every sign-in's ID token is verified with `jsonwebtoken` against the
//! provider's JWKS: an asymmetric signature, issuer (Entra's `{tenantid}` placeholder filled
//! with the token's `tid`), audience (and `azp` with several), expiry and nonce. A refresh that
//! returns an ID token must name the same account.
//!
//! PKCE verifiers, `state` and `nonce` come from the `oauth2` crate's generators.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::{Account, AccountKind, Error, ErrorKind, Grant, Host, HttpOptions, idp};

/// How long a discovery or token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The endpoints of an identity provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    /// Where the user signs in (authorization code flow).
    pub authorization_endpoint: String,
    /// Where codes, passwords, device codes and refresh tokens become tokens.
    pub token_endpoint: String,
    /// Where device codes come from, when the provider has them.
    pub device_authorization_endpoint: Option<String>,
    /// The provider's signing keys.
    pub jwks_uri: Option<String>,
    /// The `iss` its ID tokens must carry (Entra: with `{tenantid}` for multi-tenant
    /// authorities, filled from the token's `tid`).
    pub issuer: String,
    /// Whether it is laid out like Microsoft Entra (its v2.0 discovery document answered, or
    /// none did): only then are Entra-specific endpoints such as user realm discovery asked.
    pub entra: bool,
}

#[derive(Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
}

impl Provider {
    /// The endpoints of `authority` (e.g. `https://login.microsoftonline.com/organizations`),
    /// from its discovery document, else Entra's layout under it.
    ///
    /// A document's `issuer` must belong to the authority (OpenID Connect Discovery §4.3): equal
    /// to it for a standard provider, on the same origin for Entra (whose issuer names the
    /// tenant by id). A document without one, or with another, is refused.
    pub fn discover(host: &Host<'_>, authority: &str) -> Result<Self, Error> {
        let authority = authority.trim_end_matches('/');
        for (document, entra) in [
            (
                format!("{authority}/v2.0/.well-known/openid-configuration"),
                true,
            ),
            (
                format!("{authority}/.well-known/openid-configuration"),
                false,
            ),
        ] {
            let response = host.send(get(&document)?, &options())?;
            if response.status() != 200 {
                log::debug!(
                    "no discovery document at {document} ({})",
                    response.status()
                );
                continue;
            }
            let Ok(found) = serde_json::from_slice::<Discovery>(response.body()) else {
                log::debug!("{document} is not a discovery document");
                continue;
            };
            let refuse = |why: String| {
                Error::invalid_input(format!(
                    "the identity provider's discovery document ({document}) {why}; exo refuses \
                     to sign in with it"
                ))
            };
            for endpoint in [&found.authorization_endpoint, &found.token_endpoint] {
                if !endpoint.starts_with("https://") && !is_loopback_http(endpoint) {
                    return Err(refuse(format!("names a non-https endpoint ({endpoint})")));
                }
            }
            let issuer = found
                .issuer
                .ok_or_else(|| refuse("names no issuer".to_owned()))?;
            let belongs = if entra {
                origin(&issuer).is_some() && origin(&issuer) == origin(authority)
            } else {
                issuer.trim_end_matches('/') == authority
            };
            if !belongs {
                return Err(refuse(format!(
                    "names the issuer {issuer}, not {authority}"
                )));
            }
            log::info!("using the endpoints of {document}");
            return Ok(Self {
                authorization_endpoint: found.authorization_endpoint,
                token_endpoint: found.token_endpoint,
                device_authorization_endpoint: found.device_authorization_endpoint,
                jwks_uri: found.jwks_uri,
                issuer,
                entra,
            });
        }
        log::info!("no discovery document under {authority}; assuming Entra's endpoint layout");
        Ok(Self::entra_layout(authority))
    }

    /// Entra's endpoints under `authority` (the fallback when discovery fails); the issuer is
    /// Entra's v2 one, next to the tenant segment.
    pub fn entra_layout(authority: &str) -> Self {
        let authority = authority.trim_end_matches('/');
        let base = authority
            .rsplit_once('/')
            .map_or(authority, |(base, _)| base);
        Self {
            authorization_endpoint: format!("{authority}/oauth2/v2.0/authorize"),
            token_endpoint: format!("{authority}/oauth2/v2.0/token"),
            device_authorization_endpoint: Some(format!("{authority}/oauth2/v2.0/devicecode")),
            jwks_uri: Some(format!("{authority}/discovery/v2.0/keys")),
            issuer: format!("{base}/{{tenantid}}/v2.0"),
            entra: true,
        }
    }
}

/// `scheme://host:port` of `url`.
fn origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization())
}

fn is_loopback_http(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
    })
}

pub(crate) fn options() -> HttpOptions {
    HttpOptions {
        timeout: Some(REQUEST_TIMEOUT),
        ..HttpOptions::default()
    }
}

fn get(url: &str) -> Result<http::Request<Vec<u8>>, Error> {
    http::Request::get(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| Error::invalid_input(format!("invalid URL {url}: {e}")))
}

/// A form POST to `url`.
pub(crate) fn post_form(url: &str, form: &[(&str, &str)]) -> Result<http::Request<Vec<u8>>, Error> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    http::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body.into_bytes())
        .map_err(|e| Error::invalid_input(format!("invalid URL {url}: {e}")))
}

/// The tokens of a successful token response; zeroized when dropped.
pub struct Tokens {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// `Bearer`, usually.
    pub token_type: String,
    /// Lifetime of the access token, in seconds.
    pub expires_in: i64,
    /// The refresh token, when `offline_access` was granted.
    pub refresh_token: Option<Zeroizing<String>>,
    /// The ID token, when `openid` was granted.
    pub id_token: Option<Zeroizing<String>>,
    /// The scopes granted.
    pub scopes: Vec<String>,
}

/// Posts `form` to the token endpoint; an error body becomes an [`Error`] through
/// [`idp::token_error`]. The form is never logged by the host (it redacts secrets).
pub fn token_request(
    host: &Host<'_>,
    token_endpoint: &str,
    form: &[(&str, &str)],
) -> Result<Tokens, Error> {
    let response = host.send(post_form(token_endpoint, form)?, &options())?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(idp::token_error(status, response.body()));
    }
    parse_tokens(response.body())
}

/// A token response, with numbers as JSON numbers or strings.
fn parse_tokens(body: &[u8]) -> Result<Tokens, Error> {
    let malformed = || Error::network("the token endpoint answered 200 without a usable token");
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(body) else {
        return Err(malformed());
    };
    let mut take = |name: &str| match body.remove(name) {
        Some(Value::String(text)) if !text.is_empty() => Some(Zeroizing::new(text)),
        _ => None,
    };
    let access_token = take("access_token").ok_or_else(malformed)?;
    let refresh_token = take("refresh_token");
    let id_token = take("id_token");
    let token_type = take("token_type").map_or_else(|| "Bearer".to_owned(), |t| t.to_string());
    let scopes = take("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let expires_in = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|seconds| (1..=10 * 365 * 86_400).contains(seconds))
    .ok_or_else(|| Error::network("the token endpoint's answer has no valid expires_in"))?;
    Ok(Tokens {
        access_token,
        token_type,
        expires_in,
        refresh_token,
        id_token,
        scopes,
    })
}

/// The scopes a delegated sign-in asks for: the resource's, plus `openid profile
/// offline_access` for an ID token and a refresh token.
pub fn delegated_scopes<'a>(resource_scopes: impl Iterator<Item = &'a str>) -> String {
    resource_scopes
        .chain(["openid", "profile", "offline_access"])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Who an ID token names, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `preferred_username` (the UPN), or `upn`, or `email`.
    pub username: Option<String>,
    /// `oid`, or `sub`.
    pub object_id: Option<String>,
    /// `tid`.
    pub tenant_id: Option<String>,
    /// `name`.
    pub display_name: Option<String>,
}

/// The algorithms an ID token may be signed with: asymmetric ones only, so that a key the
/// provider publishes can never be used as an HMAC secret.
const ID_TOKEN_ALGORITHMS: &[jsonwebtoken::Algorithm] = &[
    jsonwebtoken::Algorithm::RS256,
    jsonwebtoken::Algorithm::RS384,
    jsonwebtoken::Algorithm::RS512,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::PS384,
    jsonwebtoken::Algorithm::PS512,
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::ES384,
];

/// Verifies `id_token` from `provider` for `client_id`: signature against the provider's keys,
/// issuer, audience, expiry (two minutes' leeway), and `nonce` when one was sent.
pub fn verify_id_token(
    host: &Host<'_>,
    provider: &Provider,
    id_token: &str,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<Identity, Error> {
    let jwks_uri = provider
        .jwks_uri
        .as_deref()
        .ok_or_else(|| invalid_id_token("the provider publishes no keys (jwks_uri)".to_owned()))?;
    let response = host.send(get(jwks_uri)?, &options())?;
    let keys: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(response.body())
        .map_err(|_| invalid_id_token(format!("{jwks_uri} is not a key set")))?;
    verify_with_keys(&keys, &provider.issuer, id_token, client_id, nonce)
}

fn invalid_id_token(why: String) -> Error {
    Error {
        kind: ErrorKind::AuthenticationFailed,
        code: None,
        message: format!("the identity provider's ID token is not valid: {why}"),
    }
}

/// [`verify_id_token`] with the provider's key set in hand.
pub fn verify_with_keys(
    keys: &jsonwebtoken::jwk::JwkSet,
    issuer: &str,
    id_token: &str,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<Identity, Error> {
    use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
    let header =
        jsonwebtoken::decode_header(id_token).map_err(|e| invalid_id_token(e.to_string()))?;
    if !ID_TOKEN_ALGORITHMS.contains(&header.alg) {
        return Err(invalid_id_token(format!(
            "it is signed with {:?}",
            header.alg
        )));
    }
    let key = match header.kid.as_deref() {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| {
        invalid_id_token("it is signed with a key the provider does not publish".to_owned())
    })?;
    let signing_key = matches!(
        key.algorithm,
        AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
    ) && key.common.public_key_use != Some(PublicKeyUse::Encryption);
    if !signing_key {
        return Err(invalid_id_token(
            "its key is not a public signing key".to_owned(),
        ));
    }
    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(key).map_err(|e| invalid_id_token(e.to_string()))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.leeway = 120;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let claims =
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(id_token, &decoding, &validation)
            .map_err(|e| invalid_id_token(e.to_string()))?
            .claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    // With several audiences, the party it was issued to must be this client (OIDC Core 3.1.3.7).
    if matches!(claims.get("aud"), Some(Value::Array(list)) if list.len() > 1)
        && text("azp").as_deref() != Some(client_id)
    {
        return Err(invalid_id_token(
            "it names several audiences and was not issued to exo's client".to_owned(),
        ));
    }
    let tenant_id = text("tid");
    let expected_issuer = match &tenant_id {
        Some(tid) => issuer.replace("{tenantid}", tid),
        None => issuer.to_owned(),
    };
    if text("iss").as_deref() != Some(expected_issuer.as_str()) {
        return Err(invalid_id_token(format!(
            "it was issued by {}, not {expected_issuer}",
            text("iss").unwrap_or_default()
        )));
    }
    if let Some(nonce) = nonce
        && text("nonce").as_deref() != Some(nonce)
    {
        return Err(invalid_id_token(
            "its nonce is not the one this sign-in sent".to_owned(),
        ));
    }
    Ok(Identity {
        username: text("preferred_username")
            .or_else(|| text("upn"))
            .or_else(|| text("email")),
        object_id: text("oid").or_else(|| text("sub")),
        tenant_id,
        display_name: text("name"),
    })
}

/// The grant for `tokens` of a delegated sign-in, whose verified ID token named `identity`;
/// as plugin state, where and how to renew. `now` is when the tokens arrived.
pub fn grant(tokens: Tokens, identity: Identity, renewal: &Renewal, now: i64) -> Grant {
    let mut state = serde_json::Map::new();
    state.insert(
        "token_endpoint".into(),
        renewal.token_endpoint.clone().into(),
    );
    state.insert("client_id".into(), renewal.client_id.clone().into());
    state.insert("issuer".into(), renewal.issuer.clone().into());
    if let Some(jwks_uri) = &renewal.jwks_uri {
        state.insert("jwks_uri".into(), jwks_uri.clone().into());
    }
    Grant {
        expires_on: now + tokens.expires_in,
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        account: Account {
            kind: AccountKind::User,
            username: identity.username,
            app_id: Some(renewal.client_id.clone()),
            object_id: identity.object_id,
            display_name: identity.display_name,
        },
        scopes: tokens.scopes,
        tenant_id: identity.tenant_id.unwrap_or_default(),
        authority: String::new(),
        state,
    }
}

/// What a refresh needs, kept as plugin state between sign-in and renewal.
#[derive(Clone, Debug)]
pub struct Renewal {
    /// The token endpoint that issued the refresh token.
    pub token_endpoint: String,
    /// The client the refresh token belongs to.
    pub client_id: String,
    /// The issuer of the ID tokens.
    pub issuer: String,
    /// The provider's keys, to verify an ID token a refresh returns.
    pub jwks_uri: Option<String>,
}

impl Renewal {
    /// What `previous` recorded, if it did.
    pub fn of(previous: &Grant) -> Option<Self> {
        let text = |name: &str| previous.state.get(name)?.as_str().map(str::to_owned);
        Some(Self {
            token_endpoint: text("token_endpoint")?,
            client_id: text("client_id")?,
            issuer: text("issuer")?,
            jwks_uri: text("jwks_uri"),
        })
    }
}

/// Renews `previous` with its refresh token (the same for every delegated method). Without a
/// refresh token, or when the provider refuses it, the user must sign in again. An ID token the
/// provider returns is verified and must name the same account.
pub fn refresh(host: &Host<'_>, previous: &Grant, scope: &str) -> Result<Grant, Error> {
    let (Some(renewal), Some(refresh_token)) =
        (Renewal::of(previous), previous.refresh_token.as_ref())
    else {
        return Err(Error::interaction_required(
            "this connection has no refresh token; sign in again",
        ));
    };
    let tokens = token_request(
        host,
        &renewal.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &renewal.client_id),
            ("refresh_token", refresh_token),
            ("scope", scope),
        ],
    )
    .map_err(|e| match e.kind {
        // A refused refresh token is not retried: only a new sign-in helps.
        ErrorKind::AuthenticationFailed => Error {
            kind: ErrorKind::InteractionRequired,
            ..e
        },
        _ => e,
    })?;
    let now = crate::sign_in::now();
    let identity = match tokens.id_token.as_deref() {
        Some(id_token) => {
            let provider = Provider {
                jwks_uri: renewal.jwks_uri.clone(),
                issuer: renewal.issuer.clone(),
                ..Provider::entra_layout(&renewal.token_endpoint)
            };
            let identity = verify_id_token(host, &provider, id_token, &renewal.client_id, None)?;
            let same = identity.object_id == previous.account.object_id
                && identity.tenant_id.as_deref().unwrap_or_default() == previous.tenant_id;
            if !same {
                return Err(Error::interaction_required(
                    "the identity provider renewed the sign-in for another account; sign in again",
                ));
            }
            identity
        }
        // No ID token with a refresh: the account is the one that signed in.
        None => Identity {
            username: previous.account.username.clone(),
            object_id: previous.account.object_id.clone(),
            tenant_id: Some(previous.tenant_id.clone()),
            display_name: previous.account.display_name.clone(),
        },
    };
    Ok(grant(tokens, identity, &renewal, now))
}

#[cfg(test)]
mod tests;
