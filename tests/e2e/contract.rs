//! The plugin contract through the real host: each typed host service and SDK helper, used by
//! a compiled plugin (`tests/fixtures/host-check`) that `exo` loads, and driven from outside
//! with tools exo did not write (curl, a silent TCP server, a dead proxy, the sandbox's
//! self-signed Service Fabric listener).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::process::{Child, ChildStderr, Command};
use std::time::{Duration, Instant};

use support::{SandboxEnv, TestEnv, interrupt, now, unsigned_jwt};

fn host_check() -> TestEnv {
    TestEnv::with_plugins(&["host-check"])
}

fn token(expires_in: i64) -> String {
    unsigned_jwt(&serde_json::json!({
        "aud": "https://outlook.office365.com", "tid": "11111111-2222-3333-4444-555555555555",
        "upn": "admin@contoso.onmicrosoft.com", "exp": now() + expires_in,
    }))
}

fn check(env: &TestEnv, args: &[&str]) -> support::Exo {
    env.exo()
        .args([
            "connect",
            "--method",
            "host-check",
            "--organization",
            "contoso.onmicrosoft.com",
        ])
        .args(args)
        .env("EXO_TEST_TOKEN", token(3600))
}

#[test]
fn parameters_are_checked_by_kind_before_the_plugin_runs_and_paths_are_made_absolute() {
    let env = host_check();
    for (args, refusal) in [
        (["--count", "abc"], "--count: 'abc' is not a whole number"),
        (["--count", "1.5"], "--count: '1.5' is not a whole number"),
        (
            ["--url", "ftp://x.example/"],
            "--url: 'ftp://x.example/' is not an http or https URL",
        ),
        (
            ["--url", "https://me:pw@x.example/"],
            "--url: the URL must not carry a user name or password",
        ),
    ] {
        let run = check(&env, &["--check", "typed"])
            .args(args)
            .run()
            .fails_with(1);
        assert!(run.stderr.contains(refusal), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("typed:"),
            "the plugin ran: {}",
            run.stderr
        );
    }

    let blob: Vec<u8> = (0..=255).collect();
    let blob_file = env.root().join("blob.bin");
    std::fs::write(&blob_file, &blob).unwrap();
    let work = env.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let run = check(
        &env,
        &[
            "--check",
            "typed",
            "--count",
            "7",
            "--file-path",
            "rel/x.pfx",
        ],
    )
    .args(["--blob-file", blob_file.to_str().unwrap()])
    .current_dir(&work)
    .run()
    .success();
    let expected = format!(
        "typed: count Some(7), path Some({:?}), blob Some((256, Some(255)))",
        work.join("rel/x.pfx").display().to_string()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
}

#[test]
fn ctrl_c_ends_a_cancellable_sleep_at_once() {
    let env = host_check();
    let child = check(&env, &["--check", "sleep"]).spawn();
    let (code, stderr) = interrupt(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("sign-in with host-check failed: cancelled"),
        "{stderr}"
    );
}

/// `curl`'s status code for a GET of `url`.
fn curl(url: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Starts `exo connect` with the redirect check and returns it, its stderr, and the redirect URI
/// it announced.
#[allow(clippy::zombie_processes)] // the child is returned to the caller, which waits for it
fn wait_for_listener(env: &TestEnv) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = check(env, &["--check", "redirect"]).spawn();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait();
            panic!("exo ended before listening: {status:?}");
        }
        if let Some(uri) = line.trim().strip_prefix("redirect-uri: ") {
            return (child, stderr, uri.to_owned());
        }
    }
}

#[test]
fn the_redirect_listener_takes_exactly_one_redirect_with_the_right_state_on_loopback() {
    let env = host_check();
    let (mut child, mut stderr, uri) = wait_for_listener(&env);
    assert!(
        uri.starts_with("http://127.0.0.1:") && uri.ends_with('/'),
        "{uri}"
    );

    let (status, body) = curl(&format!("{uri}?code=stolen&state=guessed"));
    assert_eq!(status, 400, "{body}");
    let (status, _) = curl(&format!(
        "{uri}elsewhere?code=stolen&state=expected-state-0123456789"
    ));
    assert_eq!(status, 400);
    let (status, _) = curl(&format!("{uri}?code=stolen"));
    assert_eq!(status, 400);
    let (status, body) = curl(&format!(
        "{uri}?code=the-code&state=expected-state-0123456789"
    ));
    assert_eq!(status, 200);
    assert!(body.contains("You can close this window"), "{body}");

    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("redirect: code the-code"), "{rest}");
}

#[test]
fn a_redirect_error_is_shown_to_the_browser_escaped_and_to_the_user_as_an_error() {
    let env = host_check();
    let (mut child, mut stderr, uri) = wait_for_listener(&env);
    let (status, body) = curl(&format!(
        "{uri}?error=access_denied&error_description=%3Cscript%3Eno%3C%2Fscript%3E&state=expected-state-0123456789"
    ));
    assert_eq!(status, 200);
    assert!(
        body.contains("&lt;script&gt;") && !body.contains("<script>"),
        "{body}"
    );
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(!status.success());
    assert!(
        rest.contains("access_denied: the sign-in was declined or cancelled in the browser"),
        "{rest}"
    );
}

