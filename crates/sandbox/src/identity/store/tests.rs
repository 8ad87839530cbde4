//! The capped, expiry-ordered maps of the identity store.

use super::*;

#[test]
fn a_full_map_drops_the_entry_that_expires_first() {
    let mut map = Expiring::new(3);
    let now = 1_000;
    for (key, expiry) in [("a", 1_300), ("b", 1_100), ("c", 1_200)] {
        assert!(map.insert(key.to_owned(), key, expiry, now).is_empty());
    }
    assert_eq!(map.insert("d".to_owned(), "d", 1_400, now), ["b"]);
    assert_eq!(map.len(), 3);
    assert!(map.get("b").is_none() && map.get("a").is_some());
    // Using an entry moves its expiry: the least recently used goes next.
    map.reschedule("c", 2_000);
    assert_eq!(map.insert("e".to_owned(), "e", 1_500, now), ["a"]);
    assert_eq!(map.remove("d"), Some("d"));
    assert_eq!(map.len(), 2);
}

#[test]
fn expired_entries_go_first_and_linger_only_for_the_grace_period() {
    let mut map = Expiring::new(10);
    map.insert("old".to_owned(), 1, 100, 0);
    map.insert("fresh".to_owned(), 2, 10_000, 0);
    // Expired, but within the grace period: kept for its precise error.
    assert!(
        map.insert("x".to_owned(), 3, 10_000, 100 + EXPIRED_GRACE_SECONDS - 1)
            .is_empty()
    );
    assert_eq!(map.get("old"), Some(&1));
    // Past the grace period: dropped by the next insert.
    assert_eq!(
        map.insert("y".to_owned(), 4, 10_000, 100 + EXPIRED_GRACE_SECONDS),
        [1]
    );
    assert_eq!(map.len(), 3);
}

#[test]
fn replacing_a_key_keeps_one_entry() {
    let mut map = Expiring::new(2);
    map.insert("k".to_owned(), 1, 50, 0);
    assert_eq!(map.insert("k".to_owned(), 2, 60, 0), [1]);
    assert_eq!((map.len(), map.get("k")), (1, Some(&2)));
}

#[test]
fn evicted_device_codes_take_their_user_codes_with_them() {
    let limits = Limits {
        max_pending_authorizations: 2,
        ..Limits::default()
    };
    let mut store = AuthStore::new(&limits);
    let record = |user_code: &str, expires_at| DeviceCode {
        client_id: Uuid::nil(),
        segment: TenantSegment::Organizations,
        cloud: Cloud::Global,
        requested: Requested::default(),
        user_code: user_code.to_owned(),
        expires_at,
        state: DeviceState::Pending,
    };
    store.insert_device_code("dc1".into(), record("AAAA-1111", 100), 0);
    store.insert_device_code("dc2".into(), record("BBBB-2222", 200), 0);
    store.insert_device_code("dc3".into(), record("CCCC-3333", 300), 0);
    assert!(store.device_codes.get("dc1").is_none());
    assert!(!store.user_codes.contains_key("AAAA1111"));
    assert_eq!(
        store.user_codes.get("CCCC3333").map(String::as_str),
        Some("dc3")
    );
    assert_eq!(store.user_codes.len(), 2);
}
