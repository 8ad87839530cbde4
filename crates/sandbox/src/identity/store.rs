//! Short-lived protocol state: authorization codes, device codes, refresh tokens, sign-in page
//! flows and per-user revocation times. In memory only: a restart signs everybody out.
//!
//! Each kind lives in an [`Expiring`] map, capped by the seed's `limits`: when a map is full the
//! entry that expires first goes (an expired one if there is any, otherwise the least recently
//! used refresh token or the oldest code or flow). Expired entries are otherwise kept for
//! [`EXPIRED_GRACE_SECONDS`] so that a late client still gets the precise error (AADSTS700082,
//! 70008, 70019) rather than "malformed", then dropped as new entries arrive.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::cloud::Cloud;
use crate::directory::{TenantSegment, UserRef};
use crate::identity::scope::Requested;
use crate::seed::Limits;

/// How a user authenticated (for `amr` and MFA checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Authentication {
    pub user: UserRef,
    pub mfa: bool,
    pub auth_time: i64,
    /// The sign-in session (`sid`): the same in every token of this sign-in, refreshes
    /// included.
    pub session_id: Uuid,
}

impl Authentication {
    /// A new sign-in of `user` at `now`.
    pub fn new(user: UserRef, mfa: bool, now: i64) -> Self {
        Self {
            user,
            mfa,
            auth_time: now,
            session_id: Uuid::new_v4(),
        }
    }
}

/// PKCE challenge method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PkceMethod {
    Plain,
    S256,
}

/// An issued authorization code.
#[derive(Debug)]
pub(crate) struct AuthCode {
    pub client_id: Uuid,
    pub tenant: usize,
    pub cloud: Cloud,
    pub redirect_uri: String,
    pub requested: Requested,
    pub nonce: Option<String>,
    pub challenge: Option<(String, PkceMethod)>,
    pub authn: Authentication,
    pub expires_at: i64,
    pub redeemed: bool,
}

/// Where a device code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceState {
    Pending,
    Approved(Authentication),
    Declined,
    Redeemed,
}

/// An issued device code.
#[derive(Debug)]
pub(crate) struct DeviceCode {
    pub client_id: Uuid,
    pub segment: TenantSegment,
    pub cloud: Cloud,
    pub requested: Requested,
    pub user_code: String,
    pub expires_at: i64,
    pub state: DeviceState,
}

/// An issued refresh token.
#[derive(Debug)]
pub(crate) struct RefreshToken {
    pub client_id: Uuid,
    pub tenant: usize,
    pub cloud: Cloud,
    pub requested: Requested,
    pub authn: Authentication,
    pub issued_at: i64,
    pub last_used: i64,
}

/// What a sign-in page flow is for.
#[derive(Debug, Clone)]
pub(crate) enum FlowPurpose {
    /// `/authorize`: finish with a redirect carrying a code.
    Authorize(Box<AuthorizeRequest>),
    /// The device-login page: finish by approving this device code.
    Device { device_code: String },
}

/// A validated `/authorize` request waiting for the user to sign in.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizeRequest {
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub requested: Requested,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub challenge: Option<(String, PkceMethod)>,
    pub id_token_in_response: bool,
}

/// How the authorization response reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// The step a sign-in flow is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Username,
    Password(UserRef),
    Mfa(UserRef),
    /// Device flows: the user confirms the app.
    Approve(Authentication),
    Done,
    /// Device flows: the user declined; the device's poll gets `authorization_declined`.
    Declined,
}

/// A sign-in page flow (the hidden `flow` field names it).
#[derive(Debug)]
pub(crate) struct Flow {
    pub purpose: FlowPurpose,
    pub cloud: Cloud,
    pub segment: TenantSegment,
    /// The `{tenant}` path segment as the client sent it (the form posts back there).
    pub segment_text: String,
    pub login_hint: Option<String>,
    pub step: Step,
    pub expires_at: i64,
}

/// How long an expired entry is kept for its precise error before new entries push it out.
pub(crate) const EXPIRED_GRACE_SECONDS: i64 = 3600;

