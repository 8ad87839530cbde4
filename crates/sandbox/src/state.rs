//! The shared state of a running sandbox, handed to every handler.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use url::Url;

use crate::cloud::Cloud;
use crate::directory::Directory;
use crate::exchange::store::ExchangeStore;
use crate::faults::Faults;
use crate::identity::store::AuthStore;
use crate::keys::KeyMaterial;
use crate::legacy::Sessions;
use crate::managed_identity::ArcChallenges;
use crate::reqlog::{Bounded, RequestRecord};
use crate::seed::Seed;

/// Everything a handler may need.
pub(crate) struct Core {
    /// `https://127.0.0.1:PORT/`.
    pub base_url: Url,
    /// `http://127.0.0.1:PORT2/`.
    pub mi_url: Url,
    /// `https://127.0.0.1:PORT3/metadata/identity/oauth2/token` (Service Fabric).
    pub sf_url: Url,
    /// SHA-1 thumbprint (upper-case hex) of the Service Fabric listener's certificate.
    pub sf_thumbprint: String,
    pub seed: Seed,
    pub directory: Arc<Directory>,
    pub keys: KeyMaterial,
    pub auth: Mutex<AuthStore>,
    pub exchange: ExchangeStore,
    pub legacy: Sessions,
    pub faults: Faults,
    pub log: Bounded<RequestRecord>,
    /// Issued secrets (capacity 0 unless `record_secrets`).
    pub secrets: Bounded<String>,
    /// The App Service `X-IDENTITY-HEADER` and Service Fabric `Secret` value.
    pub identity_header: String,
    pub arc: Arc<ArcChallenges>,
    pub state_dir: PathBuf,
}

impl Core {
    /// The base URL of a cloud without a trailing slash: `https://127.0.0.1:PORT[/prefix]`.
    pub fn cloud_base(&self, cloud: Cloud) -> String {
        let root = self.base_url.as_str().trim_end_matches('/');
        match cloud.prefix() {
            "" => root.to_owned(),
            prefix => format!("{root}/{prefix}"),
        }
    }

    /// Remembers a secret the sandbox handed out (tests grep client output for these), if
    /// `record_secrets` is on.
    pub fn issued(&self, secret: &str) {
        if self.secrets.keeps_anything() {
            self.secrets.push(secret.to_owned());
        }
    }

    /// The AuthStore, tolerating poisoning (a panicking handler leaves it consistent).
    pub fn auth(&self) -> std::sync::MutexGuard<'_, AuthStore> {
        self.auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Per-request facts the front service works out before routing.
#[derive(Clone, Debug)]
pub(crate) struct RequestInfo {
    pub cloud: Cloud,
    /// The tenant the URL names (by id or domain), if it resolves.
    pub tenant: Option<usize>,
    /// `client-request-id`, echoed as the correlation id.
    pub client_request_id: Option<String>,
}

/// Fills `buf` from the system's random generator.
pub(crate) fn random_fill(buf: &mut [u8]) {
    // aws-lc's generator reads the OS source; it fails only if the OS can't supply entropy,
    // and then nothing secure can be made anyway.
    aws_lc_rs::rand::fill(buf).expect("the system random generator does not fail");
}

/// Random URL-safe text with `bytes` bytes of entropy.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    random_fill(&mut buf);
    crate::jwt::b64url(buf)
}

/// A random (v4) GUID.
pub(crate) fn new_guid() -> uuid::Uuid {
    let mut buf = [0u8; 16];
    random_fill(&mut buf);
    uuid::Builder::from_random_bytes(buf).into_uuid()
}

/// Compares secrets without an early exit.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
