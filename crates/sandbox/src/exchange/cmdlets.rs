//! The cmdlets, with PowerShell-style parameter binding (case-insensitive names, unique
//! prefixes, common parameters, type conversion) over the tenant's data.
//!
//! Get-Mailbox, Get-Recipient, Get-User (`-Identity`, `-ResultSize`, `-Filter`,
//! `-RecipientTypeDetails`, `-Anr`), Get-AcceptedDomain, Get-OrganizationConfig,
//! Set-OrganizationConfig, New-Mailbox, Set-Mailbox, Remove-Mailbox.
//!
//! `-ResultSize` defaults to 1000 like the real cmdlets; when more objects exist the last page
//! carries the real warning. Remove-Mailbox without `Confirm: false` answers with
//! `@adminapi.confirmationmessage` and changes nothing, as the service does for ShouldProcess.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::exchange::auth::Caller;
use crate::exchange::errors::{self, ExoError};
use crate::exchange::filter::{self, Filter};
use crate::exchange::mailbox::{Mailbox, RECIPIENT_TYPE_DETAILS};
use crate::exchange::paging::{Output, Row};
use crate::exchange::store::{Entry, READ_ONLY_ORG_PROPERTIES, TenantData};
use crate::state::Core;

/// What a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Switch,
    ResultSize,
    TextList,
}

/// Who may run a cmdlet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Organization,
}

struct Spec {
    name: &'static str,
    params: &'static [(&'static str, Kind)],
    mandatory: &'static [&'static str],
    access: Access,
}

const LIST_PARAMS: &[(&str, Kind)] = &[
    ("Identity", Kind::Text),
    ("ResultSize", Kind::ResultSize),
    ("Filter", Kind::Text),
    ("RecipientTypeDetails", Kind::TextList),
    ("Anr", Kind::Text),
];

const CMDLETS: &[Spec] = &[
    Spec {
        name: "Get-Mailbox",
        params: LIST_PARAMS,
        mandatory: &[],
        access: Access::Read,
    },
    Spec {
        name: "Get-Recipient",
        params: LIST_PARAMS,
        mandatory: &[],
        access: Access::Read,
    },
    Spec {
        name: "Get-User",
        params: LIST_PARAMS,
        mandatory: &[],
        access: Access::Read,
    },
    Spec {
        name: "Get-AcceptedDomain",
        params: &[("Identity", Kind::Text)],
        mandatory: &[],
        access: Access::Read,
    },
    Spec {
        name: "Get-OrganizationConfig",
        params: &[],
        mandatory: &[],
        access: Access::Read,
    },
    // Set-OrganizationConfig binds its parameters against the configuration's properties.
    Spec {
        name: "Set-OrganizationConfig",
        params: &[],
        mandatory: &[],
        access: Access::Organization,
    },
    Spec {
        name: "New-Mailbox",
        params: &[
            ("Name", Kind::Text),
            ("Alias", Kind::Text),
            ("DisplayName", Kind::Text),
            ("PrimarySmtpAddress", Kind::Text),
            ("MicrosoftOnlineServicesID", Kind::Text),
            ("Password", Kind::Text),
            ("FirstName", Kind::Text),
            ("LastName", Kind::Text),
            ("Shared", Kind::Switch),
            ("Room", Kind::Switch),
            ("Equipment", Kind::Switch),
            ("ResetPasswordOnNextLogon", Kind::Switch),
        ],
        mandatory: &["Name"],
        access: Access::Write,
    },
    Spec {
        name: "Set-Mailbox",
        params: &[
            ("Identity", Kind::Text),
            ("DisplayName", Kind::Text),
            ("Alias", Kind::Text),
            ("ForwardingSmtpAddress", Kind::Text),
            ("DeliverToMailboxAndForward", Kind::Switch),
            ("HiddenFromAddressListsEnabled", Kind::Switch),
            ("LitigationHoldEnabled", Kind::Switch),
            ("Office", Kind::Text),
            ("CustomAttribute1", Kind::Text),
            ("EmailAddresses", Kind::TextList),
            ("Type", Kind::Text),
        ],
        mandatory: &["Identity"],
        access: Access::Write,
    },
    Spec {
        name: "Remove-Mailbox",
        params: &[("Identity", Kind::Text), ("Permanent", Kind::Switch)],
        mandatory: &["Identity"],
        access: Access::Write,
    },
];

