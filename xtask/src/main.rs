//! `cargo xtask`: exo's automation, in Rust so that it needs nothing but cargo.
//!
//! - `build [--release]`: build the workspace and assemble the ready-to-run folder
//!   `target/<profile>/` = `exo`, `exo-sandbox` and `plugins/` (one library per login method).
//! - `test`: build, install the pinned third-party OAuth client and OIDC provider
//!   (`tests/third-party`), then run every test (cargo-nextest when installed, else cargo test).
//! - `ci`: exactly what CI runs: formatting, clippy with warnings denied, build, tests, and the
//!   demo (so that the README's first command stays true).
//! - `demo`: build, start the sandbox tenant, and run the main job against it: connect, run
//!   cmdlets, show the connection, disconnect.
//! - `bench`: release build, then the benchmarks; results go in BENCHMARKS.md by hand.
//! - `abi-compat`: plugins built against plugin-abi 1.0 and a later 1.x load into hosts of
//!   either; a plugin whose ABI layout changed is refused.
//!
//! Everything builds with one command, `cargo build --workspace --all-targets`, so that the
//! build, the tests and the end-to-end tests share one set of artifacts and nothing compiles
//! twice.

mod abi_compat;
mod demo;
mod third_party;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["build"] => build(Profile::Debug).map(drop),
        ["build", "--release"] => build(Profile::Release).map(drop),
        ["test"] => build(Profile::Debug).and_then(|_| test()),
        ["ci"] => ci(),
        ["demo"] => {
            build(Profile::Debug).and_then(|dir| demo::run(&dir, &target_dir().join("demo")))
        }
        ["bench"] => bench(),
        ["abi-compat"] => build(Profile::Debug)
            .and_then(|dir| abi_compat::run(&dir, &target_dir().join("abi-compat"))),
        [] | ["help" | "--help" | "-h"] => {
            print!("{HELP}");
            Ok(())
        }
        _ => Err(format!("unknown task `{}`\n\n{HELP}", words.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "\
Usage: cargo xtask <task>

Tasks:
  build [--release]  build everything into target/<profile>/ (exo, exo-sandbox, plugins/)
  test               build, then run every test
  ci                 what CI runs: fmt, clippy -D warnings, build, tests, abi-compat, demo
  demo               build, start the sandbox tenant, connect, run cmdlets, disconnect
  bench              release build, then the benchmarks
  abi-compat         plugins built against plugin-abi 1.0 and 1.99 load both ways; a changed
                     layout is refused
";

/// A task's result; the error is a message for people.
type Result<T = ()> = std::result::Result<T, String>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Debug,
    Release,
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs `cargo <args>` in the workspace root, echoing the command.
pub(crate) fn cargo(args: &[&str]) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("==> cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// Builds the workspace and assembles `target/<profile>/plugins/`; returns the profile dir.
fn build(profile: Profile) -> Result<PathBuf> {
    let mut args = vec!["build", "--workspace", "--all-targets"];
    if profile == Profile::Release {
        args.push("--release");
    }
    cargo(&args)?;
    let dir = target_dir().join(if profile == Profile::Release {
        "release"
    } else {
        "debug"
    });
    assemble_plugins(&dir)?;
    Ok(dir)
}

/// Copies every login-method plugin (`plugins/*`) next to `exo`, into a folder only the
/// owner can write (exo refuses plugins others could replace).
fn assemble_plugins(profile_dir: &Path) -> Result {
    let plugins = profile_dir.join("plugins");
    std::fs::create_dir_all(&plugins)
        .map_err(|e| format!("cannot create {}: {e}", plugins.display()))?;
    set_mode(&plugins, 0o755)?;
    for name in plugin_packages()? {
        let file = library_file(&name);
        let built = profile_dir.join(&file);
        let installed = plugins.join(&file);
        std::fs::copy(&built, &installed)
            .map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
        set_mode(&installed, 0o755)?;
    }
    eprintln!(
        "==> ready to run: {}/exo with plugins in {}",
        profile_dir.display(),
        plugins.display()
    );
    Ok(())
}

/// The library file of plugin package `name` (`libfoo_bar.so` for `foo-bar`), by the host's
/// naming rule (`host/src/discovery.rs`; xtask stays free of the host's dependencies).
pub(crate) fn library_file(name: &str) -> String {
    let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    format!("{prefix}{}{suffix}", name.replace('-', "_"))
}

/// The package names under `plugins/`.
fn plugin_packages() -> Result<Vec<String>> {
    let dir = workspace_root().join("plugins");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let manifest = entry.map_err(|e| e.to_string())?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let name = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("name = \"")?.strip_suffix('"'))
            .ok_or_else(|| format!("{} has no package name", manifest.display()))?;
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the permissions of {}: {e}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_: &Path, _: u32) -> Result {
    Ok(())
}

fn test() -> Result {
    let python = third_party::ensure_installed()?;
    let provider = third_party::ensure_oidc_provider()?;
    // SAFETY: xtask is single-threaded; the variables are read by the test processes it starts.
    unsafe {
        std::env::set_var("EXO_THIRD_PARTY_PYTHON", &python);
        std::env::set_var("EXO_OIDC_PROVIDER", &provider);
    }
    let nextest = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"])
    } else {
        eprintln!("==> cargo-nextest is not installed; using cargo test");
        cargo(&["test", "--workspace", "--no-fail-fast"])
    }
}

fn ci() -> Result {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    let dir = build(Profile::Debug)?;
    test()?;
    abi_compat::run(&dir, &target_dir().join("abi-compat"))?;
    demo::run(&dir, &target_dir().join("demo"))
}

fn bench() -> Result {
    build(Profile::Release)?;
    let python = third_party::ensure_installed()?;
    // SAFETY: xtask is single-threaded; the variable is read by the benchmarks it starts.
    unsafe { std::env::set_var("EXO_THIRD_PARTY_PYTHON", &python) };
    // `--workspace` keeps the features of the release build, so nothing compiles again.
    for bench in ["plugin_loading", "throughput", "session", "sign_in"] {
        cargo(&["bench", "--workspace", "--bench", bench])?;
    }
    Ok(())
}
