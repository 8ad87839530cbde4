//! Where the token cache's key is kept.
//!
//! The key is 256 random bits, created with the first connection and deleted with the last.
//! It lives in the OS keyring where one is available: the macOS Keychain, the Windows
//! Credential Manager, or the Secret Service (GNOME Keyring, KWallet) on a Linux desktop
//! session. Otherwise it lives in `connections.key` next to the connection files, mode 0600 in a 0700 folder,
//! like `~/.ssh/id_*`; a key file that others can read or write is refused.
//!
//! The keyring also keeps the secrets a user asks exo to remember (`exo connect
//! --remember-password`): [`remember`], [`recall`], [`forget`]; never in a file.
//!
//! `EXO_KEY_STORE=keyring` or `=file` forces one. The cache header records where its key is,
//! so a cache keeps working when the choice changes. Keyring calls run on a helper thread and
//! give up after a few seconds, so that a session bus without a keyring daemon cannot stall
//! every `exo` command.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};
use zeroize::Zeroizing;

use crate::cache::{CacheError, trusted};

const KEY_FILE: &str = "connections.key";
const SINGLE_FILE_KEY: &str = "cache.key";
const KEY_LEN: usize = 32;
/// The keyring service name of exo's entries.
const KEYRING_SERVICE: &str = "exo";
/// The environment variable that forces a key store.
pub const KEY_STORE_VAR: &str = "EXO_KEY_STORE";
/// How long a keyring call may take.
const KEYRING_TIMEOUT: Duration = Duration::from_secs(5);

/// A key, zeroized on drop.
pub type Key = Zeroizing<[u8; KEY_LEN]>;

/// Where a cache's key is kept; recorded in the cache header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLocation {
    /// `connections.key` next to the connection files.
    File,
    /// The OS keyring.
    Keyring,
}

impl KeyLocation {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::File => 1,
            Self::Keyring => 2,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::File),
            2 => Some(Self::Keyring),
            _ => None,
        }
    }
}

/// The key of the cache in one state directory.
pub struct Keys {
    file: PathBuf,
    /// The keyring entry's user name: one entry per state directory.
    account: String,
    /// The key once read or made: one keyring round trip per process.
    known: Mutex<Option<(KeyLocation, Key)>>,
}

impl Keys {
    /// The key of the connection files in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            file: dir.join(KEY_FILE),
            account: format!("connections:{}", dir.display()),
            known: Mutex::new(None),
        }
    }

    /// The key of the single `cache` file that versions before the connection files kept in
    /// `dir` (`cache.key`, keyring account `token-cache:<dir>`). It is not the connection
    /// files' key, so that an older exo still installed, which deletes its key with its last
    /// connection, cannot take the newer connections with it.
    pub fn single_file(dir: &Path) -> Self {
        Self {
            file: dir.join(SINGLE_FILE_KEY),
            account: format!("token-cache:{}", dir.display()),
            known: Mutex::new(None),
        }
    }

    /// Where `location` is, for messages.
    pub fn describe_location(&self, location: KeyLocation) -> String {
        match location {
            KeyLocation::File => format!("the key file {}", self.file.display()),
            KeyLocation::Keyring => {
                format!("the OS keyring entry {KEYRING_SERVICE}/{}", self.account)
            }
        }
    }

    /// The key at `location`, or `None` when it does not exist.
    pub fn load(&self, location: KeyLocation) -> Result<Option<Key>, CacheError> {
        if let Some((known, key)) = self.known().as_ref()
            && *known == location
        {
            return Ok(Some(key.clone()));
        }
        let key = self.read(location)?;
        if let Some(key) = &key {
            *self.known() = Some((location, key.clone()));
        }
        Ok(key)
    }

    /// Forgets the key read or made earlier, so that the next use reads it again.
    pub fn forget(&self) {
        *self.known() = None;
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<(KeyLocation, Key)>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self, location: KeyLocation) -> Result<Option<Key>, CacheError> {
        match location {
            KeyLocation::File => self.load_file(),
            KeyLocation::Keyring => keyring_call(&self.account, |entry| match entry.get_secret() {
                Ok(secret) => key_from(&secret).map(Some),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(e.to_string()),
            }),
        }
    }

    /// The current key, created if there is none: in the keyring when one is available.
    pub fn load_or_create(&self) -> Result<(KeyLocation, Key), CacheError> {
        if let Some(known) = self.known().clone() {
            return Ok(known);
        }
        let (location, key) = self.find_or_create()?;
        *self.known() = Some((location, key.clone()));
        Ok((location, key))
    }

    fn find_or_create(&self) -> Result<(KeyLocation, Key), CacheError> {
        if let Some(key) = self.load_file()? {
            return Ok((KeyLocation::File, key));
        }
        if use_keyring() {
            match self.load_or_create_in_keyring() {
                Ok(key) => return Ok((KeyLocation::Keyring, key)),
                Err(error) if forced() == Some(KeyLocation::Keyring) => return Err(error),
                Err(error) => {
                    tracing::warn!(target: "session", "{error}; keeping the token cache key in a file instead");
                }
            }
        }
        let key = new_key()?;
        let io = |source| CacheError::Io {
            path: self.file.clone(),
            source,
        };
        let mut file = crate::private::open_file(&self.file, true).map_err(io)?;
        file.write_all(&key[..])
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok((KeyLocation::File, key))
    }

    /// Deletes every key this cache may have.
    pub fn delete_all(&self) -> Result<(), CacheError> {
        *self.known() = None;
        match std::fs::remove_file(&self.file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CacheError::Io {
                    path: self.file.clone(),
                    source,
                });
            }
        }
        if use_keyring() {
            let deleted = keyring_call(&self.account, |entry| match entry.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(e.to_string()),
            });
            if let Err(error) = deleted {
                tracing::warn!(target: "session", "{error}");
            }
        }
        Ok(())
    }

    fn load_or_create_in_keyring(&self) -> Result<Key, CacheError> {
        if let Some(key) = self.load(KeyLocation::Keyring)? {
            return Ok(key);
        }
        let key = new_key()?;
        let secret = key.to_vec();
        keyring_call(&self.account, move |entry| {
            entry.set_secret(&secret).map_err(|e| e.to_string())
        })?;
        Ok(key)
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
        trusted(&self.file, file.metadata())?;
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

/// Why a remembered secret could not be kept, read or removed.
#[derive(Debug, thiserror::Error)]
#[error("the OS keyring: {0}")]
pub struct KeyringError(String);

impl From<CacheError> for KeyringError {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::Keyring(message) => Self(message),
            other => Self(other.to_string()),
        }
    }
}

