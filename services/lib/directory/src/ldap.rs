//! LDAP / Active Directory: one subtree search per address with the configured filter
//! (the address escaped per RFC 4515), asking for no attributes. Each domain keeps a
//! small pool of bound connections (`connections`), used in turn, on each of which
//! ldap3 multiplexes concurrent searches; a connection that fails is dropped and the
//! next lookup on its slot opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, ldap_escape};
use rempart_model::config::LdapConfig;
use rempart_model::{Config, Lookup};
use rustls::ClientConfig;

use crate::DirectoryError;

pub struct Ldap {
    /// Bind passwords, by domain, read at start.
    passwords: HashMap<String, String>,
    /// TLS for `ldaps://` and StartTLS, by domain.
    tls: HashMap<String, Arc<ClientConfig>>,
    /// Bound connections by (domain, slot).
    connections: Mutex<HashMap<(String, usize), ldap3::Ldap>>,
    /// Turns through the slots.
    next: AtomicUsize,
}

impl Ldap {
    pub fn new(config: &Config) -> Result<Self, DirectoryError> {
        let (mut passwords, mut tls) = (HashMap::new(), HashMap::new());
        for domain in &config.domains {
            let Some(ldap) = &domain.ldap else { continue };
            if let Some(path) = &ldap.bind_password_file {
                let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::PasswordFile {
                    domain: domain.name.clone(),
                    path: path.display().to_string(),
                    source,
                })?;
                passwords.insert(domain.name.clone(), text.lines().next().unwrap_or("").to_string());
            }
            if ldap.url.starts_with("ldaps://") || ldap.starttls {
                let ca_error =
                    |e: rempart_smtp_client::TlsSetupError| DirectoryError::CaFile { domain: domain.name.clone(), message: e.to_string() };
                let roots = match &ldap.ca_file {
                    Some(path) => rempart_smtp_client::ca_file_roots(path).map_err(ca_error)?,
                    None => rempart_smtp_client::system_roots().map_err(ca_error)?,
                };
                let client = rempart_smtp::tls::verifying(roots).map_err(|e| ca_error(e.into()))?;
                tls.insert(domain.name.clone(), Arc::new(client));
            }
        }
        Ok(Self { passwords, tls, connections: Mutex::default(), next: AtomicUsize::new(0) })
    }

    pub async fn lookup(&self, domain: &str, config: &LdapConfig, address: &str) -> Lookup {
        let filter = config.filter.replace("{address}", &ldap_escape(address));
        let slot = (domain.to_string(), self.next.fetch_add(1, Ordering::Relaxed) % config.connections.max(1));
        let search = async {
            let mut ldap = self.connection(&slot, config).await?;
            ldap.with_timeout(config.timeout.0);
            let (entries, _) = ldap.search(&config.base, Scope::Subtree, &filter, vec!["1.1"]).await?.success()?;
            Ok::<_, ldap3::LdapError>(!entries.is_empty())
        };
        match tokio::time::timeout(config.timeout.0, search).await {
            Ok(Ok(true)) => Lookup::Exists,
            Ok(Ok(false)) => Lookup::Unknown,
            Ok(Err(e)) => {
                self.forget(&slot);
                Lookup::Unavailable(format!("LDAP {}: {e}", config.url))
            }
            Err(_) => {
                self.forget(&slot);
                Lookup::Unavailable(format!("LDAP {}: timed out after {:?}", config.url, config.timeout.0))
            }
        }
    }

    fn forget(&self, slot: &(String, usize)) {
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(slot);
    }

    /// The bound connection of a domain's slot, opened (and bound) when there is none.
    async fn connection(&self, slot: &(String, usize), config: &LdapConfig) -> Result<ldap3::Ldap, ldap3::LdapError> {
        if let Some(ldap) = self.connections.lock().unwrap_or_else(|p| p.into_inner()).get(slot) {
            return Ok(ldap.clone());
        }
        let domain = slot.0.as_str();
        let mut settings = LdapConnSettings::new().set_conn_timeout(config.timeout.0).set_starttls(config.starttls);
        if let Some(tls) = self.tls.get(domain) {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url).await?;
        ldap3::drive!(conn);
        ldap.with_timeout(config.timeout.0);
        if let Some(dn) = &config.bind_dn {
            let password = self.passwords.get(domain).map(String::as_str).unwrap_or("");
            ldap.simple_bind(dn, password).await?.success()?;
        }
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).insert(slot.clone(), ldap.clone());
        Ok(ldap)
    }
}
