//! Benchmarks of interactive sign-in against the sandbox tenant (release build; run with
//! `cargo xtask bench`), each side by side with its floor in the same run:
//!
//! - `exo connect --method inline`, whole process, against MSAL for Python's
//!   `acquire_token_by_username_password` as a whole process (the library most tools build on)
//!   and a bare `curl` password-grant POST (one TLS round trip). Target: exo ≤ 0.25 × MSAL.
//! - `exo connect --method sso`: the time from the browser's redirect reaching exo's loopback
//!   listener to exo's exit (code redemption, ID-token verification, saving the connection).
//! - `exo connect --method certificate`, whole process, against MSAL for Python's
//!   `ConfidentialClientApplication.acquire_token_for_client` as a whole process and a bare
//!   `curl` token POST with a ready-made assertion. Targets: exo ≤ 0.25 × MSAL, ≤ 3 × curl.
//! - The certificate plugin's token acquisition alone, in this process: the host's `acquire`
//!   call (discovery, reading the PEM files, signing the assertion, the token request) on warm
//!   connections, against the same two requests sent by the same HTTP client with a ready-made
//!   assertion (the floor: the network and the server).
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use support::SandboxEnv;
use support::browser::{Outcome, Person, TestBrowser, deliver, opened_url, recording_browser};

const USER: &str = "exadmin@contoso.onmicrosoft.com";
const MODULE_CLIENT: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";
const RUNS: usize = 15;

fn main() {
    let sb = SandboxEnv::start(|_| {});
    for plugin in ["sso", "inline", "certificate"] {
        sb.env.install(plugin, &sb.env.bundled_plugins());
    }
    inline_against_msal_and_curl(&sb);
    sso_redirect_to_exit(&sb);
    certificate_against_msal_and_curl(&sb);
    certificate_acquisition_alone(&sb);
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The wall time of `command`, which must succeed.
fn timed(mut command: Command, what: &str) -> Duration {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wall
}

/// The median whole-process time of each of three commands, run interleaved (exo, MSAL,
/// curl, exo, …) after one warm-up each (page cache, Python's bytecode cache), so that a noisy
/// moment hits all three alike.
fn exo_msal_curl(
    exo: impl Fn() -> Command,
    msal: impl Fn() -> Command,
    curl: impl Fn() -> Command,
) -> (Duration, Duration, Duration) {
    timed(exo(), "exo connect");
    timed(msal(), "MSAL");
    timed(curl(), "curl");
    let (mut exo_runs, mut msal_runs, mut curl_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        exo_runs.push(timed(exo(), "exo connect"));
        msal_runs.push(timed(msal(), "MSAL"));
        curl_runs.push(timed(curl(), "curl"));
    }
    (median(exo_runs), median(msal_runs), median(curl_runs))
}

/// `curl` POSTing `form` to `url`, trusting only the sandbox CA: the floor, one TLS round trip.
fn curl_post(sb: &SandboxEnv, form: &str, url: &str) -> Command {
    let mut command = Command::new("curl");
    command
        .args(["-sf", "-o", "/dev/null", "--cacert"])
        .arg(sb.sandbox.ca_file())
        .args(["--data", form, url]);
    command
}

fn inline_against_msal_and_curl(sb: &SandboxEnv) {
    let person = Person::seeded(&sb.sandbox, USER);
    let password_file = sb.token_file("password", person.password);
    let authority = format!("{}{}", sb.sandbox.base_url(), "organizations");
    let exo = || {
        sb.exo()
            .args([
                "connect",
                "--method",
                "inline",
                "--upn",
                USER,
                "--password-file",
            ])
            .arg_path(&password_file)
            .into_command()
    };
    let python = std::env::var_os("EXO_THIRD_PARTY_PYTHON")
        .expect("EXO_THIRD_PARTY_PYTHON: run through cargo xtask bench, which installs MSAL");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/third-party/msal_password.py");
    let msal = || {
        let mut command = Command::new(&python);
        command
            .args([script, &authority, MODULE_CLIENT, USER, person.password])
            .env("REQUESTS_CA_BUNDLE", sb.sandbox.ca_file());
        command
    };
    let form = format!(
        "grant_type=password&client_id={MODULE_CLIENT}&username={}&password={}&scope={}",
        USER.replace('@', "%40"),
        person.password.replace('!', "%21"),
        "https%3A%2F%2Foutlook.office365.com%2F.default+openid+profile+offline_access"
    );
    let token_endpoint = format!("{authority}/oauth2/v2.0/token");
    let (exo, msal, curl) = exo_msal_curl(exo, msal, || curl_post(sb, &form, &token_endpoint));
    println!(
        "exo connect --method inline (whole process): median {} over {RUNS} runs; MSAL Python \
         acquire_token_by_username_password (whole process): {}; curl password POST: {}; \
         exo/MSAL = {:.2} (target ≤ 0.25); exo/curl = {:.2}",
        ms(exo),
        ms(msal),
        ms(curl),
        exo.as_secs_f64() / msal.as_secs_f64(),
        exo.as_secs_f64() / curl.as_secs_f64()
    );
}

/// The seeded automation app: its client id, certificate and key files, its tenant.
struct SeededApp {
    client_id: String,
    certificate: String,
    key: String,
    tenant: String,
}

impl SeededApp {
    fn of(sb: &SandboxEnv) -> Self {
        let discovery: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(sb.sandbox.state_dir().join("sandbox.json")).unwrap(),
        )
        .unwrap();
        let app = &discovery["apps"][0];
        let text = |value: &serde_json::Value| value.as_str().unwrap().to_owned();
        Self {
            client_id: text(&app["client_id"]),
            certificate: text(&app["certificate_file"]),
            key: text(&app["key_file"]),
            tenant: text(&discovery["tenants"][0]["id"]),
        }
    }

    /// A client-credentials form with a ready-made assertion for `token_endpoint`.
    fn token_form(&self, token_endpoint: &str) -> String {
        let assertion = sandbox::client::client_assertion(
            token_endpoint,
            &self.client_id,
            &std::fs::read_to_string(&self.certificate).unwrap(),
            &std::fs::read_to_string(&self.key).unwrap(),
            &sandbox::client::AssertionOptions::default(),
        )
        .unwrap();
        format!(
            "grant_type=client_credentials&client_id={}&scope=https%3A%2F%2Foutlook.office365.com%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}",
            self.client_id
        )
    }
}

