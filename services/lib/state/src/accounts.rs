//! Accounts in the shared store (`console.account.<email>`), with argon2 password
//! hashes: one login for the console and for SMTP submission. And the login throttle
//! (failures per IP and per account, shared by every console and edge through the store,
//! so guessing on one service counts on the other).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, key};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and changes everything.
    Operator,
    /// The operator's helpdesk: sees everything, releases held mail, changes no setting.
    Helpdesk,
    /// Sees everything, changes nothing.
    Auditor,
    /// A customer's administrator: their tenant's domains, users, lists, DKIM keys and
    /// reports (and the domains listed on the account).
    #[serde(alias = "domain_admin")]
    TenantAdmin,
    /// Sees the mail of their own addresses.
    User,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Operator, Role::Helpdesk, Role::Auditor, Role::TenantAdmin, Role::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Helpdesk => "helpdesk",
            Role::Auditor => "auditor",
            Role::TenantAdmin => "tenant-admin",
            Role::User => "user",
        }
    }

    /// The operator's staff: they see every tenant.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Operator | Role::Helpdesk | Role::Auditor)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, AccountError> {
        match s {
            "operator" => Ok(Role::Operator),
            "helpdesk" | "operator-helpdesk" => Ok(Role::Helpdesk),
            "auditor" => Ok(Role::Auditor),
            "tenant-admin" | "tenant_admin" | "domain-admin" | "domain_admin" => Ok(Role::TenantAdmin),
            "user" => Ok(Role::User),
            _ => Err(AccountError::Invalid(format!("unknown role {s:?}: operator, helpdesk, auditor, tenant-admin or user"))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// The login, lower case.
    pub email: String,
    pub role: Role,
    /// The tenant (customer) the account belongs to; a tenant admin manages its domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A tenant admin's domains besides their tenant's (lower case); filled with the
    /// tenant's when the account is read for a request (`with_tenant_domains`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// A user's addresses besides the login (aliases, lower case).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// PHC string (argon2id).
    pub password_hash: String,
    #[serde(default)]
    pub disabled: bool,
    /// Suspended from sending (too much blocked mail); may still log into the console.
    #[serde(default)]
    pub suspended: bool,
    /// Bumped when the password changes or the account is disabled: the tokens and
    /// console sessions of an older generation are worth nothing.
    #[serde(default)]
    pub generation: u32,
    /// Unix seconds; 0 for accounts made before it was kept.
    #[serde(default)]
    pub created: u64,
    /// The console's second factor (base32 TOTP secret; `second_factor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// Enrolment confirmed with a code: console logins need one.
    #[serde(default)]
    pub totp_confirmed: bool,
    /// The last TOTP step a login used (a code is accepted once).
    #[serde(default)]
    pub totp_last_step: u64,
}

impl Account {
    /// A new enabled account, without password, tenant, domains or aliases yet.
    pub fn new(email: &str, role: Role) -> Account {
        Account {
            email: email.trim().to_ascii_lowercase(),
            role,
            tenant: None,
            domains: Vec::new(),
            aliases: Vec::new(),
            password_hash: String::new(),
            disabled: false,
            suspended: false,
            generation: 0,
            created: 0,
            totp_secret: None,
            totp_confirmed: false,
            totp_last_step: 0,
        }
    }

    /// The login's domain.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// Whether mail from `address` (an envelope sender or a From address) may be sent by
    /// this account: its login, an alias, an address of an `@domain` alias, or for a
    /// domain admin any address of their domains. The operator is not a mailbox.
    pub fn may_send_as(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        let Some((_, domain)) = address.rsplit_once('@') else { return false };
        let domain_wide = |d: &str| d.strip_prefix('@').is_some_and(|d| d == domain);
        address == self.email
            || self.aliases.iter().any(|a| *a == address || domain_wide(a))
            || self.role == Role::TenantAdmin && self.domains.iter().any(|d| d == domain)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("account store: {0}")]
    Store(#[from] StoreError),
    #[error("account {email}: {source}")]
    Corrupt { email: String, source: serde_json::Error },
    #[error("password hashing: {0}")]
    Hash(String),
}

fn account_key(email: &str) -> String {
    key(&["console", "account", &email.to_ascii_lowercase()])
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| AccountError::Hash(e.to_string()))
}

pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Creates or replaces an account.
pub async fn put(store: &dyn Store, account: &Account) -> Result<(), AccountError> {
    check_address(&account.email)?;
    if account.role == Role::TenantAdmin && account.domains.is_empty() && account.tenant.is_none() {
        return Err(AccountError::Invalid("a tenant admin needs a tenant (--tenant) or at least one --domain".into()));
    }
    for domain in &account.domains {
        rempart_model::config::check_domain_name(domain).map_err(AccountError::Invalid)?;
    }
    let value = serde_json::to_vec(account).map_err(|source| AccountError::Corrupt { email: account.email.clone(), source })?;
    Ok(store.put(&account_key(&account.email), &value, None).await?)
}

/// Whether `email` can be a login: local@domain, no space or control character.
pub fn check_address(email: &str) -> Result<(), AccountError> {
    let bad = || AccountError::Invalid(format!("{email:?} is not an e-mail address"));
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\\\"".contains(c)) {
        return Err(bad());
    }
    rempart_model::config::check_domain_name(domain).map_err(|m| AccountError::Invalid(format!("{email:?}: {m}")))
}

