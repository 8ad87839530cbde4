//! Fault injection through the Rust API and the admin endpoint, and the request log.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sandbox::{FaultKind, FaultRule, FaultTarget};
use serde_json::{Value, json};

use crate::support::{EXO_SCOPE, assert_aad, assert_exo, start};

#[tokio::test]
async fn drop_the_third_invoke_command_request() {
    let env = start().await;
    let token = env.app_token().await;
    env.sandbox
        .faults()
        .add(
            FaultRule::new(FaultKind::Drop, FaultTarget::Exchange)
                .skip(2)
                .count(1),
        )
        .expect("fault");
    let url = env.invoke_url("contoso.com");
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let result = env
            .http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"CmdletInput": {"CmdletName": "Get-AcceptedDomain"}}))
            .send()
            .await;
        outcomes.push(
            result
                .map(|r| r.status().as_u16())
                .map_err(|e| e.is_connect() || e.is_request() || e.is_body()),
        );
    }
    assert_eq!(outcomes[..2], [Ok(200), Ok(200)]);
    assert!(
        outcomes[2].is_err(),
        "the third request gets no answer: {outcomes:?}"
    );
    assert_eq!(outcomes[3], Ok(200), "the server keeps answering");
    let log = env.sandbox.request_log();
    let exchange: Vec<_> = log
        .iter()
        .filter(|r| r.service == sandbox::Service::Exchange)
        .collect();
    assert_eq!(
        exchange.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 0, 200]
    );
    assert_eq!(exchange[2].faults, ["drop"]);
}

