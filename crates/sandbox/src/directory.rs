//! The directory: the seed resolved into indexed tenants, users, apps, managed identities and
//! partner relationships. Immutable while the sandbox runs.
//!
//! Tenants are named in URLs the way the real services accept them: a tenant id (GUID) or one
//! of the tenant's verified domains ([`Directory::tenant`]). The seed's short tenant `name`
//! is not a tenant identifier to the outside world (`/contoso/...` is AADSTS900023, as for
//! real); it is only looked up for the sandbox's own configuration (fault rules, delegations,
//! managed identities: [`Directory::tenant_by_any_key`]).

use std::collections::HashMap;

use uuid::Uuid;

use crate::keys::AppCertificate;
use crate::seed::{
    App, EXO_MODULE_CLIENT_ID, EXO_MODULE_REDIRECT_URIS, FederatedCredential, ManagedIdentity,
    Role, Seed, Tenant, User,
};

/// The well-known consumer (Microsoft account) tenant id.
pub(crate) const CONSUMERS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// A client application as the identity platform sees it in one tenant.
#[derive(Debug)]
pub(crate) struct Client {
    pub client_id: Uuid,
    pub object_id: Uuid,
    pub display_name: String,
    /// Public client (no credentials; may use loopback redirects, ROPC, device code).
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub secrets: Vec<String>,
    pub certificate: Option<AppCertificate>,
    pub app_roles: Vec<String>,
    pub roles: Vec<Role>,
    pub federated: Vec<FederatedCredential>,
}

impl Client {
    fn module_public_client(tenant: &Tenant) -> Client {
        Client {
            // A constant GUID literal.
            client_id: EXO_MODULE_CLIENT_ID
                .parse()
                .expect("the module client id is a valid GUID"),
            // Stable per tenant so tokens look the same across restarts.
            object_id: Uuid::from_u128(
                tenant.id.as_u128() ^ 0x00fb_78d3_900c_5140_cd8e_17fd_bfab_7734,
            ),
            display_name: "Microsoft Exchange REST API Based Powershell".into(),
            public: true,
            redirect_uris: EXO_MODULE_REDIRECT_URIS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            secrets: vec![],
            certificate: None,
            app_roles: vec![],
            roles: vec![],
            federated: vec![],
        }
    }

    fn registered(app: &App, certificate: Option<AppCertificate>) -> Client {
        Client {
            client_id: app.client_id,
            object_id: app.object_id,
            display_name: app.display_name.clone(),
            public: app.public_client,
            redirect_uris: app.redirect_uris.clone(),
            secrets: app.client_secrets.clone(),
            certificate,
            app_roles: app.app_roles.clone(),
            roles: app.roles.clone(),
            federated: app.federated_credentials.clone(),
        }
    }
}

/// One tenant with its indexes.
#[derive(Debug)]
pub(crate) struct TenantEntry {
    pub seed: Tenant,
    /// `{name}.onmicrosoft.com`.
    pub initial_domain: String,
    /// Every verified domain: the initial domain first, then the accepted domains.
    pub domains: Vec<String>,
    pub clients: Vec<Client>,
}

impl TenantEntry {
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        let id: Uuid = client_id.trim().parse().ok()?;
        self.clients.iter().find(|c| c.client_id == id)
    }

    pub fn initial_domain(&self) -> &str {
        &self.initial_domain
    }
}

/// A user and the index of their tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UserRef {
    pub tenant: usize,
    pub user: usize,
}

/// A partner relationship, resolved.
#[derive(Debug)]
pub(crate) struct DelegationEntry {
    pub partner: usize,
    pub customer: usize,
    pub roles: Vec<Role>,
}

/// A managed identity with its tenant index.
#[derive(Debug)]
pub(crate) struct IdentityEntry {
    pub seed: ManagedIdentity,
    pub tenant: usize,
}

/// What a `{tenant}` path segment names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TenantSegment {
    Common,
    Organizations,
    Consumers,
    Tenant(usize),
}

/// Why a tenant segment was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TenantLookupError {
    /// Syntactically fine but no such tenant (AADSTS90002).
    NotFound,
    /// Neither a GUID nor a DNS name (AADSTS900023).
    Invalid,
}

#[derive(Debug)]
pub(crate) struct Directory {
    pub tenants: Vec<TenantEntry>,
    /// Tenant ids and domains, lower case.
    by_id_or_domain: HashMap<String, usize>,
    /// Seed names, lower case (internal configuration only).
    by_name: HashMap<String, usize>,
    users: HashMap<String, UserRef>,
    users_by_oid: HashMap<Uuid, UserRef>,
    pub delegations: Vec<DelegationEntry>,
    pub identities: Vec<IdentityEntry>,
}