/// Every account, by login.
pub async fn list(store: &dyn Store) -> Result<Vec<Account>, AccountError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["console", "account"])), MAX_ACCOUNTS).await?;
    let mut accounts: Vec<Account> = rows.iter().filter_map(|(_, value)| serde_json::from_slice(value).ok()).collect();
    accounts.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(accounts)
}

pub async fn delete(store: &dyn Store, email: &str) -> Result<bool, AccountError> {
    if get(store, email).await?.is_none() {
        return Ok(false);
    }
    store.delete(&account_key(email)).await?;
    Ok(true)
}

/// The account as a request sees it: a tenant admin's domains include their tenant's.
pub async fn with_tenant_domains(store: &dyn Store, mut account: Account) -> Result<Account, AccountError> {
    if let Some(tenant) = &account.tenant {
        for domain in crate::domains::tenant_domains(store, tenant).await.map_err(|e| AccountError::Invalid(e.to_string()))? {
            if !account.domains.contains(&domain) {
                account.domains.push(domain);
            }
        }
    }
    Ok(account)
}

pub async fn get(store: &dyn Store, email: &str) -> Result<Option<Account>, AccountError> {
    let Some(value) = store.get(&account_key(email)).await? else { return Ok(None) };
    serde_json::from_slice(&value).map(Some).map_err(|source| AccountError::Corrupt { email: email.to_string(), source })
}

/// Accounts at most listed by a scan (the store's prefix scans are bounded).
const MAX_ACCOUNTS: usize = 100_000;

/// The domain admins of `domain` (enabled ones).
pub async fn domain_admins(store: &dyn Store, domain: &str) -> Result<Vec<Account>, AccountError> {
    let rows = store.scan_prefix(&format!("{}.", key(&["console", "account"])), MAX_ACCOUNTS).await?;
    Ok(rows
        .iter()
        .filter_map(|(_, value)| serde_json::from_slice::<Account>(value).ok())
        .filter(|a| a.role == Role::TenantAdmin && !a.disabled && a.domains.iter().any(|d| d == domain))
        .collect())
}

/// Marks the account suspended from sending; gives the addresses to tell (its domain
/// admins).
pub async fn suspend(store: &dyn Store, account: &Account) -> Result<Vec<String>, AccountError> {
    if let Some(mut stored) = get(store, &account.email).await? {
        stored.suspended = true;
        put(store, &stored).await?;
    }
    Ok(domain_admins(store, account.domain()).await?.into_iter().map(|a| a.email).collect())
}

fn sent_key(account: &str, recipient: &str) -> String {
    key(&["sent", &account.to_ascii_lowercase(), &recipient.to_ascii_lowercase()])
}

/// How long the gateway remembers that an account sent to an address: a bounce about
/// that address is believed within this time (real bounces come back within the
/// senders' queue lifetime, days).
pub const SENT_MEMORY: Duration = Duration::from_secs(14 * 86_400);

/// `account` sent mail to `recipients` (its submitted message was queued).
pub async fn remember_sent(store: &dyn Store, account: &str, recipients: &[&str], now: u64) -> Result<(), StoreError> {
    for recipient in recipients {
        store.put(&sent_key(account, recipient), now.to_string().as_bytes(), Some(SENT_MEMORY)).await?;
    }
    Ok(())
}

/// Of the addresses a bounce to `account` says are unknown, the ones `account` really
/// sent to lately. Anyone can send a report to an account's address: a forged one
/// must neither suspend the account nor mark strangers' addresses dead.
pub async fn sent_by(store: &dyn Store, account: &str, addresses: &[&str]) -> Result<Vec<String>, StoreError> {
    let keys: Vec<String> = addresses.iter().map(|a| sent_key(account, a)).collect();
    let found = store.get_many(&keys).await?;
    Ok(addresses.iter().zip(found).filter(|(_, v)| v.is_some()).map(|(a, _)| a.to_string()).collect())
}

fn dead_key(address: &str) -> String {
    key(&["dead", &address.to_ascii_lowercase()])
}

/// When `address` bounced as unknown (Unix seconds), if it did within the dead TTL.
pub async fn dead_since(store: &dyn Store, address: &str) -> Option<u64> {
    let value = store.get(&dead_key(address)).await.ok()??;
    String::from_utf8_lossy(&value).parse().ok()
}

