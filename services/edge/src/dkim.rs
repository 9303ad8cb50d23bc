//! DKIM signing (RFC 6376, ed25519 per RFC 8463) of the mail customers' accounts
//! submit, with each key of the From domain's `[[domain.dkim]]`, after the submission
//! checks and before the message is queued: the signature travels with the message
//! and retries never sign again.

use std::collections::HashMap;
use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rempart_model::Config;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::EdgeError;

/// Headers signed when present (RFC 6376 §5.4.1's recommendation, and List-Unsubscribe
/// for RFC 8058 one-click).
const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

enum Signer {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

/// Every configured domain's signers, by domain name (lower case).
#[derive(Default)]
pub struct Signers {
    by_domain: HashMap<String, Vec<(String, Signer)>>,
}

impl Signers {
    /// Loads every `[[domain.dkim]]` key, then the keys the store keeps; a file's key
    /// that cannot be read or parsed is an error naming its file, a stored key that
    /// cannot be parsed is logged and left out (one bad record must not stop the others).
    pub fn load(config: &Config) -> Result<Signers, EdgeError> {
        let mut by_domain: HashMap<String, Vec<(String, Signer)>> = HashMap::new();
        for domain in &config.domains {
            for key in &domain.dkim {
                let signer = load_key(&key.key_file, &domain.name, &key.selector)?;
                by_domain.entry(domain.name.to_ascii_lowercase()).or_default().push((key.selector.clone(), signer));
            }
        }
        for key in &config.stored_dkim {
            match signer_from_pem(&key.pem, &key.domain, &key.selector) {
                Ok(signer) => by_domain.entry(key.domain.to_ascii_lowercase()).or_default().push((key.selector.clone(), signer)),
                Err(e) => tracing::error!(domain = %key.domain, selector = %key.selector, error = %e, "a stored DKIM key cannot be used"),
            }
        }
        Ok(Signers { by_domain })
    }

    /// The DKIM-Signature headers for `message` from `domain` (none when the domain has
    /// no key). A key that fails to sign is logged and skipped: the message still goes,
    /// unsigned by it.
    pub fn sign(&self, domain: &str, message: &[u8]) -> String {
        let Some(signers) = self.by_domain.get(&domain.to_ascii_lowercase()) else { return String::new() };
        let mut headers = String::new();
        for (selector, signer) in signers {
            let signed = match signer {
                Signer::Ed25519(s) => s.sign(message),
                Signer::Rsa(s) => s.sign(message),
            };
            match signed {
                Ok(signature) => headers.push_str(&signature.to_header()),
                Err(e) => tracing::error!(%domain, %selector, error = %e, "DKIM signing failed"),
            }
        }
        headers
    }
}

fn load_key(path: &Path, domain: &str, selector: &str) -> Result<Signer, EdgeError> {
    let bad = |why: String| EdgeError::Dkim(format!("{}: {why}", path.display()));
    let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    signer_from_pem(&pem, domain, selector).map_err(bad)
}

fn signer_from_pem(pem: &str, domain: &str, selector: &str) -> Result<Signer, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("no private key in PEM ({e})"))?;
    if let Ok(key) = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_der()) {
        return Ok(Signer::Ed25519(configured(key, domain, selector)));
    }
    match RsaKey::<Sha256>::from_key_der(der) {
        Ok(key) => Ok(Signer::Rsa(configured(key, domain, selector))),
        Err(e) => Err(format!("not an ed25519 or RSA private key ({e})")),
    }
}

fn configured<T: SigningKey>(key: T, domain: &str, selector: &str) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_loads_and_signs() {
        let (pem, record) = rempart_state::dkim_keys::generate(rempart_state::dkim_keys::Algorithm::Ed25519).expect("generated");
        assert!(record.starts_with("v=DKIM1; k=ed25519; p="), "{record}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        std::fs::write(&path, pem).expect("write");
        let signer = load_key(&path, "example.com", "s1").expect("loads");
        let signers = Signers { by_domain: HashMap::from([("example.com".into(), vec![("s1".into(), signer)])]) };
        let header = signers.sign("Example.COM", b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
        assert!(header.starts_with("DKIM-Signature:") && header.contains("d=example.com") && header.contains("s=s1"), "{header}");
        assert!(signers.sign("other.example", b"From: a@other.example\r\n\r\nx\r\n").is_empty());
        std::fs::write(&path, "not a key").expect("write");
        let error = load_key(&path, "example.com", "s1").err().expect("refused").to_string();
        assert!(error.contains("k.pem"), "{error}");
    }
}
