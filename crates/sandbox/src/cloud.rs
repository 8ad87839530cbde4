//! The clouds the sandbox answers as, and how a request picks one.
//!
//! | Cloud | Path prefix | Host alias | Exchange resource (token `aud`) | v1 issuer |
//! |---|---|---|---|---|
//! | Global (O365Default) | *(none)* | `localhost`, `127.0.0.1` | `https://outlook.office365.com` | `https://sts.windows.net/{tid}/` |
//! | US Gov GCC High (O365USGovGCCHigh) | `/usgov` | `usgov.localhost` | `https://outlook.office365.us` | `https://login.microsoftonline.us/{tid}/` |
//! | US Gov DoD (O365USGovDoD) | `/dod` | `dod.localhost` | `https://outlook-dod.office365.us` | `https://login.microsoftonline.us/{tid}/` |
//! | China 21Vianet (O365China) | `/china` | `china.localhost` | `https://outlook.office365.cn` | `https://sts.chinacloudapi.cn/{tid}/` |
//! | Germany (O365GermanyCloud) | `/germany` | `germany.localhost` | `https://outlook.office.de` | `https://sts.microsoftonline.de/{tid}/` |
//!
//! A path prefix wins over a host alias. Every endpoint (identity, Exchange, legacy) exists under
//! every prefix, so `https://127.0.0.1:PORT/usgov/organizations/oauth2/v2.0/token` is the GCC High
//! token endpoint and `https://127.0.0.1:PORT/usgov/adminapi/beta/{tenant}/InvokeCommand` its
//! Exchange endpoint. Host aliases are `*.localhost` names (never real Microsoft host names) so
//! the sandbox CA, whose name constraints only allow loopback names, can't impersonate anything.
//!
//! The national-cloud v1 issuers are UNVERIFIED (inferred from the clouds' STS host names); the
//! US Gov clouds share one authority (`login.microsoftonline.us`), so each of `/usgov` and `/dod`
//! issues tokens for both US resources, as the real authority does.

/// One sovereign cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    /// Worldwide (and GCC).
    Global,
    /// US Government GCC High.
    UsGov,
    /// US Government DoD.
    Dod,
    /// China, operated by 21Vianet.
    China,
    /// Microsoft Cloud Deutschland (closed in 2021, still selectable in the module).
    Germany,
}

impl Cloud {
    /// Every cloud, global first.
    pub const ALL: [Cloud; 5] = [
        Cloud::Global,
        Cloud::UsGov,
        Cloud::Dod,
        Cloud::China,
        Cloud::Germany,
    ];

    /// The path prefix (without slashes); empty for the global cloud.
    pub fn prefix(self) -> &'static str {
        match self {
            Cloud::Global => "",
            Cloud::UsGov => "usgov",
            Cloud::Dod => "dod",
            Cloud::China => "china",
            Cloud::Germany => "germany",
        }
    }

    /// The `*.localhost` host alias, if any.
    pub fn host_alias(self) -> Option<&'static str> {
        match self {
            Cloud::Global => None,
            Cloud::UsGov => Some("usgov.localhost"),
            Cloud::Dod => Some("dod.localhost"),
            Cloud::China => Some("china.localhost"),
            Cloud::Germany => Some("germany.localhost"),
        }
    }

    /// The module's `-ExchangeEnvironmentName`.
    pub fn environment_name(self) -> &'static str {
        match self {
            Cloud::Global => "O365Default",
            Cloud::UsGov => "O365USGovGCCHigh",
            Cloud::Dod => "O365USGovDoD",
            Cloud::China => "O365China",
            Cloud::Germany => "O365GermanyCloud",
        }
    }

    /// The Exchange Online resource URI of this cloud: the access token audience.
    pub fn exchange_resource(self) -> &'static str {
        match self {
            Cloud::Global => "https://outlook.office365.com",
            Cloud::UsGov => "https://outlook.office365.us",
            Cloud::Dod => "https://outlook-dod.office365.us",
            Cloud::China => "https://outlook.office365.cn",
            Cloud::Germany => "https://outlook.office.de",
        }
    }

    /// The issuer of v1 access tokens for tenant `tid`.
    pub fn v1_issuer(self, tid: &uuid::Uuid) -> String {
        let host = match self {
            Cloud::Global => "https://sts.windows.net",
            Cloud::UsGov | Cloud::Dod => "https://login.microsoftonline.us",
            Cloud::China => "https://sts.chinacloudapi.cn",
            Cloud::Germany => "https://sts.microsoftonline.de",
        };
        format!("{host}/{tid}/")
    }

    /// The real authority host of this cloud (`docs/identity-platform.md`, "National clouds"). The sandbox never
    /// serves it; it appears where the real service names itself (`error_uri`, the v1
    /// `userinfo_endpoint`).
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Global => "login.microsoftonline.com",
            Cloud::UsGov | Cloud::Dod => "login.microsoftonline.us",
            Cloud::China => "login.partner.microsoftonline.cn",
            Cloud::Germany => "login.microsoftonline.de",
        }
    }

    /// `cloud_instance_name` in discovery documents.
    pub fn instance_name(self) -> &'static str {
        match self {
            Cloud::Global => "microsoftonline.com",
            Cloud::UsGov | Cloud::Dod => "microsoftonline.us",
            Cloud::China => "partner.microsoftonline.cn",
            Cloud::Germany => "microsoftonline.de",
        }
    }

    /// `tenant_region_scope` in the v2 discovery document (UNVERIFIED outside WW).
    pub fn region_scope(self) -> &'static str {
        match self {
            Cloud::Global => "WW",
            Cloud::UsGov | Cloud::Dod => "USGov",
            Cloud::China => "AS",
            Cloud::Germany => "EU",
        }
    }

    /// The clouds whose Exchange resources this cloud's authority issues tokens for.
    pub fn authority_resources(self) -> &'static [Cloud] {
        match self {
            Cloud::UsGov | Cloud::Dod => &[Cloud::UsGov, Cloud::Dod],
            Cloud::Global => &[Cloud::Global],
            Cloud::China => &[Cloud::China],
            Cloud::Germany => &[Cloud::Germany],
        }
    }

    /// The cloud whose path prefix is `segment`.
    pub fn from_prefix(segment: &str) -> Option<Cloud> {
        Cloud::ALL
            .into_iter()
            .find(|c| !c.prefix().is_empty() && c.prefix().eq_ignore_ascii_case(segment))
    }

    /// The cloud a `Host` header (without port) names.
    pub fn from_host(host: &str) -> Cloud {
        Cloud::ALL
            .into_iter()
            .find(|c| c.host_alias().is_some_and(|a| a.eq_ignore_ascii_case(host)))
            .unwrap_or(Cloud::Global)
    }

    /// The cloud whose Exchange resource is `resource` (trailing `/` ignored).
    pub fn from_exchange_resource(resource: &str) -> Option<Cloud> {
        let resource = resource.trim_end_matches('/');
        Cloud::ALL
            .into_iter()
            .find(|c| c.exchange_resource().eq_ignore_ascii_case(resource))
    }
}

/// The Office 365 Exchange Online first-party application id (the resource's `appId`).
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";

/// Splits a request path into its cloud and the path without the prefix.
pub(crate) fn split_path<'a>(path: &'a str, host: Option<&str>) -> (Cloud, &'a str) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let first = rest.split('/').next().unwrap_or_default();
    if let Some(cloud) = Cloud::from_prefix(first) {
        let stripped = &rest[first.len()..];
        return (cloud, if stripped.is_empty() { "/" } else { stripped });
    }
    (host.map_or(Cloud::Global, Cloud::from_host), path)
}
