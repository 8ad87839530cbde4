//! Interactive sign-in end to end: `exo connect --method sso | device | inline` against the
//! sandbox over real HTTPS, a test browser going through the sign-in and device-login pages
//! (password, then the MFA user's TOTP code), then cmdlets on the connection, refresh-token
//! renewal, revocation, and partner access.
//!
//! `exo` runs on a pseudo-terminal (`script`) where a person is needed. Its "system browser" is
//! `$BROWSER`: a script that writes the URL it is given to a file, which the test browser opens.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use support::browser::{Outcome, Person, TestBrowser, deliver, opened_url, recording_browser};
use support::{Exo, SandboxEnv};

const ADMIN: &str = "admin@contoso.onmicrosoft.com"; // MFA
const EXADMIN: &str = "exadmin@contoso.onmicrosoft.com";
const PARTNER_AGENT: &str = "agent@fabrikam-partner.onmicrosoft.com";

/// A sandbox with the interactive plugins installed.
fn sandbox(configure: impl FnOnce(&mut sandbox::SandboxConfig)) -> SandboxEnv {
    let sb = SandboxEnv::start(configure);
    for plugin in ["sso", "device", "inline"] {
        sb.env.install(plugin, &sb.env.bundled_plugins());
    }
    sb
}

/// Everything `child` prints (on its pseudo-terminal) until it ends, and how it ended.
fn finish(mut child: Child) -> (i32, String) {
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), output)
}

/// `exo connect --method sso …` on a terminal, with the recording browser.
fn start_sso(sb: &SandboxEnv, args: &[&str]) -> (Child, PathBuf) {
    let (browser, opened) = recording_browser(sb.env.root());
    let child = sb
        .exo()
        .args(["connect", "--method", "sso"])
        .args(args)
        .env("BROWSER", &browser)
        .in_terminal(None)
        .spawn();
    (child, opened)
}

/// Signs in with `sso` as `upn`, through the test browser.
fn sso_sign_in(sb: &SandboxEnv, upn: &str, args: &[&str]) -> (i32, String) {
    let (child, opened) = start_sso(sb, args);
    let url = opened_url(&opened);
    let browser = TestBrowser::new(&sb.sandbox);
    let Outcome::Redirect(location) =
        browser.sign_in(&url, &Person::seeded(&sb.sandbox, upn), None)
    else {
        panic!("the sign-in did not redirect");
    };
    let (status, page) = deliver(&location);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You can close this window"), "{page}");
    finish(child)
}

/// Signs in with `device` as `upn`, approving (or declining) on the device-login page.
fn device_sign_in(
    sb: &SandboxEnv,
    upn: &str,
    approve: bool,
    args: &[&str],
) -> (i32, String, String) {
    let mut child = sb
        .exo()
        .args(["connect", "--method", "device"])
        .args(args)
        .in_terminal(None)
        .spawn();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let (uri, code) = loop {
        let mut line = String::new();
        assert!(
            output.read_line(&mut line).unwrap() > 0,
            "exo ended: {seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line.split("open the page ").nth(1) {
            let uri = rest.split_whitespace().next().unwrap().to_owned();
            let code = rest
                .split("enter the code ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            break (uri, code);
        }
    };
    let page = TestBrowser::new(&sb.sandbox).device_login(
        &uri,
        &code,
        &Person::seeded(&sb.sandbox, upn),
        approve,
    );
    let mut rest = String::new();
    output.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), seen + &rest, page)
}

fn password_file(sb: &SandboxEnv, upn: &str) -> PathBuf {
    let person = Person::seeded(&sb.sandbox, upn);
    sb.token_file(&format!("{upn}.password"), person.password)
}

fn inline(sb: &SandboxEnv, upn: &str, args: &[&str]) -> Exo {
    let file = password_file(sb, upn);
    sb.exo()
        .args([
            "connect",
            "--method",
            "inline",
            "--upn",
            upn,
            "--password-file",
        ])
        .arg_path(&file)
        .args(args)
}

#[test]
fn browser_sign_in_with_mfa_and_without_then_cmdlets_run() {
    let sb = sandbox(|_| {});
    for upn in [ADMIN, EXADMIN] {
        let (code, output) = sso_sign_in(&sb, upn, &["--upn", upn]);
        assert_eq!(code, 0, "{output}");
        assert!(output.contains(&format!("as {upn}")), "{output}");
        let run = sb
            .exo()
            .args(["Get-Mailbox", "-ResultSize", "2"])
            .run()
            .success();
        assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    }
    // The URL the browser got (the last sign-in's): PKCE S256, state, nonce, the login hint,
    // a loopback redirect.
    let url = url::Url::parse(&opened_url(&sb.env.root().join("opened-url"))).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["state"].len() >= 16 && query["nonce"].len() >= 16);
    assert_eq!(query["login_hint"], EXADMIN);
    assert!(
        query["redirect_uri"].starts_with("http://127.0.0.1:"),
        "{url}"
    );
}

