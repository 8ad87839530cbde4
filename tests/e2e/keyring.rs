//! The OS keyring for real: a private D-Bus session with GNOME Keyring's Secret Service, as on a
//! Linux desktop. It keeps the token cache's key, and the password of a legacy Basic connection
//! when the user asks (`--remember-password`).
//!
//! Needs `dbus-daemon` and `gnome-keyring-daemon` (CI installs them; `.ci/run` sets
//! `EXO_REQUIRE_KEYRING_TEST=1` so that a missing one fails there instead of skipping).

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};

use support::SandboxEnv;

/// A session bus and an unlocked keyring, stopped on drop.
struct DesktopKeyring {
    address: String,
    bus: Child,
    keyring: Child,
}

impl DesktopKeyring {
    /// The keyring, or `None` (the test is skipped) where its daemons are missing, which CI
    /// does not allow.
    fn start_or_skip(home: &std::path::Path) -> Option<Self> {
        let keyring = Self::start(home);
        if keyring.is_none() {
            assert!(
                std::env::var_os("EXO_REQUIRE_KEYRING_TEST").is_none(),
                "dbus-daemon and gnome-keyring-daemon are needed (apt-get install dbus-daemon gnome-keyring)"
            );
            eprintln!("skipped: dbus-daemon or gnome-keyring-daemon is not installed");
        }
        keyring
    }

    fn start(home: &std::path::Path) -> Option<Self> {
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut address = String::new();
        BufReader::new(bus.stdout.take()?)
            .read_line(&mut address)
            .ok()?;
        let address = address.trim().to_owned();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("HOME", home)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        keyring
            .stdin
            .take()?
            .write_all(b"exo-test-keyring-password")
            .ok()?;
        // The Secret Service appears on the bus shortly after the daemon starts.
        std::thread::sleep(std::time::Duration::from_millis(500));
        Some(Self {
            address,
            bus,
            keyring,
        })
    }
}

impl Drop for DesktopKeyring {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.bus.kill();
        let _ = self.keyring.wait();
        let _ = self.bus.wait();
    }
}

#[test]
fn the_cache_key_lives_in_the_os_keyring_when_there_is_one() {
    let sb = SandboxEnv::start(|_| {});
    let Some(keyring) = DesktopKeyring::start_or_skip(&sb.env.home()) else {
        return;
    };
    let on_desktop = |exo: support::Exo| exo.env("DBUS_SESSION_BUS_ADDRESS", &keyring.address);
    let file = sb.token_file("token.jwt", &sb.app_token());
    on_desktop(
        sb.exo()
            .args(["connect", "-m", "access-token", "--access-token-file"])
            .arg_path(&file),
    )
    .run()
    .success();
    let state = sb.exo_state();
    assert_eq!(
        std::fs::read_dir(state.join("connections"))
            .unwrap()
            .count(),
        1
    );
    assert!(
        !state.join("connections.key").exists(),
        "the key is in the keyring, not in a file"
    );
    let token = on_desktop(sb.exo().args(["token"])).run().success().stdout;
    assert_eq!(token.trim(), std::fs::read_to_string(&file).unwrap());

    // Without the keyring, the cache cannot be opened, and exo says so.
    let run = sb
        .exo()
        .args(["token"])
        .env("EXO_KEY_STORE", "file")
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("the OS keyring that keeps the token cache's key failed"),
        "{}",
        run.stderr
    );

    on_desktop(sb.exo().args(["disconnect", "--yes"]))
        .run()
        .success();
    assert!(!state.join("connections").exists());
    drop(keyring);
}

#[test]
fn a_typed_password_is_kept_in_the_keyring_only_when_asked_and_removed_on_disconnect() {
    let sb = SandboxEnv::start(|c| c.seed.tenants[0].basic_auth_enabled = true);
    sb.env.install("basic-auth", &sb.env.bundled_plugins());
    let Some(keyring) = DesktopKeyring::start_or_skip(&sb.env.home()) else {
        return;
    };
    let on_desktop = |exo: support::Exo| exo.env("DBUS_SESSION_BUS_ADDRESS", &keyring.address);
    let upn = "exadmin@contoso.onmicrosoft.com";
    let password = "Sandbox-ExAdmin-1!";
    let child = on_desktop(sb.exo())
        .args([
            "connect",
            "-m",
            "basic-auth",
            "--upn",
            upn,
            "--remember-password",
        ])
        .args([
            "--connection-uri",
            &format!("{}PowerShell-LiveID/", sb.sandbox.base_url()),
        ])
        .env_remove("EXO_PASSWORD")
        .in_terminal(None)
        .spawn_with_stdin();
    let (success, seen) = support::answer_prompts(child, &[("password: ", password)]);
    assert!(success, "{seen}");
    assert!(!seen.contains("WARNING"), "{seen}");
    on_desktop(sb.exo().args(["Get-AcceptedDomain"]))
        .run()
        .success();

    // The password is in the keyring (the command above had no other source for it).
    let listed = on_desktop(sb.exo().args(["connections", "--output", "json"]))
        .run()
        .success()
        .json();
    let id = listed[0]["ConnectionId"].as_str().unwrap();
    let account = session::keys::secret_account(id.parse().unwrap(), "password");
    // SAFETY: nextest runs each test in a process of its own, and this one starts no other
    // threads that read the environment.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &keyring.address) };
    assert_eq!(
        session::keys::recall(&account)
            .unwrap()
            .as_deref()
            .map(Vec::as_slice),
        Some(password.as_bytes())
    );
    on_desktop(sb.exo().args(["disconnect", "--yes"]))
        .run()
        .success();
    assert_eq!(session::keys::recall(&account).unwrap(), None);
    drop(keyring);
}
