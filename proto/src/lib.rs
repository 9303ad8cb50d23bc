//! rempart.v1: the messages and services generated from `proto/rempart/v1/*.proto`.

pub mod v1 {
    tonic::include_proto!("rempart.v1");

    /// For gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rempart_v1_descriptor");
}

use rempart_model::{Action, Edits, Refusal, SessionFacts, StrippedPart, SymbolHit, Verdict};

impl From<&Verdict> for v1::Verdict {
    fn from(v: &Verdict) -> Self {
        v1::Verdict {
            score: v.score,
            action: v.action.as_str().to_string(),
            symbols: v
                .symbols
                .iter()
                .map(|s| v1::Symbol {
                    name: s.name.clone(),
                    score: s.score,
                    group: s.group.clone(),
                    description: s.description.clone(),
                    description_fr: s.description_fr.clone(),
                    detail: s.detail.clone(),
                })
                .collect(),
            listed: v.listed.clone(),
            scanner_id: v.scanner_id.clone(),
            elapsed_us: v.elapsed_us,
            offline: v.offline,
            edits: Some(v1::Edits {
                add_top: v.edits.add_top.clone(),
                add_headers: v.edits.add_headers.clone(),
                remove_auth_results_of: v.edits.remove_auth_results_of.clone(),
                subject_tag: v.edits.subject_tag.clone(),
                strip: v.edits.strip.iter().map(|p| v1::StrippedPart { start: p.start, end: p.end, text: p.text.clone() }).collect(),
            }),
            refusal: v.refusal.as_ref().map(|r| v1::Refusal { code: u32::from(r.code), status: r.status.clone(), text: r.text.clone() }),
            malware: v.malware.clone(),
        }
    }
}

/// A verdict from the wire that breaks the contract (a refusal code outside 4xx/5xx…).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid verdict: {0}")]
pub struct InvalidVerdict(pub String);

impl TryFrom<v1::Verdict> for Verdict {
    type Error = InvalidVerdict;

    fn try_from(v: v1::Verdict) -> Result<Self, InvalidVerdict> {
        let refusal = match v.refusal {
            Some(r) => {
                let code = u16::try_from(r.code)
                    .ok()
                    .filter(|c| (400..600).contains(c))
                    .ok_or_else(|| InvalidVerdict(format!("refusal code {}", r.code)))?;
                Some(Refusal { code, status: r.status, text: r.text })
            }
            None => None,
        };
        let edits = v.edits.map(|e| Edits {
            add_top: e.add_top,
            add_headers: e.add_headers,
            remove_auth_results_of: e.remove_auth_results_of,
            subject_tag: e.subject_tag,
            strip: e.strip.into_iter().map(|p| StrippedPart { start: p.start, end: p.end, text: p.text }).collect(),
        });
        let action = Action::ALL
            .into_iter()
            .find(|a| a.as_str() == v.action)
            .ok_or_else(|| InvalidVerdict(format!("unknown action {:?}", v.action)))?;
        Ok(Verdict {
            score: v.score,
            action,
            symbols: v
                .symbols
                .into_iter()
                .map(|s| SymbolHit {
                    name: s.name,
                    score: s.score,
                    group: s.group,
                    description: s.description,
                    description_fr: s.description_fr,
                    detail: s.detail,
                })
                .collect(),
            listed: v.listed,
            scanner_id: v.scanner_id,
            elapsed_us: v.elapsed_us,
            offline: v.offline,
            edits: edits.unwrap_or_default(),
            refusal,
            malware: v.malware,
        })
    }
}

impl From<&SessionFacts> for v1::SessionFacts {
    fn from(f: &SessionFacts) -> Self {
        v1::SessionFacts { peer_ip: f.peer_ip.to_string(), helo: f.helo.clone(), tls: f.tls.clone() }
    }
}

impl From<v1::SessionFacts> for SessionFacts {
    fn from(f: v1::SessionFacts) -> Self {
        SessionFacts {
            peer_ip: f.peer_ip.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            helo: f.helo,
            tls: f.tls,
        }
    }
}
