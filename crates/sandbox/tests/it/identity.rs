//! Discovery, client credentials (certificate, secret, federated), ROPC and refresh tokens.

use reqwest::StatusCode;
use sandbox::Alg;
use sandbox::client::{self, AssertionOptions};
use serde_json::Value;

use crate::support::{EXO_SCOPE, MODULE_CLIENT, assert_aad, claims, jwt_header, start};

#[tokio::test]
async fn discovery_documents_point_at_the_sandbox() {
    let env = start().await;
    let base = env
        .sandbox
        .base_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let tid = env.tenant("contoso").id;
    let response = env
        .http
        .get(env.url("contoso.com/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        response.headers()["cache-control"],
        "max-age=86400, private"
    );
    let v2: Value = response.json().await.expect("json");
    assert_eq!(v2["issuer"], format!("{base}/{tid}/v2.0"));
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ] {
        let url = v2[field].as_str().expect(field);
        assert!(url.starts_with(&format!("{base}/{tid}/")), "{field}: {url}");
    }
    let (_, common) = env
        .get_json("common/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    assert_eq!(
        common["token_endpoint"],
        format!("{base}/common/oauth2/v2.0/token")
    );
    let (_, v1) = env
        .get_json(&format!("{tid}/.well-known/openid-configuration"))
        .await;
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(v1["token_endpoint"], format!("{base}/{tid}/oauth2/token"));
    // Userinfo is served by services the sandbox doesn't emulate: the real values.
    assert_eq!(
        v2["userinfo_endpoint"],
        "https://graph.microsoft.com/oidc/userinfo"
    );
    assert_eq!(
        v1["userinfo_endpoint"],
        format!("https://login.microsoftonline.com/{tid}/openid/userinfo")
    );
    let (_, gov) = env
        .get_json("usgov/organizations/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(
        gov["token_endpoint"],
        format!("{base}/usgov/organizations/oauth2/v2.0/token")
    );
    assert_eq!(gov["cloud_instance_name"], "microsoftonline.us");
    let (_, jwks) = env.get_json("common/discovery/v2.0/keys").await;
    let token = env.app_token().await;
    assert_eq!(jwks["keys"][0]["kid"], jwt_header(&token)["kid"]);
    assert_eq!(jwt_header(&token)["x5t"], jwt_header(&token)["kid"]);
    // The v2 key set names the issuer of the tokens its keys sign; the v1 set does not.
    assert_eq!(
        jwks["keys"][0]["issuer"],
        format!("{}{{tenantid}}/v2.0", env.sandbox.base_url())
    );
    let (_, v1_keys) = env.get_json("common/discovery/keys").await;
    let mut v2_keys = jwks.clone();
    v2_keys["keys"][0]
        .as_object_mut()
        .expect("a key")
        .remove("issuer");
    assert_eq!(v1_keys, v2_keys);
    // Unknown and invalid tenants.
    let (status, body) = env
        .get_json("nowhere.example.com/v2.0/.well-known/openid-configuration")
        .await;
    assert_aad(status, &body, 400, "invalid_tenant", 90002);
    let (status, body) = env
        .get_json("not_a_tenant/v2.0/.well-known/openid-configuration")
        .await;
    assert_aad(status, &body, 400, "invalid_tenant", 900023);
    // Instance discovery and user realm.
    let authority = format!("{base}/contoso.com/oauth2/v2.0/authorize");
    let (status, instance) = env
        .get_json(&format!(
            "common/discovery/instance?api-version=1.1&authorization_endpoint={authority}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        instance["tenant_discovery_endpoint"],
        format!("{base}/contoso.com/v2.0/.well-known/openid-configuration")
    );
    let (status, body) = env.get_json("common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.example.com/x/oauth2/v2.0/authorize").await;
    assert_aad(status, &body, 400, "invalid_instance", 50049);
    let (_, realm) = env
        .get_json("common/userrealm/AdeleV@contoso.onmicrosoft.com?api-version=1.0")
        .await;
    assert_eq!(realm["account_type"], "Managed");
    let (_, realm) = env
        .get_json("common/userrealm/x@unknown.example?api-version=1.0")
        .await;
    assert_eq!(realm["account_type"], "Unknown");
    let (_, realm) = env
        .get_json("common/userrealm/pat@corp.contoso.com?api-version=1.0")
        .await;
    assert_eq!(realm["account_type"], "Federated");
    assert_eq!(realm["federation_protocol"], "WSTrust");
}

#[tokio::test]
async fn client_credentials_with_every_assertion_variant() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let (cert, key) = env.cert_and_key(app);
    let tid = env.tenant("contoso").id.to_string();
    let client_id = app.client_id.to_string();
    let variants = [
        AssertionOptions::default(),
        AssertionOptions {
            alg: Alg::Rs256,
            ..AssertionOptions::default()
        },
        AssertionOptions {
            alg: Alg::Ps256,
            include_x5c: true,
            include_iat_nbf: false,
            lifetime_seconds: 300,
        },
        AssertionOptions {
            alg: Alg::Rs256,
            include_x5c: true,
            include_iat_nbf: false,
            lifetime_seconds: 300,
        },
    ];
    for options in variants {
        for tenant in [tid.as_str(), "contoso.onmicrosoft.com", "contoso.com"] {
            let endpoint = client::token_endpoint(env.sandbox.base_url(), tenant);
            let assertion = client::client_assertion(&endpoint, &client_id, &cert, &key, &options)
                .expect("assertion");
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("scope", EXO_SCOPE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
                ("x-client-SKU", "MSAL.Python"),
                ("client_info", "1"),
            ];
            let (status, body) = env
                .post_form(&format!("{tenant}/oauth2/v2.0/token"), &form)
                .await;
            assert_eq!(status, StatusCode::OK, "{options:?} {body:#}");
            assert!(
                body["expires_in"].is_u64() && body["ext_expires_in"].is_u64(),
                "v2 numbers are integers"
            );
            assert!(
                body.get("refresh_token").is_none()
                    && body.get("id_token").is_none()
                    && body.get("client_info").is_none()
            );
            let c = claims(body["access_token"].as_str().expect("token"));
            assert_eq!(c["aud"], "https://outlook.office365.com");
            assert_eq!(c["iss"], format!("https://sts.windows.net/{tid}/"));
            assert_eq!(
                (
                    c["ver"].as_str(),
                    c["idtyp"].as_str(),
                    c["appidacr"].as_str()
                ),
                (Some("1.0"), Some("app"), Some("2"))
            );
            assert_eq!(c["roles"][0], "Exchange.ManageAsApp");
            // The directory role, then the default every app-only token carries.
            assert_eq!(
                c["wids"],
                serde_json::json!([
                    "29232cdf-9323-42fd-ade2-1d097af3e4de",
                    "0997a1d0-0d1d-4acb-b408-d5ca73121e90"
                ])
            );
            let lifetime =
                c["exp"].as_i64().unwrap_or_default() - c["iat"].as_i64().unwrap_or_default();
            assert!(
                (3600..=5400).contains(&lifetime),
                "60–90 minutes: {lifetime}"
            );
            assert_eq!(c["appid"], client_id.as_str());
            assert!(c["uti"].is_string() && c["exp"].as_i64() > c["nbf"].as_i64());
        }
    }
    // v1 endpoint: `resource`, numbers as strings.
    let endpoint = format!("{}{tid}/oauth2/token", env.sandbox.base_url());
    let assertion = client::client_assertion(
        &endpoint,
        &client_id,
        &cert,
        &key,
        &AssertionOptions::default(),
    )
    .expect("assertion");
    let (status, body) = env
        .post_form(
            &format!("{tid}/oauth2/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("resource", "https://outlook.office365.com/"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    for field in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(
            body[field]
                .as_str()
                .is_some_and(|s| s.parse::<i64>().is_ok()),
            "{field} is a numeric string: {body:#}"
        );
    }
    assert_eq!(body["resource"], "https://outlook.office365.com");
    // Client secrets: post and basic.
    let secret = env.app("contoso", "exo-automation").client_secrets[0].clone();
    let (status, body) = env
        .post_form(
            &format!("{tid}/oauth2/v2.0/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("scope", EXO_SCOPE),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["appidacr"],
        "1"
    );
    let response = env
        .http
        .post(env.url(&format!("{tid}/oauth2/v2.0/token")))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", EXO_SCOPE),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn client_credentials_errors() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let other = env.app("contoso", "no-exchange-role");
    let (cert, key) = env.cert_and_key(app);
    let (other_cert, other_key) = env.cert_and_key(other);
    let tid = env.tenant("contoso").id.to_string();
    let id = app.client_id.to_string();
    let endpoint = client::token_endpoint(env.sandbox.base_url(), &tid);
    let sign = |endpoint: &str, cert: &str, key: &str, options: AssertionOptions| {
        client::client_assertion(endpoint, &id, cert, key, &options).expect("assertion")
    };
    let good = sign(&endpoint, &cert, &key, AssertionOptions::default());
    let expired = sign(
        &endpoint,
        &cert,
        &key,
        AssertionOptions {
            lifetime_seconds: -3600,
            ..AssertionOptions::default()
        },
    );
    let wrong_key = sign(&endpoint, &cert, &other_key, AssertionOptions::default());
    let unknown_cert = sign(
        &endpoint,
        &other_cert,
        &other_key,
        AssertionOptions {
            alg: Alg::Rs256,
            ..AssertionOptions::default()
        },
    );
    let wrong_aud = sign(
        "https://127.0.0.1:1/elsewhere/oauth2/v2.0/token",
        &cert,
        &key,
        AssertionOptions::default(),
    );
    let other_id = other.client_id.to_string();
    let mismatched_sub = client::client_assertion(
        &endpoint,
        &other_id,
        &cert,
        &key,
        &AssertionOptions::default(),
    )
    .expect("assertion");
    let secret = app.client_secrets[0].clone();
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let cc = |tenant: &str,
              client: &str,
              scope: &str,
              assertion: Option<&str>|
     -> (String, Vec<(String, String)>) {
        let mut form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), client.to_owned()),
            ("scope".to_owned(), scope.to_owned()),
        ];
        if let Some(a) = assertion {
            form.push(("client_assertion_type".into(), jwt_bearer.into()));
            form.push(("client_assertion".into(), a.into()));
        }
        (format!("{tenant}/oauth2/v2.0/token"), form)
    };
    type Request = (String, Vec<(String, String)>);
    let cases: Vec<(Request, u16, &str, u64)> = vec![
        (
            cc(&tid, &id, EXO_SCOPE, Some(&wrong_key)),
            401,
            "invalid_client",
            700027,
        ),
        (
            cc(&tid, &id, EXO_SCOPE, Some(&unknown_cert)),
            401,
            "invalid_client",
            700027,
        ),
        (
            cc(&tid, &id, EXO_SCOPE, Some(&expired)),
            401,
            "invalid_client",
            700024,
        ),
        (
            cc(&tid, &id, EXO_SCOPE, Some(&wrong_aud)),
            401,
            "invalid_client",
            50027,
        ),
        (
            cc(&tid, &id, EXO_SCOPE, Some(&mismatched_sub)),
            401,
            "invalid_client",
            700021,
        ),
        (
            cc(&tid, &id, EXO_SCOPE, Some("not.a.jwt")),
            401,
            "invalid_client",
            50027,
        ),
        (
            cc(
                &tid,
                &id,
                "https://outlook.office365.com/AdminApi.AccessAsUser.All",
                Some(&good),
            ),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            cc(
                &tid,
                &id,
                "https://graph.microsoft.com/.default",
                Some(&good),
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            cc(
                &tid,
                &id,
                "https://outlook.office365.com/.default https://outlook.office365.us/.default",
                Some(&good),
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            cc(
                &tid,
                "11111111-2222-3333-4444-555555555555",
                EXO_SCOPE,
                Some(&good),
            ),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            cc(&tid, &id, EXO_SCOPE, None),
            401,
            "invalid_client",
            7000218,
        ),
        (
            cc(&tid, MODULE_CLIENT, EXO_SCOPE, None),
            401,
            "invalid_client",
            7000218,
        ),
        (
            cc("common", &id, EXO_SCOPE, Some(&good)),
            400,
            "invalid_request",
            50059,
        ),
        (
            cc("organizations", &id, EXO_SCOPE, Some(&good)),
            400,
            "invalid_request",
            50059,
        ),
        (
            cc("nowhere.example.com", &id, EXO_SCOPE, Some(&good)),
            400,
            "invalid_request",
            90002,
        ),
        (
            (
                format!("{tid}/oauth2/v2.0/token"),
                vec![
                    ("grant_type".into(), "client_credentials".into()),
                    ("client_id".into(), id.clone()),
                    ("scope".into(), EXO_SCOPE.into()),
                    ("client_secret".into(), "wrong".into()),
                ],
            ),
            401,
            "invalid_client",
            7000215,
        ),
        (
            (
                format!("{tid}/oauth2/v2.0/token"),
                vec![
                    ("grant_type".into(), "client_credentials".into()),
                    ("client_id".into(), id.clone()),
                    ("resource".into(), "https://outlook.office365.com".into()),
                    ("client_secret".into(), secret),
                ],
            ),
            400,
            "invalid_request",
            901002,
        ),
        (
            (
                format!("{tid}/oauth2/v2.0/token"),
                vec![("grant_type".into(), "magic".into())],
            ),
            400,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for ((path, form), status_code, error, code) in cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, body) = env.post_form(&path, &form).await;
        assert_aad(status, &body, status_code, error, code);
    }
    // The correlation id echoes client-request-id.
    let response = env
        .http
        .post(env.url(&format!("{tid}/oauth2/v2.0/token")))
        .header("client-request-id", "0b1c2d3e-0000-4000-8000-000000000001")
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("post");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["correlation_id"],
        "0b1c2d3e-0000-4000-8000-000000000001"
    );
}

