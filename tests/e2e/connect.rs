//! `exo connect` with the access-token plugin: where the secret may come from, what is
//! refused, and that it never shows up in any output.

use serde_json::json;
use support::{Run, TestEnv, now, unsigned_jwt};

const TENANT: &str = "6f9c0e6c-3f7b-4f8f-9d0a-1c2b3d4e5f60";

fn user_token(expires_in: i64) -> String {
    unsigned_jwt(&json!({
        "aud": "https://outlook.office365.com",
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "tid": TENANT,
        "upn": "admin@contoso.onmicrosoft.com",
        "scp": "AdminApi.AccessAsUser.All",
        "exp": now() + expires_in,
    }))
}

/// `exo connect -m access-token` reading `token` from stdin.
fn connect_from_stdin(env: &TestEnv, token: String) -> support::Exo {
    env.exo()
        .args(["connect", "-m", "access-token", "--access-token-file", "-"])
        .stdin(token)
}

fn assert_connected(run: &Run) {
    let expected = format!(" to O365Default as admin@contoso.onmicrosoft.com (tenant {TENANT})");
    assert!(
        run.stdout.starts_with("Connected ExchangeOnline_") && run.stdout.contains(&expected),
        "{}",
        run.stdout
    );
}

#[test]
fn the_token_comes_from_a_file_stdin_or_the_environment() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let token = user_token(3600);
    let file = env.root().join("token.jwt");
    std::fs::write(&file, format!("{token}\n")).unwrap();

    let from_file = env
        .exo()
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&file)
        .run();
    assert_connected(&from_file.success());

    let from_stdin = connect_from_stdin(&env, token.clone()).run();
    assert_connected(&from_stdin.success());

    let from_env = env
        .exo()
        .args(["connect", "-m", "access-token"])
        .env("EXO_ACCESS_TOKEN", &token)
        .run();
    assert_connected(&from_env.success());
}

#[test]
fn a_secret_on_the_command_line_is_refused_without_echoing_it() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let token = user_token(3600);
    let run = env
        .exo()
        .args(["connect", "-m", "access-token", "--access-token", &token])
        .run()
        .fails_with(2);
    assert!(
        run.stderr.contains("unexpected argument '--access-token'"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&token) && !run.stdout.contains(&token));
}

#[test]
fn a_password_in_the_connection_uri_is_refused_without_echoing_it_and_nothing_is_stored() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let run = connect_from_stdin(&env, user_token(3600))
        .args(["--connection-uri", "https://admin:Hunter2@127.0.0.1:9/"])
        .args(["-vvv"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("a user name or password in the URL is not allowed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Hunter2") && !run.stdout.contains("Hunter2"));
    let listed = env.exo().args(["connections"]).run().success();
    assert!(!listed.stdout.contains("Hunter2"), "{}", listed.stdout);
}

#[test]
fn missing_expired_or_foreign_tokens_fail_with_a_reason() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let missing = env
        .exo()
        .args(["connect", "-m", "access-token"])
        .run()
        .fails_with(1);
    assert!(
        missing
            .stderr
            .contains("missing --access-token-file (or set EXO_ACCESS_TOKEN)"),
        "{}",
        missing.stderr
    );

    let empty = env.root().join("empty");
    std::fs::write(&empty, "").unwrap();
    let run = env
        .exo()
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&empty)
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains("cannot use the secret file") && run.stderr.contains("it is empty"),
        "{}",
        run.stderr
    );

    let expired = user_token(-600);
    let run = env
        .exo()
        .args(["connect", "-m", "access-token"])
        .env("EXO_ACCESS_TOKEN", &expired)
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains("the access token expired 10 min ago"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&expired));

    let token = user_token(3600);
    let run = env
        .exo()
        .args([
            "connect",
            "-m",
            "access-token",
            "--environment",
            "O365USGovGCCHigh",
        ])
        .env("EXO_ACCESS_TOKEN", &token)
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("this connection needs a token for https://outlook.office365.us"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_token_never_appears_in_any_output_even_at_the_highest_verbosity() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let token = user_token(3600);
    let run = env
        .exo()
        .args([
            "-vvv",
            "connect",
            "-m",
            "access-token",
            "--access-token-file",
            "-",
        ])
        .stdin(token.clone())
        .run();
    let run = run.success();
    let signature_free = token.rsplit_once('.').map(|(signed, _)| signed).unwrap();
    assert!(
        !run.stdout.contains(signature_free) && !run.stderr.contains(signature_free),
        "{run:?}"
    );
}

