//! The `device` login method: sign in with a device code on another device, like
//! `Connect-ExchangeOnline -Device`, for machines without a browser (an SSH session, a
//! container).
//!
//! exo shows the code and the address to enter it at, then polls at the identity provider's
//! interval until the user approves, declines, or the code expires; Ctrl-C stops it. Renewal
//! uses the refresh token silently. The flow is the SDK's (`plugin_sdk::sign_in::device_code`).

use plugin_sdk::sign_in::{self, Prepared};
use plugin_sdk::{Description, Error, Grant, Host, LoginMethod, Renewal, Request};

/// The longest exo waits, whatever the code's own lifetime.
const DEFAULT_TIMEOUT_SECONDS: u64 = 900;

/// The login method.
#[derive(Default)]
pub struct Device;

impl LoginMethod for Device {
    const RENEWAL: Renewal = Renewal::RefreshToken;

    fn describe(&self) -> Description {
        let description =
            Description::new("device", "Device code sign-in", env!("CARGO_PKG_VERSION")).summary(
                "Shows a code to enter at the identity provider's device-login page, in a browser \
                 on any device, with multi-factor authentication as the organization requires \
                 (Connect-ExchangeOnline -Device). For machines without a browser; the token is \
                 renewed silently with the refresh token.",
            );
        sign_in::with_person_parameters(
            sign_in::with_common_parameters(description),
            "Seconds to wait for the sign-in to finish (default: the code's lifetime, at most 900)",
        )
    }

    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
        sign_in::require_person(request, "device code sign-in")?;
        let timeout = sign_in::timeout(request, DEFAULT_TIMEOUT_SECONDS)?;
        let prepared = Prepared::from(request, host)?;
        sign_in::device_code(host, &prepared.sign_in(), timeout)
    }
}

plugin_sdk::export_plugin!(Device);
