//! exo sandbox: a local, faithful emulator of the Microsoft identity platform and the Exchange
//! admin REST API (think Azurite for Azure Storage), for exo's README demo, end-to-end tests
//! and benchmarks.
//!
//! One HTTPS listener on 127.0.0.1 (certificate from a test CA the sandbox generates) serves
//! the identity platform (`identity`), the Exchange admin API (`exchange`), the legacy
//! `/PowerShell-LiveID` endpoint (`legacy`), the web pages and the admin endpoints (`admin`),
//! for the global cloud at the root and the national clouds under path prefixes (`cloud`). A
//! second, plain-HTTP listener serves the managed-identity endpoints (`managed_identity`), and
//! a third, HTTPS with a self-signed certificate pinned by thumbprint, the Service Fabric one.
//! Faults can be injected at runtime (`faults`); every request is logged with secrets redacted.
//!
//! No blocking I/O runs on the async workers: start-up, `sandbox.json`, tenant data and Arc
//! challenge files go through the blocking pool. Files the sandbox writes are 0600 in 0700
//! directories (`fsutil`).
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
mod fsutil;
mod http_auth;
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
use crate::identity::store::AuthStore;
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
    /// Service Fabric managed-identity (HTTPS, self-signed) port on 127.0.0.1 (0 = ephemeral).
    pub service_fabric_port: u16,
    /// Keep every issued token, code and test assertion for [`Sandbox::issued_secrets`]
    /// (bounded by the seed's `limits.max_issued_secrets`). Off by default, so that a
    /// long-running sandbox doesn't hold every secret it ever issued; tests that grep client
    /// output for leaked secrets turn it on.
    pub record_secrets: bool,
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
            service_fabric_port: 0,
            record_secrets: false,
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
            federated_domains: vec![],
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

/// Runs blocking start-up or shutdown work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SandboxError::Runtime(std::io::Error::other(e.to_string())))?
}

/// Everything start-up loads or builds before the listeners exist.
struct Prepared {
    state_dir: PathBuf,
    seed: Seed,
    keys: KeyMaterial,
    directory: Arc<Directory>,
    exchange: ExchangeStore,
    tls: Arc<rustls::ServerConfig>,
    service_fabric_tls: Arc<rustls::ServerConfig>,
    service_fabric_thumbprint: String,
}