/// Runs `exo` with stdout or stderr on `/dev/full`; its exit code and the other stream.
fn on_full_disk(exo: support::Exo, full_stdout: bool) -> (Option<i32>, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut command = exo.into_command();
    if full_stdout {
        command.stdout(full).stderr(std::process::Stdio::piped());
    } else {
        command.stderr(full).stdout(std::process::Stdio::piped());
    }
    let output = command.output().unwrap();
    let other = if full_stdout {
        output.stderr
    } else {
        output.stdout
    };
    (
        output.status.code(),
        String::from_utf8_lossy(&other).into_owned(),
    )
}

#[test]
fn a_full_disk_on_stdout_or_stderr_is_an_error_never_a_panic() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let token = user_token(3600);
    let (code, stderr) = on_full_disk(env.exo().args(["--help"]), true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the output"), "{stderr}");

    // The connection is stored; only its summary could not be written.
    let token_file = env.root().join("token.jwt");
    std::fs::write(&token_file, &token).unwrap();
    let (code, stderr) = on_full_disk(
        env.exo()
            .args(["connect", "-m", "access-token", "--access-token-file"])
            .arg_path(&token_file),
        true,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the output"), "{stderr}");
    let (code, stderr) = on_full_disk(env.exo().args(["token"]), true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the output") && !stderr.contains(&token),
        "{stderr}"
    );
    for format in ["json", "list", "table"] {
        let (code, stderr) =
            on_full_disk(env.exo().args(["connections", "--output", format]), true);
        assert_eq!(code, Some(1), "{format}: {stderr}");
        assert!(
            stderr.contains("cannot write the output"),
            "{format}: {stderr}"
        );
    }

    for args in [
        &["token", "--connection-id", "nope"][..],
        &["--bogus"],
        &["-vvv", "connections"],
    ] {
        let (code, stdout) = on_full_disk(env.exo().args(args), false);
        assert!(matches!(code, Some(0..=2)), "{args:?}: {code:?} {stdout}");
    }
}

#[test]
fn an_expiry_outside_any_real_time_is_refused_at_connect_never_a_panic_later() {
    let env = TestEnv::with_plugins(&["access-token"]);
    for exp in [i64::MIN, i64::MAX, 0] {
        let token = unsigned_jwt(&json!({
            "aud": "https://outlook.office365.com", "tid": TENANT,
            "upn": "admin@contoso.onmicrosoft.com", "exp": exp,
        }));
        let run = connect_from_stdin(&env, token).run().fails_with(1);
        assert!(
            run.stderr.contains("has no usable expiry"),
            "{exp}: {}",
            run.stderr
        );
    }
    let none = env
        .exo()
        .args(["connections", "-o", "json"])
        .run()
        .success();
    assert_eq!(none.stdout.trim(), "[]", "nothing was stored");
}

#[test]
fn a_tenant_that_could_leave_the_request_path_is_refused_and_escaped() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let token = unsigned_jwt(&json!({
        "aud": "https://outlook.office365.com", "tid": "../etc\u{1b}[31mRED",
        "upn": "admin@contoso.onmicrosoft.com", "exp": now() + 3600,
    }));
    let run = connect_from_stdin(&env, token).run().fails_with(1);
    assert!(
        run.stderr
            .contains("is neither a tenant GUID nor a domain name"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    let run = connect_from_stdin(&env, user_token(3600))
        .args(["--organization", "../etc"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("--organization ../etc is neither a tenant GUID nor a domain name"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_renewal_does_not_wait_on_a_pipe_the_token_came_from() {
    use std::io::Write as _;
    let env = TestEnv::with_plugins(&["access-token"]);
    let fifo = env.root().join("token.pipe");
    support::make_fifo(&fifo);
    // The token is written once, as `<(…)` would, and has expired by the time it is asked for.
    let token = user_token(2);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            pipe.write_all(token.as_bytes()).unwrap();
        })
    };
    env.exo()
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&fifo)
        .run()
        .success();
    writer.join().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3000));
    // Before, opening the pipe again blocked for good; a hang here is the failure.
    let mut child = env.exo().args(["-v", "token"]).spawn();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("exo token waited on the pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("renew"), "{stderr}");
}

#[test]
fn claims_reach_the_terminal_escaped() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let token = unsigned_jwt(&json!({
        "aud": "https://outlook.office365.com", "tid": TENANT,
        "upn": "admin\u{1b}[2J@contoso.onmicrosoft.com", "exp": now() + 3600,
    }));
    let connected = connect_from_stdin(&env, token).run().success();
    let listed = env
        .exo()
        .args(["connections", "-o", "list"])
        .run()
        .success();
    for output in [&connected.stdout, &listed.stdout] {
        assert!(
            !output.contains('\u{1b}') && output.contains("admin\\u{1b}[2J@"),
            "{output:?}"
        );
    }
}
