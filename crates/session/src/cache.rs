//! The token cache: every connection and its tokens, in one encrypted file shared by all `exo`
//! processes of the user.
//!
//! Layout, in the state directory (`$XDG_STATE_HOME/exo`, mode 0700):
//! - `cache`: `EXOC` · format version · key location · 96-bit nonce · AES-256-GCM ciphertext
//!   of the JSON [`Contents`] (the first six bytes are authenticated too); mode 0600;
//! - `cache.key`: the 256-bit key when it is kept in a file (see [`crate::keys`]); mode 0600;
//! - `cache.lock`: the lock file.
//!
//! Invariants: every read-modify-write holds an exclusive lock on `cache.lock` from the read to
//! the rename; writes go to a temporary file that is synced and renamed over `cache`, so a
//! crash leaves the old or the new cache, never half of one; a cache that cannot be read is
//! reported and left untouched; no operation but an explicit reset discards connections.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::connection::{Connection, Tokens};
use crate::keys::{KeyLocation, Keys};

const MAGIC: &[u8; 4] = b"EXOC";
const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 2;
const CACHE_FILE: &str = "cache";
const LOCK_FILE: &str = "cache.lock";
/// How long to wait for another `exo` process to release the lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything in the cache.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Contents {
    /// The number the next connection gets (`Id`).
    pub next_number: u32,
    /// The connections, oldest first.
    pub entries: Vec<Entry>,
}

/// A connection and its tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The connection.
    pub connection: Connection,
    /// Its tokens.
    pub tokens: Tokens,
}

impl Contents {
    /// The entry of connection `id`.
    pub fn get(&self, id: Uuid) -> Option<&Entry> {
        self.entries.iter().find(|e| e.connection.id == id)
    }

    /// The entry of connection `id`, mutably.
    pub fn get_mut(&mut self, id: Uuid) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.connection.id == id)
    }

    /// Adds a connection, giving it the next number; returns that number.
    pub fn add(&mut self, mut entry: Entry) -> u32 {
        self.next_number = self.next_number.max(1);
        entry.connection.number = self.next_number;
        self.next_number += 1;
        self.entries.push(entry);
        self.next_number - 1
    }
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file operation failed.
    #[error("cannot use {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The cache cannot be decrypted or parsed.
    #[error(
        "the token cache {} cannot be read: {reason}. exo left it untouched; \
         `exo disconnect --all` moves it aside and starts a new one (its connections are lost)",
        .path.display()
    )]
    Damaged {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key is not private.
    #[error("the token cache key {} is readable or writable by others (mode {mode:o}); run `chmod 600 {}`", .path.display(), .path.display())]
    KeyExposed {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The OS keyring failed.
    #[error("the OS keyring that keeps the token cache's key failed: {0}")]
    Keyring(String),
    /// Another process holds the lock too long.
    #[error(
        "the token cache has been locked by another exo process for {}s; if none is running, delete {}",
        LOCK_TIMEOUT.as_secs(),
        .lock.display()
    )]
    Busy {
        /// The lock file.
        lock: PathBuf,
    },
}

/// The token cache in a state directory.
pub struct Store {
    dir: PathBuf,
    keys: Keys,
}