/// The blocking part of start-up: the state directory, keys, certificates, tenant data, TLS.
fn prepare(config: SandboxConfig) -> Result<Prepared, SandboxError> {
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| SandboxError::Io {
            action,
            path,
            source,
        }
    };
    let state_dir =
        std::path::absolute(&config.state_dir).map_err(io("resolve", &config.state_dir))?;
    fsutil::create_private_dir(&state_dir).map_err(io("create", &state_dir))?;
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
    let keys = KeyMaterial::load_or_create(&keys_dir, &needing)?;
    let mut certificates = std::collections::HashMap::new();
    for app in seed.tenants.iter().flat_map(|t| t.apps.iter()) {
        if let Some(cert) = &app.certificate_file
            && !certificates.contains_key(&app.client_id)
        {
            certificates.insert(app.client_id, keys::load_app_certificate(cert)?);
        }
    }
    let directory = Arc::new(Directory::new(&seed, &certificates));
    let exchange = ExchangeStore::load(&seed, config.extra_mailboxes, &state_dir)?;
    let tls = tls::server_config(&keys)?;
    let (service_fabric_tls, service_fabric_thumbprint) = tls::service_fabric_config()?;
    Ok(Prepared {
        state_dir,
        seed,
        keys,
        directory,
        exchange,
        tls,
        service_fabric_tls,
        service_fabric_thumbprint,
    })
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
            "service_fabric_url": self.sf_url.as_str(),
            "service_fabric_thumbprint": self.sf_thumbprint,
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
    /// writes `{state_dir}/sandbox.json` (mode 0600: it holds `identity_header`).
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let ports = [
            config.port,
            config.managed_identity_port,
            config.service_fabric_port,
        ];
        let record_secrets = config.record_secrets;
        let prepared = blocking(move || prepare(config)).await?;
        let Prepared {
            state_dir,
            seed,
            keys,
            directory,
            exchange,
            tls,
            service_fabric_tls,
            service_fabric_thumbprint,
        } = prepared;
        let bind = |port: u16| async move {
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| SandboxError::Bind { port, source })
        };
        let [https, mi, sf] = ports;
        let (https, mi, sf) = (bind(https).await?, bind(mi).await?, bind(sf).await?);
        let port_of = |l: &TcpListener| l.local_addr().map(|a| a.port()).unwrap_or_default();
        // A scheme, a loopback address and a port always make a valid URL.
        let url = |text: String| Url::parse(&text).expect("a loopback URL is valid");
        let base_url = url(format!("https://127.0.0.1:{}/", port_of(&https)));
        let mi_url = url(format!("http://127.0.0.1:{}/", port_of(&mi)));
        let sf_url = url(format!(
            "https://127.0.0.1:{}{}",
            port_of(&sf),
            managed_identity::SERVICE_FABRIC_PATH
        ));
        let resolver = Arc::clone(&directory);
        let faults = faults::Faults::new(move |name| resolver.tenant_by_any_key(name));
        for rule in seed.faults.clone() {
            faults.add(rule)?;
        }
        let ca_file = keys.ca_file.clone();
        let limits = seed.limits.clone();
        let core = Arc::new(Core {
            base_url,
            mi_url,
            sf_url,
            sf_thumbprint: service_fabric_thumbprint,
            arc: Arc::new(managed_identity::ArcChallenges::new(
                &seed.azure_arc,
                &state_dir,
            )),
            seed,
            directory,
            keys,
            auth: Mutex::new(AuthStore::new(&limits)),
            exchange,
            legacy: legacy::Sessions::default(),
            faults,
            log: reqlog::Bounded::new(limits.max_request_log),
            secrets: reqlog::Bounded::new(if record_secrets {
                limits.max_issued_secrets
            } else {
                0
            }),
            identity_header: random_token(24),
            state_dir: state_dir.clone(),
        });
        let (shutdown, receiver) = watch::channel(false);
        let listeners = [
            (https, Some(tls), server::Listener::Https),
            (mi, None, server::Listener::ManagedIdentity),
            (
                sf,
                Some(service_fabric_tls),
                server::Listener::ServiceFabric,
            ),
        ];
        let tasks = listeners
            .into_iter()
            .map(|(listener, tls, kind)| {
                tokio::spawn(server::serve(
                    listener,
                    tls.map(tokio_rustls::TlsAcceptor::from),
                    server::router(kind, Arc::clone(&core)),
                    Arc::clone(&core),
                    kind,
                    receiver.clone(),
                ))
            })
            .collect();
        // Serializing a `Value` cannot fail (string keys only).
        let info =
            serde_json::to_vec_pretty(&core.discovery_info()).expect("JSON values serialize");
        let discovery = state_dir.join(DISCOVERY_FILE);
        blocking(move || {
            fsutil::write_private(&discovery, &info).map_err(|source| SandboxError::Io {
                action: "write",
                path: discovery,
                source,
            })
        })
        .await?;
        tracing::info!(base_url = %core.base_url, managed_identity_url = %core.mi_url, service_fabric_url = %core.sf_url, "sandbox listening");
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
        // The base URL plus a fixed ASCII prefix is a valid URL.
        Url::parse(&format!("{}/", self.core.cloud_base(cloud)))
            .expect("the sandbox builds valid URLs")
    }

    /// `http://127.0.0.1:PORT2/`.
    pub fn managed_identity_url(&self) -> &Url {
        &self.core.mi_url
    }

    /// The Service Fabric token endpoint, `https://127.0.0.1:PORT3/metadata/identity/oauth2/token`
    /// (`IDENTITY_ENDPOINT` of a Service Fabric application). Its certificate is self-signed:
    /// pin [`Sandbox::service_fabric_thumbprint`].
    pub fn service_fabric_url(&self) -> &Url {
        &self.core.sf_url
    }

    /// The SHA-1 thumbprint (upper-case hex) of the Service Fabric listener's certificate
    /// (`IDENTITY_SERVER_THUMBPRINT`); a new certificate is made at every start.
    pub fn service_fabric_thumbprint(&self) -> &str {
        &self.core.sf_thumbprint
    }

    /// The managed-identity secret (`IDENTITY_HEADER`): App Service's `X-IDENTITY-HEADER` and
    /// Service Fabric's `Secret` header.
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

    /// The request log so far (redacted; bounded by the seed's `limits.max_request_log`,
    /// default the last 100,000 requests).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.core.log.snapshot()
    }

    /// Every access, refresh and ID token, authorization code, device code and federated test
    /// token issued so far — only when [`SandboxConfig::record_secrets`] is set (otherwise
    /// empty); bounded by the seed's `limits.max_issued_secrets`.
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

    /// Stops listening, closes connections and removes `sandbox.json` and outstanding Azure
    /// Arc challenge files.
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
        self.core.arc.clear().await;
        let discovery = self.core.state_dir.join(DISCOVERY_FILE);
        let removed = blocking(move || match std::fs::remove_file(&discovery) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SandboxError::Io {
                action: "remove",
                path: discovery,
                source: e,
            }),
            _ => Ok(()),
        })
        .await;
        if let Err(e) = removed {
            tracing::warn!("{e}");
        }
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
        // `sandbox` is `Some` from `spawn` until `drop` takes it.
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