/// PowerShell's common parameters (accepted, no effect) and the ShouldProcess ones.
const COMMON: &[&str] = &[
    "ErrorAction",
    "WarningAction",
    "InformationAction",
    "Verbose",
    "Debug",
    "ErrorVariable",
    "WarningVariable",
    "InformationVariable",
    "OutVariable",
    "OutBuffer",
    "PipelineVariable",
];
const SHOULD_PROCESS: &[&str] = &["Confirm", "WhatIf"];

/// A bound argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Text(Option<String>),
    Bool(bool),
    Size(Option<usize>),
    List(Vec<String>),
}

/// The bound parameters of one call.
#[derive(Debug, Default)]
struct Bound {
    args: Vec<(&'static str, Arg)>,
    confirm: Option<bool>,
    what_if: bool,
}

impl Bound {
    fn get(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
    }

    fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Arg::Text(Some(t))) => Some(t),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Arg::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn convert(parameter: &str, kind: Kind, value: &Value) -> Result<Arg, ExoError> {
    let cannot = |target: &str, extra: &str| {
        errors::bad_argument(
            parameter,
            format!(
                "Cannot process argument transformation on parameter '{parameter}'. Cannot convert value \"{}\" to type \"{target}\".{extra}",
                describe(value)
            ),
        )
    };
    match kind {
        Kind::Text => match value {
            Value::Null => Ok(Arg::Text(None)),
            Value::String(s) => Ok(Arg::Text(Some(s.clone()))),
            Value::Number(n) => Ok(Arg::Text(Some(n.to_string()))),
            Value::Bool(b) => Ok(Arg::Text(Some(
                if *b { "True" } else { "False" }.to_owned(),
            ))),
            _ => Err(cannot("System.String", "")),
        },
        Kind::Switch => match value {
            Value::Bool(b) => Ok(Arg::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Arg::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Arg::Bool(false)),
            _ => Err(cannot(
                "System.Boolean",
                " Error: \"String was not recognized as a valid Boolean.\"",
            )),
        },
        Kind::ResultSize => {
            let target = "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]";
            match value {
                Value::String(s) if s.eq_ignore_ascii_case("unlimited") => Ok(Arg::Size(None)),
                Value::String(s) => s.trim().parse::<u32>().map(|n| Arg::Size(Some(n as usize))).map_err(|_| {
                    cannot(target, " Error: \"Unlimited only accepts 'Unlimited' as a string value.\"")
                }),
                Value::Number(n) => n.as_u64().filter(|n| *n <= u64::from(u32::MAX)).map(|n| Arg::Size(Some(n as usize))).ok_or_else(|| cannot(target, "")),
                _ => Err(cannot(target, "")),
            }
            .and_then(|arg| {
                if arg == Arg::Size(Some(0)) {
                    Err(errors::bad_argument(parameter, "Cannot validate argument on parameter 'ResultSize'. The argument 0 is less than the minimum allowed range of 1.".into()))
                } else {
                    Ok(arg)
                }
            })
        }
        Kind::TextList => match value {
            Value::String(s) => Ok(Arg::List(
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect(),
            )),
            Value::Array(list) => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| cannot("System.String[]", ""))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Arg::List),
            _ => Err(cannot("System.String[]", "")),
        },
    }
}

