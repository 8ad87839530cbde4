//! Tests of the token cache on real files: round trips, permissions, damage isolated to one
//! connection, the single file of older versions, stale pointers, concurrency.

use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::connection::{AccountKind, Secret};
use crate::environment::{EndpointOptions, resolve};

pub(crate) fn entry(token: &str, expires_on: i64) -> Entry {
    Entry {
        connection: Connection {
            id: Uuid::new_v4(),
            number: 0,
            method: "access-token".into(),
            parameters: Vec::new(),
            endpoints: resolve(&EndpointOptions::default()).unwrap(),
            account_kind: AccountKind::User,
            user_principal_name: Some("admin@contoso.onmicrosoft.com".into()),
            app_id: None,
            object_id: None,
            tenant_id: "t1".into(),
            organization: None,
            delegated_organization: None,
            prefix: None,
            page_size: 1000,
            created_at: 0,
            reconnect: vec![
                "--method".into(),
                "access-token".into(),
                "--access-token-file".into(),
                "/tmp/my token".into(),
            ],
            certificate_authentication: false,
            transport: Default::default(),
        },
        tokens: Tokens {
            access_token: Secret::new(token),
            token_type: "Bearer".into(),
            expires_on,
            obtained_at: expires_on - 3600,
            refresh_token: Some(Secret::new(format!("refresh-{token}"))),
            id_token: None,
            scopes: vec![],
            authority: String::new(),
            plugin_state: String::new(),
        },
        legacy_shell: None,
        refused_password: None,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A store in a fresh state directory, with `n` connections added (tokens `token-1`, …).
async fn store_with(n: usize) -> (tempfile::TempDir, Store, Vec<Uuid>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("exo"));
    let mut ids = Vec::new();
    for i in 1..=n {
        let entry = entry(&format!("token-{i}"), 2_000_000_000);
        ids.push(entry.connection.id);
        store.add(entry).await.unwrap();
    }
    (dir, store, ids)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[tokio::test]
async fn a_written_cache_reads_back_encrypted_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("exo"));
    assert!(
        store.read().await.unwrap().entries.is_empty(),
        "a missing cache is empty"
    );
    assert!(store.latest().await.unwrap().is_none());
    let (first, second) = (
        entry("token-one", 2_000_000_000),
        entry("token-two", 2_000_000_000),
    );
    let ids = [first.connection.id, second.connection.id];
    assert_eq!(store.add(first).await.unwrap(), 1);
    assert_eq!(store.add(second).await.unwrap(), 2);

    let contents = store.read().await.unwrap();
    let names: Vec<String> = contents
        .entries
        .iter()
        .map(|e| e.connection.name())
        .collect();
    assert_eq!(names, ["ExchangeOnline_1", "ExchangeOnline_2"]);
    let latest = store.latest().await.unwrap().unwrap();
    assert_eq!(latest.tokens.access_token.expose(), "token-two");
    let first = store.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(first.tokens.access_token.expose(), "token-one");

    let path = store.entry_path(ids[0]);
    let raw = std::fs::read(&path).unwrap();
    assert!(raw.starts_with(b"EXOC\x03"));
    assert!(
        !raw.windows(9).any(|w| w == b"token-one"),
        "tokens are encrypted at rest"
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("exo/connections.key")), 0o600);
    assert_eq!(mode(&dir.path().join("exo")), 0o700);
    assert_eq!(mode(&dir.path().join("exo/connections")), 0o700);
    for folder in ["exo", "exo/connections"] {
        let left = leftovers(&dir.path().join(folder));
        assert!(left.is_empty(), "no temporary files remain: {left:?}");
    }
    // A file renamed to another connection does not open: its id is authenticated.
    std::fs::rename(&path, store.entry_path(ids[1])).unwrap();
    let error = store.get(ids[1]).await.unwrap_err().to_string();
    assert!(error.contains("it does not decrypt"), "{error}");
}

