//! The `workload-identity` login method: app-only sign-in with workload identity federation,
//! beyond the reference module. A Kubernetes service account or a CI system's OIDC token,
//! written to a file, is sent as the client assertion of an app registration that trusts it
//! (a federated credential), the way the Azure SDKs' `WorkloadIdentityCredential` does.
//!
//! The token file comes from `--token-file` or `AZURE_FEDERATED_TOKEN_FILE` and is read again at
//! every renewal, since it rotates; the app from `--app-id` or `AZURE_CLIENT_ID`; the tenant from
//! `--organization`, else `AZURE_TENANT_ID`; `AZURE_AUTHORITY_HOST` replaces the environment's
//! sign-in host. Protocol facts: `docs/identity-platform.md`, "Workload identity federation".

use plugin_sdk::oidc::Provider;
use plugin_sdk::sign_in;
use plugin_sdk::{
    Description, Error, Grant, Host, LoginMethod, Parameter, ParameterKind, Renewal, Request,
};

const APP_ID: &str = "app-id";
const TOKEN_FILE: &str = "token-file";
const TENANT_ID: &str = "tenant-id";
const AUTHORITY_HOST: &str = "authority-host";

/// The largest token file read (a federated token is a few KiB).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// The login method.
#[derive(Default)]
pub struct WorkloadIdentity;

impl LoginMethod for WorkloadIdentity {
    const RENEWAL: Renewal = Renewal::SignInAgain;

    fn describe(&self) -> Description {
        Description::new(
            "workload-identity",
            "Workload identity federation",
            env!("CARGO_PKG_VERSION"),
        )
        .summary(
            "Signs in as an app registration with a token from the platform the job runs \
                 on (a Kubernetes service account, a CI system's OIDC token) that the app \
                 trusts through a federated credential: no secret to keep. The token file is \
                 read again at every renewal, as it rotates.",
        )
        .parameter(
            Parameter::new(
                APP_ID,
                ParameterKind::String,
                "The app registration's client id",
            )
            .required()
            .env("AZURE_CLIENT_ID"),
        )
        .parameter(
            Parameter::new(
                TOKEN_FILE,
                ParameterKind::Path,
                "The file holding the external token",
            )
            .required()
            .env("AZURE_FEDERATED_TOKEN_FILE"),
        )
        .parameter(
            Parameter::new(
                TENANT_ID,
                ParameterKind::String,
                "The tenant, when --organization is not given",
            )
            .env("AZURE_TENANT_ID"),
        )
        .parameter(
            Parameter::new(
                AUTHORITY_HOST,
                ParameterKind::Url,
                "Another sign-in host, e.g. https://login.microsoftonline.us",
            )
            .env("AZURE_AUTHORITY_HOST"),
        )
        .capability(plugin_sdk::abi::capability::APP_ONLY)
        .capability(plugin_sdk::abi::capability::SILENT_RENEW)
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        sign_in_with_token(request, host)
    }
}

fn sign_in_with_token(request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
    let app_id = request.required(APP_ID)?;
    let authority = authority(request)?;
    let path = request.required(TOKEN_FILE)?;
    let token = read_token(path)?;
    let provider = Provider::discover(host, &authority)?;
    let scope = request.scopes().collect::<Vec<_>>().join(" ");
    let grant =
        sign_in::client_credentials(host, &provider.token_endpoint, app_id, &scope, &token)?;
    log::info!("signed in as app {app_id} with the federated token in {path}");
    Ok(grant)
}

/// The request's authority, with `--tenant-id` for a tenantless one and `--authority-host` for
/// its origin.
fn authority(request: &Request<'_>) -> Result<String, Error> {
    let mut url = url::Url::parse(request.authority())
        .map_err(|e| Error::invalid_input(format!("the authority is not a URL: {e}")))?;
    if let Some(host) = request.parameter(AUTHORITY_HOST) {
        let host = url::Url::parse(host)
            .map_err(|e| Error::invalid_input(format!("--authority-host: {e}")))?;
        url.set_scheme(host.scheme()).ok();
        url.set_host(host.host_str())
            .map_err(|e| Error::invalid_input(format!("--authority-host: {e}")))?;
        url.set_port(host.port()).ok();
    }
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
    }
    let tenant = url
        .path_segments()
        .and_then(|mut segments| segments.next_back().map(str::to_owned))
        .unwrap_or_default();
    if matches!(
        tenant.to_ascii_lowercase().as_str(),
        "organizations" | "common" | "consumers" | ""
    ) {
        let tenant_id = request.parameter(TENANT_ID).ok_or_else(|| {
            Error::invalid_input(
                "app-only sign-in needs the tenant: pass --organization, or set AZURE_TENANT_ID",
            )
        })?;
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop().push(tenant_id);
        }
    }
    Ok(url.to_string())
}

/// The external token, read again each time (it rotates).
fn read_token(path: &str) -> Result<zeroize::Zeroizing<String>, Error> {
    use std::io::Read as _;
    let unreadable =
        |e: std::io::Error| Error::invalid_input(format!("cannot read the token file {path}: {e}"));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut token = zeroize::Zeroizing::new(String::new());
    file.take(MAX_TOKEN_BYTES + 1)
        .read_to_string(&mut token)
        .map_err(unreadable)?;
    if token.len() as u64 > MAX_TOKEN_BYTES {
        return Err(Error::invalid_input(format!(
            "the token file {path} is larger than 64 KiB"
        )));
    }
    let trimmed = token.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid_input(format!(
            "the token file {path} is empty"
        )));
    }
    Ok(zeroize::Zeroizing::new(trimmed.to_owned()))
}

plugin_sdk::export_plugin!(WorkloadIdentity);
