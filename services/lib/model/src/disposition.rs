//! One place that decides what becomes of a scanned message, for the edge (in the
//! SMTP session) and for the queued scan (after the edge accepted it with no scanner
//! up): refuse, greylist, drop, or publish on a topic with the verdict's edits.

use crate::topics::{DELIVER_TOPIC, QUARANTINE_TOPIC};
use crate::{Action, Refusal, Verdict};

/// Where the verdict is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// In the SMTP session: the sender is there to be refused.
    InSession,
    /// After queueing: nobody to refuse, and the sender may be forged, so a refusal is
    /// held in quarantine (no backscatter, nothing lost) and greylisting cannot apply.
    Queued,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Answer the sender with this refusal.
    Refuse(Refusal),
    /// Greylisting decides (the triplet in the shared store), then delivery.
    Greylist,
    /// Accepted and dropped on purpose: the sender must not learn it was caught.
    Discard,
    /// Publish on this topic, the verdict's edits applied.
    Publish(&'static str),
}

pub fn dispose(verdict: &Verdict, stage: Stage) -> Disposition {
    match (verdict.action, stage) {
        (Action::Reject | Action::SoftReject, Stage::InSession) => Disposition::Refuse(verdict.refusal.clone().unwrap_or_else(|| {
            let (code, status) = if verdict.action == Action::Reject { (550, "5.7.1") } else { (451, "4.7.1") };
            Refusal { code, status: status.into(), text: format!("Message refused: score {:.2}", verdict.score) }
        })),
        (Action::Greylist, Stage::InSession) => Disposition::Greylist,
        (Action::Discard, _) => Disposition::Discard,
        (Action::Quarantine, _) | (Action::Reject | Action::SoftReject, Stage::Queued) => Disposition::Publish(QUARANTINE_TOPIC),
        (Action::Accept | Action::AddHeader, _) | (Action::Greylist, Stage::Queued) => Disposition::Publish(DELIVER_TOPIC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(action: Action) -> Verdict {
        Verdict {
            score: 9.0,
            action,
            symbols: vec![],
            listed: None,
            scanner_id: "t".into(),
            elapsed_us: 0,
            offline: true,
            edits: Default::default(),
            refusal: None,
            malware: None,
        }
    }

    #[test]
    fn in_session_and_after_queueing() {
        use Disposition::*;
        let table = [
            (Action::Accept, Publish(DELIVER_TOPIC), Publish(DELIVER_TOPIC)),
            (Action::AddHeader, Publish(DELIVER_TOPIC), Publish(DELIVER_TOPIC)),
            (Action::Greylist, Greylist, Publish(DELIVER_TOPIC)),
            (Action::Quarantine, Publish(QUARANTINE_TOPIC), Publish(QUARANTINE_TOPIC)),
            (Action::Discard, Discard, Discard),
            (
                Action::Reject,
                Refuse(Refusal { code: 550, status: "5.7.1".into(), text: "Message refused: score 9.00".into() }),
                Publish(QUARANTINE_TOPIC),
            ),
        ];
        for (action, in_session, queued) in table {
            assert_eq!(dispose(&verdict(action), Stage::InSession), in_session, "{action}");
            assert_eq!(dispose(&verdict(action), Stage::Queued), queued, "{action}");
        }
        let mut soft = verdict(Action::SoftReject);
        soft.refusal = Some(Refusal { code: 451, status: "4.7.1".into(), text: "later - https://x/why/1".into() });
        assert_eq!(dispose(&soft, Stage::InSession), Refuse(soft.refusal.clone().unwrap()));
    }
}
