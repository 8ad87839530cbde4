//! `exo connect`: resolve the endpoints, gather the method's parameters, run the plugin, keep
//! the connection and its tokens in the cache, and report who is connected.

use std::process::ExitCode;
use std::sync::Arc;

use abi_stable::std_types::{ROption, RString, RVec};
use anyhow::{Context as _, bail};
use plugin_abi::{LoginRequest, TokenGrant, capability};
use session::cache::Entry;
use session::connection::{AccountKind, Connection, MethodParameter, ParameterSource, now};
use session::environment::{self, EndpointOptions, Endpoints};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cli::{ConnectArgs, EndpointArgs, GivenParameter};
use crate::context::Context;
use crate::loader::LoadedPlugin;
use crate::parameters::{self, Resolved, SecretPrompt};
use crate::renewer::{tokens_of, wipe_grant, wipe_request};
use crate::services::{self, Services};

/// The public client of the reference module ("Microsoft Exchange REST API Based Powershell"),
/// used by delegated login methods unless they are given another.
pub const DEFAULT_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

/// Runs `exo connect`.
pub async fn run(
    context: &Context,
    args: &ConnectArgs,
    plugin: LoadedPlugin,
    given: Vec<GivenParameter>,
) -> anyhow::Result<ExitCode> {
    let endpoints = environment::resolve(&endpoint_options(&args.endpoints))?;
    // Refuse a clash before anyone signs in (and again under the lock before saving).
    let existing = context.store.read().await?;
    if let Some(other) = prefix_owner(&existing.entries, args.prefix.as_deref()) {
        bail!(
            "the prefix is already used by {} ({}); disconnect it first or choose another",
            other.connection.name(),
            other.connection.who()
        );
    }
    let environments = &plugin.description.environments;
    if !environments.is_empty()
        && !environments
            .iter()
            .any(|e| e.eq_ignore_ascii_case(endpoints.environment.as_str()))
    {
        let supported: Vec<&str> = environments.iter().map(|e| e.as_str()).collect();
        bail!(
            "the {} method supports only these environments: {}",
            plugin.method_id(),
            supported.join(", ")
        );
    }
    let interactive = !args.non_interactive && services::terminal_available();
    let prompt = TerminalPrompt { interactive };
    let parameters = parameters::resolve(&plugin.description.parameters, &given, &prompt)?;
    let request = login_request(&endpoints, &parameters, interactive);
    let http = context.clients.get(&endpoints.trust)?;
    let method = plugin.method_id().to_owned();
    let grant = acquire(context, plugin, http, request, interactive).await?;
    let tenant_id = if grant.tenant_id.is_empty() {
        args.endpoints.organization.clone().context(
            "the token names no tenant (no tid claim); pass --organization with its domain or GUID",
        )?
    } else {
        grant.tenant_id.to_string()
    };
    let account = &grant.account;
    let text = |s: &ROption<RString>| s.as_ref().map(|s| s.to_string()).into_option();
    let connection = Connection {
        id: Uuid::new_v4(),
        number: 0,
        method,
        parameters: parameters.sources.clone(),
        endpoints,
        account_kind: if account.kind == plugin_abi::AccountKind::APPLICATION {
            AccountKind::Application
        } else {
            AccountKind::User
        },
        user_principal_name: text(&account.username),
        app_id: text(&account.app_id),
        object_id: text(&account.object_id),
        tenant_id,
        organization: args.endpoints.organization.clone(),
        delegated_organization: args.delegated_organization.clone(),
        prefix: args.prefix.clone(),
        page_size: args.page_size,
        created_at: now(),
        reconnect: reconnect_args(args, &parameters.sources),
    };
    let mut locked = context.store.lock().await?;
    // Checked again under the lock: another exo may have taken the prefix meanwhile.
    if let Some(other) = prefix_owner(&locked.contents().entries, args.prefix.as_deref()) {
        bail!(
            "the prefix is already used by {} ({}); disconnect it first or choose another",
            other.connection.name(),
            other.connection.who()
        );
    }
    let entry = Entry {
        connection: connection.clone(),
        tokens: tokens_of(&grant),
    };
    let number = locked.contents().add(entry);
    locked.save()?;
    println!("{}", summary(&connection, number, grant.expires_on));
    wipe_grant(grant);
    Ok(ExitCode::SUCCESS)
}

