//! Tests of InvokeCommand handling: errors, retry hints, limits, anchors, and paging against
//! fake Exchanges on loopback (broken, hostile, or answering by page).

use reqwest::header::HeaderValue;

use super::*;

#[test]
fn exchange_errors_keep_exchange_s_own_message() {
    let cases: [(u16, &str, Option<&str>, &str); 5] = [
        (
            404,
            r#"{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Context","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'nobody' couldn't be found.","target":""}]}}"#,
            None,
            "Get-Mailbox failed: The operation couldn't be performed because object 'nobody' couldn't be found. (HTTP 404, Context)",
        ),
        (
            400,
            r#"{"error":{"code":"BadRequest","message":"A parameter cannot be found that matches parameter name 'Bogus'."}}"#,
            None,
            "Get-Mailbox failed: A parameter cannot be found that matches parameter name 'Bogus'. (HTTP 400, BadRequest)",
        ),
        (
            403,
            "",
            None,
            "Get-Mailbox failed: access denied: the account has no Exchange role that allows Get-Mailbox, or Get-Mailbox does not exist (HTTP 403)",
        ),
        (
            500,
            "boom",
            Some("ServerException"),
            "Get-Mailbox failed: boom (HTTP 500, ServerException)",
        ),
        (
            503,
            "",
            None,
            "Get-Mailbox failed: Service Unavailable (HTTP 503)",
        ),
    ];
    for (status, body, exception, expected) in cases {
        let mut headers = HeaderMap::new();
        if let Some(exception) = exception {
            headers.insert("x-ExceptionType", HeaderValue::from_static(exception));
        }
        let error = exchange_error(
            "Get-Mailbox",
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        );
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn retry_after_is_read_in_seconds() {
    let mut headers = HeaderMap::new();
    assert_eq!(retry_after(&headers), None);
    headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    headers.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(1)));
}

#[test]
fn result_size_limits_the_listing_client_side() {
    let limit = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        result_size(&Cmdlet::parse("Get-Mailbox", &words).unwrap())
    };
    assert_eq!(limit(&["-ResultSize", "25"]), Some(25));
    assert_eq!(limit(&["-ResultSize", "Unlimited"]), None);
    assert_eq!(limit(&[]), None);
}

#[test]
fn urls_and_anchors_follow_the_reference_module() {
    let target = Target {
        exchange: Url::parse("https://outlook.office365.com/").unwrap(),
        route: Route::InvokeCommand {
            tenant: "contoso.onmicrosoft.com".into(),
        },
        connection_id: Uuid::nil(),
        anchor_mailbox: String::new(),
        page_size: 1000,
        max_page_bytes: 1 << 20,
        client_application: "exo".into(),
    };
    assert_eq!(
        target.url().unwrap().as_str(),
        "https://outlook.office365.com/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"
    );
    assert_eq!(
        app_anchor_mailbox("t1"),
        "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@t1"
    );
}

#[test]
fn next_links_stay_on_the_connection_s_exchange_host() {
    let exchange = Url::parse("https://127.0.0.1:8443/usgov/").unwrap();
    let ok = [
        (
            "https://127.0.0.1:8443/usgov/adminapi/beta/t/InvokeCommand?$skiptoken=9",
            "https://127.0.0.1:8443/usgov/adminapi/beta/t/InvokeCommand?$skiptoken=9",
        ),
        (
            "adminapi/beta/t/InvokeCommand?$skiptoken=9",
            "https://127.0.0.1:8443/usgov/adminapi/beta/t/InvokeCommand?$skiptoken=9",
        ),
    ];
    for (link, expected) in ok {
        assert_eq!(next_url(&exchange, link).unwrap().as_str(), expected);
    }
    for link in [
        "https://evil.example/steal",
        "http://127.0.0.1:8443/usgov/x",
        "https://127.0.0.1:9999/x",
        "//evil.example/x",
    ] {
        let error = next_url(&exchange, link).unwrap_err();
        assert!(
            error.contains("exo does not send the token there"),
            "{link}: {error}"
        );
    }
}

