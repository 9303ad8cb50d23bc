//! DKIM signing keys kept in the store, so that a key generated from the console or the
//! API signs on every node within a poll of `config.version`, without files to copy.
//!
//! The private half is sealed (ChaCha20-Poly1305) with the gateway's secret
//! (`[state] secret_file`): a reader of the store alone learns nothing. Only processes
//! that sign or generate keys read that secret.
//!
//! Rotation: a new selector signs beside the old ones; the old ones carry `retire_at`
//! and sign until then (the overlap lets verifiers' caches and DNS catch up), after
//! which [`retire_due`] removes them.

use std::path::Path;

use base64::Engine;
use rempart_model::config::StoredDkimKey;
use ring::aead::{CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::domains::{RecordError, bump};
use crate::{Store, key};

/// Keys a scan lists at most.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// RFC 8463; small records, not yet verified by every receiver.
    Ed25519,
    /// RSA-2048 with SHA-256: verified everywhere.
    Rsa,
}

impl Algorithm {
    pub fn parse(text: &str) -> Result<Algorithm, String> {
        match text.to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Algorithm::Ed25519),
            "rsa" | "rsa-2048" | "rsa2048" => Ok(Algorithm::Rsa),
            other => Err(format!("{other:?} is not a DKIM key algorithm: \"ed25519\" or \"rsa\" (RSA-2048)")),
        }
    }
}

/// One domain's key as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
    /// The PKCS#8 PEM, sealed with the gateway's secret (base64 of nonce ‖ ciphertext).
    pub sealed: String,
    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub record: String,
    /// Unix seconds.
    pub created: u64,
    /// When it stops signing (rotated out); `None`: signs until removed.
    #[serde(default)]
    pub retire_at: Option<u64>,
}

impl DkimKey {
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }
}

/// The gateway's secret, which seals what the store must not show (DKIM private keys).
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// The gateway's sealer, from `[state] secret_file` (created when absent).
    pub fn of(config: &rempart_model::Config) -> Result<Sealer, String> {
        let path = config.state.secret_file.clone().unwrap_or_else(|| config.queue.data_dir.join("secret.key"));
        Sealer::load_or_create(&path)
    }

    /// Reads the secret (64 hex digits); when the file does not exist, creates it with a
    /// new random secret, readable by its owner only. Every node that signs must read
    /// the same secret (in a cluster: one Kubernetes Secret mounted on each).
    pub fn load_or_create(path: &Path) -> Result<Sealer, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_secret(path)?,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let bytes = decode_hex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| format!("{}: the secret must be 64 hexadecimal digits (32 random bytes)", path.display()))?;
        Sealer::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Sealer, String> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| "not a 32-byte key".to_string())?;
        Ok(Sealer { key: LessSafeKey::new(key) })
    }

    pub fn seal(&self, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; 12];
        SystemRandom::new().fill(&mut nonce).map_err(|_| "no randomness".to_string())?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), ring::aead::Aad::empty(), &mut sealed)
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).map_err(|_| "not base64".to_string())?;
        if bytes.len() < 12 + CHACHA20_POLY1305.tag_len() {
            return Err("too short".into());
        }
        let (nonce, rest) = bytes.split_at(12);
        let mut rest = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_string())?;
        let plain = self
            .key
            .open_in_place(nonce, ring::aead::Aad::empty(), &mut rest)
            .map_err(|_| "sealed with another secret (every signing node needs the same [state] secret_file)".to_string())?;
        Ok(plain.to_vec())
    }
}

fn create_secret(path: &Path) -> Result<String, String> {
    use std::io::Write;
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| "no randomness".to_string())?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{text}\n").as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "created the secret that seals DKIM keys in the store");
            Ok(text)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// A new key pair: its PKCS#8 PEM and the TXT record of its public half. RSA keys come
