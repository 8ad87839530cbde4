//! What to do next, for the libraries' structured errors.
//!
//! The session core says what went wrong (`SessionError`, `CacheError`, …) and knows nothing of
//! the command line; the CLI adds which `exo` command helps. Every error printed by `exo` passes
//! through [`describe`].

use session::cache::{CacheError, PrefixTaken};
use session::connection::ConnectionError;
use session::environment::EnvironmentError;
use session::renewal::SessionError;

/// `error` with its causes on one line, followed by the advice for the first cause that has
/// one.
pub fn describe(error: &anyhow::Error) -> String {
    let advice = error.chain().find_map(advice);
    match advice {
        Some(advice) => format!("{error:#}. {advice}"),
        None => format!("{error:#}"),
    }
}

/// `error` followed by its advice, for errors that are passed on as text.
pub fn with_hint(error: &(dyn std::error::Error + 'static)) -> String {
    match advice(error) {
        Some(advice) => format!("{error}. {advice}"),
        None => error.to_string(),
    }
}

fn advice(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<SessionError>() {
        return match error {
            SessionError::NotFound(_) => Some("`exo connections` lists them".to_owned()),
            SessionError::Interrupted => None,
            SessionError::RenewalFailed { reconnect, .. } => Some(format!(
                "Sign in again with: {}",
                reconnect_command(reconnect)
            )),
            SessionError::Cache(cache) => cache_advice(cache),
        };
    }
    if let Some(error) = error.downcast_ref::<CacheError>() {
        return cache_advice(error);
    }
    if let Some(EnvironmentError::SandboxNotRunning { .. }) = error.downcast_ref() {
        return Some(
            "Start one with `exo-sandbox serve` (or set EXO_SANDBOX_DIR to its --state directory)"
                .to_owned(),
        );
    }
    if error.downcast_ref::<PrefixTaken>().is_some() {
        return Some("Disconnect it first or choose another prefix".to_owned());
    }
    if let Some(ConnectionError::NoTenant) = error.downcast_ref() {
        return Some("Pass --organization with the tenant's domain or GUID".to_owned());
    }
    None
}

fn cache_advice(error: &CacheError) -> Option<String> {
    match error {
        // One connection's file: that connection alone.
        CacheError::Damaged { path, .. } | CacheError::Untrusted { path, .. }
            if path.parent().and_then(|p| p.file_name()) == Some("connections".as_ref()) =>
        {
            let id = path.file_name().unwrap_or_default().to_string_lossy();
            Some(format!(
                "The other connections keep working; `exo disconnect --connection-id {id}` removes \
                 this one"
            ))
        }
        CacheError::Damaged { .. } => Some(
            "`exo disconnect --all` moves it aside and starts a new one (its connections are lost)"
                .to_owned(),
        ),
        CacheError::KeyExposed { path, .. } => Some(format!(
            "If nobody else could have read it, run `chmod 600 {}`; otherwise `exo disconnect \
             --all` and sign in again",
            path.display()
        )),
        CacheError::PrefixTaken(_) => {
            Some("Disconnect it first or choose another prefix".to_owned())
        }
        CacheError::Untrusted { .. } => Some(
            "Make it yours and private (chown, chmod go-w), or set EXO_STATE_DIR to a folder only \
             you can write; if someone else could have planted it, do not use what is in it"
                .to_owned(),
        ),
        _ => None,
    }
}

/// The `exo connect` command line for `arguments`, shell-quoted.
pub fn reconnect_command(arguments: &[String]) -> String {
    std::iter::once("exo connect".to_owned())
        .chain(arguments.iter().map(|arg| shell_quote(arg)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as a POSIX shell word.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