/// Resolves a parameter name: exact (case-insensitive) first, then a unique prefix.
fn resolve_name<'n>(given: &str, names: &[&'n str]) -> Result<&'n str, ExoError> {
    if let Some(exact) = names.iter().find(|n| n.eq_ignore_ascii_case(given)) {
        return Ok(exact);
    }
    let lower = given.to_ascii_lowercase();
    let matches: Vec<&&str> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] if !given.is_empty() => Ok(one),
        [] | [_] => Err(errors::no_such_parameter(given)),
        many => Err(errors::bad_argument(
            given,
            format!(
                "Parameter cannot be processed because the parameter name '{given}' is ambiguous. Possible matches include: {}.",
                many.iter()
                    .map(|m| format!("-{m}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )),
    }
}

fn bind(spec: &Spec, parameters: &Map<String, Value>) -> Result<Bound, ExoError> {
    let mut names: Vec<&'static str> = spec.params.iter().map(|(n, _)| *n).collect();
    names.extend_from_slice(COMMON);
    if spec.access != Access::Read {
        names.extend_from_slice(SHOULD_PROCESS);
    }
    let mut bound = Bound::default();
    for (given, value) in parameters {
        let name = resolve_name(given, &names)?;
        match name {
            "Confirm" => {
                bound.confirm = Some(matches!(
                    convert(name, Kind::Switch, value)?,
                    Arg::Bool(true)
                ))
            }
            "WhatIf" => {
                bound.what_if = matches!(convert(name, Kind::Switch, value)?, Arg::Bool(true))
            }
            _ => {
                if let Some((_, kind)) = spec.params.iter().find(|(n, _)| *n == name) {
                    bound.args.push((name, convert(name, *kind, value)?));
                }
            }
        }
    }
    let missing: Vec<&str> = spec
        .mandatory
        .iter()
        .copied()
        .filter(|m| bound.text(m).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(errors::missing_mandatory(&missing.join(", ")));
    }
    Ok(bound)
}

/// One cmdlet call.
pub(crate) struct Call<'a> {
    pub core: &'a Core,
    pub caller: &'a Caller,
    pub name: &'a str,
    pub parameters: &'a Map<String, Value>,
    pub skip: usize,
    pub page_size: usize,
}

/// Runs a cmdlet.
pub(crate) fn run(call: &Call<'_>) -> Result<Output, ExoError> {
    let Some(spec) = CMDLETS
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(call.name))
    else {
        return Err(errors::unknown_cmdlet(call.name));
    };
    let allowed = match spec.access {
        Access::Read => true,
        Access::Write => call.caller.can_write(),
        Access::Organization => call.caller.can_configure_organization(),
    };
    if !allowed {
        // Exchange RBAC hides cmdlets outside the caller's roles.
        return Err(errors::unknown_cmdlet(spec.name));
    }
    if spec.name == "Set-OrganizationConfig" {
        return set_organization_config(call);
    }
    let bound = bind(spec, call.parameters)?;
    match spec.name {
        "Get-Mailbox" => list(call, &bound, View::Mailbox),
        "Get-Recipient" => list(call, &bound, View::Recipient),
        "Get-User" => list(call, &bound, View::User),
        "Get-AcceptedDomain" => accepted_domains(call, &bound),
        "Get-OrganizationConfig" => {
            let data = call.core.exchange.read(call.caller.tenant);
            Ok(Output {
                rows: vec![Row::Json(
                    Value::Object(data.organization_config.clone()).to_string(),
                )],
                ..Output::default()
            })
        }
        "New-Mailbox" => new_mailbox(call, &bound),
        "Set-Mailbox" => set_mailbox(call, &bound),
        _ => remove_mailbox(call, &bound),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Mailbox,
    Recipient,
    User,
}

impl View {
    fn filterable(self) -> &'static [&'static str] {
        match self {
            View::Mailbox => &[
                "Name",
                "Alias",
                "DisplayName",
                "PrimarySmtpAddress",
                "UserPrincipalName",
                "RecipientTypeDetails",
                "EmailAddresses",
                "HiddenFromAddressListsEnabled",
                "ForwardingSmtpAddress",
                "CustomAttribute1",
                "Office",
                "ExternalDirectoryObjectId",
                "LitigationHoldEnabled",
            ],
            View::Recipient => &[
                "Name",
                "Alias",
                "DisplayName",
                "PrimarySmtpAddress",
                "RecipientType",
                "RecipientTypeDetails",
                "EmailAddresses",
                "Department",
                "City",
                "Title",
                "Office",
                "FirstName",
                "LastName",
                "HiddenFromAddressListsEnabled",
                "CountryOrRegion",
            ],
            View::User => &[
                "Name",
                "DisplayName",
                "FirstName",
                "LastName",
                "UserPrincipalName",
                "RecipientTypeDetails",
                "Department",
                "Title",
                "Office",
                "City",
                "CountryOrRegion",
                "WindowsEmailAddress",
            ],
        }
    }

    fn row(self, entry: &Arc<Entry>) -> Row {
        match self {
            View::Mailbox => Row::Mailbox(Arc::clone(entry)),
            View::Recipient => Row::Json(entry.mailbox.recipient_view().to_string()),
            View::User => Row::Json(entry.mailbox.user_view().to_string()),
        }
    }
}

/// A mailbox property for filters, by canonical name.
fn property<'a>(m: &'a Mailbox, name: &str) -> filter::Value<'a> {
    use filter::Value::{Bool, Many, Null, Text};
    match name {
        "Name" => Text(&m.name),
        "Alias" => Text(&m.alias),
        "DisplayName" => Text(&m.display_name),
        "PrimarySmtpAddress" | "WindowsEmailAddress" => Text(&m.primary_smtp_address),
        "UserPrincipalName" => Text(&m.user_principal_name),
        "RecipientTypeDetails" => Text(&m.recipient_type_details),
        "RecipientType" => Text("UserMailbox"),
        "EmailAddresses" => Many(m.email_addresses.iter().map(String::as_str).collect()),
        "HiddenFromAddressListsEnabled" => Bool(m.hidden_from_address_lists_enabled),
        "LitigationHoldEnabled" => Bool(m.litigation_hold_enabled),
        "ForwardingSmtpAddress" => m.forwarding_smtp_address.as_deref().map_or(Null, Text),
        "CustomAttribute1" => Text(&m.custom_attribute1),
        "Office" => Text(&m.office),
        "Department" => Text(&m.department),
        "City" => Text(&m.city),
        "Title" => Text(&m.title),
        "FirstName" => Text(&m.first_name),
        "LastName" => Text(&m.last_name),
        "CountryOrRegion" => Text(&m.country_or_region),
        _ => Null,
    }
}

