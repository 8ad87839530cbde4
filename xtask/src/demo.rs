//! `cargo xtask demo`: the whole product against the local sandbox tenant, in one command.
//!
//! Starts `exo-sandbox serve` on an ephemeral port with its state under `target/demo/`, takes
//! an app-only token from it the way a user of `--method access-token` would (a real
//! client-credentials request signed with the seeded app's certificate), then runs what an
//! admin runs: connect, Get-Mailbox, Get-AcceptedDomain, the connection's details, disconnect.
//! exo's own state goes to `target/demo/exo`, so your real connections are never touched.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

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

    step(
        "exo-sandbox get-token | exo connect --method access-token --access-token-file - --environment sandbox",
    );
    let mut get_token = Command::new(bin.join("exo-sandbox"))
        .args(["get-token", "--state"])
        .arg(&sandbox_state)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run exo-sandbox get-token: {e}"))?;
    let token = get_token
        .stdout
        .take()
        .ok_or("no stdout from exo-sandbox get-token")?;
    let connect = exo(&[
        "connect",
        "--method",
        "access-token",
        "--access-token-file",
        "-",
        "--environment",
        "sandbox",
    ])
    .stdin(token)
    .status();
    check(get_token.wait())?;
    check(connect)?;

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