/// A capped map of opaque handles (codes, tokens, flow ids) to records with an expiry time,
/// indexed by expiry so that making room costs O(log n).
#[derive(Debug)]
pub(crate) struct Expiring<V> {
    entries: HashMap<String, Slot<V>>,
    /// (expiry, insertion number) → key; the first entry is the next to go.
    by_expiry: BTreeMap<(i64, u64), String>,
    inserted: u64,
    capacity: usize,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    order: (i64, u64),
}

impl<V> Expiring<V> {
    pub fn new(capacity: usize) -> Expiring<V> {
        Expiring {
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
            inserted: 0,
            capacity: capacity.max(1),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|s| &s.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries.get_mut(key).map(|s| &mut s.value)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.entries.remove(key)?;
        self.by_expiry.remove(&slot.order);
        Some(slot.value)
    }

    /// Moves an entry's expiry (a refresh token used again lives longer).
    pub fn reschedule(&mut self, key: &str, expires_at: i64) {
        if let Some(slot) = self.entries.get_mut(key)
            && let Some(k) = self.by_expiry.remove(&slot.order)
        {
            slot.order.0 = expires_at;
            self.by_expiry.insert(slot.order, k);
        }
    }

    /// Removes and returns the entry that expires first.
    fn pop_first(&mut self) -> Option<V> {
        let (_, key) = self.by_expiry.pop_first()?;
        self.entries.remove(&key).map(|s| s.value)
    }

    /// Inserts an entry after making room: entries expired for longer than the grace period
    /// go, then — if the map is still full — the one that expires first. Returns what was
    /// dropped (callers clean up indexes that point into it).
    pub fn insert(&mut self, key: String, value: V, expires_at: i64, now: i64) -> Vec<V> {
        let mut dropped = Vec::new();
        if let Some(old) = self.remove(&key) {
            dropped.push(old);
        }
        while self
            .by_expiry
            .first_key_value()
            .is_some_and(|((expiry, _), _)| expiry + EXPIRED_GRACE_SECONDS <= now)
            || self.entries.len() >= self.capacity
        {
            match self.pop_first() {
                Some(value) => dropped.push(value),
                None => break,
            }
        }
        self.inserted += 1;
        let order = (expires_at, self.inserted);
        self.by_expiry.insert(order, key.clone());
        self.entries.insert(key, Slot { value, order });
        dropped
    }
}

/// All of it.
#[derive(Debug)]
pub(crate) struct AuthStore {
    pub codes: Expiring<AuthCode>,
    pub device_codes: Expiring<DeviceCode>,
    /// Normalized user code → device code.
    pub user_codes: HashMap<String, String>,
    pub refresh_tokens: Expiring<RefreshToken>,
    pub flows: Expiring<Flow>,
    /// User object id → revocation time (TokensValidFrom).
    pub tokens_valid_from: HashMap<Uuid, i64>,
}

/// Normalizes a user code as typed (case, spaces and dashes ignored).
pub(crate) fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl AuthStore {
    /// An empty store with the seed's caps.
    pub fn new(limits: &Limits) -> AuthStore {
        AuthStore {
            codes: Expiring::new(limits.max_pending_authorizations),
            device_codes: Expiring::new(limits.max_pending_authorizations),
            user_codes: HashMap::new(),
            refresh_tokens: Expiring::new(limits.max_refresh_tokens),
            flows: Expiring::new(limits.max_pending_authorizations),
            tokens_valid_from: HashMap::new(),
        }
    }

    /// Records a device code and its user code.
    pub fn insert_device_code(&mut self, device_code: String, record: DeviceCode, now: i64) {
        let user_code = normalize_user_code(&record.user_code);
        let expires_at = record.expires_at;
        for dropped in self
            .device_codes
            .insert(device_code.clone(), record, expires_at, now)
        {
            self.user_codes
                .remove(&normalize_user_code(&dropped.user_code));
        }
        self.user_codes.insert(user_code, device_code);
    }
}

#[cfg(test)]
mod tests;
