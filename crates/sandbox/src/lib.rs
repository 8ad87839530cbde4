//! exo sandbox: a local, faithful emulator of the Microsoft identity platform and the Exchange
//! admin REST API (think Azurite for Azure Storage), for exo's README demo, end-to-end tests
//! and benchmarks.
//!
//! One HTTPS listener on 127.0.0.1 (certificate from a test CA the sandbox generates) serves
//! the identity platform (`identity`), the Exchange admin API (`exchange`), the legacy
//! `/PowerShell-LiveID` endpoint (`legacy`), the web pages and the admin endpoints (`admin`),
//! for the global cloud at the root and the national clouds under path prefixes (`cloud`). A
//! second, plain-HTTP listener serves the managed-identity endpoints (`managed_identity`).
//! Faults can be injected at runtime (`faults`); every request is logged with secrets redacted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sandbox::SandboxError> {
//! let dir = std::env::temp_dir().join("exo-sandbox-demo");
//! let sandbox = sandbox::Sandbox::start(sandbox::SandboxConfig::new(dir)).await?;
//! println!("{} (CA: {})", sandbox.base_url(), sandbox.ca_file().display());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

mod admin;
pub mod client;
mod clock;
pub mod cloud;
mod directory;
mod exchange;
pub mod faults;
mod identity;
mod jwt;
mod keys;
mod legacy;
mod managed_identity;
mod reqlog;
pub mod seed;
mod server;
mod state;
mod tls;
pub mod totp;

pub use cloud::Cloud;
pub use faults::{FaultError, FaultKind, FaultRule, FaultStatus, FaultTarget, Faults, Service};
pub use jwt::Alg;
pub use reqlog::RequestRecord;
pub use seed::{Seed, SeedError};

use crate::directory::Directory;
use crate::exchange::store::{ExchangeStore, StoreError};
use crate::keys::{KeyError, KeyMaterial};
use crate::state::{Core, random_token};

/// The name of the discovery file in the state directory.
pub const DISCOVERY_FILE: &str = "sandbox.json";

/// How to start a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// CA, keys (unless `keys_dir`), tenant data and the discovery file `sandbox.json`.
    pub state_dir: PathBuf,
    /// Where to load-or-create the signing keys, the CA and the app certificates (shared by
    /// many sandboxes; creation is guarded by a file lock). Default: `{state_dir}/keys`.
    pub keys_dir: Option<PathBuf>,
    /// The tenants and everything in them.
    pub seed: Seed,
    /// Extra generated mailboxes in the first tenant.
    pub extra_mailboxes: usize,
    /// Extra generated tenants (`tenant0001`, …) with the first tenant's app registrations and a
    /// handful of mailboxes.
    pub extra_tenants: usize,
    /// HTTPS port on 127.0.0.1 (0 = ephemeral).
    pub port: u16,
    /// Managed-identity (plain HTTP) port on 127.0.0.1 (0 = ephemeral).
    pub managed_identity_port: u16,
}

impl SandboxConfig {
    /// The default seed on ephemeral ports, keeping everything in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            state_dir: state_dir.into(),
            keys_dir: None,
            seed: Seed::default(),
            extra_mailboxes: 0,
            extra_tenants: 0,
            port: 0,
            managed_identity_port: 0,
        }
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// File system error.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
    /// Bad seed.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Key material problem.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Tenant data problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS setup problem.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A seeded fault rule is invalid.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// The background runtime could not be created (`spawn`).
    #[error("cannot start the sandbox runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running sandbox.
pub struct Sandbox {
    core: Arc<Core>,
    ca_file: PathBuf,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.core.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Adds the generated tenants of `--tenants N`.
fn expand_seed(mut seed: Seed, extra_tenants: usize) -> Seed {
    let Some(first) = seed.tenants.first().cloned() else {
        return seed;
    };
    for n in 1..=extra_tenants {
        let name = format!("tenant{n:04}");
        let tenant = seed::Tenant {
            id: uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n as u128),
            display_name: Some(format!("Generated tenant {n}")),
            accepted_domains: vec![],
            basic_auth_enabled: false,
            users: vec![],
            apps: first.apps.clone(),
            mailboxes: (1..=5)
                .map(|i| seed::MailboxSeed {
                    alias: format!("user{i}"),
                    display_name: format!("User {i} of {name}"),
                    recipient_type_details: "UserMailbox".into(),
                    primary_smtp_address: None,
                    attributes: seed::Attributes::default(),
                })
                .collect(),
            organization_config: serde_json::Map::new(),
            name,
        };
        seed.tenants.push(tenant);
    }
    seed
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), SandboxError> {
    let io = |action| {
        move |source| SandboxError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, contents).map_err(io("write"))?;
    std::fs::rename(&tmp, path).map_err(io("rename"))
}

