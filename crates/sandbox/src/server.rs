//! The listeners: an accept loop per listener (TLS for the main one and Service Fabric, plain
//! HTTP for the other managed-identity styles) serving an axum router through a front service
//! that picks the cloud, classifies the request, enforces the body limit, applies request-level
//! faults (including closing the connection without an answer) and writes the request log.
//!
//! Requests the framework refuses before a handler runs — a body over the limit without a
//! `Content-Length` (chunked), a path that isn't UTF-8 once percent-decoded — are answered in
//! the service's own error shape (AADSTS JSON on identity paths, the Exchange error on
//! `/adminapi/…` and `/PowerShell-LiveID`), never with the framework's plain text.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::cloud::{self, Cloud};
use crate::exchange::CmdletName;
use crate::faults::{FaultKind, Service};
use crate::identity::errors::AadError;
use crate::reqlog::{self, RequestRecord};
use crate::state::{Core, RequestInfo};

/// Largest request body accepted (413 beyond).
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// Which listener a connection came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listener {
    /// Identity, Exchange, legacy, pages, admin (HTTPS, CA-issued certificate).
    Https,
    /// IMDS, App Service, Azure Arc, Cloud Shell (plain HTTP).
    ManagedIdentity,
    /// Service Fabric managed identity (HTTPS, self-signed certificate).
    ServiceFabric,
}

/// The router of a listener.
pub(crate) fn router(kind: Listener, core: Arc<Core>) -> Router {
    let routes = match kind {
        Listener::Https => crate::identity::router()
            .merge(crate::exchange::router())
            .merge(crate::legacy::router())
            .merge(crate::admin::router()),
        Listener::ManagedIdentity => crate::managed_identity::router(),
        Listener::ServiceFabric => crate::managed_identity::service_fabric_router(),
    };
    routes
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(core)
}

/// Accepts connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    core: Arc<Core>,
    kind: Listener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (tls, router, core, shutdown) = (
            tls.clone(),
            router.clone(),
            Arc::clone(&core),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        connection(stream, router, core, kind, shutdown).await;
                    }
                }
                None => connection(stream, router, core, kind, shutdown).await,
            }
        });
    }
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault rule")
    }
}

impl std::error::Error for Dropped {}

async fn connection<IO>(
    io: IO,
    router: Router,
    core: Arc<Core>,
    kind: Listener,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let drop_signal = Arc::new(Notify::new());
    let signal = Arc::clone(&drop_signal);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (router, core, signal) = (router.clone(), Arc::clone(&core), Arc::clone(&signal));
        async move { front(router, core, kind, signal, request).await }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = drop_signal.notified() => {}
        _ = shutdown.changed() => {}
    }
}

/// What the front service works out from the URL.
struct Classified {
    cloud: Cloud,
    service: Service,
    /// The tenant the URL names, as written.
    tenant: Option<String>,
    /// Path and query for the router (cloud prefix removed, legacy path canonical).
    routed: String,
}

fn classify(kind: Listener, path_and_query: &str, host: Option<&str>) -> Classified {
    let (path, query) = path_and_query
        .split_once('?')
        .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
    let with_query = |p: &str| query.map_or_else(|| p.to_owned(), |q| format!("{p}?{q}"));
    if kind != Listener::Https {
        return Classified {
            cloud: Cloud::Global,
            service: Service::ManagedIdentity,
            tenant: None,
            routed: with_query(path),
        };
    }
    let (cloud, rest) = cloud::split_path(path, host);
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let first = segments.first().copied().unwrap_or_default();
    if first == "_sandbox" {
        return Classified {
            cloud,
            service: Service::Admin,
            tenant: None,
            routed: with_query(rest),
        };
    }
    if first == "adminapi" {
        let tenant = segments.get(2).map(|t| (*t).to_owned());
        return Classified {
            cloud,
            service: Service::Exchange,
            tenant,
            routed: with_query(rest),
        };
    }
    if rest
        .trim_matches('/')
        .eq_ignore_ascii_case(&crate::legacy::PATH[1..])
    {
        let tenant = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("DelegatedOrg"))
            .map(|(_, v)| v.into_owned());
        return Classified {
            cloud,
            service: Service::Exchange,
            tenant,
            routed: with_query(crate::legacy::PATH),
        };
    }
    let tenant = (!first.is_empty() && first != "devicelogin").then(|| first.to_owned());
    Classified {
        cloud,
        service: Service::Identity,
        tenant,
        routed: with_query(rest),
    }
}

