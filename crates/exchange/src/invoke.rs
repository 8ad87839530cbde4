//! One cmdlet, every page: `POST {exchange}/adminapi/beta/{tenant}/InvokeCommand` with a bearer
//! token, or the same body to remote PowerShell's legacy endpoint ([`Route::Legacy`]) with Basic
//! credentials in a shell session (`docs/exchange-online.md`, "Legacy paths").
//!
//! - Headers as the reference module sends them (`docs/exchange-online.md`, "Headers"): the credentials,
//!   `X-AnchorMailbox`, `connection-id`, one `client-request-id` per cmdlet kept across pages
//!   and retries, `Prefer: odata.maxpagesize=N`, `X-CmdletName`, `X-ClientApplication`.
//! - Paging: the same body is POSTed to each `@odata.nextLink`; with `-ResultSize N` each page
//!   asks for at most what is still missing. The next page is fetched while the current one is
//!   handed to the caller, so output overlaps the network; two pages at most are in the works
//!   here (the caller may keep a page it was handed while it writes it).
//!   For a cmdlet that only reads, with no `-ResultSize`, on InvokeCommand, after a page with
//!   rows, the next page is asked for as soon as an answer arrives when its text gives the link
//!   away near either end (the sandbox writes it before `value`, Exchange after), while the
//!   answer is parsed on a blocking thread. The parsed answer decides: a guess it contradicts
//!   (a request on the same host that it never named) is dropped, its answer unused.
//!   A next link that names a page already fetched fails the listing (it would never end), and
//!   so do an empty answer other than 204 No Content and a page over `max_page_bytes` (it is
//!   not read further).
//! - Failures: a 401 renews the token once and retries; 429 and 503 wait for `Retry-After` (or
//!   back off exponentially) and retry; 502, 504 and broken connections are retried only for
//!   cmdlets that merely read, since a lost answer to `New-Mailbox` may hide a mailbox that was
//!   made. Exchange's own error message is kept.
//! - Legacy shells: the first request opens one and the server names it in
//!   `X-PowerShell-ShellId`; every later request (next pages, later commands through
//!   [`Shell`]) sends that id back. A shell the server no longer has (it expired) is replaced
//!   once; the server's limit on open shells comes back as its own message.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cmdlet::Cmdlet;

/// Where and as whom a cmdlet runs.
#[derive(Clone, Debug)]
pub struct Target {
    /// The Exchange base URL, ending in `/`.
    pub exchange: Url,
    /// Which endpoint, and how the secret from the [`TokenSource`] is sent.
    pub route: Route,
    /// The connection's id (`connection-id`).
    pub connection_id: Uuid,
    /// The `X-AnchorMailbox` value, e.g. `UPN:admin@contoso.onmicrosoft.com`.
    pub anchor_mailbox: String,
    /// The largest page to ask for (1–1000).
    pub page_size: u32,
    /// The largest page body accepted, in bytes: a server that sends more is broken or
    /// hostile, and the listing fails rather than exhaust memory.
    pub max_page_bytes: u64,
    /// `X-ClientApplication`.
    pub client_application: String,
}

/// Which endpoint a cmdlet goes to, and how it is authenticated.
#[derive(Clone, Debug)]
pub enum Route {
    /// The admin REST API: `adminapi/beta/{tenant}/InvokeCommand`, `Authorization: Bearer`.
    InvokeCommand {
        /// The tenant in the URL: a GUID or a domain (the delegated organization for
        /// partners).
        tenant: String,
    },
    /// Remote PowerShell's legacy endpoint: `Authorization: Basic user:secret`, where the
    /// secret is the account's password or, with `BasicAuthToOAuthConversion=true`, the access
    /// token.
    Legacy {
        /// The endpoint with its query, e.g. `…/PowerShell-LiveID/?DelegatedOrg=…`.
        url: Url,
        /// The Basic user name.
        user: String,
        /// The shell session, shared with the caller so that it outlives the command.
        shell: Shell,
    },
}

/// The header that names a legacy shell session.
pub const SHELL_HEADER: &str = "X-PowerShell-ShellId";

/// The id of a legacy shell session, if one is open; shared by clones.
#[derive(Clone, Debug, Default)]
pub struct Shell(Arc<Mutex<Option<String>>>);

impl Shell {
    /// A session that continues shell `id` (or opens one at the first request).
    pub fn new(id: Option<String>) -> Self {
        Self(Arc::new(Mutex::new(id)))
    }

    /// The open shell's id.
    pub fn id(&self) -> Option<String> {
        self.slot().clone()
    }

