//! Cmdlets against the sandbox tenant: paging and headers, output formats, Exchange's errors,
//! throttling and failures, fan-out, partners, prefixes and national clouds.

use std::collections::HashSet;

use sandbox::{Cloud, FaultKind, FaultRule, FaultTarget};
use support::{PARTNER_APP, SandboxEnv};

const CONTOSO_ID: &str = "bdd640fb-0667-4ad1-9c80-317fa3b1799d";

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The `ExoConnection` labels of NDJSON rows.
fn connection_labels(stdout: &str) -> HashSet<String> {
    lines(stdout)
        .iter()
        .map(|r| r["ExoConnection"].as_str().unwrap().to_owned())
        .collect()
}

fn fault(kind: FaultKind, skip: u64, count: Option<u64>) -> FaultRule {
    let mut rule = FaultRule::new(kind, FaultTarget::Exchange);
    rule.skip = skip;
    rule.count = count;
    rule
}

#[test]
fn get_mailbox_pages_through_every_mailbox_with_the_module_s_headers() {
    let sb = SandboxEnv::start(|config| config.extra_mailboxes = 2500);
    let id = sb.connect();
    let run = sb
        .exo()
        .args(["Get-Mailbox", "-ResultSize", "Unlimited"])
        .run()
        .success();
    let rows = lines(&run.stdout);
    assert!(rows.len() > 2500, "{} rows", rows.len());
    let guids: HashSet<&str> = rows
        .iter()
        .map(|r| r["Guid"].as_str().expect("a Guid"))
        .collect();
    assert_eq!(guids.len(), rows.len(), "no row twice");

    let calls = sb.invocations();
    assert_eq!(
        calls.len(),
        rows.len().div_ceil(1000),
        "one request per page of 1000"
    );
    let request_ids: HashSet<_> = calls.iter().map(|c| c.client_request_id.clone()).collect();
    assert_eq!(
        request_ids.len(),
        1,
        "one client-request-id for the whole cmdlet"
    );
    for call in &calls {
        assert_eq!(call.status, 200);
        assert_eq!(call.cmdlet.as_deref(), Some("Get-Mailbox"));
        assert_eq!(call.tenant.as_deref(), Some(CONTOSO_ID));
        assert_eq!(call.prefer.as_deref(), Some("odata.maxpagesize=1000"));
        assert_eq!(call.connection_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            call.anchor_mailbox.as_deref(),
            Some(
                format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{CONTOSO_ID}")
                    .as_str()
            )
        );
    }
}

#[test]
fn result_size_limits_the_rows_and_the_pages_asked_for() {
    let sb = SandboxEnv::start(|config| config.extra_mailboxes = 20);
    sb.connect_with("token.jwt", &sb.app_token(), &["--page-size", "5"])
        .success();
    let run = sb
        .exo()
        .args(["Get-Mailbox", "-ResultSize", "7", "--output", "json"])
        .run()
        .success();
    assert_eq!(lines(&run.stdout).len(), 7);
    let prefer: Vec<_> = sb
        .invocations()
        .into_iter()
        .map(|c| c.prefer.unwrap_or_default())
        .collect();
    assert_eq!(prefer, ["odata.maxpagesize=5", "odata.maxpagesize=2"]);
}

#[test]
fn rows_come_out_as_a_table_csv_a_list_or_selected_json() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let table = sb
        .exo()
        .args(["Get-AcceptedDomain", "--output", "table"])
        .run()
        .success()
        .stdout;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Name", "DomainName", "DomainType", "Default"],
        "{table}"
    );
    assert!(table.lines().any(|l| l.contains("contoso.com")), "{table}");

    let csv = sb
        .exo()
        .args([
            "Get-AcceptedDomain",
            "--output",
            "csv",
            "--property",
            "DomainName,Default",
        ])
        .run()
        .success()
        .stdout;
    let csv: Vec<&str> = csv.lines().collect();
    assert_eq!(csv[0], "DomainName,Default");
    assert!(
        csv.contains(&"contoso.com,false") || csv.contains(&"contoso.com,true"),
        "{csv:?}"
    );

    let selected = sb
        .exo()
        .args(["Get-AcceptedDomain", "--property", "DomainName"])
        .run()
        .success()
        .stdout;
    for row in lines(&selected) {
        assert_eq!(
            row.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["DomainName"]
        );
    }

    let list = sb
        .exo()
        .args(["Get-OrganizationConfig", "--output", "list"])
        .run()
        .success()
        .stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with("DisplayName") && l.ends_with(": Contoso")),
        "{list}"
    );
}

