//! The `basic-auth` login method: what scripts written for remote PowerShell with Basic
//! authentication did (`New-PSSession -ConnectionUri https://outlook.office365.com/PowerShell-LiveID/
//! -Credential $cred -Authentication Basic`), emulated for exo.
//!
//! The user name and password come as for any secret (`--password-file`, `EXO_PASSWORD`, stdin
//! or a prompt, never the command line). The host hands over the legacy endpoint from
//! `--connection-uri` (or the environment's default one). Then, as `docs/exchange-online.md`
//! ("Legacy paths") describes the service:
//! - with `BasicAuthToOAuthConversion=true`, the password signs in for an OAuth token, which
//!   the host sends as the Basic password, as the old scripts did;
//! - otherwise the credentials are tried on the endpoint with a `DELETE` that names no shell (it
//!   opens none, so it cannot use up the user's few shells). Where Basic is accepted, the grant
//!   has no token ([`BASIC_TOKEN_TYPE`]): the host speaks Basic to the endpoint, reading the
//!   password again from its source for each command;
//! - where Exchange Online refuses Basic (it retired it in 2022), the method says so in one
//!   line and signs in with modern authentication instead; an account that needs multi-factor
//!   authentication is told which methods can do it. Another server's refusal (on premises) is
//!   an error: its users' passwords never go to a cloud's sign-in service.

use base64::Engine as _;
use plugin_sdk::abi::capability;
use plugin_sdk::sign_in::{self, Prepared};
use plugin_sdk::{
    Account, AccountKind, BASIC_TOKEN_TYPE, Description, Error, ErrorKind, Grant, Host,
    LegacyEndpoint, LoginMethod, Parameter, ParameterKind, Renewal, Request,
};
use zeroize::Zeroizing;

/// The account's user name (`--user-name`, alias `--upn`).
const USER_NAME: &str = "user-name";
/// The account's password: a secret (`--password-file`, `EXO_PASSWORD`, stdin or a prompt).
const PASSWORD: &str = "password";

/// How long the credential check on the legacy endpoint may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The login method.
#[derive(Default)]
pub struct BasicAuth;

impl LoginMethod for BasicAuth {
    const RENEWAL: Renewal = Renewal::RefreshToken;

    fn describe(&self) -> Description {
        Description::new(
            "basic-auth",
            "Legacy Basic authentication (remote PowerShell)",
            env!("CARGO_PKG_VERSION"),
        )
        .summary(
            "Runs scripts written for remote PowerShell with Basic authentication: a user name \
             and password, and the legacy --connection-uri \
             https://outlook.office365.com/PowerShell-LiveID/?DelegatedOrg=…&BasicAuthToOAuthConversion=true. \
             Speaks Basic to the legacy endpoint where the server still accepts it, sends an OAuth \
             token as the password with BasicAuthToOAuthConversion=true, and otherwise signs in \
             with modern authentication (Basic was retired in Exchange Online in 2022).",
        )
        .parameter(
            Parameter::new(
                USER_NAME,
                ParameterKind::String,
                "The account, as the script's -Credential named it, e.g. admin@contoso.com",
            )
            .alias("upn")
            .required(),
        )
        .parameter(
            Parameter::new(PASSWORD, ParameterKind::String, "The account's password")
                .secret()
                .required()
                .env("EXO_PASSWORD"),
        )
        .parameter(Parameter::new(
            sign_in::CLIENT_ID,
            ParameterKind::String,
            "The app registration to sign in with when modern authentication is used \
             (default: the Exchange Online PowerShell app)",
        ))
        .capability(capability::DELEGATED)
        .capability(capability::SILENT_RENEW)
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        let user = request.required(USER_NAME)?.trim();
        let password = request.required(PASSWORD)?;
        let Some((_, domain)) = user
            .rsplit_once('@')
            .filter(|(name, domain)| !name.is_empty() && !domain.is_empty())
        else {
            return Err(Error::invalid_input(
                "--user-name must be the account's address, e.g. admin@contoso.com",
            ));
        };
        let endpoint = request.legacy_endpoint().ok_or_else(|| {
            Error::unsupported("this exo does not hand the legacy endpoint to login methods")
        })?;
        if endpoint.basic_auth_to_oauth_conversion {
            return modern(request, host, user, password);
        }
        match probe(host, &endpoint, user, password)? {
            Probe::Accepted => Ok(Grant {
                token_type: BASIC_TOKEN_TYPE.to_owned(),
                account: Account {
                    kind: AccountKind::User,
                    username: Some(user.to_owned()),
                    ..Account::default()
                },
                tenant_id: domain.to_ascii_lowercase(),
                ..Grant::default()
            }),
            Probe::BasicDisabled => {
                host.show_message(
                    "WARNING: this server does not accept Basic authentication (Exchange Online \
                     retired it on 2022-10-01); signing in with modern authentication instead",
                );
                modern(request, host, user, password).map_err(|error| {
                    if error.kind == ErrorKind::InteractionRequired {
                        Error {
                            message: format!(
                                "Basic authentication is disabled here, and {user} must use \
                                 multi-factor authentication, which a password alone cannot do; \
                                 sign in with --method sso (browser) or --method device"
                            ),
                            ..error
                        }
                    } else {
                        error
                    }
                })
            }
            Probe::NeedsMfa => Err(Error::interaction_required(format!(
                "{user} must use multi-factor authentication, which Basic authentication cannot \
                 do; sign in with --method sso (browser) or --method device"
            ))),
            Probe::Refused(message) => Err(Error {
                kind: ErrorKind::AuthenticationFailed,
                code: None,
                message,
            }),
        }
    }
}

