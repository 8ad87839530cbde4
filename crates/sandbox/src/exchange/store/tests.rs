//! Persistence of tenant data: the generated-mailbox overlay, write ordering, file modes.

use super::*;

fn load(dir: &Path, extra: usize) -> ExchangeStore {
    ExchangeStore::load(&Seed::default(), extra, dir).expect("load")
}

fn names(store: &ExchangeStore) -> Vec<String> {
    store
        .read(0)
        .mailboxes
        .iter()
        .map(|e| e.mailbox.name.clone())
        .collect()
}

fn replace(data: &mut TenantData, name: &str, change: impl FnOnce(&mut Mailbox)) {
    let slot = data
        .mailboxes
        .iter_mut()
        .find(|e| e.mailbox.name == name)
        .expect("mailbox");
    let mut m = slot.mailbox.clone();
    change(&mut m);
    *slot = Entry::new(m, "contoso.onmicrosoft.com");
}

#[tokio::test]
async fn changes_to_generated_mailboxes_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = load(dir.path(), 5);
    let seeded = names(&store).len() - 5;
    let write = {
        let mut data = store.write(0);
        replace(&mut data, "user000002", |m| {
            m.office = "Moved".into();
            m.origin = Origin::GeneratedChanged;
        });
        let removed = data
            .mailboxes
            .iter()
            .position(|e| e.mailbox.name == "user000003")
            .expect("mailbox");
        let entry = data.mailboxes.remove(removed);
        data.removed_generated.insert(entry.mailbox.guid);
        store.changed(0, &mut data)
    };
    store.persist(write).await.expect("persist");
    let file: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("exchange")
                .join(format!("{}.json", Seed::default().tenants[0].id)),
        )
        .expect("file"),
    )
    .expect("json");
    assert_eq!(
        file["mailboxes"].as_array().map(Vec::len),
        Some(seeded),
        "unchanged generated mailboxes are not written"
    );
    assert_eq!(file["generated"]["changed"][0]["office"], "Moved");
    assert_eq!(
        file["generated"]["removed"].as_array().map(Vec::len),
        Some(1)
    );

    let reloaded = load(dir.path(), 5);
    let all = names(&reloaded);
    assert_eq!(all.len(), seeded + 4);
    assert!(!all.contains(&"user000003".to_owned()));
    let data = reloaded.read(0);
    let changed = data
        .mailboxes
        .iter()
        .find(|e| e.mailbox.name == "user000002")
        .expect("changed mailbox");
    assert_eq!(
        (changed.mailbox.office.as_str(), changed.mailbox.origin),
        ("Moved", Origin::GeneratedChanged)
    );
    drop(data);
    // With fewer generated mailboxes, the overlay applies to those that exist.
    assert_eq!(names(&load(dir.path(), 1)).len(), seeded + 1);
}

#[tokio::test]
async fn an_older_snapshot_never_overwrites_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = load(dir.path(), 0);
    let take = |office: &str| {
        let mut data = store.write(0);
        replace(&mut data, "AdeleV", |m| m.office = office.to_owned());
        store.changed(0, &mut data)
    };
    let (first, second) = (take("One"), take("Two"));
    store.persist(second).await.expect("newer");
    store.persist(first).await.expect("older is skipped");
    let reloaded = load(dir.path(), 0);
    let data = reloaded.read(0);
    let adele = data
        .mailboxes
        .iter()
        .find(|e| e.mailbox.name == "AdeleV")
        .expect("AdeleV");
    assert_eq!(adele.mailbox.office, "Two");
    #[cfg(unix)]
    {
        let path = dir
            .path()
            .join("exchange")
            .join(format!("{}.json", Seed::default().tenants[0].id));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_corrupt_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exchange");
    std::fs::create_dir_all(&path).expect("dir");
    std::fs::write(
        path.join(format!("{}.json", Seed::default().tenants[0].id)),
        "{",
    )
    .expect("write");
    let err = ExchangeStore::load(&Seed::default(), 0, dir.path()).expect_err("corrupt");
    assert!(
        err.to_string().contains("is not valid sandbox tenant data"),
        "{err}"
    );
}
