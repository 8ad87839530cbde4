//! The cmdlets that change the organization: Set-OrganizationConfig (its parameters are the
//! configuration's settable properties, converted to each property's type), New-Mailbox,
//! Set-Mailbox and Remove-Mailbox (ShouldProcess: a confirmation message unless
//! `-Confirm:$false`). All take `-WhatIf` (describe, change nothing). A change is made under the
//! tenant's write lock and handed back as a [`PendingWrite`](crate::exchange::store::PendingWrite)
//! for the caller to persist before answering.

use std::sync::Arc;

use serde_json::Value;

use super::binding::{Arg, Bound, COMMON, Kind, SHOULD_PROCESS, convert, resolve_name};
use super::listing::find_one;
use super::{Call, Done};
use crate::exchange::errors::{self, ExoError};
use crate::exchange::mailbox::{Mailbox, Origin, RECIPIENT_TYPE_DETAILS};
use crate::exchange::paging::{Output, Row};
use crate::exchange::store::{Entry, READ_ONLY_ORG_PROPERTIES, TenantData};

/// Set-OrganizationConfig.
pub(super) fn set_organization_config(call: &Call<'_>) -> Result<Done, ExoError> {
    let mut data = call.store.write(call.caller.tenant);
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
        return Ok(output.into());
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
        return Ok(output.into());
    }
    Ok(Done {
        output,
        write: Some(call.store.changed(call.caller.tenant, &mut data)),
    })
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

/// New-Mailbox.
pub(super) fn new_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    let tenant = call.org;
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
    let mut data = call.store.write(call.caller.tenant);
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
        return Ok(output.into());
    }
    let entry = Entry::new(mailbox, &data.org_domain);
    data.mailboxes.push(Arc::clone(&entry));
    output.rows.push(Row::Mailbox(entry));
    Ok(Done {
        output,
        write: Some(call.store.changed(call.caller.tenant, &mut data)),
    })
}

/// Set-Mailbox.
pub(super) fn set_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    let identity = bound.text("Identity").unwrap_or_default();
    let mut data = call.store.write(call.caller.tenant);
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
        return Ok(output.into());
    }
    if bound.what_if {
        output.warnings.push(format!(
            "What if: Setting mailbox \"{}\" (no changes made: -WhatIf).",
            entry.mailbox.name
        ));
        return Ok(output.into());
    }
    m.when_changed = crate::clock::unix_now();
    if m.origin == Origin::Generated {
        m.origin = Origin::GeneratedChanged;
    }
    let replacement = Entry::new(m, &data.org_domain);
    if let Some(slot) = data.mailboxes.iter_mut().find(|e| Arc::ptr_eq(e, &entry)) {
        *slot = replacement;
    }
    Ok(Done {
        output,
        write: Some(call.store.changed(call.caller.tenant, &mut data)),
    })
}

/// Remove-Mailbox.
pub(super) fn remove_mailbox(call: &Call<'_>, bound: &Bound) -> Result<Done, ExoError> {
    let identity = bound.text("Identity").unwrap_or_default();
    let mut data = call.store.write(call.caller.tenant);
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
        return Ok(output.into());
    }
    data.mailboxes.retain(|e| !Arc::ptr_eq(e, &entry));
    if entry.mailbox.origin != Origin::Stored {
        data.removed_generated.insert(entry.mailbox.guid);
    }
    Ok(Done {
        output,
        write: Some(call.store.changed(call.caller.tenant, &mut data)),
    })
}
