//! Every cmdlet against the built-in seed's contoso: parameter binding (names, prefixes,
//! types, common and ShouldProcess parameters), the read cmdlets' identities, filters, sizes
//! and paging, and each change, its refusals and `-WhatIf`.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::directory::Directory;
use crate::seed::{Role, Seed};

struct Fixture {
    _dir: tempfile::TempDir,
    store: ExchangeStore,
    directory: Directory,
}

/// What a call produced, with the rows parsed.
struct Answer {
    rows: Vec<Value>,
    next: Option<usize>,
    warnings: Vec<String>,
    confirmation: Option<String>,
    changed: bool,
}

impl Fixture {
    fn new(extra_mailboxes: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = Seed::default();
        let store = ExchangeStore::load(&seed, extra_mailboxes, dir.path()).expect("store");
        let directory = Directory::new(&seed, &HashMap::new());
        Fixture {
            _dir: dir,
            store,
            directory,
        }
    }

    fn call(
        &self,
        roles: &[Role],
        name: &str,
        parameters: Value,
        skip: usize,
        page_size: usize,
    ) -> Result<Answer, Value> {
        let caller = Caller {
            tenant: 0,
            principal: "tester".into(),
            roles: roles.to_vec(),
        };
        let Value::Object(parameters) = parameters else {
            panic!("parameters must be an object")
        };
        let call = Call {
            store: &self.store,
            org: &self.directory.tenants[0],
            caller: &caller,
            name,
            parameters: &parameters,
            skip,
            page_size,
        };
        match run(&call) {
            Ok(Done { output, write }) => Ok(Answer {
                rows: output
                    .rows
                    .iter()
                    .map(|r| serde_json::from_str(r.text()).expect("rows are JSON"))
                    .collect(),
                next: output.next,
                warnings: output.warnings,
                confirmation: output.confirmation,
                changed: write.is_some(),
            }),
            Err(e) => Err(e.body()),
        }
    }

    /// As a Global Administrator, one page of 1000.
    fn run(&self, name: &str, parameters: Value) -> Result<Answer, Value> {
        self.call(&[Role::GlobalAdministrator], name, parameters, 0, 1000)
    }

    fn ok(&self, name: &str, parameters: Value) -> Answer {
        self.run(name, parameters.clone())
            .unwrap_or_else(|e| panic!("{name} {parameters}: {e:#}"))
    }

    /// The error's (code, message).
    fn err(&self, name: &str, parameters: Value) -> (String, String) {
        match self.run(name, parameters.clone()) {
            Ok(_) => panic!("{name} {parameters} succeeded"),
            Err(body) => error_of(&body),
        }
    }

    fn names(&self, name: &str, parameters: Value) -> Vec<String> {
        self.ok(name, parameters)
            .rows
            .iter()
            .map(|r| r["Name"].as_str().expect("Name").to_owned())
            .collect()
    }

    fn mailbox(&self, identity: &str) -> Value {
        let mut rows = self.ok("Get-Mailbox", json!({"Identity": identity})).rows;
        assert_eq!(rows.len(), 1, "{identity}");
        rows.remove(0)
    }
}

