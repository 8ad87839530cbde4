//! The `inline` login method: a user name and password, like
//! `Connect-ExchangeOnline -InlineCredential` (prompted) and `-Credential` (given by a script).
//!
//! The password comes from `--password-file PATH` (`-` for stdin) or `EXO_PASSWORD`, never the
//! command line; at a terminal, exo asks for what is missing (the password without echo). The
//! resource owner password grant cannot do multi-factor authentication, and federated accounts'
//! passwords are checked elsewhere: both get an error that says to use `sso` or `device`.
//! Renewal uses the refresh token silently; the password is never stored.

use plugin_sdk::sign_in::{self, Prepared, USER_PRINCIPAL_NAME};
use plugin_sdk::{
    Description, Error, Grant, Host, LoginMethod, Parameter, ParameterKind, Renewal, Request,
};

/// The password parameter (a secret: `--password-file` or `EXO_PASSWORD`).
const PASSWORD: &str = "password";

/// The login method.
#[derive(Default)]
pub struct Inline;

impl LoginMethod for Inline {
    const RENEWAL: Renewal = Renewal::RefreshToken;

    fn describe(&self) -> Description {
        sign_in::with_common_parameters(
            Description::new(
                "inline",
                "User name and password",
                env!("CARGO_PKG_VERSION"),
            )
            .summary(
                "Signs in with a user name and password (Connect-ExchangeOnline \
                     -InlineCredential or -Credential), asked at the terminal or given by a \
                     script through a file or EXO_PASSWORD. Accounts that need multi-factor \
                     authentication cannot sign in this way: use sso or device.",
            ),
        )
        .parameter(
            Parameter::new(PASSWORD, ParameterKind::String, "The account's password")
                .secret()
                .env("EXO_PASSWORD"),
        )
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        let username = match request.parameter(USER_PRINCIPAL_NAME) {
            Some(name) => name.to_owned(),
            None if request.is_interactive() => host.prompt_text("User name: ")?,
            None => {
                return Err(Error::invalid_input(
                    "missing --user-principal-name (--upn): the account to sign in as",
                ));
            }
        };
        if username.trim().is_empty() {
            return Err(Error::invalid_input("the user name is empty"));
        }
        let prompted;
        let password = match request.parameter(PASSWORD) {
            Some(password) => password,
            None if request.is_interactive() => {
                prompted = host.prompt_secret(&format!("Password for {username}: "))?;
                prompted.as_str()
            }
            None => {
                return Err(Error::invalid_input(
                    "missing --password-file (or set EXO_PASSWORD)",
                ));
            }
        };
        let prepared = Prepared::from(request, host)?;
        let realm = sign_in::user_realm_url(request.authority(), &username);
        sign_in::password(
            host,
            &prepared.sign_in(),
            &username,
            password,
            realm.as_deref(),
        )
    }
}

plugin_sdk::export_plugin!(Inline);
