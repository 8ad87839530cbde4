//! The interactive flows, driven through the HTML pages like a browser would: authorization
//! code + PKCE (with the TOTP second factor) and the device-code flow.

use reqwest::StatusCode;
use sandbox::client::html_attribute as attribute;
use serde_json::Value;

use crate::support::{Env, MODULE_CLIENT, assert_aad, claims, start, start_with};

/// Posts the page's form with extra fields; returns (status, Location, body).
pub(crate) async fn submit(
    env: &Env,
    html: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Option<String>, String) {
    let action = attribute(html, "<form", "action").expect("form action");
    let mut form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(flow) = attribute(html, "name=\"flow\"", "value") {
        form.push(("flow".into(), flow));
    }
    let response = env
        .http
        .post(action)
        .form(&form)
        .send()
        .await
        .expect("post");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (status, location, response.text().await.expect("body"))
}

fn totp(env: &Env, upn: &str) -> String {
    sandbox::totp::current_code(env.user(upn).totp_secret.as_deref().expect("MFA user"))
        .expect("code")
}

/// A six-digit code that is wrong for every accepted time step.
fn wrong_code(env: &Env, upn: &str) -> String {
    let key = sandbox::totp::decode_base32(env.user(upn).totp_secret.as_deref().expect("MFA user"))
        .expect("secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let valid: Vec<String> = [now - 60, now - 30, now, now + 30, now + 60]
        .iter()
        .map(|t| sandbox::totp::code_at(&key, *t))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .expect("a wrong code exists")
}

fn pkce() -> (String, String) {
    let verifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag".to_owned();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (
        verifier,
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, digest),
    )
}

