//! Throughput of the sandbox on loopback: the token endpoint (client credentials, concurrent
//! clients) and InvokeCommand paging over 100,000 mailboxes (page size 1000): Get-Mailbox (the
//! fast path: pre-serialized rows), and the slower paths — Get-Mailbox with a `$select`
//! projection (each row re-parsed), with a `-Filter` (evaluated per mailbox), and Get-Recipient
//! (rows serialized per request).
//!
//! Run with `cargo bench -p sandbox --bench throughput`. The load generator runs in the same
//! process on its own runtime and shares the machine's cores with the sandbox. Every token
//! request reuses one client assertion signed up front (assertions are valid for 10 minutes)
//! over keep-alive connections, so the measured cost is the sandbox's: HTTP, parsing, verifying
//! the assertion (RSA verify) and minting a signed access token (RSA sign) — not TLS handshakes
//! or the client's signing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sandbox::client::{self, AssertionOptions};
use sandbox::{SandboxConfig, spawn};
use serde::Deserialize;
use serde::de::IgnoredAny;

const MAILBOXES: usize = 100_000;
const TOKEN_SECONDS: u64 = 5;
const TOKEN_CLIENTS: usize = 32;

#[derive(Deserialize)]
struct Page {
    value: Vec<IgnoredAny>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = SandboxConfig::new(dir.path());
    config.extra_mailboxes = MAILBOXES;
    let started = Instant::now();
    let sandbox = spawn(config).expect("sandbox");
    println!(
        "sandbox with {MAILBOXES} extra mailboxes started in {:.2?}",
        started.elapsed()
    );
    let tenant = sandbox.seed().tenants[0].clone();
    let app = tenant
        .apps
        .iter()
        .find(|a| a.display_name == "exo-automation")
        .expect("app")
        .clone();
    let read = |p: &Option<std::path::PathBuf>| {
        std::fs::read_to_string(p.as_ref().expect("path")).expect("PEM")
    };
    let (cert, key) = (read(&app.certificate_file), read(&app.key_file));
    let tid = tenant.id.to_string();
    let client_id = app.client_id.to_string();
    let endpoint = client::token_endpoint(sandbox.base_url(), &tid);
    let assertion = client::client_assertion(
        &endpoint,
        &client_id,
        &cert,
        &key,
        &AssertionOptions::default(),
    )
    .expect("assertion");
    let ca = sandbox.ca_pem().to_owned();
    let invoke_url = format!("{}adminapi/beta/{tid}/InvokeCommand", sandbox.base_url());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // Token endpoint.
        let form: Arc<Vec<(String, String)>> = Arc::new(vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), client_id.clone()),
            ("scope".into(), "https://outlook.office365.com/.default".into()),
            ("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
            ("client_assertion".into(), assertion),
        ]);
        let done = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(TOKEN_SECONDS);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..TOKEN_CLIENTS {
            let (http, form, done, endpoint) = (client::http_client(&ca).expect("client"), Arc::clone(&form), Arc::clone(&done), endpoint.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let response = http.post(&endpoint).form(&*form).send().await.expect("token request");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.expect("join");
        }
        let elapsed = started.elapsed();
        let count = done.load(Ordering::Relaxed);
        println!("token endpoint: {count} client_credentials requests in {elapsed:.2?} with {TOKEN_CLIENTS} concurrent keep-alive clients reusing one assertion = {:.0} requests/s", count as f64 / elapsed.as_secs_f64());

        // InvokeCommand paging, page size 1000.
        let token = {
            let http = client::http_client(&ca).expect("client");
            let body: serde_json::Value = http.post(&endpoint).form(&*form).send().await.expect("token").json().await.expect("json");
            body["access_token"].as_str().expect("token").to_owned()
        };
        let http = client::http_client(&ca).expect("client");
        let unlimited = r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":"Unlimited"}}}"#;
        for round in 1..=3 {
            let run = page_through(&http, &invoke_url, &token, unlimited).await;
            run.print(&format!("Get-Mailbox round {round}"));
        }
        let slower = [
            (
                "Get-Mailbox ?$select=Name,Alias,PrimarySmtpAddress",
                format!("{invoke_url}?$select=Name,Alias,PrimarySmtpAddress"),
                unlimited.to_owned(),
            ),
            (
                "Get-Mailbox -Filter \"Office -eq 'Seattle' -or Office -eq 'Berlin'\"",
                invoke_url.clone(),
                r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":"Unlimited","Filter":"Office -eq 'Seattle' -or Office -eq 'Berlin'"}}}"#.to_owned(),
            ),
            (
                "Get-Recipient",
                invoke_url.clone(),
                r#"{"CmdletInput":{"CmdletName":"Get-Recipient","Parameters":{"ResultSize":"Unlimited"}}}"#.to_owned(),
            ),
        ];
        for (label, url, body) in slower {
            page_through(&http, &url, &token, &body).await.print(label);
        }
    });
    drop(sandbox);
}

/// One paging run: rows, pages, bytes and time.
struct Run {
    rows: usize,
    pages: usize,
    bytes: usize,
    elapsed: Duration,
}

impl Run {
    fn print(&self, label: &str) {
        println!(
            "{label}: {} rows in {} pages ({:.1} MB) in {:.2?} = {:.0} rows/s",
            self.rows,
            self.pages,
            self.bytes as f64 / 1e6,
            self.elapsed,
            self.rows as f64 / self.elapsed.as_secs_f64()
        );
    }
}

/// Posts `body` to `url` and follows `@odata.nextLink` to the end.
async fn page_through(http: &reqwest::Client, url: &str, token: &str, body: &str) -> Run {
    let started = Instant::now();
    let (mut rows, mut pages, mut bytes) = (0usize, 0usize, 0usize);
    let mut url = url.to_owned();
    loop {
        let response = http
            .post(&url)
            .bearer_auth(token)
            .header("Prefer", "odata.maxpagesize=1000")
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("invoke");
        assert!(response.status().is_success(), "{}", response.status());
        let data = response.bytes().await.expect("body");
        bytes += data.len();
        let page: Page = serde_json::from_slice(&data).expect("page");
        rows += page.value.len();
        pages += 1;
        match page.next {
            Some(next) => url = next,
            None => break,
        }
    }
    Run {
        rows,
        pages,
        bytes,
        elapsed: started.elapsed(),
    }
}
