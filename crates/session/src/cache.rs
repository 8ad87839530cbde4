//! The token cache: every connection and its tokens, in one encrypted file shared by all `exo`
//! processes of the user.
//!
//! Layout, in the state directory (`$XDG_STATE_HOME/exo`, mode 0700):
//! - `cache`: `EXOC` · format version · key location · 96-bit nonce · AES-256-GCM ciphertext
//!   of the JSON [`Contents`] (the first six bytes are authenticated too); mode 0600;
//! - `cache.key`: the 256-bit key when it is kept in a file (see [`crate::keys`]); mode 0600;
//! - `cache.lock`: the lock file.
//!
//! The folder and every file in it must be the user's alone ([`crate::private`]): one that
//! another user owns or could write is refused before anything is read from it.
//!
//! Invariants: every read-modify-write holds an exclusive lock on `cache.lock` from the read to
//! the rename; writes go to a temporary file that is synced and renamed over `cache`, so a
//! crash leaves the old or the new cache, never half of one; a cache that cannot be read is
//! reported and left untouched; no operation but an explicit reset discards connections.

use std::fs::File;
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
/// The format written. Format 2 added legacy connections (their transport, shell and secrets
/// kept in the keyring): an older exo must not take such a connection for another kind.
const FORMAT_VERSION: u8 = 2;
/// The formats read: 1 holds nothing format 2 cannot.
const READABLE_FORMATS: [u8; 2] = [1, FORMAT_VERSION];
const HEADER_LEN: usize = MAGIC.len() + 2;
const CACHE_FILE: &str = "cache";
const LOCK_FILE: &str = "cache.lock";
/// How long to wait for another `exo` process to release the cache lock (held only for reads
/// and writes of the file).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for another `exo` process renewing the same connection (a network call).
const RENEWAL_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// The id of its open remote PowerShell shell, for a legacy connection: later commands
    /// reuse it rather than open one each (the server allows a user only a few).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_shell: Option<String>,
    /// For a connection that sends its password, the last one the server refused: it is not
    /// sent again (each try counts towards locking the account) until its file changes or the
    /// user connects again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_password: Option<RefusedPassword>,
}

/// A password the server refused, as [`Entry::refused_password`] keeps it (never the password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedPassword {
    /// When, seconds since the Unix epoch.
    pub at: i64,
    /// Its file as it was then; `None` for a source that cannot change without connecting
    /// again (a variable is the script's, the keyring's entry is exo's).
    pub file: Option<FileStamp>,
}

/// What a file looked like: another size, time or inode means other contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    /// Its inode (0 where there is none).
    pub inode: u64,
}

impl FileStamp {
    /// The stamp of `metadata`.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            len: metadata.len(),
            modified_ns: metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            inode,
        }
    }
}

impl CacheError {
    /// Whether the cache itself cannot be opened (damaged, or its key out of reach), as
    /// opposed to a failure of the moment.
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self,
            Self::Damaged { .. } | Self::Keyring(_) | Self::KeyExposed { .. }
        )
    }
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

    /// The connection that has `prefix` (compared without case), if any.
    pub fn prefix_owner(&self, prefix: Option<&str>) -> Option<&Entry> {
        let prefix = prefix?;
        self.entries.iter().find(|e| {
            e.connection
                .prefix
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        })
    }

    /// Adds a connection, giving it the next number; returns that number. Refuses a prefix
    /// another connection already has: a prefix must name one connection.
    pub fn add(&mut self, mut entry: Entry) -> Result<u32, PrefixTaken> {
        if let Some(owner) = self.prefix_owner(entry.connection.prefix.as_deref()) {
            return Err(PrefixTaken {
                name: owner.connection.name(),
                who: owner.connection.who().to_owned(),
            });
        }
        self.next_number = self.next_number.max(1);
        entry.connection.number = self.next_number;
        self.next_number += 1;
        self.entries.push(entry);
        Ok(self.next_number - 1)
    }
}

