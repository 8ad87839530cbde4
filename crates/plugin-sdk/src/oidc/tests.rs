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
