//! The Exchange admin API: `POST /adminapi/beta/{tenant}/InvokeCommand` (tenant = GUID or any
//! domain of the organization) with the `CmdletInput` envelope.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;

use crate::state::Core;

pub(crate) mod auth;
pub(crate) mod cmdlets;
pub(crate) mod errors;
pub(crate) mod filter;
pub(crate) mod invoke;
pub(crate) mod mailbox;
pub(crate) mod paging;
pub(crate) mod store;

/// The admin API routes.
pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new().route(
        "/adminapi/beta/{tenant}/InvokeCommand",
        post(invoke::invoke_command),
    )
}

/// Response extension naming the cmdlet, for the request log.
#[derive(Clone, Debug)]
pub(crate) struct CmdletName(pub String);
