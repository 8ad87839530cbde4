//! Loading plugin libraries: trust check, ABI check, construction, and self-description.
//!
//! Libraries are loaded with `lib_header_from_path(..)?.init_root_module::<PluginRoot_Ref>()`
//! (never `RootModule::load_from_*`, which caches one library per interface type). A library
//! is never unloaded. Every way a plugin can be unusable becomes a [`Refusal`] with a one-line
//! reason; `plugins list` reports them and goes on with the other plugins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RootModuleError, lib_header_from_path};
use abi_stable::std_types::RResult;
use plugin_abi::{LoginFlowBox, PluginDescription, PluginError, PluginRoot_Ref};

use crate::discovery::{self, PluginDir, Untrusted};

/// A loaded, working plugin.
pub struct LoadedPlugin {
    /// The library file.
    pub path: PathBuf,
    /// The `plugin-abi` version it was built against.
    pub abi_version: String,
    /// Its description of itself.
    pub description: PluginDescription,
    /// Its login flow.
    pub flow: LoginFlowBox,
}

impl LoadedPlugin {
    /// Its method id.
    pub fn method_id(&self) -> &str {
        self.description.method_id.as_str()
    }
}

/// Why a plugin library was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Other users could replace it.
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    /// The operating system could not load it.
    #[error("not a loadable library ({0})")]
    NotALibrary(String),
    /// It is a library, but not an exo plugin.
    #[error("not an exo plugin (no abi_stable root module)")]
    NoRootModule,
    /// Built for another ABI major.
    #[error(
        "built for plugin ABI {found}, but this exo speaks ABI {expected}.x; rebuild the plugin against plugin-abi {expected}.x"
    )]
    OtherAbiMajor {
        /// The plugin's ABI version.
        found: String,
        /// The host's ABI major.
        expected: u32,
    },
    /// The types do not match.
    #[error(
        "its ABI layout does not match this exo's (built against a modified or foreign plugin-abi); run with -vv for the details"
    )]
    IncompatibleLayout,
    /// Built with an incompatible abi_stable.
    #[error("built with an incompatible abi_stable release ({0})")]
    IncompatibleAbiStable(String),
    /// The root module constructor panicked.
    #[error("its root module constructor panicked")]
    ConstructorPanicked,
    /// The plugin failed to start or to describe itself (a panic included).
    #[error("the plugin failed: {}", .0.message)]
    Failed(PluginError),
    /// Its description is unusable.
    #[error("invalid description: {0}")]
    InvalidDescription(String),
    /// Another loader error.
    #[error("cannot load it: {0}")]
    Other(String),
    /// Another directory earlier in the search path provides the same method.
    #[error("method '{method_id}' is also provided by {}, which comes first in the search path (and wins even if refused); this one is ignored", .first.display())]
    Duplicate {
        /// The method both claim.
        method_id: String,
        /// The plugin that wins.
        first: PathBuf,
    },
}

/// Option names of `exo connect` itself: a plugin parameter may not shadow them.
pub const RESERVED_PARAMETERS: &[&str] = &[
    "method",
    "environment",
    "connection-uri",
    "authority-uri",
    "organization",
    "delegated-organization",
    "prefix",
    "page-size",
    "ca-file",
    "non-interactive",
    "remember-password",
    "plugin-dir",
    "verbose",
    "help",
    "output",
];

/// Loads the plugin library at `path`.
pub fn load(path: &Path) -> Result<LoadedPlugin, Refusal> {
    let real = discovery::trusted_path(path)?;
    let header = lib_header_from_path(&real).map_err(refusal_of)?;
    let abi_version = header.version_strings().version.to_string();
    let root = header
        .init_root_module::<PluginRoot_Ref>()
        .map_err(refusal_of)?;
    let flow = into_result((root.new_login_flow())())?;
    let description = into_result(flow.describe())?;
    validate(path, &description).map_err(Refusal::InvalidDescription)?;
    Ok(LoadedPlugin {
        path: path.to_owned(),
        abi_version,
        description,
        flow,
    })
}

fn into_result<T>(result: RResult<T, PluginError>) -> Result<T, Refusal> {
    result.into_result().map_err(Refusal::Failed)
}

fn refusal_of(error: LibraryError) -> Refusal {
    tracing::debug!(target: "exo::plugins", "loader error: {error}");
    match error {
        LibraryError::OpenError { err, .. } => Refusal::NotALibrary(err.to_string()),
        LibraryError::GetSymbolError { .. } => Refusal::NoRootModule,
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => Refusal::OtherAbiMajor {
            found: actual_version.to_string(),
            expected: plugin_abi::ABI_MAJOR,
        },
        LibraryError::ParseVersionError(e) => Refusal::OtherAbiMajor {
            found: format!("an unreadable version ({e})"),
            expected: plugin_abi::ABI_MAJOR,
        },
        LibraryError::AbiInstability(_) => Refusal::IncompatibleLayout,
        LibraryError::InvalidAbiHeader(header) => {
            Refusal::IncompatibleAbiStable(format!("{header:?}"))
        }
        LibraryError::InvalidCAbi { expected, found } => {
            Refusal::IncompatibleAbiStable(format!("C ABI {found}, expected {expected}"))
        }
        LibraryError::RootModule {
            err: RootModuleError::Unwound,
            ..
        } => Refusal::ConstructorPanicked,
        LibraryError::RootModule {
            err: RootModuleError::Returned(e),
            ..
        } => Refusal::Failed(PluginError {
            kind: plugin_abi::ErrorKind::INTERNAL,
            code: Default::default(),
            message: e.to_string().into(),
            extensions: Default::default(),
        }),
        other => Refusal::Other(other.to_string()),
    }
}

