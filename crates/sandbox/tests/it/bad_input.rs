//! Bad input never crashes the sandbox and gets the service's error shape.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Env, MODULE_CLIENT, assert_aad, assert_exo, start};

async fn still_answers(env: &Env) {
    let (status, _) = env
        .get_json("common/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(status, StatusCode::OK, "the sandbox still answers");
}

#[tokio::test]
async fn malformed_and_oversized_identity_requests() {
    let env = start().await;
    let url = env.url("organizations/oauth2/v2.0/token");
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/x-www-form-urlencoded", b"%%%&&&==%zz".to_vec()),
        (
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, 0x00, 0x80],
        ),
        ("application/json", br#"{"grant_type":"password"}"#.to_vec()),
        ("text/plain", Vec::new()),
    ];
    for (content_type, body) in bodies {
        let response = env
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("post");
        let status = response.status();
        assert_aad(
            status,
            &response.json().await.expect("json"),
            400,
            "invalid_request",
            900144,
        );
        still_answers(&env).await;
    }
    let huge = vec![b'a'; 2 * 1024 * 1024];
    let response = env
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge.clone())
        .send()
        .await
        .expect("post");
    let status = response.status();
    assert_aad(
        status,
        &response.json().await.expect("json"),
        413,
        "invalid_request",
        90013,
    );
    still_answers(&env).await;
    let response = env
        .http
        .post(env.invoke_url("contoso.com"))
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    still_answers(&env).await;
    for tenant in [
        "nowhere.example.com",
        "00000000-0000-4000-8000-0000000000ff",
        "bad tenant!",
    ] {
        let (status, body) = env
            .post_form(
                &format!("{}/oauth2/v2.0/token", urlencode(tenant)),
                &[("grant_type", "password"), ("client_id", MODULE_CLIENT)],
            )
            .await;
        let code = if tenant.contains(' ') { 900023 } else { 90002 };
        assert_aad(status, &body, 400, "invalid_request", code);
    }
    still_answers(&env).await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[tokio::test]
async fn malformed_exchange_requests() {
    let env = start().await;
    let token = env.app_token().await;
    let url = env.invoke_url("contoso.com");
    for (body, part) in [
        ("not json", "not a valid CmdletInput"),
        ("{}", "missing 'CmdletInput'"),
        (
            r#"{"CmdletInput":{"Parameters":{}}}"#,
            "missing 'CmdletName'",
        ),
        (
            r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":[1,2]}}"#,
            "'Parameters' must be an object",
        ),
        (
            r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":{"a":1}}}}"#,
            "Cannot convert value",
        ),
        (
            r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"Filter":"((("}}}"#,
            "Invalid filter syntax",
        ),
    ] {
        let response = env
            .http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post");
        let status = response.status();
        assert_exo(status, &response.json().await.expect("json"), 400, part);
    }
    // Wrong method, unknown path.
    let response = env
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = env
        .http
        .get(env.url("no/such/path/here"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, _) = env
        .invoke("contoso.com", &token, "Get-AcceptedDomain", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    still_answers(&env).await;
}
