//! `exo-sandbox`: run the local emulator of the Microsoft identity platform and the Exchange
//! admin REST API, print its default seed, or fetch an app-only token from a running one.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use sandbox::{Cloud, FaultRule, Sandbox, SandboxConfig, Seed};

#[derive(Parser)]
#[command(
    name = "exo-sandbox",
    version,
    about = "Local emulator of the Microsoft identity platform and the Exchange admin REST API",
    long_about = "A local, faithful emulator of Microsoft Entra ID sign-in and the Exchange Online admin \
REST API (like Azurite for Azure Storage): HTTPS on 127.0.0.1 with its own test CA, real OAuth 2.0 \
flows and signed tokens, sign-in and device-login pages with TOTP MFA, managed-identity endpoints, \
mailboxes and fault injection. Point exo (or any other client) at it with `--environment sandbox`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sandbox until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Print the built-in seed document (TOML) to copy and edit; it contains the well-known
    /// sandbox test credentials (passwords, TOTP secrets, client secrets).
    Seed,
    /// Print an app-only access token from a running sandbox (client credentials with the
    /// seeded app's certificate); only the token goes to stdout.
    GetToken(GetTokenArgs),
    /// Print a seeded MFA user's current authenticator code (RFC 6238), to type on the sign-in
    /// or device-login page, e.g. `exo-sandbox totp admin@contoso.onmicrosoft.com`.
    Totp(TotpArgs),
}

#[derive(clap::Args)]
struct TotpArgs {
    /// The user's UPN
    upn: String,
    /// Seed file the sandbox runs with [default: the built-in seed]
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// State directory: CA, keys, tenant data and the discovery file sandbox.json
    /// [default: <data dir>/exo/sandbox, e.g. ~/.local/share/exo/sandbox]
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Seed file (TOML, or JSON if it ends in .json); default: the built-in seed (`exo-sandbox seed`)
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Generate N more mailboxes in the first tenant (load tests)
    #[arg(long, value_name = "N", default_value_t = 0)]
    mailboxes: usize,
    /// Generate N more tenants (tenant0001…) with the first tenant's apps (fan-out benchmarks)
    #[arg(long, value_name = "N", default_value_t = 0)]
    tenants: usize,
    /// HTTPS port on 127.0.0.1 (0 = any free port)
    #[arg(long, value_name = "P", default_value_t = 0)]
    port: u16,
    /// Managed-identity (plain HTTP) port on 127.0.0.1 (0 = any free port)
    #[arg(long = "mi-port", value_name = "P", default_value_t = 0)]
    mi_port: u16,
    /// Service Fabric managed-identity (HTTPS, self-signed) port on 127.0.0.1 (0 = any free port)
    #[arg(long = "sf-port", value_name = "P", default_value_t = 0)]
    sf_port: u16,
    /// Directory for Azure Arc challenge files; real clients (MSAL, azure-identity) require
    /// /var/opt/azcmagent/tokens [default: the seed's azure_arc.token_dir, else <state>/arc/tokens]
    #[arg(long = "arc-token-dir", value_name = "DIR")]
    arc_token_dir: Option<PathBuf>,
    /// A fault rule active from the start, in the admin endpoint's JSON format, e.g.
    /// '{"kind":"throttle","target":"exchange","retry_after_seconds":2,"count":1}' (repeatable)
    #[arg(long = "fault", value_name = "RULE_JSON", value_parser = parse_fault)]
    faults: Vec<FaultRule>,
}

/// Parses a `--fault` rule.
fn parse_fault(text: &str) -> Result<FaultRule, String> {
    serde_json::from_str(text).map_err(|e| format!("not a fault rule: {e}"))
}

#[derive(clap::Args)]
struct GetTokenArgs {
    /// State directory of the running sandbox [default: <data dir>/exo/sandbox]
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Tenant name, id or domain [default: the first tenant]
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Client id of an app with a certificate [default: the tenant's first such app]
    #[arg(long, value_name = "CLIENT_ID")]
    app: Option<String>,
    /// Scope [default: https://outlook.office365.com/.default]
    #[arg(
        long,
        value_name = "S",
        default_value = "https://outlook.office365.com/.default"
    )]
    scope: String,
}

