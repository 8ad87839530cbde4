//! The sandbox driven by Microsoft's MSAL for Python (pinned in
//! `tests/third-party/requirements.txt`): client credentials with a certificate (as MSAL builds
//! the assertion, with and without `x5c`), the password grant, a refresh, and the device code
//! flow, whose device-login page this test fills in while MSAL polls.
//!
//! `cargo xtask test` and `cargo xtask ci` install the client into `target/third-party-venv`
//! and point `EXO_THIRD_PARTY_PYTHON` at it; CI also sets `EXO_REQUIRE_THIRD_PARTY=1`, so a
//! missing client fails there instead of skipping.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::pages::{device_sign_in, submit};
use crate::support::start_with;

const MODULE_CLIENT: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_python_library_signs_in_with_every_flow_it_offers() {
    let Some(python) = std::env::var_os("EXO_THIRD_PARTY_PYTHON") else {
        assert!(
            std::env::var_os("EXO_REQUIRE_THIRD_PARTY").is_none(),
            "EXO_REQUIRE_THIRD_PARTY is set but EXO_THIRD_PARTY_PYTHON is not: run through \
             `cargo xtask test`, which installs the third-party clients"
        );
        eprintln!(
            "skipped: EXO_THIRD_PARTY_PYTHON is not set (`cargo xtask test` installs MSAL for \
             Python and sets it)"
        );
        return;
    };
    // MSAL polls at the server's interval; one second keeps the test short.
    let env = start_with(|c| c.seed.lifetimes.device_code_interval_seconds = 1).await;
    let app = env.app("contoso", "exo-automation");
    let (cert_file, key_file) = sandbox_app_files(&env, &app.client_id.to_string());
    let user = "exadmin@contoso.onmicrosoft.com";
    let config = json!({
        "authority": format!("{}{}", env.sandbox.base_url(), env.tenant("contoso").id),
        "app_id": app.client_id,
        "certificate_file": cert_file,
        "key_file": key_file,
        "public_client_id": MODULE_CLIENT,
        "username": user,
        "password": env.user(user).password,
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/third-party/msal_flows.py"
    );
    let mut child = Command::new(python)
        .arg(script)
        .env("REQUESTS_CA_BUNDLE", env.sandbox.ca_file())
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(config.to_string().as_bytes())
        .expect("write config");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut results = Value::Null;
    while let Some(line) = lines.next().transpose().expect("read") {
        let event: Value = serde_json::from_str(&line).expect("a JSON line");
        if let Some(device) = event.get("device") {
            let page = device_sign_in(
                &env,
                device["verification_uri"].as_str().expect("uri"),
                device["user_code"].as_str().expect("code"),
                user,
            )
            .await;
            submit(&env, &page, &[("decision", "approve")]).await;
        } else if let Some(found) = event.get("results") {
            results = found.clone();
        }
    }
    assert!(child.wait().expect("python").success(), "{results:#}");
    for flow in [
        "client_credentials_thumbprint",
        "client_credentials_x5c",
        "password",
        "refresh",
        "device_code",
    ] {
        assert_eq!(results[flow]["ok"], true, "{flow}: {results:#}");
    }
    assert_eq!(
        results["refresh"]["source"], "identity_provider",
        "{results:#}"
    );
    assert_eq!(results["password"]["has_refresh_token"], true);
}

/// The PEM certificate and key files of a seeded app, as the sandbox wrote them.
fn sandbox_app_files(env: &crate::support::Env, client_id: &str) -> (String, String) {
    let discovery: Value = serde_json::from_str(
        &std::fs::read_to_string(env.sandbox.state_dir().join("sandbox.json"))
            .expect("sandbox.json"),
    )
    .expect("JSON");
    let app = discovery["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["client_id"] == client_id))
        .expect("the app in sandbox.json");
    (
        app["certificate_file"].as_str().expect("cert").to_owned(),
        app["key_file"].as_str().expect("key").to_owned(),
    )
}
