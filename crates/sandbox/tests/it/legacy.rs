//! The legacy `/PowerShell-LiveID` endpoint: Basic auth policy, token-as-password, partner
//! access and the session limit.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Env, assert_exo, start, start_with};

async fn call(
    env: &Env,
    path: &str,
    user: &str,
    password: &str,
    shell: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = env
        .http
        .post(env.url(path))
        .basic_auth(user, Some(password))
        .json(
            &json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": 2}}}),
        );
    if let Some(shell) = shell {
        request = request.header("X-PowerShell-ShellId", shell);
    }
    let response = request.send().await.expect("post");
    let status = response.status();
    let shell = response
        .headers()
        .get("x-powershell-shellid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, shell, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn basic_auth_is_refused_unless_the_tenant_allows_it() {
    let env = start().await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = env.user(upn).password.clone();
    let response = env
        .http
        .post(env.url("PowerShell-LiveID"))
        .basic_auth(upn, Some(&password))
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .starts_with("Basic")
    );
    let body: Value = response.json().await.expect("json");
    assert_exo(
        StatusCode::UNAUTHORIZED,
        &body,
        401,
        "Basic authentication is disabled",
    );
    // A token as the password works, also for a partner with DelegatedOrg; paths are case-insensitive.
    let token = env.app_token().await;
    let (status, _, body) = call(
        &env,
        "powershell-liveid/?BasicAuthToOAuthConversion=true",
        "app@contoso.onmicrosoft.com",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["value"].as_array().map(Vec::len), Some(2));
    let partner = env
        .app_token_for(
            "fabrikam-partner",
            "fabrikam-msp-tool",
            "",
            crate::support::EXO_SCOPE,
        )
        .await
        .expect("token");
    let (status, _, body) = call(&env, "PowerShell-LiveID?DelegatedOrg=contoso.onmicrosoft.com&BasicAuthToOAuthConversion=true&email=SystemMailbox%7Bbb558c35-97f1-4cb9-8ff7-d53741dc928c%7D%40contoso.onmicrosoft.com", "x", &partner, None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, _, body) = call(
        &env,
        "PowerShell-LiveID?BasicAuthToOAuthConversion=true",
        "x",
        "not-a-token",
        None,
    )
    .await;
    assert_exo(status, &body, 401, "Authentication failed");
}

#[tokio::test]
async fn basic_auth_when_enabled_and_the_five_session_limit() {
    let env = start_with(|c| c.seed.tenants[0].basic_auth_enabled = true).await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = env.user(upn).password.clone();
    let (status, _, body) = call(&env, "PowerShell-LiveID", upn, "wrong", None).await;
    assert_exo(status, &body, 401, "AADSTS50126");
    let mfa = "admin@contoso.onmicrosoft.com";
    let (status, _, body) = call(
        &env,
        "PowerShell-LiveID",
        mfa,
        &env.user(mfa).password.clone(),
        None,
    )
    .await;
    assert_exo(status, &body, 401, "multi-factor");
    let nopwsh = "nopwsh@contoso.onmicrosoft.com";
    let (status, _, body) = call(
        &env,
        "PowerShell-LiveID",
        nopwsh,
        &env.user(nopwsh).password.clone(),
        None,
    )
    .await;
    assert_exo(status, &body, 403, "EXOModuleEnabled");
    let mut shells = Vec::new();
    for _ in 0..5 {
        let (status, shell, body) = call(&env, "PowerShell-LiveID", upn, &password, None).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        shells.push(shell.expect("a session id"));
    }
    let (status, _, body) = call(&env, "PowerShell-LiveID", upn, &password, None).await;
    assert_exo(status, &body, 400, "maximum number of 5 concurrent shells");
    // Existing sessions keep working; closing one frees a slot.
    let (status, shell, _) =
        call(&env, "PowerShell-LiveID", upn, &password, Some(&shells[0])).await;
    assert_eq!(
        (status, shell.as_deref()),
        (StatusCode::OK, Some(shells[0].as_str()))
    );
    let response = env
        .http
        .delete(env.url("PowerShell-LiveID"))
        .basic_auth(upn, Some(&password))
        .header("X-PowerShell-ShellId", &shells[1])
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _, body) = call(&env, "PowerShell-LiveID", upn, &password, Some(&shells[1])).await;
    assert_exo(status, &body, 400, "the shell was not found");
    let (status, _, _) = call(&env, "PowerShell-LiveID", upn, &password, None).await;
    assert_eq!(status, StatusCode::OK);
    // The limit is per user.
    let other = "reader@contoso.onmicrosoft.com";
    let (status, _, _) = call(
        &env,
        "PowerShell-LiveID",
        other,
        &env.user(other).password.clone(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn idle_sessions_expire() {
    let env = start_with(|c| {
        c.seed.tenants[0].basic_auth_enabled = true;
        c.seed.legacy.max_sessions_per_user = 1;
        c.seed.legacy.session_idle_seconds = 1;
    })
    .await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = env.user(upn).password.clone();
    let (status, _, _) = call(&env, "PowerShell-LiveID", upn, &password, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&env, "PowerShell-LiveID", upn, &password, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, _) = call(&env, "PowerShell-LiveID", upn, &password, None).await;
    assert_eq!(status, StatusCode::OK, "the idle session expired");
}

#[tokio::test]
async fn the_session_limit_holds_under_parallel_requests() {
    let env = start_with(|c| c.seed.tenants[0].basic_auth_enabled = true).await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = env.user(upn).password.clone();
    let url = env.url("PowerShell-LiveID");
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let (http, url, password) = (env.http.clone(), url.clone(), password.clone());
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .basic_auth(upn, Some(password))
                    .json(&json!({"CmdletInput": {"CmdletName": "Get-AcceptedDomain"}}))
                    .send()
                    .await
                    .expect("post");
                (
                    response.status(),
                    response.headers().contains_key("x-powershell-shellid"),
                )
            })
        })
        .collect();
    let mut opened = 0;
    let mut refused = 0;
    for request in requests {
        match request.await.expect("join") {
            (StatusCode::OK, true) => opened += 1,
            (StatusCode::BAD_REQUEST, false) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((opened, refused), (5, 7), "exactly five sessions per user");
}
