//! exo's state on disk is the user's alone, like an SSH private key: folders are created 0700
//! and files 0600, and a state folder or file that another user owns, or that group or others
//! could write, is refused (the rule exo applies to plugin folders). Otherwise someone who can
//! write the state folder could plant a cache and key of their own and receive the tokens exo
//! renews for it.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Why a state folder or file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exposure {
    /// Another user (not root) owns it.
    #[error("another user (uid {0}) owns it")]
    ForeignOwner(u32),
    /// Group or others may write it.
    #[error("group or others can write it (mode {0:04o})")]
    Writable(u32),
    /// It is a symbolic link, a pipe or anything else than what exo keeps there.
    #[error("it is not a plain {0}")]
    NotPlain(&'static str),
}

/// Checks `metadata` of a state folder or file against the rule: owned by the current user or
/// root, not writable by group or others.
#[cfg(unix)]
pub fn check(metadata: &std::fs::Metadata) -> Result<(), Exposure> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me && metadata.uid() != 0 {
        return Err(Exposure::ForeignOwner(metadata.uid()));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Exposure::Writable(mode));
    }
    Ok(())
}

/// On Windows, the profile folder's ACLs decide who may write.
#[cfg(not(unix))]
pub fn check(_: &std::fs::Metadata) -> Result<(), Exposure> {
    Ok(())
}

/// Opens the state file `path` to read it, without following a symbolic link and without
/// waiting on a pipe; `None` when it does not exist. Its kind, owner and mode are checked.
pub fn open_existing(path: &Path) -> std::io::Result<Option<Result<File, Exposure>>> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(Some(Err(Exposure::NotPlain("file"))));
        }
        Err(e) => return Err(e),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Ok(Some(Err(Exposure::NotPlain("file"))));
    }
    Ok(Some(check(&metadata).map(|()| file)))
}

/// Checks the state folder `dir` (not a symbolic link, the user's, not writable by others);
/// false when it does not exist.
pub fn check_dir(dir: &Path) -> std::io::Result<Result<bool, Exposure>> {
    let metadata = match std::fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(false)),
        Err(e) => return Err(e),
    };
    if !metadata.is_dir() {
        return Ok(Err(Exposure::NotPlain("folder")));
    }
    Ok(check(&metadata).map(|()| true))
}

/// Opens (or with `new`, creates exclusively) a file only the owner can read and write.
pub fn open_file(path: &Path, new: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates `dir` (and parents) so that only the owner can enter it.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn folders_and_files_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        create_dir(&state).unwrap();
        assert_eq!(check(&std::fs::metadata(&state).unwrap()), Ok(()));
        for mode in [0o770, 0o757, 0o1777] {
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                check(&std::fs::metadata(&state).unwrap()),
                Err(Exposure::Writable(mode))
            );
        }
        let file = state.join("cache");
        open_file(&file, true).unwrap();
        assert_eq!(check(&std::fs::metadata(&file).unwrap()), Ok(()));
    }
}