/// from `openssl genpkey` (ring signs with RSA but does not generate it, and the `rsa`
/// crate is avoided).
pub fn generate(algorithm: Algorithm) -> Result<(String, String), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match algorithm {
        Algorithm::Ed25519 => {
            let der =
                ring::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| "key generation failed".to_string())?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).map_err(|_| "key generation failed".to_string())?;
            let public = ring::signature::KeyPair::public_key(&pair);
            Ok((pem("PRIVATE KEY", der.as_ref()), format!("v=DKIM1; k=ed25519; p={}", b64.encode(public.as_ref()))))
        }
        Algorithm::Rsa => {
            let private = openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], None)?;
            let public = openssl(&["pkey", "-pubout", "-outform", "DER"], Some(&private))?;
            let pem = String::from_utf8(private).map_err(|_| "openssl wrote a key that is not PEM".to_string())?;
            Ok((pem, format!("v=DKIM1; k=rsa; p={}", b64.encode(public))))
        }
    }
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("RSA keys are generated with openssl, which cannot run here ({e}); use ed25519 or install openssl"))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).map_err(|e| format!("openssl: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn key_of(domain: &str, selector: &str) -> String {
    key(&["dkimkey", &domain.trim_end_matches('.').to_ascii_lowercase(), selector])
}

fn decode(k: &str, value: &[u8]) -> Result<DkimKey, RecordError> {
    serde_json::from_slice(value).map_err(|source| RecordError::Corrupt { key: k.to_string(), source })
}

/// Generates a key for `domain`, seals it and stores it; signing starts on every node
/// at their next poll. Refused when the selector exists already.
pub async fn create(
    store: &dyn Store,
    sealer: &Sealer,
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    now: u64,
) -> Result<DkimKey, RecordError> {
    rempart_model::config::check_selector(selector).map_err(RecordError::Invalid)?;
    // RSA generation takes a fraction of a second in openssl: off the async threads.
    let (private, record) = tokio::task::spawn_blocking(move || generate(algorithm))
        .await
        .map_err(|e| RecordError::Invalid(format!("key generation: {e}")))?
        .map_err(RecordError::Invalid)?;
    let sealed = sealer.seal(private.as_bytes()).map_err(RecordError::Invalid)?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let dkim = DkimKey { domain: domain.clone(), selector: selector.to_string(), algorithm, sealed, record, created: now, retire_at: None };
    let k = key_of(&domain, selector);
    let value = serde_json::to_vec(&dkim).map_err(|source| RecordError::Corrupt { key: k.clone(), source })?;
    if !store.compare_and_set(&k, None, &value, None).await? {
        return Err(RecordError::Conflict(format!("{domain} already has a key with selector {selector}")));
    }
    bump(store).await?;
    Ok(dkim)
}

/// A domain's keys (all of them when `domain` is `None`), oldest first.
pub async fn list(store: &dyn Store, domain: Option<&str>) -> Result<Vec<DkimKey>, RecordError> {
    let prefix = match domain {
        Some(d) => format!("{}.", key(&["dkimkey", &d.trim_end_matches('.').to_ascii_lowercase()])),
        None => format!("{}.", key(&["dkimkey"])),
    };
    let rows = store.scan_prefix(&prefix, MAX_KEYS).await?;
    let mut keys = rows.iter().map(|(k, v)| decode(k, v)).collect::<Result<Vec<_>, _>>()?;
    keys.sort_by(|a, b| (&a.domain, a.created, &a.selector).cmp(&(&b.domain, b.created, &b.selector)));
    Ok(keys)
}

/// Rotation: a new key signs from now on, beside the domain's current ones, which sign
/// until `now + overlap` and are then retired.
pub async fn rotate(
    store: &dyn Store,
    sealer: &Sealer,
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    now: u64,
    overlap_secs: u64,
) -> Result<DkimKey, RecordError> {
    let current = list(store, Some(domain)).await?;
    let created = create(store, sealer, domain, selector, algorithm, now).await?;
    for mut old in current.into_iter().filter(|k| k.retire_at.is_none()) {
        old.retire_at = Some(now + overlap_secs);
        let k = key_of(&old.domain, &old.selector);
        let value = serde_json::to_vec(&old).map_err(|source| RecordError::Corrupt { key: k.clone(), source })?;
        store.put(&k, &value, None).await?;
    }
    bump(store).await?;
    Ok(created)
}

/// Removes a key now (it stops signing at every node's next poll).
pub async fn remove(store: &dyn Store, domain: &str, selector: &str) -> Result<(), RecordError> {
    let k = key_of(domain, selector);
    if store.get(&k).await?.is_none() {
        return Err(RecordError::NotFound(format!("{domain} has no key with selector {selector}")));
    }
    store.delete(&k).await?;
    bump(store).await?;
    Ok(())
}

/// Removes the keys whose overlap has ended; how many.
pub async fn retire_due(store: &dyn Store, now: u64) -> Result<usize, RecordError> {
    let due: Vec<DkimKey> = list(store, None).await?.into_iter().filter(|k| k.retire_at.is_some_and(|at| at <= now)).collect();
    for old in &due {
        store.delete(&key_of(&old.domain, &old.selector)).await?;
        tracing::info!(domain = %old.domain, selector = %old.selector, "DKIM key retired after its overlap");
    }
    if !due.is_empty() {
        bump(store).await?;
    }
    Ok(due.len())
}

/// Every key that signs now, unsealed. A key that cannot be unsealed is left out and
/// logged (the domain's mail still goes, unsigned by it).
pub async fn signing(store: &dyn Store, sealer: &Sealer, now: u64) -> Result<Vec<StoredDkimKey>, RecordError> {
    let mut out = Vec::new();
    for k in list(store, None).await? {
        if k.retire_at.is_some_and(|at| at <= now) {
            continue;
        }
        match sealer.open(&k.sealed).and_then(|b| String::from_utf8(b).map_err(|_| "not text".to_string())) {
            Ok(pem) => out.push(StoredDkimKey { domain: k.domain, selector: k.selector, pem }),
            Err(e) => tracing::error!(domain = %k.domain, selector = %k.selector, error = %e, "cannot unseal a DKIM key; it does not sign"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        let sealer = Sealer::load_or_create(&path).expect("created");
        let again = Sealer::load_or_create(&path).expect("read");
        let sealed = sealer.seal(b"private").expect("sealed");
        assert!(!sealed.contains("private"));
        assert_eq!(again.open(&sealed).expect("opens"), b"private");
        let other = Sealer::load_or_create(&dir.path().join("other.key")).expect("created");
        assert!(other.open(&sealed).expect_err("refused").contains("another secret"));
        std::fs::write(dir.path().join("bad.key"), "zz").expect("write");
        assert!(Sealer::load_or_create(&dir.path().join("bad.key")).err().expect("refused").contains("64 hexadecimal digits"));
    }

    #[test]
    fn both_algorithms_generate_a_key_and_its_record() {
        let (pem, record) = generate(Algorithm::Ed25519).expect("ed25519");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----") && record.starts_with("v=DKIM1; k=ed25519; p="));
        let (pem, record) = generate(Algorithm::Rsa).expect("openssl is installed by scripts/setup.sh");
        assert!(pem.contains("PRIVATE KEY") && record.starts_with("v=DKIM1; k=rsa; p=MII"), "{record}");
        assert!(Algorithm::parse("dsa").is_err());
    }
}