fn certificate_against_msal_and_curl(sb: &SandboxEnv) {
    let app = SeededApp::of(sb);
    let (client_id, certificate, key, tenant) = (
        app.client_id.as_str(),
        app.certificate.as_str(),
        app.key.as_str(),
        app.tenant.as_str(),
    );
    let authority = format!("{}{tenant}", sb.sandbox.base_url());
    let exo = || {
        sb.exo()
            .args(["connect", "--method", "certificate", "--app-id", client_id])
            .args([
                "--organization",
                tenant,
                "--certificate-file-path",
                certificate,
            ])
            .args(["--certificate-key-file", key])
            .into_command()
    };
    let python = std::env::var_os("EXO_THIRD_PARTY_PYTHON")
        .expect("EXO_THIRD_PARTY_PYTHON: run through cargo xtask bench, which installs MSAL");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/third-party/msal_certificate.py"
    );
    let msal = || {
        let mut command = Command::new(&python);
        command
            .args([script, &authority, client_id, certificate, key])
            .env("REQUESTS_CA_BUNDLE", sb.sandbox.ca_file());
        command
    };
    let token_endpoint = format!("{authority}/oauth2/v2.0/token");
    let form = app.token_form(&token_endpoint);
    let (exo, msal, curl) = exo_msal_curl(exo, msal, || curl_post(sb, &form, &token_endpoint));
    println!(
        "exo connect --method certificate (whole process): median {} over {RUNS} runs; MSAL \
         Python acquire_token_for_client (whole process): {}; curl token POST: {}; exo/MSAL = \
         {:.2} (target ≤ 0.25); exo/curl = {:.2} (target ≤ 3)",
        ms(exo),
        ms(msal),
        ms(curl),
        exo.as_secs_f64() / msal.as_secs_f64(),
        exo.as_secs_f64() / curl.as_secs_f64()
    );
}

