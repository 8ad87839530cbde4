//! The request log and the list of issued secrets, both bounded (seed `limits`; the oldest
//! entry goes first).
//!
//! Records never hold bodies. Query parameters that carry secrets are replaced by
//! `[redacted]`; `Authorization` keeps only its scheme; other secret-bearing headers are
//! redacted entirely.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use crate::cloud::Cloud;
use crate::faults::Service;

/// One request as the sandbox saw it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// `YYYY-MM-DD hh:mm:ssZ`.
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// The cloud the request addressed.
    pub cloud: Cloud,
    /// Which service answered.
    pub service: Service,
    /// Path and query as received (cloud prefix included), secrets redacted.
    pub path: String,
    /// Response status (0 = connection dropped by a fault).
    pub status: u16,
    /// Selected request headers, redacted.
    pub headers: Vec<(String, String)>,
    /// The tenant segment of the URL (or `DelegatedOrg`), as sent.
    pub tenant: Option<String>,
    /// The cmdlet of an InvokeCommand or legacy request.
    pub cmdlet: Option<String>,
    /// `client-request-id` header.
    pub client_request_id: Option<String>,
    /// `connection-id` header.
    pub connection_id: Option<String>,
    /// `X-AnchorMailbox` header.
    pub anchor_mailbox: Option<String>,
    /// `Prefer` header.
    pub prefer: Option<String>,
    /// Faults applied to this request.
    pub faults: Vec<String>,
    /// Time to answer, in milliseconds.
    pub duration_ms: u64,
}

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &[
    "code",
    "client_assertion",
    "client_secret",
    "password",
    "passwd",
    "refresh_token",
    "access_token",
    "id_token",
    "device_code",
    "assertion",
    "token",
    "otc",
    "user_code",
];

/// Headers copied into records, with how their values are shown.
const LOGGED_HEADERS: &[&str] = &[
    "authorization",
    "user-agent",
    "content-type",
    "content-length",
    "client-request-id",
    "connection-id",
    "x-anchormailbox",
    "prefer",
    "x-cmdletname",
    "x-clientapplication",
    "x-responseformat",
    "metadata",
    "x-identity-header",
    "x-powershell-shellid",
    "host",
];

/// Whether a query parameter or form field name carries a secret.
pub(crate) fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// `path?query` with secret query values replaced.
pub(crate) fn redact_path(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if is_secret_param(
                    &url::form_urlencoded::parse(name.as_bytes())
                        .map(|(k, _)| k)
                        .collect::<String>(),
                ) =>
            {
                format!("{name}=[redacted]")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", redacted.join("&"))
}

/// The logged headers of a request, redacted.
pub(crate) fn logged_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    LOGGED_HEADERS
        .iter()
        .filter_map(|&name| {
            let value = headers.get(name)?.to_str().unwrap_or("<non-ascii>");
            let shown = match name {
                "authorization" => {
                    let scheme = value.split_whitespace().next().unwrap_or_default();
                    format!("{scheme} [redacted]")
                }
                "x-identity-header" => "[redacted]".to_owned(),
                _ => value.to_owned(),
            };
            Some((name.to_owned(), shown))
        })
        .collect()
}

/// A bounded FIFO shared by request handlers. A capacity of 0 keeps nothing.
#[derive(Debug)]
pub(crate) struct Bounded<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
}

impl<T: Clone> Bounded<T> {
    pub fn new(capacity: usize) -> Bounded<T> {
        Bounded {
            items: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        // Pushes and clears leave the queue consistent even if a holder panicked.
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether anything is kept at all (capacity above 0).
    pub fn keeps_anything(&self) -> bool {
        self.capacity > 0
    }

    pub fn push(&self, item: T) {
        if !self.keeps_anything() {
            return;
        }
        let mut q = self.lock();
        while q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(item);
    }

    pub fn snapshot(&self) -> Vec<T> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests;
