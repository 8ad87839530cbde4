//! Connections against the sandbox tenant: their lifecycle, renewal, the shared cache under
//! concurrency and damage, and secrecy.

use std::time::{Duration, Instant};

use sandbox::{FaultKind, FaultRule, FaultTarget};
use support::{CONTOSO_APP, Run, SandboxEnv};

const CONTOSO_ID: &str = "bdd640fb-0667-4ad1-9c80-317fa3b1799d";

fn short_lived(seconds: u64) -> impl FnOnce(&mut sandbox::SandboxConfig) {
    move |config| config.seed.lifetimes.access_token_seconds = Some(seconds)
}

fn app_id(sb: &SandboxEnv) -> String {
    let seed = sb.sandbox.seed();
    let app = seed
        .tenants
        .iter()
        .flat_map(|t| &t.apps)
        .find(|a| a.display_name == CONTOSO_APP)
        .unwrap();
    app.client_id.to_string()
}

/// Waits until `deadline` after `start`.
fn sleep_until(start: Instant, deadline: Duration) {
    if let Some(rest) = deadline.checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
}

#[test]
fn connect_shows_the_connection_gives_its_token_and_disconnect_removes_every_trace() {
    let sb = SandboxEnv::start(|_| {});
    let token = sb.app_token();
    let run = sb.connect_with("token.jwt", &token, &[]).success();
    assert!(
        run.stdout.starts_with(&format!(
            "Connected ExchangeOnline_1 to sandbox as {} (tenant {CONTOSO_ID})",
            app_id(&sb)
        )),
        "{}",
        run.stdout
    );

    let listing = sb
        .exo()
        .args(["connections", "--output", "json"])
        .run()
        .success()
        .json();
    let connection = &listing[0];
    let base = sb
        .sandbox
        .base_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    for (field, value) in [
        ("State", "Connected"),
        ("Name", "ExchangeOnline_1"),
        ("ConnectionUri", base.as_str()),
        (
            "AzureAdAuthorizationEndpointUri",
            &format!("{base}/organizations"),
        ),
        ("TenantID", CONTOSO_ID),
        ("TokenStatus", "Active"),
        ("AppId", &app_id(&sb)),
        ("LoginMethod", "access-token"),
        ("Environment", "sandbox"),
    ] {
        assert_eq!(connection[field], value, "{field} in {connection:#}");
    }
    assert_eq!(connection["Id"], 1);
    assert_eq!(connection["PageSize"], 1000);
    assert_eq!(connection["CertificateAuthentication"], false);
    assert!(
        connection["TokenExpiryTimeUTC"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{connection:#}"
    );

    let listed = sb
        .exo()
        .args(["connections", "--output", "list"])
        .run()
        .success()
        .stdout;
    assert!(
        listed.contains("ConnectionId                    : ")
            && listed.contains("TokenStatus                     : Active"),
        "{listed}"
    );

    let printed = sb.exo().args(["token"]).run().success().stdout;
    assert_eq!(printed, format!("{token}\n"));

    let run = sb.exo().args(["disconnect", "--yes"]).run().success();
    assert_eq!(
        run.stdout,
        format!("Disconnected ExchangeOnline_1 ({}).\n", app_id(&sb))
    );
    assert_eq!(
        sb.exo()
            .args(["connections", "--output", "json"])
            .run()
            .success()
            .json(),
        serde_json::json!([])
    );
    let left: Vec<String> = std::fs::read_dir(sb.exo_state())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["cache.lock"], "only the empty lock file remains");
}

#[test]
fn renewal_reads_a_rotated_token_file_from_any_directory() {
    let sb = SandboxEnv::start(short_lived(12));
    let issued = Instant::now();
    // A relative path: renewal must find the file from wherever exo runs later.
    sb.token_file("rotating.jwt", &sb.app_token());
    sb.exo()
        .args([
            "connect",
            "-m",
            "access-token",
            "--access-token-file",
            "rotating.jwt",
        ])
        .current_dir(sb.env.root())
        .run()
        .success();

    // A fresh token is used as it is, even when the file changes.
    let fresh = sb.app_token();
    sb.token_file("rotating.jwt", &fresh);
    let elsewhere = sb.env.home();
    let first = sb
        .exo()
        .args(["token"])
        .current_dir(&elsewhere)
        .run()
        .success()
        .stdout;
    assert_ne!(first.trim(), fresh, "the first token was still fresh");

    // Past half of its life the token is renewed, from the rotated file.
    sleep_until(issued, Duration::from_millis(6500));
    let renewed = sb
        .exo()
        .args(["token"])
        .current_dir(&elsewhere)
        .run()
        .success()
        .stdout;
    assert_eq!(renewed.trim(), fresh);
    let rows = sb
        .exo()
        .args(["Get-AcceptedDomain", "--output", "json"])
        .current_dir(&elsewhere)
        .run()
        .success();
    assert!(rows.stdout.contains("contoso.com"), "{}", rows.stdout);
}

#[test]
fn an_expired_token_that_cannot_be_renewed_says_which_connect_to_run() {
    let sb = SandboxEnv::start(short_lived(6));
    let issued = Instant::now();
    sb.exo()
        .args([
            "connect",
            "-m",
            "access-token",
            "--access-token-file",
            "-",
            "--organization",
            "contoso.onmicrosoft.com",
        ])
        .stdin(sb.app_token())
        .run()
        .success();
    sleep_until(issued, Duration::from_millis(6500));
    let run = sb.exo().args(["Get-AcceptedDomain"]).run().fails_with(1);
    assert!(
        run.stderr
            .contains("has expired and cannot be renewed silently"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the access token was read from stdin or a prompt"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "Sign in again with: exo connect --method access-token --environment sandbox \
             --organization contoso.onmicrosoft.com --access-token-file -"
        ),
        "{}",
        run.stderr
    );
    assert!(
        sb.invocations().is_empty(),
        "nothing was sent with an expired token"
    );
}

#[test]
fn a_rejected_token_is_renewed_once_and_the_request_retried_with_the_same_request_id() {
    let sb = SandboxEnv::start(|_| {});
    let file = sb.token_file("token.jwt", &sb.app_token());
    sb.exo()
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&file)
        .run()
        .success();
    let fresh = sb.app_token();
    std::fs::write(&file, &fresh).unwrap();
    // Exchange's clock jumps two hours ahead for one request: the token looks expired to it.
    let mut skew = FaultRule::new(
        FaultKind::ClockSkew { seconds: 7200 },
        FaultTarget::Exchange,
    );
    skew.count = Some(1);
    sb.sandbox.faults().add(skew).unwrap();

    let run = sb
        .exo()
        .args(["Get-AcceptedDomain", "--output", "json"])
        .run()
        .success();
    assert!(run.stdout.contains("contoso.com"), "{}", run.stdout);
    let calls = sb.invocations();
    let statuses: Vec<u16> = calls.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 200]);
    assert_eq!(calls[0].client_request_id, calls[1].client_request_id);
    assert!(calls[0].client_request_id.is_some());
    assert_eq!(
        sb.exo().args(["token"]).run().success().stdout.trim(),
        fresh,
        "the renewed token was saved"
    );
}

