//! The host services a plugin calls back into: HTTP, prompts, browser, messages, logging,
//! cancellation, cancellable sleep and the loopback redirect listener.
//!
//! Plugin calls run on a blocking thread; HTTP requests are sent on the host's tokio runtime
//! through the process's shared clients (see [`crate::http`]), one per trust setting and
//! transport (no proxy, a pinned certificate). Prompts read the controlling terminal, never
//! stdin, which may carry a piped secret.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use plugin_abi::{self as abi, ErrorKind, HostServices, LogLevel, PluginError};
use session::environment::Trust;

use crate::http::{Clients, Transport, redact_body, redact_header, redact_url};
use crate::redirect::{self, RedirectError};

/// The services lent to one plugin call.
pub struct Services {
    clients: Clients,
    trust: Trust,
    runtime: tokio::runtime::Handle,
    method_id: String,
    interactive: bool,
    cancelled: Arc<AtomicBool>,
    listener: Mutex<Option<redirect::Listener>>,
}

impl Services {
    /// Services for the plugin of `method_id`, sending HTTP through `clients` with `trust`;
    /// `interactive` allows prompts and a browser.
    pub fn new(
        clients: Clients,
        trust: Trust,
        method_id: &str,
        interactive: bool,
        cancelled: Arc<AtomicBool>,
    ) -> Self {
        Self {
            clients,
            trust,
            runtime: tokio::runtime::Handle::current(),
            method_id: method_id.to_owned(),
            interactive,
            cancelled,
            listener: Mutex::new(None),
        }
    }

    /// How to reach `url`: plain http (loopback, the managed-identity address) always goes
    /// direct, so a proxy never sees an unencrypted token.
    fn transport(request: &abi::HttpRequest, url: &url::Url) -> Result<Transport, PluginError> {
        let pinned = if request.pinned_thumbprint.is_empty() {
            None
        } else {
            Some(parse_thumbprint(&request.pinned_thumbprint)?)
        };
        Ok(Transport {
            no_proxy: request.no_proxy || url.scheme() == "http",
            pinned,
        })
    }

    async fn send(&self, request: abi::HttpRequest) -> Result<abi::HttpResponse, PluginError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            error(
                ErrorKind::INVALID_INPUT,
                format!("invalid HTTP method {}", request.method),
            )
        })?;
        let url = url::Url::parse(&request.url).map_err(|e| {
            error(
                ErrorKind::INVALID_INPUT,
                format!("invalid URL {}: {e}", redact_url(&request.url)),
            )
        })?;
        ensure_transport_allowed(&url)?;
        let transport = Self::transport(&request, &url)?;
        let http = self
            .clients
            .get_for(&self.trust, &transport)
            .map_err(|e| error(ErrorKind::NETWORK, format!("{e:#}")))?;
        let logged_url = redact_url(url.as_str());
        let content_type = header(&request.headers, "content-type");
        tracing::debug!(target: "exo::http", plugin = %self.method_id, "→ {method} {logged_url}");
        for h in request.headers.iter() {
            tracing::trace!(target: "exo::http", "→ {}: {}", h.name, redact_header(&h.name, &h.value));
        }
        tracing::trace!(target: "exo::http", "→ {}", redact_body(content_type, &request.body));

        let mut builder = http.request(method, url);
        for h in request.headers.iter() {
            builder = builder.header(h.name.as_str(), h.value.as_str());
        }
        if request.timeout_ms > 0 {
            builder = builder.timeout(Duration::from_millis(request.timeout_ms));
        }
        let started = Instant::now();
        let response = builder
            .body(request.body.into_vec())
            .send()
            .await
            .map_err(|e| {
                error(
                    ErrorKind::NETWORK,
                    format!(
                        "request to {logged_url} failed: {}",
                        exchange::invoke::describe_reqwest_error(e)
                    ),
                )
            })?;
        let status = response.status().as_u16();
        let headers: RVec<abi::HttpHeader> = response
            .headers()
            .iter()
            .map(|(name, value)| abi::HttpHeader {
                name: name.as_str().into(),
                value: String::from_utf8_lossy(value.as_bytes()).as_ref().into(),
            })
            .collect();
        let too_large = || {
            error(
                ErrorKind::NETWORK,
                format!(
                    "the response of {logged_url} is larger than {} MiB; exo refuses it",
                    MAX_RESPONSE_BYTES / (1024 * 1024)
                ),
            )
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            error(
                ErrorKind::NETWORK,
                format!(
                    "reading the response of {logged_url} failed: {}",
                    exchange::invoke::describe_reqwest_error(e)
                ),
            )
        })? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            target: "exo::http",
            "← {status} from {logged_url} in {} ms",
            started.elapsed().as_millis()
        );
        tracing::trace!(target: "exo::http", "← {}", redact_body(header(&headers, "content-type"), &body));
        Ok(abi::HttpResponse {
            status,
            headers,
            body: body.into(),
        })
    }

    fn require_interaction(&self, what: &str) -> Result<(), PluginError> {
        if self.interactive {
            Ok(())
        } else {
            Err(error(
                ErrorKind::INTERACTION_REQUIRED,
                format!(
                    "the {} login needs {what}, but exo is running without a terminal",
                    self.method_id
                ),
            ))
        }
    }
}

