//! The real thing once: headless Chromium, driven through WebDriver (chromedriver) by
//! fantoccini, signs in on the sandbox's pages — user name, password, then the MFA code — while
//! `exo connect --method sso` waits on its loopback listener; then a cmdlet runs on that
//! connection.
//!
//! Chromium trusts the sandbox's CA through an NSS database made for the test (`certutil`),
//! never through a switch that turns certificate checks off. `.ci/run` installs `chromium`,
//! `chromium-driver` and `libnss3-tools` and sets `EXO_REQUIRE_BROWSER_TEST=1`, so a missing
//! browser fails CI instead of skipping.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use support::SandboxEnv;
use support::browser::{opened_url, recording_browser};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    process: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Whether `program` is on the `PATH`.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A home directory whose NSS database trusts `ca_file` (what Chromium on Linux reads).
fn home_trusting(home: &Path, ca_file: &Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let database = format!("sql:{}", db.display());
    let run = |args: &[&str]| {
        let status = Command::new("certutil")
            .args(args)
            .status()
            .expect("certutil");
        assert!(status.success(), "certutil {args:?}");
    };
    run(&["-N", "-d", &database, "--empty-password"]);
    run(&[
        "-A",
        "-d",
        &database,
        "-n",
        "exo sandbox CA",
        "-t",
        "C,,",
        "-i",
        ca_file.to_str().unwrap(),
    ]);
}

fn start_driver(home: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { process, port }
}

#[test]
fn headless_chromium_signs_in_with_mfa_while_exo_waits() {
    if !installed("chromedriver") || !installed("certutil") {
        assert!(
            std::env::var_os("EXO_REQUIRE_BROWSER_TEST").is_none(),
            "EXO_REQUIRE_BROWSER_TEST is set but chromedriver or certutil is missing \
             (apt-get install chromium chromium-driver libnss3-tools)"
        );
        eprintln!("skipped: chromium-driver and libnss3-tools are not installed");
        return;
    }
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("sso", &sb.env.bundled_plugins());
    let home = sb.env.root().join("chromium-home");
    home_trusting(&home, sb.sandbox.ca_file());
    let driver = start_driver(&home);

    let (browser, opened) = recording_browser(sb.env.root());
    let mut exo = sb
        .exo()
        .args(["connect", "--method", "sso"])
        .env("BROWSER", &browser)
        .in_terminal(None)
        .spawn();
    let url = opened_url(&opened);

    let secret = sb
        .sandbox
        .seed()
        .tenants
        .iter()
        .flat_map(|t| t.users.iter())
        .find(|u| u.upn == ADMIN)
        .map(|u| (u.password.clone(), u.totp_secret.clone().expect("MFA user")))
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let landed = runtime.block_on(async {
        let user_data = home.join("profile");
        let capabilities: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", format!("--user-data-dir={}", user_data.display()),
            ]}}))
            .unwrap();
        let client = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session");
        client.goto(&url).await.expect("open the sign-in page");
        for (field, value) in [
            ("login", ADMIN.to_owned()),
            ("passwd", secret.0.clone()),
            ("otc", sandbox::totp::current_code(&secret.1).unwrap()),
        ] {
            let input = client
                .wait()
                .for_element(Locator::Css(&format!("input[name={field}]")))
                .await
                .unwrap_or_else(|e| panic!("no {field} field: {e}"));
            input.send_keys(&value).await.unwrap();
            client
                .find(Locator::Css("button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
        // The browser lands on exo's loopback listener, which says the window can be closed.
        let started = Instant::now();
        let landed = loop {
            let source = client.source().await.unwrap_or_default();
            if source.contains("You can close this window") {
                break client.current_url().await.unwrap().to_string();
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{source}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        client.close().await.unwrap();
        landed
    });
    assert!(landed.starts_with("http://127.0.0.1:"), "{landed}");
    let mut output = String::new();
    std::io::Read::read_to_string(&mut exo.stdout.take().unwrap(), &mut output).unwrap();
    assert!(exo.wait().unwrap().success(), "{output}");
    assert!(output.contains(&format!("as {ADMIN}")), "{output}");
    let run = sb
        .exo()
        .args(["Get-Mailbox", "-ResultSize", "3"])
        .run()
        .success();
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
}