impl Directory {
    /// Builds the directory; `certificates` maps client ids to their loaded certificates.
    pub fn new(seed: &Seed, certificates: &HashMap<Uuid, AppCertificate>) -> Directory {
        let mut by_id_or_domain = HashMap::new();
        let mut by_name = HashMap::new();
        let mut users = HashMap::new();
        let mut users_by_oid = HashMap::new();
        let tenants: Vec<TenantEntry> =
            seed.tenants
                .iter()
                .enumerate()
                .map(|(t, tenant)| {
                    let domains = tenant.domains();
                    by_id_or_domain.insert(tenant.id.to_string(), t);
                    by_name.insert(tenant.name.to_ascii_lowercase(), t);
                    for domain in &domains {
                        by_id_or_domain.insert(domain.to_ascii_lowercase(), t);
                    }
                    for (u, user) in tenant.users.iter().enumerate() {
                        users.insert(
                            user.upn.to_ascii_lowercase(),
                            UserRef { tenant: t, user: u },
                        );
                        users_by_oid.insert(user.object_id, UserRef { tenant: t, user: u });
                    }
                    let mut clients = vec![Client::module_public_client(tenant)];
                    clients.extend(tenant.apps.iter().map(|app| {
                        Client::registered(app, certificates.get(&app.client_id).cloned())
                    }));
                    TenantEntry {
                        seed: tenant.clone(),
                        initial_domain: tenant.initial_domain(),
                        domains,
                        clients,
                    }
                })
                .collect();
        let index = |name: &str| by_name.get(&name.to_ascii_lowercase()).copied();
        let delegations = seed
            .delegations
            .iter()
            .filter_map(|d| {
                Some(DelegationEntry {
                    partner: index(&d.partner)?,
                    customer: index(&d.customer)?,
                    roles: d.roles.clone(),
                })
            })
            .collect();
        let identities = seed
            .managed_identities
            .iter()
            .filter_map(|mi| {
                Some(IdentityEntry {
                    seed: mi.clone(),
                    tenant: index(&mi.tenant)?,
                })
            })
            .collect();
        Directory {
            tenants,
            by_id_or_domain,
            by_name,
            users,
            users_by_oid,
            delegations,
            identities,
        }
    }

    /// Resolves a tenant id or verified domain, the identifiers the real services accept.
    pub fn tenant(&self, key: &str) -> Option<usize> {
        let key = key.trim().to_ascii_lowercase();
        // Tenant ids are indexed in their hyphenated lower-case form.
        let key = Uuid::parse_str(&key).map_or(key, |id| id.to_string());
        self.by_id_or_domain.get(&key).copied()
    }

    /// Resolves a tenant id, domain or seed name (the sandbox's own configuration only).
    pub fn tenant_by_any_key(&self, key: &str) -> Option<usize> {
        self.tenant(key)
            .or_else(|| self.by_name.get(&key.trim().to_ascii_lowercase()).copied())
    }

    /// Resolves a `{tenant}` path segment.
    pub fn segment(&self, segment: &str) -> Result<TenantSegment, TenantLookupError> {
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "common" => return Ok(TenantSegment::Common),
            "organizations" => return Ok(TenantSegment::Organizations),
            "consumers" | CONSUMERS_TENANT_ID => return Ok(TenantSegment::Consumers),
            _ => {}
        }
        if let Some(t) = self.tenant(&lower) {
            return Ok(TenantSegment::Tenant(t));
        }
        let is_guid = Uuid::parse_str(&lower).is_ok();
        let is_dns = lower.contains('.')
            && lower.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if is_guid || is_dns {
            Err(TenantLookupError::NotFound)
        } else {
            Err(TenantLookupError::Invalid)
        }
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<UserRef> {
        self.users.get(&upn.trim().to_ascii_lowercase()).copied()
    }

    pub fn user_by_oid(&self, oid: &Uuid) -> Option<UserRef> {
        self.users_by_oid.get(oid).copied()
    }

    pub fn user(&self, r: UserRef) -> &User {
        &self.tenants[r.tenant].seed.users[r.user]
    }

    /// The partner relationship from `partner` to `customer`, if any.
    pub fn delegation(&self, partner: usize, customer: usize) -> Option<&DelegationEntry> {
        self.delegations
            .iter()
            .find(|d| d.partner == partner && d.customer == customer)
    }
}
