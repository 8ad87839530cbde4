//! An `oauth2` HTTP client that sends every request through the host.

use crate::{Error, Host};

/// Implements [`oauth2::SyncHttpClient`] over [`Host::http`], so that plugins use the `oauth2`
/// crate's flows without linking an HTTP stack.
pub struct HostHttpClient<'h, 'a> {
    host: &'h Host<'a>,
}

impl<'h, 'a> HostHttpClient<'h, 'a> {
    pub(crate) fn new(host: &'h Host<'a>) -> Self {
        Self { host }
    }
}

/// The error of a request sent through the host.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HttpError(#[from] pub Error);

impl oauth2::SyncHttpClient for HostHttpClient<'_, '_> {
    type Error = HttpError;

    fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, Self::Error> {
        Ok(self.host.http(request)?)
    }
}
