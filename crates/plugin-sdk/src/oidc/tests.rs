//! Token responses as v2 and v1 endpoints and other providers send them.

use super::*;

#[test]
fn token_responses_are_read_with_numbers_of_either_type() {
    let v2 = parse_tokens(
        br#"{"token_type":"Bearer","expires_in":3599,"access_token":"a","refresh_token":"r","id_token":"i","scope":"x y"}"#,
    )
    .unwrap();
    assert_eq!(
        (
            v2.expires_in,
            v2.refresh_token.as_deref().map(String::as_str),
            v2.scopes.len()
        ),
        (3599, Some("r"), 2)
    );
    let v1 =
        parse_tokens(br#"{"token_type":"Bearer","expires_in":"3599","access_token":"a"}"#).unwrap();
    assert_eq!(v1.expires_in, 3599);
    assert!(v1.refresh_token.is_none() && v1.id_token.is_none());
}

#[test]
fn unusable_token_responses_are_errors_not_tokens() {
    for body in [
        &b""[..],
        b"{}",
        br#"{"access_token":""}"#,
        br#"{"access_token":"a"}"#,
        br#"{"access_token":"a","expires_in":-5}"#,
        br#"{"access_token":"a","expires_in":9223372036854775807}"#,
        br#"{"access_token":7,"expires_in":60}"#,
    ] {
        assert!(
            parse_tokens(body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn delegated_scopes_add_openid_profile_and_offline_access() {
    assert_eq!(
        delegated_scopes(["https://outlook.office365.com/.default"].into_iter()),
        "https://outlook.office365.com/.default openid profile offline_access"
    );
}

#[test]
fn the_entra_layout_is_the_fallback() {
    let provider = Provider::entra_layout("https://login.example/contoso.com/");
    assert_eq!(
        provider.token_endpoint,
        "https://login.example/contoso.com/oauth2/v2.0/token"
    );
    assert_eq!(
        provider.device_authorization_endpoint.as_deref(),
        Some("https://login.example/contoso.com/oauth2/v2.0/devicecode")
    );
}

/// An ES256 signing key (made by rcgen) and its public JWK set.
fn signing_key() -> (jsonwebtoken::EncodingKey, jsonwebtoken::jwk::JwkSet) {
    let pair = rcgen::KeyPair::generate().unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    (key, jsonwebtoken::jwk::JwkSet { keys: vec![jwk] })
}

fn now() -> i64 {
    crate::sign_in::now()
}

const ISSUER: &str = "https://login.example/{tenantid}/v2.0";

fn token(key: &jsonwebtoken::EncodingKey, claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn good_claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "https://login.example/t1/v2.0", "aud": "client", "exp": now() + 600,
        "tid": "t1", "oid": "o1", "preferred_username": "alice@contoso.com", "nonce": "n1",
    })
}

#[test]
fn a_good_id_token_names_the_account() {
    let (key, keys) = signing_key();
    let identity = verify_with_keys(
        &keys,
        ISSUER,
        &token(&key, good_claims()),
        "client",
        Some("n1"),
    )
    .unwrap();
    assert_eq!(identity.username.as_deref(), Some("alice@contoso.com"));
    assert_eq!(
        (identity.object_id.as_deref(), identity.tenant_id.as_deref()),
        (Some("o1"), Some("t1"))
    );
}

#[test]
fn forged_or_misdirected_id_tokens_are_refused() {
    let (key, keys) = signing_key();
    let (other_key, _) = signing_key();
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = good_claims();
        change(&mut claims);
        token(&key, claims)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            with(&|c| c["aud"] = "someone-else".into()),
        ),
        ("expired", with(&|c| c["exp"] = (now() - 3600).into())),
        (
            "wrong issuer",
            with(&|c| c["iss"] = "https://evil.example/t1/v2.0".into()),
        ),
        (
            "issuer of another tenant",
            with(&|c| c["iss"] = "https://login.example/t2/v2.0".into()),
        ),
        ("wrong nonce", with(&|c| c["nonce"] = "n2".into())),
        (
            "no nonce",
            with(&|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
        ),
        (
            "several audiences, not for us",
            with(&|c| c["aud"] = serde_json::json!(["other", "client"])),
        ),
        ("another key", token(&other_key, good_claims())),
        ("unsigned", {
            let t = token(&key, good_claims());
            let (head_and_body, _) = t.rsplit_once('.').unwrap();
            format!("{head_and_body}.")
        }),
        ("HMAC with the public key", {
            let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            jsonwebtoken::encode(
                &header,
                &good_claims(),
                &jsonwebtoken::EncodingKey::from_secret(b"a key of thirty-two bytes or so!")
                    .unwrap(),
            )
            .unwrap()
        }),
    ];
    for (case, id_token) in cases {
        let refused = verify_with_keys(&keys, ISSUER, &id_token, "client", Some("n1"));
        assert!(refused.is_err(), "{case} was accepted");
    }
    let mut azp = good_claims();
    azp["aud"] = serde_json::json!(["other", "client"]);
    azp["azp"] = "client".into();
    assert!(verify_with_keys(&keys, ISSUER, &token(&key, azp), "client", Some("n1")).is_ok());
}

#[test]
fn the_entra_fallback_names_entras_issuer() {
    let provider = Provider::entra_layout("https://login.example/organizations");
    assert_eq!(provider.issuer, "https://login.example/{tenantid}/v2.0");
    assert!(provider.entra);
}
