//! `exo connect --method managed-identity` end to end against the sandbox's managed-identity
//! endpoints, one per source the Azure SDKs detect (IMDS, App Service, Service Fabric with its
//! pinned self-signed certificate, Azure Arc with its challenge file, Cloud Shell), system- and
//! user-assigned, and a machine where none answers.

use std::time::{Duration, Instant};

use support::{Exo, SandboxEnv};

const USER_ASSIGNED_CLIENT: &str = "366eb16f-508e-4ad7-b7c9-3acfe059a0ee";
const USER_ASSIGNED_OBJECT: &str = "e27a984d-6548-41d0-bfcd-9eb1a7cad415";
const USER_ASSIGNED_RESOURCE: &str = "/subscriptions/9132b63e-f162-47e4-a9c3-49e03602f8ac/resourceGroups/exo-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/exo-uami";

/// `exo connect --method managed-identity` with none of the detection variables set.
fn connect(sb: &SandboxEnv) -> Exo {
    let mut exo = sb.exo().args(["connect", "--method", "managed-identity"]);
    for var in [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "EXO_IMDS_ENDPOINT",
        "EXO_ARC_TOKEN_DIR",
    ] {
        exo = exo.env_remove(var);
    }
    exo
}

#[test]
fn every_source_signs_in_and_a_cmdlet_runs() {
    let sb = SandboxEnv::start(|_| {});
    sb.env
        .install("managed-identity", &sb.env.bundled_plugins());
    let mi = sb
        .sandbox
        .managed_identity_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let header = sb.sandbox.identity_header().to_owned();
    let arc_tokens = sb.sandbox.state_dir().join("arc/tokens");
    let sources: Vec<(&str, Exo)> = vec![
        (
            "IMDS",
            connect(&sb).env(
                "EXO_IMDS_ENDPOINT",
                format!("{mi}/metadata/identity/oauth2/token"),
            ),
        ),
        (
            "App Service",
            connect(&sb)
                .env("IDENTITY_ENDPOINT", format!("{mi}/MSI/token"))
                .env("IDENTITY_HEADER", &header),
        ),
        (
            "Service Fabric",
            connect(&sb)
                .env(
                    "IDENTITY_ENDPOINT",
                    sb.sandbox.service_fabric_url().as_str(),
                )
                .env("IDENTITY_HEADER", &header)
                .env(
                    "IDENTITY_SERVER_THUMBPRINT",
                    sb.sandbox.service_fabric_thumbprint(),
                ),
        ),
        (
            "Azure Arc",
            connect(&sb)
                .env(
                    "IDENTITY_ENDPOINT",
                    format!("{mi}/arc/metadata/identity/oauth2/token"),
                )
                .env("IMDS_ENDPOINT", format!("{mi}/arc"))
                .env("EXO_ARC_TOKEN_DIR", &arc_tokens),
        ),
        (
            "Cloud Shell",
            connect(&sb).env("MSI_ENDPOINT", format!("{mi}/oauth2/token")),
        ),
    ];
    for (i, (name, exo)) in sources.into_iter().enumerate() {
        let run = exo.args(["-v", "--prefix", &format!("M{i}")]).run();
        assert!(run.status.success(), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("asking {name}"))
                || run.stderr.contains("asking the instance"),
            "{name}: {}",
            run.stderr
        );
        let domains = sb
            .exo()
            .args([format!("Get-M{i}AcceptedDomain")])
            .run()
            .success();
        assert!(domains.stdout.contains("contoso.onmicrosoft.com"), "{name}");
    }
}

