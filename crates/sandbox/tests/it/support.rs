//! Shared test harness: a sandbox per test on ephemeral ports, keys shared across tests.

use std::path::PathBuf;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sandbox::seed::{App, Seed, Tenant};
use sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

pub const EXO_SCOPE: &str = "https://outlook.office365.com/.default";
pub const MODULE_CLIENT: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

/// Keys (CA, signing keys, app certificates) shared by every test process.
pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sandbox-keys")
}

pub struct Env {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut SandboxConfig)) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    start_in(dir, configure).await
}

pub async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut SandboxConfig)) -> Env {
    let mut config = SandboxConfig::new(dir.path());
    config.keys_dir = Some(keys_dir());
    config.record_secrets = true;
    configure(&mut config);
    let sandbox = Sandbox::start(config).await.expect("sandbox starts");
    let http = client(sandbox.ca_pem());
    Env { sandbox, http, dir }
}

/// A client that trusts only the sandbox CA and does not follow redirects.
pub fn client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The claims of a JWT (no verification).
pub fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("JWT has claims");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url"),
    )
    .expect("JSON claims")
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().expect("JWT has a header");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url"),
    )
    .expect("JSON header")
}

/// Asserts an AADSTS error body (`docs/identity-platform.md`, "Error bodies").
pub fn assert_aad(status: StatusCode, body: &Value, expected_status: u16, error: &str, code: u64) {
    assert_eq!(
        (
            status.as_u16(),
            body["error"].as_str(),
            body["error_codes"][0].as_u64()
        ),
        (expected_status, Some(error), Some(code)),
        "{body:#}"
    );
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(
        description.contains("\r\nTrace ID: ")
            && description.contains("\r\nCorrelation ID: ")
            && description.contains("\r\nTimestamp: "),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field} missing in {body:#}");
    }
}

/// Asserts an Exchange error body (`docs/exchange-online.md`, "Responses and errors").
pub fn assert_exo(status: StatusCode, body: &Value, expected_status: u16, message_part: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body:#}");
    let error = &body["error"];
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "{body:#}"
    );
    let detail = error["details"][0]["message"]
        .as_str()
        .expect("details[0].message");
    assert_eq!(detail.splitn(3, '|').count(), 3, "{detail}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains(message_part),
        "expected '{message_part}' in {body:#}"
    );
    assert!(error["innererror"]["type"].is_string(), "{body:#}");
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.sandbox.base_url(),
            path.trim_start_matches('/')
        )
    }

    pub fn seed(&self) -> &Seed {
        self.sandbox.seed()
    }

    pub fn tenant(&self, name: &str) -> &Tenant {
        self.seed().tenant(name).expect("tenant")
    }

    pub fn app(&self, tenant: &str, name: &str) -> &App {
        self.tenant(tenant)
            .apps
            .iter()
            .find(|a| a.display_name == name)
            .expect("app")
    }

    pub fn cert_and_key(&self, app: &App) -> (String, String) {
        let read = |p: &Option<PathBuf>| {
            std::fs::read_to_string(p.as_ref().expect("path")).expect("read PEM")
        };
        (read(&app.certificate_file), read(&app.key_file))
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An app-only token via client credentials (PS256 assertion) for the named app.
    pub async fn app_token_for(
        &self,
        tenant: &str,
        app: &str,
        cloud_prefix: &str,
        scope: &str,
    ) -> Result<String, sandbox::client::ClientError> {
        let app = self.app(tenant, app);
        let (cert, key) = self.cert_and_key(app);
        let base = url::Url::parse(&self.url(cloud_prefix)).expect("url");
        let (ca, client_id, tenant_id, scope) = (
            self.sandbox.ca_pem().to_owned(),
            app.client_id.to_string(),
            self.tenant(tenant).id.to_string(),
            scope.to_owned(),
        );
        tokio::task::spawn_blocking(move || {
            sandbox::client::client_credentials_token(
                &base, &ca, &tenant_id, &client_id, &cert, &key, &scope,
            )
        })
        .await
        .expect("join")
        .map(|t| t.access_token)
    }

    pub async fn app_token(&self) -> String {
        self.app_token_for("contoso", "exo-automation", "", EXO_SCOPE)
            .await
            .expect("app token")
    }

    pub fn user(&self, upn: &str) -> &sandbox::seed::User {
        self.seed()
            .tenants
            .iter()
            .flat_map(|t| t.users.iter())
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
            .expect("user")
    }

    /// ROPC with the module's public client.
    pub async fn ropc(&self, tenant: &str, upn: &str, scope: &str) -> (StatusCode, Value) {
        let password = self.user(upn).password.clone();
        self.post_form(
            &format!("{tenant}/oauth2/v2.0/token"),
            &[
                ("grant_type", "password"),
                ("client_id", MODULE_CLIENT),
                ("username", upn),
                ("password", &password),
                ("scope", scope),
            ],
        )
        .await
    }

    pub async fn user_token(&self, upn: &str) -> String {
        let (status, body) = self.ropc("organizations", upn, EXO_SCOPE).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// POST InvokeCommand.
    pub async fn invoke_at(
        &self,
        url: &str,
        token: &str,
        cmdlet: &str,
        parameters: Value,
        prefer: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}));
        if let Some(prefer) = prefer {
            request = request.header("Prefer", prefer);
        }
        let response = request.send().await.expect("request");
        let (status, headers) = (response.status(), response.headers().clone());
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub fn invoke_url(&self, tenant: &str) -> String {
        self.url(&format!("adminapi/beta/{tenant}/InvokeCommand"))
    }

    pub async fn invoke(
        &self,
        tenant: &str,
        token: &str,
        cmdlet: &str,
        parameters: Value,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self
            .invoke_at(&self.invoke_url(tenant), token, cmdlet, parameters, None)
            .await;
        (status, body)
    }
}