#[test]
fn a_per_request_timeout_ends_a_request_to_a_silent_server_in_about_a_second() {
    let env = host_check();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let started = Instant::now();
    let run = check(
        &env,
        &["--check", "http", "--url", &url, "--timeout-ms", "800"],
    )
    .run()
    .fails_with(1);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let waited: u64 = run
        .stderr
        .split("http failed after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!((800..3000).contains(&waited), "{waited} ms: {}", run.stderr);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    drop(silent);
}

#[test]
fn plain_http_to_loopback_never_goes_through_a_proxy() {
    let env = host_check();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", server.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in server.incoming().flatten().take(1) {
            let mut stream = stream;
            let mut buffer = [0u8; 1024];
            let _ = std::io::Read::read(&mut stream, &mut buffer);
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
            );
        }
    });
    // A managed-identity token over plain http must not cross a proxy, asked or not.
    let dead_proxy = "http://127.0.0.1:9";
    let direct = check(&env, &["--check", "http", "--url", &url])
        .env("HTTP_PROXY", dead_proxy)
        .env("http_proxy", dead_proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .run()
        .success();
    assert!(direct.stderr.contains("http: 204"), "{}", direct.stderr);
}

#[test]
fn a_pinned_thumbprint_is_the_only_trust_for_a_self_signed_server() {
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("host-check", &sb.env.bundled_plugins());
    let url = sb.sandbox.service_fabric_url().to_string();
    let pin = sb.sandbox.service_fabric_thumbprint().to_owned();
    let http = |extra: &[&str]| {
        sb.exo()
            .args([
                "connect",
                "--method",
                "host-check",
                "--check",
                "http",
                "--url",
                &url,
            ])
            .args(extra)
            .env("EXO_TEST_TOKEN", token(3600))
            .run()
    };
    let pinned = http(&["--pin", &pin]).success();
    assert!(pinned.stderr.contains("http: "), "{}", pinned.stderr);

    // Outside the sandbox environment, https goes through the environment's proxy unless the
    // plugin asks for a direct connection.
    let dead_proxy = "http://127.0.0.1:9";
    let outside = |extra: &[&str]| {
        sb.env
            .exo()
            .args([
                "connect",
                "--method",
                "host-check",
                "--check",
                "http",
                "--url",
                &url,
            ])
            .args(["--organization", "contoso.onmicrosoft.com", "--pin", &pin])
            .args(["--timeout-ms", "3000"])
            .args(extra)
            .env("EXO_TEST_TOKEN", token(3600))
            .env("HTTPS_PROXY", dead_proxy)
            .env("https_proxy", dead_proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .run()
    };
    let proxied = outside(&[]).fails_with(1);
    assert!(proxied.stderr.contains("http failed"), "{}", proxied.stderr);
    let direct = outside(&["--no-proxy"]).success();
    assert!(direct.stderr.contains("http: "), "{}", direct.stderr);
    let wrong = http(&["--pin", &"AB".repeat(20)]).fails_with(1);
    assert!(wrong.stderr.contains("http failed"), "{}", wrong.stderr);
    let unpinned = http(&[]).fails_with(1);
    assert!(
        unpinned.stderr.contains("http failed"),
        "{}",
        unpinned.stderr
    );
    let malformed = http(&["--pin", "xyz"]).fails_with(1);
    assert!(
        malformed
            .stderr
            .contains("a pinned thumbprint must be a hex SHA-1"),
        "{}",
        malformed.stderr
    );
}

#[test]
fn identity_provider_errors_reach_the_user_as_one_line_with_their_code_and_advice() {
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("host-check", &sb.env.bundled_plugins());
    let url = format!(
        "{}contoso.onmicrosoft.com/oauth2/v2.0/token",
        sb.sandbox.base_url()
    );
    let run = sb
        .exo()
        .args([
            "connect",
            "--method",
            "host-check",
            "--check",
            "idp",
            "--url",
            &url,
        ])
        .env("EXO_TEST_TOKEN", token(3600))
        .run()
        .fails_with(1);
    let line = run.stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains("AADSTS50126: the user name or password is wrong"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Trace ID"), "{}", run.stderr);
}

/// Connects `host-check` twice (prefixes One and Two) with tokens that have already expired,
/// to an Exchange URL where nothing listens, so that any cmdlet renews first.
fn two_expired_connections(env: &TestEnv, extra: &[&str]) {
    for prefix in ["One", "Two"] {
        env.exo()
            .args([
                "connect",
                "--method",
                "host-check",
                "--check",
                "typed",
                "--prefix",
                prefix,
            ])
            .args(["--organization", "contoso.onmicrosoft.com"])
            // Nothing listens there: the cmdlet fails, after renewing, without leaving loopback.
            .args(["--connection-uri", "https://127.0.0.1:9/"])
            .args(extra)
            .env("EXO_TEST_TOKEN", token(-10))
            .run()
            .success();
    }
}

#[test]
fn plugin_state_round_trips_and_renewals_of_one_plugin_run_concurrently() {
    let env = host_check();
    two_expired_connections(&env, &["--count", "2"]);
    let files = std::fs::read_dir(env.home().join(".local/state/exo/connections")).unwrap();
    for file in files {
        let cache = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !cache.is_empty() && !cache.windows(8).any(|w| w == b"acquired"),
            "encrypted"
        );
    }

    let run = env
        .exo()
        .args([
            "-v",
            "Get-AcceptedDomain",
            "--all-connections",
            "--max-retries",
            "0",
        ])
        .env("EXO_TEST_TOKEN", token(-5))
        .run();
    assert_eq!(
        run.stderr
            .matches("renew saw its state; renewals in flight at once: 2")
            .count(),
        2,
        "{}",
        run.stderr
    );
    // The renewal returned no state; the host kept the state from the sign-in, so a second
    // renewal still finds it.
    let run = env
        .exo()
        .args(["-v", "token"])
        .env("EXO_TEST_TOKEN", token(3600))
        .run()
        .success();
    assert!(run.stderr.contains("renew saw its state"), "{}", run.stderr);
}

#[test]
fn ctrl_c_during_a_renewal_inside_a_cmdlet_ends_exo_at_once_without_a_crash() {
    let env = host_check();
    // With --count 9 the renewal waits (in the host's sleep) for renewals that never come.
    two_expired_connections(&env, &["--count", "9"]);
    let child = env
        .exo()
        .args([
            "Get-AcceptedDomain",
            "--prefix",
            "One",
            "--max-retries",
            "0",
        ])
        .env("EXO_TEST_TOKEN", token(3600))
        .spawn();
    let (code, stderr) = interrupt(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Aborting"),
        "{stderr}"
    );
}

#[test]
fn plugin_state_that_holds_a_token_is_refused_and_nothing_is_stored() {
    let env = host_check();
    let run = check(&env, &["--check", "leak"]).run().fails_with(1);
    assert!(
        run.stderr.contains(
            "the host-check plugin returned a grant that exo refuses to keep: its state holds"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("eyJ"), "{}", run.stderr);
    let listed = env.exo().args(["connections", "--output", "json"]).run();
    assert!(!listed.stdout.contains("host-check"), "{}", listed.stdout);
}

#[test]
fn a_client_assertion_signed_by_the_sdk_signs_in_app_only_and_runs_a_cmdlet() {
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("host-check", &sb.env.bundled_plugins());
    let discovery: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.sandbox.state_dir().join("sandbox.json")).unwrap(),
    )
    .unwrap();
    let app = &discovery["apps"][0];
    let tenant = &discovery["tenants"][0]["id"];
    let url = format!(
        "{}{}/oauth2/v2.0/token",
        sb.sandbox.base_url(),
        tenant.as_str().unwrap()
    );
    let run = sb
        .exo()
        .args([
            "-v",
            "connect",
            "--method",
            "host-check",
            "--check",
            "assertion",
        ])
        .args([
            "--url",
            &url,
            "--client-id",
            app["client_id"].as_str().unwrap(),
        ])
        .args(["--path", app["certificate_file"].as_str().unwrap()])
        .args(["--blob-file", app["key_file"].as_str().unwrap()])
        .env("EXO_TEST_TOKEN", token(3600))
        .run()
        .success();
    assert!(
        run.stderr.contains("signed in app-only with certificate"),
        "{}",
        run.stderr
    );
    let domains = sb.exo().args(["Get-AcceptedDomain"]).run().success();
    assert!(
        domains.stdout.contains("contoso.onmicrosoft.com"),
        "{}",
        domains.stdout
    );
}

#[test]
fn a_renewal_that_signs_in_another_tenant_is_refused_and_the_connection_kept() {
    let env = host_check();
    two_expired_connections(&env, &[]);
    let elsewhere = unsigned_jwt(&serde_json::json!({
        "aud": "https://outlook.office365.com", "tid": "99999999-8888-7777-6666-555555555555",
        "upn": "admin@contoso.onmicrosoft.com", "exp": now() + 3600,
    }));
    let run = env
        .exo()
        .args(["token"])
        .env("EXO_TEST_TOKEN", &elsewhere)
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("the renewed token is for another tenant"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains(&elsewhere) && !run.stderr.contains(&elsewhere));
    // The connection is still there, and renews once the plugin names the same tenant again.
    env.exo()
        .args(["token"])
        .env("EXO_TEST_TOKEN", token(3600))
        .run()
        .success();
}
