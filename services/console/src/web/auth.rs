//! Who is asking: signed session cookies, CSRF tokens and signed links, all HMAC-SHA256
//! with one key kept in the shared store (so that every console process accepts the
//! others' cookies).

use axum::http::HeaderMap;
use rempart_state::{Store, StoreError};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

pub const SESSION_COOKIE: &str = "rempart_session";
pub const CSRF_COOKIE: &str = "rempart_csrf";
/// How long a login lasts.
pub const SESSION_SECONDS: u64 = 12 * 3600;

const SECRET_KEY: &str = "console.secret";

pub struct Keys {
    key: hmac::Key,
}

impl Keys {
    /// The deployment's key: created once (compare-and-set, so two consoles starting
    /// together agree), then read.
    pub async fn load(store: &dyn Store) -> Result<Keys, StoreError> {
        let mut fresh = [0u8; 32];
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| StoreError::Backend { backend: store.backend(), message: "no system randomness for the console key".into() })?;
        store.compare_and_set(SECRET_KEY, None, &fresh, None).await?;
        let secret = store.get(SECRET_KEY).await?.unwrap_or_else(|| fresh.to_vec());
        Ok(Keys { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) })
    }

    pub fn sign(&self, data: &str) -> String {
        hex(hmac::sign(&self.key, data.as_bytes()).as_ref())
    }

    pub fn verify(&self, data: &str, signature: &str) -> bool {
        unhex(signature).is_some_and(|sig| hmac::verify(&self.key, data.as_bytes(), &sig).is_ok())
    }

    /// `hex(email).expiry.session-id.signature`
    pub fn session_cookie(&self, email: &str, expires: u64, session: &str) -> String {
        let data = format!("{}.{expires}.{session}", hex(email.as_bytes()));
        let signature = self.sign(&format!("session:{data}"));
        format!("{data}.{signature}")
    }

    /// The login and session id a cookie stands for, if it is ours and not expired
    /// (whether the session is still open is the store's to say: `session_open`).
    pub fn session_of(&self, cookie: &str, now: u64) -> Option<(String, String)> {
        let (data, signature) = cookie.rsplit_once('.')?;
        if !self.verify(&format!("session:{data}"), signature) {
            return None;
        }
        let mut parts = data.split('.');
        let (Some(email), Some(expires), Some(session), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        if expires.parse::<u64>().ok()? < now {
            return None;
        }
        Some((String::from_utf8(unhex(email)?).ok()?, session.to_string()))
    }

    /// The token forms carry: bound to the visitor's CSRF cookie, which another site
    /// can neither read nor set.
    pub fn csrf_token(&self, csrf_cookie: &str) -> String {
        self.sign(&format!("csrf:{csrf_cookie}"))
    }

    pub fn csrf_ok(&self, csrf_cookie: Option<&str>, token: &str) -> bool {
        csrf_cookie.is_some_and(|c| !c.is_empty() && self.verify(&format!("csrf:{c}"), token))
    }
}

fn session_key(session: &str) -> String {
    rempart_state::key(&["console", "session", session])
}

/// Opens a session for `account` (a random id, kept in the shared store with the
/// account's generation until it expires or the user logs out, so every console
/// replica knows it); gives the cookie.
pub async fn open_session(keys: &Keys, store: &dyn Store, account: &crate::accounts::Account, expires: u64) -> Result<String, StoreError> {
    let session = new_csrf_cookie();
    let value = format!("{} {}", account.email, account.generation);
    store.put(&session_key(&session), value.as_bytes(), Some(std::time::Duration::from_secs(SESSION_SECONDS))).await?;
    Ok(keys.session_cookie(&account.email, expires, &session))
}

/// The login of an open session and the account generation it was opened under: the
/// cookie is ours, unexpired, and not logged out.
pub async fn session_email(keys: &Keys, store: &dyn Store, cookie: &str, now: u64) -> Option<(String, u32)> {
    let (email, session) = keys.session_of(cookie, now)?;
    let stored = store.get(&session_key(&session)).await.ok()??;
    let stored = String::from_utf8(stored).ok()?;
    let (stored_email, generation) = stored.split_once(' ').unwrap_or((&stored, "0"));
    (stored_email == email).then(|| (email, generation.parse().unwrap_or(0)))
}

/// Logs a session out: its cookie is worth nothing from now on, wherever it is kept.
pub async fn close_session(keys: &Keys, store: &dyn Store, cookie: &str) -> Result<(), StoreError> {
    match keys.session_of(cookie, 0) {
        Some((_, session)) => store.delete(&session_key(&session)).await,
        None => Ok(()),
    }
}

/// A new random CSRF cookie value.
pub fn new_csrf_cookie() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the token is still bound to the key; a constant cookie only
    // weakens it to "same site", which SameSite=Strict gives anyway.
    let _ = SystemRandom::new().fill(&mut bytes);
    hex(&bytes)
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole console.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys { key: hmac::Key::new(hmac::HMAC_SHA256, b"test key") }
    }

    #[test]
    fn sessions_are_signed_and_expire() {
        let keys = keys();
        let cookie = keys.session_cookie("a@b.test", 100, "s1");
        assert_eq!(keys.session_of(&cookie, 99), Some(("a@b.test".into(), "s1".into())));
        assert_eq!(keys.session_of(&cookie, 101), None);
        let forged = cookie.replacen(&hex(b"a@b.test"), &hex(b"root@b.test"), 1);
        assert_eq!(keys.session_of(&forged, 99), None);
        assert_eq!(keys.session_of("garbage", 0), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_cookie() {
        let keys = keys();
        let token = keys.csrf_token("abc");
        assert!(keys.csrf_ok(Some("abc"), &token));
        assert!(!keys.csrf_ok(Some("abd"), &token));
        assert!(!keys.csrf_ok(None, &token));
        assert!(!keys.csrf_ok(Some("abc"), "00"));
    }
}
