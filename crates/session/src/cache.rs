//! The token cache: each connection and its tokens in an encrypted file of its own, shared by
//! every `exo` process of the user. Reading or changing one connection costs the same with
//! one other connection or ten thousand, and processes working on different connections do not
//! wait for each other; only adding and removing connections take the cache lock, briefly.
//!
//! Layout, in the state directory (`$XDG_STATE_HOME/exo`, mode 0700):
//! - `connections/<id>`: one connection ([`Entry`]), sealed (see `sealed.rs`) with its id
//!   authenticated; mode 0600, replaced atomically;
//! - `latest`: the id of the most recent connection, which commands use by default;
//! - `prefixes/<prefix in lower case>`: the id of the connection with that prefix;
//! - `next-number`: the number (`Id`) the next connection gets;
//! - `connections.key`: the 256-bit key when it is kept in a file (see [`crate::keys`]);
//! - `cache.lock` (adding, removing), `entry-<id>.lock` (changing one connection),
//!   `renew-<id>.lock` and `shell-<id>.lock` (see [`Store::lock_renewal`],
//!   [`Store::lock_shell`]);
//! - `cache`: the single file of formats 1 and 2, which held every connection; it is moved into
//!   `connections/` the first time this exo sees it.
//!
//! The pointers (`latest`, `prefixes/`) are hints: a stale one is noticed (the connection it
//! names is gone or has another prefix) and rebuilt from the connection files.
//!
//! The folder and every file in it must be the user's alone ([`crate::private`]): one that
//! another user owns or could write is refused before anything is read from it.
//!
//! Invariants: a connection file is written whole and renamed into place, so a crash leaves
//! the old or the new one; changing a connection holds its own lock from the read to the
//! rename, and removing it holds that lock too, so no write brings back a removed connection;
//! adding reads the key afresh under the cache lock (another process may have deleted it with
//! the last connection); a connection file that cannot be read is reported and left untouched,
//! and the others go on working; no operation but an explicit reset discards connections.

mod sealed;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::connection::{Connection, Tokens};
use crate::keys::{Key, KeyLocation, Keys};

/// The format of a connection file.
const FORMAT_VERSION: u8 = 3;
/// The formats of the single file that held every connection before.
const SINGLE_FILE_FORMATS: [u8; 2] = [1, 2];
const SINGLE_FILE: &str = "cache";
const ENTRIES_DIR: &str = "connections";
const PREFIXES_DIR: &str = "prefixes";
const LATEST_FILE: &str = "latest";
const NEXT_NUMBER_FILE: &str = "next-number";
const LOCK_FILE: &str = "cache.lock";
/// How long to wait for another `exo` process to release the cache lock or a connection's lock
/// (held only while files are read and written).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for another `exo` process renewing the same connection (a network call).
const RENEWAL_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Every connection in the cache.
#[derive(Debug, Default)]
pub struct Contents {
    /// The connections that could be read, oldest first.
    pub entries: Vec<Entry>,
    /// The connection files that could not be.
    pub damaged: Vec<DamagedEntry>,
}

