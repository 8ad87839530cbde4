//! Tests of the token cache on real files: round trips, permissions, damage, concurrency.

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

#[tokio::test]
async fn a_written_cache_reads_back_encrypted_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("exo"));
    assert!(
        store.read().await.unwrap().entries.is_empty(),
        "a missing cache is empty"
    );

    let mut locked = store.lock().await.unwrap();
    assert_eq!(
        locked.contents().add(entry("token-one", 2_000_000_000)),
        Ok(1)
    );
    assert_eq!(
        locked.contents().add(entry("token-two", 2_000_000_000)),
        Ok(2)
    );
    locked.save().unwrap();

    let contents = store.read().await.unwrap();
    let names: Vec<String> = contents
        .entries
        .iter()
        .map(|e| e.connection.name())
        .collect();
    assert_eq!(names, ["ExchangeOnline_1", "ExchangeOnline_2"]);
    assert_eq!(
        contents.entries[1].tokens.access_token.expose(),
        "token-two"
    );

    let raw = std::fs::read(store.path()).unwrap();
    assert!(raw.starts_with(b"EXOC"));
    assert!(
        !raw.windows(9).any(|w| w == b"token-one"),
        "tokens are encrypted at rest"
    );
    assert_eq!(mode(&store.path()), 0o600);
    assert_eq!(mode(&dir.path().join("exo/cache.key")), 0o600);
    assert_eq!(mode(&dir.path().join("exo")), 0o700);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("exo"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files remain: {leftovers:?}"
    );
}

#[tokio::test]
async fn removing_the_last_connection_removes_the_cache_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let mut locked = store.lock().await.unwrap();
    locked.contents().add(entry("t", 2_000_000_000)).unwrap();
    locked.save().unwrap();
    let mut locked = store.lock().await.unwrap();
    locked.contents().entries.clear();
    locked.save().unwrap();
    assert!(!store.path().exists() && !dir.path().join("cache.key").exists());
}

#[tokio::test]
async fn a_damaged_cache_is_reported_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let mut locked = store.lock().await.unwrap();
    locked.contents().add(entry("t", 2_000_000_000)).unwrap();
    locked.save().unwrap();
    let good = std::fs::read(store.path()).unwrap();

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
        std::fs::write(store.path(), bytes).unwrap();
        let error = store.read().await.unwrap_err().to_string();
        assert!(
            error.contains(reason) && error.contains("it was left untouched"),
            "{reason}: {error}"
        );
        assert!(
            store.lock().await.is_err(),
            "a read-modify-write refuses too"
        );
        assert_eq!(std::fs::read(store.path()).unwrap(), bytes, "untouched");
    }

    std::fs::write(store.path(), &good).unwrap();
    std::fs::remove_file(dir.path().join("cache.key")).unwrap();
    // A store keeps its key for the life of the process; a new process sees the loss.
    let store = Store::new(dir.path().to_owned());
    let error = store.read().await.unwrap_err().to_string();
    assert!(
        error.contains("its key (the key file") && error.contains("is missing"),
        "{error}"
    );

    let aside = store.move_damaged_aside().await.unwrap().unwrap();
    assert_eq!(
        std::fs::read(aside).unwrap(),
        good,
        "moved aside, not deleted"
    );
    assert!(store.read().await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn a_key_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let mut locked = store.lock().await.unwrap();
    locked.contents().add(entry("t", 2_000_000_000)).unwrap();
    locked.save().unwrap();
    let key = dir.path().join("cache.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = Store::new(dir.path().to_owned())
        .read()
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
                        let mut locked = store.lock().await.unwrap();
                        locked
                            .contents()
                            .add(entry(&format!("token-{i}-{j}"), 2_000_000_000))
                            .unwrap();
                        locked.save().unwrap();
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
    let mut numbers: Vec<u32> = contents
        .entries
        .iter()
        .map(|e| e.connection.number)
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=80).collect::<Vec<_>>(),
        "every connection got its own number"
    );
}

#[tokio::test]
async fn a_lock_held_too_long_is_reported_with_the_file_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Store::new(dir.path().to_owned());
    let _held = holder.lock().await.unwrap();
    let waiter =
        Store::new(dir.path().to_owned()).with_lock_timeout(std::time::Duration::from_millis(50));
    let error = waiter.read().await.unwrap_err().to_string();
    assert!(
        error.contains("cache.lock") && error.contains("if none is running, delete that file"),
        "{error}"
    );
}

#[test]
fn a_prefix_names_one_connection() {
    let mut contents = Contents::default();
    let mut first = entry("a", 2_000_000_000);
    first.connection.prefix = Some("Contoso".into());
    let mut second = entry("b", 2_000_000_000);
    second.connection.prefix = Some("contoso".into());
    assert_eq!(contents.add(first), Ok(1));
    assert_eq!(
        contents.add(second),
        Err(PrefixTaken {
            name: "ExchangeOnline_1".into(),
            who: "admin@contoso.onmicrosoft.com".into()
        })
    );
    assert_eq!(contents.entries.len(), 1);
}

#[tokio::test]
async fn a_format_1_cache_is_read_and_one_from_a_newer_exo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("state"));
    let mut locked = store.lock().await.unwrap();
    locked.contents().add(entry("t1", 4_000_000_000)).unwrap();
    locked.save().unwrap();
    // The same contents as the previous format wrote them.
    let contents = store.read().await.unwrap();
    let (location, key) = store.keys.load_or_create().unwrap();
    let mut header = MAGIC.to_vec();
    header.extend([1, location.to_byte()]);
    let nonce = [7u8; NONCE_LEN];
    let mut sealed = serde_json::to_vec(&contents).unwrap();
    cipher(&key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header[..]),
            &mut sealed,
        )
        .unwrap();
    let mut bytes = header;
    bytes.extend(nonce);
    bytes.extend(sealed);
    std::fs::write(store.path(), &bytes).unwrap();
    assert_eq!(store.read().await.unwrap().entries.len(), 1);

    bytes[MAGIC.len()] = FORMAT_VERSION + 1;
    std::fs::write(store.path(), &bytes).unwrap();
    let error = store.read().await.unwrap_err().to_string();
    assert!(
        error.contains("it has format 3, this exo reads formats up to 2"),
        "{error}"
    );
}
