//! The `device` login method: sign in with a device code on another device, like
//! `Connect-ExchangeOnline -Device`, for machines without a browser (an SSH session, a
//! container).
//!
//! exo shows the code and the address to enter it at, then polls at the identity provider's
//! interval until the user approves, declines, or the code expires; Ctrl-C stops it. Renewal
//! uses the refresh token silently. The flow is the SDK's (`plugin_sdk::sign_in::device_code`).

use std::time::Duration;

use plugin_sdk::sign_in::{self, Prepared};
use plugin_sdk::{Description, Error, Grant, Host, LoginMethod, Parameter, ParameterKind, Request};

/// The longest exo waits, whatever the code's own lifetime.
const DEFAULT_TIMEOUT_SECONDS: u64 = 900;

/// The login method.
#[derive(Default)]
pub struct Device;

impl LoginMethod for Device {
    fn describe(&self) -> Description {
        sign_in::with_common_parameters(
            Description::new("device", "Device code sign-in", env!("CARGO_PKG_VERSION")).summary(
                "Shows a code to enter at the identity provider's device-login page, in a browser \
                 on any device, with multi-factor authentication as the organization requires \
                 (Connect-ExchangeOnline -Device). For machines without a browser; the token is \
                 renewed silently with the refresh token.",
            ),
        )
        .parameter(Parameter::new(
            "timeout",
            ParameterKind::Integer,
            "Seconds to wait for the sign-in to finish (default: the code's lifetime, at most 900)",
        ))
        .capability(plugin_sdk::abi::capability::INTERACTIVE)
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        if !request.is_interactive() {
            return Err(Error::interaction_required(
                "device code sign-in needs a person; for automation use --method certificate, \
                 managed-identity or access-token",
            ));
        }
        let timeout = Duration::from_secs(
            request
                .integer("timeout")?
                .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        );
        let prepared = Prepared::from(request, host)?;
        sign_in::device_code(host, &prepared.sign_in(sign_in::now()), timeout)
    }

    fn renew(
        &self,
        request: &Request<'_>,
        previous: &Grant,
        host: &Host<'_>,
    ) -> Result<Grant, Error> {
        sign_in::renew(request, previous, host, sign_in::now())
    }
}

plugin_sdk::export_plugin!(Device);
