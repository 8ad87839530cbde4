//! Keeping a connection's access token valid.
//!
//! A token is renewed ahead of its expiry (see [`Tokens::is_fresh`]) by the connection's login
//! method, through a [`Renewer`] the host implements (a refresh-token grant for delegated
//! flows, a silent re-run for app-only ones). Renewal happens under the cache's exclusive lock,
//! after reading the cache again: when many `exo` processes need a new token at once, one
//! renews and the others find its token.

use std::future::Future;

use uuid::Uuid;

use crate::cache::{CacheError, Entry, Store};
use crate::connection::{Connection, Tokens, now};

/// Renews tokens with a connection's login method; implemented by the host.
pub trait Renewer {
    /// New tokens for `connection`, whose current ones are `tokens`, without interaction.
    fn renew(
        &self,
        connection: &Connection,
        tokens: &Tokens,
    ) -> impl Future<Output = Result<Tokens, RenewError>> + Send;
}

/// Why a renewal failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewError {
    /// Only an interactive sign-in (`exo connect`) can continue.
    pub interaction_required: bool,
    /// What went wrong.
    pub message: String,
}

/// Why no valid token could be had.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The connection does not exist (any more).
    #[error("connection {0} does not exist (any more); `exo connections` lists them")]
    NotFound(Uuid),
    /// The token expired and could not be renewed.
    #[error(
        "the token of {name} ({who}) {state} and cannot be renewed silently: {message}. Sign in again with: {reconnect}"
    )]
    RenewalFailed {
        /// The connection's name.
        name: String,
        /// Its account.
        who: String,
        /// `has expired` or `was rejected`.
        state: &'static str,
        /// The login method's reason.
        message: String,
        /// The `exo connect` command that restores it.
        reconnect: String,
    },
}

/// Why a token is wanted.
#[derive(Clone, Copy, Debug)]
pub enum Need<'a> {
    /// Any token that is still fresh.
    Fresh,
    /// A token other than this one, which the service rejected (HTTP 401).
    Replacing(&'a str),
}

/// A valid token for connection `id`, renewed with `renewer` when needed.
///
/// The renewal (a network call) runs under the connection's own renewal lock, not the cache
/// lock: other connections and readers go on meanwhile, and a second process that needs the
/// same renewal waits for it and then finds the new token.
pub async fn valid_tokens(
    store: &Store,
    id: Uuid,
    need: Need<'_>,
    renewer: &impl Renewer,
) -> Result<Entry, SessionError> {
    let entry = current(store, id).await?;
    if usable(&entry.tokens, need) {
        return Ok(entry);
    }
    let _renewing = store.lock_renewal(id).await?;
    // Another process may have renewed while this one waited.
    let entry = current(store, id).await?;
    if usable(&entry.tokens, need) {
        return Ok(entry);
    }
    match renewer.renew(&entry.connection, &entry.tokens).await {
        Ok(tokens) => {
            let mut locked = store.lock().await?;
            let saved = locked
                .contents()
                .get_mut(id)
                .ok_or(SessionError::NotFound(id))?;
            saved.tokens = tokens;
            let renewed = saved.clone();
            locked.save()?;
            tracing::info!(target: "session", "renewed the token of {}", renewed.connection.name());
            Ok(renewed)
        }
        Err(error) if matches!(need, Need::Fresh) && !entry.tokens.is_expired(now()) => {
            // Renewing ahead of expiry failed, but the token still works for a while: use it.
            tracing::warn!(
                target: "session",
                "could not renew the token of {} ahead of its expiry ({}); it expires in {} s",
                entry.connection.name(),
                error.message,
                entry.tokens.expires_on - now()
            );
            Ok(entry)
        }
        Err(error) => Err(SessionError::RenewalFailed {
            name: entry.connection.name(),
            who: entry.connection.who().to_owned(),
            state: if matches!(need, Need::Fresh) {
                "has expired"
            } else {
                "was rejected"
            },
            message: error.message,
            reconnect: entry.connection.reconnect_command(),
        }),
    }
}

async fn current(store: &Store, id: Uuid) -> Result<Entry, SessionError> {
    store
        .read()
        .await?
        .get(id)
        .cloned()
        .ok_or(SessionError::NotFound(id))
}

fn usable(tokens: &Tokens, need: Need<'_>) -> bool {
    match need {
        Need::Fresh => tokens.is_fresh(now()),
        Need::Replacing(rejected) => {
            tokens.access_token.expose() != rejected && !tokens.is_expired(now())
        }
    }
}

#[cfg(test)]
mod tests;
