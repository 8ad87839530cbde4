//! InvokeCommand: paging, cmdlets, mutations, authorization, clouds.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{EXO_SCOPE, assert_exo, start, start_in, start_with};

#[tokio::test]
async fn paging_follows_next_links_across_many_pages() {
    let env = start_with(|c| c.extra_mailboxes = 2_500).await;
    let token = env.app_token().await;
    let total = 2_500 + env.tenant("contoso").users.len() + env.tenant("contoso").mailboxes.len();
    let mut url = env.invoke_url("contoso.onmicrosoft.com");
    let mut names = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let (status, headers, body) = env
            .invoke_at(
                &url,
                &token,
                "Get-Mailbox",
                json!({"ResultSize": "Unlimited"}),
                Some("odata.maxpagesize=700"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(headers["preference-applied"], "odata.maxpagesize=700");
        pages += 1;
        for row in body["value"].as_array().expect("value") {
            assert!(
                names.insert(row["Name"].as_str().expect("Name").to_owned()),
                "no duplicates across pages"
            );
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&env.invoke_url("contoso.onmicrosoft.com")),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!((names.len(), pages), (total, total.div_ceil(700)));
    // The default ResultSize is 1000, with the real warning.
    let (_, _, body) = env
        .invoke_at(
            &env.invoke_url("contoso.onmicrosoft.com"),
            &token,
            "Get-Mailbox",
            json!({}),
            Some("odata.maxpagesize=1000"),
        )
        .await;
    assert_eq!(body["value"].as_array().map(Vec::len), Some(1000));
    assert!(body.get("@odata.nextLink").is_none());
    assert!(
        body["@adminapi.warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("only the first 1000 items"))
    );
    // -ResultSize N pages too and warns when more exist.
    let (_, _, body) = env
        .invoke_at(
            &env.invoke_url("contoso.onmicrosoft.com"),
            &token,
            "Get-Mailbox",
            json!({"ResultSize": 15}),
            Some("odata.maxpagesize=10"),
        )
        .await;
    assert_eq!(body["value"].as_array().map(Vec::len), Some(10));
    let next = body["@odata.nextLink"].as_str().expect("next").to_owned();
    let (_, _, body) = env
        .invoke_at(
            &next,
            &token,
            "Get-Mailbox",
            json!({"ResultSize": 15}),
            Some("odata.maxpagesize=10"),
        )
        .await;
    assert_eq!(body["value"].as_array().map(Vec::len), Some(5));
    assert!(
        body["@adminapi.warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("increase the value for the ResultSize"))
    );
    // $select and a bad skip token.
    let (_, _, body) = env
        .invoke_at(
            &format!("{}?$select=Name,Alias", env.invoke_url("contoso.com")),
            &token,
            "Get-Mailbox",
            json!({"ResultSize": 2}),
            None,
        )
        .await;
    assert_eq!(body["value"][0].as_object().map(|o| o.len()), Some(2));
    let (status, _, body) = env
        .invoke_at(
            &format!("{}?$skiptoken=garbage", env.invoke_url("contoso.com")),
            &token,
            "Get-Mailbox",
            json!({}),
            None,
        )
        .await;
    assert_exo(status, &body, 400, "skiptoken");
}

#[tokio::test]
async fn read_cmdlets_filters_and_identities() {
    let env = start().await;
    let token = env.app_token().await;
    let tid = env.tenant("contoso").id.to_string();
    let get = |cmdlet: &'static str, params: Value| {
        let (env, token, tid) = (&env, token.clone(), tid.clone());
        async move { env.invoke(&tid, &token, cmdlet, params).await }
    };
    let count = |body: &Value| body["value"].as_array().map_or(0, Vec::len);
    let shared = env
        .tenant("contoso")
        .mailboxes
        .iter()
        .filter(|m| m.recipient_type_details == "SharedMailbox")
        .count();
    let (status, body) = get(
        "Get-Mailbox",
        json!({"RecipientTypeDetails": "SharedMailbox"}),
    )
    .await;
    assert_eq!((status, count(&body)), (StatusCode::OK, shared));
    let (_, body) = get(
        "Get-Mailbox",
        json!({"Filter": "RecipientTypeDetails -eq 'SharedMailbox'"}),
    )
    .await;
    assert_eq!(count(&body), shared);
    let (_, body) = get("get-mailbox", json!({"filter": "DisplayName -like 'Conference Room*' -and -not (Alias -eq 'conf-adams')"})).await;
    assert_eq!(count(&body), 3);
    let (_, body) = get(
        "Get-Mailbox",
        json!({"Filter": "(Alias -eq 'AdeleV') -or (PrimarySmtpAddress -eq 'info@contoso.com')"}),
    )
    .await;
    assert_eq!(count(&body), 2);
    let (_, body) = get("Get-Mailbox", json!({"Anr": "conf"})).await;
    assert_eq!(count(&body), 4);
    let (_, body) = get("Get-Mailbox", json!({"Identity": "conf-*"})).await;
    assert_eq!(count(&body), 4);
    let adele = env
        .user("AdeleV@contoso.onmicrosoft.com")
        .object_id
        .to_string();
    for identity in [
        "AdeleV",
        "adelev@contoso.onmicrosoft.com",
        "smtp:AdeleV@contoso.com",
        adele.as_str(),
    ] {
        let (status, body) = get("Get-Mailbox", json!({"Identity": identity})).await;
        assert_eq!(
            (status, body["value"][0]["DisplayName"].as_str()),
            (StatusCode::OK, Some("Adele Vance")),
            "{identity}"
        );
    }
    let row = &get("Get-Mailbox", json!({"Identity": "AdeleV"})).await.1["value"][0];
    for field in [
        "Guid",
        "ExchangeGuid",
        "ExternalDirectoryObjectId",
        "PrimarySmtpAddress",
        "EmailAddresses",
        "RecipientTypeDetails",
        "UserPrincipalName",
        "WhenCreated",
    ] {
        assert!(!row[field].is_null(), "{field}");
    }
    let (status, body) = get("Get-Mailbox", json!({"Identity": "nobody"})).await;
    assert_exo(status, &body, 404, "couldn't be found");
    assert!(
        body["error"]["details"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(
                "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
            ))
    );
    let (status, body) = get("Get-Mailbox", json!({"Filter": "Colour -eq 'red'"})).await;
    assert_exo(
        status,
        &body,
        400,
        "is not a recognized filterable property",
    );
    let (status, body) = get("Get-Mailbox", json!({"Filter": "Alias -eq"})).await;
    assert_exo(status, &body, 400, "Invalid filter syntax");
    let (status, body) = get("Get-Mailbox", json!({"RecipientTypeDetails": "Spaceship"})).await;
    assert_exo(
        status,
        &body,
        400,
        "Unable to match the identifier name Spaceship",
    );
    // Other read cmdlets.
    let (_, body) = get(
        "Get-Recipient",
        json!({"Filter": "Department -eq 'Engineering'"}),
    )
    .await;
    assert_eq!(count(&body), 2);
    assert_eq!(body["value"][0]["RecipientType"], "UserMailbox");
    let (_, body) = get("Get-User", json!({"Identity": "nopwsh"})).await;
    assert_eq!(body["value"][0]["EXOModuleEnabled"], false);
    let (_, body) = get("Get-AcceptedDomain", json!({})).await;
    let domains: Vec<&str> = body["value"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|d| d["DomainName"].as_str())
        .collect();
    assert_eq!(domains, ["contoso.onmicrosoft.com", "contoso.com"]);
    assert_eq!(body["value"][1]["Default"], true);
    let (_, body) = get("Get-OrganizationConfig", json!({})).await;
    assert_eq!(body["value"][0]["Name"], "contoso.onmicrosoft.com");
    // Bad parameters and cmdlets fail like the service.
    let (status, body) = get("Get-Mailbox", json!({"Colour": "red"})).await;
    assert_exo(
        status,
        &body,
        400,
        "A parameter cannot be found that matches parameter name 'Colour'",
    );
    let (status, body) = get("Get-Mailbox", json!({"ResultSize": "lots"})).await;
    assert_exo(status, &body, 400, "Cannot convert value \"lots\"");
    let (status, body) = get("Get-Mailbox", json!({"Res": 1})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "unique prefixes bind like PowerShell: {body:#}"
    );
    let (status, body) = get("Get-Spaceship", json!({})).await;
    assert_exo(status, &body, 403, "is not recognized");
    let (status, body) = get(
        "Get-Mailbox",
        json!({"ErrorAction": "Stop", "WarningAction": "SilentlyContinue"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "common parameters are accepted: {body:#}"
    );
}

#[tokio::test]
async fn mutations_are_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().to_owned();
    let env = start_in(dir, |c| c.extra_mailboxes = 10).await;
    let token = env.app_token().await;
    let run = |cmdlet: &'static str, params: Value| {
        let (env, token) = (&env, token.clone());
        async move { env.invoke("contoso.com", &token, cmdlet, params).await }
    };
    let (status, body) = run(
        "New-Mailbox",
        json!({"Name": "Helpdesk", "Shared": true, "DisplayName": "IT Helpdesk"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        body["value"][0]["PrimarySmtpAddress"],
        "Helpdesk@contoso.com"
    );
    assert_eq!(body["value"][0]["RecipientTypeDetails"], "SharedMailbox");
    let (status, body) = run("New-Mailbox", json!({"Name": "Helpdesk", "Shared": true})).await;
    assert_exo(status, &body, 400, "already being used");
    let (status, body) = run("New-Mailbox", json!({"Name": "Someone"})).await;
    assert_exo(
        status,
        &body,
        400,
        "missing mandatory parameters: MicrosoftOnlineServicesID, Password",
    );
    let (status, body) = run(
        "New-Mailbox",
        json!({"Name": "Other", "Shared": true, "PrimarySmtpAddress": "other@fabrikam.com"}),
    )
    .await;
    assert_exo(status, &body, 400, "isn't an accepted domain");
    let (status, body) = run("Set-Mailbox", json!({"Identity": "Helpdesk", "ForwardingSmtpAddress": "smtp:desk@contoso.com", "HiddenFromAddressListsEnabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (_, body) = run(
        "Set-Mailbox",
        json!({"Identity": "Helpdesk", "HiddenFromAddressListsEnabled": true}),
    )
    .await;
    assert!(
        body["@adminapi.warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("no settings of 'Helpdesk' have been modified"))
    );
    let (status, body) = run(
        "Set-Mailbox",
        json!({"Identity": "Helpdesk", "ForwardingSmtpAddress": "not an address"}),
    )
    .await;
    assert_exo(status, &body, 400, "Cannot convert value");
    let (status, body) = run(
        "Set-Mailbox",
        json!({"ForwardingSmtpAddress": "x@contoso.com"}),
    )
    .await;
    assert_exo(status, &body, 400, "missing mandatory parameters: Identity");
    let (status, body) = run(
        "Set-OrganizationConfig",
        json!({"FocusedInboxOn": false, "MailTipsLargeAudienceThreshold": "50"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, body) = run(
        "Set-OrganizationConfig",
        json!({"FocusedInboxOn": "sometimes"}),
    )
    .await;
    assert_exo(status, &body, 400, "Cannot convert value");
    let (status, body) = run("Set-OrganizationConfig", json!({"Guid": "x"})).await;
    assert_exo(status, &body, 400, "A parameter cannot be found");
    // Remove-Mailbox asks for confirmation first (ShouldProcess), then removes.
    let (status, body) = run("Remove-Mailbox", json!({"Identity": "user000001"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["@adminapi.confirmationmessage"]
            .as_str()
            .is_some_and(|m| m.contains("Are you sure"))
    );
    let (_, body) = run(
        "Remove-Mailbox",
        json!({"Identity": "info", "Confirm": false}),
    )
    .await;
    assert!(
        body.get("@adminapi.confirmationmessage").is_none(),
        "{body:#}"
    );
    let (status, body) = run("Get-Mailbox", json!({"Identity": "info"})).await;
    assert_exo(status, &body, 404, "couldn't be found");
    // Generated mailboxes: changes and removals are kept as an overlay.
    let (status, body) = run(
        "Set-Mailbox",
        json!({"Identity": "user000002", "Office": "Overlay", "DisplayName": "Changed Two"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, body) = run(
        "Remove-Mailbox",
        json!({"Identity": "user000003", "Confirm": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    // Restart on the same state: changes survive, generated mailboxes are regenerated.
    let keys = env.sandbox.seed().tenants[0].apps[0]
        .certificate_file
        .clone();
    let crate::support::Env { sandbox, dir, .. } = env;
    sandbox.shutdown().await;
    assert!(
        !state.join("sandbox.json").exists(),
        "a clean shutdown removes the discovery file"
    );
    let env = start_in(dir, |c| c.extra_mailboxes = 10).await;
    assert_eq!(env.sandbox.seed().tenants[0].apps[0].certificate_file, keys);
    let token = env.app_token().await;
    let (_, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "Helpdesk"}),
        )
        .await;
    assert_eq!(
        body["value"][0]["ForwardingSmtpAddress"],
        "smtp:desk@contoso.com"
    );
    assert_eq!(body["value"][0]["HiddenFromAddressListsEnabled"], true);
    let (status, _) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "info"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "user000010"}),
        )
        .await;
    assert_eq!(body["value"][0]["Name"], "user000010");
    let (_, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "user000002"}),
        )
        .await;
    assert_eq!(
        (
            body["value"][0]["Office"].as_str(),
            body["value"][0]["DisplayName"].as_str()
        ),
        (Some("Overlay"), Some("Changed Two")),
        "a changed generated mailbox survives a restart"
    );
    let (status, _) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "user000003"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a removed generated mailbox stays removed"
    );
    let (_, body) = env
        .invoke("contoso.com", &token, "Get-OrganizationConfig", json!({}))
        .await;
    assert_eq!(
        (
            body["value"][0]["FocusedInboxOn"].as_bool(),
            body["value"][0]["MailTipsLargeAudienceThreshold"].as_i64()
        ),
        (Some(false), Some(50))
    );
}

#[tokio::test]
async fn authorization_rules() {
    let env = start().await;
    let app = env.app_token().await;
    let url = env.invoke_url("contoso.onmicrosoft.com");
    // No token, garbage, a token signed by another key (the federation test issuer).
    for token in [
        None,
        Some("garbage".to_owned()),
        Some(
            env.sandbox
                .federated_token("x", "https://outlook.office365.com"),
        ),
    ] {
        let mut request = env
            .http
            .post(&url)
            .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox"}}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .to_owned();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
    }
    // Wrong cloud: a global token at the GCC High endpoint.
    let (status, _, body) = env
        .invoke_at(
            &env.url("usgov/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"),
            &app,
            "Get-Mailbox",
            json!({}),
            None,
        )
        .await;
    assert_exo(status, &body, 401, "audience");
    // Apps without the role, users with and without rights.
    let no_role = env
        .app_token_for("contoso", "no-exchange-role", "", EXO_SCOPE)
        .await
        .expect("token");
    let (status, body) = env
        .invoke("contoso.com", &no_role, "Get-Mailbox", json!({}))
        .await;
    assert_exo(status, &body, 403, "Exchange.ManageAsApp");
    let reader = env.user_token("reader@contoso.onmicrosoft.com").await;
    let (status, _) = env
        .invoke(
            "contoso.com",
            &reader,
            "Get-Mailbox",
            json!({"ResultSize": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = env
        .invoke(
            "contoso.com",
            &reader,
            "Set-Mailbox",
            json!({"Identity": "AdeleV", "Office": "x"}),
        )
        .await;
    assert_exo(status, &body, 403, "is not recognized");
    let plain = env.user_token("AdeleV@contoso.onmicrosoft.com").await;
    let (status, body) = env
        .invoke("contoso.com", &plain, "Get-Mailbox", json!({}))
        .await;
    assert_exo(status, &body, 403, "no Exchange management role");
    let nopwsh = env.user_token("nopwsh@contoso.onmicrosoft.com").await;
    let (status, body) = env
        .invoke("contoso.com", &nopwsh, "Get-Mailbox", json!({}))
        .await;
    assert_exo(status, &body, 403, "EXOModuleEnabled");
    let exadmin = env.user_token("exadmin@contoso.onmicrosoft.com").await;
    let (status, _) = env
        .invoke(
            "contoso.com",
            &exadmin,
            "Set-Mailbox",
            json!({"Identity": "AdeleV", "Office": "Remote"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Partner access: fabrikam-partner manages contoso, not the other way round.
    let partner_app = env
        .app_token_for("fabrikam-partner", "fabrikam-msp-tool", "", EXO_SCOPE)
        .await
        .expect("partner token");
    let (status, body) = env
        .invoke(
            "contoso.onmicrosoft.com",
            &partner_app,
            "Get-Mailbox",
            json!({"Identity": "AdeleV"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let agent = env
        .user_token("agent@fabrikam-partner.onmicrosoft.com")
        .await;
    let (status, _) = env
        .invoke(
            "contoso.onmicrosoft.com",
            &agent,
            "Get-Mailbox",
            json!({"ResultSize": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = env
        .invoke(
            "fabrikam-partner.onmicrosoft.com",
            &app,
            "Get-Mailbox",
            json!({}),
        )
        .await;
    assert_exo(status, &body, 403, "no delegated (partner) access");
    let (status, body) = env
        .invoke("nowhere.example.com", &app, "Get-Mailbox", json!({}))
        .await;
    assert_exo(status, &body, 404, "couldn't be found");
}

#[tokio::test]
async fn tokens_expire_and_national_clouds_are_separate() {
    let env = start_with(|c| c.seed.lifetimes.access_token_seconds = Some(1)).await;
    let token = env.app_token().await;
    let (status, _) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"ResultSize": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"ResultSize": 1}),
        )
        .await;
    assert_exo(status, &body, 401, "expired");
    // GCC High and DoD share the US authority; each Exchange endpoint wants its own audience.
    let gov = env
        .app_token_for(
            "contoso",
            "exo-automation",
            "usgov",
            "https://outlook.office365.us/.default",
        )
        .await
        .expect("gov token");
    let tid = env.tenant("contoso").id;
    assert_eq!(
        crate::support::claims(&gov)["iss"],
        format!("https://login.microsoftonline.us/{tid}/")
    );
    let dod = env
        .app_token_for(
            "contoso",
            "exo-automation",
            "usgov",
            "https://outlook-dod.office365.us/.default",
        )
        .await
        .expect("dod token");
    let china = env
        .app_token_for(
            "contoso",
            "exo-automation",
            "china",
            "https://outlook.office365.cn/.default",
        )
        .await
        .expect("china token");
    let cases = [
        ("usgov", &gov, 200),
        ("dod", &dod, 200),
        ("china", &china, 200),
        ("dod", &gov, 401),
        ("usgov", &china, 401),
        ("", &gov, 401),
    ];
    for (prefix, token, expected) in cases {
        let url = env
            .url(&format!("{prefix}/adminapi/beta/contoso.com/InvokeCommand").replace("//", "/"));
        let (status, _, body) = env
            .invoke_at(&url, token, "Get-Mailbox", json!({"ResultSize": 1}), None)
            .await;
        assert_eq!(status.as_u16(), expected, "{prefix}: {body:#}");
    }
    let err = env
        .app_token_for(
            "contoso",
            "exo-automation",
            "",
            "https://outlook.office365.us/.default",
        )
        .await
        .expect_err("global authority has no US resource");
    assert!(
        matches!(err, sandbox::client::ClientError::Service { ref codes, .. } if codes == &[500011]),
        "{err}"
    );
}

#[tokio::test]
async fn concurrent_mutations_are_all_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = start_in(dir, |_| {}).await;
    let token = env.app_token().await;
    let url = env.invoke_url("contoso.com");
    let requests: Vec<_> = (0..24)
        .map(|i| {
            let (http, url, token) = (env.http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let (cmdlet, parameters) = if i % 2 == 0 {
                    (
                        "New-Mailbox",
                        json!({"Name": format!("Parallel{i}"), "Shared": true}),
                    )
                } else {
                    (
                        "Set-Mailbox",
                        json!({"Identity": "AdeleV", "CustomAttribute1": format!("v{i}")}),
                    )
                };
                http.post(url)
                    .bearer_auth(token)
                    .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}))
                    .send()
                    .await
                    .expect("post")
                    .status()
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.expect("join"), StatusCode::OK);
    }
    let (_, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "AdeleV"}),
        )
        .await;
    let last_seen = body["value"][0]["CustomAttribute1"]
        .as_str()
        .expect("attr")
        .to_owned();
    let crate::support::Env { sandbox, dir, .. } = env;
    sandbox.shutdown().await;
    let env = start_in(dir, |_| {}).await;
    let token = env.app_token().await;
    let (_, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "Parallel*"}),
        )
        .await;
    assert_eq!(
        body["value"].as_array().map(Vec::len),
        Some(12),
        "every creation is on disk"
    );
    let (_, body) = env
        .invoke(
            "contoso.com",
            &token,
            "Get-Mailbox",
            json!({"Identity": "AdeleV"}),
        )
        .await;
    assert_eq!(
        body["value"][0]["CustomAttribute1"],
        last_seen.as_str(),
        "the last change is the one on disk"
    );
}