#[tokio::test]
async fn removing_the_last_connection_removes_every_trace() {
    let (dir, store, ids) = store_with(2).await;
    let removed = store.remove(&ids[..1]).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(store.latest().await.unwrap().unwrap().connection.id, ids[1]);
    store.remove(&ids[1..]).await.unwrap();
    let state = dir.path().join("exo");
    for name in ["connections.key", "latest", "next-number"] {
        assert!(!state.join(name).exists(), "{name} is gone");
    }
    assert!(!state.join("connections").exists());
    // Numbering starts again.
    assert_eq!(store.add(entry("t", 2_000_000_000)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_damaged_connection_is_reported_alone_and_left_untouched() {
    let (dir, store, ids) = store_with(2).await;
    let path = store.entry_path(ids[0]);
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let cases: [(&[u8], &str); 4] = [
        (b"hello", "it is not an exo token cache"),
        (
            &[
                b'E', b'X', b'O', b'C', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            "it has format 9",
        ),
        (&flipped, "it does not decrypt with its key"),
        (&good[..20], "it does not decrypt with its key"),
    ];
    for (bytes, reason) in cases {
        std::fs::write(&path, bytes).unwrap();
        let contents = store.read().await.unwrap();
        assert_eq!(contents.entries.len(), 1, "the other connection works");
        assert_eq!(contents.damaged.len(), 1);
        assert!(
            contents.damaged[0].id == ids[0] && contents.damaged[0].reason.contains(reason),
            "{reason}: {:?}",
            contents.damaged
        );
        let error = store.get(ids[0]).await.unwrap_err().to_string();
        assert!(
            error.contains(reason) && error.contains("it was left untouched"),
            "{error}"
        );
        assert!(
            store.update(ids[0], |_| {}).await.is_err(),
            "a change refuses too"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");
        assert!(store.get(ids[1]).await.unwrap().is_some());
    }

    std::fs::write(&path, &good).unwrap();
    std::fs::remove_file(dir.path().join("exo/connections.key")).unwrap();
    // A store keeps its key for the life of the process; a new process sees the loss.
    let store = Store::new(dir.path().join("exo"));
    let contents = store.read().await.unwrap();
    assert_eq!(contents.damaged.len(), 2);
    assert!(
        contents.damaged[0].reason.contains("its key (the key file")
            && contents.damaged[0].reason.contains("is missing"),
        "{:?}",
        contents.damaged
    );
    let aside = store.move_damaged_aside().await.unwrap().unwrap();
    assert_eq!(
        std::fs::read(aside.join(ids[0].to_string())).unwrap(),
        good,
        "moved aside, not deleted"
    );
    let contents = store.read().await.unwrap();
    assert!(contents.entries.is_empty() && contents.damaged.is_empty());
}

#[tokio::test]
async fn a_key_others_can_read_is_refused() {
    let (dir, _, ids) = store_with(1).await;
    let key = dir.path().join("exo/connections.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = Store::new(dir.path().join("exo"))
        .get(ids[0])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("readable or writable by others (mode 644)"),
        "{error}"
    );
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let store = Store::new(dir);
                    for j in 0..5 {
                        let added = entry(&format!("token-{i}-{j}"), 2_000_000_000);
                        let id = added.connection.id;
                        store.add(added).await.unwrap();
                        // Each change of a connection holds its own lock: none is lost.
                        for _ in 0..3 {
                            store
                                .update(id, |e| e.tokens.expires_on += 1)
                                .await
                                .unwrap()
                                .unwrap();
                        }
                    }
                })
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let contents = runtime
        .block_on(Store::new(dir.path().to_owned()).read())
        .unwrap();
    assert_eq!(contents.entries.len(), 80);
    assert!(
        contents
            .entries
            .iter()
            .all(|e| e.tokens.expires_on == 2_000_000_003)
    );
    let numbers: Vec<u32> = contents
        .entries
        .iter()
        .map(|e| e.connection.number)
        .collect();
    assert_eq!(
        numbers,
        (1..=80).collect::<Vec<_>>(),
        "every connection got its own number"
    );
}

#[tokio::test]
async fn a_change_never_brings_back_a_removed_connection() {
    let (_dir, store, ids) = store_with(2).await;
    store.remove(&ids[..1]).await.unwrap();
    assert!(store.update(ids[0], |_| {}).await.unwrap().is_none());
    assert!(!store.entry_path(ids[0]).exists());
}

#[tokio::test]
async fn a_lock_held_too_long_is_reported_with_the_file_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Store::new(dir.path().to_owned());
    let _held = holder.global_lock().await.unwrap();
    let waiter =
        Store::new(dir.path().to_owned()).with_lock_timeout(std::time::Duration::from_millis(50));
    let error = waiter
        .add(entry("t", 2_000_000_000))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cache.lock") && error.contains("if none is running, delete that file"),
        "{error}"
    );
}

#[tokio::test]
async fn a_prefix_names_one_connection_and_stale_pointers_are_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("exo"));
    let mut first = entry("a", 2_000_000_000);
    first.connection.prefix = Some("Contoso".into());
    let first_id = first.connection.id;
    let mut second = entry("b", 2_000_000_000);
    second.connection.prefix = Some("contoso".into());
    assert_eq!(store.add(first).await.unwrap(), 1);
    let error = store.add(second).await.unwrap_err();
    assert!(
        matches!(&error, CacheError::PrefixTaken(taken) if taken.name == "ExchangeOnline_1"),
        "{error}"
    );
    assert_eq!(store.read().await.unwrap().entries.len(), 1);
    assert_eq!(
        store
            .with_prefix("CONTOSO")
            .await
            .unwrap()
            .unwrap()
            .connection
            .id,
        first_id
    );
    assert!(store.with_prefix("Fabrikam").await.unwrap().is_none());

    // Pointers that lie are checked against the connection files.
    let other = entry("c", 2_000_000_000);
    let other_id = other.connection.id;
    store.add(other).await.unwrap();
    let state = dir.path().join("exo");
    std::fs::write(state.join("prefixes/fabrikam"), other_id.to_string()).unwrap();
    assert!(store.with_prefix("Fabrikam").await.unwrap().is_none());
    std::fs::write(state.join("latest"), Uuid::new_v4().to_string()).unwrap();
    assert_eq!(
        store.latest().await.unwrap().unwrap().connection.id,
        other_id
    );
    std::fs::remove_file(state.join("latest")).unwrap();
    assert_eq!(
        store.latest().await.unwrap().unwrap().connection.id,
        other_id
    );
}

