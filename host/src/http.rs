//! The one HTTP client of an `exo` process, and the redaction of what it logs.
//!
//! Every request, whether a plugin's (token endpoints) or the session's (Exchange), goes through
//! a `reqwest` client built here: rustls with the platform's roots (plus `--ca-file`), or only
//! the sandbox's CA; proxies from the standard environment variables; connect and request
//! timeouts; redirects never followed (a token endpoint that redirects is an error the caller
//! sees, not something to chase). Logs show requests at `-vv` and redacted bodies at `-vvv`;
//! no secret is ever logged.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use session::environment::Trust;

/// How long to wait for a TCP + TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a whole request may take. Exchange's own server timeout is 15 minutes
/// (`exchange-online.md` §3); a cmdlet gets one minute more, like the reference module.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// Builds and caches one client per trust setting, so that a process that talks to several
/// environments still shares connections per environment.
#[derive(Default)]
pub struct Clients {
    clients: Mutex<HashMap<Trust, reqwest::Client>>,
}

impl Clients {
    /// The client for `trust`, built on first use.
    pub fn get(&self, trust: &Trust) -> anyhow::Result<reqwest::Client> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(trust) {
            return Ok(client.clone());
        }
        let client = build(trust)?;
        clients.insert(trust.clone(), client.clone());
        Ok(client)
    }
}

fn build(trust: &Trust) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("exo/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .https_only(false); // plain http is needed for managed-identity endpoints on loopback
    let builder = match trust {
        Trust::Platform => builder,
        Trust::PlatformAnd(ca) => builder.tls_certs_merge(read_certificates(ca)?),
        // The sandbox listens on loopback only: a proxy could not reach it.
        Trust::Only(ca) => builder.tls_certs_only(read_certificates(ca)?).no_proxy(),
    };
    builder.build().context("cannot initialise the HTTP client")
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the CA file {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no certificate",
        path.display()
    );
    Ok(certificates)
}

/// Parameter and field names whose values are secrets, in forms, queries and JSON.
const SECRET_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "password",
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "device_code",
    "user_code",
    "client_info",
];

/// Header names whose values are secrets.
fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "set-cookie",
        "x-identity-header",
        "secret",
    ]
    .contains(&name.as_str())
        || name.contains("token")
        || name.contains("secret")
}

/// A header value as it may be logged: for `Authorization`, only the scheme.
pub fn redact_header(name: &str, value: &str) -> String {
    if !is_secret_header(name) {
        return value.to_owned();
    }
    match value.split_once(' ') {
        Some((scheme, _)) if name.eq_ignore_ascii_case("authorization") => {
            format!("{scheme} [redacted]")
        }
        _ => "[redacted]".to_owned(),
    }
}

/// A URL as it may be logged: secret query parameters replaced.
pub fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => format!("{base}?{}", redact_form(query)),
        None => url.to_owned(),
    }
}

/// A body as it may be logged: forms and JSON with secret fields replaced; anything else
/// reduced to its size.
pub fn redact_body(content_type: Option<&str>, body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return redact_form(&String::from_utf8_lossy(body));
    }
    if content_type.contains("json")
        && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body)
    {
        redact_json(&mut value);
        return value.to_string();
    }
    format!(
        "<{} bytes of {}>",
        body.len(),
        if content_type.is_empty() {
            "data"
        } else {
            &content_type
        }
    )
}

fn redact_form(form: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(form).unwrap_or_default();
    if pairs.is_empty() && !form.is_empty() {
        return "[unparsable, redacted]".to_owned();
    }
    let redacted: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(key, value)| {
            if SECRET_FIELDS.contains(&key.to_ascii_lowercase().as_str()) {
                (key, "[redacted]".to_owned())
            } else {
                (key, value)
            }
        })
        .collect();
    serde_urlencoded::to_string(redacted).unwrap_or_default()
}

fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if SECRET_FIELDS.contains(&key.to_ascii_lowercase().as_str()) {
                    *value = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_json(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
