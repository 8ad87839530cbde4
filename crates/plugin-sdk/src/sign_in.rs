//! The three ways a person signs in, on top of [`crate::oidc`]: in the browser (authorization
//! code + PKCE through the host's loopback listener), with a device code (shown through the
//! host, polled with its cancellable sleep), and with a password (ROPC). Each returns a
//! [`Grant`] whose ID token was verified and whose plugin state says how to renew.
//!
//! Protocol facts: `docs/identity-platform.md`, "Authorization code with PKCE and the loopback
//! redirect", "Device code", "Password grant (ROPC)".

use std::time::{Duration, Instant};

use oauth2::{CsrfToken, PkceCodeChallenge};
use serde_json::Value;

use crate::oidc::{self, Provider, Renewal};
use crate::{Error, ErrorKind, Grant, Host, idp};

/// Who signs in, and how the sign-in is scoped.
#[derive(Clone, Debug)]
pub struct SignIn<'a> {
    /// The identity provider's endpoints.
    pub provider: &'a Provider,
    /// The (public) client id.
    pub client_id: &'a str,
    /// Space-separated scopes, see [`oidc::delegated_scopes`].
    pub scope: &'a str,
}

impl SignIn<'_> {
    fn renewal(&self) -> Renewal {
        Renewal {
            token_endpoint: self.provider.token_endpoint.clone(),
            client_id: self.client_id.to_owned(),
            issuer: self.provider.issuer.clone(),
            jwks_uri: self.provider.jwks_uri.clone(),
        }
    }

    /// The grant for `tokens`, which must carry an ID token (`openid` was asked for): it is
    /// verified (with its nonce, when one was sent) and says who signed in. The token's expiry
    /// counts from now, when it arrived, not from when the sign-in started.
    fn finish(
        &self,
        host: &Host<'_>,
        tokens: oidc::Tokens,
        nonce: Option<&str>,
    ) -> Result<Grant, Error> {
        let now = now();
        let id_token = tokens.id_token.as_deref().ok_or_else(|| {
            Error::network(
                "the identity provider returned no ID token, so exo cannot tell who signed in",
            )
        })?;
        let identity = oidc::verify_id_token(host, self.provider, id_token, self.client_id, nonce)?;
        Ok(oidc::grant(tokens, identity, &self.renewal(), now))
    }
}

/// The browser sign-in's options.
#[derive(Clone, Debug, Default)]
pub struct BrowserOptions {
    /// `login_hint`: the user principal name to sign in as.
    pub login_hint: Option<String>,
    /// `domain_hint`.
    pub domain_hint: Option<String>,
    /// `prompt` (`login`, `select_account`, `consent`, `none`).
    pub prompt: Option<String>,
    /// Print the URL instead of opening a browser.
    pub no_browser: bool,
    /// How long to wait for the user.
    pub timeout: Duration,
}

/// Signs in in the browser: authorization code with PKCE (S256), `state` and `nonce`, the
/// redirect captured by the host's loopback listener.
pub fn browser(
    host: &Host<'_>,
    sign_in: &SignIn<'_>,
    options: &BrowserOptions,
) -> Result<Grant, Error> {
    let listener = host.listen_for_redirect()?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new_random();
    let nonce = CsrfToken::new_random();
    let mut url = url::Url::parse(&sign_in.provider.authorization_endpoint).map_err(|e| {
        Error::invalid_input(format!("the authorization endpoint is not a URL: {e}"))
    })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", sign_in.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", listener.redirect_uri())
            .append_pair("response_mode", "query")
            .append_pair("scope", sign_in.scope)
            .append_pair("state", state.secret())
            .append_pair("nonce", nonce.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        for (name, value) in [
            ("login_hint", &options.login_hint),
            ("domain_hint", &options.domain_hint),
            ("prompt", &options.prompt),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    let opened = !options.no_browser && host.open_browser(url.as_str()).is_ok();
    if opened {
        host.show_message("Sign in in the browser window that opened (Ctrl-C to cancel).");
    } else {
        host.show_message(&format!(
            "Open this address in a browser on this machine and sign in (Ctrl-C to cancel):\n{url}"
        ));
    }
    let redirect_uri = listener.redirect_uri().to_owned();
    let query = listener.wait(state.secret(), options.timeout)?;
    let code = query
        .get("code")
        .ok_or_else(|| Error::network("the sign-in redirect carried no authorization code"))?;
    let tokens = oidc::token_request(
        host,
        &sign_in.provider.token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", sign_in.client_id),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier.secret()),
            ("scope", sign_in.scope),
        ],
    )?;
    sign_in.finish(host, tokens, Some(nonce.secret()))
}