#[test]
fn exchange_s_own_errors_are_reported_and_fail_the_command() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let cases = [
        (
            vec!["Get-Mailbox", "-Identity", "nobody-here"],
            "nobody-here",
        ),
        (vec!["Get-Nonsense"], "Get-Nonsense"),
        (vec!["Get-Mailbox", "-Bogus", "x"], "Bogus"),
    ];
    for (args, mention) in cases {
        let run = sb.exo().args(&args).run().fails_with(1);
        assert!(
            run.stderr.starts_with("exo: error: ") && run.stderr.contains(mention),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("(HTTP 4"), "{args:?}: {}", run.stderr);
    }
    let run = sb.exo().args(["Mailbox"]).run().fails_with(1);
    assert!(
        run.stderr
            .contains("is neither an exo command nor a cmdlet"),
        "{}",
        run.stderr
    );
}

#[test]
fn mutations_run_and_persist() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    sb.exo()
        .args([
            "New-Mailbox",
            "-Name",
            "exo-e2e",
            "-Alias",
            "exoe2e",
            "-Shared",
            "--output",
            "json",
        ])
        .run()
        .success();
    sb.exo()
        .args([
            "Set-Mailbox",
            "-Identity",
            "exoe2e",
            "-DisplayName",
            "'Exo, E2E'",
        ])
        .run()
        .success();
    let row = lines(
        &sb.exo()
            .args(["Get-Mailbox", "-Identity", "exoe2e"])
            .run()
            .success()
            .stdout,
    )
    .remove(0);
    assert_eq!(row["DisplayName"], "Exo, E2E");
    sb.exo()
        .args(["Remove-Mailbox", "-Identity", "exoe2e", "-Confirm:$false"])
        .run()
        .success();
    sb.exo()
        .args(["Get-Mailbox", "-Identity", "exoe2e"])
        .run()
        .fails_with(1);
}

#[test]
fn throttling_and_unavailability_are_waited_out_with_the_same_request_id() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    sb.sandbox
        .faults()
        .add(fault(
            FaultKind::Throttle {
                retry_after_seconds: 1,
            },
            0,
            Some(1),
        ))
        .unwrap();
    let run = sb.exo().args(["Get-AcceptedDomain"]).run().success();
    assert!(
        run.stderr.contains("HTTP 429") && run.stderr.contains("retrying page 1 in 1.0 s"),
        "{}",
        run.stderr
    );

    sb.sandbox
        .faults()
        .add(fault(FaultKind::Unavailable, 0, Some(2)))
        .unwrap();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();

    let calls = sb.invocations();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200, 503, 503, 200]);
    assert_eq!(calls[0].client_request_id, calls[1].client_request_id);
    assert_eq!(calls[2].client_request_id, calls[4].client_request_id);
    assert_ne!(
        calls[1].client_request_id, calls[2].client_request_id,
        "a new cmdlet, a new id"
    );
}