/// An account's mail came back "user unknown" for `dead` recipients (a bounce, or the
/// relay's own refusal at RCPT): they are remembered as dead for
/// `limits.dead_recipient_ttl` and counted against the account. Gives why the account
/// is now to be suspended, when `limits.suspend_after_bounces` is reached.
pub async fn unknown_recipients(
    store: &dyn Store,
    limits: &rempart_model::config::OutboundConfig,
    account: &Account,
    dead: &[&str],
    now: u64,
) -> Result<Option<String>, StoreError> {
    if dead.is_empty() {
        return Ok(None);
    }
    if !limits.dead_recipient_ttl.0.is_zero() {
        for recipient in dead {
            store.put(&dead_key(recipient), now.to_string().as_bytes(), Some(limits.dead_recipient_ttl.0)).await?;
        }
    }
    tracing::info!(account = %account.email, dead = ?dead, "mail to unknown recipients");
    let k = key(&["out", "bounced", &account.email, &crate::window::number(now, limits.suspend_window.0).to_string()]);
    let bounced = crate::window::add(store, &k, dead.len() as i64, limits.suspend_window.0).await?;
    let due = limits.suspend_after_bounces > 0 && bounced >= limits.suspend_after_bounces as i64 && !account.suspended;
    Ok(due.then(|| format!("its mail came back as \"user unknown\" for {bounced} recipients within {}", limits.suspend_window)))
}

/// Failed logins allowed in a window for one account from one IP: the guesser is
/// stopped there, and nobody else (another account behind the same IP, the same account
/// from elsewhere) is locked out by it.
pub const MAX_FAILURES: i64 = 5;
/// Failed logins allowed from one client over all accounts (guessing many accounts), and
/// for one account from all clients (a distributed guess: then each client that failed
/// is refused, not one that has not).
pub const MAX_FAILURES_WIDE: i64 = 50;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    Ok(Box<Account>),
    /// Wrong address or password (which one is not said).
    Refused,
    /// Too many failures from this IP or for this account: try again later.
    Throttled,
    /// The password is right; the account's second factor is needed too.
    CodeNeeded,
}

/// Checks a login, counting failures; a throttled IP or account is refused before the
/// password is even hashed (no oracle, no CPU spent for an attacker). `code`: the
/// second factor typed, for the console (`None` for SMTP, which has none); an account
/// with a confirmed second factor needs the right one (a wrong one is a failure).
pub async fn login(
    store: &dyn Store,
    email: &str,
    password: &str,
    code: Option<&str>,
    ip: &str,
    service: &str,
) -> Result<Login, AccountError> {
    let email = email.trim().to_ascii_lowercase();
    let window = crate::window::number(rempart_model::date::unix_now(), FAILURE_WINDOW);
    let window = window.to_string();
    let limits = [
        (key(&["auth", "fail", "pair", ip, &email, &window]), MAX_FAILURES),
        (key(&["auth", "fail", "ip", ip, &window]), MAX_FAILURES_WIDE),
        (key(&["auth", "fail", "account", &email, &window]), MAX_FAILURES_WIDE),
    ];
    let pair_failures = crate::window::read(store, &limits[0].0).await?;
    let ip_failures = crate::window::read(store, &limits[1].0).await?;
    let account_failures = crate::window::read(store, &limits[2].0).await?;
    // The account-wide count stops a guess spread over many clients; a client that has
    // not failed itself is never refused for the others' failures (the account's owner
    // logging in from their own desk while someone guesses elsewhere).
    if pair_failures >= MAX_FAILURES || ip_failures >= MAX_FAILURES_WIDE || (pair_failures > 0 && account_failures >= MAX_FAILURES_WIDE) {
        return Ok(Login::Throttled);
    }
    let account = get(store, &email).await?;
    // Unknown accounts cost the same work, so timing does not tell which exist.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = match &account {
        Some(a) => a.password_hash.clone(),
        None => DUMMY.get_or_init(|| hash_password("not a password").unwrap_or_default()).clone(),
    };
    // Argon2 takes tens of milliseconds of CPU: off the async threads.
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || password_matches(&hash, &password)).await.unwrap_or(false);
    let mut ok = account.as_ref().is_some_and(|a| !a.disabled) && matches;
    if let (true, Some(account), Some(code)) = (ok, &account, code) {
        match crate::second_factor::check(account, code, rempart_model::date::unix_now()) {
            crate::second_factor::Check::NotUsed => {}
            crate::second_factor::Check::Passed(step) => crate::second_factor::used(store, account, step).await?,
            // The password was right: asking for the code counts no failure.
            crate::second_factor::Check::Missing => return Ok(Login::CodeNeeded),
            crate::second_factor::Check::Wrong => ok = false,
        }
    }
    match (ok, account) {
        (true, Some(account)) => Ok(Login::Ok(Box::new(account))),
        _ => {
            for (k, _) in &limits {
                crate::window::add(store, k, 1, FAILURE_WINDOW).await?;
            }
            tracing::warn!(%ip, account = %email, %service, "login refused");
            Ok(Login::Refused)
        }
    }
}

impl PartialEq for Account {
    fn eq(&self, other: &Self) -> bool {
        self.email == other.email
    }
}
impl Eq for Account {}
