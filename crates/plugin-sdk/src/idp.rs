//! Identity-provider errors turned into one-line [`Error`]s that say what to do.
//!
//! Token endpoints answer failures with an RFC 6749 §5.2 body: `error` (`invalid_grant`,
//! `invalid_client`, …) and optionally `error_description`. Microsoft Entra adds `error_codes`
//! (`[50126]`) and starts the description with `AADSTS<code>: `, followed by lines with a trace
//! id, a correlation id and a timestamp (see `docs/identity-platform.md`, "Error bodies"). A
//! provider that is not Entra sends only the RFC fields. Both are read here, in one place, so
//! every plugin reports the same code with the same advice.
//!
//! Match on the numeric code and the `error` value, never on the description: Microsoft changes
//! its texts. The description is still shown (its first line, control characters removed),
//! because it names the user, app or resource involved.

use crate::{Error, ErrorKind};

/// What to tell the user for an AADSTS code: the kind of failure and the advice.
struct Advice {
    code: u64,
    kind: ErrorKind,
    advice: &'static str,
}

/// Known codes, with what a user of exo should do about each.
const ADVICE: &[Advice] = &[
    Advice {
        code: 50126,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the user name or password is wrong",
    },
    Advice {
        code: 50034,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the user does not exist in this tenant; check the user name",
    },
    Advice {
        code: 50076,
        kind: ErrorKind::InteractionRequired,
        advice: "the account needs multi-factor authentication, which this login method cannot \
                 do; sign in with --method sso (browser) or --method device",
    },
    Advice {
        code: 50079,
        kind: ErrorKind::InteractionRequired,
        advice: "the account must register for multi-factor authentication first; sign in with \
                 --method sso (browser) or --method device",
    },
    Advice {
        code: 50072,
        kind: ErrorKind::InteractionRequired,
        advice: "the account must register for multi-factor authentication first; sign in with \
                 --method sso (browser) or --method device",
    },
    Advice {
        code: 50158,
        kind: ErrorKind::InteractionRequired,
        advice: "an external security challenge must be completed; sign in with --method sso",
    },
    Advice {
        code: 50053,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the account is locked, after too many failed sign-ins or by an administrator; \
                 wait and try again, or ask an administrator to unlock it",
    },
    Advice {
        code: 50055,
        kind: ErrorKind::InteractionRequired,
        advice: "the password has expired; change it (for example by signing in with \
                 --method sso) and connect again",
    },
    Advice {
        code: 50057,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the account is disabled; ask an administrator to enable it",
    },
    Advice {
        code: 53003,
        kind: ErrorKind::AuthenticationFailed,
        advice: "a Conditional Access policy blocked the sign-in",
    },
    Advice {
        code: 65001,
        kind: ErrorKind::InteractionRequired,
        advice: "the application has no consent for this tenant; an administrator must grant \
                 it (or sign in once with --method sso to consent)",
    },
    Advice {
        code: 700016,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the application id is not known in this tenant; check --app-id / --client-id \
                 and --organization",
    },
    Advice {
        code: 700027,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the client assertion's signature was rejected: the certificate is not the one \
                 registered for the app, or it has expired",
    },
    Advice {
        code: 700024,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the client assertion is outside its validity period; check this machine's clock",
    },
    Advice {
        code: 70021,
        kind: ErrorKind::AuthenticationFailed,
        advice: "no federated credential of the app matches the token's issuer, subject and \
                 audience; add one for this workload",
    },
    Advice {
        code: 7000215,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the client secret is wrong (use the secret's value, not its id)",
    },
    Advice {
        code: 7000222,
        kind: ErrorKind::AuthenticationFailed,
        advice: "the client secret has expired; create a new one",
    },
    Advice {
        code: 90002,
        kind: ErrorKind::InvalidInput,
        advice: "the tenant does not exist; check --organization",
    },
    Advice {
        code: 900023,
        kind: ErrorKind::InvalidInput,
        advice: "the tenant is not a valid domain or GUID; check --organization",
    },
    Advice {
        code: 70008,
        kind: ErrorKind::InteractionRequired,
        advice: "the sign-in has expired or was revoked; connect again",
    },
    Advice {
        code: 700082,
        kind: ErrorKind::InteractionRequired,
        advice: "the sign-in expired after a long time unused; connect again",
    },
    Advice {
        code: 50173,
        kind: ErrorKind::InteractionRequired,
        advice: "the sign-in was revoked (a password change or an administrator); connect again",
    },
    Advice {
        code: 70043,
        kind: ErrorKind::InteractionRequired,
        advice: "the sign-in frequency policy requires signing in again; connect again",
    },
    Advice {
        code: 50078,
        kind: ErrorKind::InteractionRequired,
        advice: "the multi-factor authentication has expired; connect again",
    },
];

/// The fields of an error body that matter, each read leniently: a field of an unexpected type
/// is treated as absent rather than discarding the others.
#[derive(Default)]
struct Body {
    error: Option<String>,
    error_description: Option<String>,
    error_codes: Vec<u64>,
}

impl Body {
    fn parse(bytes: &[u8]) -> Self {
        let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(bytes) else {
            return Self::default();
        };
        let text = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Self {
            error: text("error"),
            error_description: text("error_description"),
            error_codes: body
                .get("error_codes")
                .and_then(|v| v.as_array())
                .map(|codes| codes.iter().filter_map(|c| c.as_u64()).collect())
                .unwrap_or_default(),
        }
    }
}

/// The error for a token-endpoint response with a failure `status` and `body`.
///
/// The error's `code` is `AADSTS<n>` when the provider gave a numeric code, else the RFC 6749
/// `error` value (`invalid_grant`), else the HTTP status.
pub fn token_error(status: u16, body: &[u8]) -> Error {
    let parsed = Body::parse(body);
    let description = parsed
        .error_description
        .as_deref()
        .map(first_line)
        .unwrap_or_default();
    let code = parsed
        .error_codes
        .first()
        .copied()
        .or_else(|| aadsts_code(&description));
    let description = strip_code_prefix(&description);
    match (code, parsed.error.as_deref()) {
        (Some(code), error) => {
            let (kind, advice) = ADVICE
                .iter()
                .find(|a| a.code == code)
                .map(|a| (a.kind, Some(a.advice)))
                .unwrap_or_else(|| (kind_of(error, status), None));
            build(kind, format!("AADSTS{code}"), advice, description)
        }
        (None, Some(error)) => {
            let kind = kind_of(Some(error), status);
            build(kind, sanitize(error), rfc_advice(error), description)
        }
        (None, None) => Error {
            kind: kind_of(None, status),
            code: Some(format!("HTTP {status}")),
            message: format!(
                "the identity provider answered HTTP {status} without an OAuth error body"
            ),
        },
    }
}

/// The error for a browser redirect that carries `error` (and `error_description`).
pub fn redirect_error(error: &str, description: &str) -> Error {
    let description = first_line(description);
    if let Some(code) = aadsts_code(&description) {
        let body = serde_json::json!({
            "error": error, "error_description": description, "error_codes": [code],
        });
        return token_error(400, body.to_string().as_bytes());
    }
    let kind = match error {
        "access_denied" => ErrorKind::Cancelled,
        "login_required" | "interaction_required" | "consent_required" => {
            ErrorKind::InteractionRequired
        }
        "temporarily_unavailable" | "server_error" => ErrorKind::Network,
        _ => ErrorKind::AuthenticationFailed,
    };
    let advice = match error {
        "access_denied" => Some("the sign-in was declined or cancelled in the browser"),
        other => rfc_advice(other),
    };
    build(
        kind,
        sanitize(error),
        advice,
        strip_code_prefix(&description),
    )
}

fn build(kind: ErrorKind, code: String, advice: Option<&str>, description: &str) -> Error {
    let message = match (advice, description.is_empty()) {
        (Some(advice), true) => format!("{code}: {advice}"),
        (Some(advice), false) => format!("{code}: {advice} ({description})"),
        (None, false) => format!("{code}: {description}"),
        (None, true) => format!("{code}: the identity provider refused the request"),
    };
    Error {
        kind,
        code: Some(code),
        message,
    }
}

/// The kind for an RFC 6749 `error` value (or, without one, the HTTP status).
fn kind_of(error: Option<&str>, status: u16) -> ErrorKind {
    match error {
        Some("invalid_grant" | "invalid_client" | "unauthorized_client" | "access_denied") => {
            ErrorKind::AuthenticationFailed
        }
        Some("interaction_required" | "login_required" | "consent_required") => {
            ErrorKind::InteractionRequired
        }
        Some("invalid_request" | "invalid_scope" | "unsupported_grant_type") => {
            ErrorKind::InvalidInput
        }
        Some("temporarily_unavailable" | "server_error") => ErrorKind::Network,
        Some(_) => ErrorKind::AuthenticationFailed,
        None if status >= 500 || status == 429 => ErrorKind::Network,
        None => ErrorKind::AuthenticationFailed,
    }
}

/// Advice for providers that send only the RFC 6749 `error`.
fn rfc_advice(error: &str) -> Option<&'static str> {
    Some(match error {
        "invalid_grant" => {
            "the credentials or the grant were refused (wrong password, or an \
                            expired or revoked sign-in)"
        }
        "invalid_client" => "the client authentication was refused (wrong secret or certificate)",
        "unauthorized_client" => "the application may not use this sign-in method",
        "invalid_scope" => "the requested scope is not valid for this provider",
        "interaction_required" | "login_required" => "sign in interactively again",
        "consent_required" => "consent is missing for this application",
        "temporarily_unavailable" | "server_error" => {
            "the identity provider is unavailable; try again later"
        }
        _ => return None,
    })
}

/// `12345` from a description starting `AADSTS12345: …`.
fn aadsts_code(description: &str) -> Option<u64> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The description without its leading `AADSTS<n>: `, which the code already says.
fn strip_code_prefix(description: &str) -> &str {
    match description.strip_prefix("AADSTS") {
        Some(rest) => rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start_matches(':')
            .trim_start(),
        None => description,
    }
}

/// The first line of a description (Entra appends trace and correlation ids on later lines),
/// without control characters, at most 300 characters.
fn first_line(description: &str) -> String {
    let line = description.lines().next().unwrap_or_default();
    let mut clean = sanitize(line);
    if clean.chars().count() > 300 {
        clean = clean.chars().take(300).collect::<String>() + "…";
    }
    clean
}

/// `text` without control characters (a hostile server must not drive the user's terminal).
fn sanitize(text: &str) -> String {
    let acts_on_terminal = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    text.chars()
        .map(|c| if acts_on_terminal(c) { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests;