fn authorize_url(env: &Env, extra: &[(&str, &str)]) -> String {
    let mut url =
        url::Url::parse(&env.url("contoso.onmicrosoft.com/oauth2/v2.0/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", MODULE_CLIENT)
        .append_pair(
            "scope",
            "https://outlook.office365.com/.default openid profile offline_access",
        )
        .extend_pairs(extra);
    url.to_string()
}

/// Signs in on the pages up to the final answer to the client.
async fn sign_in(env: &Env, url: &str, upn: &str) -> (StatusCode, Option<String>, String) {
    let page = env
        .http
        .get(url)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(page.contains("<label for=\"login\">"), "{page}");
    let (_, _, page) = submit(env, &page, &[("login", upn)]).await;
    assert!(page.contains("name=\"passwd\""), "{page}");
    let (_, _, page) = submit(env, &page, &[("passwd", "not the password")]).await;
    assert!(
        page.contains("AADSTS50126"),
        "a wrong password shows the error: {page}"
    );
    let password = env.user(upn).password.clone();
    let (status, location, page) = submit(env, &page, &[("passwd", &password)]).await;
    if env.user(upn).totp_secret.is_none() {
        return (status, location, page);
    }
    assert!(page.contains("name=\"otc\""), "{page}");
    let (_, _, page) = submit(env, &page, &[("otc", &wrong_code(env, upn))]).await;
    assert!(page.contains("expected verification code"), "{page}");
    submit(env, &page, &[("otc", &totp(env, upn))]).await
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn authorization_code_with_pkce_through_the_sign_in_pages() {
    let env = start().await;
    let (verifier, challenge) = pkce();
    let redirect = "http://127.0.0.1:53117";
    let url = authorize_url(
        &env,
        &[
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "admin@contoso.onmicrosoft.com"),
        ],
    );
    let (status, location, _) = sign_in(&env, &url, "admin@contoso.onmicrosoft.com").await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.expect("redirect");
    assert!(
        location.starts_with("http://127.0.0.1:53117/?code="),
        "port kept, trailing slash added: {location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    let code = query_param(&location, "code").expect("code");
    let redeem = |code: String, verifier: String| {
        let env = &env;
        async move {
            env.post_form(
                "contoso.onmicrosoft.com/oauth2/v2.0/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", MODULE_CLIENT),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &verifier),
                    (
                        "scope",
                        "https://outlook.office365.com/.default offline_access openid",
                    ),
                ],
            )
            .await
        }
    };
    let (status, body) = redeem(code.clone(), verifier.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let access = claims(body["access_token"].as_str().expect("at"));
    assert_eq!(access["amr"], serde_json::json!(["pwd", "mfa"]));
    assert!(access["wids"].as_array().is_some_and(|w| {
        w.iter()
            .any(|r| r == "62e90394-69f5-4237-9190-012177145e10")
    }));
    let id = claims(body["id_token"].as_str().expect("id token"));
    assert_eq!(id["nonce"], "n-1");
    // One sign-in session: the same `sid` in the access and ID tokens, and after a refresh.
    assert!(access["sid"].is_string());
    assert_eq!(access["sid"], id["sid"]);
    let (status, refreshed) = env
        .post_form(
            "contoso.onmicrosoft.com/oauth2/v2.0/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", MODULE_CLIENT),
                ("refresh_token", body["refresh_token"].as_str().expect("rt")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed:#}");
    let after = claims(refreshed["access_token"].as_str().expect("at"));
    assert_eq!(after["sid"], access["sid"]);
    let (_, discovery) = env
        .get_json("contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(id["iss"], discovery["issuer"]);
    assert!(body["refresh_token"].is_string());
    let (status, body) = redeem(code, verifier.clone()).await;
    assert_aad(status, &body, 400, "invalid_grant", 54005);
    // PKCE: wrong verifier for S256; plain challenge.
    let url = authorize_url(
        &env,
        &[
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let (_, location, _) = sign_in(&env, &url, "exadmin@contoso.onmicrosoft.com").await;
    let code = query_param(&location.expect("redirect"), "code").expect("code");
    let (status, body) = redeem(code.clone(), "x".repeat(43)).await;
    assert_aad(status, &body, 400, "invalid_grant", 501481);
    let (status, body) = redeem(code, String::new()).await;
    assert_aad(status, &body, 400, "invalid_grant", 501481);
    let url = authorize_url(
        &env,
        &[
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("code_challenge", &verifier),
        ],
    );
    let (_, location, _) = sign_in(&env, &url, "exadmin@contoso.onmicrosoft.com").await;
    let code = query_param(&location.expect("redirect"), "code").expect("code");
    let (status, body) = redeem(code, verifier).await;
    assert_eq!(status, StatusCode::OK, "plain PKCE: {body:#}");
}

#[tokio::test]
async fn response_modes_and_authorize_errors() {
    let env = start().await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let url = authorize_url(
        &env,
        &[
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:4000"),
            ("response_mode", "form_post"),
            ("state", "s"),
        ],
    );
    let (status, _, html) = sign_in(&env, &url, upn).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        attribute(&html, "<form", "action").as_deref(),
        Some("http://localhost:4000/")
    );
    assert!(attribute(&html, "name=\"code\"", "value").is_some_and(|c| !c.is_empty()));
    assert_eq!(
        attribute(&html, "name=\"state\"", "value").as_deref(),
        Some("s")
    );
    let url = authorize_url(
        &env,
        &[
            ("response_type", "code"),
            ("redirect_uri", "http://localhost"),
            ("response_mode", "fragment"),
        ],
    );
    let (_, location, _) = sign_in(&env, &url, upn).await;
    assert!(
        location
            .expect("redirect")
            .starts_with("http://localhost/#code=")
    );
    // Errors shown as pages (no redirect to an unverified URI).
    for (redirect, client, code) in [
        (
            "http://localhost:4000/callback",
            MODULE_CLIENT,
            "AADSTS50011",
        ),
        ("http://[::1]:4000", MODULE_CLIENT, "AADSTS50011"),
        ("https://evil.example/", MODULE_CLIENT, "AADSTS50011"),
        (
            "http://localhost",
            "11111111-2222-3333-4444-555555555555",
            "AADSTS700016",
        ),
    ] {
        let mut url =
            url::Url::parse(&env.url("organizations/oauth2/v2.0/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "https://outlook.office365.com/.default");
        let response = env.http.get(url).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.expect("html").contains(code));
    }
    // Errors sent back to the client.
    for (extra, error) in [
        (vec![("prompt", "none")], "login_required"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![("scope", "https://graph.microsoft.com/.default")],
            "invalid_resource",
        ),
    ] {
        let mut url = url::Url::parse(&env.url("common/oauth2/v2.0/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("client_id", MODULE_CLIENT)
            .append_pair("redirect_uri", "http://localhost:9999")
            .append_pair("state", "z");
        for (k, v) in &extra {
            url.query_pairs_mut().append_pair(k, v);
        }
        if !extra.iter().any(|(k, _)| *k == "response_type") {
            url.query_pairs_mut().append_pair("response_type", "code");
        }
        if !extra.iter().any(|(k, _)| *k == "scope") {
            url.query_pairs_mut()
                .append_pair("scope", "https://outlook.office365.com/.default");
        }
        let response = env.http.get(url).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some(error),
            "{location}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("z"));
        assert!(
            query_param(&location, "error_description").is_some_and(|d| d.starts_with("AADSTS"))
        );
    }
    // An unknown or replayed flow id.
    let (status, _, html) = submit(
        &env,
        &format!("<form action=\"{}\">", env.url("common/login")),
        &[("flow", "nope"), ("login", upn)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("expired"));
}

async fn device_code(env: &Env, tenant: &str) -> Value {
    let (status, body) = env
        .post_form(
            &format!("{tenant}/oauth2/v2.0/devicecode"),
            &[
                ("client_id", MODULE_CLIENT),
                (
                    "scope",
                    "https://outlook.office365.com/.default offline_access",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    body
}

async fn poll(env: &Env, device_code: &str) -> (StatusCode, Value) {
    env.post_form(
        "organizations/oauth2/v2.0/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", MODULE_CLIENT),
            ("device_code", device_code),
        ],
    )
    .await
}

/// Enters the user code and signs in; returns the approval page.
pub(crate) async fn device_sign_in(
    env: &Env,
    verification_uri: &str,
    user_code: &str,
    upn: &str,
) -> String {
    let page = env
        .http
        .get(verification_uri)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    let (_, _, page) = submit(env, &page, &[("otc", user_code)]).await;
    let (_, _, page) = submit(env, &page, &[("login", upn)]).await;
    let password = env.user(upn).password.clone();
    let (_, _, mut page) = submit(env, &page, &[("passwd", &password)]).await;
    if env.user(upn).totp_secret.is_some() {
        page = submit(env, &page, &[("otc", &totp(env, upn))]).await.2;
    }
    assert!(page.contains("value=\"approve\""), "{page}");
    page
}

#[tokio::test]
async fn device_code_flow_through_the_device_login_pages() {
    let env = start().await;
    let body = device_code(&env, "organizations").await;
    assert_eq!(
        (body["expires_in"].as_u64(), body["interval"].as_u64()),
        (Some(900), Some(5))
    );
    let verification_uri = body["verification_uri"].as_str().expect("uri").to_owned();
    assert_eq!(verification_uri, env.url("devicelogin"));
    assert!(body.get("verification_uri_complete").is_none());
    let user_code = body["user_code"].as_str().expect("user code").to_owned();
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains(&user_code))
    );
    let device = body["device_code"]
        .as_str()
        .expect("device code")
        .to_owned();
    let (status, body) = poll(&env, &device).await;
    assert_aad(status, &body, 400, "authorization_pending", 70016);
    env.sandbox
        .faults()
        .add(
            sandbox::FaultRule::new(sandbox::FaultKind::SlowDown, sandbox::FaultTarget::Identity)
                .count(1),
        )
        .expect("fault");
    let (status, body) = poll(&env, &device).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("slow_down"))
    );
    // The user types the code in lower case with a dash.
    let typed = format!("{}-{}", &user_code[..4], &user_code[4..]).to_lowercase();
    let page = device_sign_in(
        &env,
        &verification_uri,
        &typed,
        "admin@contoso.onmicrosoft.com",
    )
    .await;
    assert!(page.contains("Microsoft Exchange REST API Based Powershell"));
    let (_, _, done) = submit(&env, &page, &[("decision", "approve")]).await;
    assert!(done.contains("close this window"), "{done}");
    let (status, body) = poll(&env, &device).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["upn"],
        "admin@contoso.onmicrosoft.com"
    );
    assert!(body["refresh_token"].is_string());
    let (status, body) = poll(&env, &device).await;
    assert_aad(status, &body, 400, "invalid_grant", 90120);
    // Declined, and a code that doesn't exist.
    let body = device_code(&env, "contoso.com").await;
    let device = body["device_code"]
        .as_str()
        .expect("device code")
        .to_owned();
    let page = device_sign_in(
        &env,
        &verification_uri,
        body["user_code"].as_str().expect("code"),
        "exadmin@contoso.onmicrosoft.com",
    )
    .await;
    let (_, _, declined_page) = submit(&env, &page, &[("decision", "decline")]).await;
    assert!(
        declined_page.contains("Sign-in declined") && !declined_page.contains("Signed in"),
        "{declined_page}"
    );
    let (status, body) = poll(&env, &device).await;
    assert_aad(status, &body, 400, "authorization_declined", 65004);
    let (status, body) = poll(&env, "DAQABAAEAAAnot-a-real-code").await;
    assert_aad(status, &body, 400, "bad_verification_code", 70018);
    let page = env
        .http
        .get(&verification_uri)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    let (status, _, page) = submit(&env, &page, &[("otc", "ZZZZZZZZZ")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("AADSTS90119"));
}

#[tokio::test]
async fn device_codes_expire_and_v1_answers_with_strings() {
    let env = start_with(|c| c.seed.lifetimes.device_code_seconds = 1).await;
    let body = device_code(&env, "organizations").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = poll(&env, body["device_code"].as_str().expect("device code")).await;
    assert_aad(status, &body, 400, "expired_token", 70019);
    let (status, body) = env
        .post_form(
            "organizations/oauth2/devicecode",
            &[
                ("client_id", MODULE_CLIENT),
                ("resource", "https://outlook.office365.com"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["expires_in"], "1");
    assert_eq!(body["interval"], "5");
    assert!(body["verification_url"].is_string() && body.get("verification_uri").is_none());
    let (status, body) = env
        .post_form(
            "organizations/oauth2/v2.0/devicecode",
            &[("client_id", MODULE_CLIENT), ("scope", "openid")],
        )
        .await;
    assert_aad(status, &body, 400, "invalid_scope", 70011);
}

const LOOPBACK_APP: &str = "5a1e0b7c-2f4d-4e8a-9b3c-6d7e8f9a0b1c";
const WEB_APP: &str = "6b2f1c8d-3a5e-4f9b-8c4d-7e8f9a0b1c2d";
const WEB_SECRET: &str = "Sandbox-Secret~web-app-1";

/// The default seed plus a public client registered for `http://127.0.0.1/callback` and a
/// confidential web app with a secret and a certificate.
async fn start_with_apps(configure: impl FnOnce(&mut sandbox::SandboxConfig)) -> Env {
    start_with(|c| {
        let app = |client_id: &str, name: &str| sandbox::seed::App {
            client_id: client_id.parse().expect("guid"),
            // Any id distinct from the client id does for a service principal.
            object_id: uuid::Uuid::from_u128(
                !client_id.parse::<uuid::Uuid>().expect("guid").as_u128(),
            ),
            display_name: name.into(),
            public_client: false,
            redirect_uris: vec![],
            certificate: false,
            certificate_file: None,
            key_file: None,
            client_secrets: vec![],
            app_roles: vec![],
            roles: vec![],
            federated_credentials: vec![],
        };
        let apps = &mut c.seed.tenants[0].apps;
        apps.push(sandbox::seed::App {
            public_client: true,
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            ..app(LOOPBACK_APP, "loopback tool")
        });
        apps.push(sandbox::seed::App {
            redirect_uris: vec!["https://app.example/signin".into()],
            client_secrets: vec![WEB_SECRET.into()],
            certificate: true,
            ..app(WEB_APP, "web app")
        });
        configure(c);
    })
    .await
}

fn authorize_for(env: &Env, tenant: &str, client: &str, redirect: &str) -> String {
    let mut url =
        url::Url::parse(&env.url(&format!("{tenant}/oauth2/v2.0/authorize"))).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair(
            "scope",
            "https://outlook.office365.com/.default offline_access",
        );
    url.to_string()
}

/// Signs in and returns the code from the redirect.
async fn code_for(env: &Env, tenant: &str, client: &str, redirect: &str) -> String {
    let url = authorize_for(env, tenant, client, redirect);
    let (status, location, page) = sign_in(env, &url, "exadmin@contoso.onmicrosoft.com").await;
    assert_eq!(status, StatusCode::FOUND, "{page}");
    query_param(&location.expect("redirect"), "code").expect("code")
}

async fn redeem(
    env: &Env,
    tenant: &str,
    client: &str,
    code: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", redirect),
    ];
    form.extend_from_slice(extra);
    env.post_form(&format!("{tenant}/oauth2/v2.0/token"), &form)
        .await
}

#[tokio::test]
async fn loopback_redirects_are_matched_by_host_path_and_not_port() {
    let env = start_with_apps(|_| {}).await;
    // The module's client has both loopback hosts registered.
    for redirect in ["http://localhost:5001", "http://127.0.0.1:5002/"] {
        let code = code_for(&env, "contoso.com", MODULE_CLIENT, redirect).await;
        let (status, body) = redeem(&env, "contoso.com", MODULE_CLIENT, &code, redirect, &[]).await;
        assert_eq!(status, StatusCode::OK, "{redirect}: {body:#}");
    }
    // A seeded public client: its registered host and path, any port.
    let redirect = "http://127.0.0.1:61000/callback";
    let code = code_for(&env, "contoso.com", LOOPBACK_APP, redirect).await;
    let (status, body) = redeem(&env, "contoso.com", LOOPBACK_APP, &code, redirect, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["appidacr"],
        "0"
    );
    for wrong in [
        "http://localhost:61000/callback",
        "http://127.0.0.1:61000/other",
        "http://[::1]:61000/callback",
        "https://127.0.0.1:61000/callback",
    ] {
        let response = env
            .http
            .get(authorize_for(&env, "contoso.com", LOOPBACK_APP, wrong))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{wrong}");
        assert!(
            response.text().await.expect("html").contains("AADSTS50011"),
            "{wrong}"
        );
    }
}

#[tokio::test]
async fn authorization_codes_are_bound_to_their_client_redirect_tenant_and_time() {
    let env = start_with_apps(|c| c.seed.lifetimes.authorization_code_seconds = 2).await;
    let redirect = "http://127.0.0.1:61001/callback";
    // Another client (AADSTS70000), another redirect URI (50011), another tenant or cloud
    // (700005): each refusal leaves the code unredeemed, so one code serves them all.
    let code = code_for(&env, "contoso.com", LOOPBACK_APP, redirect).await;
    let (status, body) = redeem(&env, "contoso.com", MODULE_CLIENT, &code, redirect, &[]).await;
    assert_aad(status, &body, 400, "invalid_grant", 70000);
    let (status, body) = redeem(
        &env,
        "contoso.com",
        LOOPBACK_APP,
        &code,
        "http://127.0.0.1:61001/elsewhere",
        &[],
    )
    .await;
    assert_aad(status, &body, 400, "invalid_grant", 50011);
    let (status, body) = redeem(&env, "organizations", LOOPBACK_APP, &code, redirect, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    // The module's client exists in every tenant, so the tenant check is what refuses.
    let module_redirect = "http://localhost:61002";
    let code = code_for(&env, "contoso.com", MODULE_CLIENT, module_redirect).await;
    for tenant in ["fabrikam-partner.onmicrosoft.com", "usgov/organizations"] {
        let (status, body) = redeem(&env, tenant, MODULE_CLIENT, &code, module_redirect, &[]).await;
        assert_aad(status, &body, 400, "invalid_grant", 700005);
    }
    // A confidential web app: appidacr 1 with its secret, 2 with its certificate.
    let web = "https://app.example/signin";
    let code = code_for(&env, "contoso.com", WEB_APP, web).await;
    let (status, body) = redeem(&env, "contoso.com", WEB_APP, &code, web, &[]).await;
    assert_aad(status, &body, 401, "invalid_client", 7000218);
    let (status, body) = redeem(
        &env,
        "contoso.com",
        WEB_APP,
        &code,
        web,
        &[("client_secret", WEB_SECRET)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["appidacr"],
        "1"
    );
    let app = env
        .tenant("contoso")
        .apps
        .iter()
        .find(|a| a.client_id.to_string() == WEB_APP)
        .expect("web app");
    let (cert, key) = env.cert_and_key(app);
    let assertion = sandbox::client::client_assertion(
        &sandbox::client::token_endpoint(env.sandbox.base_url(), "contoso.com"),
        WEB_APP,
        &cert,
        &key,
        &sandbox::client::AssertionOptions::default(),
    )
    .expect("assertion");
    let code = code_for(&env, "contoso.com", WEB_APP, web).await;
    let (status, body) = redeem(
        &env,
        "contoso.com",
        WEB_APP,
        &code,
        web,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["appidacr"],
        "2"
    );
    // Codes expire (AADSTS70008).
    let code = code_for(&env, "contoso.com", LOOPBACK_APP, redirect).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = redeem(&env, "contoso.com", LOOPBACK_APP, &code, redirect, &[]).await;
    assert_aad(status, &body, 400, "invalid_grant", 70008);
}

#[tokio::test]
async fn device_codes_are_bound_to_their_tenant_and_cloud() {
    let env = start().await;
    let poll_at = |tenant: &'static str, device: String| {
        let env = &env;
        async move {
            env.post_form(
                &format!("{tenant}/oauth2/v2.0/token"),
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("client_id", MODULE_CLIENT),
                    ("device_code", &device),
                ],
            )
            .await
        }
    };
    // Issued for contoso: another tenant or cloud is refused even before approval.
    let body = device_code(&env, "contoso.com").await;
    let device = body["device_code"]
        .as_str()
        .expect("device code")
        .to_owned();
    for tenant in [
        "fabrikam-partner.onmicrosoft.com",
        "usgov/organizations",
        "usgov/contoso.com",
    ] {
        let (status, body) = poll_at(tenant, device.clone()).await;
        assert_aad(status, &body, 400, "invalid_grant", 700005);
    }
    let (status, body) = poll_at("contoso.com", device.clone()).await;
    assert_aad(status, &body, 400, "authorization_pending", 70016);
    // Issued at organizations and approved by a contoso user: bound to contoso from then on.
    let body = device_code(&env, "organizations").await;
    let device = body["device_code"]
        .as_str()
        .expect("device code")
        .to_owned();
    let page = device_sign_in(
        &env,
        body["verification_uri"].as_str().expect("uri"),
        body["user_code"].as_str().expect("code"),
        "exadmin@contoso.onmicrosoft.com",
    )
    .await;
    submit(&env, &page, &[("decision", "approve")]).await;
    let (status, body) = poll_at("fabrikam-partner.onmicrosoft.com", device.clone()).await;
    assert_aad(status, &body, 400, "invalid_grant", 700005);
    let (status, body) = poll_at("contoso.onmicrosoft.com", device).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

#[tokio::test]
async fn device_code_appidacr_follows_the_polling_client() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let (client_id, secret) = (app.client_id.to_string(), app.client_secrets[0].clone());
    let (status, body) = env
        .post_form(
            "contoso.com/oauth2/v2.0/devicecode",
            &[
                ("client_id", &client_id),
                ("scope", "https://outlook.office365.com/.default"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let device = body["device_code"]
        .as_str()
        .expect("device code")
        .to_owned();
    let page = device_sign_in(
        &env,
        body["verification_uri"].as_str().expect("uri"),
        body["user_code"].as_str().expect("code"),
        "exadmin@contoso.onmicrosoft.com",
    )
    .await;
    assert!(page.contains("exo-automation"), "{page}");
    submit(&env, &page, &[("decision", "approve")]).await;
    let poll = |extra: Option<(&'static str, String)>| {
        let (env, client_id, device) = (&env, client_id.clone(), device.clone());
        async move {
            let mut form = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
                ),
                ("client_id", client_id),
                ("device_code", device),
            ];
            form.extend(extra);
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.post_form("contoso.com/oauth2/v2.0/token", &form).await
        }
    };
    // A confidential client must authenticate when it polls; its secret makes appidacr 1.
    let (status, body) = poll(None).await;
    assert_aad(status, &body, 401, "invalid_client", 7000218);
    let (status, body) = poll(Some(("client_secret", secret))).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["appidacr"],
        "1"
    );
}