#[test]
fn a_connection_dropped_mid_listing_fails_the_command_after_what_was_read() {
    let sb = SandboxEnv::start(|config| config.extra_mailboxes = 1500);
    sb.connect();
    // The second page's connection drops every time.
    sb.sandbox
        .faults()
        .add(fault(FaultKind::Drop, 1, None))
        .unwrap();
    let run = sb
        .exo()
        .args([
            "Get-Mailbox",
            "-ResultSize",
            "Unlimited",
            "--max-retries",
            "1",
        ])
        .run()
        .fails_with(1);
    assert_eq!(lines(&run.stdout).len(), 1000, "the first page was written");
    assert!(
        run.stderr.contains("Get-Mailbox failed on page 2")
            && run.stderr.contains("gave up after 2 attempts"),
        "{}",
        run.stderr
    );

    // Dropped once, a read is simply sent again.
    sb.sandbox.faults().clear();
    sb.sandbox
        .faults()
        .add(fault(FaultKind::Drop, 1, Some(1)))
        .unwrap();
    let run = sb
        .exo()
        .args(["Get-Mailbox", "-ResultSize", "Unlimited"])
        .run()
        .success();
    assert!(lines(&run.stdout).len() > 1500);
}

#[test]
fn one_cmdlet_runs_on_every_connection_with_per_connection_results_and_errors() {
    let sb = SandboxEnv::start(|config| config.extra_tenants = 3);
    let tenants = ["contoso", "tenant0001", "tenant0002", "tenant0003"];
    for tenant in tenants {
        let domain = format!("{tenant}.onmicrosoft.com");
        let token = sb.app_token_for(
            &domain,
            support::CONTOSO_APP,
            "https://outlook.office365.com/.default",
        );
        sb.connect_with(
            &format!("{tenant}.jwt"),
            &token,
            &["--organization", &domain],
        )
        .success();
    }
    let run = sb
        .exo()
        .args([
            "Get-AcceptedDomain",
            "--all-connections",
            "--output",
            "json",
        ])
        .run()
        .success();
    let seen = connection_labels(&run.stdout);
    let expected: HashSet<String> = tenants
        .iter()
        .map(|t| format!("{t}.onmicrosoft.com"))
        .collect();
    assert_eq!(seen, expected);

    // A connection that may not act for the organization it names fails alone.
    let token = sb.app_token_for(
        "contoso.onmicrosoft.com",
        support::CONTOSO_APP,
        "https://outlook.office365.com/.default",
    );
    sb.connect_with(
        "stray.jwt",
        &token,
        &["--delegated-organization", "tenant0002.onmicrosoft.com"],
    )
    .success();
    let run = sb
        .exo()
        .args([
            "Get-AcceptedDomain",
            "--all-connections",
            "--output",
            "json",
        ])
        .run()
        .fails_with(1);
    let seen = connection_labels(&run.stdout);
    assert_eq!(
        seen.len(),
        4,
        "the other connections still answered: {seen:?}"
    );
    assert!(
        run.stderr.contains(
            "exo: error: [tenant0002.onmicrosoft.com (ExchangeOnline_5)] Get-AcceptedDomain failed"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_partner_acts_for_its_customer_with_delegated_organization() {
    let sb = SandboxEnv::start(|_| {});
    let token = sb.app_token_for(
        "fabrikam-partner.onmicrosoft.com",
        PARTNER_APP,
        "https://outlook.office365.com/.default",
    );
    sb.connect_with(
        "partner.jwt",
        &token,
        &["--delegated-organization", "contoso.onmicrosoft.com"],
    )
    .success();
    let run = sb
        .exo()
        .args(["Get-AcceptedDomain", "--output", "json"])
        .run()
        .success();
    assert!(run.stdout.contains("contoso.com"), "{}", run.stdout);
    assert_eq!(
        sb.invocations()[0].tenant.as_deref(),
        Some("contoso.onmicrosoft.com")
    );
}

#[test]
fn a_prefixed_cmdlet_runs_on_the_connection_with_that_prefix() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect_with("contoso.jwt", &sb.app_token(), &["--prefix", "Contoso"])
        .success();
    let token = sb.app_token_for(
        "fabrikam-partner.onmicrosoft.com",
        PARTNER_APP,
        "https://outlook.office365.com/.default",
    );
    sb.connect_with("partner.jwt", &token, &[]).success();
    let ids = sb.connection_ids();

    sb.exo().args(["Get-ContosoAcceptedDomain"]).run().success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let calls = sb.invocations();
    assert_eq!(
        calls[0].connection_id.as_deref(),
        Some(ids[0].as_str()),
        "the prefix chose contoso"
    );
    assert_eq!(
        calls[0].cmdlet.as_deref(),
        Some("Get-AcceptedDomain"),
        "without the prefix"
    );
    assert_eq!(
        calls[1].connection_id.as_deref(),
        Some(ids[1].as_str()),
        "the most recent otherwise"
    );
}

#[test]
fn a_national_cloud_needs_a_token_for_its_own_resource_and_honours_the_proxy() {
    let sb = SandboxEnv::start(|_| {});
    let proxy = support::ConnectProxy::start();
    let cloud = sb.sandbox.cloud_url(Cloud::UsGov);
    let cloud_base = cloud.as_str().trim_end_matches('/').to_owned();
    let usgov = sb.app_token_in(
        Cloud::UsGov,
        "contoso.onmicrosoft.com",
        support::CONTOSO_APP,
        "https://outlook.office365.us/.default",
    );
    std::fs::copy(sb.sandbox.ca_file(), sb.env.root().join("ca.pem")).unwrap();
    let args = [
        "--environment",
        "O365USGovGCCHigh",
        "--connection-uri",
        &cloud_base,
        "--authority-uri",
        &format!("{cloud_base}/organizations"),
        "--ca-file",
        "ca.pem",
    ];
    sb.token_file("usgov.jwt", &usgov);
    sb.exo()
        .args([
            "connect",
            "-m",
            "access-token",
            "--access-token-file",
            "usgov.jwt",
        ])
        .args(args)
        .current_dir(sb.env.root())
        .run()
        .success();
    // From another directory (the CA path was kept absolute), through the proxy.
    let run = sb
        .exo()
        .args(["Get-AcceptedDomain", "--output", "json"])
        .current_dir(&sb.env.home())
        .env("HTTPS_PROXY", &proxy.url)
        .env_remove("NO_PROXY")
        .run()
        .success();
    assert!(run.stdout.contains("contoso.com"), "{}", run.stdout);
    let port = cloud.port().unwrap();
    assert_eq!(
        proxy.targets(),
        [format!("127.0.0.1:{port}")],
        "the request went through the proxy"
    );

    let run = sb
        .connect_with("global.jwt", &sb.app_token(), &args)
        .fails_with(1);
    assert!(
        run.stderr
            .contains("needs a token for https://outlook.office365.us"),
        "{}",
        run.stderr
    );
}

#[test]
fn cmdlets_run_through_invoke_with_the_options_anywhere_and_bad_switches_explained() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let run = sb
        .exo()
        .args([
            "invoke",
            "--output",
            "json",
            "Get-AcceptedDomain",
            "--property",
            "DomainName",
        ])
        .run()
        .success();
    assert!(
        lines(&run.stdout)
            .iter()
            .all(|r| r.as_object().unwrap().len() == 1),
        "{}",
        run.stdout
    );
    let run = sb
        .exo()
        .args(["Get-AcceptedDomain", "-v", "--", "--output"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains("--output"),
        "after --, words are the cmdlet's: {}",
        run.stderr
    );
    // What a POSIX shell leaves of -Confirm:$false.
    let run = sb
        .exo()
        .args(["Remove-Mailbox", "-Identity", "info", "-Confirm:"])
        .run()
        .fails_with(1);
    assert!(
        run.stderr
            .contains("write -Confirm:false, or quote it: '-Confirm:$false'"),
        "{}",
        run.stderr
    );
    assert!(
        sb.invocations()
            .iter()
            .all(|c| c.cmdlet.as_deref() != Some("Remove-Mailbox")),
        "nothing was sent"
    );
}

#[test]
fn a_delegated_connection_anchors_on_the_signed_in_user() {
    let sb = SandboxEnv::start(|_| {});
    let seed = sb.sandbox.seed();
    let user = seed.tenants[0]
        .users
        .iter()
        .find(|u| u.upn.starts_with("exadmin@"))
        .unwrap();
    let client = sandbox::client::blocking_http_client(sb.sandbox.ca_pem()).unwrap();
    let response: serde_json::Value = client
        .post(sandbox::client::token_endpoint(
            sb.sandbox.base_url(),
            "contoso.onmicrosoft.com",
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "fb78d390-0c51-40cd-8e17-fdbfab77341b"),
            ("scope", "https://outlook.office365.com/.default"),
            ("username", user.upn.as_str()),
            ("password", user.password.as_str()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = response["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{response}"));
    sb.connect_with("user.jwt", token, &[]).success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    assert_eq!(
        sb.invocations()[0].anchor_mailbox.as_deref(),
        Some(format!("UPN:{}", user.upn).as_str())
    );
}

#[test]
fn a_long_listing_shows_its_progress_on_the_terminal_while_rows_go_to_a_file() {
    let sb = SandboxEnv::start(|config| config.extra_mailboxes = 3000);
    sb.connect();
    let file = sb.env.root().join("mailboxes.json");
    let run = sb
        .exo()
        .args(["Get-Mailbox", "-ResultSize", "Unlimited"])
        .in_terminal(Some(&file))
        .run()
        .success();
    assert!(
        run.stdout.contains("Get-Mailbox: 1000 rows, 1 pages"),
        "{:?}",
        run.stdout
    );
    let rows = std::fs::read_to_string(&file).unwrap();
    assert!(
        rows.lines().count() > 3000 && !rows.contains("rows/s"),
        "the progress stays off the output"
    );
}

/// A sandbox with 3,000 more mailboxes (over 4 MB of rows: more than a pipe and exo's output
/// queue hold), and `exo Get-Mailbox -ResultSize <result_size>` started on it.
fn listing(result_size: &str) -> (SandboxEnv, std::process::Child) {
    let sb = SandboxEnv::start(|config| config.extra_mailboxes = 3000);
    sb.connect();
    let exo = sb
        .exo()
        .args(["Get-Mailbox", "-ResultSize", result_size])
        .spawn();
    (sb, exo)
}

#[test]
fn a_reader_that_goes_away_ends_the_listing_quietly() {
    use std::io::{BufRead as _, Read as _};
    let (_sb, mut exo) = listing("Unlimited");
    let mut first = String::new();
    std::io::BufReader::new(exo.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader (`| head -1`) closes the pipe here.
    let status = exo.wait().unwrap();
    let mut stderr = String::new();
    exo.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success() && !stderr.contains("error"),
        "{status}: {stderr}"
    );
}

#[test]
fn ctrl_c_stops_a_listing_whose_reader_does_not_read() {
    // All the rows: exo waits for room in its output queue. 150 rows (about 230 KB) fit the
    // pipe and the queue: no write waits, only the end does, for the output thread.
    for result_size in ["Unlimited", "150"] {
        let (_sb, mut exo) = listing(result_size);
        // Held, never read.
        let _stdout = exo.stdout.take().unwrap();
        support::wait_for_a_full_pipe(&exo);
        let (code, stderr) = support::interrupt(exo);
        assert_eq!(code, Some(130), "{result_size}: {stderr}");
        assert!(stderr.contains("exo: interrupted"), "{stderr}");
        assert!(!stderr.contains("cannot write"), "{stderr}");
    }
}

#[test]
fn ctrl_c_stops_a_cmdlet_with_exit_code_130() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    sb.sandbox
        .faults()
        .add(fault(FaultKind::Delay { ms: 20_000 }, 0, None))
        .unwrap();
    let (code, stderr) = support::interrupt(sb.exo().args(["Get-AcceptedDomain"]).spawn());
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("exo: interrupted"), "{stderr}");
}

#[test]
fn csv_cells_a_spreadsheet_would_run_are_guarded_unless_asked() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let formula = "=HYPERLINK(\"http://evil.example\",\"x\")";
    sb.exo()
        .args([
            "New-Mailbox",
            "-Name",
            "formula",
            "-Alias",
            "formula",
            "-Shared",
        ])
        .run()
        .success();
    sb.exo()
        .args(["Set-Mailbox", "-Identity", "formula", "-DisplayName"])
        .args([format!("'{formula}'")])
        .run()
        .success();
    let csv = |extra: &[&str]| {
        sb.exo()
            .args(["Get-Mailbox", "-Identity", "formula", "--output", "csv"])
            .args(["--property", "Alias,DisplayName"])
            .args(extra)
            .run()
            .success()
            .stdout
    };
    let quoted = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    assert_eq!(
        csv(&[]),
        format!(
            "Alias,DisplayName\nformula,{}\n",
            quoted(&format!("'{formula}"))
        )
    );
    assert_eq!(
        csv(&["--csv-formulas"]),
        format!("Alias,DisplayName\nformula,{}\n", quoted(formula))
    );
}

