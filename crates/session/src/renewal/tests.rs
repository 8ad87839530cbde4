//! Tests of renewal: when it happens, that it happens once, and what a failure says.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::cache::tests::entry;
use crate::connection::Secret;

struct CountingRenewer {
    calls: AtomicUsize,
    outcome: Result<(), RenewError>,
}

impl CountingRenewer {
    fn succeeding() -> Self {
        Self {
            calls: AtomicUsize::new(0),
            outcome: Ok(()),
        }
    }

    fn failing(message: &str) -> Self {
        Self {
            calls: AtomicUsize::new(0),
            outcome: Err(RenewError {
                interaction_required: true,
                interrupted: false,
                message: message.into(),
            }),
        }
    }
}

impl Renewer for CountingRenewer {
    async fn renew(&self, _: &Connection, tokens: &Tokens) -> Result<Tokens, RenewError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.outcome.clone()?;
        Ok(Tokens {
            access_token: Secret::new(format!("renewed-{n}")),
            expires_on: now() + 3600,
            obtained_at: now(),
            ..tokens.clone()
        })
    }
}

async fn store_with(token: &str, expires_on: i64) -> (tempfile::TempDir, Store, Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let entry = entry(token, expires_on);
    let id = entry.connection.id;
    store.add(entry).await.unwrap();
    (dir, store, id)
}

#[tokio::test]
async fn a_fresh_token_is_used_as_it_is() {
    let (_dir, store, id) = store_with("current", now() + 3000).await;
    let renewer = CountingRenewer::succeeding();
    let entry = valid_tokens(&store, id, Need::Fresh, &renewer)
        .await
        .unwrap();
    assert_eq!(entry.tokens.access_token.expose(), "current");
    assert_eq!(renewer.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_near_expiry_is_renewed_once_for_all_callers_and_saved() {
    let (_dir, store, id) = store_with("old", now() + 60).await;
    let (store, renewer) = (Arc::new(store), Arc::new(CountingRenewer::succeeding()));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, renewer) = (store.clone(), renewer.clone());
        callers.spawn(async move {
            valid_tokens(&store, id, Need::Fresh, &*renewer)
                .await
                .unwrap()
        });
    }
    while let Some(entry) = callers.join_next().await {
        assert_eq!(entry.unwrap().tokens.access_token.expose(), "renewed-1");
    }
    assert_eq!(renewer.calls.load(Ordering::SeqCst), 1);
    let saved = store.read().await.unwrap();
    assert_eq!(
        saved.get(id).unwrap().tokens.access_token.expose(),
        "renewed-1"
    );
}

#[tokio::test]
async fn a_rejected_token_is_replaced_even_when_it_looks_fresh() {
    let (_dir, store, id) = store_with("rejected", now() + 3000).await;
    let renewer = CountingRenewer::succeeding();
    let entry = valid_tokens(&store, id, Need::Replacing("rejected"), &renewer)
        .await
        .unwrap();
    assert_eq!(entry.tokens.access_token.expose(), "renewed-1");
    let again = valid_tokens(&store, id, Need::Replacing("rejected"), &renewer)
        .await
        .unwrap();
    assert_eq!(
        again.tokens.access_token.expose(),
        "renewed-1",
        "the replacement is reused"
    );
    assert_eq!(renewer.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_early_renewal_keeps_using_the_valid_token() {
    let (_dir, store, id) = store_with("still-valid", now() + 120).await;
    let renewer = CountingRenewer::failing("no network");
    let entry = valid_tokens(&store, id, Need::Fresh, &renewer)
        .await
        .unwrap();
    assert_eq!(entry.tokens.access_token.expose(), "still-valid");
}

#[tokio::test]
async fn a_failed_renewal_of_an_expired_token_says_why_and_carries_the_reconnect_arguments() {
    let (_dir, store, id) = store_with("expired", now() - 10).await;
    let renewer = CountingRenewer::failing("the token file still holds the same token");
    let error = valid_tokens(&store, id, Need::Fresh, &renewer)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the token of ExchangeOnline_1 (admin@contoso.onmicrosoft.com) has expired and cannot be renewed \
         silently: the token file still holds the same token"
    );
    let SessionError::RenewalFailed { reconnect, .. } = error else {
        panic!("not a renewal failure: {error:?}");
    };
    assert_eq!(
        reconnect,
        [
            "--method",
            "access-token",
            "--access-token-file",
            "/tmp/my token"
        ]
    );
}

#[tokio::test]
async fn the_memo_serves_a_fresh_token_from_memory_and_backs_off_after_an_early_failure() {
    let (_dir, store, id) = store_with("fresh", now() + 3600).await;
    let renewer = CountingRenewer::failing("unused");
    let entry = store.read().await.unwrap().get(id).cloned().unwrap();
    let memo = TokenMemo::new(id, entry.tokens);
    assert_eq!(
        memo.token(&store, None, &renewer).await.unwrap().as_str(),
        "fresh"
    );
    assert_eq!(renewer.calls.load(Ordering::SeqCst), 0);

    // Close to expiry: the renewal fails, the old token is used, and not retried at once.
    let (_dir, store, id) = store_with("ageing", now() + 100).await;
    let entry = store.read().await.unwrap().get(id).cloned().unwrap();
    let memo = TokenMemo::new(id, entry.tokens);
    for _ in 0..3 {
        assert_eq!(
            memo.token(&store, None, &renewer).await.unwrap().as_str(),
            "ageing"
        );
    }
    assert_eq!(renewer.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_renewal_does_not_block_the_cache_for_others() {
    struct SlowRenewer;
    impl Renewer for SlowRenewer {
        async fn renew(&self, _: &Connection, tokens: &Tokens) -> Result<Tokens, RenewError> {
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok(Tokens {
                access_token: Secret::new("slow"),
                expires_on: now() + 3600,
                obtained_at: now(),
                ..tokens.clone()
            })
        }
    }
    let (_dir, store, id) = store_with("old", now() + 10).await;
    let store = Arc::new(store);
    let renewing = tokio::spawn({
        let store = store.clone();
        async move {
            valid_tokens(&store, id, Need::Fresh, &SlowRenewer)
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    store
        .add(crate::cache::tests::entry("other", now() + 3600))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the cache was free during the renewal"
    );
    assert_eq!(renewing.await.unwrap().tokens.access_token.expose(), "slow");
    let contents = store.read().await.unwrap();
    assert_eq!(
        contents.entries.len(),
        2,
        "the renewal's save kept the other connection"
    );
    assert_eq!(
        contents.get(id).unwrap().tokens.access_token.expose(),
        "slow"
    );
}

#[tokio::test]
async fn an_interrupted_renewal_is_reported_as_such_even_while_the_token_still_works() {
    struct Interrupted;
    impl Renewer for Interrupted {
        async fn renew(&self, _: &Connection, _: &Tokens) -> Result<Tokens, RenewError> {
            Err(RenewError {
                interaction_required: false,
                interrupted: true,
                message: "cancelled".into(),
            })
        }
    }
    let (_dir, store, id) = store_with("ageing", now() + 100).await;
    let error = valid_tokens(&store, id, Need::Fresh, &Interrupted)
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::Interrupted), "{error:?}");
}
