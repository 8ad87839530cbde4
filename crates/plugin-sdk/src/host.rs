//! Safe access to the host's services, and forwarding of the `log` crate to the host.
//!
//! While the host is inside one of the plugin's entry points, the current thread knows the
//! host (see [`Host::enter`]); log records emitted on that thread go to the host's logger.
//! Records from threads the plugin spawns itself are dropped: pass them the [`Host`] instead.

use std::cell::Cell;
use std::ptr::NonNull;
use std::time::Duration;

use abi_stable::std_types::{RResult, RString, RVec};
use plugin_abi::{self as abi, HostRef, LogLevel};
use zeroize::Zeroizing;

use crate::Error;

/// The host's services, lent to the plugin for one call.
pub struct Host<'a> {
    raw: HostRef<'a>,
}

impl<'a> Host<'a> {
    pub(crate) fn new(raw: HostRef<'a>) -> Self {
        Self { raw }
    }

    /// Makes `self` the current thread's log target while `f` runs.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        // Safety of the later dereference: the pointer is only read on this thread, and the
        // guard below clears it before `self` can go out of scope, even when `f` unwinds.
        let pointer = NonNull::from(&self.raw).cast::<HostRef<'static>>();
        let previous = CURRENT_HOST.with(|current| current.replace(Some(pointer)));
        let _restore = RestoreOnDrop(previous);
        f()
    }

    /// Sends an HTTP request through the host (proxy, TLS, timeouts and redaction are the
    /// host's). Redirects are returned, not followed.
    pub fn http(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, Error> {
        self.send(request, &HttpOptions::default())
    }

    /// Sends an HTTP request with per-request `options` (a short timeout, no proxy, a pinned
    /// server certificate).
    pub fn send(
        &self,
        request: http::Request<Vec<u8>>,
        options: &HttpOptions,
    ) -> Result<http::Response<Vec<u8>>, Error> {
        let (parts, body) = request.into_parts();
        let raw = abi::HttpRequest {
            method: parts.method.as_str().into(),
            url: parts.uri.to_string().into(),
            headers: headers_to_abi(&parts.headers),
            body: body.into(),
            timeout_ms: options.timeout.map_or(0, |t| {
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
            no_proxy: options.no_proxy,
            pinned_thumbprint: options.pinned_thumbprint.as_deref().unwrap_or("").into(),
        };
        let response = into_result(self.raw.http(raw))?;
        let mut builder = http::Response::builder().status(response.status);
        for header in response.headers.iter() {
            builder = builder.header(header.name.as_str(), header.value.as_str());
        }
        builder
            .body(response.body.into_vec())
            .map_err(|e| Error::network(format!("the host returned a malformed response: {e}")))
    }

    /// Waits `duration`, or returns [`crate::ErrorKind::Cancelled`] as soon as the user cancels.
    pub fn sleep(&self, duration: Duration) -> Result<(), Error> {
        let milliseconds = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        into_result(self.raw.sleep(milliseconds))
    }

    /// Starts the host's loopback listener for one browser redirect; see [`RedirectListener`].
    pub fn listen_for_redirect(&self) -> Result<RedirectListener<'_, 'a>, Error> {
        let redirect_uri = into_result(self.raw.listen_for_redirect())?.into_string();
        Ok(RedirectListener {
            host: self,
            redirect_uri,
        })
    }

    /// Asks the user for a line of text.
    pub fn prompt_text(&self, prompt: &str) -> Result<String, Error> {
        into_result(self.raw.prompt_text(prompt.into())).map(RString::into_string)
    }

    /// Asks the user for a secret; it is zeroized when dropped.
    pub fn prompt_secret(&self, prompt: &str) -> Result<Zeroizing<String>, Error> {
        into_result(self.raw.prompt_secret(prompt.into()))
            .map(|secret| Zeroizing::new(secret.into_string()))
    }

    /// Opens `url` in the user's browser.
    pub fn open_browser(&self, url: &str) -> Result<(), Error> {
        into_result(self.raw.open_browser(url.into()))
    }

    /// Shows `message` to the user.
    pub fn show_message(&self, message: &str) {
        self.raw.show_message(message.into());
    }

    /// A host service added after ABI 1.0 (see `plugin_abi::HostServices::call`); check
    /// [`crate::Request::host_has`] first.
    pub fn call(&self, service: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        into_result(self.raw.call(service.into(), payload.into())).map(RVec::into_vec)
    }

    /// Whether the user asked to stop; poll it during long waits.
    pub fn is_cancelled(&self) -> bool {
        self.raw.is_cancelled()
    }

    /// Logs through the host.
    pub fn log(&self, level: log::Level, message: &str) {
        self.raw
            .log(abi_level(level), "plugin".into(), message.into());
    }

    /// An `oauth2` HTTP client that sends through this host.
    pub fn http_client(&self) -> crate::HostHttpClient<'_, 'a> {
        crate::HostHttpClient::new(self, HttpOptions::default())
    }
}

/// Per-request HTTP settings; the default is the host's.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// The longest the whole request may take, connecting included.
    pub timeout: Option<Duration>,
    /// Connect directly, never through a proxy (loopback and link-local endpoints).
    pub no_proxy: bool,
    /// Trust exactly the server certificate with this hex SHA-1 or SHA-256 thumbprint.
    pub pinned_thumbprint: Option<String>,
}

/// The host's loopback listener for one browser redirect (authorization code flow).
///
/// Put [`RedirectListener::redirect_uri`] in the authorization request, open the browser, then
/// [`RedirectListener::wait`] for the redirect that carries your `state`.
pub struct RedirectListener<'h, 'a> {
    host: &'h Host<'a>,
    redirect_uri: String,
}

impl RedirectListener<'_, '_> {
    /// `http://127.0.0.1:<port>/`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits at most `timeout` for the redirect whose `state` matches, and returns its query
    /// parameters. A redirect that carries an OAuth `error` becomes an [`Error`] (see
    /// [`crate::idp`]); the authorization code itself is zeroized when dropped.
    pub fn wait(self, state: &str, timeout: Duration) -> Result<RedirectQuery, Error> {
        let wait = abi::RedirectWait {
            redirect_uri: self.redirect_uri.as_str().into(),
            state: state.into(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            extensions: RString::new(),
        };
        let query =
            Zeroizing::new(into_result(self.host.raw.wait_for_redirect(wait))?.into_string());
        let query = RedirectQuery::parse(&query);
        match query.get("error") {
            Some(error) => Err(crate::idp::redirect_error(
                error,
                query.get("error_description").unwrap_or_default(),
            )),
            None => Ok(query),
        }
    }
}

/// The query parameters of a redirect; values are zeroized when dropped.
pub struct RedirectQuery(Vec<(String, Zeroizing<String>)>);

impl RedirectQuery {
    fn parse(query: &str) -> Self {
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), Zeroizing::new(value.into_owned())))
                .collect(),
        )
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}

