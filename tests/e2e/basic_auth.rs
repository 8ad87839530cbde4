//! `exo connect --method basic-auth` end to end against the sandbox's remote PowerShell
//! endpoint (`/PowerShell-LiveID`): Basic where the tenant still allows it (one shell reused by
//! later commands, reopened when it expired, closed on disconnect, the server's shell limit in
//! its own words), the password read again from its source and never kept, the token sent as the
//! password with `BasicAuthToOAuthConversion=true` (also from the access-token method), the
//! partner form with `DelegatedOrg`, the upgrade to modern authentication where Basic is
//! disabled, and the refusals.

use sandbox::RequestRecord;
use support::{Exo, SandboxEnv};

const EXADMIN: &str = "exadmin@contoso.onmicrosoft.com";
const EXADMIN_PASSWORD: &str = "Sandbox-ExAdmin-1!";
const SHELL_HEADER: &str = "x-powershell-shellid";

/// A sandbox with the basic-auth method installed; `basic` says whether contoso still accepts
/// Basic authentication.
fn sandbox(basic: bool, configure: impl FnOnce(&mut sandbox::SandboxConfig)) -> SandboxEnv {
    let sb = SandboxEnv::start(|c| {
        c.seed.tenants[0].basic_auth_enabled = basic;
        configure(c);
    });
    sb.env.install("basic-auth", &sb.env.bundled_plugins());
    sb
}

/// The sandbox's remote PowerShell endpoint with `query`, as a legacy script spells it.
fn legacy_uri(sb: &SandboxEnv, query: &str) -> String {
    format!("{}PowerShell-LiveID/{query}", sb.sandbox.base_url())
}

/// `exo connect --method basic-auth` as `user` to `uri`; the caller says where the password is.
fn connect_as(sb: &SandboxEnv, user: &str, uri: &str) -> Exo {
    sb.exo()
        .args(["connect", "--method", "basic-auth", "--user-name", user])
        .args(["--connection-uri", uri])
}

/// `exo connect --method basic-auth` as `user` with `password` in a file, to `uri`.
fn connect(sb: &SandboxEnv, user: &str, password: &str, uri: &str) -> Exo {
    let file = sb.token_file(&format!("password-{user}"), password);
    connect_as(sb, user, uri)
        .args(["--password-file"])
        .arg_path(&file)
}

/// The requests the remote PowerShell endpoint received, in order.
fn legacy_requests(sb: &SandboxEnv) -> Vec<RequestRecord> {
    sb.sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.path.to_ascii_lowercase().contains("/powershell-liveid"))
        .collect()
}

/// The cmdlets the remote PowerShell endpoint received, in order.
fn legacy_posts(sb: &SandboxEnv) -> Vec<RequestRecord> {
    legacy_requests(sb)
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect()
}