impl Core {
    /// The content of `sandbox.json`.
    pub(crate) fn discovery_info(&self) -> Value {
        let tenants: Vec<Value> = self
            .directory
            .tenants
            .iter()
            .map(|t| json!({"name": t.seed.name, "id": t.seed.id, "domain": t.initial_domain()}))
            .collect();
        let clouds: serde_json::Map<String, Value> = Cloud::ALL
            .iter()
            .map(|c| {
                (
                    c.environment_name().to_owned(),
                    json!(format!("{}/", self.cloud_base(*c))),
                )
            })
            .collect();
        let apps: Vec<Value> = self
            .seed
            .tenants
            .iter()
            .flat_map(|t| t.apps.iter().map(move |a| (t, a)))
            .filter(|(_, a)| a.certificate_file.is_some())
            .map(|(t, a)| {
                json!({"tenant": t.name, "client_id": a.client_id, "display_name": a.display_name,
                       "certificate_file": a.certificate_file, "key_file": a.key_file})
            })
            .collect();
        json!({
            "base_url": self.base_url.as_str(),
            "managed_identity_url": self.mi_url.as_str(),
            "ca_file": self.keys.ca_file,
            "pid": std::process::id(),
            "identity_header": self.identity_header,
            "clouds": clouds,
            "tenants": tenants,
            "apps": apps,
        })
    }
}