/// Signs in with the password for an OAuth token (the password grant).
fn modern(
    request: &Request<'_>,
    host: &Host<'_>,
    user: &str,
    password: &str,
) -> Result<Grant, Error> {
    let prepared = Prepared::from(request, host)?;
    let realm = sign_in::user_realm_url(request.authority(), user);
    sign_in::password(host, &prepared.sign_in(), user, password, realm.as_deref())
}

/// What the legacy endpoint made of the credentials.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// It accepts them.
    Accepted,
    /// It does not accept Basic authentication at all.
    BasicDisabled,
    /// The account must do multi-factor authentication.
    NeedsMfa,
    /// It refused them, for this reason.
    Refused(String),
}

/// Tries the credentials on the endpoint: a `DELETE` that names no shell, so that no shell is
/// opened (a user may have only a few). A success, or a 400 for the missing shell, means they
/// were accepted.
fn probe(
    host: &Host<'_>,
    endpoint: &LegacyEndpoint,
    user: &str,
    password: &str,
) -> Result<Probe, Error> {
    let pair = Zeroizing::new(format!("{user}:{password}"));
    let header = Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    ));
    let mut credentials = plugin_sdk::http::HeaderValue::from_str(&header)
        .map_err(|_| Error::invalid_input("the user name or password holds a line break"))?;
    credentials.set_sensitive(true);
    let probe = plugin_sdk::http::Request::delete(endpoint.url.as_str())
        .header("Authorization", credentials)
        .body(Vec::new())
        .map_err(|e| Error::invalid_input(format!("the legacy endpoint is not usable: {e}")))?;
    let options = plugin_sdk::HttpOptions {
        timeout: Some(PROBE_TIMEOUT),
        ..plugin_sdk::HttpOptions::default()
    };
    let response = host.send(probe, &options)?;
    let status = response.status().as_u16();
    let message = || server_message(response.body());
    let url = &endpoint.url;
    match status {
        // 400: the request was authenticated, and named no shell.
        200..=299 | 400 => Ok(Probe::Accepted),
        401 | 403 => Ok(classify_refusal(
            status,
            &message(),
            endpoint.exchange_online,
        )),
        404 => Err(Error::invalid_input(format!(
            "there is no remote PowerShell endpoint at {url} (HTTP 404)"
        ))),
        300..=399 => {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("another address");
            Err(Error::invalid_input(format!(
                "the endpoint {url} redirects to {location}; give that as --connection-uri"
            )))
        }
        429 | 503 => Err(Error::network(format!(
            "the endpoint {url} is busy (HTTP {status}); try again later"
        ))),
        _ => Err(Error::network(format!(
            "the endpoint {url} failed (HTTP {status}): {}",
            message()
        ))),
    }
}

/// What a 401 or 403 from the legacy endpoint means, from its message: only Exchange Online's
/// own endpoint refusing Basic as such lets the password go to the cloud's sign-in instead.
fn classify_refusal(status: u16, message: &str, exchange_online: bool) -> Probe {
    let lower = message.to_ascii_lowercase();
    if lower.contains("multi-factor") {
        Probe::NeedsMfa
    } else if status == 403 || lower.contains("user name or password") || lower.contains("aadsts") {
        Probe::Refused(message.to_owned())
    } else if exchange_online {
        // Basic disabled, or Exchange Online's bare refusal.
        Probe::BasicDisabled
    } else {
        Probe::Refused(format!(
            "the server refused Basic authentication: {message}"
        ))
    }
}

/// The message of an Exchange error body (`{"error":{"message":…}}`), or its text.
fn server_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let message = message
        .strip_prefix("Access is denied. ")
        .unwrap_or(&message)
        .to_owned();
    if message.is_empty() {
        "no reason given".to_owned()
    } else {
        message.chars().take(500).collect()
    }
}

plugin_sdk::export_plugin!(BasicAuth);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_their_message_and_server() {
        let cases = [
            (
                401,
                "Basic authentication is disabled for organization 'contoso.onmicrosoft.com'",
                Probe::BasicDisabled,
            ),
            (401, "no reason given", Probe::BasicDisabled),
            (
                401,
                "This account requires multi-factor authentication, which Basic authentication can't do.",
                Probe::NeedsMfa,
            ),
            (
                401,
                "AADSTS50126: Error validating credentials. The user name or password is incorrect.",
                Probe::Refused(
                    "AADSTS50126: Error validating credentials. The user name or password is incorrect."
                        .to_owned(),
                ),
            ),
            (
                403,
                "The user isn't allowed to use remote PowerShell.",
                Probe::Refused("The user isn't allowed to use remote PowerShell.".to_owned()),
            ),
        ];
        for (status, message, expected) in cases {
            assert_eq!(
                classify_refusal(status, message, true),
                expected,
                "{message}"
            );
        }
        // On premises, a bare refusal is the server's answer to these credentials: the password
        // does not go to a cloud instead.
        assert_eq!(
            classify_refusal(401, "no reason given", false),
            Probe::Refused("the server refused Basic authentication: no reason given".to_owned())
        );
    }

    #[test]
    fn the_server_message_is_taken_from_exchange_s_error_body_or_its_text() {
        assert_eq!(
            server_message(br#"{"error":{"code":"Unauthorized","message":"Access is denied. The user name or password is incorrect."}}"#),
            "The user name or password is incorrect."
        );
        assert_eq!(server_message(b"  "), "no reason given");
        assert_eq!(server_message(b"Unauthorized"), "Unauthorized");
        assert_eq!(server_message(&[b'x'; 2000]).len(), 500);
    }
}