impl Services {
    /// Runs one host service for the plugin. A panic here would cross the FFI boundary and
    /// abort exo (for example `block_on` while the runtime shuts down after a Ctrl-C), so it is
    /// caught and becomes an error: `CANCELLED` once the user asked to stop.
    fn serve<T>(
        &self,
        service: &str,
        work: impl FnOnce() -> Result<T, PluginError>,
    ) -> RResult<T, PluginError> {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        match outcome {
            Ok(result) => result.into(),
            Err(_) if self.cancelled.load(Ordering::Relaxed) => RResult::RErr(cancelled()),
            Err(_) => RResult::RErr(error(
                ErrorKind::INTERNAL,
                format!("exo's {service} service failed unexpectedly"),
            )),
        }
    }

    /// Fails with `CANCELLED` once the user asked to stop; waits are not started then.
    fn not_cancelled(&self) -> Result<(), PluginError> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(cancelled())
        } else {
            Ok(())
        }
    }

    /// Runs `future` on the host's runtime until it ends or the user cancels.
    fn until_done_or_cancelled<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, PluginError>>,
    ) -> Result<T, PluginError> {
        self.not_cancelled()?;
        let cancelled = &self.cancelled;
        self.runtime.block_on(async {
            tokio::select! {
                result = future => result,
                () = until_cancelled(cancelled) => Err(self::cancelled()),
            }
        })
    }
}

impl HostServices for Services {
    fn http(&self, request: abi::HttpRequest) -> RResult<abi::HttpResponse, PluginError> {
        self.serve("HTTP", || self.until_done_or_cancelled(self.send(request)))
    }

    fn prompt_text(&self, prompt: RStr<'_>) -> RResult<RString, PluginError> {
        self.serve("prompt", || {
            self.require_interaction("an answer")?;
            read_terminal_line(&crate::output::untrusted(prompt.as_str(), false))
        })
    }

    fn prompt_secret(&self, prompt: RStr<'_>) -> RResult<RString, PluginError> {
        self.serve("prompt", || {
            self.require_interaction("a secret")?;
            rpassword::prompt_password(crate::output::untrusted(prompt.as_str(), false))
                .map(RString::from)
                .map_err(|e| {
                    error(
                        ErrorKind::INTERACTION_REQUIRED,
                        format!("cannot read from the terminal: {e}"),
                    )
                })
        })
    }

    fn open_browser(&self, url: RStr<'_>) -> RResult<(), PluginError> {
        self.serve("browser", || {
            self.require_interaction("a browser")?;
            open_in_browser(url.as_str())
        })
    }

    fn show_message(&self, message: RStr<'_>) {
        let _ = self.serve("message", || {
            crate::output::tell(format_args!(
                "{}",
                crate::output::untrusted(message.as_str(), true)
            ));
            Ok(())
        });
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let _ = self.serve("log", || {
            let (plugin, target) = (self.method_id.as_str(), target.as_str());
            let message = crate::output::untrusted(message.as_str(), false);
            match level {
                LogLevel::ERROR => {
                    tracing::error!(target: "exo::plugin", plugin, target, "{message}")
                }
                LogLevel::WARN => {
                    tracing::warn!(target: "exo::plugin", plugin, target, "{message}")
                }
                LogLevel::INFO => {
                    tracing::info!(target: "exo::plugin", plugin, target, "{message}")
                }
                LogLevel::TRACE => {
                    tracing::trace!(target: "exo::plugin", plugin, target, "{message}")
                }
                _ => tracing::debug!(target: "exo::plugin", plugin, target, "{message}"),
            }
            Ok(())
        });
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn sleep(&self, milliseconds: u64) -> RResult<(), PluginError> {
        self.serve("sleep", || {
            self.until_done_or_cancelled(async {
                tokio::time::sleep(Duration::from_millis(milliseconds)).await;
                Ok(())
            })
        })
    }

    fn listen_for_redirect(&self) -> RResult<RString, PluginError> {
        // Not gated on interaction: the listener is harmless on its own, and opening the
        // browser (which is gated) is the plugin's next step.
        self.serve("redirect listener", || {
            self.not_cancelled()?;
            let listener = self
                .runtime
                .block_on(redirect::Listener::bind())
                .map_err(|e| error(ErrorKind::NETWORK, e.to_string()))?;
            let uri = RString::from(listener.redirect_uri.as_str());
            tracing::debug!(target: "exo::redirect", "listening for the sign-in redirect on {uri}");
            *self.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(listener);
            Ok(uri)
        })
    }

    fn wait_for_redirect(&self, wait: abi::RedirectWait) -> RResult<RString, PluginError> {
        self.serve("redirect listener", || {
            if wait.state.chars().count() < MIN_STATE_CHARS {
                return Err(error(
                    ErrorKind::INVALID_INPUT,
                    format!(
                        "wait_for_redirect: the state must be at least {MIN_STATE_CHARS} \
                         characters, so that it cannot be guessed"
                    ),
                ));
            }
            let listener = {
                let mut slot = self.listener.lock().unwrap_or_else(|p| p.into_inner());
                match slot.take() {
                    Some(listener) if listener.redirect_uri == wait.redirect_uri.as_str() => {
                        listener
                    }
                    other => {
                        *slot = other;
                        return Err(error(
                            ErrorKind::INVALID_INPUT,
                            "wait_for_redirect: no listener for that redirect URI; call \
                             listen_for_redirect first"
                                .into(),
                        ));
                    }
                }
            };
            self.not_cancelled()?;
            let timeout = Duration::from_millis(wait.timeout_ms);
            self.runtime
                .block_on(listener.wait(&wait.state, timeout, &self.cancelled))
                .map(RString::from)
                .map_err(|e| match e {
                    RedirectError::Cancelled => cancelled(),
                    other => error(ErrorKind::NETWORK, other.to_string()),
                })
        })
    }

    fn call(&self, service: RStr<'_>, _payload: RSlice<'_, u8>) -> RResult<RVec<u8>, PluginError> {
        RResult::RErr(error(
            ErrorKind::UNSUPPORTED,
            format!(
                "this exo has no host service '{}'",
                crate::output::untrusted(service.as_str(), false)
            ),
        ))
    }
}

/// The largest response a plugin gets (discovery documents, key sets and token responses are
/// a few KiB); a larger one is refused before it fills memory.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The shortest `state` the redirect listener accepts to wait for.
const MIN_STATE_CHARS: usize = 16;

/// The Azure instance metadata service (IMDS), the one non-loopback plain-http endpoint.
const MANAGED_IDENTITY_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);

