//! `cargo xtask demo`: the whole product against the local sandbox tenant, in one command.
//!
//! Starts `exo-sandbox serve` on an ephemeral port with its state under `target/demo/`, signs in
//! the way automation does — app-only with the seeded app's certificate (`--method certificate`,
//! `Connect-ExchangeOnline -AppId -Organization -CertificateFilePath`) — then runs what an admin
//! runs: Get-Mailbox, Get-AcceptedDomain, the connection's details, disconnect.
//! exo's own state goes to `target/demo/exo`, so your real connections are never touched.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// The client id of the seed's `exo-automation` app registration.
const DEMO_APP: &str = "29a3b2e9-5d65-4441-9588-42dea2bc372f";

/// Runs the demo with the binaries in `bin` and scratch state in `scratch`.
pub fn run(bin: &Path, scratch: &Path) -> Result {
    let _ = std::fs::remove_dir_all(scratch);
    let sandbox_state = scratch.join("sandbox");
    let exo_state = scratch.join("exo");
    std::fs::create_dir_all(&sandbox_state)
        .map_err(|e| format!("cannot create {}: {e}", sandbox_state.display()))?;
    let sandbox = Sandbox::start(bin, &sandbox_state, &scratch.join("sandbox.log"))?;
    let exo = |args: &[&str]| {
        let mut command = Command::new(bin.join("exo"));
        command
            .args(args)
            .env("EXO_STATE_DIR", &exo_state)
            .env("EXO_SANDBOX_DIR", &sandbox_state);
        command
    };

    step("exo plugins list");
    check(exo(&["plugins", "list"]).status())?;

    // The seed's automation app (`exo-sandbox seed`); the sandbox keeps its certificate and key
    // under its state directory.
    let apps = sandbox_state.join("keys").join("apps");
    let certificate = apps.join(format!("{DEMO_APP}.pem"));
    let key = apps.join(format!("{DEMO_APP}.key"));
    let (certificate, key) = (certificate.to_string_lossy(), key.to_string_lossy());
    step(&format!(
        "exo connect --method certificate --environment sandbox --organization \
         contoso.onmicrosoft.com --app-id {DEMO_APP} --certificate-file-path {certificate} \
         --certificate-key-file {key}"
    ));
    check(
        exo(&[
            "connect",
            "--method",
            "certificate",
            "--environment",
            "sandbox",
            "--organization",
            "contoso.onmicrosoft.com",
            "--app-id",
            DEMO_APP,
            "--certificate-file-path",
            &certificate,
            "--certificate-key-file",
            &key,
        ])
        .status(),
    )?;

    step("exo Get-Mailbox -ResultSize 5 --output table");
    check(exo(&["Get-Mailbox", "-ResultSize", "5", "--output", "table"]).status())?;

    step("exo Get-AcceptedDomain --output table");
    check(exo(&["Get-AcceptedDomain", "--output", "table"]).status())?;

    step("exo connections --output list");
    check(exo(&["connections", "--output", "list"]).status())?;

    step("exo disconnect --yes");
    check(exo(&["disconnect", "--yes"]).status())?;

    drop(sandbox);
    eprintln!(
        "\n==> demo finished: the sandbox is stopped; its log is in {}",
        scratch.join("sandbox.log").display()
    );
    Ok(())
}

fn step(command: &str) {
    eprintln!("\n$ {command}");
}

fn check(status: std::io::Result<std::process::ExitStatus>) -> Result {
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("the demo step failed ({status})")),
        Err(e) => Err(format!("the demo step could not run: {e}")),
    }
}

/// A running `exo-sandbox serve`, stopped on drop.
struct Sandbox(Child);

impl Sandbox {
    fn start(bin: &Path, state: &Path, log: &Path) -> Result<Self> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let stderr = log_file.try_clone().map_err(|e| e.to_string())?;
        step(&format!("exo-sandbox serve --state {} &", state.display()));
        let child = Command::new(bin.join("exo-sandbox"))
            .args(["serve", "--state"])
            .arg(state)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start exo-sandbox: {e}"))?;
        let mut sandbox = Self(child);
        let discovery = state.join("sandbox.json");
        let started = Instant::now();
        while !discovery.exists() {
            if let Ok(Some(status)) = sandbox.0.try_wait() {
                return Err(format!(
                    "exo-sandbox exited ({status}); see {}",
                    log.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "exo-sandbox did not start within a minute; see {}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let banner = std::fs::read_to_string(log).unwrap_or_default();
        eprint!("{banner}");
        Ok(sandbox)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
