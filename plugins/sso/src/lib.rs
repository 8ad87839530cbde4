//! The `sso` login method: sign in in the browser, with whatever the identity provider asks
//! (password, MFA, a passkey), like `Connect-ExchangeOnline -UserPrincipalName`.
//!
//! Authorization code with PKCE, `state` and `nonce`; the redirect comes back to the host's
//! loopback listener on `http://127.0.0.1:<port>/`. The browser is the system's (`$BROWSER` is
//! respected), or, with `--no-browser`, none: the URL is printed. Renewal uses the refresh
//! token silently. The flow is the SDK's (`plugin_sdk::sign_in::browser`).

use plugin_sdk::sign_in::{self, BrowserOptions, Prepared, USER_PRINCIPAL_NAME};
use plugin_sdk::{
    Description, Error, Grant, Host, LoginMethod, Parameter, ParameterKind, Renewal, Request,
};

/// How long to wait for the user by default.
const DEFAULT_TIMEOUT_SECONDS: u64 = 300;

/// The login method.
#[derive(Default)]
pub struct Sso;

impl LoginMethod for Sso {
    const RENEWAL: Renewal = Renewal::RefreshToken;

    fn describe(&self) -> Description {
        let description = Description::new("sso", "Browser sign-in", env!("CARGO_PKG_VERSION"))
            .summary(
                "Signs in in the browser, with multi-factor authentication or whatever else the \
                 organization requires (Connect-ExchangeOnline -UserPrincipalName). The browser \
                 redirects back to exo on 127.0.0.1; the token is renewed silently with the \
                 refresh token.",
            );
        sign_in::with_person_parameters(
            sign_in::with_common_parameters(description),
            "Seconds to wait for the sign-in to finish (default 300)",
        )
        .parameter(Parameter::new(
            "prompt",
            ParameterKind::String,
            "Ask the identity provider to prompt: login, select_account or consent",
        ))
        .parameter(Parameter::new(
            "domain-hint",
            ParameterKind::String,
            "Skip the account picker for this domain's identity provider",
        ))
        .parameter(Parameter::new(
            "no-browser",
            ParameterKind::Switch,
            "Print the sign-in URL instead of opening a browser",
        ))
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        sign_in::require_person(request, "browser sign-in")?;
        let options = BrowserOptions {
            login_hint: request.parameter(USER_PRINCIPAL_NAME).map(str::to_owned),
            domain_hint: request.parameter("domain-hint").map(str::to_owned),
            prompt: request.parameter("prompt").map(str::to_owned),
            no_browser: request.switch("no-browser"),
            timeout: sign_in::timeout(request, DEFAULT_TIMEOUT_SECONDS)?,
        };
        let prepared = Prepared::from(request, host)?;
        sign_in::browser(host, &prepared.sign_in(), &options)
    }
}

plugin_sdk::export_plugin!(Sso);
