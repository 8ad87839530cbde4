//! Benchmarks of whole `exo` processes against the sandbox tenant (release build; run with
//! `cargo xtask bench`). Targets from the design brief:
//!
//! - `exo connect` (access-token), whole process: ≤ 50 ms median, and ≤ 2 × curl's token POST
//!   in the same run;
//! - a short cmdlet (`Get-AcceptedDomain`) on a cached connection: ≤ 2 × curl making the same
//!   InvokeCommand POST, in the same run;
//! - `exo token` with a cached token: ≤ 10 ms median;
//! - `Get-Mailbox -ResultSize Unlimited` over 100,000 mailboxes to NDJSON: ≥ 50,000 rows/s,
//!   peak RSS ≤ 64 MB;
//! - one cmdlet over 200 tenants with `--all-connections`: close to single-call latency × 200 /
//!   concurrency;
//! - the cache at scale: `exo token` with 1, 1,000 and 10,000 connections in the cache
//!   (≤ 5 ms at 10,000), and 50 `exo connect` processes at once to different connections.
//!
//! The sandbox runs in this process on the same two cores as exo, so every number includes the
//! server's work too.
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{CONTOSO_APP, SandboxEnv};

fn main() {
    // The benchmark fills the cache itself, with the key where exo keeps it here.
    // SAFETY: nothing else runs yet.
    unsafe { std::env::set_var("EXO_KEY_STORE", "file") };
    // First, while this process is small: a child's peak memory counts its parent's.
    get_mailbox_throughput();
    cache_scale();
    start_up_against_curl();
    fan_out();
}

/// What a finished process took.
struct Measured {
    wall: Duration,
    peak_rss_kb: i64,
    stdout_lines: u64,
    success: bool,
}

/// Runs `command` to completion, counting its stdout lines, with its peak memory.
fn measure(mut command: Command) -> Measured {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().expect("start exo");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let counter = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 1 << 16];
        let mut lines = 0u64;
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            lines += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
        lines
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are valid for the call.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    let stdout_lines = counter.join().expect("the counter thread");
    std::mem::forget(child); // already reaped by wait4
    Measured {
        wall,
        peak_rss_kb: usage.ru_maxrss,
        stdout_lines,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Whole processes against their curl floor, interleaved (exo, curl, exo, …) after one warm-up
/// each so that a noisy moment hits both alike: `exo connect` with a pre-issued token against
/// curl's token POST (client credentials with the app's secret), and a short cmdlet against
/// curl's InvokeCommand POST with the same token and body. Targets: ≤ 2 × curl each.
fn start_up_against_curl() {
    let sb = SandboxEnv::start(|_| {});
    let token = sb.app_token();
    let file = sb.token_file("token.jwt", &token);
    let connect = || {
        sb.exo()
            .args(["connect", "--method", "access-token", "--access-token-file"])
            .arg_path(&file)
            .into_command()
    };
    let seed = sb.sandbox.seed();
    let tenant = &seed.tenants[0];
    let app = tenant
        .apps
        .iter()
        .find(|a| a.display_name == CONTOSO_APP)
        .expect("the seeded app");
    let base = sb.sandbox.base_url();
    let curl = |url: String, headers: &[String], body: String| {
        let mut command = Command::new("curl");
        command
            .args(["-sf", "-o", "/dev/null", "--cacert"])
            .arg(sb.sandbox.ca_file());
        for header in headers {
            command.args(["-H", header]);
        }
        command.args(["--data", &body, &url]);
        command
    };
    let token_post = || {
        curl(
            format!("{base}{}/oauth2/v2.0/token", tenant.id),
            &[],
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Foutlook.office365.com%2F.default",
                app.client_id, app.client_secrets[0]
            ),
        )
    };
    let (exo_connect, curl_token) = interleaved(connect, token_post, 30);
    println!(
        "exo connect (access-token, whole process): median {} over 30 runs (target ≤ 50 ms); \
         curl token POST: {}; exo/curl = {:.2} (target ≤ 2)",
        ms(exo_connect),
        ms(curl_token),
        exo_connect.as_secs_f64() / curl_token.as_secs_f64()
    );
    let cmdlet = || sb.exo().args(["Get-AcceptedDomain"]).into_command();
    let invoke_post = || {
        curl(
            format!("{base}adminapi/beta/{}/InvokeCommand", tenant.id),
            &[
                format!("Authorization: Bearer {token}"),
                "Content-Type: application/json".to_owned(),
                "X-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com".to_owned(),
            ],
            r#"{"CmdletInput":{"CmdletName":"Get-AcceptedDomain","Parameters":{}}}"#.to_owned(),
        )
    };
    let (exo_cmdlet, curl_invoke) = interleaved(cmdlet, invoke_post, 30);
    println!(
        "exo Get-AcceptedDomain (cached connection, whole process): median {} over 30 runs; \
         curl InvokeCommand POST: {}; exo/curl = {:.2} (target ≤ 2)",
        ms(exo_cmdlet),
        ms(curl_invoke),
        exo_cmdlet.as_secs_f64() / curl_invoke.as_secs_f64()
    );
    let tokens: Vec<Duration> = (0..50)
        .map(|_| {
            let m = measure(sb.exo().args(["token"]).into_command());
            assert!(m.success && m.stdout_lines == 1, "exo token failed");
            m.wall
        })
        .collect();
    println!(
        "exo token (cached, whole process): median {} over 50 runs (target ≤ 10 ms)",
        ms(median(tokens))
    );
}