/// A new connection asked for a prefix that another connection has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the prefix is already used by {name} ({who})")]
pub struct PrefixTaken {
    /// The other connection's name.
    pub name: String,
    /// Its account.
    pub who: String,
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
        "the token cache {} cannot be read: {reason}; it was left untouched",
        .path.display()
    )]
    Damaged {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A state folder or file that another user owns or could write.
    #[error(
        "refusing {}: {exposure}, and exo's state must be yours alone, like an SSH private key",
        .path.display()
    )]
    Untrusted {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong with it.
        exposure: crate::private::Exposure,
    },
    /// The key is not private.
    #[error("the token cache key {} is readable or writable by others (mode {mode:o})", .path.display())]
    KeyExposed {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The cryptography library failed.
    #[error("cannot protect the token cache: {0}")]
    Crypto(&'static str),
    /// The OS keyring failed.
    #[error("the OS keyring that keeps the token cache's key failed: {0}")]
    Keyring(String),
    /// Another process holds a lock too long.
    #[error(
        "another exo process has held {} for {}s; if none is running, delete that file",
        .lock.display(),
        .waited.as_secs()
    )]
    Busy {
        /// The lock file.
        lock: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
}

/// The token cache in a state directory.
pub struct Store {
    dir: PathBuf,
    keys: Keys,
    lock_timeout: Duration,
}

impl Store {
    /// The cache in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Self {
        let keys = Keys::new(&dir);
        Self {
            dir,
            keys,
            lock_timeout: LOCK_TIMEOUT,
        }
    }

    /// The same store, waiting at most `timeout` for the cache lock.
    pub fn with_lock_timeout(self, timeout: Duration) -> Self {
        Self {
            lock_timeout: timeout,
            ..self
        }
    }

    /// The default state directory: `$XDG_STATE_HOME/exo` on Linux, the local data directory
    /// elsewhere.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| d.join("exo"))
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        // The key this process read earlier may have been deleted since (the last connection
        // went) or replaced: what is written under the lock is sealed with the key as it is now.
        self.keys.forget();
        let contents = self.load()?;
        Ok(Locked {
            store: self,
            contents,
            _lock: lock,
        })
    }

    /// Moves an unreadable cache aside (`cache.damaged-<unix time>`) and returns where it went.
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

    async fn acquire(&self, mode: LockMode) -> Result<File, CacheError> {
        lock_file(
            &self.dir,
            &self.dir.join(LOCK_FILE),
            mode,
            self.lock_timeout,
        )
        .await
    }

    /// Takes the renewal lock of connection `id`: one renewal of a connection at a time across
    /// processes, while the cache itself stays free for everyone else.
    pub async fn lock_renewal(&self, id: Uuid) -> Result<File, CacheError> {
        lock_file(
            &self.dir,
            &self.renewal_lock(id),
            LockMode::Exclusive,
            RENEWAL_LOCK_TIMEOUT,
        )
        .await
    }

    fn renewal_lock(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("renew-{id}.lock"))
    }

    /// Takes the shell lock of legacy connection `id`, waiting at most `timeout`: one process at
    /// a time opens the connection's remote PowerShell shell, so that others reuse it instead of
    /// opening their own (the server allows a user only a few).
    pub async fn lock_shell(&self, id: Uuid, timeout: Duration) -> Result<File, CacheError> {
        lock_file(
            &self.dir,
            &self.dir.join(format!("shell-{id}.lock")),
            LockMode::Exclusive,
            timeout,
        )
        .await
    }

    fn load(&self) -> Result<Contents, CacheError> {
        let path = self.path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        trusted(&path, file.metadata())?;
        let mut bytes = Zeroizing::new(Vec::new());
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| CacheError::Io {
            path: path.clone(),
            source,
        })?;
        let damaged = |reason: &str| CacheError::Damaged {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if bytes.len() < HEADER_LEN + NONCE_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(damaged("it is not an exo token cache"));
        }
        if !READABLE_FORMATS.contains(&bytes[MAGIC.len()]) {
            return Err(damaged(&format!(
                "it has format {}, this exo reads formats up to {FORMAT_VERSION} (a newer exo \
                 wrote it)",
                bytes[MAGIC.len()]
            )));
        }
        let location = KeyLocation::from_byte(bytes[MAGIC.len() + 1])
            .ok_or_else(|| damaged("it names an unknown key location"))?;
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| damaged("its nonce is malformed"))?;
        // The key this process remembers may be one that another process has since replaced
        // (the last connection went, a new one came): on failure it is read again, once.
        for fresh in [false, true] {
            if fresh {
                self.keys.forget();
            }
            let key = self.keys.load(location)?.ok_or_else(|| {
                damaged(&format!(
                    "its key ({}) is missing",
                    self.keys.describe_location(location)
                ))
            })?;
            let mut plaintext = Zeroizing::new(ciphertext.to_vec());
            if let Ok(opened) = cipher(&key).open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut plaintext,
            ) {
                return serde_json::from_slice(opened)
                    .map_err(|e| damaged(&format!("its content is not valid ({e})")));
            }
        }
        Err(damaged(
            "it does not decrypt with its key (damaged, or the key was replaced)",
        ))
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
            self.prune_renewal_locks(contents);
            return self.keys.delete_all();
        }
        let (location, key) = self.keys.load_or_create()?;
        let mut header = Vec::with_capacity(HEADER_LEN + NONCE_LEN);
        header.extend_from_slice(MAGIC);
        header.push(FORMAT_VERSION);
        header.push(location.to_byte());
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| CacheError::Crypto("no randomness available"))?;
        // Serializing plain data structs with string keys cannot fail.
        let mut sealed =
            Zeroizing::new(serde_json::to_vec(contents).expect("the cache serializes"));
        cipher(&key)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..]),
                &mut *sealed,
            )
            .map_err(|_| CacheError::Crypto("encryption failed"))?;
        let mut bytes = header;
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        atomic_write(&self.dir, &path, &bytes).map_err(|source| CacheError::Io { path, source })?;
        self.prune_renewal_locks(contents);
        Ok(())
    }

    /// Removes the renewal and shell locks of connections that are gone (best effort: they are
    /// empty).
    fn prune_renewal_locks(&self, contents: &Contents) {
        let Ok(files) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(id) = name.to_str().and_then(|n| {
                n.strip_prefix("renew-")
                    .or_else(|| n.strip_prefix("shell-"))?
                    .strip_suffix(".lock")
            }) else {
                continue;
            };
            if id
                .parse::<Uuid>()
                .is_ok_and(|id| contents.get(id).is_none())
            {
                let _ = std::fs::remove_file(file.path());
            }
        }
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

