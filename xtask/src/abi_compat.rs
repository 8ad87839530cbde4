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

    appended(debug, work, &copy, &token)?;

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

/// The experiment behind EVOLUTION.md's rule: a later 1.x appends one method to `LoginFlow`
/// and to `HostServices` (with default bodies, after the `last_prefix_field`) and one field to
/// the root module, as abi_stable's documentation allows. Older host + newer plugin, and newer
/// host + older plugin, are both tried with real libraries; the outcomes are checked so that a
/// change in abi_stable's behaviour fails CI.
fn appended(debug: &Path, work: &Path, copy: &Path, token: &Path) -> Result {
    eprintln!(
        "==> appending a method to LoginFlow and HostServices and a field to the root module"
    );
    let abi = copy.join("crates/plugin-abi/src/lib.rs");
    edit(
        &abi,
        "        host: HostRef<'_>,\n    ) -> RResult<RVec<u8>, PluginError>;\n}",
        "        host: HostRef<'_>,\n    ) -> RResult<RVec<u8>, PluginError>;\n\n    \
         /// Appended by the experiment.\n    fn appended_operation(&self) -> u32 {\n        199\n    }\n}",
    )?;
    edit(
        &abi,
        "RResult<RVec<u8>, PluginError>;\n}\n\n/// What [`HostServices::wait_for_redirect`]",
        "RResult<RVec<u8>, PluginError>;\n\n    /// Appended by the experiment.\n    \
         fn appended_service(&self) -> u32 {\n        199\n    }\n}\n\n\
         /// What [`HostServices::wait_for_redirect`]",
    )?;
    edit(
        &abi,
        "    pub new_login_flow: extern \"C\" fn() -> RResult<LoginFlowBox, PluginError>,\n}",
        "    pub new_login_flow: extern \"C\" fn() -> RResult<LoginFlowBox, PluginError>,\n    \
         /// Appended by the experiment.\n    pub appended_field: extern \"C\" fn() -> u32,\n}",
    )?;
    let export = copy.join("crates/plugin-sdk/src/export.rs");
    edit(
        &export,
        "        new_login_flow: new_login_flow::<M>,",
        "        new_login_flow: new_login_flow::<M>,\n        appended_field,",
    )?;
    edit(
        &export,
        "extern \"C\" fn new_login_flow<",
        "extern \"C\" fn appended_field() -> u32 {\n    199\n}\n\nextern \"C\" fn new_login_flow<",
    )?;
    // The newer plugin calls the appended host service and reports what it got.
    edit(
        &export,
        "    ) -> RResult<TokenGrant, PluginError> {\n        let host = Host::new(host);\n        host.enter(|| {\n            guarded(\"acquire\", || {\n                let grant = self.0.acquire(&Request::new(request), &host)?;\n                Ok(TokenGrant::from(&grant))",
        "    ) -> RResult<TokenGrant, PluginError> {\n        let appended = host.appended_service();\n        let host = Host::new(host);\n        host.enter(|| {\n            guarded(\"acquire\", || {\n                let grant = self.0.acquire(&Request::new(request), &host)?;\n                Ok(TokenGrant {\n                    extensions: format!(\"{{\\\"appended_service\\\":{appended}}}\").into(),\n                    ..TokenGrant::from(&grant)\n                })",
    )?;
    // The newer probe calls the appended plugin operation.
    edit(
        &copy.join("tests/abi-probe/src/main.rs"),
        "    let token = std::fs::read_to_string(token_file)",
        "    eprintln!(\"appended_operation = {}\", flow.appended_operation());\n    \
         let token = std::fs::read_to_string(token_file)",
    )?;
    build_copy(copy, &work.join("target"))?;
    let appended = stash(work, "appended")?;

    let older_host = run_probe(
        &debug.join("abi-probe"),
        &appended.join(plugin_file()),
        token,
    );
    eprintln!("    older host, newer plugin: {}", older_host.1.trim());
    if !(older_host.0 && older_host.1.contains("\"appended_service\":199")) {
        return Err(format!(
            "expected an older host to load a plugin with appended methods, and the plugin's \
             call of a host method the host lacks to fall back to its default (199): {}",
            older_host.1
        ));
    }
    let newer_host = run_probe(
        &work.join("appended/abi-probe"),
        &debug.join(plugin_file()),
        token,
    );
    // abi_stable's refusal is a long layout dump; its verdict is the `Error:` line.
    let verdict = newer_host
        .1
        .lines()
        .find(|line| line.starts_with("Error:"))
        .unwrap_or("(no verdict)");
    eprintln!("    newer host, older plugin: refused ({verdict})");
    if newer_host.0 || !newer_host.1.contains("refused") {
        return Err(format!(
            "expected a host with appended methods to refuse an older plugin (abi_stable's \
             prefix check), but: {}",
            newer_host.1
        ));
    }
    eprintln!(
        "    ok: appending is safe only for newer plugins in older hosts, so major 1 stays frozen"
    );
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

/// Runs `probe` on `library`: whether it succeeded, and all it printed.
fn run_probe(probe: &Path, library: &Path, token: &Path) -> (bool, String) {
    match Command::new(probe).arg(library).arg(token).output() {
        Ok(output) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Err(e) => (false, format!("cannot run {}: {e}", probe.display())),
    }
}

/// Runs `probe` on `library`; it must succeed and say `expected`.
fn probe(probe: &Path, library: &Path, token: &Path, expected: &str) -> Result {
    let (succeeded, text) = run_probe(probe, library, token);
    eprintln!("    {}", text.trim());
    if succeeded && text.contains(expected) {
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