#[test]
fn fifty_processes_share_renew_and_extend_one_cache_without_losing_anything() {
    let sb = SandboxEnv::start(short_lived(12));
    let issued = Instant::now();
    let file = sb.token_file("shared.jwt", &sb.app_token());
    sb.exo()
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&file)
        .run()
        .success();
    let fresh = sb.app_token();
    std::fs::write(&file, &fresh).unwrap();
    sleep_until(issued, Duration::from_millis(6500));

    // 50 readers that all need a renewal, and 20 writers adding connections, at once.
    let readers: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn({
                let exo = sb.exo().args(["token"]);
                move || exo.run()
            })
        })
        .collect();
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let file = sb.token_file(&format!("writer-{i}.jwt"), &fresh);
            let exo = sb
                .exo()
                .args(["connect", "-m", "access-token", "--access-token-file"])
                .arg_path(&file);
            std::thread::spawn(move || exo.run())
        })
        .collect();
    for reader in readers {
        let run: Run = reader.join().unwrap().success();
        assert_eq!(
            run.stdout.trim(),
            fresh,
            "every reader got the renewed token"
        );
    }
    for writer in writers {
        writer.join().unwrap().success();
    }
    let listing = sb
        .exo()
        .args(["connections", "--output", "json"])
        .run()
        .success()
        .json();
    let mut ids: Vec<u64> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=21).collect::<Vec<_>>(),
        "no connection was lost or numbered twice"
    );
}