    fn set(&self, id: Option<String>) {
        *self.slot() = id;
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a server's shell id can be sent back and kept: a short run of letters, digits and
/// hyphens (Exchange's are GUIDs).
fn is_shell_id(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Target {
    /// The URL a cmdlet is posted to.
    pub fn url(&self) -> Result<Url, url::ParseError> {
        match &self.route {
            Route::InvokeCommand { tenant } => self
                .exchange
                .join(&format!("adminapi/beta/{tenant}/InvokeCommand")),
            Route::Legacy { url, .. } => Ok(url.clone()),
        }
    }
}

/// The anchor mailbox of an app-only connection: the static system mailbox the reference
/// module uses (`docs/exchange-online.md`, "Headers").
pub fn app_anchor_mailbox(tenant_id: &str) -> String {
    format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant_id}")
}

/// Gives access tokens; implemented over the session core.
pub trait TokenSource {
    /// A valid token (wiped from memory when dropped); with `rejected`, one other than that
    /// token (which got a 401).
    fn token(
        &self,
        rejected: Option<&str>,
    ) -> impl Future<Output = Result<Zeroizing<String>, String>> + Send;
}

/// How often and how long to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first back-off delay; it doubles with each retry.
    pub base_delay: Duration,
    /// The longest single wait, `Retry-After` included.
    pub max_delay: Duration,
    /// How long an answer may stall once it has begun (no bytes at all) before the attempt
    /// fails. Before the answer begins, Exchange may be working on the cmdlet for up to its
    /// own 15-minute limit, so only the client's whole-request timeout applies there.
    pub idle_timeout: Duration,
}

impl Default for RetryPolicy {
    /// Five retries from one second, like the reference module's six tries.
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One page of results: the rows are kept in the answer's own text, not copied one by one.
#[derive(Debug, Default)]
pub struct Page {
    /// The text the rows are in.
    text: String,
    /// Where each row is in it.
    rows: Vec<std::ops::Range<usize>>,
    /// Warnings Exchange attached (`@adminapi.warnings`).
    pub warnings: Vec<String>,
    /// Errors Exchange reported along with a successful answer (`@adminapi.errors`), e.g. for
    /// some of the objects of a pipeline; they make the command fail.
    pub errors: Vec<String>,
}

impl Page {
    /// The rows, as JSON in Exchange's own text.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.rows.iter().map(|range| &self.text[range.clone()])
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The size of the page's text, in bytes.
    pub fn size(&self) -> usize {
        self.text.len()
    }

    /// Keeps the first `count` rows.
    fn truncate(&mut self, count: usize) {
        self.rows.truncate(count);
    }

