//! Software written by others that the tests run against exo and the sandbox, installed into
//! `target/` from pinned manifests:
//! - Microsoft's MSAL for Python (`tests/third-party/requirements.txt`) into
//!   `target/third-party-venv`; it drives the sandbox;
//! - panva's `oidc-provider` for Node.js (`tests/third-party/oidc-provider`, `npm ci` from its
//!   lock file) into `target/third-party-node`; exo signs in against it.
//!
//! Each is installed again only when its manifests change (a copy sits next to it as a stamp),
//! so a warm run costs nothing.

use std::path::PathBuf;
use std::process::Command;

use crate::{Result, target_dir, workspace_root};

/// Makes sure the pinned clients are installed; returns the venv's Python.
pub fn ensure_installed() -> Result<PathBuf> {
    let requirements = workspace_root().join("tests/third-party/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let venv = target_dir().join("third-party-venv");
    let stamp = venv.join("requirements.installed");
    let python = venv.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    eprintln!(
        "==> installing the third-party OAuth clients into {}",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Makes sure the OIDC provider is installed; returns its script, next to its `node_modules`.
pub fn ensure_oidc_provider() -> Result<PathBuf> {
    let source = workspace_root().join("tests/third-party/oidc-provider");
    let files = [
        "package.json",
        "package-lock.json",
        "provider.mjs",
        "make-cert.sh",
    ];
    let mut wanted = String::new();
    for file in files {
        wanted += &std::fs::read_to_string(source.join(file))
            .map_err(|e| format!("cannot read {file}: {e}"))?;
    }
    let dir = target_dir().join("third-party-node");
    let stamp = dir.join("installed.stamp");
    let script = dir.join("provider.mjs");
    if script.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(script);
    }
    eprintln!(
        "==> installing the test OIDC provider into {}",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for file in files {
        std::fs::copy(source.join(file), dir.join(file)).map_err(|e| e.to_string())?;
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir))?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(script)
}

fn run(command: &mut Command) -> Result {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}