/// The single file of formats 1 and 2, as those versions wrote it, with their key.
fn single_file(store: &Store, format: u8, entries: &[Entry], next_number: u32) -> Vec<u8> {
    let (location, key) = Keys::single_file(&store.dir).load_or_create().unwrap();
    let json = serde_json::json!({ "next_number": next_number, "entries": entries });
    sealed::seal(json.to_string().as_bytes(), format, location, &key, b"").unwrap()
}

#[tokio::test]
async fn the_single_file_of_an_older_exo_moves_into_one_file_per_connection() {
    for format in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("exo");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let store = Store::new(state.clone());
        let mut older = vec![entry("one", 2_000_000_000), entry("two", 2_000_000_000)];
        older[0].connection.number = 1;
        older[1].connection.number = 3;
        older[1].connection.prefix = Some("Contoso".into());
        std::fs::write(state.join("cache"), single_file(&store, format, &older, 4)).unwrap();

        let contents = store.read().await.unwrap();
        assert_eq!(contents.entries.len(), 2, "format {format}");
        assert!(!state.join("cache").exists(), "moved, not copied");
        assert!(
            !state.join("cache.key").exists() && state.join("connections.key").exists(),
            "the connection files have a key of their own"
        );
        assert_eq!(store.latest().await.unwrap().unwrap().connection.number, 3);
        assert!(store.with_prefix("contoso").await.unwrap().is_some());
        assert_eq!(store.add(entry("three", 2_000_000_000)).await.unwrap(), 4);
    }

    // One that cannot be read stays, and every operation says so, until it is moved aside.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("exo");
    let store = Store::new(state.clone());
    store.add(entry("kept", 2_000_000_000)).await.unwrap();
    let damaged = b"EXOC\x01\x01 this is not what exo wrote".to_vec();
    std::fs::write(state.join("cache"), &damaged).unwrap();
    let error = store.read().await.unwrap_err();
    assert!(
        error.is_unreadable() && error.to_string().contains("it was left untouched"),
        "{error}"
    );
    assert!(store.add(entry("x", 2_000_000_000)).await.is_err());
    assert_eq!(std::fs::read(state.join("cache")).unwrap(), damaged);
    let aside = store.move_damaged_aside().await.unwrap().unwrap();
    assert_eq!(std::fs::read(aside.join("cache")).unwrap(), damaged);
    assert_eq!(store.read().await.unwrap().entries.len(), 1);
}

#[tokio::test]
async fn a_connection_file_from_a_newer_exo_is_refused() {
    let (_dir, store, ids) = store_with(1).await;
    let path = store.entry_path(ids[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4] = FORMAT_VERSION + 1;
    std::fs::write(&path, &bytes).unwrap();
    let error = store.get(ids[0]).await.unwrap_err().to_string();
    assert!(
        error.contains("it has format 4, this exo reads format 3"),
        "{error}"
    );
}

#[tokio::test]
async fn numbers_do_not_repeat_whatever_next_number_holds() {
    let (dir, store, _) = store_with(2).await;
    let next_number = dir.path().join("exo/next-number");
    let mut last = 2;
    for held in ["", "zero", "1", "4294967295", "-3"] {
        std::fs::write(&next_number, held).unwrap();
        let number = store.add(entry("t", 2_000_000_000)).await.unwrap();
        assert!(number > last, "{held:?}: {number} after {last}");
        last = number;
    }
    std::fs::remove_file(&next_number).unwrap();
    assert_eq!(
        store.add(entry("t", 2_000_000_000)).await.unwrap(),
        last + 1
    );
}

#[tokio::test]
async fn planted_links_pipes_and_open_folders_are_refused_not_followed() {
    let (dir, store, ids) = store_with(1).await;
    let state = dir.path().join("exo");
    // A pipe as a pointer would block a reader for good.
    std::fs::remove_file(state.join("latest")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(state.join("latest"))
            .status()
            .unwrap()
            .success()
    );
    let error = store.latest().await.unwrap_err().to_string();
    assert!(error.contains("it is not a plain file"), "{error}");
    std::fs::remove_file(state.join("latest")).unwrap();
    // A link in place of a connection file is not followed.
    let path = store.entry_path(ids[0]);
    std::fs::rename(&path, dir.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).unwrap();
    let error = store.get(ids[0]).await.unwrap_err().to_string();
    assert!(error.contains("it is not a plain file"), "{error}");
    std::fs::remove_file(&path).unwrap();
    std::fs::rename(dir.path().join("elsewhere"), &path).unwrap();
    // A folder others can write: refused before anything is read from it.
    std::fs::set_permissions(
        state.join("connections"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let error = store.read().await.unwrap_err().to_string();
    assert!(error.contains("group or others can write it"), "{error}");
}