    /// The rows as JSON lines (each row, then a line break), made in the answer's own text
    /// instead of copied: the comma between two rows becomes the line break. That takes rows
    /// written compactly and one comma apart, as Exchange writes them; any other page comes
    /// back as it is.
    pub fn into_lines(self) -> Result<Lines, Page> {
        let (Some(first), Some(last)) = (self.rows.first(), self.rows.last()) else {
            return Ok(Lines::default());
        };
        let (start, end) = (first.start, last.end);
        let one_comma_apart = self
            .rows
            .windows(2)
            .all(|pair| pair[1].start == pair[0].end + 1);
        if !one_comma_apart || self.text.as_bytes()[start..end].contains(&b'\n') {
            return Err(self);
        }
        let mut bytes = self.text.into_bytes();
        for pair in self.rows.windows(2) {
            bytes[pair[0].end] = b'\n';
        }
        bytes.truncate(end);
        bytes.push(b'\n');
        Ok(Lines { bytes, start })
    }
}

/// A page's rows as JSON lines, in the answer's own text ([`Page::into_lines`]).
#[derive(Debug, Default)]
pub struct Lines {
    bytes: Vec<u8>,
    /// Where the first line begins.
    start: usize,
}

impl Lines {
    /// The text they are in, and where the first begins: for a writer that takes the buffer
    /// whole rather than copy it.
    pub fn into_parts(self) -> (Vec<u8>, usize) {
        (self.bytes, self.start)
    }
}

/// What a finished invocation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows handed over.
    pub rows: u64,
    /// Pages fetched.
    pub pages: u64,
}

/// Why a cmdlet failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No token could be had.
    #[error("{0}")]
    Token(String),
    /// Exchange answered with an error.
    #[error("{cmdlet} failed: {message} (HTTP {status}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Exchange {
        /// The cmdlet.
        cmdlet: String,
        /// The HTTP status.
        status: u16,
        /// Exchange's error code or exception type.
        code: Option<String>,
        /// Exchange's message.
        message: String,
    },
    /// The network failed, retries included.
    #[error("{cmdlet} failed on page {page}: {message}")]
    Network {
        /// The cmdlet.
        cmdlet: String,
        /// The page that failed (1-based).
        page: u64,
        /// What happened.
        message: String,
    },
    /// A response was not what InvokeCommand returns.
    #[error("{cmdlet}: page {page} is not a valid InvokeCommand response ({reason})")]
    Malformed {
        /// The cmdlet.
        cmdlet: String,
        /// The page (1-based).
        page: u64,
        /// What is wrong.
        reason: String,
    },
    /// A page's body was larger than [`Target::max_page_bytes`].
    #[error(
        "{cmdlet} failed: page {page} is larger than {limit_mib} MiB; exo stopped reading it \
         (raise --max-page-mib if Exchange really sends pages this large)"
    )]
    PageTooLarge {
        /// The cmdlet.
        cmdlet: String,
        /// The page (1-based).
        page: u64,
        /// The limit, in MiB.
        limit_mib: u64,
    },
    /// The caller could not take a page (its output failed).
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Runs `cmdlet` on `target`, handing each page to `on_page` as it arrives.
pub async fn invoke(
    http: &reqwest::Client,
    target: &Target,
    cmdlet: &Cmdlet,
    tokens: &impl TokenSource,
    policy: RetryPolicy,
    mut on_page: impl FnMut(Page) -> std::io::Result<()>,
) -> Result<Summary, InvokeError> {
    let url = target.url().map_err(|e| InvokeError::Malformed {
        cmdlet: cmdlet.name.clone(),
        page: 0,
        reason: format!("bad Exchange URL: {e}"),
    })?;
    let request = Request {
        http,
        target,
        cmdlet,
        tokens,
        policy,
        body: serde_json::to_vec(&cmdlet.body()).expect("a JSON value serializes"),
        request_id: Uuid::new_v4(),
        limit: result_size(cmdlet),
    };
    let mut paging = Paging {
        summary: Summary::default(),
        limit: request.limit,
        fetched_urls: std::collections::HashSet::from([url.clone()]),
        empty_in_a_row: 0,
    };
    // Asking for a page before the one that links to it is parsed is safe only for a cmdlet
    // that merely reads, and only worth it when every page is wanted whole. Not on the legacy
    // route: a request there may open a shell, and a refused password counts towards locking
    // the account.
    let may_prefetch = request.limit.is_none()
        && cmdlet.is_idempotent()
        && matches!(target.route, Route::InvokeCommand { .. });
    let mut answer = request.fetch(url, 1, 0).await?;
    loop {
        let likely = may_prefetch
            .then(|| paging.likely_next(&target.exchange, &answer))
            .flatten();
        let (page, next) = match likely {
            // The answer seems to give its next link: that page is asked for at once, while
            // this one is parsed on another thread and handed over.
            Some(likely) => {
                let parsing = request.parse_elsewhere(answer);
                let mut prefetch =
                    std::pin::pin!(request.fetch(likely.clone(), paging.summary.pages + 2, 0));
                let mut handed_over = std::pin::pin!(async {
                    let (page, next) = paging.advance(parsing.await?);
                    match next {
                        Next::Fetch(url) if url == likely => {
                            on_page(page).map_err(InvokeError::Output)?;
                            Ok(None)
                        }
                        // The answer ended the listing, or linked elsewhere after all.
                        next => Ok(Some((page, next))),
                    }
                });
                // This page is handed over before the next one's failure is reported.
                let unexpected = tokio::select! {
                    biased;
                    handed = &mut handed_over => handed?,
                    prefetched = &mut prefetch => match handed_over.await? {
                        None => {
                            answer = prefetched?;
                            continue;
                        }
                        unexpected => unexpected,
                    },
                };
                match unexpected {
                    None => {
                        answer = prefetch.await?;
                        continue;
                    }
                    Some(unexpected) => unexpected,
                }
            }
            None => paging.advance(parse(&cmdlet.name, &target.exchange, answer)?),
        };
        match next {
            Next::Done => {
                on_page(page).map_err(InvokeError::Output)?;
                return Ok(paging.summary);
            }
            Next::Endless(reason) => {
                on_page(page).map_err(InvokeError::Output)?;
                return Err(InvokeError::Malformed {
                    cmdlet: cmdlet.name.clone(),
                    page: paging.summary.pages,
                    reason: reason.to_owned(),
                });
            }
            Next::Fetch(url) => {
                // The output of this page overlaps the fetch of the next; when the output fails,
                // the fetch is dropped.
                let output = async { on_page(page).map_err(InvokeError::Output) };
                let fetch = request.fetch(url, paging.summary.pages + 1, paging.summary.rows);
                (answer, ()) = tokio::try_join!(fetch, output)?;
            }
        }
    }
}