/// Recipient types accepted by `-RecipientTypeDetails` (the sandbox only has mailboxes).
const KNOWN_RECIPIENT_TYPES: [&str; 10] = [
    "UserMailbox",
    "SharedMailbox",
    "RoomMailbox",
    "EquipmentMailbox",
    "LinkedMailbox",
    "SchedulingMailbox",
    "MailUser",
    "MailContact",
    "GroupMailbox",
    "MailUniversalDistributionGroup",
];

const DEFAULT_RESULT_SIZE: usize = 1000;

fn list(call: &Call<'_>, bound: &Bound, view: View) -> Result<Output, ExoError> {
    let data = call.core.exchange.read(call.caller.tenant);
    if let Some(identity) = bound.text("Identity").filter(|i| !i.contains('*')) {
        let found = find_one(&data, identity)?;
        return Ok(Output {
            rows: vec![view.row(&found)],
            ..Output::default()
        });
    }
    let wildcard = bound.text("Identity").map(str::to_owned);
    let filter: Option<Filter> = bound
        .text("Filter")
        .map(|f| filter::parse(f, view.filterable()))
        .transpose()
        .map_err(|e| errors::bad_argument("Filter", e.message()))?;
    let types: Option<Vec<String>> = match bound.get("RecipientTypeDetails") {
        Some(Arg::List(list)) => {
            for t in list {
                if !KNOWN_RECIPIENT_TYPES
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(t))
                {
                    return Err(errors::bad_argument(
                        "RecipientTypeDetails",
                        format!(
                            "Cannot bind parameter 'RecipientTypeDetails'. Cannot convert value \"{t}\" to type \"Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails\". Error: \"Unable to match the identifier name {t} to a valid enumerator name. Specify one of the following enumerator names and try again: {}\"",
                            KNOWN_RECIPIENT_TYPES.join(", ")
                        ),
                    ));
                }
            }
            Some(list.clone())
        }
        _ => None,
    };
    let anr = bound.text("Anr").map(str::to_lowercase);
    let (cap, explicit_size) = match bound.get("ResultSize") {
        Some(Arg::Size(size)) => (size.unwrap_or(usize::MAX), true),
        _ => (DEFAULT_RESULT_SIZE, false),
    };
    let unfiltered = filter.is_none() && types.is_none() && anr.is_none() && wildcard.is_none();
    let matches = |m: &Mailbox| -> bool {
        types.as_ref().is_none_or(|ts| {
            ts.iter()
                .any(|t| t.eq_ignore_ascii_case(&m.recipient_type_details))
        }) && filter.as_ref().is_none_or(|f| f.eval(&|p| property(m, p)))
            && anr.as_ref().is_none_or(|a| {
                [
                    &m.name,
                    &m.alias,
                    &m.display_name,
                    &m.first_name,
                    &m.last_name,
                    &m.primary_smtp_address,
                ]
                .iter()
                .any(|v| v.to_lowercase().starts_with(a.as_str()))
            })
            && wildcard.as_ref().is_none_or(|w| {
                [&m.name, &m.alias, &m.display_name, &m.primary_smtp_address]
                    .iter()
                    .any(|v| filter::like(v, w))
            })
    };
    let start = call.skip;
    let end = start.saturating_add(call.page_size).min(cap);
    let mut output = Output::default();
    // Index of the first match past this page, if one exists (tells "more" and "capped").
    let more = if unfiltered {
        let total = data.mailboxes.len();
        output.rows = data
            .mailboxes
            .get(start.min(total)..end.min(total))
            .unwrap_or_default()
            .iter()
            .map(|e| view.row(e))
            .collect();
        total > end
    } else {
        let mut found = 0usize;
        let mut more = false;
        for entry in &data.mailboxes {
            if !matches(&entry.mailbox) {
                continue;
            }
            if found >= end {
                more = true;
                break;
            }
            if found >= start {
                output.rows.push(view.row(entry));
            }
            found += 1;
        }
        more
    };
    if more && end < cap {
        output.next = Some(end);
    } else if more {
        output.warnings.push(if explicit_size {
            "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.".to_owned()
        } else {
            "By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the number of items returned. To return all items, specify \"-ResultSize Unlimited\". Be aware that, depending on the actual number of items, returning all items can take a long time and consume a large amount of memory. Also, we don't recommend storing the results in a variable. Instead, pipe the results to another task or script to perform batch changes.".to_owned()
        });
    }
    Ok(output)
}

