//! The four managed-identity styles, system- and user-assigned.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Env, claims, start};

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
