//! The cmdlets, with PowerShell-style parameter binding (`binding`: case-insensitive names,
//! unique prefixes, common parameters, type conversion) over the tenant's data: the read
//! cmdlets (`listing`: Get-Mailbox, Get-Recipient, Get-User with `-Identity`, `-ResultSize`,
//! `-Filter`, `-RecipientTypeDetails`, `-Anr`; Get-AcceptedDomain; Get-OrganizationConfig) and
//! the ones that change it (`mutations`: Set-OrganizationConfig, New-Mailbox, Set-Mailbox,
//! Remove-Mailbox, all with `-WhatIf`).
//!
//! `-ResultSize` defaults to 1000 like the real cmdlets; when more objects exist the last page
//! carries the real warning. Remove-Mailbox without `Confirm: false` answers with
//! `@adminapi.confirmationmessage` and changes nothing, as the service does for ShouldProcess.
//! Cmdlets outside the caller's roles don't exist for the caller (Exchange RBAC), so they fail
//! like unknown ones.

use serde_json::{Map, Value};

use crate::directory::TenantEntry;
use crate::exchange::auth::Caller;
use crate::exchange::errors::{self, ExoError};
use crate::exchange::paging::Output;
use crate::exchange::store::{ExchangeStore, PendingWrite};

mod binding;
mod listing;
mod mutations;

use binding::{Access, Bound, Kind};

/// One cmdlet call.
pub(crate) struct Call<'a> {
    pub store: &'a ExchangeStore,
    /// The organization acted on (`caller.tenant`).
    pub org: &'a TenantEntry,
    pub caller: &'a Caller,
    pub name: &'a str,
    pub parameters: &'a Map<String, Value>,
    /// Rows to skip (the page's position).
    pub skip: usize,
    pub page_size: usize,
}

/// What a cmdlet produced: its output, and its change to persist before answering.
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub output: Output,
    pub write: Option<PendingWrite>,
}

impl From<Output> for Done {
    fn from(output: Output) -> Done {
        Done {
            output,
            write: None,
        }
    }
}

/// How a cmdlet takes its parameters.
enum Handler {
    /// Bound against the spec's parameter list first.
    Bound(fn(&Call<'_>, &Bound) -> Result<Done, ExoError>),
    /// Binds its parameters itself (Set-OrganizationConfig: the configuration's properties).
    Raw(fn(&Call<'_>) -> Result<Done, ExoError>),
}

/// A cmdlet: its parameters, who may run it and what runs.
struct Spec {
    name: &'static str,
    params: &'static [(&'static str, Kind)],
    mandatory: &'static [&'static str],
    access: Access,
    handler: Handler,
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
        handler: Handler::Bound(listing::get_mailbox),
    },
    Spec {
        name: "Get-Recipient",
        params: LIST_PARAMS,
        mandatory: &[],
        access: Access::Read,
        handler: Handler::Bound(listing::get_recipient),
    },
    Spec {
        name: "Get-User",
        params: LIST_PARAMS,
        mandatory: &[],
        access: Access::Read,
        handler: Handler::Bound(listing::get_user),
    },
    Spec {
        name: "Get-AcceptedDomain",
        params: &[("Identity", Kind::Text)],
        mandatory: &[],
        access: Access::Read,
        handler: Handler::Bound(listing::accepted_domains),
    },
    Spec {
        name: "Get-OrganizationConfig",
        params: &[],
        mandatory: &[],
        access: Access::Read,
        handler: Handler::Bound(listing::organization_config),
    },
    Spec {
        name: "Set-OrganizationConfig",
        params: &[],
        mandatory: &[],
        access: Access::Organization,
        handler: Handler::Raw(mutations::set_organization_config),
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
        handler: Handler::Bound(mutations::new_mailbox),
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
        handler: Handler::Bound(mutations::set_mailbox),
    },
    Spec {
        name: "Remove-Mailbox",
        params: &[("Identity", Kind::Text), ("Permanent", Kind::Switch)],
        mandatory: &["Identity"],
        access: Access::Write,
        handler: Handler::Bound(mutations::remove_mailbox),
    },
];

/// Runs a cmdlet.
pub(crate) fn run(call: &Call<'_>) -> Result<Done, ExoError> {
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
    match spec.handler {
        Handler::Bound(handler) => {
            let bound = binding::bind(spec, call.parameters)?;
            handler(call, &bound)
        }
        Handler::Raw(handler) => handler(call),
    }
}

#[cfg(test)]
mod tests;