/// The one mailbox `identity` names (404 / ambiguous otherwise).
fn find_one(data: &TenantData, identity: &str) -> Result<Arc<Entry>, ExoError> {
    let mut found = data
        .mailboxes
        .iter()
        .filter(|e| e.mailbox.matches_identity(identity, &data.org_domain));
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(Arc::clone(one)),
        (Some(_), Some(_)) => Err(errors::ambiguous(identity)),
        (None, _) => Err(errors::not_found(identity)),
    }
}

fn accepted_domains(call: &Call<'_>, bound: &Bound) -> Result<Output, ExoError> {
    let tenant = &call.core.directory.tenants[call.caller.tenant];
    let default = tenant
        .seed
        .accepted_domains
        .first()
        .cloned()
        .unwrap_or_else(|| tenant.initial_domain().to_owned());
    let rows: Vec<Row> = tenant
        .domains
        .iter()
        .filter(|d| bound.text("Identity").is_none_or(|i| i.eq_ignore_ascii_case(d)))
        .map(|d| {
            Row::Json(
                json!({
                    "Name": d, "Identity": d, "DomainName": d, "DomainType": "Authoritative",
                    "Default": d.eq_ignore_ascii_case(&default), "InitialDomain": d == tenant.initial_domain(),
                    "MatchSubDomains": false, "AddressBookEnabled": true, "IsValid": true,
                    "Guid": crate::exchange::mailbox::derived_guid(&tenant.seed.id, "domain", d),
                    "WhenCreated": crate::clock::iso(1_705_307_400),
                })
                .to_string(),
            )
        })
        .collect();
    if rows.is_empty()
        && let Some(identity) = bound.text("Identity")
    {
        return Err(errors::not_found(identity));
    }
    Ok(Output {
        rows,
        ..Output::default()
    })
}

