//! `exo token`: print a valid access token for other tools, like `az account get-access-token`.

use std::process::ExitCode;

use session::renewal::{self, Need};

use crate::cli::TokenArgs;
use crate::context::Context;
use crate::plugin_runtime::PluginRenewer;
use crate::select;

/// Runs `exo token`.
pub async fn run(context: &Context, args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let entry = select::one_from(&context.store, args.connection_id).await?;
    let connection = &entry.connection;
    if connection.transport.sends_password() {
        anyhow::bail!(
            "{} signs in with Basic authentication (a password, for each command): it has no \
             access token",
            connection.name()
        );
    }
    let id = connection.id;
    let renewer = PluginRenewer::new(context);
    let entry = renewal::valid_tokens(&context.store, id, Need::Fresh, &renewer).await?;
    if args.json {
        let expires = time::OffsetDateTime::from_unix_timestamp(entry.tokens.expires_on)?
            .format(&time::format_description::well_known::Rfc3339)?;
        let json = serde_json::json!({
            "accessToken": entry.tokens.access_token.expose(),
            "tokenType": entry.tokens.token_type,
            "expiresOn": expires,
            "expires_on": entry.tokens.expires_on,
            "tenant": entry.connection.tenant_id,
            "connectionId": entry.connection.id,
        });
        crate::output::say(format_args!("{json}"))?;
    } else {
        crate::output::say(format_args!("{}", entry.tokens.access_token.expose()))?;
    }
    Ok(ExitCode::SUCCESS)
}
