//! The `exo-sandbox` binary: `seed`, `serve` (no secrets printed, SIGTERM cleans up, `--fault`)
//! and `get-token`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exo-sandbox");

/// A `serve` child that is killed when dropped (an assertion failing mid-test included), with
/// its stdout lines arriving on a channel so reading them can time out.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Served {
    fn start(args: &[&str], state: &std::path::Path) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--state"])
            .arg(state)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Served { child, lines }
    }

    /// The banner up to the line containing `last`, or whatever arrived within 30 s.
    fn banner_until(&self, last: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut banner = String::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    banner.push_str(&line);
                    banner.push('\n');
                    if line.contains(last) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        banner
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "{exit:?}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Already exited after `terminate`; otherwise make sure no server outlives the test.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn discovery(state: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state.join("sandbox.json")).expect("sandbox.json"))
        .expect("json")
}

#[test]
fn seed_prints_the_built_in_seed() {
    let output = Command::new(BIN).arg("seed").output().expect("run");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let seed = sandbox::Seed::from_toml(&text).expect("the printed seed parses");
    assert_eq!(seed.tenants[0].name, "contoso");
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8(help.stdout).expect("utf-8");
    for flag in [
        "--mailboxes",
        "exo/sandbox",
        "--fault",
        "--sf-port",
        "--arc-token-dir",
    ] {
        assert!(help.contains(flag), "{flag} in {help}");
    }
}

#[test]
fn serve_then_get_token_then_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut served = Served::start(&["--tenants", "3", "--mailboxes", "20"], dir.path());
    let banner = served.banner_until("generated tenants");
    assert!(
        banner.contains("O365USGovGCCHigh")
            && banner.contains("/usgov/")
            && banner.contains("ca.pem")
            && banner.contains("Service Fabric:")
            && banner.contains("unauthenticated"),
        "{banner}"
    );
    let seed = sandbox::Seed::default();
    for user in seed.tenants.iter().flat_map(|t| t.users.iter()) {
        assert!(!banner.contains(&user.password), "serve printed a password");
        if let Some(secret) = &user.totp_secret {
            assert!(
                !banner.contains(secret.as_str()),
                "serve printed a TOTP secret"
            );
        }
    }
    let info = discovery(dir.path());
    assert_eq!(info["tenants"].as_array().map(Vec::len), Some(5));
    assert!(
        info["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1:"))
    );
    let thumbprint = info["service_fabric_thumbprint"]
        .as_str()
        .expect("thumbprint");
    assert!(banner.contains(thumbprint), "{banner}");
    assert_eq!(info["pid"].as_u64(), Some(u64::from(served.child.id())));
    let output = Command::new(BIN)
        .args(["get-token", "--state"])
        .arg(dir.path())
        .args(["--tenant", "tenant0002"])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(token.lines().count(), 1, "only the token on stdout");
    let claims = crate::support::claims(token.trim());
    assert_eq!(claims["tid"], "5eed0000-0000-4000-8000-000000000002");
    served.terminate();
    assert!(
        !dir.path().join("sandbox.json").exists(),
        "a clean shutdown removes sandbox.json"
    );
}

#[test]
fn faults_can_be_set_on_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::start(
        &[
            "--fault",
            r#"{"kind":"unavailable","target":"identity","count":1}"#,
            "--fault",
            r#"{"kind":"throttle","target":"exchange","retry_after_seconds":9,"tenant":"contoso"}"#,
        ],
        dir.path(),
    );
    let banner = served.banner_until("Accounts");
    assert!(banner.contains("Fault rules:         2 active"), "{banner}");
    let info = discovery(dir.path());
    let base = info["base_url"].as_str().expect("base_url").to_owned();
    let ca = std::fs::read_to_string(info["ca_file"].as_str().expect("ca_file")).expect("CA");
    let http = sandbox::client::blocking_http_client(&ca).expect("client");
    let discovery_url = format!("{base}common/v2.0/.well-known/openid-configuration");
    let statuses: Vec<u16> = (0..2)
        .map(|_| {
            http.get(&discovery_url)
                .send()
                .expect("get")
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [503, 200], "count 1: only the first request");
    let response = http
        .post(format!("{base}adminapi/beta/contoso.com/InvokeCommand"))
        .body("{}")
        .send()
        .expect("post");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "9");
    let rules: serde_json::Value = http
        .get(format!("{base}_sandbox/faults"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(rules.as_array().map(Vec::len), Some(2));
    drop(served);
    // A malformed or invalid rule stops `serve` before it listens.
    for (rule, message) in [
        (r#"{"kind":"explode"}"#, "not a fault rule"),
        (
            r#"{"kind":"drop","tenant":"nowhere"}"#,
            "unknown tenant 'nowhere'",
        ),
    ] {
        let output = Command::new(BIN)
            .args(["serve", "--state"])
            .arg(dir.path())
            .args(["--fault", rule])
            .stdout(Stdio::null())
            .output()
            .expect("run");
        assert!(!output.status.success(), "{rule}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{rule}: {stderr}");
    }
}