impl Store {
    /// The cache in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Self {
        let keys = Keys::new(&dir);
        Self { dir, keys }
    }

    /// The default state directory: `$XDG_STATE_HOME/exo` on Linux, the local data directory
    /// elsewhere.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| d.join("exo"))
    }

    /// The cache file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }

    /// Reads the cache under a shared lock. A missing cache is empty.
    pub async fn read(&self) -> Result<Contents, CacheError> {
        let _lock = self.acquire(LockMode::Shared).await?;
        self.load()
    }

    /// Locks the cache for a read-modify-write and reads it.
    pub async fn lock(&self) -> Result<Locked<'_>, CacheError> {
        let lock = self.acquire(LockMode::Exclusive).await?;
        let contents = self.load()?;
        Ok(Locked {
            store: self,
            contents,
            _lock: lock,
        })
    }

    /// Moves a damaged cache aside (`cache.damaged-<unix time>`) and returns where it went.
    pub async fn move_damaged_aside(&self) -> Result<Option<PathBuf>, CacheError> {
        let _lock = self.acquire(LockMode::Exclusive).await?;
        let path = self.path();
        if !path.exists() {
            return Ok(None);
        }
        let aside = self
            .dir
            .join(format!("{CACHE_FILE}.damaged-{}", crate::connection::now()));
        std::fs::rename(&path, &aside).map_err(|source| CacheError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Some(aside))
    }

    fn ensure_dir(&self) -> Result<(), CacheError> {
        create_private_dir(&self.dir).map_err(|source| CacheError::Io {
            path: self.dir.clone(),
            source,
        })
    }

    async fn acquire(&self, mode: LockMode) -> Result<File, CacheError> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK_FILE);
        let file = private_file(&path, false).map_err(|source| CacheError::Io {
            path: path.clone(),
            source,
        })?;
        let started = Instant::now();
        loop {
            let attempt = match mode {
                LockMode::Shared => file.try_lock_shared(),
                LockMode::Exclusive => file.try_lock(),
            };
            match attempt {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(CacheError::Busy { lock: path });
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(CacheError::Io { path, source });
                }
            }
        }
    }

    fn load(&self) -> Result<Contents, CacheError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let damaged = |reason: &str| CacheError::Damaged {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if bytes.len() < HEADER_LEN + NONCE_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(damaged("it is not an exo token cache"));
        }
        if bytes[MAGIC.len()] != FORMAT_VERSION {
            return Err(damaged(&format!(
                "it has format {}, this exo reads format {FORMAT_VERSION}",
                bytes[MAGIC.len()]
            )));
        }
        let location = KeyLocation::from_byte(bytes[MAGIC.len() + 1])
            .ok_or_else(|| damaged("it names an unknown key location"))?;
        let key = self.keys.load(location)?.ok_or_else(|| {
            damaged(&format!(
                "its key ({}) is missing",
                self.keys.describe_location(location)
            ))
        })?;
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| damaged("its nonce is malformed"))?;
        let opened = cipher(&key)
            .open_in_place(nonce, Aad::from(header), &mut plaintext)
            .map_err(|_| {
                damaged("it does not decrypt with its key (damaged, or the key was replaced)")
            })?;
        serde_json::from_slice(opened)
            .map_err(|e| damaged(&format!("its content is not valid ({e})")))
    }

    fn save(&self, contents: &Contents) -> Result<(), CacheError> {
        let path = self.path();
        if contents.entries.is_empty() {
            // Nothing left to protect: remove every trace, the key included.
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CacheError::Io { path, source }),
            }
            return self.keys.delete_all();
        }
        let (location, key) = self.keys.load_or_create()?;
        let mut header = Vec::with_capacity(HEADER_LEN + NONCE_LEN);
        header.extend_from_slice(MAGIC);
        header.push(FORMAT_VERSION);
        header.push(location.to_byte());
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| CacheError::Keyring("no randomness available".into()))?;
        let mut sealed =
            Zeroizing::new(
                serde_json::to_vec(contents).map_err(|e| CacheError::Damaged {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            );
        cipher(&key)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..]),
                &mut *sealed,
            )
            .map_err(|_| CacheError::Keyring("encryption failed".into()))?;
        let mut bytes = header;
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        atomic_write(&self.dir, &path, &bytes).map_err(|source| CacheError::Io { path, source })
    }
}

/// The cache, locked for a read-modify-write.
pub struct Locked<'a> {
    store: &'a Store,
    contents: Contents,
    _lock: File,
}

impl Locked<'_> {
    /// What the cache holds.
    pub fn contents(&mut self) -> &mut Contents {
        &mut self.contents
    }

    /// Writes the cache and releases the lock. Dropping without saving changes nothing.
    pub fn save(self) -> Result<(), CacheError> {
        self.store.save(&self.contents)
    }
}

enum LockMode {
    Shared,
    Exclusive,
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key fits AES-256-GCM"))
}

/// Writes `bytes` to a temporary file in `dir`, syncs it, and renames it over `path`.
fn atomic_write(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!(
        ".{CACHE_FILE}.{}.{}",
        std::process::id(),
        Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = private_file(&temporary, true)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Opens (or with `new`, creates exclusively) a file only the owner can read and write.
pub(crate) fn private_file(path: &Path, new: bool) -> std::io::Result<File> {
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
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
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
pub(crate) mod tests;
