//! What every command shares: the plugin search path, the HTTP clients, the token cache and
//! the cancellation flag.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use session::cache::Store;

use crate::cli::GlobalArgs;
use crate::discovery::{self, DirOrigin, PluginDir};
use crate::http::Clients;

/// The environment variable that overrides the state directory (where the token cache is).
pub const STATE_DIR_VAR: &str = "EXO_STATE_DIR";

/// Shared by the commands of one `exo` process.
pub struct Context {
    /// Where plugins are looked for.
    pub plugin_dirs: Vec<PluginDir>,
    /// HTTP clients, one per trust setting.
    pub clients: Clients,
    /// The token cache.
    pub store: Store,
    /// Set on Ctrl-C.
    pub cancelled: Arc<AtomicBool>,
}

impl Context {
    /// This context with `dirs` searched for plugins first (a `--plugin-dir` given after a
    /// cmdlet name).
    pub fn with_plugin_dirs(&self, dirs: &[String]) -> Self {
        let mut plugin_dirs: Vec<PluginDir> = dirs
            .iter()
            .map(|d| PluginDir {
                path: d.into(),
                origin: DirOrigin::Flag,
            })
            .collect();
        for dir in &self.plugin_dirs {
            if !plugin_dirs.iter().any(|d| d.path == dir.path) {
                plugin_dirs.push(dir.clone());
            }
        }
        Self {
            plugin_dirs,
            clients: Clients::default(),
            store: Store::new(self.store.dir().to_owned()),
            cancelled: self.cancelled.clone(),
        }
    }

    /// The context for `global`.
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Self> {
        let state_dir = match std::env::var_os(STATE_DIR_VAR) {
            Some(dir) => dir.into(),
            None => Store::default_dir()
                .context("cannot find a state directory for the token cache; set EXO_STATE_DIR")?,
        };
        // Absolute, so that the same cache is the same cache from any working directory (the
        // keyring entry of its key is named after it).
        let state_dir = std::path::absolute(&state_dir).unwrap_or(state_dir);
        tracing::debug!(target: "exo::context", "token cache in {}", state_dir.display());
        let plugin_dirs = discovery::search_path(&global.plugin_dir);
        for dir in &plugin_dirs {
            tracing::debug!(target: "exo::context", "plugins in {} ({})", dir.path.display(), dir.origin);
        }
        Ok(Self {
            plugin_dirs,
            clients: Clients::default(),
            store: Store::new(state_dir),
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    }
}
