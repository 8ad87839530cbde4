//! The loopback listener that captures one browser redirect (authorization code flow).
//!
//! It binds `127.0.0.1` on an ephemeral port, never another address: only this machine can
//! reach it. It serves HTTP/1.1 with hyper, one request per connection, and accepts exactly one
//! redirect: a `GET` of its path whose `state` equals the one the plugin expects. Anything else
//! (another path, no state, a wrong state, a second redirect) gets HTTP 400 and is ignored, so a
//! page that guesses the port cannot end the sign-in. The browser is answered with a short page;
//! the text of an `error_description` is HTML-escaped.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How many connections the listener serves at once.
const MAX_CONNECTIONS: usize = 16;

/// A bound listener, waiting to be waited on.
pub struct Listener {
    listener: TcpListener,
    /// `http://127.0.0.1:<port>/`.
    pub redirect_uri: String,
}

/// Why no redirect was captured.
#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    /// The listener could not be bound.
    #[error("cannot listen on 127.0.0.1 for the browser's redirect: {0}")]
    Bind(std::io::Error),
    /// Nothing arrived in time.
    #[error(
        "no sign-in redirect arrived within {} s; the browser window may have been closed, \
         or it could not reach 127.0.0.1",
        .0.as_secs()
    )]
    TimedOut(Duration),
    /// The user pressed Ctrl-C.
    #[error("cancelled")]
    Cancelled,
}

impl Listener {
    /// Binds `127.0.0.1:0`.
    pub async fn bind() -> Result<Self, RedirectError> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(RedirectError::Bind)?;
        let port = listener.local_addr().map_err(RedirectError::Bind)?.port();
        Ok(Self {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/"),
        })
    }

    /// Waits for the redirect carrying `state`, at most `timeout`, giving up when `cancelled`
    /// is set. Returns its query string.
    pub async fn wait(
        self,
        state: &str,
        timeout: Duration,
        cancelled: &AtomicBool,
    ) -> Result<String, RedirectError> {
        let (sender, mut receiver) = mpsc::channel::<String>(1);
        let expected = Arc::new(state.to_owned());
        let accepted = Arc::new(AtomicBool::new(false));
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut poll_cancel = tokio::time::interval(Duration::from_millis(50));
        // Idle local connections cannot starve the listener of file descriptors or CPU: at
        // most this many are served at once, each for at most the header timeout.
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            tokio::select! {
                query = receiver.recv() => {
                    // The sender lives in this loop's connections; `None` cannot happen while
                    // `sender` is held here.
                    if let Some(query) = query {
                        return Ok(query);
                    }
                }
                accepted_connection = accept(&self.listener, &connections) => {
                    let Some((stream, permit)) = accepted_connection else {
                        // Out of file descriptors, say: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let (sender, expected, accepted) =
                        (sender.clone(), expected.clone(), accepted.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let service = hyper::service::service_fn(move |request| {
                            let (sender, expected, accepted) =
                                (sender.clone(), expected.clone(), accepted.clone());
                            async move { Ok::<_, Infallible>(answer(request, &expected, &accepted, &sender)) }
                        });
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(false)
                            .header_read_timeout(Duration::from_secs(10))
                            .timer(hyper_util::rt::TokioTimer::new())
                            .serve_connection(io, service)
                            .await;
                    });
                }
                () = &mut deadline => return Err(RedirectError::TimedOut(timeout)),
                _ = poll_cancel.tick() => {
                    if cancelled.load(Ordering::Relaxed) {
                        return Err(RedirectError::Cancelled);
                    }
                }
            }
        }
    }
}

/// The next connection, once fewer than [`MAX_CONNECTIONS`] are being served.
async fn accept(
    listener: &TcpListener,
    connections: &Arc<tokio::sync::Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    // The semaphore is never closed.
    let permit = connections.clone().acquire_owned().await.ok()?;
    let (stream, _) = listener.accept().await.ok()?;
    Some((stream, permit))
}

/// Answers one request; hands the query of the one matching redirect to `sender`.
fn answer(
    request: Request<Incoming>,
    expected: &str,
    accepted: &AtomicBool,
    sender: &mpsc::Sender<String>,
) -> Response<Full<Bytes>> {
    let query = request.uri().query().unwrap_or_default().to_owned();
    let state = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned());
    let matches = request.method() == Method::GET
        && request.uri().path() == "/"
        && state.as_deref() == Some(expected);
    if !matches || accepted.swap(true, Ordering::SeqCst) {
        return page(
            StatusCode::BAD_REQUEST,
            "Not the expected sign-in",
            "This is exo's sign-in listener, and this request is not the redirect it waits for.",
        );
    }
    let parameter = |wanted: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.into_owned())
    };
    let error = parameter("error_description").or_else(|| parameter("error"));
    // The channel holds one message and this is the only one ever sent.
    let _ = sender.try_send(query);
    match error {
        Some(error) => page(
            StatusCode::OK,
            "Sign-in failed",
            &format!("{}. Return to exo for details.", escape_html(&error)),
        ),
        None => page(
            StatusCode::OK,
            "Signed in",
            "You are signed in to exo. You can close this window.",
        ),
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c if c.is_control() => " ".to_owned(),
            c => c.to_string(),
        })
        .collect()
}
