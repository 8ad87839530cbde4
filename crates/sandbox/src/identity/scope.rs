//! `scope` (v2) and `resource` (v1) parsing: which Exchange resource, which permissions, which
//! OpenID Connect scopes.
//!
//! The only resource the sandbox knows is Office 365 Exchange Online, whose URI differs per
//! cloud (`cloud.rs`); it may also be named by its app id
//! (`00000002-0000-0ff1-ce00-000000000000/.default`). Anything else is AADSTS500011.

use crate::cloud::{Cloud, EXCHANGE_APP_ID};

/// The delegated permissions of Exchange Online that the module's client is consented for.
/// `.default` grants all of them. UNVERIFIED: the exact `scp` of module tokens is only known from
/// third-party captures (`AdminApi.AccessAsUser.All` among them).
pub(crate) const EXCHANGE_DELEGATED_SCOPES: [&str; 4] = [
    "AdminApi.AccessAsUser.All",
    "FfoPowerShell.AccessAsUser.All",
    "RemotePowerShell.AccessAsUser.All",
    "VivaFeatureAccessPolicy.Manage.All",
];

/// The permission InvokeCommand requires in delegated tokens.
pub(crate) const ADMIN_API_SCOPE: &str = "AdminApi.AccessAsUser.All";

/// What a request asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Requested {
    /// The Exchange cloud whose resource was named, with the permission names (`.default`
    /// kept as such).
    pub resource: Option<(Cloud, Vec<String>)>,
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub offline_access: bool,
}

/// Why a scope string was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ScopeError {
    /// A resource the sandbox doesn't have.
    UnknownResource(String),
    /// More than one resource.
    MultipleResources,
    /// A permission the resource doesn't define.
    UnknownPermission(String),
}

/// Splits `https://host/perm` or `{appid}/perm` into (resource, permission).
fn split_resource(scope: &str) -> Option<(&str, &str)> {
    if let Some(after) = scope.find("://").map(|i| i + 3) {
        let slash = scope[after..].find('/')? + after;
        // `https://outlook.office365.com//.default` names the resource with a trailing slash.
        let resource = &scope[..slash];
        let perm = scope[slash..].trim_start_matches('/');
        return Some((resource, perm));
    }
    scope.split_once('/')
}

/// Resolves a resource URI or app id within the authority of `cloud`.
fn resolve_resource(cloud: Cloud, resource: &str) -> Result<Cloud, ScopeError> {
    if resource.eq_ignore_ascii_case(EXCHANGE_APP_ID) {
        return Ok(cloud);
    }
    Cloud::from_exchange_resource(resource)
        .filter(|c| cloud.authority_resources().contains(c))
        .ok_or_else(|| ScopeError::UnknownResource(resource.to_owned()))
}

/// Parses a v2 `scope` parameter.
pub(crate) fn parse_scope(cloud: Cloud, scope: &str) -> Result<Requested, ScopeError> {
    let mut out = Requested::default();
    for item in scope.split_whitespace() {
        match item.to_ascii_lowercase().as_str() {
            "openid" => out.openid = true,
            "profile" => out.profile = true,
            "email" => out.email = true,
            "offline_access" => out.offline_access = true,
            _ => {
                // A bare permission names Microsoft Graph, which the sandbox doesn't emulate.
                let (resource, perm) =
                    split_resource(item).unwrap_or(("https://graph.microsoft.com", item));
                let resource_cloud = resolve_resource(cloud, resource)?;
                if perm != ".default"
                    && !EXCHANGE_DELEGATED_SCOPES
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(perm))
                {
                    return Err(ScopeError::UnknownPermission(item.to_owned()));
                }
                match &mut out.resource {
                    Some((c, perms)) if *c == resource_cloud => perms.push(perm.to_owned()),
                    Some(_) => return Err(ScopeError::MultipleResources),
                    None => out.resource = Some((resource_cloud, vec![perm.to_owned()])),
                }
            }
        }
    }
    Ok(out)
}

/// Parses a v1 `resource` parameter (no permissions: everything consented).
pub(crate) fn parse_resource(cloud: Cloud, resource: &str) -> Result<Requested, ScopeError> {
    let resource_cloud = resolve_resource(cloud, resource.trim())?;
    Ok(Requested {
        resource: Some((resource_cloud, vec![".default".to_owned()])),
        openid: true,
        ..Requested::default()
    })
}

impl Requested {
    /// The delegated permissions granted for this request (`scp`), canonical case.
    pub fn delegated_permissions(&self) -> Vec<&'static str> {
        let Some((_, perms)) = &self.resource else {
            return vec![];
        };
        if perms.iter().any(|p| p == ".default") {
            return EXCHANGE_DELEGATED_SCOPES.to_vec();
        }
        EXCHANGE_DELEGATED_SCOPES
            .iter()
            .copied()
            .filter(|s| perms.iter().any(|p| p.eq_ignore_ascii_case(s)))
            .collect()
    }

    /// The `scope` of a v1 token response: the granted permissions' bare names
    /// (`AdminApi.AccessAsUser.All …`), as the resource-based endpoint reports them.
    pub fn v1_scope(&self) -> String {
        self.delegated_permissions().join(" ")
    }

    /// The `scope` value of a v2 token response: the granted resource permissions, then the
    /// OpenID Connect scopes that were asked for.
    pub fn response_scope(&self) -> String {
        let mut out: Vec<String> = match &self.resource {
            Some((cloud, _)) => self
                .delegated_permissions()
                .iter()
                .map(|p| format!("{}/{p}", cloud.exchange_resource()))
                .collect(),
            None => vec![],
        };
        for (on, name) in [
            (self.openid, "openid"),
            (self.profile, "profile"),
            (self.email, "email"),
            (self.offline_access, "offline_access"),
        ] {
            if on {
                out.push(name.to_owned());
            }
        }
        out.join(" ")
    }
}

#[cfg(test)]
mod tests;
