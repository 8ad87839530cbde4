//! The delegated login methods against a standards OpenID Connect provider that is not Entra:
//! panva's `oidc-provider` for Node.js (pinned in `tests/third-party/oidc-provider`, installed by
//! `cargo xtask test`), on loopback HTTPS with its own CA. Its routes (`/auth`, `/token`,
//! `/jwks`, `/device/auth`) are found only through its discovery document, and its errors are
//! plain RFC 6749 bodies with no AADSTS code.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::TestEnv;
use support::browser::{attribute, deliver, opened_url, recording_browser};

/// The provider's client for exo, and its one user.
const CLIENT: &str = "exo-test-client";
const USER: &str = "alice";
const PASSWORD: &str = "correct-horse";

/// A running provider, stopped on drop.
struct Provider {
    process: Child,
    issuer: String,
    ca_file: PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The provider's script, or `None` (skip) outside `cargo xtask test`.
fn provider_script() -> Option<PathBuf> {
    match std::env::var_os("EXO_OIDC_PROVIDER") {
        Some(script) => Some(script.into()),
        None => {
            assert!(
                std::env::var_os("EXO_REQUIRE_THIRD_PARTY").is_none(),
                "EXO_REQUIRE_THIRD_PARTY is set but EXO_OIDC_PROVIDER is not: run through \
                 `cargo xtask test`, which installs the OIDC provider"
            );
            eprintln!("skipped: EXO_OIDC_PROVIDER is not set (`cargo xtask test` sets it)");
            None
        }
    }
}

fn start_provider(script: &Path, dir: &Path) -> Provider {
    let certs = dir.join("provider-certs");
    let made = Command::new("bash")
        .arg(script.with_file_name("make-cert.sh"))
        .arg(&certs)
        .output()
        .expect("make the provider's certificates");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // The port is free when chosen, but another process may take it before node listens: a
    // provider that does not say it is ready in time is stopped and started again elsewhere.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let issuer = format!("https://127.0.0.1:{port}/realms/test");
        let mut process = Command::new("node")
            .arg(script)
            .arg(port.to_string())
            .arg(certs.join("cert.pem"))
            .arg(certs.join("key.pem"))
            .arg(&issuer)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let stdout = process.stdout.take().unwrap();
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = String::new();
            let _ = BufReader::new(stdout).read_line(&mut ready);
            let _ = said.send(ready);
        });
        match heard.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(ready) if ready.trim() == "ready" => {
                return Provider {
                    process,
                    issuer,
                    ca_file: certs.join("ca.pem"),
                };
            }
            _ => {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
    panic!("the OIDC provider did not start in three tries");
}

/// A browser for the provider: trusts its CA, keeps cookies, follows no redirect by itself.
fn browser(provider: &Provider) -> reqwest::blocking::Client {
    let ca = std::fs::read(&provider.ca_file).unwrap();
    reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Follows the provider's redirects from `url`, signing in on its login form (first with a
/// wrong password), until a redirect leaves it for exo's loopback listener; returns that one.
fn sign_in(browser: &reqwest::blocking::Client, url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let mut wrong_password_tried = false;
    for _ in 0..20 {
        let response = browser.get(url.clone()).send().unwrap();
        if let Some(location) = response.headers().get("location") {
            let next = url.join(location.to_str().unwrap()).unwrap();
            if next.scheme() == "http" {
                return next.to_string();
            }
            url = next;
            continue;
        }
        let page = response.text().unwrap();
        let action = attribute(&page, "<form", "action").unwrap_or_else(|| panic!("{page}"));
        let action = url.join(&action).unwrap();
        let password = if wrong_password_tried {
            PASSWORD
        } else {
            "wrong"
        };
        let answer = browser
            .post(action.clone())
            .form(&[("login", USER), ("password", password)])
            .send()
            .unwrap();
        if !wrong_password_tried {
            wrong_password_tried = true;
            let page = answer.text().unwrap();
            assert!(
                page.contains("login-error"),
                "a wrong password is refused: {page}"
            );
            continue;
        }
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        url = action.join(&location).unwrap();
    }
    panic!("the sign-in never redirected to exo");
}

/// `exo connect --method METHOD` pointed at the provider.
fn connect(env: &TestEnv, provider: &Provider, method: &str) -> support::Exo {
    env.exo()
        .args(["connect", "--method", method])
        .args(["--authority-uri", &provider.issuer, "--client-id", CLIENT])
        .args(["--organization", "example.test", "--ca-file"])
        .arg_path(&provider.ca_file)
}

#[test]
fn browser_sign_in_with_a_provider_whose_routes_are_not_entras() {
    let Some(script) = provider_script() else {
        return;
    };
    let env = TestEnv::with_plugins(&["sso"]);
    let provider = start_provider(&script, env.root());
    let (recorder, opened) = recording_browser(env.root());
    let mut child = connect(&env, &provider, "sso")
        .env("BROWSER", &recorder)
        .in_terminal(None)
        .spawn();
    let url = opened_url(&opened);
    assert!(
        url.starts_with(&format!("{}/auth?", provider.issuer)),
        "{url}"
    );
    let location = sign_in(&browser(&provider), &url);
    assert_eq!(deliver(&location).0, 200);
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{output}");
    assert!(output.contains("as alice@example.test"), "{output}");
    let token = env.exo().args(["token", "--json"]).run().success();
    assert!(token.stdout.contains("example.test"), "{}", token.stdout);
}

#[test]
fn a_device_code_declined_at_a_standards_provider_is_reported_from_its_rfc_6749_error() {
    let Some(script) = provider_script() else {
        return;
    };
    let env = TestEnv::with_plugins(&["device"]);
    let provider = start_provider(&script, env.root());
    let mut child = connect(&env, &provider, "device").in_terminal(None).spawn();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let code = loop {
        let mut line = String::new();
        assert!(
            output.read_line(&mut line).unwrap() > 0,
            "exo ended: {seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line.split("enter the code ").nth(1) {
            break rest.trim().trim_end_matches('.').to_owned();
        }
    };
    assert!(
        seen.contains(&format!("open {}/device", provider.issuer)),
        "{seen}"
    );
    let browser = browser(&provider);
    let page = browser
        .get(format!("{}/device", provider.issuer))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let xsrf = attribute(&page, "name=\"xsrf\"", "value").unwrap();
    let confirm = browser
        .post(format!("{}/device", provider.issuer))
        .form(&[("xsrf", xsrf.as_str()), ("user_code", code.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let xsrf = attribute(&confirm, "name=\"xsrf\"", "value").unwrap();
    browser
        .post(format!("{}/device", provider.issuer))
        .form(&[
            ("xsrf", xsrf.as_str()),
            ("user_code", code.as_str()),
            ("abort", "yes"),
        ])
        .send()
        .unwrap();
    let mut rest = String::new();
    output.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{seen}{rest}");
    assert!(
        rest.contains("access_denied: the sign-in was declined on the device-login page"),
        "{seen}{rest}"
    );
    assert!(!rest.contains("AADSTS"), "{rest}");
}