/// Checks what the host relies on: a well-formed method id that matches the file name, and
/// unique, well-formed parameter names that do not shadow `exo connect`'s own options.
fn validate(path: &Path, description: &PluginDescription) -> Result<(), String> {
    let method_id = description.method_id.as_str();
    if !is_kebab_case(method_id) {
        return Err(format!(
            "method id '{method_id}' must be lowercase letters, digits and dashes"
        ));
    }
    let expected_file = discovery::library_file_name(method_id);
    if discovery::method_id_of_file(path).as_deref() != Some(method_id) {
        return Err(format!(
            "a plugin for method '{method_id}' must be named {expected_file}"
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for parameter in description.parameters.iter() {
        let name = parameter.name.as_str();
        if !is_kebab_case(name) {
            return Err(format!(
                "parameter name '{name}' must be lowercase letters, digits and dashes"
            ));
        }
        let option = if parameter.secret {
            format!("{name}-file")
        } else {
            name.to_owned()
        };
        if RESERVED_PARAMETERS.contains(&option.as_str()) {
            return Err(format!(
                "parameter --{option} would shadow exo's own option"
            ));
        }
        if seen.contains(&option) {
            return Err(format!("parameter --{option} is declared twice"));
        }
        seen.push(option);
    }
    Ok(())
}

fn is_kebab_case(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every plugin found on the search path, and every library refused.
#[derive(Default)]
pub struct Catalog {
    /// Working plugins, in search order.
    pub plugins: Vec<LoadedPlugin>,
    /// Refused libraries with the reason.
    pub refused: Vec<(PathBuf, Refusal)>,
}

/// Loads every plugin in `dirs`. When two provide the same method, the first wins.
pub fn load_all(dirs: &[PluginDir]) -> Catalog {
    let mut catalog = Catalog::default();
    let mut providers: HashMap<String, PathBuf> = HashMap::new();
    for dir in dirs {
        let libraries = match discovery::libraries_in(&dir.path) {
            Ok(libraries) => libraries,
            Err(e) => {
                tracing::warn!(target: "exo::plugins", "cannot list {}: {e}", dir.path.display());
                continue;
            }
        };
        for path in libraries {
            // A second library for a method already provided is refused without loading it.
            if let Some(method_id) = discovery::method_id_of_file(&path)
                && let Some(first) = providers.get(&method_id)
            {
                let refusal = Refusal::Duplicate {
                    method_id,
                    first: first.clone(),
                };
                catalog.refused.push((path, refusal));
                continue;
            }
            // The first library named for a method claims it, even when refused: `exo connect`
            // loads exactly that one, and the listing must say the same.
            if let Some(method_id) = discovery::method_id_of_file(&path) {
                providers.insert(method_id, path.clone());
            }
            match load(&path) {
                Ok(plugin) => catalog.plugins.push(plugin),
                Err(refusal) => catalog.refused.push((path, refusal)),
            }
        }
    }
    catalog
}

/// Why the plugin for a method could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// No directory has it.
    #[error("no plugin provides login method '{method_id}' (looked in: {searched}){available}")]
    NotFound {
        /// The method asked for.
        method_id: String,
        /// The directories searched.
        searched: String,
        /// `; available: …` or empty.
        available: String,
    },
    /// The library was found but refused.
    #[error("refused {}: {refusal}", .path.display())]
    Refused {
        /// The library.
        path: PathBuf,
        /// Why.
        refusal: Box<Refusal>,
    },
}

/// Loads only the plugin for `method_id`: the first library of that name on the search path.
pub fn load_method(dirs: &[PluginDir], method_id: &str) -> Result<LoadedPlugin, FindError> {
    let file_name = discovery::library_file_name(method_id);
    let found = dirs
        .iter()
        .map(|dir| dir.path.join(&file_name))
        .find(|path| path.is_file());
    match found {
        Some(path) => load(&path).map_err(|refusal| FindError::Refused {
            path,
            refusal: Box::new(refusal),
        }),
        None => Err(FindError::NotFound {
            method_id: method_id.to_owned(),
            searched: dirs
                .iter()
                .map(|d| d.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            available: available_methods(dirs),
        }),
    }
}

/// `; available: a, b` from the file names on the search path, without loading anything.
fn available_methods(dirs: &[PluginDir]) -> String {
    let mut methods: Vec<String> = dirs
        .iter()
        .flat_map(|dir| discovery::libraries_in(&dir.path).unwrap_or_default())
        .filter_map(|path| discovery::method_id_of_file(&path))
        .collect();
    methods.sort();
    methods.dedup();
    if methods.is_empty() {
        "; no plugins are installed (cargo xtask build puts them next to exo)".to_owned()
    } else {
        format!("; available: {}", methods.join(", "))
    }
}

#[cfg(test)]
mod tests;
