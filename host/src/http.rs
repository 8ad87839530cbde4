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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use session::environment::Trust;

/// How long to wait for a TCP + TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a whole request may take. Exchange's own server timeout is 15 minutes
/// (`docs/exchange-online.md`, "Retries and timeouts"); a cmdlet gets one minute more, like the reference module.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// Builds and caches one client per trust setting and transport, so that a process that talks
/// to several environments still shares connections per environment. Cloning shares the cache.
#[derive(Clone, Default)]
pub struct Clients {
    clients: Arc<Mutex<HashMap<(Trust, Transport), reqwest::Client>>>,
}

/// How a plugin's request reaches its server, beyond the environment's trust setting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Transport {
    /// Connect directly, ignoring proxy variables.
    pub no_proxy: bool,
    /// Trust exactly the server certificate with this SHA-1 or SHA-256 digest.
    pub pinned: Option<Vec<u8>>,
}

impl Clients {
    /// The client for `trust`, built on first use.
    pub fn get(&self, trust: &Trust) -> anyhow::Result<reqwest::Client> {
        self.get_for(trust, &Transport::default())
    }

    /// The client for `trust` and `transport`, built on first use.
    pub fn get_for(&self, trust: &Trust, transport: &Transport) -> anyhow::Result<reqwest::Client> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (trust.clone(), transport.clone());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = build(trust, transport)?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

fn build(trust: &Trust, transport: &Transport) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("exo/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .https_only(false); // plain http is needed for managed-identity endpoints on loopback
    let builder = match (&transport.pinned, trust) {
        // The sandbox listens on loopback only, pinned or not: a proxy could not reach it.
        (Some(digest), Trust::Only(_)) => builder
            .tls_backend_preconfigured(pinning::client_config(digest)?)
            .no_proxy(),
        (Some(digest), _) => builder.tls_backend_preconfigured(pinning::client_config(digest)?),
        (None, Trust::Platform) => builder,
        (None, Trust::PlatformAnd(ca)) => builder.tls_certs_merge(read_certificates(ca)?),
        // The sandbox listens on loopback only: a proxy could not reach it.
        (None, Trust::Only(ca)) => builder.tls_certs_only(read_certificates(ca)?).no_proxy(),
    };
    let builder = if transport.no_proxy {
        builder.no_proxy()
    } else {
        builder
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

/// Pinning a server certificate by thumbprint, for servers whose self-signed certificate is
/// announced out of band (Service Fabric's managed-identity endpoint).
mod pinning {
    use std::sync::Arc;

    use anyhow::Context as _;
    use aws_lc_rs::digest;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    /// A TLS configuration that accepts exactly the certificate whose SHA-1 (20 bytes) or
    /// SHA-256 (32 bytes) digest is `pinned`, and still checks that the server holds its key.
    pub fn client_config(pinned: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = PinnedCertificate {
            pinned: pinned.to_vec(),
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot configure TLS")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    #[derive(Debug)]
    struct PinnedCertificate {
        pinned: Vec<u8>,
        algorithms: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for PinnedCertificate {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            let algorithm = if self.pinned.len() == 20 {
                &digest::SHA1_FOR_LEGACY_USE_ONLY
            } else {
                &digest::SHA256
            };
            let actual = digest::digest(algorithm, end_entity.as_ref());
            if actual.as_ref() == self.pinned.as_slice() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(Error::General(
                    "the server's certificate does not have the pinned thumbprint".into(),
                ))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }
}

/// Parameter and field names whose values are secrets, in forms, queries and JSON, compared
/// without case, `_` or `-` (`access_token`, `accessToken`, `Access-Token`).
const SECRET_FIELDS: &[&str] = &[
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "clientassertion",
    "assertion",
    "code",
    "codeverifier",
    "devicecode",
    "usercode",
    "clientinfo",
    "privatekey",
];

fn is_secret_field(name: &str) -> bool {
    let normalized: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_FIELDS.contains(&normalized.as_str())
}

/// Whether `text` contains something shaped like a JWT (`eyJ….….…`), which is a secret
/// wherever it turns up.
pub fn looks_like_secret(text: &str) -> bool {
    jwt_spans(text).next().is_some()
}

/// `text` with every JWT-shaped run replaced by `[redacted token]`.
pub fn scrub_tokens(text: &str) -> String {
    let mut scrubbed = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in jwt_spans(text) {
        scrubbed.push_str(&text[last..start]);
        scrubbed.push_str("[redacted token]");
        last = end;
    }
    scrubbed.push_str(&text[last..]);
    scrubbed
}

/// The byte ranges of JWT-shaped runs: `eyJ`, then three base64url segments joined by dots
/// (the last may be empty).
fn jwt_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(offset) = text[from..].find("eyJ") {
            let start = from + offset;
            let mut end = start;
            let mut dots = 0;
            while end < bytes.len() && (is_b64(bytes[end]) || (bytes[end] == b'.' && dots < 2)) {
                dots += usize::from(bytes[end] == b'.');
                end += 1;
            }
            from = end.max(start + 3);
            if dots == 2 {
                return Some((start, end));
            }
        }
        None
    })
}

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
            if is_secret_field(&key) {
                (key, "[redacted]".to_owned())
            } else {
                (key, scrub_tokens(&value))
            }
        })
        .collect();
    serde_urlencoded::to_string(redacted).unwrap_or_default()
}

fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if is_secret_field(key) {
                    *value = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_json(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::String(text) if looks_like_secret(text) => *text = scrub_tokens(text),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