/// The connection that already has `prefix`, if any.
fn prefix_owner<'e>(entries: &'e [Entry], prefix: Option<&str>) -> Option<&'e Entry> {
    let prefix = prefix?;
    entries.iter().find(|e| {
        e.connection
            .prefix
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    })
}

/// The non-secret `exo connect` arguments that make this connection again.
fn reconnect_args(args: &ConnectArgs, sources: &[MethodParameter]) -> Vec<String> {
    let mut words = vec!["--method".to_owned(), args.method.clone()];
    let e = &args.endpoints;
    push_option(
        &mut words,
        "environment",
        e.environment.map(|env| env.to_string()),
    );
    push_option(&mut words, "connection-uri", e.connection_uri.clone());
    push_option(&mut words, "authority-uri", e.authority_uri.clone());
    push_option(&mut words, "organization", e.organization.clone());
    push_option(
        &mut words,
        "ca-file",
        e.ca_file.as_ref().map(|p| p.display().to_string()),
    );
    push_option(
        &mut words,
        "delegated-organization",
        args.delegated_organization.clone(),
    );
    push_option(&mut words, "prefix", args.prefix.clone());
    let page_size = (args.page_size != 1000).then(|| args.page_size.to_string());
    push_option(&mut words, "page-size", page_size);
    for MethodParameter { name, source } in sources {
        let file = format!("{name}-file");
        match source {
            ParameterSource::Value(value) if value == "true" => words.push(format!("--{name}")),
            ParameterSource::Value(value) => push_option(&mut words, name, Some(value.clone())),
            ParameterSource::File(path) => {
                push_option(&mut words, &file, Some(path.display().to_string()));
            }
            ParameterSource::Stdin => push_option(&mut words, &file, Some("-".to_owned())),
            ParameterSource::Env(_) | ParameterSource::Prompt => {}
        }
    }
    words
}

fn push_option(words: &mut Vec<String>, name: &str, value: Option<String>) {
    if let Some(value) = value {
        words.push(format!("--{name}"));
        words.push(value);
    }
}

/// The endpoint options from the command line and the environment.
pub fn endpoint_options(args: &EndpointArgs) -> EndpointOptions {
    EndpointOptions {
        environment: args.environment,
        connection_uri: args.connection_uri.clone(),
        authority_uri: args.authority_uri.clone(),
        organization: args.organization.clone(),
        // Kept absolute: the connection is used from other directories.
        ca_file: args
            .ca_file
            .as_ref()
            .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.clone())),
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
    context: &Context,
    plugin: LoadedPlugin,
    http: reqwest::Client,
    request: LoginRequest,
    interactive: bool,
) -> anyhow::Result<TokenGrant> {
    let method_id = plugin.method_id().to_owned();
    let cancelled = context.cancelled.clone();
    let runtime = tokio::runtime::Handle::current();
    let services = Services::new(http, runtime, &method_id, interactive, cancelled.clone());
    let plugin = Arc::new(plugin);
    super::call_plugin(services, cancelled, move |host| {
        let grant = plugin.flow.acquire(&request, host);
        wipe_request(request);
        grant
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

fn summary(connection: &Connection, number: u32, expires_on: i64) -> String {
    let target = match &connection.delegated_organization {
        Some(customer) => format!(", acting for {customer}"),
        None => String::new(),
    };
    format!(
        "Connected ExchangeOnline_{number} to {} as {} (tenant {}{target}); the token expires {}.",
        connection.endpoints.environment,
        connection.who(),
        connection.tenant_id,
        crate::output::describe_expiry(expires_on)
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