#[test]
fn a_connect_that_overlaps_removing_the_last_connection_is_kept() {
    use std::io::Write as _;
    let sb = SandboxEnv::start(|_| {});
    let on_file_key = |exo: support::Exo| exo.env("EXO_KEY_STORE", "file");
    let first = sb.token_file("first.jwt", &sb.app_token());
    on_file_key(sb.exo())
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&first)
        .run()
        .success();
    // The second connect has read the cache (and its key) when it opens the pipe for its
    // token; the test's open of the pipe returns only then. While it waits for the token, the
    // last connection goes, and with it the cache and its key.
    let pipe = sb.env.root().join("token.pipe");
    support::make_fifo(&pipe);
    let second = on_file_key(sb.exo())
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&pipe)
        .spawn();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&pipe).unwrap();
    on_file_key(sb.exo())
        .args(["disconnect", "--all", "--yes"])
        .run()
        .success();
    let token = sb.app_token();
    sb.env.watch(&token);
    writer.write_all(token.as_bytes()).unwrap();
    drop(writer);
    let output = second.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // What said it was kept can be read.
    let listed = on_file_key(sb.exo())
        .args(["connections", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let printed = on_file_key(sb.exo()).args(["token"]).run().success();
    assert_eq!(printed.stdout.trim(), token);
}

#[test]
fn a_state_folder_or_file_another_user_could_have_planted_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = SandboxEnv::start(|_| {});
    let set_mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let refused = |run: Run, path: &std::path::Path, why: &str| {
        let expected = format!("exo: error: refusing {}: {why}", path.display());
        assert!(
            run.stderr.starts_with(&expected) && run.stderr.trim().lines().count() == 1,
            "{expected}\n{}",
            run.stderr
        );
    };
    // A shared folder, as /tmp is: nothing is read from it or written to it, not even a sign-in.
    let shared = sb.env.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o1777);
    let in_shared = |exo: support::Exo| exo.env("EXO_STATE_DIR", &shared);
    let run = in_shared(sb.exo())
        .args(["connections"])
        .run()
        .fails_with(1);
    refused(run, &shared, "group or others can write it (mode 1777)");
    let file = sb.token_file("token.jwt", &sb.app_token());
    let run = in_shared(sb.exo())
        .args(["connect", "-m", "access-token", "--access-token-file"])
        .arg_path(&file)
        .run()
        .fails_with(1);
    refused(run, &shared, "group or others can write it (mode 1777)");
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);

    // The user's own folder, whose files someone else could write or owns: the key, a
    // connection and the pointer to the latest (read by `exo token`), and the lock (taken by
    // `exo connect`).
    let id = sb.connect();
    let state = sb.exo_state();
    let key_store_file = |exo: support::Exo| exo.env("EXO_KEY_STORE", "file");
    let token = || key_store_file(sb.exo()).args(["token"]);
    let connect = || {
        key_store_file(sb.exo())
            .args(["connect", "-m", "access-token", "--access-token-file"])
            .arg_path(&file)
    };
    let files: [(String, &dyn Fn() -> support::Exo); 4] = [
        (format!("connections/{id}"), &token),
        ("latest".to_owned(), &token),
        ("connections.key".to_owned(), &token),
        ("cache.lock".to_owned(), &connect),
    ];
    for (name, command) in &files {
        let path = state.join(name);
        set_mode(&path, 0o622);
        let run = command().run().fails_with(1);
        refused(run, &path, "group or others can write it (mode 0622)");
        set_mode(&path, 0o600);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the files of another owner are not tried");
        return;
    }
    for (name, command) in &files {
        let path = state.join(name);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let run = command().run().fails_with(1);
        refused(run, &path, "another user (uid 65534) owns it");
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    }
    token().run().success();
}