#[tokio::test]
async fn federated_assertions_from_the_test_issuer() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let subject = app.federated_credentials[0].subject.clone();
    let base = env.sandbox.base_url().clone();
    let (ca, tid, id) = (
        env.sandbox.ca_pem().to_owned(),
        env.tenant("contoso").id.to_string(),
        app.client_id.to_string(),
    );
    let (cert, key) = env.cert_and_key(app);
    // Minted over HTTP, like a CI job would fetch its OIDC token.
    let response = env
        .http
        .post(env.url("_sandbox/federated-token"))
        .json(&serde_json::json!({"subject": subject}))
        .send()
        .await
        .expect("post");
    let external = response.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, jwks) = env.get_json("_sandbox/federation/keys").await;
    assert_eq!(jwks["keys"][0]["kid"], jwt_header(&external)["kid"]);
    let wrong_subject = env.sandbox.federated_token(
        "system:serviceaccount:other:sa",
        "api://AzureADTokenExchange",
    );
    let wrong_audience = env.sandbox.federated_token(&subject, "api://SomethingElse");
    let (status, body) = env
        .post_form(
            "_sandbox/federated-token",
            &[("subject", &subject), ("lifetime_seconds", "-3600")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let expired = body["token"].as_str().expect("token").to_owned();
    // The test issuer's header and claims with a signature made by another key (the app's).
    let forged = {
        let endpoint = format!(
            "{}/_sandbox/federation",
            base.as_str().trim_end_matches('/')
        );
        let other = client::client_assertion(
            &endpoint,
            &id,
            &cert,
            &key,
            &AssertionOptions {
                alg: Alg::Rs256,
                ..AssertionOptions::default()
            },
        )
        .expect("assertion");
        let (signed_part, _) = external.rsplit_once('.').expect("jws");
        format!(
            "{signed_part}.{}",
            other.rsplit('.').next().unwrap_or_default()
        )
    };
    let run = move |assertion: String| {
        let (base, ca, tid, id) = (base.clone(), ca.clone(), tid.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            client::assertion_token(&base, &ca, &tid, &id, &assertion, EXO_SCOPE)
        })
    };
    let token = run(external).await.expect("join").expect("federated token");
    let c = claims(&token.access_token);
    assert_eq!(
        (c["appidacr"].as_str(), c["roles"][0].as_str()),
        (Some("2"), Some("Exchange.ManageAsApp"))
    );
    for (assertion, expected) in [
        (wrong_subject, 70021),
        (wrong_audience, 70021),
        (expired, 700024),
        (forged, 700027),
    ] {
        match run(assertion).await.expect("join") {
            Err(client::ClientError::Service { codes, .. }) => assert_eq!(codes, vec![expected]),
            other => panic!("expected AADSTS{expected}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn password_grant_and_its_failures() {
    let env = start().await;
    let scope = "https://outlook.office365.com/.default openid profile offline_access";
    let (status, body) = env
        .post_form(
            "contoso.onmicrosoft.com/oauth2/v2.0/token",
            &[
                ("grant_type", "password"),
                ("client_id", MODULE_CLIENT),
                ("username", "exadmin@contoso.onmicrosoft.com"),
                (
                    "password",
                    &env.user("exadmin@contoso.onmicrosoft.com").password,
                ),
                ("scope", scope),
                ("client_info", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let access = claims(body["access_token"].as_str().expect("access"));
    assert_eq!(access["upn"], "exadmin@contoso.onmicrosoft.com");
    assert_eq!(access["unique_name"], "exadmin@contoso.onmicrosoft.com");
    assert_eq!(access["idtyp"], "user");
    assert!(
        access["scp"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|p| p == "AdminApi.AccessAsUser.All"))
    );
    assert_eq!(access["appid"], MODULE_CLIENT);
    assert_eq!(access["appidacr"], "0");
    assert!(body["refresh_token"].is_string());
    let id = claims(body["id_token"].as_str().expect("id token"));
    assert_eq!(id["aud"], MODULE_CLIENT);
    assert_eq!(id["preferred_username"], "exadmin@contoso.onmicrosoft.com");
    let info: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            body["client_info"].as_str().expect("client_info"),
        )
        .expect("b64"),
    )
    .expect("json");
    assert_eq!(info["uid"], access["oid"]);
    assert_eq!(info["utid"], access["tid"]);
    let user = |upn: &str, password: &str| {
        vec![
            ("grant_type", "password".to_owned()),
            ("client_id", MODULE_CLIENT.to_owned()),
            ("username", upn.to_owned()),
            ("password", password.to_owned()),
            ("scope", EXO_SCOPE.to_owned()),
        ]
    };
    let pw = |upn: &str| env.user(upn).password.clone();
    let cases = [
        (
            "organizations",
            user("exadmin@contoso.onmicrosoft.com", "wrong"),
            "invalid_grant",
            50126,
            None,
        ),
        (
            "organizations",
            user(
                "exadmin@contoso.onmicrosoft.com",
                &format!(" {}", pw("exadmin@contoso.onmicrosoft.com")),
            ),
            "invalid_grant",
            50126,
            None,
        ),
        (
            "organizations",
            user(
                "admin@contoso.onmicrosoft.com",
                &pw("admin@contoso.onmicrosoft.com"),
            ),
            "invalid_grant",
            50076,
            Some("basic_action"),
        ),
        (
            "organizations",
            user("nobody@contoso.onmicrosoft.com", "x"),
            "invalid_grant",
            50034,
            None,
        ),
        (
            "fabrikam-partner.onmicrosoft.com",
            user(
                "exadmin@contoso.onmicrosoft.com",
                &pw("exadmin@contoso.onmicrosoft.com"),
            ),
            "invalid_grant",
            50034,
            None,
        ),
        (
            "organizations",
            user(
                "disabled@contoso.onmicrosoft.com",
                &pw("disabled@contoso.onmicrosoft.com"),
            ),
            "invalid_grant",
            50057,
            None,
        ),
        (
            "organizations",
            user(
                "expired@contoso.onmicrosoft.com",
                &pw("expired@contoso.onmicrosoft.com"),
            ),
            "invalid_grant",
            50055,
            Some("user_password_expired"),
        ),
        (
            "organizations",
            user(
                "locked@contoso.onmicrosoft.com",
                &pw("locked@contoso.onmicrosoft.com"),
            ),
            "invalid_grant",
            50053,
            None,
        ),
        (
            "common",
            user(
                "exadmin@contoso.onmicrosoft.com",
                &pw("exadmin@contoso.onmicrosoft.com"),
            ),
            "invalid_request",
            9001023,
            None,
        ),
        (
            "consumers",
            user(
                "exadmin@contoso.onmicrosoft.com",
                &pw("exadmin@contoso.onmicrosoft.com"),
            ),
            "invalid_request",
            9001023,
            None,
        ),
    ];
    for (tenant, form, error, code, suberror) in cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = env
            .post_form(&format!("{tenant}/oauth2/v2.0/token"), &form)
            .await;
        assert_aad(status, &body, 400, error, code);
        assert_eq!(body["suberror"].as_str(), suberror, "{body:#}");
    }
    let (status, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[
                ("grant_type", "password"),
                ("client_id", MODULE_CLIENT),
                ("password", "x"),
                ("scope", EXO_SCOPE),
            ],
        )
        .await;
    assert_aad(status, &body, 400, "invalid_request", 900144);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'username'"))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_can_be_revoked() {
    let env = start().await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let (_, body) = env
        .ropc(
            "organizations",
            upn,
            "https://outlook.office365.com/.default offline_access",
        )
        .await;
    let rt1 = body["refresh_token"].as_str().expect("rt").to_owned();
    let refresh = |rt: String| {
        let env = &env;
        async move {
            env.post_form(
                "organizations/oauth2/v2.0/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", MODULE_CLIENT),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let (status, body) = refresh(rt1.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let rt2 = body["refresh_token"].as_str().expect("new rt").to_owned();
    assert_ne!(rt1, rt2, "every use returns a new refresh token");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["upn"],
        upn
    );
    let (status, _) = refresh(rt1.clone()).await;
    assert_eq!(status, StatusCode::OK, "the old refresh token stays valid");
    // Scope may change within the resource.
    let (status, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", MODULE_CLIENT),
                ("refresh_token", &rt2),
                (
                    "scope",
                    "https://outlook.office365.com/AdminApi.AccessAsUser.All",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("at"))["scp"],
        "AdminApi.AccessAsUser.All"
    );
    // Forced revocation fault: 70008 once, then fine again.
    env.sandbox
        .faults()
        .add(
            sandbox::FaultRule::new(
                sandbox::FaultKind::RevokeRefreshTokens { aadsts: 70008 },
                sandbox::FaultTarget::Identity,
            )
            .count(1),
        )
        .expect("fault");
    let (status, body) = refresh(rt2.clone()).await;
    assert_aad(status, &body, 400, "invalid_grant", 70008);
    let (status, _) = refresh(rt2.clone()).await;
    assert_eq!(status, StatusCode::OK);
    // Another client, garbage, then a real revocation (password reset).
    let (status, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[
                ("grant_type", "refresh_token"),
                (
                    "client_id",
                    &env.app("contoso", "exo-automation").client_id.to_string(),
                ),
                ("refresh_token", &rt2),
                (
                    "client_secret",
                    &env.app("contoso", "exo-automation").client_secrets[0],
                ),
            ],
        )
        .await;
    assert_aad(status, &body, 400, "invalid_grant", 70000);
    let (status, body) = refresh("1.AXgarbage".into()).await;
    assert_aad(status, &body, 400, "invalid_grant", 9002313);
    assert!(env.sandbox.revoke_user_sessions(upn));
    for rt in [rt1, rt2] {
        let (status, body) = refresh(rt).await;
        assert_aad(status, &body, 400, "invalid_grant", 50173);
    }
    // Every issued secret is recorded.
    let secrets = env.sandbox.issued_secrets();
    assert!(
        secrets.iter().any(|s| s.starts_with("1.AX"))
            && secrets.iter().any(|s| s.starts_with("eyJ"))
    );
}

#[tokio::test]
async fn national_clouds_answer_by_host_alias_too() {
    let env = start().await;
    let port = env.sandbox.base_url().port().expect("port");
    let ca = reqwest::Certificate::from_pem(env.sandbox.ca_pem().as_bytes()).expect("CA");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("usgov.localhost", addr)
        .resolve("china.localhost", addr)
        .build()
        .expect("client");
    for (host, instance) in [
        ("usgov.localhost", "microsoftonline.us"),
        ("china.localhost", "partner.microsoftonline.cn"),
    ] {
        let doc: Value = http
            .get(format!(
                "https://{host}:{port}/organizations/v2.0/.well-known/openid-configuration"
            ))
            .send()
            .await
            .expect("the server certificate is valid for the alias")
            .json()
            .await
            .expect("json");
        assert_eq!(doc["cloud_instance_name"], instance);
    }
}

/// Decodes the first PEM block of `pem` (the test's own parser, independent of the sandbox's).
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).expect("PEM base64")
}

fn b64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// A compact JWS signed with `key_pem` (PKCS#8), built by hand.
fn hand_signed(key_pem: &str, header: &Value, claims: &Value) -> String {
    use aws_lc_rs::signature;
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pem_der(key_pem)).expect("PKCS#8 RSA key");
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let padding: &'static dyn signature::RsaEncoding = match header["alg"].as_str() {
        Some("PS256") => &signature::RSA_PSS_SHA256,
        _ => &signature::RSA_PKCS1_SHA256,
    };
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        padding,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{input}.{}", b64url(&sig))
}