fn sso_redirect_to_exit(sb: &SandboxEnv) {
    let browser = TestBrowser::new(&sb.sandbox);
    let person = Person::seeded(&sb.sandbox, USER);
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let (script, opened) = recording_browser(sb.env.root());
        let mut child = sb
            .exo()
            .args(["connect", "--method", "sso", "--upn", USER])
            .env("BROWSER", &script)
            .in_terminal(None)
            .spawn();
        let url = opened_url(&opened);
        let Outcome::Redirect(location) = browser.sign_in(&url, &person, None) else {
            panic!("no redirect");
        };
        let arrived = Instant::now();
        assert_eq!(deliver(&location).0, 200);
        let status = child.wait().expect("exo ends");
        samples.push(arrived.elapsed());
        assert!(status.success());
    }
    println!(
        "exo connect --method sso, from the redirect reaching exo to exo's exit: median {} over \
         {RUNS} runs",
        ms(median(samples))
    );
}

/// The certificate plugin's `acquire` as the host calls it, in this process, and the same two
/// requests (discovery, the token request with a ready-made assertion) sent by the same client,
/// interleaved; medians over `RUNS` × 4 each, after one warm-up each.
fn certificate_acquisition_alone(sb: &SandboxEnv) {
    use exo::plugin_runtime::{call_plugin, login_request};
    let app = SeededApp::of(sb);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let plugin = Arc::new(
        exo::loader::load(
            &sb.env
                .bundled_plugins()
                .join(support::library_file_name("certificate")),
        )
        .unwrap(),
    );
    let endpoints = session::environment::resolve(&session::environment::EndpointOptions {
        environment: Some(session::environment::EnvironmentName::Sandbox),
        organization: Some(app.tenant.clone()),
        sandbox_dir: Some(sb.sandbox.state_dir().to_owned()),
        ..Default::default()
    })
    .unwrap();
    let value = |name: &str, value: &str| plugin_abi::ParameterValue {
        name: name.into(),
        value: value.as_bytes().into(),
    };
    let parameters = exo::parameters::Resolved {
        values: vec![
            value("app-id", &app.client_id),
            value("certificate-file-path", &app.certificate),
            value("certificate-key-file", &app.key),
        ],
        sources: Vec::new(),
    };
    let clients = exo::http::Clients::default();
    let cancelled = Arc::new(AtomicBool::new(false));
    let acquire = || {
        let request = login_request(&endpoints, &parameters, false);
        let services = exo::services::Services::new(
            clients.clone(),
            endpoints.trust.clone(),
            "certificate",
            false,
            cancelled.clone(),
        );
        let plugin = plugin.clone();
        let started = Instant::now();
        let grant = runtime
            .block_on(call_plugin(services, cancelled.clone(), move |host| {
                plugin.flow.acquire(&request, host)
            }))
            .unwrap_or_else(|e| panic!("acquire: {}", e.message));
        let elapsed = started.elapsed();
        assert!(!grant.access_token.is_empty());
        elapsed
    };
    let authority = endpoints.authority.as_str().trim_end_matches('/');
    let discovery = format!("{authority}/v2.0/.well-known/openid-configuration");
    let token_endpoint = format!(
        "{}{}/oauth2/v2.0/token",
        sb.sandbox.base_url(),
        sb.sandbox.seed().tenants[0].id
    );
    let form = app.token_form(&token_endpoint);
    let http = clients.get(&endpoints.trust).unwrap();
    let floor = || {
        let started = Instant::now();
        runtime.block_on(async {
            let found = http.get(&discovery).send().await.unwrap();
            assert!(
                found.status().is_success(),
                "{discovery}: {}",
                found.status()
            );
            found.bytes().await.unwrap();
            let token = http
                .post(&token_endpoint)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.clone())
                .send()
                .await
                .unwrap();
            assert!(token.status().is_success(), "{}", token.status());
            token.bytes().await.unwrap();
        });
        started.elapsed()
    };
    acquire();
    floor();
    let (mut acquired, mut floors) = (Vec::new(), Vec::new());
    for _ in 0..RUNS * 4 {
        acquired.push(acquire());
        floors.push(floor());
    }
    let (acquired, floor) = (median(acquired), median(floors));
    println!(
        "certificate plugin acquire alone (in process, warm connections): median {}; the same \
         two requests with a ready-made assertion: {}; acquire/floor = {:.2}",
        ms(acquired),
        ms(floor),
        acquired.as_secs_f64() / floor.as_secs_f64()
    );
}
