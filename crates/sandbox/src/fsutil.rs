//! Private files and directories: everything the sandbox writes may hold a secret (keys, the
//! App Service / Service Fabric `identity_header` in `sandbox.json`, Arc challenge secrets) or
//! tenant data, so directories it creates are mode 0700 and files 0600 (on Unix; elsewhere the
//! platform's defaults apply). Files are replaced atomically: written to a unique temporary
//! file in the same directory, synced, then renamed over the target, so a reader (or a crash)
//! sees either the old or the new content, never a torn write.
//!
//! These are blocking calls: from async code, run them in `tokio::task::spawn_blocking`.

use std::io::Write as _;
use std::path::Path;

/// Creates `dir` and any missing parents, each new one mode 0700. Existing directories are
/// left as they are (they may be the user's own).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` (which must not exist) with mode 0600 and writes `contents`.
pub(crate) fn create_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Atomically replaces `path` with `contents` (mode 0600), creating its directory (0700) if
/// needed.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::state::random_token(6)));
    let written = create_private_file(&tmp, contents).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests;