fn set_organization_config(call: &Call<'_>) -> Result<Output, ExoError> {
    let mut data = call.core.exchange.write(call.caller.tenant);
    let settable: Vec<String> = data
        .organization_config
        .keys()
        .filter(|k| !READ_ONLY_ORG_PROPERTIES.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut names: Vec<&str> = settable.iter().map(String::as_str).collect();
    names.extend_from_slice(COMMON);
    names.extend_from_slice(SHOULD_PROCESS);
    let mut changes = Vec::new();
    let mut what_if = false;
    for (given, value) in call.parameters {
        let name = resolve_name(given, &names)?.to_owned();
        if COMMON.contains(&name.as_str()) || name == "Confirm" {
            continue;
        }
        if name == "WhatIf" {
            what_if = matches!(convert("WhatIf", Kind::Switch, value)?, Arg::Bool(true));
            continue;
        }
        let current = data
            .organization_config
            .get(&name)
            .cloned()
            .unwrap_or(Value::Null);
        let converted = match (&current, value) {
            (Value::Bool(_), v) => match convert(&name, Kind::Switch, v)? {
                Arg::Bool(b) => Value::Bool(b),
                _ => Value::Null,
            },
            (Value::Number(_), Value::Number(n)) => Value::Number(n.clone()),
            (Value::Number(_), Value::String(s)) => s.trim().parse::<i64>().map(Value::from).map_err(|_| {
                errors::bad_argument(&name, format!("Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{s}\" to type \"System.Int32\"."))
            })?,
            (_, Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_)) => value.clone(),
            (_, other) => {
                return Err(errors::bad_argument(&name, format!("Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.String\".")));
            }
        };
        changes.push((name, converted));
    }
    let mut output = Output::default();
    if what_if {
        output
            .warnings
            .push("What if: Setting organization configuration (no changes made: -WhatIf).".into());
        return Ok(output);
    }
    let before = data.organization_config.clone();
    for (name, value) in changes {
        data.organization_config.insert(name, value);
    }
    if data.organization_config == before {
        output.warnings.push(format!(
            "The command completed successfully but no settings of '{}' have been modified.",
            data.org_domain
        ));
        return Ok(output);
    }
    call.core
        .exchange
        .persist(call.caller.tenant, &data)
        .map_err(|e| errors::task_error(e.to_string()))?;
    Ok(output)
}

fn address_in_use(data: &TenantData, address: &str) -> Option<String> {
    data.mailboxes
        .iter()
        .find(|e| {
            e.mailbox.email_addresses.iter().any(|a| {
                a.split_once(':')
                    .is_some_and(|(_, x)| x.eq_ignore_ascii_case(address))
            })
        })
        .map(|e| e.mailbox.name.clone())
}

fn proxy_in_use(address: &str, owner: &str) -> ExoError {
    errors::already_exists(format!(
        "The proxy address \"SMTP:{address}\" is already being used by the proxy addresses or LegacyExchangeDN of \"{owner}\". Please choose another proxy address."
    ))
}

fn valid_smtp(address: &str) -> bool {
    let mut parts = address.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !address.contains(' '))
}

