//! Keeping a connection's access token valid.
//!
//! A token is renewed ahead of its expiry (see [`Tokens::is_fresh`]) by the connection's login
//! method, through a [`Renewer`] the host implements (a refresh-token grant for delegated
//! flows, a silent re-run for app-only ones). Renewal runs under the connection's own renewal
//! lock (`renew-<id>.lock`), never the cache lock, after reading the cache again: when many
//! `exo` processes need a new token at once, one renews and the others find its token, while
//! other connections and readers go on. Only the final write takes the connection's own lock,
//! briefly.
//!
//! Within one process, [`TokenMemo`] keeps the token in memory while it is fresh, so a listing
//! of many pages reads the cache once, and backs off after an early renewal failed.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;
use zeroize::Zeroizing;

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
    /// The user interrupted it (Ctrl-C): not a failure of the login method.
    pub interrupted: bool,
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
    #[error("connection {0} does not exist (any more)")]
    NotFound(Uuid),
    /// The user interrupted the renewal (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// The token expired and could not be renewed.
    #[error("the token of {name} ({who}) {state} and cannot be renewed silently: {message}")]
    RenewalFailed {
        /// The connection's name.
        name: String,
        /// Its account.
        who: String,
        /// `has expired` or `was rejected`.
        state: &'static str,
        /// The login method's reason.
        message: String,
        /// The `exo connect` arguments that restore it.
        reconnect: Vec<String>,
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
            let renewed = store
                .update(id, |saved| saved.tokens = tokens)
                .await?
                .ok_or(SessionError::NotFound(id))?;
            tracing::info!(target: "session", "renewed the token of {}", renewed.connection.name());
            Ok(renewed)
        }
        Err(error) if error.interrupted => Err(SessionError::Interrupted),
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
            reconnect: entry.connection.reconnect.clone(),
        }),
    }
}

/// A connection's token as one process uses it: from memory while it is fresh, from the
/// cache (renewed when needed) otherwise.
pub struct TokenMemo {
    id: Uuid,
    current: Mutex<Memo>,
}

/// The token in use, and until when not to retry a renewal that failed ahead of expiry.
struct Memo {
    tokens: Tokens,
    retry_renewal_after: Option<Instant>,
}

/// How long a failed early renewal is not retried (the token still works meanwhile).
const RENEWAL_RETRY_DELAY: Duration = Duration::from_secs(60);

impl TokenMemo {
    /// The memo of connection `id`, starting from `tokens` (as read from the cache).
    pub fn new(id: Uuid, tokens: Tokens) -> Self {
        Self {
            id,
            current: Mutex::new(Memo {
                tokens,
                retry_renewal_after: None,
            }),
        }
    }

    /// A token to send: the one in memory while it is fresh (or while a failed early renewal
    /// backs off and it has not expired), else a valid one from the cache. With `rejected`,
    /// the service refused that token, so another one is needed.
    pub async fn token(
        &self,
        store: &Store,
        rejected: Option<&str>,
        renewer: &impl Renewer,
    ) -> Result<Zeroizing<String>, SessionError> {
        if rejected.is_none() {
            let current = self.memo();
            let tokens = &current.tokens;
            let backing_off = current
                .retry_renewal_after
                .is_some_and(|after| Instant::now() < after);
            if tokens.is_fresh(now()) || (backing_off && !tokens.is_expired(now())) {
                return Ok(Zeroizing::new(tokens.access_token.expose().to_owned()));
            }
        }
        let need = rejected.map_or(Need::Fresh, Need::Replacing);
        let entry = valid_tokens(store, self.id, need, renewer).await?;
        let token = Zeroizing::new(entry.tokens.access_token.expose().to_owned());
        let mut current = self.memo();
        // Still not fresh: renewing ahead of expiry failed; do not try again on every page.
        current.retry_renewal_after =
            (!entry.tokens.is_fresh(now())).then(|| Instant::now() + RENEWAL_RETRY_DELAY);
        current.tokens = entry.tokens;
        Ok(token)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn current(store: &Store, id: Uuid) -> Result<Entry, SessionError> {
    store.get(id).await?.ok_or(SessionError::NotFound(id))
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