/// Signs in with a device code: shows the code and where to enter it, then polls at the
/// provider's interval (slower after `slow_down`) until the user approves, declines, the code
/// expires, `timeout` passes, or the user presses Ctrl-C.
pub fn device_code(
    host: &Host<'_>,
    sign_in: &SignIn<'_>,
    timeout: Duration,
) -> Result<Grant, Error> {
    let endpoint = sign_in
        .provider
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| {
            Error::unsupported("this identity provider offers no device code sign-in")
        })?;
    let response = host.send(
        oidc::post_form(
            endpoint,
            &[("client_id", sign_in.client_id), ("scope", sign_in.scope)],
        )?,
        &oidc::options(),
    )?;
    if response.status() != 200 {
        return Err(idp::token_error(
            response.status().as_u16(),
            response.body(),
        ));
    }
    let body: serde_json::Map<String, Value> = serde_json::from_slice(response.body())
        .map_err(|_| Error::network("the device code endpoint's answer is not JSON"))?;
    let text = |name: &str| body.get(name).and_then(Value::as_str);
    let number = |name: &str| match body.get(name) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let (Some(device_code), Some(user_code)) = (text("device_code"), text("user_code")) else {
        return Err(Error::network(
            "the device code endpoint's answer has no code",
        ));
    };
    // v2 says verification_uri, v1 verification_url.
    let uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .unwrap_or_default();
    let lifetime = Duration::from_secs(number("expires_in").unwrap_or(900).clamp(1, 3600));
    let mut interval = Duration::from_secs(number("interval").unwrap_or(5).clamp(1, 60));
    let message = text("message")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("To sign in, open {uri} and enter the code {user_code}."));
    host.show_message(&format!("{message}\n(Waiting; Ctrl-C to cancel.)"));
    let started = Instant::now();
    // The provider says when the code expires (expired_token); a few seconds' grace, and the
    // user's --timeout, bound the wait in any case.
    let expiry = lifetime + Duration::from_secs(5);
    loop {
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(Error {
                kind: ErrorKind::Cancelled,
                code: None,
                message: format!(
                    "exo stopped waiting for the sign-in after {} s (--timeout)",
                    timeout.as_secs()
                ),
            });
        }
        if waited >= expiry {
            return Err(device_error(Error {
                kind: ErrorKind::InteractionRequired,
                code: Some("expired_token".into()),
                message: String::new(),
            }));
        }
        host.sleep(interval.min(timeout.min(expiry) - waited))?;
        if started.elapsed() >= timeout.min(expiry) {
            continue;
        }
        let polled = oidc::token_request(
            host,
            &sign_in.provider.token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", sign_in.client_id),
                ("device_code", device_code),
            ],
        );
        match polled {
            Ok(tokens) => return sign_in.finish(host, tokens, None),
            Err(error) => match pending(&error) {
                Some(Pending::Wait) => {}
                Some(Pending::SlowDown) => {
                    interval += Duration::from_secs(5);
                    log::info!(
                        "the identity provider asked to poll more slowly: every {} s",
                        interval.as_secs()
                    );
                }
                None => return Err(device_error(error)),
            },
        }
    }
}

enum Pending {
    Wait,
    SlowDown,
}

/// Whether a polling error means "keep polling".
fn pending(error: &Error) -> Option<Pending> {
    match error.code.as_deref() {
        Some("authorization_pending" | "AADSTS70016") => Some(Pending::Wait),
        Some("slow_down") => Some(Pending::SlowDown),
        _ if error.message.contains("authorization_pending") => Some(Pending::Wait),
        _ => None,
    }
}

