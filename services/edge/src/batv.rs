//! BATV (draft-levine-smtp-batv, `prvs=`): the return paths of mail that customers'
//! accounts submit carry a tag only this gateway can make, valid 7 days, so a bounce to
//! a customer address can be told from backscatter (the bounce of spam that forged it).
//! The key is in the store, made by whichever edge needs it first, shared by all.

use rempart_state::{Store, StoreError, key};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::OnceCell;

/// How long a tag is honoured: bounces come back within days.
const VALID_DAYS: u64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum BatvError {
    #[error("BATV key: {0}")]
    Store(#[from] StoreError),
    #[error("BATV key: no randomness from the system")]
    Random,
}

#[derive(Default)]
pub struct Batv {
    key: OnceCell<hmac::Key>,
}

impl Batv {
    /// `local@domain` → `prvs=KDDDSSSSSS=local@domain` for `day` (days since 1970).
    pub async fn sign(&self, store: &dyn Store, address: &str, day: u64) -> Result<String, BatvError> {
        let key = self.key(store).await?;
        Ok(format!("prvs={}={address}", tag(key, day % 1000, address)))
    }

    /// Whether `tagged_local@domain` carries a tag this gateway made in the last 7 days
    /// for `original_local@domain`.
    pub async fn verify(
        &self,
        store: &dyn Store,
        tagged_local: &str,
        original_local: &str,
        domain: &str,
        day: u64,
    ) -> Result<bool, BatvError> {
        let Some(tag_text) = tagged_local.get(5..15) else { return Ok(false) };
        let Some(signed_day) = tag_text.get(1..4).and_then(|d| d.parse::<u64>().ok()) else { return Ok(false) };
        let age = (day % 1000 + 1000 - signed_day) % 1000;
        if age > VALID_DAYS {
            return Ok(false);
        }
        let key = self.key(store).await?;
        let expected = tag(key, signed_day, &format!("{original_local}@{domain}"));
        Ok(expected.eq_ignore_ascii_case(tag_text))
    }

    async fn key(&self, store: &dyn Store) -> Result<&hmac::Key, BatvError> {
        self.key
            .get_or_try_init(|| async {
                let name = key(&["batv", "key"]);
                if let Some(bytes) = store.get(&name).await? {
                    return Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes));
                }
                let mut fresh = [0u8; 32];
                SystemRandom::new().fill(&mut fresh).map_err(|_| BatvError::Random)?;
                // Another edge may have written its key meanwhile: use whichever won.
                store.compare_and_set(&name, None, &fresh, None).await?;
                let bytes = store.get(&name).await?.ok_or(BatvError::Random)?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
            })
            .await
    }
}

/// `K DDD SSSSSS`: key number 0, the day (mod 1000), 3 bytes of HMAC-SHA256 over both.
fn tag(key: &hmac::Key, day: u64, address: &str) -> String {
    let mac = hmac::sign(key, format!("{day:03}{}", address.to_ascii_lowercase()).as_bytes());
    let signature: String = mac.as_ref()[..3].iter().map(|b| format!("{b:02x}")).collect();
    format!("0{day:03}{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tags_verify_for_seven_days_and_only_for_their_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = rempart_state::StoreSettings::Embedded { path: dir.path().join("s.redb"), fsync: false };
        let store = rempart_state::open(&settings).await.expect("store");
        let batv = Batv::default();
        let day = 20_426;
        let signed = batv.sign(&*store, "alice@example.com", day).await.expect("sign");
        let (local, domain) = signed.rsplit_once('@').expect("address");
        assert!(local.starts_with("prvs=0") && local.ends_with("=alice"), "{signed}");
        assert_eq!(rempart_model::return_path::batv_local(local), Some("alice"));
        for (later, valid) in [(0, true), (7, true), (8, false)] {
            assert_eq!(batv.verify(&*store, local, "alice", domain, day + later).await.expect("verify"), valid, "{later} days later");
        }
        assert!(!batv.verify(&*store, local, "bob", domain, day).await.expect("verify"), "another address");
        assert!(!batv.verify(&*store, "prvs=0000000000=alice", "alice", domain, day).await.expect("verify"), "forged");
        // A second edge reads the same key from the store.
        assert!(Batv::default().verify(&*store, local, "alice", domain, day).await.expect("verify"));
    }
}
