//! `exo connect`: resolve the endpoints, gather the method's parameters, run the plugin, and
//! report who is connected.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use abi_stable::std_types::{RString, RVec};
use anyhow::Context as _;
use plugin_abi::{LoginRequest, TokenGrant, capability};
use session::environment::{self, EndpointOptions, Endpoints};
use zeroize::Zeroizing;

use crate::cli::{ConnectArgs, EndpointArgs, GivenParameter, GlobalArgs};
use crate::http::Clients;
use crate::loader::LoadedPlugin;
use crate::parameters::{self, Resolved, SecretPrompt};
use crate::services::{self, Services};

/// The public client of the reference module ("Microsoft Exchange REST API Based Powershell"),
/// used by delegated login methods unless they are given another.
pub const DEFAULT_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

/// Runs `exo connect`.
pub async fn run(
    _global: &GlobalArgs,
    args: &ConnectArgs,
    plugin: LoadedPlugin,
    given: Vec<GivenParameter>,
) -> anyhow::Result<ExitCode> {
    let endpoints = environment::resolve(&endpoint_options(&args.endpoints))?;
    let interactive = !args.non_interactive && services::terminal_available();
    let parameters = parameters::resolve(
        &plugin.description.parameters,
        &given,
        &TerminalPrompt { interactive },
    )?;
    let request = login_request(&endpoints, &parameters, interactive);
    let clients = Clients::default();
    let http = clients.get(&endpoints.trust)?;
    let grant = acquire(plugin, http, request, interactive).await?;
    println!("{}", summary(&endpoints, &grant));
    Ok(ExitCode::SUCCESS)
}

/// The endpoint options from the command line and the environment.
pub fn endpoint_options(args: &EndpointArgs) -> EndpointOptions {
    EndpointOptions {
        environment: args.environment,
        connection_uri: args.connection_uri.clone(),
        authority_uri: args.authority_uri.clone(),
        organization: args.organization.clone(),
        ca_file: args.ca_file.clone(),
        sandbox_dir: std::env::var_os("EXO_SANDBOX_DIR")
            .map(Into::into)
            .or_else(|| dirs::data_dir().map(|d| d.join("exo").join("sandbox"))),
    }
}

/// The request a plugin receives for `endpoints`.
pub fn login_request(
    endpoints: &Endpoints,
    parameters: &Resolved,
    interactive: bool,
) -> LoginRequest {
    let mut host_capabilities = RVec::new();
    if interactive {
        host_capabilities.push(capability::HOST_PROMPT.into());
        host_capabilities.push(capability::HOST_BROWSER.into());
    }
    LoginRequest {
        parameters: parameters.values.clone().into_iter().collect(),
        environment: endpoints.environment.as_str().into(),
        authority: endpoints.authority.as_str().into(),
        resource: endpoints.resource.as_str().into(),
        scopes: RVec::from(vec![RString::from(endpoints.scope())]),
        client_id: DEFAULT_CLIENT_ID.into(),
        interactive,
        host_capabilities,
        extensions: RString::new(),
    }
}

async fn acquire(
    plugin: LoadedPlugin,
    http: reqwest::Client,
    request: LoginRequest,
    interactive: bool,
) -> anyhow::Result<TokenGrant> {
    let method_id = plugin.method_id().to_owned();
    let cancelled = Arc::new(AtomicBool::new(false));
    let services = Services::new(
        http,
        tokio::runtime::Handle::current(),
        &method_id,
        interactive,
        cancelled.clone(),
    );
    let plugin = Arc::new(plugin);
    super::call_plugin(services, cancelled, move |host| {
        plugin.flow.acquire(&request, host)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}", describe_plugin_error(&e)))
    .with_context(|| format!("sign-in with {method_id} failed"))
}

/// A plugin error for people: the code (e.g. AADSTS50126) first when there is one.
pub fn describe_plugin_error(error: &plugin_abi::PluginError) -> String {
    if error.code.is_empty() || error.message.starts_with(error.code.as_str()) {
        error.message.to_string()
    } else {
        format!("{}: {}", error.code, error.message)
    }
}

fn summary(endpoints: &Endpoints, grant: &TokenGrant) -> String {
    let account = &grant.account;
    let who = account
        .username
        .as_ref()
        .or(account.app_id.as_ref())
        .map(|s| s.to_string())
        .unwrap_or_else(|| "an unnamed account".to_owned());
    format!(
        "Connected to {} as {who} (tenant {}); the token expires {}.",
        endpoints.environment,
        if grant.tenant_id.is_empty() {
            "unknown"
        } else {
            grant.tenant_id.as_str()
        },
        crate::output::describe_expiry(grant.expires_on)
    )
}

/// Asks for a missing secret on the terminal, when there is one.
struct TerminalPrompt {
    interactive: bool,
}

impl SecretPrompt for TerminalPrompt {
    fn ask(&self, name: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
        if !self.interactive {
            return Ok(None);
        }
        let answer = rpassword::prompt_password(format!("{name}: "))
            .context("cannot read from the terminal")?;
        Ok((!answer.is_empty()).then(|| Zeroizing::new(answer)))
    }
}
