//! The console's optional second factor: time-based one-time codes (RFC 6238, SHA-1,
//! 6 digits, 30 s, one step of clock skew), as every authenticator app reads them from
//! an `otpauth://` URI. A code is accepted once (RFC 6238 §5.2): the step it matched
//! is kept, and an older or equal step is refused. SMTP submission does not use it.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use totp_rs::{Builder, Secret, Totp};

use crate::Store;
use crate::accounts::{self, Account, AccountError};

/// The name apps show beside the account.
pub const ISSUER: &str = "Rempart";

/// A new random secret (160 bits, RFC 4226's recommendation), in base32.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    Secret::from(bytes.to_vec()).to_base32()
}

fn totp(secret: &str) -> Result<Totp, String> {
    let secret = Secret::try_from_base32(secret).map_err(|e| format!("second-factor secret: {e:?}"))?;
    Builder::new().with_secret(secret).build().map_err(|e| format!("second-factor secret: {e:?}"))
}

/// What an authenticator app reads (as a QR code or typed in).
pub fn uri(email: &str, secret: &str) -> String {
    let label: String = format!("{ISSUER}:{email}")
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("otpauth://totp/{label}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits=6&period=30")
}

/// The code of `secret` at `time` (unix seconds): what the user's app shows.
pub fn code_at(secret: &str, time: u64) -> Result<String, String> {
    Ok(totp(secret)?.generate(time).to_string())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The account has no confirmed second factor.
    NotUsed,
    /// Right, and not used before: the step to remember.
    Passed(u64),
    /// None typed.
    Missing,
    /// Wrong, expired or replayed.
    Wrong,
}

/// Checks `code` against the account's confirmed second factor at `now`.
pub fn check(account: &Account, code: &str, now: u64) -> Check {
    let Some(secret) = account.totp_secret.as_deref().filter(|_| account.totp_confirmed) else { return Check::NotUsed };
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() {
        return Check::Missing;
    }
    match totp(secret).ok().and_then(|t| t.check(&code, now)) {
        Some(step) if step > account.totp_last_step => Check::Passed(step),
        _ => Check::Wrong,
    }
}

/// Starts (or restarts) enrolment: a new secret, not used at login until confirmed with
/// a code. Gives the secret and its URI.
pub async fn enroll(store: &dyn Store, email: &str) -> Result<(String, String), AccountError> {
    let mut account = accounts::get(store, email).await?.ok_or_else(|| AccountError::Invalid(format!("no account {email}")))?;
    let secret = new_secret();
    account.totp_secret = Some(secret.clone());
    account.totp_confirmed = false;
    account.totp_last_step = 0;
    accounts::put(store, &account).await?;
    Ok((secret.clone(), uri(&account.email, &secret)))
}

/// Confirms enrolment with a code from the app: from then on, console logins need one.
pub async fn confirm(store: &dyn Store, email: &str, code: &str, now: u64) -> Result<bool, AccountError> {
    let mut account = accounts::get(store, email).await?.ok_or_else(|| AccountError::Invalid(format!("no account {email}")))?;
    let Some(secret) = account.totp_secret.clone() else {
        return Err(AccountError::Invalid("no second factor is being set up: start the enrolment first".into()));
    };
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = totp(&secret).map_err(AccountError::Invalid)?.check(&code, now) else { return Ok(false) };
    account.totp_confirmed = true;
    account.totp_last_step = step;
    accounts::put(store, &account).await?;
    Ok(true)
}

/// Remembers the step a login used, so the same code cannot log in again.
pub async fn used(store: &dyn Store, account: &Account, step: u64) -> Result<(), AccountError> {
    if let Some(mut stored) = accounts::get(store, &account.email).await? {
        stored.totp_last_step = stored.totp_last_step.max(step);
        accounts::put(store, &stored).await?;
    }
    Ok(())
}

/// Removes the second factor (a lost phone: the admin resets it).
pub async fn remove(store: &dyn Store, email: &str) -> Result<bool, AccountError> {
    let Some(mut account) = accounts::get(store, email).await? else { return Ok(false) };
    account.totp_secret = None;
    account.totp_confirmed = false;
    account.totp_last_step = 0;
    accounts::put(store, &account).await?;
    Ok(true)
}

/// Whether the account must use a second factor: its tenant requires it, or it is
/// staff and `staff_must` (`[console] require_totp_for_staff`).
pub async fn required(store: &dyn Store, account: &Account, staff_must: bool) -> bool {
    if staff_must && account.role.is_staff() {
        return true;
    }
    match &account.tenant {
        Some(tenant) => crate::domains::get_tenant(store, tenant).await.ok().flatten().is_some_and(|t| t.require_totp),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_rfc_6238_and_used_once() {
        // RFC 6238 appendix B's SHA-1 secret ("12345678901234567890"), 6 digits.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(code_at(&secret, 59).expect("code"), "287082");
        assert_eq!(code_at(&secret, 1_111_111_109).expect("code"), "081804");
        let mut account: Account = serde_json::from_value(serde_json::json!({
            "email": "a@example.com", "role": "user", "password_hash": "x",
        }))
        .expect("account");
        assert_eq!(check(&account, "287082", 59), Check::NotUsed);
        account.totp_secret = Some(secret.clone());
        account.totp_confirmed = true;
        assert_eq!(check(&account, "", 59), Check::Missing);
        assert_eq!(check(&account, "000000", 59), Check::Wrong);
        let Check::Passed(step) = check(&account, "287 082", 59) else { panic!("the right code") };
        account.totp_last_step = step;
        assert_eq!(check(&account, "287082", 59), Check::Wrong, "a code is used once");
        assert!(uri("a@example.com", &secret).starts_with("otpauth://totp/Rempart:a%40example.com?secret="));
    }
}