/// Device-flow endings, said plainly.
fn device_error(error: Error) -> Error {
    let declined = matches!(
        error.code.as_deref(),
        Some("authorization_declined" | "access_denied" | "AADSTS65004")
    );
    let expired = matches!(
        error.code.as_deref(),
        Some("expired_token" | "AADSTS70019" | "AADSTS70020" | "code_expired")
    );
    if declined {
        Error {
            kind: ErrorKind::Cancelled,
            message: format!(
                "{}: the sign-in was declined on the device-login page",
                error.code.clone().unwrap_or_default()
            ),
            ..error
        }
    } else if expired {
        Error {
            kind: ErrorKind::InteractionRequired,
            message: format!(
                "{}: the device code expired before the sign-in was completed; connect again",
                error.code.clone().unwrap_or_default()
            ),
            ..error
        }
    } else {
        error
    }
}

/// Signs in with a user name and password (ROPC). Accounts that must do MFA, and federated
/// accounts, cannot: the error says to use the browser or a device code. Whether the account is
/// federated is asked (at `user_realm`) only when the password grant fails, so a successful
/// sign-in costs one request fewer.
pub fn password(
    host: &Host<'_>,
    sign_in: &SignIn<'_>,
    username: &str,
    password: &str,
    user_realm: Option<&str>,
) -> Result<Grant, Error> {
    let granted = oidc::token_request(
        host,
        &sign_in.provider.token_endpoint,
        &[
            ("grant_type", "password"),
            ("client_id", sign_in.client_id),
            ("username", username),
            ("password", password),
            ("scope", sign_in.scope),
        ],
    );
    match granted {
        Ok(tokens) => sign_in.finish(host, tokens, None),
        Err(refused) => match user_realm.filter(|_| sign_in.provider.entra) {
            // A failed lookup leaves the password grant's own refusal standing.
            Some(realm_url) if is_federated(host, realm_url).unwrap_or(false) => Err(Error {
                kind: ErrorKind::InteractionRequired,
                code: Some("federated".into()),
                message: format!(
                    "{username} is a federated account: its password is checked by its \
                     organization's own sign-in service, which inline credentials cannot reach; \
                     sign in with --method sso (browser) or --method device"
                ),
            }),
            _ => Err(refused),
        },
    }
}

/// Entra's user realm discovery (`/common/userrealm/{user}`): whether the account is federated.
/// A provider without it (404, or not JSON) has no federated accounts to worry about.
fn is_federated(host: &Host<'_>, realm_url: &str) -> Result<bool, Error> {
    let request = http::Request::get(realm_url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| Error::invalid_input(format!("invalid URL {realm_url}: {e}")))?;
    let response = host.send(request, &oidc::options())?;
    if response.status() != 200 {
        return Ok(false);
    }
    Ok(serde_json::from_slice::<Value>(response.body())
        .ok()
        .and_then(|v| v.get("account_type")?.as_str().map(str::to_owned))
        .is_some_and(|t| t.eq_ignore_ascii_case("federated")))
}

/// The app role an app needs to run Exchange cmdlets app-only.
pub const EXCHANGE_APP_ROLE: &str = "Exchange.ManageAsApp";

/// App-only sign-in (client credentials) for `client_id` with a signed `assertion` (a
/// certificate's, or an external token for workload identity federation). The token must carry
/// [`EXCHANGE_APP_ROLE`]: without it every cmdlet would fail, so the error says what to grant.
pub fn client_credentials(
    host: &Host<'_>,
    token_endpoint: &str,
    client_id: &str,
    scope: &str,
    assertion: &str,
) -> Result<Grant, Error> {
    let tokens = oidc::token_request(
        host,
        token_endpoint,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )?;
    let arrived = now();
    let claims = crate::claims::decode_unverified(&tokens.access_token)?;
    let roles = claims.strings("roles");
    if !roles.iter().any(|r| r == EXCHANGE_APP_ROLE) {
        return Err(Error::authentication_failed(
            "no Exchange role",
            format!(
                "the app {client_id} signed in, but its token has no {EXCHANGE_APP_ROLE} \
                 permission: grant it (API permissions: Office 365 Exchange Online, with admin \
                 consent) and assign the app an Exchange role such as Exchange Administrator"
            ),
        ));
    }
    let mut account = claims.account();
    account.kind = crate::AccountKind::Application;
    account.app_id = Some(client_id.to_owned());
    Ok(Grant {
        expires_on: arrived + tokens.expires_in,
        account,
        tenant_id: claims.tenant_id().unwrap_or_default().to_owned(),
        scopes: roles,
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        ..Grant::default()
    })
}

