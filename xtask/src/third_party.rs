//! The third-party clients that drive the sandbox in the tests: Microsoft's MSAL for Python,
//! pinned in `tests/third-party/requirements.txt`, installed into `target/third-party-venv`.
//!
//! The virtual environment is made again only when the requirements change (a copy of the
//! file sits next to it as a stamp), so a warm run costs nothing.

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
