//! The `certificate` login method: app-only sign-in with a certificate, like
//! `Connect-ExchangeOnline -AppId … -Organization … -CertificateFilePath | -CertificateThumbprint`.
//!
//! The certificate and its private key come from a PKCS#12 (PFX) file with its password, a PEM
//! file (certificate and key together, or the key in `--certificate-key-file`, encrypted or
//! not), or `--certificate-thumbprint`, looked up in exo's certificate folder on every OS
//! (`--certificate-store` or `EXO_CERTIFICATE_STORE`, default `<data dir>/exo/certificates`:
//! a `<THUMBPRINT>.pfx` or `<THUMBPRINT>.pem` file, which must hold that certificate). The
//! password is a secret: `--certificate-password-file`,
//! `EXO_CERTIFICATE_PASSWORD`, or a prompt — never the command line.
//!
//! The plugin checks the certificate first (dates, key match, RSA), signs a JWT client
//! assertion with the SDK (RS256 + `x5t` by default; PS256 + `x5t#S256` with
//! `--signature-algorithm PS256`; `x5c` with `--send-certificate-chain`), and asks the tenant's
//! token endpoint for an app-only token. Renewal does the same again, silently, reading the
//! files again (a rotated certificate is picked up).

use std::path::{Path, PathBuf};

use plugin_sdk::certificate::{AssertionOptions, Certificate, SignatureAlgorithm};
use plugin_sdk::oidc::Provider;
use plugin_sdk::sign_in::{self, now};
use plugin_sdk::{
    Description, Error, Grant, Host, LoginMethod, Parameter, ParameterKind, Renewal, Request,
};

const APP_ID: &str = "app-id";
const FILE: &str = "certificate-file-path";
const PASSWORD: &str = "certificate-password";
const KEY_FILE: &str = "certificate-key-file";
const THUMBPRINT: &str = "certificate-thumbprint";
const ALGORITHM: &str = "signature-algorithm";
const CHAIN: &str = "send-certificate-chain";
const STORE: &str = "certificate-store";

/// The login method.
#[derive(Default)]
pub struct CertificateMethod;

impl LoginMethod for CertificateMethod {
    const RENEWAL: Renewal = Renewal::SignInAgain;

    fn describe(&self) -> Description {
        Description::new(
            "certificate",
            "Certificate (app-only)",
            env!("CARGO_PKG_VERSION"),
        )
        .summary(
            "Signs in as an app registration with its certificate, for automation: no \
                 prompt (Connect-ExchangeOnline -AppId -Organization -CertificateFilePath or \
                 -CertificateThumbprint, which works on every OS here). The app needs the \
                 Exchange.ManageAsApp permission and an Exchange role. Renewal signs in again \
                 silently.",
        )
        .parameter(
            Parameter::new(
                APP_ID,
                ParameterKind::String,
                "The app registration's client id",
            )
            .required()
            .env("EXO_APP_ID"),
        )
        .parameter(Parameter::new(
            FILE,
            ParameterKind::Path,
            "A PKCS#12 (.pfx) file, or a PEM file with the certificate (and its key)",
        ))
        .parameter(
            Parameter::new(
                PASSWORD,
                ParameterKind::String,
                "The password of the PFX file or of an encrypted PEM key",
            )
            .secret()
            .env("EXO_CERTIFICATE_PASSWORD"),
        )
        .parameter(Parameter::new(
            KEY_FILE,
            ParameterKind::Path,
            "The PEM private key, when it is not in the certificate file",
        ))
        .parameter(Parameter::new(
            THUMBPRINT,
            ParameterKind::String,
            "Find the certificate by its SHA-1 thumbprint in exo's certificate folder \
                 (a <THUMBPRINT>.pfx, .p12 or .pem file there)",
        ))
        .parameter(
            Parameter::new(
                STORE,
                ParameterKind::Path,
                "exo's certificate folder for --certificate-thumbprint \
                 (default <data dir>/exo/certificates)",
            )
            .env("EXO_CERTIFICATE_STORE"),
        )
        .parameter(Parameter::new(
            ALGORITHM,
            ParameterKind::String,
            "RS256 (default; x5t) or PS256 (x5t#S256)",
        ))
        .parameter(Parameter::new(
            CHAIN,
            ParameterKind::Switch,
            "Send the certificate chain (x5c), for subject name and issuer authentication",
        ))
        .capability(plugin_sdk::abi::capability::APP_ONLY)
        .capability(plugin_sdk::abi::capability::SILENT_RENEW)
        .capability(plugin_sdk::abi::capability::CERTIFICATE)
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        sign_in(request, host)
    }
}

/// Signs in app-only with the request's certificate.
fn sign_in(request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
    let app_id = request.required(APP_ID)?;
    let authority = request.authority();
    let tenant = authority
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if matches!(
        tenant.to_ascii_lowercase().as_str(),
        "organizations" | "common" | "consumers"
    ) {
        return Err(Error::invalid_input(
            "app-only sign-in needs the tenant: pass --organization with its primary domain \
             (contoso.onmicrosoft.com) or tenant id",
        ));
    }
    let certificate = load(request, host)?;
    let now = now();
    certificate.check(now)?;
    let options = AssertionOptions {
        algorithm: match request
            .parameter(ALGORITHM)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("RS256") => SignatureAlgorithm::Rs256,
            Some("PS256") => SignatureAlgorithm::Ps256,
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "--signature-algorithm must be RS256 or PS256, not {other}"
                )));
            }
        },
        include_x5c: request.switch(CHAIN),
        ..AssertionOptions::default()
    };
    let provider = Provider::discover(host, authority)?;
    let assertion =
        certificate.client_assertion(&provider.token_endpoint, app_id, now, &options)?;
    let scope = request.scopes().collect::<Vec<_>>().join(" ");
    let grant =
        sign_in::client_credentials(host, &provider.token_endpoint, app_id, &scope, &assertion)?;
    log::info!(
        "signed in as app {app_id} with certificate {}",
        certificate.thumbprint()
    );
    Ok(grant)
}