#[test]
fn secret_looking_parameters_are_hidden_in_logs() {
    let words: Vec<String> = ["-Name", "x", "-Password", "hunter2", "-ApiKey", "k"]
        .iter()
        .map(|w| (*w).to_owned())
        .collect();
    let logged = redacted_parameters(&Cmdlet::parse("New-Mailbox", &words).unwrap());
    assert_eq!(
        logged,
        r#"New-Mailbox {"ApiKey":"[redacted]","Name":"x","Password":"[redacted]"}"#
    );
    let words: Vec<String> = [
        "-Name",
        "x",
        "-Settings",
        "@{Auth=@{Pwd='p1'};Hosts=@{Conn=@{ConnectionString='c1'}}}",
    ]
    .iter()
    .map(|w| (*w).to_owned())
    .collect();
    let mut cmdlet = Cmdlet::parse("Set-Thing", &words).unwrap();
    cmdlet.add_secret("Initial", "s3cret").unwrap();
    let logged = redacted_parameters(&cmdlet);
    for secret in ["p1", "c1", "s3cret"] {
        assert!(!logged.contains(secret), "{logged}");
    }
    assert!(logged.contains(r#""Name":"x""#), "{logged}");
}

/// The requests a fake Exchange was sent.
struct Requests {
    url: Url,
    /// Their targets (path and query), in order.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Requests {
    /// Every request sent so far, once the server has taken all of them: it takes connections
    /// one at a time, in order, so when a last request of the test's own is answered, any
    /// request exo made before (even one it gave up on) has been taken. Asynchronous, so that
    /// the runtime can close a connection exo dropped.
    async fn settled(&self) -> Vec<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let address = (
            self.url.host_str().unwrap().to_owned(),
            self.url.port_or_known_default().unwrap(),
        );
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /settled HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("the fake Exchange answers within 10 s")
            .unwrap();
        let mut log = self.log.lock().unwrap().clone();
        assert_eq!(log.pop().as_deref(), Some("/settled"));
        log
    }
}

/// A fake Exchange on loopback (plain HTTP, which `next_url` allows for the connection's own
/// host), one connection at a time: `answer` gets the request's number (from 0) and target and
/// says what to answer (status, body). A body starting with `UNSIZED:` is sent without a
/// length, ending when the connection closes.
fn fake_exchange(
    answer: impl Fn(usize, &str) -> (u16, String) + Send + 'static,
) -> (Url, Requests) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let requests = Requests {
        url: url.clone(),
        log: std::sync::Arc::default(),
    };
    let seen = requests.log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // A connection exo opened and then dropped is not waited on for good.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let target = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(target.clone());
                seen.len() - 1
            };
            let (status, body) = answer(n, &target);
            let stream = reader.get_mut();
            let _ = match body.strip_prefix("UNSIZED:") {
                Some(body) => write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{body}"
                ),
                None => write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                ),
            };
        }
    });
    (url, requests)
}

/// A broken Exchange that answers the n-th request with the n-th of `answers`, and the last one
/// again after that, whatever was asked for.
fn broken_exchange(answers: Vec<(u16, String)>) -> (Url, Requests) {
    fake_exchange(move |n, _| answers[n.min(answers.len() - 1)].clone())
}

/// An Exchange that answers by request target: `pages` maps a target to its body; anything
/// else gets a 404.
fn exchange_of_pages(pages: Vec<(String, String)>) -> (Url, Requests) {
    fake_exchange(move |_, target| {
        pages
            .iter()
            .find(|(page, _)| page == target)
            .map_or((404, String::new()), |(_, body)| (200, body.clone()))
    })
}

struct FixedToken;

