//! `exo connect`: resolve the endpoints, gather the method's parameters, run the plugin, keep
//! the connection and its tokens in the cache, and report who is connected.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use abi_stable::std_types::RResult;
use anyhow::Context as _;
use plugin_abi::{LoginRequest, TokenGrant, capability};
use session::cache::Entry;
use session::connection::{Connection, MethodParameter, NewConnection, ParameterSource};
use session::environment::{self, EndpointOptions};
use zeroize::Zeroizing;

use crate::cli::{ConnectArgs, EndpointArgs, GivenParameter};
use crate::context::Context;
use crate::loader::LoadedPlugin;
use crate::parameters::{self, SecretPrompt};
use crate::plugin_runtime::{
    Interrupted, call_plugin, describe_plugin_error, login_request, signed_in, tokens_of,
    wipe_grant, wipe_request,
};
use crate::services::{self, Services};

/// Runs `exo connect`.
pub async fn run(
    context: &Context,
    args: &ConnectArgs,
    plugin: LoadedPlugin,
    given: Vec<GivenParameter>,
) -> anyhow::Result<ExitCode> {
    let endpoints = environment::resolve(&endpoint_options(&args.endpoints))?;
    // Refuse a clash before anyone signs in (the cache refuses it again when adding).
    let existing = context.store.read().await?;
    if let Some(other) = existing.prefix_owner(args.prefix.as_deref()) {
        return Err(session::cache::PrefixTaken {
            name: other.connection.name(),
            who: other.connection.who().to_owned(),
        }
        .into());
    }
    let environments = &plugin.description.environments;
    if !environments.is_empty()
        && !environments
            .iter()
            .any(|e| e.eq_ignore_ascii_case(endpoints.environment.as_str()))
    {
        let supported: Vec<&str> = environments.iter().map(|e| e.as_str()).collect();
        anyhow::bail!(
            "the {} method supports only these environments: {}",
            plugin.method_id(),
            supported.join(", ")
        );
    }
    let interactive = !args.non_interactive && services::terminal_available();
    let prompt = TerminalPrompt { interactive };
    let parameters = parameters::resolve(&plugin.description.parameters, &given, &prompt)?;
    let request = login_request(&endpoints, &parameters, interactive);
    let method = plugin.method_id().to_owned();
    let certificate_authentication = plugin
        .description
        .capabilities
        .iter()
        .any(|c| c.as_str() == capability::CERTIFICATE);
    let trust = endpoints.trust.clone();
    let grant = acquire(context, plugin, trust, request, interactive).await?;
    let new = NewConnection {
        method,
        parameters: parameters.sources.clone(),
        endpoints,
        organization: args.endpoints.organization.clone(),
        delegated_organization: args.delegated_organization.clone(),
        prefix: args.prefix.clone(),
        page_size: args.page_size,
        reconnect: reconnect_args(args, &parameters.sources),
        certificate_authentication,
    };
    let tokens = tokens_of(&new.method, &grant);
    let connection = new.signed_in(signed_in(&grant));
    let expires_on = grant.expires_on;
    wipe_grant(grant);
    let (connection, tokens) = (connection?, tokens?);
    let mut locked = context.store.lock().await?;
    let number = locked.contents().add(Entry {
        connection: connection.clone(),
        tokens,
    })?;
    locked.save()?;
    crate::output::say(format_args!("{}", summary(&connection, number, expires_on)))?;
    Ok(ExitCode::SUCCESS)
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
    for MethodParameter { name, source, .. } in sources {
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

async fn acquire(
    context: &Context,
    plugin: LoadedPlugin,
    trust: session::environment::Trust,
    request: LoginRequest,
    interactive: bool,
) -> anyhow::Result<TokenGrant> {
    let method_id = plugin.method_id().to_owned();
    let cancelled = context.cancelled.clone();
    let services = Services::new(
        context.clients.clone(),
        trust,
        &method_id,
        interactive,
        cancelled.clone(),
    );
    let plugin = Arc::new(plugin);
    let interrupted = cancelled.clone();
    call_plugin(services, cancelled, move |host| {
        let grant: RResult<TokenGrant, _> = plugin.flow.acquire(&request, host);
        wipe_request(request);
        grant
    })
    .await
    .map_err(|e| {
        // Whatever the plugin made of it, a Ctrl-C is the user's choice, not its failure.
        if interrupted.load(Ordering::Relaxed) {
            anyhow::Error::new(Interrupted)
        } else {
            anyhow::anyhow!("{}", describe_plugin_error(&e))
        }
    })
    .with_context(|| format!("sign-in with {method_id} failed"))
}

fn summary(connection: &Connection, number: u32, expires_on: i64) -> String {
    let target = match &connection.delegated_organization {
        Some(customer) => format!(", acting for {customer}"),
        None => String::new(),
    };
    format!(
        "Connected ExchangeOnline_{number} to {} as {} (tenant {}{target}); the token expires {}.",
        connection.endpoints.environment,
        crate::output::untrusted(connection.who(), false),
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