/// The medians of `runs` runs of each of two commands, run alternately after one warm-up each.
fn interleaved(
    first: impl Fn() -> Command,
    second: impl Fn() -> Command,
    runs: usize,
) -> (Duration, Duration) {
    let wall = |command: Command| {
        let m = measure(command);
        assert!(m.success, "a benchmarked command failed");
        m.wall
    };
    wall(first());
    wall(second());
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        firsts.push(wall(first()));
        seconds.push(wall(second()));
    }
    (median(firsts), median(seconds))
}

/// Get-Mailbox over 100,000 mailboxes. The sandbox runs as its own `exo-sandbox` process here:
/// on Linux a child's `ru_maxrss` includes the memory of the process it was forked from (the
/// high-water mark survives `exec`), so an in-process sandbox would inflate exo's peak memory.
fn get_mailbox_throughput() {
    let env = support::TestEnv::with_plugins(&["access-token"]);
    let state = env.root().join("sandbox");
    let started = Instant::now();
    let mut server = Command::new(support::profile_dir().join("exo-sandbox"))
        .args(["serve", "--mailboxes", "100000", "--state"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start exo-sandbox");
    while !state.join("sandbox.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "exo-sandbox did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "(exo-sandbox with 100,000 extra mailboxes started in {})",
        ms(started.elapsed())
    );
    let token = Command::new(support::profile_dir().join("exo-sandbox"))
        .args(["get-token", "--state"])
        .arg(&state)
        .output()
        .expect("get a token");
    assert!(token.status.success(), "exo-sandbox get-token failed");
    let exo = || {
        env.exo()
            .env("EXO_SANDBOX_DIR", &state)
            .env("EXO_ENVIRONMENT", "sandbox")
    };
    let run = exo()
        .args([
            "connect",
            "--method",
            "access-token",
            "--access-token-file",
            "-",
        ])
        .stdin(token.stdout)
        .run();
    assert!(run.status.success(), "exo connect failed: {}", run.stderr);
    let listing = |format: &'static str| {
        move || {
            exo()
                .args([
                    "Get-Mailbox",
                    "-ResultSize",
                    "Unlimited",
                    "--output",
                    format,
                ])
                .into_command()
        }
    };
    let curl = curl_listing(&state);
    // Interleaved: exo NDJSON, curl, exo NDJSON, … (7 each: the two share 2 cores with the
    // sandbox, so single runs vary by a third), then table and CSV.
    let (mut ndjson, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let m = measure(listing("json")());
        assert!(
            m.success && m.stdout_lines >= 100_000,
            "Get-Mailbox failed ({} rows)",
            m.stdout_lines
        );
        ndjson.push(m);
        let m = measure(curl());
        assert!(m.success, "curl failed");
        floor.push(m.wall);
    }
    let others: Vec<(&str, Measured)> = ["table", "csv"]
        .into_iter()
        .map(|format| (format, measure(listing(format)())))
        .collect();
    let _ = server.kill();
    let _ = server.wait();
    let rows = ndjson[0].stdout_lines;
    let wall = median(ndjson.iter().map(|m| m.wall).collect());
    let floor = median(floor);
    let peak = ndjson.iter().map(|m| m.peak_rss_kb).max().unwrap_or(0);
    println!(
        "Get-Mailbox -ResultSize Unlimited --output json: {rows} rows in {} (median of 7) = {:.0} rows/s (target ≥ 50,000); peak RSS {:.1} MB (target ≤ 64 MB); curl POSTing the same pages over one connection: {} = {:.0} rows/s; exo/curl rate = {:.2} (target ≥ 0.8)",
        ms(wall),
        rows as f64 / wall.as_secs_f64(),
        peak as f64 / 1024.0,
        ms(floor),
        rows as f64 / floor.as_secs_f64(),
        floor.as_secs_f64() / wall.as_secs_f64()
    );
    for (format, m) in others {
        assert!(m.success, "--output {format} failed");
        println!(
            "  --output {format}: {} = {:.0} rows/s; peak RSS {:.1} MB",
            ms(m.wall),
            rows as f64 / m.wall.as_secs_f64(),
            m.peak_rss_kb as f64 / 1024.0
        );
    }
}

/// One `curl` process POSTing every page of the Get-Mailbox listing (the URLs its next links
/// name, found beforehand) over one kept-alive connection, as exo does: the floor.
fn curl_listing(state: &std::path::Path) -> impl Fn() -> Command {
    let discovery: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("sandbox.json")).expect("read sandbox.json"),
    )
    .expect("parse sandbox.json");
    let text = |value: &serde_json::Value| value.as_str().expect("a string").to_owned();
    let base = text(&discovery["base_url"]);
    let ca_file = text(&discovery["ca_file"]);
    let tenant = text(&discovery["tenants"][0]["id"]);
    let token = Command::new(support::profile_dir().join("exo-sandbox"))
        .args(["get-token", "--state"])
        .arg(state)
        .output()
        .expect("get a token");
    let token = String::from_utf8(token.stdout).expect("a token");
    let body =
        r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":"Unlimited"}}}"#;
    let headers = [
        format!("Authorization: Bearer {}", token.trim()),
        "Content-Type: application/json".to_owned(),
        "Prefer: odata.maxpagesize=1000".to_owned(),
    ];
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_file).expect("read the CA"))
        .expect("the CA");
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("a client");
    let mut urls = vec![format!(
        "{}/adminapi/beta/{tenant}/InvokeCommand",
        base.trim_end_matches('/')
    )];
    loop {
        let mut request = client.post(urls.last().expect("a URL")).body(body);
        for header in &headers {
            let (name, value) = header.split_once(": ").expect("a header");
            request = request.header(name, value);
        }
        let page: serde_json::Value = request.send().expect("a page").json().expect("JSON");
        match page["@odata.nextLink"].as_str() {
            Some(next) => urls.push(next.to_owned()),
            None => break,
        }
    }
    move || {
        let mut command = Command::new("curl");
        command.args(["-sf", "--cacert", &ca_file]);
        for header in &headers {
            command.args(["-H", header]);
        }
        command.args(["--data", body]).args(&urls);
        command
    }
}

