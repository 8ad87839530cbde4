//! The four managed-identity styles, system- and user-assigned.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Env, claims, start, start_with};

const RESOURCE: &str = "https://outlook.office365.com";

fn mi_url(env: &Env, path: &str) -> String {
    format!(
        "{}{}",
        env.sandbox.managed_identity_url(),
        path.trim_start_matches('/')
    )
}

async fn get(
    env: &Env,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = env.http.get(mi_url(env, path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("get");
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn assert_strings(body: &Value, fields: &[&str]) {
    for field in fields {
        assert!(
            body[field]
                .as_str()
                .is_some_and(|s| s.parse::<i64>().is_ok()),
            "{field} is a numeric string: {body:#}"
        );
    }
}

#[tokio::test]
async fn imds_style() {
    let env = start().await;
    let path = format!("metadata/identity/oauth2/token?api-version=2018-02-01&resource={RESOURCE}");
    let (status, _, body) = get(&env, &path, &[]).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("bad_request_102"))
    );
    let (status, _, body) = get(&env, &path, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_strings(
        &body,
        &["expires_in", "expires_on", "not_before", "ext_expires_in"],
    );
    let system = env
        .seed()
        .managed_identities
        .iter()
        .find(|m| m.kind == sandbox::seed::ManagedIdentityKind::System)
        .expect("system");
    let user = env
        .seed()
        .managed_identities
        .iter()
        .find(|m| m.kind == sandbox::seed::ManagedIdentityKind::User)
        .expect("user");
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(
        (c["oid"].as_str(), c["idtyp"].as_str(), c["aud"].as_str()),
        (
            Some(system.object_id.to_string().as_str()),
            Some("app"),
            Some(RESOURCE)
        )
    );
    assert_eq!(c["xms_mirid"], system.resource_id.as_str());
    for selector in [
        format!("client_id={}", user.client_id),
        format!("object_id={}", user.object_id),
        format!("msi_res_id={}", user.resource_id),
    ] {
        let (status, _, body) =
            get(&env, &format!("{path}&{selector}"), &[("Metadata", "true")]).await;
        assert_eq!(status, StatusCode::OK, "{selector}: {body:#}");
        assert_eq!(
            claims(body["access_token"].as_str().expect("token"))["oid"],
            user.object_id.to_string()
        );
        assert_eq!(body["client_id"], user.client_id.to_string());
    }
    let (status, _, body) = get(
        &env,
        &format!("{path}&client_id=00000000-0000-0000-0000-000000000001"),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _, body) = get(&env, "metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com", &[("Metadata", "true")]).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_resource"))
    );
    let (status, _, _) = get(
        &env,
        "metadata/identity/oauth2/token?api-version=2018-02-01",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = get(
        &env,
        &format!("metadata/identity/oauth2/token?resource={RESOURCE}"),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request")),
        "IMDS requires api-version"
    );
    // The token works against Exchange.
    let (status, response) = env
        .invoke(
            "contoso.com",
            body_token(&env, &path).await.as_str(),
            "Get-Mailbox",
            json!({"ResultSize": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{response:#}");
}

async fn body_token(env: &Env, path: &str) -> String {
    let (_, _, body) = get(env, path, &[("Metadata", "true")]).await;
    body["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn app_service_style() {
    let env = start().await;
    let secret = env.sandbox.identity_header().to_owned();
    let path = format!("MSI/token?api-version=2019-08-01&resource={RESOURCE}");
    let (status, _, _) = get(&env, &path, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(&env, &path, &[("X-IDENTITY-HEADER", "wrong")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = get(&env, &path, &[("X-IDENTITY-HEADER", &secret)]).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_strings(&body, &["expires_on"]);
    assert!(body.get("expires_in").is_none());
    assert_eq!(body["resource"], RESOURCE);
    let user = env
        .seed()
        .managed_identities
        .iter()
        .find(|m| m.kind == sandbox::seed::ManagedIdentityKind::User)
        .expect("user");
    for selector in [
        format!("client_id={}", user.client_id),
        format!("principal_id={}", user.object_id),
        format!("mi_res_id={}", user.resource_id),
    ] {
        let (status, _, body) = get(
            &env,
            &format!("{path}&{selector}"),
            &[("X-IDENTITY-HEADER", &secret)],
        )
        .await;
        assert_eq!(
            (status, body["client_id"].as_str()),
            (StatusCode::OK, Some(user.client_id.to_string().as_str())),
            "{selector}"
        );
    }
    let (status, _, _) = get(
        &env,
        &format!("MSI/token?api-version=2017-09-01&resource={RESOURCE}"),
        &[("X-IDENTITY-HEADER", &secret)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = get(
        &env,
        "MSI/token?api-version=2019-08-01&resource=https://nope.example",
        &[("X-IDENTITY-HEADER", &secret)],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["statusCode"].as_u64()),
        (500, Some(500))
    );
}

#[tokio::test]
async fn azure_arc_style() {
    let env = start().await;
    let path =
        format!("arc/metadata/identity/oauth2/token?api-version=2020-06-01&resource={RESOURCE}");
    let (status, headers, _) = get(&env, &path, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers["www-authenticate"].to_str().expect("header");
    let file = challenge
        .strip_prefix("Basic realm=")
        .expect("Basic realm=<path>");
    assert!(
        std::path::Path::new(file).starts_with(env.sandbox.state_dir()),
        "{file}"
    );
    let secret = std::fs::read_to_string(file).expect("challenge file");
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file).expect("meta").permissions()
        ) & 0o077,
        0
    );
    let (status, _, body) = get(
        &env,
        &path,
        &[
            ("Metadata", "true"),
            ("Authorization", &format!("Basic {secret}")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_strings(&body, &["expires_in", "expires_on"]);
    let (status, _, _) = get(
        &env,
        &path,
        &[("Metadata", "true"), ("Authorization", "Basic wrong")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(
        &env,
        &path,
        &[("Authorization", &format!("Basic {secret}"))],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "Metadata: true is required"
    );
    let user = &env.seed().managed_identities[1];
    let (status, _, _) = get(
        &env,
        &format!("{path}&client_id={}", user.client_id),
        &[
            ("Metadata", "true"),
            ("Authorization", &format!("Basic {secret}")),
        ],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "Arc is system-assigned only"
    );
}

#[tokio::test]
async fn cloud_shell_style() {
    let env = start().await;
    let url = mi_url(&env, "oauth2/token");
    let response = env
        .http
        .post(&url)
        .header("Metadata", "true")
        .form(&[("resource", RESOURCE)])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_strings(&body, &["expires_in", "expires_on"]);
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["roles"][0],
        "Exchange.ManageAsApp"
    );
    let response = env
        .http
        .post(&url)
        .form(&[("resource", RESOURCE)])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
}

#[tokio::test]
async fn azure_arc_challenges_are_configurable_single_use_and_capped() {
    let tokens = tempfile::tempdir().expect("tempdir");
    let token_dir = tokens.path().join("azcmagent").join("tokens");
    let env = start_with(|c| {
        c.seed.azure_arc.token_dir = Some(token_dir.clone());
        c.seed.azure_arc.max_outstanding_challenges = 2;
    })
    .await;
    let path =
        format!("arc/metadata/identity/oauth2/token?api-version=2019-11-01&resource={RESOURCE}");
    let files = || std::fs::read_dir(&token_dir).map_or(0, |d| d.count());
    let (status, headers, _) = get(&env, &path, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let first = headers["www-authenticate"]
        .to_str()
        .expect("header")
        .strip_prefix("Basic realm=")
        .expect("realm")
        .to_owned();
    assert!(
        std::path::Path::new(&first).starts_with(&token_dir),
        "{first}"
    );
    let (status, _, _) = get(&env, &path, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(files(), 2);
    // A third outstanding challenge is refused until one is used.
    let (status, headers, body) = get(&env, &path, &[("Metadata", "true")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests"))
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(files(), 2, "no file for a refused challenge");
    let secret = std::fs::read_to_string(&first).expect("challenge file");
    let auth = format!("Basic {secret}");
    let (status, _, body) = get(
        &env,
        &path,
        &[("Metadata", "true"), ("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert!(
        !std::path::Path::new(&first).exists(),
        "a used challenge file is deleted"
    );
    let (status, _, _) = get(
        &env,
        &path,
        &[("Metadata", "true"), ("Authorization", &auth)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a challenge is single-use"
    );
    let (status, _, _) = get(&env, &path, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "room for a new challenge");
    // The documented api-versions only.
    for query in ["api-version=2018-02-01&", ""] {
        let (status, _, body) = get(
            &env,
            &format!("arc/metadata/identity/oauth2/token?{query}resource={RESOURCE}"),
            &[("Metadata", "true")],
        )
        .await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (400, Some("invalid_request")),
            "{query}"
        );
    }
    // Shutdown deletes what is left.
    let crate::support::Env { sandbox, .. } = env;
    sandbox.shutdown().await;
    assert_eq!(
        files(),
        0,
        "outstanding challenge files are deleted at shutdown"
    );
}

/// A rustls verifier that accepts exactly the certificate with this SHA-1 thumbprint, like a
/// Service Fabric client pinning `IDENTITY_SERVER_THUMBPRINT`.
#[derive(Debug)]
struct Pinned {
    thumbprint: String,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        if hex == self.thumbprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "thumbprint {hex} is not the pinned one"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn pinned_client(thumbprint: &str) -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(Pinned {
            thumbprint: thumbprint.to_owned(),
            provider,
        }))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

#[tokio::test]
async fn service_fabric_style_over_a_pinned_certificate() {
    let env = start().await;
    let endpoint = env.sandbox.service_fabric_url().clone();
    assert!(
        endpoint.as_str().starts_with("https://127.0.0.1:"),
        "{endpoint}"
    );
    assert_eq!(endpoint.path(), "/metadata/identity/oauth2/token");
    let thumbprint = env.sandbox.service_fabric_thumbprint().to_owned();
    assert!(thumbprint.len() == 40 && thumbprint.bytes().all(|b| b.is_ascii_hexdigit()));
    let secret = env.sandbox.identity_header().to_owned();
    let http = pinned_client(&thumbprint);
    let get = |query: String, secret: Option<String>| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let mut request = http.get(format!("{endpoint}?{query}"));
            if let Some(secret) = secret {
                request = request.header("Secret", secret);
            }
            let response = request
                .send()
                .await
                .expect("the pinned certificate is accepted");
            let status = response.status();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let good = format!("api-version=2019-07-01-preview&resource={RESOURCE}");
    let (status, body) = get(good.clone(), Some(secret.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let fields: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        ["access_token", "expires_on", "resource", "token_type"].into()
    );
    assert!(body["expires_on"].is_i64() && body["token_type"] == "Bearer");
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(
        (c["idtyp"].as_str(), c["appidacr"].as_str()),
        (Some("app"), Some("2"))
    );
    let (status, response) = env
        .invoke(
            "contoso.com",
            body["access_token"].as_str().expect("token"),
            "Get-Mailbox",
            json!({"ResultSize": 1}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the token works against Exchange: {response:#}"
    );
    let user = env
        .seed()
        .managed_identities
        .iter()
        .find(|m| m.kind == sandbox::seed::ManagedIdentityKind::User)
        .expect("user-assigned");
    let (status, body) = get(
        format!("{good}&principal_id={}", user.object_id),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["oid"],
        user.object_id.to_string()
    );
    let cases = [
        (good.clone(), None, 401, "SecretHeaderNotFound"),
        (
            good.clone(),
            Some("wrong".to_owned()),
            401,
            "SecretHeaderNotFound",
        ),
        (
            format!("resource={RESOURCE}"),
            Some(secret.clone()),
            400,
            "ArgumentNullOrEmpty",
        ),
        (
            "api-version=2019-07-01-preview".to_owned(),
            Some(secret.clone()),
            400,
            "ArgumentNullOrEmpty",
        ),
        (
            format!("{good}&principal_id=00000000-0000-0000-0000-000000000001"),
            Some(secret.clone()),
            404,
            "ManagedIdentityNotFound",
        ),
    ];
    for (query, secret, expected, code) in cases {
        let (status, body) = get(query.clone(), secret).await;
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (expected, Some(code)),
            "{query}: {body:#}"
        );
        assert!(body["error"]["message"].is_string());
    }
    // Only the pinned certificate: the sandbox CA doesn't vouch for it, another pin fails.
    assert!(env.http.get(endpoint.as_str()).send().await.is_err());
    assert!(
        pinned_client(&"0".repeat(40))
            .get(endpoint.as_str())
            .send()
            .await
            .is_err()
    );
    let info: Value = serde_json::from_slice(
        &std::fs::read(env.sandbox.state_dir().join("sandbox.json")).expect("sandbox.json"),
    )
    .expect("json");
    assert_eq!(info["service_fabric_url"], endpoint.as_str());
    assert_eq!(info["service_fabric_thumbprint"], thumbprint.as_str());
}
