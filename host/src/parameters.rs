//! Turning a login method's parameters into values: from the command line, a secret file or
//! stdin, an environment variable, or a prompt.
//!
//! Each value is checked against its kind first (a whole number, an absolute URL, a path made
//! absolute, bytes for a binary secret such as a PFX file), so a plugin never sees a malformed
//! one. Where each value came from is kept as a [`Source`], without the secret itself, so that a
//! silent renewal can read a secret again from the same file or variable (a rotated token file
//! keeps a connection alive) and so that nothing secret is ever stored with the connection.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plugin_abi::{ParameterKind, ParameterSpec, ParameterValue};
use session::connection::{MethodParameter, ParameterSource as Source, ValueKind};
use zeroize::Zeroizing;

use crate::cli::{GivenParameter, option_name};

/// The largest text secret exo reads (a JWT or a password is far smaller).
const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// The largest binary secret exo reads (a PKCS#12 file with a long chain is a few KiB).
const MAX_BINARY_SECRET_BYTES: u64 = 1024 * 1024;

/// A parameter's value and where it came from.
pub struct Resolved {
    /// Name and value, as sent to the plugin.
    pub values: Vec<ParameterValue>,
    /// Name and source, as kept with the connection.
    pub sources: Vec<MethodParameter>,
}

impl std::fmt::Debug for Resolved {
    /// Names and sources only: the values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Drop for Resolved {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        for value in &mut self.values {
            let mut bytes = std::mem::take(&mut value.value).into_vec();
            bytes.zeroize();
        }
    }
}

/// How a secret that was not given may still be obtained.
pub trait SecretPrompt {
    /// Asks for the secret `name`; `None` when nobody can answer.
    fn ask(&self, name: &str) -> anyhow::Result<Option<Zeroizing<String>>>;
}

/// Resolves `specs` from what was `given` on the command line, the environment, and `prompt`,
/// checking each value against its kind before any plugin sees it.
pub fn resolve(
    specs: &[ParameterSpec],
    given: &[GivenParameter],
    prompt: &dyn SecretPrompt,
) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved {
        values: Vec::new(),
        sources: Vec::new(),
    };
    let mut stdin_used = false;
    for spec in specs {
        let name = spec.name.as_str();
        let kind = value_kind(spec);
        let env_var = spec.env_var.as_ref().map(|v| v.to_string()).into_option();
        let option = format!("--{}", option_name(name, spec.secret));
        let (value, source) = if let Some(given) = given.iter().find(|g| g.name == name) {
            if !spec.secret {
                let value = checked(kind, &given.value).with_context(|| option.clone())?;
                (
                    Zeroizing::new(value.clone().into_bytes()),
                    Source::Value(value),
                )
            } else if given.value == "-" {
                if stdin_used {
                    bail!("only one secret can be read from stdin");
                }
                stdin_used = true;
                let value = read_secret(std::io::stdin().lock(), kind)
                    .with_context(|| format!("{option}: cannot read the secret from stdin"))?;
                (value, Source::Stdin)
            } else {
                // Kept absolute: a renewal may run from another directory.
                let path = std::path::absolute(PathBuf::from(&given.value))
                    .with_context(|| format!("{option}: not a usable path"))?;
                let value = read_secret_file(&path, kind).with_context(|| option.clone())?;
                (value, Source::File(path))
            }
        } else if let Some(var) = env_var
            .as_deref()
            .filter(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
        {
            let value =
                read_variable(var, kind).with_context(|| format!("{var} (for {option})"))?;
            (value, Source::Env(var.to_owned()))
        } else if spec.secret && spec.required && kind != ValueKind::Bytes {
            match prompt.ask(name)? {
                Some(value) => (
                    Zeroizing::new(checked(kind, &value)?.into_bytes()),
                    Source::Prompt,
                ),
                None => bail!("{}", missing(spec, env_var.as_deref())),
            }
        } else if spec.required {
            bail!("{}", missing(spec, env_var.as_deref()));
        } else {
            continue;
        };
        resolved.values.push(ParameterValue {
            name: name.into(),
            value: value.as_slice().into(),
        });
        resolved.sources.push(MethodParameter {
            name: name.to_owned(),
            source,
            kind,
        });
    }
    Ok(resolved)
}

/// How exo reads and checks a parameter of this spec. Bytes are only read as such for secrets:
/// a non-secret value comes from the command line, as text.
fn value_kind(spec: &ParameterSpec) -> ValueKind {
    match spec.kind {
        ParameterKind::PATH => ValueKind::Path,
        ParameterKind::INTEGER => ValueKind::Integer,
        ParameterKind::URL => ValueKind::Url,
        ParameterKind::BYTES if spec.secret => ValueKind::Bytes,
        _ => ValueKind::Text,
    }
}

/// A text value checked against its kind: a whole number, an absolute http(s) URL without
/// credentials, or a path made absolute. The one check for every source, at connect and at
/// renewal.
fn checked(kind: ValueKind, value: &str) -> anyhow::Result<String> {
    match kind {
        ValueKind::Integer => match value.parse::<u64>() {
            Ok(_) => Ok(value.to_owned()),
            Err(_) => bail!("'{}' is not a whole number", shown(value)),
        },
        ValueKind::Url => {
            let Ok(url) = url::Url::parse(value) else {
                bail!("'{}' is not an absolute URL", shown(value));
            };
            if !matches!(url.scheme(), "https" | "http") {
                bail!("'{}' is not an http or https URL", shown(value));
            }
            if !url.username().is_empty() || url.password().is_some() {
                bail!("the URL must not carry a user name or password");
            }
            Ok(value.to_owned())
        }
        ValueKind::Path => {
            if value.is_empty() {
                bail!("the path is empty");
            }
            let path = std::path::absolute(value)
                .with_context(|| format!("'{}' is not a usable path", shown(value)))?;
            Ok(path.to_string_lossy().into_owned())
        }
        ValueKind::Text | ValueKind::Bytes => Ok(value.to_owned()),
    }
}