fn fan_out() {
    let tenants = 200;
    let sb = SandboxEnv::start(|config| config.extra_tenants = tenants);
    let started = Instant::now();
    for i in 1..=tenants {
        let domain = format!("tenant{i:04}.onmicrosoft.com");
        let token = sb.app_token_for(
            &domain,
            CONTOSO_APP,
            "https://outlook.office365.com/.default",
        );
        sb.connect_with(&format!("t{i}.jwt"), &token, &["--organization", &domain])
            .success();
    }
    println!("({tenants} connections made in {})", ms(started.elapsed()));
    let single: Vec<Duration> = (0..10)
        .map(|_| {
            let m = measure(
                sb.exo()
                    .args(["Get-AcceptedDomain", "--output", "json"])
                    .into_command(),
            );
            assert!(m.success);
            m.wall
        })
        .collect();
    let single = median(single);
    for concurrency in [16, 64] {
        let runs: Vec<Duration> = (0..3)
            .map(|_| {
                let command = sb
                    .exo()
                    .args([
                        "Get-AcceptedDomain",
                        "--all-connections",
                        "--output",
                        "json",
                        "--concurrency",
                    ])
                    .args([concurrency.to_string()])
                    .into_command();
                let m = measure(command);
                assert!(
                    m.success && m.stdout_lines >= tenants as u64,
                    "fan-out failed"
                );
                m.wall
            })
            .collect();
        let wall = median(runs);
        let ideal = single.as_secs_f64() * tenants as f64 / f64::from(concurrency);
        println!(
            "Get-AcceptedDomain --all-connections over {tenants} tenants, concurrency {concurrency}: {} (single call {}; single × {tenants} / {concurrency} = {:.1} ms)",
            ms(wall),
            ms(single),
            ideal * 1000.0
        );
    }
}

