//! Where plugins are looked for, what their files are called, and which files are trusted.
//!
//! Search order (the first directory that provides a method wins):
//! 1. `--plugin-dir DIR` (repeatable), in the order given;
//! 2. `EXO_PLUGIN_PATH`, a path list (`:` separated, `;` on Windows);
//! 3. the `plugins/` folder next to the `exo` executable (where `cargo xtask build` puts them);
//! 4. the user's data directory: `$XDG_DATA_HOME/exo/plugins` (Linux),
//!    `~/Library/Application Support/exo/plugins` (macOS), `%APPDATA%\exo\plugins` (Windows).
//!
//! A plugin for method `foo-bar` is the library `libfoo_bar.so` (`libfoo_bar.dylib`,
//! `foo_bar.dll`): the host can then load only the plugin a connection needs. Other files in a
//! plugin directory are ignored.
//!
//! Architecture invariant: a library is loaded only from a file and folders that no other user
//! can write (owned by the current user or root, not writable by group or others), and by its
//! resolved path, so that a symlink cannot be swapped between the check and the load. Loading
//! code runs it; a writable plugin folder would let another user run code as you.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a plugin directory is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirOrigin {
    /// `--plugin-dir`.
    Flag,
    /// `EXO_PLUGIN_PATH`.
    EnvVar,
    /// Next to the executable.
    Bundled,
    /// The user's data directory.
    UserData,
}

impl fmt::Display for DirOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flag => "--plugin-dir",
            Self::EnvVar => "EXO_PLUGIN_PATH",
            Self::Bundled => "bundled",
            Self::UserData => "user data dir",
        })
    }
}

/// One directory of the search path.
#[derive(Clone, Debug)]
pub struct PluginDir {
    /// The directory.
    pub path: PathBuf,
    /// Why it is searched.
    pub origin: DirOrigin,
}

/// The environment variable holding extra plugin directories.
pub const PLUGIN_PATH_VAR: &str = "EXO_PLUGIN_PATH";

/// The directories to search, in order, without duplicates. Directories that do not exist are
/// kept (so that messages can say where exo looked) and skipped when listing.
pub fn search_path(flag_dirs: &[PathBuf]) -> Vec<PluginDir> {
    let mut dirs: Vec<PluginDir> = Vec::new();
    let mut add = |path: PathBuf, origin| {
        if !path.as_os_str().is_empty() && !dirs.iter().any(|d| d.path == path) {
            dirs.push(PluginDir { path, origin });
        }
    };
    flag_dirs
        .iter()
        .for_each(|d| add(d.clone(), DirOrigin::Flag));
    if let Some(list) = std::env::var_os(PLUGIN_PATH_VAR) {
        std::env::split_paths(&list).for_each(|d| add(d, DirOrigin::EnvVar));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        add(dir.join("plugins"), DirOrigin::Bundled);
    }
    if let Some(data) = dirs::data_dir() {
        add(data.join("exo").join("plugins"), DirOrigin::UserData);
    }
    dirs
}

/// The library file name of the plugin for `method_id`, e.g. `libaccess_token.so`.
pub fn library_file_name(method_id: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        method_id.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// The method id a library file name stands for, if it is named like a plugin.
pub fn method_id_of_file(path: &Path) -> Option<String> {
    let name = path.file_name().and_then(OsStr::to_str)?;
    let stem = name
        .strip_prefix(std::env::consts::DLL_PREFIX)?
        .strip_suffix(std::env::consts::DLL_SUFFIX)?;
    (!stem.is_empty()).then(|| stem.replace('_', "-"))
}

/// The plugin libraries in `dir`, sorted by name. A missing directory has none.
pub fn libraries_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut libraries = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if method_id_of_file(&path).is_some() {
            libraries.push(path);
        }
    }
    libraries.sort();
    Ok(libraries)
}

/// Why a file may not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    /// Group or others may write it.
    #[error(
        "the {what} {path} is writable by group or others (mode {mode:o}); run `chmod go-w {path}`"
    )]
    Writable {
        /// `file` or `folder`.
        what: &'static str,
        /// Which one.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Someone else owns it.
    #[error("the {what} {path} is owned by user id {owner}, not by you or root")]
    ForeignOwner {
        /// `file` or `folder`.
        what: &'static str,
        /// Which one.
        path: String,
        /// Its owner.
        owner: u32,
    },
    /// It could not be inspected.
    #[error("cannot inspect {path}: {error}")]
    Unreadable {
        /// Which one.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// Checks that no other user can replace the library at `library`, and returns the real path
/// to load (symlinks resolved, so that what was checked is what gets loaded).
///
/// Checked: the folder the library was found in, the library itself (when it is a symlink, the
/// link's owner too), and the real file and its folder. Each must be owned by the current user
/// or root and not writable by group or others.
#[cfg(unix)]
pub fn trusted_path(library: &Path) -> Result<PathBuf, Untrusted> {
    use std::os::unix::fs::MetadataExt as _;

    let unreadable = |path: &Path, error| Untrusted::Unreadable {
        path: path.display().to_string(),
        error,
    };
    let real = library.canonicalize().map_err(|e| unreadable(library, e))?;
    let listed_folder = library.parent().unwrap_or(Path::new("."));
    let listed_folder = listed_folder
        .canonicalize()
        .map_err(|e| unreadable(listed_folder, e))?;
    let real_folder = real.parent().unwrap_or(Path::new("/")).to_owned();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owned_by_trusted = |uid: u32| uid == me || uid == 0;
    let link = std::fs::symlink_metadata(library).map_err(|e| unreadable(library, e))?;
    if link.file_type().is_symlink() && !owned_by_trusted(link.uid()) {
        let path = library.display().to_string();
        return Err(Untrusted::ForeignOwner {
            what: "symlink",
            path,
            owner: link.uid(),
        });
    }
    for (what, path) in [
        ("folder", listed_folder.as_path()),
        ("file", real.as_path()),
        ("folder", real_folder.as_path()),
    ] {
        let metadata = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
        let shown = path.display().to_string();
        if !owned_by_trusted(metadata.uid()) {
            return Err(Untrusted::ForeignOwner {
                what,
                path: shown,
                owner: metadata.uid(),
            });
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Untrusted::Writable {
                what,
                path: shown,
                mode,
            });
        }
    }
    Ok(real)
}

/// On Windows, folder ACLs decide who may write; exo relies on the installer's defaults.
#[cfg(not(unix))]
pub fn trusted_path(library: &Path) -> Result<PathBuf, Untrusted> {
    Ok(library.to_owned())
}

#[cfg(test)]
mod tests;
