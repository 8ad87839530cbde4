//! Turning a login method's parameters into values: from the command line, a secret file or
//! stdin, an environment variable, or a prompt.
//!
//! Where each value came from is kept as a [`Source`], without the secret itself, so that a
//! silent renewal can read a secret again from the same file or variable (a rotated token file
//! keeps a connection alive) and so that nothing secret is ever stored with the connection.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plugin_abi::{ParameterSpec, ParameterValue};
use session::connection::{MethodParameter, ParameterSource as Source};
use zeroize::Zeroizing;

use crate::cli::{GivenParameter, option_name};

/// The largest secret file exo reads (a JWT or a password is far smaller).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

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
            let mut text = std::mem::take(&mut value.value).into_string();
            text.zeroize();
        }
    }
}

/// How a secret that was not given may still be obtained.
pub trait SecretPrompt {
    /// Asks for the secret `name`; `None` when nobody can answer.
    fn ask(&self, name: &str) -> anyhow::Result<Option<Zeroizing<String>>>;
}

/// Resolves `specs` from what was `given` on the command line, the environment, and `prompt`.
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
        let env_var = spec.env_var.as_ref().map(|v| v.to_string()).into_option();
        let (value, source) = if let Some(given) = given.iter().find(|g| g.name == name) {
            if spec.secret {
                if given.value == "-" {
                    if stdin_used {
                        bail!("only one secret can be read from stdin");
                    }
                    stdin_used = true;
                    (
                        read_stdin().with_context(|| format!("--{}", option_name(name, true)))?,
                        Source::Stdin,
                    )
                } else {
                    // Kept absolute: a renewal may run from another directory.
                    let path =
                        std::path::absolute(PathBuf::from(&given.value)).with_context(|| {
                            format!("--{}: not a usable path", option_name(name, true))
                        })?;
                    (read_secret_file(&path)?, Source::File(path))
                }
            } else {
                (
                    Zeroizing::new(given.value.clone()),
                    Source::Value(given.value.clone()),
                )
            }
        } else if let Some(value) = env_var
            .as_deref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|v| !v.is_empty())
        {
            (
                Zeroizing::new(value),
                Source::Env(env_var.clone().unwrap_or_default()),
            )
        } else if spec.secret && spec.required {
            match prompt.ask(name)? {
                Some(value) => (value, Source::Prompt),
                None => bail!("{}", missing(spec, env_var.as_deref())),
            }
        } else if spec.required {
            bail!("{}", missing(spec, env_var.as_deref()));
        } else {
            continue;
        };
        resolved.values.push(ParameterValue {
            name: name.into(),
            value: value.as_str().into(),
        });
        resolved.sources.push(MethodParameter {
            name: name.to_owned(),
            source,
        });
    }
    Ok(resolved)
}

/// Reads the parameters again from their recorded sources, for a silent renewal. Values that
/// came from stdin or a prompt cannot be read again and are left out; the plugin decides
/// whether it can renew without them.
pub fn reread(sources: &[MethodParameter]) -> Resolved {
    let mut resolved = Resolved {
        values: Vec::new(),
        sources: sources.to_vec(),
    };
    for MethodParameter { name, source } in sources {
        let value = match source {
            Source::Value(value) => Some(Zeroizing::new(value.clone())),
            Source::File(path) => read_secret_file(path)
                .map_err(|e| tracing::warn!(target: "exo::renew", "cannot read --{name}-file again: {e:#}"))
                .ok(),
            Source::Env(var) => std::env::var(var).ok().filter(|v| !v.is_empty()).map(Zeroizing::new),
            Source::Stdin | Source::Prompt => None,
        };
        if let Some(value) = value {
            resolved.values.push(ParameterValue {
                name: name.as_str().into(),
                value: value.as_str().into(),
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

/// Reads a secret file: at most 64 KiB, one trailing line break removed.
fn read_secret_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    // Someone who passes the secret itself where a path belongs must not see it echoed.
    let shown = if crate::http::looks_like_secret(&path.to_string_lossy()) {
        "given (which looks like a token, not a path: pass the path of a file that holds it)"
            .to_owned()
    } else {
        path.display().to_string()
    };
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the secret file {shown}"))?;
    read_secret(file).with_context(|| format!("cannot use the secret file {shown}"))
}

fn read_stdin() -> anyhow::Result<Zeroizing<String>> {
    read_secret(std::io::stdin().lock()).context("cannot read the secret from stdin")
}

fn read_secret(reader: impl std::io::Read) -> anyhow::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::new());
    reader.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        bail!("it is larger than {} KiB", MAX_SECRET_BYTES / 1024);
    }
    let text = std::str::from_utf8(&bytes).context("it is not UTF-8 text")?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.is_empty() {
        bail!("it is empty");
    }
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests;
