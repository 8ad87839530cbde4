//! Short-lived protocol state: authorization codes, device codes, refresh tokens, sign-in page
//! flows and per-user revocation times. In memory only: a restart signs everybody out.

use std::collections::HashMap;

use uuid::Uuid;

use crate::cloud::Cloud;
use crate::directory::{TenantSegment, UserRef};
use crate::identity::scope::Requested;

/// How a user authenticated (for `amr` and MFA checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Authentication {
    pub user: UserRef,
    pub mfa: bool,
    pub auth_time: i64,
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

/// All of it.
#[derive(Debug, Default)]
pub(crate) struct AuthStore {
    pub codes: HashMap<String, AuthCode>,
    pub device_codes: HashMap<String, DeviceCode>,
    /// Normalized user code → device code.
    pub user_codes: HashMap<String, String>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub flows: HashMap<String, Flow>,
    /// User object id → revocation time (TokensValidFrom).
    pub tokens_valid_from: HashMap<Uuid, i64>,
    inserts: u64,
}

/// Normalizes a user code as typed (case, spaces and dashes ignored).
pub(crate) fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl AuthStore {
    /// Drops expired entries now and then (amortized over inserts).
    pub fn housekeeping(&mut self, now: i64, refresh_lifetime: i64) {
        self.inserts += 1;
        if !self.inserts.is_multiple_of(1024) {
            return;
        }
        self.codes.retain(|_, c| c.expires_at > now);
        self.flows.retain(|_, f| f.expires_at > now);
        let expired: Vec<String> = self
            .device_codes
            .iter()
            .filter(|(_, d)| d.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(d) = self.device_codes.remove(&key) {
                self.user_codes.remove(&d.user_code);
            }
        }
        self.refresh_tokens
            .retain(|_, r| r.last_used + refresh_lifetime > now);
    }
}