#[test]
fn the_listener_ignores_a_forged_redirect_and_takes_the_real_one_once() {
    let sb = sandbox(|_| {});
    let (child, opened) = start_sso(&sb, &[]);
    let url = opened_url(&opened);
    let browser = TestBrowser::new(&sb.sandbox);
    let Outcome::Redirect(location) =
        browser.sign_in(&url, &Person::seeded(&sb.sandbox, EXADMIN), None)
    else {
        panic!("no redirect");
    };
    let mut forged = url::Url::parse(&location).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "state" {
                "forged-state-0000000000".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(deliver(forged.as_str()).0, 400);
    assert_eq!(deliver(&location).0, 200);
    let (code, output) = finish(child);
    assert_eq!(code, 0, "{output}");
}

#[test]
fn a_wrong_mfa_code_can_be_corrected_in_the_browser() {
    let sb = sandbox(|_| {});
    let (child, opened) = start_sso(&sb, &[]);
    let url = opened_url(&opened);
    let browser = TestBrowser::new(&sb.sandbox);
    let admin = Person::seeded(&sb.sandbox, ADMIN);
    let Outcome::Page(page) = browser.sign_in(&url, &admin, Some("000000")) else {
        panic!("a wrong code redirected");
    };
    assert!(page.contains("expected verification code"), "{page}");
    let Outcome::Redirect(location) = browser.mfa_code(&page, &admin) else {
        panic!("the right code did not redirect");
    };
    assert_eq!(deliver(&location).0, 200);
    let (code, output) = finish(child);
    assert_eq!(code, 0, "{output}");
}

#[test]
fn device_code_sign_in_approved_declined_and_expired() {
    let sb = sandbox(|c| c.seed.lifetimes.device_code_interval_seconds = 1);
    // The first poll is told to slow down; exo waits longer and carries on.
    sb.sandbox
        .faults()
        .add(
            sandbox::FaultRule::new(sandbox::FaultKind::SlowDown, sandbox::FaultTarget::Identity)
                .count(1),
        )
        .unwrap();
    let (code, output, page) = device_sign_in(&sb, ADMIN, true, &[]);
    assert_eq!(code, 0, "{output}");
    assert!(page.contains("Signed in"), "{page}");
    assert!(output.contains(&format!("as {ADMIN}")), "{output}");
    sb.exo().args(["Get-AcceptedDomain"]).run().success();

    let (code, output, page) = device_sign_in(&sb, EXADMIN, false, &[]);
    assert_eq!(code, 1, "{output}");
    assert!(page.contains("Sign-in declined"), "{page}");
    assert!(output.contains("the sign-in was declined"), "{output}");

    let short = sandbox(|c| {
        c.seed.lifetimes.device_code_interval_seconds = 1;
        c.seed.lifetimes.device_code_seconds = 2;
    });
    let run = short
        .exo()
        .args(["connect", "--method", "device"])
        .in_terminal(None)
        .run();
    assert!(!run.status.success());
    assert!(run.stdout.contains("expired"), "{}", run.stdout);
}

#[test]
fn inline_credentials_from_a_file_and_what_they_cannot_do() {
    let sb = sandbox(|_| {});
    let run = inline(&sb, EXADMIN, &[]).run().success();
    assert!(
        run.stdout.contains(&format!("as {EXADMIN}")),
        "{}",
        run.stdout
    );
    sb.exo().args(["Get-AcceptedDomain"]).run().success();

    let mfa = inline(&sb, ADMIN, &[]).run().fails_with(1);
    assert!(
        mfa.stderr.contains("AADSTS50076") && mfa.stderr.contains("--method sso"),
        "{}",
        mfa.stderr
    );
    let wrong = sb
        .exo()
        .args(["connect", "--method", "inline", "--upn", EXADMIN])
        .env("EXO_PASSWORD", "not the password")
        .run()
        .fails_with(1);
    assert!(
        wrong
            .stderr
            .contains("AADSTS50126: the user name or password is wrong"),
        "{}",
        wrong.stderr
    );
    for (upn, code) in [
        ("disabled@contoso.onmicrosoft.com", "AADSTS50057"),
        ("expired@contoso.onmicrosoft.com", "AADSTS50055"),
        ("locked@contoso.onmicrosoft.com", "AADSTS50053"),
    ] {
        let run = inline(&sb, upn, &[]).run().fails_with(1);
        assert!(run.stderr.contains(code), "{upn}: {}", run.stderr);
    }
    // A federated account's password is checked by its own organization's service.
    let federated = sb
        .exo()
        .args([
            "connect",
            "--method",
            "inline",
            "--upn",
            "pat@corp.contoso.com",
        ])
        .env("EXO_PASSWORD", "anything")
        .run()
        .fails_with(1);
    assert!(
        federated.stderr.contains("is a federated account")
            && federated.stderr.contains("--method sso"),
        "{}",
        federated.stderr
    );
    // An app registration the tenant does not know.
    let unknown_app = inline(
        &sb,
        EXADMIN,
        &["--client-id", "11111111-2222-3333-4444-555555555555"],
    )
    .run()
    .fails_with(1);
    assert!(
        unknown_app.stderr.contains("AADSTS700016"),
        "{}",
        unknown_app.stderr
    );
    // A user whose Exchange Online PowerShell access is off can sign in, but not run cmdlets:
    // Exchange's own message says why.
    inline(
        &sb,
        "nopwsh@contoso.onmicrosoft.com",
        &["--prefix", "NoPwsh"],
    )
    .run()
    .success();
    let refused = sb.exo().args(["Get-NoPwshMailbox"]).run().fails_with(1);
    assert!(
        refused.stderr.contains("EXOModuleEnabled"),
        "{}",
        refused.stderr
    );
    let no_password = sb
        .exo()
        .args(["connect", "--method", "inline", "--upn", EXADMIN])
        .env_remove("EXO_PASSWORD")
        .run()
        .fails_with(1);
    assert!(
        no_password.stderr.contains("missing --password-file"),
        "{}",
        no_password.stderr
    );
}

#[test]
fn inline_asks_at_the_terminal_for_what_is_missing() {
    let sb = sandbox(|_| {});
    let password = Person::seeded(&sb.sandbox, EXADMIN).password.to_owned();
    let child = sb
        .exo()
        .args(["connect", "--method", "inline"])
        .env_remove("EXO_PASSWORD")
        .in_terminal(None)
        .spawn_with_stdin();
    let (success, seen) = support::answer_prompts(
        child,
        &[
            ("User name: ", EXADMIN),
            ("Password for", password.as_str()),
        ],
    );
    assert!(success, "{seen}");
    assert!(seen.contains(&format!("as {EXADMIN}")), "{seen}");
    assert!(!seen.contains(&password), "the password was echoed: {seen}");
}

#[test]
fn tokens_are_renewed_with_the_refresh_token_and_a_revoked_one_says_how_to_reconnect() {
    let sb = sandbox(|c| c.seed.lifetimes.access_token_seconds = Some(4));
    inline(&sb, EXADMIN, &[]).run().success();
    let first = sb.exo().args(["token"]).run().success().stdout;
    std::thread::sleep(Duration::from_millis(2500));
    let renewed = sb.exo().args(["token"]).run().success().stdout;
    assert_ne!(
        first, renewed,
        "renewed ahead of expiry with the refresh token"
    );
    sb.exo().args(["Get-AcceptedDomain"]).run().success();

    assert!(sb.sandbox.revoke_user_sessions(EXADMIN));
    std::thread::sleep(Duration::from_millis(4500));
    let run = sb.exo().args(["Get-AcceptedDomain"]).run().fails_with(1);
    assert!(
        run.stderr
            .contains("Sign in again with: exo connect --method inline")
            && run.stderr.contains("AADSTS50173")
            && run
                .stderr
                .contains("--user-principal-name exadmin@contoso.onmicrosoft.com"),
        "{}",
        run.stderr
    );
}

#[test]
fn partner_access_works_with_every_interactive_method() {
    let sb = sandbox(|c| c.seed.lifetimes.device_code_interval_seconds = 1);
    let customer = ["--delegated-organization", "contoso.onmicrosoft.com"];
    inline(
        &sb,
        PARTNER_AGENT,
        &[&customer[..], &["--prefix", "Inline"]].concat(),
    )
    .run()
    .success();
    let (code, output) = sso_sign_in(
        &sb,
        PARTNER_AGENT,
        &[&customer[..], &["--prefix", "Sso"]].concat(),
    );
    assert_eq!(code, 0, "{output}");
    let (code, output, _) = device_sign_in(
        &sb,
        PARTNER_AGENT,
        true,
        &[&customer[..], &["--prefix", "Device"]].concat(),
    );
    assert_eq!(code, 0, "{output}");
    for prefix in ["Inline", "Sso", "Device"] {
        let run = sb
            .exo()
            .args([&format!("Get-{prefix}AcceptedDomain"), "--output", "json"])
            .run()
            .success();
        assert!(
            run.stdout.contains("contoso.onmicrosoft.com"),
            "{prefix}: {}",
            run.stdout
        );
    }
}

#[test]
fn without_a_method_exo_chooses_the_browser_or_a_device_code_and_says_so() {
    let sb = sandbox(|_| {});
    let (browser, _) = recording_browser(sb.env.root());
    let chose_browser = sb
        .exo()
        .args(["connect", "--timeout", "1"])
        .env("BROWSER", &browser)
        .in_terminal(None)
        .run();
    assert!(
        chose_browser
            .stdout
            .contains("signing in with the browser (--method sso)"),
        "{}",
        chose_browser.stdout
    );
    let chose_device = sb
        .exo()
        .args(["connect", "--timeout", "1"])
        .env_remove("BROWSER")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("SSH_CONNECTION", "10.0.0.1 22 10.0.0.2 22")
        .in_terminal(None)
        .run();
    assert!(
        chose_device
            .stdout
            .contains("signing in with a device code (--method device)"),
        "{}",
        chose_device.stdout
    );
}

#[test]
fn no_password_code_or_token_reaches_any_output_at_the_highest_verbosity() {
    let sb = sandbox(|c| {
        c.seed.lifetimes.device_code_interval_seconds = 1;
        c.seed.lifetimes.access_token_seconds = Some(4);
    });
    let mut outputs = Vec::new();
    let (code, output) = sso_sign_in(&sb, ADMIN, &["-vvv", "--prefix", "Sso"]);
    assert_eq!(code, 0, "{output}");
    outputs.push(output);
    let (code, output, _) = device_sign_in(&sb, ADMIN, true, &["-vvv", "--prefix", "Device"]);
    assert_eq!(code, 0, "{output}");
    outputs.push(output);
    let run = inline(&sb, EXADMIN, &["-vvv", "--prefix", "Inline"])
        .run()
        .success();
    outputs.push(run.stdout + &run.stderr);
    // Renewals with the refresh token, and cmdlets, at -vvv too.
    std::thread::sleep(Duration::from_millis(2500));
    for prefix in ["Sso", "Device", "Inline"] {
        let run = sb
            .exo()
            .args(["-vvv", &format!("Get-{prefix}AcceptedDomain")])
            .run()
            .success();
        assert!(run.stderr.contains("exo::"), "-vvv logs: {}", run.stderr);
        outputs.push(run.stdout + &run.stderr);
    }
    let mut secrets = sb.sandbox.issued_secrets();
    assert!(
        secrets.len() > 6,
        "tokens, refresh tokens and codes were recorded"
    );
    for upn in [ADMIN, EXADMIN] {
        secrets.push(Person::seeded(&sb.sandbox, upn).password.to_owned());
    }
    for output in &outputs {
        for secret in &secrets {
            // A JWT is searched for without its signature (the claims alone are secret enough);
            // codes and refresh tokens whole.
            let signed_part = match secret.rsplit_once('.') {
                Some((head, _)) if secret.starts_with("eyJ") => head,
                _ => secret.as_str(),
            };
            assert!(
                !output.contains(signed_part),
                "a secret leaked ({} chars, starting {:?}): {output}",
                secret.len(),
                &secret[..secret.len().min(6)]
            );
        }
    }
}

#[test]
fn without_a_browser_the_url_is_printed_and_ctrl_c_stops_the_wait() {
    use std::io::Write as _;
    let sb = sandbox(|_| {});
    let mut child = sb
        .exo()
        .args(["connect", "--method", "sso", "--no-browser"])
        .in_terminal(None)
        .spawn_with_stdin();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            output.read_line(&mut line).unwrap() > 0,
            "exo ended: {seen}"
        );
        seen.push_str(&line);
        if line.trim_start().starts_with("https://") {
            break;
        }
    }
    assert!(seen.contains("Open this address in a browser"), "{seen}");
    // Ctrl-C as a person presses it: the terminal sends SIGINT to exo.
    let pressed = Instant::now();
    child.stdin.take().unwrap().write_all(b"\x03").unwrap();
    let mut rest = String::new();
    output.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(
        pressed.elapsed() < Duration::from_secs(3),
        "{:?}",
        pressed.elapsed()
    );
    assert!(!status.success(), "{seen}{rest}");
    assert!(rest.contains("cancelled"), "{rest}");
}
