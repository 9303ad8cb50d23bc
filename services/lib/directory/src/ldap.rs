//! LDAP / Active Directory: one subtree search per address with the configured filter
//! (the address escaped per RFC 4515), asking for no attributes. Each domain keeps one
//! bound connection, on which ldap3 multiplexes concurrent searches; a connection that
//! fails is dropped and the next lookup opens a new one.

use std::collections::HashMap;
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
    connections: Mutex<HashMap<String, ldap3::Ldap>>,
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
                    |e: rempart_relay::TlsSetupError| DirectoryError::CaFile { domain: domain.name.clone(), message: e.to_string() };
                let roots = match &ldap.ca_file {
                    Some(path) => rempart_relay::ca_file_roots(path).map_err(ca_error)?,
                    None => rempart_relay::system_roots().map_err(ca_error)?,
                };
                let client = rempart_smtp::tls::verifying(roots).map_err(|e| ca_error(e.into()))?;
                tls.insert(domain.name.clone(), Arc::new(client));
            }
        }
        Ok(Self { passwords, tls, connections: Mutex::default() })
    }

    pub async fn lookup(&self, domain: &str, config: &LdapConfig, address: &str) -> Lookup {
        let filter = config.filter.replace("{address}", &ldap_escape(address));
        let search = async {
            let mut ldap = self.connection(domain, config).await?;
            ldap.with_timeout(config.timeout.0);
            let (entries, _) = ldap.search(&config.base, Scope::Subtree, &filter, vec!["1.1"]).await?.success()?;
            Ok::<_, ldap3::LdapError>(!entries.is_empty())
        };
        match tokio::time::timeout(config.timeout.0, search).await {
            Ok(Ok(true)) => Lookup::Exists,
            Ok(Ok(false)) => Lookup::Unknown,
            Ok(Err(e)) => {
                self.forget(domain);
                Lookup::Unavailable(format!("LDAP {}: {e}", config.url))
            }
            Err(_) => {
                self.forget(domain);
                Lookup::Unavailable(format!("LDAP {}: timed out after {:?}", config.url, config.timeout.0))
            }
        }
    }

    fn forget(&self, domain: &str) {
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(domain);
    }

    /// The domain's bound connection, opened (and bound) when there is none.
    async fn connection(&self, domain: &str, config: &LdapConfig) -> Result<ldap3::Ldap, ldap3::LdapError> {
        if let Some(ldap) = self.connections.lock().unwrap_or_else(|p| p.into_inner()).get(domain) {
            return Ok(ldap.clone());
        }
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
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).insert(domain.to_string(), ldap.clone());
        Ok(ldap)
    }
}
