use rempart_model::{QueueId, Recipient};

use super::*;

pub(crate) fn envelope(id: &str, from: &str, to: &[&str]) -> Envelope {
    Envelope::new(QueueId::from_string(id.to_string()), from.into(), to.iter().map(|a| Recipient::new(a.to_string())).collect(), 0)
}

fn held(store: &QuarantineStore, id: &str, at: u64, to: &[&str], subject: &str) {
    let body = format!("Subject: {subject}\r\n\r\nbody\r\n");
    let entry = Entry::from_envelope(envelope(id, "s@spam.test", to), body.as_bytes(), at);
    store.hold(&entry, body.as_bytes()).expect("hold");
}

/// Issue 30, defect 8: another tenant's admin deleting a message removed everyone's
/// copy. Now each reader deletes their own copies only.
#[test]
fn a_delete_removes_the_readers_copies_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = QuarantineStore::open(dir.path()).expect("open");
    held(&store, "Q1", 1000, &["ceo@example.com", "eve@other.test"], "hi");
    let other_admin = Scope::Domains(vec!["other.test".into()]);
    assert!(!store.delete_for("Q1", &other_admin).expect("delete"), "the entry stays");
    let example = Scope::Domains(vec!["example.com".into()]);
    let left = store.list(&example, &Query::default(), 0, 10).expect("list");
    assert_eq!(left.entries.len(), 1, "the ceo's copy is still held");
    assert_eq!(left.entries[0].recipients, ["ceo@example.com"]);
    assert!(store.list(&other_admin, &Query::default(), 0, 10).expect("list").entries.is_empty());
    assert!(store.body("Q1").is_ok());
    // A stranger cannot touch it at all.
    let stranger = Scope::Addresses(vec!["mallory@example.org".into()]);
    assert!(matches!(store.delete_for("Q1", &stranger), Err(QuarantineError::NotFound(_))));
    assert!(store.delete_for("Q1", &Scope::Addresses(vec!["ceo@example.com".into()])).expect("delete"));
    assert!(store.is_empty().expect("len"));
    assert!(store.body("Q1").is_err());
}

#[test]
fn lists_newest_first_by_scope_and_query_with_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = QuarantineStore::open(dir.path()).expect("open");
    for i in 0..25u64 {
        let to = if i % 2 == 0 { "alice@a.test" } else { "bob@b.test" };
        held(&store, &format!("Q{i:03}"), 1000 + i, &[to], &format!("offer {i}"));
    }
    let first = store.list(&Scope::All, &Query::default(), 0, 10).expect("list");
    assert_eq!(first.entries.len(), 10);
    assert!(first.has_more);
    assert_eq!(first.entries[0].queue_id, "Q024");
    let last = store.list(&Scope::All, &Query::default(), 2, 10).expect("list");
    assert_eq!(last.entries.len(), 5);
    assert!(!last.has_more);
    let a = store.list(&Scope::Domains(vec!["a.test".into()]), &Query::default(), 0, 100).expect("list");
    assert_eq!(a.entries.len(), 13);
    assert!(a.entries.iter().all(|e| e.recipients == ["alice@a.test"]));
    let bob = store.list(&Scope::Addresses(vec!["bob@b.test".into()]), &Query::default(), 0, 100).expect("list");
    assert_eq!(bob.entries.len(), 12);
    let query = Query { subject: "OFFER 2".into(), ..Query::default() };
    let found = store.list(&Scope::All, &query, 0, 100).expect("list");
    let ids: Vec<&str> = found.entries.iter().map(|e| e.queue_id.as_str()).collect();
    assert_eq!(ids, ["Q024", "Q023", "Q022", "Q021", "Q020", "Q002"]);
}

#[test]
fn release_happens_once_and_delete_and_sweep_remove_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = QuarantineStore::open(dir.path()).expect("open");
    held(&store, "Q1", 100, &["alice@a.test"], "one");
    held(&store, "Q2", 200, &["alice@a.test"], "two");
    store.mark_released("Q1", &Scope::All, "admin@a.test", 150).expect("first release");
    assert!(matches!(store.mark_released("Q1", &Scope::All, "admin@a.test", 151), Err(QuarantineError::NotHeld { .. })));
    assert_eq!(store.body("Q2").expect("body"), b"Subject: two\r\n\r\nbody\r\n");
    store.delete("Q2").expect("delete");
    assert!(store.body("Q2").is_err());
    assert!(matches!(store.delete("Q2"), Err(QuarantineError::NotFound(_))));
    assert_eq!(store.sweep(101).expect("sweep").len(), 1);
    assert!(store.is_empty().expect("len"));
}