/// A value for an error message: control characters escaped, long values cut.
fn shown(value: &str) -> String {
    let value = session::environment::without_userinfo(value);
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 {
        escaped.chars().take(80).collect::<String>() + "…"
    } else {
        escaped
    }
}

/// Reads the parameters again from their recorded sources, for a silent renewal, with the same
/// checks as at connect. Values that came from stdin or a prompt cannot be read again and are
/// left out, as are values that no longer pass (with a warning); the plugin decides whether it
/// can renew without them.
pub fn reread(sources: &[MethodParameter]) -> Resolved {
    let mut resolved = Resolved {
        values: Vec::new(),
        sources: sources.to_vec(),
    };
    for parameter in sources {
        match read_again(parameter) {
            Ok(value) => resolved.values.push(ParameterValue {
                name: parameter.name.as_str().into(),
                value: value.as_slice().into(),
            }),
            // Not a warning: methods that renew with a refresh token never need the value
            // again (a password file may well be gone), and one that does says so itself.
            Err(e) => {
                tracing::debug!(target: "exo::renew", "cannot read --{} again: {e:#}", parameter.name);
            }
        }
    }
    resolved
}

/// Reads one parameter again from its recorded source, checked as at connect: a value typed
/// at a prompt or read from stdin cannot be, unless the user had exo keep it in the keyring.
pub fn read_again(parameter: &MethodParameter) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let MethodParameter { source, kind, .. } = parameter;
    match source {
        Source::Value(value) => Ok(Zeroizing::new(value.clone().into_bytes())),
        // A pipe (`<(…)`, a FIFO) was read once at connect; opening it again would wait for a
        // writer that may never come.
        Source::File(path) if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) => {
            Err(anyhow::anyhow!("its file is no longer a regular file"))
        }
        Source::File(path) => read_secret_file(path, *kind),
        Source::Env(var) => read_variable(var, *kind).with_context(|| var.clone()),
        Source::Keyring(account) => session::keys::recall(account)?
            .ok_or_else(|| anyhow::anyhow!("the OS keyring no longer holds it")),
        Source::Stdin => bail!("it was read from stdin at connect, and was not kept"),
        Source::Prompt => bail!("it was typed at connect, and was not kept"),
    }
}

/// A value from environment variable `var`: base64 for bytes, else text checked by kind.
/// A cmdlet's secret parameter from `--secret NAME=SOURCE`: `file:PATH`, `env:VARIABLE`, or
/// `-` for stdin (text, one trailing line break removed); never the value itself.
pub fn read_cmdlet_secret(source: &str) -> anyhow::Result<Zeroizing<String>> {
    let bytes = if source == "-" {
        read_secret(std::io::stdin().lock(), ValueKind::Text)
            .context("cannot read the secret from stdin")?
    } else if let Some(path) = source.strip_prefix("file:") {
        read_secret_file(Path::new(path), ValueKind::Text)?
    } else if let Some(var) = source.strip_prefix("env:") {
        read_variable(var, ValueKind::Text).with_context(|| format!("the variable {var}"))?
    } else {
        bail!(
            "the source must be file:PATH, env:VARIABLE or - (stdin); the value itself is never \
             taken from the command line"
        );
    };
    let text = std::str::from_utf8(&bytes).context("the secret is not UTF-8 text")?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn read_variable(var: &str, kind: ValueKind) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| anyhow::anyhow!("it is not set"))?;
    if kind == ValueKind::Bytes {
        decode_base64(&value)
    } else {
        Ok(Zeroizing::new(checked(kind, &value)?.into_bytes()))
    }
}

fn missing(spec: &ParameterSpec, env_var: Option<&str>) -> String {
    let option = option_name(&spec.name, spec.secret);
    match env_var {
        Some(var) => format!("missing --{option} (or set {var})"),
        None => format!("missing --{option}"),
    }
}

/// Reads a secret file: at most 64 KiB of UTF-8 text with one trailing line break removed and
/// checked by kind, or, for bytes, at most 1 MiB as they are.
fn read_secret_file(path: &Path, kind: ValueKind) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // Someone who passes the secret itself where a path belongs must not see it echoed, so
    // the path is never shown (the caller names the option).
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "the secret file given does not exist (pass the path of a file that holds the \
             secret, never the secret itself)"
        ),
        _ => anyhow::Error::new(e).context("cannot read the secret file given"),
    })?;
    read_secret(file, kind).context("cannot use the secret file given")
}

fn read_secret(reader: impl std::io::Read, kind: ValueKind) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let binary = kind == ValueKind::Bytes;
    let limit = if binary {
        MAX_BINARY_SECRET_BYTES
    } else {
        MAX_SECRET_BYTES
    };
    let mut bytes = Zeroizing::new(Vec::new());
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bail!("it is larger than {} KiB", limit / 1024);
    }
    if bytes.is_empty() {
        bail!("it is empty");
    }
    if binary {
        return Ok(bytes);
    }
    let text = std::str::from_utf8(&bytes).context("it is not UTF-8 text")?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.is_empty() {
        bail!("it is empty");
    }
    Ok(Zeroizing::new(checked(kind, text)?.into_bytes()))
}

/// A binary secret given in an environment variable, which holds it in base64.
fn decode_base64(text: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| anyhow::anyhow!("a binary secret in a variable must be base64"))?;
    if bytes.is_empty() {
        bail!("it is empty");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