/// Runs `exo disconnect --all --yes` and checks that it says `said`.
fn disconnect_all_says(sb: &SandboxEnv, said: &str) {
    let run = sb
        .exo()
        .args(["disconnect", "--all", "--yes"])
        .run()
        .success();
    assert!(run.stdout.contains(said), "{}", run.stdout);
}

#[test]
fn a_damaged_cache_of_an_older_exo_is_reported_never_overwritten_and_can_be_reset() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    // What an older exo kept all connections in, damaged.
    let cache = sb.exo_state().join("cache");
    std::fs::write(&cache, b"EXOC\x01\x01 this is not what exo wrote").unwrap();
    let damaged = std::fs::read(&cache).unwrap();

    for args in [
        vec!["connections"],
        vec!["token"],
        vec!["Get-Mailbox"],
        vec!["disconnect", "--prefix", "x", "--yes"],
    ] {
        let run = sb.exo().args(&args).run().fails_with(1);
        assert!(
            run.stderr.contains("cannot be read")
                && run.stderr.contains(&cache.display().to_string()),
            "{args:?}: {}",
            run.stderr
        );
    }
    let run = sb
        .connect_with("another.jwt", &sb.app_token(), &[])
        .fails_with(1);
    assert!(
        run.stderr.contains("it was left untouched")
            && run.stderr.contains("`exo disconnect --all` moves it aside"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        damaged,
        "nothing overwrote it"
    );

    disconnect_all_says(&sb, "Moved the unreadable token cache to ");
    assert_eq!(
        sb.connection_ids().len(),
        1,
        "the readable connection stays"
    );
    sb.connect();
}

#[test]
fn a_damaged_connection_is_reported_alone_and_the_others_keep_working() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = SandboxEnv::start(|_| {});
    let (damaged, kept) = (sb.connect(), sb.connect());
    let file = sb.exo_state().join("connections").join(&damaged);
    std::fs::write(&file, b"EXOC\x03\x01 not what exo wrote, and long enough").unwrap();

    let run = sb
        .exo()
        .args(["connections", "--output", "json"])
        .run()
        .success();
    assert_eq!(run.json().as_array().unwrap().len(), 1);
    assert!(
        run.stderr.contains(&format!(
            "the token cache {} cannot be read",
            file.display()
        )) && run.stderr.contains("the other connections work"),
        "{}",
        run.stderr
    );
    sb.exo()
        .args(["token", "--connection-id", &kept])
        .run()
        .success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let run = sb
        .exo()
        .args(["token", "--connection-id", &damaged])
        .run()
        .fails_with(1);
    assert!(run.stderr.contains("cannot be read"), "{}", run.stderr);
    // The most recent connection's file, planted writable by others: refused, for that
    // connection alone, and the message says how to remove it alone.
    let newest = sb.connect();
    let planted = sb.exo_state().join("connections").join(&newest);
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = sb.exo().args(["token"]).run().fails_with(1);
    assert!(
        run.stderr.contains("refusing")
            && run.stderr.contains(&format!(
                "`exo disconnect --connection-id {newest}` removes this one"
            )),
        "{}",
        run.stderr
    );
    assert_eq!(sb.connection_ids(), std::slice::from_ref(&kept));
    let run = sb
        .exo()
        .args(["disconnect", "--connection-id", &newest, "--yes"])
        .run()
        .success();
    assert!(
        run.stdout.contains("Removed the unreadable connection"),
        "{}",
        run.stdout
    );
    assert!(!planted.exists());

    disconnect_all_says(&sb, "Moved the unreadable connection files to ");
    assert!(sb.connection_ids().is_empty());
    assert!(!file.exists());
}