impl std::fmt::Debug for RedirectQuery {
    /// Names only: the code is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

fn into_result<T>(result: RResult<T, abi::PluginError>) -> Result<T, Error> {
    result.into_result().map_err(Error::from)
}

fn headers_to_abi(headers: &http::HeaderMap) -> RVec<abi::HttpHeader> {
    headers
        .iter()
        .map(|(name, value)| abi::HttpHeader {
            name: name.as_str().into(),
            value: String::from_utf8_lossy(value.as_bytes()).as_ref().into(),
        })
        .collect()
}

fn abi_level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::ERROR,
        log::Level::Warn => LogLevel::WARN,
        log::Level::Info => LogLevel::INFO,
        log::Level::Debug => LogLevel::DEBUG,
        log::Level::Trace => LogLevel::TRACE,
    }
}

thread_local! {
    static CURRENT_HOST: Cell<Option<NonNull<HostRef<'static>>>> = const { Cell::new(None) };
}

struct RestoreOnDrop(Option<NonNull<HostRef<'static>>>);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        CURRENT_HOST.with(|current| current.set(self.0));
    }
}

/// The `log` implementation installed in every plugin: forwards to the current host.
pub(crate) struct ForwardToHost;

impl log::Log for ForwardToHost {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        CURRENT_HOST.with(|current| current.get().is_some())
    }

    fn log(&self, record: &log::Record<'_>) {
        CURRENT_HOST.with(|current| {
            if let Some(host) = current.get() {
                // SAFETY: set by `Host::enter` on this thread and cleared before the host
                // reference it points to goes out of scope.
                let host = unsafe { host.as_ref() };
                let message = record.args().to_string();
                host.log(
                    abi_level(record.level()),
                    record.target().into(),
                    message.as_str().into(),
                );
            }
        });
    }

    fn flush(&self) {}
}