fn default_state_dir() -> anyhow::Result<PathBuf> {
    Ok(dirs::data_dir()
        .context("no data directory on this system: pass --state DIR")?
        .join("exo")
        .join("sandbox"))
}

/// Runs the command; an error is one line on stderr and exit status 1 (never a backtrace).
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("exo-sandbox: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Seed => {
            print!("{}", Seed::default_toml());
            Ok(())
        }
        Command::Serve(args) => serve(args),
        Command::GetToken(args) => get_token(args),
        Command::Totp(args) => totp(&args),
    }
}

fn totp(args: &TotpArgs) -> anyhow::Result<()> {
    let seed = match &args.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::default(),
    };
    let user = seed
        .tenants
        .iter()
        .flat_map(|t| t.users.iter())
        .find(|u| u.upn.eq_ignore_ascii_case(&args.upn))
        .with_context(|| format!("the seed has no user {}", args.upn))?;
    let secret = user
        .totp_secret
        .as_deref()
        .with_context(|| format!("{} has no MFA (no totp_secret in the seed)", user.upn))?;
    let code =
        sandbox::totp::current_code(secret).context("the seed's TOTP secret is not base32")?;
    println!("{code}");
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let state = match args.state {
        Some(dir) => dir,
        None => default_state_dir()?,
    };
    let mut seed = match &args.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::default(),
    };
    seed.faults.extend(args.faults);
    if let Some(dir) = args.arc_token_dir {
        seed.azure_arc.token_dir = Some(dir);
    }
    let config = SandboxConfig {
        port: args.port,
        managed_identity_port: args.mi_port,
        service_fabric_port: args.sf_port,
        extra_mailboxes: args.mailboxes,
        extra_tenants: args.tenants,
        seed,
        ..SandboxConfig::new(state)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let sandbox = Sandbox::start(config).await?;
        print_banner(&sandbox);
        wait_for_signal().await?;
        eprintln!("stopping");
        sandbox.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn print_banner(sandbox: &Sandbox) {
    println!("exo sandbox is running (Ctrl-C to stop)\n");
    println!("Clouds (identity, Exchange admin API and /PowerShell-LiveID under each):");
    for cloud in Cloud::ALL {
        println!(
            "  {:<18} {}",
            cloud.environment_name(),
            sandbox.cloud_url(cloud)
        );
    }
    println!("Managed identity:    {}", sandbox.managed_identity_url());
    println!(
        "  IMDS GET /metadata/identity/oauth2/token · App Service GET /MSI/token (X-IDENTITY-HEADER: {})",
        sandbox.identity_header()
    );
    println!(
        "  Azure Arc GET /arc/metadata/identity/oauth2/token · Cloud Shell POST /oauth2/token"
    );
    println!(
        "Service Fabric:      {} (Secret: the identity header; IDENTITY_SERVER_THUMBPRINT {})",
        sandbox.service_fabric_url(),
        sandbox.service_fabric_thumbprint()
    );
    println!("CA certificate:      {}", sandbox.ca_file().display());
    println!(
        "Discovery file:      {}",
        sandbox.state_dir().join(sandbox::DISCOVERY_FILE).display()
    );
    println!(
        "Admin endpoints:     {}_sandbox/faults, {}_sandbox/requests (unauthenticated: any local user can use them)",
        sandbox.base_url(),
        sandbox.base_url()
    );
    let faults = sandbox.faults().list();
    if !faults.is_empty() {
        println!(
            "Fault rules:         {} active (GET /_sandbox/faults)",
            faults.len()
        );
    }
    println!("\nAccounts (credentials: run `exo-sandbox seed`):");
    for tenant in &sandbox.seed().tenants {
        if tenant.users.is_empty() && tenant.name.starts_with("tenant") {
            continue;
        }
        println!(
            "  tenant {} ({}, {})",
            tenant.name,
            tenant.id,
            tenant.initial_domain()
        );
        for user in &tenant.users {
            let mut notes: Vec<String> = user.roles.iter().map(|r| format!("{r:?}")).collect();
            if user.totp_secret.is_some() {
                notes.push("MFA".into());
            }
            if !user.exo_module_enabled {
                notes.push("PowerShell disabled".into());
            }
            for (on, note) in [
                (user.disabled, "disabled"),
                (user.locked, "locked"),
                (user.password_expired, "password expired"),
            ] {
                if on {
                    notes.push(note.into());
                }
            }
            println!("    user {:<45} {}", user.upn, notes.join(", "));
        }
        for app in &tenant.apps {
            let cert = app
                .certificate_file
                .as_ref()
                .map(|p| format!(" cert {}", p.display()))
                .unwrap_or_default();
            println!("    app  {} {}{}", app.client_id, app.display_name, cert);
        }
    }
    for mi in &sandbox.seed().managed_identities {
        println!(
            "  managed identity {} ({:?}) client_id {}",
            mi.name, mi.kind, mi.client_id
        );
    }
    let generated = sandbox
        .seed()
        .tenants
        .iter()
        .filter(|t| t.users.is_empty() && t.name.starts_with("tenant"))
        .count();
    if generated > 0 {
        println!("  + {generated} generated tenants (tenant0001…)");
    }
}

fn get_token(args: GetTokenArgs) -> anyhow::Result<()> {
    let state = match args.state {
        Some(dir) => dir,
        None => default_state_dir()?,
    };
    let discovery_path = state.join(sandbox::DISCOVERY_FILE);
    let discovery: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&discovery_path).with_context(|| {
            format!(
                "no running sandbox: cannot read {}",
                discovery_path.display()
            )
        })?)
        .with_context(|| format!("{} is not valid JSON", discovery_path.display()))?;
    let base_url = url::Url::parse(discovery["base_url"].as_str().unwrap_or_default())
        .context("sandbox.json has no valid base_url")?;
    let ca_file = PathBuf::from(discovery["ca_file"].as_str().unwrap_or_default());
    let ca_pem = std::fs::read_to_string(&ca_file)
        .with_context(|| format!("cannot read the CA file {}", ca_file.display()))?;
    let tenant = match &args.tenant {
        Some(t) => discovery["tenants"]
            .as_array()
            .and_then(|list| {
                list.iter().find(|e| {
                    [e["name"].as_str(), e["id"].as_str(), e["domain"].as_str()]
                        .contains(&Some(t.as_str()))
                })
            })
            .with_context(|| format!("the sandbox has no tenant '{t}'"))?,
        None => discovery["tenants"]
            .get(0)
            .context("the sandbox has no tenants")?,
    };
    let tenant_name = tenant["name"].as_str().unwrap_or_default();
    let apps: Vec<&serde_json::Value> = discovery["apps"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|a| a["tenant"].as_str() == Some(tenant_name))
                .collect()
        })
        .unwrap_or_default();
    let app = match &args.app {
        Some(id) => apps
            .iter()
            .find(|a| {
                a["client_id"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(id))
            })
            .with_context(|| {
                format!("tenant {tenant_name} has no app with a certificate and client id {id}")
            })?,
        None => apps
            .first()
            .with_context(|| format!("tenant {tenant_name} has no app with a certificate"))?,
    };
    let read = |field: &str| -> anyhow::Result<String> {
        let path = PathBuf::from(app[field].as_str().unwrap_or_default());
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let (cert_pem, key_pem) = (read("certificate_file")?, read("key_file")?);
    let tenant_id = tenant["id"].as_str().unwrap_or_default().to_owned();
    let client_id = app["client_id"].as_str().unwrap_or_default().to_owned();
    match sandbox::client::client_credentials_token(
        &base_url,
        &ca_pem,
        &tenant_id,
        &client_id,
        &cert_pem,
        &key_pem,
        &args.scope,
    ) {
        Ok(token) => {
            println!("{}", token.access_token);
            Ok(())
        }
        Err(e) => bail!("token request failed: {e}"),
    }
}