#[test]
fn a_hashtable_nested_thousands_deep_is_refused_with_a_reason_not_a_crash() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let deep = format!("{}1{}", "@{a=".repeat(5000), "}".repeat(5000));
    let run = sb
        .exo()
        .args(["Set-Mailbox", "-Identity", "alice", "-Extra"])
        .args([deep])
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains("nest more than 16 deep"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_secret_cmdlet_parameter_comes_from_a_file_a_variable_or_stdin_and_never_shows() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let password = "Sup3r-S3cret-Passw0rd!";
    let file = sb.token_file("bob-password.txt", password);
    let new_mailbox = |name: &str| {
        sb.exo().args([
            "-vvv",
            "New-Mailbox",
            "-Name",
            name,
            "-MicrosoftOnlineServicesID",
            &format!("{name}@contoso.onmicrosoft.com"),
        ])
    };
    for (name, run) in [
        (
            "from a file",
            new_mailbox("bobfile")
                .args(["--secret"])
                .args([format!("Password=file:{}", file.display())])
                .run(),
        ),
        (
            "from a variable",
            new_mailbox("bobenv")
                .args(["--secret", "Password=env:BOB_PASSWORD"])
                .env("BOB_PASSWORD", password)
                .run(),
        ),
        (
            "from stdin",
            new_mailbox("bobstdin")
                .args(["--secret", "Password=-"])
                .stdin(format!("{password}\n"))
                .run(),
        ),
    ] {
        let run = run.success();
        assert!(
            !run.stderr.contains(password) && !run.stdout.contains(password),
            "{name}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(r#""Password":"[redacted]""#),
            "{name}: {}",
            run.stderr
        );
    }
    // Without the password, the sandbox refuses a user mailbox: it did arrive above.
    new_mailbox("bobnone").run().fails_with(1);
    let run = new_mailbox("bobargv")
        .args(["--secret", &format!("Password={password}")])
        .run()
        .fails_with(1);
    assert!(
        run.stderr.contains("never taken from the command line") && !run.stderr.contains(password),
        "{}",
        run.stderr
    );
}

#[test]
fn while_exchange_works_on_a_cmdlet_exo_says_it_is_still_waiting() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    sb.sandbox
        .faults()
        .add(fault(FaultKind::Delay { ms: 1500 }, 0, Some(1)))
        .unwrap();
    // With a 1 s idle timeout the first notice comes after half a second; the delay is before
    // the answer begins, so it is waited out, not cut short.
    let run = sb
        .exo()
        .args(["Get-AcceptedDomain", "--idle-timeout", "1"])
        .run()
        .success();
    assert!(
        run.stderr
            .contains("Get-AcceptedDomain: still waiting for Exchange to answer"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("contoso.com"), "{}", run.stdout);
}

#[test]
fn exchange_s_messages_reach_the_terminal_escaped() {
    let sb = SandboxEnv::start(|_| {});
    sb.connect();
    let run = sb
        .exo()
        .args(["Get-Mailbox", "-Identity", "nobody\u{1b}]0;owned\u{7}"])
        .run()
        .fails_with(1);
    assert!(run.stderr.contains("couldn't be found"), "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{1b}') && run.stderr.contains("\\u{1b}"),
        "{:?}",
        run.stderr
    );
}
