//! Write an `exo` login-method plugin in safe Rust.
//!
//! A plugin is a `cdylib` that implements [`LoginMethod`] and exports it with
//! [`export_plugin!`]:
//!
//! ```ignore
//! // Cargo.toml: crate-type = ["cdylib", "rlib"];
//! // dependencies: plugin-sdk, abi_stable = "0.11" (the export attribute names it directly).
//! use plugin_sdk::{Description, Error, Grant, Host, LoginMethod, Request};
//!
//! #[derive(Default)]
//! struct MyMethod;
//!
//! impl LoginMethod for MyMethod {
//!     fn describe(&self) -> Description { Description::new("my-method", "My method", env!("CARGO_PKG_VERSION")) }
//!     fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error> {
//!         host.show_message("signing in…");
//!         let token = request.required("token")?;
//!         let claims = plugin_sdk::claims::decode_unverified(token)?;
//!         Ok(Grant {
//!             access_token: token.to_owned().into(),
//!             token_type: "Bearer".into(),
//!             expires_on: claims.expires_on().unwrap_or_default(),
//!             account: claims.account(),
//!             ..Grant::default()
//!         })
//!     }
//! }
//!
//! plugin_sdk::export_plugin!(MyMethod);
//! ```
//!
//! What the SDK does for you:
//! - every entry point runs under `catch_unwind`: a panic becomes an [`ErrorKind::Internal`]
//!   error carrying the panic message, and the host keeps running;
//! - [`Host`] gives safe access to the host's services: HTTP with per-request
//!   [`HttpOptions`] (timeout, no proxy, a pinned certificate), prompts, the browser, messages,
//!   a cancellable [`Host::sleep`], and the loopback [`RedirectListener`] for browser sign-in;
//!   [`HostHttpClient`] plugs the host's HTTP into the `oauth2` crate;
//! - `log::info!` and friends inside the plugin are forwarded to the host's logger;
//! - [`idp`] turns identity-provider error bodies (RFC 6749, AADSTS codes) into one-line errors
//!   that say what to do;
//! - `certificate` (feature `certificate`) loads certificates (PKCS#12, PEM) and signs JWT
//!   client assertions;
//! - `oidc` and `sign_in` (feature `oidc`): discovery, token requests, ID-token verification,
//!   and the browser, device-code and password sign-ins with their refresh-token renewal;
//! - [`claims`] reads the claims of a JWT (without verifying it) to describe an account.
//!
//! The plugin API is synchronous: the host runs each call on a blocking thread, and may run
//! several calls of one plugin at once (renewing several connections), hence `Send + Sync`.

mod export;
mod host;
mod http_client;
mod types;

#[cfg(feature = "certificate")]
pub mod certificate;
pub mod claims;
pub mod idp;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "oidc")]
pub mod sign_in;

pub use abi_stable;
pub use http;
pub use oauth2;
pub use plugin_abi as abi;

pub use export::root_module;
pub use host::{Host, HttpOptions, RedirectListener, RedirectQuery};
pub use http_client::{HostHttpClient, HttpError};
pub use plugin_abi::extension::BASIC_TOKEN_TYPE;
pub use types::{
    Account, AccountKind, Description, Error, ErrorKind, Grant, LegacyEndpoint, Parameter,
    ParameterKind, Request,
};

/// How a login method renews a grant without interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// It cannot: the user connects again.
    NotSilently,
    /// It signs in again as at first, with the parameters read again (app-only methods: a
    /// certificate, a managed identity, a federated token file).
    SignInAgain,
    /// It redeems the grant's refresh token (the delegated sign-ins of [`sign_in`]).
    #[cfg(feature = "oidc")]
    RefreshToken,
}

/// A login method, implemented by a plugin.
///
/// `Default` builds the method when the host loads the plugin; keep it cheap (no I/O).
pub trait LoginMethod: Default + Send + Sync + 'static {
    /// Who the plugin is and which parameters it takes.
    fn describe(&self) -> Description;

    /// Signs in and returns a grant. May interact through `host` when
    /// [`Request::is_interactive`] is true.
    fn acquire(&self, request: &Request<'_>, host: &Host<'_>) -> Result<Grant, Error>;

    /// How the default [`LoginMethod::renew`] renews.
    const RENEWAL: Renewal = Renewal::NotSilently;

    /// Renews `previous` without interaction, as [`LoginMethod::RENEWAL`] says.
    fn renew(
        &self,
        request: &Request<'_>,
        previous: &Grant,
        host: &Host<'_>,
    ) -> Result<Grant, Error> {
        // Only a refresh token needs the previous grant.
        let _ = previous;
        match Self::RENEWAL {
            Renewal::NotSilently => Err(Error::interaction_required(
                "this login method cannot renew a token silently; connect again",
            )),
            Renewal::SignInAgain => self.acquire(request, host),
            #[cfg(feature = "oidc")]
            Renewal::RefreshToken => sign_in::renew(request, previous, host),
        }
    }

    /// An operation added after ABI 1.0 (see `plugin_abi::LoginFlow::call`). The default knows
    /// none.
    fn call(&self, operation: &str, payload: &[u8], host: &Host<'_>) -> Result<Vec<u8>, Error> {
        let _ = (payload, host);
        Err(Error::unsupported(format!(
            "this plugin has no operation '{operation}'"
        )))
    }
}

/// Exports `$method` (a type implementing [`LoginMethod`]) as the plugin's root module.
///
/// The plugin crate must depend on `abi_stable` 0.11 directly: the export attribute refers to
/// it by name.
#[macro_export]
macro_rules! export_plugin {
    ($method:ty) => {
        /// The root module of this plugin, read by the host when it loads the library.
        #[::abi_stable::export_root_module]
        pub fn exo_plugin_root() -> $crate::abi::PluginRoot_Ref {
            $crate::root_module::<$method>()
        }
    };
}