#[tokio::test]
async fn hand_built_assertions_in_the_shapes_real_clients_send() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let (cert, key) = env.cert_and_key(app);
    let der = pem_der(&cert);
    let sha = |alg: &'static aws_lc_rs::digest::Algorithm| {
        b64url(aws_lc_rs::digest::digest(alg, &der).as_ref())
    };
    let tid = env.tenant("contoso").id.to_string();
    let client_id = app.client_id.to_string();
    let endpoint = format!("{}{tid}/oauth2/v2.0/token", env.sandbox.base_url());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // MSAL Python 1.31 with a SHA-256 thumbprint and the public certificate: PS256,
    // `x5t#S256`, `x5c`, exp = now + 600, no `nbf`, no `iat`.
    let msal = hand_signed(
        &key,
        &serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": sha(&aws_lc_rs::digest::SHA256),
            "x5c": [base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)]}),
        &serde_json::json!({"aud": endpoint, "exp": now + 600, "iss": client_id, "jti": "7c1e0d4e-1a4b-4a1f-9a67-9f7b1e5d2c11", "sub": client_id}),
    );
    // The previous documentation (and Rust azure_identity): RS256, `x5t` (SHA-1), `nbf`, no `iat`.
    let previous = hand_signed(
        &key,
        &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": sha(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY)}),
        &serde_json::json!({"aud": endpoint, "exp": now + 300, "iss": client_id, "jti": "0f3a8c52-5d0e-4c3e-8a0e-2b6f7a9d4e21", "nbf": now, "sub": client_id}),
    );
    // The SHA-1 thumbprint under the SHA-256 name must not match.
    let mislabelled = hand_signed(
        &key,
        &serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": sha(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY)}),
        &serde_json::json!({"aud": endpoint, "exp": now + 600, "iss": client_id, "jti": "x", "sub": client_id}),
    );
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    for (assertion, expected) in [(msal, None), (previous, None), (mislabelled, Some(700027))] {
        let (status, body) = env
            .post_form(
                &format!("{tid}/oauth2/v2.0/token"),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("scope", EXO_SCOPE),
                    ("client_assertion_type", jwt_bearer),
                    ("client_assertion", &assertion),
                ],
            )
            .await;
        match expected {
            None => {
                assert_eq!(status, StatusCode::OK, "{body:#}");
                assert_eq!(
                    claims(body["access_token"].as_str().expect("at"))["appidacr"],
                    "2"
                );
            }
            Some(code) => assert_aad(status, &body, 401, "invalid_client", code),
        }
    }
}

