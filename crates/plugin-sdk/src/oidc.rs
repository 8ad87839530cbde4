//! Delegated sign-in with OAuth 2.0 and OpenID Connect, for login methods where a person signs
//! in: the browser (authorization code + PKCE), a device code, and a password (ROPC), plus the
//! silent refresh-token renewal they share.
//!
//! [`Provider::discover`] reads the authority's discovery document: Entra's
//! `{authority}/v2.0/.well-known/openid-configuration` first, then the standard
//! `{authority}/.well-known/openid-configuration` of any OIDC provider; only when neither answers
//! does it assume Entra's path layout (see `docs/identity-platform.md`, "Endpoints and
//! tenants"). Token responses are read leniently (numbers as JSON numbers or strings, as v1
//! endpoints send them), error bodies through [`crate::idp`], and the ID token is verified with
//! `jsonwebtoken` against the provider's JWKS: signature, issuer (Entra's `{tenantid}`
//! placeholder filled with the token's `tid`), audience, expiry and nonce.
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
    /// The `iss` its ID tokens carry (Entra: with `{tenantid}` for multi-tenant authorities).
    pub issuer: Option<String>,
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
    pub fn discover(host: &Host<'_>, authority: &str) -> Result<Self, Error> {
        let authority = authority.trim_end_matches('/');
        for document in [
            format!("{authority}/v2.0/.well-known/openid-configuration"),
            format!("{authority}/.well-known/openid-configuration"),
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
            for endpoint in [&found.authorization_endpoint, &found.token_endpoint] {
                if !endpoint.starts_with("https://") && !is_loopback_http(endpoint) {
                    return Err(Error::invalid_input(format!(
                        "the identity provider's discovery document names a non-https endpoint \
                         ({endpoint}); exo refuses to send credentials there"
                    )));
                }
            }
            log::info!("using the endpoints of {document}");
            return Ok(Self {
                authorization_endpoint: found.authorization_endpoint,
                token_endpoint: found.token_endpoint,
                device_authorization_endpoint: found.device_authorization_endpoint,
                jwks_uri: found.jwks_uri,
                issuer: found.issuer,
            });
        }
        log::info!("no discovery document under {authority}; assuming Entra's endpoint layout");
        Ok(Self::entra_layout(authority))
    }

    /// Entra's endpoints under `authority` (the fallback when discovery fails).
    pub fn entra_layout(authority: &str) -> Self {
        let authority = authority.trim_end_matches('/');
        Self {
            authorization_endpoint: format!("{authority}/oauth2/v2.0/authorize"),
            token_endpoint: format!("{authority}/oauth2/v2.0/token"),
            device_authorization_endpoint: Some(format!("{authority}/oauth2/v2.0/devicecode")),
            jwks_uri: Some(format!("{authority}/discovery/v2.0/keys")),
            issuer: None,
        }
    }
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

/// Verifies `id_token` from `provider` for `client_id`: signature against the provider's keys,
/// issuer, audience, expiry (two minutes' leeway), and `nonce` when one was sent.
pub fn verify_id_token(
    host: &Host<'_>,
    provider: &Provider,
    id_token: &str,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<Identity, Error> {
    let invalid = |why: String| Error {
        kind: ErrorKind::AuthenticationFailed,
        code: None,
        message: format!("the identity provider's ID token is not valid: {why}"),
    };
    let header = jsonwebtoken::decode_header(id_token).map_err(|e| invalid(e.to_string()))?;
    let jwks_uri = provider
        .jwks_uri
        .as_deref()
        .ok_or_else(|| invalid("the provider publishes no keys (jwks_uri)".to_owned()))?;
    let response = host.send(get(jwks_uri)?, &options())?;
    let keys: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(response.body())
        .map_err(|_| invalid(format!("{jwks_uri} is not a key set")))?;
    let key = match header.kid.as_deref() {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| invalid("it is signed with a key the provider does not publish".to_owned()))?;
    let decoding = jsonwebtoken::DecodingKey::from_jwk(key).map_err(|e| invalid(e.to_string()))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.leeway = 120;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    // The issuer is checked below: Entra's multi-tenant issuer holds a placeholder.
    validation.validate_aud = true;
    let claims =
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(id_token, &decoding, &validation)
            .map_err(|e| invalid(e.to_string()))?
            .claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let tenant_id = text("tid");
    if let Some(expected) = &provider.issuer {
        let expected = match &tenant_id {
            Some(tid) => expected.replace("{tenantid}", tid),
            None => expected.clone(),
        };
        if text("iss").as_deref() != Some(expected.as_str()) {
            return Err(invalid(format!(
                "it was issued by {}, not {expected}",
                text("iss").unwrap_or_default()
            )));
        }
    }
    if let Some(nonce) = nonce
        && text("nonce").as_deref() != Some(nonce)
    {
        return Err(invalid(
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

/// The grant for `tokens` of a delegated sign-in: the account from the verified ID token
/// (else from the access token's claims), and, as plugin state, where to renew.
pub fn grant(tokens: Tokens, identity: Option<Identity>, renewal: &Renewal, now: i64) -> Grant {
    let claims = crate::claims::decode_unverified(&tokens.access_token).ok();
    let from_token = claims
        .as_ref()
        .map(crate::claims::Claims::account)
        .unwrap_or_default();
    let tenant_id = identity
        .as_ref()
        .and_then(|i| i.tenant_id.clone())
        .or_else(|| {
            claims
                .as_ref()
                .and_then(|c| c.tenant_id().map(str::to_owned))
        })
        .unwrap_or_default();
    let account = match identity {
        Some(identity) => Account {
            kind: AccountKind::User,
            username: identity.username.or(from_token.username),
            app_id: Some(renewal.client_id.clone()),
            object_id: identity.object_id.or(from_token.object_id),
            display_name: identity.display_name,
        },
        None => from_token,
    };
    let mut state = serde_json::Map::new();
    state.insert(
        "token_endpoint".into(),
        renewal.token_endpoint.clone().into(),
    );
    state.insert("client_id".into(), renewal.client_id.clone().into());
    Grant {
        expires_on: now + tokens.expires_in,
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        account,
        scopes: tokens.scopes,
        tenant_id,
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
}

impl Renewal {
    /// What `previous` recorded, if it did.
    pub fn of(previous: &Grant) -> Option<Self> {
        let text = |name: &str| previous.state.get(name)?.as_str().map(str::to_owned);
        Some(Self {
            token_endpoint: text("token_endpoint")?,
            client_id: text("client_id")?,
        })
    }
}

/// Renews `previous` with its refresh token (the same for every delegated method). Without a
/// refresh token, or when the provider refuses it, the user must sign in again.
pub fn refresh(host: &Host<'_>, previous: &Grant, scope: &str, now: i64) -> Result<Grant, Error> {
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
    let mut renewed = grant(tokens, None, &renewal, now);
    // The account does not change with a refresh; the access token's claims may say less.
    renewed.account = previous.account.clone();
    renewed.tenant_id = previous.tenant_id.clone();
    Ok(renewed)
}

#[cfg(test)]
mod tests;
