//! The bytes of an encrypted cache file: `EXOC` · format version · key location · 96-bit nonce
//! · AES-256-GCM ciphertext. The header is authenticated too, with whatever else names the
//! file's contents (a connection file's id), so that a file renamed to another connection does
//! not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::CacheError;
use crate::keys::KeyLocation;

const MAGIC: &[u8; 4] = b"EXOC";
const HEADER_LEN: usize = MAGIC.len() + 2;

/// What the header says, before decryption.
pub(super) struct Header {
    /// The format version.
    pub format: u8,
    /// Where the key is.
    pub location: KeyLocation,
}

/// Reads the header of `bytes`, or says why they are not an exo cache file.
pub(super) fn header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER_LEN + NONCE_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("it is not an exo token cache".to_owned());
    }
    let location = KeyLocation::from_byte(bytes[MAGIC.len() + 1])
        .ok_or_else(|| "it names an unknown key location".to_owned())?;
    Ok(Header {
        format: bytes[MAGIC.len()],
        location,
    })
}

/// The plaintext of `bytes` under `key`, with `context` authenticated; `None` when they do not
/// decrypt (damaged, or another key).
pub(super) fn open(bytes: &[u8], key: &[u8; 32], context: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (header, rest) = bytes.split_at(HEADER_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    let length = cipher(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from([header, context].concat()),
            &mut plaintext,
        )
        .ok()?
        .len();
    plaintext.truncate(length);
    Some(plaintext)
}

/// `plaintext` sealed as format `format` under `key` (kept at `location`), with `context`
/// authenticated.
pub(super) fn seal(
    plaintext: &[u8],
    format: u8,
    location: KeyLocation,
    key: &[u8; 32],
    context: &[u8],
) -> Result<Vec<u8>, CacheError> {
    let mut header = Vec::with_capacity(HEADER_LEN + NONCE_LEN);
    header.extend_from_slice(MAGIC);
    header.push(format);
    header.push(location.to_byte());
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CacheError::Crypto("no randomness available"))?;
    let mut sealed = Zeroizing::new(plaintext.to_vec());
    cipher(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from([&header[..], context].concat()),
            &mut *sealed,
        )
        .map_err(|_| CacheError::Crypto("encryption failed"))?;
    let mut bytes = header;
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    Ok(bytes)
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key fits AES-256-GCM"))
}