/// A throttling, unavailability, body-size or unreadable-request error in the shape of the
/// service.
fn service_error(
    service: Service,
    status: StatusCode,
    retry_after: Option<u64>,
    info: &RequestInfo,
) -> Response {
    let mut response = match service {
        Service::Identity => {
            let e = match status {
                StatusCode::TOO_MANY_REQUESTS => AadError::new(
                    "temporarily_unavailable",
                    90055,
                    "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants.",
                ),
                StatusCode::PAYLOAD_TOO_LARGE => AadError::new(
                    "invalid_request",
                    90013,
                    "Invalid input received from the user: the request body is too large.",
                ),
                // UNVERIFIED: the real service's code for a request it can't decode.
                StatusCode::BAD_REQUEST => AadError::new(
                    "invalid_request",
                    90013,
                    "Invalid input received from the user: the request URL or body could not be read.",
                ),
                _ => AadError::new(
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                ),
            };
            e.status(status).in_context(info).into_response()
        }
        Service::Exchange => {
            let (category, exception, message) = match status {
                StatusCode::TOO_MANY_REQUESTS => (
                    "LimitsExceeded",
                    "Microsoft.Exchange.Net.MicroDelayRetryException",
                    format!(
                        "The request was throttled. Retry after {} seconds.",
                        retry_after.unwrap_or(1)
                    ),
                ),
                StatusCode::PAYLOAD_TOO_LARGE => (
                    "InvalidData",
                    "Microsoft.Exchange.Admin.OData.Core.ODataException",
                    "The request body is too large.".to_owned(),
                ),
                StatusCode::BAD_REQUEST => (
                    "InvalidData",
                    "Microsoft.Exchange.Admin.OData.Core.ODataException",
                    "The request URL or body could not be read.".to_owned(),
                ),
                _ => (
                    "ResourceUnavailable",
                    "Microsoft.Exchange.Data.Storage.ServerUnavailableException",
                    "The service is temporarily unavailable. Please try again later.".to_owned(),
                ),
            };
            crate::exchange::errors::ExoError::new(status, category, exception, message)
                .into_response()
        }
        Service::ManagedIdentity | Service::Admin => {
            let message = match status {
                StatusCode::TOO_MANY_REQUESTS => "Too many requests",
                StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
                StatusCode::BAD_REQUEST => "The request URL or body could not be read",
                _ => "Service unavailable",
            };
            (status, axum::Json(serde_json::json!({"error": status.canonical_reason().unwrap_or("error"), "error_description": message}))).into_response()
        }
    };
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The status of a response the framework produced itself (an extractor's rejection: plain
/// text, 400 or 413), if it is one. Handlers never answer plain text with these statuses.
fn framework_rejection(response: &Response) -> Option<StatusCode> {
    let status = response.status();
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    (plain_text
        && matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
        ))
    .then_some(status)
}

async fn front(
    router: Router,
    core: Arc<Core>,
    kind: Listener,
    drop_signal: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response, Dropped> {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(parts.uri.host())
        .map(|h| {
            h.rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(h, |(name, _)| name)
                .to_owned()
        });
    let classified = classify(kind, &path_and_query, host.as_deref());
    let tenant_index = classified
        .tenant
        .as_deref()
        .and_then(|t| core.directory.tenant(t));
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let info = RequestInfo {
        cloud: classified.cloud,
        tenant: tenant_index,
        client_request_id: header("client-request-id"),
    };
    let mut record = RequestRecord {
        time: crate::clock::aad_timestamp(crate::clock::unix_now()),
        method: parts.method.to_string(),
        cloud: classified.cloud,
        service: classified.service,
        path: reqlog::redact_path(&path_and_query),
        status: 0,
        headers: reqlog::logged_headers(&parts.headers),
        tenant: classified.tenant.clone(),
        cmdlet: header("x-cmdletname"),
        client_request_id: info.client_request_id.clone(),
        connection_id: header("connection-id"),
        anchor_mailbox: header("x-anchormailbox"),
        prefer: header("prefer"),
        faults: vec![],
        duration_ms: 0,
    };
    let too_large = header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > BODY_LIMIT);
    let faults = if classified.service == Service::Admin {
        crate::faults::RequestFaults::default()
    } else {
        core.faults.on_request(classified.service, tenant_index)
    };
    record.faults = faults.labels;
    if faults.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.delay_ms)).await;
    }
    let response = match faults.terminal {
        Some(FaultKind::Drop) => {
            record.duration_ms = started.elapsed().as_millis() as u64;
            core.log.push(record);
            drop_signal.notify_one();
            return Err(Dropped);
        }
        Some(FaultKind::Throttle {
            retry_after_seconds,
        }) => service_error(
            classified.service,
            StatusCode::TOO_MANY_REQUESTS,
            Some(retry_after_seconds),
            &info,
        ),
        Some(_) => service_error(
            classified.service,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            &info,
        ),
        None if too_large => service_error(
            classified.service,
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            &info,
        ),
        None => match classified.routed.parse() {
            Ok(uri) => {
                parts.uri = uri;
                parts.extensions.insert(info.clone());
                let request = Request::from_parts(parts, Body::new(body));
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                match framework_rejection(&response) {
                    Some(status) => service_error(classified.service, status, None, &info),
                    None => response,
                }
            }
            Err(_) => service_error(classified.service, StatusCode::BAD_REQUEST, None, &info),
        },
    };
    record.status = response.status().as_u16();
    if let Some(CmdletName(name)) = response.extensions().get::<CmdletName>() {
        record.cmdlet = Some(name.clone());
    }
    record.duration_ms = started.elapsed().as_millis() as u64;
    core.log.push(record);
    Ok(response)
}

#[cfg(test)]
mod tests;