impl TokenSource for FixedToken {
    async fn token(&self, _rejected: Option<&str>) -> Result<Zeroizing<String>, String> {
        Ok(Zeroizing::new("t".to_owned()))
    }
}

fn target(exchange: Url) -> Target {
    Target {
        exchange,
        route: Route::InvokeCommand {
            tenant: "contoso.onmicrosoft.com".to_owned(),
        },
        connection_id: Uuid::new_v4(),
        anchor_mailbox: "UPN:admin@contoso.onmicrosoft.com".to_owned(),
        page_size: 1000,
        max_page_bytes: 1 << 20,
        client_application: "exo-test".to_owned(),
    }
}

/// A target that takes pages of up to 8 MiB: long enough to parse for a few milliseconds.
fn roomy_target(exchange: Url) -> Target {
    Target {
        max_page_bytes: 8 << 20,
        ..target(exchange)
    }
}

async fn run_against(exchange: Url) -> (Result<Summary, InvokeError>, u64) {
    run_target(target(exchange)).await
}

async fn run_target(target: Target) -> (Result<Summary, InvokeError>, u64) {
    let (result, rows) = run_cmdlet(target, Cmdlet::parse("Get-Mailbox", &[]).unwrap()).await;
    (result, rows.len() as u64)
}

/// Runs `cmdlet`, keeping the rows handed over, in order.
async fn run_cmdlet(target: Target, cmdlet: Cmdlet) -> (Result<Summary, InvokeError>, Vec<String>) {
    let mut rows = Vec::new();
    let result = invoke(
        &reqwest::Client::new(),
        &target,
        &cmdlet,
        &FixedToken,
        RetryPolicy::default(),
        |page| {
            rows.extend(page.rows().map(str::to_owned));
            Ok(())
        },
    )
    .await;
    (result, rows)
}

#[tokio::test]
async fn a_next_link_that_repeats_a_page_fails_instead_of_looping() {
    let page = |next: &str| {
        (
            200,
            format!(r#"{{"value":[{{"Name":"a"}}],"@odata.nextLink":"{next}"}}"#),
        )
    };
    // Page 1 links to page 2, which links back to page 1's URL.
    let (exchange, requests) = broken_exchange(vec![
        page("adminapi/beta/contoso.onmicrosoft.com/InvokeCommand?$skiptoken=2"),
        page("adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"),
    ]);
    let (result, rows) = run_against(exchange).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("names a page already fetched"), "{error}");
    assert_eq!(rows, 2, "the rows read before the loop are kept");
    assert_eq!(requests.settled().await.len(), 2);
}

#[tokio::test]
async fn an_empty_200_is_a_broken_answer_and_an_empty_204_is_no_rows() {
    let (exchange, _) = broken_exchange(vec![(200, String::new())]);
    let error = run_against(exchange).await.0.unwrap_err().to_string();
    assert!(error.contains("the answer is empty (HTTP 200)"), "{error}");

    let (exchange, _) = broken_exchange(vec![(204, String::new())]);
    assert_eq!(
        run_against(exchange).await.0.unwrap(),
        Summary { rows: 0, pages: 1 }
    );
}