fn new_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Output, ExoError> {
    let tenant = &call.core.directory.tenants[call.caller.tenant];
    let name = bound.text("Name").unwrap_or_default().trim().to_owned();
    let kinds: Vec<&str> = [
        ("Shared", "SharedMailbox"),
        ("Room", "RoomMailbox"),
        ("Equipment", "EquipmentMailbox"),
    ]
    .iter()
    .filter(|(p, _)| bound.flag(p) == Some(true))
    .map(|(_, k)| *k)
    .collect();
    let kind = match kinds.as_slice() {
        [] => "UserMailbox",
        [one] => one,
        _ => {
            return Err(errors::bad_argument(
                "Shared",
                "Parameter set cannot be resolved using the specified named parameters.".into(),
            ));
        }
    };
    if kind == "UserMailbox" {
        let missing: Vec<&str> = ["MicrosoftOnlineServicesID", "Password"]
            .into_iter()
            .filter(|p| bound.text(p).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(errors::missing_mandatory(&missing.join(", ")));
        }
    }
    let alias = bound.text("Alias").map_or_else(
        || {
            name.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
                .collect()
        },
        str::to_owned,
    );
    if alias.is_empty() {
        return Err(errors::bad_argument(
            "Alias",
            format!("The alias for '{name}' can't be empty."),
        ));
    }
    let default_domain = tenant
        .seed
        .accepted_domains
        .first()
        .cloned()
        .unwrap_or_else(|| tenant.initial_domain().to_owned());
    let smtp = bound
        .text("PrimarySmtpAddress")
        .or_else(|| bound.text("MicrosoftOnlineServicesID"))
        .map_or_else(|| format!("{alias}@{default_domain}"), str::to_owned);
    if !valid_smtp(&smtp) {
        return Err(errors::bad_argument(
            "PrimarySmtpAddress",
            format!(
                "Cannot process argument transformation on parameter 'PrimarySmtpAddress'. Cannot convert value \"{smtp}\" to type \"Microsoft.Exchange.Data.SmtpAddress\". Error: \"The email address \"{smtp}\" isn't correct. Please use this format: user name, the @ sign, followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com.\""
            ),
        ));
    }
    let domain = smtp.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if !tenant
        .domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Err(errors::task_error(format!(
            "The domain '{domain}' isn't an accepted domain for your organization."
        )));
    }
    let mut data = call.core.exchange.write(call.caller.tenant);
    if data
        .mailboxes
        .iter()
        .any(|e| e.mailbox.name.eq_ignore_ascii_case(&name))
    {
        return Err(errors::already_exists(format!(
            "The name \"{name}\" is already being used. Please try another name."
        )));
    }
    for address in [smtp.clone(), format!("{alias}@{}", tenant.initial_domain())] {
        if let Some(owner) = address_in_use(&data, &address) {
            return Err(proxy_in_use(&address, &owner));
        }
    }
    let display = bound.text("DisplayName").unwrap_or(&name).to_owned();
    let mut mailbox = Mailbox::created(
        &tenant.seed,
        &name,
        &alias,
        &display,
        smtp,
        kind,
        crate::clock::unix_now(),
    );
    mailbox.first_name = bound.text("FirstName").unwrap_or_default().to_owned();
    mailbox.last_name = bound.text("LastName").unwrap_or_default().to_owned();
    let mut output = Output::default();
    if bound.what_if {
        output.warnings.push(format!(
            "What if: Creating mailbox \"{name}\" (no changes made: -WhatIf)."
        ));
        return Ok(output);
    }
    let entry = Entry::new(mailbox, &data.org_domain);
    data.mailboxes.push(Arc::clone(&entry));
    call.core
        .exchange
        .persist(call.caller.tenant, &data)
        .map_err(|e| errors::task_error(e.to_string()))?;
    output.rows.push(Row::Mailbox(entry));
    Ok(output)
}

