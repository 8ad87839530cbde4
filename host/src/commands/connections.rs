//! `exo connections`: what Get-ConnectionInformation prints.

use std::io::{IsTerminal as _, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;
use session::cache::Entry;
use session::connection::{Transport, now};

use crate::cli::{ConnectionsArgs, ConnectionsFormat};
use crate::context::Context;
use crate::output::write_table;
use crate::select;

/// Runs `exo connections`.
pub async fn run(context: &Context, args: &ConnectionsArgs) -> anyhow::Result<ExitCode> {
    let contents = context.store.read().await?;
    for damaged in &contents.damaged {
        crate::output::tell(format_args!(
            "exo: {}; the other connections work, and `exo disconnect --connection-id {}` removes it",
            damaged.reason, damaged.id
        ));
    }
    let entries = select::matching(&contents.entries, &args.selection)?;
    let infos: Vec<ConnectionInformation> = entries
        .into_iter()
        .map(ConnectionInformation::from)
        .collect();
    let format = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        ConnectionsFormat::List
    } else {
        ConnectionsFormat::Json
    });
    write_connections(&mut std::io::stdout().lock(), format, &infos)
        .context("cannot write the output")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the connections in `format`.
fn write_connections(
    out: &mut impl Write,
    format: ConnectionsFormat,
    infos: &[ConnectionInformation],
) -> std::io::Result<()> {
    match format {
        ConnectionsFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, infos)?;
            writeln!(out)?;
        }
        _ if infos.is_empty() => writeln!(
            out,
            "No connections. Sign in with `exo connect --method <METHOD>`."
        )?,
        ConnectionsFormat::List => {
            for info in infos {
                let fields = info.fields();
                let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
                for (name, value) in fields {
                    let value = crate::output::untrusted(&value, false);
                    writeln!(out, "{}", format!("{name:width$} : {value}").trim_end())?;
                }
                writeln!(out)?;
            }
        }
        ConnectionsFormat::Table => {
            let header: Vec<&str> = infos[0].fields().iter().map(|(name, _)| *name).collect();
            let rows: Vec<Vec<String>> = infos
                .iter()
                .map(|i| {
                    i.fields()
                        .into_iter()
                        .map(|(_, v)| crate::output::untrusted(&v, false))
                        .collect()
                })
                .collect();
            write_table(out, &header, &rows)?;
        }
    }
    out.flush()
}

/// The fields of Get-ConnectionInformation, plus exo's login method and environment.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConnectionInformation {
    connection_id: String,
    state: &'static str,
    id: u32,
    name: String,
    user_principal_name: Option<String>,
    connection_uri: String,
    azure_ad_authorization_endpoint_uri: String,
    #[serde(rename = "TokenExpiryTimeUTC")]
    token_expiry_time_utc: String,
    certificate_authentication: bool,
    module_prefix: Option<String>,
    organization: Option<String>,
    delegated_organization: Option<String>,
    app_id: Option<String>,
    page_size: u32,
    #[serde(rename = "TenantID")]
    tenant_id: String,
    token_status: &'static str,
    login_method: String,
    environment: String,
}

impl From<&Entry> for ConnectionInformation {
    fn from(entry: &Entry) -> Self {
        let c = &entry.connection;
        let format = time::format_description::well_known::Rfc3339;
        let is_basic = c.transport.sends_password();
        Self {
            connection_id: c.id.to_string(),
            state: "Connected",
            id: c.number,
            name: c.name(),
            user_principal_name: c.user_principal_name.clone(),
            connection_uri: match c.transport {
                Transport::InvokeCommand => c
                    .endpoints
                    .exchange
                    .as_str()
                    .trim_end_matches('/')
                    .to_owned(),
                Transport::Legacy { .. } => c.endpoints.legacy_or_default().request_url().into(),
            },
            azure_ad_authorization_endpoint_uri: c.endpoints.authority.to_string(),
            // A Basic connection has no token to expire.
            token_expiry_time_utc: time::OffsetDateTime::from_unix_timestamp(
                entry.tokens.expires_on,
            )
            .ok()
            .filter(|_| !is_basic)
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_default(),
            certificate_authentication: c.certificate_authentication,
            module_prefix: c.prefix.clone(),
            organization: c.organization.clone(),
            delegated_organization: c.delegated_organization.clone(),
            app_id: c.app_id.clone(),
            page_size: c.page_size,
            tenant_id: c.tenant_id.clone(),
            token_status: if entry.tokens.is_expired(now()) {
                "Expired"
            } else {
                "Active"
            },
            login_method: c.method.clone(),
            environment: c.endpoints.environment.to_string(),
        }
    }
}

impl ConnectionInformation {
    /// Name and text of every field, in Get-ConnectionInformation's order.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            ("ConnectionId", self.connection_id.clone()),
            ("State", self.state.to_owned()),
            ("Id", self.id.to_string()),
            ("Name", self.name.clone()),
            ("UserPrincipalName", text(&self.user_principal_name)),
            ("ConnectionUri", self.connection_uri.clone()),
            (
                "AzureAdAuthorizationEndpointUri",
                self.azure_ad_authorization_endpoint_uri.clone(),
            ),
            ("TokenExpiryTimeUTC", self.token_expiry_time_utc.clone()),
            (
                "CertificateAuthentication",
                if self.certificate_authentication {
                    "True"
                } else {
                    "False"
                }
                .to_owned(),
            ),
            ("ModulePrefix", text(&self.module_prefix)),
            ("Organization", text(&self.organization)),
            ("DelegatedOrganization", text(&self.delegated_organization)),
            ("AppId", text(&self.app_id)),
            ("PageSize", self.page_size.to_string()),
            ("TenantID", self.tenant_id.clone()),
            ("TokenStatus", self.token_status.to_owned()),
            ("LoginMethod", self.login_method.clone()),
            ("Environment", self.environment.clone()),
        ]
    }
}