/// Where a listing is: what was handed over, and which pages were asked for.
struct Paging {
    summary: Summary,
    /// `-ResultSize`, when it limits the rows.
    limit: Option<u64>,
    /// Every page's URL as sent: a server whose next link names one of them would loop forever.
    fetched_urls: std::collections::HashSet<Url>,
    empty_in_a_row: u32,
}

/// What follows a page.
enum Next {
    /// Nothing: the listing is complete (or has the rows asked for).
    Done,
    /// The page at this URL.
    Fetch(Url),
    /// The listing would never end, for this reason.
    Endless(&'static str),
}

impl Paging {
    /// Counts a parsed page, keeping at most the rows still wanted, and says what follows it.
    fn advance(&mut self, fetched: Fetched) -> (Page, Next) {
        self.summary.pages += 1;
        let mut page = fetched.page;
        if let Some(limit) = self.limit {
            page.truncate(limit.saturating_sub(self.summary.rows) as usize);
        }
        self.summary.rows += page.len() as u64;
        let more = self.limit.is_none_or(|limit| self.summary.rows < limit);
        let Some(next) = fetched.next_link.filter(|_| more) else {
            return (page, Next::Done);
        };
        self.empty_in_a_row = if page.is_empty() {
            self.empty_in_a_row + 1
        } else {
            0
        };
        let next = if self.empty_in_a_row > MAX_EMPTY_PAGES_IN_A_ROW {
            Next::Endless(
                "over 100 empty pages in a row link to more (the listing might never end)",
            )
        } else if !self.fetched_urls.insert(as_sent(&next)) {
            Next::Endless(
                "@odata.nextLink names a page already fetched (the listing would never end)",
            )
        } else {
            Next::Fetch(next)
        };
        (page, next)
    }

