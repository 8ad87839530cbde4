//! Bad input never crashes the sandbox and gets the service's error shape.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    Env, MODULE_CLIENT, assert_aad, assert_exo, chunked, raw_https, start, start_with,
};

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

#[tokio::test]
async fn deep_nesting_is_refused_not_a_crash() {
    // The legacy endpoint accepts a token as the Basic password; basic auth stays off.
    let env = start_with(|c| c.seed.tenants[0].basic_auth_enabled = false).await;
    let token = env.app_token().await;
    let filters = [
        "(".repeat(200_000),
        format!("{}Alias -eq 'x'", "-not ".repeat(10_000)),
        format!("{}Alias -eq 'x'{}", "(".repeat(65), ")".repeat(65)),
    ];
    let invoke = env.invoke_url("contoso.com");
    let legacy = env.url("PowerShell-LiveID?BasicAuthToOAuthConversion=true");
    for filter in &filters {
        let body =
            json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Filter": filter}}});
        for via_legacy in [false, true] {
            let request = if via_legacy {
                env.http.post(&legacy).basic_auth("app", Some(&token))
            } else {
                env.http.post(&invoke).bearer_auth(&token)
            };
            let response = request.json(&body).send().await.expect("post");
            let status = response.status();
            assert_exo(
                status,
                &response.json().await.expect("json"),
                400,
                "Invalid filter syntax",
            );
            still_answers(&env).await;
        }
    }
    // JSON nested past serde_json's limit (128) is a parse error, in the body and in a value.
    for body in [
        format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)),
        format!(
            r#"{{"CmdletInput":{{"CmdletName":"Get-Mailbox","Parameters":{{"Identity":{}1{}}}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    ] {
        for via_legacy in [false, true] {
            let request = if via_legacy {
                env.http.post(&legacy).basic_auth("app", Some(&token))
            } else {
                env.http.post(&invoke).bearer_auth(&token)
            };
            let response = request
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("post");
            let status = response.status();
            assert_exo(
                status,
                &response.json().await.expect("json"),
                400,
                "not a valid CmdletInput",
            );
        }
    }
    let (status, _) = env
        .invoke("contoso.com", &token, "Get-AcceptedDomain", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "the sandbox still runs cmdlets");
}

#[tokio::test]
async fn framework_rejections_get_the_service_shape() {
    let env = start().await;
    let token = env.app_token().await;
    // Chunked bodies over the limit: no Content-Length to check up front.
    let head = |path: &str, content_type: &str, auth: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n{auth}Connection: close\r\n\r\n"
        )
    };
    let identity = raw_https(
        &env,
        &head(
            "/organizations/oauth2/v2.0/token",
            "application/x-www-form-urlencoded",
            "",
        ),
        chunked(1024 * 1024 + 64 * 1024),
    )
    .await;
    assert!(
        identity.headers.contains("content-type: application/json"),
        "{}",
        identity.headers
    );
    assert_aad(
        StatusCode::from_u16(identity.status).expect("status"),
        &identity.json(),
        413,
        "invalid_request",
        90013,
    );
    let exchange = raw_https(
        &env,
        &head(
            "/adminapi/beta/contoso.com/InvokeCommand",
            "application/json",
            &format!("Authorization: Bearer {token}\r\n"),
        ),
        chunked(1024 * 1024 + 64 * 1024),
    )
    .await;
    assert_exo(
        StatusCode::from_u16(exchange.status).expect("status"),
        &exchange.json(),
        413,
        "too large",
    );
    // A chunked body under the limit is fine.
    let small = raw_https(
        &env,
        &head(
            "/organizations/oauth2/v2.0/token",
            "application/x-www-form-urlencoded",
            "",
        ),
        vec![b"11\r\ngrant_type=magic&\r\n0\r\n\r\n".to_vec()],
    )
    .await;
    assert_aad(
        StatusCode::from_u16(small.status).expect("status"),
        &small.json(),
        400,
        "unsupported_grant_type",
        70003,
    );
    // Paths that are not UTF-8 once percent-decoded.
    let response = env
        .http
        .post(env.url("%ff/oauth2/v2.0/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("post");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON, not {text}"));
    assert_aad(status, &body, 400, "invalid_request", 90013);
    let response = env
        .http
        .post(env.url("adminapi/beta/%ff%fe/InvokeCommand"))
        .bearer_auth(&token)
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox"}}))
        .send()
        .await
        .expect("post");
    let status = response.status();
    assert_exo(
        status,
        &response.json().await.expect("json"),
        400,
        "could not be read",
    );
    let response = env
        .http
        .post(env.url("_sandbox/users/%ff/revoke"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.json::<serde_json::Value>().await.is_ok(),
        "JSON on admin paths too"
    );
    still_answers(&env).await;
}

#[tokio::test]
async fn a_bare_tenant_name_is_not_a_tenant() {
    let env = start().await;
    let token = env.app_token().await;
    let (status, body) = env
        .post_form(
            "contoso/oauth2/v2.0/token",
            &[("grant_type", "password"), ("client_id", MODULE_CLIENT)],
        )
        .await;
    assert_aad(status, &body, 400, "invalid_request", 900023);
    let (status, body) = env
        .get_json("contoso/v2.0/.well-known/openid-configuration")
        .await;
    assert_aad(status, &body, 400, "invalid_tenant", 900023);
    let (status, body) = env
        .get_json("common/userrealm/someone@contoso?api-version=1.0")
        .await;
    assert_eq!(
        (status, body["account_type"].as_str()),
        (StatusCode::OK, Some("Unknown"))
    );
    let (status, body) = env
        .invoke("contoso", &token, "Get-Mailbox", json!({}))
        .await;
    assert_exo(
        status,
        &body,
        404,
        "The organization 'contoso' couldn't be found",
    );
    let response = env
        .http
        .post(env.url("PowerShell-LiveID?BasicAuthToOAuthConversion=true&DelegatedOrg=contoso"))
        .basic_auth("app", Some(&token))
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox"}}))
        .send()
        .await
        .expect("post");
    let status = response.status();
    assert_exo(
        status,
        &response.json().await.expect("json"),
        404,
        "couldn't be found",
    );
    // Tenant ids and domains keep working, in any case.
    let tid = env.tenant("contoso").id.to_string().to_uppercase();
    for tenant in [tid.as_str(), "CONTOSO.COM", "contoso.onmicrosoft.com"] {
        let (status, _) = env
            .invoke(tenant, &token, "Get-AcceptedDomain", json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{tenant}");
    }
}