/// The keyring account of secret parameter `name` of connection `connection_id`.
pub fn secret_account(connection_id: uuid::Uuid, name: &str) -> String {
    format!("secret:{connection_id}:{name}")
}

/// Keeps `secret` in the OS keyring under `account`.
pub fn remember(account: &str, secret: &[u8]) -> Result<(), KeyringError> {
    keyring_available()?;
    let secret = Zeroizing::new(secret.to_vec());
    keyring_call(account, move |entry| {
        entry.set_secret(&secret).map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// The secret kept under `account`, or `None` if there is none.
pub fn recall(account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyringError> {
    keyring_available()?;
    Ok(keyring_call(account, |entry| match entry.get_secret() {
        Ok(secret) => Ok(Some(Zeroizing::new(secret))),
        Err(keyring_core::Error::NoEntry) => Ok(None),
        Err(e) => Err(e.to_string()),
    })?)
}

/// Removes the secret kept under `account`, if any.
pub fn forget(account: &str) -> Result<(), KeyringError> {
    keyring_available()?;
    Ok(keyring_call(account, |entry| {
        match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })?)
}

/// Whether secrets can be kept: only in the OS keyring, never in a file.
pub fn keyring_available() -> Result<(), KeyringError> {
    if use_keyring() {
        Ok(())
    } else {
        Err(KeyringError(format!(
            "none is available here (on Linux, the Secret Service of a desktop session; \
             {KEY_STORE_VAR}=file turns it off)"
        )))
    }
}

fn new_key() -> Result<Key, CacheError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    aws_lc_rs::rand::fill(&mut key[..])
        .map_err(|_| CacheError::Crypto("no randomness available"))?;
    Ok(key)
}

fn key_from(secret: &[u8]) -> Result<Key, String> {
    let bytes: [u8; KEY_LEN] = secret
        .try_into()
        .map_err(|_| "the keyring entry is not an exo key".to_owned())?;
    Ok(Zeroizing::new(bytes))
}

/// `EXO_KEY_STORE`, when set.
fn forced() -> Option<KeyLocation> {
    match std::env::var(KEY_STORE_VAR)
        .ok()?
        .to_ascii_lowercase()
        .as_str()
    {
        "file" => Some(KeyLocation::File),
        "keyring" => Some(KeyLocation::Keyring),
        _ => None,
    }
}

/// Whether to try the OS keyring: when forced, or when the platform has one (on Linux, a
/// desktop session with a session bus).
fn use_keyring() -> bool {
    match forced() {
        Some(location) => location == KeyLocation::Keyring,
        None => {
            cfg!(any(target_os = "macos", target_os = "windows"))
                || std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        }
    }
}

/// Runs `call` on exo's keyring entry `account`, on a helper thread, within the timeout.
fn keyring_call<T: Send + 'static>(
    account: &str,
    call: impl FnOnce(&Entry) -> Result<T, String> + Send + 'static,
) -> Result<T, CacheError> {
    let account = account.to_owned();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = os_store()
            .and_then(|store| {
                store
                    .build(KEYRING_SERVICE, &account, None)
                    .map_err(|e| e.to_string())
            })
            .and_then(|entry| call(&entry));
        let _ = send.send(result);
    });
    match receive.recv_timeout(KEYRING_TIMEOUT) {
        Ok(result) => result.map_err(|e| CacheError::Keyring(e.to_string())),
        Err(_) => Err(CacheError::Keyring(format!(
            "no answer within {} s",
            KEYRING_TIMEOUT.as_secs()
        ))),
    }
}

/// The platform's credential store.
fn os_store() -> Result<Arc<CredentialStore>, String> {
    #[cfg(target_os = "macos")]
    let store = apple_native_keyring_store::keychain::Store::new();
    #[cfg(target_os = "windows")]
    let store = windows_native_keyring_store::Store::new();
    #[cfg(all(unix, not(target_os = "macos")))]
    let store = zbus_secret_service_keyring_store::Store::new();
    store
        .map(|store| store as Arc<CredentialStore>)
        .map_err(|e| e.to_string())
}
