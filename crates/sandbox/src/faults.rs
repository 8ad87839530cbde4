//! Fault injection: rules that make the sandbox misbehave on purpose.
//!
//! A rule is `{kind, target, tenant, skip, count}` plus the kind's parameters, e.g. JSON
//! `{"kind":"drop","target":"exchange","skip":2,"count":1}` = "drop the 3rd Exchange request".
//! Each rule counts the requests it *matches* (its target, its tenant if set, and for the
//! special kinds the kind of request it applies to); the first `skip` pass, the next `count`
//! (unset = forever) are hit.
//!
//! | kind | parameters | applies to | effect |
//! |---|---|---|---|
//! | `throttle` | `retry_after_seconds` (default 1) | every request | 429 + `Retry-After` in the target's error shape |
//! | `unavailable` | — | every request | 503 in the target's error shape |
//! | `delay` | `ms` | every request | the response is delayed |
//! | `drop` | — | every request | the TCP connection is closed without a response |
//! | `slow_down` | — | device-code polls | `slow_down` instead of the normal answer |
//! | `revoke_refresh_tokens` | `aadsts` (50173 or 70008, default 50173) | refresh-token redemptions | `invalid_grant` with that code |
//! | `clock_skew` | `seconds` (±) | token issuance (identity, managed identity) / token validation (exchange) | that service's clock is shifted |
//!
//! Targets: `identity`, `exchange` (admin API and `/PowerShell-LiveID`), `managed_identity`,
//! `all` (default). `/_sandbox/...` admin requests are never faulted. `tenant` is a tenant name,
//! id or domain; it matches requests whose URL names that tenant.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 Too Many Requests with `Retry-After`.
    Throttle {
        /// The `Retry-After` value.
        #[serde(default = "one")]
        retry_after_seconds: u64,
    },
    /// 503 Service Unavailable.
    Unavailable,
    /// Delay the response.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Close the connection without answering.
    Drop,
    /// `slow_down` on device-code polling.
    SlowDown,
    /// Refresh tokens are refused as revoked.
    RevokeRefreshTokens {
        /// 50173 (FreshTokenNeeded) or 70008 (ExpiredOrRevokedGrant).
        #[serde(default = "fresh_token_needed")]
        aadsts: u32,
    },
    /// Shift the clock of the target.
    ClockSkew {
        /// Seconds added to the clock (negative = behind).
        seconds: i64,
    },
}

fn one() -> u64 {
    1
}

fn fresh_token_needed() -> u32 {
    50173
}

/// Which service a rule applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// The identity platform endpoints.
    Identity,
    /// The Exchange admin API and the legacy endpoint.
    Exchange,
    /// The managed-identity listener.
    ManagedIdentity,
    /// Everything except the admin endpoints.
    #[default]
    All,
}

/// The service a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Identity platform (token, authorize, discovery, pages).
    Identity,
    /// Exchange admin API or legacy remote PowerShell.
    Exchange,
    /// Managed-identity endpoints.
    ManagedIdentity,
    /// `/_sandbox/...` admin endpoints.
    Admin,
}

impl FaultTarget {
    fn covers(self, service: Service) -> bool {
        match (self, service) {
            (_, Service::Admin) => false,
            (FaultTarget::All, _) => true,
            (FaultTarget::Identity, Service::Identity)
            | (FaultTarget::Exchange, Service::Exchange)
            | (FaultTarget::ManagedIdentity, Service::ManagedIdentity) => true,
            _ => false,
        }
    }
}

/// One fault rule. Unknown fields are refused (a typo like `taget` must not widen a rule), in
/// JSON and in the seed's TOML alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRule {
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Which service.
    pub target: FaultTarget,
    /// Only requests for this tenant (name, id or domain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Matching requests that pass before the rule hits.
    pub skip: u64,
    /// How many matching requests are hit (unset = all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The fields of a rule besides its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scope {
    #[serde(default)]
    target: FaultTarget,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    skip: u64,
    #[serde(default)]
    count: Option<u64>,
}

const SCOPE_FIELDS: [&str; 4] = ["target", "tenant", "skip", "count"];