/// TLS everywhere except loopback and the link-local managed-identity endpoint
/// (`169.254.169.254`), which are plain HTTP by design.
fn ensure_transport_allowed(url: &url::Url) -> Result<(), PluginError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let local = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip == MANAGED_IDENTITY_ADDRESS,
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if local {
                Ok(())
            } else {
                Err(error(
                    ErrorKind::INVALID_INPUT,
                    format!(
                        "refusing plain http to {}: only https is allowed off this machine",
                        redact_url(url.as_str())
                    ),
                ))
            }
        }
        other => Err(error(
            ErrorKind::INVALID_INPUT,
            format!("unsupported URL scheme {other}"),
        )),
    }
}

fn header<'a>(headers: &'a RVec<abi::HttpHeader>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn read_terminal_line(prompt: &str) -> Result<RString, PluginError> {
    ask(prompt).map(RString::from).map_err(|e| {
        error(
            ErrorKind::INTERACTION_REQUIRED,
            format!("cannot read from the terminal: {e}"),
        )
    })
}

/// Asks `prompt` on the controlling terminal and returns the line typed.
pub fn ask(prompt: &str) -> std::io::Result<String> {
    let mut terminal = open_terminal()?;
    terminal.write_all(prompt.as_bytes())?;
    terminal.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(terminal).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(unix)]
fn open_terminal() -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
}

#[cfg(windows)]
fn open_terminal() -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("CONIN$")
}

/// Whether a person can answer prompts: a controlling terminal exists.
pub fn terminal_available() -> bool {
    std::io::stderr().is_terminal() && open_terminal().is_ok()
}

fn open_in_browser(url: &str) -> Result<(), PluginError> {
    let command = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let mut process = match command {
        Some(browser) => std::process::Command::new(browser),
        None if cfg!(target_os = "macos") => std::process::Command::new("open"),
        None if cfg!(windows) => {
            let mut c = std::process::Command::new("rundll32");
            c.arg("url.dll,FileProtocolHandler");
            c
        }
        None => std::process::Command::new("xdg-open"),
    };
    process
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| {
            error(
                ErrorKind::UNSUPPORTED,
                format!("cannot open a browser ({e}); set BROWSER or open the URL yourself"),
            )
        })
}

/// Resolves once `cancelled` is set (polled: the flag is set by the Ctrl-C handler).
async fn until_cancelled(cancelled: &AtomicBool) {
    while !cancelled.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cancelled() -> PluginError {
    error(ErrorKind::CANCELLED, "cancelled".into())
}

/// A hex SHA-1 (40 digits) or SHA-256 (64 digits) thumbprint; case, `:` and spaces ignored.
fn parse_thumbprint(text: &str) -> Result<Vec<u8>, PluginError> {
    let digits: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes: Option<Vec<u8>> = digits
        .len()
        .is_multiple_of(2)
        .then(|| {
            (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    match bytes {
        Some(bytes) if bytes.len() == 20 || bytes.len() == 32 => Ok(bytes),
        _ => Err(error(
            ErrorKind::INVALID_INPUT,
            "a pinned thumbprint must be a hex SHA-1 (40 digits) or SHA-256 (64 digits)".into(),
        )),
    }
}

fn error(kind: ErrorKind, message: String) -> PluginError {
    PluginError {
        kind,
        code: RString::new(),
        message: message.into(),
        extensions: RString::new(),
    }
}

#[cfg(test)]
mod tests;