impl Sandbox {
    /// Starts a sandbox: loads or creates keys, seeds the tenants, binds the listeners and
    /// writes `{state_dir}/sandbox.json`.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let state_dir =
            std::path::absolute(&config.state_dir).map_err(|source| SandboxError::Io {
                action: "resolve",
                path: config.state_dir.clone(),
                source,
            })?;
        std::fs::create_dir_all(&state_dir).map_err(|source| SandboxError::Io {
            action: "create",
            path: state_dir.clone(),
            source,
        })?;
        let keys_dir = config
            .keys_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("keys"));
        let keys_dir = std::path::absolute(&keys_dir).unwrap_or(keys_dir);
        let mut seed = expand_seed(config.seed, config.extra_tenants);
        let mut needing: Vec<uuid::Uuid> = Vec::new();
        for app in seed.tenants.iter_mut().flat_map(|t| t.apps.iter_mut()) {
            if app.certificate && app.certificate_file.is_none() {
                let (cert, key) = keys::app_cert_paths(&keys_dir, &app.client_id);
                app.certificate_file = Some(cert);
                app.key_file = Some(key);
                if !needing.contains(&app.client_id) {
                    needing.push(app.client_id);
                }
            }
        }
        let (keys, seed, certificates) =
            tokio::task::spawn_blocking(move || -> Result<_, SandboxError> {
                let keys = KeyMaterial::load_or_create(&keys_dir, &needing)?;
                let mut certificates = std::collections::HashMap::new();
                for app in seed.tenants.iter().flat_map(|t| t.apps.iter()) {
                    if let Some(cert) = &app.certificate_file
                        && !certificates.contains_key(&app.client_id)
                    {
                        certificates.insert(app.client_id, keys::load_app_certificate(cert)?);
                    }
                }
                Ok((keys, seed, certificates))
            })
            .await
            .map_err(|e| SandboxError::Runtime(std::io::Error::other(e.to_string())))??;
        let directory = Arc::new(Directory::new(&seed, &certificates));
        let exchange = {
            let (seed, dir, extra) = (seed.clone(), state_dir.clone(), config.extra_mailboxes);
            tokio::task::spawn_blocking(move || ExchangeStore::load(&seed, extra, &dir))
                .await
                .map_err(|e| SandboxError::Runtime(std::io::Error::other(e.to_string())))??
        };
        let bind = |port: u16| async move {
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| SandboxError::Bind { port, source })
        };
        let https = bind(config.port).await?;
        let mi = bind(config.managed_identity_port).await?;
        let port_of = |l: &TcpListener| l.local_addr().map(|a| a.port()).unwrap_or_default();
        let base_url = Url::parse(&format!("https://127.0.0.1:{}/", port_of(&https)))
            .expect("a loopback URL is valid");
        let mi_url = Url::parse(&format!("http://127.0.0.1:{}/", port_of(&mi)))
            .expect("a loopback URL is valid");
        let tls = tls::server_config(&keys)?;
        let resolver = Arc::clone(&directory);
        let faults = faults::Faults::new(move |name| resolver.tenant_index(name));
        for rule in seed.faults.clone() {
            faults.add(rule)?;
        }
        let ca_file = keys.ca_file.clone();
        let core = Arc::new(Core {
            base_url,
            mi_url,
            seed,
            directory,
            keys,
            auth: Mutex::default(),
            exchange,
            legacy: legacy::Sessions::default(),
            faults,
            log: reqlog::Bounded::default(),
            secrets: reqlog::Bounded::default(),
            identity_header: random_token(24),
            arc: managed_identity::ArcChallenges::default(),
            state_dir: state_dir.clone(),
        });
        let (shutdown, receiver) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(
                https,
                Some(tokio_rustls::TlsAcceptor::from(tls)),
                server::https_router(Arc::clone(&core)),
                Arc::clone(&core),
                server::Listener::Https,
                receiver.clone(),
            )),
            tokio::spawn(server::serve(
                mi,
                None,
                server::mi_router(Arc::clone(&core)),
                Arc::clone(&core),
                server::Listener::ManagedIdentity,
                receiver,
            )),
        ];
        let info =
            serde_json::to_vec_pretty(&core.discovery_info()).expect("JSON values serialize");
        write_atomically(&state_dir.join(DISCOVERY_FILE), &info)?;
        tracing::info!(base_url = %core.base_url, managed_identity_url = %core.mi_url, "sandbox listening");
        Ok(Sandbox {
            core,
            ca_file,
            shutdown,
            tasks: Mutex::new(tasks),
        })
    }

    /// `https://127.0.0.1:PORT/` (the global cloud).
    pub fn base_url(&self) -> &Url {
        &self.core.base_url
    }

    /// The base URL of a cloud, with a trailing slash (`…/usgov/` for GCC High).
    pub fn cloud_url(&self, cloud: Cloud) -> Url {
        Url::parse(&format!("{}/", self.core.cloud_base(cloud)))
            .expect("the sandbox builds valid URLs")
    }

    /// `http://127.0.0.1:PORT2/`.
    pub fn managed_identity_url(&self) -> &Url {
        &self.core.mi_url
    }

    /// The App Service `X-IDENTITY-HEADER` secret (`IDENTITY_HEADER`).
    pub fn identity_header(&self) -> &str {
        &self.core.identity_header
    }

    /// The CA certificate file (PEM) clients must trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.core.keys.ca_pem
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.core.state_dir
    }

    /// The seed in effect (generated tenants included, certificate paths filled in).
    pub fn seed(&self) -> &Seed {
        &self.core.seed
    }

    /// The fault rules.
    pub fn faults(&self) -> &Faults {
        &self.core.faults
    }

    /// The request log so far (redacted; bounded to the last 100,000 requests).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.core.log.snapshot()
    }

    /// Every access, refresh and ID token, authorization code, device code and federated test
    /// token issued so far (bounded to the last 100,000).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.core.secrets.snapshot()
    }

    /// Revokes a user's refresh tokens (their next use gets AADSTS50173); false if no such user.
    pub fn revoke_user_sessions(&self, upn: &str) -> bool {
        self.core.revoke_user_sessions(upn)
    }

    /// Mints a workload-identity token from the sandbox's test OIDC issuer.
    pub fn federated_token(&self, subject: &str, audience: &str) -> String {
        self.core.federated_token(subject, audience, 3600)
    }

    /// Stops listening, closes connections and removes `sandbox.json`.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            let _ = task.await;
        }
        let _ = std::fs::remove_file(self.core.state_dir.join(DISCOVERY_FILE));
    }
}

/// A sandbox on its own tokio runtime, for synchronous code; stops when dropped.
pub struct RunningSandbox {
    sandbox: Option<Sandbox>,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RunningSandbox")
            .field(&self.sandbox)
            .finish()
    }
}

/// Starts a sandbox on a background runtime.
pub fn spawn(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("exo-sandbox")
        .enable_all()
        .build()
        .map_err(SandboxError::Runtime)?;
    let sandbox = runtime.block_on(Sandbox::start(config))?;
    Ok(RunningSandbox {
        sandbox: Some(sandbox),
        runtime,
    })
}

impl std::ops::Deref for RunningSandbox {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        self.sandbox
            .as_ref()
            .expect("the sandbox is only taken out in Drop")
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.runtime.block_on(sandbox.shutdown());
        }
    }
}
