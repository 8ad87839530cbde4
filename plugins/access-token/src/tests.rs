//! Tests of token validation and renewal, over real `LoginRequest`s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugin_sdk::AccountKind;
use plugin_sdk::abi::{LoginRequest, ParameterValue};
use plugin_sdk::abi_stable::std_types::RString;

use super::*;

const NOW: i64 = 1_800_000_000;
const RESOURCE: &str = "https://outlook.office365.com";

fn jwt(claims: &str) -> String {
    let b64 = |text: &str| URL_SAFE_NO_PAD.encode(text);
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims)
    )
}

fn request(token: Option<&str>) -> LoginRequest {
    LoginRequest {
        parameters: token
            .map(|t| ParameterValue {
                name: TOKEN.into(),
                value: t.into(),
            })
            .into_iter()
            .collect(),
        environment: "O365Default".into(),
        authority: "https://login.microsoftonline.com/organizations".into(),
        resource: RESOURCE.into(),
        scopes: vec![RString::from("https://outlook.office365.com/.default")].into(),
        client_id: "fb78d390-0c51-40cd-8e17-fdbfab77341b".into(),
        interactive: false,
        host_capabilities: Default::default(),
        extensions: RString::new(),
    }
}

fn user_token(exp: i64) -> String {
    jwt(&format!(
        r#"{{"aud":"https://outlook.office365.com","iss":"https://sts.windows.net/t1/","tid":"t1","oid":"o1","upn":"admin@contoso.onmicrosoft.com","scp":"AdminApi.AccessAsUser.All","exp":{exp}}}"#
    ))
}

#[test]
fn a_valid_token_becomes_a_grant() {
    let token = user_token(NOW + 3600);
    let grant = grant_from(&Request::new(&request(Some(&token))), NOW).unwrap();
    assert_eq!(grant.expires_on, NOW + 3600);
    assert_eq!(grant.tenant_id, "t1");
    assert_eq!(grant.authority, "https://sts.windows.net/t1/");
    assert_eq!(grant.scopes, ["AdminApi.AccessAsUser.All"]);
    assert_eq!(grant.account.kind, AccountKind::User);
    assert_eq!(
        grant.account.username.as_deref(),
        Some("admin@contoso.onmicrosoft.com")
    );
    assert_eq!(grant.access_token.as_str(), token);
}

#[test]
fn bad_tokens_are_refused_with_a_reason() {
    let cases = [
        (None, "missing parameter --access-token"),
        (Some("garbage".to_owned()), "not a well-formed JWT"),
        (
            Some(jwt(r#"{"aud":"https://outlook.office365.com"}"#)),
            "has no usable expiry",
        ),
        (Some(user_token(i64::MIN)), "has no usable expiry"),
        (Some(user_token(i64::MAX)), "has no usable expiry"),
        (Some(user_token(NOW - 600)), "expired 10 min ago"),
        (Some(user_token(NOW - 30)), "expired 30 s ago"),
        (
            Some(jwt(&format!(
                r#"{{"aud":"https://graph.microsoft.com","exp":{}}}"#,
                NOW + 3600
            ))),
            "is for https://graph.microsoft.com, but this connection needs a token for https://outlook.office365.com",
        ),
    ];
    for (token, reason) in cases {
        let error = grant_from(&Request::new(&request(token.as_deref())), NOW).unwrap_err();
        assert!(
            error.message.contains(reason),
            "{reason}: {}",
            error.message
        );
    }
}

#[test]
fn exchange_app_id_audience_and_app_only_tokens_are_accepted() {
    let token = jwt(&format!(
        r#"{{"aud":"00000002-0000-0ff1-ce00-000000000000","idtyp":"app","appid":"a1","tid":"t2","roles":["Exchange.ManageAsApp"],"exp":{}}}"#,
        NOW + 3600
    ));
    let grant = grant_from(&Request::new(&request(Some(&token))), NOW).unwrap();
    assert_eq!(grant.account.kind, AccountKind::Application);
    assert_eq!(grant.account.app_id.as_deref(), Some("a1"));
    assert_eq!(grant.scopes, ["Exchange.ManageAsApp"]);
}

#[test]
fn renewal_takes_a_fresh_token_and_explains_when_there_is_none() {
    let old = user_token(NOW - 10);
    let previous = grant_from(
        &Request::new(&request(Some(&user_token(NOW + 3600)))),
        NOW - 3700,
    )
    .unwrap();
    let previous = Grant {
        access_token: old.clone().into(),
        expires_on: NOW - 10,
        ..previous
    };

    let fresh = user_token(NOW + 3600);
    let renewed = renewed_grant(&Request::new(&request(Some(&fresh))), &previous, NOW).unwrap();
    assert_eq!(renewed.access_token.as_str(), fresh);

    let same = renewed_grant(&Request::new(&request(Some(&old))), &previous, NOW).unwrap_err();
    assert_eq!(same.kind, plugin_sdk::ErrorKind::InteractionRequired);
    assert!(
        same.message.contains("still holds the same token"),
        "{}",
        same.message
    );

    let gone = renewed_grant(&Request::new(&request(None)), &previous, NOW).unwrap_err();
    assert_eq!(gone.kind, plugin_sdk::ErrorKind::InteractionRequired);
    assert!(
        gone.message.contains("stdin or a prompt"),
        "{}",
        gone.message
    );
}
