//! RFC 6238 time-based one-time passwords (the authenticator app of the sign-in page).
//!
//! HMAC-SHA-1, 30-second steps, 6 digits — what Microsoft Authenticator and every TOTP app use
//! for "other" accounts. Secrets are RFC 4648 base32 (case-insensitive, spaces and padding
//! ignored), as shown to users next to a QR code.

use aws_lc_rs::hmac;

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;

/// Decodes an RFC 4648 base32 secret; `None` if it has characters outside the alphabet.
pub fn decode_base32(secret: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(secret.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u64, 0u32);
    for c in secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
    {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The HOTP value (RFC 4226) of `key` at `counter` with `digits` digits, using `algorithm`.
fn hotp(algorithm: hmac::Algorithm, key: &[u8], counter: u64, digits: u32) -> u32 {
    let tag = hmac::sign(&hmac::Key::new(algorithm, key), &counter.to_be_bytes());
    let bytes = tag.as_ref();
    let offset = (bytes[bytes.len() - 1] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ]) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// The 6-digit TOTP code (zero-padded) of a raw key at `unix_time`.
pub fn code_at(key: &[u8], unix_time: u64) -> String {
    format!(
        "{:0width$}",
        hotp(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            key,
            unix_time / STEP_SECONDS,
            DIGITS
        ),
        width = DIGITS as usize
    )
}

/// The current code for a base32 secret (what a test "authenticator" types in).
pub fn current_code(base32_secret: &str) -> Option<String> {
    let key = decode_base32(base32_secret)?;
    Some(code_at(&key, crate::clock::unix_now().max(0) as u64))
}

/// Whether `code` is valid for the secret at `unix_time`, accepting one step of drift either way
/// (like Entra, which tolerates small clock differences between phone and server).
pub fn verify(base32_secret: &str, code: &str, unix_time: u64) -> bool {
    let Some(key) = decode_base32(base32_secret) else {
        return false;
    };
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    [
        unix_time.saturating_sub(STEP_SECONDS),
        unix_time,
        unix_time + STEP_SECONDS,
    ]
    .iter()
    .any(|&t| crate::state::constant_time_eq(code_at(&key, t).as_bytes(), code.as_bytes()))
}

#[cfg(test)]
mod tests;
