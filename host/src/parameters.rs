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
use session::connection::{MethodParameter, ParameterSource as Source};
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
        let binary = spec.secret && spec.kind == ParameterKind::BYTES;
        let env_var = spec.env_var.as_ref().map(|v| v.to_string()).into_option();
        let option = format!("--{}", option_name(name, spec.secret));
        let (value, source) = if let Some(given) = given.iter().find(|g| g.name == name) {
            if spec.secret {
                if given.value == "-" {
                    if stdin_used {
                        bail!("only one secret can be read from stdin");
                    }
                    stdin_used = true;
                    let value = read_secret(std::io::stdin().lock(), binary)
                        .with_context(|| format!("{option}: cannot read the secret from stdin"))?;
                    (value, Source::Stdin)
                } else {
                    // Kept absolute: a renewal may run from another directory.
                    let path = std::path::absolute(PathBuf::from(&given.value))
                        .with_context(|| format!("{option}: not a usable path"))?;
                    (read_secret_file(&path, binary)?, Source::File(path))
                }
            } else {
                let value = checked(spec, &given.value).with_context(|| option.clone())?;
                (
                    Zeroizing::new(value.clone().into_bytes()),
                    Source::Value(value),
                )
            }
        } else if let Some(value) = env_var
            .as_deref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|v| !v.is_empty())
        {
            let var = env_var.clone().unwrap_or_default();
            let value = Zeroizing::new(value);
            let value = if binary {
                decode_base64(&value).with_context(|| format!("{var} (for {option})"))?
            } else if spec.secret {
                Zeroizing::new(value.as_bytes().to_vec())
            } else {
                Zeroizing::new(
                    checked(spec, &value)
                        .with_context(|| var.clone())?
                        .into_bytes(),
                )
            };
            (value, Source::Env(var))
        } else if spec.secret && spec.required && !binary {
            match prompt.ask(name)? {
                Some(value) => (Zeroizing::new(value.as_bytes().to_vec()), Source::Prompt),
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
            binary,
        });
    }
    Ok(resolved)
}

/// A non-secret value checked against its kind: a whole number, an absolute http(s) URL
/// without credentials, or a path made absolute.
fn checked(spec: &ParameterSpec, value: &str) -> anyhow::Result<String> {
    match spec.kind {
        ParameterKind::INTEGER => match value.parse::<u64>() {
            Ok(_) => Ok(value.to_owned()),
            Err(_) => bail!("'{}' is not a whole number", shown(value)),
        },
        ParameterKind::URL => {
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
        ParameterKind::PATH => {
            if value.is_empty() {
                bail!("the path is empty");
            }
            let path = std::path::absolute(value)
                .with_context(|| format!("'{}' is not a usable path", shown(value)))?;
            Ok(path.to_string_lossy().into_owned())
        }
        _ => Ok(value.to_owned()),
    }
}

/// A value for an error message: control characters escaped, long values cut.
fn shown(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 {
        escaped.chars().take(80).collect::<String>() + "…"
    } else {
        escaped
    }
}

/// Reads the parameters again from their recorded sources, for a silent renewal. Values that
/// came from stdin or a prompt cannot be read again and are left out; the plugin decides
/// whether it can renew without them.
pub fn reread(sources: &[MethodParameter]) -> Resolved {
    let mut resolved = Resolved {
        values: Vec::new(),
        sources: sources.to_vec(),
    };
    for MethodParameter {
        name,
        source,
        binary,
    } in sources
    {
        let value = match source {
            Source::Value(value) => Some(Zeroizing::new(value.clone().into_bytes())),
            Source::File(path) => read_secret_file(path, *binary)
                .map_err(|e| tracing::warn!(target: "exo::renew", "cannot read --{name}-file again: {e:#}"))
                .ok(),
            Source::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .and_then(|v| {
                    let v = Zeroizing::new(v);
                    if *binary {
                        decode_base64(&v).ok()
                    } else {
                        Some(Zeroizing::new(v.as_bytes().to_vec()))
                    }
                }),
            Source::Stdin | Source::Prompt => None,
        };
        if let Some(value) = value {
            resolved.values.push(ParameterValue {
                name: name.as_str().into(),
                value: value.as_slice().into(),
            });
        }
    }
    resolved
}

fn missing(spec: &ParameterSpec, env_var: Option<&str>) -> String {
    let option = option_name(&spec.name, spec.secret);
    match env_var {
        Some(var) => format!("missing --{option} (or set {var})"),
        None => format!("missing --{option}"),
    }
}

/// Reads a secret file: at most 64 KiB of UTF-8 text with one trailing line break removed, or,
/// when `binary`, at most 1 MiB of bytes as they are.
fn read_secret_file(path: &Path, binary: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // Someone who passes the secret itself where a path belongs must not see it echoed.
    let shown = if crate::http::looks_like_secret(&path.to_string_lossy()) {
        "given (which looks like a token, not a path: pass the path of a file that holds it)"
            .to_owned()
    } else {
        path.display().to_string()
    };
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the secret file {shown}"))?;
    read_secret(file, binary).with_context(|| format!("cannot use the secret file {shown}"))
}

fn read_secret(reader: impl std::io::Read, binary: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
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
    Ok(Zeroizing::new(text.as_bytes().to_vec()))
}

/// A binary secret given in an environment variable, which holds it in base64.
fn decode_base64(text: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| anyhow::anyhow!("a binary secret in a variable must be base64"))
}

#[cfg(test)]
mod tests;