#[tokio::test]
async fn a_request_exo_cannot_build_fails_at_once_instead_of_being_retried() {
    let (exchange, requests) = broken_exchange(vec![(200, r#"{"value":[]}"#.to_owned())]);
    let target = Target {
        anchor_mailbox: "UPN:admin\n@contoso.onmicrosoft.com".to_owned(),
        ..target(exchange)
    };
    let error = run_target(target).await.0.unwrap_err().to_string();
    assert!(
        !error.contains("gave up after") && error.contains("builder"),
        "{error}"
    );
    assert_eq!(requests.settled().await.len(), 0);
}

#[tokio::test]
async fn a_page_larger_than_the_limit_fails_without_being_read_whole() {
    let huge = format!(r#"{{"value":["{}"]}}"#, "x".repeat(3 << 20));
    for body in [huge.clone(), format!("UNSIZED:{huge}")] {
        let (exchange, _) = broken_exchange(vec![(200, body)]);
        let error = run_against(exchange).await.0.unwrap_err();
        assert!(
            matches!(
                error,
                InvokeError::PageTooLarge {
                    page: 1,
                    limit_mib: 1,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("--max-page-mib"), "{error}");
    }
}

#[tokio::test]
async fn next_links_that_differ_only_in_fragment_or_lead_to_endless_empty_pages_fail() {
    let link = |n: usize, fragment: &str| {
        format!("adminapi/beta/contoso.onmicrosoft.com/InvokeCommand?$skiptoken={n}{fragment}")
    };
    let (exchange, requests) = broken_exchange(vec![
        (
            200,
            format!(
                r#"{{"value":[{{"a":1}}],"@odata.nextLink":"{}"}}"#,
                link(2, "#1")
            ),
        ),
        (
            200,
            format!(
                r#"{{"value":[{{"a":1}}],"@odata.nextLink":"{}"}}"#,
                link(2, "#2")
            ),
        ),
    ]);
    let error = run_against(exchange).await.0.unwrap_err().to_string();
    assert!(error.contains("names a page already fetched"), "{error}");
    assert_eq!(requests.settled().await.len(), 2);

    let empty_pages = (0..200)
        .map(|n| {
            (
                200,
                format!(r#"{{"value":[],"@odata.nextLink":"{}"}}"#, link(n, "")),
            )
        })
        .collect();
    let (exchange, requests) = broken_exchange(empty_pages);
    let error = run_against(exchange).await.0.unwrap_err().to_string();
    assert!(error.contains("over 100 empty pages in a row"), "{error}");
    assert_eq!(requests.settled().await.len(), 101);
}

#[tokio::test]
async fn a_huge_error_answer_is_read_only_as_far_as_its_message() {
    let message = format!(
        r#"{{"error":{{"code":"BadRequest","message":"no such parameter"}}}}{}"#,
        " ".repeat(3 << 20)
    );
    let (exchange, _) = broken_exchange(vec![(400, message)]);
    let error = run_against(exchange).await.0.unwrap_err();
    assert!(
        !matches!(error, InvokeError::PageTooLarge { .. })
            && error.to_string().contains("no such parameter"),
        "{error}"
    );
}

#[tokio::test]
async fn an_answer_that_stalls_after_it_began_fails_after_the_idle_timeout() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let exchange = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"value\":[",
            );
            // Then nothing, for longer than the test lasts.
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
    });
    let policy = RetryPolicy {
        max_retries: 0,
        idle_timeout: Duration::from_millis(300),
        ..RetryPolicy::default()
    };
    let error = invoke(
        &reqwest::Client::new(),
        &target(exchange),
        &Cmdlet::parse("Get-Mailbox", &[]).unwrap(),
        &FixedToken,
        policy,
        |_| Ok(()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("the answer stopped coming: nothing for 0.3 s"),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_secret_that_comes_back_unchanged_is_not_sent_again() {
    // A password read again from its file is the same password: sending it again would only
    // count towards locking the account.
    let refusal = r#"{"error":{"code":"Unauthorized","message":"Access is denied. The user name or password is incorrect."}}"#;
    let (exchange, requests) = broken_exchange(vec![(401, refusal.to_owned())]);
    let error = run_against(exchange).await.0.unwrap_err().to_string();
    assert_eq!(
        error,
        "Get-Mailbox failed: Access is denied. The user name or password is incorrect. (HTTP 401, Unauthorized)"
    );
    assert_eq!(requests.settled().await.len(), 1);
}

#[test]
fn only_a_plain_shell_id_from_the_server_is_kept() {
    assert!(is_shell_id("0E8E5B0C-5F4B-4F4B-9C1B-3A8E0E6B1C2D"));
    for bad in ["", "a b", "x\r\nInjected: 1", &"a".repeat(65), "../x"] {
        assert!(!is_shell_id(bad), "{bad:?}");
    }
}

/// The target of the first page in these tests.
const INVOKE: &str = "/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand";

/// `count` rows named after `page`.
fn rows_of(page: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|row| format!(r#"{{"Name":"p{page}r{row}"}}"#))
        .collect()
}

/// The target of page `n` (1-based).
fn page_target(n: usize) -> String {
    if n == 1 {
        INVOKE.to_owned()
    } else {
        format!("{INVOKE}?page={n}")
    }
}

#[test]
fn the_next_link_is_guessed_from_either_end_of_an_answer_without_reading_its_rows() {
    let link = "https://x/adminapi/beta/t/InvokeCommand?page=2";
    let rows = rows_of(1, 3).join(",");
    // Before the rows, as the sandbox writes it.
    let first = format!(r#"{{"@odata.context":"c","@odata.nextLink":"{link}","value":[{rows}]}}"#);
    assert_eq!(likely_next_link(first.as_bytes()), Some(link));
    // After them, before the warnings and with spaces, as Exchange writes it.
    let after = format!(
        r#"{{"value":[{rows}], "@odata.nextLink" : "{link}" ,"@adminapi.warnings":["w"]}}"#
    );
    assert_eq!(likely_next_link(after.as_bytes()), Some(link));
    let far = format!(
        r#"{{"value":[{rows}],"@odata.nextLink":"{link}","@adminapi.warnings":["{}"]}}"#,
        "w".repeat(NEXT_LINK_SEARCH_BYTES)
    );
    for body in [
        format!(r#"{{"value":[{rows}]}}"#),
        // Inside a string, and a key that only ends with the annotation's name.
        r#"{"value":[{"Note":"x\"@odata.nextLink\":\"https://x/evil"}]}"#.to_owned(),
        r#"{"value":[{"x\"@odata.nextLink":"https://x/evil"}]}"#.to_owned(),
        // Written with escapes, or cut short.
        r#"{"value":[],"@odata.nextLink":"https:\/\/x\/p2"}"#.to_owned(),
        r#"{"@odata.nextLink":"https://x/p2"#.to_owned(),
        String::new(),
        // Further from both ends than exo looks.
        far,
    ] {
        assert_eq!(likely_next_link(body.as_bytes()), None, "{body}");
    }
}

#[tokio::test]
async fn every_page_is_fetched_once_and_handed_over_in_order_wherever_its_next_link_is() {
    for link_first in [true, false] {
        let pages = (1..=3)
            .map(|n| {
                let rows = rows_of(n, 3).join(",");
                let body = match (n < 3, link_first) {
                    (false, _) => format!(r#"{{"value":[{rows}]}}"#),
                    (true, true) => format!(
                        r#"{{"@odata.nextLink":"{}","value":[{rows}]}}"#,
                        page_target(n + 1)
                    ),
                    (true, false) => format!(
                        r#"{{"value":[{rows}],"@odata.nextLink":"{}","@adminapi.warnings":[]}}"#,
                        page_target(n + 1)
                    ),
                };
                (page_target(n), body)
            })
            .collect();
        let (exchange, requests) = exchange_of_pages(pages);
        let (result, rows) =
            run_cmdlet(target(exchange), Cmdlet::parse("Get-Mailbox", &[]).unwrap()).await;
        assert_eq!(result.unwrap(), Summary { rows: 9, pages: 3 });
        let expected: Vec<String> = (1..=3).flat_map(|n| rows_of(n, 3)).collect();
        assert_eq!(rows, expected);
        assert_eq!(
            requests.settled().await,
            [page_target(1), page_target(2), page_target(3)]
        );
    }
}

#[tokio::test]
async fn a_guessed_next_link_that_the_parsed_answer_contradicts_is_not_followed() {
    // The answer's last bytes hold a decoy (in a warning); its own next link is further back
    // than exo looks.
    let first = format!(
        r#"{{"value":[{}],"@odata.nextLink":"{}","@adminapi.warnings":["{}",{{"@odata.nextLink":"{INVOKE}?page=decoy"}}]}}"#,
        rows_of(1, 2).join(","),
        page_target(2),
        "w".repeat(NEXT_LINK_SEARCH_BYTES),
    );
    let (exchange, requests) = exchange_of_pages(vec![
        (page_target(1), first),
        (
            page_target(2),
            format!(r#"{{"value":[{}]}}"#, rows_of(2, 2).join(",")),
        ),
        (
            format!("{INVOKE}?page=decoy"),
            r#"{"value":[{"Name":"decoy"}]}"#.to_owned(),
        ),
    ]);
    let (result, rows) =
        run_cmdlet(target(exchange), Cmdlet::parse("Get-Mailbox", &[]).unwrap()).await;
    assert_eq!(result.unwrap(), Summary { rows: 4, pages: 2 });
    assert_eq!(rows, [rows_of(1, 2), rows_of(2, 2)].concat());
    let requests = requests.settled().await;
    assert_eq!(requests.last(), Some(&page_target(2)), "{requests:?}");
    assert!(requests.len() <= 3, "{requests:?}");
}

#[tokio::test]
async fn a_page_is_handed_over_before_the_failure_of_the_page_after_it() {
    // Page 2 is asked for while page 1 is parsed (long enough for the 404 to come back first),
    // and does not exist.
    let (exchange, _) = exchange_of_pages(vec![(
        page_target(1),
        format!(
            r#"{{"@odata.nextLink":"{}","value":[{}]}}"#,
            page_target(2),
            rows_of(1, 100_000).join(",")
        ),
    )]);
    let (result, rows) = run_cmdlet(
        roomy_target(exchange),
        Cmdlet::parse("Get-Mailbox", &[]).unwrap(),
    )
    .await;
    assert!(
        matches!(result, Err(InvokeError::Exchange { status: 404, .. })),
        "{result:?}"
    );
    assert_eq!(rows, rows_of(1, 100_000));
}

#[tokio::test]
async fn a_malformed_answer_fails_even_when_the_page_after_it_was_asked_for() {
    let (exchange, _) = exchange_of_pages(vec![
        (
            page_target(1),
            format!(
                r#"{{"@odata.nextLink":"{}","value":[{{"Name":"a"}},]}}"#,
                page_target(2)
            ),
        ),
        (
            page_target(2),
            format!(r#"{{"value":[{}]}}"#, rows_of(2, 1).join(",")),
        ),
    ]);
    let (result, rows) =
        run_cmdlet(target(exchange), Cmdlet::parse("Get-Mailbox", &[]).unwrap()).await;
    assert!(
        matches!(result, Err(InvokeError::Malformed { page: 1, .. })),
        "{result:?}"
    );
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn nothing_is_asked_for_ahead_with_a_result_size_or_for_a_cmdlet_that_changes_things() {
    let linked = |rows: String| {
        vec![
            (
                page_target(1),
                format!(
                    r#"{{"@odata.nextLink":"{}","value":[{rows}]}}"#,
                    page_target(2)
                ),
            ),
            (
                page_target(2),
                format!(r#"{{"value":[{}]}}"#, rows_of(2, 1).join(",")),
            ),
        ]
    };
    // -ResultSize 3, and page 1 has 3 rows: page 2 is not wanted.
    let (exchange, requests) = exchange_of_pages(linked(rows_of(1, 3).join(",")));
    let limited =
        Cmdlet::parse("Get-Mailbox", &["-ResultSize".to_owned(), "3".to_owned()]).unwrap();
    let (result, rows) = run_cmdlet(target(exchange), limited).await;
    assert_eq!(result.unwrap(), Summary { rows: 3, pages: 1 });
    assert_eq!(rows.len(), 3);
    assert_eq!(requests.settled().await, [page_target(1)]);
    // A cmdlet that changes things, whose answer is broken: only what it links to after
    // parsing would be asked for, and it does not parse.
    let (exchange, requests) = exchange_of_pages(linked(r#"{"Name":"a"},"#.to_owned()));
    let changing = Cmdlet::parse("Set-Mailbox", &["-Identity".to_owned(), "a".to_owned()]).unwrap();
    let (result, _) = run_cmdlet(target(exchange), changing).await;
    assert!(
        matches!(result, Err(InvokeError::Malformed { .. })),
        "{result:?}"
    );
    assert_eq!(requests.settled().await, [page_target(1)]);
}

#[tokio::test]
async fn the_next_page_is_asked_for_before_the_current_one_is_handed_over() {
    for link_first in [true, false] {
        let rows = rows_of(1, 100_000).join(",");
        let first = if link_first {
            format!(
                r#"{{"@odata.nextLink":"{}","value":[{rows}]}}"#,
                page_target(2)
            )
        } else {
            format!(
                r#"{{"value":[{rows}],"@odata.nextLink":"{}"}}"#,
                page_target(2)
            )
        };
        let (asked, asked_for_page_2) = std::sync::mpsc::channel();
        let (exchange, _) = fake_exchange(move |_, target| {
            if target == page_target(2) {
                let _ = asked.send(());
                (200, r#"{"value":[]}"#.to_owned())
            } else {
                (200, first.clone())
            }
        });
        let mut pages = 0;
        let result = invoke(
            &reqwest::Client::new(),
            &roomy_target(exchange),
            &Cmdlet::parse("Get-Mailbox", &[]).unwrap(),
            &FixedToken,
            RetryPolicy::default(),
            |_| {
                pages += 1;
                if pages == 1 {
                    // Without the request on its way already, this would wait for good: page 2
                    // would be asked for only after page 1 is handed over.
                    asked_for_page_2
                        .recv_timeout(Duration::from_secs(10))
                        .expect("page 2 asked for while page 1 was parsed");
                }
                Ok(())
            },
        )
        .await;
        assert_eq!(
            result.unwrap(),
            Summary {
                rows: 100_000,
                pages: 2
            }
        );
    }
}

#[test]
fn compact_rows_become_json_lines_in_their_own_text_and_other_pages_come_back() {
    let lines = |page: Page| {
        let (bytes, start) = page.into_lines().unwrap().into_parts();
        bytes[start..].to_vec()
    };
    let page = |body: &str| {
        let answer = Answer {
            page: 1,
            status: StatusCode::OK,
            body: body.as_bytes().to_vec(),
        };
        parse("Get-Mailbox", &Url::parse("https://x/").unwrap(), answer)
            .unwrap()
            .page
    };
    let all = lines(page(
        r#"{"@odata.nextLink":"https://x/2","value":[{"a":1},{"b":[2,3]},"c"]}"#,
    ));
    assert_eq!(all, b"{\"a\":1}\n{\"b\":[2,3]}\n\"c\"\n");
    assert_eq!(
        lines(page(r#"{"value":[{"a":"x,y"}]}"#)),
        b"{\"a\":\"x,y\"}\n"
    );
    // A single object (what New-Mailbox returns) is a row of its own text.
    assert_eq!(
        lines(page(r#"{"Name":"n","@odata.context":"c"}"#)),
        b"{\"Name\":\"n\"}\n"
    );
    assert!(lines(page(r#"{"value":[]}"#)).is_empty());
    // Spaces between rows, or a row written over several lines: row by row instead.
    for body in [
        r#"{"value":[{"a":1}, {"b":2}]}"#,
        "{\"value\":[{\"a\":\n1},{\"b\":2}]}",
    ] {
        let back = page(body).into_lines().unwrap_err();
        assert_eq!(back.len(), 2, "{body}");
    }
}
