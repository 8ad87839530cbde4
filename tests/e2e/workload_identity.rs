//! `exo connect --method workload-identity` end to end against the sandbox, whose test OIDC
//! issuer mints the external tokens an app trusts through a federated credential: options or the
//! Azure SDKs' environment variables, a token file read again at every renewal, and the errors.

use support::SandboxEnv;

const SUBJECT: &str = "system:serviceaccount:exo:automation";
const AUDIENCE: &str = "api://AzureADTokenExchange";

fn app_id(sb: &SandboxEnv) -> String {
    let discovery: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.sandbox.state_dir().join("sandbox.json")).unwrap(),
    )
    .unwrap();
    discovery["apps"][0]["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_federated_token_signs_in_and_is_read_again_at_every_renewal() {
    let sb = SandboxEnv::start(|c| c.seed.lifetimes.access_token_seconds = Some(4));
    sb.env
        .install("workload-identity", &sb.env.bundled_plugins());
    let app = app_id(&sb);
    let file = sb.token_file(
        "federated.jwt",
        &sb.sandbox.federated_token(SUBJECT, AUDIENCE),
    );
    // The Azure SDKs' environment, as a Kubernetes webhook sets it.
    let run = sb
        .exo()
        .args(["connect", "--method", "workload-identity"])
        .env("AZURE_CLIENT_ID", &app)
        .env("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
        .env("AZURE_FEDERATED_TOKEN_FILE", &file)
        .run()
        .success();
    assert!(run.stdout.contains(&format!("as {app}")), "{}", run.stdout);
    sb.exo().args(["Get-AcceptedDomain"]).run().success();

    // The token rotates: renewal reads the file again.
    std::fs::write(&file, sb.sandbox.federated_token(SUBJECT, AUDIENCE)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let run = sb
        .exo()
        .args(["-v", "token"])
        .env("AZURE_CLIENT_ID", &app)
        .env("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
        .env("AZURE_FEDERATED_TOKEN_FILE", &file)
        .run()
        .success();
    assert!(run.stderr.contains("renewed the token"), "{}", run.stderr);
}

#[test]
fn a_token_the_app_does_not_trust_and_a_missing_tenant_are_explained() {
    let sb = SandboxEnv::start(|_| {});
    sb.env
        .install("workload-identity", &sb.env.bundled_plugins());
    let app = app_id(&sb);
    let stranger = sb.token_file(
        "stranger.jwt",
        &sb.sandbox
            .federated_token("system:serviceaccount:other:job", AUDIENCE),
    );
    let untrusted = sb
        .exo()
        .args(["connect", "--method", "workload-identity", "--app-id", &app])
        .args(["--organization", "contoso.onmicrosoft.com", "--token-file"])
        .arg_path(&stranger)
        .run()
        .fails_with(1);
    assert!(
        untrusted.stderr.contains("AADSTS70021")
            && untrusted.stderr.contains("federated credential"),
        "{}",
        untrusted.stderr
    );
    let no_tenant = sb
        .exo()
        .args([
            "connect",
            "--method",
            "workload-identity",
            "--app-id",
            &app,
            "--token-file",
        ])
        .arg_path(&stranger)
        .env_remove("AZURE_TENANT_ID")
        .run()
        .fails_with(1);
    assert!(
        no_tenant.stderr.contains("AZURE_TENANT_ID"),
        "{}",
        no_tenant.stderr
    );
    let empty = sb.token_file("empty.jwt", "\n");
    let run = sb
        .exo()
        .args(["connect", "--method", "workload-identity", "--app-id", &app])
        .args(["--organization", "contoso.onmicrosoft.com", "--token-file"])
        .arg_path(&empty)
        .run()
        .fails_with(1);
    assert!(run.stderr.contains("is empty"), "{}", run.stderr);
}
