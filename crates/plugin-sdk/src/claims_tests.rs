//! Tests of [`super::decode_unverified`] and [`super::Claims`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

fn jwt(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

#[test]
fn malformed_tokens_are_refused_without_echoing_them() {
    let cases = [
        ("not-a-jwt", "it has 1 segments instead of 3"),
        ("a.b.c.d.e", "it is encrypted (JWE)"),
        ("%%%.e30.sig", "its header is not base64url"),
        (&jwt("[1]", "{}"), "its header is not a JSON object"),
        (&jwt(r#"{"typ":"JWT"}"#, "{}"), "its header has no \"alg\""),
        (
            &jwt(r#"{"alg":"RS256"}"#, "not json"),
            "its payload is not a JSON object",
        ),
        (
            &format!("{}.e30.", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#)),
            "its signature is empty",
        ),
    ];
    for (token, reason) in cases {
        let error = decode_unverified(token).expect_err(token);
        assert_eq!(error.kind, crate::ErrorKind::InvalidInput);
        assert!(error.message.contains(reason), "{token}: {}", error.message);
        assert!(
            !error.message.contains(token),
            "the message echoes the token"
        );
    }
}

#[test]
fn user_and_app_tokens_describe_their_account() {
    let user = jwt(
        r#"{"alg":"RS256","typ":"JWT"}"#,
        r#"{"upn":"admin@contoso.onmicrosoft.com","oid":"o1","tid":"t1","appid":"a1","exp":1700000000,"scp":"AdminApi.AccessAsUser.All openid","name":"Admin"}"#,
    );
    let claims = decode_unverified(&user).unwrap();
    assert_eq!(claims.expires_on(), Some(1_700_000_000));
    assert_eq!(claims.tenant_id(), Some("t1"));
    assert_eq!(
        claims.strings("scp"),
        ["AdminApi.AccessAsUser.All", "openid"]
    );
    assert_eq!(
        claims.account(),
        Account {
            kind: AccountKind::User,
            username: Some("admin@contoso.onmicrosoft.com".into()),
            app_id: Some("a1".into()),
            object_id: Some("o1".into()),
            display_name: Some("Admin".into()),
        }
    );

    let app = jwt(
        r#"{"alg":"RS256"}"#,
        r#"{"idtyp":"app","appid":"a2","oid":"o2","tid":"t2","exp":"1700000001","roles":["Exchange.ManageAsApp"]}"#,
    );
    let claims = decode_unverified(&app).unwrap();
    assert_eq!(
        claims.expires_on(),
        Some(1_700_000_001),
        "numeric strings are accepted"
    );
    assert_eq!(claims.strings("roles"), ["Exchange.ManageAsApp"]);
    assert_eq!(claims.account().kind, AccountKind::Application);
    assert_eq!(claims.account().app_id.as_deref(), Some("a2"));
}