/// The certificate the request names: a file, or a thumbprint in the certificate folder.
fn load(request: &Request<'_>, host: &Host<'_>) -> Result<Certificate, Error> {
    let (file, thumbprint) = match (request.parameter(FILE), request.parameter(THUMBPRINT)) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_input(
                "give --certificate-file-path or --certificate-thumbprint, not both",
            ));
        }
        (Some(path), None) => (PathBuf::from(path), None),
        (None, Some(thumbprint)) => {
            let thumbprint = normalized_thumbprint(thumbprint)?;
            (in_store(request, &thumbprint)?, Some(thumbprint))
        }
        (None, None) => {
            return Err(Error::invalid_input(
                "missing --certificate-file-path or --certificate-thumbprint",
            ));
        }
    };
    let certificate = read_certificate(request, host, &file)?;
    // A file named after a thumbprint must hold that certificate.
    if let Some(thumbprint) = thumbprint
        && certificate.thumbprint() != thumbprint
    {
        return Err(Error::invalid_input(format!(
            "{} holds the certificate {}, not {thumbprint}",
            file.display(),
            certificate.thumbprint()
        )));
    }
    Ok(certificate)
}

fn read_certificate(
    request: &Request<'_>,
    host: &Host<'_>,
    file: &Path,
) -> Result<Certificate, Error> {
    let bytes = read(file)?;
    let password = request.parameter(PASSWORD);
    let is_pem = bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ");
    if is_pem {
        let key = match request.parameter(KEY_FILE) {
            Some(key_file) => read(Path::new(key_file))?,
            None => bytes.clone(),
        };
        return Certificate::from_pem(&bytes, &key, password);
    }
    match (
        Certificate::from_pkcs12(&bytes, password.unwrap_or("")),
        password,
    ) {
        (Err(error), None) if error.message.contains("password") => {
            if !request.is_interactive() {
                return Err(Error::interaction_required(format!(
                    "{} needs a password: give --certificate-password-file or \
                     EXO_CERTIFICATE_PASSWORD (a password typed at the prompt is not kept, so \
                     it cannot renew the connection)",
                    file.display()
                )));
            }
            host.show_message(
                "exo does not keep a password typed here: this connection will not renew by \
                 itself (give --certificate-password-file or EXO_CERTIFICATE_PASSWORD for that).",
            );
            let typed = host.prompt_secret(&format!("Password for {}: ", file.display()))?;
            Certificate::from_pkcs12(&bytes, &typed)
        }
        (result, _) => result,
    }
}

/// A SHA-1 thumbprint in upper-case hex, without separators.
fn normalized_thumbprint(thumbprint: &str) -> Result<String, Error> {
    let thumbprint: String = thumbprint
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect::<String>()
        .to_ascii_uppercase();
    if thumbprint.len() != 40 || !thumbprint.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid_input(
            "--certificate-thumbprint must be a SHA-1 thumbprint: 40 hexadecimal digits",
        ));
    }
    Ok(thumbprint)
}

/// `<store>/<THUMBPRINT>.pfx`, `.p12` or `.pem`.
fn in_store(request: &Request<'_>, thumbprint: &str) -> Result<PathBuf, Error> {
    let store = request
        .parameter(STORE)
        .map(PathBuf::from)
        .or_else(|| dirs_data().map(|d| d.join("exo").join("certificates")))
        .ok_or_else(|| Error::invalid_input("no certificate folder: give --certificate-store"))?;
    ["pfx", "p12", "pem"]
        .iter()
        .map(|extension| store.join(format!("{thumbprint}.{extension}")))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "no certificate with thumbprint {thumbprint} in {} (put it there as \
                 {thumbprint}.pfx or {thumbprint}.pem)",
                store.display()
            ))
        })
}

/// The user's data folder (`$XDG_DATA_HOME` or `~/.local/share` on Linux, the platform's
/// elsewhere), without a dependency for one path.
fn dirs_data() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(dir.into());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Application Support")
    } else {
        home.join(".local/share")
    })
}

/// The largest certificate or key file read (a PFX with a long chain is a few KiB).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A regular file of at most 1 MiB (never a FIFO or a device, which could block or never end).
fn read(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let unusable =
        |why: String| Error::invalid_input(format!("cannot read {}: {why}", path.display()));
    let metadata = std::fs::metadata(path).map_err(|e| unusable(e.to_string()))?;
    if !metadata.is_file() {
        return Err(unusable("it is not a regular file".to_owned()));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(unusable("it is larger than 1 MiB".to_owned()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES).read_to_end(&mut bytes))
        .map_err(|e| unusable(e.to_string()))?;
    Ok(bytes)
}

plugin_sdk::export_plugin!(CertificateMethod);
