//! The memory of campaigns (`rempart_state::fuzzy`): rspamd's names for its fuzzy
//! storage. Their weights are scaled by the similarity found.

use super::{SymbolDef, def};

pub const FUZZY: &[SymbolDef] = &[
    def(
        "FUZZY_DENIED",
        6.0,
        "fuzzy",
        "Like a message reported as spam (same campaign)",
        "Ressemble à un message signalé comme spam (même campagne).",
    ),
    def("FUZZY_WHITE", -2.0, "fuzzy", "Like a message released as legitimate", "Ressemble à un message libéré comme légitime."),
];
