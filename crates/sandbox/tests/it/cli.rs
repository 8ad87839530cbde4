//! The `exo-sandbox` binary: `seed`, `serve` (no secrets printed, SIGTERM cleans up) and
//! `get-token`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exo-sandbox");

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
    assert!(
        help.contains("--mailboxes") && help.contains("exo/sandbox"),
        "{help}"
    );
}

#[test]
fn serve_then_get_token_then_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args(["serve", "--state"])
        .arg(dir.path())
        .args(["--tenants", "3", "--mailboxes", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in lines.by_ref() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("generated tenants") || Instant::now() > deadline {
            break;
        }
    }
    assert!(
        banner.contains("O365USGovGCCHigh")
            && banner.contains("/usgov/")
            && banner.contains("ca.pem"),
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
    let discovery: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("sandbox.json")).expect("sandbox.json"),
    )
    .expect("json");
    assert_eq!(discovery["tenants"].as_array().map(Vec::len), Some(5));
    assert!(
        discovery["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1:"))
    );
    assert_eq!(discovery["pid"].as_u64(), Some(u64::from(child.id())));
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
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    assert!(
        !dir.path().join("sandbox.json").exists(),
        "a clean shutdown removes sandbox.json"
    );
}
