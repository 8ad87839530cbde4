//! Where the token cache's key is kept.
//!
//! The key is 256 random bits, created with the first connection and deleted with the last.
//! It lives in `cache.key` next to the cache, mode 0600 in a 0700 directory: the same
//! protection as `~/.ssh/id_*`. A key file that others can read or write is refused. The cache
//! header records the key's location, so that other locations (an OS keyring) can be added
//! without breaking existing caches.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::cache::{CacheError, private_file};

const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;

/// A key, zeroized on drop.
pub type Key = Zeroizing<[u8; KEY_LEN]>;

/// Where a cache's key is kept; recorded in the cache header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLocation {
    /// `cache.key` next to the cache.
    File,
}

impl KeyLocation {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::File => 1,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        (byte == 1).then_some(Self::File)
    }
}

/// The key of the cache in one state directory.
pub struct Keys {
    file: PathBuf,
}

impl Keys {
    /// The key of the cache in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            file: dir.join(KEY_FILE),
        }
    }

    /// Where keys are kept, for messages and docs.
    pub fn describe(&self) -> String {
        self.describe_location(KeyLocation::File)
    }

    /// Where `location` is, for messages.
    pub fn describe_location(&self, location: KeyLocation) -> String {
        match location {
            KeyLocation::File => format!("the key file {}", self.file.display()),
        }
    }

    /// The key at `location`, or `None` when it does not exist.
    pub fn load(&self, location: KeyLocation) -> Result<Option<Key>, CacheError> {
        match location {
            KeyLocation::File => self.load_file(),
        }
    }

    /// The current key, created if there is none.
    pub fn load_or_create(&self) -> Result<(KeyLocation, Key), CacheError> {
        if let Some(key) = self.load_file()? {
            return Ok((KeyLocation::File, key));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(&mut key[..])
            .map_err(|_| CacheError::Keyring("no randomness available".into()))?;
        let io = |source| CacheError::Io {
            path: self.file.clone(),
            source,
        };
        let mut file = private_file(&self.file, true).map_err(io)?;
        file.write_all(&key[..])
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok((KeyLocation::File, key))
    }

    /// Deletes every key.
    pub fn delete_all(&self) -> Result<(), CacheError> {
        match std::fs::remove_file(&self.file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CacheError::Io {
                path: self.file.clone(),
                source,
            }),
        }
    }

    fn load_file(&self) -> Result<Option<Key>, CacheError> {
        let io = |source| CacheError::Io {
            path: self.file.clone(),
            source,
        };
        let mut file = match std::fs::File::open(&self.file) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CacheError::KeyExposed {
                    path: self.file.clone(),
                    mode,
                });
            }
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(&mut key[..]).map_err(io)?;
        Ok(Some(key))
    }
}
