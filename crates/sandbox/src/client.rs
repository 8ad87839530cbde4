//! Client helpers that speak the real protocol to a sandbox over HTTPS, trusting only the
//! sandbox CA (never "accept invalid certificates"). Used by `exo-sandbox get-token`, by tests
//! and by the README demo.
//!
//! The blocking functions use `reqwest::blocking`: call them from synchronous code (or
//! `spawn_blocking`), not from inside an async task.

use plugin_sdk::certificate::{self as sdk, Certificate, SignatureAlgorithm};
use serde::Deserialize;
use url::Url;

use crate::jwt::Alg;

/// A token endpoint success (client credentials: v2 integers).
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Extended lifetime in seconds.
    #[serde(default)]
    pub ext_expires_in: Option<u64>,
    /// The access token (a secret).
    pub access_token: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("access_token", &"[redacted]")
            .finish()
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA PEM is unusable.
    #[error("the sandbox CA certificate is not valid PEM: {0}")]
    Ca(String),
    /// The certificate PEM is unusable.
    #[error("the certificate is not a valid PEM certificate")]
    Certificate,
    /// The private key PEM is unusable.
    #[error("the private key is not a valid PEM RSA private key (PKCS#8 or PKCS#1)")]
    Key,
    /// Signing failed.
    #[error("signing the client assertion failed")]
    Sign,
    /// Transport error.
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The service answered with an error body.
    #[error("{status}: {error}: {description}")]
    Service {
        /// HTTP status.
        status: u16,
        /// The `error` field.
        error: String,
        /// The `error_description` field.
        description: String,
        /// The `error_codes` field.
        codes: Vec<u64>,
    },
}

/// How to build a client assertion.
#[derive(Clone, Debug)]
pub struct AssertionOptions {
    /// PS256 with `x5t#S256` (current documentation) or RS256 with `x5t` (previous).
    pub alg: Alg,
    /// Add `x5c` (the certificate).
    pub include_x5c: bool,
    /// Add `iat` and `nbf` (optional for the service).
    pub include_iat_nbf: bool,
    /// `exp` = now + this.
    pub lifetime_seconds: i64,
}

impl Default for AssertionOptions {
    fn default() -> Self {
        AssertionOptions {
            alg: Alg::Ps256,
            include_x5c: false,
            include_iat_nbf: true,
            lifetime_seconds: 600,
        }
    }
}

/// `{base_url}{tenant}/oauth2/v2.0/token`; `base_url` may carry a cloud prefix (`…/usgov/`).
pub fn token_endpoint(base_url: &Url, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        base_url.as_str().trim_end_matches('/')
    )
}

/// Builds a signed client assertion (RFC 7523) for `client_id` with its certificate and key,
/// with the plugin SDK's code: the same assertions exo's certificate sign-in sends. No local
/// check that the key matches the certificate: tests send mismatched ones on purpose.
pub fn client_assertion(
    token_endpoint: &str,
    client_id: &str,
    cert_pem: &str,
    key_pem: &str,
    options: &AssertionOptions,
) -> Result<String, ClientError> {
    let certificate = Certificate::from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), None)
        .map_err(|e| {
            if e.message.contains("certificate") {
                ClientError::Certificate
            } else {
                ClientError::Key
            }
        })?;
    let options = sdk::AssertionOptions {
        algorithm: match options.alg {
            Alg::Ps256 => SignatureAlgorithm::Ps256,
            Alg::Rs256 => SignatureAlgorithm::Rs256,
        },
        include_x5c: options.include_x5c,
        include_iat_nbf: options.include_iat_nbf,
        lifetime_seconds: options.lifetime_seconds,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    certificate
        .client_assertion(token_endpoint, client_id, now, &options)
        .map(|assertion| assertion.as_str().to_owned())
        .map_err(|_| ClientError::Sign)
}

/// A blocking HTTP client trusting only the sandbox CA.
pub fn blocking_http_client(ca_pem: &str) -> Result<reqwest::blocking::Client, ClientError> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
        .map_err(|e| ClientError::Ca(e.to_string()))?;
    Ok(reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .build()?)
}

/// An async HTTP client trusting only the sandbox CA.
pub fn http_client(ca_pem: &str) -> Result<reqwest::Client, ClientError> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
        .map_err(|e| ClientError::Ca(e.to_string()))?;
    Ok(reqwest::Client::builder().tls_certs_only([ca]).build()?)
}

/// Posts `grant_type=client_credentials` with a ready-made assertion (certificate or
/// federated) and returns the token response.
pub fn assertion_token(
    base_url: &Url,
    ca_pem: &str,
    tenant: &str,
    client_id: &str,
    assertion: &str,
    scope: &str,
) -> Result<TokenResponse, ClientError> {
    let http = blocking_http_client(ca_pem)?;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", scope),
        (
            "client_assertion_type",
            crate::identity::assertion::JWT_BEARER,
        ),
        ("client_assertion", assertion),
    ];
    let response = http
        .post(token_endpoint(base_url, tenant))
        .form(&form)
        .send()?;
    let status = response.status();
    let body: serde_json::Value = response.json()?;
    if !status.is_success() {
        let text = |k: &str| {
            body.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        return Err(ClientError::Service {
            status: status.as_u16(),
            error: text("error"),
            description: text("error_description"),
            codes: body
                .get("error_codes")
                .and_then(|c| c.as_array())
                .map(|c| c.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default(),
        });
    }
    serde_json::from_value(body).map_err(|e| ClientError::Service {
        status: status.as_u16(),
        error: "invalid_response".into(),
        description: e.to_string(),
        codes: vec![],
    })
}

/// Client credentials with a certificate: a PS256 + `x5t#S256` assertion, `aud` = the token
/// endpoint of `tenant`.
pub fn client_credentials_token(
    base_url: &Url,
    ca_pem: &str,
    tenant: &str,
    client_id: &str,
    cert_pem: &str,
    key_pem: &str,
    scope: &str,
) -> Result<TokenResponse, ClientError> {
    let assertion = client_assertion(
        &token_endpoint(base_url, tenant),
        client_id,
        cert_pem,
        key_pem,
        &AssertionOptions::default(),
    )?;
    assertion_token(base_url, ca_pem, tenant, client_id, &assertion, scope)
}

/// The value of `attribute` in the HTML tag that contains `marker`, entities decoded: how a
/// test reads a form field (`name="state"`) or action from one of the sandbox's own pages,
/// whose markup it knows.
pub fn html_attribute(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..=at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let key = format!("{attribute}=\"");
    let value_start = tag.find(&key)? + key.len();
    let value = &tag[value_start..value_start + tag[value_start..].find('"')?];
    Some(
        value
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}
