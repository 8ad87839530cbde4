//! `exo connect`: resolve the endpoints, gather the method's parameters, run the plugin, keep
//! the connection and its tokens in the cache, and report who is connected.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use abi_stable::std_types::RResult;
use anyhow::Context as _;
use plugin_abi::{LoginRequest, TokenGrant, capability, extension};
use session::cache::Entry;
use session::connection::{
    Connection, LegacyPassword, MethodParameter, NewConnection, ParameterSource, Transport,
};
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
    let mut endpoints = environment::resolve(&endpoint_options(&args.endpoints))?;
    let delegated_organization = delegated_organization(args, &endpoints)?;
    if let Some(legacy) = &mut endpoints.legacy {
        legacy.delegated_organization = delegated_organization.clone();
    }
    // Refuse a clash before anyone signs in (the cache refuses it again when adding).
    let existing = match args.prefix.as_deref() {
        Some(prefix) => context.store.with_prefix(prefix).await?,
        None => None,
    };
    if let Some(other) = existing {
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
    if args.remember_password {
        if !parameters.sources.iter().any(|p| is_typed(&p.source)) {
            anyhow::bail!(
                "--remember-password keeps a secret typed at the prompt or read from stdin or a \
                 pipe; this connection reads its secrets again from their files or variables"
            );
        }
        // Before anything is sent: a secret exo was asked to keep but cannot must not be used.
        session::keys::keyring_available().context("--remember-password needs the OS keyring")?;
    }
    let request = login_request(&endpoints, &parameters, interactive);
    let method = plugin.method_id().to_owned();
    let certificate_authentication = plugin
        .description
        .capabilities
        .iter()
        .any(|c| c.as_str() == capability::CERTIFICATE);
    let trust = endpoints.trust.clone();
    let grant = acquire(context, plugin, trust, request, interactive).await?;
    let transport = transport_of(&grant, &endpoints);
    if transport != Transport::InvokeCommand && endpoints.legacy.is_none() {
        let mut legacy = endpoints.legacy_or_default();
        legacy.delegated_organization = delegated_organization.clone();
        endpoints.legacy = Some(legacy);
    }
    let new = NewConnection {
        method,
        parameters: parameters.sources.clone(),
        endpoints,
        organization: args.endpoints.organization.clone(),
        delegated_organization,
        prefix: args.prefix.clone(),
        page_size: args.page_size,
        reconnect: reconnect_args(args, &parameters.sources),
        certificate_authentication,
        transport,
    };
    let tokens = tokens_of(&new.method, &grant);
    let connection = new.signed_in(signed_in(&grant));
    let expires_on = grant.expires_on;
    wipe_grant(grant);
    let (mut connection, tokens) = (connection?, tokens?);
    // A connection that renews with its refresh token never needs the secret again.
    let remember = args.remember_password && tokens.refresh_token.is_none();
    if args.remember_password && !remember {
        crate::output::tell(format_args!(
            "exo keeps no secret for this connection: it renews with its refresh token"
        ));
    }
    if remember {
        remember_typed_secrets(&mut connection, &parameters)?;
    }
    let saved = context
        .store
        .add(Entry {
            connection: connection.clone(),
            tokens,
            legacy_shell: None,
            refused_password: None,
        })
        .await;
    let number = match saved {
        Ok(number) => number,
        Err(error) => {
            // Nothing may stay in the keyring for a connection that does not exist.
            crate::commands::disconnect::forget_kept_secrets(&connection);
            return Err(error.into());
        }
    };
    crate::output::say(format_args!("{}", summary(&connection, number, expires_on)))?;
    if let Some(warning) = password_not_kept(&connection, number) {
        crate::output::tell(format_args!("WARNING: {warning}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The customer organization: `--delegated-organization`, or the legacy connection URI's
/// `DelegatedOrg`; both must agree.
fn delegated_organization(
    args: &ConnectArgs,
    endpoints: &environment::Endpoints,
) -> anyhow::Result<Option<String>> {
    let from_uri = endpoints
        .legacy
        .as_ref()
        .and_then(|legacy| legacy.delegated_organization.clone());
    match (&args.delegated_organization, from_uri) {
        (Some(given), Some(uri)) if !given.eq_ignore_ascii_case(&uri) => anyhow::bail!(
            "--delegated-organization {} and the connection URI's DelegatedOrg={} disagree",
            given.escape_debug(),
            uri.escape_debug()
        ),
        (Some(given), _) => Ok(Some(given.clone())),
        (None, uri) => Ok(uri),
    }
}

/// How the connection's cmdlets reach Exchange: remote PowerShell's legacy endpoint for a
/// Basic sign-in (with the password) and for `BasicAuthToOAuthConversion=true` (with the
/// token as the password); the admin API otherwise.
fn transport_of(grant: &TokenGrant, endpoints: &environment::Endpoints) -> Transport {
    if grant.token_type.as_str() == extension::BASIC_TOKEN_TYPE {
        Transport::Legacy {
            password: LegacyPassword::Password,
        }
    } else if endpoints
        .legacy
        .as_ref()
        .is_some_and(|legacy| legacy.basic_auth_to_oauth_conversion)
    {
        Transport::Legacy {
            password: LegacyPassword::AccessToken,
        }
    } else {
        Transport::InvokeCommand
    }
}

/// Whether a secret from `source` cannot be read again: it was typed, or read from stdin or
/// a pipe (`--password-file <(…)`).
fn is_typed(source: &ParameterSource) -> bool {
    match source {
        ParameterSource::Prompt | ParameterSource::Stdin => true,
        ParameterSource::File(path) => !std::fs::metadata(path).is_ok_and(|m| m.is_file()),
        _ => false,
    }
}

/// Keeps the secrets that were typed or read from stdin in the OS keyring, as the user asked,
/// and records that they are there.
fn remember_typed_secrets(
    connection: &mut Connection,
    parameters: &parameters::Resolved,
) -> anyhow::Result<()> {
    for parameter in &mut connection.parameters {
        if !is_typed(&parameter.source) {
            continue;
        }
        let Some(value) = parameters
            .values
            .iter()
            .find(|v| v.name.as_str() == parameter.name)
        else {
            continue;
        };
        let account = session::keys::secret_account(connection.id, &parameter.name);
        session::keys::remember(&account, value.value.as_slice())
            .with_context(|| format!("cannot keep --{} as asked", parameter.name))?;
        parameter.source = ParameterSource::Keyring(account);
    }
    Ok(())
}

/// Why legacy Basic connection `number` will not work after this process, if it will not.
fn password_not_kept(connection: &Connection, number: u32) -> Option<String> {
    if !connection.transport.sends_password() {
        return None;
    }
    let source = &crate::credentials::password_parameter(connection)?.source;
    is_typed(source).then(|| {
        format!(
            "ExchangeOnline_{number} sends the password with every command, and exo keeps no \
             password: later commands cannot use it. Connect again with --remember-password (the \
             OS keyring), --password-file or EXO_PASSWORD."
        )
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
    for MethodParameter { name, source, .. } in sources {
        let file = format!("{name}-file");
        match source {
            ParameterSource::Value(value) if value == "true" => words.push(format!("--{name}")),
            ParameterSource::Value(value) => push_option(&mut words, name, Some(value.clone())),
            ParameterSource::File(path) => {
                push_option(&mut words, &file, Some(path.display().to_string()));
            }
            ParameterSource::Stdin => push_option(&mut words, &file, Some("-".to_owned())),
            ParameterSource::Env(_) | ParameterSource::Prompt | ParameterSource::Keyring(_) => {}
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
    let how = match connection.transport {
        Transport::InvokeCommand => {
            format!(
                "the token expires {}",
                crate::output::describe_expiry(expires_on)
            )
        }
        Transport::Legacy {
            password: LegacyPassword::AccessToken,
        } => format!(
            "cmdlets go to remote PowerShell with the token as the Basic password; it expires {}",
            crate::output::describe_expiry(expires_on)
        ),
        Transport::Legacy {
            password: LegacyPassword::Password,
        } => "cmdlets go to remote PowerShell with Basic authentication".to_owned(),
    };
    format!(
        "Connected ExchangeOnline_{number} to {} as {} (tenant {}{target}); {how}.",
        connection.endpoints.environment,
        crate::output::untrusted(connection.who(), false),
        connection.tenant_id,
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