    /// The page an answer seems to link to, before it is parsed, when it may be asked for
    /// already: a URL on the connection's Exchange host not asked for before, after a page that
    /// had rows (empty pages are cheap to parse, and a run of them may end the listing).
    fn likely_next(&self, exchange: &Url, answer: &Answer) -> Option<Url> {
        if self.empty_in_a_row > 0 {
            return None;
        }
        let url = next_url(exchange, likely_next_link(&answer.body)?).ok()?;
        (!self.fetched_urls.contains(&as_sent(&url))).then_some(url)
    }
}

/// A URL as it is sent: reqwest drops a fragment, so `#1`, `#2`… name one page.
fn as_sent(url: &Url) -> Url {
    let mut sent = url.clone();
    sent.set_fragment(None);
    sent
}

/// How far from either end of an answer its next link is looked for.
const NEXT_LINK_SEARCH_BYTES: usize = 4096;

/// The next link an answer seems to give, found without reading its rows: the annotation
/// `"@odata.nextLink":"<link>"` among the envelope's members before the rows (before the
/// first `[`), else near the end, where Exchange writes it after `value`. It is only a guess:
/// the parsed answer decides. A link written with escapes is not guessed.
fn likely_next_link(body: &[u8]) -> Option<&str> {
    let head_end = body
        .iter()
        .take(NEXT_LINK_SEARCH_BYTES)
        .position(|&byte| byte == b'[')
        .unwrap_or(body.len().min(NEXT_LINK_SEARCH_BYTES));
    let tail_start = body.len().saturating_sub(NEXT_LINK_SEARCH_BYTES);
    link_after_key(&body[..head_end]).or_else(|| link_after_key(&body[tail_start..]))
}

/// The string after the last `"@odata.nextLink":` in `text`, when it has no escapes.
fn link_after_key(text: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"@odata.nextLink\"";
    let key = text.windows(KEY.len()).rposition(|window| window == KEY)?;
    // A quote after a backslash is inside a string, not the start of a key.
    if key > 0 && text[key - 1] == b'\\' {
        return None;
    }
    let value = text[key + KEY.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start()
        .strip_prefix(b"\"")?;
    let link = &value[..value.iter().position(|&byte| byte == b'"')?];
    if link.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(link).ok()
}

/// `-ResultSize N` as a client-side limit; `Unlimited` or absent means none.
fn result_size(cmdlet: &Cmdlet) -> Option<u64> {
    match cmdlet.parameter("ResultSize")? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

struct Request<'a, T> {
    http: &'a reqwest::Client,
    target: &'a Target,
    cmdlet: &'a Cmdlet,
    tokens: &'a T,
    policy: RetryPolicy,
    body: Vec<u8>,
    request_id: Uuid,
    limit: Option<u64>,
}

/// Empty pages in a row that may still link to another: a server may skip over filtered-out
/// rows, but not forever.
const MAX_EMPTY_PAGES_IN_A_ROW: u32 = 100;

/// When to say that exo is still waiting for an answer: after this, then every 30 s.
const FIRST_WAITING_NOTICE: Duration = Duration::from_secs(5);

/// The most room set aside for an answer before its bytes arrive.
const MAX_RESERVED_BYTES: u64 = 16 << 20;

/// The most of an error answer that is read.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// Why one request got no answer to look at.
enum SendError {
    /// The request failed (to build, connect, or read).
    Http(reqwest::Error),
    /// The body grew past the page limit.
    TooLarge,
    /// The answer began and then stalled for this long.
    Idle(Duration),
}

impl From<reqwest::Error> for SendError {
    fn from(error: reqwest::Error) -> Self {
        Self::Http(error)
    }
}

/// A successful answer, not parsed yet.
struct Answer {
    /// Which page it is (1-based).
    page: u64,
    status: StatusCode,
    body: Vec<u8>,
}

/// A parsed answer.
struct Fetched {
    page: Page,
    next_link: Option<Url>,
}

impl<T: TokenSource> Request<'_, T> {
    /// Fetches one page, retrying as the module does.
    async fn fetch(&self, url: Url, page: u64, rows_so_far: u64) -> Result<Answer, InvokeError> {
        let page_size = match self.limit {
            Some(limit) => limit
                .saturating_sub(rows_so_far)
                .clamp(1, u64::from(self.target.page_size)),
            None => u64::from(self.target.page_size),
        };
        let mut token = self.tokens.token(None).await.map_err(InvokeError::Token)?;
        let mut renewed = false;
        let mut reopened = false;
        let mut retries = 0;
        loop {
            let shell = self.shell().and_then(Shell::id);
            let failure = match self.send(&url, &token, page_size).await {
                Ok((status, _, body)) if status.is_success() => {
                    return Ok(Answer { page, status, body });
                }
                Ok((StatusCode::BAD_REQUEST, _, body))
                    if shell.is_some() && !reopened && names_a_lost_shell(&body) =>
                {
                    tracing::info!(target: "exchange", "{}: the server no longer has shell {}; opening another", self.cmdlet.name, shell.unwrap_or_default());
                    if let Some(shell) = self.shell() {
                        shell.set(None);
                    }
                    reopened = true;
                    continue;
                }
                Ok((StatusCode::UNAUTHORIZED, headers, body)) if !renewed => {
                    tracing::info!(target: "exchange", "{}: credentials rejected (401); renewing them once", self.cmdlet.name);
                    let renewal = self
                        .tokens
                        .token(Some(&token))
                        .await
                        .map_err(InvokeError::Token)?;
                    // The same secret again (a password read again from its file) would only
                    // be refused again, and count towards locking the account.
                    if *renewal == *token {
                        return Err(exchange_error(
                            &self.cmdlet.name,
                            StatusCode::UNAUTHORIZED,
                            &headers,
                            &body,
                        ));
                    }
                    token = renewal;
                    renewed = true;
                    continue;
                }
                Ok((status, headers, body)) => {
                    let retryable = matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) || (self.cmdlet.is_idempotent()
                        && matches!(
                            status,
                            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
                        ));
                    let error = exchange_error(&self.cmdlet.name, status, &headers, &body);
                    if !retryable {
                        return Err(error);
                    }
                    Failure {
                        reason: error.to_string(),
                        retry_after: retry_after(&headers),
                    }
                }
                Err(error) => {
                    // A request that never left may always be sent again; one that exo could not
                    // even build (a header value it cannot send) fails the same way every time;
                    // one whose answer stalled may have done its work.
                    let (resendable, reason) = match error {
                        SendError::Http(error) => (
                            !error.is_builder()
                                && (error.is_connect() || self.cmdlet.is_idempotent()),
                            describe_reqwest_error(error),
                        ),
                        SendError::Idle(idle) => (
                            self.cmdlet.is_idempotent(),
                            format!(
                                "the answer stopped coming: nothing for {} s",
                                idle.as_secs_f64()
                            ),
                        ),
                        SendError::TooLarge => {
                            return Err(InvokeError::PageTooLarge {
                                cmdlet: self.cmdlet.name.clone(),
                                page,
                                limit_mib: self.target.max_page_bytes.div_ceil(1 << 20),
                            });
                        }
                    };
                    if !resendable {
                        return Err(InvokeError::Network {
                            cmdlet: self.cmdlet.name.clone(),
                            page,
                            message: reason,
                        });
                    }
                    Failure {
                        reason,
                        retry_after: None,
                    }
                }
            };
            if retries >= self.policy.max_retries {
                return Err(InvokeError::Network {
                    cmdlet: self.cmdlet.name.clone(),
                    page,
                    message: format!(
                        "{} (gave up after {} attempts)",
                        failure.reason,
                        retries + 1
                    ),
                });
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| self.policy.base_delay.saturating_mul(1 << retries.min(16)))
                .min(self.policy.max_delay);
            retries += 1;
            tracing::warn!(
                target: "exchange",
                "{}: {}; retrying page {page} in {:.1} s (retry {retries} of {})",
                self.cmdlet.name,
                failure.reason,
                delay.as_secs_f64(),
                self.policy.max_retries
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send(
        &self,
        url: &Url,
        token: &str,
        page_size: u64,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), SendError> {
        tracing::debug!(target: "exchange", "→ POST {url} ({}, request {})", self.cmdlet.name, self.request_id);
        tracing::trace!(target: "exchange", "→ {}", redacted_parameters(self.cmdlet));
        let started = std::time::Instant::now();
        let request = match &self.target.route {
            Route::InvokeCommand { .. } => self.http.post(url.clone()).bearer_auth(token),
            Route::Legacy { user, shell, .. } => {
                let request = self.http.post(url.clone()).basic_auth(user, Some(token));
                match shell.id() {
                    Some(id) => request.header(SHELL_HEADER, id),
                    None => request,
                }
            }
        };
        let response = request
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-AnchorMailbox", &self.target.anchor_mailbox)
            .header("connection-id", self.target.connection_id.to_string())
            .header("client-request-id", self.request_id.to_string())
            .header("Prefer", format!("odata.maxpagesize={page_size}"))
            .header("X-CmdletName", &self.cmdlet.name)
            .header("X-ClientApplication", &self.target.client_application)
            .header("X-ResponseFormat", "json")
            .header("X-SerializationLevel", "Partial")
            .body(self.body.clone())
            .send();
        let response = self.waiting_for(response, started).await?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(shell) = self.shell()
            && let Some(id) = headers.get(SHELL_HEADER).and_then(|v| v.to_str().ok())
        {
            if is_shell_id(id) {
                shell.set(Some(id.to_owned()));
            } else {
                tracing::warn!(target: "exchange", "ignoring a malformed {SHELL_HEADER} from the server");
            }
        }
        let mut response = response;
        let mut body = Vec::new();
        if status.is_success() {
            let limit = self.target.max_page_bytes;
            match response.content_length() {
                Some(length) if length > limit => return Err(SendError::TooLarge),
                // Room for the whole answer at once, rather than growing (and copying) it;
                // within reason, on the server's word.
                Some(length) => body.reserve_exact(length.min(MAX_RESERVED_BYTES) as usize),
                None => {}
            }
            while let Some(chunk) = self.next_chunk(&mut response).await? {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(SendError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
        } else {
            // An error's message is in its first bytes; the rest is not read.
            while let Some(chunk) = self.next_chunk(&mut response).await? {
                let room = MAX_ERROR_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_ERROR_BYTES {
                    break;
                }
            }
        }
        tracing::debug!(
            target: "exchange",
            "← {status} ({} bytes) in {} ms",
            body.len(),
            started.elapsed().as_millis()
        );
        Ok((status, headers, body))
    }

    /// The legacy shell session, on that route.
    fn shell(&self) -> Option<&Shell> {
        match &self.target.route {
            Route::Legacy { shell, .. } => Some(shell),
            Route::InvokeCommand { .. } => None,
        }
    }

    /// Waits for the answer to begin, saying on stderr (a warning, so always shown) that exo is
    /// still waiting and why, after 5 s and then every 30 s.
    async fn waiting_for(
        &self,
        answer: impl Future<Output = Result<reqwest::Response, reqwest::Error>>,
        started: std::time::Instant,
    ) -> Result<reqwest::Response, SendError> {
        let mut answer = std::pin::pin!(answer);
        let mut notice = FIRST_WAITING_NOTICE.min(self.policy.idle_timeout / 2);
        loop {
            match tokio::time::timeout(notice, &mut answer).await {
                Ok(response) => return Ok(response?),
                Err(_) => {
                    tracing::warn!(
                        target: "exchange",
                        "{}: still waiting for Exchange to answer ({} s; it may take up to 15 minutes \
                         on a large or slow cmdlet; Ctrl-C stops)",
                        self.cmdlet.name,
                        started.elapsed().as_secs()
                    );
                    notice = Duration::from_secs(30);
                }
            }
        }
    }

    /// The next piece of an answer that has begun, or an error when none comes within the idle
    /// timeout.
    async fn next_chunk(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>, SendError> {
        match tokio::time::timeout(self.policy.idle_timeout, response.chunk()).await {
            Ok(chunk) => Ok(chunk?),
            Err(_) => Err(SendError::Idle(self.policy.idle_timeout)),
        }
    }

    /// Parses an answer on a thread of tokio's blocking pool, so that the I/O thread goes on
    /// meanwhile (with the next page).
    fn parse_elsewhere(
        &self,
        answer: Answer,
    ) -> impl Future<Output = Result<Fetched, InvokeError>> + use<T> {
        let (cmdlet, page) = (self.cmdlet.name.clone(), answer.page);
        let parsing = {
            let (cmdlet, exchange) = (cmdlet.clone(), self.target.exchange.clone());
            tokio::task::spawn_blocking(move || parse(&cmdlet, &exchange, answer))
        };
        async move {
            match parsing.await {
                Ok(parsed) => parsed,
                Err(failed) => match failed.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    // Only when the runtime shuts down.
                    Err(_) => Err(InvokeError::Network {
                        cmdlet,
                        page,
                        message: "stopped while the answer was parsed".to_owned(),
                    }),
                },
            }
        }
    }
}

/// Parses an answer: its rows, where they are in its text, its next link and annotations.
fn parse(cmdlet: &str, exchange: &Url, answer: Answer) -> Result<Fetched, InvokeError> {
    let Answer { page, status, body } = answer;
    let malformed = |reason: String| InvokeError::Malformed {
        cmdlet: cmdlet.to_owned(),
        page,
        reason,
    };
    // Only 204 No Content may be empty; an empty 200 is a broken answer, not zero rows.
    if body.iter().all(u8::is_ascii_whitespace) {
        if status != StatusCode::NO_CONTENT {
            return Err(malformed(format!(
                "the answer is empty (HTTP {})",
                status.as_u16()
            )));
        }
        return Ok(Fetched {
            page: Page::default(),
            next_link: None,
        });
    }
    let text = String::from_utf8(body).map_err(|_| malformed("it is not UTF-8".to_owned()))?;
    // One pass over the page: each row stays where it is in the answer's text.
    let envelope: Envelope<'_> =
        serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    let rows = envelope.value.as_ref().map(|rows| {
        rows.iter()
            .map(|row| {
                let start = row.get().as_ptr() as usize - text.as_ptr() as usize;
                start..start + row.get().len()
            })
            .collect::<Vec<_>>()
    });
    let next_link = envelope
        .next_link
        .as_deref()
        .map(|link| next_url(exchange, link))
        .transpose()
        .map_err(malformed)?;
    let (warnings, errors) = (texts(envelope.warnings), texts(envelope.errors));
    let (text, rows) = match rows {
        Some(rows) => (text, rows),
        // A single object (e.g. what New-Mailbox returns): the body minus its annotations.
        None => {
            let mut object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
            object.retain(|key, _| !key.starts_with("@odata.") && !key.starts_with("@adminapi."));
            if object.is_empty() {
                (String::new(), Vec::new())
            } else {
                let row = serde_json::Value::Object(object).to_string();
                let whole = 0..row.len();
                (row, vec![whole])
            }
        }
    };
    let page = Page {
        text,
        rows,
        warnings,
        errors,
    };
    Ok(Fetched { page, next_link })
}

/// The cmdlet's parameters for a log line, with values of secret-looking parameters hidden.
/// A parameter or hashtable key is hidden when it was given as a secret, or when its name
/// sounds like one, at any depth (`-Settings @{Auth=@{Password=…}}`).
fn redacted_parameters(cmdlet: &Cmdlet) -> String {
    fn redact(value: &mut serde_json::Value, is_secret: &dyn Fn(&str) -> bool) {
        match value {
            serde_json::Value::Object(map) => {
                for (name, value) in map.iter_mut() {
                    if is_secret(name) {
                        *value = serde_json::Value::String("[redacted]".into());
                    } else {
                        redact(value, is_secret);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    redact(item, is_secret);
                }
            }
            _ => {}
        }
    }
    let is_secret = |name: &str| {
        let lower = name.to_ascii_lowercase();
        cmdlet.secrets.iter().any(|s| s.eq_ignore_ascii_case(name))
            || [
                "password",
                "pwd",
                "secret",
                "token",
                "key",
                "credential",
                "connectionstring",
            ]
            .iter()
            .any(|word| lower.contains(word))
    };
    let mut parameters = serde_json::Value::Object(cmdlet.parameters.clone());
    redact(&mut parameters, &is_secret);
    format!("{} {parameters}", cmdlet.name)
}

/// `@odata.nextLink` as a URL on the connection's own Exchange host: the bearer token goes with
/// it, so a link to anywhere else (another host, port or scheme) is refused.
fn next_url(exchange: &Url, link: &str) -> Result<Url, String> {
    let url = exchange
        .join(link)
        .map_err(|e| format!("bad @odata.nextLink ({e})"))?;
    let same_origin = url.scheme() == exchange.scheme()
        && url.host_str() == exchange.host_str()
        && url.port_or_known_default() == exchange.port_or_known_default();
    if same_origin {
        Ok(url)
    } else {
        Err(format!(
            "@odata.nextLink points to {}, not to {}; exo does not send the token there",
            url.origin().ascii_serialization(),
            exchange.origin().ascii_serialization()
        ))
    }
}

/// Annotation values as text: strings as they are, anything else as JSON.
fn texts(values: Vec<serde_json::Value>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect()
}

struct Failure {
    reason: String,
    retry_after: Option<Duration>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    value: Option<Vec<&'a RawValue>>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@adminapi.warnings", default)]
    warnings: Vec<serde_json::Value>,
    #[serde(rename = "@adminapi.errors", default)]
    errors: Vec<serde_json::Value>,
}

/// `Retry-After` in seconds (an HTTP date is treated as "soon": one second).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    Some(
        value
            .parse::<u64>()
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1)),
    )
}

/// Exchange's error, from its body (`{"error":{"code","message","details":[…]}}`), its
/// `x-ExceptionType` header, or the status alone.
fn exchange_error(
    cmdlet: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> InvokeError {
    #[derive(Deserialize)]
    struct ErrorEnvelope {
        error: ErrorBody,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        code: Option<String>,
        message: Option<String>,
        #[serde(default)]
        details: Vec<ErrorDetail>,
    }
    #[derive(Deserialize)]
    struct ErrorDetail {
        code: Option<String>,
        message: Option<String>,
    }
    let exception = headers
        .get("x-ExceptionType")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let detail = parsed.as_ref().and_then(|e| e.details.first());
    // details[0].message is often "<ExceptionCode>|<ExceptionType>|<message>".
    let message = detail
        .and_then(|d| d.message.as_deref())
        .map(|m| m.rsplit('|').next().unwrap_or(m).trim().to_owned())
        .or_else(|| parsed.as_ref().and_then(|e| e.message.clone()))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| match status {
            StatusCode::FORBIDDEN => format!(
                "access denied: the account has no Exchange role that allows {cmdlet}, or {cmdlet} does not exist"
            ),
            StatusCode::UNAUTHORIZED => "Exchange rejected the token".to_owned(),
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() || text.len() > 300 {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text.to_owned()
                }
            }
        });
    let code = detail
        .and_then(|d| d.code.clone())
        .or_else(|| parsed.as_ref().and_then(|e| e.code.clone()))
        .or(exception);
    InvokeError::Exchange {
        cmdlet: cmdlet.to_owned(),
        status: status.as_u16(),
        code,
        message,
    }
}

/// Whether an error answer says the shell it was sent to is gone: the WinRM message "The
/// request for the Windows Remote Shell with ShellId … failed because the shell was not found
/// on the server".
fn names_a_lost_shell(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("shell was not found")
}

/// Closes a legacy shell session: `DELETE` on the endpoint with its id, authenticated as
/// `target` with `secret`. A shell the server no longer has counts as closed.
pub async fn close_shell(
    http: &reqwest::Client,
    target: &Target,
    secret: &str,
    id: &str,
) -> Result<(), InvokeError> {
    let cmdlet = "closing the remote PowerShell shell";
    let network = |message| InvokeError::Network {
        cmdlet: cmdlet.to_owned(),
        page: 1,
        message,
    };
    let Route::Legacy { url, user, .. } = &target.route else {
        return Ok(());
    };
    tracing::debug!(target: "exchange", "→ DELETE {url} (shell {id})");
    let response = http
        .delete(url.clone())
        .basic_auth(user, Some(secret))
        .header(SHELL_HEADER, id)
        .header("connection-id", target.connection_id.to_string())
        .send()
        .await
        .map_err(|e| network(describe_reqwest_error(e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| network(describe_reqwest_error(e)))?;
    tracing::debug!(target: "exchange", "← {status} to DELETE");
    if status.is_success() || (status == StatusCode::BAD_REQUEST && names_a_lost_shell(&body)) {
        Ok(())
    } else {
        Err(exchange_error(cmdlet, status, &headers, &body))
    }
}

/// A reqwest error with its causes, without its URL (which may carry secrets in its query).
pub fn describe_reqwest_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "the request timed out".to_owned();
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