#[test]
fn a_user_assigned_identity_is_found_by_any_of_its_ids_and_exo_says_which() {
    let sb = SandboxEnv::start(|_| {});
    sb.env
        .install("managed-identity", &sb.env.bundled_plugins());
    let imds = format!(
        "{}metadata/identity/oauth2/token",
        sb.sandbox.managed_identity_url()
    );
    for (i, (id, kind)) in [
        (USER_ASSIGNED_CLIENT, "client id"),
        (USER_ASSIGNED_OBJECT, "object id"),
        (USER_ASSIGNED_RESOURCE, "resource id"),
    ]
    .into_iter()
    .enumerate()
    {
        let run = connect(&sb)
            .env("EXO_IMDS_ENDPOINT", &imds)
            .args([
                "-v",
                "--managed-identity-account-id",
                id,
                "--prefix",
                &format!("U{i}"),
            ])
            .run();
        assert!(run.status.success(), "{id}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("is the identity's {kind}")),
            "{id}: {}",
            run.stderr
        );
        assert!(
            run.stdout.contains(USER_ASSIGNED_CLIENT),
            "{id}: {}",
            run.stdout
        );
    }
    let unknown = connect(&sb)
        .env("EXO_IMDS_ENDPOINT", &imds)
        .args([
            "--managed-identity-account-id",
            "00000000-1111-2222-3333-444444444444",
        ])
        .run()
        .fails_with(1);
    assert!(
        unknown
            .stderr
            .contains("refused a token for the managed identity with object id"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn where_no_managed_identity_answers_exo_says_so_quickly() {
    let sb = SandboxEnv::start(|_| {});
    sb.env
        .install("managed-identity", &sb.env.bundled_plugins());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let run = connect(&sb)
        .env(
            "EXO_IMDS_ENDPOINT",
            format!(
                "http://{}/metadata/identity/oauth2/token",
                silent.local_addr().unwrap()
            ),
        )
        .run()
        .fails_with(1);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains("no managed identity is reachable here"),
        "{}",
        run.stderr
    );
    drop(silent);
}

/// Answers every request on a loopback port with `body` (HTTP 200, JSON).
fn answering(body: String) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/metadata/identity/oauth2/token",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_token_for_another_identity_or_with_an_absurd_expiry_is_refused() {
    let sb = SandboxEnv::start(|_| {});
    sb.env
        .install("managed-identity", &sb.env.bundled_plugins());
    let claims = |appid: &str, expires_in: i64| {
        serde_json::json!({
            "aud": "https://outlook.office365.com",
            "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
            "appid": appid,
            "oid": USER_ASSIGNED_OBJECT,
            "roles": ["Exchange.ManageAsApp"],
            "exp": support::now() + expires_in,
        })
    };
    let other = support::unsigned_jwt(&claims("11111111-2222-3333-4444-555555555555", 3600));
    let body = serde_json::json!({ "access_token": other, "expires_in": 3600 }).to_string();
    let run = connect(&sb)
        .env("EXO_IMDS_ENDPOINT", answering(body))
        .args(["--managed-identity-account-id", USER_ASSIGNED_CLIENT])
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("but the token is for 11111111-2222-3333-4444-555555555555"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&other),
        "the token leaked: {}",
        run.stderr
    );

    let twenty_years = 20 * 365 * 24 * 3600;
    for (token_lifetime, expiry) in [
        (3600, serde_json::json!({ "expires_in": i64::MAX })),
        (
            twenty_years,
            serde_json::json!({ "expires_on": support::now() + twenty_years }),
        ),
        (3600, serde_json::json!({ "expires_in": -5 })),
        // The answer says an hour, but the token itself has expired.
        (-60, serde_json::json!({ "expires_in": 3600 })),
    ] {
        let token = support::unsigned_jwt(&claims(USER_ASSIGNED_CLIENT, token_lifetime));
        let mut body = expiry.as_object().unwrap().clone();
        body.insert("access_token".into(), token.into());
        let run = connect(&sb)
            .env(
                "EXO_IMDS_ENDPOINT",
                answering(serde_json::Value::Object(body).to_string()),
            )
            .run()
            .fails_with(1);
        assert!(
            run.stderr.contains("without a valid expiry"),
            "{expiry}: {}",
            run.stderr
        );
    }
}

#[test]
fn service_fabric_refuses_a_chosen_identity() {
    let sb = SandboxEnv::start(|_| {});
    sb.env
        .install("managed-identity", &sb.env.bundled_plugins());
    let run = connect(&sb)
        .env(
            "IDENTITY_ENDPOINT",
            sb.sandbox.service_fabric_url().as_str(),
        )
        .env("IDENTITY_HEADER", sb.sandbox.identity_header())
        .env(
            "IDENTITY_SERVER_THUMBPRINT",
            sb.sandbox.service_fabric_thumbprint(),
        )
        .args(["--managed-identity-account-id", USER_ASSIGNED_CLIENT])
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("Service Fabric does not let a request choose the identity"),
        "{}",
        run.stderr
    );
}