/// The parameter naming the user (`--user-principal-name`, alias `--upn`).
pub const USER_PRINCIPAL_NAME: &str = "user-principal-name";
/// The parameter naming a custom app registration (`--client-id`).
pub const CLIENT_ID: &str = "client-id";

/// Adds the parameters every delegated method shares, named after the reference module's.
pub fn with_common_parameters(description: crate::Description) -> crate::Description {
    use crate::{Parameter, ParameterKind};
    description
        .parameter(
            Parameter::new(
                USER_PRINCIPAL_NAME,
                ParameterKind::String,
                "The account to sign in as, e.g. admin@contoso.onmicrosoft.com",
            )
            .alias("upn"),
        )
        .parameter(Parameter::new(
            CLIENT_ID,
            ParameterKind::String,
            "A custom app registration's client id (default: the Exchange Online PowerShell app)",
        ))
        .capability(plugin_abi::capability::DELEGATED)
        .capability(plugin_abi::capability::SILENT_RENEW)
}

/// The parameter bounding how long a person has to finish signing in (`--timeout`, seconds).
pub const TIMEOUT: &str = "timeout";

/// Adds what the methods where a person signs in share: `--timeout` (described by
/// `timeout_help`) and the `interactive` capability.
pub fn with_person_parameters(
    description: crate::Description,
    timeout_help: &str,
) -> crate::Description {
    description
        .parameter(crate::Parameter::new(
            TIMEOUT,
            crate::ParameterKind::Integer,
            timeout_help,
        ))
        .capability(plugin_abi::capability::INTERACTIVE)
}

/// Fails unless a person can take part (`what` is the sign-in, e.g. "browser sign-in"), with
/// the methods automation should use instead.
pub fn require_person(request: &crate::Request<'_>, what: &str) -> Result<(), Error> {
    if request.is_interactive() {
        Ok(())
    } else {
        Err(Error::interaction_required(format!(
            "{what} needs a person at a terminal; for automation use --method certificate, \
             managed-identity or access-token"
        )))
    }
}

/// `--timeout`, or `default_seconds`.
pub fn timeout(request: &crate::Request<'_>, default_seconds: u64) -> Result<Duration, Error> {
    Ok(Duration::from_secs(
        request.integer(TIMEOUT)?.unwrap_or(default_seconds),
    ))
}

/// What a delegated sign-in needs from the host's request.
pub struct Prepared {
    /// The identity provider, discovered.
    pub provider: Provider,
    /// The client id: `--client-id`, else the host's default public client.
    pub client_id: String,
    /// The scopes: the resource's plus `openid profile offline_access`.
    pub scope: String,
}

impl Prepared {
    /// Discovers the provider of `request`'s authority.
    pub fn from(request: &crate::Request<'_>, host: &Host<'_>) -> Result<Self, Error> {
        Ok(Self {
            provider: Provider::discover(host, request.authority())?,
            client_id: request
                .parameter(CLIENT_ID)
                .unwrap_or(request.client_id())
                .to_owned(),
            scope: oidc::delegated_scopes(request.scopes()),
        })
    }

    /// The sign-in.
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            provider: &self.provider,
            client_id: &self.client_id,
            scope: &self.scope,
        }
    }
}

/// Renews a delegated grant silently with its refresh token.
pub fn renew(
    request: &crate::Request<'_>,
    previous: &Grant,
    host: &Host<'_>,
) -> Result<Grant, Error> {
    oidc::refresh(host, previous, &oidc::delegated_scopes(request.scopes()))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Entra's user-realm URL for `username` next to `authority` (its tenant segment replaced by
/// `common/userrealm/…`), for [`password`]'s federation check.
pub fn user_realm_url(authority: &str, username: &str) -> Option<String> {
    let mut url = url::Url::parse(authority).ok()?;
    let mut segments: Vec<String> = url.path_segments()?.map(str::to_owned).collect();
    segments.pop();
    segments.extend([
        "common".to_owned(),
        "userrealm".to_owned(),
        username.to_owned(),
    ]);
    url.path_segments_mut().ok()?.clear().extend(&segments);
    url.set_query(Some("api-version=1.0"));
    Some(url.into())
}
