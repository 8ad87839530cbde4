//! Fault rule matching: skip/count windows, targets, tenants and the special kinds.

use super::*;

fn faults() -> Faults {
    Faults::new(|name| (name == "contoso").then_some(0))
}

#[test]
fn skip_and_count_select_the_nth_matching_request() {
    let f = faults();
    f.add(
        FaultRule::new(FaultKind::Drop, FaultTarget::Exchange)
            .skip(2)
            .count(1),
    )
    .expect("add");
    let hits: Vec<bool> = (0..5)
        .map(|_| f.on_request(Service::Exchange, None).terminal.is_some())
        .collect();
    assert_eq!(hits, [false, false, true, false, false]);
    // Identity requests do not match, so they do not advance the counter either.
    assert!(f.on_request(Service::Identity, None).terminal.is_none());
    let status = &f.list()[0];
    assert_eq!((status.seen, status.hits), (5, 1));
}

#[test]
fn tenant_filter_and_unlimited_count() {
    let f = faults();
    f.add(FaultRule::new(FaultKind::Unavailable, FaultTarget::All).tenant("contoso"))
        .expect("add");
    assert!(f.on_request(Service::Identity, Some(0)).terminal.is_some());
    assert!(f.on_request(Service::Exchange, Some(0)).terminal.is_some());
    assert!(f.on_request(Service::Exchange, Some(1)).terminal.is_none());
    assert!(f.on_request(Service::Exchange, None).terminal.is_none());
    assert!(
        f.on_request(Service::Admin, Some(0)).terminal.is_none(),
        "admin endpoints are never faulted"
    );
    assert!(matches!(
        f.add(FaultRule::new(FaultKind::Drop, FaultTarget::All).tenant("nope")),
        Err(FaultError::UnknownTenant(_))
    ));
}

#[test]
fn delays_add_up_and_first_terminal_wins() {
    let f = faults();
    f.add(FaultRule::new(FaultKind::Delay { ms: 5 }, FaultTarget::All))
        .expect("add");
    f.add(FaultRule::new(
        FaultKind::Throttle {
            retry_after_seconds: 7,
        },
        FaultTarget::All,
    ))
    .expect("add");
    f.add(FaultRule::new(
        FaultKind::Delay { ms: 10 },
        FaultTarget::All,
    ))
    .expect("add");
    f.add(FaultRule::new(FaultKind::Unavailable, FaultTarget::All))
        .expect("add");
    let out = f.on_request(Service::Identity, None);
    assert_eq!(out.delay_ms, 15);
    assert_eq!(
        out.terminal,
        Some(FaultKind::Throttle {
            retry_after_seconds: 7
        })
    );
    assert_eq!(out.labels.len(), 4);
}

#[test]
fn special_points_only_count_their_requests() {
    let f = faults();
    let id = f
        .add(FaultRule::new(FaultKind::SlowDown, FaultTarget::Identity).count(1))
        .expect("add");
    f.add(FaultRule::new(
        FaultKind::ClockSkew { seconds: -30 },
        FaultTarget::Identity,
    ))
    .expect("add");
    assert!(f.on_request(Service::Identity, None).terminal.is_none());
    assert_eq!(
        f.fire(Point::DevicePoll, Service::Identity, None),
        vec![FaultKind::SlowDown]
    );
    assert!(
        f.fire(Point::DevicePoll, Service::Identity, None)
            .is_empty()
    );
    assert_eq!(f.clock_skew(Service::Identity, None), -30);
    assert_eq!(f.clock_skew(Service::Exchange, None), 0);
    assert!(f.remove(id));
    assert!(!f.remove(id));
    f.clear();
    assert!(f.list().is_empty());
}

#[test]
fn rules_round_trip_through_json() {
    let rule: FaultRule = serde_json::from_str(
        r#"{"kind":"throttle","retry_after_seconds":3,"target":"exchange","skip":1,"count":2}"#,
    )
    .expect("parse");
    assert_eq!(
        rule,
        FaultRule::new(
            FaultKind::Throttle {
                retry_after_seconds: 3
            },
            FaultTarget::Exchange
        )
        .skip(1)
        .count(2)
    );
    let rule: FaultRule =
        serde_json::from_str(r#"{"kind":"revoke_refresh_tokens"}"#).expect("parse");
    assert_eq!(rule.kind, FaultKind::RevokeRefreshTokens { aadsts: 50173 });
    assert_eq!(rule.target, FaultTarget::All);
    assert!(
        faults()
            .add(FaultRule::new(
                FaultKind::RevokeRefreshTokens { aadsts: 1 },
                FaultTarget::All
            ))
            .is_err()
    );
    assert!(serde_json::from_str::<FaultRule>(r#"{"kind":"explode"}"#).is_err());
}

#[test]
fn rules_parse_from_json_and_refuse_unknown_fields() {
    let rule: FaultRule = serde_json::from_str(
        r#"{"kind":"throttle","retry_after_seconds":3,"target":"exchange","tenant":"contoso","skip":1,"count":2}"#,
    )
    .expect("rule");
    assert_eq!(
        rule,
        FaultRule::new(
            FaultKind::Throttle {
                retry_after_seconds: 3
            },
            FaultTarget::Exchange
        )
        .tenant("contoso")
        .skip(1)
        .count(2)
    );
    for bad in [
        r#"{"kind":"drop","taget":"exchange"}"#,
        r#"{"kind":"throttle","retry_after":3}"#,
        r#"{"kind":"delay","ms":5,"seconds":1}"#,
        r#"{"kind":"drop","skip":"two"}"#,
        r#"{"kind":"explode"}"#,
    ] {
        assert!(serde_json::from_str::<FaultRule>(bad).is_err(), "{bad}");
    }
}