/// The raw answer of [`raw_https`].
pub struct RawResponse {
    pub status: u16,
    /// Header lines, lower-cased.
    pub headers: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends raw HTTP/1.1 bytes to the sandbox over TLS (trusting only its CA) while reading the
/// answer, for requests reqwest won't make (chunked bodies of any size). The request is
/// written in pieces; a write failing because the server already answered and closed is
/// expected.
pub async fn raw_https(env: &Env, head: &str, body_chunks: Vec<Vec<u8>>) -> RawResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::pem_slice_iter(
            env.sandbox.ca_pem().as_bytes(),
        )
    {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let port = env.sandbox.base_url().port().expect("port");
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS");
    let (mut reader, mut writer) = tokio::io::split(tls);
    let head = head.to_owned();
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        for chunk in body_chunks {
            writer.write_all(&chunk).await?;
        }
        writer.flush().await
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        reader.read_to_end(&mut received),
    )
    .await
    .expect("the server answers");
    // The server may close without a TLS close_notify after answering: keep what arrived.
    if let Err(e) = read {
        assert!(!received.is_empty(), "no answer: {e}");
    }
    writing.abort();
    parse_response(&received)
}

/// Parses an HTTP/1.1 response (`Content-Length` or chunked body).
fn parse_response(bytes: &[u8]) -> RawResponse {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
    let mut rest = &bytes[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = if head.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16)
                .expect("chunk size");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body
    } else {
        rest.to_vec()
    };
    RawResponse {
        status,
        headers: head,
        body,
    }
}

/// A chunked request body of `total` bytes of `a`, in 64 KiB chunks.
pub fn chunked(total: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut left = total;
    while left > 0 {
        let size = left.min(64 * 1024);
        let mut chunk = format!("{size:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b'a', size));
        chunk.extend_from_slice(b"\r\n");
        chunks.push(chunk);
        left -= size;
    }
    chunks.push(b"0\r\n\r\n".to_vec());
    chunks
}