// By hand because serde can't refuse unknown fields next to a flattened, internally tagged
// enum: the scope fields are split off, the rest must be exactly the kind and its parameters.
impl<'de> Deserialize<'de> for FaultRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::{Map, Value};
        let mut fields = Map::<String, Value>::deserialize(deserializer)?;
        let scope: Map<String, Value> = SCOPE_FIELDS
            .iter()
            .filter_map(|k| fields.remove(*k).map(|v| ((*k).to_owned(), v)))
            .collect();
        let kind =
            FaultKind::deserialize(Value::Object(fields.clone())).map_err(D::Error::custom)?;
        // A kind serializes every parameter it has (defaults included), so anything else the
        // rule named is unknown.
        let known = serde_json::to_value(&kind).map_err(D::Error::custom)?;
        if let Some(unknown) = fields.keys().find(|k| known.get(k.as_str()).is_none()) {
            return Err(D::Error::custom(format!(
                "unknown field `{unknown}` in a {} fault rule",
                known["kind"]
            )));
        }
        let scope = Scope::deserialize(Value::Object(scope)).map_err(D::Error::custom)?;
        Ok(FaultRule {
            kind,
            target: scope.target,
            tenant: scope.tenant,
            skip: scope.skip,
            count: scope.count,
        })
    }
}

impl FaultRule {
    /// A rule for `kind` on `target`, hitting every matching request.
    pub fn new(kind: FaultKind, target: FaultTarget) -> FaultRule {
        FaultRule {
            kind,
            target,
            tenant: None,
            skip: 0,
            count: None,
        }
    }

    /// Only for requests naming `tenant`.
    pub fn tenant(mut self, tenant: impl Into<String>) -> FaultRule {
        self.tenant = Some(tenant.into());
        self
    }

    /// Let the first `skip` matching requests pass.
    pub fn skip(mut self, skip: u64) -> FaultRule {
        self.skip = skip;
        self
    }

    /// Hit only `count` requests.
    pub fn count(mut self, count: u64) -> FaultRule {
        self.count = Some(count);
        self
    }
}

/// The kind of request a rule kind applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// Any request (throttle, unavailable, delay, drop).
    Request,
    /// A device-code poll (slow_down).
    DevicePoll,
    /// A refresh-token redemption (revoke_refresh_tokens).
    RefreshGrant,
    /// A request that issues or validates tokens (clock_skew).
    Clock,
}

impl FaultKind {
    fn point(&self) -> Point {
        match self {
            FaultKind::Throttle { .. }
            | FaultKind::Unavailable
            | FaultKind::Delay { .. }
            | FaultKind::Drop => Point::Request,
            FaultKind::SlowDown => Point::DevicePoll,
            FaultKind::RevokeRefreshTokens { .. } => Point::RefreshGrant,
            FaultKind::ClockSkew { .. } => Point::Clock,
        }
    }

    /// A short label for the request log.
    pub(crate) fn label(&self) -> String {
        match self {
            FaultKind::Throttle {
                retry_after_seconds,
            } => format!("throttle({retry_after_seconds}s)"),
            FaultKind::Unavailable => "unavailable".into(),
            FaultKind::Delay { ms } => format!("delay({ms}ms)"),
            FaultKind::Drop => "drop".into(),
            FaultKind::SlowDown => "slow_down".into(),
            FaultKind::RevokeRefreshTokens { aadsts } => format!("revoke_refresh_tokens({aadsts})"),
            FaultKind::ClockSkew { seconds } => format!("clock_skew({seconds}s)"),
        }
    }
}

/// Why a rule was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The rule names a tenant the sandbox does not have.
    #[error("fault rule names unknown tenant '{0}'")]
    UnknownTenant(String),
    /// `revoke_refresh_tokens` with a code other than 50173 or 70008.
    #[error("revoke_refresh_tokens supports aadsts 50173 or 70008, not {0}")]
    UnsupportedCode(u32),
}

/// A rule with its counters, as listed by `GET /_sandbox/faults`.
#[derive(Clone, Debug, Serialize)]
pub struct FaultStatus {
    /// Rule id (for `DELETE /_sandbox/faults/{id}`).
    pub id: u64,
    /// The rule.
    #[serde(flatten)]
    pub rule: FaultRule,
    /// Matching requests seen so far.
    pub seen: u64,
    /// Requests hit so far.
    pub hits: u64,
}