/// A connection file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedEntry {
    /// The connection's id (its file's name).
    pub id: Uuid,
    /// Why it cannot be read (a [`CacheError::Damaged`]'s text).
    pub reason: String,
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
    /// A cache file cannot be decrypted or parsed.
    #[error(
        "the token cache {} cannot be read: {reason}; it was left untouched",
        .path.display()
    )]
    Damaged {
        /// The file.
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
    /// The new connection's prefix is another connection's.
    #[error(transparent)]
    PrefixTaken(#[from] PrefixTaken),
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

/// What opening a connection file found.
enum Opened {
    /// The connection, and the key that opened it (a change is sealed with the same one).
    Entry(Box<Entry>, KeyLocation, Key),
    /// There is no such file.
    Missing,
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

    /// The file of connection `id`.
    pub fn entry_path(&self, id: Uuid) -> PathBuf {
        self.dir.join(ENTRIES_DIR).join(id.to_string())
    }

    /// Every connection, oldest first, and the files that cannot be read. An empty or missing
    /// state directory has none.
    pub async fn read(&self) -> Result<Contents, CacheError> {
        if !self.prepare().await? {
            return Ok(Contents::default());
        }
        let mut contents = Contents::default();
        for id in self.entry_ids()? {
            match self.open_listed(id) {
                Ok(Opened::Entry(entry, ..)) => contents.entries.push(*entry),
                // Removed since the folder was listed.
                Ok(Opened::Missing) => {}
                // One file that cannot be read, whatever the reason, is that connection's problem.
                Err(
                    error @ (CacheError::Damaged { .. }
                    | CacheError::Untrusted { .. }
                    | CacheError::Io { .. }),
                ) => contents.damaged.push(DamagedEntry {
                    id,
                    reason: error.to_string(),
                }),
                Err(error) => return Err(error),
            }
        }
        contents.entries.sort_by_key(|e| e.connection.number);
        Ok(contents)
    }

    /// Connection `id`, if it exists.
    pub async fn get(&self, id: Uuid) -> Result<Option<Entry>, CacheError> {
        if !self.prepare().await? {
            return Ok(None);
        }
        match self.open_entry(id)? {
            Opened::Entry(entry, ..) => Ok(Some(*entry)),
            Opened::Missing => Ok(None),
        }
    }

    /// The most recent connection, if there is one.
    pub async fn latest(&self) -> Result<Option<Entry>, CacheError> {
        if !self.prepare().await? {
            return Ok(None);
        }
        if let Some(id) = self.pointer(&self.dir.join(LATEST_FILE))?
            && let Opened::Entry(entry, ..) = self.open_entry(id)?
        {
            return Ok(Some(*entry));
        }
        // No pointer, or a stale one: what the files say, and the pointer is set right under
        // the cache lock (so that it cannot overwrite a newer connection's), once.
        let _lock = self.global_lock().await?;
        if let Some(id) = self.pointer(&self.dir.join(LATEST_FILE))?
            && let Opened::Entry(entry, ..) = self.open_entry(id)?
        {
            return Ok(Some(*entry));
        }
        let newest = self.newest()?;
        match &newest {
            Some(entry) => self.write_pointer(
                &self.dir.join(LATEST_FILE),
                &entry.connection.id.to_string(),
            )?,
            None => remove_if_present(&self.dir.join(LATEST_FILE))?,
        }
        Ok(newest)
    }

    /// The readable connection with the highest number.
    fn newest(&self) -> Result<Option<Entry>, CacheError> {
        let mut newest: Option<Entry> = None;
        for id in self.entry_ids()? {
            if let Ok(Opened::Entry(entry, ..)) = self.open_listed(id)
                && newest
                    .as_ref()
                    .is_none_or(|n| entry.connection.number > n.connection.number)
            {
                newest = Some(*entry);
            }
        }
        Ok(newest)
    }

    /// The connection with `prefix` (compared without case), if there is one.
    pub async fn with_prefix(&self, prefix: &str) -> Result<Option<Entry>, CacheError> {
        if !self.prepare().await? {
            return Ok(None);
        }
        let has_prefix = |entry: &Entry| {
            entry
                .connection
                .prefix
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        };
        // Every connection with a prefix has its pointer (written before the connection), so
        // no pointer means no such connection; a stale one (its connection gone, or a crash
        // before the connection was written) is checked against the files.
        let Some(path) = self.prefix_path(prefix) else {
            return Ok(None);
        };
        let Some(id) = self.pointer(&path)? else {
            return Ok(None);
        };
        if let Opened::Entry(entry, ..) = self.open_entry(id)?
            && has_prefix(&entry)
        {
            return Ok(Some(*entry));
        }
        let contents = self.read().await?;
        Ok(contents.entries.into_iter().find(|e| has_prefix(e)))
    }

    /// Adds a connection, giving it the next number, which is returned. Refuses a prefix that
    /// another connection has: a prefix names one connection.
    pub async fn add(&self, mut entry: Entry) -> Result<u32, CacheError> {
        self.prepare().await?;
        let _lock = self.global_lock().await?;
        if let Some(prefix) = entry.connection.prefix.as_deref()
            && let Some(owner) = self.with_prefix(prefix).await?
        {
            return Err(PrefixTaken {
                name: owner.connection.name(),
                who: owner.connection.who().to_owned(),
            }
            .into());
        }
        entry.connection.number = self.next_number().await?;
        // The key this process read earlier may have been deleted since (the last connection
        // went) or replaced: the new connection is sealed with the key as it is now.
        self.keys.forget();
        let (location, key) = self.keys.load_or_create()?;
        // Everything else first, the connection file last: writing it is what adds the
        // connection, so a failure before leaves none (the pointers it left are noticed as
        // stale), and nothing can fail after.
        let id = entry.connection.id.to_string();
        self.point_prefix_to(&entry, &id)?;
        self.write_pointer(&self.dir.join(LATEST_FILE), &id)?;
        let next = entry.connection.number + 1;
        self.write_pointer(&self.dir.join(NEXT_NUMBER_FILE), &next.to_string())?;
        self.write_entry(&entry, location, &key)?;
        Ok(entry.connection.number)
    }

    /// The number the next connection gets (under the cache lock): `next-number`, but never one
    /// the most recent connection has or had; counted from the connection files when the file
    /// is missing or unusable.
    async fn next_number(&self) -> Result<u32, CacheError> {
        let stored = read_trusted(&self.dir.join(NEXT_NUMBER_FILE))?
            .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.trim().parse::<u32>().ok());
        let after_latest = match self.pointer(&self.dir.join(LATEST_FILE))? {
            Some(id) => match self.open_entry(id) {
                Ok(Opened::Entry(entry, ..)) => entry.connection.number.saturating_add(1),
                _ => 1,
            },
            None => 1,
        };
        let number = match stored {
            Some(stored) if (1..u32::MAX).contains(&stored) => stored.max(after_latest),
            _ => {
                let highest = self
                    .read()
                    .await?
                    .entries
                    .iter()
                    .map(|e| e.connection.number)
                    .max()
                    .unwrap_or(0);
                highest.saturating_add(1)
            }
        };
        // u32::MAX would have no next one; numbers only name connections, so they wrap.
        Ok(if number == u32::MAX { 1 } else { number })
    }

    /// Changes connection `id` with `change` and returns it as it is now; `None` if it does not
    /// exist (any more).
    pub async fn update(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut Entry),
    ) -> Result<Option<Entry>, CacheError> {
        if !self.prepare().await? {
            return Ok(None);
        }
        let _lock = self.entry_lock(id).await?;
        let Opened::Entry(mut entry, location, key) = self.open_entry(id)? else {
            return Ok(None);
        };
        change(&mut entry);
        self.write_entry(&entry, location, &key)?;
        Ok(Some(*entry))
    }

    /// Removes connections `ids` (unreadable ones too) and returns those that could be read.
    /// Removing the last one removes every trace: the key and the pointers.
    pub async fn remove(&self, ids: &[Uuid]) -> Result<Vec<Entry>, CacheError> {
        if !self.prepare().await? {
            return Ok(Vec::new());
        }
        let _lock = self.global_lock().await?;
        let mut removed = Vec::new();
        for id in ids {
            let _entry_lock = self.entry_lock(*id).await?;
            if let Ok(Opened::Entry(entry, ..)) = self.open_entry(*id) {
                removed.push(*entry);
            }
            remove_if_present(&self.entry_path(*id))?;
        }
        self.tidy_up().await?;
        Ok(removed)
    }

    /// Moves what cannot be read aside, into `damaged-<unix time>/`: the single file of an
    /// older exo and connection files that do not open. Returns where, when anything moved.
    pub async fn move_damaged_aside(&self) -> Result<Option<PathBuf>, CacheError> {
        if !self.dir.exists() {
            return Ok(None);
        }
        trusted(&self.dir, std::fs::metadata(&self.dir))?;
        let _lock = self.global_lock().await?;
        let mut unreadable = Vec::new();
        let single = self.dir.join(SINGLE_FILE);
        if single.exists() {
            unreadable.push(single);
        }
        for id in self.entry_ids()? {
            if let Err(
                CacheError::Damaged { .. } | CacheError::Untrusted { .. } | CacheError::Io { .. },
            ) = self.open_listed(id)
            {
                unreadable.push(self.entry_path(id));
            }
        }
        if unreadable.is_empty() {
            return Ok(None);
        }
        let aside = self
            .dir
            .join(format!("damaged-{}", crate::connection::now()));
        crate::private::create_dir(&aside).map_err(|source| CacheError::Io {
            path: aside.clone(),
            source,
        })?;
        for path in unreadable {
            let name = path.file_name().expect("a file name");
            std::fs::rename(&path, aside.join(name)).map_err(|source| CacheError::Io {
                path: path.clone(),
                source,
            })?;
        }
        self.tidy_up().await?;
        Ok(Some(aside))
    }

    /// Takes the renewal lock of connection `id`: one renewal of a connection at a time across
    /// processes, while the cache itself stays free for everyone else.
    pub async fn lock_renewal(&self, id: Uuid) -> Result<File, CacheError> {
        lock_file(
            &self.dir,
            &self.dir.join(format!("renew-{id}.lock")),
            RENEWAL_LOCK_TIMEOUT,
        )
        .await
    }

    /// Takes the shell lock of legacy connection `id`, waiting at most `timeout`: one process at
    /// a time opens the connection's remote PowerShell shell, so that others reuse it instead of
    /// opening their own (the server allows a user only a few).
    pub async fn lock_shell(&self, id: Uuid, timeout: Duration) -> Result<File, CacheError> {
        lock_file(
            &self.dir,
            &self.dir.join(format!("shell-{id}.lock")),
            timeout,
        )
        .await
    }

    /// Checks the state directory, and moves the single file of an older exo into the
    /// per-connection layout. False when there is no state directory (nothing to read).
    async fn prepare(&self) -> Result<bool, CacheError> {
        match std::fs::metadata(&self.dir) {
            Ok(metadata) => trusted(&self.dir, Ok(metadata))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(CacheError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        }
        if self.dir.join(SINGLE_FILE).exists() {
            self.migrate().await?;
        }
        Ok(true)
    }

    /// Moves the connections of the single file of formats 1 and 2 into their own files. A
    /// single file that cannot be read stays where it is, and every operation says so, until
    /// `disconnect --all` moves it aside.
    async fn migrate(&self) -> Result<(), CacheError> {
        let _lock = self.global_lock().await?;
        let path = self.dir.join(SINGLE_FILE);
        let Some(bytes) = read_trusted(&path)? else {
            return Ok(());
        };
        let damaged = |reason: String| CacheError::Damaged {
            path: path.clone(),
            reason,
        };
        let header = sealed::header(&bytes).map_err(damaged)?;
        if !SINGLE_FILE_FORMATS.contains(&header.format) {
            return Err(damaged(format!(
                "it has format {}, this exo reads formats up to {FORMAT_VERSION} (a newer exo \
                 wrote it)",
                header.format
            )));
        }
        let old_keys = Keys::single_file(&self.dir);
        let key = old_keys.load(header.location)?.ok_or_else(|| {
            damaged(format!(
                "its key ({}) is missing",
                old_keys.describe_location(header.location)
            ))
        })?;
        let plaintext = sealed::open(&bytes, &key, b"").ok_or_else(|| {
            damaged(
                "it does not decrypt with its key (damaged, or the key was replaced)".to_owned(),
            )
        })?;
        #[derive(Deserialize)]
        struct SingleFile {
            next_number: u32,
            entries: Vec<Entry>,
        }
        let single: SingleFile = serde_json::from_slice(&plaintext)
            .map_err(|e| damaged(format!("its content is not valid ({e})")))?;
        // The connection files get their own key.
        self.keys.forget();
        let (location, key) = self.keys.load_or_create()?;
        let mut latest = None;
        for entry in &single.entries {
            self.write_entry(entry, location, &key)?;
            let id = entry.connection.id.to_string();
            self.point_prefix_to(entry, &id)?;
            if latest
                .as_ref()
                .is_none_or(|(number, _)| entry.connection.number > *number)
            {
                latest = Some((entry.connection.number, id));
            }
        }
        if let Some((_, id)) = latest {
            self.write_pointer(&self.dir.join(LATEST_FILE), &id)?;
        }
        self.write_pointer(
            &self.dir.join(NEXT_NUMBER_FILE),
            &single.next_number.to_string(),
        )?;
        remove_if_present(&path)?;
        old_keys.delete_all()
    }

    /// The ids of the connection files.
    fn entry_ids(&self) -> Result<Vec<Uuid>, CacheError> {
        let dir = self.dir.join(ENTRIES_DIR);
        if !trusted_dir(&dir)? {
            return Ok(Vec::new());
        }
        let files = match std::fs::read_dir(&dir) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CacheError::Io { path: dir, source }),
        };
        Ok(files
            .flatten()
            .filter_map(|file| file.file_name().to_str()?.parse().ok())
            .collect())
    }

    /// Opens connection `id`'s file.
    fn open_entry(&self, id: Uuid) -> Result<Opened, CacheError> {
        if !trusted_dir(&self.dir.join(ENTRIES_DIR))? {
            return Ok(Opened::Missing);
        }
        self.open_listed(id)
    }

    /// Opens connection `id`'s file, found by [`Self::entry_ids`], which checked the folder.
    fn open_listed(&self, id: Uuid) -> Result<Opened, CacheError> {
        let path = self.entry_path(id);
        let Some(bytes) = read_trusted(&path)? else {
            return Ok(Opened::Missing);
        };
        let damaged = |reason: String| CacheError::Damaged {
            path: path.clone(),
            reason,
        };
        let header = sealed::header(&bytes).map_err(damaged)?;
        if header.format != FORMAT_VERSION {
            return Err(damaged(format!(
                "it has format {}, this exo reads format {FORMAT_VERSION}",
                header.format
            )));
        }
        let (key, plaintext) =
            self.open_with_key(&path, &bytes, header.location, id.to_string().as_bytes())?;
        let entry: Entry = serde_json::from_slice(&plaintext)
            .map_err(|e| damaged(format!("its content is not valid ({e})")))?;
        if entry.connection.id != id {
            return Err(damaged("it holds another connection".to_owned()));
        }
        Ok(Opened::Entry(Box::new(entry), header.location, key))
    }

    /// Decrypts `bytes` (the file `path`) with the key at `location`. The key this process
    /// remembers may be one another process has since replaced (the last connection went, a
    /// new one came): on failure it is read again, once.
    fn open_with_key(
        &self,
        path: &Path,
        bytes: &[u8],
        location: KeyLocation,
        context: &[u8],
    ) -> Result<(Key, Zeroizing<Vec<u8>>), CacheError> {
        let damaged = |reason: String| CacheError::Damaged {
            path: path.to_owned(),
            reason,
        };
        for fresh in [false, true] {
            if fresh {
                self.keys.forget();
            }
            let key = self.keys.load(location)?.ok_or_else(|| {
                damaged(format!(
                    "its key ({}) is missing",
                    self.keys.describe_location(location)
                ))
            })?;
            if let Some(plaintext) = sealed::open(bytes, &key, context) {
                return Ok((key, plaintext));
            }
        }
        Err(damaged(
            "it does not decrypt with its key (damaged, or the key was replaced)".to_owned(),
        ))
    }

    /// Seals `entry` with `key` into its file.
    fn write_entry(
        &self,
        entry: &Entry,
        location: KeyLocation,
        key: &Key,
    ) -> Result<(), CacheError> {
        let dir = self.dir.join(ENTRIES_DIR);
        crate::private::create_dir(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        trusted_dir(&dir)?;
        let id = entry.connection.id;
        // Serializing plain data structs with string keys cannot fail.
        let plaintext = Zeroizing::new(serde_json::to_vec(entry).expect("an entry serializes"));
        let bytes = sealed::seal(
            &plaintext,
            FORMAT_VERSION,
            location,
            key,
            id.to_string().as_bytes(),
        )?;
        let path = self.entry_path(id);
        atomic_write(&dir, &path, &bytes, true).map_err(|source| CacheError::Io { path, source })
    }

    /// The pointer file of `prefix`; `None` for a prefix that cannot name a file (exo's
    /// prefixes are letters and digits).
    fn prefix_path(&self, prefix: &str) -> Option<PathBuf> {
        prefix.bytes().all(|b| b.is_ascii_alphanumeric()).then(|| {
            self.dir
                .join(PREFIXES_DIR)
                .join(prefix.to_ascii_lowercase())
        })
    }

    /// The id a pointer file names, if it exists and names one.
    fn pointer(&self, path: &Path) -> Result<Option<Uuid>, CacheError> {
        if let Some(dir) = path.parent().filter(|dir| *dir != self.dir)
            && !trusted_dir(dir)?
        {
            return Ok(None);
        }
        Ok(read_trusted(path)?
            .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.trim().parse().ok()))
    }

    /// Points the prefix of `entry`'s connection, if it has one, to connection `id`.
    fn point_prefix_to(&self, entry: &Entry, id: &str) -> Result<(), CacheError> {
        match entry
            .connection
            .prefix
            .as_deref()
            .and_then(|p| self.prefix_path(p))
        {
            Some(path) => self.write_pointer(&path, id),
            None => Ok(()),
        }
    }

    fn write_pointer(&self, path: &Path, text: &str) -> Result<(), CacheError> {
        let dir = path.parent().expect("pointers are in the state directory");
        crate::private::create_dir(dir).map_err(|source| CacheError::Io {
            path: dir.to_owned(),
            source,
        })?;
        trusted_dir(dir)?;
        atomic_write(dir, path, text.as_bytes(), false).map_err(|source| CacheError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// After removals (under the cache lock): pointers to removed connections go, `latest`
    /// names the most recent one left, and when none is left, the key and every trace go too.
    async fn tidy_up(&self) -> Result<(), CacheError> {
        let ids = self.entry_ids()?;
        let gone = |path: &Path| {
            self.pointer(path)
                .unwrap_or_default()
                .is_none_or(|id| !ids.contains(&id))
        };
        if let Ok(files) = std::fs::read_dir(self.dir.join(PREFIXES_DIR)) {
            for file in files.flatten() {
                if gone(&file.path()) {
                    remove_if_present(&file.path())?;
                }
            }
        }
        if ids.is_empty() {
            for name in [LATEST_FILE, NEXT_NUMBER_FILE] {
                remove_if_present(&self.dir.join(name))?;
            }
            for folder in [ENTRIES_DIR, PREFIXES_DIR] {
                // Only when empty: a file someone put there is not exo's to delete.
                let _ = std::fs::remove_dir(self.dir.join(folder));
            }
            self.keys.delete_all()?;
        } else if gone(&self.dir.join(LATEST_FILE)) {
            match self.newest()? {
                Some(entry) => self.write_pointer(
                    &self.dir.join(LATEST_FILE),
                    &entry.connection.id.to_string(),
                )?,
                None => remove_if_present(&self.dir.join(LATEST_FILE))?,
            }
        }
        self.prune_locks(&ids);
        Ok(())
    }

    /// Removes the lock files of connections that are gone (best effort: they are empty).
    fn prune_locks(&self, ids: &[Uuid]) {
        let Ok(files) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(id) = name.to_str().and_then(|n| {
                n.strip_prefix("renew-")
                    .or_else(|| n.strip_prefix("shell-"))
                    .or_else(|| n.strip_prefix("entry-"))?
                    .strip_suffix(".lock")
            }) else {
                continue;
            };
            if id.parse::<Uuid>().is_ok_and(|id| !ids.contains(&id)) {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }

    async fn global_lock(&self) -> Result<File, CacheError> {
        lock_file(&self.dir, &self.dir.join(LOCK_FILE), self.lock_timeout).await
    }

    async fn entry_lock(&self, id: Uuid) -> Result<File, CacheError> {
        lock_file(
            &self.dir,
            &self.dir.join(format!("entry-{id}.lock")),
            self.lock_timeout,
        )
        .await
    }
}

/// The bytes of the state file `path`, refused when another user owns it or could write it;
/// `None` when it does not exist.
fn read_trusted(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match crate::private::open_existing(path).map_err(io)? {
        None => return Ok(None),
        Some(Ok(file)) => file,
        Some(Err(exposure)) => {
            return Err(CacheError::Untrusted {
                path: path.to_owned(),
                exposure,
            });
        }
    };
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
    Ok(Some(bytes))
}

/// Checks the state subfolder `dir`; false when it does not exist.
fn trusted_dir(dir: &Path) -> Result<bool, CacheError> {
    crate::private::check_dir(dir)
        .map_err(|source| CacheError::Io {
            path: dir.to_owned(),
            source,
        })?
        .map_err(|exposure| CacheError::Untrusted {
            path: dir.to_owned(),
            exposure,
        })
}

fn remove_if_present(path: &Path) -> Result<(), CacheError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CacheError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Locks `path` (created in `dir` if needed), waiting up to `timeout` for others.
async fn lock_file(dir: &Path, path: &Path, timeout: Duration) -> Result<File, CacheError> {
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
        match file.try_lock() {
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

/// Writes `bytes` to a temporary file in `dir` and renames it over `path`, so that readers see
/// the old or the new file, never half of one. With `durable`, the file and the folder are
/// synced too, so that a crash cannot lose it (the pointer files, which are rebuilt when
/// stale, are not worth the wait).
fn atomic_write(dir: &Path, path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let temporary = dir.join(format!(
        ".tmp.{}.{}",
        std::process::id(),
        Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = crate::private::open_file(&temporary, true)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
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