/// Locks `path` (created in `dir` if needed) in `mode`, waiting up to `timeout` for others.
async fn lock_file(
    dir: &Path,
    path: &Path,
    mode: LockMode,
    timeout: Duration,
) -> Result<File, CacheError> {
    crate::private::create_dir(dir).map_err(|source| CacheError::Io {
        path: dir.to_owned(),
        source,
    })?;
    trusted(dir, std::fs::metadata(dir))?;
    let io = |source| CacheError::Io {
        path: path.to_owned(),
        source,
    };
    let file = crate::private::open_file(path, false).map_err(io)?;
    trusted(path, file.metadata())?;
    let started = Instant::now();
    loop {
        let attempt = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CacheError::Busy {
                    lock: path.to_owned(),
                    waited: timeout,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
    }
}

/// Refuses a state folder or file (whose `metadata` was just read) that another user owns or
/// could write.
pub(crate) fn trusted(
    path: &Path,
    metadata: std::io::Result<std::fs::Metadata>,
) -> Result<(), CacheError> {
    let metadata = metadata.map_err(|source| CacheError::Io {
        path: path.to_owned(),
        source,
    })?;
    crate::private::check(&metadata).map_err(|exposure| CacheError::Untrusted {
        path: path.to_owned(),
        exposure,
    })
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
        let mut file = crate::private::open_file(&temporary, true)?;
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

#[cfg(test)]
pub(crate) mod tests;