fn error_of(body: &Value) -> (String, String) {
    let e = &body["error"];
    (
        e["code"].as_str().unwrap_or_default().to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn assert_err(result: (String, String), code: &str, part: &str) {
    assert_eq!(result.0, code, "{}", result.1);
    assert!(
        result.1.contains(part),
        "expected '{part}' in '{}'",
        result.1
    );
}

fn contoso() -> crate::seed::Tenant {
    Seed::default().tenants.remove(0)
}

#[test]
fn get_mailbox_identity_forms() {
    let f = Fixture::new(0);
    let adele = f.mailbox("AdeleV");
    let guid = adele["Guid"].as_str().expect("Guid").to_owned();
    let exchange_guid = adele["ExchangeGuid"]
        .as_str()
        .expect("ExchangeGuid")
        .to_owned();
    let object_id = adele["ExternalDirectoryObjectId"]
        .as_str()
        .expect("ExternalDirectoryObjectId")
        .to_owned();
    let dn = adele["DistinguishedName"].as_str().expect("DN").to_owned();
    for identity in [
        "AdeleV",
        "adelev",
        "AdeleV@contoso.onmicrosoft.com",
        "ADELEV@CONTOSO.COM",
        "smtp:AdeleV@contoso.com",
        "SMTP:AdeleV@contoso.onmicrosoft.com",
        guid.as_str(),
        exchange_guid.as_str(),
        object_id.as_str(),
        dn.as_str(),
        " AdeleV ",
    ] {
        assert_eq!(
            f.mailbox(identity)["DisplayName"],
            "Adele Vance",
            "{identity}"
        );
    }
    assert_err(
        f.err("Get-Mailbox", json!({"Identity": "nobody"})),
        "NotFound",
        "'nobody' couldn't be found",
    );
    assert_err(
        f.err(
            "Get-Mailbox",
            json!({"Identity": "00000000-0000-4000-8000-000000000000"}),
        ),
        "NotFound",
        "couldn't be found",
    );
    // A wildcard lists every match.
    assert_eq!(
        f.names("Get-Mailbox", json!({"Identity": "conf-*"})).len(),
        4
    );
    assert!(
        f.names("Get-Mailbox", json!({"Identity": "zz*"}))
            .is_empty()
    );
    // One identity naming two mailboxes (one's UPN, the other's Name) is ambiguous.
    f.ok(
        "New-Mailbox",
        json!({"Name": "AdeleV@contoso.onmicrosoft.com", "Shared": true}),
    );
    assert_err(
        f.err(
            "Get-Mailbox",
            json!({"Identity": "AdeleV@contoso.onmicrosoft.com"}),
        ),
        "BadRequest",
        "matches multiple entries",
    );
}

#[test]
fn get_mailbox_filters_types_and_anr() {
    let f = Fixture::new(0);
    let tenant = contoso();
    let of_type = |t: &str| {
        tenant
            .mailboxes
            .iter()
            .filter(|m| m.recipient_type_details == t)
            .count()
    };
    let (shared, rooms) = (of_type("SharedMailbox"), of_type("RoomMailbox"));
    let count = |p: Value| f.ok("Get-Mailbox", p).rows.len();
    assert_eq!(
        count(json!({"Filter": "RecipientTypeDetails -eq 'SharedMailbox'"})),
        shared
    );
    assert_eq!(
        count(
            json!({"Filter": "RecipientTypeDetails -ne 'UserMailbox' -and -not (Alias -like 'conf-*')"})
        ),
        shared + of_type("EquipmentMailbox")
    );
    assert_eq!(
        count(json!({"Filter": "EmailAddresses -like '*@contoso.com' -and Alias -eq 'info'"})),
        1
    );
    assert_eq!(
        count(json!({"Filter": "ForwardingSmtpAddress -ne $null"})),
        0
    );
    assert_eq!(
        count(json!({"RecipientTypeDetails": "SharedMailbox"})),
        shared
    );
    assert_eq!(
        count(json!({"RecipientTypeDetails": "sharedmailbox, RoomMailbox"})),
        shared + rooms
    );
    assert_eq!(
        count(json!({"RecipientTypeDetails": ["SharedMailbox", "RoomMailbox"]})),
        shared + rooms
    );
    assert_eq!(
        count(json!({"RecipientTypeDetails": "MailContact"})),
        0,
        "a known type the sandbox has none of"
    );
    assert_err(
        f.err("Get-Mailbox", json!({"RecipientTypeDetails": "Spaceship"})),
        "BadRequest",
        "Unable to match the identifier name Spaceship",
    );
    assert_err(
        f.err("Get-Mailbox", json!({"RecipientTypeDetails": [1]})),
        "BadRequest",
        "System.String[]",
    );
    assert_err(
        f.err("Get-Mailbox", json!({"Filter": "Department -eq 'IT'"})),
        "BadRequest",
        "\"Department\" is not a recognized filterable property",
    );
    assert_err(
        f.err("Get-Mailbox", json!({"Filter": "Alias -eq"})),
        "BadRequest",
        "Invalid filter syntax",
    );
    assert_err(
        f.err(
            "Get-Mailbox",
            json!({"Filter": format!("{}Alias -eq 'x'", "(".repeat(1000))}),
        ),
        "BadRequest",
        "Invalid filter syntax",
    );
    // -Anr: prefix of name, alias, display, first or last name, address.
    assert_eq!(count(json!({"Anr": "conf"})), 4);
    assert_eq!(count(json!({"Anr": "vance"})), 1);
    // Parameters combine.
    assert_eq!(
        count(
            json!({"Anr": "conf", "RecipientTypeDetails": "RoomMailbox", "Filter": "Alias -ne 'conf-adams'"})
        ),
        3
    );
}

#[test]
fn result_size_and_paging() {
    let f = Fixture::new(1_200);
    let total = f.store.read(0).mailboxes.len();
    // Default: 1000 and the real warning.
    let all = f.ok("Get-Mailbox", json!({}));
    assert_eq!((all.rows.len(), all.next), (1000, None));
    assert!(all.warnings[0].contains("only the first 1000 items"));
    let unlimited = f.ok("Get-Mailbox", json!({"ResultSize": "Unlimited"}));
    assert_eq!(unlimited.rows.len(), 1000, "one page");
    assert_eq!(unlimited.next, Some(1000));
    assert!(unlimited.warnings.is_empty());
    let rest = f
        .call(
            &[Role::GlobalReader],
            "Get-Mailbox",
            json!({"ResultSize": "unlimited"}),
            1000,
            1000,
        )
        .expect("second page");
    assert_eq!((rest.rows.len(), rest.next), (total - 1000, None));
    for size in [json!(3), json!("3"), json!(" 3 ")] {
        let three = f.ok("Get-Mailbox", json!({"ResultSize": size}));
        assert_eq!(three.rows.len(), 3);
        assert!(three.warnings[0].contains("increase the value for the ResultSize"));
    }
    // Paging within -ResultSize: 15 in pages of 10, filtered or not.
    for filter in [json!({}), json!({"Filter": "Alias -like 'user*'"})] {
        let mut params = filter.clone();
        params["ResultSize"] = json!(15);
        let first = f
            .call(&[Role::GlobalReader], "Get-Mailbox", params.clone(), 0, 10)
            .expect("page 1");
        assert_eq!((first.rows.len(), first.next), (10, Some(10)), "{filter}");
        let second = f
            .call(&[Role::GlobalReader], "Get-Mailbox", params, 10, 10)
            .expect("page 2");
        assert_eq!((second.rows.len(), second.next), (5, None), "{filter}");
        assert!(second.warnings[0].contains("ResultSize"));
        let names: std::collections::HashSet<&Value> = first
            .rows
            .iter()
            .chain(&second.rows)
            .map(|r| &r["Name"])
            .collect();
        assert_eq!(names.len(), 15, "no duplicates across pages");
    }
    for (bad, part) in [
        (json!(0), "less than the minimum allowed range of 1"),
        (json!("0"), "less than the minimum allowed range of 1"),
        (json!(-1), "Cannot convert value \"-1\""),
        (json!("lots"), "Unlimited only accepts 'Unlimited'"),
        (json!(5_000_000_000u64), "Cannot convert value"),
        (json!(true), "Cannot convert value \"true\""),
    ] {
        assert_err(
            f.err("Get-Mailbox", json!({"ResultSize": bad})),
            "BadRequest",
            part,
        );
    }
}

#[test]
fn get_recipient_and_get_user_views() {
    let f = Fixture::new(0);
    let recipients = f.ok(
        "Get-Recipient",
        json!({"Filter": "Department -eq 'Engineering'"}),
    );
    assert_eq!(recipients.rows.len(), 2);
    let row = &recipients.rows[0];
    assert_eq!(row["RecipientType"], "UserMailbox");
    assert!(row.get("Department").is_some() && row.get("Database").is_none());
    let info = f.ok("Get-Recipient", json!({"Identity": "info@contoso.com"}));
    assert_eq!(info.rows[0]["RecipientTypeDetails"], "SharedMailbox");
    assert_eq!(
        f.ok("Get-Recipient", json!({"Filter": "City -eq 'Tulsa'"}))
            .rows
            .len(),
        4
    );
    let user = f.ok("Get-User", json!({"Identity": "nopwsh"}));
    assert_eq!(
        (
            user.rows[0]["EXOModuleEnabled"].as_bool(),
            user.rows[0]["RemotePowerShellEnabled"].as_bool(),
            user.rows[0]["UserPrincipalName"].as_str()
        ),
        (
            Some(false),
            Some(false),
            Some("nopwsh@contoso.onmicrosoft.com")
        )
    );
    assert_eq!(
        f.ok("Get-User", json!({"Identity": "disabled"})).rows[0]["AccountDisabled"],
        true
    );
    assert_eq!(
        f.ok("Get-User", json!({"Filter": "Title -eq 'Director'"}))
            .rows
            .len(),
        3
    );
    assert_err(
        f.err("Get-User", json!({"Filter": "EmailAddresses -like '*'"})),
        "BadRequest",
        "is not a recognized filterable property",
    );
    assert_err(
        f.err("Get-Recipient", json!({"Identity": "nobody"})),
        "NotFound",
        "couldn't be found",
    );
}

#[test]
fn accepted_domains_and_organization_config() {
    let f = Fixture::new(0);
    let domains = f.ok("Get-AcceptedDomain", json!({}));
    let names: Vec<&str> = domains
        .rows
        .iter()
        .filter_map(|d| d["DomainName"].as_str())
        .collect();
    assert_eq!(names, ["contoso.onmicrosoft.com", "contoso.com"]);
    assert_eq!(
        (
            domains.rows[0]["Default"].as_bool(),
            domains.rows[0]["InitialDomain"].as_bool(),
            domains.rows[1]["Default"].as_bool()
        ),
        (Some(false), Some(true), Some(true))
    );
    assert_eq!(
        f.ok("Get-AcceptedDomain", json!({"Identity": "CONTOSO.COM"}))
            .rows
            .len(),
        1
    );
    assert_err(
        f.err("Get-AcceptedDomain", json!({"Identity": "fabrikam.com"})),
        "NotFound",
        "couldn't be found",
    );
    assert_err(
        f.err("Get-AcceptedDomain", json!({"Filter": "x"})),
        "BadRequest",
        "A parameter cannot be found that matches parameter name 'Filter'",
    );
    let config = f.ok("Get-OrganizationConfig", json!({}));
    assert_eq!(config.rows.len(), 1);
    assert_eq!(config.rows[0]["Name"], "contoso.onmicrosoft.com");
    assert_eq!(config.rows[0]["DisplayName"], "Contoso");
    assert_err(
        f.err("Get-OrganizationConfig", json!({"Identity": "x"})),
        "BadRequest",
        "A parameter cannot be found",
    );
}

#[test]
fn set_organization_config() {
    let f = Fixture::new(0);
    let what_if = f.ok(
        "Set-OrganizationConfig",
        json!({"FocusedInboxOn": false, "WhatIf": true}),
    );
    assert!(!what_if.changed && what_if.warnings[0].starts_with("What if:"));
    assert_eq!(
        f.ok("Get-OrganizationConfig", json!({})).rows[0]["FocusedInboxOn"],
        true
    );
    let done = f.ok(
        "Set-OrganizationConfig",
        json!({"focusedinboxon": "false", "MailTipsLargeAudienceThreshold": " 50 ", "DistributionGroupNamingPolicy": "DL_<GroupName>", "Confirm": false, "ErrorAction": "Stop"}),
    );
    assert!(done.changed && done.warnings.is_empty());
    let config = &f.ok("Get-OrganizationConfig", json!({})).rows[0];
    assert_eq!(
        (
            config["FocusedInboxOn"].as_bool(),
            config["MailTipsLargeAudienceThreshold"].as_i64(),
            config["DistributionGroupNamingPolicy"].as_str()
        ),
        (Some(false), Some(50), Some("DL_<GroupName>"))
    );
    let again = f.ok("Set-OrganizationConfig", json!({"FocusedInboxOn": false}));
    assert!(!again.changed);
    assert!(
        again.warnings[0].contains("no settings of 'contoso.onmicrosoft.com' have been modified")
    );
    assert_err(
        f.err(
            "Set-OrganizationConfig",
            json!({"FocusedInboxOn": "sometimes"}),
        ),
        "BadRequest",
        "System.Boolean",
    );
    assert_err(
        f.err(
            "Set-OrganizationConfig",
            json!({"MailTipsLargeAudienceThreshold": "many"}),
        ),
        "BadRequest",
        "System.Int32",
    );
    assert_err(
        f.err("Set-OrganizationConfig", json!({"DisplayName": [1]})),
        "BadRequest",
        "A parameter cannot be found",
    );
    assert_err(
        f.err("Set-OrganizationConfig", json!({"BookingsEnabled": [1]})),
        "BadRequest",
        "System.Boolean",
    );
    assert_err(
        f.err(
            "Set-OrganizationConfig",
            json!({"PublicFoldersEnabled": {"a": 1}}),
        ),
        "BadRequest",
        "System.String",
    );
    assert_err(
        f.err("Set-OrganizationConfig", json!({"Mail": true})),
        "BadRequest",
        "is ambiguous",
    );
    // Exchange Recipient Administrators change recipients, not the organization.
    let refused = f
        .call(
            &[Role::ExchangeRecipientAdministrator],
            "Set-OrganizationConfig",
            json!({"FocusedInboxOn": true}),
            0,
            1000,
        )
        .map(|_| ())
        .expect_err("refused");
    assert_err(error_of(&refused), "Forbidden", "is not recognized");
}

#[test]
fn new_mailbox() {
    let f = Fixture::new(0);
    let what_if = f.ok(
        "New-Mailbox",
        json!({"Name": "Desk", "Shared": true, "WhatIf": true}),
    );
    assert!(!what_if.changed && what_if.rows.is_empty());
    assert_err(
        f.err("Get-Mailbox", json!({"Identity": "Desk"})),
        "NotFound",
        "couldn't be found",
    );
    let created = f.ok(
        "New-Mailbox",
        json!({"Name": "Help Desk", "Shared": true, "DisplayName": "IT Help Desk"}),
    );
    assert!(created.changed);
    let row = &created.rows[0];
    assert_eq!(
        (
            row["Alias"].as_str(),
            row["PrimarySmtpAddress"].as_str(),
            row["RecipientTypeDetails"].as_str(),
            row["DisplayName"].as_str()
        ),
        (
            Some("HelpDesk"),
            Some("HelpDesk@contoso.com"),
            Some("SharedMailbox"),
            Some("IT Help Desk")
        )
    );
    assert_eq!(f.mailbox("Help Desk")["Alias"], "HelpDesk");
    let user = f.ok(
        "New-Mailbox",
        json!({"Name": "Kim", "MicrosoftOnlineServicesID": "kim@contoso.com", "Password": "x", "FirstName": "Kim", "LastName": "Akers", "ResetPasswordOnNextLogon": true}),
    );
    assert_eq!(user.rows[0]["UserPrincipalName"], "kim@contoso.com");
    assert_eq!(
        f.ok("Get-User", json!({"Identity": "Kim"})).rows[0]["LastName"],
        "Akers"
    );
    let room = f.ok(
        "New-Mailbox",
        json!({"Name": "Board Room", "Room": true, "Alias": "board", "PrimarySmtpAddress": "board@contoso.onmicrosoft.com"}),
    );
    assert_eq!(room.rows[0]["RecipientTypeDetails"], "RoomMailbox");
    for (params, code, part) in [
        (
            json!({"Shared": true}),
            "BadRequest",
            "missing mandatory parameters: Name",
        ),
        (
            json!({"Name": "Someone"}),
            "BadRequest",
            "MicrosoftOnlineServicesID, Password",
        ),
        (
            json!({"Name": "Help Desk", "Shared": true, "Alias": "hd2"}),
            "BadRequest",
            "is already being used",
        ),
        (
            json!({"Name": "Info2", "Shared": true, "Alias": "info"}),
            "BadRequest",
            "proxy address \"SMTP:info@contoso.com\" is already being used",
        ),
        (
            json!({"Name": "X", "Shared": true, "PrimarySmtpAddress": "not an address"}),
            "BadRequest",
            "isn't correct",
        ),
        (
            json!({"Name": "X", "Shared": true, "PrimarySmtpAddress": "x@fabrikam.com"}),
            "BadRequest",
            "isn't an accepted domain",
        ),
        (
            json!({"Name": "X", "Shared": true, "Room": true}),
            "BadRequest",
            "Parameter set cannot be resolved",
        ),
        (
            json!({"Name": "!!!", "Shared": true}),
            "BadRequest",
            "can't be empty",
        ),
        (
            json!({"Name": "X", "Shared": "maybe"}),
            "BadRequest",
            "System.Boolean",
        ),
    ] {
        assert_err(f.err("New-Mailbox", params.clone()), code, part);
    }
    let reader = f
        .call(
            &[Role::GlobalReader],
            "New-Mailbox",
            json!({"Name": "Y", "Shared": true}),
            0,
            1000,
        )
        .map(|_| ())
        .expect_err("readers can't");
    assert_err(
        error_of(&reader),
        "Forbidden",
        "'New-Mailbox' is not recognized",
    );
}

#[test]
fn set_mailbox() {
    let f = Fixture::new(3);
    let done = f.ok(
        "Set-Mailbox",
        json!({"Identity": "AdeleV", "DisplayName": "Adele V.", "Office": "Remote", "CustomAttribute1": "tag", "HiddenFromAddressListsEnabled": true, "LitigationHoldEnabled": "1", "ForwardingSmtpAddress": "smtp:desk@contoso.com", "DeliverToMailboxAndForward": true}),
    );
    assert!(done.changed && done.rows.is_empty());
    let adele = f.mailbox("AdeleV");
    assert_eq!(
        (
            adele["DisplayName"].as_str(),
            adele["Office"].as_str(),
            adele["CustomAttribute1"].as_str(),
            adele["ForwardingSmtpAddress"].as_str()
        ),
        (
            Some("Adele V."),
            Some("Remote"),
            Some("tag"),
            Some("smtp:desk@contoso.com")
        )
    );
    assert_eq!(
        (
            adele["HiddenFromAddressListsEnabled"].as_bool(),
            adele["LitigationHoldEnabled"].as_bool(),
            adele["DeliverToMailboxAndForward"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    assert_ne!(adele["WhenChanged"], adele["WhenCreated"]);
    f.ok(
        "Set-Mailbox",
        json!({"Identity": "AdeleV", "ForwardingSmtpAddress": null}),
    );
    assert!(f.mailbox("AdeleV")["ForwardingSmtpAddress"].is_null());
    let unchanged = f.ok(
        "Set-Mailbox",
        json!({"Identity": "AdeleV", "Office": "Remote"}),
    );
    assert!(!unchanged.changed);
    assert!(unchanged.warnings[0].contains("no settings of 'AdeleV' have been modified"));
    let what_if = f.ok(
        "Set-Mailbox",
        json!({"Identity": "AdeleV", "Office": "HQ", "WhatIf": true}),
    );
    assert!(!what_if.changed && what_if.warnings[0].starts_with("What if:"));
    assert_eq!(f.mailbox("AdeleV")["Office"], "Remote");
    // Addresses: a new primary, secondaries get `smtp:`.
    f.ok(
        "Set-Mailbox",
        json!({"Identity": "AdeleV", "EmailAddresses": ["SMTP:adele@contoso.com", "adele.vance@contoso.com"]}),
    );
    let adele = f.mailbox("adele@contoso.com");
    assert_eq!(adele["PrimarySmtpAddress"], "adele@contoso.com");
    assert_eq!(
        adele["EmailAddresses"],
        json!(["SMTP:adele@contoso.com", "smtp:adele.vance@contoso.com"])
    );
    f.ok(
        "Set-Mailbox",
        json!({"Identity": "info", "Type": "Regular"}),
    );
    assert_eq!(f.mailbox("info")["RecipientTypeDetails"], "UserMailbox");
    f.ok("Set-Mailbox", json!({"Identity": "info", "Type": "shared"}));
    // A generated mailbox can be changed too.
    assert!(
        f.ok(
            "Set-Mailbox",
            json!({"Identity": "user000002", "Office": "X"})
        )
        .changed
    );
    for (params, code, part) in [
        (
            json!({"Identity": "AdeleV", "DisplayName": " "}),
            "BadRequest",
            "can't be empty",
        ),
        (
            json!({"Identity": "AdeleV", "Alias": "info"}),
            "BadRequest",
            "alias \"info\" is already being used",
        ),
        (
            json!({"Identity": "AdeleV", "ForwardingSmtpAddress": "nope"}),
            "BadRequest",
            "Microsoft.Exchange.Data.ProxyAddress",
        ),
        (
            json!({"Identity": "AdeleV", "EmailAddresses": ["SMTP:a@contoso.com", "SMTP:b@contoso.com"]}),
            "BadRequest",
            "more than one primary",
        ),
        (
            json!({"Identity": "AdeleV", "EmailAddresses": "info@contoso.com"}),
            "BadRequest",
            "already being used",
        ),
        (
            json!({"Identity": "AdeleV", "Type": "Spaceship"}),
            "BadRequest",
            "Regular, Room, Equipment, Shared",
        ),
        (
            json!({"Identity": "nobody", "Office": "x"}),
            "NotFound",
            "couldn't be found",
        ),
        (
            json!({"Office": "x"}),
            "BadRequest",
            "missing mandatory parameters: Identity",
        ),
    ] {
        assert_err(f.err("Set-Mailbox", params.clone()), code, part);
    }
}

#[test]
fn remove_mailbox() {
    let f = Fixture::new(2);
    let asked = f.ok("Remove-Mailbox", json!({"Identity": "info"}));
    assert!(!asked.changed);
    assert!(
        asked
            .confirmation
            .as_deref()
            .is_some_and(|m| m.contains("Are you sure") && m.contains("\"info\""))
    );
    let what_if = f.ok(
        "Remove-Mailbox",
        json!({"Identity": "info", "Confirm": false, "WhatIf": true}),
    );
    assert!(!what_if.changed && what_if.confirmation.is_none());
    assert!(what_if.warnings[0].starts_with("What if:"));
    f.mailbox("info");
    let removed = f.ok(
        "Remove-Mailbox",
        json!({"Identity": "info", "Confirm": false, "Permanent": true}),
    );
    assert!(removed.changed && removed.confirmation.is_none());
    assert_err(
        f.err("Get-Mailbox", json!({"Identity": "info"})),
        "NotFound",
        "couldn't be found",
    );
    assert_err(
        f.err(
            "Remove-Mailbox",
            json!({"Identity": "info", "Confirm": false}),
        ),
        "NotFound",
        "couldn't be found",
    );
    f.ok(
        "Remove-Mailbox",
        json!({"Identity": "user000001", "Confirm": false}),
    );
    assert_eq!(
        f.store.read(0).removed_generated.len(),
        1,
        "remembered for the overlay"
    );
}

#[test]
fn parameter_binding() {
    let f = Fixture::new(0);
    assert_err(
        f.err("Get-Mailbox", json!({"Colour": "red"})),
        "BadRequest",
        "A parameter cannot be found that matches parameter name 'Colour'",
    );
    // Unique prefixes bind; ambiguous ones list the candidates.
    assert_eq!(f.ok("Get-Mailbox", json!({"Res": 2})).rows.len(), 2);
    assert_eq!(
        f.ok("Get-Mailbox", json!({"recipienttype": "RoomMailbox"}))
            .rows
            .len(),
        4
    );
    assert_err(
        f.err("Get-Mailbox", json!({"R": 1})),
        "BadRequest",
        "parameter name 'R' is ambiguous. Possible matches include: -ResultSize -RecipientTypeDetails",
    );
    assert_err(
        f.err("Set-Mailbox", json!({"Identity": "AdeleV", "D": "x"})),
        "BadRequest",
        "Possible matches include: -DisplayName -DeliverToMailboxAndForward -Debug",
    );
    f.ok(
        "Set-Mailbox",
        json!({"Identity": "AdeleV", "Disp": "Adele"}),
    );
    assert_eq!(f.mailbox("AdeleV")["DisplayName"], "Adele");
    assert_err(
        f.err("Get-Mailbox", json!({"": 1})),
        "BadRequest",
        "A parameter cannot be found",
    );
    // Common parameters are accepted on every cmdlet; ShouldProcess only where it applies.
    f.ok(
        "Get-Mailbox",
        json!({"ErrorAction": "Stop", "WarningAction": "SilentlyContinue", "Verbose": true, "OutVariable": "x"}),
    );
    for should_process in ["Confirm", "WhatIf"] {
        assert_err(
            f.err("Get-Mailbox", json!({should_process: false})),
            "BadRequest",
            "A parameter cannot be found",
        );
    }
    assert_err(
        f.err(
            "Set-Mailbox",
            json!({"Identity": "AdeleV", "WhatIf": "perhaps"}),
        ),
        "BadRequest",
        "System.Boolean",
    );
    assert_err(
        f.err("Get-Mailbox", json!({"Identity": {"a": 1}})),
        "BadRequest",
        "System.String",
    );
    // Numbers and booleans bind to text parameters as PowerShell converts them.
    assert_err(
        f.err("Get-Mailbox", json!({"Identity": 42})),
        "NotFound",
        "'42' couldn't be found",
    );
    // Cmdlet names are case-insensitive; unknown ones don't exist.
    assert_eq!(f.ok("get-MAILBOX", json!({"ResultSize": 1})).rows.len(), 1);
    assert_err(
        f.err("Get-Spaceship", json!({})),
        "Forbidden",
        "'Get-Spaceship' is not recognized",
    );
}
