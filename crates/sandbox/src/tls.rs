//! The TLS server configurations, rustls with its aws-lc-rs provider, ALPN h2 and http/1.1:
//! the main listener's certificate is issued by the sandbox CA for the loopback names and the
//! clouds' `*.localhost` aliases; the Service Fabric listener's is self-signed (clients pin its
//! thumbprint, as they do on a cluster node).

use std::sync::Arc;

use crate::cloud::Cloud;
use crate::keys::{self, KeyError, KeyMaterial, ServerCertificate};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate could not be issued.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The names on the server certificate.
pub(crate) fn server_names() -> Vec<String> {
    let mut names = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ];
    names.extend(
        Cloud::ALL
            .iter()
            .filter_map(|c| c.host_alias())
            .map(str::to_owned),
    );
    names
}

/// A rustls server configuration for the HTTPS listener.
pub(crate) fn server_config(keys: &KeyMaterial) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    rustls_config(keys.server_certificate(server_names())?)
}

/// The Service Fabric listener's configuration and its certificate's thumbprint.
pub(crate) fn service_fabric_config() -> Result<(Arc<rustls::ServerConfig>, String), TlsError> {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let (certificate, thumbprint) = keys::self_signed_server_certificate(names)?;
    Ok((rustls_config(certificate)?, thumbprint))
}

fn rustls_config(certificate: ServerCertificate) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificate.chain, certificate.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
