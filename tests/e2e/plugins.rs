//! Plugin discovery and loading: the listing, the search order, and every refusal, with real
//! library files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::{TestEnv, library_file_name};

/// Refused libraries. A plugin whose plugin-abi layout changed is built and refused by
/// `cargo xtask abi-compat`, which needs a modified copy of plugin-abi.
const ALL_FIXTURES: &[&str] = &["panicky", "abi-major-2", "not-a-plugin"];

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn list_describes_each_bundled_plugin() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let listing = env
        .exo()
        .args(["plugins", "list", "--output", "json"])
        .run()
        .success()
        .json();
    let plugins = listing["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1, "{listing:#}");
    let plugin = &plugins[0];
    assert_eq!(plugin["method_id"], "access-token");
    assert_eq!(plugin["name"], "Pre-issued access token");
    assert!(
        plugin["abi_version"].as_str().unwrap().starts_with("1."),
        "{plugin:#}"
    );
    let path = env
        .bundled_plugins()
        .join(library_file_name("access-token"));
    assert_eq!(plugin["path"], path.display().to_string());
    let parameter = &plugin["parameters"][0];
    assert_eq!(parameter["option"], "--access-token-file");
    assert_eq!(parameter["secret"], true);
    assert_eq!(parameter["required"], true);
    assert_eq!(parameter["env_var"], "EXO_ACCESS_TOKEN");
    assert_eq!(listing["refused"], serde_json::json!([]));

    let table = env.exo().args(["plugins", "list"]).run().success().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("METHOD") && lines[0].contains("ABI") && lines[0].contains("PATH"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("access-token") && lines[1].contains("--access-token-file"),
        "{table}"
    );
}

#[test]
fn info_shows_one_method_and_unknown_methods_name_the_available_ones() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let info = env
        .exo()
        .args(["plugins", "info", "access-token"])
        .run()
        .success()
        .stdout;
    assert!(
        info.starts_with("access-token — Pre-issued access token"),
        "{info}"
    );
    assert!(
        info.contains("--access-token-file") && info.contains("env EXO_ACCESS_TOKEN"),
        "{info}"
    );

    let missing = env
        .exo()
        .args(["plugins", "info", "nope"])
        .run()
        .fails_with(1);
    assert!(
        missing
            .stderr
            .contains("no plugin provides login method 'nope'"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("available: access-token"),
        "{}",
        missing.stderr
    );
}

#[test]
fn connect_help_lists_the_method_parameters() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let help = env
        .exo()
        .args(["connect", "--method", "access-token", "--help"])
        .run()
        .success()
        .stdout;
    assert!(
        help.contains("Parameters of the access-token method"),
        "{help}"
    );
    assert!(
        help.contains("--access-token-file <PATH>") && help.contains("[env: EXO_ACCESS_TOKEN]"),
        "{help}"
    );
}

#[test]
fn every_unusable_library_is_refused_with_its_reason_and_the_others_still_load() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let dir = env.bundled_plugins();
    for fixture in ALL_FIXTURES {
        env.install(fixture, &dir);
    }
    std::fs::write(
        dir.join(library_file_name("garbage")),
        "this is not a library\n",
    )
    .unwrap();
    env.install_as("access-token", &dir, &library_file_name("renamed"));
    std::fs::write(dir.join("README.txt"), "not named like a plugin: ignored\n").unwrap();

    let run = env
        .exo()
        .args(["plugins", "list"])
        .env("EXO_TEST_PANIC_AT", "describe")
        .run()
        .success();
    let refused = |file: &str, reason: &str| {
        let path = dir.join(library_file_name(file));
        let line = format!("exo: refused {}: {reason}", path.display());
        assert!(
            run.stderr.lines().any(|l| l.starts_with(&line)),
            "missing `{line}` in:\n{}",
            run.stderr
        );
    };
    refused("garbage", "not a loadable library");
    refused(
        "not-a-plugin",
        "not an exo plugin (no abi_stable root module)",
    );
    refused(
        "abi-major-2",
        "built for plugin ABI 2.0.0, but this exo speaks ABI 1.x",
    );
    refused(
        "panicky",
        "the plugin failed: panicked in describe: panicky: boom in describe",
    );
    refused(
        "renamed",
        "invalid description: a plugin for method 'access-token' must be named",
    );
    assert_eq!(
        run.stderr.lines().count(),
        5,
        "one line per refusal:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("README"), "{}", run.stderr);
    assert!(
        run.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("access-token")),
        "{}",
        run.stdout
    );
}