#[tokio::test]
async fn v1_token_endpoint_answers_the_v1_way() {
    let env = start().await;
    let tid = env.tenant("contoso").id.to_string();
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = env.user(upn).password.clone();
    // No offline_access: the v1 endpoint issues a refresh token anyway.
    let (status, body) = env
        .post_form(
            &format!("{tid}/oauth2/token"),
            &[
                ("grant_type", "password"),
                ("client_id", MODULE_CLIENT),
                ("resource", "https://outlook.office365.com"),
                ("username", upn),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let refresh = body["refresh_token"]
        .as_str()
        .expect("a v1 refresh token")
        .to_owned();
    assert_eq!(
        body["scope"],
        "AdminApi.AccessAsUser.All FfoPowerShell.AccessAsUser.All RemotePowerShell.AccessAsUser.All VivaFeatureAccessPolicy.Manage.All",
        "bare permission names"
    );
    assert!(body["expires_in"].is_string() && body["expires_on"].is_string());
    let id_token = body["id_token"].as_str().expect("id token");
    let id = claims(id_token);
    assert_eq!(id["iss"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(
        (
            id["ver"].as_str(),
            id["aud"].as_str(),
            id["unique_name"].as_str(),
            id["upn"].as_str()
        ),
        (Some("1.0"), Some(MODULE_CLIENT), Some(upn), Some(upn))
    );
    assert_eq!(id["tid"], tid.as_str());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["oid"].is_string() && id.get("preferred_username").is_none());
    assert_eq!(jwt_header(id_token)["x5t"], jwt_header(id_token)["kid"]);
    let (_, discovery) = env
        .get_json(&format!("{tid}/.well-known/openid-configuration"))
        .await;
    assert_eq!(id["iss"], discovery["issuer"]);
    assert_eq!(discovery["microsoft_multi_refresh_token"], true);
    // The refresh token works on v1 (and answers v1 again) and on v2.
    let (status, body) = env
        .post_form(
            &format!("{tid}/oauth2/token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", MODULE_CLIENT),
                ("refresh_token", &refresh),
                ("resource", "https://outlook.office365.com"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert!(body["refresh_token"].is_string() && body["id_token"].is_string());
    assert_eq!(claims(body["id_token"].as_str().expect("id"))["ver"], "1.0");
    let (status, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", MODULE_CLIENT),
                ("refresh_token", &refresh),
                ("scope", "https://outlook.office365.com/.default openid"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let v2 = claims(body["id_token"].as_str().expect("v2 id token"));
    assert_eq!(v2["ver"], "2.0");
    assert!(
        body["scope"]
            .as_str()
            .is_some_and(|s| s.contains("https://outlook.office365.com/AdminApi.AccessAsUser.All"))
    );
    // National clouds: the cloud's v1 issuer.
    let (status, body) = env
        .post_form(
            &format!("usgov/{tid}/oauth2/token"),
            &[
                ("grant_type", "password"),
                ("client_id", MODULE_CLIENT),
                ("resource", "https://outlook.office365.us"),
                ("username", upn),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        claims(body["id_token"].as_str().expect("id"))["iss"],
        format!("https://login.microsoftonline.us/{tid}/")
    );
}

#[tokio::test]
async fn appidacr_follows_the_client_authentication_of_every_grant() {
    let env = start().await;
    let app = env.app("contoso", "exo-automation");
    let (cert, key) = env.cert_and_key(app);
    let client_id = app.client_id.to_string();
    let secret = app.client_secrets[0].clone();
    let tid = env.tenant("contoso").id.to_string();
    let endpoint = client::token_endpoint(env.sandbox.base_url(), &tid);
    let assertion = client::client_assertion(
        &endpoint,
        &client_id,
        &cert,
        &key,
        &AssertionOptions::default(),
    )
    .expect("assertion");
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = env.user(upn).password.clone();
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let path = format!("{tid}/oauth2/v2.0/token");
    let scope = "https://outlook.office365.com/.default offline_access";
    let acr = |body: &Value| claims(body["access_token"].as_str().expect("at"))["appidacr"].clone();
    let ropc = |credential: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("grant_type", "password".to_owned()),
            ("client_id", client_id.clone()),
            ("username", upn.to_owned()),
            ("password", password.clone()),
            ("scope", scope.to_owned()),
        ];
        form.extend(credential);
        form
    };
    let with_secret = vec![("client_secret", secret.clone())];
    let with_assertion = vec![
        ("client_assertion_type", jwt_bearer.to_owned()),
        ("client_assertion", assertion.clone()),
    ];
    let mut refresh_tokens = Vec::new();
    for (credential, expected) in [(with_secret.clone(), "1"), (with_assertion.clone(), "2")] {
        let form = ropc(credential);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = env.post_form(&path, &form).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(acr(&body), expected, "password grant");
        refresh_tokens.push(body["refresh_token"].as_str().expect("rt").to_owned());
    }
    // The refresh grant: how the client authenticates now, not at the first grant.
    for (credential, expected) in [(with_assertion, "2"), (with_secret, "1")] {
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", client_id.clone()),
            ("refresh_token", refresh_tokens[0].clone()),
        ];
        form.extend(credential);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = env.post_form(&path, &form).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(acr(&body), expected, "refresh grant");
    }
    // Public client: 0, for the password and refresh grants.
    let (_, body) = env.ropc("organizations", upn, scope).await;
    assert_eq!(acr(&body), "0");
    let (_, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", MODULE_CLIENT),
                ("refresh_token", body["refresh_token"].as_str().expect("rt")),
            ],
        )
        .await;
    assert_eq!(acr(&body), "0");
    // A public client that sends a secret is refused (AADSTS700025), on every grant.
    let (status, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[
                ("grant_type", "password"),
                ("client_id", MODULE_CLIENT),
                ("username", upn),
                ("password", &password),
                ("scope", scope),
                ("client_secret", "anything"),
            ],
        )
        .await;
    assert_aad(status, &body, 401, "invalid_client", 700025);
}

#[tokio::test]
async fn refresh_token_edge_cases() {
    // Long enough that the checks before the sleep finish inside it on a loaded CI machine.
    let env = crate::support::start_with(|c| c.seed.lifetimes.refresh_token_seconds = 4).await;
    let upn = "exadmin@contoso.onmicrosoft.com";
    let scope = "https://outlook.office365.com/.default offline_access";
    let (_, body) = env.ropc("contoso.com", upn, scope).await;
    let rt = body["refresh_token"].as_str().expect("rt").to_owned();
    let refresh = |tenant: &'static str, rt: String| {
        let env = &env;
        async move {
            env.post_form(
                &format!("{tenant}/oauth2/v2.0/token"),
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", MODULE_CLIENT),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    // Another tenant or cloud: AADSTS700005.
    for tenant in ["fabrikam-partner.onmicrosoft.com", "usgov/organizations"] {
        let (status, body) = refresh(tenant, rt.clone()).await;
        assert_aad(status, &body, 400, "invalid_grant", 700005);
    }
    // Two resources in one request: AADSTS700022 (US Gov: both US resources are known).
    let (status, body) = env
        .ropc(
            "usgov/organizations",
            upn,
            "https://outlook.office365.us/.default https://outlook-dod.office365.us/.default",
        )
        .await;
    assert_aad(status, &body, 400, "invalid_scope", 700022);
    // Inactive for longer than its lifetime: AADSTS700082.
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let (status, body) = refresh("organizations", rt).await;
    assert_aad(status, &body, 400, "invalid_grant", 700082);
}

#[tokio::test]
async fn parallel_refreshes_all_succeed_with_distinct_tokens() {
    let env = start().await;
    let (_, body) = env
        .ropc(
            "organizations",
            "exadmin@contoso.onmicrosoft.com",
            "https://outlook.office365.com/.default offline_access",
        )
        .await;
    let rt = body["refresh_token"].as_str().expect("rt").to_owned();
    let url = env.url("organizations/oauth2/v2.0/token");
    let requests = (0..16).map(|_| {
        let (http, url, rt) = (env.http.clone(), url.clone(), rt.clone());
        tokio::spawn(async move {
            let response = http
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", MODULE_CLIENT),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .expect("post");
            let status = response.status();
            (status, response.json::<Value>().await.expect("json"))
        })
    });
    let mut new_tokens = std::collections::HashSet::new();
    for request in requests.collect::<Vec<_>>() {
        let (status, body) = request.await.expect("join");
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert!(new_tokens.insert(body["refresh_token"].as_str().expect("rt").to_owned()));
    }
    assert_eq!(new_tokens.len(), 16);
}

#[tokio::test]
async fn errors_name_the_cloud_they_come_from() {
    let env = start().await;
    let (status, body) = env
        .post_form(
            "usgov/organizations/oauth2/v2.0/token",
            &[("grant_type", "magic")],
        )
        .await;
    assert_aad(status, &body, 400, "unsupported_grant_type", 70003);
    assert_eq!(
        body["error_uri"],
        "https://login.microsoftonline.us/error?code=70003"
    );
    let (_, body) = env
        .post_form(
            "organizations/oauth2/v2.0/token",
            &[("grant_type", "magic")],
        )
        .await;
    assert_eq!(
        body["error_uri"],
        "https://login.microsoftonline.com/error?code=70003"
    );
}

#[tokio::test]
async fn user_tokens_carry_the_default_member_role_like_real_ones() {
    let env = start().await;
    let plain = claims(&env.user_token("AdeleV@contoso.onmicrosoft.com").await);
    assert_eq!(
        plain["wids"],
        serde_json::json!(["b79fbf4d-3ef9-4689-8143-76b194e85509"])
    );
    let admin = claims(&env.user_token("exadmin@contoso.onmicrosoft.com").await);
    assert_eq!(
        admin["wids"],
        serde_json::json!([
            "29232cdf-9323-42fd-ade2-1d097af3e4de",
            "b79fbf4d-3ef9-4689-8143-76b194e85509"
        ])
    );
}
