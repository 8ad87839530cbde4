//! The root module and the adapter from [`LoginMethod`] to the ABI's [`LoginFlow`].
//!
//! Every entry point runs under `catch_unwind`: a panic inside a plugin would otherwise abort
//! the host. The plugin's own panic hook (each plugin has its own copy of std) is replaced by
//! one that records where the panic happened instead of printing to stderr.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use plugin_abi::{
    HostRef, LoginFlow, LoginFlow_TO, LoginFlowBox, LoginRequest, PluginDescription, PluginError,
    PluginRoot, PluginRoot_Ref, TokenGrant,
};

use crate::host::ForwardToHost;
use crate::{Error, Grant, Host, LoginMethod, Request};

/// Builds the root module for `M`; called by [`crate::export_plugin!`].
pub fn root_module<M: LoginMethod>() -> PluginRoot_Ref {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info.location().map(ToString::to_string);
            PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
        }));
        // Fails only if a logger is already set, which then keeps working.
        let _ = log::set_logger(&ForwardToHost);
        log::set_max_level(log::LevelFilter::Trace);
    });
    PluginRoot {
        new_login_flow: new_login_flow::<M>,
    }
    .leak_into_prefix()
}

extern "C" fn new_login_flow<M: LoginMethod>() -> RResult<LoginFlowBox, PluginError> {
    guarded("starting", || {
        Ok(LoginFlow_TO::from_value(Adapter(M::default()), TD_Opaque))
    })
}

struct Adapter<M>(M);

impl<M: LoginMethod> LoginFlow for Adapter<M> {
    fn describe(&self) -> RResult<PluginDescription, PluginError> {
        guarded("describe", || Ok(self.0.describe().into()))
    }

    fn acquire(
        &self,
        request: &LoginRequest,
        host: HostRef<'_>,
    ) -> RResult<TokenGrant, PluginError> {
        let host = Host::new(host);
        host.enter(|| {
            guarded("acquire", || {
                let grant = self.0.acquire(&Request::new(request), &host)?;
                Ok(TokenGrant::from(&grant))
            })
        })
    }

    fn renew(
        &self,
        request: &LoginRequest,
        previous: &TokenGrant,
        host: HostRef<'_>,
    ) -> RResult<TokenGrant, PluginError> {
        let host = Host::new(host);
        host.enter(|| {
            guarded("renew", || {
                let previous = Grant::from(previous);
                let grant = self.0.renew(&Request::new(request), &previous, &host)?;
                Ok(TokenGrant::from(&grant))
            })
        })
    }

    fn call(
        &self,
        operation: RStr<'_>,
        payload: RSlice<'_, u8>,
        host: HostRef<'_>,
    ) -> RResult<RVec<u8>, PluginError> {
        let host = Host::new(host);
        host.enter(|| {
            guarded("call", || {
                self.0
                    .call(operation.as_str(), payload.as_slice(), &host)
                    .map(RVec::from)
            })
        })
    }
}

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning an error or a panic into a [`PluginError`].
fn guarded<T>(entry_point: &str, f: impl FnOnce() -> Result<T, Error>) -> RResult<T, PluginError> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(PluginError::from).into(),
        Err(payload) => {
            let location = PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
            let mut message = format!("panicked in {entry_point}: {}", panic_message(&*payload));
            if let Some(location) = location {
                message.push_str(&format!(" (at {location})"));
            }
            RResult::RErr(Error::internal(message).into())
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