#[tokio::test]
async fn throttling_unavailability_and_delays_in_each_shape() {
    let env = start().await;
    let token = env.app_token().await;
    let faults = env.sandbox.faults();
    faults
        .add(
            FaultRule::new(
                FaultKind::Throttle {
                    retry_after_seconds: 7,
                },
                FaultTarget::Exchange,
            )
            .count(1),
        )
        .expect("fault");
    let (status, headers, body) = env
        .invoke_at(
            &env.invoke_url("contoso.com"),
            &token,
            "Get-AcceptedDomain",
            json!({}),
            None,
        )
        .await;
    assert_exo(status, &body, 429, "throttled");
    assert_eq!(headers["retry-after"], "7");
    faults
        .add(FaultRule::new(FaultKind::Unavailable, FaultTarget::Exchange).count(2))
        .expect("fault");
    for _ in 0..2 {
        let (status, body) = env
            .invoke("contoso.com", &token, "Get-AcceptedDomain", json!({}))
            .await;
        assert_exo(status, &body, 503, "temporarily unavailable");
    }
    let (status, _) = env
        .invoke("contoso.com", &token, "Get-AcceptedDomain", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Identity shapes, tenant-scoped.
    faults
        .add(
            FaultRule::new(
                FaultKind::Throttle {
                    retry_after_seconds: 2,
                },
                FaultTarget::Identity,
            )
            .tenant("contoso")
            .count(1),
        )
        .expect("fault");
    faults
        .add(
            FaultRule::new(FaultKind::Unavailable, FaultTarget::Identity)
                .tenant("fabrikam-partner")
                .count(1),
        )
        .expect("fault");
    let response = env
        .http
        .get(env.url("contoso.com/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers()["retry-after"], "2");
    let status = response.status();
    assert_aad(
        status,
        &response.json().await.expect("json"),
        429,
        "temporarily_unavailable",
        90055,
    );
    let (status, body) = env
        .get_json("fabrikam-partner.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        .await;
    assert_aad(status, &body, 503, "temporarily_unavailable", 90033);
    // Managed identity shape, and a delay.
    faults
        .add(
            FaultRule::new(
                FaultKind::Throttle {
                    retry_after_seconds: 1,
                },
                FaultTarget::ManagedIdentity,
            )
            .count(1),
        )
        .expect("fault");
    let url = format!(
        "{}metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://outlook.office365.com",
        env.sandbox.managed_identity_url()
    );
    let response = env
        .http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    faults
        .add(FaultRule::new(FaultKind::Delay { ms: 300 }, FaultTarget::ManagedIdentity).count(1))
        .expect("fault");
    let started = Instant::now();
    let response = env
        .http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_admin_endpoint_manages_rules() {
    let env = start().await;
    let response = env
        .http
        .post(env.url("_sandbox/faults"))
        .json(&json!({"kind": "unavailable", "target": "identity", "skip": 1, "count": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");
    let discovery = "common/v2.0/.well-known/openid-configuration";
    let statuses = [
        env.get_json(discovery).await.0,
        env.get_json(discovery).await.0,
        env.get_json(discovery).await.0,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    let (_, rules) = env.get_json("_sandbox/faults").await;
    assert_eq!(
        (
            rules[0]["id"].as_u64(),
            rules[0]["seen"].as_u64(),
            rules[0]["hits"].as_u64()
        ),
        (Some(id), Some(3), Some(1))
    );
    let response = env
        .http
        .delete(env.url(&format!("_sandbox/faults/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = env
        .http
        .delete(env.url(&format!("_sandbox/faults/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for bad in [
        json!({"kind": "explode"}),
        json!({"kind": "drop", "tenant": "nowhere"}),
        json!({"kind": "revoke_refresh_tokens", "aadsts": 1}),
    ] {
        let response = env
            .http
            .post(env.url("_sandbox/faults"))
            .json(&bad)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    env.http
        .post(env.url("_sandbox/faults"))
        .json(&json!({"kind": "drop"}))
        .send()
        .await
        .expect("post");
    let response = env
        .http
        .delete(env.url("_sandbox/faults"))
        .send()
        .await
        .expect("delete");
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "admin requests are never faulted"
    );
    assert!(env.sandbox.faults().list().is_empty());
}

#[tokio::test]
async fn clock_skew_makes_fresh_tokens_unusable() {
    let env = start().await;
    env.sandbox
        .faults()
        .add(FaultRule::new(
            FaultKind::ClockSkew { seconds: -7200 },
            FaultTarget::Identity,
        ))
        .expect("fault");
    let token = env
        .app_token_for("contoso", "exo-automation", "", EXO_SCOPE)
        .await
        .expect("token");
    let claims = crate::support::claims(&token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        claims["exp"].as_i64().expect("exp") < now,
        "minted in the past"
    );
    let (status, body) = env
        .invoke("contoso.com", &token, "Get-AcceptedDomain", json!({}))
        .await;
    assert_exo(status, &body, 401, "expired");
    // Skewing Exchange's clock the same way makes the token valid again.
    env.sandbox
        .faults()
        .add(FaultRule::new(
            FaultKind::ClockSkew { seconds: -7200 },
            FaultTarget::Exchange,
        ))
        .expect("fault");
    let (status, _) = env
        .invoke("contoso.com", &token, "Get-AcceptedDomain", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_request_log_is_complete_and_redacted() {
    let env = start().await;
    let token = env.app_token().await;
    let (_, body) = env
        .ropc(
            "organizations",
            "exadmin@contoso.onmicrosoft.com",
            "https://outlook.office365.com/.default offline_access",
        )
        .await;
    let refresh = body["refresh_token"].as_str().expect("rt").to_owned();
    env.http
        .post(env.invoke_url("contoso.com"))
        .bearer_auth(&token)
        .header("client-request-id", "11111111-1111-4111-8111-111111111111")
        .header("connection-id", "22222222-2222-4222-8222-222222222222")
        .header("X-AnchorMailbox", "UPN:exadmin@contoso.onmicrosoft.com")
        .header("Prefer", "odata.maxpagesize=5")
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox"}}))
        .send()
        .await
        .expect("post");
    env.http
        .get(env.url(&format!("cb?code={refresh}&state=x")))
        .send()
        .await
        .expect("get");
    let response = env
        .http
        .get(env.url("_sandbox/requests"))
        .send()
        .await
        .expect("get");
    let text = response.text().await.expect("body");
    for secret in env.sandbox.issued_secrets() {
        assert!(
            !text.contains(&secret),
            "an issued secret leaked into the request log"
        );
    }
    assert!(!text.contains(&env.user("exadmin@contoso.onmicrosoft.com").password));
    let log: Vec<Value> = serde_json::from_str(&text).expect("json");
    let invoke = log
        .iter()
        .find(|r| r["cmdlet"] == "Get-Mailbox")
        .expect("logged");
    assert_eq!(invoke["status"], 200);
    assert_eq!(invoke["tenant"], "contoso.com");
    assert_eq!(
        invoke["client_request_id"],
        "11111111-1111-4111-8111-111111111111"
    );
    assert_eq!(
        invoke["connection_id"],
        "22222222-2222-4222-8222-222222222222"
    );
    assert_eq!(
        invoke["anchor_mailbox"],
        "UPN:exadmin@contoso.onmicrosoft.com"
    );
    assert_eq!(invoke["prefer"], "odata.maxpagesize=5");
    assert!(
        invoke["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .any(|h| h[0] == "authorization" && h[1] == "Bearer [redacted]")
    );
    assert!(
        log.iter()
            .any(|r| r["path"] == "/cb?code=[redacted]&state=x")
    );
    let response = env
        .http
        .delete(env.url("_sandbox/requests"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}
