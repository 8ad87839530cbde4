//! An `oauth2` HTTP client that sends every request through the host.

use crate::{Error, Host, HttpOptions};

/// Implements [`oauth2::SyncHttpClient`] over [`Host::send`], so that plugins use the `oauth2`
/// crate's flows without linking an HTTP stack.
pub struct HostHttpClient<'h, 'a> {
    host: &'h Host<'a>,
    options: HttpOptions,
}

impl<'h, 'a> HostHttpClient<'h, 'a> {
    pub(crate) fn new(host: &'h Host<'a>, options: HttpOptions) -> Self {
        Self { host, options }
    }

    /// The same client, sending with `options`.
    pub fn with_options(self, options: HttpOptions) -> Self {
        Self { options, ..self }
    }
}

/// The error of a request sent through the host.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HttpError(#[from] pub Error);

impl oauth2::SyncHttpClient for HostHttpClient<'_, '_> {
    type Error = HttpError;

    fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, Self::Error> {
        Ok(self.host.send(request, &self.options)?)
    }
}