fn header<'r>(record: &'r RequestRecord, name: &str) -> Option<&'r str> {
    record
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn basic_is_spoken_to_the_legacy_endpoint_in_one_shell_that_disconnect_closes() {
    let sb = sandbox(true, |c| c.extra_mailboxes = 30);
    let run = connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .args(["--page-size", "10"])
        .run()
        .success();
    assert!(
        run.stdout.contains(&format!("as {EXADMIN}"))
            && run
                .stdout
                .contains("remote PowerShell with Basic authentication"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // The check opened no shell: a DELETE that names none.
    let probe = legacy_requests(&sb);
    assert_eq!(probe.len(), 1, "{probe:?}");
    assert_eq!(probe[0].method, "DELETE");
    assert_eq!(header(&probe[0], "authorization"), Some("Basic [redacted]"));

    // Three pages, then another command: every request after the first names its shell.
    let listing = sb
        .exo()
        .args([
            "Get-Mailbox",
            "-ResultSize",
            "Unlimited",
            "--output",
            "json",
        ])
        .run()
        .success();
    assert!(listing.stdout.lines().count() > 30, "{}", listing.stdout);
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let posts = legacy_posts(&sb);
    assert!(posts.len() >= 2, "{posts:?}");
    assert_eq!(header(&posts[0], SHELL_HEADER), None, "the first opens one");
    let shell = header(&posts[1], SHELL_HEADER).expect("later requests name the shell");
    for post in &posts[1..] {
        assert_eq!(header(post, SHELL_HEADER), Some(shell), "{post:?}");
        assert_eq!(post.status, 200, "{post:?}");
        assert_eq!(header(post, "authorization"), Some("Basic [redacted]"));
    }
    assert!(sb.invocations().is_empty(), "nothing went to the admin API");

    let listed = sb.connections();
    assert_eq!(
        listed[0]["ConnectionUri"],
        legacy_uri(&sb, "").trim_end_matches('/').to_owned() + "/"
    );
    assert_eq!(listed[0]["TokenExpiryTimeUTC"], "");
    let token = sb.exo().args(["token"]).run().fails_with(1);
    assert!(
        token.stderr.contains("signs in with Basic authentication") && token.stdout.is_empty(),
        "{}",
        token.stderr
    );

    sb.exo().args(["disconnect", "--yes"]).run().success();
    let closed = legacy_requests(&sb).pop().unwrap();
    assert_eq!(
        (
            closed.method.as_str(),
            header(&closed, SHELL_HEADER),
            closed.status
        ),
        ("DELETE", Some(shell), 204)
    );
}

#[test]
fn the_password_is_read_again_for_each_command_and_a_refused_one_is_not_sent_again() {
    let sb = sandbox(true, |_| {});
    connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .run()
        .success();
    // What the cache would hold, it does not: the file changes and the next command uses it.
    let file = sb.env.root().join(format!("password-{EXADMIN}"));
    std::fs::write(&file, "Not-The-Password-1!").unwrap();
    sb.env.watch("Not-The-Password-1!");
    let before = legacy_requests(&sb).len();
    let run = sb.exo().args(["Get-AcceptedDomain"]).run().fails_with(1);
    assert!(
        run.stderr
            .contains("The user name or password is incorrect"),
        "{}",
        run.stderr
    );
    // Each try counts towards locking the account: later commands, in other processes, do not
    // send the refused password again while its file is unchanged.
    for _ in 0..2 {
        let run = sb.exo().args(["Get-AcceptedDomain"]).run().fails_with(1);
        assert!(
            run.stderr
                .contains("the server refused the password of ExchangeOnline_1")
                && run.stderr.contains("exo does not send it again")
                && run
                    .stderr
                    .contains("put the right one in its password file"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(legacy_requests(&sb).len(), before + 1, "sent once");
    std::fs::write(&file, EXADMIN_PASSWORD).unwrap();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
}

#[test]
fn commands_at_once_share_the_one_shell_they_open() {
    let sb = sandbox(true, |c| c.seed.legacy.max_sessions_per_user = 2);
    connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .run()
        .success();
    let commands: Vec<_> = (0..6)
        .map(|_| sb.exo().args(["Get-AcceptedDomain"]).spawn())
        .collect();
    for command in commands {
        let output = command.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let posts = legacy_posts(&sb);
    let opened = posts
        .iter()
        .filter(|p| header(p, SHELL_HEADER).is_none())
        .count();
    assert_eq!((posts.len(), opened), (6, 1), "{posts:?}");
}

#[test]
fn an_endpoint_that_is_not_one_or_not_exchange_online_is_not_taken_for_it() {
    let sb = sandbox(false, |_| {});
    // No remote PowerShell there: said at once, not after a "connected".
    let port = sb.sandbox.base_url().port().unwrap();
    let missing = format!("https://127.0.0.1:{port}/nothere/PowerShell-LiveID/");
    let run = connect(&sb, EXADMIN, EXADMIN_PASSWORD, &missing)
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains(&format!(
            "there is no remote PowerShell endpoint at {missing} (HTTP 404)"
        )),
        "{}",
        run.stderr
    );
    // Another host than the environment's Exchange Online (an on-premises server): its refusal
    // of Basic stands, and the password does not go to the cloud's sign-in instead.
    let on_premises = format!("https://localhost:{port}/PowerShell-LiveID/");
    let run = connect(&sb, EXADMIN, EXADMIN_PASSWORD, &on_premises)
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("Basic authentication is disabled for organization")
            && !run.stderr.contains("WARNING"),
        "{}",
        run.stderr
    );
    let token_requests = sb
        .sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.path.contains("/token"))
        .count();
    assert_eq!(token_requests, 0, "no password went to the sign-in service");
    assert_eq!(sb.connections(), serde_json::json!([]));
}

#[test]
fn an_expired_shell_is_replaced() {
    let sb = sandbox(true, |c| {
        c.seed.legacy.session_idle_seconds = 1;
        c.seed.legacy.max_sessions_per_user = 1;
    });
    connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .run()
        .success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let posts = legacy_posts(&sb);
    let statuses: Vec<u16> = posts.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [200, 400, 200], "{posts:?}");
    assert_eq!(header(&posts[2], SHELL_HEADER), None, "a new shell");
}

#[test]
fn the_shell_limit_is_the_server_s_own_message() {
    let sb = sandbox(true, |c| c.seed.legacy.max_sessions_per_user = 1);
    connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .run()
        .success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    // A second connection of the same user opens a second shell: over the limit of one.
    connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .args(["--prefix", "Second"])
        .run()
        .success();
    let run = sb
        .exo()
        .args(["Get-SecondAcceptedDomain"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains(
            "This user is allowed a maximum number of 1 concurrent shells, which has been exceeded"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn with_basic_auth_to_oauth_conversion_the_token_is_the_password() {
    let sb = sandbox(false, |_| {});
    let uri = legacy_uri(&sb, "?BasicAuthToOAuthConversion=true");
    let run = connect(&sb, EXADMIN, EXADMIN_PASSWORD, &uri)
        .run()
        .success();
    assert!(
        run.stdout.contains("with the token as the Basic password"),
        "{}",
        run.stdout
    );
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    // An old script's pre-issued token works the same way, through the access-token method.
    sb.connect_with("token.jwt", &sb.app_token(), &["--connection-uri", &uri])
        .success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let posts = legacy_posts(&sb);
    assert_eq!(posts.len(), 2, "{posts:?}");
    for post in &posts {
        assert!(
            post.path.contains("BasicAuthToOAuthConversion=true") && post.status == 200,
            "{post:?}"
        );
    }
    // A token connection still prints its token.
    sb.exo().args(["token"]).run().success();
}

#[test]
fn a_partner_acts_for_the_delegated_organization_of_the_uri() {
    let sb = sandbox(false, |_| {});
    let uri = legacy_uri(
        &sb,
        "?DelegatedOrg=contoso.onmicrosoft.com&BasicAuthToOAuthConversion=true\
         &email=SystemMailbox%7Bbb558c35-97f1-4cb9-8ff7-d53741dc928c%7D%40contoso.onmicrosoft.com",
    );
    let agent = || {
        connect(
            &sb,
            "agent@fabrikam-partner.onmicrosoft.com",
            "Sandbox-Agent-1!",
            &uri,
        )
    };
    let run = agent().run().success();
    assert!(
        run.stdout.contains("acting for contoso.onmicrosoft.com"),
        "{}",
        run.stdout
    );
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let post = legacy_requests(&sb).pop().unwrap();
    assert_eq!(post.tenant.as_deref(), Some("contoso.onmicrosoft.com"));

    let clash = agent()
        .args(["--delegated-organization", "other.onmicrosoft.com"])
        .run()
        .fails_with(1);
    assert!(clash.stderr.contains("disagree"), "{}", clash.stderr);
}

#[test]
fn where_basic_is_disabled_the_method_says_so_and_signs_in_the_modern_way() {
    let sb = sandbox(false, |_| {});
    let run = connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .run()
        .success();
    assert!(
        run.stderr
            .trim()
            .starts_with("WARNING: this server does not accept Basic authentication")
            && run.stderr.trim().lines().count() == 1,
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("the token expires"), "{}", run.stdout);
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    assert_eq!(sb.invocations().len(), 1, "cmdlets go to the admin API");

    // No --connection-uri: the environment's own legacy endpoint, as remote PowerShell's
    // default was.
    let file = sb.token_file("password", EXADMIN_PASSWORD);
    sb.exo()
        .args([
            "connect",
            "-m",
            "basic-auth",
            "--upn",
            EXADMIN,
            "--password-file",
        ])
        .arg_path(&file)
        .args(["--prefix", "Again"])
        .run()
        .success();
}

#[test]
fn each_refusal_says_what_is_wrong() {
    let enabled = sandbox(true, |_| {});
    let disabled = sandbox(false, |_| {});
    let admin = "admin@contoso.onmicrosoft.com";
    let cases: [(&SandboxEnv, &str, &str, &str); 5] = [
        (
            &enabled,
            admin,
            "Sandbox-Admin-1!",
            "must use multi-factor authentication, which Basic authentication cannot do; sign in with --method sso (browser) or --method device",
        ),
        (
            &disabled,
            admin,
            "Sandbox-Admin-1!",
            "AADSTS50076: Basic authentication is disabled here, and admin@contoso.onmicrosoft.com must use multi-factor authentication",
        ),
        (
            &enabled,
            EXADMIN,
            "Wrong-Password-1!",
            "The user name or password is incorrect",
        ),
        (
            &enabled,
            "nobody",
            "Wrong-Password-1!",
            "--user-name must be the account's address",
        ),
        (
            &enabled,
            "nopwsh@contoso.onmicrosoft.com",
            "Sandbox-NoPwsh-1!",
            "sign-in with basic-auth failed",
        ),
    ];
    for (sb, user, password, expected) in cases {
        let run = connect(sb, user, password, &legacy_uri(sb, ""))
            .run()
            .fails_with(1);
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| !line.starts_with("WARNING: this server does not accept Basic"))
            .collect();
        assert!(
            errors.len() == 1 && errors[0].contains(expected),
            "{user}: {}",
            run.stderr
        );
    }
    let bad_query = connect(
        &enabled,
        EXADMIN,
        EXADMIN_PASSWORD,
        &legacy_uri(&enabled, "?SessionType=Exchange"),
    )
    .run()
    .fails_with(1);
    assert!(
        bad_query.stderr.contains(
            "remote PowerShell's endpoint takes DelegatedOrg, BasicAuthToOAuthConversion"
        ) && bad_query.stderr.contains("not SessionType"),
        "{}",
        bad_query.stderr
    );
    for sb in [&enabled, &disabled] {
        assert_eq!(sb.connections(), serde_json::json!([]), "nothing was kept");
    }
}

#[test]
fn a_password_from_stdin_is_not_kept_and_later_commands_say_how_to_keep_one() {
    let sb = sandbox(true, |_| {});
    let run = connect_as(&sb, EXADMIN, &legacy_uri(&sb, ""))
        .args(["--password-file", "-"])
        .stdin(format!("{EXADMIN_PASSWORD}\n"))
        .run()
        .success();
    assert!(
        run.stderr
            .contains("WARNING: ExchangeOnline_1 sends the password with every command"),
        "{}",
        run.stderr
    );
    let later = sb.exo().args(["Get-AcceptedDomain"]).run().fails_with(1);
    assert!(
        later.stderr.contains(
            "cannot read the password of ExchangeOnline_1 again; connect again with --remember-password"
        ),
        "{}",
        later.stderr
    );
    // A pipe cannot be read again either.
    let pipe = sb.env.root().join("password.pipe");
    support::make_fifo(&pipe);
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::write(pipe, EXADMIN_PASSWORD))
    };
    let run = connect_as(&sb, EXADMIN, &legacy_uri(&sb, ""))
        .args(["--password-file"])
        .arg_path(&pipe)
        .args(["--prefix", "Piped"])
        .run()
        .success();
    writer.join().unwrap().unwrap();
    assert!(
        run.stderr
            .contains("WARNING: ExchangeOnline_2 sends the password with every command"),
        "{}",
        run.stderr
    );
    // Without a keyring, --remember-password is refused before anything is sent.
    let sent = sb.sandbox.request_log().len();
    let no_keyring = connect_as(&sb, EXADMIN, &legacy_uri(&sb, ""))
        .args(["--password-file", "-", "--remember-password"])
        .env("EXO_KEY_STORE", "file")
        .stdin(format!("{EXADMIN_PASSWORD}\n"))
        .run()
        .fails_with(1);
    assert!(
        no_keyring
            .stderr
            .contains("--remember-password needs the OS keyring"),
        "{}",
        no_keyring.stderr
    );
    assert_eq!(sb.sandbox.request_log().len(), sent);
    let refused = connect(&sb, EXADMIN, EXADMIN_PASSWORD, &legacy_uri(&sb, ""))
        .args(["--remember-password"])
        .run()
        .fails_with(1);
    assert!(
        refused
            .stderr
            .contains("--remember-password keeps a secret typed at the prompt"),
        "{}",
        refused.stderr
    );
}
