//! The checks that need no network, as a table run in order (the DNS-based ones wait
//! on answers and run before, in `Scanner::network_findings`). Then come, in
//! `Scanner::evaluate`: the classifier (Bayes), composites, weights, the AWL, policy.

use crate::checks::{self, Context, Findings};

/// One stage: a name (for timings and docs) and the check that runs it.
pub struct Stage {
    pub name: &'static str,
    pub run: fn(&Context<'_>, &mut Findings),
}

pub const LOCAL_STAGES: &[Stage] = &[
    Stage { name: "connection", run: checks::connection::run },
    Stage { name: "headers", run: checks::headers::run },
    Stage { name: "content", run: checks::content::run },
    Stage { name: "wording", run: checks::wording::run },
    Stage { name: "attachments", run: checks::attachments::run },
    Stage { name: "links", run: checks::links::run },
    Stage { name: "impersonation", run: checks::impersonation::run },
];