struct ActiveRule {
    status: FaultStatus,
    tenant: Option<usize>,
}

/// Resolves a tenant name, id or domain to the sandbox's tenant index.
type TenantResolver = Box<dyn Fn(&str) -> Option<usize> + Send + Sync>;

/// The live fault rules of a sandbox.
pub struct Faults {
    rules: Mutex<Vec<ActiveRule>>,
    next_id: AtomicU64,
    resolve_tenant: TenantResolver,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("rules", &self.list())
            .finish()
    }
}

/// What the request-level rules decided for one request.
#[derive(Debug, Default)]
pub(crate) struct RequestFaults {
    pub delay_ms: u64,
    /// The first terminal fault (throttle, unavailable or drop) that hit.
    pub terminal: Option<FaultKind>,
    pub labels: Vec<String>,
}

impl Faults {
    pub(crate) fn new(
        resolve_tenant: impl Fn(&str) -> Option<usize> + Send + Sync + 'static,
    ) -> Faults {
        Faults {
            rules: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            resolve_tenant: Box::new(resolve_tenant),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ActiveRule>> {
        // A panic while holding the lock cannot leave the rule list inconsistent: keep going.
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a rule; returns its id.
    pub fn add(&self, rule: FaultRule) -> Result<u64, FaultError> {
        if let FaultKind::RevokeRefreshTokens { aadsts } = rule.kind
            && aadsts != 50173
            && aadsts != 70008
        {
            return Err(FaultError::UnsupportedCode(aadsts));
        }
        let tenant = match &rule.tenant {
            Some(name) => Some(
                (self.resolve_tenant)(name)
                    .ok_or_else(|| FaultError::UnknownTenant(name.clone()))?,
            ),
            None => None,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(ActiveRule {
            status: FaultStatus {
                id,
                rule,
                seen: 0,
                hits: 0,
            },
            tenant,
        });
        Ok(id)
    }

    /// Removes one rule; false if there was none with that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.lock();
        let before = rules.len();
        rules.retain(|r| r.status.id != id);
        rules.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The rules with their counters.
    pub fn list(&self) -> Vec<FaultStatus> {
        self.lock().iter().map(|r| r.status.clone()).collect()
    }

    /// Counts a matching request at `point` for every applicable rule and returns the kinds
    /// of the rules that hit it, in rule order.
    pub(crate) fn fire(
        &self,
        point: Point,
        service: Service,
        tenant: Option<usize>,
    ) -> Vec<FaultKind> {
        let mut rules = self.lock();
        let mut hit = Vec::new();
        for rule in rules.iter_mut() {
            let r = &rule.status.rule;
            if r.kind.point() != point || !r.target.covers(service) {
                continue;
            }
            if rule.tenant.is_some() && rule.tenant != tenant {
                continue;
            }
            rule.status.seen += 1;
            let in_window =
                rule.status.seen > r.skip && r.count.is_none_or(|c| rule.status.hits < c);
            if in_window {
                rule.status.hits += 1;
                hit.push(r.kind.clone());
            }
        }
        hit
    }

    /// The request-level faults for one request.
    pub(crate) fn on_request(&self, service: Service, tenant: Option<usize>) -> RequestFaults {
        let mut out = RequestFaults::default();
        for kind in self.fire(Point::Request, service, tenant) {
            out.labels.push(kind.label());
            match kind {
                FaultKind::Delay { ms } => out.delay_ms += ms,
                terminal if out.terminal.is_none() => out.terminal = Some(terminal),
                _ => {}
            }
        }
        out
    }

    /// The clock shift (seconds) for a token issuing or validating request.
    pub(crate) fn clock_skew(&self, service: Service, tenant: Option<usize>) -> i64 {
        self.fire(Point::Clock, service, tenant)
            .into_iter()
            .map(|k| {
                if let FaultKind::ClockSkew { seconds } = k {
                    seconds
                } else {
                    0
                }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests;
