//! Azure Arc challenges: files are private, single-use, deleted on use, expiry and shutdown,
//! and capped.

use super::*;

fn challenges(dir: &std::path::Path, seconds: u64, max: usize) -> Arc<ArcChallenges> {
    let settings = ArcSettings {
        token_dir: Some(dir.join("tokens")),
        challenge_seconds: seconds,
        max_outstanding_challenges: max,
    };
    Arc::new(ArcChallenges::new(&settings, dir))
}

#[tokio::test]
async fn a_challenge_is_used_once_and_its_file_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arc = challenges(dir.path(), 60, 4);
    let now = crate::clock::unix_now();
    let path = arc.issue(now).await.expect("challenge");
    assert!(path.starts_with(dir.path().join("tokens")));
    assert!(path.extension().is_some_and(|e| e == "key"));
    let secret = std::fs::read_to_string(&path).expect("file");
    #[cfg(unix)]
    {
        let mode = |p: &std::path::Path| {
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(p).expect("meta").permissions(),
            ) & 0o777
        };
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("tokens")), 0o700);
    }
    assert!(!arc.redeem("wrong", now).await);
    assert!(arc.redeem(&secret, now).await);
    assert!(!path.exists(), "a used challenge's file is deleted");
    assert!(!arc.redeem(&secret, now).await, "single use");
    assert_eq!(arc.outstanding(), 0);
}

#[tokio::test]
async fn outstanding_challenges_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arc = challenges(dir.path(), 60, 2);
    let now = crate::clock::unix_now();
    let first = arc.issue(now).await.expect("first");
    arc.issue(now).await.expect("second");
    assert!(matches!(arc.issue(now).await, Err(ChallengeError::Full(2))));
    let secret = std::fs::read_to_string(&first).expect("file");
    assert!(arc.redeem(&secret, now).await);
    arc.issue(now).await.expect("room again after a use");
    // Expired challenges make room too (and lose their files).
    assert!(arc.issue(now + 61).await.is_ok());
    assert_eq!(arc.outstanding(), 1);
    let files = std::fs::read_dir(dir.path().join("tokens"))
        .expect("dir")
        .count();
    assert_eq!(files, 1, "only the outstanding challenge's file is left");
}

#[tokio::test]
async fn files_are_deleted_at_expiry_and_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arc = challenges(dir.path(), 1, 4);
    let now = crate::clock::unix_now();
    let expiring = arc.issue(now).await.expect("challenge");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !expiring.exists(),
        "deleted after its lifetime without another request"
    );
    assert_eq!(arc.outstanding(), 0);
    let kept = arc
        .issue(crate::clock::unix_now())
        .await
        .expect("challenge");
    assert!(kept.exists());
    arc.clear().await;
    assert!(!kept.exists(), "shutdown deletes outstanding files");
}