#[test]
fn the_log_file_is_private_and_one_that_cannot_be_written_is_only_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = SandboxEnv::start(|_| {});
    let log = sb.env.root().join("exo.log");
    sb.exo()
        .env("EXO_LOG_FILE", &log)
        .args(["connections"])
        .run()
        .success();
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("DEBUG exo::context: token cache in")
    );
    let run = sb
        .exo()
        .env("EXO_LOG_FILE", sb.env.root().join("no/such/dir.log"))
        .args(["connections", "--output", "json"])
        .run()
        .success();
    assert_eq!(run.stdout.trim(), "[]");
    assert!(
        run.stderr
            .contains("cannot write the log file named by EXO_LOG_FILE: No such file"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_issued_secret_reaches_any_output_even_at_the_highest_verbosity() {
    let sb = SandboxEnv::start(|config| config.extra_mailboxes = 30);
    let mut runs = vec![
        sb.connect_with("token.jwt", &sb.app_token(), &["-vvv"])
            .success(),
    ];
    runs.push(
        sb.exo()
            .args([
                "-vvv",
                "Get-Mailbox",
                "-ResultSize",
                "Unlimited",
                "--output",
                "json",
            ])
            .run()
            .success(),
    );
    runs.push(sb.exo().args(["-vvv", "Get-Nothing"]).run());
    runs.push(sb.exo().args(["-vvv", "connections"]).run().success());
    runs.push(
        sb.exo()
            .args(["-vvv", "disconnect", "--yes"])
            .run()
            .success(),
    );
    let secrets = sb.sandbox.issued_secrets();
    assert!(!secrets.is_empty());
    for run in &runs {
        assert!(
            run.stderr.contains("exo::"),
            "-vvv logs something: {}",
            run.stderr
        );
        for secret in &secrets {
            let signed_part = secret
                .rsplit_once('.')
                .map_or(secret.as_str(), |(head, _)| head);
            assert!(
                !run.stdout.contains(signed_part) && !run.stderr.contains(signed_part),
                "a secret leaked in {run:?}"
            );
        }
    }
}

#[test]
fn connections_are_chosen_by_id_or_prefix_and_disconnect_keeps_the_others() {
    let sb = SandboxEnv::start(|_| {});
    let tokens: Vec<String> = (0..3).map(|_| sb.app_token()).collect();
    sb.connect_with("one.jwt", &tokens[0], &["--prefix", "Contoso"])
        .success();
    sb.connect_with("two.jwt", &tokens[1], &[]).success();
    sb.connect_with("three.jwt", &tokens[2], &[]).success();
    let ids = sb.connection_ids();

    let by_prefix = sb
        .exo()
        .args(["connections", "--prefix", "contoso", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(by_prefix.as_array().unwrap().len(), 1);
    assert_eq!(by_prefix[0]["ConnectionId"], ids[0].as_str());
    let token = sb
        .exo()
        .args(["token", "--connection-id", &ids[1]])
        .run()
        .success()
        .stdout;
    assert_eq!(token.trim(), tokens[1]);
    assert_eq!(
        sb.exo().args(["token"]).run().success().stdout.trim(),
        tokens[2],
        "the most recent by default"
    );

    let clash = sb
        .connect_with("four.jwt", &sb.app_token(), &["--prefix", "CONTOSO"])
        .fails_with(1);
    assert!(
        clash
            .stderr
            .contains("the prefix is already used by ExchangeOnline_1"),
        "{}",
        clash.stderr
    );

    sb.exo()
        .args(["disconnect", "--connection-id", &ids[1], "--yes"])
        .run()
        .success();
    assert_eq!(sb.connection_ids(), [ids[0].clone(), ids[2].clone()]);
    sb.exo()
        .args(["disconnect", "--prefix", "Contoso", "--yes"])
        .run()
        .success();
    assert_eq!(sb.connection_ids(), [ids[2].clone()]);
    let unknown = sb
        .exo()
        .args(["disconnect", "--prefix", "Nope", "--yes"])
        .run()
        .fails_with(1);
    assert!(
        unknown.stderr.contains("no connection has the prefix Nope"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn disconnect_asks_first_on_a_terminal() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let refused = sb
        .exo()
        .args(["disconnect"])
        .in_terminal(None)
        .stdin("n\n")
        .run();
    assert!(
        refused.stdout.contains("and delete their tokens? [y/N]"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("nothing was disconnected"),
        "{}",
        refused.stdout
    );
    assert_eq!(sb.connection_ids().len(), 1);

    let accepted = sb
        .exo()
        .args(["disconnect"])
        .in_terminal(None)
        .stdin("y\n")
        .run();
    assert!(
        accepted.stdout.contains("Disconnected ExchangeOnline_1"),
        "{}",
        accepted.stdout
    );
    assert!(sb.connection_ids().is_empty());
}
