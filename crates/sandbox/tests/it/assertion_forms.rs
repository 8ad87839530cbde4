//! Client assertions in every form real clients send, built with `jsonwebtoken` (not the
//! sandbox's helper, so the sandbox's assumptions are not tested against themselves):
//! `x5t` / `x5t#S256` as base64url with or without `=` padding and as standard base64;
//! `kid` as base64url SHA-1 or hex; floating-point `iat`/`exp`; no `nbf`; no `kid`. A wrong
//! key is still refused with 700027, naming the thumbprint in upper-case hex.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{assert_aad, start};

const EXO_SCOPE: &str = "https://outlook.office365.com/.default";

fn der_of(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM body")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn every_thumbprint_encoding_real_clients_use_is_accepted_and_a_wrong_key_is_not() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let (cert, key) = env.cert_and_key(app);
    let other = env.app("contoso", "no-exchange-role");
    let (_, other_key) = env.cert_and_key(other);
    let tid = env.tenant("contoso").id.to_string();
    let client_id = app.client_id.to_string();
    let audience = format!("{}{tid}/oauth2/v2.0/token", env.sandbox.base_url());
    let der = der_of(&cert);
    let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    let sha256 = digest::digest(&digest::SHA256, &der);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let header =
        |alg: Algorithm, x5t: Option<String>, x5t_s256: Option<String>, kid: Option<String>| {
            let mut header = Header::new(alg);
            header.x5t = x5t;
            header.x5t_s256 = x5t_s256;
            header.kid = kid;
            header
        };
    let integer_claims = json!({
        "aud": audience, "iss": client_id, "sub": client_id,
        "jti": uuid::Uuid::new_v4(), "exp": now + 600, "nbf": now, "iat": now,
    });
    // MSAL Python's shape: exp only, floats elsewhere seen in the wild.
    let float_claims = json!({
        "aud": audience, "iss": client_id, "sub": client_id,
        "jti": uuid::Uuid::new_v4(), "exp": (now + 600) as f64 + 0.25, "iat": now as f64 + 0.5,
    });
    let forms = [
        (
            "x5t base64url padded (MSAL Python)",
            header(Algorithm::RS256, Some(URL_SAFE.encode(sha1)), None, None),
            &float_claims,
        ),
        (
            "x5t standard base64 (Azure SDK for Rust)",
            header(Algorithm::RS256, Some(STANDARD.encode(sha1)), None, None),
            &integer_claims,
        ),
        (
            "x5t base64url unpadded",
            header(
                Algorithm::RS256,
                Some(URL_SAFE_NO_PAD.encode(sha1)),
                None,
                None,
            ),
            &integer_claims,
        ),
        (
            "x5t#S256 padded",
            header(Algorithm::PS256, None, Some(URL_SAFE.encode(sha256)), None),
            &integer_claims,
        ),
        (
            "x5t#S256 standard",
            header(Algorithm::PS256, None, Some(STANDARD.encode(sha256)), None),
            &float_claims,
        ),
        (
            "kid base64url SHA-1, no x5t",
            header(
                Algorithm::RS256,
                None,
                None,
                Some(URL_SAFE_NO_PAD.encode(sha1)),
            ),
            &integer_claims,
        ),
        (
            "kid hex SHA-1, no x5t",
            header(Algorithm::RS256, None, None, Some(hex(sha1.as_ref()))),
            &integer_claims,
        ),
        (
            "kid lower-case hex SHA-256",
            header(
                Algorithm::PS256,
                None,
                None,
                Some(hex(sha256.as_ref()).to_lowercase()),
            ),
            &integer_claims,
        ),
    ];
    let signing_key = EncodingKey::from_rsa_pem(key.as_bytes()).expect("RSA key");
    let token = |header: &Header, claims: &serde_json::Value, key: &EncodingKey| {
        jsonwebtoken::encode(header, claims, key).expect("sign")
    };
    for (name, header, claims) in &forms {
        let assertion = token(header, claims, &signing_key);
        let (status, body) = env
            .post_form(
                &format!("{tid}/oauth2/v2.0/token"),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("scope", EXO_SCOPE),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body:#}");
    }

    let wrong_key = EncodingKey::from_rsa_pem(other_key.as_bytes()).expect("RSA key");
    let forged = token(&forms[0].1, &integer_claims, &wrong_key);
    let (status, body) = env
        .post_form(
            &format!("{tid}/oauth2/v2.0/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("scope", EXO_SCOPE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &forged),
            ],
        )
        .await;
    assert_aad(status, &body, 401, "invalid_client", 700027);
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains(&format!(
            "Thumbprint of key used by client: '{}'",
            hex(sha1.as_ref())
        )),
        "{description}"
    );
}
