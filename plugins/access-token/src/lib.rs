//! The `access-token` login method: connect with an access token you already have, like
//! `Connect-ExchangeOnline -AccessToken`.
//!
//! The token is a secret parameter: the host reads it from `--access-token-file PATH` (`-` for
//! stdin) or `EXO_ACCESS_TOKEN`, never from the command line. The plugin checks that it is a
//! well-formed JWT for the requested resource that has not expired, and reads the tenant, the
//! account and the expiry from its claims. It does not verify the signature: it has no way to,
//! and Exchange does.
//!
//! Renewal cannot mint a token; it takes whatever the host reads again from the same file or
//! variable. A process that keeps that file fresh (a sidecar, a CI step) keeps the connection
//! alive; otherwise renewal says to connect again.

use std::time::{SystemTime, UNIX_EPOCH};

use plugin_sdk::abi::capability;
use plugin_sdk::{
    Description, Error, Grant, Host, LoginMethod, Parameter, ParameterKind, Request, claims,
};

/// The parameter holding the token.
pub const TOKEN: &str = "access-token";

/// The Exchange Online application id, the other form an `aud` claim may take.
const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";

/// The login method.
#[derive(Default)]
pub struct AccessToken;

impl LoginMethod for AccessToken {
    fn describe(&self) -> Description {
        Description::new(
            "access-token",
            "Pre-issued access token",
            env!("CARGO_PKG_VERSION"),
        )
        .summary(
            "Connects with an access token you already have (Connect-ExchangeOnline \
                 -AccessToken). The token must be a JWT for the environment's Exchange resource; \
                 its claims give the tenant, the user or app, and the expiry. exo cannot refresh \
                 it: on renewal it reads the same file or variable again, so keeping that file \
                 fresh keeps the connection alive.",
        )
        .parameter(
            Parameter::new(TOKEN, ParameterKind::String, "The access token (a JWT)")
                .secret()
                .required()
                .env("EXO_ACCESS_TOKEN"),
        )
        .capability(capability::DELEGATED)
        .capability(capability::APP_ONLY)
        .capability(capability::SILENT_RENEW)
    }

    fn acquire(&self, request: &Request<'_>, _host: &Host<'_>) -> Result<Grant, Error> {
        grant_from(request, now())
    }

    fn renew(
        &self,
        request: &Request<'_>,
        previous: &Grant,
        _host: &Host<'_>,
    ) -> Result<Grant, Error> {
        renewed_grant(request, previous, now())
    }
}

/// A renewal: the token read again from its source, unless that is impossible or stale.
fn renewed_grant(request: &Request<'_>, previous: &Grant, now: i64) -> Result<Grant, Error> {
    let Some(token) = request.parameter(TOKEN) else {
        return Err(Error::interaction_required(
            "the access token was read from stdin or a prompt, so exo cannot read a fresh one; \
             connect again with a new token",
        ));
    };
    if token == previous.access_token.as_str() && previous.expires_on <= now {
        return Err(Error::interaction_required(
            "the access token has expired and its file or variable still holds the same token; \
             put a fresh token there or connect again",
        ));
    }
    grant_from(request, now)
}

/// Validates the token in `request` and describes it.
fn grant_from(request: &Request<'_>, now: i64) -> Result<Grant, Error> {
    let token = request.required(TOKEN)?;
    let claims = claims::decode_unverified(token)?;
    let expires_on = claims
        .expires_on()
        .ok_or_else(|| Error::invalid_input("the access token has no usable expiry (exp claim)"))?;
    // Only an expired token is refused: renewing ahead of expiry is the session core's job.
    if expires_on <= now {
        let ago = now - expires_on;
        let ago = if ago < 120 {
            format!("{ago} s")
        } else {
            format!("{} min", ago / 60)
        };
        return Err(Error::invalid_input(format!(
            "the access token expired {ago} ago; get a new one"
        )));
    }
    check_audience(&claims, request.resource())?;
    let mut scopes = claims.strings("scp");
    scopes.extend(claims.strings("roles"));
    Ok(Grant {
        access_token: token.to_owned().into(),
        token_type: "Bearer".to_owned(),
        expires_on,
        account: claims.account(),
        scopes,
        tenant_id: claims.tenant_id().unwrap_or_default().to_owned(),
        authority: claims.string("iss").unwrap_or_default().to_owned(),
        ..Grant::default()
    })
}

/// The token must be for the resource the connection talks to (`aud` is the resource URL,
/// with or without a trailing slash, or Exchange's application id).
fn check_audience(claims: &claims::Claims, resource: &str) -> Result<(), Error> {
    let audiences = claims.strings("aud");
    let resource = resource.trim_end_matches('/');
    let matches = audiences.iter().any(|aud| {
        aud.trim_end_matches('/').eq_ignore_ascii_case(resource)
            || (aud == EXCHANGE_APP_ID && resource.contains("outlook"))
    });
    if matches || resource.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "the access token is for {}, but this connection needs a token for {resource}",
            if audiences.is_empty() {
                "no audience".to_owned()
            } else {
                audiences.join(", ")
            }
        )))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

plugin_sdk::export_plugin!(AccessToken);

#[cfg(test)]
mod tests;
