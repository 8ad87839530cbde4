//! Memory bounds (refresh tokens, issued secrets, the request log) and the privacy of what the
//! sandbox writes to disk.

use reqwest::StatusCode;

use crate::support::{EXO_SCOPE, MODULE_CLIENT, assert_aad, start_in, start_with};

#[tokio::test]
async fn the_refresh_token_store_is_capped() {
    let env = start_with(|c| c.seed.limits.max_refresh_tokens = 2).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (status, body) = env
            .ropc(
                "organizations",
                "exadmin@contoso.onmicrosoft.com",
                &format!("{EXO_SCOPE} offline_access"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        tokens.push(body["refresh_token"].as_str().expect("rt").to_owned());
    }
    let refresh = |rt: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", MODULE_CLIENT),
            ("refresh_token", rt),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let env = &env;
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            env.post_form("organizations/oauth2/v2.0/token", &form)
                .await
        }
    };
    // The oldest was evicted to make room; the newest still work (refreshing the newest
    // evicts the next oldest, so check the newest last).
    let (status, body) = refresh(&tokens[0]).await;
    assert_aad(status, &body, 400, "invalid_grant", 9002313);
    let (status, body) = refresh(&tokens[2]).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

#[tokio::test]
async fn issued_secrets_are_kept_only_on_request_and_bounded() {
    let off = start_with(|c| c.record_secrets = false).await;
    off.app_token().await;
    off.ropc(
        "organizations",
        "exadmin@contoso.onmicrosoft.com",
        EXO_SCOPE,
    )
    .await;
    assert!(
        off.sandbox.issued_secrets().is_empty(),
        "nothing kept by default"
    );

    let on = start_with(|c| {
        c.record_secrets = true;
        c.seed.limits.max_issued_secrets = 3;
        c.seed.limits.max_request_log = 4;
    })
    .await;
    let mut last = String::new();
    for _ in 0..5 {
        last = on.app_token().await;
    }
    let secrets = on.sandbox.issued_secrets();
    assert_eq!(secrets.len(), 3);
    assert_eq!(secrets.last(), Some(&last), "the newest are kept");
    assert_eq!(
        on.sandbox.request_log().len(),
        4,
        "the request log is bounded too"
    );
}

#[tokio::test]
async fn files_holding_secrets_are_private() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let env = start_in(root, |c| {
        c.state_dir = state.clone();
        c.keys_dir = None;
    })
    .await;
    let token = env.app_token().await;
    let (status, _) = env
        .invoke(
            "contoso.com",
            &token,
            "Set-Mailbox",
            serde_json::json!({"Identity": "AdeleV", "Office": "HQ"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        assert_eq!(mode(&state), 0o700);
        assert_eq!(
            mode(&state.join("sandbox.json")),
            0o600,
            "it holds identity_header"
        );
        for dir in ["keys", "keys/apps", "exchange"] {
            assert_eq!(mode(&state.join(dir)), 0o700, "{dir}");
        }
        let mut files = vec![state.join("sandbox.json")];
        for dir in ["keys", "keys/apps", "exchange"] {
            for entry in std::fs::read_dir(state.join(dir)).expect("list") {
                let path = entry.expect("entry").path();
                if path.is_file() && path.file_name().is_some_and(|n| n != ".lock") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 8, "{files:?}");
        for file in files {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("sandbox.json")).expect("sandbox.json"))
            .expect("json");
    assert_eq!(info["identity_header"], env.sandbox.identity_header());
}
