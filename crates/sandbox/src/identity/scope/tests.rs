//! `scope` and `resource` parsing, and the scopes a response reports.

use super::*;

#[test]
fn scope_parsing_table() {
    use ScopeError::*;
    let all = EXCHANGE_DELEGATED_SCOPES.to_vec();
    type Expected = Result<(Option<Cloud>, Vec<&'static str>, bool), ScopeError>;
    let cases: Vec<(Cloud, &str, Expected)> = vec![
        (
            Cloud::Global,
            "https://outlook.office365.com/.default offline_access openid profile",
            Ok((Some(Cloud::Global), all.clone(), true)),
        ),
        (
            Cloud::Global,
            "https://outlook.office365.com//.default",
            Ok((Some(Cloud::Global), all.clone(), false)),
        ),
        (
            Cloud::Global,
            "00000002-0000-0ff1-ce00-000000000000/.default",
            Ok((Some(Cloud::Global), all.clone(), false)),
        ),
        (
            Cloud::Global,
            "https://outlook.office365.com/adminapi.accessasuser.all",
            Ok((Some(Cloud::Global), vec![ADMIN_API_SCOPE], false)),
        ),
        (
            Cloud::UsGov,
            "https://outlook-dod.office365.us/.default",
            Ok((Some(Cloud::Dod), all.clone(), false)),
        ),
        (
            Cloud::Global,
            "openid offline_access",
            Ok((None, vec![], true)),
        ),
        (
            Cloud::Global,
            "https://outlook.office365.us/.default",
            Err(UnknownResource("https://outlook.office365.us".into())),
        ),
        (
            Cloud::Global,
            "User.Read",
            Err(UnknownResource("https://graph.microsoft.com".into())),
        ),
        (
            Cloud::Global,
            "https://outlook.office365.com/Mail.Send",
            Err(UnknownPermission(
                "https://outlook.office365.com/Mail.Send".into(),
            )),
        ),
        (
            Cloud::UsGov,
            "https://outlook.office365.us/.default https://outlook-dod.office365.us/.default",
            Err(MultipleResources),
        ),
    ];
    for (cloud, scope, expected) in cases {
        let got = parse_scope(cloud, scope).map(|r| {
            (
                r.resource.as_ref().map(|(c, _)| *c),
                r.delegated_permissions(),
                r.offline_access,
            )
        });
        assert_eq!(got, expected, "{scope}");
    }
}

#[test]
fn response_scope_lists_granted_permissions_then_oidc() {
    let r = parse_scope(
        Cloud::Global,
        "https://outlook.office365.com/AdminApi.AccessAsUser.All openid offline_access",
    )
    .expect("parse");
    assert_eq!(
        r.response_scope(),
        "https://outlook.office365.com/AdminApi.AccessAsUser.All openid offline_access"
    );
    let r = parse_resource(Cloud::China, "https://outlook.office365.cn/").expect("parse");
    assert_eq!(r.resource.map(|(c, _)| c), Some(Cloud::China));
}
