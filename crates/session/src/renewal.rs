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
pub async fn valid_tokens(
    store: &Store,
    id: Uuid,
    need: Need<'_>,
    renewer: &impl Renewer,
) -> Result<Entry, SessionError> {
    let contents = store.read().await?;
    let entry = contents.get(id).ok_or(SessionError::NotFound(id))?;
    if usable(&entry.tokens, need) {
        return Ok(entry.clone());
    }
    let mut locked = store.lock().await?;
    let entry = locked
        .contents()
        .get_mut(id)
        .ok_or(SessionError::NotFound(id))?;
    // Another process may have renewed while this one waited for the lock.
    if usable(&entry.tokens, need) {
        return Ok(entry.clone());
    }
    match renewer.renew(&entry.connection, &entry.tokens).await {
        Ok(tokens) => {
            entry.tokens = tokens;
            let renewed = entry.clone();
            locked.save()?;
            tracing::info!(target: "session", "renewed the token of {}", renewed.connection.name());
            Ok(renewed)
        }
        Err(error) if matches!(need, Need::Fresh) && !entry.tokens.is_expired(now() + 30) => {
            // Early renewal failed but the token still works for a while: use it.
            tracing::warn!(target: "session", "could not renew the token of {} early: {}", entry.connection.name(), error.message);
            Ok(entry.clone())
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
