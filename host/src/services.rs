//! The host services a plugin calls back into: HTTP, prompts, browser, messages, logging and
//! cancellation.
//!
//! Plugin calls run on a blocking thread; HTTP requests are sent on the host's tokio runtime
//! through the process's shared client (see [`crate::http`]). Prompts read the controlling
//! terminal, never stdin, which may carry a piped secret.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use plugin_abi::{self as abi, ErrorKind, HostServices, LogLevel, PluginError};

use crate::http::{redact_body, redact_header, redact_url};

/// The services lent to one plugin call.
pub struct Services {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    method_id: String,
    interactive: bool,
    cancelled: Arc<AtomicBool>,
}

impl Services {
    /// Services for the plugin of `method_id`; `interactive` allows prompts and a browser.
    pub fn new(
        http: reqwest::Client,
        runtime: tokio::runtime::Handle,
        method_id: &str,
        interactive: bool,
        cancelled: Arc<AtomicBool>,
    ) -> Self {
        Self {
            http,
            runtime,
            method_id: method_id.to_owned(),
            interactive,
            cancelled,
        }
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
        let logged_url = redact_url(url.as_str());
        let content_type = header(&request.headers, "content-type");
        tracing::debug!(target: "exo::http", plugin = %self.method_id, "→ {method} {logged_url}");
        for h in request.headers.iter() {
            tracing::trace!(target: "exo::http", "→ {}: {}", h.name, redact_header(&h.name, &h.value));
        }
        tracing::trace!(target: "exo::http", "→ {}", redact_body(content_type, &request.body));

        let mut builder = self.http.request(method, url);
        for h in request.headers.iter() {
            builder = builder.header(h.name.as_str(), h.value.as_str());
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
        let body = response.bytes().await.map_err(|e| {
            error(
                ErrorKind::NETWORK,
                format!(
                    "reading the response of {logged_url} failed: {}",
                    exchange::invoke::describe_reqwest_error(e)
                ),
            )
        })?;
        tracing::debug!(
            target: "exo::http",
            "← {status} from {logged_url} in {} ms",
            started.elapsed().as_millis()
        );
        tracing::trace!(target: "exo::http", "← {}", redact_body(header(&headers, "content-type"), &body));
        Ok(abi::HttpResponse {
            status,
            headers,
            body: body.to_vec().into(),
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

impl HostServices for Services {
    fn http(&self, request: abi::HttpRequest) -> RResult<abi::HttpResponse, PluginError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return RResult::RErr(error(ErrorKind::CANCELLED, "cancelled".into()));
        }
        self.runtime.block_on(self.send(request)).into()
    }

    fn prompt_text(&self, prompt: RStr<'_>) -> RResult<RString, PluginError> {
        self.require_interaction("an answer")
            .and_then(|()| read_terminal_line(prompt.as_str()))
            .into()
    }

    fn prompt_secret(&self, prompt: RStr<'_>) -> RResult<RString, PluginError> {
        self.require_interaction("a secret")
            .and_then(|()| {
                rpassword::prompt_password(prompt.as_str())
                    .map(RString::from)
                    .map_err(|e| {
                        error(
                            ErrorKind::INTERACTION_REQUIRED,
                            format!("cannot read from the terminal: {e}"),
                        )
                    })
            })
            .into()
    }

    fn open_browser(&self, url: RStr<'_>) -> RResult<(), PluginError> {
        self.require_interaction("a browser")
            .and_then(|()| open_in_browser(url.as_str()))
            .into()
    }

    fn show_message(&self, message: RStr<'_>) {
        eprintln!("{message}");
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let (plugin, target) = (self.method_id.as_str(), target.as_str());
        match level {
            LogLevel::ERROR => tracing::error!(target: "exo::plugin", plugin, target, "{message}"),
            LogLevel::WARN => tracing::warn!(target: "exo::plugin", plugin, target, "{message}"),
            LogLevel::INFO => tracing::info!(target: "exo::plugin", plugin, target, "{message}"),
            LogLevel::TRACE => tracing::trace!(target: "exo::plugin", plugin, target, "{message}"),
            _ => tracing::debug!(target: "exo::plugin", plugin, target, "{message}"),
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn call(&self, service: RStr<'_>, _payload: RSlice<'_, u8>) -> RResult<RVec<u8>, PluginError> {
        RResult::RErr(error(
            ErrorKind::UNSUPPORTED,
            format!("this exo has no host service '{service}'"),
        ))
    }
}

/// TLS everywhere except loopback and the link-local managed-identity endpoint
/// (`169.254.169.254`), which are plain HTTP by design.
fn ensure_transport_allowed(url: &url::Url) -> Result<(), PluginError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let local = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local(),
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
