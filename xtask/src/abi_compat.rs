//! `cargo xtask abi-compat`: the ABI promise, checked with compiled plugins.
//!
//! A plugin built against plugin-abi 1.x must load into every host built against 1.y, older or
//! newer. This task copies the ABI, the SDK, the access-token plugin and `abi-probe` into
//! `target/abi-compat/src`, bumps plugin-abi there to 1.99.0, builds them, and crosses the two
//! generations:
//! - the current probe loads the 1.99 plugin and calls it, and the real `exo` lists it;
//! - the 1.99 probe loads the current plugin and calls it.
//!
//! Then it changes the layout of one ABI type in the copy (what a careless edit would do) and
//! checks that `exo` refuses the rebuilt plugin.

use std::path::Path;
use std::process::Command;

use crate::{Result, set_mode, workspace_root};

/// An unsigned token the access-token plugin accepts (expires in 2100): the probe's acquire.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlMzY1LmNvbSIsInRpZCI6ImFiaS1jb21wYXQiLCJ1cG4iOiJwcm9iZUBjb250b3NvLm9ubWljcm9zb2Z0LmNvbSIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJl";

/// What the copy holds, relative to the workspace root.
const COPIED: &[&str] = &[
    "crates/plugin-abi",
    "crates/plugin-sdk",
    "plugins/access-token",
    "tests/abi-probe",
];

/// Runs the checks with the current build in `debug` (`target/debug`) and scratch space in
/// `work`.
pub fn run(debug: &Path, work: &Path) -> Result {
    let copy = work.join("src");
    let _ = std::fs::remove_dir_all(work);
    for dir in COPIED {
        copy_dir(&workspace_root().join(dir), &copy.join(dir))?;
    }
    write_manifest(&copy)?;
    std::fs::copy(workspace_root().join("Cargo.lock"), copy.join("Cargo.lock"))
        .map_err(|e| e.to_string())?;
    let abi = copy.join("crates/plugin-abi");
    edit(
        &abi.join("Cargo.toml"),
        "version = \"1.0.0\"",
        "version = \"1.99.0\"",
    )?;
    let token = work.join("token.jwt");
    std::fs::write(&token, TOKEN).map_err(|e| e.to_string())?;

    eprintln!("==> building the access-token plugin and abi-probe against plugin-abi 1.99.0");
    build_copy(&copy, &work.join("target"))?;
    let newer = stash(work, "newer")?;

    probe(
        &debug.join("abi-probe"),
        &newer.join(plugin_file()),
        &token,
        "plugin ABI 1.99.0",
    )?;
    probe(
        &work.join("newer/abi-probe"),
        &debug.join(plugin_file()),
        &token,
        "probe ABI 1.99.0",
    )?;
    let listed = exo(
        debug,
        &[
            "plugins",
            "info",
            "access-token",
            "--output",
            "json",
            "--plugin-dir",
        ],
        &newer,
    )?;
    expect(
        &listed,
        "\"abi_version\": \"1.99.0\"",
        "exo lists the 1.99 plugin",
    )?;

    eprintln!(
        "==> changing the layout of ErrorKind in the copy (u32 → u64), as a careless edit would"
    );
    edit(
        &abi.join("src/lib.rs"),
        "pub struct ErrorKind(pub u32);",
        "pub struct ErrorKind(pub u64);",
    )?;
    build_copy(&copy, &work.join("target"))?;
    let changed = stash(work, "changed")?;
    let refused = exo(debug, &["plugins", "list", "--plugin-dir"], &changed)?;
    expect(
        &refused,
        "its ABI layout does not match",
        "exo refuses the changed layout",
    )?;
    eprintln!("==> ABI compatibility: 1.0 ↔ 1.99 load both ways; a changed layout is refused");
    Ok(())
}

fn plugin_file() -> String {
    crate::library_file("access-token")
}

/// The copy's root manifest: the workspace's, with only the copied members.
fn write_manifest(copy: &Path) -> Result {
    let manifest =
        std::fs::read_to_string(workspace_root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    let start = manifest
        .find("members = [")
        .ok_or("no members in Cargo.toml")?;
    let end = start + manifest[start..].find(']').ok_or("unclosed members")? + 1;
    let members: Vec<String> = COPIED.iter().map(|m| format!("\"{m}\"")).collect();
    let manifest = format!(
        "{}members = [{}]{}",
        &manifest[..start],
        members.join(", "),
        &manifest[end..]
    );
    // Workspace dependencies on crates left out of the copy would not resolve.
    let manifest: String = manifest
        .lines()
        .filter(|line| !line.starts_with("sandbox = "))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(copy.join("Cargo.toml"), manifest).map_err(|e| e.to_string())
}

fn build_copy(copy: &Path, target: &Path) -> Result {
    let manifest = copy.join("Cargo.toml");
    let (manifest, target) = (manifest.to_string_lossy(), target.to_string_lossy());
    crate::cargo(&[
        "build",
        "--quiet",
        "--manifest-path",
        &manifest,
        "--target-dir",
        &target,
        "-p",
        "access-token",
        "-p",
        "abi-probe",
    ])
}

/// Copies the copy's fresh plugin (in a folder exo trusts) and probe to `work/<name>/`.
fn stash(work: &Path, name: &str) -> Result<std::path::PathBuf> {
    let built = work.join("target/debug");
    let plugins = work.join(name).join("plugins");
    std::fs::create_dir_all(&plugins).map_err(|e| e.to_string())?;
    set_mode(&plugins, 0o755)?;
    std::fs::copy(built.join(plugin_file()), plugins.join(plugin_file()))
        .map_err(|e| e.to_string())?;
    set_mode(&plugins.join(plugin_file()), 0o755)?;
    std::fs::copy(built.join("abi-probe"), work.join(name).join("abi-probe"))
        .map_err(|e| e.to_string())?;
    Ok(plugins)
}

/// Runs `probe` on `library`; it must succeed and say `expected`.
fn probe(probe: &Path, library: &Path, token: &Path, expected: &str) -> Result {
    let output = Command::new(probe)
        .arg(library)
        .arg(token)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", probe.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("    {}", text.trim());
    if output.status.success() && text.contains(expected) {
        Ok(())
    } else {
        Err(format!(
            "{} could not use {}: {}",
            probe.display(),
            library.display(),
            text.trim()
        ))
    }
}

/// Runs the current `exo` with `args` and the plugin folder `plugins`; returns all it printed.
fn exo(debug: &Path, args: &[&str], plugins: &Path) -> Result<String> {
    let output = Command::new(debug.join("exo"))
        .args(args)
        .arg(plugins)
        .env_remove("EXO_PLUGIN_PATH")
        .output()
        .map_err(|e| format!("cannot run exo: {e}"))?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn expect(output: &str, needle: &str, what: &str) -> Result {
    if output.contains(needle) {
        eprintln!("    ok: {what}");
        Ok(())
    } else {
        Err(format!("expected {what} (`{needle}`), got:\n{output}"))
    }
}

/// Replaces `from` by `to` in `path`; `from` must be there.
fn edit(path: &Path, from: &str, to: &str) -> Result {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !text.contains(from) {
        return Err(format!("{} does not contain `{from}`", path.display()));
    }
    std::fs::write(path, text.replacen(from, to, 1)).map_err(|e| e.to_string())
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    for entry in
        std::fs::read_dir(from).map_err(|e| format!("cannot list {}: {e}", from.display()))?
    {
        let entry = entry.map_err(|e| e.to_string())?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)
                .map_err(|e| format!("cannot copy {}: {e}", source.display()))?;
        }
    }
    Ok(())
}
