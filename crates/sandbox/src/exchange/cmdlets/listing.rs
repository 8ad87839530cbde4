//! The read cmdlets: Get-Mailbox, Get-Recipient and Get-User (one listing over the tenant's
//! mailboxes in three views, with `-Identity` — any identity form or a `*` wildcard —,
//! `-Filter`, `-RecipientTypeDetails`, `-Anr`, `-ResultSize` and paging), Get-AcceptedDomain
//! and Get-OrganizationConfig.

use std::sync::Arc;

use serde_json::{Value, json};

use super::binding::{Arg, Bound};
use super::{Call, Done};
use crate::exchange::errors::{self, ExoError};
use crate::exchange::filter::{self, Filter};
use crate::exchange::mailbox::Mailbox;
use crate::exchange::paging::{Output, Row};
use crate::exchange::store::{Entry, TenantData};

/// Which cmdlet's rows a listing produces.
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

/// Get-Mailbox.
pub(super) fn get_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    list(call, bound, View::Mailbox).map(Done::from)
}

/// Get-Recipient.
pub(super) fn get_recipient(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    list(call, bound, View::Recipient).map(Done::from)
}

/// Get-User.
pub(super) fn get_user(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    list(call, bound, View::User).map(Done::from)
}

fn list(call: &Call<'_>, bound: &Bound, view: View) -> Result<Output, ExoError> {
    let data = call.store.read(call.caller.tenant);
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
pub(super) fn find_one(data: &TenantData, identity: &str) -> Result<Arc<Entry>, ExoError> {
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

/// Get-AcceptedDomain.
pub(super) fn accepted_domains(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    let tenant = call.org;
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
    }
    .into())
}

/// Get-OrganizationConfig.
pub(super) fn organization_config(call: &Call<'_>, _bound: &Bound) -> Result<Done, ExoError> {
    let data = call.store.read(call.caller.tenant);
    Ok(Output {
        rows: vec![Row::Json(
            Value::Object(data.organization_config.clone()).to_string(),
        )],
        ..Output::default()
    }
    .into())
}
