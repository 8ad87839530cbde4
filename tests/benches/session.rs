//! Benchmarks of whole `exo` processes against the sandbox tenant (release build; run with
//! `cargo xtask bench`). Targets from the design brief:
//!
//! - `exo connect` (access-token), whole process: ≤ 50 ms median;
//! - `exo token` with a cached token: ≤ 10 ms median;
//! - `Get-Mailbox -ResultSize Unlimited` over 100,000 mailboxes to NDJSON: ≥ 50,000 rows/s,
//!   peak RSS ≤ 64 MB;
//! - one cmdlet over 200 tenants with `--all-connections`: close to single-call latency × 200 /
//!   concurrency.
//!
//! The sandbox runs in this process on the same two cores as exo, so every number includes the
//! server's work too.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{CONTOSO_APP, SandboxEnv};

fn main() {
    connect_and_token();
    get_mailbox_throughput();
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

fn connect_and_token() {
    let sb = SandboxEnv::start(|_| {});
    let file = sb.token_file("token.jwt", &sb.app_token());
    let connect = || {
        sb.exo()
            .args(["connect", "--method", "access-token", "--access-token-file"])
            .arg_path(&file)
            .into_command()
    };
    // Warm the page cache once.
    assert!(measure(connect()).success);
    let connects: Vec<Duration> = (0..30)
        .map(|_| {
            let m = measure(connect());
            assert!(m.success, "exo connect failed");
            m.wall
        })
        .collect();
    let tokens: Vec<Duration> = (0..50)
        .map(|_| {
            let m = measure(sb.exo().args(["token"]).into_command());
            assert!(m.success && m.stdout_lines == 1, "exo token failed");
            m.wall
        })
        .collect();
    println!(
        "exo connect (access-token, whole process): median {} over 30 runs (target ≤ 50 ms)",
        ms(median(connects))
    );
    println!(
        "exo token (cached, whole process): median {} over 50 runs (target ≤ 10 ms)",
        ms(median(tokens))
    );
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
    let runs: Vec<Measured> = (0..3)
        .map(|_| {
            let command = exo()
                .args([
                    "Get-Mailbox",
                    "-ResultSize",
                    "Unlimited",
                    "--output",
                    "json",
                ])
                .into_command();
            let m = measure(command);
            assert!(
                m.success && m.stdout_lines >= 100_000,
                "Get-Mailbox failed ({} rows)",
                m.stdout_lines
            );
            m
        })
        .collect();
    let _ = server.kill();
    let _ = server.wait();
    let rows = runs[0].stdout_lines;
    let wall = median(runs.iter().map(|m| m.wall).collect());
    let peak = runs.iter().map(|m| m.peak_rss_kb).max().unwrap_or(0);
    println!(
        "Get-Mailbox -ResultSize Unlimited: {rows} rows in {} (median of 3) = {:.0} rows/s (target ≥ 50,000); peak RSS {:.1} MB (target ≤ 64 MB)",
        ms(wall),
        rows as f64 / wall.as_secs_f64(),
        peak as f64 / 1024.0
    );
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