#[test]
fn panics_anywhere_in_a_plugin_are_errors_and_exo_keeps_running() {
    let env = TestEnv::with_plugins(&["access-token", "panicky"]);
    for (at, reason) in [
        ("load", "its root module constructor panicked"),
        (
            "start",
            "the plugin failed: panicked in starting: panicky: boom while starting",
        ),
        (
            "describe",
            "the plugin failed: panicked in describe: panicky: boom in describe",
        ),
    ] {
        let run = env
            .exo()
            .args(["plugins", "list", "--output", "json"])
            .env("EXO_TEST_PANIC_AT", at)
            .run()
            .success();
        let listing = run.json();
        assert_eq!(listing["plugins"][0]["method_id"], "access-token", "{at}");
        assert!(
            listing["refused"][0]["reason"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{at}: {listing:#}"
        );
    }

    let run = env
        .exo()
        .args(["connect", "--method", "panicky"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("sign-in with panicky failed: panicked in acquire: panicky: boom in acquire"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Aborting"), "{}", run.stderr);
}

#[test]
fn a_method_provided_twice_is_refused_naming_both_files() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let first = env.install("access-token", &env.root().join("mine"));
    let listing = env
        .exo()
        .args(["plugins", "list", "--output", "json", "--plugin-dir"])
        .arg_path(&env.root().join("mine"))
        .run()
        .success()
        .json();
    assert_eq!(
        listing["plugins"].as_array().unwrap().len(),
        1,
        "{listing:#}"
    );
    assert_eq!(listing["plugins"][0]["path"], first.display().to_string());
    let refused = &listing["refused"][0];
    let bundled = env
        .bundled_plugins()
        .join(library_file_name("access-token"));
    assert_eq!(refused["path"], bundled.display().to_string());
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("method 'access-token' is also provided by")
            && reason.contains(&first.display().to_string()),
        "{reason}"
    );
}

#[test]
fn plugins_are_searched_in_flag_env_bundled_then_user_data_order() {
    let env = TestEnv::with_plugins(&[]);
    let path_of = |args: &[&str], var: Option<&Path>| {
        let mut exo = env
            .exo()
            .args(["plugins", "list", "--output", "json"])
            .args(args);
        if let Some(var) = var {
            exo = exo.env("EXO_PLUGIN_PATH", var);
        }
        let listing = exo.run().success().json();
        listing["plugins"][0]["path"].as_str().map(str::to_owned)
    };
    assert_eq!(path_of(&[], None), None, "nothing installed yet");

    let user = env.install("access-token", &env.data_home().join("exo/plugins"));
    assert_eq!(path_of(&[], None), Some(user.display().to_string()));

    let bundled = env.install("access-token", &env.bundled_plugins());
    assert_eq!(path_of(&[], None), Some(bundled.display().to_string()));

    let listed = env.install("access-token", &env.root().join("env-dir"));
    assert_eq!(
        path_of(&[], Some(&env.root().join("env-dir"))),
        Some(listed.display().to_string())
    );

    let flagged = env.install("access-token", &env.root().join("flag-dir"));
    let flag = env.root().join("flag-dir").display().to_string();
    assert_eq!(
        path_of(&["--plugin-dir", &flag], Some(&env.root().join("env-dir"))),
        Some(flagged.display().to_string())
    );
}

#[test]
fn plugins_that_other_users_could_replace_are_refused() {
    let env = TestEnv::with_plugins(&["access-token"]);
    let library = env
        .bundled_plugins()
        .join(library_file_name("access-token"));

    chmod(&library, 0o775);
    let run = env.exo().args(["plugins", "list"]).run().success();
    assert!(
        run.stderr.contains("the file")
            && run
                .stderr
                .contains("is writable by group or others (mode 775)"),
        "{}",
        run.stderr
    );
    let run = env
        .exo()
        .args(["connect", "--method", "access-token"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains("refused") && run.stderr.contains("chmod go-w"),
        "{}",
        run.stderr
    );

    chmod(&library, 0o755);
    chmod(&env.bundled_plugins(), 0o777);
    let run = env.exo().args(["plugins", "list"]).run().success();
    assert!(
        run.stderr.contains("the folder") && run.stderr.contains("(mode 777)"),
        "{}",
        run.stderr
    );
}

#[test]
fn plugins_owned_by_another_user_are_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("only root can give a file to another user; the check runs in CI as root");
        return;
    }
    let env = TestEnv::with_plugins(&["access-token"]);
    let library = env
        .bundled_plugins()
        .join(library_file_name("access-token"));
    let nobody = 65534;
    std::os::unix::fs::chown(&library, Some(nobody), None).unwrap();
    let run = env.exo().args(["plugins", "list"]).run().success();
    assert!(
        run.stderr
            .contains("is owned by user id 65534, not by you or root"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_symlinked_plugin_is_judged_by_where_the_link_sits_and_loaded_by_its_real_path() {
    let env = TestEnv::with_plugins(&[]);
    let real = env.install("access-token", &env.root().join("real"));
    let open = env.root().join("open");
    std::fs::create_dir(&open).unwrap();
    std::os::unix::fs::symlink(&real, open.join(library_file_name("access-token"))).unwrap();
    chmod(&open, 0o777);
    let listing = env
        .exo()
        .args(["plugins", "list", "--output", "json", "--plugin-dir"])
        .arg_path(&open)
        .run()
        .success()
        .json();
    assert_eq!(
        listing["plugins"],
        serde_json::json!([]),
        "a link others could swap is refused"
    );
    let reason = listing["refused"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("folder") && reason.contains("(mode 777)"),
        "{reason}"
    );

    chmod(&open, 0o755);
    let listing = env
        .exo()
        .args(["plugins", "list", "--output", "json", "--plugin-dir"])
        .arg_path(&open)
        .run()
        .success()
        .json();
    assert_eq!(listing["plugins"][0]["method_id"], "access-token");
}

#[test]
fn the_sdk_carries_logs_messages_http_and_refusals_through_the_host() {
    let sb = support::SandboxEnv::start(|_| {});
    sb.env.install("host-check", &sb.env.bundled_plugins());
    let url = format!(
        "{}contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        sb.sandbox.base_url()
    );
    let run = sb
        .exo()
        .args(["-vv", "connect", "--method", "host-check", "--url", &url])
        .env("EXO_TEST_TOKEN", sb.app_token())
        .run()
        .success();
    for expected in [
        "host-check: hello from the plugin",
        "host-check: acquire started, cancelled = false",
        &format!("→ GET {url}"),
        "host-check: GET returned 200",
        "host-check: prompt refused: the host-check login needs an answer, but exo is running without a terminal",
        "host-check: call refused: this exo has no host service 'no-such-service'",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing `{expected}` in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_plugin_that_panics_while_renewing_fails_the_command_not_the_process() {
    let env = TestEnv::with_plugins(&["panicky"]);
    let panicky = |args: &[&str]| env.exo().args(args).env("EXO_TEST_PANIC_AT", "renew").run();
    panicky(&["connect", "--method", "panicky"]).success();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let run = panicky(&["token"]).fails_with(1);
    assert!(
        run.stderr
            .contains("panicked in renew: panicky: boom in renew"),
        "{}",
        run.stderr
    );
}