fn set_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Output, ExoError> {
    let identity = bound.text("Identity").unwrap_or_default();
    let mut data = call.core.exchange.write(call.caller.tenant);
    let entry = find_one(&data, identity)?;
    let mut m = entry.mailbox.clone();
    for (name, arg) in &bound.args {
        match (*name, arg) {
            ("DisplayName", Arg::Text(Some(v))) if !v.trim().is_empty() => {
                m.display_name = v.clone()
            }
            ("DisplayName", _) => {
                return Err(errors::bad_argument(
                    "DisplayName",
                    "The DisplayName can't be empty.".into(),
                ));
            }
            ("Alias", Arg::Text(Some(v))) => {
                let taken = data
                    .mailboxes
                    .iter()
                    .any(|e| !Arc::ptr_eq(e, &entry) && e.mailbox.alias.eq_ignore_ascii_case(v));
                if taken {
                    return Err(errors::already_exists(format!(
                        "The alias \"{v}\" is already being used. Please try another alias."
                    )));
                }
                m.alias = v.clone();
            }
            ("ForwardingSmtpAddress", Arg::Text(v)) => {
                let v = v
                    .as_deref()
                    .map(|s| {
                        s.strip_prefix("smtp:")
                            .or_else(|| s.strip_prefix("SMTP:"))
                            .unwrap_or(s)
                    })
                    .filter(|s| !s.is_empty());
                if let Some(address) = v
                    && !valid_smtp(address)
                {
                    return Err(errors::bad_argument(
                        "ForwardingSmtpAddress",
                        format!(
                            "Cannot process argument transformation on parameter 'ForwardingSmtpAddress'. Cannot convert value \"{address}\" to type \"Microsoft.Exchange.Data.ProxyAddress\"."
                        ),
                    ));
                }
                m.forwarding_smtp_address = v.map(str::to_owned);
            }
            ("DeliverToMailboxAndForward", Arg::Bool(b)) => m.deliver_to_mailbox_and_forward = *b,
            ("HiddenFromAddressListsEnabled", Arg::Bool(b)) => {
                m.hidden_from_address_lists_enabled = *b
            }
            ("LitigationHoldEnabled", Arg::Bool(b)) => m.litigation_hold_enabled = *b,
            ("Office", Arg::Text(v)) => m.office = v.clone().unwrap_or_default(),
            ("CustomAttribute1", Arg::Text(v)) => {
                m.custom_attribute1 = v.clone().unwrap_or_default()
            }
            ("EmailAddresses", Arg::List(list)) => {
                let primaries: Vec<&String> =
                    list.iter().filter(|a| a.starts_with("SMTP:")).collect();
                if primaries.len() > 1 {
                    return Err(errors::task_error(
                        "The e-mail address list contains more than one primary SMTP address."
                            .into(),
                    ));
                }
                for address in list {
                    let bare = address.split_once(':').map_or(address.as_str(), |(_, x)| x);
                    if let Some(owner) = address_in_use(&data, bare).filter(|o| *o != m.name) {
                        return Err(proxy_in_use(bare, &owner));
                    }
                }
                let mut addresses: Vec<String> = list
                    .iter()
                    .map(|a| {
                        if a.contains(':') {
                            a.clone()
                        } else {
                            format!("smtp:{a}")
                        }
                    })
                    .collect();
                match primaries.first() {
                    Some(p) => m.primary_smtp_address = p.trim_start_matches("SMTP:").to_owned(),
                    None => addresses.insert(0, format!("SMTP:{}", m.primary_smtp_address)),
                }
                m.email_addresses = addresses;
            }
            ("Type", Arg::Text(Some(t))) => {
                m.recipient_type_details = match t.to_ascii_lowercase().as_str() {
                    "regular" => "UserMailbox",
                    "shared" => "SharedMailbox",
                    "room" => "RoomMailbox",
                    "equipment" => "EquipmentMailbox",
                    _ => return Err(errors::bad_argument("Type", format!("Cannot bind parameter 'Type'. Cannot convert value \"{t}\" to type \"Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType\". Error: \"Unable to match the identifier name {t} to a valid enumerator name. Specify one of the following enumerator names and try again: Regular, Room, Equipment, Shared\""))),
                }
                .to_owned();
                debug_assert!(RECIPIENT_TYPE_DETAILS.contains(&m.recipient_type_details.as_str()));
            }
            _ => {}
        }
    }
    let mut output = Output::default();
    let unchanged = serde_json::to_value(&m).ok() == serde_json::to_value(&entry.mailbox).ok();
    if unchanged {
        output.warnings.push(format!(
            "The command completed successfully but no settings of '{}' have been modified.",
            entry.mailbox.name
        ));
        return Ok(output);
    }
    if bound.what_if {
        output.warnings.push(format!(
            "What if: Setting mailbox \"{}\" (no changes made: -WhatIf).",
            entry.mailbox.name
        ));
        return Ok(output);
    }
    m.when_changed = crate::clock::unix_now();
    let replacement = Entry::new(m, &data.org_domain);
    if let Some(slot) = data.mailboxes.iter_mut().find(|e| Arc::ptr_eq(e, &entry)) {
        *slot = replacement;
    }
    call.core
        .exchange
        .persist(call.caller.tenant, &data)
        .map_err(|e| errors::task_error(e.to_string()))?;
    Ok(output)
}

fn remove_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Output, ExoError> {
    let identity = bound.text("Identity").unwrap_or_default();
    let mut data = call.core.exchange.write(call.caller.tenant);
    let entry = find_one(&data, identity)?;
    let mut output = Output::default();
    if bound.confirm != Some(false) || bound.what_if {
        let message = format!(
            "Are you sure you want to perform this action?\r\nRemoving mailbox Identity:\"{}\" will remove the Active Directory user object and mark the mailbox and the archive (if present) for removal.",
            entry.mailbox.name
        );
        if bound.what_if {
            output.warnings.push(format!("What if: {message}"));
        } else {
            output.confirmation = Some(message);
        }
        return Ok(output);
    }
    data.mailboxes.retain(|e| !Arc::ptr_eq(e, &entry));
    call.core
        .exchange
        .persist(call.caller.tenant, &data)
        .map_err(|e| errors::task_error(e.to_string()))?;
    Ok(output)
}