/// `exo token` (the most recent connection, and one named by id) as a whole process with 1,
/// 1,000 and 10,000 connections in the cache, and 50 `exo connect` processes at once.
fn cache_scale() {
    let sb = SandboxEnv::start(|_| {});
    let id = sb.connect();
    let store = session::cache::Store::new(sb.exo_state());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let template = runtime
        .block_on(store.get(id.parse().unwrap()))
        .unwrap()
        .unwrap();
    let key_store_file = |exo: support::Exo| exo.env("EXO_KEY_STORE", "file");
    let mut count = 1;
    for size in [1, 1_000, 10_000] {
        let started = Instant::now();
        while count < size {
            let mut entry = template.clone();
            entry.connection.id = uuid::Uuid::new_v4();
            runtime.block_on(store.add(entry)).unwrap();
            count += 1;
        }
        let filled = started.elapsed();
        let token = |args: &[&str]| {
            let runs: Vec<Duration> = (0..30)
                .map(|_| {
                    let m = measure(key_store_file(sb.exo()).args(args).into_command());
                    assert!(m.success && m.stdout_lines == 1, "exo token failed");
                    m.wall
                })
                .collect();
            median(runs)
        };
        let latest = token(&["token"]);
        let by_id = token(&["token", "--connection-id", &id]);
        println!(
            "exo token with {size} connections in the cache: median {} (the most recent), {} (by id), over 30 runs each (target ≤ 5 ms at 10,000){}",
            ms(latest),
            ms(by_id),
            if size > 1 {
                format!("; adding them took {}", ms(filled))
            } else {
                String::new()
            }
        );
    }
    let single = median(
        (0..10)
            .map(|i| {
                let file = sb.token_file(&format!("single-{i}.jwt"), &sb.app_token());
                let m = measure(
                    key_store_file(sb.exo())
                        .args(["connect", "-m", "access-token", "--access-token-file"])
                        .arg_path(&file)
                        .into_command(),
                );
                assert!(m.success);
                m.wall
            })
            .collect(),
    );
    let files: Vec<_> = (0..50)
        .map(|i| sb.token_file(&format!("many-{i}.jwt"), &sb.app_token()))
        .collect();
    let started = Instant::now();
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            key_store_file(sb.exo())
                .args(["connect", "-m", "access-token", "--access-token-file"])
                .arg_path(file)
                .into_command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(
            child.wait().unwrap().success(),
            "a concurrent connect failed"
        );
    }
    let wall = started.elapsed();
    let listed = runtime.block_on(store.read()).unwrap();
    assert_eq!(listed.entries.len(), 10_000 + 10 + 50, "nothing lost");
    println!(
        "50 exo connect at once to different connections (10,000 in the cache): all done in {} (one alone: {}; 50 one after another ≈ {:.0} ms on these 2 cores)",
        ms(wall),
        ms(single),
        single.as_secs_f64() * 50.0 * 1000.0
    );
}
